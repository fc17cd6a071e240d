//! Principals, their secrets, role assignments, repository tokens and refresh tokens.

use async_trait::async_trait;

use crate::StoreResult;
use crate::metadata::AuditRecord;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub password_hash: Option<String>,
    /// Service principals' generated login id; `None` for other kinds.
    pub client_id: Option<String>,
    pub created_at: i64,
}

/// A built-in role granted to a principal on a scope (`registry`, `repository:<name>`,
/// `repository:<prefix>/*`). Role and scope are validated by the service, not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    pub principal: String,
    pub principal_kind: String,
    pub role: String,
    pub scope: String,
    pub created_at: i64,
}

/// A role on a scope that must stay assigned to someone (the registry's Owner): the
/// check and the deletion are one transaction, serialised against every other guarded
/// deletion, so two owners removing each other at once on two replicas cannot both win.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptAssignment<'a> {
    pub role: &'a str,
    pub scope: &'a str,
}

/// One entry of a repository token's scope map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenScope {
    /// A repository name, or `<prefix>/*`.
    pub repository: String,
    /// An ACR scope-map action such as `content/read`.
    pub action: String,
}

/// Principals, their secrets, role assignments, repository tokens and refresh tokens.
/// Every change is written together with its audit record in one transaction: no change
/// without its record, no record of a change that did not happen.
#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    async fn count_principals(&self) -> StoreResult<u64>;
    // Every change to principals, secrets, assignments and tokens is written together with
    // its audit record in one transaction: no change without its record, no record of a
    /// `Conflict` when the name (or client id) is taken: names are one namespace across kinds.
    async fn create_principal(
        &self,
        name: &str,
        kind: &str,
        password_hash: Option<&str>,
        client_id: Option<&str>,
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<Principal>;
    /// The first user and its registry-wide role, in one transaction, so a crash cannot
    /// leave a registry whose only principal holds no role. `Conflict` if the name is taken.
    async fn create_bootstrap_owner(
        &self,
        name: &str,
        password_hash: &str,
        role: &str,
        scope: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<Principal>;
    /// By name, or by a service principal's client id.
    async fn find_principal(&self, name: &str) -> StoreResult<Option<Principal>>;
    /// Every principal of `kind` (all when `None`), by name.
    async fn list_principals(&self, kind: Option<&str>) -> StoreResult<Vec<Principal>>;
    /// Delete a principal with its refresh tokens, assignments and scope map (cascade);
    /// false (and no audit record) if there was none of that kind. With `keep`, refused
    /// (`Conflict`, nothing changed) when afterwards nobody would hold that assignment.
    async fn delete_principal(
        &self,
        name: &str,
        kind: &str,
        keep: Option<KeptAssignment<'_>>,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
    /// Replace (or clear, disabling logins) a principal's secret and revoke every refresh
    /// token issued under the old one, atomically.
    async fn set_principal_secret(
        &self,
        principal_id: i64,
        password_hash: Option<&str>,
        audit: &AuditRecord,
    ) -> StoreResult<()>;
    /// `Conflict` on an identical existing assignment.
    async fn create_assignment(
        &self,
        principal_id: i64,
        role: &str,
        scope: &str,
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<()>;
    /// False (and no audit record) when there was no such assignment. With `keep`, refused
    /// (`Conflict`, nothing changed) when afterwards nobody would hold that assignment.
    async fn delete_assignment(
        &self,
        principal_id: i64,
        role: &str,
        scope: &str,
        keep: Option<KeptAssignment<'_>>,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
    /// Assignments of one principal, or of all, ordered by principal, role, scope.
    async fn list_assignments(&self, principal_id: Option<i64>) -> StoreResult<Vec<RoleAssignment>>;
    /// A repository token: a principal of kind `token` and its scope map, in one transaction.
    async fn create_token(
        &self,
        name: &str,
        password_hash: &str,
        scopes: &[TokenScope],
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<Principal>;
    async fn token_scopes(&self, principal_id: i64) -> StoreResult<Vec<TokenScope>>;
    async fn principal_by_id(&self, id: i64) -> StoreResult<Option<Principal>>;
    async fn store_refresh_token(&self, token_hash: &[u8], principal_id: i64, now: i64) -> StoreResult<()>;
    /// The principal a refresh token belongs to, marking it used.
    async fn use_refresh_token(&self, token_hash: &[u8], now: i64) -> StoreResult<Option<i64>>;
}
