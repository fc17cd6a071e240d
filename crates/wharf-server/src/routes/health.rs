//! `/healthz` (the process answers) and `/readyz` (it can serve: database and blob
//! storage reachable), for load balancers and orchestrators. Public, and they say
//! nothing beyond ready or not.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::app::AppState;

pub async fn alive() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain")], "ok\n")
}

pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.readiness.check().await {
        Ok(()) => (
            StatusCode::OK,
            [(CONTENT_TYPE, "text/plain")],
            "ready\n".to_owned(),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(CONTENT_TYPE, "text/plain")],
            format!("not ready: {e}\n"),
        ),
    }
}
