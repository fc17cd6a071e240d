//! Repositories, blob links, manifests, tags and referrers: what the registry API serves.

use async_trait::async_trait;

use bytes::Bytes;

use crate::metadata::{AuditRecord, Lock};
use crate::{Digest, StoreResult};

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
    /// A lock forbids it: the repository's or the tag's `no_write`. Nothing stored.
    Locked(Lock),
}

/// What a deletion (tag, manifest, repository, blob link) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// Nothing of that name: nothing deleted, nothing audited.
    Absent,
    /// A lock forbids it (the first in the way: the repository's before a tag's). Nothing
    /// deleted, nothing audited.
    Locked(Lock),
    /// The repository's trust data is no longer what the caller checked (`TrustCheck`):
    /// nothing deleted; check again.
    TrustChanged,
}

/// What a deletion re-checks about the repository's content trust data in its own
/// transaction, after queueing behind the repository's trust writers: the caller decided
/// from the trust data it verified that nothing it deletes is signed, and that holds only
/// while the data is unchanged (a signature committed in between would otherwise be left
/// pointing at nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustCheck<'a> {
    /// Content trust is off: nothing to re-check.
    Skip,
    /// The newest stored timestamp must still have this SHA-256 (`None`: there must still
    /// be no timestamp).
    Unchanged(Option<&'a str>),
}

/// What `RepositoryStore::reserve_blob` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobReservation {
    /// The row exists (created or touched) and is live.
    Reserved,
    /// The row is a tombstone: garbage collection is deleting the blob.
    Deleting,
}

/// What `RepositoryStore::link_blob` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobLinkOutcome {
    Linked {
        size: u64,
    },
    /// No row for the digest: reserve it and store its bytes first.
    Missing,
    /// The row is a tombstone: garbage collection is deleting the blob.
    Deleting,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerRecord {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

/// A manifest no tag points at, as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntaggedManifest {
    pub digest: Digest,
    /// What it refers to, if it is a referrer (a signature, an attestation).
    pub subject: Option<Digest>,
    /// Since when it has had no tag (unix seconds): when it last lost a tag, or, if it
    /// never lost one, when it was pushed.
    pub untagged_since: i64,
}

/// Repositories, blob links, manifests, tags and referrers: what the registry API serves.
#[async_trait]
pub trait RepositoryStore: Send + Sync + 'static {
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
    /// Size of `digest` if it is linked to `repository`.
    async fn linked_blob(&self, repository: &str, digest: &Digest) -> StoreResult<Option<u64>>;
    /// `linked_blob` for a client that is about to rely on the link (a blob HEAD or GET:
    /// a push that finds the blob skips its upload and then PUTs a manifest naming it).
    /// A link last renewed before `renew_before` has its `linked_at` set to `now` with a
    /// conditional write, so garbage collection leaves it another grace period; a newer
    /// link is only read. If the write finds no such link any more (a collection just
    /// deleted it, or another request renewed it), the link is read again: `None` when it
    /// is gone, so the client uploads the blob.
    async fn linked_blob_renewing(
        &self,
        repository: &str,
        digest: &Digest,
        renew_before: i64,
        now: i64,
    ) -> StoreResult<Option<u64>>;
    /// Size of `digest` if the database has a row for it: linked somewhere, reserved by an
    /// upload, or being deleted by garbage collection.
    async fn known_blob(&self, digest: &Digest) -> StoreResult<Option<u64>>;
    /// Create the blob's row, or touch it (`last_linked_at = now`) if it exists, before its
    /// bytes are committed: from then on garbage collection leaves the blob alone for the
    /// grace period, so bytes committed after this stay. `Deleting` while a collection is
    /// deleting the blob (its row is a tombstone): its object may vanish any moment, so
    /// commit nothing until the tombstone is gone (then reserve again).
    async fn reserve_blob(&self, digest: &Digest, size: u64, now: i64) -> StoreResult<BlobReservation>;
    /// Link a blob whose row exists and is live to `repository` (creating the repository),
    /// touching the blob and the link; idempotent. Never creates the blob's row: a row that
    /// is gone may have taken its object with it. `Missing`/`Deleting` link nothing.
    /// With `from` (a cross-repository mount), only while `from` links the blob, checked
    /// (and on PostgreSQL share-locked) in the same transaction: a blob row found without
    /// that link might be one an upload reserved and has not stored yet; otherwise
    /// `Missing`. An upload links without `from`, after storing the bytes it reserved.
    async fn link_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: Option<&str>,
        now: i64,
    ) -> StoreResult<BlobLinkOutcome>;
    /// Remove the link (refused under any lock of the repository itself). The audit record
    /// commits with it.
    async fn unlink_blob(
        &self,
        repository: &str,
        digest: &Digest,
        audit: &AuditRecord,
    ) -> StoreResult<DeleteOutcome>;
    /// Store a manifest (and tag) in one transaction after checking its references and
    /// that no `no_write` lock of the repository or of the tag forbids it.
    async fn put_manifest(&self, repository: &str, manifest: &NewManifest)
    -> StoreResult<ManifestPutOutcome>;
    async fn get_manifest(&self, repository: &str, digest: &Digest) -> StoreResult<Option<ManifestRecord>>;
    async fn resolve_tag(&self, repository: &str, tag: &str) -> StoreResult<Option<Digest>>;
    /// The manifest `tag` points at: what a pull by tag reads. A store answering each call
    /// from the network overrides it with one round trip instead of two.
    async fn manifest_by_tag(&self, repository: &str, tag: &str) -> StoreResult<Option<ManifestRecord>> {
        match self.resolve_tag(repository, tag).await? {
            Some(digest) => self.get_manifest(repository, &digest).await,
            None => Ok(None),
        }
    }
    /// Delete a manifest and every tag pointing at it. Refused under a lock of the
    /// repository or of any of those tags, or when `trust` no longer holds. The audit record
    /// commits with the deletion (and is not written when nothing was deleted).
    async fn delete_manifest(
        &self,
        repository: &str,
        digest: &Digest,
        trust: TrustCheck<'_>,
        audit: &AuditRecord,
    ) -> StoreResult<DeleteOutcome>;
    /// Delete a tag; refused under a lock of the repository or of the tag, or when `trust`
    /// no longer holds.
    async fn delete_tag(
        &self,
        repository: &str,
        tag: &str,
        trust: TrustCheck<'_>,
        audit: &AuditRecord,
    ) -> StoreResult<DeleteOutcome>;
    /// Delete a repository: its manifests, tags and blob links (bytes stay until garbage
    /// collection; trust data is separate). Refused while it or any of its tags is locked,
    /// or when `trust` no longer holds.
    async fn delete_repository(
        &self,
        repository: &str,
        trust: TrustCheck<'_>,
        audit: &AuditRecord,
    ) -> StoreResult<DeleteOutcome>;
    async fn referrers(
        &self,
        repository: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> StoreResult<Vec<ReferrerRecord>>;
    /// Up to `limit` manifests of `repository` after `after` (digest order) that no tag
    /// points at and that have been untagged since before `untagged_before`.
    async fn untagged_manifests(
        &self,
        repository: &str,
        untagged_before: i64,
        after: Option<&Digest>,
        limit: u32,
    ) -> StoreResult<Vec<UntaggedManifest>>;
    /// Retention's manifest deletion: deletes `digest` only if, as it deletes, no tag
    /// points at it, no manifest of the repository lists it (an index) and it has been
    /// untagged since before `untagged_before` — so a tag or index pushed after retention
    /// looked keeps it. False if it was kept (or absent); the audit record commits with it.
    async fn delete_untagged_manifest(
        &self,
        repository: &str,
        digest: &Digest,
        untagged_before: i64,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
    /// Retention's tag deletion: deletes `tag` only while it still points at `digest` and
    /// was last pushed at `pushed_at` (a re-push since retention looked keeps it). The
    /// manifest's untagged clock starts now, as for `delete_tag`.
    async fn delete_tag_if_unchanged(
        &self,
        repository: &str,
        tag: &str,
        digest: &Digest,
        pushed_at: i64,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
    /// The manifests of `repository` that list `child` (indexes naming a platform
    /// manifest), in digest order: a signature on an index vouches for its children.
    async fn manifest_parents(&self, repository: &str, child: &Digest) -> StoreResult<Vec<Digest>>;
}
