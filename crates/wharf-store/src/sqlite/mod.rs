//! `SqliteMetadataStore`: the embedded default. WAL mode so readers never wait for the
//! writer; writes take the lock up front (`BEGIN IMMEDIATE`) so two writers queue on the
//! busy timeout instead of failing on a lock upgrade. One module per aggregate trait.

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

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use crate::metadata::{AuditRecord, ManifestRecord};
use crate::{Digest, StoreError, StoreResult};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_registry.sql"),
    include_str!("../../migrations/sqlite/0002_trust.sql"),
    include_str!("../../migrations/sqlite/0003_access.sql"),
    include_str!("../../migrations/sqlite/0004_shared_state.sql"),
    include_str!("../../migrations/sqlite/0005_manifest_parents.sql"),
    include_str!("../../migrations/sqlite/0006_garbage_collection.sql"),
    include_str!("../../migrations/sqlite/0007_locks.sql"),
    include_str!("../../migrations/sqlite/0008_untagged_at.sql"),
];

pub struct SqliteMetadataStore {
    pool: SqlitePool,
    cache: ReadCache,
    /// Writers' turns, first come first served (see `WriteTx`).
    writers: Arc<tokio::sync::Mutex<()>>,
    /// Request-serving writers waiting for their turn; background work (the garbage
    /// collection's batches) lets them all go first (see `write_background`).
    waiting: Arc<std::sync::atomic::AtomicUsize>,
}

/// A write transaction (`BEGIN IMMEDIATE`) holding this process's turn to write. SQLite
/// admits one writer and makes the others retry on their busy timeout, which is no queue:
/// a writer that commits and begins again at once — a garbage collection's batches — can
/// keep a push waiting for seconds (measured: p99 of a manifest PUT 8× idle during GC,
/// one PUT 3.4 s). The turn is a FIFO lock taken first, so writers go in arrival order.
/// One process owns an embedded database, so a lock in the process covers every writer.
pub(crate) struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Counts a request-serving writer as waiting for its turn while it lives.
struct WaitingWriter<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> WaitingWriter<'a> {
    fn new(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for WaitingWriter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Manifests this large are not kept in the read cache.
const CACHE_MAX_MANIFEST: usize = 64 * 1024;
/// Entries per map before the cache starts over.
const CACHE_MAX_ENTRIES: usize = 4096;

/// Tag and manifest lookups served from memory. SQLite means one server process owns the
/// database, so this process sees every write. A write bumps `generation` under the lock
/// after its commit; a reader only fills the cache if no write happened since it started
/// its query, so a stale answer can never be cached after the write that replaced it.
#[derive(Default)]
struct ReadCache {
    generation: std::sync::atomic::AtomicU64,
    maps: std::sync::RwLock<CacheMaps>,
}

#[derive(Default)]
struct CacheMaps {
    tags: std::collections::HashMap<(String, String), Digest>,
    manifests: std::collections::HashMap<(String, Digest), ManifestRecord>,
}

impl ReadCache {
    fn start_read(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn tag(&self, repository: &str, tag: &str) -> Option<Digest> {
        let maps = self.maps.read().ok()?;
        maps.tags.get(&(repository.to_owned(), tag.to_owned())).cloned()
    }

    fn manifest(&self, repository: &str, digest: &Digest) -> Option<ManifestRecord> {
        let maps = self.maps.read().ok()?;
        maps.manifests
            .get(&(repository.to_owned(), digest.clone()))
            .cloned()
    }

    fn fill(&self, since: u64, f: impl FnOnce(&mut CacheMaps)) {
        let Ok(mut maps) = self.maps.write() else { return };
        if self.generation.load(std::sync::atomic::Ordering::Acquire) != since {
            return;
        }
        if maps.tags.len() >= CACHE_MAX_ENTRIES || maps.manifests.len() >= CACHE_MAX_ENTRIES {
            *maps = CacheMaps::default();
        }
        f(&mut maps);
    }

    /// After a committed write: forget what it may have changed.
    fn invalidate(&self, f: impl FnOnce(&mut CacheMaps)) {
        match self.maps.write() {
            Ok(mut maps) => {
                self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                f(&mut maps);
            }
            Err(poisoned) => {
                self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                *poisoned.into_inner() = CacheMaps::default();
            }
        }
    }
}

fn digest_col(row: &SqliteRow, col: &str) -> StoreResult<Digest> {
    let s: String = row.try_get(col)?;
    Digest::parse(&s).map_err(|e| StoreError::Corrupt(format!("{col} {s:?}: {e}")))
}

fn opt_digest_col(row: &SqliteRow, col: &str) -> StoreResult<Option<Digest>> {
    let s: Option<String> = row.try_get(col)?;
    s.map(|s| Digest::parse(&s).map_err(|e| StoreError::Corrupt(format!("{col} {s:?}: {e}"))))
        .transpose()
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Whether SQLite refused with SQLITE_BUSY ("database is locked").
fn is_busy(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(sqlx::Error::Database(db)) if db.code().as_deref() == Some("5"))
}

impl SqliteMetadataStore {
    /// Open (creating and migrating) the database at `path`. Processes opening a new
    /// database at the same moment can be refused with SQLITE_BUSY without SQLite waiting
    /// out the busy timeout (while one of them switches the file to WAL, or upgrades a
    /// lock): such an open is tried again a few times before the error is reported.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let mut attempt: u64 = 0;
        loop {
            match Self::open_once(path).await {
                Err(e) if attempt < 8 && is_busy(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                opened => return opened,
            }
        }
    }

    async fn open_once(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        let store = Self {
            pool,
            cache: ReadCache::default(),
            writers: Arc::default(),
            waiting: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// An existing database, opened read-only and never migrated: what `wharf migrate`
    /// reads, so the old deployment stays exactly as it was (start it again if the move
    /// has to be abandoned). A schema other than this Wharf's is refused: an older one is
    /// upgraded by starting this Wharf's server on it once.
    pub async fn open_read_only(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&pool).await?;
        let version = usize::try_from(version).unwrap_or(0);
        if version != MIGRATIONS.len() {
            let (which, what) = if version > MIGRATIONS.len() {
                ("newer", "upgrade wharf")
            } else {
                (
                    "older",
                    "start this wharf's server on it once to upgrade it, stop it, then try again",
                )
            };
            return Err(StoreError::Incompatible(format!(
                "database schema version {version} is {which} than this wharf's ({}): {what}",
                MIGRATIONS.len()
            )));
        }
        Ok(Self {
            pool,
            cache: ReadCache::default(),
            writers: Arc::default(),
            waiting: Arc::default(),
        })
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let applied: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await?;
        let applied = usize::try_from(applied).unwrap_or(0);
        if applied > MIGRATIONS.len() {
            return Err(StoreError::Incompatible(format!(
                "database schema version {applied} is newer than this wharf ({}): upgrade wharf",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*sql)).execute(&mut *tx).await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PRAGMA user_version = {}", i + 1)))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The pool itself, for `transfer`, which reads every table as it is stored.
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn write(&self) -> StoreResult<WriteTx> {
        let turn = {
            let _waiting = WaitingWriter::new(&self.waiting);
            self.writers.clone().lock_owned().await
        };
        Ok(WriteTx {
            tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
            _turn: turn,
        })
    }

    /// A write turn for background work: taken only when no request is waiting for one,
    /// so a push that arrives during a garbage collection waits for at most the batch in
    /// progress, never for a queue of them.
    async fn write_background(&self) -> StoreResult<WriteTx> {
        use std::sync::atomic::Ordering;
        let turn = loop {
            if self.waiting.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                continue;
            }
            let turn = self.writers.clone().lock_owned().await;
            if self.waiting.load(Ordering::Acquire) == 0 {
                break turn;
            }
        };
        Ok(WriteTx {
            tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
            _turn: turn,
        })
    }

    async fn ensure_repository(tx: &mut WriteTx, name: &str, now: i64) -> StoreResult<i64> {
        sqlx::query(
            "INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT(name) DO NOTHING",
        )
        .bind(name)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
            .bind(name)
            .fetch_one(&mut **tx)
            .await?)
    }
}

/// An audit record, inside the transaction of the change it describes.
async fn insert_audit(tx: &mut WriteTx, a: &AuditRecord) -> StoreResult<()> {
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
