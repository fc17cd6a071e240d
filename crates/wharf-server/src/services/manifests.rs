//! Manifests, tags, listings and referrers: the rules for storing and finding manifests.

use std::sync::Arc;

use bytes::Bytes;
use wharf_store::{
    AuditRecord, DeleteOutcome, Digest, ManifestPutOutcome, ManifestRecord, MetadataStore, NewManifest,
    ReferrerRecord, TagDetail, TrustCheck,
};

use super::access::{Actor, audit_record};
use super::error::{RegistryError, RegistryResult};
use super::locks::{Attempt, refusal};
use super::manifest_doc::{is_index, parse_manifest};
use super::quotas::{Addition, QuotaService};
use super::trust::{Deleting, DeletionCheck, TrustService};
use crate::clock::now;
use crate::names::Reference;

/// Page size cap for catalog and tag listings.
pub const MAX_PAGE: u32 = 1000;

pub struct ManifestService {
    meta: Arc<dyn MetadataStore>,
    max_bytes: u64,
    /// Storage quotas: a manifest's own bytes count too.
    quotas: Option<Arc<QuotaService>>,
    /// Asked before every deletion: content trust protects signed tags.
    trust: Arc<TrustService>,
}

/// How often a deletion checks the trust data again when a signer changed it meanwhile.
const DELETE_ATTEMPTS: usize = 3;

pub struct StoredManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

/// One page of a listing, and whether more follow.
pub struct Page {
    pub items: Vec<String>,
    pub more: bool,
}

impl ManifestService {
    pub fn new(meta: Arc<dyn MetadataStore>, max_bytes: u64, trust: Arc<TrustService>) -> Self {
        Self {
            meta,
            max_bytes,
            trust,
            quotas: None,
        }
    }

    /// Check storage quotas on every manifest push.
    pub fn with_quotas(mut self, quotas: Arc<QuotaService>) -> Self {
        self.quotas = Some(quotas);
        self
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    pub async fn put(
        &self,
        actor: &Actor,
        repository: &str,
        reference: &Reference,
        content_type: Option<&str>,
        body: Bytes,
    ) -> RegistryResult<StoredManifest> {
        if body.len() as u64 > self.max_bytes {
            return Err(RegistryError::ManifestTooLarge {
                limit: self.max_bytes,
            });
        }
        let parsed = parse_manifest(&body, content_type)?;
        let digest = Digest::of(&body);
        let tag = match reference {
            Reference::Digest(d) if d != &digest => {
                return Err(RegistryError::DigestInvalid(format!(
                    "manifest has digest {digest}, not {d} as the URL says"
                )));
            }
            Reference::Digest(_) => None,
            Reference::Tag(t) => Some(t.clone()),
        };
        if let Some(quotas) = &self.quotas {
            let size = body.len() as u64;
            quotas
                .admit(
                    repository,
                    Addition::Manifest {
                        digest: &digest,
                        size,
                    },
                )
                .await?;
        }
        let record = ManifestRecord {
            digest: digest.clone(),
            media_type: parsed.media_type,
            content: body,
            subject: parsed.subject.clone(),
            artifact_type: parsed.artifact_type,
            annotations: parsed.annotations,
            created_at: now(),
        };
        // Who pushed which digest under which name, committed with the push.
        let target = match &tag {
            Some(t) => format!("{repository}:{t}"),
            None => format!("{repository}@{digest}"),
        };
        let audit = audit_record(
            actor,
            "manifest.push",
            &target,
            digest.as_str(),
            record.created_at,
        );
        let new = NewManifest {
            record,
            blobs: parsed.blobs,
            manifests: parsed.manifests,
            tag,
            audit: Some(audit),
        };
        match self.meta.put_manifest(repository, &new).await? {
            ManifestPutOutcome::Stored => Ok(StoredManifest {
                digest,
                subject: parsed.subject,
            }),
            ManifestPutOutcome::MissingBlob(d) | ManifestPutOutcome::MissingManifest(d) => {
                Err(RegistryError::ManifestBlobUnknown(d))
            }
            ManifestPutOutcome::Locked(lock) => Err(refusal(repository, &lock, Attempt::Write)),
        }
    }

    pub async fn get(&self, repository: &str, reference: &Reference) -> RegistryResult<ManifestRecord> {
        let unknown = || {
            RegistryError::ManifestUnknown(match reference {
                Reference::Tag(t) => format!("{repository}:{t}"),
                Reference::Digest(d) => format!("{repository}@{d}"),
            })
        };
        let found = match reference {
            Reference::Digest(d) => self.meta.get_manifest(repository, d).await?,
            Reference::Tag(t) => self.meta.manifest_by_tag(repository, t).await?,
        };
        found.ok_or_else(unknown)
    }

    /// Whether a client that accepts `accepted` media types may receive `record`. Indexes
    /// are withheld from clients that only take single manifests (they could not use them).
    pub fn acceptable(record: &ManifestRecord, accepted: &[String]) -> bool {
        if accepted.is_empty() || accepted.iter().any(|a| a == "*/*" || a == &record.media_type) {
            return true;
        }
        !is_index(&record.media_type)
    }

    /// Delete by digest (manifest and its tags) or by tag (the tag only). Refused while a
    /// lock or a content-trust signature protects what it would delete.
    pub async fn delete(&self, actor: &Actor, repository: &str, reference: &Reference) -> RegistryResult<()> {
        let unknown = || RegistryError::ManifestUnknown(format!("{repository} {reference:?}"));
        let (record, digest) = match reference {
            Reference::Digest(d) => (
                audit_record(actor, "manifest.delete", &format!("{repository}@{d}"), "", now()),
                d.clone(),
            ),
            Reference::Tag(t) => (
                audit_record(actor, "tag.delete", &format!("{repository}:{t}"), "", now()),
                self.meta.resolve_tag(repository, t).await?.ok_or_else(unknown)?,
            ),
        };
        let what = match reference {
            Reference::Digest(_) => Deleting::Manifest { digest: &digest },
            Reference::Tag(t) => Deleting::Tag {
                tag: t,
                digest: &digest,
            },
        };
        let outcome = self.delete_checked(repository, what, &record).await?;
        match outcome {
            DeleteOutcome::Absent => Err(unknown()),
            _ => Ok(()),
        }
    }

    /// Ask content trust, then delete with the store re-checking, in the deletion's own
    /// transaction, the trust data the answer came from (and the locks); a signature
    /// committed in between sends it round again.
    async fn delete_checked(
        &self,
        repository: &str,
        what: Deleting<'_>,
        record: &AuditRecord,
    ) -> RegistryResult<DeleteOutcome> {
        for _ in 0..DELETE_ATTEMPTS {
            let check = self
                .trust
                .deletion_check(repository, what)
                .await
                .map_err(|e| RegistryError::Internal(format!("checking content trust: {e}")))?;
            let trust = match &check {
                DeletionCheck::TrustOff => TrustCheck::Skip,
                DeletionCheck::Unsigned { head } => TrustCheck::Unchanged(head.as_deref()),
                DeletionCheck::Signed(why) => return Err(RegistryError::Denied(why.clone())),
            };
            let outcome = match what {
                Deleting::Tag { tag, .. } => self.meta.delete_tag(repository, tag, trust, record).await?,
                Deleting::Manifest { digest } => {
                    self.meta
                        .delete_manifest(repository, digest, trust, record)
                        .await?
                }
                Deleting::Repository { .. } => self.meta.delete_repository(repository, trust, record).await?,
            };
            match outcome {
                DeleteOutcome::TrustChanged => continue,
                DeleteOutcome::Locked(lock) => return Err(refusal(repository, &lock, Attempt::Delete)),
                done => return Ok(done),
            }
        }
        Err(RegistryError::Denied(format!(
            "the trust data of {repository:?} keeps changing while deleting; try again"
        )))
    }

    pub async fn exists(&self, repository: &str) -> RegistryResult<bool> {
        Ok(self.meta.repository_exists(repository).await?)
    }

    /// Delete a whole repository's images (audited). Its blobs' bytes stay until garbage
    /// collection; its trust data, if any, is reset separately. Refused while anything in
    /// it is locked or a tag is signed for what it points at.
    pub async fn delete_repository(&self, actor: &Actor, repository: &str) -> RegistryResult<()> {
        if !crate::names::valid_repository_name(repository) {
            return Err(RegistryError::NameInvalid(repository.to_owned()));
        }
        let record = audit_record(actor, "repository.delete", repository, "", now());
        let tags: Vec<(String, String)> = self
            .meta
            .tag_details(repository)
            .await?
            .into_iter()
            .map(|t| (t.tag, t.digest))
            .collect();
        let outcome = self
            .delete_checked(repository, Deleting::Repository { tags: &tags }, &record)
            .await?;
        match outcome {
            DeleteOutcome::Absent => Err(RegistryError::NameUnknown(repository.to_owned())),
            _ => Ok(()),
        }
    }

    pub async fn tags(&self, repository: &str, last: Option<&str>, n: Option<u32>) -> RegistryResult<Page> {
        if !self.meta.repository_exists(repository).await? {
            return Err(RegistryError::NameUnknown(repository.to_owned()));
        }
        let limit = n.unwrap_or(u32::MAX - 1);
        let mut items = self
            .meta
            .list_tags(repository, last, limit.saturating_add(1))
            .await?;
        let more = items.len() as u64 > u64::from(limit);
        items.truncate(limit as usize);
        Ok(Page { items, more })
    }

    /// One page of the repositories whose name contains `contains` ("" = all) and that
    /// `visible` admits, in name order. Pages through the metadata DB (never storage)
    /// until the page is full or the names run out.
    pub async fn catalog(
        &self,
        contains: &str,
        last: Option<&str>,
        n: Option<u32>,
        visible: impl Fn(&str) -> bool,
    ) -> RegistryResult<Page> {
        let limit = n.unwrap_or(MAX_PAGE).min(MAX_PAGE) as usize;
        let mut items: Vec<String> = Vec::new();
        let mut cursor = last.map(str::to_owned);
        loop {
            let batch = self
                .meta
                .list_repositories(contains, cursor.as_deref(), MAX_PAGE)
                .await?;
            let exhausted = batch.len() < MAX_PAGE as usize;
            cursor = batch.last().cloned();
            items.extend(batch.into_iter().filter(|r| visible(r)));
            if items.len() > limit || exhausted {
                break;
            }
        }
        let more = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, more })
    }

    /// Every tag of `repository` with digest, size and push time (the portal's view).
    pub async fn tag_details(&self, repository: &str) -> RegistryResult<Vec<TagDetail>> {
        Ok(self.meta.tag_details(repository).await?)
    }

    pub async fn referrers(
        &self,
        repository: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> RegistryResult<Vec<ReferrerRecord>> {
        Ok(self.meta.referrers(repository, subject, artifact_type).await?)
    }
}
