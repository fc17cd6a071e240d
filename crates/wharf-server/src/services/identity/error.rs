//! The identity service's error type; `wire.rs` turns it into token-endpoint and
//! signing-key answers.

use wharf_store::StoreError;

use crate::auth::secrets::SecretError;
use crate::auth::token::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("refresh token is invalid or revoked")]
    InvalidRefreshToken,
    #[error("too many failed logins; try again in {0} seconds")]
    LockedOut(i64),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write {0}: {1}")]
    File(String, std::io::Error),
    #[error(
        "the token signing key was rotated by another request at the same time; nothing changed, try again"
    )]
    KeyRotatedConcurrently,
    #[error(
        "password must be at least {} characters",
        crate::services::access::MIN_PASSWORD
    )]
    WeakPassword,
    #[error("{0} is not a user: only users have passwords to change; service principals reset their secret")]
    NotAUser(String),
}
