//! Errors. `Error` is the low-level failure of parsing/crypto helpers;
//! `UpdateError` is what `update::validate_update` returns: one variant per
//! notary error (spec §1.8), carrying notary's exact `Msg`. The wire format —
//! status, code, fixed message, typed `detail` — is the server's business
//! (`wharf-server`'s `wire.rs`); this crate knows no HTTP.

/// Low-level error. `Display` is the message notary would put in `Msg`
/// where one exists (e.g. `json: unsupported value: 1.5`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A value that docker/go canonical JSON cannot encode.
    #[error("{0}")]
    Canonical(String),
    /// Input is not the expected JSON shape.
    #[error("{0}")]
    Json(String),
    /// A key could not be decoded or is unsupported.
    #[error("{0}")]
    Key(String),
    /// A signature could not be checked at all: none present, or a key
    /// listed under an ID that is not its own (notary `ErrNoSignatures`,
    /// `ErrInvalidKeyID`).
    #[error("{0}")]
    Signature(String),
    /// Too few valid signatures for the role's threshold, or a threshold
    /// below 1 (notary `ErrRoleThreshold`). Separate from `Signature`
    /// because clients treat it differently: a delegation failing this is
    /// skipped with a warning, while `Signature` fails the whole update.
    #[error("{0}")]
    Threshold(String),
    /// Signing or key generation failed.
    #[error("{0}")]
    Crypto(String),
}

/// Result of a failed update (POST /tuf/) or server re-sign. Each variant is
/// one notary error code; the five typed validation errors carry the exact
/// `Msg` notary sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// Multipart part without filename (400 NO_FILENAME).
    #[error("no file/role name provided")]
    NoFilename,
    /// Part name is not a valid role (400 INVALID_ROLE, detail = name).
    #[error("invalid role {0}")]
    InvalidRole(String),
    /// Part body is not a TUF envelope (400 MALFORMED_JSON).
    #[error("malformed json: {0}")]
    MalformedJson(String),
    /// INVALID_UPDATE / `ErrValidation`.
    #[error("An error occurred during validation: {0}")]
    Validation(String),
    /// INVALID_UPDATE / `ErrBadHierarchy`.
    #[error("Metadata hierarchy is incomplete: {msg}")]
    BadHierarchy { missing: String, msg: String },
    /// INVALID_UPDATE / `ErrBadRoot`.
    #[error("The root metadata is invalid: {0}")]
    BadRoot(String),
    /// INVALID_UPDATE / `ErrBadTargets`.
    #[error("The targets metadata is invalid: {0}")]
    BadTargets(String),
    /// INVALID_UPDATE / `ErrBadSnapshot`.
    #[error("The snapshot metadata is invalid: {0}")]
    BadSnapshot(String),
    /// INVALID_UPDATE without typed detail (e.g. a stored parent that no
    /// longer verifies against the new root).
    #[error("invalid update: {0}")]
    InvalidUpdate(String),
    /// 400 VERSION: some (role, version) is not newer than what is stored.
    #[error("a newer version of {role} is already stored (new version {version})")]
    Version { role: String, version: i64 },
    /// 500 UNKNOWN: stored data unreadable, signer failure.
    #[error("internal error: {0}")]
    Internal(String),
}
