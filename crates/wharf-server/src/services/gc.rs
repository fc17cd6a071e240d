//! Online garbage collection of blobs: no read-only window, safe next to pushes on any
//! replica. What is garbage is decided from the metadata database only (never by listing
//! object storage); the protocol that makes a concurrent push safe is in the store
//! (`wharf_store::GarbageStore`) and in ARCHITECTURE.md ("Garbage collection"). A run:
//!
//! 1. takes the GC lease (one run at a time across replicas; renewed as it goes, and
//!    checked by the store in every batch, so a run that lost it changes nothing more);
//! 2. finishes the tombstones an interrupted run left (object, then row);
//! 3. removes garbage blob links in batches;
//! 4. tombstones garbage blobs in batches, deletes their objects, then their rows;
//! 5. writes a `gc.run` audit record with the summary and counts it in the metrics.
//!
//! A dry run walks the same candidates without the lease and changes nothing. Manifests
//! are not collected here: retention (`services/retention`) removes them by policy. `status`
//! answers what runs where: the lease (any replica), this replica's run in progress with
//! its counts so far, and this replica's last run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use wharf_store::{BlobStore, Digest, GarbageBlob, MetadataStore, StoreError};

use crate::clock::rfc3339;

use super::access::{Actor, audit_record};
use crate::auth::secrets::random_bytes;
use crate::clock::now;

/// The shortest grace period a run accepts. It must cover the longest time between an
/// upload reserving its blob and linking it (a commit: seconds), a client's blob HEAD and
/// its manifest PUT, and the clock difference between replicas (every time compared is
/// written by some replica's clock).
pub const MIN_GRACE: Duration = Duration::from_secs(10 * 60);
/// The GC lease lasts this long unless renewed; a run that dies frees it after this…
const LEASE_SECONDS: i64 = 120;
/// …and renews it once less than this is left, before each batch and each group of
/// object deletions, so a group (bounded by `DELETE_TIMEOUT`) always ends inside the lease.
const RENEW_BELOW_SECONDS: i64 = 60;
/// One object deletion may take this long. One that took longer may still be applied by
/// the store later, so the run stops and keeps its lease until it expires: the blob stays
/// a tombstone (nothing can store it again) until a later run deletes it once more.
const DELETE_TIMEOUT: Duration = Duration::from_secs(30);
/// Object deletions in flight at once.
const PARALLEL_DELETES: usize = 8;
/// Links removed per transaction.
const LINK_BATCH: u32 = 128;
/// Blobs tombstoned per transaction. Small, because an upload of a tombstoned digest
/// waits until its object and row are gone (`UploadService::reserve`).
const BLOB_BATCH: u32 = 32;

/// What a run did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    /// Blob links removed from repositories.
    pub links_removed: u64,
    /// Blobs whose object and row were deleted, including `tombstones_finished`.
    pub blobs_removed: u64,
    /// Their sizes, summed.
    pub bytes_freed: u64,
    /// Of `blobs_removed`, those an earlier, interrupted run had started deleting.
    pub tombstones_finished: u64,
    /// Objects that could not be deleted this time: their blobs stay tombstones, and the
    /// next run tries again.
    pub deletions_failed: u64,
    #[serde(rename = "duration_ms", serialize_with = "as_millis")]
    pub duration: Duration,
    /// A dry run's lists of what would go (at most `PREVIEW_LIMIT` of each).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_remove: Option<GcPreview>,
}

/// How many links and blobs a dry run lists (it counts them all).
pub const PREVIEW_LIMIT: usize = 1000;

/// What a dry run would remove, listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GcPreview {
    /// Blob links: `{"repository", "digest"}`.
    pub links: Vec<PreviewLink>,
    /// Blobs, with unfinished tombstones first: `{"digest", "size"}`.
    pub blobs: Vec<PreviewBlob>,
    /// More would go than the lists hold (the counts are complete).
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PreviewLink {
    pub repository: String,
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PreviewBlob {
    pub digest: String,
    pub size: u64,
}

impl GcPreview {
    fn add_link(&mut self, repository: &str, digest: &Digest) {
        if self.links.len() < PREVIEW_LIMIT {
            self.links.push(PreviewLink {
                repository: repository.to_owned(),
                digest: digest.as_str().to_owned(),
            });
        } else {
            self.truncated = true;
        }
    }

    fn add_blob(&mut self, blob: &GarbageBlob) {
        if self.blobs.len() < PREVIEW_LIMIT {
            self.blobs.push(PreviewBlob {
                digest: blob.digest.as_str().to_owned(),
                size: blob.size,
            });
        } else {
            self.truncated = true;
        }
    }
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl GcReport {
    /// The audit record's detail (and the log line's).
    fn summary(&self) -> String {
        format!(
            "links removed {}, blobs removed {}, bytes freed {}, tombstones finished {}, deletions failed {}, {} ms",
            self.links_removed,
            self.blobs_removed,
            self.bytes_freed,
            self.tombstones_finished,
            self.deletions_failed,
            self.duration.as_millis()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("another garbage collection is running")]
    Busy,
    #[error("the grace period must be at least {0} seconds")]
    GraceTooShort(u64),
    #[error("garbage collection stopped: {0}")]
    Store(#[from] StoreError),
    #[error("garbage collection stopped: deleting blob {0} took longer than {secs}s", secs = DELETE_TIMEOUT.as_secs())]
    DeleteTimedOut(Digest),
}

/// Which step a run is in (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GcPhase {
    /// Finishing the tombstones an interrupted run left.
    Tombstones,
    /// Removing garbage blob links.
    Links,
    /// Tombstoning and deleting garbage blobs.
    Blobs,
}

/// A run in progress on this replica: what it has done so far.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GcProgress {
    pub started_at: String,
    pub phase: GcPhase,
    pub links_removed: u64,
    pub blobs_removed: u64,
    pub bytes_freed: u64,
}

/// This replica's last finished (or stopped) run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GcLastRun {
    pub finished_at: String,
    /// Who started it (a user, or `wharf (schedule)`).
    pub by: String,
    pub report: GcReport,
    /// Why it stopped, when it did not finish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The lease as other replicas see it: a run in progress somewhere.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GcRunning {
    /// The id of the replica running it (`<data_dir>/replica-id`).
    pub replica: String,
    /// Whether that replica is this one.
    pub here: bool,
    /// When its lease runs out unless renewed (a run that died frees it then).
    pub lease_expires_at: String,
}

/// What `GET /api/v1/gc` and the portal's page show.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GcStatus {
    pub running: Option<GcRunning>,
    /// This replica's run in progress, if it is the one running.
    pub progress: Option<GcProgress>,
    pub last_run: Option<GcLastRun>,
    pub grace_seconds: u64,
    /// Scheduled runs, at most this often on each replica; 0 = on demand only.
    pub interval_seconds: u64,
}

/// Counters for `/metrics`.
#[derive(Default)]
struct GcCounters {
    runs: AtomicU64,
    failed_runs: AtomicU64,
    links_removed: AtomicU64,
    blobs_removed: AtomicU64,
    bytes_freed: AtomicU64,
    last_run_seconds_ms: AtomicU64,
}

pub struct GarbageCollector {
    meta: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
    /// This replica's id, the prefix of the lease holder's name.
    replica: String,
    min_grace: Duration,
    /// The grace period of scheduled runs and of runs that name none (`gc.grace_seconds`).
    grace: Duration,
    /// `gc.interval_seconds`: scheduled runs at most this often; `None` = on demand only.
    schedule: Option<Duration>,
    /// `gc.busy_percent`: the share of a run's time spent in batches (see `pause_after`).
    busy_percent: u8,
    /// When this replica last started a scheduled run (or found one running elsewhere).
    last_scheduled: std::sync::Mutex<Option<Instant>>,
    counters: GcCounters,
    /// This replica's run in progress, updated after every batch.
    progress: std::sync::Mutex<Option<GcProgress>>,
    last_run: std::sync::Mutex<Option<GcLastRun>>,
}

/// The lease a run holds, renewed when due.
struct Lease<'a> {
    meta: &'a dyn MetadataStore,
    holder: String,
    until: i64,
}

impl Lease<'_> {
    async fn keep(&mut self) -> Result<(), GcError> {
        let t = now();
        if self.until - t >= RENEW_BELOW_SECONDS {
            return Ok(());
        }
        if !self
            .meta
            .take_gc_lease(&self.holder, t + LEASE_SECONDS, t)
            .await?
        {
            return Err(StoreError::Conflict("this garbage collection lost the GC lease".into()).into());
        }
        self.until = t + LEASE_SECONDS;
        Ok(())
    }
}

impl GarbageCollector {
    pub fn new(meta: Arc<dyn MetadataStore>, blobs: Arc<dyn BlobStore>, replica: &str) -> Self {
        Self {
            meta,
            blobs,
            replica: replica.to_owned(),
            min_grace: MIN_GRACE,
            grace: Duration::from_secs(3600),
            schedule: None,
            busy_percent: 100,
            last_scheduled: std::sync::Mutex::new(None),
            counters: GcCounters::default(),
            progress: std::sync::Mutex::new(None),
            last_run: std::sync::Mutex::new(None),
        }
    }

    /// The grace period of runs that name none and of scheduled runs.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Work `percent` of a run's time and pause the rest (1-100; 100 = no pauses).
    pub fn with_busy_percent(mut self, percent: u8) -> Self {
        self.busy_percent = percent.clamp(1, 100);
        self
    }

    /// Run on a schedule (`run_if_due`), at most once per `interval` on this replica.
    pub fn with_schedule(mut self, interval: Option<Duration>) -> Self {
        self.schedule = interval;
        self
    }

    pub fn default_grace(&self) -> Duration {
        self.grace
    }

    /// The scheduled run, called by the housekeeping: runs when a schedule is set and its
    /// interval has passed since this replica's last scheduled attempt. `None` when not due;
    /// a run another replica holds the lease for counts as this interval's run (`Busy`).
    pub async fn run_if_due(&self) -> Option<Result<GcReport, GcError>> {
        let interval = self.schedule?;
        {
            let mut last = lock(&self.last_scheduled);
            if last.is_some_and(|at| at.elapsed() < interval) {
                return None;
            }
            *last = Some(Instant::now());
        }
        let actor = Actor {
            name: "wharf (schedule)".into(),
            from: None,
        };
        Some(self.run(&actor, false, self.grace).await)
    }

    /// Accept grace periods down to `min` (tests, which cannot wait ten minutes).
    pub fn with_min_grace(mut self, min: Duration) -> Self {
        self.min_grace = min;
        self
    }

    /// Collect what has been garbage for longer than `grace` (see the module comment), or
    /// with `dry_run` only count it. `Busy` while another run holds the lease.
    pub async fn run(&self, actor: &Actor, dry_run: bool, grace: Duration) -> Result<GcReport, GcError> {
        if grace < self.min_grace {
            return Err(GcError::GraceTooShort(self.min_grace.as_secs()));
        }
        let started = Instant::now();
        let cutoff = now().saturating_sub(i64::try_from(grace.as_secs()).unwrap_or(i64::MAX));
        if dry_run {
            let mut report = self.preview(cutoff).await?;
            report.duration = started.elapsed();
            return Ok(report);
        }
        let request = random_bytes::<12>().map_err(|e| StoreError::Backend(e.to_string()))?;
        let t = now();
        let mut lease = Lease {
            meta: self.meta.as_ref(),
            holder: format!("{}/{}", self.replica, hex::encode(request)),
            until: t + LEASE_SECONDS,
        };
        if !self.meta.take_gc_lease(&lease.holder, lease.until, t).await? {
            return Err(GcError::Busy);
        }
        let mut report = GcReport::default();
        self.note(GcPhase::Tombstones, &report, Some(t));
        let outcome = self.collect(&mut lease, cutoff, &mut report).await;
        report.duration = started.elapsed();
        *lock(&self.progress) = None;
        // After a timed-out deletion the lease is kept until it expires (see DELETE_TIMEOUT).
        if !matches!(outcome, Err(GcError::DeleteTimedOut(_)))
            && let Err(e) = self.meta.release_gc_lease(&lease.holder).await
        {
            tracing::warn!(error = %e, "GC lease not released; it expires");
        }
        self.count(&report, outcome.is_err());
        let detail = match &outcome {
            Ok(()) => report.summary(),
            Err(e) => format!("{e}; so far: {}", report.summary()),
        };
        let record = audit_record(actor, "gc.run", "registry", &detail, now());
        if let Err(e) = self.meta.add_audit(&record).await {
            tracing::warn!(error = %e, "GC audit record not written");
        }
        *lock(&self.last_run) = Some(GcLastRun {
            finished_at: rfc3339(now()),
            by: actor.name.clone(),
            report: report.clone(),
            error: outcome.as_ref().err().map(ToString::to_string),
        });
        match outcome {
            Ok(()) => {
                tracing::info!(summary = %report.summary(), "garbage collection done");
                Ok(report)
            }
            Err(e) => {
                tracing::warn!(error = %e, summary = %report.summary(), "garbage collection stopped");
                Err(e)
            }
        }
    }

    async fn collect(
        &self,
        lease: &mut Lease<'_>,
        cutoff: i64,
        report: &mut GcReport,
    ) -> Result<(), GcError> {
        // 1. What an interrupted run left: tombstones whose objects may or may not be gone.
        let mut after: Option<Digest> = None;
        loop {
            let batch_started = Instant::now();
            lease.keep().await?;
            let pending = self.meta.pending_tombstones(after.as_ref(), BLOB_BATCH).await?;
            let Some(last) = pending.last() else { break };
            after = Some(last.digest.clone());
            report.tombstones_finished += self.delete_blobs(lease, &pending, report).await?;
            self.note(GcPhase::Tombstones, report, None);
            self.pause_after(batch_started).await;
        }
        // 2. Links nothing references any more.
        let mut after = None;
        loop {
            let batch_started = Instant::now();
            lease.keep().await?;
            let batch = self
                .meta
                .sweep_garbage_links(&lease.holder, now(), cutoff, after.as_ref(), LINK_BATCH)
                .await?;
            report.links_removed += batch.links.len() as u64;
            self.note(GcPhase::Links, report, None);
            self.pause_after(batch_started).await;
            match batch.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        // 3. Blobs no repository links: tombstone, delete the objects, delete the rows.
        let mut after = None;
        loop {
            let batch_started = Instant::now();
            lease.keep().await?;
            let batch = self
                .meta
                .tombstone_garbage_blobs(&lease.holder, now(), cutoff, after.as_ref(), BLOB_BATCH)
                .await?;
            self.delete_blobs(lease, &batch.blobs, report).await?;
            self.note(GcPhase::Blobs, report, None);
            self.pause_after(batch_started).await;
            match batch.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(())
    }

    /// Pause after a batch that began at `batch_started`, in proportion to its length, so
    /// the run works `busy_percent` of its time. A batch competes with pushes for the CPU,
    /// the disk and the database's one writer (SQLite); the run has no deadline, and pushes
    /// that wait for it do (measured: README → Performance → Garbage collection).
    async fn pause_after(&self, batch_started: Instant) {
        if self.busy_percent >= 100 {
            return;
        }
        let percent = u32::from(self.busy_percent);
        tokio::time::sleep(batch_started.elapsed() * (100 - percent) / percent).await;
    }

    /// Delete the objects of tombstoned `blobs`, then the rows of those whose object is
    /// gone; returns how many rows went. A failed deletion leaves its tombstone for the
    /// next run; a timed-out one stops the run.
    async fn delete_blobs(
        &self,
        lease: &mut Lease<'_>,
        blobs: &[GarbageBlob],
        report: &mut GcReport,
    ) -> Result<u64, GcError> {
        let mut deleted: Vec<&GarbageBlob> = Vec::with_capacity(blobs.len());
        let mut failed = 0;
        let mut timed_out = None;
        for group in blobs.chunks(PARALLEL_DELETES) {
            lease.keep().await?;
            let results = join_all(group.iter().map(|blob| async move {
                (
                    blob,
                    tokio::time::timeout(DELETE_TIMEOUT, self.blobs.delete(&blob.digest)).await,
                )
            }))
            .await;
            for (blob, result) in results {
                match result {
                    Ok(Ok(())) => deleted.push(blob),
                    Ok(Err(e)) => {
                        tracing::warn!(digest = %blob.digest, error = %e, "blob object not deleted; the next garbage collection retries");
                        failed += 1;
                    }
                    Err(_) => {
                        failed += 1;
                        timed_out.get_or_insert_with(|| blob.digest.clone());
                    }
                }
            }
            if timed_out.is_some() {
                break;
            }
        }
        let digests: Vec<Digest> = deleted.iter().map(|b| b.digest.clone()).collect();
        let gone = if digests.is_empty() {
            0
        } else {
            self.meta
                .finish_tombstones(&lease.holder, now(), &digests)
                .await?
        };
        // Nobody else finishes our tombstones (the store checks the lease), so the rows
        // deleted are exactly `deleted`.
        report.blobs_removed += gone;
        report.bytes_freed += deleted.iter().map(|b| b.size).sum::<u64>();
        report.deletions_failed += failed;
        match timed_out {
            Some(digest) => Err(GcError::DeleteTimedOut(digest)),
            None => Ok(gone),
        }
    }

    /// What a run with this cutoff would do now, changing nothing.
    async fn preview(&self, cutoff: i64) -> Result<GcReport, GcError> {
        let mut report = GcReport {
            dry_run: true,
            ..GcReport::default()
        };
        let mut list = GcPreview::default();
        let mut after: Option<Digest> = None;
        loop {
            let pending = self.meta.pending_tombstones(after.as_ref(), BLOB_BATCH).await?;
            let Some(last) = pending.last() else { break };
            after = Some(last.digest.clone());
            report.tombstones_finished += pending.len() as u64;
            report.blobs_removed += pending.len() as u64;
            report.bytes_freed += pending.iter().map(|b| b.size).sum::<u64>();
            pending.iter().for_each(|b| list.add_blob(b));
        }
        let mut after = None;
        loop {
            let batch = self
                .meta
                .garbage_links(cutoff, after.as_ref(), LINK_BATCH)
                .await?;
            report.links_removed += batch.links.len() as u64;
            batch
                .links
                .iter()
                .for_each(|l| list.add_link(&l.repository, &l.digest));
            match batch.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let mut after = None;
        loop {
            let batch = self
                .meta
                .garbage_blobs(cutoff, after.as_ref(), LINK_BATCH)
                .await?;
            report.blobs_removed += batch.blobs.len() as u64;
            report.bytes_freed += batch.blobs.iter().map(|b| b.size).sum::<u64>();
            batch.blobs.iter().for_each(|b| list.add_blob(b));
            match batch.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        report.would_remove = Some(list);
        Ok(report)
    }

    /// Record how far this replica's run has come (`started` only when it starts).
    fn note(&self, phase: GcPhase, report: &GcReport, started: Option<i64>) {
        let mut progress = lock(&self.progress);
        let started_at = match (started, progress.as_ref()) {
            (Some(t), _) => rfc3339(t),
            (None, Some(p)) => p.started_at.clone(),
            (None, None) => return,
        };
        *progress = Some(GcProgress {
            started_at,
            phase,
            links_removed: report.links_removed,
            blobs_removed: report.blobs_removed,
            bytes_freed: report.bytes_freed,
        });
    }

    /// Who runs a collection now (any replica), this replica's progress and last run.
    pub async fn status(&self) -> Result<GcStatus, GcError> {
        let lease = self.meta.gc_lease(now()).await?;
        let running = lease.map(|l| {
            let replica = l.holder.split_once('/').map_or(l.holder.as_str(), |(r, _)| r);
            GcRunning {
                here: replica == self.replica,
                replica: replica.to_owned(),
                lease_expires_at: rfc3339(l.expires_at),
            }
        });
        Ok(GcStatus {
            running,
            progress: lock(&self.progress).clone(),
            last_run: lock(&self.last_run).clone(),
            grace_seconds: self.grace.as_secs(),
            interval_seconds: self.schedule.map_or(0, |d| d.as_secs()),
        })
    }

    fn count(&self, report: &GcReport, failed: bool) {
        let c = &self.counters;
        c.runs.fetch_add(1, Ordering::Relaxed);
        if failed {
            c.failed_runs.fetch_add(1, Ordering::Relaxed);
        }
        c.links_removed.fetch_add(report.links_removed, Ordering::Relaxed);
        c.blobs_removed.fetch_add(report.blobs_removed, Ordering::Relaxed);
        c.bytes_freed.fetch_add(report.bytes_freed, Ordering::Relaxed);
        c.last_run_seconds_ms.store(
            u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// This replica's GC counters, Prometheus text format (dry runs are not counted).
    pub fn render_metrics(&self) -> String {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "# HELP wharf_gc_runs_total Garbage collection runs started by this replica (not dry runs).\n\
             # TYPE wharf_gc_runs_total counter\n\
             wharf_gc_runs_total {}\n\
             # HELP wharf_gc_failed_runs_total Garbage collection runs that stopped on an error.\n\
             # TYPE wharf_gc_failed_runs_total counter\n\
             wharf_gc_failed_runs_total {}\n\
             # HELP wharf_gc_links_removed_total Blob links removed by garbage collection.\n\
             # TYPE wharf_gc_links_removed_total counter\n\
             wharf_gc_links_removed_total {}\n\
             # HELP wharf_gc_blobs_removed_total Blobs deleted by garbage collection.\n\
             # TYPE wharf_gc_blobs_removed_total counter\n\
             wharf_gc_blobs_removed_total {}\n\
             # HELP wharf_gc_bytes_freed_total Bytes of blobs deleted by garbage collection.\n\
             # TYPE wharf_gc_bytes_freed_total counter\n\
             wharf_gc_bytes_freed_total {}\n\
             # HELP wharf_gc_last_run_duration_seconds How long this replica's last garbage collection took.\n\
             # TYPE wharf_gc_last_run_duration_seconds gauge\n\
             wharf_gc_last_run_duration_seconds {}\n",
            get(&c.runs),
            get(&c.failed_runs),
            get(&c.links_removed),
            get(&c.blobs_removed),
            get(&c.bytes_freed),
            get(&c.last_run_seconds_ms) as f64 / 1000.0,
        )
    }
}

/// A mutex whose holder cannot leave it inconsistent (plain values), poisoned or not.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use bytes::Bytes;
    use wharf_store::DeleteOutcome;
    use wharf_store::{
        BlobLinkOutcome, BlobReservation, FsBlobStore, ManifestPutOutcome, ManifestRecord, NewManifest,
        SqliteMetadataStore,
    };

    use super::*;
    use crate::services::uploads::UploadService;

    const HOUR: i64 = 3600;

    struct Registry {
        dir: tempfile::TempDir,
        meta: Arc<dyn MetadataStore>,
        blobs: Arc<dyn BlobStore>,
        gc: GarbageCollector,
    }

    fn owner() -> Actor {
        Actor {
            name: "owner".into(),
            from: None,
        }
    }

    async fn registry() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let meta: Arc<dyn MetadataStore> =
            Arc::new(SqliteMetadataStore::open(&dir.path().join("m.db")).await.unwrap());
        let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(dir.path().join("s")).unwrap());
        let gc =
            GarbageCollector::new(meta.clone(), blobs.clone(), "replica-1").with_min_grace(Duration::ZERO);
        Registry { dir, meta, blobs, gc }
    }

    impl Registry {
        fn file(&self, digest: &Digest) -> PathBuf {
            blob_file(self.dir.path(), digest.hex())
        }

        /// A blob pushed `age` seconds ago, as an upload stores it: reserved, its bytes
        /// committed, linked to `repository` (unless `None`: an upload that never linked).
        async fn push_blob(&self, repository: Option<&str>, bytes: &[u8], age: i64) -> Digest {
            let digest = Digest::of(bytes);
            let at = now() - age;
            assert_eq!(
                self.meta
                    .reserve_blob(&digest, bytes.len() as u64, at)
                    .await
                    .unwrap(),
                BlobReservation::Reserved
            );
            let id = format!("0000{}", &digest.hex()[..12]);
            self.blobs.create_upload(&id).await.unwrap();
            let mut w = self.blobs.upload_writer(&id, 0).await.unwrap();
            w.write(Bytes::copy_from_slice(bytes)).await.unwrap();
            w.finish().await.unwrap();
            self.blobs.commit_upload(&id, &digest).await.unwrap();
            if let Some(repository) = repository {
                assert_eq!(
                    self.meta.link_blob(repository, &digest, None, at).await.unwrap(),
                    BlobLinkOutcome::Linked {
                        size: bytes.len() as u64
                    }
                );
            }
            digest
        }

        async fn push_manifest(&self, repository: &str, body: &str, blobs: &[&Digest]) {
            let m = NewManifest {
                record: ManifestRecord {
                    digest: Digest::of(body.as_bytes()),
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    content: Bytes::copy_from_slice(body.as_bytes()),
                    subject: None,
                    artifact_type: None,
                    annotations: None,
                    created_at: now() - HOUR,
                },
                blobs: blobs.iter().map(|d| (*d).clone()).collect(),
                manifests: Vec::new(),
                tag: Some("latest".into()),
                audit: None,
            };
            assert_eq!(
                self.meta.put_manifest(repository, &m).await.unwrap(),
                ManifestPutOutcome::Stored
            );
        }

        async fn gc_records(&self) -> Vec<String> {
            self.meta
                .list_audit(100)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.action == "gc.run")
                .map(|r| r.detail)
                .collect()
        }
    }

    fn blob_file(root: &Path, hex: &str) -> PathBuf {
        root.join("s/blobs/sha256").join(&hex[..2]).join(hex)
    }

    /// A full run on SQLite and the filesystem store: exactly the unreferenced links and
    /// blobs past the grace period go (their files really deleted, their bytes counted),
    /// shared and young blobs stay; a dry run first reports the same and changes nothing;
    /// the run is audited and counted; a second run finds nothing.
    #[tokio::test]
    async fn a_run_deletes_exactly_the_garbage_and_a_dry_run_nothing() {
        let r = registry().await;
        let shared = r.push_blob(Some("a"), b"shared layer", HOUR).await;
        let kept = r.push_blob(Some("a"), b"layer of a", HOUR).await;
        r.push_manifest("a", "manifest a", &[&shared, &kept]).await;
        // b's manifest was deleted: its links are garbage, but `shared` is still a's.
        assert_eq!(
            r.meta
                .link_blob("b", &shared, Some("a"), now() - HOUR)
                .await
                .unwrap(),
            BlobLinkOutcome::Linked { size: 12 }
        );
        let dropped = r.push_blob(Some("b"), b"layer only b had", HOUR).await;
        let orphan = r.push_blob(None, b"uploaded, never linked", HOUR).await;
        let young = r.push_blob(Some("b"), b"pushed a moment ago", 0).await;
        let grace = Duration::from_secs(60);

        let preview = r.gc.run(&owner(), true, grace).await.unwrap();
        assert!(preview.dry_run);
        assert_eq!(
            (
                preview.links_removed,
                preview.blobs_removed,
                preview.bytes_freed,
                preview.tombstones_finished
            ),
            (2, 2, 16 + 22, 0)
        );
        let listed = preview.would_remove.clone().unwrap();
        let mut links: Vec<(&str, &str)> = listed
            .links
            .iter()
            .map(|l| (l.repository.as_str(), l.digest.as_str()))
            .collect();
        links.sort_unstable();
        let mut expected = vec![("b", shared.as_str()), ("b", dropped.as_str())];
        expected.sort_unstable();
        assert_eq!(links, expected);
        let mut blobs: Vec<(&str, u64)> = listed.blobs.iter().map(|b| (b.digest.as_str(), b.size)).collect();
        blobs.sort_unstable();
        let mut expected = vec![(dropped.as_str(), 16), (orphan.as_str(), 22)];
        expected.sort_unstable();
        assert_eq!(blobs, expected);
        assert!(!listed.truncated);
        let json = serde_json::to_value(&preview).unwrap();
        assert!(
            json["duration_ms"].is_u64() && json["would_remove"]["links"].is_array(),
            "{json}"
        );
        for d in [&shared, &kept, &dropped, &orphan, &young] {
            assert!(r.file(d).exists(), "a dry run deleted {d}");
        }
        assert_eq!(r.meta.linked_blob("b", &shared).await.unwrap(), Some(12));
        assert!(r.gc_records().await.is_empty(), "a dry run was audited");

        let report = r.gc.run(&owner(), false, grace).await.unwrap();
        assert_eq!(
            GcReport {
                duration: Duration::ZERO,
                ..report.clone()
            },
            GcReport {
                links_removed: 2,
                blobs_removed: 2,
                bytes_freed: 38,
                ..GcReport::default()
            }
        );
        for d in [&dropped, &orphan] {
            assert!(!r.file(d).exists(), "{d} was not deleted");
            assert_eq!(r.meta.known_blob(d).await.unwrap(), None);
        }
        for d in [&shared, &kept, &young] {
            assert!(r.file(d).exists(), "{d} was deleted");
        }
        assert_eq!(r.meta.linked_blob("a", &shared).await.unwrap(), Some(12));
        assert_eq!(r.meta.linked_blob("b", &shared).await.unwrap(), None);
        assert_eq!(r.meta.linked_blob("b", &young).await.unwrap(), Some(19));
        let records = r.gc_records().await;
        assert_eq!(records.len(), 1);
        assert!(
            records[0].starts_with("from unknown; links removed 2, blobs removed 2, bytes freed 38,"),
            "{records:?}"
        );
        let metrics = r.gc.render_metrics();
        for line in [
            "wharf_gc_runs_total 1\n",
            "wharf_gc_links_removed_total 2\n",
            "wharf_gc_blobs_removed_total 2\n",
            "wharf_gc_bytes_freed_total 38\n",
        ] {
            assert!(metrics.contains(line), "{line} not in {metrics}");
        }
        // Nothing left to do; the lease was given back, so another run may start.
        let again = r.gc.run(&owner(), false, grace).await.unwrap();
        assert_eq!((again.links_removed, again.blobs_removed), (0, 0));
        // With no grace at all, the young blob's unreferenced link goes too.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let all = r.gc.run(&owner(), false, Duration::ZERO).await.unwrap();
        assert_eq!(
            (all.links_removed, all.blobs_removed, all.bytes_freed),
            (1, 1, 19)
        );
        assert!(!r.file(&young).exists());
    }

    /// A run killed after tombstoning (one object already deleted, one not) leaves only
    /// tombstones, which nothing can link; the next run takes the lease once the dead
    /// run's lease expired and finishes them: objects and rows gone, counted as finished.
    #[tokio::test]
    async fn an_interrupted_run_is_finished_by_the_next() {
        let r = registry().await;
        let one = r.push_blob(Some("a"), b"first garbage", HOUR).await;
        let two = r.push_blob(Some("a"), b"second garbage", HOUR).await;
        for d in [&one, &two] {
            assert_eq!(
                r.meta.unlink_blob("a", d, &rec()).await.unwrap(),
                DeleteOutcome::Deleted
            );
        }
        // The dead run: its lease (long expired by now), its tombstones, one object deleted.
        let long_ago = now() - HOUR;
        assert!(
            r.meta
                .take_gc_lease("replica-0/dead", long_ago + 120, long_ago)
                .await
                .unwrap()
        );
        let batch = r
            .meta
            .tombstone_garbage_blobs("replica-0/dead", long_ago, now(), None, 10)
            .await
            .unwrap();
        assert_eq!(batch.blobs.len(), 2);
        r.blobs.delete(&one).await.unwrap();
        // Meanwhile nothing can bring them back.
        assert_eq!(
            r.meta.reserve_blob(&two, 14, now()).await.unwrap(),
            BlobReservation::Deleting
        );
        assert_eq!(
            r.meta.link_blob("b", &two, None, now()).await.unwrap(),
            BlobLinkOutcome::Deleting
        );

        let preview = r.gc.run(&owner(), true, Duration::from_secs(60)).await.unwrap();
        assert_eq!((preview.tombstones_finished, preview.blobs_removed), (2, 2));
        assert!(r.file(&two).exists());

        let report = r.gc.run(&owner(), false, Duration::from_secs(60)).await.unwrap();
        assert_eq!(
            (
                report.tombstones_finished,
                report.blobs_removed,
                report.bytes_freed
            ),
            (2, 2, 13 + 14)
        );
        assert!(!r.file(&two).exists());
        assert!(r.meta.pending_tombstones(None, 10).await.unwrap().is_empty());
        for d in [&one, &two] {
            assert_eq!(r.meta.known_blob(d).await.unwrap(), None);
        }
        assert_eq!(
            r.meta.reserve_blob(&two, 14, now()).await.unwrap(),
            BlobReservation::Reserved
        );
    }

    fn rec() -> wharf_store::AuditRecord {
        wharf_store::AuditRecord {
            at: 1,
            actor: "t".into(),
            action: "blob.delete".into(),
            target: "t".into(),
            detail: String::new(),
        }
    }

    /// One run at a time (a live lease elsewhere: `Busy`, nothing changed), and no grace
    /// period shorter than the minimum outside tests.
    #[tokio::test]
    async fn one_run_at_a_time_and_a_minimum_grace() {
        let r = registry().await;
        let garbage = r.push_blob(None, b"garbage", HOUR).await;
        assert!(
            r.meta
                .take_gc_lease("replica-2/running", now() + 60, now())
                .await
                .unwrap()
        );
        assert!(matches!(
            r.gc.run(&owner(), false, Duration::from_secs(60)).await,
            Err(GcError::Busy)
        ));
        assert!(r.file(&garbage).exists());
        // A dry run needs no lease.
        assert_eq!(
            r.gc.run(&owner(), true, Duration::from_secs(60))
                .await
                .unwrap()
                .blobs_removed,
            1
        );
        r.meta.release_gc_lease("replica-2/running").await.unwrap();
        assert_eq!(
            r.gc.run(&owner(), false, Duration::from_secs(60))
                .await
                .unwrap()
                .blobs_removed,
            1
        );
        let strict = GarbageCollector::new(r.meta.clone(), r.blobs.clone(), "replica-3");
        assert!(matches!(
            strict
                .run(&owner(), true, MIN_GRACE - Duration::from_secs(1))
                .await,
            Err(GcError::GraceTooShort(600))
        ));
        strict.run(&owner(), true, MIN_GRACE).await.unwrap();
    }

    /// The schedule: nothing without one; with one, a run now (with the configured grace,
    /// audited as the schedule's), then nothing until the interval has passed; a run
    /// another replica holds counts as `Busy`.
    #[tokio::test]
    async fn scheduled_runs_come_at_most_once_per_interval() {
        let r = registry().await;
        let garbage = r.push_blob(None, b"scheduled garbage", HOUR).await;
        assert!(r.gc.run_if_due().await.is_none());
        let scheduled = GarbageCollector::new(r.meta.clone(), r.blobs.clone(), "replica-4")
            .with_min_grace(Duration::ZERO)
            .with_grace(Duration::from_secs(60))
            .with_schedule(Some(Duration::from_secs(3600)));
        assert_eq!(scheduled.default_grace(), Duration::from_secs(60));
        let report = scheduled.run_if_due().await.unwrap().unwrap();
        assert_eq!(report.blobs_removed, 1);
        assert!(!r.file(&garbage).exists());
        assert!(
            scheduled.run_if_due().await.is_none(),
            "ran twice in one interval"
        );
        let records = r.meta.list_audit(10).await.unwrap();
        assert!(
            records
                .iter()
                .any(|a| a.action == "gc.run" && a.actor == "wharf (schedule)")
        );

        let other = GarbageCollector::new(r.meta.clone(), r.blobs.clone(), "replica-5")
            .with_schedule(Some(Duration::from_secs(60)));
        assert!(
            r.meta
                .take_gc_lease("replica-6/running", now() + 60, now())
                .await
                .unwrap()
        );
        assert!(matches!(other.run_if_due().await, Some(Err(GcError::Busy))));
    }

    /// An upload finishing while its digest is a tombstone waits for the collection to
    /// delete object and row, then stores its own bytes: linked, readable, on disk.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_upload_of_a_blob_being_deleted_waits_and_stores_it_again() {
        let r = registry().await;
        let bytes: &'static [u8] = b"deleted and uploaded again";
        let digest = r.push_blob(Some("a"), bytes, HOUR).await;
        assert_eq!(
            r.meta.unlink_blob("a", &digest, &rec()).await.unwrap(),
            DeleteOutcome::Deleted
        );
        let long_ago = now() - HOUR;
        assert!(
            r.meta
                .take_gc_lease("replica-0/dead", long_ago + 120, long_ago)
                .await
                .unwrap()
        );
        r.meta
            .tombstone_garbage_blobs("replica-0/dead", long_ago, now(), None, 10)
            .await
            .unwrap();
        let uploads = Arc::new(UploadService::new(
            r.blobs.clone(),
            r.meta.clone(),
            3600,
            "replica-1",
        ));
        let upload = {
            let (uploads, digest) = (uploads.clone(), digest.clone());
            tokio::spawn(async move {
                let body = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(bytes))]);
                uploads.upload_whole("b", &digest, body).await
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!upload.is_finished(), "the upload did not wait for the tombstone");
        let report = r.gc.run(&owner(), false, Duration::from_secs(60)).await.unwrap();
        assert_eq!(report.tombstones_finished, 1);
        assert_eq!(upload.await.unwrap().unwrap(), bytes.len() as u64);
        assert_eq!(
            r.meta.linked_blob("b", &digest).await.unwrap(),
            Some(bytes.len() as u64)
        );
        assert_eq!(std::fs::read(r.file(&digest)).unwrap(), bytes);
    }
}
