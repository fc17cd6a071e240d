//! `/v2/...` dispatcher: splits a path into repository name and endpoint.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::gate::{Need, authorize};
use super::{blobs, listings, manifests, trust, uploads};
use crate::app::AppState;
use crate::auth::Action;
use crate::server_names::RequestName;
use crate::services::RegistryError;
use crate::wire::WireError;

/// The endpoint a `/v2/` path names. Borrowed slices of the path.
#[derive(Debug, PartialEq, Eq)]
pub enum V2Route<'a> {
    Ping,
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    UploadStart(&'a str),
    Upload(&'a str, &'a str),
    Referrers(&'a str, &'a str),
    Trust(&'a str, &'a str),
    TrustChangefeed,
    Unknown,
}

pub fn parse(tail: &str) -> V2Route<'_> {
    if tail.is_empty() {
        return V2Route::Ping;
    }
    if tail == "_catalog" {
        return V2Route::Catalog;
    }
    if tail == "_trust/changefeed" {
        return V2Route::TrustChangefeed;
    }
    // Trust first: a GUN is `host[:port]/name` and the rest is notary's own layout.
    if let Some((gun, rest)) = tail.split_once("/_trust/") {
        return V2Route::Trust(gun, rest);
    }
    if let Some(name) = tail.strip_suffix("/tags/list") {
        return V2Route::Tags(name);
    }
    if let Some((name, reference)) = tail.rsplit_once("/manifests/") {
        return V2Route::Manifest(name, reference);
    }
    if let Some(name) = tail
        .strip_suffix("/blobs/uploads/")
        .or_else(|| tail.strip_suffix("/blobs/uploads"))
    {
        return V2Route::UploadStart(name);
    }
    if let Some((name, id)) = tail.rsplit_once("/blobs/uploads/") {
        return V2Route::Upload(name, id);
    }
    if let Some((name, digest)) = tail.rsplit_once("/blobs/") {
        return V2Route::Blob(name, digest);
    }
    if let Some((name, digest)) = tail.rsplit_once("/referrers/") {
        return V2Route::Referrers(name, digest);
    }
    V2Route::Unknown
}

/// A low-cardinality label for metrics.
pub fn route_kind(path: &str) -> &'static str {
    let Some(tail) = path.strip_prefix("/v2").map(|t| t.trim_start_matches('/')) else {
        return match path {
            "/token" => "token",
            "/metrics" => "metrics",
            _ => "other",
        };
    };
    match parse(tail) {
        V2Route::Ping => "ping",
        V2Route::Catalog => "catalog",
        V2Route::Tags(_) => "tags",
        V2Route::Manifest(..) => "manifests",
        V2Route::Blob(..) => "blobs",
        V2Route::UploadStart(_) | V2Route::Upload(..) => "uploads",
        V2Route::Referrers(..) => "referrers",
        V2Route::Trust(..) | V2Route::TrustChangefeed => "trust",
        V2Route::Unknown => "other",
    }
}

/// An image repository name. Names that start with one of the server's own host names
/// are trust GUNs (`ServerNames::classify`) and never name an image repository.
fn checked_name<'a>(state: &AppState, name: &'a str) -> Result<&'a str, WireError> {
    match state.names.classify(name) {
        Some(RequestName::Image(name)) => {
            tracing::Span::current().record("repository", name);
            Ok(name)
        }
        _ => Err(RegistryError::NameInvalid(name.to_owned()).into()),
    }
}

fn not_found() -> WireError {
    WireError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
}

fn method_not_allowed() -> WireError {
    WireError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        "method not allowed on this endpoint",
    )
}

pub async fn dispatch(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    mut body: Body,
) -> Response {
    let path = uri.path();
    let tail = path.strip_prefix("/v2").unwrap_or("").trim_start_matches('/');
    let query = uri.query().unwrap_or("");
    let result = route(&state, &method, parse(tail), query, &headers, &mut body).await;
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            // Refused before the handler read the body (bad name, no token...): read what
            // the client is still sending so that it receives this error, not a reset.
            uploads::drain(std::mem::take(&mut body).into_data_stream()).await;
            e.into_response()
        }
    };
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    resp
}

async fn route(
    state: &AppState,
    method: &Method,
    route: V2Route<'_>,
    query: &str,
    headers: &HeaderMap,
    body: &mut Body,
) -> Result<Response, WireError> {
    let head = method == Method::HEAD;
    match route {
        V2Route::Ping => {
            authorize(state, headers, Need::AnyToken)?;
            Ok((StatusCode::OK, axum::Json(serde_json::json!({}))).into_response())
        }
        V2Route::Catalog if method == Method::GET => {
            let caller = authorize(state, headers, Need::Catalog)?;
            listings::catalog(state, &caller, query).await
        }
        V2Route::Tags(name) if method == Method::GET => {
            let name = checked_name(state, name)?;
            authorize(state, headers, Need::Repo(name, Action::Pull))?;
            listings::tags(state, name, query).await
        }
        V2Route::Referrers(name, digest) if method == Method::GET => {
            let name = checked_name(state, name)?;
            authorize(state, headers, Need::Repo(name, Action::Pull))?;
            listings::referrers(state, name, digest, query).await
        }
        V2Route::Manifest(name, reference) => {
            let name = checked_name(state, name)?;
            match *method {
                Method::GET | Method::HEAD => {
                    authorize(state, headers, Need::Repo(name, Action::Pull))?;
                    manifests::get(state, name, reference, headers, head).await
                }
                Method::PUT => {
                    authorize(state, headers, Need::Repo(name, Action::Push))?;
                    manifests::put(state, name, reference, headers, body).await
                }
                Method::DELETE => {
                    authorize(state, headers, Need::Repo(name, Action::Delete))?;
                    manifests::delete(state, name, reference).await
                }
                _ => Err(method_not_allowed()),
            }
        }
        V2Route::Blob(name, digest) => {
            let name = checked_name(state, name)?;
            match *method {
                Method::GET | Method::HEAD => {
                    authorize(state, headers, Need::Repo(name, Action::Pull))?;
                    blobs::get(state, name, digest, headers, head).await
                }
                Method::DELETE => {
                    authorize(state, headers, Need::Repo(name, Action::Delete))?;
                    blobs::delete(state, name, digest).await
                }
                _ => Err(method_not_allowed()),
            }
        }
        V2Route::UploadStart(name) if method == Method::POST => {
            let name = checked_name(state, name)?;
            let caller = authorize(state, headers, Need::Repo(name, Action::Push))?;
            uploads::start(state, &caller, name, query, body).await
        }
        V2Route::Upload(name, id) => {
            let name = checked_name(state, name)?;
            authorize(state, headers, Need::Repo(name, Action::Push))?;
            match *method {
                Method::GET => uploads::status(state, name, id).await,
                Method::PATCH => uploads::patch(state, name, id, headers, body).await,
                Method::PUT => uploads::finish(state, name, id, query, headers, body).await,
                Method::DELETE => uploads::cancel(state, name, id).await,
                _ => Err(method_not_allowed()),
            }
        }
        V2Route::Trust(gun, rest) => {
            Ok(trust::handle(state, method, gun, rest, query, headers, std::mem::take(body)).await)
        }
        V2Route::TrustChangefeed if method == Method::GET => {
            Ok(trust::global_changefeed(state, query, headers).await)
        }
        V2Route::Unknown => Err(not_found()),
        _ => Err(method_not_allowed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_at_the_last_endpoint_marker() {
        assert_eq!(parse(""), V2Route::Ping);
        assert_eq!(
            parse("a/b/c/d/e/f/g/h/i/manifests/v1"),
            V2Route::Manifest("a/b/c/d/e/f/g/h/i", "v1")
        );
        assert_eq!(
            parse("x/manifests/y/manifests/latest"),
            V2Route::Manifest("x/manifests/y", "latest")
        );
        assert_eq!(parse("a/blobs/uploads/"), V2Route::UploadStart("a"));
        assert_eq!(parse("a/blobs/uploads/abc"), V2Route::Upload("a", "abc"));
        assert_eq!(parse("a/blobs/sha256:00"), V2Route::Blob("a", "sha256:00"));
        assert_eq!(parse("a/tags/list"), V2Route::Tags("a"));
        assert_eq!(parse("_catalog"), V2Route::Catalog);
        assert_eq!(
            parse("localhost:5000/a/_trust/tuf/root.json"),
            V2Route::Trust("localhost:5000/a", "tuf/root.json")
        );
        assert_eq!(
            parse("a/referrers/sha256:00"),
            V2Route::Referrers("a", "sha256:00")
        );
        assert_eq!(parse("a/unknown"), V2Route::Unknown);
    }
}
