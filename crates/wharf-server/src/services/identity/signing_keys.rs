//! The access-token signing keys: the current one and the one it replaced, stored sealed
//! with the KEK, loaded at start, shown to the admin API as ids and times, and rotated in
//! one transaction guarded by the stored current key, with its audit record.

use std::sync::Arc;

use wharf_store::{MetadataStore, StoreError};

use super::verified_tokens::VerifiedTokens;
use super::{IdentityError, IdentityService};
use crate::auth::secrets::KeyEncryptionKey;
use crate::auth::token::{TokenKeySet, TokenSigner};
use crate::clock::now;
use crate::services::access::{Actor, audit_record};

/// The current access-token signing key: PKCS#8, sealed with the KEK under this name as
/// its label. The name predates rotation and is kept so existing registries open as before.
pub(super) const CURRENT_KEY_SETTING: &str = "token_signing_key";
/// The key the current one replaced at the last rotation (sealed under its own label): it
/// still verifies, never signs.
const PREVIOUS_KEY_SETTING: &str = "token_signing_key_previous";
/// When each key was made (decimal unix seconds). A key made before rotation existed has
/// no record; its time is shown as unknown.
pub(super) const CURRENT_KEY_CREATED_SETTING: &str = "token_signing_key_created_at";
const PREVIOUS_KEY_CREATED_SETTING: &str = "token_signing_key_previous_created_at";
pub(super) const TOKEN_ISSUER: &str = "wharf";
pub const ROTATE_AUDIT_ACTION: &str = "token-signing-key.rotate";

/// The signing keys in use and what they have vouched for.
pub(super) struct SigningKeys {
    pub(super) keys: TokenKeySet,
    current_created_at: Option<i64>,
    previous_created_at: Option<i64>,
    /// The current key as stored (sealed): a replica compares it with the database to
    /// learn that another replica rotated.
    current_sealed: Vec<u8>,
    /// Belongs to this set and is dropped with it, so after a rotation no token is
    /// answered from memory on the word of a set that is no longer in force: a token whose
    /// key has been retired cannot outlive it in the cache, even if its verification was
    /// still being recorded while the rotation happened.
    pub(super) verified: VerifiedTokens,
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
    /// Unix seconds (RFC 3339 on the wire); `None` for a key made before rotation existed.
    #[serde(serialize_with = "crate::clock::as_rfc3339::optional_time")]
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

pub(super) async fn load_signing_keys(
    meta: &dyn MetadataStore,
    kek: &KeyEncryptionKey,
) -> Result<SigningKeys, IdentityError> {
    let current = stored_current_key(meta, kek).await?;
    let previous = stored_key(meta, kek, PREVIOUS_KEY_SETTING, PREVIOUS_KEY_CREATED_SETTING).await?;
    Ok(SigningKeys {
        current_created_at: current.created_at,
        current_sealed: current.sealed,
        previous_created_at: previous.as_ref().and_then(|p| p.created_at),
        keys: TokenKeySet {
            current: current.signer,
            previous: previous.map(|p| p.signer),
        },
        verified: VerifiedTokens::default(),
    })
}

impl IdentityService {
    pub(super) fn signing_keys(&self) -> Arc<SigningKeys> {
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

    /// Take up a rotation another replica made: when the stored current key is not the
    /// one in use here, load the stored set. Returns whether it changed.
    pub async fn reload_signing_keys(&self) -> Result<bool, IdentityError> {
        let stored = self.meta.get_setting(CURRENT_KEY_SETTING).await?;
        if stored.as_deref() == Some(self.signing_keys().current_sealed.as_slice()) {
            return Ok(false);
        }
        // Not while this replica rotates: it installs its own new set when done.
        let _one_at_a_time = self.rotation.lock().await;
        let keys = Arc::new(load_signing_keys(self.meta.as_ref(), &self.kek).await?);
        if keys.current_sealed == self.signing_keys().current_sealed {
            return Ok(false);
        }
        tracing::info!(key_id = %keys.keys.current.key_id(), "took up a signing key rotated on another replica");
        match self.keys.write() {
            Ok(mut k) => *k = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
        Ok(true)
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
            current_sealed: new_sealed,
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
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
    use wharf_store::{AuditStore, IdentityStore, SettingsStore, SqliteMetadataStore};

    use crate::auth::token::TokenError;

    use super::*;

    fn kek() -> Arc<KeyEncryptionKey> {
        Arc::new(KeyEncryptionKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap())
    }

    async fn open(meta: &Arc<SqliteMetadataStore>, kek: &Arc<KeyEncryptionKey>) -> IdentityService {
        IdentityService::open(
            meta.clone(),
            kek.clone(),
            "wharf",
            300,
            30,
            Arc::new(crate::server_names::ServerNames::from_hosts::<&str>(&[])),
            Arc::new(crate::auth::revocations::Revocations::new(meta.clone())),
        )
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

    /// Two replicas on one database: a rotation on one is taken up by the other at its
    /// next reload — its tokens verify there, and the retired key is refused there too.
    #[tokio::test]
    async fn a_rotation_on_one_replica_is_taken_up_by_another() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(SqliteMetadataStore::open(&dir.path().join("m.db")).await.unwrap());
        let kek = kek();
        let one = open(&meta, &kek).await;
        let two = open(&meta, &kek).await;
        let audit = wharf_store::AuditRecord {
            at: 1,
            actor: "test".into(),
            action: "user.create".into(),
            target: "ann".into(),
            detail: String::new(),
        };
        let ann = meta
            .create_principal("ann", "user", Some("h"), None, 1, &audit)
            .await
            .unwrap();
        let original = two.issue(&ann, &[]).await.unwrap().token;
        assert!(!two.reload_signing_keys().await.unwrap(), "nothing rotated yet");

        one.rotate_signing_key(&owner()).await.unwrap();
        let after_first = one.issue(&ann, &[]).await.unwrap().token;
        assert!(
            two.verify(&after_first).is_err(),
            "the other replica knew the new key without a reload"
        );
        assert!(two.reload_signing_keys().await.unwrap());
        assert_eq!(two.signing_keys_view(), one.signing_keys_view());
        two.verify(&after_first).unwrap();
        two.verify(&original).unwrap();

        // A second rotation retires the original key on both replicas.
        one.rotate_signing_key(&owner()).await.unwrap();
        assert!(two.reload_signing_keys().await.unwrap());
        assert!(two.verify(&original).is_err());
        assert!(one.verify(&original).is_err());
    }

    #[tokio::test]
    async fn rotation_keeps_the_previous_key_and_refuses_older_ones_even_when_cached() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(SqliteMetadataStore::open(&dir.path().join("m.db")).await.unwrap());
        let kek = kek();
        let identity = open(&meta, &kek).await;
        let principal = meta
            .create_principal(
                "admin",
                "user",
                Some("h"),
                None,
                1,
                &wharf_store::AuditRecord {
                    at: 1,
                    actor: "test".into(),
                    action: "user.create".into(),
                    target: "admin".into(),
                    detail: String::new(),
                },
            )
            .await
            .unwrap();
        let first_keys = identity.signing_keys_view();
        assert!(first_keys.current.created_at.is_some() && first_keys.previous.is_none());
        let first = identity.issue(&principal, &[]).await.unwrap().token;
        assert_eq!(kid_of(&first), first_keys.current.key_id);
        // Verified once, so it sits in the verified-token cache from here on.
        identity.verify(&first).unwrap();

        let once = identity.rotate_signing_key(&owner()).await.unwrap();
        assert_eq!(once.keys.previous.as_ref(), Some(&first_keys.current));
        assert_eq!(once.retired_key_id, None);
        assert_eq!(identity.signing_keys_view(), once.keys);
        let second = identity.issue(&principal, &[]).await.unwrap().token;
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

        let audit: Vec<_> = meta
            .list_audit(10)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.action != "user.create")
            .collect();
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
            None,
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
