//! Failed-login counters and lockouts, shared by every replica.

use async_trait::async_trait;

use crate::StoreResult;

/// Where one throttle key stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailures {
    pub key: String,
    pub failures: u32,
    /// Unix seconds; no attempt before then.
    pub locked_until: i64,
}

/// Failed-login counters and lockouts, shared by every replica. The lockout policy is
/// the service's: the store counts atomically and keeps the longest lock it was given.
#[async_trait]
pub trait LoginFailureStore: Send + Sync + 'static {
    /// The stored state of those of `keys` that have failures.
    async fn login_failures(&self, keys: &[String]) -> StoreResult<Vec<LoginFailures>>;
    /// Count one more failure for `key` and return the new count (atomic across replicas).
    async fn add_login_failure(&self, key: &str, now: i64) -> StoreResult<u32>;
    /// Lock `key` until `until`, unless it is already locked longer.
    async fn lock_login(&self, key: &str, until: i64) -> StoreResult<()>;
    /// A successful login: forget `key`'s failures.
    async fn clear_login_failures(&self, key: &str) -> StoreResult<()>;
    /// Forget keys neither locked nor failed since `before`; returns how many.
    async fn prune_login_failures(&self, before: i64) -> StoreResult<u64>;
}
