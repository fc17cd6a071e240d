//! Admin REST API under `/api/v1/` (owner only, `registry:admin:*` bearer tokens).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::gate::{Need, authorize};
use crate::app::AppState;
use crate::wire::WireError;

const DISABLE_WARNING: &str = "disabling content trust deletes ALL trust data of EVERY repository \
(signatures, keys held by the registry) and cannot be undone; images stay. \
Send {\"enabled\":false,\"confirm_delete_all_trust_data\":true} to proceed";

#[derive(serde::Deserialize)]
struct PolicyBody {
    enabled: bool,
    #[serde(default)]
    confirm_delete_all_trust_data: bool,
}

fn bad_request(message: impl Into<String>) -> WireError {
    WireError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
}

pub async fn get_content_trust(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WireError> {
    authorize(&state, &headers, Need::Admin)?;
    let enabled = state.trust.enabled().await?;
    Ok(axum::Json(json!({ "enabled": enabled })).into_response())
}

pub async fn put_content_trust(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WireError> {
    let caller = authorize(&state, &headers, Need::Admin)?;
    let req: PolicyBody = serde_json::from_slice(&body)
        .map_err(|e| bad_request(format!("expected {{\"enabled\": true|false}}: {e}")))?;
    if !req.enabled && !req.confirm_delete_all_trust_data {
        return Err(WireError::new(
            StatusCode::CONFLICT,
            "CONFIRMATION_REQUIRED",
            DISABLE_WARNING,
        ));
    }
    let wiped = state.trust.set_enabled(&caller.principal, req.enabled).await?;
    let mut out = json!({ "enabled": req.enabled });
    if !req.enabled {
        out["repositories_wiped"] = json!(wiped);
    }
    Ok(axum::Json(out).into_response())
}

pub async fn delete_repository_trust(
    State(state): State<AppState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WireError> {
    let caller = authorize(&state, &headers, Need::Admin)?;
    let Some(name) = rest.strip_suffix("/trust") else {
        return Err(WireError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such endpoint",
        ));
    };
    let deleted = state.trust.reset(name, &caller.principal).await?;
    Ok(axum::Json(json!({ "repository": name, "deleted": deleted })).into_response())
}
