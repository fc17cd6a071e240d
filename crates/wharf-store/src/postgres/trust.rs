//! PostgreSQL: content trust (Notary v1): trust files by version and checksum, the changefeed and
//! server-held keys.
//!
//! Writers of one repository's trust data queue on a per-repository advisory lock
//! (`lock_repository`): each of them reads the stored state (highest versions, existing
//! keys) and then writes what depends on it, and a row lock cannot cover rows that do not
//! exist yet. Every such writer also holds `ALL_TRUST_LOCK` shared, which "wipe every
//! repository" takes exclusively. Changefeed rows are inserted under `CHANGEFEED_LOCK`
//! (always taken last) so their ids commit in order. The fixed order (all, repository,
//! changefeed) rules out deadlocks between them.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};

use super::{
    ALL_TRUST_LOCK, CHANGEFEED_LOCK, PostgresMetadataStore, TRUST_REPOSITORY_LOCKS, conflict_on_unique,
    insert_audit, lock,
};
use crate::metadata::{AuditRecord, NewTrustFile, TrustChange, TrustFile, TrustKeyRecord, TrustStore};
use crate::{StoreError, StoreResult};

#[async_trait]
impl TrustStore for PostgresMetadataStore {
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

    async fn trust_head(&self, repository: &str, role: &str) -> StoreResult<Option<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT version, sha256 FROM trust_files WHERE repository = $1 AND role = $2
             ORDER BY version DESC LIMIT 1",
        )
        .bind(repository)
        .bind(role)
        .fetch_optional(&self.pool)
        .await?)
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
        lock_repository(&mut tx, repository).await?;
        for f in files {
            // The validator compared against what it read; re-check under the repository's
            // lock so an update computed from an older state cannot slip in behind a newer
            // one (the unique (role, version) alone would let version 3 land after 4).
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
            .map_err(conflict_on_unique(|| {
                format!("{} version {} already stored", f.role, f.version)
            }))?;
            if f.role == "timestamp" {
                // Ids come from a sequence when the row is inserted, not when it commits:
                // without this lock (held to our commit) a reader polling "after id N" could
                // see N+1 before a concurrent N commits, and never see N. Trust updates are
                // rare; serialising their last few statements costs nothing noticeable.
                lock(&mut tx, CHANGEFEED_LOCK, false).await?;
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
        lock_repository(&mut tx, repository).await?;
        let existed = delete_trust_of(&mut tx, Some(repository)).await? > 0;
        if existed {
            lock(&mut tx, CHANGEFEED_LOCK, false).await?;
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
        // Exclusive: no repository's trust write is in flight or can start until the wipe
        // and the policy change commit together.
        lock(&mut tx, ALL_TRUST_LOCK, false).await?;
        lock(&mut tx, CHANGEFEED_LOCK, false).await?;
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
        super::settings::upsert(&mut tx, setting, value).await?;
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
        // Read-then-insert: under the repository's lock a concurrent creator waits, then
        // finds our key and returns it, as the contract asks.
        lock_repository(&mut tx, repository).await?;
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
        .await
        .map_err(conflict_on_unique(|| {
            format!("key {} exists in {repository}", candidate.key_id)
        }))?;
        // Only a key actually created is recorded; a pending key handed out again was
        // recorded when it was made.
        if let Some(a) = audit {
            insert_audit(&mut tx, a).await?;
        }
        tx.commit().await?;
        Ok(candidate.clone())
    }
}

/// Queue behind every other trust writer of `repository` (see the module comment).
pub(super) async fn lock_repository(
    tx: &mut Transaction<'static, Postgres>,
    repository: &str,
) -> StoreResult<()> {
    lock(tx, ALL_TRUST_LOCK, true).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(TRUST_REPOSITORY_LOCKS)
        .bind(repository)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Files and server keys of one repository (or of all); returns deleted file rows.
async fn delete_trust_of(
    tx: &mut Transaction<'static, Postgres>,
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

fn trust_file_row(r: &PgRow) -> StoreResult<TrustFile> {
    Ok(TrustFile {
        role: r.try_get("role")?,
        version: r.try_get("version")?,
        sha256: r.try_get("sha256")?,
        content: r.try_get("content")?,
        created_at: r.try_get("created_at")?,
    })
}

fn trust_key_row(r: &PgRow) -> StoreResult<TrustKeyRecord> {
    Ok(TrustKeyRecord {
        role: r.try_get("role")?,
        key_id: r.try_get("key_id")?,
        keytype: r.try_get("keytype")?,
        sealed_key: r.try_get("sealed_key")?,
        created_at: r.try_get("created_at")?,
    })
}
