//! Password hashing with Argon2id (PHC strings). Hashing is deliberately slow, so it runs
//! on the blocking pool, never on the async workers.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

use super::secrets::{SecretError, random_bytes};

/// Argon2 runs at once at most this many times: each run holds 19 MiB and a core, so a
/// burst of logins (say 200 unknown names in parallel) queues here instead of taking
/// 200 × 19 MiB. One per core keeps the cores busy and memory flat.
static HASHING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get().max(2))));

pub async fn hash_password(password: String) -> Result<String, SecretError> {
    let salt = random_bytes::<16>()?;
    let _slot = HASHING.acquire().await.map_err(|_| SecretError::Random)?;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| SecretError::Random)
    })
    .await
    .map_err(|_| SecretError::Random)?
}

/// Compare in constant time (argon2 does); a missing hash still costs one hash so that
/// response time does not reveal which user names exist.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    // A valid PHC string for a password nobody knows, used when there is no user.
    const DECOY: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$K7VmqL4uqFtn4XQZmZPtWHFYc1MVDoQPszL9GVHCGGg";
    let Ok(_slot) = HASHING.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        let (target, real) = match &hash {
            Some(h) => (h.as_str(), true),
            None => (DECOY, false),
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), target)
            .is_ok();
        ok && real
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_reject() {
        let h = hash_password("s3cret".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret".into(), Some(h.clone())).await);
        assert!(!verify_password("S3cret".into(), Some(h)).await);
        assert!(!verify_password("anything".into(), None).await);
    }
}
