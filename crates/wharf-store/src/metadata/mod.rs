//! The metadata store: everything that is not blob bytes, with real transactions.
//! One small trait per aggregate, each implemented once per database (SQLite, PostgreSQL);
//! `MetadataStore` is all of them together, what a server holds. Times are unix seconds
//! supplied by the caller, so services own the clock.

mod audit;
mod garbage;
mod identity;
mod locks;
mod login_failures;
mod portal_sessions;
mod registry;
mod revocations;
mod settings;
mod trust;
mod uploads;
mod usage;

pub use audit::{AuditRecord, AuditStore};
pub use garbage::{
    BlobBatch, GC_LEASE, GarbageBlob, GarbageLink, GarbageStore, GcLease, LinkBatch, LinkCursor,
    RETENTION_LEASE,
};
pub use identity::{IdentityStore, KeptAssignment, Principal, RoleAssignment, TokenScope};
pub use locks::{Lock, LockChange, LockChangeOutcome, LockStore};
pub(crate) use locks::{LockScope, lock_from_row, next_lock, tag_key};
pub use login_failures::{LoginFailureStore, LoginFailures};
pub use portal_sessions::{PortalSessionRecord, PortalSessionStore, SessionLimits};
pub use registry::{
    BlobLinkOutcome, BlobReservation, DeleteOutcome, ManifestPutOutcome, ManifestRecord, NewManifest,
    ReferrerRecord, RepositoryStore, TagDetail, TrustCheck, UntaggedManifest,
};
pub use revocations::{RevocationStore, TokenRevocation};
pub use settings::SettingsStore;
pub use trust::{NewTrustFile, TrustChange, TrustFile, TrustKeyRecord, TrustStore};
pub use uploads::{UploadSession, UploadStore};
pub use usage::{RegistryUsage, RepositoryUsage, ScopeUsage, UsageScope, UsageStore};
pub(crate) use usage::{
    UsageSelection, registry_usage_from_row, registry_usage_sql, repository_usage_from_row,
    repository_usage_sql, scope_usage_from_row, scope_usage_query,
};

/// Every aggregate of one database.
pub trait MetadataStore:
    RepositoryStore
    + LockStore
    + UploadStore
    + IdentityStore
    + SettingsStore
    + TrustStore
    + AuditStore
    + PortalSessionStore
    + LoginFailureStore
    + RevocationStore
    + GarbageStore
    + UsageStore
{
}

impl<T> MetadataStore for T where
    T: RepositoryStore
        + LockStore
        + UploadStore
        + IdentityStore
        + SettingsStore
        + TrustStore
        + AuditStore
        + PortalSessionStore
        + LoginFailureStore
        + RevocationStore
        + GarbageStore
        + UsageStore
{
}
