use bytes::Bytes;

use super::*;
use crate::metadata::*;

fn file(role: &str, version: i64, body: &str) -> NewTrustFile {
    NewTrustFile {
        role: role.into(),
        version,
        sha256: format!("{role}{version}"),
        content: body.as_bytes().to_vec(),
    }
}

fn audit(action: &str) -> AuditRecord {
    AuditRecord {
        at: 1,
        actor: "admin".into(),
        action: action.into(),
        target: "t".into(),
        detail: String::new(),
    }
}

async fn store() -> (tempfile::TempDir, SqliteMetadataStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteMetadataStore::open(&dir.path().join("m.db")).await.unwrap();
    (dir, s)
}

#[tokio::test]
async fn trust_update_commits_whole_or_nothing_and_conflicts_on_versions() {
    let (_d, s) = store().await;
    let v1 = [
        file("root", 1, "r1"),
        file("targets", 1, "t1"),
        file("snapshot", 1, "s1"),
        file("timestamp", 1, "ts1"),
    ];
    s.trust_commit("a", "h/a", &v1, Some(&audit("trust.update")), 10)
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

#[tokio::test]
async fn concurrent_identical_updates_one_wins() {
    let (_d, s) = store().await;
    let s = std::sync::Arc::new(s);
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

#[tokio::test]
async fn deletes_are_scoped_and_disable_wipes_everything_atomically() {
    let (_d, s) = store().await;
    let v1 = [file("root", 1, "r1"), file("timestamp", 1, "ts")];
    for r in ["a", "b"] {
        s.trust_commit(r, &format!("h/{r}"), &v1, None, 1).await.unwrap();
        let key = TrustKeyRecord {
            role: "timestamp".into(),
            key_id: format!("k{r}"),
            keytype: "ed25519".into(),
            sealed_key: vec![1],
            created_at: 1,
        };
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
    assert!(s.trust_delete("a", "h/a", &audit("trust.reset")).await.unwrap());
    assert!(s.trust_current("a").await.unwrap().is_empty());
    assert!(s.trust_keys("a").await.unwrap().is_empty());
    assert_eq!(s.trust_current("b").await.unwrap().len(), 2);
    assert!(!s.trust_delete("a", "h/a", &audit("trust.reset")).await.unwrap());
    assert_eq!(
        s.trust_delete_all("content_trust", b"false", &audit("disable"))
            .await
            .unwrap(),
        1
    );
    assert!(s.trust_current("b").await.unwrap().is_empty());
    assert_eq!(s.get_setting("content_trust").await.unwrap().unwrap(), b"false");
    assert_eq!(s.list_audit(10).await.unwrap()[0].action, "disable");
    let feed = s.trust_changes(None, 0, 100).await.unwrap();
    assert_eq!(feed.iter().filter(|c| c.category == "deletion").count(), 2);
}

fn tagged_manifest(body: &'static [u8], tag: &str) -> NewManifest {
    NewManifest {
        record: ManifestRecord {
            digest: Digest::of(body),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            content: Bytes::from_static(body),
            subject: None,
            artifact_type: None,
            annotations: None,
            created_at: 1,
        },
        blobs: Vec::new(),
        manifests: Vec::new(),
        tag: Some(tag.into()),
        audit: None,
    }
}

fn record(action: &str) -> AuditRecord {
    AuditRecord {
        at: 1,
        actor: "tester".into(),
        action: action.into(),
        target: "r".into(),
        detail: String::new(),
    }
}

#[tokio::test]
async fn cached_tag_lookups_follow_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteMetadataStore::open(&dir.path().join("m.db")).await.unwrap();
    let (a, b) = (tagged_manifest(b"a", "latest"), tagged_manifest(b"b", "latest"));
    store.put_manifest("r", &a).await.unwrap();
    assert_eq!(
        store.resolve_tag("r", "latest").await.unwrap(),
        Some(Digest::of(b"a"))
    );
    assert!(
        store
            .get_manifest("r", &Digest::of(b"a"))
            .await
            .unwrap()
            .is_some()
    );
    store.put_manifest("r", &b).await.unwrap();
    assert_eq!(
        store.resolve_tag("r", "latest").await.unwrap(),
        Some(Digest::of(b"b"))
    );
    store
        .delete_manifest("r", &Digest::of(b"b"), &record("manifest.delete"))
        .await
        .unwrap();
    assert_eq!(store.resolve_tag("r", "latest").await.unwrap(), None);
    store
        .put_manifest("r", &tagged_manifest(b"a", "v1"))
        .await
        .unwrap();
    assert_eq!(
        store.resolve_tag("r", "v1").await.unwrap(),
        Some(Digest::of(b"a"))
    );
    store.delete_tag("r", "v1", &record("tag.delete")).await.unwrap();
    assert_eq!(store.resolve_tag("r", "v1").await.unwrap(), None);
    store
        .delete_manifest("r", &Digest::of(b"a"), &record("manifest.delete"))
        .await
        .unwrap();
    assert!(
        store
            .get_manifest("r", &Digest::of(b"a"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn settings_update_only_while_the_guard_holds() {
    let (_d, s) = store().await;
    s.put_setting("k", b"v1", None).await.unwrap();
    s.put_setting("gone", b"x", None).await.unwrap();
    let changes: [(&str, Option<&[u8]>); 3] = [("k", Some(b"v2")), ("k_old", Some(b"v1")), ("gone", None)];
    // A writer that read a stale value changes nothing and writes no audit record.
    assert!(
        !s.update_settings_if("k", b"stale", &changes, &audit("rotate"))
            .await
            .unwrap()
    );
    assert_eq!(s.get_setting("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
    assert!(s.list_audit(10).await.unwrap().is_empty());
    assert!(
        s.update_settings_if("k", b"v1", &changes, &audit("rotate"))
            .await
            .unwrap()
    );
    assert_eq!(s.get_setting("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    assert_eq!(s.get_setting("k_old").await.unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(s.get_setting("gone").await.unwrap(), None);
    assert_eq!(s.list_audit(10).await.unwrap()[0].action, "rotate");
    // The second of two writers from the same state loses.
    assert!(
        !s.update_settings_if("k", b"v1", &changes, &audit("rotate"))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn assignments_tokens_and_revocation_cascade_with_the_principal() {
    let (_d, s) = store().await;
    let alice = s
        .create_principal("alice", "user", Some("h"), None, 1, &rec("user.create"))
        .await
        .unwrap();
    // Names and client ids are one namespace.
    assert!(matches!(
        s.create_principal("sp1", "sp", Some("h"), Some("alice"), 1, &rec("sp.create"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let sp = s
        .create_principal("sp1", "sp", Some("h"), Some("sp-0011"), 1, &rec("sp.create"))
        .await
        .unwrap();
    assert_eq!(s.find_principal("sp-0011").await.unwrap().unwrap().id, sp.id);
    s.create_assignment(alice.id, "AcrPush", "registry", 2, &rec("role-assignment.create"))
        .await
        .unwrap();
    assert!(matches!(
        s.create_assignment(alice.id, "AcrPush", "registry", 2, &rec("role-assignment.create"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    s.store_refresh_token(b"rt", alice.id, 3).await.unwrap();
    let t = s
        .create_token(
            "tok",
            "h",
            &[TokenScope {
                repository: "a".into(),
                action: "content/read".into(),
            }],
            4,
            &rec("token.create"),
        )
        .await
        .unwrap();
    assert_eq!(s.token_scopes(t.id).await.unwrap().len(), 1);
    assert_eq!(s.list_assignments(None).await.unwrap().len(), 1);
    assert!(
        !s.delete_principal("alice", "sp", &rec("sp.delete"))
            .await
            .unwrap()
    );
    assert!(
        s.delete_principal("alice", "user", &rec("user.delete"))
            .await
            .unwrap()
    );
    assert_eq!(s.use_refresh_token(b"rt", 5).await.unwrap(), None);
    assert!(s.list_assignments(None).await.unwrap().is_empty());
    s.store_refresh_token(b"rt2", sp.id, 6).await.unwrap();
    s.set_principal_secret(sp.id, None, &rec("sp.reset-secret"))
        .await
        .unwrap();
    assert_eq!(s.use_refresh_token(b"rt2", 7).await.unwrap(), None);
    // One record per change that happened, none for the refused or absent ones.
    let actions: Vec<String> = s
        .list_audit(100)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    let mut sorted = actions.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "role-assignment.create",
            "sp.create",
            "sp.reset-secret",
            "token.create",
            "user.create",
            "user.delete"
        ]
    );
}

fn rec(action: &str) -> AuditRecord {
    AuditRecord {
        at: 1,
        actor: "tester".into(),
        action: action.into(),
        target: "t".into(),
        detail: String::new(),
    }
}

/// A change (identity, policy, trust key) whose audit record cannot be written is not made.
#[tokio::test]
async fn changes_and_their_audit_records_commit_together() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteMetadataStore::open(&dir.path().join("m.db")).await.unwrap();
    let alice = s
        .create_principal("alice", "user", Some("h"), None, 1, &rec("user.create"))
        .await
        .unwrap();
    s.create_assignment(alice.id, "AcrPull", "registry", 1, &rec("role-assignment.create"))
        .await
        .unwrap();
    s.put_manifest("r", &tagged_manifest(b"m1", "v1")).await.unwrap();
    s.link_blob("r", &Digest::of(b"blob"), 4, 1).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
    )
    .execute(&s.pool)
    .await
    .unwrap();
    assert!(
        s.create_principal("bob", "user", Some("h"), None, 2, &rec("user.create"))
            .await
            .is_err()
    );
    assert!(s.find_principal("bob").await.unwrap().is_none());
    assert!(
        s.create_assignment(alice.id, "Owner", "registry", 2, &rec("role-assignment.create"))
            .await
            .is_err()
    );
    assert!(
        s.delete_assignment(alice.id, "AcrPull", "registry", &rec("role-assignment.delete"))
            .await
            .is_err()
    );
    let left = s.list_assignments(None).await.unwrap();
    assert_eq!((left.len(), left[0].role.as_str()), (1, "AcrPull"));
    assert!(
        s.delete_principal("alice", "user", &rec("user.delete"))
            .await
            .is_err()
    );
    assert!(s.find_principal("alice").await.unwrap().is_some());
    s.store_refresh_token(b"rt", alice.id, 3).await.unwrap();
    assert!(
        s.set_principal_secret(alice.id, None, &rec("user.reset"))
            .await
            .is_err()
    );
    assert_eq!(
        s.find_principal("alice")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("h")
    );
    assert_eq!(s.use_refresh_token(b"rt", 4).await.unwrap(), Some(alice.id));
    assert!(
        s.create_token("tok", "h", &[], 5, &rec("token.create"))
            .await
            .is_err()
    );
    assert!(s.find_principal("tok").await.unwrap().is_none());
    assert!(
        s.create_bootstrap_owner("root", "h", "Owner", "registry", 6, &rec("user.create"))
            .await
            .is_err()
    );
    assert!(s.find_principal("root").await.unwrap().is_none());
    s.put_setting("policy", b"off", None).await.unwrap();
    let refused = s
        .put_setting("policy", b"on", Some(&rec("content-trust.enable")))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("audit refused"), "{refused}");
    assert_eq!(
        s.get_setting("policy").await.unwrap().as_deref(),
        Some(&b"off"[..])
    );
    let key = TrustKeyRecord {
        role: "timestamp".into(),
        key_id: "k1".into(),
        keytype: "ed25519".into(),
        sealed_key: vec![1],
        created_at: 7,
    };
    assert!(
        s.trust_key_create("a", &key, Some(&[]), Some(&rec("trust.key.create")))
            .await
            .is_err()
    );
    assert!(s.trust_keys("a").await.unwrap().is_empty());
    // Pushes and deletions of images are audited the same way.
    let mut pushed = tagged_manifest(b"m2", "v2");
    pushed.audit = Some(rec("manifest.push"));
    assert!(s.put_manifest("r", &pushed).await.is_err());
    assert_eq!(s.resolve_tag("r", "v2").await.unwrap(), None);
    assert!(s.get_manifest("r", &Digest::of(b"m2")).await.unwrap().is_none());
    assert!(s.delete_tag("r", "v1", &rec("tag.delete")).await.is_err());
    assert!(
        s.delete_manifest("r", &Digest::of(b"m1"), &rec("manifest.delete"))
            .await
            .is_err()
    );
    assert_eq!(s.resolve_tag("r", "v1").await.unwrap(), Some(Digest::of(b"m1")));
    assert!(
        s.unlink_blob("r", &Digest::of(b"blob"), &rec("blob.delete"))
            .await
            .is_err()
    );
    assert_eq!(s.linked_blob("r", &Digest::of(b"blob")).await.unwrap(), Some(4));
    assert_eq!(s.list_audit(100).await.unwrap().len(), 2);
}
