//! Whether this replica can serve: its database and its blob store answer. A load
//! balancer polls it (`/readyz`) and stops sending requests to a replica that cannot
//! reach either; liveness (`/healthz`) asks nothing of them, so a database outage does
//! not make an orchestrator restart every replica at once.

use std::sync::Arc;
use std::time::Duration;

use wharf_store::{BlobStore, Digest, MetadataStore};

/// A check that has not answered by then counts as failed: a balancer's probe must not
/// hang on a stalled connection.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// What is not reachable. Details go to the log, not to the (public) response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    Database,
    Storage,
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotReady::Database => "database unreachable",
            NotReady::Storage => "blob storage unreachable",
        })
    }
}

pub struct Readiness {
    meta: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
}

impl Readiness {
    pub fn new(meta: Arc<dyn MetadataStore>, blobs: Arc<dyn BlobStore>) -> Self {
        Self { meta, blobs }
    }

    pub async fn check(&self) -> Result<(), NotReady> {
        let database = tokio::time::timeout(CHECK_TIMEOUT, self.meta.get_setting("readiness-probe")).await;
        if !matches!(database, Ok(Ok(_))) {
            tracing::warn!(result = ?database.map(|r| r.map(|_| ())), "readiness: database check failed");
            return Err(NotReady::Database);
        }
        // A digest nothing has: the answer ("absent") needs a round trip to the store.
        let probe = Digest::of(b"wharf readiness probe");
        let storage = tokio::time::timeout(CHECK_TIMEOUT, self.blobs.stat(&probe)).await;
        if !matches!(storage, Ok(Ok(_))) {
            tracing::warn!(result = ?storage.map(|r| r.map(|_| ())), "readiness: blob storage check failed");
            return Err(NotReady::Storage);
        }
        Ok(())
    }
}
