//! Settings: small opaque values, a compare-and-swap, create-if-absent.

use std::sync::Arc;

use tokio::sync::Barrier;

use crate::{Db, audit_actions, rec};

pub async fn settings_update_only_while_the_guard_holds(db: Db) {
    let s = db.store().await;
    s.put_setting("k", b"v1", None).await.unwrap();
    s.put_setting("gone", b"x", None).await.unwrap();
    let changes: [(&str, Option<&[u8]>); 3] = [("k", Some(b"v2")), ("k_old", Some(b"v1")), ("gone", None)];
    // A writer that read a stale value changes nothing and writes no audit record.
    assert!(
        !s.update_settings_if("k", b"stale", &changes, &rec("rotate"))
            .await
            .unwrap()
    );
    assert_eq!(s.get_setting("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
    assert!(s.list_audit(10).await.unwrap().is_empty());
    assert!(
        s.update_settings_if("k", b"v1", &changes, &rec("rotate"))
            .await
            .unwrap()
    );
    assert_eq!(s.get_setting("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    assert_eq!(s.get_setting("k_old").await.unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(s.get_setting("gone").await.unwrap(), None);
    assert_eq!(s.list_audit(10).await.unwrap()[0].action, "rotate");
    // The second of two writers from the same state loses.
    assert!(
        !s.update_settings_if("k", b"v1", &changes, &rec("rotate"))
            .await
            .unwrap()
    );
    // An absent guard key holds no value, so it never matches.
    assert!(
        !s.update_settings_if("absent", b"", &changes, &rec("rotate"))
            .await
            .unwrap()
    );
    // put_setting overwrites, and audits only when given a record.
    s.put_setting("k", b"v3", Some(&rec("policy"))).await.unwrap();
    assert_eq!(s.get_setting("k").await.unwrap().as_deref(), Some(&b"v3"[..]));
    assert_eq!(audit_actions(&*s).await, ["policy", "rotate"]);
}

/// Writers that all read the same guard value race: exactly one swap lands, each round,
/// with exactly one audit record.
pub async fn concurrent_guarded_updates_one_wins(db: Db) {
    let s = db.store().await;
    s.put_setting("key", b"0", None).await.unwrap();
    for round in 0..10u8 {
        let barrier = Arc::new(Barrier::new(4));
        let mut tasks = Vec::new();
        for i in 0..4u8 {
            let (s, barrier) = (s.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                let guard = round.to_string().into_bytes();
                let next = (round + 1).to_string().into_bytes();
                let witness = format!("{round}:{i}").into_bytes();
                let changes: [(&str, Option<&[u8]>); 2] = [("key", Some(&next)), ("winner", Some(&witness))];
                barrier.wait().await;
                let won = s
                    .update_settings_if("key", &guard, &changes, &rec("rotate"))
                    .await
                    .unwrap();
                won.then_some(witness)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            winners.extend(t.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}");
        assert_eq!(s.get_setting("winner").await.unwrap(), Some(winners[0].clone()));
    }
    assert_eq!(s.get_setting("key").await.unwrap().as_deref(), Some(&b"10"[..]));
    assert_eq!(s.list_audit(100).await.unwrap().len(), 10);
}

/// Create-if-absent: the first value stays, every caller (racing or later) gets it back.
pub async fn init_setting_returns_the_first_value(db: Db) {
    let s = db.store().await;
    assert_eq!(s.init_setting("a", b"first").await.unwrap(), b"first");
    assert_eq!(s.init_setting("a", b"second").await.unwrap(), b"first");
    for round in 0..10 {
        let key = format!("k{round}");
        let barrier = Arc::new(Barrier::new(4));
        let mut tasks = Vec::new();
        for i in 0..4 {
            let (s, barrier, key) = (s.clone(), barrier.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                s.init_setting(&key, format!("v{i}").as_bytes()).await.unwrap()
            }));
        }
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap());
        }
        let stored = s.get_setting(&key).await.unwrap().unwrap();
        assert!(seen.iter().all(|v| *v == stored), "round {round}: {seen:?}");
    }
    assert!(s.list_audit(10).await.unwrap().is_empty());
}
