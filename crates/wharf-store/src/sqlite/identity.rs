//! SQLite: principals, their secrets, role assignments, repository tokens and refresh tokens.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{SqliteMetadataStore, WriteTx, insert_audit};
use crate::metadata::{AuditRecord, IdentityStore, KeptAssignment, Principal, RoleAssignment, TokenScope};
use crate::{StoreError, StoreResult};

#[async_trait]
impl IdentityStore for SqliteMetadataStore {
    async fn count_principals(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM principals")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn create_principal(
        &self,
        name: &str,
        kind: &str,
        password_hash: Option<&str>,
        client_id: Option<&str>,
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<Principal> {
        let mut tx = self.write().await?;
        let p = insert_principal(&mut tx, name, kind, password_hash, client_id, now).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(p)
    }

    async fn create_bootstrap_owner(
        &self,
        name: &str,
        password_hash: &str,
        role: &str,
        scope: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<Principal> {
        let mut tx = self.write().await?;
        let p = insert_principal(&mut tx, name, "user", Some(password_hash), None, now).await?;
        insert_assignment(&mut tx, p.id, role, scope, now).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(p)
    }

    async fn find_principal(&self, name: &str) -> StoreResult<Option<Principal>> {
        let row = sqlx::query(
            "SELECT * FROM principals WHERE name = $1 OR client_id = $1 ORDER BY name = $1 DESC LIMIT 1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| principal_row(&r)).transpose()
    }

    async fn list_principals(&self, kind: Option<&str>) -> StoreResult<Vec<Principal>> {
        let rows = sqlx::query("SELECT * FROM principals WHERE $1 IS NULL OR kind = $1 ORDER BY name")
            .bind(kind)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(principal_row).collect()
    }

    async fn delete_principal(
        &self,
        name: &str,
        kind: &str,
        keep: Option<KeptAssignment<'_>>,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let done = sqlx::query("DELETE FROM principals WHERE name = $1 AND kind = $2")
            .bind(name)
            .bind(kind)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        still_held(&mut tx, keep).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn set_principal_secret(
        &self,
        principal_id: i64,
        password_hash: Option<&str>,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE principals SET password_hash = $2 WHERE id = $1")
            .bind(principal_id)
            .bind(password_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE principal_id = $1")
            .bind(principal_id)
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_assignment(
        &self,
        principal_id: i64,
        role: &str,
        scope: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        insert_assignment(&mut tx, principal_id, role, scope, now).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_assignment(
        &self,
        principal_id: i64,
        role: &str,
        scope: &str,
        keep: Option<KeptAssignment<'_>>,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let done =
            sqlx::query("DELETE FROM role_assignments WHERE principal_id = $1 AND role = $2 AND scope = $3")
                .bind(principal_id)
                .bind(role)
                .bind(scope)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        still_held(&mut tx, keep).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn list_assignments(&self, principal_id: Option<i64>) -> StoreResult<Vec<RoleAssignment>> {
        let rows = sqlx::query(
            "SELECT p.name, p.kind, a.role, a.scope, a.created_at FROM role_assignments a
             JOIN principals p ON p.id = a.principal_id
             WHERE $1 IS NULL OR a.principal_id = $1 ORDER BY p.name, a.role, a.scope",
        )
        .bind(principal_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RoleAssignment {
                    principal: r.try_get("name")?,
                    principal_kind: r.try_get("kind")?,
                    role: r.try_get("role")?,
                    scope: r.try_get("scope")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn create_token(
        &self,
        name: &str,
        password_hash: &str,
        scopes: &[TokenScope],
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<Principal> {
        let mut tx = self.write().await?;
        let p = insert_principal(&mut tx, name, "token", Some(password_hash), None, now).await?;
        for s in scopes {
            sqlx::query(
                "INSERT INTO token_scopes (principal_id, repository, action) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(p.id)
            .bind(&s.repository)
            .bind(&s.action)
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(p)
    }

    async fn token_scopes(&self, principal_id: i64) -> StoreResult<Vec<TokenScope>> {
        let rows = sqlx::query(
            "SELECT repository, action FROM token_scopes WHERE principal_id = $1 ORDER BY repository, action",
        )
        .bind(principal_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenScope {
                    repository: r.try_get("repository")?,
                    action: r.try_get("action")?,
                })
            })
            .collect()
    }

    async fn principal_by_id(&self, id: i64) -> StoreResult<Option<Principal>> {
        let row = sqlx::query("SELECT * FROM principals WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| principal_row(&r)).transpose()
    }

    async fn store_refresh_token(&self, token_hash: &[u8], principal_id: i64, now: i64) -> StoreResult<()> {
        sqlx::query("INSERT INTO refresh_tokens (token_hash, principal_id, created_at) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(principal_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn use_refresh_token(&self, token_hash: &[u8], now: i64) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "UPDATE refresh_tokens SET last_used_at = $2 WHERE token_hash = $1 RETURNING principal_id",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }
}

async fn insert_principal(
    tx: &mut WriteTx,
    name: &str,
    kind: &str,
    password_hash: Option<&str>,
    client_id: Option<&str>,
    now: i64,
) -> StoreResult<Principal> {
    // Names and client ids share one namespace: a login string must name one principal.
    let clash: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM principals WHERE name = $1 OR client_id = $1 OR ($2 IS NOT NULL AND (name = $2 OR client_id = $2))",
    )
    .bind(name)
    .bind(client_id)
    .fetch_optional(&mut **tx)
    .await?;
    if clash.is_some() {
        return Err(StoreError::Conflict(format!("{name} exists")));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO principals (name, kind, password_hash, client_id, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(name)
    .bind(kind)
    .bind(password_hash)
    .bind(client_id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(format!("{name} exists")),
        e => e.into(),
    })?;
    Ok(Principal {
        id,
        name: name.to_owned(),
        kind: kind.to_owned(),
        password_hash: password_hash.map(str::to_owned),
        client_id: client_id.map(str::to_owned),
        created_at: now,
    })
}

async fn insert_assignment(
    tx: &mut WriteTx,
    principal_id: i64,
    role: &str,
    scope: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO role_assignments (principal_id, role, scope, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(principal_id)
    .bind(role)
    .bind(scope)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict(format!("{role} on {scope} is already assigned"))
        }
        e => e.into(),
    })?;
    Ok(())
}

fn principal_row(r: &SqliteRow) -> StoreResult<Principal> {
    Ok(Principal {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        password_hash: r.try_get("password_hash")?,
        client_id: r.try_get("client_id")?,
        created_at: r.try_get("created_at")?,
    })
}

/// After a guarded deletion, inside its transaction: someone must still hold `keep`.
/// (SQLite's writers queue on `BEGIN IMMEDIATE`, so no other deletion runs meanwhile.)
async fn still_held(tx: &mut WriteTx, keep: Option<KeptAssignment<'_>>) -> StoreResult<()> {
    let Some(keep) = keep else { return Ok(()) };
    let holders: i64 =
        sqlx::query_scalar("SELECT count(*) FROM role_assignments WHERE role = $1 AND scope = $2")
            .bind(keep.role)
            .bind(keep.scope)
            .fetch_one(&mut **tx)
            .await?;
    if holders == 0 {
        return Err(StoreError::Conflict(format!(
            "nobody would hold {} on {} any more",
            keep.role, keep.scope
        )));
    }
    Ok(())
}
