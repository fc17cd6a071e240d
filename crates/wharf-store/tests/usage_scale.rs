//! How long the usage queries take on a registry of 1,000 repositories, 100,000 manifests
//! (100 per repository, 1 KiB each, one tag each) and 300,000 blobs (300 per repository,
//! plus 50 every repository links): one repository and a page of 100 must answer well
//! under a second; the registry total reads every blob and manifest row (it is on the
//! admin API's first page only and in `/metrics` at most once a minute), so it is only
//! bounded loosely. Ignored by
//! default (the fill takes a while); run with
//! `cargo test -p wharf-store --test usage_scale -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use sqlx::Connection;
use wharf_store::{MetadataStore, PostgresMetadataStore, SqliteMetadataStore};
use wharf_testbed::postgres::PostgresCluster;

const SQLITE_FILL: &str = "
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
INSERT INTO repositories (id, name, created_at) SELECT i + 1, printf('team%03d/app', i), 0 FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 299999)
INSERT INTO blobs (digest, size, created_at, last_linked_at) SELECT printf('sha256:%064d', i), 1000 + i, 0, 0 FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 299999)
INSERT INTO repository_blobs (repository_id, digest, linked_at) SELECT i / 300 + 1, printf('sha256:%064d', i), 0 FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 49)
INSERT OR IGNORE INTO repository_blobs (repository_id, digest, linked_at)
  SELECT r.id, printf('sha256:%064d', n.i), 0 FROM repositories r, n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
INSERT INTO manifests (repository_id, digest, media_type, content, created_at)
  SELECT i / 100 + 1, printf('sha256:m%063d', i), 'application/vnd.oci.image.manifest.v1+json', zeroblob(1024), 0 FROM n;
INSERT INTO tags (repository_id, name, manifest_digest, updated_at)
  SELECT repository_id, 'v' || substr(digest, 10), digest, 0 FROM manifests;
ANALYZE;
";

const POSTGRES_FILL: &str = "
INSERT INTO repositories (id, name, created_at) SELECT i + 1, 'team' || lpad(i::text, 3, '0') || '/app', 0 FROM generate_series(0, 999) i;
INSERT INTO blobs (digest, size, created_at, last_linked_at) SELECT 'sha256:' || lpad(i::text, 64, '0'), 1000 + i, 0, 0 FROM generate_series(0, 299999) i;
INSERT INTO repository_blobs (repository_id, digest, linked_at) SELECT i / 300 + 1, 'sha256:' || lpad(i::text, 64, '0'), 0 FROM generate_series(0, 299999) i;
INSERT INTO repository_blobs (repository_id, digest, linked_at)
  SELECT r.id, 'sha256:' || lpad(i::text, 64, '0'), 0 FROM repositories r, generate_series(0, 49) i ON CONFLICT DO NOTHING;
INSERT INTO manifests (repository_id, digest, media_type, content, created_at)
  SELECT i / 100 + 1, 'sha256:m' || lpad(i::text, 63, '0'), 'application/vnd.oci.image.manifest.v1+json', decode(repeat('00', 1024), 'hex'), 0
  FROM generate_series(0, 99999) i;
INSERT INTO tags (repository_id, name, manifest_digest, updated_at)
  SELECT repository_id, 'v' || substr(digest, 10), digest, 0 FROM manifests;
SELECT setval('repositories_id_seq', 1000);
";

/// Time each usage question (the second of two runs, so caches are warm as on a server
/// that answers them often) and check the answers' shape.
async fn measure(backend: &str, store: &dyn MetadataStore) {
    let mut timed = Vec::new();
    for _ in 0..2 {
        let started = Instant::now();
        let one = store.repository_usage("team500/app").await.unwrap().unwrap();
        let one_took = started.elapsed();
        let started = Instant::now();
        let page = store
            .repository_usage_page(Some("team100/app"), 100)
            .await
            .unwrap();
        let page_took = started.elapsed();
        let started = Instant::now();
        let registry = store.registry_usage().await.unwrap();
        let registry_took = started.elapsed();
        assert_eq!((one.manifests, one.tags, one.blobs), (100, 100, 350));
        assert_eq!(page.len(), 100);
        assert_eq!(
            (registry.blobs, registry.manifests, registry.repositories),
            (300_000, 100_000, 1000)
        );
        timed = vec![
            ("one repository", one_took),
            ("a page of 100", page_took),
            ("registry total", registry_took),
        ];
    }
    for (what, took) in &timed {
        println!("{backend}: {what}: {took:?}");
        let limit = if *what == "registry total" { 5 } else { 1 };
        assert!(
            *took < Duration::from_secs(limit),
            "{backend}: {what} took {took:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fills 300,000 blobs; run on purpose"]
async fn usage_answers_fast_at_scale_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let store = SqliteMetadataStore::open(&path).await.unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let mut c = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::raw_sql(SQLITE_FILL).execute(&mut c).await.unwrap();
    c.close().await.unwrap();
    measure("sqlite", &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fills 300,000 blobs; run on purpose"]
async fn usage_answers_fast_at_scale_on_postgres() {
    let url = PostgresCluster::shared().fresh_database();
    let store = PostgresMetadataStore::connect(&url).await.unwrap();
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(POSTGRES_FILL).execute(&mut c).await.unwrap();
    // As autovacuum would have by then: statistics, and the visibility map that lets
    // index-only scans skip the table.
    sqlx::raw_sql("VACUUM ANALYZE").execute(&mut c).await.unwrap();
    c.close().await.unwrap();
    measure("postgres", &store).await;
}
