//! Small opaque values (server keys, policies) by key.

use async_trait::async_trait;

use crate::StoreResult;
use crate::metadata::AuditRecord;

/// Small opaque values (server keys, policies) by key.
#[async_trait]
pub trait SettingsStore: Send + Sync + 'static {
    // Settings (server keys, policies): small opaque values.
    async fn get_setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Insert only if absent; returns the value now stored (ours or a concurrent winner's).
    async fn init_setting(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>>;
    /// Set `key`; with `audit`, the record is written in the same transaction.
    async fn put_setting(&self, key: &str, value: &[u8], audit: Option<&AuditRecord>) -> StoreResult<()>;
    /// Apply `changes` (`None` deletes the key) and the audit record in one transaction,
    /// but only while `guard_key` still holds `guard_value`: a compare-and-swap, so two
    /// writers working from the same stored state cannot both win. Returns whether the
    /// changes were written; on `false` nothing was.
    async fn update_settings_if(
        &self,
        guard_key: &str,
        guard_value: &[u8],
        changes: &[(&str, Option<&[u8]>)],
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
}
