//! Catalog, tag list (with `n`/`last` pagination and `Link`) and the referrers API.

use axum::http::header::{CONTENT_TYPE, LINK};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::blobs::parse_digest;
use super::request::query_value;
use crate::app::AppState;
use crate::auth::Caller;
use crate::services::RegistryError;
use crate::services::manifests::Page;
use crate::wire::WireError;

fn pagination(query: &str) -> Result<(Option<u32>, Option<String>), WireError> {
    let n = query_value(query, "n")
        .map(|n| {
            n.parse::<u32>()
                .map_err(|_| RegistryError::PaginationInvalid(format!("n={n:?} is not a number")))
        })
        .transpose()?;
    Ok((n, query_value(query, "last").filter(|l| !l.is_empty())))
}

fn page_response(path: &str, body: Value, page: &Page, n: Option<u32>) -> Response {
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    if let (true, Some(n), Some(last)) = (page.more, n, page.items.last())
        && let Ok(v) = HeaderValue::from_str(&format!("<{path}?n={n}&last={last}>; rel=\"next\""))
    {
        resp.headers_mut().insert(LINK, v);
    }
    resp
}

pub async fn catalog(state: &AppState, caller: &Caller, query: &str) -> Result<Response, WireError> {
    let (n, last) = pagination(query)?;
    let grants = state.identity.grants_of_name(&caller.principal).await?;
    let page = state
        .manifests
        .catalog("", last.as_deref(), n, |repo| grants.may_read(repo))
        .await?;
    let body = json!({ "repositories": page.items });
    Ok(page_response("/v2/_catalog", body, &page, n))
}

pub async fn tags(state: &AppState, name: &str, query: &str) -> Result<Response, WireError> {
    let (n, last) = pagination(query)?;
    let page = state.manifests.tags(name, last.as_deref(), n).await?;
    let body = json!({ "name": name, "tags": page.items });
    Ok(page_response(&format!("/v2/{name}/tags/list"), body, &page, n))
}

pub async fn referrers(
    state: &AppState,
    name: &str,
    digest: &str,
    query: &str,
) -> Result<Response, WireError> {
    let subject = parse_digest(digest)?;
    let filter = query_value(query, "artifactType").filter(|t| !t.is_empty());
    let found = state
        .manifests
        .referrers(name, &subject, filter.as_deref())
        .await?;
    let manifests: Vec<Value> = found
        .into_iter()
        .map(|r| {
            let mut d = json!({ "mediaType": r.media_type, "digest": r.digest.as_str(), "size": r.size });
            if let Some(t) = r.artifact_type {
                d["artifactType"] = json!(t);
            }
            if let Some(a) = r.annotations.and_then(|a| serde_json::from_str::<Value>(&a).ok()) {
                d["annotations"] = a;
            }
            d
        })
        .collect();
    let body = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    let mut resp = (
        StatusCode::OK,
        [(CONTENT_TYPE, "application/vnd.oci.image.index.v1+json")],
        body.to_string(),
    )
        .into_response();
    if filter.is_some() {
        resp.headers_mut()
            .insert("oci-filters-applied", HeaderValue::from_static("artifactType"));
    }
    Ok(resp)
}
