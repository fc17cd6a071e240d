//! Reading and deleting blobs. Visibility is the repository link in the metadata store.

use std::sync::Arc;

use wharf_store::{BlobStore, ByteRange, ByteStream, Digest, MetadataStore};

use super::access::{Actor, audit_record};
use super::error::{RegistryError, RegistryResult};
use crate::clock::now;

pub struct BlobService {
    blobs: Arc<dyn BlobStore>,
    meta: Arc<dyn MetadataStore>,
}

impl BlobService {
    pub fn new(blobs: Arc<dyn BlobStore>, meta: Arc<dyn MetadataStore>) -> Self {
        Self { blobs, meta }
    }

    /// Size of a blob visible in `repository`.
    pub async fn stat(&self, repository: &str, digest: &Digest) -> RegistryResult<u64> {
        self.meta
            .linked_blob(repository, digest)
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))
    }

    pub async fn read(&self, digest: &Digest, range: Option<ByteRange>) -> RegistryResult<ByteStream> {
        self.blobs.read(digest, range).await.map_err(|e| match e {
            wharf_store::StoreError::NotFound => RegistryError::BlobUnknown(digest.clone()),
            e => e.into(),
        })
    }

    /// Unlink from the repository (audited); the bytes stay until garbage collection.
    pub async fn delete(&self, actor: &Actor, repository: &str, digest: &Digest) -> RegistryResult<()> {
        let record = audit_record(actor, "blob.delete", &format!("{repository}@{digest}"), "", now());
        if !self.meta.unlink_blob(repository, digest, &record).await? {
            return Err(RegistryError::BlobUnknown(digest.clone()));
        }
        Ok(())
    }
}
