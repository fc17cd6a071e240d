//! PostgreSQL: small opaque values (server keys, policies) by key.

use async_trait::async_trait;
use sqlx::{Postgres, Transaction};

use super::{PostgresMetadataStore, insert_audit};
use crate::metadata::{AuditRecord, SettingsStore};
use crate::{StoreError, StoreResult};

#[async_trait]
impl SettingsStore for PostgresMetadataStore {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn init_setting(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        // A concurrent first insert of the key makes ours wait on the unique index, then
        // do nothing; the SELECT that follows (a new snapshot at READ COMMITTED) reads the
        // winner's value. A deletion between the two just means we try again.
        for _ in 0..8 {
            let ours: Option<Vec<u8>> = sqlx::query_scalar(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value",
            )
            .bind(key)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(v) = ours {
                return Ok(v);
            }
            if let Some(v) = self.get_setting(key).await? {
                return Ok(v);
            }
        }
        Err(StoreError::Conflict(format!(
            "setting {key} keeps being deleted while initialised"
        )))
    }

    async fn put_setting(&self, key: &str, value: &[u8], audit: Option<&AuditRecord>) -> StoreResult<()> {
        let mut tx = self.write().await?;
        upsert(&mut tx, key, value).await?;
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
        let mut tx = self.write().await?;
        // FOR UPDATE makes the read part of the swap: a second writer blocks here until the
        // first commits, then reads the row as committed (READ COMMITTED re-fetches locked
        // rows), sees the new value and gives up. A plain SELECT would let both read the
        // old value and both write.
        let stored: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1 FOR UPDATE")
                .bind(guard_key)
                .fetch_optional(&mut *tx)
                .await?;
        if stored.as_deref() != Some(guard_value) {
            return Ok(false);
        }
        for (key, value) in changes {
            match value {
                Some(v) => upsert(&mut tx, key, v).await?,
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
}

pub(super) async fn upsert(
    tx: &mut Transaction<'static, Postgres>,
    key: &str,
    value: &[u8],
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
