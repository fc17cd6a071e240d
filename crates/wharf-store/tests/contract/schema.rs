//! Opening a database: migrations applied once, concurrently safe, newer schemas refused.

use wharf_store::StoreError;

use crate::Db;

/// A second open finds its data and the schema as it left them.
pub async fn reopening_keeps_data_and_runs_no_migration_twice(db: Db) {
    let s = db.store().await;
    s.put_setting("k", b"v", None).await.unwrap();
    drop(s);
    let s = db.store().await;
    assert_eq!(s.get_setting("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    drop(s);
    let s = db.store().await;
    assert_eq!(s.get_setting("k").await.unwrap().as_deref(), Some(&b"v"[..]));
}

/// Replicas starting together against an empty database: every one comes up, the schema is
/// created once (PostgreSQL: the migration's advisory lock; SQLite: its write lock).
pub async fn concurrent_opens_migrate_once(db: Db) {
    let db = std::sync::Arc::new(db);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move { db.open().await.map(drop) }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let s = db.store().await;
    s.put_setting("k", b"v", None).await.unwrap();
}

/// A database migrated by a newer Wharf is refused, with a message that says so.
pub async fn a_newer_schema_is_refused(db: Db) {
    let s = db.store().await;
    s.put_setting("k", b"v", None).await.unwrap();
    drop(s);
    db.execute(
        "PRAGMA user_version = 99",
        "UPDATE wharf_schema_version SET version = 99",
    )
    .await;
    let Err(e) = db.open().await else {
        panic!("a schema from the future was accepted")
    };
    let StoreError::Incompatible(message) = &e else {
        panic!("wrong error: {e:?}")
    };
    assert!(
        message.starts_with("database schema version 99 is newer than this wharf (")
            && message.ends_with("): upgrade wharf"),
        "{message}"
    );
    assert_eq!(e.to_string(), *message);
}
