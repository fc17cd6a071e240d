//! The storage layer's error type. Services map it; nothing here knows HTTP.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// An optimistic check failed (e.g. an upload moved on since it was read).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid storage key: {0}")]
    InvalidKey(String),
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The object store (S3) failed or refused a request; the text names the bucket or key.
    #[error("blob storage: {0}")]
    Backend(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// The database cannot be reached or refused us (the message names where, never a
    /// password).
    #[error("metadata database unavailable: {0}")]
    Unavailable(String),
    /// The database was written by a newer Wharf (its schema is ahead of this binary).
    #[error("{0}")]
    Incompatible(String),
}

pub type StoreResult<T> = Result<T, StoreError>;
