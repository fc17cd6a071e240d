//! Access tokens that stop working before they expire: those of a principal deleted, or
//! whose secret was reset or disabled, issued before that moment. Tokens are checked
//! against this on every request — also when the verified-token memory answers — so a
//! deleted user's token is refused at once instead of living out its minutes.
//!
//! Each revocation is written to the metadata database (so every replica learns of it:
//! `sync` applies the rows it has not seen, run every second by the replica sync loop; `prune` drops old ones once a minute) and kept in
//! memory, where the per-request check reads it without a query. An entry is needed only
//! as long as a token issued before it can still be valid, so older ones are dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use wharf_store::{MetadataStore, StoreError};

/// Rows read per query while catching up.
const SYNC_BATCH: u32 = 1000;

pub struct Revocations {
    store: Arc<dyn MetadataStore>,
    /// Principal name → tokens issued at or before this time (ms) are refused.
    since: RwLock<HashMap<String, i64>>,
    /// The newest database row applied.
    seen: AtomicI64,
}

impl Revocations {
    pub fn new(store: Arc<dyn MetadataStore>) -> Self {
        Self {
            store,
            since: RwLock::new(HashMap::new()),
            seen: AtomicI64::new(0),
        }
    }

    /// Refuse `principal`'s tokens issued up to `at_ms`, here at once and on every other
    /// replica at its next sync.
    pub async fn revoke(&self, principal: &str, at_ms: i64) -> Result<(), StoreError> {
        self.apply(principal, at_ms);
        self.store.add_revocation(principal, at_ms).await
    }

    /// Apply revocations other replicas (or this one) stored since the last sync.
    pub async fn sync(&self) -> Result<(), StoreError> {
        loop {
            let rows = self
                .store
                .revocations_after(self.seen.load(Ordering::Acquire), SYNC_BATCH)
                .await?;
            for r in &rows {
                self.apply(&r.principal, r.revoked_at_ms);
                self.seen.fetch_max(r.id, Ordering::AcqRel);
            }
            if rows.len() < SYNC_BATCH as usize {
                return Ok(());
            }
        }
    }

    /// Forget revocations no token can outlive any more (`max_token_lifetime` seconds),
    /// here and in the database (housekeeping, not every sync: it writes).
    pub async fn prune(&self, now_ms: i64, max_token_lifetime: i64) -> Result<(), StoreError> {
        let horizon = now_ms - max_token_lifetime * 1000;
        if let Ok(mut since) = self.since.write() {
            since.retain(|_, t| *t >= horizon);
        }
        self.store.prune_revocations(horizon).await?;
        Ok(())
    }

    fn apply(&self, principal: &str, at_ms: i64) {
        if let Ok(mut since) = self.since.write() {
            let t = since.entry(principal.to_owned()).or_insert(at_ms);
            *t = (*t).max(at_ms);
        }
    }

    /// Whether a token of `principal` issued at `issued_at_ms` was revoked.
    pub fn is_revoked(&self, principal: &str, issued_at: i64) -> bool {
        self.since
            .read()
            .ok()
            .and_then(|s| s.get(principal).copied())
            .is_some_and(|at| issued_at <= at)
    }
}

#[cfg(test)]
mod tests {
    use wharf_store::SqliteMetadataStore;

    use super::*;

    async fn store() -> (tempfile::TempDir, Arc<dyn MetadataStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteMetadataStore::open(&dir.path().join("m.db")).await.unwrap());
        (dir, store)
    }

    #[tokio::test]
    async fn tokens_issued_before_a_revocation_are_refused_later_ones_pass() {
        let (_d, store) = store().await;
        let r = Revocations::new(store);
        assert!(!r.is_revoked("alice", 100));
        r.revoke("alice", 100_000).await.unwrap();
        assert!(r.is_revoked("alice", 99_999) && r.is_revoked("alice", 100_000));
        // The same second, a millisecond later: a fresh login after the change.
        assert!(!r.is_revoked("alice", 100_001));
        assert!(!r.is_revoked("bob", 50));
        // Once no token from before it can be valid, the entry goes.
        r.revoke("bob", 500_000).await.unwrap();
        r.prune(500_000, 360).await.unwrap();
        assert!(!r.is_revoked("alice", 99_999));
        assert!(r.is_revoked("bob", 500_000));
    }

    /// A revocation made on one replica reaches another at its next sync, and not before.
    #[tokio::test]
    async fn another_replica_learns_revocations_at_its_sync() {
        let (_d, store) = store().await;
        let one = Revocations::new(store.clone());
        let two = Revocations::new(store);
        one.revoke("carol", 1_000_000).await.unwrap();
        assert!(!two.is_revoked("carol", 999_000));
        two.sync().await.unwrap();
        assert!(two.is_revoked("carol", 999_000));
        assert!(!two.is_revoked("carol", 1_000_001));
    }
}
