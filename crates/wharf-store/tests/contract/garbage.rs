//! Garbage collection of blob links and blobs: what is garbage, the grace period, the
//! tombstone protocol, the GC lease, and pushes racing a collection.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sqlx::Connection;
use tokio::sync::Barrier;
use wharf_store::DeleteOutcome;
use wharf_store::{
    BlobLinkOutcome, BlobReservation, Digest, GarbageBlob, LinkCursor, ManifestPutOutcome, ManifestRecord,
    MetadataStore, NewManifest, StoreError,
};

use crate::{Db, link, rec};

/// Times used throughout: blobs and links made at `OLD` are garbage for a collection with
/// cutoff `CUTOFF` (if nothing references them); those made at `NEW` are in their grace.
const OLD: i64 = 100;
const CUTOFF: i64 = 1_000;
const NEW: i64 = 2_000;
/// "Now" for lease checks.
const NOW: i64 = 5_000;

fn manifest(body: &str, blobs: &[&Digest]) -> NewManifest {
    NewManifest {
        record: ManifestRecord {
            digest: Digest::of(body.as_bytes()),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            content: Bytes::copy_from_slice(body.as_bytes()),
            subject: None,
            artifact_type: None,
            annotations: None,
            created_at: NEW,
        },
        blobs: blobs.iter().map(|d| (*d).clone()).collect(),
        manifests: Vec::new(),
        tag: None,
        audit: None,
    }
}

fn d(name: &str) -> Digest {
    Digest::of(name.as_bytes())
}

/// Every garbage link, walked `limit` at a time: (repository, digest name).
async fn all_garbage_links(s: &dyn MetadataStore, cutoff: i64, limit: u32) -> BTreeSet<(String, Digest)> {
    let mut out = BTreeSet::new();
    let mut after: Option<LinkCursor> = None;
    loop {
        let batch = s.garbage_links(cutoff, after.as_ref(), limit).await.unwrap();
        assert!(batch.links.len() <= limit as usize);
        out.extend(batch.links.into_iter().map(|l| (l.repository, l.digest)));
        match batch.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

async fn all_garbage_blobs(s: &dyn MetadataStore, cutoff: i64, limit: u32) -> BTreeSet<(Digest, u64)> {
    let mut out = BTreeSet::new();
    let mut after: Option<Digest> = None;
    loop {
        let batch = s.garbage_blobs(cutoff, after.as_ref(), limit).await.unwrap();
        out.extend(batch.blobs.into_iter().map(|b| (b.digest, b.size)));
        match batch.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

/// A whole collection as the service runs it, except that there are no objects to delete.
async fn collect(s: &dyn MetadataStore, holder: &str, cutoff: i64, limit: u32) -> (u64, Vec<GarbageBlob>) {
    let mut links = 0;
    let mut after = None;
    loop {
        let batch = s
            .sweep_garbage_links(holder, NOW, cutoff, after.as_ref(), limit)
            .await
            .unwrap();
        links += batch.links.len() as u64;
        match batch.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut blobs = Vec::new();
    let mut after = None;
    loop {
        let batch = s
            .tombstone_garbage_blobs(holder, NOW, cutoff, after.as_ref(), limit)
            .await
            .unwrap();
        let digests: Vec<Digest> = batch.blobs.iter().map(|b| b.digest.clone()).collect();
        assert_eq!(
            s.finish_tombstones(holder, NOW, &digests).await.unwrap(),
            digests.len() as u64
        );
        blobs.extend(batch.blobs);
        match batch.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    (links, blobs)
}

/// Exactly the unreferenced links past the grace period go, in any batch size; a blob
/// shared by several repositories stays while any of its links is referenced; a blob goes
/// once no link is left and it was last touched before the cutoff. The dry-run views
/// (`garbage_links`, `garbage_blobs`) predict the run exactly and change nothing.
pub async fn garbage_is_found_exactly(db: Db) {
    let s = db.store().await;
    let (shared, layer, unref, young, orphan, fresh_orphan, config) = (
        d("shared"),
        d("layer-a"),
        d("unreferenced"),
        d("young"),
        d("orphan"),
        d("fresh-orphan"),
        d("config-b"),
    );
    // `shared` is linked in a and b, referenced only by a's manifest.
    link(&*s, "a", &shared, 1, OLD).await.unwrap();
    link(&*s, "b", &shared, 1, OLD).await.unwrap();
    link(&*s, "a", &layer, 10, OLD).await.unwrap();
    link(&*s, "a", &unref, 100, OLD).await.unwrap();
    link(&*s, "a", &young, 1_000, NEW).await.unwrap();
    link(&*s, "b", &config, 10_000, OLD).await.unwrap();
    // Reserved by uploads that never finished.
    assert_eq!(
        s.reserve_blob(&orphan, 100_000, OLD).await.unwrap(),
        BlobReservation::Reserved
    );
    assert_eq!(
        s.reserve_blob(&fresh_orphan, 1_000_000, NEW).await.unwrap(),
        BlobReservation::Reserved
    );
    assert_eq!(
        s.put_manifest("a", &manifest("ma", &[&shared, &layer]))
            .await
            .unwrap(),
        ManifestPutOutcome::Stored
    );
    assert_eq!(
        s.put_manifest("b", &manifest("mb", &[&config])).await.unwrap(),
        ManifestPutOutcome::Stored
    );

    let links: BTreeSet<(String, Digest)> =
        [("a".to_owned(), unref.clone()), ("b".to_owned(), shared.clone())].into();
    let blobs: BTreeSet<(Digest, u64)> = [(unref.clone(), 100), (orphan.clone(), 100_000)].into();
    for limit in [1, 2, 100] {
        assert_eq!(
            all_garbage_links(&*s, CUTOFF, limit).await,
            links,
            "limit {limit}"
        );
        assert_eq!(
            all_garbage_blobs(&*s, CUTOFF, limit).await,
            blobs,
            "limit {limit}"
        );
    }
    // Nothing is garbage before everything is older than the grace period.
    assert!(all_garbage_links(&*s, OLD, 10).await.is_empty());
    assert!(all_garbage_blobs(&*s, OLD, 10).await.is_empty());
    // The dry-run views changed nothing.
    assert_eq!(s.linked_blob("b", &shared).await.unwrap(), Some(1));
    assert_eq!(s.known_blob(&orphan).await.unwrap(), Some(100_000));

    assert!(s.take_gc_lease("gc-1", NOW + 60, NOW).await.unwrap());
    let (links_removed, removed) = collect(&*s, "gc-1", CUTOFF, 1).await;
    assert_eq!(links_removed, 2);
    let removed: BTreeSet<(Digest, u64)> = removed.into_iter().map(|b| (b.digest, b.size)).collect();
    assert_eq!(removed, blobs);
    assert!(s.pending_tombstones(None, 10).await.unwrap().is_empty());

    // What stays, stays whole.
    assert_eq!(s.linked_blob("a", &shared).await.unwrap(), Some(1));
    assert_eq!(s.linked_blob("b", &shared).await.unwrap(), None);
    assert_eq!(s.linked_blob("a", &layer).await.unwrap(), Some(10));
    assert_eq!(s.linked_blob("a", &young).await.unwrap(), Some(1_000));
    assert_eq!(s.linked_blob("b", &config).await.unwrap(), Some(10_000));
    assert_eq!(s.known_blob(&fresh_orphan).await.unwrap(), Some(1_000_000));
    assert_eq!(s.linked_blob("a", &unref).await.unwrap(), None);
    assert_eq!(s.known_blob(&unref).await.unwrap(), None);
    assert_eq!(s.known_blob(&orphan).await.unwrap(), None);
    assert!(s.get_manifest("a", &d("ma")).await.unwrap().is_some());
    // A second run finds nothing.
    assert_eq!(collect(&*s, "gc-1", CUTOFF, 100).await, (0, Vec::new()));
    // Gone means gone: linking needs a reservation (a fresh row) first.
    assert_eq!(
        s.link_blob("a", &unref, None, NEW).await.unwrap(),
        BlobLinkOutcome::Missing
    );
    link(&*s, "a", &unref, 100, NEW).await.unwrap();
}

/// The grace period counts from the last touch: a reservation, a link, a link renewed by
/// linking again. An unlinked blob that an upload touched recently stays; so does a link
/// renewed after the manifest that used it was deleted.
pub async fn the_grace_period_counts_from_the_last_touch(db: Db) {
    let s = db.store().await;
    let (relinked, reserved, renewed) = (d("relinked"), d("reserved"), d("renewed"));
    // Linked long ago in a, linked again recently in b, then unlinked everywhere.
    link(&*s, "a", &relinked, 1, OLD).await.unwrap();
    link(&*s, "b", &relinked, 1, NEW).await.unwrap();
    for repo in ["a", "b"] {
        assert_eq!(
            s.unlink_blob(repo, &relinked, &rec("blob.delete")).await.unwrap(),
            DeleteOutcome::Deleted
        );
    }
    // Old, unlinked, but reserved again by an upload in flight.
    link(&*s, "a", &reserved, 2, OLD).await.unwrap();
    assert_eq!(
        s.unlink_blob("a", &reserved, &rec("blob.delete")).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(
        s.reserve_blob(&reserved, 2, NEW).await.unwrap(),
        BlobReservation::Reserved
    );
    // A link made long ago and made again recently (a re-upload before a manifest PUT).
    link(&*s, "a", &renewed, 3, OLD).await.unwrap();
    link(&*s, "a", &renewed, 3, NEW).await.unwrap();
    // An older touch never moves the time back.
    link(&*s, "a", &renewed, 3, OLD).await.unwrap();

    assert!(all_garbage_links(&*s, CUTOFF, 10).await.is_empty());
    assert!(all_garbage_blobs(&*s, CUTOFF, 10).await.is_empty());
    assert!(s.take_gc_lease("gc", NOW + 60, NOW).await.unwrap());
    assert_eq!(collect(&*s, "gc", CUTOFF, 10).await, (0, Vec::new()));
    assert_eq!(s.known_blob(&relinked).await.unwrap(), Some(1));
    assert_eq!(s.known_blob(&reserved).await.unwrap(), Some(2));
    assert_eq!(s.linked_blob("a", &renewed).await.unwrap(), Some(3));
    // Past their grace too, all of it goes.
    let (links, blobs) = collect(&*s, "gc", NEW + 1, 10).await;
    assert_eq!(links, 1);
    assert_eq!(blobs.len(), 3);
}

/// A blob HEAD or GET renews an old link (`linked_blob_renewing`): a push that found the
/// blob and skips its upload keeps the link for its manifest PUT. A link newer than
/// `renew_before` is only read, never written; a swept link answers `None`.
pub async fn reading_a_link_renews_it_when_old(db: Db) {
    let s = db.store().await;
    let (stale, fresh) = (d("stale"), d("fresh"));
    // Both unreferenced: `stale` linked long ago (its manifest deleted), `fresh` recently.
    link(&*s, "a", &stale, 5, OLD).await.unwrap();
    link(&*s, "a", &fresh, 6, NEW).await.unwrap();
    const RENEW_BEFORE: i64 = 1_500;
    const READ_AT: i64 = 3_000;
    // Between the old times and the renewed one.
    const LATER_CUTOFF: i64 = NEW + 1;
    let links_at = |cutoff| {
        let s = s.clone();
        async move {
            let batch = s.garbage_links(cutoff, None, 10).await.unwrap().links;
            batch
                .into_iter()
                .map(|l| (l.repository, l.digest, l.linked_at))
                .collect::<BTreeSet<_>>()
        }
    };

    assert_eq!(
        s.linked_blob_renewing("a", &stale, RENEW_BEFORE, READ_AT)
            .await
            .unwrap(),
        Some(5)
    );
    assert_eq!(
        s.linked_blob_renewing("a", &fresh, RENEW_BEFORE, READ_AT)
            .await
            .unwrap(),
        Some(6)
    );
    // Renewed once: read again later with the same bound, it is not written again.
    assert_eq!(
        s.linked_blob_renewing("a", &stale, RENEW_BEFORE, READ_AT + 500)
            .await
            .unwrap(),
        Some(5)
    );
    // Neither a repository nor a digest that is not linked is created.
    assert_eq!(
        s.linked_blob_renewing("a", &d("none"), RENEW_BEFORE, READ_AT)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.linked_blob_renewing("z", &stale, RENEW_BEFORE, READ_AT)
            .await
            .unwrap(),
        None
    );
    assert!(!s.repository_exists("z").await.unwrap());
    // `fresh` kept its time (it was only read); `stale` has the time of the first read.
    assert_eq!(
        links_at(LATER_CUTOFF).await,
        BTreeSet::from([("a".to_owned(), fresh.clone(), NEW)])
    );
    assert_eq!(
        links_at(READ_AT + 1).await,
        BTreeSet::from([
            ("a".to_owned(), fresh.clone(), NEW),
            ("a".to_owned(), stale.clone(), READ_AT)
        ])
    );

    // A collection with a cutoff between the old and the renewed time sweeps `fresh` only.
    assert!(s.take_gc_lease("gc", NOW + 60, NOW).await.unwrap());
    let swept = s
        .sweep_garbage_links("gc", NOW, LATER_CUTOFF, None, 10)
        .await
        .unwrap();
    assert_eq!(
        swept.links.into_iter().map(|l| l.digest).collect::<Vec<_>>(),
        std::slice::from_ref(&fresh)
    );
    assert_eq!(s.linked_blob("a", &stale).await.unwrap(), Some(5));
    // A swept link is gone for a reader too, old or not: the client uploads the blob.
    assert_eq!(
        s.linked_blob_renewing("a", &fresh, RENEW_BEFORE, READ_AT)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.linked_blob_renewing("a", &fresh, NOW, NOW).await.unwrap(), None);
    assert_eq!(s.linked_blob("a", &fresh).await.unwrap(), None);
}

/// A tombstoned blob (a collection is deleting its object) cannot be reserved, linked or
/// mounted; a manifest cannot reference it (it has no link). Tombstones are listed for
/// resuming until finished; finishing needs the lease and deletes only tombstones. Once
/// finished, a reservation creates the blob afresh.
pub async fn tombstoned_blobs_cannot_be_linked(db: Db) {
    let s = db.store().await;
    let (x, live) = (d("x"), d("live"));
    link(&*s, "a", &x, 7, OLD).await.unwrap();
    assert_eq!(
        s.unlink_blob("a", &x, &rec("blob.delete")).await.unwrap(),
        DeleteOutcome::Deleted
    );
    link(&*s, "a", &live, 8, OLD).await.unwrap();
    // A link left in another repository (b) keeps `live`; `x` has none.
    link(&*s, "b", &live, 8, NEW).await.unwrap();
    assert!(s.take_gc_lease("gc", NOW + 60, NOW).await.unwrap());
    let batch = s
        .tombstone_garbage_blobs("gc", NOW, CUTOFF, None, 10)
        .await
        .unwrap();
    assert_eq!(
        batch.blobs,
        [GarbageBlob {
            digest: x.clone(),
            size: 7
        }]
    );
    assert_eq!(batch.next, None);
    assert_eq!(s.pending_tombstones(None, 10).await.unwrap(), batch.blobs);
    assert_eq!(s.pending_tombstones(Some(&x), 10).await.unwrap(), []);

    assert_eq!(
        s.reserve_blob(&x, 7, NEW).await.unwrap(),
        BlobReservation::Deleting
    );
    assert_eq!(
        s.link_blob("a", &x, None, NEW).await.unwrap(),
        BlobLinkOutcome::Deleting
    );
    assert_eq!(
        s.link_blob("c", &x, Some("a"), NEW).await.unwrap(),
        BlobLinkOutcome::Missing
    );
    assert_eq!(s.linked_blob("a", &x).await.unwrap(), None);
    assert!(
        !s.repository_exists("c").await.unwrap(),
        "a refused link made a repository"
    );
    assert_eq!(
        s.put_manifest("a", &manifest("m", &[&x])).await.unwrap(),
        ManifestPutOutcome::MissingBlob(x.clone())
    );
    // A collection that does not hold the lease changes nothing.
    assert!(matches!(
        s.finish_tombstones("other", NOW, std::slice::from_ref(&x)).await,
        Err(StoreError::Conflict(_))
    ));
    // Finishing leaves live blobs alone.
    assert_eq!(
        s.finish_tombstones("gc", NOW, &[x.clone(), live.clone()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.known_blob(&live).await.unwrap(), Some(8));
    assert_eq!(s.pending_tombstones(None, 10).await.unwrap(), []);
    assert_eq!(s.known_blob(&x).await.unwrap(), None);
    assert_eq!(
        s.reserve_blob(&x, 7, NEW).await.unwrap(),
        BlobReservation::Reserved
    );
    assert_eq!(
        s.link_blob("a", &x, None, NEW).await.unwrap(),
        BlobLinkOutcome::Linked { size: 7 }
    );
    // A mount links only what the source repository links.
    assert_eq!(
        s.link_blob("c", &x, Some("a"), NEW).await.unwrap(),
        BlobLinkOutcome::Linked { size: 7 }
    );
    assert_eq!(
        s.link_blob("c", &live, Some("nowhere"), NEW).await.unwrap(),
        BlobLinkOutcome::Missing
    );
}

/// One collection at a time: the lease is refused while another holder has it unexpired,
/// renewable by its holder, free once given back or expired; a collector that lost it can
/// change nothing; of many taking it at once, one gets it.
pub async fn the_gc_lease_admits_one_runner(db: Db) {
    let s = db.store().await;
    assert_eq!(s.gc_lease(100).await.unwrap(), None);
    assert!(s.take_gc_lease("r1/a", 160, 100).await.unwrap());
    assert!(!s.take_gc_lease("r2/b", 170, 110).await.unwrap());
    // Who runs, for the status page; an expired lease is nobody's.
    let held = wharf_store::GcLease {
        holder: "r1/a".into(),
        expires_at: 160,
    };
    assert_eq!(s.gc_lease(110).await.unwrap(), Some(held));
    assert_eq!(s.gc_lease(160).await.unwrap(), None);
    assert!(
        s.take_gc_lease("r1/a", 180, 150).await.unwrap(),
        "the holder could not renew"
    );
    assert!(!s.take_gc_lease("r2/b", 200, 170).await.unwrap());
    // Every change is checked against the lease at the time given.
    s.sweep_garbage_links("r1/a", 170, 0, None, 10).await.unwrap();
    for holder in ["r2/b", "r1/a"] {
        let at = if holder == "r1/a" { 180 } else { 170 };
        assert!(matches!(
            s.sweep_garbage_links(holder, at, 0, None, 10).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.tombstone_garbage_blobs(holder, at, 0, None, 10).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.finish_tombstones(holder, at, &[]).await,
            Err(StoreError::Conflict(_))
        ));
    }
    // Expired: anyone may take it, and the old holder is out.
    assert!(s.take_gc_lease("r2/b", 240, 180).await.unwrap());
    assert!(!s.take_gc_lease("r1/a", 250, 190).await.unwrap());
    s.release_gc_lease("r1/a").await.unwrap();
    assert!(!s.take_gc_lease("r3/c", 250, 190).await.unwrap());
    s.release_gc_lease("r2/b").await.unwrap();
    assert!(s.take_gc_lease("r3/c", 250, 190).await.unwrap());
    s.release_gc_lease("r3/c").await.unwrap();

    let barrier = Arc::new(Barrier::new(8));
    let mut takers = Vec::new();
    for i in 0..8 {
        let (s, barrier) = (s.clone(), barrier.clone());
        takers.push(tokio::spawn(async move {
            barrier.wait().await;
            s.take_gc_lease(&format!("r{i}/x"), 400, 300).await.unwrap()
        }));
    }
    let mut won = 0;
    for t in takers {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
}

/// What a round of the race test pushes while a collection runs.
#[derive(Debug, Clone, Copy)]
enum Push {
    /// A manifest PUT referencing the garbage link itself (docker found the blob by HEAD).
    Manifest,
    /// A cross-repository mount of the blob, then a manifest PUT in the target.
    Mount,
    /// An upload of the same bytes into another repository (reserve, store the object,
    /// link), then a manifest PUT there.
    Upload,
}

/// Pushes racing a whole collection (links swept, blobs tombstoned, objects deleted, rows
/// deleted) with a grace period that is already over, many rounds, on real concurrent
/// transactions: a push either fails cleanly (missing blob) or leaves a stored manifest
/// whose blob is linked, live and has its object; and no blob row is left without its
/// object. Objects are a set here, written and deleted as the server does.
pub async fn pushes_racing_a_collection_never_dangle(db: Db) {
    let s = db.store().await;
    let objects: Arc<Mutex<HashSet<Digest>>> = Arc::default();
    assert!(s.take_gc_lease("gc", NOW + 3600, NOW).await.unwrap());
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    for round in 0..300 {
        let push = [Push::Manifest, Push::Mount, Push::Upload][round % 3];
        let blob = d(&format!("blob-{round}"));
        // Pushed long ago, its manifest deleted since: link and blob are garbage.
        link(&*s, "src", &blob, 5, OLD).await.unwrap();
        objects.lock().unwrap().insert(blob.clone());
        let barrier = Arc::new(Barrier::new(2));
        let pusher = {
            let (s, objects, blob, barrier) = (s.clone(), objects.clone(), blob.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let repo = match push {
                    Push::Manifest => "src".to_owned(),
                    Push::Mount => {
                        let dst = format!("mount-{round}");
                        if s.link_blob(&dst, &blob, Some("src"), NEW).await.unwrap()
                            != (BlobLinkOutcome::Linked { size: 5 })
                        {
                            return ("mount refused", None);
                        }
                        dst
                    }
                    Push::Upload => {
                        let dst = format!("upload-{round}");
                        // As `UploadService::reserve`: wait out a deletion in progress.
                        while s.reserve_blob(&blob, 5, NEW).await.unwrap() == BlobReservation::Deleting {
                            tokio::task::yield_now().await;
                        }
                        objects.lock().unwrap().insert(blob.clone());
                        match s.link_blob(&dst, &blob, None, NEW).await.unwrap() {
                            BlobLinkOutcome::Linked { .. } => {}
                            other => panic!("a reserved blob could not be linked: {other:?}"),
                        }
                        dst
                    }
                };
                let m = manifest(&format!("m-{round}"), &[&blob]);
                match s.put_manifest(&repo, &m).await.unwrap() {
                    ManifestPutOutcome::Stored => ("stored", Some(repo)),
                    ManifestPutOutcome::MissingBlob(_) => ("missing blob", None),
                    other => panic!("{other:?}"),
                }
            })
        };
        let collector = {
            let (s, objects, barrier) = (s.clone(), objects.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut after = None;
                loop {
                    let batch = s
                        .sweep_garbage_links("gc", NOW, CUTOFF, after.as_ref(), 100)
                        .await
                        .unwrap();
                    match batch.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
                let batch = s
                    .tombstone_garbage_blobs("gc", NOW, CUTOFF, None, 100)
                    .await
                    .unwrap();
                let digests: Vec<Digest> = batch.blobs.into_iter().map(|b| b.digest).collect();
                for digest in &digests {
                    objects.lock().unwrap().remove(digest);
                    tokio::task::yield_now().await;
                }
                s.finish_tombstones("gc", NOW, &digests).await.unwrap();
            })
        };
        let (what, stored_in) = pusher.await.unwrap();
        collector.await.unwrap();
        *outcomes.entry(format!("{push:?}: {what}")).or_default() += 1;
        if let Some(repo) = stored_in {
            assert!(
                s.get_manifest(&repo, &d(&format!("m-{round}")))
                    .await
                    .unwrap()
                    .is_some(),
                "round {round}"
            );
            assert_eq!(
                s.linked_blob(&repo, &blob).await.unwrap(),
                Some(5),
                "round {round} ({push:?}): a stored manifest lost its blob link"
            );
        }
        if s.known_blob(&blob).await.unwrap().is_some() {
            let tombstoned = s.pending_tombstones(None, 1000).await.unwrap();
            assert!(
                !tombstoned.iter().any(|b| b.digest == blob),
                "round {round}: tombstone left"
            );
            assert!(
                objects.lock().unwrap().contains(&blob),
                "round {round} ({push:?}): a blob row without its object"
            );
        }
    }
    eprintln!("outcomes: {outcomes:?}");
}

/// PostgreSQL only, each interleaving forced with a transaction held open on a connection
/// of its own. (SQLite runs one writer at a time: nothing can interleave there.)
/// - A link a manifest PUT holds (FOR KEY SHARE, uncommitted) is skipped by the sweep.
/// - A PUT that comes while a collection holds the link waits, then finds it gone.
/// - A blob a link holds (its touch uncommitted) is skipped by the tombstoning, and once
///   the touch commits it is not garbage.
///
/// (A PUT that commits between the sweep's choosing and its locking is what the second,
/// re-checking statement is for; `pushes_racing_a_collection_never_dangle` covers it.)
pub async fn postgres_interleavings_are_safe(db: Db) {
    let Db::Postgres { url } = &db else { return };
    let s = db.store().await;
    assert!(s.take_gc_lease("gc", NOW + 3600, NOW).await.unwrap());
    let (held, taken, blob) = (d("held"), d("taken"), d("blob"));
    link(&*s, "r", &held, 1, OLD).await.unwrap();
    link(&*s, "r", &taken, 2, OLD).await.unwrap();

    // A push mid-transaction holds `held`: the sweep skips it and takes `taken`.
    let mut pusher = sqlx::PgConnection::connect(url).await.unwrap();
    let mut tx = pusher.begin().await.unwrap();
    sqlx::query(
        "SELECT 1 FROM repository_blobs WHERE digest = $1
           AND repository_id = (SELECT id FROM repositories WHERE name = 'r') FOR KEY SHARE",
    )
    .bind(held.as_str())
    .execute(&mut *tx)
    .await
    .unwrap();
    let swept = s.sweep_garbage_links("gc", NOW, CUTOFF, None, 10).await.unwrap();
    assert_eq!(
        swept.links.iter().map(|l| &l.digest).collect::<Vec<_>>(),
        [&taken]
    );
    tx.rollback().await.unwrap();

    // A collection mid-transaction holds `held` (as its first statement does): a PUT
    // waits, and once the link is deleted it reports the blob missing.
    let mut collector = sqlx::PgConnection::connect(url).await.unwrap();
    let mut tx = collector.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM repository_blobs WHERE digest = $1 FOR UPDATE")
        .bind(held.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
    let put = {
        let (s, held) = (s.clone(), held.clone());
        tokio::spawn(async move { s.put_manifest("r", &manifest("waits", &[&held])).await.unwrap() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !put.is_finished(),
        "the PUT did not wait for the collection's lock"
    );
    sqlx::query("DELETE FROM repository_blobs WHERE digest = $1")
        .bind(held.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(put.await.unwrap(), ManifestPutOutcome::MissingBlob(held.clone()));

    // A blob whose link is being made (its row touched, not yet committed) is skipped by
    // the tombstoning, and once the link commits it is not garbage.
    link(&*s, "r", &blob, 3, OLD).await.unwrap();
    assert_eq!(
        s.unlink_blob("r", &blob, &rec("blob.delete")).await.unwrap(),
        DeleteOutcome::Deleted
    );
    let mut linker = sqlx::PgConnection::connect(url).await.unwrap();
    let mut tx = linker.begin().await.unwrap();
    sqlx::query("UPDATE blobs SET last_linked_at = $2 WHERE digest = $1")
        .bind(blob.as_str())
        .bind(NEW)
        .execute(&mut *tx)
        .await
        .unwrap();
    let batch = s
        .tombstone_garbage_blobs("gc", NOW, CUTOFF, None, 10)
        .await
        .unwrap();
    assert!(
        !batch.blobs.iter().any(|b| b.digest == blob),
        "a blob being linked was tombstoned"
    );
    tx.commit().await.unwrap();
    assert_eq!(
        s.link_blob("r", &blob, None, NEW).await.unwrap(),
        BlobLinkOutcome::Linked { size: 3 }
    );
    let batch = s
        .tombstone_garbage_blobs("gc", NOW, CUTOFF, None, 10)
        .await
        .unwrap();
    assert!(!batch.blobs.iter().any(|b| b.digest == blob));
}
