//! PostgreSQL: failed-login counters and lockouts.

use async_trait::async_trait;
use sqlx::Row;

use super::PostgresMetadataStore;
use crate::StoreResult;
use crate::metadata::{LoginFailureStore, LoginFailures};

#[async_trait]
impl LoginFailureStore for PostgresMetadataStore {
    async fn login_failures(&self, keys: &[String]) -> StoreResult<Vec<LoginFailures>> {
        let mut found = Vec::new();
        // A login names one or two keys: a query each is simpler than building an IN list.
        for key in keys {
            let row = sqlx::query("SELECT failures, locked_until FROM login_failures WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(r) = row {
                found.push(LoginFailures {
                    key: key.clone(),
                    failures: u32::try_from(r.try_get::<i64, _>("failures")?).unwrap_or(u32::MAX),
                    locked_until: r.try_get("locked_until")?,
                });
            }
        }
        Ok(found)
    }

    async fn add_login_failure(&self, key: &str, now: i64) -> StoreResult<u32> {
        let failures: i64 = sqlx::query_scalar(
            "INSERT INTO login_failures (key, failures, locked_until, updated_at) VALUES ($1, 1, 0, $2)
             ON CONFLICT (key) DO UPDATE SET failures = login_failures.failures + 1, updated_at = excluded.updated_at
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(u32::try_from(failures).unwrap_or(u32::MAX))
    }

    async fn lock_login(&self, key: &str, until: i64) -> StoreResult<()> {
        sqlx::query("UPDATE login_failures SET locked_until = GREATEST(locked_until, $2) WHERE key = $1")
            .bind(key)
            .bind(until)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn prune_login_failures(&self, before: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM login_failures WHERE updated_at < $1 AND locked_until < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
