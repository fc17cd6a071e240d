//! Publishing: notary's `POST …/_trust/tuf/` validated by `wharf_tuf` and committed in one
//! transaction, with its audit record.

use std::collections::BTreeMap;

use chrono::Utc;
use wharf_store::{AuditRecord, NewTrustFile, StoreError};
use wharf_tuf::{NewFile, UpdateError, UpdateInput};

use super::multipart::parse_multipart;
use super::{TrustError, TrustResult, TrustService, audit};
use crate::clock::now;

/// Largest accepted `POST …/_trust/tuf/` body. Real updates are a few KiB (spec §1.4);
/// 10 MiB leaves room for big delegation sets without letting one request hog memory.
pub const MAX_UPDATE_BYTES: usize = 10 << 20;

impl TrustService {
    /// `POST …/_trust/tuf/`: validate and commit one multi-role update atomically.
    pub async fn update(
        &self,
        repository: &str,
        gun: &str,
        actor: &str,
        content_type: &str,
        body: &[u8],
    ) -> TrustResult<()> {
        self.require_enabled().await?;
        let current = self.current_map(repository).await?;
        let current: BTreeMap<String, Vec<u8>> = current.into_iter().map(|(r, f)| (r, f.content)).collect();
        let keys = self.server_keys(repository).await?;
        let (gun_owned, content_type, body) = (gun.to_owned(), content_type.to_owned(), body.to_vec());
        // Parsing and signature checks are CPU work proportional to the upload: off the
        // async workers, and one upload at a time per spare core, so a hostile upload
        // slows other uploads, never the registry's other requests.
        let _permit = self
            .validation
            .acquire()
            .await
            .map_err(|_| TrustError::Internal("validation queue closed".into()))?;
        let files = tokio::task::spawn_blocking(move || -> TrustResult<Vec<NewFile>> {
            let mut uploads = Vec::new();
            for (filename, content) in parse_multipart(&content_type, &body)? {
                uploads.push(wharf_tuf::parse_upload_part(&filename, content).map_err(TrustError::Update)?);
            }
            let input = UpdateInput {
                gun: &gun_owned,
                current: &current,
                uploads: &uploads,
                now: Utc::now(),
            };
            wharf_tuf::validate_update(&input, &keys).map_err(TrustError::Update)
        })
        .await
        .map_err(|e| TrustError::Internal(format!("trust validation task failed: {e}")))??;
        let roles: Vec<String> = files
            .iter()
            .map(|f| format!("{} v{}", f.role, f.version))
            .collect();
        let record = audit(actor, "trust.update", repository, &roles.join(", "));
        self.commit(repository, gun, &files, Some(&record)).await?;
        tracing::info!(%repository, %gun, files = %roles.join(", "), "trust update stored");
        Ok(())
    }

    pub(super) async fn commit(
        &self,
        repository: &str,
        gun: &str,
        files: &[NewFile],
        record: Option<&AuditRecord>,
    ) -> TrustResult<()> {
        let rows: Vec<NewTrustFile> = files
            .iter()
            .map(|f| NewTrustFile {
                role: f.role.clone(),
                version: f.version,
                sha256: f.sha256_hex(),
                content: f.bytes.clone(),
            })
            .collect();
        match self
            .meta
            .trust_commit(repository, gun, &rows, record, now())
            .await
        {
            Ok(()) => {
                self.published.invalidate(Some(repository));
                Ok(())
            }
            // Someone else committed first: notary's VERSION, nothing of ours is stored.
            Err(StoreError::Conflict(m)) => {
                self.published.invalidate(Some(repository));
                let role = files.first().map(|f| f.role.clone()).unwrap_or_default();
                tracing::info!(%repository, conflict = %m, "trust update lost a race");
                Err(TrustError::Update(UpdateError::Version { role, version: 0 }))
            }
            Err(e) => Err(TrustError::Updating(e)),
        }
    }
}
