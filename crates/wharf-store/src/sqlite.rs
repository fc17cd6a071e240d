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
    AuditRecord, ManifestPutOutcome, ManifestRecord, MetadataStore, NewManifest, NewTrustFile, Principal,
    ReferrerRecord, RoleAssignment, TagDetail, TokenScope, TrustChange, TrustFile, TrustKeyRecord,
    UploadSession,
};
use crate::{Digest, StoreError, StoreResult};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_registry.sql"),
    include_str!("../migrations/sqlite/0002_trust.sql"),
    include_str!("../migrations/sqlite/0003_access.sql"),
];

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
    async fn list_repositories(
        &self,
        contains: &str,
        last: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<String>> {
        // A repository is listed while it holds at least one manifest. `instr` rather than
        // LIKE: the filter is a plain substring, `%` and `_` in it mean themselves.
        Ok(sqlx::query_scalar(
            "SELECT name FROM repositories r WHERE name > $1 AND instr(name, $2) > 0
               AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
             ORDER BY name LIMIT $3",
        )
        .bind(last.unwrap_or(""))
        .bind(contains)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn tag_details(&self, repository: &str) -> StoreResult<Vec<TagDetail>> {
        // Size: the manifest itself, the blobs it references, and for an index the
        // child manifests and their blobs.
        let rows = sqlx::query(
            "WITH repo AS (SELECT id FROM repositories WHERE name = $1),
             refs AS (
               SELECT mr.manifest_digest AS top, mr.child_digest AS child FROM manifest_references mr, repo
                WHERE mr.repository_id = repo.id
               UNION ALL
               SELECT r1.manifest_digest, r2.child_digest FROM manifest_references r1
                 JOIN manifest_references r2
                   ON r2.repository_id = r1.repository_id AND r2.manifest_digest = r1.child_digest, repo
                WHERE r1.repository_id = repo.id
             )
             SELECT t.name AS tag, t.manifest_digest AS digest, m.media_type AS media_type,
                    t.updated_at AS pushed_at,
                    length(m.content)
                      + COALESCE((SELECT SUM(COALESCE(b.size, length(cm.content)))
                                    FROM refs
                                    LEFT JOIN blobs b ON b.digest = refs.child
                                    LEFT JOIN manifests cm ON cm.repository_id = t.repository_id AND cm.digest = refs.child
                                   WHERE refs.top = t.manifest_digest), 0) AS size
               FROM tags t, repo
               JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
              WHERE t.repository_id = repo.id
              ORDER BY t.name",
        )
        .bind(repository)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TagDetail {
                    tag: r.try_get("tag")?,
                    digest: r.try_get("digest")?,
                    media_type: r.try_get("media_type")?,
                    pushed_at: r.try_get("pushed_at")?,
                    size: r.try_get::<i64, _>("size")?.max(0) as u64,
                })
            })
            .collect()
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

    async fn unlink_blob(&self, repository: &str, digest: &Digest, audit: &AuditRecord) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "DELETE FROM repository_blobs WHERE digest = $2
               AND repository_id = (SELECT id FROM repositories WHERE name = $1)",
        )
        .bind(repository)
        .bind(digest.as_str())
        .execute(&mut *tx)
        .await?;
        let found = done.rows_affected() > 0;
        if found {
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(found)
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
        if let Some(a) = &m.audit {
            insert_audit(&mut tx, a).await?;
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

    async fn delete_manifest(
        &self,
        repository: &str,
        digest: &Digest,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "DELETE FROM manifests WHERE digest = $2
               AND repository_id = (SELECT id FROM repositories WHERE name = $1)",
        )
        .bind(repository)
        .bind(digest.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        // Its tags went with it (cascade); which ones is unknown here, so forget them all.
        self.cache.invalidate(|c| {
            c.manifests.remove(&(repository.to_owned(), digest.clone()));
            c.tags.clear();
        });
        Ok(done.rows_affected() > 0)
    }

    async fn delete_tag(&self, repository: &str, tag: &str, audit: &AuditRecord) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "DELETE FROM tags WHERE name = $2 AND repository_id = (SELECT id FROM repositories WHERE name = $1)",
        )
        .bind(repository)
        .bind(tag)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        self.cache.invalidate(|c| {
            c.tags.remove(&(repository.to_owned(), tag.to_owned()));
        });
        Ok(done.rows_affected() > 0)
    }

    async fn delete_repository(&self, repository: &str, audit: &AuditRecord) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        // Manifests, tags and blob links go with the row (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM repositories WHERE name = $1")
            .bind(repository)
            .execute(&mut *tx)
            .await?;
        let found = done.rows_affected() > 0;
        if found {
            insert_audit(&mut tx, audit).await?;
        }
        tx.commit().await?;
        self.cache.invalidate(|c| {
            c.manifests.retain(|(r, _), _| r != repository);
            c.tags.retain(|(r, _), _| r != repository);
        });
        Ok(found)
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
        client_id: Option<&str>,
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<Principal> {
        let mut tx = self.write().await?;
        let p = insert_principal(&mut tx, name, kind, password_hash, client_id, now).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(p)
    }

    async fn create_bootstrap_owner(
        &self,
        name: &str,
        password_hash: &str,
        role: &str,
        scope: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<Principal> {
        let mut tx = self.write().await?;
        let p = insert_principal(&mut tx, name, "user", Some(password_hash), None, now).await?;
        insert_assignment(&mut tx, p.id, role, scope, now).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(p)
    }

    async fn find_principal(&self, name: &str) -> StoreResult<Option<Principal>> {
        let row = sqlx::query(
            "SELECT * FROM principals WHERE name = $1 OR client_id = $1 ORDER BY name = $1 DESC LIMIT 1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| principal_row(&r)).transpose()
    }

    async fn list_principals(&self, kind: Option<&str>) -> StoreResult<Vec<Principal>> {
        let rows = sqlx::query("SELECT * FROM principals WHERE $1 IS NULL OR kind = $1 ORDER BY name")
            .bind(kind)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(principal_row).collect()
    }

    async fn delete_principal(&self, name: &str, kind: &str, audit: &AuditRecord) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM principals WHERE name = $1 AND kind = $2")
            .bind(name)
            .bind(kind)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn set_principal_secret(
        &self,
        principal_id: i64,
        password_hash: Option<&str>,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE principals SET password_hash = $2 WHERE id = $1")
            .bind(principal_id)
            .bind(password_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE principal_id = $1")
            .bind(principal_id)
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_assignment(
        &self,
        principal_id: i64,
        role: &str,
        scope: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        insert_assignment(&mut tx, principal_id, role, scope, now).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_assignment(
        &self,
        principal_id: i64,
        role: &str,
        scope: &str,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let done =
            sqlx::query("DELETE FROM role_assignments WHERE principal_id = $1 AND role = $2 AND scope = $3")
                .bind(principal_id)
                .bind(role)
                .bind(scope)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn list_assignments(&self, principal_id: Option<i64>) -> StoreResult<Vec<RoleAssignment>> {
        let rows = sqlx::query(
            "SELECT p.name, p.kind, a.role, a.scope, a.created_at FROM role_assignments a
             JOIN principals p ON p.id = a.principal_id
             WHERE $1 IS NULL OR a.principal_id = $1 ORDER BY p.name, a.role, a.scope",
        )
        .bind(principal_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RoleAssignment {
                    principal: r.try_get("name")?,
                    principal_kind: r.try_get("kind")?,
                    role: r.try_get("role")?,
                    scope: r.try_get("scope")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn create_token(
        &self,
        name: &str,
        password_hash: &str,
        scopes: &[TokenScope],
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<Principal> {
        let mut tx = self.write().await?;
        let p = insert_principal(&mut tx, name, "token", Some(password_hash), None, now).await?;
        for s in scopes {
            sqlx::query(
                "INSERT INTO token_scopes (principal_id, repository, action) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(p.id)
            .bind(&s.repository)
            .bind(&s.action)
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(p)
    }

    async fn token_scopes(&self, principal_id: i64) -> StoreResult<Vec<TokenScope>> {
        let rows = sqlx::query(
            "SELECT repository, action FROM token_scopes WHERE principal_id = $1 ORDER BY repository, action",
        )
        .bind(principal_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenScope {
                    repository: r.try_get("repository")?,
                    action: r.try_get("action")?,
                })
            })
            .collect()
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

    async fn put_setting(&self, key: &str, value: &[u8], audit: Option<&AuditRecord>) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        if let Some(a) = audit {
            insert_audit(&mut tx, a).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn update_settings_if(
        &self,
        guard_key: &str,
        guard_value: &[u8],
        changes: &[(&str, Option<&[u8]>)],
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        // BEGIN IMMEDIATE holds the write lock from the guard read to the commit.
        let mut tx = self.write().await?;
        let stored: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(guard_key)
            .fetch_optional(&mut *tx)
            .await?;
        if stored.as_deref() != Some(guard_value) {
            return Ok(false);
        }
        for (key, value) in changes {
            match value {
                Some(v) => {
                    sqlx::query(
                        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(*key)
                    .bind(*v)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM settings WHERE key = $1")
                        .bind(*key)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn trust_current(&self, repository: &str) -> StoreResult<Vec<TrustFile>> {
        let rows = sqlx::query(
            "SELECT f.* FROM trust_files f
             WHERE f.repository = $1
               AND f.version = (SELECT max(g.version) FROM trust_files g
                                WHERE g.repository = f.repository AND g.role = f.role)
             ORDER BY f.role",
        )
        .bind(repository)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(trust_file_row).collect()
    }

    async fn trust_file_by_version(
        &self,
        repository: &str,
        role: &str,
        version: i64,
    ) -> StoreResult<Option<TrustFile>> {
        let row =
            sqlx::query("SELECT * FROM trust_files WHERE repository = $1 AND role = $2 AND version = $3")
                .bind(repository)
                .bind(role)
                .bind(version)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(trust_file_row).transpose()
    }

    async fn trust_file_by_sha256(
        &self,
        repository: &str,
        role: &str,
        sha256: &str,
    ) -> StoreResult<Option<TrustFile>> {
        let row = sqlx::query(
            "SELECT * FROM trust_files WHERE repository = $1 AND role = $2 AND sha256 = $3
             ORDER BY version DESC LIMIT 1",
        )
        .bind(repository)
        .bind(role)
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(trust_file_row).transpose()
    }

    async fn trust_commit(
        &self,
        repository: &str,
        gun: &str,
        files: &[NewTrustFile],
        audit: Option<&AuditRecord>,
        now: i64,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        for f in files {
            // The validator compared against what it read; re-check under the write lock so
            // an update computed from an older state cannot slip in behind a newer one.
            let stored: Option<i64> = sqlx::query_scalar(
                "SELECT max(version) FROM trust_files WHERE repository = $1 AND role = $2",
            )
            .bind(repository)
            .bind(&f.role)
            .fetch_one(&mut *tx)
            .await?;
            if stored.is_some_and(|v| v >= f.version) {
                return Err(StoreError::Conflict(format!(
                    "{} version {} is not newer than the stored one",
                    f.role, f.version
                )));
            }
            sqlx::query(
                "INSERT INTO trust_files (repository, gun, role, version, sha256, content, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(repository)
            .bind(gun)
            .bind(&f.role)
            .bind(f.version)
            .bind(&f.sha256)
            .bind(&f.content)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(d) if d.is_unique_violation() => {
                    StoreError::Conflict(format!("{} version {} already stored", f.role, f.version))
                }
                e => e.into(),
            })?;
            if f.role == "timestamp" {
                sqlx::query(
                    "INSERT INTO trust_changes (repository, gun, version, sha256, category, created_at)
                     VALUES ($1, $2, $3, $4, 'update', $5)",
                )
                .bind(repository)
                .bind(gun)
                .bind(f.version)
                .bind(&f.sha256)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        if let Some(a) = audit {
            insert_audit(&mut tx, a).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn trust_delete(&self, repository: &str, gun: &str, audit: &AuditRecord) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let existed = delete_trust_of(&mut tx, Some(repository)).await? > 0;
        if existed {
            sqlx::query(
                "INSERT INTO trust_changes (repository, gun, version, sha256, category, created_at)
                 VALUES ($1, $2, 0, '', 'deletion', $3)",
            )
            .bind(repository)
            .bind(gun)
            .bind(audit.at)
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(existed)
    }

    async fn trust_delete_all(&self, setting: &str, value: &[u8], audit: &AuditRecord) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        let repos: Vec<(String, String)> = sqlx::query_as(
            "SELECT repository, max(gun) FROM trust_files GROUP BY repository ORDER BY repository",
        )
        .fetch_all(&mut *tx)
        .await?;
        delete_trust_of(&mut tx, None).await?;
        for (repository, gun) in &repos {
            sqlx::query(
                "INSERT INTO trust_changes (repository, gun, version, sha256, category, created_at)
                 VALUES ($1, $2, 0, '', 'deletion', $3)",
            )
            .bind(repository)
            .bind(gun)
            .bind(audit.at)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .bind(setting)
        .bind(value)
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(repos.len() as u64)
    }

    async fn trust_changes(
        &self,
        repository: Option<&str>,
        change_id: i64,
        records: i64,
    ) -> StoreResult<Vec<TrustChange>> {
        let limit = records.unsigned_abs().min(10_000) as i64;
        // `change_id < 0` means "start from the newest": the last `|records|` rows.
        let rows = if records >= 0 && change_id >= 0 {
            sqlx::query(
                "SELECT * FROM trust_changes WHERE ($1 IS NULL OR repository = $1) AND id > $2
                 ORDER BY id LIMIT $3",
            )
            .bind(repository)
            .bind(change_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
        } else {
            let mut rows = sqlx::query(
                "SELECT * FROM trust_changes
                 WHERE ($1 IS NULL OR repository = $1) AND ($2 < 0 OR id < $2)
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(repository)
            .bind(change_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.reverse();
            rows
        };
        rows.iter()
            .map(|r| {
                Ok(TrustChange {
                    id: r.try_get("id")?,
                    repository: r.try_get("repository")?,
                    gun: r.try_get("gun")?,
                    version: r.try_get("version")?,
                    sha256: r.try_get("sha256")?,
                    category: r.try_get("category")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn trust_keys(&self, repository: &str) -> StoreResult<Vec<TrustKeyRecord>> {
        let rows = sqlx::query("SELECT * FROM trust_keys WHERE repository = $1 ORDER BY id")
            .bind(repository)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(trust_key_row).collect()
    }

    async fn trust_key_create(
        &self,
        repository: &str,
        candidate: &TrustKeyRecord,
        active_key_ids: Option<&[String]>,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<TrustKeyRecord> {
        let mut tx = self.write().await?;
        let rows =
            sqlx::query("SELECT * FROM trust_keys WHERE repository = $1 AND role = $2 ORDER BY id DESC")
                .bind(repository)
                .bind(&candidate.role)
                .fetch_all(&mut *tx)
                .await?;
        let existing = rows
            .iter()
            .map(trust_key_row)
            .collect::<StoreResult<Vec<_>>>()?
            .into_iter()
            .find(|k| active_key_ids.is_none_or(|active| !active.contains(&k.key_id)));
        if let Some(k) = existing {
            tx.commit().await?;
            return Ok(k);
        }
        sqlx::query(
            "INSERT INTO trust_keys (repository, role, key_id, keytype, sealed_key, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(repository)
        .bind(&candidate.role)
        .bind(&candidate.key_id)
        .bind(&candidate.keytype)
        .bind(&candidate.sealed_key)
        .bind(candidate.created_at)
        .execute(&mut *tx)
        .await?;
        // Only a key actually created is recorded; a pending key handed out again was
        // recorded when it was made.
        if let Some(a) = audit {
            insert_audit(&mut tx, a).await?;
        }
        tx.commit().await?;
        Ok(candidate.clone())
    }

    async fn add_audit(&self, record: &AuditRecord) -> StoreResult<()> {
        let mut tx = self.write().await?;
        insert_audit(&mut tx, record).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_audit(&self, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query("SELECT * FROM audit ORDER BY id DESC LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}

async fn insert_principal(
    tx: &mut Transaction<'static, Sqlite>,
    name: &str,
    kind: &str,
    password_hash: Option<&str>,
    client_id: Option<&str>,
    now: i64,
) -> StoreResult<Principal> {
    // Names and client ids share one namespace: a login string must name one principal.
    let clash: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM principals WHERE name = $1 OR client_id = $1 OR ($2 IS NOT NULL AND (name = $2 OR client_id = $2))",
    )
    .bind(name)
    .bind(client_id)
    .fetch_optional(&mut **tx)
    .await?;
    if clash.is_some() {
        return Err(StoreError::Conflict(format!("{name} exists")));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO principals (name, kind, password_hash, client_id, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(name)
    .bind(kind)
    .bind(password_hash)
    .bind(client_id)
    .bind(now)
    .fetch_one(&mut **tx)
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
        client_id: client_id.map(str::to_owned),
        created_at: now,
    })
}

async fn insert_assignment(
    tx: &mut Transaction<'static, Sqlite>,
    principal_id: i64,
    role: &str,
    scope: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO role_assignments (principal_id, role, scope, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(principal_id)
    .bind(role)
    .bind(scope)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict(format!("{role} on {scope} is already assigned"))
        }
        e => e.into(),
    })?;
    Ok(())
}

async fn insert_audit(tx: &mut Transaction<'static, Sqlite>, a: &AuditRecord) -> StoreResult<()> {
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

/// Files and server keys of one repository (or of all); returns deleted file rows.
async fn delete_trust_of(
    tx: &mut Transaction<'static, Sqlite>,
    repository: Option<&str>,
) -> StoreResult<u64> {
    let files = sqlx::query("DELETE FROM trust_files WHERE $1 IS NULL OR repository = $1")
        .bind(repository)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM trust_keys WHERE $1 IS NULL OR repository = $1")
        .bind(repository)
        .execute(&mut **tx)
        .await?;
    Ok(files.rows_affected())
}

fn trust_file_row(r: &SqliteRow) -> StoreResult<TrustFile> {
    Ok(TrustFile {
        role: r.try_get("role")?,
        version: r.try_get("version")?,
        sha256: r.try_get("sha256")?,
        content: r.try_get("content")?,
        created_at: r.try_get("created_at")?,
    })
}

fn trust_key_row(r: &SqliteRow) -> StoreResult<TrustKeyRecord> {
    Ok(TrustKeyRecord {
        role: r.try_get("role")?,
        key_id: r.try_get("key_id")?,
        keytype: r.try_get("keytype")?,
        sealed_key: r.try_get("sealed_key")?,
        created_at: r.try_get("created_at")?,
    })
}

fn principal_row(r: &SqliteRow) -> StoreResult<Principal> {
    Ok(Principal {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        password_hash: r.try_get("password_hash")?,
        client_id: r.try_get("client_id")?,
        created_at: r.try_get("created_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(role: &str, version: i64, body: &str) -> NewTrustFile {
        NewTrustFile {
            role: role.into(),
            version,
            sha256: format!("{role}{version}"),
            content: body.as_bytes().to_vec(),
        }
    }

    fn audit(action: &str) -> AuditRecord {
        AuditRecord {
            at: 1,
            actor: "admin".into(),
            action: action.into(),
            target: "t".into(),
            detail: String::new(),
        }
    }

    async fn store() -> (tempfile::TempDir, SqliteMetadataStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteMetadataStore::open(&dir.path().join("m.db")).await.unwrap();
        (dir, s)
    }

    #[tokio::test]
    async fn trust_update_commits_whole_or_nothing_and_conflicts_on_versions() {
        let (_d, s) = store().await;
        let v1 = [
            file("root", 1, "r1"),
            file("targets", 1, "t1"),
            file("snapshot", 1, "s1"),
            file("timestamp", 1, "ts1"),
        ];
        s.trust_commit("a", "h/a", &v1, Some(&audit("trust.update")), 10)
            .await
            .unwrap();
        // A second publisher computed from the same state: its snapshot/timestamp collide.
        let racer = [
            file("targets", 2, "t2b"),
            file("snapshot", 2, "s2b"),
            file("timestamp", 1, "ts1b"),
        ];
        assert!(matches!(
            s.trust_commit("a", "h/a", &racer, None, 11).await,
            Err(StoreError::Conflict(_))
        ));
        // Nothing of the failed update was stored (targets 2 must not exist).
        assert!(
            s.trust_file_by_version("a", "targets", 2)
                .await
                .unwrap()
                .is_none()
        );
        let ok = [
            file("targets", 2, "t2"),
            file("snapshot", 2, "s2"),
            file("timestamp", 2, "ts2"),
        ];
        s.trust_commit("a", "h/a", &ok, None, 12).await.unwrap();
        let cur = s.trust_current("a").await.unwrap();
        let versions: Vec<(String, i64)> = cur.iter().map(|f| (f.role.clone(), f.version)).collect();
        assert_eq!(
            versions,
            vec![
                ("root".into(), 1),
                ("snapshot".into(), 2),
                ("targets".into(), 2),
                ("timestamp".into(), 2)
            ]
        );
        assert_eq!(
            s.trust_file_by_sha256("a", "targets", "targets1")
                .await
                .unwrap()
                .unwrap()
                .content,
            b"t1"
        );
        // Other repositories are independent.
        s.trust_commit("b", "h/b", &v1, None, 13).await.unwrap();
        let feed = s.trust_changes(None, 0, 100).await.unwrap();
        assert_eq!(feed.iter().map(|c| c.version).collect::<Vec<_>>(), vec![1, 2, 1]);
        assert_eq!(s.trust_changes(Some("a"), 0, 100).await.unwrap().len(), 2);
        assert_eq!(s.trust_changes(None, -1, 1).await.unwrap()[0].gun, "h/b");
        assert_eq!(s.trust_changes(None, 3, -2).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn concurrent_identical_updates_one_wins() {
        let (_d, s) = store().await;
        let s = std::sync::Arc::new(s);
        let v1 = vec![
            file("root", 1, "r1"),
            file("targets", 1, "t1"),
            file("timestamp", 1, "ts"),
        ];
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (s, v1) = (s.clone(), v1.clone());
            tasks.push(tokio::spawn(async move {
                s.trust_commit("a", "h/a", &v1, None, 1).await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => ok += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(ok, 1);
    }

    #[tokio::test]
    async fn deletes_are_scoped_and_disable_wipes_everything_atomically() {
        let (_d, s) = store().await;
        let v1 = [file("root", 1, "r1"), file("timestamp", 1, "ts")];
        for r in ["a", "b"] {
            s.trust_commit(r, &format!("h/{r}"), &v1, None, 1).await.unwrap();
            let key = TrustKeyRecord {
                role: "timestamp".into(),
                key_id: format!("k{r}"),
                keytype: "ed25519".into(),
                sealed_key: vec![1],
                created_at: 1,
            };
            // Create-if-absent returns the first key for every later candidate.
            s.trust_key_create(r, &key, None, None).await.unwrap();
            let other = TrustKeyRecord {
                key_id: "other".into(),
                ..key.clone()
            };
            assert_eq!(
                s.trust_key_create(r, &other, None, None).await.unwrap().key_id,
                key.key_id
            );
            // With the first key active, a rotation creates exactly one pending key.
            let active = vec![key.key_id.clone()];
            assert_eq!(
                s.trust_key_create(r, &other, Some(&active), None)
                    .await
                    .unwrap()
                    .key_id,
                "other"
            );
            let third = TrustKeyRecord {
                key_id: "third".into(),
                ..key.clone()
            };
            assert_eq!(
                s.trust_key_create(r, &third, Some(&active), None)
                    .await
                    .unwrap()
                    .key_id,
                "other"
            );
        }
        assert!(s.trust_delete("a", "h/a", &audit("trust.reset")).await.unwrap());
        assert!(s.trust_current("a").await.unwrap().is_empty());
        assert!(s.trust_keys("a").await.unwrap().is_empty());
        assert_eq!(s.trust_current("b").await.unwrap().len(), 2);
        assert!(!s.trust_delete("a", "h/a", &audit("trust.reset")).await.unwrap());
        assert_eq!(
            s.trust_delete_all("content_trust", b"false", &audit("disable"))
                .await
                .unwrap(),
            1
        );
        assert!(s.trust_current("b").await.unwrap().is_empty());
        assert_eq!(s.get_setting("content_trust").await.unwrap().unwrap(), b"false");
        assert_eq!(s.list_audit(10).await.unwrap()[0].action, "disable");
        let feed = s.trust_changes(None, 0, 100).await.unwrap();
        assert_eq!(feed.iter().filter(|c| c.category == "deletion").count(), 2);
    }

    fn tagged_manifest(body: &'static [u8], tag: &str) -> NewManifest {
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
            audit: None,
        }
    }

    fn record(action: &str) -> AuditRecord {
        AuditRecord {
            at: 1,
            actor: "tester".into(),
            action: action.into(),
            target: "r".into(),
            detail: String::new(),
        }
    }

    #[tokio::test]
    async fn cached_tag_lookups_follow_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteMetadataStore::open(&dir.path().join("m.db")).await.unwrap();
        let (a, b) = (tagged_manifest(b"a", "latest"), tagged_manifest(b"b", "latest"));
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
        store
            .delete_manifest("r", &Digest::of(b"b"), &record("manifest.delete"))
            .await
            .unwrap();
        assert_eq!(store.resolve_tag("r", "latest").await.unwrap(), None);
        store
            .put_manifest("r", &tagged_manifest(b"a", "v1"))
            .await
            .unwrap();
        assert_eq!(
            store.resolve_tag("r", "v1").await.unwrap(),
            Some(Digest::of(b"a"))
        );
        store.delete_tag("r", "v1", &record("tag.delete")).await.unwrap();
        assert_eq!(store.resolve_tag("r", "v1").await.unwrap(), None);
        store
            .delete_manifest("r", &Digest::of(b"a"), &record("manifest.delete"))
            .await
            .unwrap();
        assert!(
            store
                .get_manifest("r", &Digest::of(b"a"))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn settings_update_only_while_the_guard_holds() {
        let (_d, s) = store().await;
        s.put_setting("k", b"v1", None).await.unwrap();
        s.put_setting("gone", b"x", None).await.unwrap();
        let changes: [(&str, Option<&[u8]>); 3] =
            [("k", Some(b"v2")), ("k_old", Some(b"v1")), ("gone", None)];
        // A writer that read a stale value changes nothing and writes no audit record.
        assert!(
            !s.update_settings_if("k", b"stale", &changes, &audit("rotate"))
                .await
                .unwrap()
        );
        assert_eq!(s.get_setting("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
        assert!(s.list_audit(10).await.unwrap().is_empty());
        assert!(
            s.update_settings_if("k", b"v1", &changes, &audit("rotate"))
                .await
                .unwrap()
        );
        assert_eq!(s.get_setting("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
        assert_eq!(s.get_setting("k_old").await.unwrap().as_deref(), Some(&b"v1"[..]));
        assert_eq!(s.get_setting("gone").await.unwrap(), None);
        assert_eq!(s.list_audit(10).await.unwrap()[0].action, "rotate");
        // The second of two writers from the same state loses.
        assert!(
            !s.update_settings_if("k", b"v1", &changes, &audit("rotate"))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn assignments_tokens_and_revocation_cascade_with_the_principal() {
        let (_d, s) = store().await;
        let alice = s
            .create_principal("alice", "user", Some("h"), None, 1, &rec("user.create"))
            .await
            .unwrap();
        // Names and client ids are one namespace.
        assert!(matches!(
            s.create_principal("sp1", "sp", Some("h"), Some("alice"), 1, &rec("sp.create"))
                .await,
            Err(StoreError::Conflict(_))
        ));
        let sp = s
            .create_principal("sp1", "sp", Some("h"), Some("sp-0011"), 1, &rec("sp.create"))
            .await
            .unwrap();
        assert_eq!(s.find_principal("sp-0011").await.unwrap().unwrap().id, sp.id);
        s.create_assignment(alice.id, "AcrPush", "registry", 2, &rec("role-assignment.create"))
            .await
            .unwrap();
        assert!(matches!(
            s.create_assignment(alice.id, "AcrPush", "registry", 2, &rec("role-assignment.create"))
                .await,
            Err(StoreError::Conflict(_))
        ));
        s.store_refresh_token(b"rt", alice.id, 3).await.unwrap();
        let t = s
            .create_token(
                "tok",
                "h",
                &[TokenScope {
                    repository: "a".into(),
                    action: "content/read".into(),
                }],
                4,
                &rec("token.create"),
            )
            .await
            .unwrap();
        assert_eq!(s.token_scopes(t.id).await.unwrap().len(), 1);
        assert_eq!(s.list_assignments(None).await.unwrap().len(), 1);
        assert!(
            !s.delete_principal("alice", "sp", &rec("sp.delete"))
                .await
                .unwrap()
        );
        assert!(
            s.delete_principal("alice", "user", &rec("user.delete"))
                .await
                .unwrap()
        );
        assert_eq!(s.use_refresh_token(b"rt", 5).await.unwrap(), None);
        assert!(s.list_assignments(None).await.unwrap().is_empty());
        s.store_refresh_token(b"rt2", sp.id, 6).await.unwrap();
        s.set_principal_secret(sp.id, None, &rec("sp.reset-secret"))
            .await
            .unwrap();
        assert_eq!(s.use_refresh_token(b"rt2", 7).await.unwrap(), None);
        // One record per change that happened, none for the refused or absent ones.
        let actions: Vec<String> = s
            .list_audit(100)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.action)
            .collect();
        let mut sorted = actions.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "role-assignment.create",
                "sp.create",
                "sp.reset-secret",
                "token.create",
                "user.create",
                "user.delete"
            ]
        );
    }

    fn rec(action: &str) -> AuditRecord {
        AuditRecord {
            at: 1,
            actor: "tester".into(),
            action: action.into(),
            target: "t".into(),
            detail: String::new(),
        }
    }

    /// A change (identity, policy, trust key) whose audit record cannot be written is not made.
    #[tokio::test]
    async fn changes_and_their_audit_records_commit_together() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteMetadataStore::open(&dir.path().join("m.db")).await.unwrap();
        let alice = s
            .create_principal("alice", "user", Some("h"), None, 1, &rec("user.create"))
            .await
            .unwrap();
        s.create_assignment(alice.id, "AcrPull", "registry", 1, &rec("role-assignment.create"))
            .await
            .unwrap();
        s.put_manifest("r", &tagged_manifest(b"m1", "v1")).await.unwrap();
        s.link_blob("r", &Digest::of(b"blob"), 4, 1).await.unwrap();
        sqlx::query(
            "CREATE TRIGGER no_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
        )
        .execute(&s.pool)
        .await
        .unwrap();
        assert!(
            s.create_principal("bob", "user", Some("h"), None, 2, &rec("user.create"))
                .await
                .is_err()
        );
        assert!(s.find_principal("bob").await.unwrap().is_none());
        assert!(
            s.create_assignment(alice.id, "Owner", "registry", 2, &rec("role-assignment.create"))
                .await
                .is_err()
        );
        assert!(
            s.delete_assignment(alice.id, "AcrPull", "registry", &rec("role-assignment.delete"))
                .await
                .is_err()
        );
        let left = s.list_assignments(None).await.unwrap();
        assert_eq!((left.len(), left[0].role.as_str()), (1, "AcrPull"));
        assert!(
            s.delete_principal("alice", "user", &rec("user.delete"))
                .await
                .is_err()
        );
        assert!(s.find_principal("alice").await.unwrap().is_some());
        s.store_refresh_token(b"rt", alice.id, 3).await.unwrap();
        assert!(
            s.set_principal_secret(alice.id, None, &rec("user.reset"))
                .await
                .is_err()
        );
        assert_eq!(
            s.find_principal("alice")
                .await
                .unwrap()
                .unwrap()
                .password_hash
                .as_deref(),
            Some("h")
        );
        assert_eq!(s.use_refresh_token(b"rt", 4).await.unwrap(), Some(alice.id));
        assert!(
            s.create_token("tok", "h", &[], 5, &rec("token.create"))
                .await
                .is_err()
        );
        assert!(s.find_principal("tok").await.unwrap().is_none());
        assert!(
            s.create_bootstrap_owner("root", "h", "Owner", "registry", 6, &rec("user.create"))
                .await
                .is_err()
        );
        assert!(s.find_principal("root").await.unwrap().is_none());
        s.put_setting("policy", b"off", None).await.unwrap();
        let refused = s
            .put_setting("policy", b"on", Some(&rec("content-trust.enable")))
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("audit refused"), "{refused}");
        assert_eq!(
            s.get_setting("policy").await.unwrap().as_deref(),
            Some(&b"off"[..])
        );
        let key = TrustKeyRecord {
            role: "timestamp".into(),
            key_id: "k1".into(),
            keytype: "ed25519".into(),
            sealed_key: vec![1],
            created_at: 7,
        };
        assert!(
            s.trust_key_create("a", &key, Some(&[]), Some(&rec("trust.key.create")))
                .await
                .is_err()
        );
        assert!(s.trust_keys("a").await.unwrap().is_empty());
        // Pushes and deletions of images are audited the same way.
        let mut pushed = tagged_manifest(b"m2", "v2");
        pushed.audit = Some(rec("manifest.push"));
        assert!(s.put_manifest("r", &pushed).await.is_err());
        assert_eq!(s.resolve_tag("r", "v2").await.unwrap(), None);
        assert!(s.get_manifest("r", &Digest::of(b"m2")).await.unwrap().is_none());
        assert!(s.delete_tag("r", "v1", &rec("tag.delete")).await.is_err());
        assert!(
            s.delete_manifest("r", &Digest::of(b"m1"), &rec("manifest.delete"))
                .await
                .is_err()
        );
        assert_eq!(s.resolve_tag("r", "v1").await.unwrap(), Some(Digest::of(b"m1")));
        assert!(
            s.unlink_blob("r", &Digest::of(b"blob"), &rec("blob.delete"))
                .await
                .is_err()
        );
        assert_eq!(s.linked_blob("r", &Digest::of(b"blob")).await.unwrap(), Some(4));
        assert_eq!(s.list_audit(100).await.unwrap().len(), 2);
    }
}
