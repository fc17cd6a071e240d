//! HTTP routes: parse, ask the access gate, call one service, shape the response.
//! Repository names contain `/`, so everything under `/v2/` goes to one dispatcher that
//! splits the tail itself (no depth limit).

mod admin;
mod blobs;
mod error;
mod gate;
mod health;
mod listings;
mod manifests;
mod metrics;
mod passwords;
mod portal;
mod request;
mod token;
mod trust;
mod uploads;
mod v2;

#[cfg(test)]
mod route_walk;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, any, delete, get, post, put};

use crate::app::AppState;
use gate::RouteAccess;

pub use error::RouteError;
pub use v2::route_kind;

/// The client's address, when the listener recorded it (audit records, login throttling).
type Peer = Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;

fn peer_ip(peer: &Peer) -> Option<std::net::IpAddr> {
    peer.as_ref().map(|p| p.0.0.ip())
}

/// The router under construction, and what every route declared: the route-walk test
/// reads `table` to try each route as callers who must not pass.
pub struct DeclaredRoutes {
    router: Router<AppState>,
    state: AppState,
    pub table: Vec<(&'static str, RouteAccess)>,
}

impl DeclaredRoutes {
    fn new(state: AppState) -> Self {
        Self {
            router: Router::new(),
            state,
            table: Vec::new(),
        }
    }

    /// Add `path` with its handlers behind the check `access` names.
    fn route(mut self, path: &'static str, access: RouteAccess, handlers: MethodRouter<AppState>) -> Self {
        let state = self.state.clone();
        let handlers = match access {
            RouteAccess::Public | RouteAccess::RegistryApi => handlers,
            RouteAccess::Metrics => {
                handlers.route_layer(from_fn_with_state(state, gate::require_metrics_reader))
            }
            RouteAccess::Token => handlers.route_layer(from_fn_with_state(state, gate::require_token)),
            RouteAccess::Owner => handlers.route_layer(from_fn_with_state(state, gate::require_owner)),
            RouteAccess::PortalUser => handlers.route_layer(from_fn_with_state(state, portal::admit_user)),
            RouteAccess::PortalOwner => handlers.route_layer(from_fn_with_state(state, portal::admit_owner)),
        };
        self.router = self.router.route(path, handlers);
        self.table.push((path, access));
        self
    }
}

/// Every route with the access it requires. A route is added only through
/// `DeclaredRoutes::route`, so none exists without its declared check.
pub fn declare(state: AppState) -> DeclaredRoutes {
    use RouteAccess::{Metrics, Owner, PortalOwner, PortalUser, Public, RegistryApi, Token};
    DeclaredRoutes::new(state)
        .route("/v2", RegistryApi, any(v2::dispatch))
        .route("/v2/", RegistryApi, any(v2::dispatch))
        .route("/v2/{*rest}", RegistryApi, any(v2::dispatch))
        .route("/token", Public, get(token::get_token).post(token::post_token))
        .route("/metrics", Metrics, get(metrics::render))
        .route("/healthz", Public, get(health::alive))
        .route("/readyz", Public, get(health::ready))
        .route("/api/v1/openapi.json", Public, get(admin::openapi))
        .route(
            "/api/v1/content-trust",
            Owner,
            get(admin::get_content_trust).put(admin::put_content_trust),
        )
        // Repository names contain `/`: the trailing `/trust`, `/usage` or `/locks` is split off by
        // the handler.
        .route(
            "/api/v1/repositories/{*rest}",
            Owner,
            delete(admin::delete_repository_trust)
                .get(admin::get_repository_item)
                .put(admin::put_repository_locks),
        )
        .route("/api/v1/usage", Owner, get(admin::get_usage))
        .route(
            "/api/v1/users",
            Owner,
            get(admin::list_users).post(admin::create_user),
        )
        .route("/api/v1/users/{name}", Owner, delete(admin::delete_user))
        .route(
            "/api/v1/users/{name}/password",
            Owner,
            put(passwords::reset_user_password),
        )
        .route(
            "/api/v1/account/password",
            Token,
            post(passwords::change_own_password),
        )
        .route(
            "/api/v1/service-principals",
            Owner,
            get(admin::list_sps).post(admin::create_sp),
        )
        .route(
            "/api/v1/service-principals/{*rest}",
            Owner,
            delete(admin::sp_item).post(admin::sp_item),
        )
        .route("/api/v1/admin-account", Owner, get(admin::get_admin_account))
        .route(
            "/api/v1/admin-account/{action}",
            Owner,
            post(admin::admin_account_action),
        )
        .route("/api/v1/roles", Owner, get(admin::list_roles))
        .route(
            "/api/v1/role-assignments",
            Owner,
            get(admin::list_assignments)
                .post(admin::create_assignment)
                .delete(admin::delete_assignment),
        )
        .route(
            "/api/v1/tokens",
            Owner,
            get(admin::list_tokens).post(admin::create_token),
        )
        .route("/api/v1/tokens/{name}", Owner, delete(admin::delete_token))
        .route(
            "/api/v1/token-signing-key",
            Owner,
            get(admin::get_token_signing_key),
        )
        .route(
            "/api/v1/token-signing-key/rotate",
            Owner,
            post(admin::rotate_token_signing_key),
        )
        .route("/api/v1/audit", Owner, get(admin::list_audit))
        .route("/api/v1/gc", Owner, get(admin::gc_status).post(admin::run_gc))
        .route(
            "/api/v1/retention-policy",
            Owner,
            get(admin::get_retention_policy).put(admin::put_retention_policy),
        )
        .route("/api/v1/retention/run", Owner, post(admin::run_retention))
        .route(
            "/api/v1/anonymous-pull",
            Owner,
            get(admin::get_anonymous_pull).put(admin::put_anonymous_pull),
        )
        .route(
            "/api/v1/signature-policy",
            Owner,
            get(admin::get_signature_policy).put(admin::put_signature_policy),
        )
        .route(
            "/api/v1/quotas",
            Owner,
            get(admin::get_quotas).put(admin::put_quotas),
        )
        .route("/", Public, get(portal::root))
        .route("/portal", Public, get(portal::home))
        .route("/portal/", Public, get(portal::home))
        .route("/portal/static/wharf.css", Public, get(portal::stylesheet))
        .route(
            "/portal/sign-in",
            Public,
            get(portal::sign_in_page).post(portal::sign_in),
        )
        .route("/portal/sign-out", PortalUser, post(portal::sign_out))
        .route("/portal/repositories", PortalUser, get(portal::repositories))
        .route(
            "/portal/repositories/{*name}",
            PortalUser,
            get(portal::repository),
        )
        .route("/portal/delete-tag", PortalUser, post(portal::delete_tag))
        .route("/portal/lock", PortalOwner, post(portal::change_lock))
        .route(
            "/portal/delete-repository",
            PortalUser,
            get(portal::delete_repository_page).post(portal::delete_repository),
        )
        .route(
            "/portal/policies/content-trust",
            PortalOwner,
            get(portal::content_trust).post(portal::save_content_trust),
        )
        .route(
            "/portal/storage/gc",
            PortalOwner,
            get(portal::garbage_collection).post(portal::start_garbage_collection),
        )
        .route(
            "/portal/policies/anonymous-pull",
            PortalOwner,
            post(portal::save_anonymous_pull),
        )
        .route(
            "/portal/policies/signature",
            PortalOwner,
            get(portal::signature_policy).post(portal::save_signature_policy),
        )
        .route(
            "/portal/trust-reset",
            PortalOwner,
            get(portal::trust_reset_page).post(portal::trust_reset),
        )
        .route("/portal/access", PortalOwner, get(portal::access))
        .route("/portal/access/{op}", PortalOwner, post(portal::access_action))
        .route("/portal/audit", PortalOwner, get(portal::audit))
        .route(
            "/portal/account",
            PortalUser,
            get(portal::account).post(portal::change_password),
        )
}

pub fn router(state: AppState) -> Router {
    declare(state.clone())
        .router
        .layer(axum::middleware::map_request(host_from_authority))
        .layer(axum::middleware::map_response(strict_transport))
        .layer(from_fn_with_state(state.clone(), crate::observe::trace_requests))
        .with_state(state)
}

/// Every answer of this HTTPS-only origin tells browsers to use nothing else for a year
/// (no `includeSubDomains`: other hosts under the same name are not ours to decide).
async fn strict_transport(mut resp: axum::response::Response) -> axum::response::Response {
    resp.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static("max-age=31536000"),
    );
    resp
}

/// HTTP/2 carries the host in `:authority`, not `Host`; give every route one header to read.
async fn host_from_authority(mut req: axum::extract::Request) -> axum::extract::Request {
    if !req.headers().contains_key(axum::http::header::HOST) {
        let authority = req
            .uri()
            .authority()
            .and_then(|a| axum::http::HeaderValue::from_str(a.as_str()).ok());
        if let Some(v) = authority {
            req.headers_mut().insert(axum::http::header::HOST, v);
        }
    }
    req
}
