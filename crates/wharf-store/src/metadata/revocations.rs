//! Token revocations, shared by every replica.

use async_trait::async_trait;

use crate::StoreResult;

/// Tokens of `principal` issued at or before `revoked_at_ms` are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRevocation {
    pub id: i64,
    pub principal: String,
    pub revoked_at_ms: i64,
}

/// Token revocations, shared by every replica: each replica applies the rows after the
/// last id it saw, so a user deleted on one replica is refused on all of them.
#[async_trait]
pub trait RevocationStore: Send + Sync + 'static {
    async fn add_revocation(&self, principal: &str, revoked_at_ms: i64) -> StoreResult<()>;
    /// Rows with an id above `after_id`, ascending, at most `limit`.
    async fn revocations_after(&self, after_id: i64, limit: u32) -> StoreResult<Vec<TokenRevocation>>;
    /// Drop rows no live token can predate (older than `before_ms`); returns how many.
    async fn prune_revocations(&self, before_ms: i64) -> StoreResult<u64>;
}
