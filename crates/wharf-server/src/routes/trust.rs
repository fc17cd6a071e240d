//! Notary v1 trust endpoints under `/v2/<gun>/_trust/…` (spec §1.2): parse, authorise
//! through the gate, call `TrustService`, answer in notary's format.

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LAST_MODIFIED};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use wharf_tuf::UpdateError;

use super::gate::{Need, TrustAccess, authorize};
use crate::app::AppState;
use crate::services::trust::{CacheKind, MAX_UPDATE_BYTES, Served, TrustError};
use crate::wire::WireError;

/// Either refusal a trust request can meet: the gate's 401, or notary's error.
enum Fail {
    Gate(WireError),
    Trust(TrustError),
}

impl From<WireError> for Fail {
    fn from(e: WireError) -> Self {
        Fail::Gate(e)
    }
}

impl From<TrustError> for Fail {
    fn from(e: TrustError) -> Self {
        Fail::Trust(e)
    }
}

/// `/v2/<gun>/_trust/<rest>`.
pub async fn handle(
    state: &AppState,
    method: &Method,
    gun: &str,
    rest: &str,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    match handle_inner(state, method, gun, rest, query, headers, body).await {
        Ok(r) => r,
        Err(Fail::Gate(e)) => e.into_response(),
        Err(Fail::Trust(e)) => e.into_response(),
    }
}

async fn handle_inner(
    state: &AppState,
    method: &Method,
    gun: &str,
    rest: &str,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Fail> {
    let trust = &state.trust;
    let repository = trust.repository_of(gun)?;
    tracing::Span::current().record("repository", repository);
    let gate = |access| authorize(state, headers, Need::Trust(gun, access));
    match (method.clone(), rest) {
        (Method::POST, "tuf/" | "tuf") => {
            let caller = gate(TrustAccess::Write)?;
            let content_type = headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let bytes = axum::body::to_bytes(body, MAX_UPDATE_BYTES).await.map_err(|_| {
                TrustError::Update(UpdateError::Validation(format!(
                    "update is larger than the server's {} MiB limit",
                    MAX_UPDATE_BYTES >> 20
                )))
            })?;
            Ok(trust
                .update(repository, gun, &caller.principal, content_type, &bytes)
                .await
                .map(|()| StatusCode::OK.into_response())?)
        }
        (Method::DELETE, "tuf/" | "tuf") => {
            let caller = gate(TrustAccess::Owner)?;
            Ok(trust
                .delete(repository, gun, &caller.principal)
                .await
                .map(|_| StatusCode::OK.into_response())?)
        }
        (Method::GET, "changefeed") => {
            gate(TrustAccess::Read)?;
            Ok(trust.changefeed(Some(repository), query).await.map(json)?)
        }
        (Method::GET, "tuf/timestamp.key" | "tuf/snapshot.key") => {
            gate(TrustAccess::Write)?;
            let role = key_role(rest);
            Ok(trust.get_key(repository, role).await.map(json)?)
        }
        (Method::POST, "tuf/timestamp.key" | "tuf/snapshot.key") => {
            let caller = gate(TrustAccess::Owner)?;
            let role = key_role(rest);
            Ok(trust
                .rotate_key(repository, role, &caller.principal)
                .await
                .map(json)?)
        }
        (Method::GET, file) if file.starts_with("tuf/") => {
            gate(TrustAccess::Read)?;
            let name = &file["tuf/".len()..];
            Ok(trust.get_metadata(repository, gun, name).await.map(metadata)?)
        }
        _ => Err(TrustError::NotFound.into()),
    }
}

/// `GET /v2/_trust/changefeed`: changes of every repository.
pub async fn global_changefeed(state: &AppState, query: &str, headers: &HeaderMap) -> Response {
    if let Err(e) = authorize(state, headers, Need::Catalog) {
        return e.into_response();
    }
    match state.trust.changefeed(None, query).await {
        Ok(b) => json(b),
        Err(e) => e.into_response(),
    }
}

fn key_role(rest: &str) -> &str {
    rest.trim_start_matches("tuf/").trim_end_matches(".key")
}

fn json(body: Vec<u8>) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Exact stored bytes with notary's cache headers; clients hash what they receive.
fn metadata(served: Served) -> Response {
    let cache = match served.cache {
        CacheKind::Current => "public, max-age=300, s-maxage=300, must-revalidate",
        CacheKind::Consistent => "public, max-age=2592000, s-maxage=2592000",
    };
    let mut r = (StatusCode::OK, served.bytes).into_response();
    let h = r.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(t) = DateTime::<Utc>::from_timestamp(served.created_at, 0)
        && let Ok(v) = HeaderValue::from_str(&t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
    {
        h.insert(LAST_MODIFIED, v);
    }
    r
}
