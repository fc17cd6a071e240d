//! Blob upload endpoints: start (with monolithic and mount variants), PATCH chunks,
//! status, PUT to finish, DELETE to cancel.

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::header::{CONTENT_LENGTH, LOCATION, RANGE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::RouteError;
use super::blobs::parse_digest;
use super::request::{drain, query_value};
use crate::app::AppState;
use crate::auth::{Action, Caller};
use crate::observe::InFlight;
use crate::server_names::RequestName;
use crate::services::RegistryError;
use crate::services::uploads::ChunkRange;
use crate::wire::WireError;

fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

/// `Range: 0-<last>` as distribution reports progress (0-0 for an empty upload).
fn progress(offset: u64) -> String {
    format!("0-{}", offset.saturating_sub(1))
}

fn accepted(name: &str, id: &str, offset: u64) -> Response {
    (
        StatusCode::ACCEPTED,
        [
            (LOCATION, upload_location(name, id)),
            (RANGE, progress(offset)),
            (
                "docker-upload-uuid".parse().expect("static header"),
                id.to_owned(),
            ),
            (CONTENT_LENGTH, "0".to_owned()),
        ],
    )
        .into_response()
}

fn created(name: &str, digest: &str) -> Response {
    (
        StatusCode::CREATED,
        [
            (LOCATION, format!("/v2/{name}/blobs/{digest}")),
            (
                "docker-content-digest".parse().expect("static header"),
                digest.to_owned(),
            ),
            (CONTENT_LENGTH, "0".to_owned()),
        ],
    )
        .into_response()
}

/// Adds what a client needs to resume after a refused chunk.
fn upload_error(e: RegistryError, name: &str, id: &str) -> WireError {
    let offset = match &e {
        RegistryError::RangeInvalid { offset } => Some(*offset),
        _ => None,
    };
    let mut w = WireError::from(e);
    if let Some(offset) = offset {
        w = w
            .with_header(RANGE, progress(offset))
            .with_header(LOCATION, upload_location(name, id))
            .with_header("docker-upload-uuid".parse().expect("static header"), id);
    }
    w
}

fn content_range(headers: &HeaderMap) -> Result<Option<ChunkRange>, WireError> {
    let Some(raw) = headers.get("content-range") else {
        return Ok(None);
    };
    let bad = || WireError::from(RouteError::ContentRangeInvalid);
    let s = raw.to_str().map_err(|_| bad())?;
    let s = s.trim().strip_prefix("bytes ").unwrap_or(s.trim());
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start = a.trim().parse().map_err(|_| bad())?;
    let end = b.trim().parse().map_err(|_| bad())?;
    Ok(Some(ChunkRange { start, end }))
}

pub async fn start(
    state: &AppState,
    caller: &Caller,
    name: &str,
    query: &str,
    body: &mut Body,
) -> Result<Response, WireError> {
    if let (Some(mount), Some(from)) = (query_value(query, "mount"), query_value(query, "from")) {
        let digest = parse_digest(&mount)?;
        // Mount only from a repository the caller may read; otherwise a normal upload.
        if matches!(state.names.classify(&from), Some(RequestName::Image(_)))
            && caller.may(&from, Action::Pull)
            && state.uploads.mount(name, &from, &digest).await?
        {
            return Ok(created(name, digest.as_str()));
        }
    }
    if let Some(d) = query_value(query, "digest") {
        let digest = parse_digest(&d)?;
        let _in_flight = InFlight::start(&state.metrics);
        let mut stream = std::mem::take(body).into_data_stream();
        let size = match state.uploads.upload_whole(name, &digest, &mut stream).await {
            Ok(size) => size,
            Err(e) => {
                drain(stream).await;
                return Err(e.into());
            }
        };
        state.metrics.bytes_in.fetch_add(size, Ordering::Relaxed);
        return Ok(created(name, digest.as_str()));
    }
    let session = state.uploads.start(name).await?;
    Ok(accepted(name, &session.id, 0))
}

pub async fn status(state: &AppState, name: &str, id: &str) -> Result<Response, WireError> {
    let s = state.uploads.status(name, id).await?;
    let mut resp = accepted(name, id, s.offset);
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}

pub async fn patch(
    state: &AppState,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: &mut Body,
) -> Result<Response, WireError> {
    let range = content_range(headers)?;
    let _in_flight = InFlight::start(&state.metrics);
    let mut stream = std::mem::take(body).into_data_stream();
    let result = match state.uploads.status(name, id).await {
        Ok(before) => state
            .uploads
            .append(name, id, range, &mut stream)
            .await
            .map(|s| (before.offset, s)),
        Err(e) => Err(e),
    };
    let (before, s) = match result {
        Ok(r) => r,
        Err(e) => {
            drain(stream).await;
            return Err(upload_error(e, name, id));
        }
    };
    state
        .metrics
        .bytes_in
        .fetch_add(s.offset.saturating_sub(before), Ordering::Relaxed);
    Ok(accepted(name, id, s.offset))
}

pub async fn finish(
    state: &AppState,
    name: &str,
    id: &str,
    query: &str,
    headers: &HeaderMap,
    body: &mut Body,
) -> Result<Response, WireError> {
    let d = query_value(query, "digest")
        .ok_or_else(|| WireError::from(RegistryError::DigestInvalid("PUT needs ?digest=<digest>".into())))?;
    let digest = parse_digest(&d)?;
    let range = content_range(headers)?;
    let _in_flight = InFlight::start(&state.metrics);
    let mut stream = std::mem::take(body).into_data_stream();
    if let Err(e) = state
        .uploads
        .complete(name, id, &digest, range, &mut stream)
        .await
    {
        drain(stream).await;
        return Err(upload_error(e, name, id));
    }
    Ok(created(name, digest.as_str()))
}

pub async fn cancel(state: &AppState, name: &str, id: &str) -> Result<Response, WireError> {
    state.uploads.cancel(name, id).await?;
    Ok((StatusCode::NO_CONTENT, [(CONTENT_LENGTH, "0")]).into_response())
}
