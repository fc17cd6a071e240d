//! PostgreSQL: portal sign-in sessions.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresMetadataStore;
use crate::StoreResult;
use crate::metadata::{PortalSessionRecord, PortalSessionStore, SessionLimits};

#[async_trait]
impl PortalSessionStore for PostgresMetadataStore {
    async fn create_portal_session(&self, s: &PortalSessionRecord, limits: SessionLimits) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM portal_sessions WHERE last_seen <= $1 OR created_at <= $2")
            .bind(s.created_at - limits.idle_seconds)
            .bind(s.created_at - limits.absolute_seconds)
            .execute(&mut *tx)
            .await?;
        // Keep room for this one: the principal's oldest sessions beyond the limit go.
        sqlx::query(
            "DELETE FROM portal_sessions WHERE key_hash IN (
                 SELECT key_hash FROM portal_sessions WHERE principal_id = $1
                 ORDER BY created_at DESC, key_hash OFFSET $2)",
        )
        .bind(s.principal_id)
        .bind(i64::from(limits.per_principal.saturating_sub(1)))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO portal_sessions
                 (key_hash, principal_id, principal_name, principal_created_at, csrf, created_at, last_seen)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&s.key_hash)
        .bind(s.principal_id)
        .bind(&s.principal_name)
        .bind(s.principal_created_at)
        .bind(&s.csrf)
        .bind(s.created_at)
        .bind(s.last_seen)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn resume_portal_session(
        &self,
        key_hash: &[u8],
        now: i64,
        limits: SessionLimits,
    ) -> StoreResult<Option<PortalSessionRecord>> {
        let Some(row) = sqlx::query("SELECT * FROM portal_sessions WHERE key_hash = $1")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let mut session = session_row(&row)?;
        if now - session.last_seen >= limits.idle_seconds
            || now - session.created_at >= limits.absolute_seconds
        {
            self.end_portal_session(key_hash).await?;
            return Ok(None);
        }
        if now - session.last_seen >= limits.touch_seconds {
            sqlx::query("UPDATE portal_sessions SET last_seen = $2 WHERE key_hash = $1 AND last_seen < $2")
                .bind(key_hash)
                .bind(now)
                .execute(&self.pool)
                .await?;
            session.last_seen = now;
        }
        Ok(Some(session))
    }

    async fn end_portal_session(&self, key_hash: &[u8]) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM portal_sessions WHERE key_hash = $1")
            .bind(key_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn session_row(r: &PgRow) -> StoreResult<PortalSessionRecord> {
    Ok(PortalSessionRecord {
        key_hash: r.try_get("key_hash")?,
        principal_id: r.try_get("principal_id")?,
        principal_name: r.try_get("principal_name")?,
        principal_created_at: r.try_get("principal_created_at")?,
        csrf: r.try_get("csrf")?,
        created_at: r.try_get("created_at")?,
        last_seen: r.try_get("last_seen")?,
    })
}
