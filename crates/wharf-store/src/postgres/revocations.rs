//! PostgreSQL: token revocations.

use async_trait::async_trait;
use sqlx::Row;

use super::PostgresMetadataStore;
use crate::StoreResult;
use crate::metadata::{RevocationStore, TokenRevocation};

#[async_trait]
impl RevocationStore for PostgresMetadataStore {
    async fn add_revocation(&self, principal: &str, revoked_at_ms: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO token_revocations (principal, revoked_at_ms) VALUES ($1, $2)")
            .bind(principal)
            .bind(revoked_at_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn revocations_after(&self, after_id: i64, limit: u32) -> StoreResult<Vec<TokenRevocation>> {
        let rows = sqlx::query(
            "SELECT id, principal, revoked_at_ms FROM token_revocations WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenRevocation {
                    id: r.try_get("id")?,
                    principal: r.try_get("principal")?,
                    revoked_at_ms: r.try_get("revoked_at_ms")?,
                })
            })
            .collect()
    }

    async fn prune_revocations(&self, before_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM token_revocations WHERE revoked_at_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
