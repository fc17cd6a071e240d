//! PostgreSQL: upload sessions: where a chunked upload stands, so any replica can continue it.

use async_trait::async_trait;
use sqlx::Row;

use super::{PostgresMetadataStore, conflict_on_unique, to_i64};
use crate::StoreResult;
use crate::metadata::{UploadSession, UploadStore};

#[async_trait]
impl UploadStore for PostgresMetadataStore {
    async fn create_upload(&self, s: &UploadSession) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO uploads (id, repository, upload_offset, hash_state, started_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.id)
        .bind(&s.repository)
        .bind(to_i64(s.offset))
        .bind(&s.hash_state)
        .bind(s.started_at)
        .bind(s.updated_at)
        .execute(&self.pool)
        .await
        .map_err(conflict_on_unique(|| format!("upload {} exists", s.id)))?;
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
                offset: r.try_get::<i64, _>("upload_offset")? as u64,
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
        // One conditional UPDATE is the compare-and-swap: a second writer from the same
        // offset waits on the row lock, then re-checks its WHERE against the new row
        // (READ COMMITTED re-evaluation) and matches nothing.
        let done = sqlx::query(
            "UPDATE uploads SET upload_offset = $3, hash_state = $4, updated_at = $5
             WHERE id = $1 AND upload_offset = $2",
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

    async fn claim_upload(&self, id: &str, writer: &str, until: i64, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE uploads SET writer = $2, writer_until = $3
             WHERE id = $1 AND (writer = $2 OR writer IS NULL OR writer_until <= $4)",
        )
        .bind(id)
        .bind(writer)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_upload(&self, id: &str, writer: &str) -> StoreResult<()> {
        sqlx::query("UPDATE uploads SET writer = NULL, writer_until = 0 WHERE id = $1 AND writer = $2")
            .bind(id)
            .bind(writer)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn release_uploads_of(&self, writer_prefix: &str) -> StoreResult<u64> {
        // starts_with rather than LIKE: the prefix is data, and LIKE would read `%` and `_` in it.
        let done = sqlx::query(
            "UPDATE uploads SET writer = NULL, writer_until = 0
             WHERE writer IS NOT NULL AND starts_with(writer, $1)",
        )
        .bind(writer_prefix)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
