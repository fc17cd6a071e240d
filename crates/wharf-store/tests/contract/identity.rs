//! Principals, secrets, role assignments, repository tokens, refresh tokens — and the rule
//! that every change commits with its audit record.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Barrier;
use wharf_store::TrustCheck;
use wharf_store::{
    Digest, KeptAssignment, ManifestRecord, NewManifest, StoreError, TokenScope, TrustKeyRecord,
};

use crate::{Db, audit_actions, rec};

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

pub async fn assignments_tokens_and_revocation_cascade_with_the_principal(db: Db) {
    let s = db.store().await;
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
        !s.delete_principal("alice", "sp", None, &rec("sp.delete"))
            .await
            .unwrap()
    );
    assert!(
        s.delete_principal("alice", "user", None, &rec("user.delete"))
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
    let actions = audit_actions(&*s).await;
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

/// A change (identity, policy, trust key, image) whose audit record cannot be written is
/// not made. The audit table is broken from outside with a trigger that refuses inserts.
pub async fn changes_and_their_audit_records_commit_together(db: Db) {
    let s = db.store().await;
    let alice = s
        .create_principal("alice", "user", Some("h"), None, 1, &rec("user.create"))
        .await
        .unwrap();
    s.create_assignment(alice.id, "AcrPull", "registry", 1, &rec("role-assignment.create"))
        .await
        .unwrap();
    s.put_manifest("r", &tagged_manifest(b"m1", "v1")).await.unwrap();
    crate::link(&*s, "r", &Digest::of(b"blob"), 4, 1).await.unwrap();
    db.execute(
        "CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql
           AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$;
         CREATE TRIGGER no_audit BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
    )
    .await;
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
        s.delete_assignment(
            alice.id,
            "AcrPull",
            "registry",
            None,
            &rec("role-assignment.delete")
        )
        .await
        .is_err()
    );
    let left = s.list_assignments(None).await.unwrap();
    assert_eq!((left.len(), left[0].role.as_str()), (1, "AcrPull"));
    assert!(
        s.delete_principal("alice", "user", None, &rec("user.delete"))
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
    assert!(
        s.delete_tag("r", "v1", TrustCheck::Skip, &rec("tag.delete"))
            .await
            .is_err()
    );
    assert!(
        s.delete_manifest("r", &Digest::of(b"m1"), TrustCheck::Skip, &rec("manifest.delete"))
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
    assert!(
        s.delete_repository("r", TrustCheck::Skip, &rec("repository.delete"))
            .await
            .is_err()
    );
    assert!(s.repository_exists("r").await.unwrap());
    assert_eq!(s.list_audit(100).await.unwrap().len(), 2);
}

/// A refresh token names its principal until the principal's secret changes (or is
/// cleared) or the principal is deleted; other principals' tokens are untouched.
pub async fn refresh_tokens_are_used_and_revoked_on_secret_change(db: Db) {
    let s = db.store().await;
    let alice = s
        .create_principal("alice", "user", Some("h1"), None, 1, &rec("user.create"))
        .await
        .unwrap();
    let bob = s
        .create_principal("bob", "user", Some("h"), None, 1, &rec("user.create"))
        .await
        .unwrap();
    s.store_refresh_token(b"alice-1", alice.id, 2).await.unwrap();
    s.store_refresh_token(b"alice-2", alice.id, 2).await.unwrap();
    s.store_refresh_token(b"bob-1", bob.id, 2).await.unwrap();
    assert!(s.store_refresh_token(b"bob-1", alice.id, 2).await.is_err());
    assert_eq!(s.use_refresh_token(b"alice-1", 3).await.unwrap(), Some(alice.id));
    // Use does not consume it.
    assert_eq!(s.use_refresh_token(b"alice-1", 4).await.unwrap(), Some(alice.id));
    assert_eq!(s.use_refresh_token(b"unknown", 4).await.unwrap(), None);
    s.set_principal_secret(alice.id, Some("h2"), &rec("user.password"))
        .await
        .unwrap();
    assert_eq!(
        s.principal_by_id(alice.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("h2")
    );
    assert_eq!(s.use_refresh_token(b"alice-1", 5).await.unwrap(), None);
    assert_eq!(s.use_refresh_token(b"alice-2", 5).await.unwrap(), None);
    assert_eq!(s.use_refresh_token(b"bob-1", 5).await.unwrap(), Some(bob.id));
    // Tokens issued under the new secret work.
    s.store_refresh_token(b"alice-3", alice.id, 6).await.unwrap();
    assert_eq!(s.use_refresh_token(b"alice-3", 7).await.unwrap(), Some(alice.id));
    assert!(
        s.delete_principal("bob", "user", None, &rec("user.delete"))
            .await
            .unwrap()
    );
    assert_eq!(s.use_refresh_token(b"bob-1", 8).await.unwrap(), None);
    assert!(s.principal_by_id(bob.id).await.unwrap().is_none());
    assert_eq!(
        audit_actions(&*s).await,
        ["user.delete", "user.password", "user.create", "user.create"]
    );
}

/// Principals list by name (bytes), filtered by kind; assignments by principal, role,
/// scope; a name wins over an equal client id when finding; the bootstrap owner comes
/// with its role; counts count.
pub async fn principals_and_assignments_list_in_order(db: Db) {
    let s = db.store().await;
    assert_eq!(s.count_principals().await.unwrap(), 0);
    let owner = s
        .create_bootstrap_owner("admin", "h", "Owner", "registry", 1, &rec("user.create"))
        .await
        .unwrap();
    assert!(matches!(
        s.create_bootstrap_owner("admin", "h", "Owner", "registry", 1, &rec("user.create"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let zed = s
        .create_principal("Zed", "user", Some("h"), None, 2, &rec("user.create"))
        .await
        .unwrap();
    let sp = s
        .create_principal("build", "sp", Some("h"), Some("c-1"), 3, &rec("sp.create"))
        .await
        .unwrap();
    assert_eq!(sp.client_id.as_deref(), Some("c-1"));
    let tok = s
        .create_token(
            "tok",
            "h",
            &[
                TokenScope {
                    repository: "b/*".into(),
                    action: "content/write".into(),
                },
                TokenScope {
                    repository: "a".into(),
                    action: "content/read".into(),
                },
                TokenScope {
                    repository: "a".into(),
                    action: "content/read".into(),
                },
            ],
            4,
            &rec("token.create"),
        )
        .await
        .unwrap();
    assert_eq!(tok.kind, "token");
    assert_eq!(s.count_principals().await.unwrap(), 4);
    let names = |ps: Vec<wharf_store::Principal>| ps.into_iter().map(|p| p.name).collect::<Vec<_>>();
    assert_eq!(
        names(s.list_principals(None).await.unwrap()),
        ["Zed", "admin", "build", "tok"]
    );
    assert_eq!(
        names(s.list_principals(Some("user")).await.unwrap()),
        ["Zed", "admin"]
    );
    assert!(s.list_principals(Some("nobody")).await.unwrap().is_empty());
    assert_eq!(
        s.token_scopes(tok.id).await.unwrap(),
        [
            TokenScope {
                repository: "a".into(),
                action: "content/read".into(),
            },
            TokenScope {
                repository: "b/*".into(),
                action: "content/write".into(),
            },
        ]
    );
    assert_eq!(s.principal_by_id(sp.id).await.unwrap(), Some(sp.clone()));
    assert_eq!(s.find_principal("build").await.unwrap(), Some(sp.clone()));
    assert_eq!(s.find_principal("c-1").await.unwrap(), Some(sp.clone()));
    assert_eq!(s.find_principal("nobody").await.unwrap(), None);
    for (p, role, scope) in [
        (zed.id, "AcrPull", "repository:b"),
        (zed.id, "AcrPull", "repository:a/*"),
        (sp.id, "AcrPush", "registry"),
        (zed.id, "AcrDelete", "registry"),
    ] {
        s.create_assignment(p, role, scope, 5, &rec("role-assignment.create"))
            .await
            .unwrap();
    }
    let all: Vec<(String, String, String)> = s
        .list_assignments(None)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.principal, a.role, a.scope))
        .collect();
    let t = |p: &str, r: &str, sc: &str| (p.to_owned(), r.to_owned(), sc.to_owned());
    assert_eq!(
        all,
        [
            t("Zed", "AcrDelete", "registry"),
            t("Zed", "AcrPull", "repository:a/*"),
            t("Zed", "AcrPull", "repository:b"),
            t("admin", "Owner", "registry"),
            t("build", "AcrPush", "registry"),
        ]
    );
    let own = s.list_assignments(Some(owner.id)).await.unwrap();
    assert_eq!(own.len(), 1);
    assert_eq!((own[0].principal_kind.as_str(), own[0].created_at), ("user", 1));
    assert!(
        s.delete_assignment(
            zed.id,
            "AcrPull",
            "repository:b",
            None,
            &rec("role-assignment.delete")
        )
        .await
        .unwrap()
    );
    assert!(
        !s.delete_assignment(
            zed.id,
            "AcrPull",
            "repository:b",
            None,
            &rec("role-assignment.delete")
        )
        .await
        .unwrap()
    );
    assert_eq!(s.list_assignments(Some(zed.id)).await.unwrap().len(), 2);
}

/// Two principals claiming one login string at once, as a name and as a client id: exactly
/// one is created (names and client ids are one namespace even under concurrency).
pub async fn concurrent_claims_of_one_login_name_one_wins(db: Db) {
    let s = db.store().await;
    for round in 0..10 {
        let login = format!("login-{round}");
        let barrier = Arc::new(Barrier::new(4));
        let mut tasks = Vec::new();
        for i in 0..4 {
            let (s, barrier, login) = (s.clone(), barrier.clone(), login.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                if i % 2 == 0 {
                    s.create_principal(&login, "user", Some("h"), None, 1, &rec("user.create"))
                        .await
                } else {
                    let name = format!("sp-{round}-{i}");
                    s.create_principal(&name, "sp", Some("h"), Some(&login), 1, &rec("sp.create"))
                        .await
                }
            }));
        }
        let mut created = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => created += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        assert_eq!(created, 1, "round {round}");
        assert!(s.find_principal(&login).await.unwrap().is_some());
    }
    assert_eq!(s.count_principals().await.unwrap(), 10);
    assert_eq!(s.list_audit(100).await.unwrap().len(), 10);
}

const OWNER: KeptAssignment<'static> = KeptAssignment {
    role: "Owner",
    scope: "registry",
};

/// A guarded deletion never removes the last holder of the kept assignment — by
/// unassigning it or by deleting its principal — and refused changes leave nothing
/// behind (no audit record). Two owners removing each other at the same moment: exactly
/// one wins, every round.
pub async fn the_last_owner_is_kept_even_under_races(db: Db) {
    let s = db.store().await;
    let mut owners = Vec::new();
    for name in ["olga", "omar"] {
        let p = s
            .create_principal(name, "user", None, None, 1, &rec("user.create"))
            .await
            .unwrap();
        s.create_assignment(p.id, "Owner", "registry", 1, &rec("role-assignment.create"))
            .await
            .unwrap();
        owners.push(p);
    }
    let before = audit_actions(s.as_ref()).await;
    assert!(
        s.delete_assignment(
            owners[0].id,
            "Owner",
            "registry",
            Some(OWNER),
            &rec("role-assignment.delete")
        )
        .await
        .unwrap()
    );
    for refused in [
        s.delete_assignment(owners[1].id, "Owner", "registry", Some(OWNER), &rec("x"))
            .await,
        s.delete_principal("omar", "user", Some(OWNER), &rec("x")).await,
    ] {
        assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    }
    let after = audit_actions(s.as_ref()).await;
    assert_eq!(
        after.len(),
        before.len() + 1,
        "a refused deletion left an audit record"
    );
    assert!(s.find_principal("omar").await.unwrap().is_some());
    assert_eq!(s.list_assignments(Some(owners[1].id)).await.unwrap().len(), 1);
    // The guard refuses only what would remove the last holder: olga no longer holds it.
    assert!(
        s.delete_principal("olga", "user", Some(OWNER), &rec("user.delete"))
            .await
            .unwrap()
    );

    for round in 0..10 {
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        for name in [&a, &b] {
            let p = s
                .create_principal(name, "user", None, None, 1, &rec("user.create"))
                .await
                .unwrap();
            s.create_assignment(p.id, "Owner", "registry", 1, &rec("role-assignment.create"))
                .await
                .unwrap();
        }
        // The previous round's survivor steps down, so a and b are the only owners.
        let survivors: Vec<_> = s
            .list_assignments(None)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.role == "Owner" && r.principal != a && r.principal != b)
            .collect();
        for r in survivors {
            let id = s.find_principal(&r.principal).await.unwrap().unwrap().id;
            assert!(
                s.delete_assignment(id, "Owner", "registry", Some(OWNER), &rec("x"))
                    .await
                    .unwrap()
            );
        }
        let barrier = Arc::new(Barrier::new(2));
        // a deletes b while b deletes a.
        let tasks: Vec<_> = [b.clone(), a.clone()]
            .into_iter()
            .map(|victim| {
                let (s, barrier) = (s.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    s.delete_principal(&victim, "user", Some(OWNER), &rec("user.delete"))
                        .await
                })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(true) => won += 1,
                Err(StoreError::Conflict(_)) => {}
                other => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(won, 1, "round {round}: both owners were deleted, or neither");
        let holders = s
            .list_assignments(None)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.role == "Owner" && r.scope == "registry")
            .count();
        assert_eq!(holders, 1, "round {round}");
    }
}
