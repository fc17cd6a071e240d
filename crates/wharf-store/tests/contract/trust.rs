//! Content trust: trust files, the changefeed, server-held keys.

use std::sync::Arc;

use tokio::sync::Barrier;
use wharf_store::{NewTrustFile, StoreError, TrustKeyRecord};

use crate::{Db, audit_actions, rec};

fn file(role: &str, version: i64, body: &str) -> NewTrustFile {
    NewTrustFile {
        role: role.into(),
        version,
        sha256: format!("{role}{version}"),
        content: body.as_bytes().to_vec(),
    }
}

fn key(id: &str) -> TrustKeyRecord {
    TrustKeyRecord {
        role: "timestamp".into(),
        key_id: id.into(),
        keytype: "ed25519".into(),
        sealed_key: vec![1],
        created_at: 1,
    }
}

pub async fn trust_update_commits_whole_or_nothing_and_conflicts_on_versions(db: Db) {
    let s = db.store().await;
    let v1 = [
        file("root", 1, "r1"),
        file("targets", 1, "t1"),
        file("snapshot", 1, "s1"),
        file("timestamp", 1, "ts1"),
    ];
    s.trust_commit("a", "h/a", &v1, Some(&rec("trust.update")), 10)
        .await
        .unwrap();
    // A second publisher computed from the same state: its snapshot/timestamp collide.
    let racer = [
        file("targets", 2, "t2b"),
        file("snapshot", 2, "s2b"),
        file("timestamp", 1, "ts1b"),
    ];
    assert!(matches!(
        s.trust_commit("a", "h/a", &racer, None, 11).await,
        Err(StoreError::Conflict(_))
    ));
    // Nothing of the failed update was stored (targets 2 must not exist).
    assert!(
        s.trust_file_by_version("a", "targets", 2)
            .await
            .unwrap()
            .is_none()
    );
    let ok = [
        file("targets", 2, "t2"),
        file("snapshot", 2, "s2"),
        file("timestamp", 2, "ts2"),
    ];
    s.trust_commit("a", "h/a", &ok, None, 12).await.unwrap();
    let cur = s.trust_current("a").await.unwrap();
    let versions: Vec<(String, i64)> = cur.iter().map(|f| (f.role.clone(), f.version)).collect();
    assert_eq!(
        versions,
        vec![
            ("root".into(), 1),
            ("snapshot".into(), 2),
            ("targets".into(), 2),
            ("timestamp".into(), 2)
        ]
    );
    assert_eq!(
        s.trust_file_by_sha256("a", "targets", "targets1")
            .await
            .unwrap()
            .unwrap()
            .content,
        b"t1"
    );
    // Other repositories are independent.
    s.trust_commit("b", "h/b", &v1, None, 13).await.unwrap();
    let feed = s.trust_changes(None, 0, 100).await.unwrap();
    assert_eq!(feed.iter().map(|c| c.version).collect::<Vec<_>>(), vec![1, 2, 1]);
    assert_eq!(s.trust_changes(Some("a"), 0, 100).await.unwrap().len(), 2);
    assert_eq!(s.trust_changes(None, -1, 1).await.unwrap()[0].gun, "h/b");
    assert_eq!(s.trust_changes(None, 3, -2).await.unwrap().len(), 2);
}

pub async fn concurrent_identical_updates_one_wins(db: Db) {
    let s = db.store().await;
    let v1 = vec![
        file("root", 1, "r1"),
        file("targets", 1, "t1"),
        file("timestamp", 1, "ts"),
    ];
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (s, v1) = (s.clone(), v1.clone());
        tasks.push(tokio::spawn(async move {
            s.trust_commit("a", "h/a", &v1, None, 1).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 1);
}

/// Publishers that all read version n race with different n+1 updates: exactly one lands
/// whole (all its files, one changefeed row, one audit record), the others get `Conflict`
/// and leave nothing behind.
pub async fn concurrent_publishers_from_one_state_one_wins(db: Db) {
    let s = db.store().await;
    s.trust_commit(
        "a",
        "h/a",
        &[file("root", 1, "r"), file("timestamp", 1, "ts")],
        None,
        1,
    )
    .await
    .unwrap();
    for version in 2..12 {
        let barrier = Arc::new(Barrier::new(4));
        let mut tasks = Vec::new();
        for i in 0..4 {
            let (s, barrier) = (s.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                let body = format!("p{i}");
                let files = [file("targets", version, &body), file("timestamp", version, &body)];
                barrier.wait().await;
                s.trust_commit("a", "h/a", &files, Some(&rec("trust.update")), version)
                    .await
                    .map(|()| body)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(body) => winners.push(body),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("version {version}: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "version {version}");
        for role in ["targets", "timestamp"] {
            let f = s
                .trust_file_by_version("a", role, version)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(f.content, winners[0].as_bytes(), "{role} {version}");
        }
    }
    let feed = s.trust_changes(Some("a"), 0, 100).await.unwrap();
    assert_eq!(
        feed.iter().map(|c| c.version).collect::<Vec<_>>(),
        (1..12).collect::<Vec<_>>()
    );
    assert!(feed.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(audit_actions(&*s).await.len(), 10);
}

/// Publishers racing with different versions: whatever lands, the stored versions only
/// ever rise. The changefeed, in commit order, shows strictly increasing timestamp
/// versions, and the current timestamp is the highest accepted one (a lower version whose
/// check ran before a higher one committed must not land after it).
pub async fn concurrent_publishers_of_different_versions_never_go_backwards(db: Db) {
    let s = db.store().await;
    s.trust_commit(
        "a",
        "h/a",
        &[file("root", 1, "r"), file("timestamp", 1, "ts")],
        None,
        1,
    )
    .await
    .unwrap();
    let mut base = 1;
    for round in 0..10 {
        let barrier = Arc::new(Barrier::new(4));
        let mut tasks = Vec::new();
        for i in 1..=4 {
            let (s, barrier) = (s.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                let version = base + i;
                barrier.wait().await;
                s.trust_commit("a", "h/a", &[file("timestamp", version, "ts")], None, version)
                    .await
                    .map(|()| version)
            }));
        }
        let mut accepted = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(v) => accepted.push(v),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        let highest = *accepted.iter().max().expect("one publisher always wins");
        let current = s.trust_current("a").await.unwrap();
        assert_eq!(
            current[1].version, highest,
            "round {round}: accepted {accepted:?}"
        );
        base = highest;
    }
    let feed = s.trust_changes(Some("a"), 0, 1000).await.unwrap();
    let versions: Vec<i64> = feed.iter().map(|c| c.version).collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
}

/// A version at or below the stored one is a conflict, even when that exact version was
/// never stored (an update computed from an older state must not land behind a newer one).
pub async fn versions_must_rise(db: Db) {
    let s = db.store().await;
    s.trust_commit(
        "a",
        "h/a",
        &[file("root", 1, "r"), file("targets", 3, "t3")],
        None,
        1,
    )
    .await
    .unwrap();
    for stale in [file("targets", 2, "t2"), file("targets", 3, "t3b")] {
        assert!(matches!(
            s.trust_commit("a", "h/a", &[file("snapshot", 1, "s"), stale], None, 2)
                .await,
            Err(StoreError::Conflict(_))
        ));
    }
    assert!(
        s.trust_file_by_version("a", "snapshot", 1)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.trust_file_by_version("a", "targets", 2)
            .await
            .unwrap()
            .is_none()
    );
    s.trust_commit("a", "h/a", &[file("targets", 5, "t5")], None, 3)
        .await
        .unwrap();
    let t = s.trust_current("a").await.unwrap();
    assert_eq!(
        t.iter().map(|f| (f.role.as_str(), f.version)).collect::<Vec<_>>(),
        [("root", 1), ("targets", 5)]
    );
    assert_eq!(t[1].created_at, 3);
    assert_eq!(t[1].sha256, "targets5");
    // A file without a timestamp writes no changefeed row.
    assert!(s.trust_changes(None, 0, 10).await.unwrap().is_empty());
}

pub async fn deletes_are_scoped_and_disable_wipes_everything_atomically(db: Db) {
    let s = db.store().await;
    let v1 = [file("root", 1, "r1"), file("timestamp", 1, "ts")];
    for r in ["a", "b"] {
        s.trust_commit(r, &format!("h/{r}"), &v1, None, 1).await.unwrap();
        let key = key(&format!("k{r}"));
        // Create-if-absent returns the first key for every later candidate.
        s.trust_key_create(r, &key, None, None).await.unwrap();
        let other = TrustKeyRecord {
            key_id: "other".into(),
            ..key.clone()
        };
        assert_eq!(
            s.trust_key_create(r, &other, None, None).await.unwrap().key_id,
            key.key_id
        );
        // With the first key active, a rotation creates exactly one pending key.
        let active = vec![key.key_id.clone()];
        assert_eq!(
            s.trust_key_create(r, &other, Some(&active), None)
                .await
                .unwrap()
                .key_id,
            "other"
        );
        let third = TrustKeyRecord {
            key_id: "third".into(),
            ..key.clone()
        };
        assert_eq!(
            s.trust_key_create(r, &third, Some(&active), None)
                .await
                .unwrap()
                .key_id,
            "other"
        );
    }
    assert_eq!(
        s.trust_keys("a")
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.key_id)
            .collect::<Vec<_>>(),
        ["ka", "other"]
    );
    assert!(s.trust_delete("a", "h/a", &rec("trust.reset")).await.unwrap());
    assert!(s.trust_current("a").await.unwrap().is_empty());
    assert!(s.trust_keys("a").await.unwrap().is_empty());
    assert_eq!(s.trust_current("b").await.unwrap().len(), 2);
    assert!(!s.trust_delete("a", "h/a", &rec("trust.reset")).await.unwrap());
    assert_eq!(
        s.trust_delete_all("content_trust", b"false", &rec("disable"))
            .await
            .unwrap(),
        1
    );
    assert!(s.trust_current("b").await.unwrap().is_empty());
    assert!(s.trust_keys("b").await.unwrap().is_empty());
    assert_eq!(s.get_setting("content_trust").await.unwrap().unwrap(), b"false");
    assert_eq!(s.list_audit(10).await.unwrap()[0].action, "disable");
    let feed = s.trust_changes(None, 0, 100).await.unwrap();
    assert_eq!(feed.iter().filter(|c| c.category == "deletion").count(), 2);
}

/// Replicas creating a repository's server key at once all get the same key back (the
/// winner's), only one is stored, and only its creation is audited.
pub async fn concurrent_key_creations_return_the_winner(db: Db) {
    let s = db.store().await;
    for round in 0..10 {
        let repo = format!("r{round}");
        let barrier = Arc::new(Barrier::new(4));
        let mut tasks = Vec::new();
        for i in 0..4 {
            let (s, barrier, repo) = (s.clone(), barrier.clone(), repo.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                s.trust_key_create(
                    &repo,
                    &key(&format!("k{i}")),
                    None,
                    Some(&rec("trust.key.create")),
                )
                .await
                .unwrap()
                .key_id
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        let stored = s.trust_keys(&repo).await.unwrap();
        assert_eq!(stored.len(), 1, "round {round}");
        assert!(
            got.iter().all(|k| *k == stored[0].key_id),
            "round {round}: {got:?}"
        );
    }
    assert_eq!(audit_actions(&*s).await.len(), 10);
}

/// The head of a role is its newest stored version with that file's checksum, per
/// repository, and nothing once the repository's trust data is deleted.
pub async fn the_head_is_the_newest_version(db: Db) {
    let s = db.store().await;
    assert_eq!(s.trust_head("a", "timestamp").await.unwrap(), None);
    for (v, body) in [(1, "ts1"), (2, "ts2")] {
        s.trust_commit("a", "h/a", &[file("timestamp", v, body)], None, v)
            .await
            .unwrap();
    }
    s.trust_commit("b", "h/b", &[file("timestamp", 7, "b7")], None, 3)
        .await
        .unwrap();
    assert_eq!(
        s.trust_head("a", "timestamp").await.unwrap(),
        Some((2, "timestamp2".to_owned()))
    );
    assert_eq!(
        s.trust_head("b", "timestamp").await.unwrap(),
        Some((7, "timestamp7".to_owned()))
    );
    assert_eq!(s.trust_head("a", "snapshot").await.unwrap(), None);
    assert!(s.trust_delete("a", "h/a", &rec("trust.delete")).await.unwrap());
    assert_eq!(s.trust_head("a", "timestamp").await.unwrap(), None);
    assert!(s.trust_head("b", "timestamp").await.unwrap().is_some());
}
