//! `transfer::migrate` from a SQLite + disk source, filled through the public store API,
//! into a fresh PostgreSQL database and a fresh Garage bucket (wharf-testbed): everything
//! reads back the same, ids continue, a non-empty target is refused, an interrupted or
//! corrupt copy writes no metadata and a rerun picks up where it stopped.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use wharf_store::DeleteOutcome;
use wharf_store::transfer::{self, Progress, TransferError, TransferReport};
use wharf_store::{
    AuditRecord, AuditStore, BlobLinkOutcome, BlobStore, Digest, FsBlobStore, GarbageStore, IdentityStore,
    LoginFailureStore, ManifestRecord, MetadataStore, NewManifest, NewTrustFile, PortalSessionRecord,
    PortalSessionStore, PostgresMetadataStore, RepositoryStore, RevocationStore, S3BlobStore, S3Config,
    SessionLimits, SettingsStore, SqliteMetadataStore, TokenScope, TrustKeyRecord, TrustStore,
};
use wharf_testbed::garage::{GarageNode, S3Bucket};
use wharf_testbed::postgres::PostgresCluster;

const LIMITS: SessionLimits = SessionLimits {
    idle_seconds: 1_000_000_000,
    absolute_seconds: 2_000_000_000,
    per_principal: 5,
    touch_seconds: 1_000_000_000,
};

fn rec(action: &str) -> AuditRecord {
    AuditRecord {
        at: 100,
        actor: "admin".into(),
        action: action.into(),
        target: "t".into(),
        detail: "{}".into(),
    }
}

struct Source {
    dir: tempfile::TempDir,
    meta: SqliteMetadataStore,
    blobs: FsBlobStore,
    /// Blob digests with their bytes, in the order the copy walks them (by digest).
    stored: Vec<(Digest, Vec<u8>)>,
}

impl Source {
    async fn new() -> Source {
        let dir = tempfile::tempdir().unwrap();
        let meta = SqliteMetadataStore::open(&dir.path().join("metadata.db"))
            .await
            .unwrap();
        let blobs = FsBlobStore::open(dir.path().join("storage")).unwrap();
        Source {
            dir,
            meta,
            blobs,
            stored: Vec::new(),
        }
    }

    fn blob_file(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir
            .path()
            .join("storage/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
    }

    /// A blob uploaded as a server would, and linked to `repository`.
    async fn push_blob(&mut self, repository: &str, bytes: &[u8]) -> Digest {
        let digest = Digest::of(bytes);
        let id = format!("up-{}", &digest.hex()[..16]);
        self.blobs.create_upload(&id).await.unwrap();
        let mut w = self.blobs.upload_writer(&id, 0).await.unwrap();
        // Several chunks, as a network upload arrives.
        for chunk in bytes.chunks(4096) {
            w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        w.finish().await.unwrap();
        self.meta
            .reserve_blob(&digest, bytes.len() as u64, 50)
            .await
            .unwrap();
        self.blobs.commit_upload(&id, &digest).await.unwrap();
        self.meta.link_blob(repository, &digest, None, 50).await.unwrap();
        if !self.stored.iter().any(|(d, _)| d == &digest) {
            self.stored.push((digest.clone(), bytes.to_vec()));
            self.stored.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        }
        digest
    }

    async fn push_image(&mut self, repository: &str, tag: &str, seed: u8) -> Digest {
        let config = self.push_blob(repository, &pattern(300, seed)).await;
        let layer = self
            .push_blob(repository, &pattern(70_000 + seed as usize, seed))
            .await;
        let content = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"digest":"{config}"}},"layers":[{{"digest":"{layer}"}}]}}"#
        );
        let digest = Digest::of(content.as_bytes());
        let manifest = NewManifest {
            record: ManifestRecord {
                digest: digest.clone(),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                content: Bytes::from(content),
                subject: None,
                artifact_type: None,
                annotations: Some(r#"{"a":"b"}"#.into()),
                created_at: 60 + seed as i64,
            },
            blobs: vec![config, layer],
            manifests: vec![],
            tag: Some(tag.into()),
            audit: Some(rec("manifest.push")),
        };
        self.meta.put_manifest(repository, &manifest).await.unwrap();
        digest
    }

    /// Something of every aggregate, with gaps in the ids (a deleted principal).
    async fn fill(&mut self) {
        let m = &self.meta;
        m.create_bootstrap_owner("admin", "hash-admin", "Owner", "registry", 10, &rec("bootstrap"))
            .await
            .unwrap();
        let gone = m
            .create_principal("gone", "user", Some("h"), None, 11, &rec("user.create"))
            .await
            .unwrap();
        let alice = m
            .create_principal("alice", "user", Some("hash-alice"), None, 12, &rec("user.create"))
            .await
            .unwrap();
        m.delete_principal(&gone.name, "user", None, &rec("user.delete"))
            .await
            .unwrap();
        m.create_principal(
            "ci",
            "sp",
            Some("hash-ci"),
            Some("client-1"),
            13,
            &rec("sp.create"),
        )
        .await
        .unwrap();
        m.create_assignment(alice.id, "AcrPull", "repository:app", 14, &rec("role.assign"))
            .await
            .unwrap();
        let scopes = [
            TokenScope {
                repository: "app".into(),
                action: "content/read".into(),
            },
            TokenScope {
                repository: "team/*".into(),
                action: "content/write".into(),
            },
        ];
        m.create_token("deploy", "hash-token", &scopes, 15, &rec("token.create"))
            .await
            .unwrap();
        m.store_refresh_token(&[7; 32], alice.id, 16).await.unwrap();
        m.put_setting("policy", b"{\"x\":1}", Some(&rec("policy")))
            .await
            .unwrap();
        m.init_setting("token-key", &[0, 159, 255, 1]).await.unwrap();
        m.create_portal_session(
            &PortalSessionRecord {
                key_hash: vec![9; 32],
                principal_id: alice.id,
                principal_name: "alice".into(),
                principal_created_at: 12,
                csrf: "csrf".into(),
                created_at: 17,
                last_seen: 18,
            },
            LIMITS,
        )
        .await
        .unwrap();
        m.add_login_failure("p:alice", 19).await.unwrap();
        m.lock_login("p:alice", 4_000_000_000).await.unwrap();
        // Revocation ids 1..3, of which the first two are pruned: the high-water mark
        // (3) stays in SQLite's sqlite_sequence and must carry over.
        m.add_revocation("old1", 1_000).await.unwrap();
        m.add_revocation("old2", 2_000).await.unwrap();
        m.add_revocation("gone", 9_000_000).await.unwrap();
        assert_eq!(m.prune_revocations(5_000).await.unwrap(), 2);
        let files = |v: i64| {
            ["root", "targets", "snapshot", "timestamp"].map(|role| NewTrustFile {
                role: role.into(),
                version: v,
                sha256: format!("{role}-{v}"),
                content: format!("{{\"{role}\":{v}}}").into_bytes(),
            })
        };
        m.trust_commit("app", "localhost:5000/app", &files(1), Some(&rec("trust")), 20)
            .await
            .unwrap();
        m.trust_commit("app", "localhost:5000/app", &files(2)[1..], None, 21)
            .await
            .unwrap();
        m.trust_commit("old", "localhost:5000/old", &files(1), None, 22)
            .await
            .unwrap();
        m.trust_delete("old", "localhost:5000/old", &rec("trust.reset"))
            .await
            .unwrap();
        m.trust_key_create(
            "app",
            &TrustKeyRecord {
                role: "timestamp".into(),
                key_id: "kid-1".into(),
                keytype: "ecdsa".into(),
                sealed_key: vec![1, 2, 3, 0, 255],
                created_at: 23,
            },
            None,
            None,
        )
        .await
        .unwrap();
        m.add_audit(&rec("custom")).await.unwrap();
        self.push_image("app", "v1", 1).await;
        self.push_image("app", "signed", 2).await;
        self.push_image("team/web", "latest", 3).await;
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

fn s3_config(b: &S3Bucket) -> S3Config {
    let mut c = S3Config::new(Some(b.endpoint.clone()), &b.region, &b.bucket);
    c.access_key_id = Some(b.access_key_id.clone());
    c.secret_access_key = Some(b.secret_access_key.clone());
    c.allow_http = true;
    c
}

struct Target {
    url: String,
    meta: PostgresMetadataStore,
    blobs: S3BlobStore,
}

async fn target() -> Target {
    let url = PostgresCluster::shared().fresh_database();
    let bucket = GarageNode::shared().fresh_bucket();
    Target {
        meta: PostgresMetadataStore::connect(&url).await.unwrap(),
        blobs: S3BlobStore::connect(s3_config(&bucket)).await.unwrap(),
        url,
    }
}

async fn run(source: &Source, target: &Target, force: bool) -> Result<TransferReport, TransferError> {
    transfer::migrate(
        &source.meta,
        &source.blobs,
        &target.meta,
        &target.blobs,
        force,
        &mut |_: Progress<'_>| {},
    )
    .await
}

async fn read_all(store: &dyn BlobStore, digest: &Digest) -> Vec<u8> {
    let mut s = store.read(digest, None).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// Everything the public API shows, for comparing two stores.
async fn everything(m: &dyn MetadataStore) -> Vec<String> {
    let mut out = Vec::new();
    let principals = m.list_principals(None).await.unwrap();
    out.push(format!("{principals:?}"));
    out.push(format!("{:?}", m.list_assignments(None).await.unwrap()));
    for p in &principals {
        out.push(format!("{:?}", m.token_scopes(p.id).await.unwrap()));
        out.push(format!("{:?}", m.principal_by_id(p.id).await.unwrap()));
    }
    for key in ["policy", "token-key", "missing"] {
        out.push(format!("{key} {:?}", m.get_setting(key).await.unwrap()));
    }
    out.push(format!(
        "{:?}",
        m.login_failures(&["p:alice".into(), "p:bob".into()])
            .await
            .unwrap()
    ));
    out.push(format!("{:?}", m.revocations_after(0, 100).await.unwrap()));
    for repo in ["app", "old"] {
        out.push(format!("{:?}", m.trust_current(repo).await.unwrap()));
        out.push(format!("{:?}", m.trust_keys(repo).await.unwrap()));
        out.push(format!(
            "{:?}",
            m.trust_file_by_version(repo, "targets", 1).await.unwrap()
        ));
    }
    out.push(format!("{:?}", m.trust_changes(None, 0, 100).await.unwrap()));
    out.push(format!("{:?}", m.list_audit(1000).await.unwrap()));
    let repos = m.list_repositories("", None, 100).await.unwrap();
    out.push(format!("{repos:?}"));
    for repo in &repos {
        out.push(format!("{:?}", m.tag_details(repo).await.unwrap()));
        for tag in m.list_tags(repo, None, 100).await.unwrap() {
            let digest = m.resolve_tag(repo, &tag).await.unwrap().unwrap();
            let man = m.get_manifest(repo, &digest).await.unwrap().unwrap();
            out.push(format!(
                "{tag} {:?} {} {:?} {:?} {:?} {}",
                man.digest, man.media_type, man.content, man.subject, man.annotations, man.created_at
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_moves_with_its_ids_and_ids_continue_after_it() {
    let mut source = Source::new().await;
    source.fill().await;
    let target = target().await;
    let mut events = Vec::new();
    let started = Instant::now();
    // Read as `wharf migrate` reads it: a read-only handle of its own.
    let db = source.dir.path().join("metadata.db");
    let read_only = SqliteMetadataStore::open_read_only(&db).await.unwrap();
    let report = transfer::migrate(
        &read_only,
        &source.blobs,
        &target.meta,
        &target.blobs,
        false,
        &mut |p: Progress<'_>| events.push(format!("{p:?}")),
    )
    .await
    .unwrap();
    let bytes: u64 = source.stored.iter().map(|(_, b)| b.len() as u64).sum();
    eprintln!(
        "migrated {} blobs ({bytes} bytes) and {} rows in {:?}",
        source.stored.len(),
        report.tables.iter().map(|(_, n)| n).sum::<u64>(),
        started.elapsed()
    );
    assert_eq!(report.blobs_copied, 6);
    assert_eq!(report.blobs_skipped, 0);
    assert_eq!(report.bytes_copied, bytes);
    assert!(report.replaced.is_empty());
    let count = |t: &str| report.tables.iter().find(|(n, _)| *n == t).unwrap().1;
    assert_eq!(count("principals"), 4, "admin, alice, ci, deploy");
    assert_eq!(count("manifests"), 3);
    assert_eq!(count("token_revocations"), 1);
    assert_eq!(
        report.tables.len(),
        transfer::TABLES.len(),
        "every table is reported"
    );
    assert!(events[0].starts_with("BlobsPlanned { count: 6,"), "{events:?}");
    assert_eq!(events.len(), 1 + 6 + transfer::TABLES.len());

    assert_eq!(everything(&target.meta).await, everything(&source.meta).await);
    for (digest, bytes) in &source.stored {
        assert_eq!(&read_all(&target.blobs, digest).await, bytes, "{digest}");
    }
    // Refresh tokens and portal sessions hang off the copied principal ids.
    let alice = source.meta.find_principal("alice").await.unwrap().unwrap();
    assert_eq!(
        target.meta.use_refresh_token(&[7; 32], 30).await.unwrap(),
        Some(alice.id)
    );
    let session = target
        .meta
        .resume_portal_session(&[9; 32], 30, LIMITS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (session.principal_id, session.principal_name.as_str()),
        (alice.id, "alice")
    );

    // Sequences continue past the copied ids and past ids SQLite handed out and lost.
    let max_id = source
        .meta
        .list_principals(None)
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .max()
        .unwrap();
    let fresh = target
        .meta
        .create_principal("newcomer", "user", Some("h"), None, 40, &rec("user.create"))
        .await
        .unwrap();
    assert_eq!(fresh.id, max_id + 1);
    target.meta.add_revocation("later", 10_000_000).await.unwrap();
    let ids: Vec<i64> = target
        .meta
        .revocations_after(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![3, 4]);
    let before = target.meta.trust_changes(None, -1, -1).await.unwrap()[0].id;
    let ts = NewTrustFile {
        role: "timestamp".into(),
        version: 3,
        sha256: "timestamp-3".into(),
        content: b"{}".to_vec(),
    };
    target
        .meta
        .trust_commit("app", "localhost:5000/app", &[ts], None, 41)
        .await
        .unwrap();
    let after = target.meta.trust_changes(None, -1, -1).await.unwrap()[0].id;
    assert_eq!(after, before + 1);
    // A repository created on the target after the move does not collide either.
    assert_eq!(
        target
            .meta
            .link_blob("brand-new", &source.stored[0].0, None, 42)
            .await
            .unwrap(),
        BlobLinkOutcome::Linked {
            size: source.stored[0].1.len() as u64
        }
    );
    drop(target.url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_empty_target_is_refused_untouched_and_force_replaces_it() {
    let mut source = Source::new().await;
    source.fill().await;
    let target = target().await;
    for name in ["someone", "else"] {
        target
            .meta
            .create_principal(name, "user", Some("h"), None, 1, &rec("user.create"))
            .await
            .unwrap();
    }
    let before = everything(&target.meta).await;
    let err = run(&source, &target, false).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the target database already holds 2 principals and 2 audit records; pass --force to replace them"
    );
    assert_eq!(everything(&target.meta).await, before);
    // Refused before any blob was copied.
    for (digest, _) in &source.stored {
        assert_eq!(target.blobs.stat(digest).await.unwrap(), None);
    }

    let report = run(&source, &target, true).await.unwrap();
    assert_eq!(report.replaced, vec![("principals", 2), ("audit", 2)]);
    assert_eq!(everything(&target.meta).await, everything(&source.meta).await);
    assert!(target.meta.find_principal("someone").await.unwrap().is_none());

    // A finished migration counts as non-empty: running it again is refused.
    let err = run(&source, &target, false).await.unwrap_err();
    assert!(
        matches!(&err, TransferError::TargetNotEmpty(held) if held.contains(&("principals", 4))),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_copy_writes_no_metadata_and_a_rerun_skips_what_was_copied() {
    let mut source = Source::new().await;
    source.fill().await;
    let target = target().await;
    // One blob's file is missing, as after a disk fault.
    let (missing, bytes) = source.stored[3].clone();
    let file = source.blob_file(&missing);
    std::fs::rename(&file, file.with_extension("away")).unwrap();
    let err = run(&source, &target, false).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("blob {missing} is referenced by the source's metadata but missing from the source storage")
    );
    assert!(transfer::target_contents(&target.meta).await.unwrap().is_empty());
    // Blobs are copied several at a time, so which others made it depends on timing:
    // count them, the rerun must skip exactly those.
    let mut present = 0;
    for (digest, _) in &source.stored {
        if target.blobs.stat(digest).await.unwrap().is_some() {
            present += 1;
        }
    }
    assert_eq!(target.blobs.stat(&missing).await.unwrap(), None);

    // Put the file back: the three blobs already there are skipped, the rest copied.
    std::fs::rename(file.with_extension("away"), &file).unwrap();
    let report = run(&source, &target, false).await.unwrap();
    assert_eq!(
        (report.blobs_skipped, report.blobs_copied),
        (present, 6 - present)
    );
    assert_eq!(&read_all(&target.blobs, &missing).await, &bytes);
    assert_eq!(everything(&target.meta).await, everything(&source.meta).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_whose_bytes_do_not_match_its_digest_is_refused_by_name() {
    let mut source = Source::new().await;
    source.fill().await;
    let target = target().await;
    let (bad, bytes) = source.stored[1].clone();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 1;
    std::fs::write(source.blob_file(&bad), &flipped).unwrap();
    let err = run(&source, &target, false).await.unwrap_err();
    let actual = Digest::of(&flipped);
    assert_eq!(
        err.to_string(),
        format!(
            "blob {bad} in the source storage does not match its digest: read {n} bytes (expected {n}) hashing to {actual}",
            n = bytes.len()
        )
    );
    assert_eq!(target.blobs.stat(&bad).await.unwrap(), None);
    assert!(transfer::target_contents(&target.meta).await.unwrap().is_empty());
    // A truncated file is refused the same way.
    std::fs::write(source.blob_file(&bad), &bytes[..10]).unwrap();
    let err = run(&source, &target, false).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("blob {bad} in the source storage does not match"))
    );
}

/// Garbage collection's state moves as it is: a tombstone (its object already deleted by
/// an interrupted collection) and a blob nobody links any more are copied as rows but not
/// as bytes (nothing can serve them, and the source may no longer have them); the
/// target's next collection finishes the tombstone. Linked blobs are copied as always.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_and_unlinked_blobs_move_as_rows_without_bytes() {
    let mut source = Source::new().await;
    let kept = source.push_blob("app", b"linked").await;
    let unlinked = source.push_blob("app", b"unlinked").await;
    let tombstone = source.push_blob("app", b"being deleted").await;
    for d in [&unlinked, &tombstone] {
        assert_eq!(
            source
                .meta
                .unlink_blob("app", d, &rec("blob.delete"))
                .await
                .unwrap(),
            DeleteOutcome::Deleted
        );
    }
    // Unlinked but touched later (an upload reserved it again): not garbage yet.
    source.meta.reserve_blob(&unlinked, 8, 100).await.unwrap();
    assert!(source.meta.take_gc_lease("gc", 200, 100).await.unwrap());
    let batch = source
        .meta
        .tombstone_garbage_blobs("gc", 100, 60, None, 10)
        .await
        .unwrap();
    assert_eq!(
        batch.blobs.iter().map(|b| &b.digest).collect::<Vec<_>>(),
        [&tombstone]
    );
    source.blobs.delete(&tombstone).await.unwrap();
    let target = target().await;
    let report = run(&source, &target, false).await.unwrap();
    assert_eq!((report.blobs_copied, report.blobs_skipped), (1, 0));
    assert_eq!(read_all(&target.blobs, &kept).await, b"linked");
    for d in [&unlinked, &tombstone] {
        assert_eq!(target.blobs.stat(d).await.unwrap(), None);
    }
    assert_eq!(target.meta.known_blob(&unlinked).await.unwrap(), Some(8));
    let pending = target.meta.pending_tombstones(None, 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|b| &b.digest).collect::<Vec<_>>(),
        [&tombstone]
    );
    assert_eq!(
        target
            .meta
            .link_blob("other", &tombstone, None, 300)
            .await
            .unwrap(),
        BlobLinkOutcome::Deleting
    );
}

/// The copy list against the schemas the migrations create: a table or column added by a
/// later migration fails here until `transfer::TABLES` (or `NOT_COPIED`) says what becomes
/// of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_and_column_of_both_schemas_is_mapped() {
    use sqlx::Row;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    drop(SqliteMetadataStore::open(&path).await.unwrap());
    let sqlite = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
        .await
        .unwrap();
    let url = PostgresCluster::shared().fresh_database();
    drop(PostgresMetadataStore::connect(&url).await.unwrap());
    let pg = sqlx::PgPool::connect(&url).await.unwrap();

    let mapped: BTreeSet<&str> = transfer::TABLES.iter().map(|t| t.name).collect();
    let skipped: BTreeSet<&str> = transfer::NOT_COPIED.iter().map(|t| t.0).collect();
    let known: BTreeSet<String> = mapped.union(&skipped).map(|s| s.to_string()).collect();

    let sqlite_tables: BTreeSet<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&sqlite)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(
        sqlite_tables, known,
        "SQLite tables vs transfer::TABLES + NOT_COPIED"
    );
    let pg_tables: BTreeSet<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_name <> 'wharf_schema_version'",
    )
    .fetch_all(&pg)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(
        pg_tables, known,
        "PostgreSQL tables vs transfer::TABLES + NOT_COPIED"
    );

    for table in transfer::TABLES {
        let want: BTreeSet<String> = table.columns.iter().map(|c| c.sqlite.to_string()).collect();
        let got: BTreeSet<String> =
            sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA table_info({})", table.name)))
                .fetch_all(&sqlite)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>("name"))
                .collect();
        assert_eq!(got, want, "SQLite columns of {}", table.name);
        let want: BTreeSet<String> = table.columns.iter().map(|c| c.postgres.to_string()).collect();
        let got: BTreeSet<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1",
        )
        .bind(table.name)
        .fetch_all(&pg)
        .await
        .unwrap()
        .into_iter()
        .collect();
        assert_eq!(got, want, "PostgreSQL columns of {}", table.name);
    }
    pg.close().await;
}

/// Throughput, printed for the record (run with `--nocapture`): many small blobs (object
/// store round trips per blob dominate) and one large one (bytes dominate); then a rerun
/// over a complete target, which costs one `stat` per blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_blobs_and_a_large_one_are_copied_and_timed() {
    let mut many = Source::new().await;
    for i in 0..200u32 {
        let bytes = [pattern(64 << 10, 7), i.to_le_bytes().to_vec()].concat();
        many.push_blob("many", &bytes).await;
    }
    let mut big = Source::new().await;
    big.push_blob("big", &pattern(48 << 20, 9)).await;
    for (name, source) in [("200 x 64 KiB", &many), ("1 x 48 MiB", &big)] {
        let target = target().await;
        let started = Instant::now();
        let report = run(source, &target, false).await.unwrap();
        let took = started.elapsed();
        assert_eq!(report.blobs_copied, source.stored.len() as u64);
        let mib = report.bytes_copied as f64 / (1 << 20) as f64;
        eprintln!(
            "{name}: {mib:.1} MiB in {took:?} ({:.1} MiB/s)",
            mib / took.as_secs_f64()
        );
        let started = Instant::now();
        let again = run(source, &target, true).await.unwrap();
        assert_eq!(again.blobs_skipped, source.stored.len() as u64);
        eprintln!(
            "{name}: rerun over a complete target (--force): {:?}",
            started.elapsed()
        );
    }
}

/// The source is opened read-only and never migrated: a schema of another version is
/// refused with what to do, and nothing in the file changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_is_read_only_and_must_have_this_wharfs_schema() {
    let source = Source::new().await;
    let db = source.dir.path().join("metadata.db");
    let store = SqliteMetadataStore::open_read_only(&db).await.unwrap();
    assert!(store.add_revocation("x", 1).await.is_err(), "read-only");
    drop(store);
    // This wharf's schema version: what a database it migrated records.
    let pool = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&db))
        .await
        .unwrap();
    let current: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (older, newer) = (current - 1, current + 5);
    for (version, says) in [
        (
            older,
            format!(
                "database schema version {older} is older than this wharf's ({current}): start this wharf's server on it once to upgrade it, stop it, then try again"
            ),
        ),
        (
            newer,
            format!("database schema version {newer} is newer than this wharf's ({current}): upgrade wharf"),
        ),
    ] {
        let pool = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&db))
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PRAGMA user_version = {version}")))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let err = SqliteMetadataStore::open_read_only(&db).await.err().unwrap();
        assert_eq!(err.to_string(), says);
    }
}
