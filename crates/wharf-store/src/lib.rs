//! Wharf's storage layer: `BlobStore` (content-addressed bytes) and `MetadataStore`
//! (everything else, transactional). Services depend on the traits only.

pub mod blob;
mod digest;
mod error;
pub mod fs_blob;
pub mod metadata;
pub mod postgres;
pub mod s3_blob;
pub mod sqlite;
pub mod transfer;

pub use blob::{BlobStore, ByteRange, ByteStream, UploadWriter};
pub use digest::{Digest, DigestError};
pub use error::{StoreError, StoreResult};
pub use fs_blob::FsBlobStore;
pub use metadata::{
    AuditRecord, AuditStore, BlobBatch, BlobLinkOutcome, BlobReservation, DeleteOutcome, GC_LEASE,
    GarbageBlob, GarbageLink, GarbageStore, GcLease, IdentityStore, KeptAssignment, LinkBatch, LinkCursor,
    Lock, LockChange, LockChangeOutcome, LockStore, LoginFailureStore, LoginFailures, ManifestPutOutcome,
    ManifestRecord, MetadataStore, NewManifest, NewTrustFile, PortalSessionRecord, PortalSessionStore,
    Principal, RETENTION_LEASE, ReferrerRecord, RegistryUsage, RepositoryStore, RepositoryUsage,
    RevocationStore, RoleAssignment, ScopeUsage, SessionLimits, SettingsStore, TagDetail, TokenRevocation,
    TokenScope, TrustChange, TrustCheck, TrustFile, TrustKeyRecord, TrustStore, UntaggedManifest,
    UploadSession, UploadStore, UsageScope, UsageStore,
};
pub use postgres::PostgresMetadataStore;
pub use s3_blob::{S3BlobStore, S3Config};
pub use sqlite::SqliteMetadataStore;
