//! `PostgresMetadataStore`: the scale-out store, one database shared by N stateless
//! replicas. Same semantics as SQLite, which gets them from one writer at a time
//! (`BEGIN IMMEDIATE`); here writers run side by side at READ COMMITTED, so every method
//! that reads and then writes closes its race with a row lock, an `ON CONFLICT`, a
//! conditional statement or an advisory lock, commented where it is taken. Nothing is
//! cached in process: another replica may have written since. One module per aggregate.

mod audit;
mod garbage;
mod identity;
mod locks;
mod login_failures;
mod portal_sessions;
mod registry;
mod revocations;
mod settings;
mod trust;
mod uploads;
mod usage;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, Postgres, Row, Transaction};

use crate::metadata::AuditRecord;
use crate::{Digest, StoreError, StoreResult};

/// Schema migrations, applied in order; `wharf_schema_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_schema.sql"),
    include_str!("../../migrations/postgres/0002_shared_state.sql"),
    include_str!("../../migrations/postgres/0003_manifest_parents.sql"),
    include_str!("../../migrations/postgres/0004_garbage_collection.sql"),
    include_str!("../../migrations/postgres/0005_locks.sql"),
    include_str!("../../migrations/postgres/0006_untagged_at.sql"),
];

/// First key of every advisory lock Wharf takes (two-int form, so the keys cannot meet an
/// application's single-bigint locks in the same database); the second key says what for.
const WHARF_LOCKS: i32 = 0x5768_7266;
/// Held by the migrating transaction.
const MIGRATION_LOCK: i32 = 1;
/// Names and client ids across principals (one namespace over two unique indexes).
const PRINCIPAL_NAMES_LOCK: i32 = 2;
/// Shared by every per-repository trust write, exclusive for "wipe all trust data".
const ALL_TRUST_LOCK: i32 = 3;
/// Held from a changefeed insert to its commit.
const CHANGEFEED_LOCK: i32 = 4;
/// Held by deletions that must leave an assignment held by someone (the last Owner).
const KEPT_ASSIGNMENT_LOCK: i32 = 5;
/// First key of per-repository trust locks; the second is `hashtext(repository)`, computed
/// by the server so every replica agrees (two repositories whose hashes collide merely
/// queue behind each other).
const TRUST_REPOSITORY_LOCKS: i32 = 0x5768_7267;

/// Connections per replica: enough for a busy server's concurrent requests, small enough
/// that a few replicas stay under PostgreSQL's default `max_connections` (100).
const MAX_CONNECTIONS: u32 = 16;

pub struct PostgresMetadataStore {
    pool: PgPool,
}

fn digest_col(row: &PgRow, col: &str) -> StoreResult<Digest> {
    let s: String = row.try_get(col)?;
    Digest::parse(&s).map_err(|e| StoreError::Corrupt(format!("{col} {s:?}: {e}")))
}

fn opt_digest_col(row: &PgRow, col: &str) -> StoreResult<Option<Digest>> {
    let s: Option<String> = row.try_get(col)?;
    s.map(|s| Digest::parse(&s).map_err(|e| StoreError::Corrupt(format!("{col} {s:?}: {e}"))))
        .transpose()
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A unique violation is a lost race or a duplicate: `Conflict` with `what`.
fn conflict_on_unique(what: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what()),
        e => e.into(),
    }
}

impl PostgresMetadataStore {
    /// Connect to `url` (`postgres://user:password@host:port/database?sslmode=…`) and bring
    /// the schema up to date. Fails with `Unavailable` naming host, port, database and user
    /// (never the password) when the server cannot be reached or refuses us, and with
    /// `Incompatible` when a newer Wharf already migrated the database.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        // sqlx's URL errors name the offending part, not the URL, so no password leaks.
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?;
        // Name our sessions in pg_stat_activity unless the URL already does.
        if options.get_application_name().is_none() {
            options = options.application_name("wharf");
        }
        let server = match options.get_socket() {
            Some(dir) => format!("{} (port {})", dir.display(), options.get_port()),
            None => format!("{}:{}", options.get_host(), options.get_port()),
        };
        let unavailable = |e: sqlx::Error| {
            let reason = match &e {
                sqlx::Error::Database(d) => d.message().to_owned(),
                e => e.to_string(),
            };
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {server} (database {}, user {}): {reason}",
                // PostgreSQL's own default: the database named like the user.
                options.get_database().unwrap_or(options.get_username()),
                options.get_username(),
            ))
        };
        // One plain connection first: the pool retries failed connects until its acquire
        // timeout, which would turn "wrong password" into a 30-second hang and a vague
        // "pool timed out".
        PgConnection::connect_with(&options)
            .await
            .map_err(unavailable)?
            .close()
            .await
            .map_err(unavailable)?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .map_err(unavailable)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        // Replicas starting together queue here: the first applies the migrations, the
        // others then find them applied. A transaction-scoped lock ends with the commit or
        // with the connection, so a migrator that dies cannot leave it held.
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(WHARF_LOCKS)
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS wharf_schema_version (
                 single  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (single),
                 version BIGINT NOT NULL
             )",
        )
        .execute(&mut *tx)
        .await?;
        let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM wharf_schema_version")
            .fetch_optional(&mut *tx)
            .await?;
        let applied = usize::try_from(applied.unwrap_or(0)).unwrap_or(0);
        if applied > MIGRATIONS.len() {
            return Err(StoreError::Incompatible(format!(
                "database schema version {applied} is newer than this wharf ({}): upgrade wharf",
                MIGRATIONS.len()
            )));
        }
        if applied == MIGRATIONS.len() {
            tx.commit().await?;
            return Ok(());
        }
        // DDL is transactional in PostgreSQL: all pending migrations land, or none.
        for sql in &MIGRATIONS[applied..] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*sql)).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO wharf_schema_version (single, version) VALUES (TRUE, $1)
             ON CONFLICT (single) DO UPDATE SET version = excluded.version",
        )
        .bind(MIGRATIONS.len() as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The pool itself, for `transfer`, which writes every table as the source stored it.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn write(&self) -> StoreResult<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// The repository's id, creating the row if needed, and a `KEY SHARE` lock on it until
    /// the transaction ends: a concurrent `delete_repository` then waits for us instead of
    /// deleting the row between our lookup and the rows we hang off it (which would fail
    /// their foreign key). The lock does not block other writers of the same repository.
    async fn ensure_repository(
        tx: &mut Transaction<'static, Postgres>,
        name: &str,
        now: i64,
    ) -> StoreResult<i64> {
        // A deletion can slip in between the two statements; then the row is simply
        // created again (bounded, since each round needs another deletion to lose).
        for _ in 0..8 {
            let created: Option<i64> = sqlx::query_scalar(
                "INSERT INTO repositories (name, created_at) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING RETURNING id",
            )
            .bind(name)
            .bind(now)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(id) = created {
                // Our own uncommitted row: nobody else can delete it.
                return Ok(id);
            }
            let existing: Option<i64> =
                sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1 FOR KEY SHARE")
                    .bind(name)
                    .fetch_optional(&mut **tx)
                    .await?;
            if let Some(id) = existing {
                return Ok(id);
            }
        }
        Err(StoreError::Conflict(format!(
            "repository {name} keeps being deleted while written"
        )))
    }
}

/// Take one of Wharf's transaction-scoped advisory locks, exclusive or shared.
async fn lock(tx: &mut Transaction<'static, Postgres>, key: i32, shared: bool) -> StoreResult<()> {
    let sql = if shared {
        "SELECT pg_advisory_xact_lock_shared($1, $2)"
    } else {
        "SELECT pg_advisory_xact_lock($1, $2)"
    };
    sqlx::query(sql)
        .bind(WHARF_LOCKS)
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// An audit record, inside the transaction of the change it describes.
async fn insert_audit(tx: &mut Transaction<'static, Postgres>, a: &AuditRecord) -> StoreResult<()> {
    sqlx::query("INSERT INTO audit (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(a.at)
        .bind(&a.actor)
        .bind(&a.action)
        .bind(&a.target)
        .bind(&a.detail)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
