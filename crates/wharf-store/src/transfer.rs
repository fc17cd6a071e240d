//! Moving a single-machine deployment (SQLite + any blob store) into a scale-out one
//! (PostgreSQL + any other blob store): what `wharf migrate` runs.
//!
//! Shape, and why:
//! - **Blobs first, metadata last.** Blob bytes are the bulk and the slow part. Every blob
//!   a repository of the source links is streamed (eight at a time) from the source
//!   `BlobStore` through the target's normal upload path
//!   (`create_upload` / `upload_writer` / `commit_upload`), hashed on our side while it
//!   streams and refused unless it matches its digest and size (the S3 store checks the
//!   SHA-256 again when it commits). A blob the target already has (`stat`) is skipped:
//!   that is what makes an interrupted run resumable, and it is safe because a target
//!   only ever holds a blob's bytes after such a verified commit. Metadata is written only
//!   once every blob it references is in place, so a target holding metadata is a
//!   finished migration, and a server started on it never serves a manifest whose layers
//!   are missing.
//! - **Metadata in one PostgreSQL transaction.** It is small next to the blobs, so all or
//!   nothing: a failure anywhere leaves the target's tables as they were. Tables are copied
//!   in foreign-key order with their ids and times exactly as stored (principal ids are
//!   what role assignments, token scopes, refresh tokens and portal sessions point at;
//!   changefeed ids are what notary clients page by), then every id sequence is moved past
//!   the largest copied id, and past SQLite's own `AUTOINCREMENT` counter, so an id the
//!   old server once handed out is never handed out again.
//! - **One snapshot.** The source is read inside one SQLite read transaction, opened before
//!   the blob list is read and held until the last table is copied, so the blobs copied
//!   and the metadata written are the same moment of the source. (A server still writing
//!   to the source would not be seen; the operator stops it first, as documented.)
//! - **A non-empty target is refused** with what it holds, unless `force`, which means
//!   "replace": every Wharf table of the target is emptied in the same transaction that
//!   fills it. Blobs already in the target store stay: they are content-addressed, so
//!   whatever is there under a digest is that digest's bytes.
//! - **Not copied:** upload sessions in flight (their scratch bytes live in the source's
//!   upload area, which no target can continue); clients restart such uploads.
//!
//! The mapping below is the one place that knows both schemas. The `migrate_store` test
//! compares it with the tables and columns the migrations create on both databases, so a
//! later migration cannot add a table or column that is silently left behind.

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use sha2::{Digest as _, Sha256};
use sqlx::{AssertSqlSafe, Postgres, QueryBuilder, Row, Sqlite, Transaction};

use crate::{BlobStore, Digest, PostgresMetadataStore, SqliteMetadataStore, StoreError};

/// How a column's values are read and bound (SQLite INTEGER / PostgreSQL BIGINT, TEXT,
/// BLOB / BYTEA). Every column may be NULL as far as the copy is concerned: the target's
/// constraints are the same as the source's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Int,
    Text,
    Bytes,
}

/// One column: its name in each schema.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub sqlite: &'static str,
    pub postgres: &'static str,
    pub ty: ColumnType,
}

/// One copied table.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// The id column PostgreSQL fills from a sequence (BIGSERIAL), if any.
    pub serial: Option<&'static str>,
    /// For people: "principal" / "principals".
    pub singular: &'static str,
    pub plural: &'static str,
}

const fn col(name: &'static str, ty: ColumnType) -> Column {
    Column {
        sqlite: name,
        postgres: name,
        ty,
    }
}

use ColumnType::{Bytes as B, Int as I, Text as T};

/// Every copied table, in foreign-key order (a table comes after the tables it references).
pub const TABLES: &[Table] = &[
    Table {
        name: "repositories",
        columns: &[col("id", I), col("name", T), col("created_at", I)],
        serial: Some("id"),
        singular: "repository",
        plural: "repositories",
    },
    Table {
        name: "blobs",
        columns: &[
            col("digest", T),
            col("size", I),
            col("created_at", I),
            col("last_linked_at", I),
            col("tombstoned_at", I),
        ],
        serial: None,
        singular: "blob",
        plural: "blobs",
    },
    Table {
        name: "repository_blobs",
        columns: &[col("repository_id", I), col("digest", T), col("linked_at", I)],
        serial: None,
        singular: "blob link",
        plural: "blob links",
    },
    Table {
        name: "manifests",
        columns: &[
            col("repository_id", I),
            col("digest", T),
            col("media_type", T),
            col("content", B),
            col("subject", T),
            col("artifact_type", T),
            col("annotations", T),
            col("created_at", I),
            col("untagged_at", I),
        ],
        serial: None,
        singular: "manifest",
        plural: "manifests",
    },
    Table {
        name: "manifest_references",
        columns: &[
            col("repository_id", I),
            col("manifest_digest", T),
            col("child_digest", T),
        ],
        serial: None,
        singular: "manifest reference",
        plural: "manifest references",
    },
    Table {
        name: "tags",
        columns: &[
            col("repository_id", I),
            col("name", T),
            col("manifest_digest", T),
            col("updated_at", I),
        ],
        serial: None,
        singular: "tag",
        plural: "tags",
    },
    Table {
        name: "locks",
        columns: &[
            col("repository_id", I),
            col("tag", T),
            col("no_delete", I),
            col("no_write", I),
            col("updated_at", I),
        ],
        serial: None,
        singular: "lock",
        plural: "locks",
    },
    Table {
        name: "principals",
        columns: &[
            col("id", I),
            col("name", T),
            col("kind", T),
            col("password_hash", T),
            col("created_at", I),
            col("client_id", T),
        ],
        serial: Some("id"),
        singular: "principal",
        plural: "principals",
    },
    Table {
        name: "refresh_tokens",
        columns: &[
            col("token_hash", B),
            col("principal_id", I),
            col("created_at", I),
            col("last_used_at", I),
        ],
        serial: None,
        singular: "refresh token",
        plural: "refresh tokens",
    },
    Table {
        name: "role_assignments",
        columns: &[
            col("principal_id", I),
            col("role", T),
            col("scope", T),
            col("created_at", I),
        ],
        serial: None,
        singular: "role assignment",
        plural: "role assignments",
    },
    Table {
        name: "token_scopes",
        columns: &[col("principal_id", I), col("repository", T), col("action", T)],
        serial: None,
        singular: "token scope",
        plural: "token scopes",
    },
    Table {
        name: "portal_sessions",
        columns: &[
            col("key_hash", B),
            col("principal_id", I),
            col("principal_name", T),
            col("principal_created_at", I),
            col("csrf", T),
            col("created_at", I),
            col("last_seen", I),
        ],
        serial: None,
        singular: "portal session",
        plural: "portal sessions",
    },
    Table {
        name: "login_failures",
        columns: &[
            col("key", T),
            col("failures", I),
            col("locked_until", I),
            col("updated_at", I),
        ],
        serial: None,
        singular: "login failure counter",
        plural: "login failure counters",
    },
    Table {
        name: "token_revocations",
        columns: &[col("id", I), col("principal", T), col("revoked_at_ms", I)],
        serial: Some("id"),
        singular: "token revocation",
        plural: "token revocations",
    },
    Table {
        name: "settings",
        columns: &[col("key", T), col("value", B)],
        serial: None,
        singular: "setting",
        plural: "settings",
    },
    Table {
        name: "trust_files",
        columns: &[
            col("id", I),
            col("repository", T),
            col("gun", T),
            col("role", T),
            col("version", I),
            col("sha256", T),
            col("content", B),
            col("created_at", I),
        ],
        serial: Some("id"),
        singular: "trust file",
        plural: "trust files",
    },
    Table {
        name: "trust_keys",
        columns: &[
            col("id", I),
            col("repository", T),
            col("role", T),
            col("key_id", T),
            col("keytype", T),
            col("sealed_key", B),
            col("created_at", I),
        ],
        serial: Some("id"),
        singular: "trust key",
        plural: "trust keys",
    },
    Table {
        name: "trust_changes",
        columns: &[
            col("id", I),
            col("repository", T),
            col("gun", T),
            col("version", I),
            col("sha256", T),
            col("category", T),
            col("created_at", I),
        ],
        serial: Some("id"),
        singular: "trust change",
        plural: "trust changes",
    },
    Table {
        name: "audit",
        columns: &[
            col("id", I),
            col("at", I),
            col("actor", T),
            col("action", T),
            col("target", T),
            col("detail", T),
        ],
        serial: Some("id"),
        singular: "audit record",
        plural: "audit records",
    },
];

/// Tables of the schema that are deliberately not copied, and why. They still count
/// when deciding whether the target is empty, and are emptied by `force`.
pub const NOT_COPIED: &[(&str, &str, &str, &str)] = &[
    (
        "uploads",
        "upload session",
        "upload sessions",
        "uploads in flight: their bytes are in the source's scratch space; clients restart them",
    ),
    (
        "leases",
        "lease",
        "leases",
        "held by jobs of the stopped source server (garbage collection); they would only expire",
    ),
];

/// Blobs copied at once. Small blobs cost a dozen object-store round trips each (start,
/// state, tail, complete, pointer), so one at a time spends its time waiting: measured
/// against Garage on loopback, 200 blobs of 64 KiB took 10.0 s one by one and 2.2 s
/// eight at a time. Large blobs are bound by bytes either way.
const PARALLEL_BLOBS: usize = 8;

/// Rows bound per INSERT: few round trips, far below PostgreSQL's 65,535 parameters.
const BATCH_ROWS: usize = 500;

/// What a migration run reports as it goes (to show progress).
#[derive(Debug)]
pub enum Progress<'a> {
    /// The blobs the source's metadata references, before any is copied.
    BlobsPlanned { count: u64, bytes: u64 },
    /// Blob `done` of the planned ones is in the target (`copied` false: it already was).
    Blob {
        done: u64,
        digest: &'a Digest,
        size: u64,
        copied: bool,
    },
    /// The target's existing Wharf tables were emptied (`force`).
    TargetEmptied,
    /// One table's rows are written (not yet committed).
    Table { table: &'a str, rows: u64 },
}

/// What a finished migration did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TransferReport {
    /// Rows copied per table, in copy order.
    pub tables: Vec<(&'static str, u64)>,
    pub blobs_copied: u64,
    pub blobs_skipped: u64,
    pub bytes_copied: u64,
    pub bytes_skipped: u64,
    /// What the target held before `force` emptied it (empty when it held nothing).
    pub replaced: Vec<(&'static str, u64)>,
}

/// Why a migration stopped. Nothing of the metadata is written when any of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// What the target holds, non-empty tables only. The text names `--force`, the flag of
    /// this module's one caller, `wharf migrate`: it is what the operator reads.
    #[error("the target database already holds {}; pass --force to replace them", describe_counts(.0))]
    TargetNotEmpty(Vec<(&'static str, u64)>),
    #[error("blob {0} is referenced by the source's metadata but missing from the source storage")]
    BlobMissing(Digest),
    #[error(
        "blob {digest} in the source storage does not match its digest: read {read_bytes} bytes (expected {size}) hashing to {actual}"
    )]
    BlobMismatch {
        digest: Digest,
        size: u64,
        read_bytes: u64,
        actual: Digest,
    },
    #[error("reading blob {0} from the source storage: {1}")]
    SourceBlob(Digest, StoreError),
    #[error("writing blob {0} to the target storage: {1}")]
    TargetBlob(Digest, StoreError),
    #[error(
        "the target storage holds blob {digest} with {held} bytes, but it has {size}: remove that object and run again"
    )]
    TargetBlobSize { digest: Digest, size: u64, held: u64 },
    #[error("the source database: {0}")]
    Source(String),
    #[error("the target database: {0}")]
    Target(String),
}

/// "3 principals and 12 repositories" from `(table, count)`, with the tables' own words.
fn describe_counts(counts: &[(&'static str, u64)]) -> String {
    let words: Vec<String> = counts
        .iter()
        .map(|(table, n)| {
            let (one, many) = label(table);
            format!("{n} {}", if *n == 1 { one } else { many })
        })
        .collect();
    match words.as_slice() {
        [] => "nothing".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn label(table: &str) -> (&'static str, &'static str) {
    TABLES
        .iter()
        .find(|t| t.name == table)
        .map(|t| (t.singular, t.plural))
        .or_else(|| {
            NOT_COPIED
                .iter()
                .find(|(name, ..)| *name == table)
                .map(|(_, one, many, _)| (*one, *many))
        })
        .unwrap_or(("row", "rows"))
}

/// Every table name a target may hold Wharf data in: copied or not.
fn all_tables() -> impl Iterator<Item = &'static str> {
    TABLES
        .iter()
        .map(|t| t.name)
        .chain(NOT_COPIED.iter().map(|(name, ..)| *name))
}

/// One value on its way from SQLite to PostgreSQL.
enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

fn source_err(what: impl std::fmt::Display) -> impl FnOnce(sqlx::Error) -> TransferError {
    move |e| TransferError::Source(format!("{what}: {e}"))
}

fn target_err(what: impl std::fmt::Display) -> impl FnOnce(sqlx::Error) -> TransferError {
    move |e| TransferError::Target(format!("{what}: {e}"))
}

/// Non-empty tables of the target, in the order of `TABLES` then `NOT_COPIED`.
pub async fn target_contents(
    target: &PostgresMetadataStore,
) -> Result<Vec<(&'static str, u64)>, TransferError> {
    let mut conn = target.pool().acquire().await.map_err(target_err("connecting"))?;
    count_rows(&mut conn).await
}

async fn count_rows(conn: &mut sqlx::PgConnection) -> Result<Vec<(&'static str, u64)>, TransferError> {
    let mut held = Vec::new();
    for table in all_tables() {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&mut *conn)
            .await
            .map_err(target_err(format_args!("counting {table}")))?;
        if n > 0 {
            held.push((table, n as u64));
        }
    }
    Ok(held)
}

/// Copy everything a server stores from `source` (SQLite metadata, `source_blobs`) to
/// `target` (PostgreSQL, `target_blobs`). See the module comment for the order and its
/// guarantees. `force` replaces a non-empty target instead of refusing it.
pub async fn migrate(
    source: &SqliteMetadataStore,
    source_blobs: &dyn BlobStore,
    target: &PostgresMetadataStore,
    target_blobs: &dyn BlobStore,
    force: bool,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<TransferReport, TransferError> {
    // Refuse early, before hours of blob copying; checked again under the transaction.
    let held = target_contents(target).await?;
    if !held.is_empty() && !force {
        return Err(TransferError::TargetNotEmpty(held));
    }
    let mut snapshot = source
        .pool()
        .begin()
        .await
        .map_err(source_err("starting a read transaction"))?;
    let mut report = TransferReport::default();
    copy_blobs(&mut snapshot, source_blobs, target_blobs, &mut report, progress).await?;
    copy_metadata(&mut snapshot, target, force, &mut report, progress).await?;
    // Read-only: nothing to commit, the snapshot simply ends.
    snapshot
        .rollback()
        .await
        .map_err(source_err("ending the read transaction"))?;
    Ok(report)
}

async fn copy_blobs(
    snapshot: &mut Transaction<'static, Sqlite>,
    source: &dyn BlobStore,
    target: &dyn BlobStore,
    report: &mut TransferReport,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<(), TransferError> {
    // The first read of the transaction: the snapshot starts here. Only linked blobs'
    // bytes are copied: nothing can serve the others. Their rows are copied as they are —
    // a tombstone (its object maybe already deleted) or a blob an upload reserved and
    // never linked — and garbage collection on the target removes them like any other.
    let rows = sqlx::query(
        "SELECT digest, size FROM blobs b
          WHERE tombstoned_at IS NULL
            AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
          ORDER BY digest",
    )
    .fetch_all(&mut **snapshot)
    .await
    .map_err(source_err("reading the blob list"))?;
    let mut blobs = Vec::with_capacity(rows.len());
    for row in &rows {
        let digest: String = row.try_get(0).map_err(source_err("reading the blob list"))?;
        let size: i64 = row.try_get(1).map_err(source_err("reading the blob list"))?;
        let digest = Digest::parse(&digest)
            .map_err(|e| TransferError::Source(format!("blob list holds {digest:?}: {e}")))?;
        blobs.push((digest, u64::try_from(size).unwrap_or(0)));
    }
    progress(Progress::BlobsPlanned {
        count: blobs.len() as u64,
        bytes: blobs.iter().map(|(_, s)| s).sum(),
    });
    let mut copies = futures_util::stream::iter(&blobs)
        .map(|(digest, size)| async move {
            let held = target
                .stat(digest)
                .await
                .map_err(|e| TransferError::TargetBlob(digest.clone(), e))?;
            match held {
                Some(held) if held == *size => Ok((digest, *size, false)),
                Some(held) => Err(TransferError::TargetBlobSize {
                    digest: digest.clone(),
                    size: *size,
                    held,
                }),
                None => {
                    copy_blob(source, target, digest, *size).await?;
                    Ok((digest, *size, true))
                }
            }
        })
        .buffer_unordered(PARALLEL_BLOBS);
    let mut done = 0;
    // The first failure ends the run; copies still in flight are dropped with the stream
    // (their scratch space is cleared by the next run, which reuses their upload ids).
    while let Some(result) = copies.next().await {
        let (digest, size, copied) = result?;
        if copied {
            report.blobs_copied += 1;
            report.bytes_copied += size;
        } else {
            report.blobs_skipped += 1;
            report.bytes_skipped += size;
        }
        done += 1;
        progress(Progress::Blob {
            done,
            digest,
            size,
            copied,
        });
    }
    Ok(())
}

/// The target's scratch id for one blob: the same on every run, so a rerun first clears
/// what an interrupted one left (and the ids of clients' uploads, random, never meet it).
fn upload_id(digest: &Digest) -> String {
    format!("migrate-{}", &digest.hex()[..56])
}

async fn copy_blob(
    source: &dyn BlobStore,
    target: &dyn BlobStore,
    digest: &Digest,
    size: u64,
) -> Result<(), TransferError> {
    let id = upload_id(digest);
    let to_target = |e| TransferError::TargetBlob(digest.clone(), e);
    let mut stream = match source.read(digest, None).await {
        Ok(s) => s,
        Err(StoreError::NotFound) => return Err(TransferError::BlobMissing(digest.clone())),
        Err(e) => return Err(TransferError::SourceBlob(digest.clone(), e)),
    };
    target.abort_upload(&id).await.map_err(to_target)?;
    target.create_upload(&id).await.map_err(to_target)?;
    let written = async {
        let mut writer = target.upload_writer(&id, 0).await.map_err(to_target)?;
        let mut hasher = Sha256::new();
        let mut read_bytes = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk: Bytes = chunk.map_err(|e| TransferError::SourceBlob(digest.clone(), e.into()))?;
            hasher.update(&chunk);
            read_bytes += chunk.len() as u64;
            // Past the recorded size the blob is wrong whatever follows: stop reading.
            if read_bytes > size {
                break;
            }
            writer.write(chunk).await.map_err(to_target)?;
        }
        let actual = Digest::from_sha256(hasher.finalize().as_slice());
        if read_bytes != size || &actual != digest {
            return Err(TransferError::BlobMismatch {
                digest: digest.clone(),
                size,
                read_bytes,
                actual,
            });
        }
        writer.finish().await.map_err(to_target)?;
        target.commit_upload(&id, digest).await.map_err(to_target)
    }
    .await;
    if written.is_err() {
        // Best effort: whatever is left is scratch space the next run (or the target
        // server's upload expiry) removes.
        let _ = target.abort_upload(&id).await;
    }
    written
}

async fn copy_metadata(
    snapshot: &mut Transaction<'static, Sqlite>,
    target: &PostgresMetadataStore,
    force: bool,
    report: &mut TransferReport,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<(), TransferError> {
    let mut tx = target
        .pool()
        .begin()
        .await
        .map_err(target_err("starting the transaction"))?;
    // No server may write while we look and fill: a replica started on the target too
    // early would otherwise bootstrap an owner between our count and our inserts.
    let names = all_tables().collect::<Vec<_>>().join(", ");
    sqlx::query(AssertSqlSafe(format!("LOCK TABLE {names} IN EXCLUSIVE MODE")))
        .execute(&mut *tx)
        .await
        .map_err(target_err("locking the tables"))?;
    let held = count_rows(&mut tx).await?;
    if !held.is_empty() {
        if !force {
            return Err(TransferError::TargetNotEmpty(held));
        }
        sqlx::query(AssertSqlSafe(format!("TRUNCATE {names} RESTART IDENTITY")))
            .execute(&mut *tx)
            .await
            .map_err(target_err("emptying the target's tables"))?;
        report.replaced = held;
        progress(Progress::TargetEmptied);
    }
    for table in TABLES {
        let rows = copy_table(snapshot, &mut tx, table).await?;
        report.tables.push((table.name, rows));
        progress(Progress::Table {
            table: table.name,
            rows,
        });
    }
    for table in TABLES {
        if let Some(id) = table.serial {
            continue_sequence(snapshot, &mut tx, table.name, id).await?;
        }
    }
    tx.commit()
        .await
        .map_err(target_err("committing the copied metadata"))?;
    Ok(())
}

async fn copy_table(
    snapshot: &mut Transaction<'static, Sqlite>,
    tx: &mut Transaction<'static, Postgres>,
    table: &Table,
) -> Result<u64, TransferError> {
    let source_cols = table
        .columns
        .iter()
        .map(|c| format!("\"{}\"", c.sqlite))
        .collect::<Vec<_>>()
        .join(", ");
    let target_cols = table
        .columns
        .iter()
        .map(|c| format!("\"{}\"", c.postgres))
        .collect::<Vec<_>>()
        .join(", ");
    let select = format!("SELECT {source_cols} FROM {} ORDER BY rowid", table.name);
    let mut rows = sqlx::query(AssertSqlSafe(select)).fetch(&mut **snapshot);
    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(BATCH_ROWS);
    let mut copied = 0u64;
    let reading = format!("reading table {}", table.name);
    loop {
        let row = rows.try_next().await.map_err(source_err(&reading))?;
        if let Some(row) = &row {
            let mut values = Vec::with_capacity(table.columns.len());
            for (i, c) in table.columns.iter().enumerate() {
                values.push(match c.ty {
                    ColumnType::Int => Value::Int(row.try_get(i).map_err(source_err(&reading))?),
                    ColumnType::Text => Value::Text(row.try_get(i).map_err(source_err(&reading))?),
                    // Unchecked: SQLite hands back a value stored as TEXT in a BLOB column
                    // as its bytes, which is what PostgreSQL's BYTEA must get.
                    ColumnType::Bytes => {
                        Value::Bytes(row.try_get_unchecked(i).map_err(source_err(&reading))?)
                    }
                });
            }
            batch.push(values);
        }
        if batch.len() == BATCH_ROWS || (row.is_none() && !batch.is_empty()) {
            let mut insert =
                QueryBuilder::<Postgres>::new(format!("INSERT INTO {} ({target_cols}) ", table.name));
            let n = batch.len() as u64;
            insert.push_values(batch.drain(..), |mut b, values| {
                for v in values {
                    match v {
                        Value::Int(v) => b.push_bind(v),
                        Value::Text(v) => b.push_bind(v),
                        Value::Bytes(v) => b.push_bind(v),
                    };
                }
            });
            insert
                .build()
                .execute(&mut **tx)
                .await
                .map_err(target_err(format_args!("writing table {}", table.name)))?;
            copied += n;
        }
        if row.is_none() {
            return Ok(copied);
        }
    }
}

/// Move `table`'s id sequence past every id the source ever handed out: the largest
/// copied one, and SQLite's `AUTOINCREMENT` high-water mark, which stays above deleted
/// rows (a changefeed or revocation id must never come back).
async fn continue_sequence(
    snapshot: &mut Transaction<'static, Sqlite>,
    tx: &mut Transaction<'static, Postgres>,
    table: &str,
    id: &str,
) -> Result<(), TransferError> {
    let high_water: Option<i64> = sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = $1")
        .bind(table)
        .fetch_optional(&mut **snapshot)
        .await
        .or_else(|e| match &e {
            // No AUTOINCREMENT table at all means no `sqlite_sequence` either.
            sqlx::Error::Database(d) if d.message().contains("no such table") => Ok(None),
            _ => Err(e),
        })
        .map_err(source_err(format_args!("reading the id counter of {table}")))?;
    sqlx::query(AssertSqlSafe(format!(
        "SELECT setval(pg_get_serial_sequence('{table}', '{id}'),
                       GREATEST(COALESCE((SELECT MAX({id}) FROM {table}), 0), $1) + 1, false)"
    )))
    .bind(high_water.unwrap_or(0))
    .execute(&mut **tx)
    .await
    .map_err(target_err(format_args!("moving the id sequence of {table}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_like_a_sentence() {
        assert_eq!(
            describe_counts(&[("principals", 3), ("repositories", 12)]),
            "3 principals and 12 repositories"
        );
        assert_eq!(
            describe_counts(&[("principals", 1), ("settings", 2), ("uploads", 1)]),
            "1 principal, 2 settings and 1 upload session"
        );
    }

    #[test]
    fn upload_ids_fit_the_stores_rules() {
        let id = upload_id(&Digest::of(b"x"));
        assert!(crate::fs_blob::is_upload_id(&id), "{id}");
    }
}
