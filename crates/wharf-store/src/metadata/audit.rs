//! The audit trail. Most records are written by the other stores, in the transaction

use async_trait::async_trait;

use crate::StoreResult;

/// One audit record: who did what to which target, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// The audit trail. Most records are written by the other stores, in the transaction
/// of the change they describe; these methods read it and add records of their own.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    async fn add_audit(&self, record: &AuditRecord) -> StoreResult<()>;
    /// The newest `limit` records, newest first.
    async fn list_audit(&self, limit: u32) -> StoreResult<Vec<AuditRecord>>;
}
