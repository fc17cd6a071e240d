//! Locks on repositories and tags, enforced by the registry's writes in their own
//! transactions; deletions that re-check the trust data they were decided on.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Barrier;
use wharf_store::{
    DeleteOutcome, Digest, Lock, LockChange, LockChangeOutcome, ManifestPutOutcome, ManifestRecord,
    NewManifest, NewTrustFile, TrustCheck,
};

use crate::{Db, audit_actions, link, rec};

fn manifest(body: &[u8], tag: Option<&str>) -> NewManifest {
    NewManifest {
        record: ManifestRecord {
            digest: Digest::of(body),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            content: Bytes::copy_from_slice(body),
            subject: None,
            artifact_type: None,
            annotations: None,
            created_at: 1,
        },
        blobs: Vec::new(),
        manifests: Vec::new(),
        tag: tag.map(str::to_owned),
        audit: None,
    }
}

fn change(tag: Option<&str>, no_delete: Option<bool>, no_write: Option<bool>) -> LockChange {
    LockChange {
        tag: tag.map(str::to_owned),
        no_delete,
        no_write,
    }
}

fn lock(tag: Option<&str>, no_delete: bool, no_write: bool, at: i64) -> Lock {
    Lock {
        tag: tag.map(str::to_owned),
        no_delete,
        no_write,
        updated_at: at,
    }
}

fn at(action: &str, at: i64) -> wharf_store::AuditRecord {
    wharf_store::AuditRecord { at, ..rec(action) }
}

/// Setting and clearing: only existing repositories and tags, attributes left out kept,
/// a lock with neither attribute gone, every change audited with it and nothing else.
pub async fn locks_are_set_per_attribute_and_audited(db: Db) {
    let s = db.store().await;
    assert_eq!(
        s.change_lock("r", &change(None, Some(true), None), &rec("repository.lock"))
            .await
            .unwrap(),
        LockChangeOutcome::RepositoryUnknown
    );
    s.put_manifest("r", &manifest(b"a", Some("v1"))).await.unwrap();
    assert_eq!(
        s.change_lock(
            "r",
            &change(Some("v2"), Some(true), None),
            &rec("repository.lock")
        )
        .await
        .unwrap(),
        LockChangeOutcome::TagUnknown
    );
    assert!(audit_actions(s.as_ref()).await.is_empty());
    assert_eq!(s.locks("r").await.unwrap(), vec![]);

    let tag_lock = s
        .change_lock(
            "r",
            &change(Some("v1"), Some(true), None),
            &at("repository.lock", 5),
        )
        .await
        .unwrap();
    assert_eq!(
        tag_lock,
        LockChangeOutcome::Changed(Some(lock(Some("v1"), true, false, 5)))
    );
    let both = s
        .change_lock(
            "r",
            &change(Some("v1"), None, Some(true)),
            &at("repository.lock", 6),
        )
        .await
        .unwrap();
    assert_eq!(
        both,
        LockChangeOutcome::Changed(Some(lock(Some("v1"), true, true, 6)))
    );
    s.change_lock("r", &change(None, None, Some(true)), &at("repository.lock", 7))
        .await
        .unwrap();
    // The repository's own lock first, then the tags'.
    assert_eq!(
        s.locks("r").await.unwrap(),
        vec![lock(None, false, true, 7), lock(Some("v1"), true, true, 6)]
    );
    assert_eq!(s.locks("other").await.unwrap(), vec![]);
    let cleared = s
        .change_lock(
            "r",
            &change(Some("v1"), Some(false), Some(false)),
            &at("repository.lock", 8),
        )
        .await
        .unwrap();
    assert_eq!(cleared, LockChangeOutcome::Changed(None));
    assert_eq!(s.locks("r").await.unwrap(), vec![lock(None, false, true, 7)]);
    assert_eq!(audit_actions(s.as_ref()).await, vec!["repository.lock"; 4]);
}

/// What each lock refuses, with nothing stored, deleted or audited; unlocking lets it pass.
pub async fn writes_and_deletions_are_refused_under_locks(db: Db) {
    let s = db.store().await;
    let layer = Digest::of(b"layer");
    link(s.as_ref(), "r", &layer, 5, 1).await.unwrap();
    s.put_manifest("r", &manifest(b"a", Some("v1"))).await.unwrap();
    s.put_manifest("r", &manifest(b"b", Some("v2"))).await.unwrap();

    // A write-locked tag: re-pushing it is refused, other tags and pushes by digest pass.
    s.change_lock(
        "r",
        &change(Some("v1"), None, Some(true)),
        &at("repository.lock", 2),
    )
    .await
    .unwrap();
    let v1_locked = lock(Some("v1"), false, true, 2);
    assert_eq!(
        s.put_manifest("r", &manifest(b"c", Some("v1"))).await.unwrap(),
        ManifestPutOutcome::Locked(v1_locked.clone())
    );
    assert_eq!(s.resolve_tag("r", "v1").await.unwrap(), Some(Digest::of(b"a")));
    assert!(s.get_manifest("r", &Digest::of(b"c")).await.unwrap().is_none());
    assert_eq!(
        s.put_manifest("r", &manifest(b"c", Some("v3"))).await.unwrap(),
        ManifestPutOutcome::Stored
    );
    assert_eq!(
        s.put_manifest("r", &manifest(b"d", None)).await.unwrap(),
        ManifestPutOutcome::Stored
    );
    // A write lock refuses deletion too (as ACR's writeEnabled: false does): the tag, and
    // its manifest (which would take the tag along).
    assert_eq!(
        s.delete_tag("r", "v1", TrustCheck::Skip, &rec("tag.delete"))
            .await
            .unwrap(),
        DeleteOutcome::Locked(v1_locked.clone())
    );
    assert_eq!(
        s.delete_manifest("r", &Digest::of(b"a"), TrustCheck::Skip, &rec("manifest.delete"))
            .await
            .unwrap(),
        DeleteOutcome::Locked(v1_locked.clone())
    );
    assert_eq!(
        s.delete_repository("r", TrustCheck::Skip, &rec("repository.delete"))
            .await
            .unwrap(),
        DeleteOutcome::Locked(v1_locked.clone())
    );
    // Absent is absent, locked or not.
    assert_eq!(
        s.delete_tag("r", "nope", TrustCheck::Skip, &rec("tag.delete"))
            .await
            .unwrap(),
        DeleteOutcome::Absent
    );
    assert_eq!(s.resolve_tag("r", "v1").await.unwrap(), Some(Digest::of(b"a")));
    assert!(s.get_manifest("r", &Digest::of(b"a")).await.unwrap().is_some());

    // A delete-locked repository: no deletion of anything in it, writes still pass.
    s.change_lock("r", &change(None, Some(true), None), &at("repository.lock", 3))
        .await
        .unwrap();
    let repo_locked = lock(None, true, false, 3);
    assert_eq!(
        s.delete_tag("r", "v2", TrustCheck::Skip, &rec("tag.delete"))
            .await
            .unwrap(),
        DeleteOutcome::Locked(repo_locked.clone())
    );
    assert_eq!(
        s.unlink_blob("r", &layer, &rec("blob.delete")).await.unwrap(),
        DeleteOutcome::Locked(repo_locked.clone())
    );
    assert_eq!(s.linked_blob("r", &layer).await.unwrap(), Some(5));
    assert_eq!(
        s.put_manifest("r", &manifest(b"e", Some("v4"))).await.unwrap(),
        ManifestPutOutcome::Stored
    );

    // A write-locked repository: nothing new, by tag or by digest.
    s.change_lock(
        "r",
        &change(None, Some(false), Some(true)),
        &at("repository.lock", 4),
    )
    .await
    .unwrap();
    let repo_frozen = lock(None, false, true, 4);
    assert_eq!(
        s.put_manifest("r", &manifest(b"f", Some("v5"))).await.unwrap(),
        ManifestPutOutcome::Locked(repo_frozen.clone())
    );
    assert_eq!(
        s.put_manifest("r", &manifest(b"f", None)).await.unwrap(),
        ManifestPutOutcome::Locked(repo_frozen)
    );
    assert!(s.get_manifest("r", &Digest::of(b"f")).await.unwrap().is_none());
    let refused_actions = audit_actions(s.as_ref()).await;
    assert!(
        refused_actions.iter().all(|a| a == "repository.lock"),
        "{refused_actions:?}"
    );

    // Unlocked, everything passes.
    s.change_lock("r", &change(None, None, Some(false)), &rec("repository.lock"))
        .await
        .unwrap();
    s.change_lock(
        "r",
        &change(Some("v1"), None, Some(false)),
        &rec("repository.lock"),
    )
    .await
    .unwrap();
    assert_eq!(s.locks("r").await.unwrap(), vec![]);
    assert_eq!(
        s.put_manifest("r", &manifest(b"f", Some("v1"))).await.unwrap(),
        ManifestPutOutcome::Stored
    );
    assert_eq!(
        s.delete_tag("r", "v1", TrustCheck::Skip, &rec("tag.delete"))
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(
        s.unlink_blob("r", &layer, &rec("blob.delete")).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(
        s.delete_repository("r", TrustCheck::Skip, &rec("repository.delete"))
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
}

/// A repository deleted and pushed again starts without locks (a lock belongs to the
/// repository it was set on, never to a later one of the same name).
pub async fn a_new_repository_of_the_same_name_has_no_locks(db: Db) {
    let s = db.store().await;
    s.put_manifest("r", &manifest(b"a", Some("v1"))).await.unwrap();
    s.change_lock(
        "r",
        &change(Some("v1"), Some(true), None),
        &rec("repository.lock"),
    )
    .await
    .unwrap();
    s.change_lock(
        "r",
        &change(Some("v1"), Some(false), None),
        &rec("repository.lock"),
    )
    .await
    .unwrap();
    assert_eq!(
        s.delete_repository("r", TrustCheck::Skip, &rec("repository.delete"))
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
    s.put_manifest("r", &manifest(b"a", Some("v1"))).await.unwrap();
    assert_eq!(s.locks("r").await.unwrap(), vec![]);
    assert_eq!(
        s.delete_tag("r", "v1", TrustCheck::Skip, &rec("tag.delete"))
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
}

fn timestamp(version: i64) -> Vec<NewTrustFile> {
    vec![NewTrustFile {
        role: "timestamp".into(),
        version,
        sha256: format!("ts{version}"),
        content: vec![b'x'],
    }]
}

/// A deletion decided on one state of the trust data goes ahead only while that state is
/// still the newest; otherwise nothing is deleted and the caller checks again.
pub async fn deletions_recheck_the_trust_data(db: Db) {
    let s = db.store().await;
    s.put_manifest("r", &manifest(b"a", Some("v1"))).await.unwrap();
    s.put_manifest("r", &manifest(b"b", Some("v2"))).await.unwrap();
    // Checked while there was no trust data, then a signer published.
    s.trust_commit("r", "h/r", &timestamp(1), None, 1).await.unwrap();
    assert_eq!(
        s.delete_tag("r", "v1", TrustCheck::Unchanged(None), &rec("tag.delete"))
            .await
            .unwrap(),
        DeleteOutcome::TrustChanged
    );
    assert_eq!(
        s.delete_manifest(
            "r",
            &Digest::of(b"a"),
            TrustCheck::Unchanged(Some("ts0")),
            &rec("manifest.delete")
        )
        .await
        .unwrap(),
        DeleteOutcome::TrustChanged
    );
    assert_eq!(
        s.delete_repository("r", TrustCheck::Unchanged(None), &rec("repository.delete"))
            .await
            .unwrap(),
        DeleteOutcome::TrustChanged
    );
    assert_eq!(s.resolve_tag("r", "v1").await.unwrap(), Some(Digest::of(b"a")));
    assert!(audit_actions(s.as_ref()).await.is_empty());
    // Checked against the newest state: deleted. Another repository's trust data is not ours.
    assert_eq!(
        s.delete_tag("r", "v1", TrustCheck::Unchanged(Some("ts1")), &rec("tag.delete"))
            .await
            .unwrap(),
        DeleteOutcome::Deleted
    );
    s.trust_commit("other", "h/other", &timestamp(7), None, 1)
        .await
        .unwrap();
    assert_eq!(
        s.delete_manifest(
            "r",
            &Digest::of(b"b"),
            TrustCheck::Unchanged(Some("ts1")),
            &rec("manifest.delete")
        )
        .await
        .unwrap(),
        DeleteOutcome::Deleted
    );
}

/// Lock changes and pushes of the tag at the same moment: every push either landed before
/// the lock (and the tag shows it) or was refused by it; never a push after the lock.
pub async fn concurrent_pushes_and_a_lock_serialise(db: Db) {
    let s = db.store().await;
    for round in 0..5u8 {
        let repo = format!("r{round}");
        s.put_manifest(&repo, &manifest(&[round, 0], Some("v1")))
            .await
            .unwrap();
        let barrier = Arc::new(Barrier::new(5));
        let mut pushes = Vec::new();
        for i in 1..=4u8 {
            let (s, repo, barrier) = (s.clone(), repo.clone(), barrier.clone());
            pushes.push(tokio::spawn(async move {
                barrier.wait().await;
                let body = [round, i];
                (
                    body,
                    s.put_manifest(&repo, &manifest(&body, Some("v1"))).await.unwrap(),
                )
            }));
        }
        barrier.wait().await;
        s.change_lock(
            &repo,
            &change(Some("v1"), None, Some(true)),
            &rec("repository.lock"),
        )
        .await
        .unwrap();
        // Whatever the tag points at once the lock is in: no push may move it afterwards.
        let after_lock = s.resolve_tag(&repo, "v1").await.unwrap().unwrap();
        let mut stored = Vec::new();
        for p in pushes {
            let (body, outcome) = p.await.unwrap();
            match outcome {
                ManifestPutOutcome::Stored => stored.push(Digest::of(&body)),
                ManifestPutOutcome::Locked(l) => assert_eq!(l.tag.as_deref(), Some("v1")),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(s.resolve_tag(&repo, "v1").await.unwrap().unwrap(), after_lock);
        if !stored.is_empty() {
            assert!(stored.contains(&after_lock), "{stored:?} {after_lock}");
        }
    }
}

/// Retention's deletions honour locks in their own transactions: a delete-locked tag is
/// not removed as beyond a tag rule's newest K, and no manifest of a delete-locked
/// repository as untagged; nothing is audited for them. Unlocked, both go.
pub async fn retention_deletions_respect_locks(db: Db) {
    let s = db.store().await;
    let mut tagged = manifest(b"tagged", Some("v1"));
    tagged.record.created_at = 10;
    s.put_manifest("r", &tagged).await.unwrap();
    s.put_manifest("r", &manifest(b"loose", None)).await.unwrap();
    let (v1, loose) = (Digest::of(b"tagged"), Digest::of(b"loose"));
    s.change_lock(
        "r",
        &change(Some("v1"), Some(true), None),
        &rec("repository.lock"),
    )
    .await
    .unwrap();
    assert!(
        !s.delete_tag_if_unchanged("r", "v1", &v1, 10, &rec("retention.tag"))
            .await
            .unwrap(),
        "a delete-locked tag was removed by retention"
    );
    assert_eq!(s.resolve_tag("r", "v1").await.unwrap(), Some(v1.clone()));
    s.change_lock("r", &change(None, Some(true), None), &rec("repository.lock"))
        .await
        .unwrap();
    assert!(
        !s.delete_untagged_manifest("r", &loose, i64::MAX, &rec("retention.manifest"))
            .await
            .unwrap(),
        "a manifest of a delete-locked repository was removed by retention"
    );
    assert!(s.get_manifest("r", &loose).await.unwrap().is_some());
    assert!(
        !audit_actions(s.as_ref())
            .await
            .iter()
            .any(|a| a.starts_with("retention.")),
        "a refused removal was audited"
    );

    s.change_lock("r", &change(None, Some(false), None), &rec("repository.lock"))
        .await
        .unwrap();
    s.change_lock(
        "r",
        &change(Some("v1"), Some(false), None),
        &rec("repository.lock"),
    )
    .await
    .unwrap();
    assert!(
        s.delete_untagged_manifest("r", &loose, i64::MAX, &rec("retention.manifest"))
            .await
            .unwrap()
    );
    assert!(
        s.delete_tag_if_unchanged("r", "v1", &v1, 10, &rec("retention.tag"))
            .await
            .unwrap()
    );
}
