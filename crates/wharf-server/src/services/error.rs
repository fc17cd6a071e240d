//! What services report when they refuse or fail. Mapped to wire formats in `crate::wire`.

use wharf_store::{Digest, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid repository name {0:?}")]
    NameInvalid(String),
    #[error("repository {0:?} is not known")]
    NameUnknown(String),
    #[error("invalid tag {0:?}")]
    TagInvalid(String),
    #[error("{0}")]
    DigestInvalid(String),
    #[error("blob {0} is not known to this repository")]
    BlobUnknown(Digest),
    #[error("upload session is not known (it may have expired, been cancelled or completed)")]
    UploadUnknown,
    #[error("{0}")]
    UploadInvalid(String),
    /// The chunk does not start where the upload stands.
    #[error("chunk must start at offset {offset}")]
    RangeInvalid { offset: u64 },
    #[error("{0}")]
    SizeInvalid(String),
    #[error("{0}")]
    ManifestInvalid(String),
    #[error("manifest is larger than the {limit}-byte limit")]
    ManifestTooLarge { limit: u64 },
    #[error("manifest {0} is not known")]
    ManifestUnknown(String),
    #[error("manifest references {0}, which is not in this repository")]
    ManifestBlobUnknown(Digest),
    #[error("{0}")]
    PaginationInvalid(String),
    #[error("{0}")]
    Unsupported(String),
    /// A push that would take its scope over its storage quota; the message names the
    /// scope, the figures and how to raise it.
    #[error("{0}")]
    QuotaExceeded(String),
    /// Refused by a lock or by content trust; the text names why and what to do.
    #[error("{0}")]
    Denied(String),
    /// A service this one relies on failed (logged, never shown).
    #[error("{0}")]
    Internal(String),
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
}

pub type RegistryResult<T> = Result<T, RegistryError>;
