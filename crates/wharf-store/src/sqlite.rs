//! `SqliteMetadataStore`: the embedded default. WAL mode so readers never wait for the
//! writer; writes take the lock up front (`BEGIN IMMEDIATE`) so two writers queue on the
//! busy timeout instead of failing on a lock upgrade.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use crate::metadata::{
    ManifestPutOutcome, ManifestRecord, MetadataStore, NewManifest, Principal, ReferrerRecord, UploadSession,
};
use crate::{Digest, StoreError, StoreResult};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/sqlite/0001_registry.sql")];

pub struct SqliteMetadataStore {
    pool: SqlitePool,
    cache: ReadCache,
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

impl SqliteMetadataStore {
    pub async fn open(path: &Path) -> StoreResult<Self> {
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
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let applied: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await?;
        let applied = usize::try_from(applied).unwrap_or(0);
        if applied > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!(
                "database schema version {applied} is newer than this wharf ({})",
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

    async fn write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn ensure_repository(
        tx: &mut Transaction<'static, Sqlite>,
        name: &str,
        now: i64,
    ) -> StoreResult<i64> {
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

#[async_trait]
impl MetadataStore for SqliteMetadataStore {
    async fn list_repositories(&self, last: Option<&str>, limit: u32) -> StoreResult<Vec<String>> {
        // A repository is listed while it holds at least one manifest.
        Ok(sqlx::query_scalar(
            "SELECT name FROM repositories r WHERE name > $1
               AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
             ORDER BY name LIMIT $2",
        )
        .bind(last.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn repository_exists(&self, name: &str) -> StoreResult<bool> {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT 1 FROM repositories WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    async fn list_tags(&self, repository: &str, last: Option<&str>, limit: u32) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id
             WHERE r.name = $1 AND t.name > $2 ORDER BY t.name LIMIT $3",
        )
        .bind(repository)
        .bind(last.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn linked_blob(&self, repository: &str, digest: &Digest) -> StoreResult<Option<u64>> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM repository_blobs rb
               JOIN repositories r ON r.id = rb.repository_id
               JOIN blobs b ON b.digest = rb.digest
             WHERE r.name = $1 AND rb.digest = $2",
        )
        .bind(repository)
        .bind(digest.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(size.map(|s| s as u64))
    }

    async fn known_blob(&self, digest: &Digest) -> StoreResult<Option<u64>> {
        let size: Option<i64> = sqlx::query_scalar("SELECT size FROM blobs WHERE digest = $1")
            .bind(digest.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(size.map(|s| s as u64))
    }

    async fn link_blob(&self, repository: &str, digest: &Digest, size: u64, now: i64) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let repo = Self::ensure_repository(&mut tx, repository, now).await?;
        sqlx::query(
            "INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3) ON CONFLICT(digest) DO NOTHING",
        )
        .bind(digest.as_str())
        .bind(to_i64(size))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO repository_blobs (repository_id, digest, linked_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(repo)
        .bind(digest.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn unlink_blob(&self, repository: &str, digest: &Digest) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM repository_blobs WHERE digest = $2
               AND repository_id = (SELECT id FROM repositories WHERE name = $1)",
        )
        .bind(repository)
        .bind(digest.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_upload(&self, s: &UploadSession) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO uploads (id, repository, offset, hash_state, started_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.id)
        .bind(&s.repository)
        .bind(to_i64(s.offset))
        .bind(&s.hash_state)
        .bind(s.started_at)
        .bind(s.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_upload(&self, id: &str) -> StoreResult<Option<UploadSession>> {
        let row = sqlx::query("SELECT * FROM uploads WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(UploadSession {
                id: r.try_get("id")?,
                repository: r.try_get("repository")?,
                offset: r.try_get::<i64, _>("offset")? as u64,
                hash_state: r.try_get("hash_state")?,
                started_at: r.try_get("started_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .transpose()
    }

    async fn advance_upload(
        &self,
        id: &str,
        expected_offset: u64,
        new_offset: u64,
        hash_state: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE uploads SET offset = $3, hash_state = $4, updated_at = $5 WHERE id = $1 AND offset = $2",
        )
        .bind(id)
        .bind(to_i64(expected_offset))
        .bind(to_i64(new_offset))
        .bind(hash_state)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_upload(&self, id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn stale_uploads(&self, before: i64) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT id FROM uploads WHERE updated_at < $1")
            .bind(before)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn put_manifest(&self, repository: &str, m: &NewManifest) -> StoreResult<ManifestPutOutcome> {
        let rec = &m.record;
        let mut tx = self.write().await?;
        let repo = Self::ensure_repository(&mut tx, repository, rec.created_at).await?;
        for blob in &m.blobs {
            let linked: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM repository_blobs WHERE repository_id = $1 AND digest = $2")
                    .bind(repo)
                    .bind(blob.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            if linked.is_none() {
                return Ok(ManifestPutOutcome::MissingBlob(blob.clone()));
            }
        }
        for child in &m.manifests {
            let present: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2")
                    .bind(repo)
                    .bind(child.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            if present.is_none() {
                return Ok(ManifestPutOutcome::MissingManifest(child.clone()));
            }
        }
        // Same digest means same bytes: a re-push keeps the original row.
        sqlx::query(
            "INSERT INTO manifests (repository_id, digest, media_type, content, subject, artifact_type, annotations, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(repo)
        .bind(rec.digest.as_str())
        .bind(&rec.media_type)
        .bind(rec.content.as_ref())
        .bind(rec.subject.as_ref().map(Digest::as_str))
        .bind(rec.artifact_type.as_deref())
        .bind(rec.annotations.as_deref())
        .bind(rec.created_at)
        .execute(&mut *tx)
        .await?;
        for child in m.blobs.iter().chain(&m.manifests) {
            sqlx::query(
                "INSERT INTO manifest_references (repository_id, manifest_digest, child_digest) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
            )
            .bind(repo)
            .bind(rec.digest.as_str())
            .bind(child.as_str())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(tag) = &m.tag {
            sqlx::query(
                "INSERT INTO tags (repository_id, name, manifest_digest, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT(repository_id, name) DO UPDATE SET manifest_digest = excluded.manifest_digest,
                 updated_at = excluded.updated_at",
            )
            .bind(repo)
            .bind(tag)
            .bind(rec.digest.as_str())
            .bind(rec.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if let Some(tag) = &m.tag {
            self.cache.invalidate(|c| {
                c.tags.remove(&(repository.to_owned(), tag.clone()));
            });
        }
        Ok(ManifestPutOutcome::Stored)
    }

    async fn get_manifest(&self, repository: &str, digest: &Digest) -> StoreResult<Option<ManifestRecord>> {
        if let Some(hit) = self.cache.manifest(repository, digest) {
            return Ok(Some(hit));
        }
        let since = self.cache.start_read();
        let row = sqlx::query(
            "SELECT m.* FROM manifests m JOIN repositories r ON r.id = m.repository_id
             WHERE r.name = $1 AND m.digest = $2",
        )
        .bind(repository)
        .bind(digest.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ManifestRecord {
                digest: digest_col(&r, "digest")?,
                media_type: r.try_get("media_type")?,
                content: Bytes::from(r.try_get::<Vec<u8>, _>("content")?),
                subject: opt_digest_col(&r, "subject")?,
                artifact_type: r.try_get("artifact_type")?,
                annotations: r.try_get("annotations")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
        .inspect(|found: &Option<ManifestRecord>| {
            if let Some(rec) = found.as_ref().filter(|r| r.content.len() <= CACHE_MAX_MANIFEST) {
                self.cache.fill(since, |c| {
                    c.manifests
                        .insert((repository.to_owned(), digest.clone()), rec.clone());
                });
            }
        })
    }

    async fn resolve_tag(&self, repository: &str, tag: &str) -> StoreResult<Option<Digest>> {
        if let Some(hit) = self.cache.tag(repository, tag) {
            return Ok(Some(hit));
        }
        let since = self.cache.start_read();
        let row = sqlx::query(
            "SELECT t.manifest_digest FROM tags t JOIN repositories r ON r.id = t.repository_id
             WHERE r.name = $1 AND t.name = $2",
        )
        .bind(repository)
        .bind(tag)
        .fetch_optional(&self.pool)
        .await?;
        let found = row.map(|r| digest_col(&r, "manifest_digest")).transpose()?;
        if let Some(d) = &found {
            self.cache.fill(since, |c| {
                c.tags.insert((repository.to_owned(), tag.to_owned()), d.clone());
            });
        }
        Ok(found)
    }

    async fn delete_manifest(&self, repository: &str, digest: &Digest) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM manifests WHERE digest = $2
               AND repository_id = (SELECT id FROM repositories WHERE name = $1)",
        )
        .bind(repository)
        .bind(digest.as_str())
        .execute(&self.pool)
        .await?;
        // Its tags went with it (cascade); which ones is unknown here, so forget them all.
        self.cache.invalidate(|c| {
            c.manifests.remove(&(repository.to_owned(), digest.clone()));
            c.tags.clear();
        });
        Ok(done.rows_affected() > 0)
    }

    async fn delete_tag(&self, repository: &str, tag: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM tags WHERE name = $2 AND repository_id = (SELECT id FROM repositories WHERE name = $1)",
        )
        .bind(repository)
        .bind(tag)
        .execute(&self.pool)
        .await?;
        self.cache.invalidate(|c| {
            c.tags.remove(&(repository.to_owned(), tag.to_owned()));
        });
        Ok(done.rows_affected() > 0)
    }

    async fn referrers(
        &self,
        repository: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> StoreResult<Vec<ReferrerRecord>> {
        let rows = sqlx::query(
            "SELECT m.digest, m.media_type, length(m.content) AS size, m.artifact_type, m.annotations
             FROM manifests m JOIN repositories r ON r.id = m.repository_id
             WHERE r.name = $1 AND m.subject = $2 AND ($3 IS NULL OR m.artifact_type = $3)
             ORDER BY m.created_at, m.digest",
        )
        .bind(repository)
        .bind(subject.as_str())
        .bind(artifact_type)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReferrerRecord {
                    digest: digest_col(r, "digest")?,
                    media_type: r.try_get("media_type")?,
                    size: r.try_get::<i64, _>("size")? as u64,
                    artifact_type: r.try_get("artifact_type")?,
                    annotations: r.try_get("annotations")?,
                })
            })
            .collect()
    }

    async fn count_principals(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM principals")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn create_principal(
        &self,
        name: &str,
        kind: &str,
        password_hash: Option<&str>,
        now: i64,
    ) -> StoreResult<Principal> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO principals (name, kind, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(kind)
        .bind(password_hash)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(format!("{name} exists")),
            e => e.into(),
        })?;
        Ok(Principal {
            id,
            name: name.to_owned(),
            kind: kind.to_owned(),
            password_hash: password_hash.map(str::to_owned),
            created_at: now,
        })
    }

    async fn find_principal(&self, name: &str) -> StoreResult<Option<Principal>> {
        let row = sqlx::query("SELECT * FROM principals WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| principal_row(&r)).transpose()
    }

    async fn principal_by_id(&self, id: i64) -> StoreResult<Option<Principal>> {
        let row = sqlx::query("SELECT * FROM principals WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| principal_row(&r)).transpose()
    }

    async fn store_refresh_token(&self, token_hash: &[u8], principal_id: i64, now: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO refresh_tokens (token_hash, principal_id, created_at) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(principal_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn use_refresh_token(&self, token_hash: &[u8], now: i64) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "UPDATE refresh_tokens SET last_used_at = $2 WHERE token_hash = $1 RETURNING principal_id",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn init_setting(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT(key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        let stored: Vec<u8> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn put_setting(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn principal_row(r: &SqliteRow) -> StoreResult<Principal> {
    Ok(Principal {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        password_hash: r.try_get("password_hash")?,
        created_at: r.try_get("created_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(body: &'static [u8], tag: &str) -> NewManifest {
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
        }
    }

    #[tokio::test]
    async fn cached_tag_lookups_follow_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMetadataStore::open(&dir.path().join("m.db")).await.unwrap();
        let (a, b) = (manifest(b"a", "latest"), manifest(b"b", "latest"));
        store.put_manifest("r", &a).await.unwrap();
        assert_eq!(
            store.resolve_tag("r", "latest").await.unwrap(),
            Some(Digest::of(b"a"))
        );
        assert!(
            store
                .get_manifest("r", &Digest::of(b"a"))
                .await
                .unwrap()
                .is_some()
        );
        store.put_manifest("r", &b).await.unwrap();
        assert_eq!(
            store.resolve_tag("r", "latest").await.unwrap(),
            Some(Digest::of(b"b"))
        );
        store.delete_manifest("r", &Digest::of(b"b")).await.unwrap();
        assert_eq!(store.resolve_tag("r", "latest").await.unwrap(), None);
        store.put_manifest("r", &manifest(b"a", "v1")).await.unwrap();
        assert_eq!(
            store.resolve_tag("r", "v1").await.unwrap(),
            Some(Digest::of(b"a"))
        );
        store.delete_tag("r", "v1").await.unwrap();
        assert_eq!(store.resolve_tag("r", "v1").await.unwrap(), None);
        store.delete_manifest("r", &Digest::of(b"a")).await.unwrap();
        assert!(
            store
                .get_manifest("r", &Digest::of(b"a"))
                .await
                .unwrap()
                .is_none()
        );
    }
}
