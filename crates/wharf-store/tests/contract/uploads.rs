//! Upload sessions.

use std::sync::Arc;

use tokio::sync::Barrier;
use wharf_store::UploadSession;

use crate::Db;

fn session(id: &str, at: i64) -> UploadSession {
    UploadSession {
        id: id.into(),
        repository: "r".into(),
        offset: 0,
        hash_state: vec![0],
        started_at: at,
        updated_at: at,
    }
}

/// An upload moves on only from the offset its writer read (compare-and-swap), and idle
/// sessions are found for expiry.
pub async fn uploads_advance_only_from_the_expected_offset(db: Db) {
    let s = db.store().await;
    s.create_upload(&session("u1", 10)).await.unwrap();
    s.create_upload(&session("u2", 20)).await.unwrap();
    assert!(s.create_upload(&session("u1", 30)).await.is_err());
    assert_eq!(s.get_upload("u1").await.unwrap(), Some(session("u1", 10)));
    assert_eq!(s.get_upload("nope").await.unwrap(), None);
    assert!(s.advance_upload("u1", 0, 100, b"h100", 11).await.unwrap());
    // A second writer that read offset 0 too is refused and changes nothing.
    assert!(!s.advance_upload("u1", 0, 50, b"h50", 12).await.unwrap());
    assert!(!s.advance_upload("nope", 0, 50, b"h50", 12).await.unwrap());
    let u1 = s.get_upload("u1").await.unwrap().unwrap();
    assert_eq!(
        (u1.offset, u1.hash_state.as_slice(), u1.started_at, u1.updated_at),
        (100, &b"h100"[..], 10, 11)
    );
    assert!(s.advance_upload("u1", 100, 1 << 40, b"big", 13).await.unwrap());
    assert_eq!(s.get_upload("u1").await.unwrap().unwrap().offset, 1 << 40);
    let mut stale = s.stale_uploads(20).await.unwrap();
    stale.sort();
    assert_eq!(stale, ["u1"]);
    let mut stale = s.stale_uploads(21).await.unwrap();
    stale.sort();
    assert_eq!(stale, ["u1", "u2"]);
    assert!(s.delete_upload("u1").await.unwrap());
    assert!(!s.delete_upload("u1").await.unwrap());
    assert_eq!(s.get_upload("u1").await.unwrap(), None);
}

/// Writers racing from one offset: exactly one advances, and the session holds its state.
pub async fn concurrent_advances_from_one_offset_one_wins(db: Db) {
    let s = db.store().await;
    s.create_upload(&session("u", 1)).await.unwrap();
    let mut offset = 0u64;
    for round in 0..10u64 {
        let barrier = Arc::new(Barrier::new(4));
        let mut tasks = Vec::new();
        for i in 0..4u64 {
            let (s, barrier) = (s.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let new = offset + 10 + i;
                let won = s
                    .advance_upload("u", offset, new, &new.to_be_bytes(), 2)
                    .await
                    .unwrap();
                won.then_some(new)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            winners.extend(t.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let u = s.get_upload("u").await.unwrap().unwrap();
        assert_eq!(
            (u.offset, u.hash_state),
            (winners[0], winners[0].to_be_bytes().to_vec())
        );
        offset = winners[0];
    }
}
