//! The trust service's error type; `wire.rs` turns it into notary's error bodies.

use wharf_store::StoreError;
use wharf_tuf::UpdateError;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// Update refused (or one of notary's upload errors); carries notary's exact body.
    #[error("{0}")]
    Update(UpdateError),
    #[error("metadata not found")]
    NotFound,
    #[error("malformed upload: {0}")]
    MalformedUpload(String),
    #[error("the trust server does not serve GUN {0:?}")]
    InvalidGun(String),
    #[error("invalid parameters: {0}")]
    InvalidParameters(String),
    /// Storage failed while committing an update (notary `UPDATING`).
    #[error("storing the update failed: {0}")]
    Updating(StoreError),
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
    /// The update was made from trust data that is no longer current (another publisher
    /// signed meanwhile, or the client re-sent an old version); nothing of it is stored.
    /// Signing again, from the new state, succeeds.
    #[error(
        "the trust data of {repository} has changed since this client read it ({what}), so nothing was stored; sign again"
    )]
    Outdated { repository: String, what: String },
    /// Disabling content trust was asked without confirming that all trust data goes.
    #[error("{}", super::policy::DISABLE_WARNING)]
    ConfirmationRequired,
}

pub type TrustResult<T> = Result<T, TrustError>;
