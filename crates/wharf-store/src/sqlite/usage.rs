//! Sqlite: storage usage per repository and for the registry (the SQL is shared:
//! `metadata::usage`).

use async_trait::async_trait;

use super::SqliteMetadataStore;
use crate::metadata::{
    RegistryUsage, RepositoryUsage, ScopeUsage, UsageScope, UsageSelection, UsageStore,
    registry_usage_from_row, registry_usage_sql, repository_usage_from_row, repository_usage_sql,
    scope_usage_from_row, scope_usage_query,
};
use crate::{Digest, StoreResult};

const LENGTH: &str = "length";

#[async_trait]
impl UsageStore for SqliteMetadataStore {
    async fn repository_usage(&self, repository: &str) -> StoreResult<Option<RepositoryUsage>> {
        let sql = repository_usage_sql(UsageSelection::One, LENGTH);
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(repository)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(repository_usage_from_row).transpose()
    }

    async fn repository_usage_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<RepositoryUsage>> {
        let sql = repository_usage_sql(UsageSelection::PageAfter, LENGTH);
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(repository_usage_from_row).collect()
    }

    async fn registry_usage(&self) -> StoreResult<RegistryUsage> {
        let row = sqlx::query(sqlx::AssertSqlSafe(registry_usage_sql(LENGTH)))
            .fetch_one(&self.pool)
            .await?;
        registry_usage_from_row(&row)
    }

    async fn scope_usage(&self, scope: UsageScope<'_>, blob: Option<&Digest>) -> StoreResult<ScopeUsage> {
        let (sql, params) = scope_usage_query(scope, blob, LENGTH);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for p in params {
            query = query.bind(p);
        }
        let row = query.fetch_one(&self.pool).await?;
        scope_usage_from_row(&row)
    }
}
