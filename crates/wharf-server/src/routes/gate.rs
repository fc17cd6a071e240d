//! The access gate every route passes. Each route declares its `RouteAccess`; bearer
//! routes need a valid token that grants the needed action, or get a 401 with the
//! challenge telling the client which token to fetch.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, HOST};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::RouteError;
use crate::app::AppState;
use crate::auth::{Action, Caller};
use crate::services::access::Actor;
use crate::services::anonymous_pull::ANONYMOUS;
use crate::wire::WireError;

pub enum Need<'a> {
    /// Any valid token (the `/v2/` ping).
    AnyToken,
    Repo(&'a str, Action),
    Catalog,
    /// Trust endpoints on a GUN (`host[:port]/repo`, the token's access entry name).
    Trust(&'a str, TrustAccess),
    /// The admin API (`registry:admin:*`).
    Admin,
}

/// What a trust endpoint needs (notary's table, spec §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustAccess {
    /// Metadata GETs and the changefeed: pull.
    Read,
    /// Updates and `GET <role>.key`: push and pull.
    Write,
    /// DELETE and key rotation: the owner-level right (`*` or delete).
    Owner,
}

/// A 401 carrying the challenge that tells the client which token to fetch.
fn unauthorized(challenge: String, message: impl Into<String>) -> WireError {
    RouteError::Unauthorized {
        challenge: Some(challenge),
        message: message.into(),
    }
    .into()
}

/// The host the client addressed, for the token realm. Clients must be able to reach the
/// realm at the same origin they used; only header-safe characters are echoed.
pub fn request_host(headers: &HeaderMap) -> String {
    headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost")
        .to_owned()
}

fn challenge(state: &AppState, headers: &HeaderMap, need: &Need<'_>, insufficient: bool) -> String {
    let mut c = format!(
        "Bearer realm=\"https://{}/token\",service=\"{}\"",
        request_host(headers),
        state.identity.service()
    );
    match need {
        Need::AnyToken => {}
        Need::Repo(name, action) => c.push_str(&format!(",scope=\"repository:{name}:{}\"", action.as_str())),
        Need::Catalog => c.push_str(",scope=\"registry:catalog:*\""),
        Need::Trust(gun, access) => {
            let actions = match access {
                TrustAccess::Read => "pull",
                TrustAccess::Write => "push,pull",
                TrustAccess::Owner => "*",
            };
            c.push_str(&format!(",scope=\"repository:{gun}:{actions}\""));
        }
        Need::Admin => c.push_str(",scope=\"registry:admin:*\""),
    }
    if insufficient {
        c.push_str(",error=\"insufficient_scope\"");
    }
    c
}

pub fn authorize(state: &AppState, headers: &HeaderMap, need: Need<'_>) -> Result<Caller, WireError> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let Some(token) = bearer else {
        return Err(unauthorized(
            challenge(state, headers, &need, false),
            "authentication required",
        ));
    };
    let caller = state.identity.verify(token.trim()).map_err(|e| {
        unauthorized(
            challenge(state, headers, &need, false),
            format!("authentication required: {e}"),
        )
    })?;
    tracing::Span::current().record("principal", caller.principal.as_str());
    // Anonymous tokens are checked against anonymous pull as it is now: turning it off
    // applies to the next request, not when the token expires.
    if caller.principal == ANONYMOUS && !anonymous_may(state, &need) {
        return Err(unauthorized(
            challenge(state, headers, &need, true),
            "access to the requested resource is not authorized",
        ));
    }
    let allowed = match &need {
        Need::AnyToken => true,
        Need::Repo(name, action) => caller.may(name, *action),
        Need::Catalog => caller.may_list_catalog(),
        Need::Trust(gun, TrustAccess::Read) => caller.may(gun, Action::Pull),
        Need::Trust(gun, TrustAccess::Write) => {
            caller.may(gun, Action::Push) && caller.may(gun, Action::Pull)
        }
        Need::Trust(gun, TrustAccess::Owner) => caller.may(gun, Action::Delete),
        Need::Admin => caller.may_administer(),
    };
    if !allowed {
        return Err(unauthorized(
            challenge(state, headers, &need, true),
            "access to the requested resource is not authorized",
        ));
    }
    Ok(caller)
}

/// What a caller without credentials may reach: the ping, and pulls (images and trust
/// metadata) of repositories open to anonymous pull.
fn anonymous_may(state: &AppState, need: &Need<'_>) -> bool {
    match need {
        Need::AnyToken => true,
        Need::Repo(name, Action::Pull) => state.anonymous.allows(name),
        Need::Trust(gun, TrustAccess::Read) => state
            .names
            .classify(gun)
            .is_some_and(|n| state.anonymous.allows(n.repository())),
        _ => false,
    }
}

/// What a route requires before its handler runs. Every route of the router is declared
/// with one (`routes::declare`), and for the token, owner and portal kinds the check is
/// that route's layer: a handler cannot be reached around it, and the values it needs
/// (`OwnerActor`, `TokenActor`, the portal's signed-in context) exist only when the check passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAccess {
    /// Anyone: the token service, sign-in, the OpenAPI document, the stylesheet, redirects.
    Public,
    /// `/v2/…`: each endpoint declares its need (`v2::Endpoint::need`) and the dispatcher
    /// asks the gate before any handler.
    RegistryApi,
    /// Prometheus metrics: public unless `metrics.require_token` asks for an owner's token.
    Metrics,
    /// Any principal's valid bearer token, never an anonymous one (a user's own account).
    Token,
    /// The admin API: a bearer token carrying `registry:admin:*`.
    Owner,
    /// A portal page or form of a signed-in user (forms also need the session's CSRF token).
    PortalUser,
    /// A portal page or form of an owner.
    PortalOwner,
}

/// Who an admin API request acts as: set by the owner gate, read by admin handlers.
#[derive(Debug, Clone)]
pub struct OwnerActor(pub Actor);

/// The client's address, as the listener recorded it.
pub fn peer_of(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Layer of `RouteAccess::Owner` routes.
pub async fn require_owner(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match authorize(&state, req.headers(), Need::Admin) {
        Ok(caller) => {
            let from = peer_of(&req);
            req.extensions_mut().insert(OwnerActor(Actor {
                name: caller.principal,
                from,
            }));
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// Who a `RouteAccess::Token` request acts as.
#[derive(Debug, Clone)]
pub struct TokenActor(pub Actor);

/// Layer of `RouteAccess::Token` routes.
pub async fn require_token(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match authorize(&state, req.headers(), Need::AnyToken) {
        Ok(caller) if caller.principal != ANONYMOUS => {
            let from = peer_of(&req);
            req.extensions_mut().insert(TokenActor(Actor {
                name: caller.principal,
                from,
            }));
            next.run(req).await
        }
        Ok(_) => unauthorized(
            challenge(&state, req.headers(), &Need::AnyToken, false),
            "authentication required: this needs your own login",
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Layer of `/metrics`: an owner's token when the operator asked for one.
pub async fn require_metrics_reader(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.metrics_require_token
        && let Err(e) = authorize(&state, req.headers(), Need::Admin)
    {
        return e.into_response();
    }
    next.run(req).await
}
