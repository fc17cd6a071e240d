//! Principals and credentials: password and refresh-token logins, access-token issuing
//! and verifying, rotation of the token signing key, and the bootstrap owner on first
//! start.

mod error;
mod grants;
mod logins;
mod passwords;
mod signing_keys;
mod tokens;
mod verified_tokens;

use std::sync::Arc;

use wharf_store::{MetadataStore, StoreError};

use crate::auth::AccessPolicy;
use crate::auth::revocations::Revocations;
use crate::auth::secrets::KeyEncryptionKey;
use crate::auth::throttle::Throttle;
use crate::auth::token::TokenSigner;
use crate::clock::now;
use crate::server_names::ServerNames;
use signing_keys::{CURRENT_KEY_CREATED_SETTING, CURRENT_KEY_SETTING, SigningKeys, load_signing_keys};

pub use error::IdentityError;
pub use logins::BOOTSTRAP_OWNER;
pub use signing_keys::{ROTATE_AUDIT_ACTION, SigningKeyRotation, SigningKeyView, SigningKeysView};
pub use tokens::IssuedToken;

pub struct IdentityService {
    meta: Arc<dyn MetadataStore>,
    kek: Arc<KeyEncryptionKey>,
    /// Swapped whole on rotation: a request holds one set from start to end and sees the
    /// old keys or the new ones, never a mix.
    keys: std::sync::RwLock<Arc<SigningKeys>>,
    /// One rotation at a time in this process, so two owners clicking at once get two
    /// clean rotations instead of a conflict.
    rotation: tokio::sync::Mutex<()>,
    policy: AccessPolicy,
    service: String,
    ttl: i64,
    /// Seconds a token is still accepted after its expiry (and before its start):
    /// `auth.clock_skew_seconds`.
    clock_skew: i64,
    /// The server's names: they tell trust GUNs from repository names in token requests,
    /// exactly as the trust routes read them.
    names: Arc<ServerNames>,
    throttle: Throttle,
    /// Tokens of deleted principals and reset secrets, refused before they expire.
    revocations: Arc<Revocations>,
    /// Password (and secret) checks run by logins, for `/metrics`.
    password_checks: std::sync::atomic::AtomicU64,
}

impl IdentityService {
    /// Load the token signing keys, creating the first one once (race-free across
    /// replicas) on a new registry.
    pub async fn open(
        meta: Arc<dyn MetadataStore>,
        kek: Arc<KeyEncryptionKey>,
        service: &str,
        ttl_seconds: u64,
        clock_skew_seconds: u64,
        names: Arc<ServerNames>,
        revocations: Arc<Revocations>,
    ) -> Result<Self, IdentityError> {
        let candidate = kek.seal(CURRENT_KEY_SETTING, &TokenSigner::generate_pkcs8()?)?;
        if meta.init_setting(CURRENT_KEY_SETTING, &candidate).await? == candidate {
            // Our candidate became the first key (a crash before this line only loses
            // the time, which is informational).
            meta.put_setting(CURRENT_KEY_CREATED_SETTING, now().to_string().as_bytes(), None)
                .await?;
        }
        let keys = load_signing_keys(meta.as_ref(), &kek).await?;
        Ok(Self {
            meta: meta.clone(),
            kek,
            keys: std::sync::RwLock::new(Arc::new(keys)),
            rotation: tokio::sync::Mutex::new(()),
            policy: AccessPolicy,
            service: service.to_owned(),
            ttl: i64::try_from(ttl_seconds).unwrap_or(300),
            clock_skew: i64::try_from(clock_skew_seconds).unwrap_or(300),
            names,
            throttle: Throttle::new(meta.clone()),
            revocations,
            password_checks: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// The longest a token issued now is accepted: its TTL plus the tolerated clock skew.
    /// A revocation must last that long to outlive every token it covers.
    pub fn token_lifetime(&self) -> i64 {
        self.ttl + self.clock_skew
    }

    /// Take up token revocations stored by any replica since the last call.
    pub async fn sync_revocations(&self) -> Result<(), StoreError> {
        self.revocations.sync().await
    }

    /// Forget revocations that no live token can predate.
    pub async fn prune_revocations(&self, now_ms: i64) -> Result<(), StoreError> {
        self.revocations.prune(now_ms, self.token_lifetime()).await
    }

    /// Forget failed-login counters last touched before `before` that hold no lockout.
    pub async fn prune_login_failures(&self, before: i64) -> Result<u64, StoreError> {
        self.meta.prune_login_failures(before).await
    }

    /// How many password or secret checks logins have run since start.
    pub fn password_checks(&self) -> u64 {
        self.password_checks.load(std::sync::atomic::Ordering::Relaxed)
    }
}
