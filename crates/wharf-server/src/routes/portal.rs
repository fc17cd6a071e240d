//! The web portal under `/portal/`: sign-in with a session cookie, CSRF-checked forms,
//! and pages for repositories, the content-trust and signature policies, access control
//! and the audit trail. Every page asks the access policy (through
//! `IdentityService::portal_viewer`) what the signed-in user may see; errors show the
//! same messages the API returns.

// Guards return the finished error page as `Err(Response)`: one per request, so its
// size on the stack does not matter and boxing would only add noise to every handler.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use wharf_store::Principal;

use super::RouteError;
use super::gate::{peer_of, request_host};
use super::request::pairs;
use super::{Peer, peer_ip};
use crate::app::AppState;
use crate::auth::secrets::random_token;
use crate::auth::{Grants, Perms};
use crate::clock::now;
use crate::services::RegistryError;
use crate::services::access::{Actor, KIND_SP, KIND_USER};
use crate::services::gc::GcReport;
use crate::services::portal_sessions::{ABSOLUTE_SECONDS, PortalSession, SignedIn, tokens_match};
use crate::services::signature_policy::SignaturePolicyError;
use crate::services::signature_policy::document::{Mode, PolicyDocument, PolicyRule};
use crate::services::trust::{PolicyOutcome, TrustError};
use crate::views::access::{AccessData, Entered, OneTimeSecret};
use crate::views::html::{Notice, Viewer};
use crate::views::policies::RuleForm;
use crate::views::{self, repositories::RepositoryDetail, repositories::RepositoryList};
use crate::wire::WireError;

/// `__Host-`: the browser only accepts it over HTTPS, for this host, for every path.
const SESSION_COOKIE: &str = "__Host-wharf_session";
/// Double-submit value for the sign-in form (there is no session to hold a CSRF token yet).
const SIGNIN_COOKIE: &str = "__Host-wharf_signin";
const SIGNIN_COOKIE_SECONDS: i64 = 3600;
const PAGE_SIZE: u32 = 25;
const AUDIT_PAGE: u32 = 200;
/// How long "Collect now" waits for its run before drawing the page.
const GC_PAGE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

type Fields = HashMap<String, String>;

/// A signed-in user on this request.
struct Ctx {
    principal: Principal,
    grants: Grants,
    admin: bool,
    session: PortalSession,
    from: Option<std::net::IpAddr>,
    /// The host the browser used: what `docker pull` needs in front of a repository.
    host: String,
}

impl Ctx {
    fn viewer(&self) -> Viewer<'_> {
        Viewer {
            name: &self.principal.name,
            csrf: &self.session.csrf,
            admin: self.admin,
        }
    }

    fn actor(&self) -> Actor {
        Actor {
            name: self.principal.name.clone(),
            from: self.from,
        }
    }
}

/// An HTML response with the portal's security headers: no scripts or outside
/// resources at all, never framed, never cached (pages carry secrets and CSRF tokens).
fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn with_cookie(mut r: Response, cookie: String) -> Response {
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

fn cookie_header(name: &str, value: &str, max_age: i64) -> String {
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}")
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The session's user, or a redirect to the sign-in page.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    from: Option<std::net::IpAddr>,
) -> Result<Ctx, Response> {
    let to_sign_in = || redirect("/portal/sign-in");
    let cookie = cookie(headers, SESSION_COOKIE).ok_or_else(to_sign_in)?;
    let session = match state.portal_sessions.resume(&cookie, now()).await {
        Ok(Some(session)) => session,
        Ok(None) => return Err(to_sign_in()),
        Err(e) => return Err(error_page(None, WireError::from(e))),
    };
    match state.identity.portal_viewer(&session.principal).await {
        Ok(Some((principal, grants, admin))) => Ok(Ctx {
            principal,
            grants,
            admin,
            session,
            from,
            host: request_host(headers),
        }),
        // Deleted since sign-in: the session ends with the principal.
        Ok(None) => {
            if let Err(e) = state.portal_sessions.end(&cookie).await {
                return Err(error_page(None, WireError::from(e)));
            }
            Err(to_sign_in())
        }
        Err(e) => Err(error_page(None, WireError::from(e))),
    }
}

/// A page that only states an error (for failures outside a form's page).
fn error_page(viewer: Option<&Viewer>, e: WireError) -> Response {
    let body = views::html::page(
        "Something went wrong",
        views::html::Section::Repositories,
        viewer,
        &Some(Notice::Error(e.message)),
        r#"<p><a href="/portal/repositories">Back to repositories</a></p>"#,
    );
    html(e.status, body)
}

fn forbidden(ctx: &Ctx, message: &str) -> Response {
    error_page(Some(&ctx.viewer()), RouteError::Denied(message.to_owned()).into())
}

/// Administration pages need the owner's right (`registry:admin:*` by the policy).
fn require_admin(ctx: &Ctx) -> Result<(), Response> {
    if ctx.admin {
        Ok(())
    } else {
        Err(forbidden(
            ctx,
            "Only owners of this registry can see or change this page.",
        ))
    }
}

/// Every state-changing post must carry the session's CSRF token.
fn require_csrf(ctx: &Ctx, presented: &str) -> Result<(), Response> {
    if tokens_match(&ctx.session.csrf, presented) {
        Ok(())
    } else {
        tracing::warn!(principal = %ctx.principal.name, "portal post without a valid CSRF token refused");
        Err(forbidden(
            ctx,
            "This form did not come from your Wharf session (missing or wrong CSRF token). Reload the page and try again.",
        ))
    }
}

/// The signed-in context of a portal request, set by its route's admission layer.
#[derive(Clone)]
pub struct Admitted(Arc<Ctx>);

/// Largest portal form accepted (forms hold a few names and a CSRF token).
const FORM_LIMIT: usize = 64 * 1024;

/// Layer of `RouteAccess::PortalUser` routes.
pub async fn admit_user(State(state): State<AppState>, req: Request, next: Next) -> Response {
    admit(&state, req, next, false).await
}

/// Layer of `RouteAccess::PortalOwner` routes.
pub async fn admit_owner(State(state): State<AppState>, req: Request, next: Next) -> Response {
    admit(&state, req, next, true).await
}

/// A portal request passes when its session is live and its principal still exists,
/// the access policy makes it an owner where the route needs one, and — for every post
/// — the form carries the session's CSRF token. Only then does the handler run.
async fn admit(state: &AppState, req: Request, next: Next, owner: bool) -> Response {
    let ctx = match signed_in(state, req.headers(), peer_of(&req)).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if owner && let Err(r) = require_admin(&ctx) {
        return r;
    }
    let mut req = if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
            return error_page(Some(&ctx.viewer()), RouteError::FormTooLarge.into());
        };
        if let Err(r) = require_csrf(&ctx, &form_value(&bytes, "csrf").unwrap_or_default()) {
            return r;
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };
    req.extensions_mut().insert(Admitted(Arc::new(ctx)));
    next.run(req).await
}

/// One field of an `application/x-www-form-urlencoded` body.
fn form_value(body: &[u8], key: &str) -> Option<String> {
    pairs(std::str::from_utf8(body).ok()?)
        .into_iter()
        .find_map(|(k, v)| (k == key).then_some(v))
}

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.get(name).map_or("", |v| v.trim())
}

/// A required form field, or a 400 with "<Label> is required."
fn required<'a>(fields: &'a Fields, name: &str, label: &str) -> Result<&'a str, WireError> {
    let v = field(fields, name);
    if v.is_empty() {
        Err(RouteError::FieldRequired(label.to_owned()).into())
    } else {
        Ok(v)
    }
}

// ---- Entry, sign-in, sign-out ------------------------------------------------------

pub async fn root() -> Response {
    redirect("/portal/")
}

pub async fn home(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers, peer_ip(&peer)).await {
        Ok(_) => redirect("/portal/repositories"),
        Err(r) => r,
    }
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        views::STYLESHEET,
    )
        .into_response()
}

fn sign_in_form(status: StatusCode, name: &str, notice: Option<Notice>) -> Response {
    let Ok(token) = random_token() else {
        return html(StatusCode::INTERNAL_SERVER_ERROR, String::new());
    };
    let page = views::sign_in::sign_in(name, &token, &notice);
    with_cookie(
        html(status, page),
        cookie_header(SIGNIN_COOKIE, &token, SIGNIN_COOKIE_SECONDS),
    )
}

pub async fn sign_in_page(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    if signed_in(&state, &headers, peer_ip(&peer)).await.is_ok() {
        return redirect("/portal/repositories");
    }
    sign_in_form(StatusCode::OK, "", None)
}

pub async fn sign_in(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let name = field(&fields, "name");
    let expected = cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !tokens_match(&expected, fields.get("csrf").map_or("", String::as_str)) {
        return sign_in_form(
            StatusCode::FORBIDDEN,
            name,
            Some(Notice::Error(
                "This sign-in form did not come from Wharf or has expired (missing CSRF token). Try again."
                    .into(),
            )),
        );
    }
    let password = fields.get("password").map_or("", String::as_str);
    if name.is_empty() || password.is_empty() {
        return sign_in_form(
            StatusCode::BAD_REQUEST,
            name,
            Some(Notice::Error("Enter your user name and password.".into())),
        );
    }
    let principal = match state
        .identity
        .login_password(name, password, peer_ip(&peer))
        .await
    {
        Ok(p) => p,
        Err(e) => {
            let e = WireError::from(e);
            return sign_in_form(e.status, name, Some(Notice::Error(e.message)));
        }
    };
    // Service principals, tokens and the admin account are credentials for registry
    // clients; people sign in as users.
    if principal.kind != KIND_USER {
        return sign_in_form(
            StatusCode::FORBIDDEN,
            name,
            Some(Notice::Error(
                "Only users can sign in to the portal; service principals, repository tokens and the admin account are for registry clients.".into(),
            )),
        );
    }
    let signed_in = SignedIn {
        id: principal.id,
        name: principal.name.clone(),
        created_at: principal.created_at,
    };
    let cookie_value = match state.portal_sessions.start(signed_in, now()).await {
        Ok((cookie, _)) => cookie,
        Err(e) => {
            tracing::error!(error = %e, "portal session not started");
            return error_page(None, WireError::internal());
        }
    };
    tracing::info!(principal = %principal.name, "portal sign-in");
    let r = with_cookie(
        redirect("/portal/repositories"),
        cookie_header(SESSION_COOKIE, &cookie_value, ABSOLUTE_SECONDS),
    );
    with_cookie(r, cookie_header(SIGNIN_COOKIE, "", 0))
}

pub async fn sign_out(
    State(state): State<AppState>,
    Extension(Admitted(_ctx)): Extension<Admitted>,
    headers: HeaderMap,
) -> Response {
    if let Some(c) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = state.portal_sessions.end(&c).await
    {
        return error_page(None, WireError::from(e));
    }
    with_cookie(redirect("/portal/sign-in"), cookie_header(SESSION_COOKIE, "", 0))
}

// ---- Repositories --------------------------------------------------------------------

pub async fn repositories(
    State(state): State<AppState>,
    Extension(Admitted(ctx)): Extension<Admitted>,
    Query(q): Query<Fields>,
) -> Response {
    let last = q.get("last").filter(|l| !l.is_empty()).map(String::as_str);
    repositories_page(&state, &ctx, field(&q, "q"), last, None).await
}

async fn repositories_page(
    state: &AppState,
    ctx: &Ctx,
    query: &str,
    last: Option<&str>,
    notice: Option<Notice>,
) -> Response {
    let page = match state
        .manifests
        .catalog(query, last, Some(PAGE_SIZE), |r| ctx.grants.may_read(r))
        .await
    {
        Ok(p) => p,
        Err(e) => return error_page(Some(&ctx.viewer()), e.into()),
    };
    let next = if page.more {
        page.items.last().map(String::as_str)
    } else {
        None
    };
    let body = views::repositories::list(
        &ctx.viewer(),
        &RepositoryList {
            query,
            names: &page.items,
            next,
            paged: last.is_some(),
        },
        &notice,
    );
    html(StatusCode::OK, body)
}

async fn repository_page(state: &AppState, ctx: &Ctx, name: &str, notice: Option<Notice>) -> Response {
    let not_found = || {
        error_page(
            Some(&ctx.viewer()),
            RouteError::RepositoryNotVisible(name.to_owned()).into(),
        )
    };
    // Unreadable and absent look the same: names of others' repositories stay private.
    if !ctx.grants.may_read(name) {
        return not_found();
    }
    let tags = match state.manifests.tag_details(name).await {
        Ok(t) => t,
        Err(e) => return error_page(Some(&ctx.viewer()), e.into()),
    };
    let trust = match state.trust.overview(name).await {
        Ok(t) => t,
        Err(e) => return error_page(Some(&ctx.viewer()), e.into()),
    };
    // A repository whose tags are all deleted still exists (its manifests are reachable
    // by digest) and is shown; one with neither images nor trust data is not.
    if tags.is_empty() && !trust.initialized && !state.manifests.exists(name).await.unwrap_or(false) {
        return not_found();
    }
    let trust_enabled = state.trust.enabled().await.unwrap_or(false);
    let usage = if ctx.admin {
        match state.usage.repository(name).await {
            Ok(u) => Some(u),
            // A repository with trust data only has no row of its own: nothing stored.
            Err(RegistryError::NameUnknown(_)) => None,
            Err(e) => return error_page(Some(&ctx.viewer()), e.into()),
        }
    } else {
        None
    };
    let locks = match state.locks.list(name).await {
        Ok(l) => l,
        Err(crate::services::RegistryError::NameUnknown(_)) => Vec::new(),
        Err(e) => return error_page(Some(&ctx.viewer()), e.into()),
    };
    let body = views::repositories::detail(
        &ctx.viewer(),
        &RepositoryDetail {
            name,
            host: &ctx.host,
            tags: &tags,
            trust: &trust,
            trust_enabled,
            may_delete: ctx.grants.on(name).contains(Perms::DELETE),
            usage: usage.as_ref(),
            locks: &locks,
        },
        &notice,
    );
    html(StatusCode::OK, body)
}

/// Deleting images needs the delete right on the repository, asked here for every post.
fn require_delete(ctx: &Ctx, repository: &str) -> Result<(), Response> {
    if ctx.grants.on(repository).contains(Perms::DELETE) {
        Ok(())
    } else {
        Err(forbidden(
            ctx,
            &format!("You may not delete images of {repository}."),
        ))
    }
}

/// Untag: the manifest stays, reachable by digest.
pub async fn delete_tag(
    State(state): State<AppState>,
    Extension(Admitted(ctx)): Extension<Admitted>,
    Form(fields): Form<Fields>,
) -> Response {
    let (repository, tag) = (field(&fields, "repository"), field(&fields, "tag"));
    if let Err(r) = require_delete(&ctx, repository) {
        return r;
    }
    let reference = match crate::names::Reference::parse(tag) {
        Ok(r @ crate::names::Reference::Tag(_)) => r,
        _ => {
            return error_page(
                Some(&ctx.viewer()),
                RouteError::FieldRequired("Tag".into()).into(),
            );
        }
    };
    match state.manifests.delete(&ctx.actor(), repository, &reference).await {
        Ok(()) => {
            let notice = Notice::Success(format!(
                "Tag {tag} deleted; its manifest stays reachable by digest."
            ));
            repository_page(&state, &ctx, repository, Some(notice)).await
        }
        Err(e) => error_page(Some(&ctx.viewer()), e.into()),
    }
}

/// An owner's Lock (both attributes) or Unlock (both cleared) of a repository or tag.
pub async fn change_lock(
    State(state): State<AppState>,
    Extension(Admitted(ctx)): Extension<Admitted>,
    Form(fields): Form<Fields>,
) -> Response {
    let (repository, tag) = (field(&fields, "repository"), field(&fields, "tag"));
    let locked = match field(&fields, "action") {
        "lock" => true,
        "unlock" => false,
        _ => {
            return error_page(
                Some(&ctx.viewer()),
                RouteError::FieldRequired("Lock or Unlock".into()).into(),
            );
        }
    };
    let change = wharf_store::LockChange {
        tag: (!tag.is_empty()).then(|| tag.to_owned()),
        no_delete: Some(locked),
        no_write: Some(locked),
    };
    match state.locks.change(&ctx.actor(), repository, &change).await {
        Ok(_) => {
            let what = if tag.is_empty() {
                repository.to_owned()
            } else {
                format!("{repository}:{tag}")
            };
            let done = if locked {
                "locked against deletion and writes"
            } else {
                "unlocked"
            };
            repository_page(
                &state,
                &ctx,
                repository,
                Some(Notice::Success(format!("{what} {done}."))),
            )
            .await
        }
        Err(e) => error_page(Some(&ctx.viewer()), e.into()),
    }
}

pub async fn delete_repository_page(
    Extension(Admitted(ctx)): Extension<Admitted>,
    Query(q): Query<Fields>,
) -> Response {
    let repository = field(&q, "repository");
    if let Err(r) = require_delete(&ctx, repository) {
        return r;
    }
    html(
        StatusCode::OK,
        views::repositories::confirm_delete(&ctx.viewer(), repository, &None),
    )
}

pub async fn delete_repository(
    State(state): State<AppState>,
    Extension(Admitted(ctx)): Extension<Admitted>,
    Form(fields): Form<Fields>,
) -> Response {
    let repository = field(&fields, "repository");
    if let Err(r) = require_delete(&ctx, repository) {
        return r;
    }
    if field(&fields, "confirm") != "delete-repository" {
        let notice = Some(Notice::Error(
            "Tick the box to confirm that every tag and manifest will be deleted.".into(),
        ));
        return html(
            StatusCode::BAD_REQUEST,
            views::repositories::confirm_delete(&ctx.viewer(), repository, &notice),
        );
    }
    match state.manifests.delete_repository(&ctx.actor(), repository).await {
        Ok(()) => {
            let notice = Notice::Success(format!("Repository {repository} deleted."));
            repositories_page(&state, &ctx, "", None, Some(notice)).await
        }
        Err(e) => error_page(Some(&ctx.viewer()), e.into()),
    }
}

pub async fn repository(
    State(state): State<AppState>,
    Extension(Admitted(ctx)): Extension<Admitted>,
    Path(name): Path<String>,
) -> Response {
    repository_page(&state, &ctx, &name, None).await
}

// ---- Policies: content trust ---------------------------------------------------------

async fn content_trust_page(
    state: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    notice: Option<Notice>,
) -> Response {
    match state.trust.enabled().await {
        Ok(enabled) => html(
            status,
            views::policies::content_trust(&ctx.viewer(), enabled, &state.anonymous.scopes(), &notice),
        ),
        Err(e) => error_page(Some(&ctx.viewer()), e.into()),
    }
}

pub async fn content_trust(
    State(state): State<AppState>,
    Extension(Admitted(ctx)): Extension<Admitted>,
) -> Response {
    content_trust_page(&state, &ctx, StatusCode::OK, None).await
}

pub async fn save_content_trust(
    State(state): State<AppState>,
    Extension(Admitted(ctx)): Extension<Admitted>,
    Form(fields): Form<Fields>,
) -> Response {
    let enabled = match field(&fields, "enabled") {
        "true" => true,
        "false" => false,
        _ => {
            return content_trust_page(
                &state,
                &ctx,
                StatusCode::BAD_REQUEST,
                Some(Notice::Error("Choose Enabled or Disabled, then Save.".into())),
            )
            .await;
        }
    };
    let confirmed = field(&fields, "confirm") == "delete-all-trust-data";
    let message = match state.trust.set_enabled(&ctx.actor(), enabled, confirmed).await {
        Ok(PolicyOutcome::Unchanged) => {
            let state_word = if enabled { "enabled" } else { "disabled" };
            format!("Content trust is already {state_word}; nothing changed.")
        }
        Ok(PolicyOutcome::Enabled) => {
            "Content trust enabled. Publishers can now push signed tags.".to_owned()
        }
        Ok(PolicyOutcome::Disabled { repositories_wiped }) => {
            let repositories = if repositories_wiped == 1 {
                "repository"
            } else {
                "repositories"
            };
            format!(
                "Content trust disabled. Trust data of {repositories_wiped} {repositories} was deleted; all images were kept."
            )
        }
        // First Save of "Disabled" asks; an unticked box on the confirmation asks again.
        Err(TrustError::ConfirmationRequired) if field(&fields, "step") == "confirm" => {
            let notice = Some(Notice::Error(
                "Tick the box to confirm that all trust data will be deleted, or Cancel.".into(),
            ));
            return html(
                StatusCode::BAD_REQUEST,
                views::policies::confirm_disable(&ctx.viewer(), &notice),
            );
        }
        Err(TrustError::ConfirmationRequired) => {
            return html(
                StatusCode::OK,
                views::policies::confirm_disable(&ctx.viewer(), &None),
            );
        }
        Err(e) => return error_page(Some(&ctx.viewer()), e.into()),
    };
    content_trust_page(&state, &ctx, StatusCode::OK, Some(Notice::Success(message))).await
}

/// Policies → Anonymous pull: add or remove one scope (`op` = add | remove).
pub async fn save_anonymous_pull(
    State(state): State<AppState>,
    Extension(Admitted(ctx)): Extension<Admitted>,
    Form(fields): Form<Fields>,
) -> Response {
    let scope = field(&fields, "scope");
    let mut scopes = state.anonymous.scopes();
    let message = match field(&fields, "op") {
        "add" if scope.is_empty() => {
            let notice = Notice::Error("Scope is required.".into());
            return content_trust_page(&state, &ctx, StatusCode::BAD_REQUEST, Some(notice)).await;
        }
        "add" => {
            scopes.push(scope.to_owned());
            format!("{scope} is open to anonymous pull.")
        }
        "remove" => {
            scopes.retain(|s| s != scope);
            format!("{scope} is no longer open to anonymous pull.")
        }
        _ => {
            let notice = Notice::Error("Unknown action.".into());
            return content_trust_page(&state, &ctx, StatusCode::BAD_REQUEST, Some(notice)).await;
        }
    };
    match state.anonymous.set(&ctx.actor(), &scopes).await {
        Ok(_) => content_trust_page(&state, &ctx, StatusCode::OK, Some(Notice::Success(message))).await,
        Err(e) => {
            let e = WireError::from(e);
            content_trust_page(&state, &ctx, e.status, Some(Notice::Error(e.message))).await
        }
    }
}

// ---- Policies: signature policy ------------------------------------------------------

async fn signature_policy_page(
    state: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    entered: &RuleForm,
    notice: Option<Notice>,
) -> Response {
    let document = state.signature_policy.document();
    html(
        status,
        views::policies::signature_policy(&ctx.viewer(), &document, entered, &notice),
    )
}

/// Policies → Signature policy; `?edit=<scope>` fills the rule form with that rule.
pub async fn signature_policy(
    State(state): State<AppState>,
    Extension(Admitted(ctx)): Extension<Admitted>,
    Query(q): Query<Fields>,
) -> Response {
    let edit = field(&q, "edit");
    let entered = if edit.is_empty() {
        RuleForm::default()
    } else {
        state
            .signature_policy
            .document()
            .rules
            .iter()
            .find(|r| r.scope.trim() == edit)
            .map_or_else(
                || RuleForm {
                    scope: edit.to_owned(),
                    ..RuleForm::default()
                },
                RuleForm::of,
            )
    };
    signature_policy_page(&state, &ctx, StatusCode::OK, &entered, None).await
}

/// What the rule form holds, as posted.
fn rule_form_of(fields: &Fields) -> RuleForm {
    let text = |name: &str| fields.get(name).cloned().unwrap_or_default();
    RuleForm {
        scope: field(fields, "scope").to_owned(),
        mode: field(fields, "mode").to_owned(),
        dct: field(fields, "dct") == "on",
        dct_roles: field(fields, "roles").to_owned(),
        cosign_keys: text("cosign"),
        notation_roots: text("notation_roots"),
        notation_identities: text("identities"),
        publishers_read_unsigned: field(fields, "publishers") == "on",
    }
}

/// `what` as (name, PEM) pairs: a name on its own line, then its PEM block, repeated.
fn named_pems(what: &str, text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut name: Option<String> = None;
    let mut block: Option<Vec<&str>> = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(b) = block.as_mut() {
            if line.is_empty() {
                continue;
            }
            b.push(line);
            if line.starts_with("-----END ") {
                out.push((name.take().unwrap_or_default(), format!("{}\n", b.join("\n"))));
                block = None;
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        if line.starts_with("-----BEGIN ") {
            if name.is_none() {
                return Err(format!(
                    "{what}, line {}: put a name on the line before each PEM block",
                    i + 1
                ));
            }
            block = Some(vec![line]);
        } else if let Some(n) = &name {
            return Err(format!(
                "{what}, line {}: expected the PEM block of {n:?} (-----BEGIN …)",
                i + 1
            ));
        } else {
            name = Some(line.to_owned());
        }
    }
    match (name, block) {
        (Some(n), Some(_)) => Err(format!("{what}: the PEM block of {n:?} has no -----END line")),
        (Some(n), None) => Err(format!("{what}: {n:?} has no PEM block")),
        _ => Ok(out),
    }
}

/// The rule the form describes, in the API's JSON form and read as the API reads it, so
/// the portal cannot store anything the API would not. DCT roles imply DCT.
fn rule_of(entered: &RuleForm) -> Result<PolicyRule, WireError> {
    let bad = |m: String| WireError::from(RouteError::BadRequest(m));
    if entered.scope.is_empty() {
        return Err(RouteError::FieldRequired("Scope".into()).into());
    }
    let mut rule = serde_json::json!({ "scope": entered.scope, "mode": entered.mode });
    let roles: Vec<&str> = entered
        .dct_roles
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|r| !r.is_empty())
        .collect();
    if entered.dct || !roles.is_empty() {
        rule["dct"] = serde_json::json!({ "roles": roles });
    }
    let keys = named_pems("cosign public keys", &entered.cosign_keys).map_err(bad)?;
    if !keys.is_empty() {
        let keys: Vec<_> = keys
            .into_iter()
            .map(|(name, pem)| serde_json::json!({ "name": name, "public_key": pem }))
            .collect();
        rule["cosign"] = serde_json::json!({ "keys": keys });
    }
    let roots = named_pems("Notation root certificates", &entered.notation_roots).map_err(bad)?;
    let identities: Vec<&str> = entered
        .notation_identities
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if !roots.is_empty() || !identities.is_empty() {
        let roots: Vec<_> = roots
            .into_iter()
            .map(|(name, pem)| serde_json::json!({ "name": name, "certificate": pem }))
            .collect();
        rule["notation"] = serde_json::json!({ "trust_store": roots, "trusted_identities": identities });
    }
    rule["publishers_read_unsigned"] = serde_json::json!(entered.publishers_read_unsigned);
    serde_json::from_value(rule).map_err(|_| bad("Choose a mode: off, audit or enforce.".into()))
}

/// The policy the form's change is applied to: the stored one, when it is still the
/// version the page showed. A page from before another change gets the conflict the API
/// gives, instead of quietly undoing that change.
async fn policy_as_shown(state: &AppState, fields: &Fields) -> Result<PolicyDocument, WireError> {
    let shown: u64 = field(fields, "version").parse().map_err(|_| {
        RouteError::BadRequest("This form has no policy version; reload the page and try again.".into())
    })?;
    let mut document = state.signature_policy.document();
    if document.version != shown {
        // Another replica may have stored it a moment ago.
        state
            .signature_policy
            .reload()
            .await
            .map_err(SignaturePolicyError::from)?;
        document = state.signature_policy.document();
    }
    if document.version != shown {
        return Err(SignaturePolicyError::VersionConflict {
            read: shown,
            current: document.version,
        }
        .into());
    }
    Ok(document)
}

/// Apply one post (`op` = set | mode | remove) and store it through the service; the
/// notice to show.
async fn change_signature_policy(
    state: &AppState,
    ctx: &Ctx,
    op: &str,
    fields: &Fields,
) -> Result<String, WireError> {
    let mut document = policy_as_shown(state, fields).await?;
    let scope = field(fields, "scope");
    let position = document.rules.iter().position(|r| r.scope.trim() == scope);
    let no_rule = || {
        WireError::from(RouteError::BadRequest(format!(
            "There is no rule for scope {scope}."
        )))
    };
    let done = match op {
        "set" => {
            let rule = rule_of(&rule_form_of(fields))?;
            let mode = rule.mode.as_str();
            match position {
                Some(i) if document.rules[i] == rule => {
                    return Ok(format!(
                        "The rule for {scope} is already like this; nothing changed."
                    ));
                }
                Some(i) => {
                    document.rules[i] = rule;
                    format!("Replaced the rule for {scope}: {mode}")
                }
                None => {
                    document.rules.push(rule);
                    format!("Added the rule for {scope}: {mode}")
                }
            }
        }
        "mode" => {
            let i = position.ok_or_else(no_rule)?;
            let mode: Mode = serde_json::from_value(serde_json::json!(field(fields, "mode")))
                .map_err(|_| RouteError::BadRequest("Choose a mode: off, audit or enforce.".into()))?;
            if document.rules[i].mode == mode {
                return Ok(format!(
                    "The rule for {scope} is already {}; nothing changed.",
                    mode.as_str()
                ));
            }
            document.rules[i].mode = mode;
            format!("The rule for {scope} is now {}", mode.as_str())
        }
        "remove" => {
            let i = position.ok_or_else(no_rule)?;
            document.rules.remove(i);
            format!("Removed the rule for {scope}")
        }
        _ => return Err(RouteError::BadRequest("Unknown action.".into()).into()),
    };
    let stored = state.signature_policy.replace(&ctx.actor(), document).await?;
    Ok(format!("{done} (policy version {}).", stored.version))
}

pub async fn save_signature_policy(
    State(state): State<AppState>,
    Extension(Admitted(ctx)): Extension<Admitted>,
    Form(fields): Form<Fields>,
) -> Response {
    let op = field(&fields, "op");
    match change_signature_policy(&state, &ctx, op, &fields).await {
        Ok(message) => {
            signature_policy_page(
                &state,
                &ctx,
                StatusCode::OK,
                &RuleForm::default(),
                Some(Notice::Success(message)),
            )
            .await
        }
        Err(e) => {
            // What was typed into the rule form stays, to be corrected.
            let entered = if op == "set" {
                rule_form_of(&fields)
            } else {
                RuleForm::default()
            };
            signature_policy_page(&state, &ctx, e.status, &entered, Some(Notice::Error(e.message))).await
        }
    }
}

pub async fn trust_reset_page(
    Extension(Admitted(ctx)): Extension<Admitted>,
    Query(q): Query<Fields>,
) -> Response {
    html(
        StatusCode::OK,
        views::policies::confirm_reset(&ctx.viewer(), field(&q, "repository"), &None),
    )
}

pub async fn trust_reset(
    State(state): State<AppState>,
    Extension(Admitted(ctx)): Extension<Admitted>,
    Form(fields): Form<Fields>,
) -> Response {
    let repository = field(&fields, "repository");
    if field(&fields, "confirm") != "delete-trust-data" {
        return html(
            StatusCode::BAD_REQUEST,
            views::policies::confirm_reset(
                &ctx.viewer(),
                repository,
                &Some(Notice::Error(
                    "Tick the box to confirm that this repository's trust data will be deleted.".into(),
                )),
            ),
        );
    }
    match state.trust.reset(repository, &ctx.actor()).await {
        Ok(deleted) => {
            let message = if deleted {
                format!("Trust data of {repository} deleted; its images were kept.")
            } else {
                format!("{repository} had no trust data; nothing changed.")
            };
            repository_page(&state, &ctx, repository, Some(Notice::Success(message))).await
        }
        Err(e) => error_page(Some(&ctx.viewer()), e.into()),
    }
}

// ---- Access control ------------------------------------------------------------------

async fn access_page(
    state: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    entered: &Entered,
    secret: Option<&OneTimeSecret>,
    notice: Option<Notice>,
) -> Response {
    let loaded = async {
        Ok::<_, WireError>((
            state.access.assignments(None).await?,
            state.access.list(KIND_USER).await?,
            state.access.list(KIND_SP).await?,
            state.access.admin_account().await?,
            state.access.list_tokens().await?,
        ))
    }
    .await;
    match loaded {
        Ok((assignments, users, sps, admin_account, tokens)) => {
            let data = AccessData {
                assignments: &assignments,
                users: &users,
                service_principals: &sps,
                admin_account: &admin_account,
                tokens: &tokens,
            };
            html(
                status,
                views::access::access(&ctx.viewer(), &data, entered, secret, &notice),
            )
        }
        Err(e) => error_page(Some(&ctx.viewer()), e),
    }
}

pub async fn access(
    State(state): State<AppState>,
    Extension(Admitted(ctx)): Extension<Admitted>,
) -> Response {
    access_page(&state, &ctx, StatusCode::OK, &Entered::default(), None, None).await
}

/// What a successful access-control action reports.
struct Done {
    message: String,
    secret: Option<OneTimeSecret>,
}

fn done(message: String) -> Done {
    Done {
        message,
        secret: None,
    }
}

/// A success that shows a credential once (`login` + `secret`).
fn done_with_secret(message: String, what: String, login: String, secret: String) -> Done {
    Done {
        message,
        secret: Some(OneTimeSecret { what, login, secret }),
    }
}

async fn run_access_action(state: &AppState, ctx: &Ctx, op: &str, f: &Fields) -> Result<Done, WireError> {
    let actor = ctx.actor();
    let access = &state.access;
    match op {
        "assign" => {
            let role = required(f, "role", "Role")?;
            let assignee = required(f, "assignee", "Assignee")?;
            let scope = Some(field(f, "scope")).filter(|s| !s.is_empty());
            let a = access.assign(&actor, role, assignee, scope).await?;
            Ok(done(format!(
                "{} now has {} on {}. It applies from their next sign-in or token.",
                a.principal, a.role, a.scope
            )))
        }
        "unassign" => {
            let role = required(f, "role", "Role")?;
            let assignee = required(f, "assignee", "Assignee")?;
            let scope = Some(field(f, "scope")).filter(|s| !s.is_empty());
            access.unassign(&actor, role, assignee, scope).await?;
            Ok(done(format!("Removed {role} from {assignee}.")))
        }
        "create-user" => {
            let name = required(f, "name", "User name")?;
            let password = Some(field(f, "password").to_owned()).filter(|p| !p.is_empty());
            let (user, generated) = access.create_user(&actor, name, password).await?;
            Ok(Done {
                message: format!("User {} created.", user.name),
                secret: generated.map(|secret| OneTimeSecret {
                    what: format!("Generated password of {}", user.name),
                    login: user.name.clone(),
                    secret,
                }),
            })
        }
        "delete-user" => {
            let name = required(f, "name", "User name")?;
            access.delete(&actor, KIND_USER, name).await?;
            Ok(done(format!(
                "User {name} deleted; their sign-ins and refresh tokens no longer work."
            )))
        }
        "reset-password" => {
            let name = required(f, "name", "User name")?;
            let (user, generated) = access.reset_password(&actor, name, None).await?;
            Ok(done_with_secret(
                format!(
                    "New password for {}; the old one, their sign-ins and refresh tokens no longer work.",
                    user.name
                ),
                format!("New password of {}", user.name),
                user.name.clone(),
                generated.unwrap_or_default(),
            ))
        }
        "create-sp" => {
            let name = required(f, "name", "Service principal name")?;
            let (sp, secret) = access.create_sp(&actor, name).await?;
            Ok(done_with_secret(
                format!("Service principal {} created.", sp.name),
                format!("Secret of service principal {}", sp.name),
                sp.client_id.unwrap_or(sp.name),
                secret,
            ))
        }
        "reset-sp-secret" => {
            let name = required(f, "name", "Service principal name")?;
            let (sp, secret) = access.reset_sp_secret(&actor, name).await?;
            Ok(done_with_secret(
                format!("New secret for {}; the old one no longer works.", sp.name),
                format!("New secret of service principal {}", sp.name),
                sp.client_id.unwrap_or(sp.name),
                secret,
            ))
        }
        "delete-sp" => {
            let name = required(f, "name", "Service principal name")?;
            access.delete(&actor, KIND_SP, name).await?;
            Ok(done(format!("Service principal {name} deleted.")))
        }
        "enable-admin-account" => {
            let (view, password) = access.enable_admin_account(&actor).await?;
            Ok(done_with_secret(
                "Admin account enabled.".into(),
                "Password of the admin account".into(),
                view.username,
                password,
            ))
        }
        "disable-admin-account" => {
            access.disable_admin_account(&actor).await?;
            Ok(done("Admin account disabled.".into()))
        }
        "create-token" => {
            let name = required(f, "name", "Token name")?;
            let repositories: Vec<String> = field(f, "repositories")
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            let (view, password) = access.create_token(&actor, name, &repositories).await?;
            Ok(done_with_secret(
                format!("Token {} created.", view.name),
                format!("Password of token {}", view.name),
                view.name,
                password,
            ))
        }
        "delete-token" => {
            let name = required(f, "name", "Token name")?;
            access
                .delete(&actor, crate::services::access::KIND_TOKEN, name)
                .await?;
            Ok(done(format!("Token {name} deleted.")))
        }
        _ => Err(WireError::from(RouteError::NoSuchEndpoint)),
    }
}

pub async fn access_action(
    State(state): State<AppState>,
    Extension(Admitted(ctx)): Extension<Admitted>,
    Path(op): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    match run_access_action(&state, &ctx, &op, &fields).await {
        Ok(d) => {
            access_page(
                &state,
                &ctx,
                StatusCode::OK,
                &Entered::default(),
                d.secret.as_ref(),
                Some(Notice::Success(d.message)),
            )
            .await
        }
        Err(e) => {
            // Keep what was typed into the role-assignment form so it can be corrected.
            let entered = if op == "assign" {
                Entered {
                    role: field(&fields, "role").to_owned(),
                    assignee: field(&fields, "assignee").to_owned(),
                    scope: field(&fields, "scope").to_owned(),
                }
            } else {
                Entered::default()
            };
            access_page(
                &state,
                &ctx,
                e.status,
                &entered,
                None,
                Some(Notice::Error(e.message)),
            )
            .await
        }
    }
}

// ---- Account -------------------------------------------------------------------------

/// Account: the signed-in user's own password.
pub async fn account(Extension(Admitted(ctx)): Extension<Admitted>) -> Response {
    html(StatusCode::OK, views::account::account(&ctx.viewer(), &None))
}

pub async fn change_password(
    State(state): State<AppState>,
    Extension(Admitted(ctx)): Extension<Admitted>,
    Form(fields): Form<Fields>,
) -> Response {
    let page = |status: StatusCode, notice: Notice| {
        html(status, views::account::account(&ctx.viewer(), &Some(notice)))
    };
    let (current, new) = (field(&fields, "current"), field(&fields, "new"));
    if current.is_empty() || new.is_empty() {
        return page(
            StatusCode::BAD_REQUEST,
            Notice::Error("Enter your current password and a new one.".into()),
        );
    }
    if new != field(&fields, "confirm") {
        return page(
            StatusCode::BAD_REQUEST,
            Notice::Error("The new password and its confirmation differ.".into()),
        );
    }
    match state
        .identity
        .change_own_password(&ctx.actor(), current, new)
        .await
    {
        Ok(()) => page(
            StatusCode::OK,
            Notice::Success(
                "Password changed. Registry clients (docker, wharf) must log in again with it.".into(),
            ),
        ),
        Err(e) => {
            let e = WireError::from(e);
            page(e.status, Notice::Error(e.message))
        }
    }
}

// ---- Audit ---------------------------------------------------------------------------

pub async fn audit(State(state): State<AppState>, Extension(Admitted(ctx)): Extension<Admitted>) -> Response {
    match state.access.audit_records(AUDIT_PAGE).await {
        Ok(records) => html(
            StatusCode::OK,
            views::audit::audit(&ctx.viewer(), &records, &None),
        ),
        Err(e) => error_page(Some(&ctx.viewer()), e.into()),
    }
}

// ---- Storage: garbage collection ----------------------------------------------------

async fn gc_page(
    state: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    preview: Option<GcReport>,
    notice: Option<Notice>,
) -> Response {
    match state.gc.status().await {
        Ok(gc) => html(
            status,
            views::storage::gc(&ctx.viewer(), &gc, preview.as_ref(), &notice),
        ),
        Err(e) => error_page(Some(&ctx.viewer()), e.into()),
    }
}

pub async fn garbage_collection(
    State(state): State<AppState>,
    Extension(Admitted(ctx)): Extension<Admitted>,
) -> Response {
    gc_page(&state, &ctx, StatusCode::OK, None, None).await
}

/// `op=dry-run` answers the preview on the page; `op=run` starts a collection in the
/// background (a large one outlasts any browser) and shows its progress.
pub async fn start_garbage_collection(
    State(state): State<AppState>,
    Extension(Admitted(ctx)): Extension<Admitted>,
    Form(fields): Form<Fields>,
) -> Response {
    let grace = state.gc.default_grace();
    match field(&fields, "op") {
        "dry-run" => match state.gc.run(&ctx.actor(), true, grace).await {
            Ok(report) => gc_page(&state, &ctx, StatusCode::OK, Some(report), None).await,
            Err(e) => {
                let e = WireError::from(e);
                gc_page(&state, &ctx, e.status, None, Some(Notice::Error(e.message))).await
            }
        },
        "run" => {
            // Checked here so the page can say so; the lease decides (a run that loses
            // the race ends as `Busy` in the log).
            if let Ok(status) = state.gc.status().await
                && let Some(running) = status.running
            {
                let notice = Notice::Error(format!(
                    "A garbage collection is already running on replica {}.",
                    running.replica
                ));
                return gc_page(&state, &ctx, StatusCode::CONFLICT, None, Some(notice)).await;
            }
            let (runner, actor) = (state.clone(), ctx.actor());
            let run = tokio::spawn(async move {
                let outcome = runner.gc.run(&actor, false, grace).await;
                if let Err(e) = &outcome {
                    tracing::warn!(error = %e, "garbage collection started in the portal stopped");
                }
                outcome
            });
            // The run goes on by itself (a large one outlasts any browser); the page waits
            // a moment so that a small one can be shown finished.
            let notice = match tokio::time::timeout(GC_PAGE_WAIT, run).await {
                Ok(Ok(Ok(report))) => Notice::Success(views::storage::finished_notice(&report)),
                Ok(Ok(Err(e))) => Notice::Error(format!("Garbage collection stopped: {e}.")),
                Ok(Err(_)) => {
                    Notice::Error("Garbage collection stopped unexpectedly; see the server log.".into())
                }
                Err(_) => Notice::Success("Garbage collection started. Refresh to follow it.".into()),
            };
            gc_page(&state, &ctx, StatusCode::OK, None, Some(notice)).await
        }
        _ => {
            let notice = Notice::Error("Unknown action.".into());
            gc_page(&state, &ctx, StatusCode::BAD_REQUEST, None, Some(notice)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_keys_are_named_pem_blocks() {
        // What a browser posts: CRLF line ends, blank lines between keys.
        let text = "ci\r\n-----BEGIN PUBLIC KEY-----\r\nAAAA\r\n-----END PUBLIC KEY-----\r\n\r\n  release  \r\n-----BEGIN PUBLIC KEY-----\r\nBBBB\r\n-----END PUBLIC KEY-----";
        assert_eq!(
            named_pems("cosign public keys", text).unwrap(),
            [
                (
                    "ci".to_owned(),
                    "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".to_owned()
                ),
                (
                    "release".to_owned(),
                    "-----BEGIN PUBLIC KEY-----\nBBBB\n-----END PUBLIC KEY-----\n".to_owned()
                ),
            ]
        );
        assert_eq!(named_pems("k", " \n").unwrap(), []);
        assert_eq!(
            named_pems("k", "-----BEGIN PUBLIC KEY-----\nAAAA").unwrap_err(),
            "k, line 1: put a name on the line before each PEM block"
        );
        assert_eq!(
            named_pems("k", "ci\nrelease\n").unwrap_err(),
            "k, line 2: expected the PEM block of \"ci\" (-----BEGIN …)"
        );
        assert_eq!(
            named_pems("k", "ci\n-----BEGIN PUBLIC KEY-----\nAAAA\n").unwrap_err(),
            "k: the PEM block of \"ci\" has no -----END line"
        );
    }

    #[test]
    fn the_rule_form_is_read_as_the_api_reads_a_rule() {
        let form = RuleForm {
            scope: "repository:team/*".into(),
            mode: "enforce".into(),
            dct_roles: "targets/releases, targets/ci".into(),
            notation_identities: "x509.subject: CN=ci, O=Acme\r\n\r\n*\r\n".into(),
            publishers_read_unsigned: false,
            ..RuleForm::default()
        };
        let rule = rule_of(&form).unwrap();
        assert_eq!(
            serde_json::to_value(&rule).unwrap(),
            serde_json::json!({
                "scope": "repository:team/*",
                "mode": "enforce",
                "dct": {"roles": ["targets/releases", "targets/ci"]},
                "notation": {"trust_store": [], "trusted_identities": ["x509.subject: CN=ci, O=Acme", "*"]},
                "publishers_read_unsigned": false,
            })
        );
        let bad_mode = RuleForm {
            scope: "registry".into(),
            mode: "strict".into(),
            ..RuleForm::default()
        };
        assert_eq!(
            rule_of(&bad_mode).unwrap_err().message,
            "Choose a mode: off, audit or enforce."
        );
        assert_eq!(
            rule_of(&RuleForm::default()).unwrap_err().message,
            "Scope is required."
        );
    }
}
