//! Admin REST API under `/api/v1/` (owner only, `registry:admin:*` bearer tokens):
//! content-trust policy, the signature policy, principals, role assignments, repository tokens, the token
//! signing key, audit, garbage collection, storage usage.
//! Described by `openapi.json`, served at `/api/v1/openapi.json`.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::RouteError;
use super::gate::OwnerActor;
use super::request::query_value;
use crate::app::AppState;
use crate::auth::Role;
use crate::clock::rfc3339;
use crate::services::RegistryError;
use crate::services::access::{KIND_SP, KIND_TOKEN, KIND_USER};
use crate::services::trust::PolicyOutcome;
use crate::wire::WireError;

#[derive(serde::Deserialize)]
struct PolicyBody {
    enabled: bool,
    #[serde(default)]
    confirm_delete_all_trust_data: bool,
}

fn bad_request(message: impl Into<String>) -> WireError {
    RouteError::BadRequest(message.into()).into()
}

pub async fn get_content_trust(
    State(state): State<AppState>,
    _owner: Extension<OwnerActor>,
) -> Result<Response, WireError> {
    let enabled = state.trust.enabled().await?;
    Ok(axum::Json(json!({ "enabled": enabled })).into_response())
}

pub async fn put_content_trust(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    body: Bytes,
) -> Result<Response, WireError> {
    let req: PolicyBody = serde_json::from_slice(&body)
        .map_err(|e| bad_request(format!("expected {{\"enabled\": true|false}}: {e}")))?;
    let outcome = state
        .trust
        .set_enabled(&actor, req.enabled, req.confirm_delete_all_trust_data)
        .await?;
    let mut out = json!({ "enabled": req.enabled, "changed": outcome != PolicyOutcome::Unchanged });
    if !req.enabled {
        let wiped = match outcome {
            PolicyOutcome::Disabled { repositories_wiped } => repositories_wiped,
            _ => 0,
        };
        out["repositories_wiped"] = json!(wiped);
    }
    Ok(axum::Json(out).into_response())
}

/// `DELETE /api/v1/repositories/<name>/trust` resets a repository's trust data;
/// `DELETE /api/v1/repositories/<name>` deletes the repository's images.
pub async fn delete_repository_trust(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    Path(rest): Path<String>,
) -> Result<Response, WireError> {
    match rest.strip_suffix("/trust") {
        Some(name) => {
            let deleted = state.trust.reset(name, &actor).await?;
            Ok(axum::Json(json!({ "repository": name, "deleted": deleted })).into_response())
        }
        None => {
            state.manifests.delete_repository(&actor, &rest).await?;
            Ok(axum::Json(json!({ "repository": rest, "deleted": true })).into_response())
        }
    }
}

/// `GET /api/v1/repositories/<name>/usage` (one repository's storage usage) and
/// `GET /api/v1/repositories/<name>/locks` (its locks). Names contain `/`, so the suffix
/// is split off here, as for `DELETE …/trust`.
pub async fn get_repository_item(
    State(state): State<AppState>,
    _owner: Extension<OwnerActor>,
    Path(rest): Path<String>,
) -> Result<Response, WireError> {
    if let Some(name) = rest.strip_suffix("/usage") {
        return Ok(ok(state.usage.repository(name).await?));
    }
    let name = locks_of(&rest)?;
    let locks = state.locks.list(name).await?;
    let listed: Vec<_> = locks
        .iter()
        .map(|l| lock_json(name, l.tag.as_deref(), Some(l)))
        .collect();
    Ok(ok(json!({ "repository": name, "locks": listed })))
}

/// `GET /api/v1/usage?n=&last=`: the registry total and a page of repositories by name.
pub async fn get_usage(
    State(state): State<AppState>,
    _owner: Extension<OwnerActor>,
    RawQuery(query): RawQuery,
) -> Result<Response, WireError> {
    let query = query.unwrap_or_default();
    // As the registry API's listings: `n` not a number is PAGINATION_NUMBER_INVALID too.
    let limit = match query_value(&query, "n") {
        Some(n) => n
            .parse::<u32>()
            .map_err(|_| RegistryError::PaginationInvalid(format!("n={n:?} is not a number")))?,
        None => 100,
    };
    let last = query_value(&query, "last").filter(|l| !l.is_empty());
    Ok(ok(state.usage.page(last.as_deref(), limit).await?))
}

// ---- Locks -------------------------------------------------------------------------------

/// `PUT /api/v1/repositories/<name>/locks`: attributes left out keep their value.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LockBody {
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    no_delete: Option<bool>,
    #[serde(default)]
    no_write: Option<bool>,
}

const LOCK_SHAPE: &str =
    r#"{"tag": "v1" (leave out for the repository), "no_delete": true|false, "no_write": true|false}"#;

fn lock_json(repository: &str, tag: Option<&str>, lock: Option<&wharf_store::Lock>) -> serde_json::Value {
    json!({
        "repository": repository,
        "tag": tag,
        "no_delete": lock.is_some_and(|l| l.no_delete),
        "no_write": lock.is_some_and(|l| l.no_write),
        "updated_at": lock.map(|l| rfc3339(l.updated_at)),
    })
}

/// The repository a `…/locks` admin path names (names contain `/`, tags never do).
fn locks_of(rest: &str) -> Result<&str, WireError> {
    rest.strip_suffix("/locks")
        .ok_or_else(|| RouteError::NoSuchEndpoint.into())
}

/// `PUT /api/v1/repositories/<name>/locks`: set or clear a lock's attributes (audited).
pub async fn put_repository_locks(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    Path(rest): Path<String>,
    bytes: Bytes,
) -> Result<Response, WireError> {
    let name = locks_of(&rest)?;
    let req: LockBody = body(&bytes, LOCK_SHAPE)?;
    if req.no_delete.is_none() && req.no_write.is_none() {
        return Err(bad_request(format!("say what to change: expected {LOCK_SHAPE}")));
    }
    let change = wharf_store::LockChange {
        tag: req.tag,
        no_delete: req.no_delete,
        no_write: req.no_write,
    };
    let lock = state.locks.change(&actor, name, &change).await?;
    Ok(ok(lock_json(name, change.tag.as_deref(), lock.as_ref())))
}

// ---- Identity and access -------------------------------------------------------------

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes, shape: &str) -> Result<T, WireError> {
    serde_json::from_slice(bytes).map_err(|e| bad_request(format!("expected {shape}: {e}")))
}

fn created(v: serde_json::Value) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

fn ok(v: impl serde::Serialize) -> Response {
    axum::Json(v).into_response()
}

#[derive(serde::Deserialize)]
struct NewUser {
    name: String,
    #[serde(default)]
    password: Option<String>,
}

#[derive(serde::Deserialize)]
struct Named {
    name: String,
}

pub async fn list_users(
    State(state): State<AppState>,
    _owner: Extension<OwnerActor>,
) -> Result<Response, WireError> {
    Ok(ok(json!({ "users": state.access.list(KIND_USER).await? })))
}

pub async fn create_user(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    bytes: Bytes,
) -> Result<Response, WireError> {
    let req: NewUser = body(&bytes, r#"{"name": "...", "password": "..."}"#)?;
    let (user, generated) = state.access.create_user(&actor, &req.name, req.password).await?;
    let mut out = json!(user);
    if let Some(p) = generated {
        out["password"] = json!(p);
    }
    Ok(created(out))
}

pub async fn delete_user(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    Path(name): Path<String>,
) -> Result<Response, WireError> {
    state.access.delete(&actor, KIND_USER, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list_sps(
    State(state): State<AppState>,
    _owner: Extension<OwnerActor>,
) -> Result<Response, WireError> {
    Ok(ok(
        json!({ "service_principals": state.access.list(KIND_SP).await? }),
    ))
}

pub async fn create_sp(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    bytes: Bytes,
) -> Result<Response, WireError> {
    let req: Named = body(&bytes, r#"{"name": "..."}"#)?;
    let (sp, secret) = state.access.create_sp(&actor, &req.name).await?;
    let mut out = json!(sp);
    out["secret"] = json!(secret);
    Ok(created(out))
}

pub async fn sp_item(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    method: axum::http::Method,
    Path(rest): Path<String>,
) -> Result<Response, WireError> {
    match (method, rest.split_once('/')) {
        (axum::http::Method::DELETE, None) => {
            state.access.delete(&actor, KIND_SP, &rest).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (axum::http::Method::POST, Some((name, "reset-secret"))) => {
            let (sp, secret) = state.access.reset_sp_secret(&actor, name).await?;
            let mut out = json!(sp);
            out["secret"] = json!(secret);
            Ok(ok(out))
        }
        _ => Err(WireError::from(RouteError::NoSuchEndpoint)),
    }
}

pub async fn get_admin_account(
    State(state): State<AppState>,
    _owner: Extension<OwnerActor>,
) -> Result<Response, WireError> {
    Ok(ok(state.access.admin_account().await?))
}

pub async fn admin_account_action(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    Path(action): Path<String>,
) -> Result<Response, WireError> {
    match action.as_str() {
        "enable" => {
            let (view, password) = state.access.enable_admin_account(&actor).await?;
            let mut out = json!(view);
            out["password"] = json!(password);
            Ok(ok(out))
        }
        "disable" => Ok(ok(state.access.disable_admin_account(&actor).await?)),
        _ => Err(WireError::from(RouteError::NoSuchEndpoint)),
    }
}

pub async fn list_roles(_owner: Extension<OwnerActor>) -> Result<Response, WireError> {
    let roles: Vec<_> = Role::ALL
        .iter()
        .map(
            |r| json!({ "name": r.name(), "description": r.description(), "permissions": r.perms().names() }),
        )
        .collect();
    Ok(ok(json!({ "roles": roles })))
}

#[derive(serde::Deserialize)]
struct AssignmentBody {
    role: String,
    assignee: String,
    #[serde(default)]
    scope: Option<String>,
}

fn assignment_json(a: &wharf_store::RoleAssignment) -> serde_json::Value {
    json!({
        "role": a.role,
        "assignee": a.principal,
        "assignee_kind": a.principal_kind,
        "scope": a.scope,
        "created_at": rfc3339(a.created_at),
    })
}

pub async fn list_assignments(
    State(state): State<AppState>,
    _owner: Extension<OwnerActor>,
    RawQuery(query): RawQuery,
) -> Result<Response, WireError> {
    let assignee = query_value(query.as_deref().unwrap_or(""), "assignee");
    let list = state.access.assignments(assignee.as_deref()).await?;
    let items: Vec<_> = list.iter().map(assignment_json).collect();
    Ok(ok(json!({ "role_assignments": items })))
}

pub async fn create_assignment(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    bytes: Bytes,
) -> Result<Response, WireError> {
    let req: AssignmentBody = body(
        &bytes,
        r#"{"role": "...", "assignee": "...", "scope": "registry"}"#,
    )?;
    let a = state
        .access
        .assign(&actor, &req.role, &req.assignee, req.scope.as_deref())
        .await?;
    Ok(created(assignment_json(&a)))
}

/// `DELETE /api/v1/role-assignments?role=&assignee=&scope=` (an assignment has no id of
/// its own: it is exactly this triple).
pub async fn delete_assignment(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    RawQuery(query): RawQuery,
) -> Result<Response, WireError> {
    let q = query.as_deref().unwrap_or("");
    let role = query_value(q, "role").ok_or_else(|| bad_request("role is missing"))?;
    let assignee = query_value(q, "assignee").ok_or_else(|| bad_request("assignee is missing"))?;
    let scope = query_value(q, "scope");
    state
        .access
        .unassign(&actor, &role, &assignee, scope.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(serde::Deserialize)]
struct TokenBody {
    name: String,
    repositories: Vec<String>,
}

pub async fn list_tokens(
    State(state): State<AppState>,
    _owner: Extension<OwnerActor>,
) -> Result<Response, WireError> {
    Ok(ok(json!({ "tokens": state.access.list_tokens().await? })))
}

pub async fn create_token(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    bytes: Bytes,
) -> Result<Response, WireError> {
    let req: TokenBody = body(
        &bytes,
        r#"{"name": "...", "repositories": ["team/app:content/read,content/write"]}"#,
    )?;
    let (view, password) = state
        .access
        .create_token(&actor, &req.name, &req.repositories)
        .await?;
    let mut out = json!(view);
    out["password"] = json!(password);
    Ok(created(out))
}

pub async fn delete_token(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    Path(name): Path<String>,
) -> Result<Response, WireError> {
    state.access.delete(&actor, KIND_TOKEN, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn get_token_signing_key(
    State(state): State<AppState>,
    _owner: Extension<OwnerActor>,
) -> Result<Response, WireError> {
    Ok(ok(state.identity.signing_keys_view()))
}

pub async fn rotate_token_signing_key(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
) -> Result<Response, WireError> {
    Ok(ok(state.identity.rotate_signing_key(&actor).await?))
}

pub async fn list_audit(
    State(state): State<AppState>,
    _owner: Extension<OwnerActor>,
    RawQuery(query): RawQuery,
) -> Result<Response, WireError> {
    let limit = query_value(query.as_deref().unwrap_or(""), "limit")
        .map(|l| {
            l.parse::<u32>()
                .map_err(|_| bad_request("limit must be a number"))
        })
        .transpose()?
        .unwrap_or(100)
        .min(10_000);
    let records: Vec<_> = state
        .access
        .audit_records(limit)
        .await?
        .into_iter()
        .map(|r| json!({ "at": rfc3339(r.at), "actor": r.actor, "action": r.action, "target": r.target, "detail": r.detail }))
        .collect();
    Ok(ok(json!({ "audit": records })))
}

// ---- Anonymous pull -------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct AnonymousPullBody {
    scopes: Vec<String>,
}

pub async fn get_anonymous_pull(
    State(state): State<AppState>,
    _owner: Extension<OwnerActor>,
) -> Result<Response, WireError> {
    Ok(ok(json!({ "scopes": state.anonymous.scopes() })))
}

/// `PUT /api/v1/anonymous-pull {"scopes": [...]}`: the whole list; `[]` turns it off.
pub async fn put_anonymous_pull(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    bytes: Bytes,
) -> Result<Response, WireError> {
    let req: AnonymousPullBody = body(
        &bytes,
        r#"{"scopes": ["registry" | "repository:<name>" | "repository:<prefix>/*"]}"#,
    )?;
    let scopes = state.anonymous.set(&actor, &req.scopes).await?;
    Ok(ok(json!({ "scopes": scopes })))
}

/// `GET /api/v1/signature-policy`: the server-side signature policy, with its `version`
/// (send it back with a change).
pub async fn get_signature_policy(
    State(state): State<AppState>,
    _owner: Extension<OwnerActor>,
) -> Result<Response, WireError> {
    Ok(ok(state.signature_policy.document()))
}

/// `PUT /api/v1/signature-policy`: replace the whole policy. `version` must be the one
/// read; answers the stored policy with its new version.
pub async fn put_signature_policy(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    bytes: Bytes,
) -> Result<Response, WireError> {
    let document = crate::services::signature_policy::document::PolicyDocument::parse(&bytes)
        .map_err(crate::services::signature_policy::SignaturePolicyError::from)?;
    let stored = state.signature_policy.replace(&actor, document).await?;
    Ok(ok(stored))
}

/// `GET /api/v1/quotas`: the storage quotas, with their `version` (send it back with a
/// change).
pub async fn get_quotas(
    State(state): State<AppState>,
    _owner: Extension<OwnerActor>,
) -> Result<Response, WireError> {
    Ok(ok(state.quotas.document()))
}

/// `PUT /api/v1/quotas`: replace every quota. `version` must be the one read; answers the
/// stored document with its new version.
pub async fn put_quotas(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    bytes: Bytes,
) -> Result<Response, WireError> {
    let document = crate::services::quotas::QuotaDocument::parse(&bytes)?;
    Ok(ok(state.quotas.replace(&actor, document).await?))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GcBody {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    grace_seconds: Option<u64>,
}

/// `POST /api/v1/gc {"dry_run": bool, "grace_seconds": n}`: one garbage collection now
/// (grace defaults to `gc.grace_seconds`); answers its report.
pub async fn run_gc(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    bytes: Bytes,
) -> Result<Response, WireError> {
    let req: GcBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        GcBody {
            dry_run: false,
            grace_seconds: None,
        }
    } else {
        body(&bytes, r#"{"dry_run": true|false, "grace_seconds": 3600}"#)?
    };
    let grace = req
        .grace_seconds
        .map_or_else(|| state.gc.default_grace(), std::time::Duration::from_secs);
    Ok(ok(state.gc.run(&actor, req.dry_run, grace).await?))
}

/// `GET /api/v1/gc`: whether a collection runs (on any replica), this replica's progress
/// and last run, and the configured grace and schedule.
pub async fn gc_status(State(state): State<AppState>) -> Result<Response, WireError> {
    Ok(ok(state.gc.status().await?))
}

/// `GET /api/v1/retention-policy`: the retention policy, with its `version` (send it back
/// with a change).
pub async fn get_retention_policy(
    State(state): State<AppState>,
    _owner: Extension<OwnerActor>,
) -> Result<Response, WireError> {
    Ok(ok(state.retention.document().await?))
}

/// `PUT /api/v1/retention-policy`: replace the whole policy. `version` must be the one
/// read; answers the stored policy with its new version.
pub async fn put_retention_policy(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    bytes: Bytes,
) -> Result<Response, WireError> {
    let document = crate::services::retention::RetentionDocument::parse(&bytes)
        .map_err(crate::services::retention::RetentionError::from)?;
    Ok(ok(state.retention.replace(&actor, document).await?))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionRunBody {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    repository: Option<String>,
}

/// `POST /api/v1/retention/run {"dry_run": bool, "repository": "name"}`: apply the retention
/// policy now (to one repository, or all); answers the report.
pub async fn run_retention(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    bytes: Bytes,
) -> Result<Response, WireError> {
    let req: RetentionRunBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        RetentionRunBody {
            dry_run: false,
            repository: None,
        }
    } else {
        body(&bytes, r#"{"dry_run": true|false, "repository": "<name>"}"#)?
    };
    Ok(ok(state
        .retention
        .run(&actor, req.dry_run, req.repository.as_deref())
        .await?))
}

/// The OpenAPI description of this API (hand-written; kept next to the routes).
pub async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}
