//! Logins: by password or client secret (with failed-login throttling), by refresh token,
//! the refresh tokens themselves, and the owner created on first start.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::{Digest as _, Sha256};
use wharf_store::{AuditRecord, Principal, StoreError};

use super::{IdentityError, IdentityService};
use crate::auth::password::{hash_password, verify_password};
use crate::auth::secrets::{random_bytes, random_token, write_private_file};
use crate::auth::throttle::{ADDRESS_FREE_FAILURES, PRINCIPAL_FREE_FAILURES, ThrottleRefusal};
use crate::auth::{Role, Scope};
use crate::clock::now;

const REFRESH_PREFIX: &str = "wharf_rt_";
/// Name of the owner created on first start.
pub const BOOTSTRAP_OWNER: &str = "admin";

fn refresh_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl IdentityService {
    /// First start: create the owner with `WHARF_ADMIN_PASSWORD`, or a generated password
    /// written once to `<data>/initial-admin-password` (0600). Returns the generated one.
    pub async fn bootstrap_owner(
        &self,
        configured_password: Option<String>,
        data_dir: &Path,
    ) -> Result<Option<String>, IdentityError> {
        if self.meta.count_principals().await? > 0 {
            return Ok(None);
        }
        let (password, generated) = match configured_password.filter(|p| !p.is_empty()) {
            Some(p) => (p, false),
            None => (B64URL.encode(random_bytes::<18>()?), true),
        };
        let hash = hash_password(password.clone()).await?;
        let t = now();
        let record = AuditRecord {
            at: t,
            actor: "wharf".into(),
            action: "user.create".into(),
            target: BOOTSTRAP_OWNER.into(),
            detail: format!("bootstrap owner; {} on registry", Role::Owner.name()),
        };
        match self
            .meta
            .create_bootstrap_owner(
                BOOTSTRAP_OWNER,
                &hash,
                Role::Owner.name(),
                &Scope::Registry.to_string(),
                t,
                &record,
            )
            .await
        {
            Ok(_) => {}
            // Another replica bootstrapped first.
            Err(StoreError::Conflict(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        if !generated {
            return Ok(None);
        }
        let file = data_dir.join("initial-admin-password");
        write_private_file(&file, format!("{password}\n").as_bytes())
            .map_err(|e| IdentityError::File(file.display().to_string(), e))?;
        Ok(Some(password))
    }

    /// Check a name (or service-principal client id) and its password or secret.
    /// Failures count per principal name and per source address; past a few, logins are
    /// refused for an exponentially growing time without checking the password at all.
    pub async fn login_password(
        &self,
        name: &str,
        password: &str,
        from: Option<std::net::IpAddr>,
    ) -> Result<Principal, IdentityError> {
        let principal_key = format!("p:{name}");
        let mut keys = vec![(principal_key.clone(), PRINCIPAL_FREE_FAILURES)];
        if let Some(ip) = from {
            keys.push((format!("a:{ip}"), ADDRESS_FREE_FAILURES));
        }
        // Waits while earlier attempts on the same name or address are being checked,
        // so parallel guesses meet the lockout they cause instead of racing past it.
        let attempt = self
            .throttle
            .begin(&keys)
            .await
            .map_err(|refusal| match refusal {
                ThrottleRefusal::Locked(seconds) => IdentityError::LockedOut(seconds),
                ThrottleRefusal::Store(e) => IdentityError::Store(e),
            })?;
        let principal = self.meta.find_principal(name).await?;
        let hash = principal.as_ref().and_then(|p| p.password_hash.clone());
        // Argon2 verification compares in constant time; a missing principal or a
        // disabled credential is checked against a decoy so timing tells nothing.
        self.password_checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !verify_password(password.to_owned(), hash).await {
            attempt.failed(now()).await?;
            return Err(IdentityError::InvalidCredentials);
        }
        attempt.succeeded(&principal_key).await?;
        principal.ok_or(IdentityError::InvalidCredentials)
    }

    pub async fn login_refresh(&self, token: &str) -> Result<Principal, IdentityError> {
        if !token.starts_with(REFRESH_PREFIX) {
            return Err(IdentityError::InvalidRefreshToken);
        }
        let id = self.meta.use_refresh_token(&refresh_hash(token), now()).await?;
        let id = id.ok_or(IdentityError::InvalidRefreshToken)?;
        self.meta
            .principal_by_id(id)
            .await?
            .ok_or(IdentityError::InvalidRefreshToken)
    }

    /// A new long-lived refresh token; only its hash is stored.
    pub async fn new_refresh_token(&self, principal: &Principal) -> Result<String, IdentityError> {
        let token = format!("{REFRESH_PREFIX}{}", random_token()?);
        self.meta
            .store_refresh_token(&refresh_hash(&token), principal.id, now())
            .await?;
        Ok(token)
    }
}
