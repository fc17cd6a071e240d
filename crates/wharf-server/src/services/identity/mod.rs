//! Principals and credentials: password and refresh-token logins, access-token issuing
//! and verifying, rotation of the token signing key, and the bootstrap owner on first
//! start.

mod error;
mod verified_tokens;

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use sha2::{Digest as _, Sha256};
use wharf_store::{MetadataStore, Principal, StoreError};

use crate::auth::access::token_action_perms;
use crate::auth::password::{hash_password, verify_password};
use crate::auth::secrets::{KeyEncryptionKey, random_bytes, write_private_file};
use crate::auth::throttle::{ADDRESS_FREE_FAILURES, PRINCIPAL_FREE_FAILURES, Throttle};
use crate::auth::token::{Claims, TokenError, TokenKeySet, TokenSigner};
use crate::auth::{AccessEntry, AccessPolicy, Caller, Grants, Perms, Role, Scope};
use crate::clock::now;
use crate::services::access::{Actor, audit_record};
use crate::services::portal_sessions::SignedIn;
use verified_tokens::VerifiedTokens;

pub use error::IdentityError;

/// The current access-token signing key: PKCS#8, sealed with the KEK under this name as
/// its label. The name predates rotation and is kept so existing registries open as before.
const CURRENT_KEY_SETTING: &str = "token_signing_key";
/// The key the current one replaced at the last rotation (sealed under its own label): it
/// still verifies, never signs.
const PREVIOUS_KEY_SETTING: &str = "token_signing_key_previous";
/// When each key was made (decimal unix seconds). A key made before rotation existed has
/// no record; its time is shown as unknown.
const CURRENT_KEY_CREATED_SETTING: &str = "token_signing_key_created_at";
const PREVIOUS_KEY_CREATED_SETTING: &str = "token_signing_key_previous_created_at";
const TOKEN_ISSUER: &str = "wharf";
pub const ROTATE_AUDIT_ACTION: &str = "token-signing-key.rotate";
const REFRESH_PREFIX: &str = "wharf_rt_";
/// Name of the owner created on first start.
pub const BOOTSTRAP_OWNER: &str = "admin";

pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
    pub issued_at: i64,
}

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

/// The signing keys in use and what they have vouched for.
struct SigningKeys {
    keys: TokenKeySet,
    current_created_at: Option<i64>,
    previous_created_at: Option<i64>,
    /// Belongs to this set and is dropped with it, so after a rotation no token is
    /// answered from memory on the word of a set that is no longer in force: a token whose
    /// key has been retired cannot outlive it in the cache, even if its verification was
    /// still being recorded while the rotation happened.
    verified: VerifiedTokens,
}

impl SigningKeys {
    fn view(&self) -> SigningKeysView {
        SigningKeysView {
            current: SigningKeyView {
                key_id: self.keys.current.key_id().to_owned(),
                created_at: self.current_created_at,
            },
            previous: self.keys.previous.as_ref().map(|k| SigningKeyView {
                key_id: k.key_id().to_owned(),
                created_at: self.previous_created_at,
            }),
        }
    }
}

/// One signing key as the admin API shows it (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SigningKeyView {
    /// The JWT header `kid` of the tokens this key signs.
    pub key_id: String,
    /// Unix seconds; `None` for a key made before rotation existed.
    pub created_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SigningKeysView {
    pub current: SigningKeyView,
    pub previous: Option<SigningKeyView>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SigningKeyRotation {
    #[serde(flatten)]
    pub keys: SigningKeysView,
    /// The key dropped by this rotation: tokens it signed are refused from now on.
    pub retired_key_id: Option<String>,
}

/// One key as stored: the sealed value (the guard of a rotation), the key, its time.
struct StoredKey {
    sealed: Vec<u8>,
    pkcs8: Vec<u8>,
    signer: TokenSigner,
    created_at: Option<i64>,
}

async fn stored_key(
    meta: &dyn MetadataStore,
    kek: &KeyEncryptionKey,
    setting: &str,
    created_setting: &str,
) -> Result<Option<StoredKey>, IdentityError> {
    let Some(sealed) = meta.get_setting(setting).await? else {
        return Ok(None);
    };
    let pkcs8 = kek.open(setting, &sealed)?;
    let signer = TokenSigner::from_pkcs8(&pkcs8, TOKEN_ISSUER)?;
    // Only informational: an unreadable time is shown as unknown rather than failing.
    let created_at = meta
        .get_setting(created_setting)
        .await?
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.parse().ok());
    Ok(Some(StoredKey {
        sealed,
        pkcs8,
        signer,
        created_at,
    }))
}

/// The current key, which `open` always creates first.
async fn stored_current_key(
    meta: &dyn MetadataStore,
    kek: &KeyEncryptionKey,
) -> Result<StoredKey, IdentityError> {
    stored_key(meta, kek, CURRENT_KEY_SETTING, CURRENT_KEY_CREATED_SETTING)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("setting {CURRENT_KEY_SETTING} is missing")).into())
}

async fn load_signing_keys(
    meta: &dyn MetadataStore,
    kek: &KeyEncryptionKey,
) -> Result<SigningKeys, IdentityError> {
    let current = stored_current_key(meta, kek).await?;
    let previous = stored_key(meta, kek, PREVIOUS_KEY_SETTING, PREVIOUS_KEY_CREATED_SETTING).await?;
    Ok(SigningKeys {
        current_created_at: current.created_at,
        previous_created_at: previous.as_ref().and_then(|p| p.created_at),
        keys: TokenKeySet {
            current: current.signer,
            previous: previous.map(|p| p.signer),
        },
        verified: VerifiedTokens::default(),
    })
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

    fn signing_keys(&self) -> Arc<SigningKeys> {
        // The lock only guards an `Arc` assignment, which cannot panic half-way; a
        // poisoned lock still holds a whole set.
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The current and previous signing key ids and creation times.
    pub fn signing_keys_view(&self) -> SigningKeysView {
        self.signing_keys().view()
    }

    /// Make a new signing key current; the current one becomes the previous one (its
    /// tokens keep working until they expire) and the previous one is dropped (its tokens
    /// are refused from now on). Keys and audit record are written in one transaction,
    /// guarded by the stored current key, so two replicas rotating at once cannot both
    /// win. Refresh tokens are not signed and are not affected.
    pub async fn rotate_signing_key(&self, actor: &Actor) -> Result<SigningKeyRotation, IdentityError> {
        let _one_at_a_time = self.rotation.lock().await;
        let meta = self.meta.as_ref();
        // The stored keys, not the in-memory set, are what this rotation replaces.
        let current = stored_current_key(meta, &self.kek).await?;
        let retired = stored_key(
            meta,
            &self.kek,
            PREVIOUS_KEY_SETTING,
            PREVIOUS_KEY_CREATED_SETTING,
        )
        .await?;
        let new_pkcs8 = TokenSigner::generate_pkcs8()?;
        let new_signer = TokenSigner::from_pkcs8(&new_pkcs8, TOKEN_ISSUER)?;
        let t = now();
        let new_sealed = self.kek.seal(CURRENT_KEY_SETTING, &new_pkcs8)?;
        let created = t.to_string();
        // Re-sealed under the previous key's own label: a sealed value only opens as what
        // it was sealed for.
        let previous_sealed = self.kek.seal(PREVIOUS_KEY_SETTING, &current.pkcs8)?;
        let previous_created = current.created_at.map(|c| c.to_string());
        let changes: [(&str, Option<&[u8]>); 4] = [
            (CURRENT_KEY_SETTING, Some(&new_sealed)),
            (CURRENT_KEY_CREATED_SETTING, Some(created.as_bytes())),
            (PREVIOUS_KEY_SETTING, Some(&previous_sealed)),
            (
                PREVIOUS_KEY_CREATED_SETTING,
                previous_created.as_deref().map(str::as_bytes),
            ),
        ];
        let retired_key_id = retired.as_ref().map(|r| r.signer.key_id().to_owned());
        let detail = format!(
            "previous key {}; retired key {}",
            current.signer.key_id(),
            retired_key_id.as_deref().unwrap_or("none")
        );
        let audit = audit_record(actor, ROTATE_AUDIT_ACTION, new_signer.key_id(), &detail, t);
        if !self
            .meta
            .update_settings_if(CURRENT_KEY_SETTING, &current.sealed, &changes, &audit)
            .await?
        {
            return Err(IdentityError::KeyRotatedConcurrently);
        }
        let keys = Arc::new(SigningKeys {
            keys: TokenKeySet {
                current: new_signer,
                previous: Some(current.signer),
            },
            current_created_at: Some(t),
            previous_created_at: current.created_at,
            verified: VerifiedTokens::default(),
        });
        let view = keys.view();
        match self.keys.write() {
            Ok(mut k) => *k = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
        tracing::info!(
            actor = %actor.name,
            key_id = %view.current.key_id,
            previous_key_id = view.previous.as_ref().map(|p| p.key_id.as_str()).unwrap_or(""),
            retired_key_id = retired_key_id.as_deref().unwrap_or(""),
            "rotated the token signing key"
        );
        Ok(SigningKeyRotation {
            keys: view,
            retired_key_id,
        })
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

    /// Everything `principal` may do, from its role assignments (or its token scope map).
    /// Read at every token request, so a change applies from the next token on.
    pub async fn grants_of(&self, principal: &Principal) -> Result<Grants, IdentityError> {
        match principal.kind.as_str() {
            crate::services::access::KIND_ADMIN_ACCOUNT => Ok(Grants::admin_account()),
            crate::services::access::KIND_TOKEN => {
                let mut entries: Vec<(Scope, Perms)> = Vec::new();
                for s in self.meta.token_scopes(principal.id).await? {
                    // Rows were validated on the way in; anything else grants nothing.
                    if let (Some(scope), Some(p)) = (
                        Scope::parse_repository(&s.repository),
                        token_action_perms(&s.action),
                    ) {
                        entries.push((scope, p));
                    }
                }
                Ok(Grants::new(entries))
            }
            _ => {
                let mut entries = Vec::new();
                for a in self.meta.list_assignments(Some(principal.id)).await? {
                    if let (Some(role), Some(scope)) = (Role::parse(&a.role), Scope::parse(&a.scope)) {
                        entries.push((scope, role.perms()));
                    }
                }
                Ok(Grants::new(entries))
            }
        }
    }

    /// Grants of the principal a verified token names (catalog filtering); a principal
    /// deleted since gets nothing.
    pub async fn grants_of_name(&self, name: &str) -> Result<Grants, IdentityError> {
        match self.meta.find_principal(name).await? {
            Some(p) if p.name == name => self.grants_of(&p).await,
            _ => Ok(Grants::default()),
        }
    }

    /// Who a portal session belongs to (gone if the principal was deleted since) and
    /// what they may do: their grants, and whether the access policy would give them
    /// `registry:admin:*` — the same decision a token request gets.
    pub async fn portal_viewer(
        &self,
        signed_in: &SignedIn,
    ) -> Result<Option<(Principal, Grants, bool)>, IdentityError> {
        let principal = self.meta.principal_by_id(signed_in.id).await?;
        // The same id may now name a principal created after the signed-in one was deleted.
        let Some(principal) =
            principal.filter(|p| p.name == signed_in.name && p.created_at == signed_in.created_at)
        else {
            return Ok(None);
        };
        let grants = self.grants_of(&principal).await?;
        let admin_scope = AccessEntry {
            kind: "registry".into(),
            name: "admin".into(),
            actions: vec!["*".into()],
        };
        let admin = !self.policy.grant(&grants, &[admin_scope], &[]).is_empty();
        Ok(Some((principal, grants, admin)))
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

    /// Sign a token carrying what the policy grants `principal` of `requested`.
    /// `request_host` is the host the client used (trust GUNs start with it).
    pub async fn issue(
        &self,
        principal: &Principal,
        requested: &[AccessEntry],
        request_host: &str,
    ) -> Result<IssuedToken, IdentityError> {
        let grants = self.grants_of(principal).await?;
        let mut hosts = self.public_hosts.clone();
        hosts.push(request_host.to_owned());
        let access = self.policy.grant(&grants, requested, &hosts);
        let t = now();
        let jti = B64URL.encode(random_bytes::<12>()?);
        let claims = Claims {
            iss: TOKEN_ISSUER.to_owned(),
            sub: principal.name.clone(),
            aud: self.service.clone(),
            exp: t + self.ttl,
            nbf: t,
            iat: t,
            jti,
            access,
        };
        Ok(IssuedToken {
            token: self.signing_keys().keys.sign(&claims)?,
            expires_in: self.ttl,
            issued_at: t,
        })
    }

    pub fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        let keys = self.signing_keys();
        let t = now();
        if let Some(caller) = keys.verified.get(token, t) {
            return Ok(caller);
        }
        let claims = keys.keys.verify(token, &self.service, t)?;
        let caller = Caller {
            principal: claims.sub,
            access: claims.access,
        };
        // Remembered until the moment `verify` itself would call it expired, or until the
        // key set changes.
        keys.verified
            .put(token, &caller, claims.exp + crate::auth::token::LEEWAY_SECONDS);
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use wharf_store::SqliteMetadataStore;

    use super::*;

    fn kek() -> Arc<KeyEncryptionKey> {
        Arc::new(KeyEncryptionKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap())
    }

    async fn open(meta: &Arc<SqliteMetadataStore>, kek: &Arc<KeyEncryptionKey>) -> IdentityService {
        IdentityService::open(meta.clone(), kek.clone(), "wharf", 300, Vec::new())
            .await
            .unwrap()
    }

    fn owner() -> Actor {
        Actor {
            name: "admin".into(),
            from: Some([127, 0, 0, 1].into()),
        }
    }

    fn kid_of(token: &str) -> String {
        let header = B64URL.decode(token.split('.').next().unwrap()).unwrap();
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        header["kid"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn rotation_keeps_the_previous_key_and_refuses_older_ones_even_when_cached() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(SqliteMetadataStore::open(&dir.path().join("m.db")).await.unwrap());
        let kek = kek();
        let identity = open(&meta, &kek).await;
        let principal = meta
            .create_principal("admin", "user", Some("h"), None, 1)
            .await
            .unwrap();
        let first_keys = identity.signing_keys_view();
        assert!(first_keys.current.created_at.is_some() && first_keys.previous.is_none());
        let first = identity.issue(&principal, &[], "localhost").await.unwrap().token;
        assert_eq!(kid_of(&first), first_keys.current.key_id);
        // Verified once, so it sits in the verified-token cache from here on.
        identity.verify(&first).unwrap();

        let once = identity.rotate_signing_key(&owner()).await.unwrap();
        assert_eq!(once.keys.previous.as_ref(), Some(&first_keys.current));
        assert_eq!(once.retired_key_id, None);
        assert_eq!(identity.signing_keys_view(), once.keys);
        let second = identity.issue(&principal, &[], "localhost").await.unwrap().token;
        assert_eq!(kid_of(&second), once.keys.current.key_id);
        identity.verify(&first).unwrap();
        identity.verify(&second).unwrap();

        let twice = identity.rotate_signing_key(&owner()).await.unwrap();
        assert_eq!(
            twice.retired_key_id.as_deref(),
            Some(first_keys.current.key_id.as_str())
        );
        assert_eq!(twice.keys.previous.as_ref(), Some(&once.keys.current));
        assert_eq!(identity.verify(&first).unwrap_err(), TokenError::BadSignature);
        identity.verify(&second).unwrap();

        let audit = meta.list_audit(10).await.unwrap();
        assert_eq!(audit.len(), 2);
        assert_eq!(audit[0].action, ROTATE_AUDIT_ACTION);
        assert_eq!(audit[0].actor, "admin");
        assert_eq!(audit[0].target, twice.keys.current.key_id);
        assert_eq!(
            audit[0].detail,
            format!(
                "from 127.0.0.1; previous key {}; retired key {}",
                once.keys.current.key_id, first_keys.current.key_id
            )
        );

        // A restart loads the same two keys: what was valid stays valid, and no more.
        drop(identity);
        let restarted = open(&meta, &kek).await;
        assert_eq!(restarted.signing_keys_view(), twice.keys);
        restarted.verify(&second).unwrap();
        assert_eq!(restarted.verify(&first).unwrap_err(), TokenError::BadSignature);
    }

    #[tokio::test]
    async fn a_key_from_before_rotation_existed_is_kept_with_an_unknown_time() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(SqliteMetadataStore::open(&dir.path().join("m.db")).await.unwrap());
        let kek = kek();
        let legacy = TokenSigner::generate_pkcs8().unwrap();
        meta.put_setting(
            CURRENT_KEY_SETTING,
            &kek.seal(CURRENT_KEY_SETTING, &legacy).unwrap(),
        )
        .await
        .unwrap();
        let legacy_id = TokenSigner::from_pkcs8(&legacy, TOKEN_ISSUER)
            .unwrap()
            .key_id()
            .to_owned();
        let identity = open(&meta, &kek).await;
        let keys = identity.signing_keys_view();
        assert_eq!(
            keys.current,
            SigningKeyView {
                key_id: legacy_id.clone(),
                created_at: None
            }
        );
        let rotated = identity.rotate_signing_key(&owner()).await.unwrap();
        assert_eq!(
            rotated.keys.previous,
            Some(SigningKeyView {
                key_id: legacy_id,
                created_at: None
            })
        );
        assert!(rotated.keys.current.created_at.is_some());
        assert_eq!(open(&meta, &kek).await.signing_keys_view(), rotated.keys);
    }
}
