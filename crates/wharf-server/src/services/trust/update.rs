//! Publishing: notary's `POST …/_trust/tuf/` validated by `wharf_tuf` and committed in one
//! transaction, with its audit record.

use std::collections::BTreeMap;

use chrono::Utc;
use wharf_store::{AuditRecord, NewTrustFile, StoreError};
use wharf_tuf::{NewFile, UpdateError, UpdateInput};

use super::multipart::parse_multipart;
use super::{TrustError, TrustResult, TrustService, audit};
use crate::clock::now;
use crate::services::access::Actor;
use crate::services::locks::{Attempt, refusal, write_lock};

/// Largest accepted `POST …/_trust/tuf/` body. Real updates are a few KiB (spec §1.4);
/// 10 MiB leaves room for big delegation sets without letting one request hog memory.
pub const MAX_UPDATE_BYTES: usize = 10 << 20;

impl TrustService {
    /// `POST …/_trust/tuf/`: validate and commit one multi-role update atomically.
    pub async fn update(
        &self,
        repository: &str,
        gun: &str,
        actor: &Actor,
        content_type: &str,
        body: &[u8],
    ) -> TrustResult<()> {
        self.require_enabled().await?;
        // A repository locked against writes keeps its trust data too: a signed push would
        // otherwise change what its tags resolve to under content trust. A typed validation
        // error, so docker and notary print the sentence.
        if let Some(lock) = write_lock(self.meta.as_ref(), repository).await? {
            let why = refusal(repository, &lock, Attempt::Write).to_string();
            return Err(TrustError::Update(UpdateError::Validation(why)));
        }
        let current = self.current_map(repository).await?;
        let current: BTreeMap<String, Vec<u8>> = current.into_iter().map(|(r, f)| (r, f.content)).collect();
        let had_nothing = current.is_empty();
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
        .map_err(|e| TrustError::Internal(format!("trust validation task failed: {e}")))?;
        let files = match files {
            Err(e @ TrustError::Update(UpdateError::BadHierarchy { .. })) if had_nothing => {
                return Err(self.stale_client_error(repository, gun).await?.unwrap_or(e));
            }
            // notary answers VERSION, which docker prints as "trust server rejected
            // operation." — say what happened and what to do instead (a deliberate
            // difference from the reference server, recorded in the crafted replay test).
            Err(TrustError::Update(UpdateError::Version { role, version })) => {
                return Err(TrustError::Outdated {
                    repository: repository.to_owned(),
                    what: format!("{role} version {version} is already stored"),
                });
            }
            other => other?,
        };
        let roles: Vec<String> = files
            .iter()
            .map(|f| format!("{} v{}", f.role, f.version))
            .collect();
        let record = audit(actor, "trust.update", repository, &roles.join(", "));
        self.commit(repository, gun, &files, Some(&record)).await?;
        tracing::info!(%repository, %gun, files = %roles.join(", "), "trust update stored");
        Ok(())
    }

    /// A client that signed this repository before its trust data was reset (or content
    /// trust disabled) still holds the old root, which names server keys that are gone,
    /// so no update it makes can be completed. Say what happened and what to delete; for
    /// a repository that never had trust data, keep notary's own error.
    async fn stale_client_error(&self, repository: &str, gun: &str) -> TrustResult<Option<TrustError>> {
        let newest = self.meta.trust_changes(Some(repository), -1, 1).await?;
        let Some(deleted) = newest.first().filter(|c| c.category == "deletion") else {
            return Ok(None);
        };
        let at = chrono::DateTime::<Utc>::from_timestamp(deleted.created_at, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        Ok(Some(TrustError::Update(UpdateError::Validation(format!(
            "the trust data of {repository} was deleted by an owner at {at} (content-trust reset or disable), \
and this client still holds the old trust data: delete ~/.docker/trust/tuf/{gun} \
(notary: <trust dir>/tuf/{gun}) and sign again to start afresh"
        )))))
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
            // Someone else committed first: nothing of ours is stored. Not notary's VERSION,
            // which docker shows as "trust server rejected operation." — the publisher
            // must learn to sign again.
            Err(StoreError::Conflict(m)) => {
                self.published.invalidate(Some(repository));
                tracing::info!(%repository, conflict = %m, "trust update lost a race");
                Err(TrustError::Outdated {
                    repository: repository.to_owned(),
                    what: "another publisher's update was stored first".into(),
                })
            }
            Err(e) => Err(TrustError::Updating(e)),
        }
    }
}
