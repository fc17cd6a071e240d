//! HTTP routes: parse, ask the access gate, call one service, shape the response.
//! Repository names contain `/`, so everything under `/v2/` goes to one dispatcher that
//! splits the tail itself (no depth limit).

mod blobs;
mod gate;
mod listings;
mod manifests;
mod metrics;
mod token;
mod uploads;
mod v2;

use axum::Router;
use axum::routing::{any, get};

use crate::app::AppState;

pub use v2::route_kind;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v2", any(v2::dispatch))
        .route("/v2/", any(v2::dispatch))
        .route("/v2/{*rest}", any(v2::dispatch))
        .route("/token", get(token::get_token).post(token::post_token))
        .route("/metrics", get(metrics::render))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::observe::trace_requests))
        .with_state(state)
}
