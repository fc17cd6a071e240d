//! The metadata store: everything that is not blob bytes, with real transactions.
//! One small trait per aggregate, each implemented once per database (SQLite, PostgreSQL);
//! `MetadataStore` is all of them together, what a server holds. Times are unix seconds
//! supplied by the caller, so services own the clock.

mod audit;
mod garbage;
mod identity;
mod login_failures;
mod portal_sessions;
mod registry;
mod revocations;
mod settings;
mod trust;
mod uploads;

pub use audit::{AuditRecord, AuditStore};
pub use garbage::{
    BlobBatch, GC_LEASE, GarbageBlob, GarbageLink, GarbageStore, LinkBatch, LinkCursor, RETENTION_LEASE,
};
pub use identity::{IdentityStore, KeptAssignment, Principal, RoleAssignment, TokenScope};
pub use login_failures::{LoginFailureStore, LoginFailures};
pub use portal_sessions::{PortalSessionRecord, PortalSessionStore, SessionLimits};
pub use registry::{
    BlobLinkOutcome, BlobReservation, ManifestPutOutcome, ManifestRecord, NewManifest, ReferrerRecord,
    RepositoryStore, TagDetail, UntaggedManifest,
};
pub use revocations::{RevocationStore, TokenRevocation};
pub use settings::SettingsStore;
pub use trust::{NewTrustFile, TrustChange, TrustFile, TrustKeyRecord, TrustStore};
pub use uploads::{UploadSession, UploadStore};

/// Every aggregate of one database.
pub trait MetadataStore:
    RepositoryStore
    + UploadStore
    + IdentityStore
    + SettingsStore
    + TrustStore
    + AuditStore
    + PortalSessionStore
    + LoginFailureStore
    + RevocationStore
    + GarbageStore
{
}

impl<T> MetadataStore for T where
    T: RepositoryStore
        + UploadStore
        + IdentityStore
        + SettingsStore
        + TrustStore
        + AuditStore
        + PortalSessionStore
        + LoginFailureStore
        + RevocationStore
        + GarbageStore
{
}
