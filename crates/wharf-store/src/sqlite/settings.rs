//! SQLite: small opaque values (server keys, policies) by key.

use async_trait::async_trait;

use super::{SqliteMetadataStore, insert_audit};
use crate::StoreResult;
use crate::metadata::{AuditRecord, SettingsStore};

#[async_trait]
impl SettingsStore for SqliteMetadataStore {
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
}
