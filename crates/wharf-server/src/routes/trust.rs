//! Notary v1 trust endpoints under `/v2/<gun>/_trust/…` (spec §1.2): which endpoint and
//! the access it declares (`TrustOp`; the `/v2/` dispatcher asks the gate), then the
//! `TrustService` call and notary's answer format.

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LAST_MODIFIED};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use wharf_tuf::UpdateError;

use super::gate::TrustAccess;
use super::v2::Refusal;
use crate::app::AppState;
use crate::auth::Caller;
use crate::services::access::Actor;
use crate::services::trust::{CacheKind, MAX_UPDATE_BYTES, Served, TrustError};
use crate::wire::WireError;

/// A trust endpoint under `/v2/<gun>/_trust/` (spec §1.2), with the access notary's
/// table gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustOp<'a> {
    /// `POST tuf/`: publish an update.
    Update,
    /// `DELETE tuf/`: delete the repository's trust data.
    Delete,
    /// `GET changefeed`.
    Changefeed,
    /// `GET tuf/{timestamp,snapshot}.key`: the server key (created on first request).
    GetKey(&'a str),
    /// `POST tuf/{timestamp,snapshot}.key`: a pending key for rotation.
    RotateKey(&'a str),
    /// `GET tuf/<role>[.<version>|.<checksum>].json`.
    Metadata(&'a str),
}

impl<'a> TrustOp<'a> {
    pub fn parse(method: &Method, rest: &'a str) -> Option<Self> {
        Some(match (method.clone(), rest) {
            (Method::POST, "tuf/" | "tuf") => TrustOp::Update,
            (Method::DELETE, "tuf/" | "tuf") => TrustOp::Delete,
            (Method::GET, "changefeed") => TrustOp::Changefeed,
            (Method::GET, "tuf/timestamp.key" | "tuf/snapshot.key") => TrustOp::GetKey(key_role(rest)),
            (Method::POST, "tuf/timestamp.key" | "tuf/snapshot.key") => TrustOp::RotateKey(key_role(rest)),
            (Method::GET, file) => TrustOp::Metadata(file.strip_prefix("tuf/")?),
            _ => return None,
        })
    }

    /// Metadata reads and the changefeed need pull; updates and the key a client signs
    /// against need push and pull; deleting and rotating server keys the owner-level right.
    pub fn access(self) -> TrustAccess {
        match self {
            TrustOp::Changefeed | TrustOp::Metadata(_) => TrustAccess::Read,
            TrustOp::Update | TrustOp::GetKey(_) => TrustAccess::Write,
            TrustOp::Delete | TrustOp::RotateKey(_) => TrustAccess::Owner,
        }
    }
}

/// Run an authorised trust endpoint (`actor` passed the gate for `op.access()` on `gun`).
#[allow(clippy::too_many_arguments)]
pub async fn handle(
    state: &AppState,
    actor: &Actor,
    gun: &str,
    repository: &str,
    op: TrustOp<'_>,
    query: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, TrustError> {
    let trust = &state.trust;
    match op {
        TrustOp::Update => {
            let content_type = headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let bytes = super::request::read_within(body, MAX_UPDATE_BYTES)
                .await
                .ok_or_else(|| {
                    TrustError::Update(UpdateError::Validation(format!(
                        "update is larger than the server's {} MiB limit",
                        MAX_UPDATE_BYTES >> 20
                    )))
                })?;
            trust
                .update(repository, gun, actor, content_type, &bytes)
                .await
                .map(|()| StatusCode::OK.into_response())
        }
        TrustOp::Delete => trust
            .delete(repository, gun, actor)
            .await
            .map(|_| StatusCode::OK.into_response()),
        TrustOp::Changefeed => trust.changefeed(Some(repository), query).await.map(json),
        TrustOp::GetKey(role) => trust.get_key(repository, role).await.map(json),
        TrustOp::RotateKey(role) => trust.rotate_key(repository, role, actor).await.map(json),
        TrustOp::Metadata(name) => trust.get_metadata(repository, gun, name).await.map(metadata),
    }
}

/// `GET /v2/_trust/changefeed`: changes of the repositories the caller may read.
pub async fn global_changefeed(state: &AppState, caller: &Caller, query: &str) -> Result<Response, Refusal> {
    let grants = state
        .identity
        .grants_of_name(&caller.principal)
        .await
        .map_err(WireError::from)?;
    Ok(state
        .trust
        .readable_changefeed(query, |repository| grants.may_read(repository))
        .await
        .map(json)?)
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
