//! The timestamp and snapshot keys the server holds for each repository: generated on
//! demand, stored sealed with the KEK, served at `GET <role>.key`, and rotated through
//! pending keys at `POST <role>.key`.

use std::collections::BTreeMap;

use wharf_store::{TrustFile, TrustKeyRecord};
use wharf_tuf::metadata::{ROOT, SNAPSHOT, TIMESTAMP};
use wharf_tuf::{PrivateKey, Root, Signed, Signer};

use super::{TrustError, TrustResult, TrustService, audit};
use crate::clock::now;
use crate::services::access::Actor;

impl TrustService {
    fn key_label(repository: &str, key_id: &str) -> String {
        format!("trust-key:{repository}:{key_id}")
    }

    pub(super) async fn server_keys(&self, repository: &str) -> TrustResult<Vec<PrivateKey>> {
        let mut keys = Vec::new();
        for rec in self.meta.trust_keys(repository).await? {
            keys.push(self.open_key(repository, &rec)?);
        }
        Ok(keys)
    }

    fn open_key(&self, repository: &str, rec: &TrustKeyRecord) -> TrustResult<PrivateKey> {
        let raw = self
            .kek
            .open(&Self::key_label(repository, &rec.key_id), &rec.sealed_key)
            .map_err(|e| TrustError::Internal(format!("cannot unseal trust key {}: {e}", rec.key_id)))?;
        PrivateKey::from_raw(&rec.keytype, &raw).map_err(|e| TrustError::Internal(e.to_string()))
    }

    fn new_key_record(&self, repository: &str, role: &str) -> TrustResult<TrustKeyRecord> {
        let key = wharf_tuf::generate_server_key().map_err(|e| TrustError::Internal(e.to_string()))?;
        let key_id = key.key_id();
        let sealed = self
            .kek
            .seal(&Self::key_label(repository, &key_id), &key.raw_secret())
            .map_err(|e| TrustError::Internal(e.to_string()))?;
        Ok(TrustKeyRecord {
            role: role.to_owned(),
            key_id,
            keytype: key.public_key().keytype.clone(),
            sealed_key: sealed,
            created_at: now(),
        })
    }

    fn active_key_ids(current: &BTreeMap<String, TrustFile>, role: &str) -> Option<Vec<String>> {
        let root = current.get(ROOT)?;
        let root = Signed::<Root>::parse(root.content.clone()).ok()?;
        Some(
            root.signed
                .roles
                .get(role)
                .map(|r| r.keyids.clone())
                .unwrap_or_default(),
        )
    }

    fn key_role(role: &str) -> TrustResult<&'static str> {
        match role {
            TIMESTAMP => Ok(TIMESTAMP),
            SNAPSHOT => Ok(SNAPSHOT),
            _ => Err(TrustError::NotFound),
        }
    }

    /// `GET <role>.key`: the key the server signs `role` with — the root's active key if
    /// the server holds it, else one stable pending key (the same on every call).
    pub async fn get_key(&self, repository: &str, role: &str) -> TrustResult<Vec<u8>> {
        let role = Self::key_role(role)?;
        let current = self.current_map(repository).await?;
        let held = self.meta.trust_keys(repository).await?;
        let active = Self::active_key_ids(&current, role);
        if let Some(active) = &active
            && let Some(id) = active.iter().find(|id| held.iter().any(|k| &k.key_id == *id))
            && let Some(rec) = held.iter().find(|k| &k.key_id == id)
        {
            return Ok(self
                .open_key(repository, rec)?
                .public_key()
                .to_key_endpoint_json());
        }
        let candidate = self.new_key_record(repository, role)?;
        let rec = self
            .meta
            .trust_key_create(repository, &candidate, active.as_deref(), None)
            .await?;
        Ok(self
            .open_key(repository, &rec)?
            .public_key()
            .to_key_endpoint_json())
    }

    /// `POST <role>.key`: a pending key for rotation (the existing pending one if the
    /// client asked before and has not used it yet, like notary-signer).
    pub async fn rotate_key(&self, repository: &str, role: &str, actor: &Actor) -> TrustResult<Vec<u8>> {
        let role = Self::key_role(role)?;
        self.require_enabled().await?;
        let current = self.current_map(repository).await?;
        let active = Self::active_key_ids(&current, role).unwrap_or_default();
        let candidate = self.new_key_record(repository, role)?;
        let record = audit(
            actor,
            "trust.key.create",
            repository,
            &format!("{role} key {}", candidate.key_id),
        );
        let rec = self
            .meta
            .trust_key_create(repository, &candidate, Some(&active), Some(&record))
            .await?;
        Ok(self
            .open_key(repository, &rec)?
            .public_key()
            .to_key_endpoint_json())
    }
}
