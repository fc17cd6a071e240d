//! Content trust (Notary v1): trust files by version and checksum, the changefeed and

use async_trait::async_trait;

use crate::StoreResult;
use crate::metadata::AuditRecord;

/// One stored trust metadata file (exact bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustFile {
    pub role: String,
    pub version: i64,
    /// Lowercase hex SHA-256 of `content`.
    pub sha256: String,
    pub content: Vec<u8>,
    pub created_at: i64,
}

/// A trust file to store as part of one update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTrustFile {
    pub role: String,
    pub version: i64,
    pub sha256: String,
    pub content: Vec<u8>,
}

/// A server-held trust key, still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustKeyRecord {
    pub role: String,
    pub key_id: String,
    pub keytype: String,
    pub sealed_key: Vec<u8>,
    pub created_at: i64,
}

/// One changefeed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustChange {
    pub id: i64,
    pub repository: String,
    pub gun: String,
    pub version: i64,
    pub sha256: String,
    pub category: String,
    pub created_at: i64,
}

/// Content trust (Notary v1): trust files by version and checksum, the changefeed and
/// server-held keys.
#[async_trait]
pub trait TrustStore: Send + Sync + 'static {
    /// The highest stored version of every role of `repository`.
    async fn trust_current(&self, repository: &str) -> StoreResult<Vec<TrustFile>>;
    async fn trust_file_by_version(
        &self,
        repository: &str,
        role: &str,
        version: i64,
    ) -> StoreResult<Option<TrustFile>>;
    async fn trust_file_by_sha256(
        &self,
        repository: &str,
        role: &str,
        sha256: &str,
    ) -> StoreResult<Option<TrustFile>>;
    /// Version and checksum of the newest stored version of `role`: what a replica holding
    /// the published state in memory compares to learn whether another replica moved it.
    async fn trust_head(&self, repository: &str, role: &str) -> StoreResult<Option<(i64, String)>>;
    /// Store every file of one update in one transaction, with a changefeed row for the
    /// timestamp and the audit record. An existing (role, version), or a version not
    /// above the stored one, fails the whole update with `StoreError::Conflict`.
    async fn trust_commit(
        &self,
        repository: &str,
        gun: &str,
        files: &[NewTrustFile],
        audit: Option<&AuditRecord>,
        now: i64,
    ) -> StoreResult<()>;
    /// Delete every file and server key of one repository (changefeed `deletion` row when
    /// something existed). Returns whether there were files.
    async fn trust_delete(&self, repository: &str, gun: &str, audit: &AuditRecord) -> StoreResult<bool>;
    /// Set `setting` to `value` and delete all trust data of every repository, atomically.
    /// Returns how many repositories had trust files.
    async fn trust_delete_all(&self, setting: &str, value: &[u8], audit: &AuditRecord) -> StoreResult<u64>;
    /// Changefeed rows after `change_id` (ascending) or, with `records < 0`, the
    /// `-records` rows before it; `change_id < 0` means "from the newest".
    async fn trust_changes(
        &self,
        repository: Option<&str>,
        change_id: i64,
        records: i64,
    ) -> StoreResult<Vec<TrustChange>>;
    /// Every server-held key of a repository, oldest first.
    async fn trust_keys(&self, repository: &str) -> StoreResult<Vec<TrustKeyRecord>>;
    /// Store `candidate` unless the repository already holds a key for its role (or,
    /// when `unless_key_ids` is non-empty, a key for the role not in that list, i.e. a
    /// pending one). Returns the newest matching key: ours or a concurrent winner's.
    async fn trust_key_create(
        &self,
        repository: &str,
        candidate: &TrustKeyRecord,
        active_key_ids: Option<&[String]>,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<TrustKeyRecord>;
}
