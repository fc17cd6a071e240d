//! Principals and credentials: password and refresh-token logins, access-token issuing
//! and verifying, rotation of the token signing key, and the bootstrap owner on first
//! start.

mod error;
mod grants;
mod signing_keys;
mod tokens;
mod verified_tokens;

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::{Digest as _, Sha256};
use wharf_store::{MetadataStore, Principal, StoreError};

use crate::auth::password::{hash_password, verify_password};
use crate::auth::secrets::{KeyEncryptionKey, random_bytes, write_private_file};
use crate::auth::throttle::{ADDRESS_FREE_FAILURES, PRINCIPAL_FREE_FAILURES, Throttle};
use crate::auth::token::TokenSigner;
use crate::auth::{AccessPolicy, Role, Scope};
use crate::clock::now;
use signing_keys::{CURRENT_KEY_CREATED_SETTING, CURRENT_KEY_SETTING, SigningKeys, load_signing_keys};

pub use error::IdentityError;
pub use signing_keys::{ROTATE_AUDIT_ACTION, SigningKeyRotation, SigningKeyView, SigningKeysView};
pub use tokens::IssuedToken;

const REFRESH_PREFIX: &str = "wharf_rt_";
/// Name of the owner created on first start.
pub const BOOTSTRAP_OWNER: &str = "admin";

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
    /// Names clients reach this registry by (configured); with the request's own host
    /// they tell trust GUNs from repository names.
    public_hosts: Vec<String>,
    throttle: Throttle,
}

fn refresh_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl IdentityService {
    /// Load the token signing keys, creating the first one once (race-free across
    /// replicas) on a new registry.
    pub async fn open(
        meta: Arc<dyn MetadataStore>,
        kek: Arc<KeyEncryptionKey>,
        service: &str,
        ttl_seconds: u64,
        public_hosts: Vec<String>,
    ) -> Result<Self, IdentityError> {
        let candidate = kek.seal(CURRENT_KEY_SETTING, &TokenSigner::generate_pkcs8()?)?;
        if meta.init_setting(CURRENT_KEY_SETTING, &candidate).await? == candidate {
            // Our candidate became the first key (a crash before this line only loses
            // the time, which is informational).
            meta.put_setting(CURRENT_KEY_CREATED_SETTING, now().to_string().as_bytes())
                .await?;
        }
        let keys = load_signing_keys(meta.as_ref(), &kek).await?;
        Ok(Self {
            meta,
            kek,
            keys: std::sync::RwLock::new(Arc::new(keys)),
            rotation: tokio::sync::Mutex::new(()),
            policy: AccessPolicy,
            service: service.to_owned(),
            ttl: i64::try_from(ttl_seconds).unwrap_or(300),
            public_hosts,
            throttle: Throttle::default(),
        })
    }

    pub fn service(&self) -> &str {
        &self.service
    }

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
        match self
            .meta
            .create_principal(BOOTSTRAP_OWNER, "user", Some(&hash), None, now())
            .await
        {
            Ok(p) => {
                self.meta
                    .create_assignment(p.id, Role::Owner.name(), &Scope::Registry.to_string(), now())
                    .await?;
            }
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
        let t = now();
        if let Some(left) = self.throttle.locked(&keys, t) {
            return Err(IdentityError::LockedOut(left));
        }
        let principal = self.meta.find_principal(name).await?;
        let hash = principal.as_ref().and_then(|p| p.password_hash.clone());
        // Argon2 verification compares in constant time; a missing principal or a
        // disabled credential is checked against a decoy so timing tells nothing.
        if !verify_password(password.to_owned(), hash).await {
            self.throttle.failed(&keys, t);
            return Err(IdentityError::InvalidCredentials);
        }
        self.throttle.succeeded(&principal_key);
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
        let token = format!("{REFRESH_PREFIX}{}", B64URL.encode(random_bytes::<32>()?));
        self.meta
            .store_refresh_token(&refresh_hash(&token), principal.id, now())
            .await?;
        Ok(token)
    }
}
