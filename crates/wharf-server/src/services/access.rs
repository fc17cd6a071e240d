//! Identity and access administration: users, service principals, the admin account,
//! role assignments, repository tokens and the audit trail of every change.
//! Decisions about requests are not made here but in `auth::AccessPolicy`.

use std::net::IpAddr;
use std::sync::Arc;

use wharf_store::{
    AuditRecord, KeptAssignment, MetadataStore, Principal, RoleAssignment, StoreError, TokenScope,
};

use crate::auth::access::{TOKEN_ACTIONS, token_action_perms};
use crate::auth::password::hash_password;
use crate::auth::revocations::Revocations;
use crate::auth::secrets::{SecretError, random_bytes, random_token};
use crate::auth::{Role, Scope};
use crate::clock::now;

pub const KIND_USER: &str = "user";
pub const KIND_SP: &str = "sp";
pub const KIND_ADMIN_ACCOUNT: &str = "admin_account";
pub const KIND_TOKEN: &str = "token";

pub const MIN_PASSWORD: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "invalid name {0:?}: use 1-64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit"
    )]
    InvalidName(String),
    #[error(
        "a principal or token named {0:?} already exists (users, service principals and tokens share one namespace)"
    )]
    Duplicate(String),
    #[error(
        "unknown role {0:?}; built-in roles are Owner, Contributor, Reader, AcrPull, AcrPush, AcrDelete, AcrImageSigner"
    )]
    UnknownRole(String),
    #[error("unknown assignee {0:?}: no user or service principal has that name")]
    UnknownAssignee(String),
    #[error("malformed scope {0:?}: use registry, repository:<name> or repository:<prefix>/*")]
    MalformedScope(String),
    #[error(
        "the admin account can never be granted AcrImageSigner; create a user or service principal to sign"
    )]
    AdminAccountSigner,
    #[error(
        "the admin account has fixed rights (pull, push, delete everywhere); roles cannot be assigned to it"
    )]
    AdminAccountRoles,
    #[error("{assignee} already has {role} on {scope}")]
    DuplicateAssignment {
        assignee: String,
        role: String,
        scope: String,
    },
    #[error("{assignee} has no {role} assignment on {scope}")]
    AssignmentNotFound {
        assignee: String,
        role: String,
        scope: String,
    },
    #[error("no {kind} named {name:?}")]
    NotFound { kind: &'static str, name: String },
    #[error(
        "malformed repository permission {0:?}: use REPO:ACTIONS, e.g. team/app:content/read,content/write; actions are content/read, content/write, content/delete, metadata/read, metadata/write, trust/write"
    )]
    MalformedTokenScope(String),
    #[error("a token needs at least one --repository REPO:ACTIONS")]
    EmptyTokenScope,
    #[error("password must be at least {MIN_PASSWORD} characters")]
    WeakPassword,
    #[error("you cannot delete the principal you are logged in as")]
    DeleteSelf,
    #[error(
        "{0} holds the only registry-wide Owner assignment; assign Owner on registry to someone else first, or nobody could manage this registry"
    )]
    LastOwner(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Store(StoreError),
}

pub type AccessResult<T> = Result<T, AccessError>;

/// Who asks for a change, and from where: what each audit record names.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub from: Option<IpAddr>,
}

/// The audit record of an admin change: `detail` starts with the source address, so every
/// record says where a change came from in the same words.
pub fn audit_record(actor: &Actor, action: &str, target: &str, detail: &str, at: i64) -> AuditRecord {
    let from = actor
        .from
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let detail = if detail.is_empty() {
        format!("from {from}")
    } else {
        format!("from {from}; {detail}")
    };
    AuditRecord {
        at,
        actor: actor.name.clone(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
    }
}

/// A principal as listed (never its secret).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PrincipalView {
    pub name: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(serialize_with = "crate::clock::as_rfc3339::time")]
    pub created_at: i64,
}

impl From<&Principal> for PrincipalView {
    fn from(p: &Principal) -> Self {
        Self {
            name: p.name.clone(),
            kind: p.kind.clone(),
            client_id: p.client_id.clone(),
            created_at: p.created_at,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenView {
    pub name: String,
    #[serde(serialize_with = "crate::clock::as_rfc3339::time")]
    pub created_at: i64,
    /// `repository` → actions.
    pub repositories: Vec<TokenRepository>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenRepository {
    pub repository: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AdminAccountView {
    pub username: String,
    pub enabled: bool,
}

pub struct AccessService {
    meta: Arc<dyn MetadataStore>,
    /// The admin account's user name (ACR uses the registry's name; here the service name).
    admin_account: String,
    /// Deleting a principal or changing its secret revokes its access tokens at once.
    revocations: Arc<Revocations>,
}

fn secret() -> AccessResult<String> {
    Ok(random_token()?)
}

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || b"._-@".contains(c))
}

fn check_name(name: &str) -> AccessResult<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(AccessError::InvalidName(name.to_owned()))
    }
}

fn store_err(name: &str) -> impl FnOnce(StoreError) -> AccessError + '_ {
    move |e| match e {
        StoreError::Conflict(_) => AccessError::Duplicate(name.to_owned()),
        e => AccessError::Store(e),
    }
}

/// The registry-wide scope as assignments store it.
fn owner_scope() -> String {
    Scope::Registry.to_string()
}

/// What must stay assigned to someone: Owner on the registry.
fn registry_owner(registry: &str) -> KeptAssignment<'_> {
    KeptAssignment {
        role: Role::Owner.name(),
        scope: registry,
    }
}

/// A guarded deletion the store refused: it would have removed the last owner.
fn last_owner(name: &str) -> impl FnOnce(StoreError) -> AccessError + '_ {
    move |e| match e {
        StoreError::Conflict(_) => AccessError::LastOwner(name.to_owned()),
        e => AccessError::Store(e),
    }
}

impl From<StoreError> for AccessError {
    fn from(e: StoreError) -> Self {
        AccessError::Store(e)
    }
}

/// Parse `REPO:ACTIONS` (actions comma-separated) into scope-map rows.
pub fn parse_token_scope(spec: &str) -> AccessResult<Vec<TokenScope>> {
    let bad = || AccessError::MalformedTokenScope(spec.to_owned());
    // Actions contain no ':', repository names neither: split at the first colon.
    let (repo, actions) = spec.split_once(':').ok_or_else(bad)?;
    let scope = Scope::parse_repository(repo).ok_or_else(bad)?;
    let mut out = Vec::new();
    for a in actions.split(',') {
        if token_action_perms(a).is_none() {
            return Err(bad());
        }
        out.push(TokenScope {
            repository: scope.repository_text(),
            action: a.to_owned(),
        });
    }
    Ok(out)
}

impl AccessService {
    pub fn new(meta: Arc<dyn MetadataStore>, admin_account: &str, revocations: Arc<Revocations>) -> Self {
        Self {
            meta,
            revocations,
            admin_account: admin_account.to_owned(),
        }
    }

    async fn principal(&self, kind: &'static str, name: &str) -> AccessResult<Principal> {
        match self.meta.find_principal(name).await? {
            Some(p) if p.kind == kind && p.name == name => Ok(p),
            _ => Err(AccessError::NotFound {
                kind: kind_label(kind),
                name: name.to_owned(),
            }),
        }
    }

    pub async fn list(&self, kind: &str) -> AccessResult<Vec<PrincipalView>> {
        Ok(self
            .meta
            .list_principals(Some(kind))
            .await?
            .iter()
            .map(PrincipalView::from)
            .collect())
    }

    /// A user with the given password, or a generated one (returned, shown once).
    pub async fn create_user(
        &self,
        actor: &Actor,
        name: &str,
        password: Option<String>,
    ) -> AccessResult<(PrincipalView, Option<String>)> {
        check_name(name)?;
        let (password, generated) = match password {
            Some(p) if p.chars().count() < MIN_PASSWORD => return Err(AccessError::WeakPassword),
            Some(p) => (p, false),
            None => (secret()?, true),
        };
        let hash = hash_password(password.clone()).await?;
        let t = now();
        let p = self
            .meta
            .create_principal(
                name,
                KIND_USER,
                Some(&hash),
                None,
                t,
                &audit_record(actor, "user.create", name, "", t),
            )
            .await
            .map_err(store_err(name))?;
        Ok((PrincipalView::from(&p), generated.then_some(password)))
    }

    /// Delete a principal of `kind`; its refresh tokens, assignments and scope map go
    /// with it (cascade), so nothing it was issued works at the next token request.
    pub async fn delete(&self, actor: &Actor, kind: &'static str, name: &str) -> AccessResult<()> {
        if name == actor.name {
            return Err(AccessError::DeleteSelf);
        }
        let t = now();
        let record = audit_record(actor, &format!("{}.delete", audit_kind(kind)), name, "", t);
        let deleted = self
            .meta
            .delete_principal(name, kind, Some(registry_owner(&owner_scope())), &record)
            .await
            .map_err(last_owner(name))?;
        if !deleted {
            return Err(AccessError::NotFound {
                kind: kind_label(kind),
                name: name.to_owned(),
            });
        }
        self.revocations.revoke(name, crate::clock::now_ms()).await?;
        Ok(())
    }

    /// An owner sets (or has generated, returned once) a user's password: the old one,
    /// the user's refresh tokens and access tokens stop working.
    pub async fn reset_password(
        &self,
        actor: &Actor,
        name: &str,
        password: Option<String>,
    ) -> AccessResult<(PrincipalView, Option<String>)> {
        let p = self.principal(KIND_USER, name).await?;
        let (password, generated) = match password {
            Some(pw) if pw.chars().count() < MIN_PASSWORD => return Err(AccessError::WeakPassword),
            Some(pw) => (pw, false),
            None => (secret()?, true),
        };
        let hash = hash_password(password.clone()).await?;
        let t = now();
        let record = audit_record(actor, "user.reset-password", name, "", t);
        self.meta.set_principal_secret(p.id, Some(&hash), &record).await?;
        self.revocations.revoke(name, crate::clock::now_ms()).await?;
        Ok((PrincipalView::from(&p), generated.then_some(password)))
    }

    /// A service principal: a generated client id and secret (returned once).
    pub async fn create_sp(&self, actor: &Actor, name: &str) -> AccessResult<(PrincipalView, String)> {
        check_name(name)?;
        let client_id = format!("sp-{}", hex_id()?);
        let secret = secret()?;
        let hash = hash_password(secret.clone()).await?;
        let t = now();
        let record = audit_record(actor, "sp.create", name, &format!("client id {client_id}"), t);
        let p = self
            .meta
            .create_principal(name, KIND_SP, Some(&hash), Some(&client_id), t, &record)
            .await
            .map_err(store_err(name))?;
        Ok((PrincipalView::from(&p), secret))
    }

    /// New secret; the old one and every refresh token issued under it stop working.
    pub async fn reset_sp_secret(&self, actor: &Actor, name: &str) -> AccessResult<(PrincipalView, String)> {
        let p = self.principal(KIND_SP, name).await?;
        let secret = secret()?;
        let hash = hash_password(secret.clone()).await?;
        let t = now();
        let record = audit_record(actor, "sp.reset-secret", name, "", t);
        self.meta.set_principal_secret(p.id, Some(&hash), &record).await?;
        self.revocations.revoke(name, crate::clock::now_ms()).await?;
        Ok((PrincipalView::from(&p), secret))
    }

    pub async fn admin_account(&self) -> AccessResult<AdminAccountView> {
        let enabled = match self.meta.find_principal(&self.admin_account).await? {
            Some(p) if p.kind == KIND_ADMIN_ACCOUNT => p.password_hash.is_some(),
            _ => false,
        };
        Ok(AdminAccountView {
            username: self.admin_account.clone(),
            enabled,
        })
    }

    /// Enable with a freshly generated password (returned once); enabling again rotates it.
    pub async fn enable_admin_account(&self, actor: &Actor) -> AccessResult<(AdminAccountView, String)> {
        let password = secret()?;
        let hash = hash_password(password.clone()).await?;
        let name = self.admin_account.clone();
        let t = now();
        let record = audit_record(actor, "admin-account.enable", &name, "", t);
        match self.meta.find_principal(&name).await? {
            Some(p) if p.kind == KIND_ADMIN_ACCOUNT => {
                self.meta.set_principal_secret(p.id, Some(&hash), &record).await?;
            }
            Some(_) => return Err(AccessError::Duplicate(name)),
            None => {
                self.meta
                    .create_principal(&name, KIND_ADMIN_ACCOUNT, Some(&hash), None, t, &record)
                    .await
                    .map_err(store_err(&name))?;
            }
        }
        Ok((
            AdminAccountView {
                username: name,
                enabled: true,
            },
            password,
        ))
    }

    /// Disable: the password and every refresh token stop working.
    pub async fn disable_admin_account(&self, actor: &Actor) -> AccessResult<AdminAccountView> {
        let name = self.admin_account.clone();
        let t = now();
        let record = audit_record(actor, "admin-account.disable", &name, "", t);
        match self.meta.find_principal(&name).await? {
            Some(p) if p.kind == KIND_ADMIN_ACCOUNT => {
                self.meta.set_principal_secret(p.id, None, &record).await?;
                self.revocations.revoke(&name, crate::clock::now_ms()).await?;
            }
            // Nothing to disable; the request is still recorded.
            _ => self.meta.add_audit(&record).await?,
        }
        Ok(AdminAccountView {
            username: name,
            enabled: false,
        })
    }

    /// Validate role, assignee and scope (in that order, so errors name the first problem).
    async fn assignment_target(
        &self,
        role: &str,
        assignee: &str,
        scope: Option<&str>,
    ) -> AccessResult<(Role, Principal, Scope)> {
        let role_v = Role::parse(role).ok_or_else(|| AccessError::UnknownRole(role.to_owned()))?;
        let scope_text = scope.unwrap_or("registry");
        let scope_v =
            Scope::parse(scope_text).ok_or_else(|| AccessError::MalformedScope(scope_text.to_owned()))?;
        let p = match self.meta.find_principal(assignee).await? {
            Some(p) if p.name == assignee => p,
            _ => return Err(AccessError::UnknownAssignee(assignee.to_owned())),
        };
        match p.kind.as_str() {
            KIND_ADMIN_ACCOUNT if role_v == Role::AcrImageSigner => {
                return Err(AccessError::AdminAccountSigner);
            }
            KIND_ADMIN_ACCOUNT => return Err(AccessError::AdminAccountRoles),
            KIND_USER | KIND_SP => {}
            _ => return Err(AccessError::UnknownAssignee(assignee.to_owned())),
        }
        Ok((role_v, p, scope_v))
    }

    pub async fn assign(
        &self,
        actor: &Actor,
        role: &str,
        assignee: &str,
        scope: Option<&str>,
    ) -> AccessResult<RoleAssignment> {
        let (role, p, scope) = self.assignment_target(role, assignee, scope).await?;
        let scope_s = scope.to_string();
        let t = now();
        let record = audit_record(
            actor,
            "role-assignment.create",
            &p.name,
            &format!("{} on {scope_s}", role.name()),
            t,
        );
        self.meta
            .create_assignment(p.id, role.name(), &scope_s, t, &record)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => AccessError::DuplicateAssignment {
                    assignee: p.name.clone(),
                    role: role.name().to_owned(),
                    scope: scope_s.clone(),
                },
                e => AccessError::Store(e),
            })?;
        Ok(RoleAssignment {
            principal: p.name,
            principal_kind: p.kind,
            role: role.name().to_owned(),
            scope: scope_s,
            created_at: t,
        })
    }

    pub async fn unassign(
        &self,
        actor: &Actor,
        role: &str,
        assignee: &str,
        scope: Option<&str>,
    ) -> AccessResult<()> {
        let (role, p, scope) = self.assignment_target(role, assignee, scope).await?;
        let scope_s = scope.to_string();
        let record = audit_record(
            actor,
            "role-assignment.delete",
            &p.name,
            &format!("{} on {scope_s}", role.name()),
            now(),
        );
        // The registry must keep an owner: the store checks it inside the deletion's
        // transaction, so two owners removing each other on two replicas cannot both win.
        let registry = owner_scope();
        let deleted = self
            .meta
            .delete_assignment(
                p.id,
                role.name(),
                &scope_s,
                Some(registry_owner(&registry)),
                &record,
            )
            .await
            .map_err(last_owner(&p.name))?;
        if !deleted {
            return Err(AccessError::AssignmentNotFound {
                assignee: p.name,
                role: role.name().to_owned(),
                scope: scope_s,
            });
        }
        Ok(())
    }

    pub async fn assignments(&self, assignee: Option<&str>) -> AccessResult<Vec<RoleAssignment>> {
        let id = match assignee {
            None => None,
            Some(name) => match self.meta.find_principal(name).await? {
                Some(p) if p.name == name => Some(p.id),
                _ => return Err(AccessError::UnknownAssignee(name.to_owned())),
            },
        };
        Ok(self.meta.list_assignments(id).await?)
    }

    /// A repository-scoped token; its password is returned once.
    pub async fn create_token(
        &self,
        actor: &Actor,
        name: &str,
        specs: &[String],
    ) -> AccessResult<(TokenView, String)> {
        check_name(name)?;
        if specs.is_empty() {
            return Err(AccessError::EmptyTokenScope);
        }
        let mut scopes = Vec::new();
        for s in specs {
            scopes.extend(parse_token_scope(s)?);
        }
        let password = secret()?;
        let hash = hash_password(password.clone()).await?;
        let t = now();
        let record = audit_record(actor, "token.create", name, &specs.join(" "), t);
        let p = self
            .meta
            .create_token(name, &hash, &scopes, t, &record)
            .await
            .map_err(store_err(name))?;
        Ok((token_view(&p, &scopes), password))
    }

    pub async fn list_tokens(&self) -> AccessResult<Vec<TokenView>> {
        let mut out = Vec::new();
        for p in self.meta.list_principals(Some(KIND_TOKEN)).await? {
            let scopes = self.meta.token_scopes(p.id).await?;
            out.push(token_view(&p, &scopes));
        }
        Ok(out)
    }

    pub async fn audit_records(&self, limit: u32) -> AccessResult<Vec<AuditRecord>> {
        Ok(self.meta.list_audit(limit).await?)
    }
}

fn token_view(p: &Principal, scopes: &[TokenScope]) -> TokenView {
    let mut repositories: Vec<TokenRepository> = Vec::new();
    for s in scopes {
        match repositories.iter_mut().find(|r| r.repository == s.repository) {
            Some(r) => {
                if !r.actions.contains(&s.action) {
                    r.actions.push(s.action.clone());
                }
            }
            None => repositories.push(TokenRepository {
                repository: s.repository.clone(),
                actions: vec![s.action.clone()],
            }),
        }
    }
    // A stable order, the one `TOKEN_ACTIONS` lists.
    for r in &mut repositories {
        r.actions
            .sort_by_key(|a| TOKEN_ACTIONS.iter().position(|t| t == a).unwrap_or(usize::MAX));
    }
    TokenView {
        name: p.name.clone(),
        created_at: p.created_at,
        repositories,
    }
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        KIND_USER => "user",
        KIND_SP => "service principal",
        KIND_TOKEN => "token",
        _ => "admin account",
    }
}

fn audit_kind(kind: &str) -> &'static str {
    match kind {
        KIND_USER => "user",
        KIND_SP => "sp",
        KIND_TOKEN => "token",
        _ => "admin-account",
    }
}

fn hex_id() -> AccessResult<String> {
    Ok(random_bytes::<8>()?.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_scopes_parse_exactly() {
        let rows = parse_token_scope("team/app:content/read,trust/write").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].action, "trust/write");
        assert_eq!(
            parse_token_scope("team/*:content/read").unwrap()[0].repository,
            "team/*"
        );
        for bad in [
            "team/app",
            "team/app:",
            "team/app:content/exec",
            "Team:content/read",
            ":content/read",
        ] {
            assert!(parse_token_scope(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("alice") && valid_name("ci-bot.1") && valid_name("a@b"));
        assert!(!valid_name("") && !valid_name("-x") && !valid_name("a b") && !valid_name(&"a".repeat(65)));
    }
}
