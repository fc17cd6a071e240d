//! PostgreSQL: the audit trail. Most records are written by the other stores, in the
//! transaction of the change they describe.

use async_trait::async_trait;
use sqlx::Row;

use super::{PostgresMetadataStore, insert_audit};
use crate::StoreResult;
use crate::metadata::{AuditRecord, AuditStore};

#[async_trait]
impl AuditStore for PostgresMetadataStore {
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
