//! `/v2/...` dispatcher: splits a path into repository name and endpoint.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::RouteError;
use super::gate::{Need, authorize};
use super::trust::TrustOp;
use super::{Peer, blobs, listings, manifests, peer_ip, request, trust, uploads};
use crate::app::AppState;
use crate::auth::{Action, Caller};
use crate::server_names::RequestName;
use crate::services::RegistryError;
use crate::services::access::Actor;
use crate::services::trust::TrustError;
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
    RouteError::NoSuchEndpoint.into()
}

fn method_not_allowed() -> WireError {
    RouteError::MethodNotAllowed.into()
}

/// What an upload session endpoint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadOp {
    Status,
    Patch,
    Finish,
    Cancel,
}

/// One `/v2/` endpoint with its method resolved and its names checked. Each endpoint
/// declares the access it needs (`need`): `dispatch` asks the gate before any handler
/// runs, and handlers that act for someone receive the verified `Caller`.
#[derive(Debug, PartialEq, Eq)]
pub enum Endpoint<'a> {
    Ping,
    Catalog,
    Tags(&'a str),
    Referrers(&'a str, &'a str),
    ManifestRead {
        name: &'a str,
        reference: &'a str,
        head: bool,
    },
    ManifestPut {
        name: &'a str,
        reference: &'a str,
    },
    ManifestDelete {
        name: &'a str,
        reference: &'a str,
    },
    BlobRead {
        name: &'a str,
        digest: &'a str,
        head: bool,
    },
    BlobDelete {
        name: &'a str,
        digest: &'a str,
    },
    UploadStart(&'a str),
    Upload {
        name: &'a str,
        id: &'a str,
        op: UploadOp,
    },
    /// A trust endpoint on a GUN of this server; `repository` is the GUN's reading.
    Trust {
        gun: &'a str,
        repository: &'a str,
        op: TrustOp<'a>,
    },
    TrustChangefeed,
}

impl Endpoint<'_> {
    /// The access this endpoint needs: the one table of the registry and trust API.
    pub fn need(&self) -> Need<'_> {
        match *self {
            Endpoint::Ping => Need::AnyToken,
            // The catalog and the global changefeed are filtered by the caller's grants.
            Endpoint::Catalog | Endpoint::TrustChangefeed => Need::Catalog,
            Endpoint::Tags(name)
            | Endpoint::Referrers(name, _)
            | Endpoint::ManifestRead { name, .. }
            | Endpoint::BlobRead { name, .. } => Need::Repo(name, Action::Pull),
            Endpoint::ManifestPut { name, .. }
            | Endpoint::UploadStart(name)
            | Endpoint::Upload { name, .. } => Need::Repo(name, Action::Push),
            Endpoint::ManifestDelete { name, .. } | Endpoint::BlobDelete { name, .. } => {
                Need::Repo(name, Action::Delete)
            }
            Endpoint::Trust { gun, op, .. } => Need::Trust(gun, op.access()),
        }
    }
}

/// Either refusal a `/v2/` request can meet before or in its handler: the registry's
/// JSON errors (and the gate's 401), or notary's trust errors.
pub enum Refusal {
    Wire(WireError),
    Trust(TrustError),
}

impl From<WireError> for Refusal {
    fn from(e: WireError) -> Self {
        Refusal::Wire(e)
    }
}

impl From<TrustError> for Refusal {
    fn from(e: TrustError) -> Self {
        Refusal::Trust(e)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Wire(e) => e.into_response(),
            Refusal::Trust(e) => e.into_response(),
        }
    }
}

/// The endpoint `method` + `route` name, with image names checked and a GUN read by
/// `ServerNames` (refused when its host is not one of ours).
pub fn resolve<'a>(state: &AppState, method: &Method, route: V2Route<'a>) -> Result<Endpoint<'a>, Refusal> {
    let head = method == Method::HEAD;
    let read = method == Method::GET || head;
    Ok(match route {
        V2Route::Ping => Endpoint::Ping,
        V2Route::Catalog if method == Method::GET => Endpoint::Catalog,
        V2Route::TrustChangefeed if method == Method::GET => Endpoint::TrustChangefeed,
        V2Route::Tags(name) if method == Method::GET => Endpoint::Tags(checked_name(state, name)?),
        V2Route::Referrers(name, digest) if method == Method::GET => {
            Endpoint::Referrers(checked_name(state, name)?, digest)
        }
        V2Route::Manifest(name, reference) => {
            let name = checked_name(state, name)?;
            match *method {
                _ if read => Endpoint::ManifestRead {
                    name,
                    reference,
                    head,
                },
                Method::PUT => Endpoint::ManifestPut { name, reference },
                Method::DELETE => Endpoint::ManifestDelete { name, reference },
                _ => return Err(method_not_allowed().into()),
            }
        }
        V2Route::Blob(name, digest) => {
            let name = checked_name(state, name)?;
            match *method {
                _ if read => Endpoint::BlobRead { name, digest, head },
                Method::DELETE => Endpoint::BlobDelete { name, digest },
                _ => return Err(method_not_allowed().into()),
            }
        }
        V2Route::UploadStart(name) if method == Method::POST => {
            Endpoint::UploadStart(checked_name(state, name)?)
        }
        V2Route::Upload(name, id) => {
            let name = checked_name(state, name)?;
            let op = match *method {
                Method::GET => UploadOp::Status,
                Method::PATCH => UploadOp::Patch,
                Method::PUT => UploadOp::Finish,
                Method::DELETE => UploadOp::Cancel,
                _ => return Err(method_not_allowed().into()),
            };
            Endpoint::Upload { name, id, op }
        }
        V2Route::Trust(gun, rest) => {
            let repository = state.trust.repository_of(gun)?;
            tracing::Span::current().record("repository", repository);
            let op = TrustOp::parse(method, rest).ok_or(TrustError::NotFound)?;
            Endpoint::Trust { gun, repository, op }
        }
        V2Route::Unknown => return Err(not_found().into()),
        _ => return Err(method_not_allowed().into()),
    })
}

pub async fn dispatch(
    State(state): State<AppState>,
    peer: Peer,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    mut body: Body,
) -> Response {
    let path = uri.path();
    let tail = path.strip_prefix("/v2").unwrap_or("").trim_start_matches('/');
    let query = uri.query().unwrap_or("");
    let result = match resolve(&state, &method, parse(tail)) {
        Ok(endpoint) => match authorize(&state, &headers, endpoint.need()) {
            Ok(caller) => {
                let actor = Actor {
                    name: caller.principal.clone(),
                    from: peer_ip(&peer),
                };
                handle(&state, &caller, &actor, endpoint, query, &headers, &mut body).await
            }
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e),
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            // Refused before the handler read the body (bad name, no token...): read what
            // the client is still sending so that it receives this error, not a reset.
            request::drain(std::mem::take(&mut body).into_data_stream()).await;
            e.into_response()
        }
    };
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    resp
}

/// Run an authorised endpoint. There is no authorisation here: `caller` is the gate's
/// verdict for exactly `endpoint.need()`.
#[allow(clippy::too_many_arguments)]
async fn handle(
    state: &AppState,
    caller: &Caller,
    actor: &Actor,
    endpoint: Endpoint<'_>,
    query: &str,
    headers: &HeaderMap,
    body: &mut Body,
) -> Result<Response, Refusal> {
    Ok(match endpoint {
        Endpoint::Ping => (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response(),
        Endpoint::Catalog => listings::catalog(state, caller, query).await?,
        Endpoint::Tags(name) => listings::tags(state, name, query).await?,
        Endpoint::Referrers(name, digest) => listings::referrers(state, name, digest, query).await?,
        Endpoint::ManifestRead {
            name,
            reference,
            head,
        } => manifests::get(state, caller, actor, name, reference, headers, head).await?,
        Endpoint::ManifestPut { name, reference } => {
            manifests::put(state, actor, name, reference, headers, body).await?
        }
        Endpoint::ManifestDelete { name, reference } => {
            manifests::delete(state, actor, name, reference).await?
        }
        Endpoint::BlobRead { name, digest, head } => blobs::get(state, name, digest, headers, head).await?,
        Endpoint::BlobDelete { name, digest } => blobs::delete(state, actor, name, digest).await?,
        Endpoint::UploadStart(name) => uploads::start(state, caller, name, query, body).await?,
        Endpoint::Upload { name, id, op } => match op {
            UploadOp::Status => uploads::status(state, name, id).await?,
            UploadOp::Patch => uploads::patch(state, name, id, headers, body).await?,
            UploadOp::Finish => uploads::finish(state, name, id, query, headers, body).await?,
            UploadOp::Cancel => uploads::cancel(state, name, id).await?,
        },
        Endpoint::Trust { gun, repository, op } => {
            trust::handle(
                state,
                actor,
                gun,
                repository,
                op,
                query,
                headers,
                std::mem::take(body),
            )
            .await?
        }
        Endpoint::TrustChangefeed => trust::global_changefeed(state, caller, query).await?,
    })
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
