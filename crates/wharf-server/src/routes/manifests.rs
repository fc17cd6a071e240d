//! Manifest GET/HEAD/PUT/DELETE by tag or digest.

use axum::body::Body;
use axum::http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, ETAG, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::auth::Caller;
use crate::names::{Reference, ReferenceError};
use crate::services::RegistryError;
use crate::services::access::Actor;
use crate::services::manifests::ManifestService;
use crate::wire::WireError;

fn parse_reference(s: &str) -> Result<Reference, WireError> {
    Reference::parse(s).map_err(|e| {
        match e {
            ReferenceError::Tag => RegistryError::TagInvalid(s.to_owned()),
            ReferenceError::Digest(d) => RegistryError::DigestInvalid(format!("{s:?}: {d}")),
        }
        .into()
    })
}

fn accepted_types(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

pub async fn get(
    state: &AppState,
    caller: &Caller,
    actor: &Actor,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, WireError> {
    let reference = parse_reference(reference)?;
    let record = state.manifests.get(name, &reference).await?;
    state
        .signature_policy
        .admit(caller, actor, name, &reference, &record)
        .await?;
    if !ManifestService::acceptable(&record, &accepted_types(headers)) {
        return Err(RegistryError::ManifestUnknown(format!(
            "{name}: the manifest is a {}, which the Accept header does not allow",
            record.media_type
        ))
        .into());
    }
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, &record.media_type)
        .header(CONTENT_LENGTH, record.content.len())
        .header("docker-content-digest", record.digest.as_str())
        .header(ETAG, format!("\"{}\"", record.digest));
    let body = if head {
        Body::empty()
    } else {
        Body::from(record.content)
    };
    resp.body(body).map_err(|_| WireError::internal())
}

pub async fn put(
    state: &AppState,
    actor: &Actor,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    body: &mut Body,
) -> Result<Response, WireError> {
    let reference = parse_reference(reference)?;
    let limit = state.manifests.max_bytes();
    let too_large = || WireError::from(RegistryError::ManifestTooLarge { limit });
    let announced = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let bytes =
        super::request::read_within(std::mem::take(body), usize::try_from(limit).unwrap_or(usize::MAX))
            .await
            .ok_or_else(too_large)?;
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let stored = state
        .manifests
        .put(actor, name, &reference, content_type, bytes)
        .await?;
    let mut resp = (
        StatusCode::CREATED,
        [
            (LOCATION, format!("/v2/{name}/manifests/{}", stored.digest)),
            (
                "docker-content-digest".parse().expect("static header"),
                stored.digest.to_string(),
            ),
            (CONTENT_LENGTH, "0".to_owned()),
        ],
    )
        .into_response();
    if let Some(subject) = stored.subject
        && let Ok(v) = subject.as_str().parse()
    {
        resp.headers_mut().insert("oci-subject", v);
    }
    Ok(resp)
}

pub async fn delete(
    state: &AppState,
    actor: &Actor,
    name: &str,
    reference: &str,
) -> Result<Response, WireError> {
    let reference = parse_reference(reference)?;
    state.manifests.delete(actor, name, &reference).await?;
    Ok((StatusCode::ACCEPTED, [(CONTENT_LENGTH, "0")]).into_response())
}
