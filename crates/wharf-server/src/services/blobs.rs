//! Reading and deleting blobs. Visibility is the repository link in the metadata store.

use std::sync::Arc;
use std::time::Duration;

use wharf_store::{BlobStore, ByteRange, ByteStream, DeleteOutcome, Digest, MetadataStore};

use super::access::{Actor, audit_record};
use super::error::{RegistryError, RegistryResult};
use super::locks::{Attempt, refusal};
use crate::clock::now;

/// How long a pre-signed download URL works: long enough for a client to follow the
/// redirect and read a large layer, short enough that a leaked URL soon stops working.
const REDIRECT_LIFETIME: Duration = Duration::from_secs(10 * 60);

pub struct BlobService {
    blobs: Arc<dyn BlobStore>,
    meta: Arc<dyn MetadataStore>,
    /// `storage.s3.redirect_downloads`: send clients to the store for the bytes.
    redirect_downloads: bool,
    /// The garbage collection grace (`gc.grace_seconds`): a link older than half of it is
    /// renewed when a client asks for its blob.
    grace: Duration,
}

impl BlobService {
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        meta: Arc<dyn MetadataStore>,
        redirect_downloads: bool,
        grace: Duration,
    ) -> Self {
        Self {
            blobs,
            meta,
            redirect_downloads,
            grace,
        }
    }

    /// Where the client should fetch the blob's bytes instead of from this server (a
    /// short-lived pre-signed URL), when configured and the store can give one. Call only
    /// after `stat` said the blob is visible to the caller's repository.
    pub async fn download_redirect(&self, digest: &Digest) -> RegistryResult<Option<String>> {
        if !self.redirect_downloads {
            return Ok(None);
        }
        Ok(self.blobs.download_url(digest, REDIRECT_LIFETIME).await?)
    }

    /// Size of a blob visible in `repository` (a HEAD or GET). A push that finds the blob
    /// skips its upload and PUTs a manifest naming it later, so a link older than half the
    /// grace is renewed here: garbage collection leaves it another grace period, and the
    /// fresh links most reads find are not written.
    pub async fn stat(&self, repository: &str, digest: &Digest) -> RegistryResult<u64> {
        let now = now();
        let half_grace = i64::try_from(self.grace.as_secs() / 2).unwrap_or(i64::MAX);
        self.meta
            .linked_blob_renewing(repository, digest, now.saturating_sub(half_grace), now)
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))
    }

    pub async fn read(&self, digest: &Digest, range: Option<ByteRange>) -> RegistryResult<ByteStream> {
        self.blobs.read(digest, range).await.map_err(|e| match e {
            wharf_store::StoreError::NotFound => RegistryError::BlobUnknown(digest.clone()),
            e => e.into(),
        })
    }

    /// Unlink from the repository (audited; refused while the repository itself is
    /// locked); the bytes stay until garbage collection.
    pub async fn delete(&self, actor: &Actor, repository: &str, digest: &Digest) -> RegistryResult<()> {
        let record = audit_record(actor, "blob.delete", &format!("{repository}@{digest}"), "", now());
        match self.meta.unlink_blob(repository, digest, &record).await? {
            DeleteOutcome::Deleted => Ok(()),
            DeleteOutcome::Locked(lock) => Err(refusal(repository, &lock, Attempt::Delete)),
            DeleteOutcome::Absent | DeleteOutcome::TrustChanged => {
                Err(RegistryError::BlobUnknown(digest.clone()))
            }
        }
    }
}
