//! The one place where errors become HTTP: the distribution-spec JSON error body
//! `{"errors":[{"code","message","detail"}]}` with the matching status.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use wharf_tuf::UpdateError;
use wharf_tuf::canonical::go_json_string;

use crate::routes::RouteError;
use crate::services::RegistryError;
use crate::services::access::AccessError;
use crate::services::anonymous_pull::AnonymousPullError;
use crate::services::gc::GcError;
use crate::services::identity::IdentityError;
use crate::services::quotas::QuotaError;
use crate::services::retention::RetentionError;
use crate::services::signature_policy::SignaturePolicyError;
use crate::services::trust::TrustError;

#[derive(Debug)]
pub struct WireError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub detail: Option<Value>,
    pub headers: Vec<(HeaderName, String)>,
}

impl WireError {
    // Only this module shapes errors; everything else hands it a typed error.
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            detail: None,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            "internal server error; see the server log",
        )
    }
}

/// The routes' own refusals.
impl From<RouteError> for WireError {
    fn from(e: RouteError) -> Self {
        use RouteError as E;
        let message = e.to_string();
        match e {
            E::NoSuchEndpoint => Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message),
            E::MethodNotAllowed => Self::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", message),
            E::BadRequest(_) => Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message),
            E::TokenRequestInvalid(_) => Self::new(StatusCode::BAD_REQUEST, "UNSUPPORTED", message),
            E::Unauthorized { challenge, .. } => {
                let e = Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
                match challenge {
                    // The Bearer challenge tells clients which token to fetch.
                    Some(c) => e.with_header(axum::http::header::WWW_AUTHENTICATE, c),
                    None => e,
                }
            }
            E::ContentRangeInvalid => {
                Self::new(StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID", message)
            }
            E::RangeNotSatisfiable { size, .. } => {
                Self::new(StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID", message)
                    .with_header(axum::http::header::CONTENT_RANGE, format!("bytes */{size}"))
            }
            E::Denied(_) => Self::new(StatusCode::FORBIDDEN, "DENIED", message),
            E::FieldRequired(_) => Self::new(StatusCode::BAD_REQUEST, "FIELD_REQUIRED", message),
            E::RepositoryNotVisible(_) => Self::new(StatusCode::NOT_FOUND, "NAME_UNKNOWN", message),
            E::FormTooLarge => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID", message),
        }
    }
}

impl IntoResponse for WireError {
    fn into_response(self) -> Response {
        let mut entry = json!({ "code": self.code, "message": self.message });
        if let Some(d) = self.detail {
            entry["detail"] = d;
        }
        let mut resp = (self.status, axum::Json(json!({ "errors": [entry] }))).into_response();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().append(name, v);
            }
        }
        resp
    }
}

impl From<RegistryError> for WireError {
    fn from(e: RegistryError) -> Self {
        use RegistryError as E;
        let (status, code) = match &e {
            E::NameInvalid(_) => (StatusCode::BAD_REQUEST, "NAME_INVALID"),
            E::NameUnknown(_) => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
            E::TagInvalid(_) => (StatusCode::BAD_REQUEST, "TAG_INVALID"),
            E::DigestInvalid(_) => (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
            E::BlobUnknown(_) => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
            E::UploadUnknown => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
            E::UploadInvalid(_) => (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID"),
            E::RangeInvalid { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID"),
            E::SizeInvalid(_) => (StatusCode::BAD_REQUEST, "SIZE_INVALID"),
            E::ManifestInvalid(_) => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
            E::ManifestTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "MANIFEST_INVALID"),
            E::ManifestUnknown(_) => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
            E::ManifestBlobUnknown(_) => (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"),
            E::PaginationInvalid(_) => (StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID"),
            E::Unsupported(_) => (StatusCode::BAD_REQUEST, "UNSUPPORTED"),
            // The distribution spec's code for "not allowed": docker prints
            // `denied: <message>` and stops the push.
            E::QuotaExceeded(_) => (StatusCode::FORBIDDEN, "DENIED"),
            E::Denied(_) => (StatusCode::FORBIDDEN, "DENIED"),
            E::Internal(err) => {
                tracing::error!(error = %err, "registry service failure");
                return Self::internal();
            }
            E::Store(err) => {
                tracing::error!(error = %err, "storage failure");
                return Self::internal();
            }
        };
        let mut w = Self::new(status, code, e.to_string());
        match &e {
            E::BlobUnknown(d) | E::ManifestBlobUnknown(d) => w.detail = Some(json!({ "digest": d.as_str() })),
            E::ManifestTooLarge { limit } => w.detail = Some(json!({ "limit": limit })),
            _ => {}
        }
        w
    }
}

/// Token endpoint and signing-key failures (the body format docker prints from).
impl From<IdentityError> for WireError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::InvalidCredentials | IdentityError::InvalidRefreshToken => {
                Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", e.to_string())
            }
            IdentityError::LockedOut(secs) => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS", e.to_string())
                    .with_header(axum::http::header::RETRY_AFTER, secs.to_string())
            }
            IdentityError::KeyRotatedConcurrently => {
                Self::new(StatusCode::CONFLICT, "CONFLICT", e.to_string())
            }
            IdentityError::WeakPassword => {
                Self::new(StatusCode::BAD_REQUEST, "PASSWORD_INVALID", e.to_string())
            }
            IdentityError::NotAUser(_) => Self::new(StatusCode::BAD_REQUEST, "NOT_A_USER", e.to_string()),
            other => {
                tracing::error!(error = %other, "identity failure");
                Self::internal()
            }
        }
    }
}

/// notary-server's errcode body, byte for byte as notary writes it (clients read only the
/// first KiB and match `detail` shapes exactly, so it is built by hand, not via `Value`).
fn notary_body(status: StatusCode, code: &str, message: &str, detail_json: Option<String>) -> Response {
    notary_response(status, notary_envelope(code, message, detail_json.as_deref()))
}

/// The errcode envelope as notary-server writes it: one element, Go's string escaping
/// (`<`, `>`, `&` as `\u003c`…), `detail` only when notary sends one, a final newline.
fn notary_envelope(code: &str, message: &str, detail_json: Option<&str>) -> Vec<u8> {
    let mut body = format!(
        r#"{{"errors":[{{"code":{},"message":{}"#,
        go_json_string(code),
        go_json_string(message)
    );
    if let Some(d) = detail_json {
        body.push_str(",\"detail\":");
        body.push_str(d);
    }
    body.push_str("}]}\n");
    body.into_bytes()
}

/// notary's answer to a refused update: status and body, byte for byte (spec §1.8). The
/// TUF crate only says what went wrong; the codes, fixed messages and typed `detail`
/// shapes (which docker and notary deserialise to print their message) live here.
pub fn notary_update(e: &UpdateError) -> (StatusCode, Vec<u8>) {
    let (status, code, message) = match e {
        UpdateError::NoFilename => (
            StatusCode::BAD_REQUEST,
            "NO_FILENAME",
            "No file/role name provided.",
        ),
        UpdateError::InvalidRole(_) => (
            StatusCode::BAD_REQUEST,
            "INVALID_ROLE",
            "The role you are attempting to operate on is invalid.",
        ),
        UpdateError::MalformedJson(_) => (
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
            "JSON sent by the client could not be parsed by the server",
        ),
        UpdateError::Version { .. } => (
            StatusCode::BAD_REQUEST,
            "VERSION",
            "A newer version of metadata is already available.",
        ),
        UpdateError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "unknown error"),
        UpdateError::Validation(_)
        | UpdateError::BadHierarchy { .. }
        | UpdateError::BadRoot(_)
        | UpdateError::BadTargets(_)
        | UpdateError::BadSnapshot(_)
        | UpdateError::InvalidUpdate(_) => (
            StatusCode::BAD_REQUEST,
            "INVALID_UPDATE",
            "Update sent by the client is invalid.",
        ),
    };
    let typed =
        |name: &str, msg: &str| format!(r#"{{"Name":"{name}","Error":{{"Msg":{}}}}}"#, go_json_string(msg));
    let detail = match e {
        UpdateError::InvalidRole(name) => Some(go_json_string(name)),
        UpdateError::Version { .. } => Some("{}".to_owned()),
        UpdateError::Validation(m) => Some(typed("ErrValidation", m)),
        UpdateError::BadRoot(m) => Some(typed("ErrBadRoot", m)),
        UpdateError::BadTargets(m) => Some(typed("ErrBadTargets", m)),
        UpdateError::BadSnapshot(m) => Some(typed("ErrBadSnapshot", m)),
        UpdateError::BadHierarchy { missing, msg } => Some(format!(
            r#"{{"Name":"ErrBadHierarchy","Error":{{"Missing":{},"Msg":{}}}}}"#,
            go_json_string(missing),
            go_json_string(msg)
        )),
        UpdateError::NoFilename
        | UpdateError::MalformedJson(_)
        | UpdateError::InvalidUpdate(_)
        | UpdateError::Internal(_) => None,
    };
    (status, notary_envelope(code, message, detail.as_deref()))
}

fn notary_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// Trust (Notary v1) failures in notary's wire format, so docker and notary print the
/// messages their users know (spec §1.8, §1.9).
impl IntoResponse for TrustError {
    fn into_response(self) -> Response {
        match self {
            TrustError::Update(u) => {
                let (status, body) = notary_update(&u);
                notary_response(status, body)
            }
            TrustError::NotFound => notary_body(
                StatusCode::NOT_FOUND,
                "METADATA_NOT_FOUND",
                "You have requested metadata that does not exist.",
                None,
            ),
            TrustError::MalformedUpload(m) => {
                tracing::debug!(reason = %m, "malformed trust upload");
                notary_body(
                    StatusCode::BAD_REQUEST,
                    "MALFORMED_UPLOAD",
                    "The body of your request is malformed.",
                    None,
                )
            }
            TrustError::InvalidGun(gun) => notary_body(
                StatusCode::BAD_REQUEST,
                "INVALID_GUN",
                "The server does not support actions on images of this name.",
                Some(go_json_string(&format!(
                    "GUN must be <registry host>/<repository>, got {gun}"
                ))),
            ),
            TrustError::InvalidParameters(m) => notary_body(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETERS",
                "The parameters provided are not valid.",
                Some(go_json_string(&m)),
            ),
            TrustError::Updating(e) => {
                tracing::error!(error = %e, "storing trust update failed");
                notary_body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UPDATING",
                    "An error has occurred while updating the TUF repository.",
                    None,
                )
            }
            TrustError::Store(e) => {
                tracing::error!(error = %e, "trust storage failure");
                notary_body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "unknown error",
                    None,
                )
            }
            // A typed validation error, so docker and notary print the sentence itself.
            TrustError::Outdated { .. } => {
                let e = wharf_tuf::UpdateError::Validation(self.to_string());
                let (status, body) = notary_update(&e);
                notary_response(status, body)
            }
            // Only the admin API and the portal change the policy; they map through WireError.
            TrustError::ConfirmationRequired => {
                WireError::from(TrustError::ConfirmationRequired).into_response()
            }
            TrustError::Internal(m) => {
                tracing::error!(error = %m, "trust service failure");
                notary_body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "unknown error",
                    None,
                )
            }
        }
    }
}

/// Admin API failures: the same JSON error envelope as the registry API.
impl From<TrustError> for WireError {
    fn from(e: TrustError) -> Self {
        match e {
            TrustError::InvalidGun(_) | TrustError::NotFound => {
                Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", e.to_string())
            }
            TrustError::ConfirmationRequired => {
                Self::new(StatusCode::CONFLICT, "CONFIRMATION_REQUIRED", e.to_string())
            }
            other => {
                tracing::error!(error = %other, "trust administration failed");
                Self::internal()
            }
        }
    }
}

/// A store failure a route met directly (portal sessions): logged, never shown.
impl From<wharf_store::StoreError> for WireError {
    fn from(e: wharf_store::StoreError) -> Self {
        tracing::error!(error = %e, "storage failure");
        Self::internal()
    }
}

impl From<AnonymousPullError> for WireError {
    fn from(e: AnonymousPullError) -> Self {
        match e {
            AnonymousPullError::MalformedScope(_) => {
                Self::new(StatusCode::BAD_REQUEST, "SCOPE_INVALID", e.to_string())
            }
            AnonymousPullError::Store(err) => {
                tracing::error!(error = %err, "anonymous pull storage failure");
                Self::internal()
            }
        }
    }
}

/// The signature policy: a refused manifest read is the distribution spec's `DENIED`
/// (docker, containerd and skopeo print its message); policy edits are the admin API's.
impl From<SignaturePolicyError> for WireError {
    fn from(e: SignaturePolicyError) -> Self {
        use SignaturePolicyError as E;
        match &e {
            E::NotSigned(_) => Self::new(StatusCode::FORBIDDEN, "DENIED", e.to_string()),
            E::Invalid(_) => Self::new(StatusCode::BAD_REQUEST, "POLICY_INVALID", e.to_string()),
            E::VersionConflict { .. } => Self::new(StatusCode::CONFLICT, "CONFLICT", e.to_string()),
            E::Store(_) | E::Internal(_) => {
                tracing::error!(error = %e, "signature policy failure");
                Self::internal()
            }
        }
    }
}

/// Quota edits (the admin API); a refused push is `RegistryError::QuotaExceeded`.
impl From<QuotaError> for WireError {
    fn from(e: QuotaError) -> Self {
        use QuotaError as E;
        match &e {
            E::Malformed(_) | E::Scope { .. } | E::DuplicateScope { .. } | E::MaxBytes { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "QUOTA_INVALID", e.to_string())
            }
            E::VersionConflict { .. } => Self::new(StatusCode::CONFLICT, "CONFLICT", e.to_string()),
            E::Store(_) | E::Internal(_) => {
                tracing::error!(error = %e, "quota failure");
                Self::internal()
            }
        }
    }
}

/// Admin API failures for identity and access: exact messages, HTTP status by kind.
impl From<AccessError> for WireError {
    fn from(e: AccessError) -> Self {
        use AccessError as E;
        let (status, code) = match &e {
            E::InvalidName(_) => (StatusCode::BAD_REQUEST, "NAME_INVALID"),
            E::UnknownRole(_) => (StatusCode::BAD_REQUEST, "UNKNOWN_ROLE"),
            E::MalformedScope(_) => (StatusCode::BAD_REQUEST, "SCOPE_INVALID"),
            E::MalformedTokenScope(_) | E::EmptyTokenScope => (StatusCode::BAD_REQUEST, "SCOPE_INVALID"),
            E::WeakPassword => (StatusCode::BAD_REQUEST, "PASSWORD_INVALID"),
            E::AdminAccountSigner | E::AdminAccountRoles => (StatusCode::BAD_REQUEST, "ADMIN_ACCOUNT_ROLE"),
            E::UnknownAssignee(_) => (StatusCode::NOT_FOUND, "UNKNOWN_ASSIGNEE"),
            E::NotFound { .. } | E::AssignmentNotFound { .. } => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            E::Duplicate(_) | E::DuplicateAssignment { .. } => (StatusCode::CONFLICT, "ALREADY_EXISTS"),
            E::DeleteSelf => (StatusCode::CONFLICT, "DELETE_SELF"),
            E::LastOwner(_) => (StatusCode::CONFLICT, "LAST_OWNER"),
            E::Secret(err) => {
                tracing::error!(error = %err, "secret generation failed");
                return Self::internal();
            }
            E::Store(err) => {
                tracing::error!(error = %err, "access storage failure");
                return Self::internal();
            }
        };
        Self::new(status, code, e.to_string())
    }
}

/// Garbage collection on demand (admin API): another run holding the lease is a conflict,
/// a grace period under the minimum the caller's mistake; the rest is logged, not shown.
impl From<GcError> for WireError {
    fn from(e: GcError) -> Self {
        match e {
            GcError::Busy => Self::new(StatusCode::CONFLICT, "GC_BUSY", e.to_string()),
            GcError::GraceTooShort(_) => Self::new(StatusCode::BAD_REQUEST, "GRACE_TOO_SHORT", e.to_string()),
            GcError::Store(_) | GcError::DeleteTimedOut(_) => {
                tracing::error!(error = %e, "garbage collection failed");
                Self::internal()
            }
        }
    }
}

/// Retention: a bad policy is the owner's mistake (400 with the rule named), a stale version
/// or a run already going a conflict; the rest is logged, not shown.
impl From<RetentionError> for WireError {
    fn from(e: RetentionError) -> Self {
        use RetentionError as E;
        match &e {
            E::Invalid(_) => Self::new(StatusCode::BAD_REQUEST, "POLICY_INVALID", e.to_string()),
            E::InvalidRepository(_) => Self::new(StatusCode::BAD_REQUEST, "NAME_INVALID", e.to_string()),
            E::VersionConflict { .. } => Self::new(StatusCode::CONFLICT, "CONFLICT", e.to_string()),
            E::Busy => Self::new(StatusCode::CONFLICT, "RETENTION_BUSY", e.to_string()),
            E::Store(_) | E::Internal(_) => {
                tracing::error!(error = %e, "retention failed");
                Self::internal()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Another run holding the GC lease is 409 `GC_BUSY`; a short grace 400.
    #[test]
    fn gc_refusals() {
        let busy = WireError::from(GcError::Busy);
        assert_eq!((busy.status, busy.code), (StatusCode::CONFLICT, "GC_BUSY"));
        assert_eq!(busy.message, "another garbage collection is running");
        let short = WireError::from(GcError::GraceTooShort(600));
        assert_eq!(
            (short.status, short.code, short.message.as_str()),
            (
                StatusCode::BAD_REQUEST,
                "GRACE_TOO_SHORT",
                "the grace period must be at least 600 seconds"
            )
        );
    }
}
