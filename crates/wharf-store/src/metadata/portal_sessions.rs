//! Portal sign-in sessions, shared by every replica.

use async_trait::async_trait;

use crate::StoreResult;

/// A live portal session. The cookie is never stored, only its SHA-256 (`key_hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSessionRecord {
    pub key_hash: Vec<u8>,
    pub principal_id: i64,
    pub principal_name: String,
    pub principal_created_at: i64,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen: i64,
}

/// How long sessions live, decided by the service and applied by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Ended after this many seconds without use.
    pub idle_seconds: i64,
    /// Ended this many seconds after sign-in whatever happens.
    pub absolute_seconds: i64,
    /// Sessions one principal may hold; signing in past it ends their oldest.
    pub per_principal: u32,
    /// `last_seen` is rewritten only when older than this, so page loads do not all write.
    pub touch_seconds: i64,
}

/// Portal sign-in sessions, shared by every replica.
#[async_trait]
pub trait PortalSessionStore: Send + Sync + 'static {
    /// Store a new session; drops expired sessions and the principal's oldest past the limit.
    async fn create_portal_session(
        &self,
        session: &PortalSessionRecord,
        limits: SessionLimits,
    ) -> StoreResult<()>;
    /// The live session with this key, its `last_seen` moved to `now`; an expired one is
    /// deleted and `None`.
    async fn resume_portal_session(
        &self,
        key_hash: &[u8],
        now: i64,
        limits: SessionLimits,
    ) -> StoreResult<Option<PortalSessionRecord>>;
    /// Sign out. False if there was no such session.
    async fn end_portal_session(&self, key_hash: &[u8]) -> StoreResult<bool>;
}
