//! PostgreSQL: locks on repositories and tags, and the checks registry writes make against
//! them and against the trust data inside their transactions.
//!
//! Every registry write of a repository holds its row `FOR KEY SHARE` (`ensure_repository`
//! for pushes, `repository_id` here for deletions) before it reads the locks, and a lock
//! change holds the row `FOR UPDATE`, which conflicts with that: a write that got the row
//! first commits before the change (it read the old locks and is ordered before it), and a
//! write that comes later waits for the change and then reads it — each statement reads
//! what committed before it began. A deletion re-checks the trust data under the
//! repository's trust lock (`lock_repository`), the one every trust writer queues on, so no
//! signature can commit between that check and the deletion. Lock order: repository row,
//! then trust locks; trust writers never take the row, so nothing waits in a circle.

use async_trait::async_trait;
use sqlx::{Postgres, Row, Transaction};

use super::trust::lock_repository;
use super::{PostgresMetadataStore, insert_audit};
use crate::StoreResult;
use crate::metadata::{
    AuditRecord, Lock, LockChange, LockChangeOutcome, LockScope, LockStore, TrustCheck, lock_from_row,
    next_lock, tag_key,
};

#[async_trait]
impl LockStore for PostgresMetadataStore {
    async fn locks(&self, repository: &str) -> StoreResult<Vec<Lock>> {
        let rows = sqlx::query(
            "SELECT l.tag, l.no_delete, l.no_write, l.updated_at FROM locks l
               JOIN repositories r ON r.id = l.repository_id
              WHERE r.name = $1 ORDER BY l.tag",
        )
        .bind(repository)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(lock_row).collect()
    }

    async fn change_lock(
        &self,
        repository: &str,
        change: &LockChange,
        audit: &AuditRecord,
    ) -> StoreResult<LockChangeOutcome> {
        let mut tx = self.write().await?;
        // FOR UPDATE: the registry writes of this repository wait (see the module comment).
        let repo: Option<i64> = sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1 FOR UPDATE")
            .bind(repository)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(repo) = repo else {
            return Ok(LockChangeOutcome::RepositoryUnknown);
        };
        let key = tag_key(change.tag.as_deref());
        let current = sqlx::query(
            "SELECT tag, no_delete, no_write, updated_at FROM locks WHERE repository_id = $1 AND tag = $2",
        )
        .bind(repo)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(lock_row)
        .transpose()?;
        if let (Some(tag), None) = (&change.tag, &current) {
            let held: Option<bool> =
                sqlx::query_scalar("SELECT TRUE FROM tags WHERE repository_id = $1 AND name = $2")
                    .bind(repo)
                    .bind(tag)
                    .fetch_optional(&mut *tx)
                    .await?;
            if held.is_none() {
                return Ok(LockChangeOutcome::TagUnknown);
            }
        }
        let next = next_lock(change, current.as_ref(), audit.at);
        match &next {
            Some(l) => {
                sqlx::query(
                    "INSERT INTO locks (repository_id, tag, no_delete, no_write, updated_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (repository_id, tag) DO UPDATE SET no_delete = excluded.no_delete,
                       no_write = excluded.no_write, updated_at = excluded.updated_at",
                )
                .bind(repo)
                .bind(key)
                .bind(i64::from(l.no_delete))
                .bind(i64::from(l.no_write))
                .bind(l.updated_at)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM locks WHERE repository_id = $1 AND tag = $2")
                    .bind(repo)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(LockChangeOutcome::Changed(next))
    }
}

fn lock_row(r: &sqlx::postgres::PgRow) -> StoreResult<Lock> {
    Ok(lock_from_row(
        r.try_get("tag")?,
        r.try_get("no_delete")?,
        r.try_get("no_write")?,
        r.try_get("updated_at")?,
    ))
}

pub(super) async fn repository_id(
    tx: &mut Transaction<'static, Postgres>,
    repository: &str,
) -> StoreResult<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1 FOR KEY SHARE")
            .bind(repository)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// The first lock in the way of a write of `scope` in repository `repo`.
pub(super) async fn lock_in_way(
    tx: &mut Transaction<'static, Postgres>,
    repo: i64,
    scope: LockScope<'_>,
) -> StoreResult<Option<Lock>> {
    let (sql, second) = scope.query();
    sqlx::query(sql)
        .bind(repo)
        .bind(second)
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(lock_row)
        .transpose()
}

/// Whether the repository's trust data is still what the caller checked.
pub(super) async fn trust_unchanged(
    tx: &mut Transaction<'static, Postgres>,
    repository: &str,
    check: TrustCheck<'_>,
) -> StoreResult<bool> {
    let TrustCheck::Unchanged(expected) = check else {
        return Ok(true);
    };
    lock_repository(tx, repository).await?;
    let newest: Option<String> = sqlx::query_scalar(
        "SELECT sha256 FROM trust_files WHERE repository = $1 AND role = 'timestamp'
          ORDER BY version DESC LIMIT 1",
    )
    .bind(repository)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(newest.as_deref() == expected)
}
