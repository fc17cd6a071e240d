//! `MetadataStore`: everything that is not blob bytes, with real transactions.
//! One implementation per database (SQLite now, PostgreSQL later); services only see this
//! trait. Times are unix seconds supplied by the caller, so services own the clock.

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Digest, StoreResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSession {
    pub id: String,
    pub repository: String,
    /// Bytes acknowledged so far.
    pub offset: u64,
    /// Serialized SHA-256 state after `offset` bytes, so any replica can resume.
    pub hash_state: Vec<u8>,
    pub started_at: i64,
    pub updated_at: i64,
}

/// A tag as the portal lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagDetail {
    pub tag: String,
    pub digest: String,
    pub media_type: String,
    /// When the tag last moved (unix seconds).
    pub pushed_at: i64,
    /// Manifest bytes plus every blob it references, one level of child manifests deep
    /// for an index (shared layers counted once per child, as a pull would fetch them).
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct ManifestRecord {
    pub digest: Digest,
    pub media_type: String,
    /// Exactly the bytes the client sent: the digest covers them.
    pub content: Bytes,
    pub subject: Option<Digest>,
    pub artifact_type: Option<String>,
    /// The manifest's `annotations` object as JSON text, for the referrers API.
    pub annotations: Option<String>,
    pub created_at: i64,
}

/// A manifest to store, with the blobs and manifests it points at.
#[derive(Debug, Clone)]
pub struct NewManifest {
    pub record: ManifestRecord,
    /// Blobs (config, layers) that must be linked to the repository.
    pub blobs: Vec<Digest>,
    /// Manifests (index children) that must exist in the repository.
    pub manifests: Vec<Digest>,
    /// Tag to point at it, if pushed by tag.
    pub tag: Option<String>,
    /// Who pushed it, committed with it (none for internal writes).
    pub audit: Option<AuditRecord>,
}

/// Why a manifest could not be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestPutOutcome {
    Stored,
    MissingBlob(Digest),
    MissingManifest(Digest),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerRecord {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub password_hash: Option<String>,
    /// Service principals' generated login id; `None` for other kinds.
    pub client_id: Option<String>,
    pub created_at: i64,
}

/// A built-in role granted to a principal on a scope (`registry`, `repository:<name>`,
/// `repository:<prefix>/*`). Role and scope are validated by the service, not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    pub principal: String,
    pub principal_kind: String,
    pub role: String,
    pub scope: String,
    pub created_at: i64,
}

/// One entry of a repository token's scope map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenScope {
    /// A repository name, or `<prefix>/*`.
    pub repository: String,
    /// An ACR scope-map action such as `content/read`.
    pub action: String,
}

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

/// One audit record: who did what to which target, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    // Repositories and listings.
    /// Repositories holding a manifest whose name contains `contains` ("" = all), after `last`.
    async fn list_repositories(
        &self,
        contains: &str,
        last: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<String>>;
    /// Every tag of `repository` with what the portal shows about it.
    async fn tag_details(&self, repository: &str) -> StoreResult<Vec<TagDetail>>;
    async fn repository_exists(&self, name: &str) -> StoreResult<bool>;
    async fn list_tags(&self, repository: &str, last: Option<&str>, limit: u32) -> StoreResult<Vec<String>>;

    // Blobs.
    /// Size of `digest` if it is linked to `repository`.
    async fn linked_blob(&self, repository: &str, digest: &Digest) -> StoreResult<Option<u64>>;
    /// Size of `digest` if any repository holds it (for mounts and dedup).
    async fn known_blob(&self, digest: &Digest) -> StoreResult<Option<u64>>;
    /// Record the blob and link it to `repository` (creating the repository); idempotent.
    async fn link_blob(&self, repository: &str, digest: &Digest, size: u64, now: i64) -> StoreResult<()>;
    /// Remove the link; false if there was none. The audit record commits with it.
    async fn unlink_blob(&self, repository: &str, digest: &Digest, audit: &AuditRecord) -> StoreResult<bool>;

    // Upload sessions.
    async fn create_upload(&self, session: &UploadSession) -> StoreResult<()>;
    async fn get_upload(&self, id: &str) -> StoreResult<Option<UploadSession>>;
    /// Advance a session only if nobody else moved it since `expected_offset`.
    async fn advance_upload(
        &self,
        id: &str,
        expected_offset: u64,
        new_offset: u64,
        hash_state: &[u8],
        now: i64,
    ) -> StoreResult<bool>;
    async fn delete_upload(&self, id: &str) -> StoreResult<bool>;
    /// Sessions idle since before `before`, for expiry.
    async fn stale_uploads(&self, before: i64) -> StoreResult<Vec<String>>;

    // Manifests and tags.
    /// Store a manifest (and tag) in one transaction after checking its references.
    async fn put_manifest(&self, repository: &str, manifest: &NewManifest)
    -> StoreResult<ManifestPutOutcome>;
    async fn get_manifest(&self, repository: &str, digest: &Digest) -> StoreResult<Option<ManifestRecord>>;
    async fn resolve_tag(&self, repository: &str, tag: &str) -> StoreResult<Option<Digest>>;
    /// Delete a manifest and every tag pointing at it; false if absent. The audit record
    /// commits with the deletion (and is not written when nothing was deleted).
    async fn delete_manifest(
        &self,
        repository: &str,
        digest: &Digest,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
    async fn delete_tag(&self, repository: &str, tag: &str, audit: &AuditRecord) -> StoreResult<bool>;
    /// Delete a repository: its manifests, tags and blob links (bytes stay until garbage
    /// collection; trust data is separate). False if there was no such repository.
    async fn delete_repository(&self, repository: &str, audit: &AuditRecord) -> StoreResult<bool>;
    async fn referrers(
        &self,
        repository: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> StoreResult<Vec<ReferrerRecord>>;

    // Principals and credentials.
    async fn count_principals(&self) -> StoreResult<u64>;
    // Every change to principals, secrets, assignments and tokens is written together with
    // its audit record in one transaction: no change without its record, no record of a
    // change that did not happen.
    /// `Conflict` when the name (or client id) is taken: names are one namespace across kinds.
    async fn create_principal(
        &self,
        name: &str,
        kind: &str,
        password_hash: Option<&str>,
        client_id: Option<&str>,
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<Principal>;
    /// The first user and its registry-wide role, in one transaction, so a crash cannot
    /// leave a registry whose only principal holds no role. `Conflict` if the name is taken.
    async fn create_bootstrap_owner(
        &self,
        name: &str,
        password_hash: &str,
        role: &str,
        scope: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<Principal>;
    /// By name, or by a service principal's client id.
    async fn find_principal(&self, name: &str) -> StoreResult<Option<Principal>>;
    /// Every principal of `kind` (all when `None`), by name.
    async fn list_principals(&self, kind: Option<&str>) -> StoreResult<Vec<Principal>>;
    /// Delete a principal with its refresh tokens, assignments and scope map (cascade);
    /// false (and no audit record) if there was none of that kind.
    async fn delete_principal(&self, name: &str, kind: &str, audit: &AuditRecord) -> StoreResult<bool>;
    /// Replace (or clear, disabling logins) a principal's secret and revoke every refresh
    /// token issued under the old one, atomically.
    async fn set_principal_secret(
        &self,
        principal_id: i64,
        password_hash: Option<&str>,
        audit: &AuditRecord,
    ) -> StoreResult<()>;
    /// `Conflict` on an identical existing assignment.
    async fn create_assignment(
        &self,
        principal_id: i64,
        role: &str,
        scope: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<()>;
    /// False (and no audit record) when there was no such assignment.
    async fn delete_assignment(
        &self,
        principal_id: i64,
        role: &str,
        scope: &str,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
    /// Assignments of one principal, or of all, ordered by principal, role, scope.
    async fn list_assignments(&self, principal_id: Option<i64>) -> StoreResult<Vec<RoleAssignment>>;
    /// A repository token: a principal of kind `token` and its scope map, in one transaction.
    async fn create_token(
        &self,
        name: &str,
        password_hash: &str,
        scopes: &[TokenScope],
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<Principal>;
    async fn token_scopes(&self, principal_id: i64) -> StoreResult<Vec<TokenScope>>;
    async fn principal_by_id(&self, id: i64) -> StoreResult<Option<Principal>>;
    async fn store_refresh_token(&self, token_hash: &[u8], principal_id: i64, now: i64) -> StoreResult<()>;
    /// The principal a refresh token belongs to, marking it used.
    async fn use_refresh_token(&self, token_hash: &[u8], now: i64) -> StoreResult<Option<i64>>;

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

    // Content trust.
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

    // Audit.
    async fn add_audit(&self, record: &AuditRecord) -> StoreResult<()>;
    /// The newest `limit` records, newest first.
    async fn list_audit(&self, limit: u32) -> StoreResult<Vec<AuditRecord>>;
}
