//! HTTP routes: parse, ask the access gate, call one service, shape the response.
//! Repository names contain `/`, so everything under `/v2/` goes to one dispatcher that
//! splits the tail itself (no depth limit).

mod admin;
mod blobs;
mod gate;
mod listings;
mod manifests;
mod metrics;
mod portal;
mod token;
mod trust;
mod uploads;
mod v2;

use axum::Router;
use axum::routing::{any, delete, get, post};

use crate::app::AppState;

pub use v2::route_kind;

/// The client's address, when the listener recorded it (audit records, login throttling).
type Peer = Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;

fn peer_ip(peer: &Peer) -> Option<std::net::IpAddr> {
    peer.as_ref().map(|p| p.0.0.ip())
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v2", any(v2::dispatch))
        .route("/v2/", any(v2::dispatch))
        .route("/v2/{*rest}", any(v2::dispatch))
        .route("/token", get(token::get_token).post(token::post_token))
        .route("/metrics", get(metrics::render))
        .route(
            "/api/v1/content-trust",
            get(admin::get_content_trust).put(admin::put_content_trust),
        )
        // Repository names contain `/`: the trailing `/trust` is split off by the handler.
        .route(
            "/api/v1/repositories/{*rest}",
            delete(admin::delete_repository_trust),
        )
        .route("/api/v1/openapi.json", get(admin::openapi))
        .route("/api/v1/users", get(admin::list_users).post(admin::create_user))
        .route("/api/v1/users/{name}", delete(admin::delete_user))
        .route(
            "/api/v1/service-principals",
            get(admin::list_sps).post(admin::create_sp),
        )
        .route("/api/v1/service-principals/{*rest}", any(admin::sp_item))
        .route("/api/v1/admin-account", get(admin::get_admin_account))
        .route(
            "/api/v1/admin-account/{action}",
            post(admin::admin_account_action),
        )
        .route("/api/v1/roles", get(admin::list_roles))
        .route(
            "/api/v1/role-assignments",
            get(admin::list_assignments)
                .post(admin::create_assignment)
                .delete(admin::delete_assignment),
        )
        .route(
            "/api/v1/tokens",
            get(admin::list_tokens).post(admin::create_token),
        )
        .route("/api/v1/tokens/{name}", delete(admin::delete_token))
        .route("/api/v1/token-signing-key", get(admin::get_token_signing_key))
        .route(
            "/api/v1/token-signing-key/rotate",
            post(admin::rotate_token_signing_key),
        )
        .route("/api/v1/audit", get(admin::list_audit))
        .route("/", get(portal::root))
        .route("/portal", get(portal::home))
        .route("/portal/", get(portal::home))
        .route("/portal/static/wharf.css", get(portal::stylesheet))
        .route("/portal/sign-in", get(portal::sign_in_page).post(portal::sign_in))
        .route("/portal/sign-out", post(portal::sign_out))
        .route("/portal/repositories", get(portal::repositories))
        .route("/portal/repositories/{*name}", get(portal::repository))
        .route(
            "/portal/policies/content-trust",
            get(portal::content_trust).post(portal::save_content_trust),
        )
        .route(
            "/portal/trust-reset",
            get(portal::trust_reset_page).post(portal::trust_reset),
        )
        .route("/portal/access", get(portal::access))
        .route("/portal/access/{op}", post(portal::access_action))
        .route("/portal/audit", get(portal::audit))
        .layer(axum::middleware::map_request(host_from_authority))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::observe::trace_requests,
        ))
        .with_state(state)
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
