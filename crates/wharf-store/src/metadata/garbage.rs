//! Garbage collection of blobs, marked from the metadata database (never by walking
//! object storage). The protocol, and why each step is safe against pushes on other
//! replicas, is in ARCHITECTURE.md ("Garbage collection"); in short:
//!
//! 1. A repository's **blob link** is garbage when no manifest of that repository
//!    references the digest and the link is older than the cutoff (now − grace). It is
//!    removed by a conditional delete that checks both again as it deletes; a manifest
//!    PUT holds a share lock on the links it references until it commits (PostgreSQL;
//!    SQLite has one writer), so the two never interleave.
//! 2. A **blob** is garbage when no link remains and it was last reserved or linked
//!    (`last_linked_at`, the touch) before the cutoff. It is deleted in two phases:
//!    a conditional transition to a **tombstone** (`tombstone_garbage_blobs`), then the
//!    caller deletes the object, then the row (`finish_tombstones`). A tombstone is never
//!    linked again (`RepositoryStore::link_blob` and `reserve_blob` answer `Deleting`),
//!    so an interrupted run leaves tombstones that the next run finishes
//!    (`pending_tombstones`), never a row without its object that anything can reach.
//! 3. Every change made here happens only while the caller holds the **GC lease**
//!    (checked in the same transaction), so one collection runs at a time across
//!    replicas and a collector that lost its lease (it stalled past the expiry and
//!    another took over) changes nothing more.
//!
//! Manifests are not collected here: retention (`RepositoryStore::delete_untagged_manifest`)
//! removes them, and the blobs they leave are garbage for the next run.

use async_trait::async_trait;

use crate::{Digest, StoreResult};

/// A blob link that is (or was) garbage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GarbageLink {
    pub repository: String,
    pub digest: Digest,
    pub linked_at: i64,
}

/// Where a walk over blob links stands: the last link looked at, in the order of the
/// links' primary key (repository id, digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkCursor {
    pub repository_id: i64,
    pub digest: String,
}

/// One batch of a walk over garbage links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkBatch {
    /// The links removed (or, from `garbage_links`, that would be).
    pub links: Vec<GarbageLink>,
    /// Where the next batch starts; `None` once the walk is done.
    pub next: Option<LinkCursor>,
}

/// A blob that is (or was) garbage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GarbageBlob {
    pub digest: Digest,
    pub size: u64,
}

/// One batch of a walk over garbage blobs, in digest order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobBatch {
    /// The blobs tombstoned (or, from `garbage_blobs`, that would be).
    pub blobs: Vec<GarbageBlob>,
    /// Where the next batch starts (the last digest looked at); `None` once done.
    pub next: Option<Digest>,
}

/// What the GC lease is called in the `leases` table.
pub const GC_LEASE: &str = "gc";
/// The retention run's lease: one run at a time across replicas.
pub const RETENTION_LEASE: &str = "retention";

/// Who holds the GC lease, and until when (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcLease {
    pub holder: String,
    pub expires_at: i64,
}

/// Garbage collection of blob links and blobs. Times are unix seconds from the caller.
/// The mutating methods take the lease `holder` and `now`, and fail with
/// `StoreError::Conflict` when `holder` does not hold an unexpired GC lease at `now`.
#[async_trait]
pub trait GarbageStore: Send + Sync + 'static {
    /// Take the lease `name` for `holder` until `until`, or renew it if `holder` has it:
    /// false while someone else holds it unexpired. A holder that dies loses it at expiry.
    async fn take_lease(&self, name: &str, holder: &str, until: i64, now: i64) -> StoreResult<bool>;
    /// Give the lease `name` back, if `holder` still has it.
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()>;
    /// `take_lease` of the GC lease.
    async fn take_gc_lease(&self, holder: &str, until: i64, now: i64) -> StoreResult<bool> {
        self.take_lease(GC_LEASE, holder, until, now).await
    }
    /// `release_lease` of the GC lease.
    async fn release_gc_lease(&self, holder: &str) -> StoreResult<()> {
        self.release_lease(GC_LEASE, holder).await
    }
    /// The GC lease if someone holds it unexpired at `now`: a run in progress somewhere.
    async fn gc_lease(&self, now: i64) -> StoreResult<Option<GcLease>>;

    /// Remove up to `limit` garbage links after `after`: links linked before `cutoff` that
    /// no manifest of their repository references, each checked again as it is deleted.
    /// A link a concurrent manifest PUT holds is skipped (it is being referenced).
    async fn sweep_garbage_links(
        &self,
        holder: &str,
        now: i64,
        cutoff: i64,
        after: Option<&LinkCursor>,
        limit: u32,
    ) -> StoreResult<LinkBatch>;
    /// What `sweep_garbage_links` would remove, changing nothing (dry run).
    async fn garbage_links(
        &self,
        cutoff: i64,
        after: Option<&LinkCursor>,
        limit: u32,
    ) -> StoreResult<LinkBatch>;

    /// Tombstone up to `limit` blobs after `after` that no repository links and that were
    /// last reserved or linked before `cutoff`; each checked again as it is marked. The
    /// caller then deletes their objects and calls `finish_tombstones`.
    async fn tombstone_garbage_blobs(
        &self,
        holder: &str,
        now: i64,
        cutoff: i64,
        after: Option<&Digest>,
        limit: u32,
    ) -> StoreResult<BlobBatch>;
    /// What a run would tombstone after sweeping links, changing nothing (dry run): blobs
    /// last touched before `cutoff` whose every link is itself garbage (or that have none).
    async fn garbage_blobs(&self, cutoff: i64, after: Option<&Digest>, limit: u32) -> StoreResult<BlobBatch>;

    /// Tombstoned blobs after `after`, in digest order: the work an interrupted run left.
    async fn pending_tombstones(&self, after: Option<&Digest>, limit: u32) -> StoreResult<Vec<GarbageBlob>>;
    /// Delete the rows of tombstoned blobs whose objects are gone; returns how many rows
    /// went (digests that are not tombstones are left alone).
    async fn finish_tombstones(&self, holder: &str, now: i64, digests: &[Digest]) -> StoreResult<u64>;
}
