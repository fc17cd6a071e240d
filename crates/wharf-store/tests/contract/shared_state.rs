//! What replicas share through the database: upload writer leases, portal sessions,
//! failed-login counters and token revocations.

use std::sync::Arc;

use tokio::sync::Barrier;
use wharf_store::{PortalSessionRecord, SessionLimits, UploadSession};

use crate::{Db, rec};

const LIMITS: SessionLimits = SessionLimits {
    idle_seconds: 100,
    absolute_seconds: 1000,
    per_principal: 2,
    touch_seconds: 10,
};

/// One writer at a time per upload session: a lease is refused while another writer
/// holds it unexpired, renewable by its holder, free again once given back or expired,
/// and a restarted replica frees all of its own at once (and nobody else's).
pub async fn upload_leases_admit_one_writer(db: Db) {
    let s = db.store().await;
    let session = UploadSession {
        id: "u".into(),
        repository: "r".into(),
        offset: 0,
        hash_state: vec![0],
        started_at: 1,
        updated_at: 1,
    };
    s.create_upload(&session).await.unwrap();
    s.create_upload(&UploadSession {
        id: "v".into(),
        ..session.clone()
    })
    .await
    .unwrap();
    assert!(s.claim_upload("u", "r1/a", 115, 100).await.unwrap());
    assert!(
        !s.claim_upload("u", "r2/b", 115, 101).await.unwrap(),
        "a second writer got in"
    );
    assert!(
        s.claim_upload("u", "r1/a", 120, 105).await.unwrap(),
        "the holder could not renew"
    );
    assert!(!s.claim_upload("u", "r2/b", 130, 119).await.unwrap());
    // Expired: anyone may take it.
    assert!(s.claim_upload("u", "r2/b", 135, 120).await.unwrap());
    // Given back only by its holder.
    s.release_upload("u", "r1/a").await.unwrap();
    assert!(!s.claim_upload("u", "r3/c", 140, 121).await.unwrap());
    s.release_upload("u", "r2/b").await.unwrap();
    assert!(s.claim_upload("u", "r3/c", 140, 121).await.unwrap());
    // Replica r3 restarts: its leases go, r1's on another session stays. A prefix holding
    // LIKE's wildcards matches only itself.
    assert!(s.claim_upload("v", "r1/d", 140, 121).await.unwrap());
    assert_eq!(s.release_uploads_of("r_/").await.unwrap(), 0);
    assert_eq!(s.release_uploads_of("r3/").await.unwrap(), 1);
    assert!(s.claim_upload("u", "r4/e", 150, 122).await.unwrap());
    assert!(!s.claim_upload("v", "r4/f", 150, 122).await.unwrap());
    assert!(
        !s.claim_upload("gone", "r4/g", 150, 122).await.unwrap(),
        "a lease on no session"
    );
}

/// Writers racing for one free session: exactly one gets the lease, every round.
pub async fn concurrent_claims_one_lease(db: Db) {
    let s = db.store().await;
    for round in 0..10 {
        let id = format!("u{round}");
        s.create_upload(&UploadSession {
            id: id.clone(),
            repository: "r".into(),
            offset: 0,
            hash_state: vec![0],
            started_at: 1,
            updated_at: 1,
        })
        .await
        .unwrap();
        let barrier = Arc::new(Barrier::new(4));
        let mut tasks = Vec::new();
        for w in 0..4 {
            let (s, barrier, id) = (s.clone(), barrier.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                s.claim_upload(&id, &format!("r{w}/x"), 200, 100).await.unwrap()
            }));
        }
        let mut won = 0;
        for t in tasks {
            won += usize::from(t.await.unwrap());
        }
        assert_eq!(won, 1, "round {round}");
    }
}

async fn principal(db_store: &dyn wharf_store::MetadataStore, name: &str) -> i64 {
    db_store
        .create_principal(name, "user", None, None, 1, &rec("user.create"))
        .await
        .unwrap()
        .id
}

fn session(key: u8, principal_id: i64, at: i64) -> PortalSessionRecord {
    PortalSessionRecord {
        key_hash: vec![key; 32],
        principal_id,
        principal_name: format!("p{principal_id}"),
        principal_created_at: 1,
        csrf: format!("csrf{key}"),
        created_at: at,
        last_seen: at,
    }
}

/// Sessions resume until idle or absolute expiry, touch `last_seen` at most every
/// `touch_seconds`, end on sign-out or with their principal, and one principal holds at
/// most `per_principal` (the oldest go).
pub async fn portal_sessions_expire_end_and_are_bounded(db: Db) {
    let s = db.store().await;
    let ann = principal(s.as_ref(), "ann").await;
    let bob = principal(s.as_ref(), "bob").await;
    s.create_portal_session(&session(1, ann, 1000), LIMITS)
        .await
        .unwrap();
    let got = s.resume_portal_session(&[1; 32], 1005, LIMITS).await.unwrap();
    assert_eq!(got, Some(session(1, ann, 1000)), "touched before touch_seconds");
    let got = s
        .resume_portal_session(&[1; 32], 1050, LIMITS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.last_seen, 1050);
    // Idle: alive 99 s after the last touch (touching it again), gone 100 s after that.
    assert!(
        s.resume_portal_session(&[1; 32], 1149, LIMITS)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.resume_portal_session(&[1; 32], 1249, LIMITS)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.resume_portal_session(&[1; 32], 1100, LIMITS)
            .await
            .unwrap()
            .is_none()
    );
    // Absolute expiry however busy.
    s.create_portal_session(&session(2, bob, 2000), LIMITS)
        .await
        .unwrap();
    let mut t = 2000;
    while t + 50 < 3000 {
        t += 50;
        assert!(
            s.resume_portal_session(&[2; 32], t, LIMITS)
                .await
                .unwrap()
                .is_some()
        );
    }
    assert!(
        s.resume_portal_session(&[2; 32], 3000, LIMITS)
            .await
            .unwrap()
            .is_none()
    );
    // Bounded per principal: a third session of ann ends her oldest, not bob's.
    s.create_portal_session(&session(3, ann, 4000), LIMITS)
        .await
        .unwrap();
    s.create_portal_session(&session(4, ann, 4001), LIMITS)
        .await
        .unwrap();
    s.create_portal_session(&session(5, bob, 4001), LIMITS)
        .await
        .unwrap();
    s.create_portal_session(&session(6, ann, 4002), LIMITS)
        .await
        .unwrap();
    assert!(
        s.resume_portal_session(&[3; 32], 4003, LIMITS)
            .await
            .unwrap()
            .is_none()
    );
    for key in [4, 5, 6] {
        assert!(
            s.resume_portal_session(&[key; 32], 4003, LIMITS)
                .await
                .unwrap()
                .is_some(),
            "{key}"
        );
    }
    // Sign-out, then the principal's deletion ends the rest.
    assert!(s.end_portal_session(&[4; 32]).await.unwrap());
    assert!(!s.end_portal_session(&[4; 32]).await.unwrap());
    assert!(
        s.resume_portal_session(&[4; 32], 4003, LIMITS)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.delete_principal("ann", "user", None, &rec("user.delete"))
            .await
            .unwrap()
    );
    assert!(
        s.resume_portal_session(&[6; 32], 4003, LIMITS)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.resume_portal_session(&[5; 32], 4003, LIMITS)
            .await
            .unwrap()
            .is_some()
    );
}

/// Failures count atomically (parallel failures all count), locks only grow, a success
/// clears the key, pruning spares locks.
pub async fn login_failures_count_lock_and_prune(db: Db) {
    let s = db.store().await;
    let barrier = Arc::new(Barrier::new(8));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, barrier) = (s.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            s.add_login_failure("p:ann", 100).await.unwrap()
        }));
    }
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.unwrap());
    }
    counts.sort();
    assert_eq!(
        counts,
        (1..=8).collect::<Vec<u32>>(),
        "parallel failures were lost"
    );
    s.lock_login("p:ann", 300).await.unwrap();
    s.lock_login("p:ann", 200).await.unwrap();
    s.add_login_failure("a:10.0.0.1", 100).await.unwrap();
    let keys = ["p:ann".to_owned(), "a:10.0.0.1".to_owned(), "p:nobody".to_owned()];
    let mut state: Vec<_> = s
        .login_failures(&keys)
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.key, f.failures, f.locked_until))
        .collect();
    state.sort();
    assert_eq!(
        state,
        vec![("a:10.0.0.1".to_owned(), 1, 0), ("p:ann".to_owned(), 8, 300)]
    );
    // Old and unlocked goes; locked stays until its lock ran out.
    assert_eq!(s.prune_login_failures(250).await.unwrap(), 1);
    assert_eq!(s.login_failures(&keys).await.unwrap().len(), 1);
    s.clear_login_failures("p:ann").await.unwrap();
    assert!(s.login_failures(&keys).await.unwrap().is_empty());
    assert_eq!(
        s.add_login_failure("p:ann", 400).await.unwrap(),
        1,
        "a success did not reset the count"
    );
}

/// Revocations are read back in id order after any id, and pruned by age.
pub async fn revocations_are_read_after_an_id_and_pruned(db: Db) {
    let s = db.store().await;
    s.add_revocation("ann", 1_000).await.unwrap();
    s.add_revocation("bob", 2_000).await.unwrap();
    s.add_revocation("ann", 3_000).await.unwrap();
    let all = s.revocations_after(0, 10).await.unwrap();
    let seen: Vec<_> = all
        .iter()
        .map(|r| (r.principal.as_str(), r.revoked_at_ms))
        .collect();
    assert_eq!(seen, [("ann", 1_000), ("bob", 2_000), ("ann", 3_000)]);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let after_first = s.revocations_after(all[0].id, 1).await.unwrap();
    assert_eq!(after_first.len(), 1);
    assert_eq!(after_first[0].principal, "bob");
    assert_eq!(s.prune_revocations(2_500).await.unwrap(), 2);
    let left = s.revocations_after(0, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].revoked_at_ms, 3_000);
}
