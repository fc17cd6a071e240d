//! Deciding one manifest read: the rule that applies, who is let through unchecked, and
//! whether the manifest is signed the way the rule asks — DCT per tag (or per digest,
//! also through a signed index listing it), cosign and Notation per digest.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use wharf_store::{Digest, ManifestRecord};
use wharf_tuf::{TrustedTargets, VerifyError};

use super::document::{Mode, most_specific};
use super::{
    CompiledRule, MAX_REMEMBERED, PolicyResult, SignaturePolicyError, SignaturePolicyService, cosign, dct,
    is_signature_artifact, notation,
};
use crate::auth::{Action, Caller};
use crate::clock::now;
use crate::names::Reference;
use crate::services::access::Actor;

/// One repository's verified trust data, good while the published timestamp is `head`
/// and until `valid_until`.
pub(super) struct DctEntry {
    head: String,
    valid_until: i64,
    verified: Result<TrustedTargets, VerifyError>,
}

/// A signature kind checked per digest (unlike DCT, which signs tags).
#[derive(Clone, Copy)]
enum DigestCheck<'r> {
    Cosign(&'r cosign::CosignVerifier),
    Notation(&'r notation::NotationVerifier),
}

impl DigestCheck<'_> {
    async fn run(
        self,
        service: &SignaturePolicyService,
        generation: u64,
        repository: &str,
        digest: &Digest,
    ) -> PolicyResult<Result<String, String>> {
        match self {
            DigestCheck::Cosign(v) => v.signed(service, generation, repository, digest).await,
            DigestCheck::Notation(v) => v.signed(service, generation, repository, digest).await,
        }
    }
}

/// How a read was let through (or would have been refused, under `audit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// No rule, or `off`.
    Unchecked,
    /// A push/signing session reading its own repository.
    Publisher,
    SignatureArtifact,
    /// Signed; names the signature that counted.
    Signed(String),
    /// Not signed, served because the rule is in `audit`; the reason.
    Audited(String),
}

/// A signature payload or envelope blob of `repository`, read whole when it is at most
/// `limit` bytes: its bytes, or why it cannot be used.
pub(super) async fn read_small_blob(
    service: &SignaturePolicyService,
    repository: &str,
    digest: &str,
    limit: u64,
) -> PolicyResult<Result<Vec<u8>, String>> {
    use futures_util::StreamExt;
    let Ok(digest) = Digest::parse(digest) else {
        return Ok(Err(format!("signature blob {digest:?} is not a valid digest")));
    };
    match service.meta().linked_blob(repository, &digest).await? {
        None => return Ok(Err(format!("signature blob {digest} is not in the repository"))),
        Some(size) if size > limit => {
            return Ok(Err(format!(
                "signature blob {digest} is {size} bytes, more than {limit}"
            )));
        }
        Some(_) => {}
    }
    let mut stream = service.blobs().read(&digest, None).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| SignaturePolicyError::Internal(format!("reading {digest}: {e}")))?;
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Ok(Err(format!(
                "signature blob {digest} is larger than {limit} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Ok(bytes))
}

impl SignaturePolicyService {
    /// Decide a manifest read. `reference` is what the client asked for (a tag read checks
    /// that tag's signature), `record` what it resolved to.
    pub async fn admit(
        &self,
        caller: &Caller,
        actor: &Actor,
        repository: &str,
        reference: &Reference,
        record: &ManifestRecord,
    ) -> PolicyResult<Admission> {
        let policy = self.current();
        let Some(compiled) = most_specific(&policy.rules, repository).cloned() else {
            return Ok(Admission::Unchecked);
        };
        let rule = &compiled.rule;
        if rule.mode == Mode::Off {
            return Ok(Admission::Unchecked);
        }
        if rule.publishers_read_unsigned && caller.may(repository, Action::Push) {
            self.counters.publisher.fetch_add(1, Ordering::Relaxed);
            return Ok(Admission::Publisher);
        }
        if is_signature_artifact(record) {
            self.counters.artifact.fetch_add(1, Ordering::Relaxed);
            return Ok(Admission::SignatureArtifact);
        }
        let tag = match reference {
            Reference::Tag(t) => Some(t.as_str()),
            Reference::Digest(_) => None,
        };
        let reasons = match self
            .signed(&compiled, policy.generation, repository, tag, &record.digest)
            .await?
        {
            Ok(by) => {
                self.counters.signed.fetch_add(1, Ordering::Relaxed);
                return Ok(Admission::Signed(by));
            }
            Err(reasons) => reasons,
        };
        let what = match tag {
            Some(t) => format!("{repository}:{t}"),
            None => format!("{repository}@{}", record.digest),
        };
        let message = format!(
            "{what} is not signed as the signature policy for {} requires (accepted: {}): {}",
            rule.scope,
            rule.accepted_kinds().join(", "),
            reasons.join("; ")
        );
        let enforce = rule.mode == Mode::Enforce;
        let action = if enforce {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            "signature-policy.refuse"
        } else {
            self.counters.audited.fetch_add(1, Ordering::Relaxed);
            "signature-policy.audit"
        };
        self.record(actor, action, &what, &message).await;
        if enforce {
            tracing::info!(repository, reference = %what, "manifest read refused by the signature policy");
            Err(SignaturePolicyError::NotSigned(message))
        } else {
            Ok(Admission::Audited(message))
        }
    }

    /// Whether `digest` (read as `tag`, if by tag) is signed under `rule`: what signed it,
    /// or every accepted kind's reason why not.
    async fn signed(
        &self,
        compiled: &CompiledRule,
        generation: u64,
        repository: &str,
        tag: Option<&str>,
        digest: &Digest,
    ) -> PolicyResult<Result<String, Vec<String>>> {
        let mut reasons = Vec::new();
        if let Some(req) = &compiled.rule.dct {
            match self.dct_signed(repository, &req.roles, tag, digest).await? {
                Ok(by) => return Ok(Ok(by)),
                Err(r) => reasons.push(r),
            }
        }
        let checks = [
            compiled.cosign.as_ref().map(DigestCheck::Cosign),
            compiled.notation.as_ref().map(DigestCheck::Notation),
        ];
        for check in checks.into_iter().flatten() {
            match self
                .through_parents(check, generation, repository, digest)
                .await?
            {
                Ok(by) => return Ok(Ok(by)),
                Err(r) => reasons.push(r),
            }
        }
        Ok(Err(reasons))
    }

    /// A digest-level check (cosign, Notation) of `digest`, and failing that of each index
    /// in the repository that lists it: a signed multi-platform index vouches for its
    /// platform manifests. The reason reported is the image's own.
    async fn through_parents(
        &self,
        check: DigestCheck<'_>,
        generation: u64,
        repository: &str,
        digest: &Digest,
    ) -> PolicyResult<Result<String, String>> {
        let own = check.run(self, generation, repository, digest).await?;
        if own.is_ok() {
            return Ok(own);
        }
        for parent in self.meta.manifest_parents(repository, digest).await? {
            if let Ok(by) = check.run(self, generation, repository, &parent).await? {
                return Ok(Ok(format!("{by}, on index {parent}")));
            }
        }
        Ok(own)
    }

    async fn dct_signed(
        &self,
        repository: &str,
        roles: &[String],
        tag: Option<&str>,
        digest: &Digest,
    ) -> PolicyResult<Result<String, String>> {
        let Some(entry) = self.dct_entry(repository).await? else {
            return Ok(Err("no Docker Content Trust data".to_owned()));
        };
        let view = match &entry.verified {
            Ok(view) => view,
            Err(_) => return Ok(Err(dct::unusable(&entry.verified).unwrap_or_default())),
        };
        if let Some(tag) = tag {
            return Ok(dct::tag_signed(view, roles, tag, digest.as_str())
                .map(|role| format!("Docker Content Trust ({role}, tag {tag})")));
        }
        if let Some((tag, role)) = dct::digest_signed(view, roles, digest.as_str()) {
            return Ok(Ok(format!("Docker Content Trust ({role}, tag {tag})")));
        }
        for parent in self.meta.manifest_parents(repository, digest).await? {
            if let Some((tag, role)) = dct::digest_signed(view, roles, parent.as_str()) {
                return Ok(Ok(format!(
                    "Docker Content Trust ({role}, tag {tag}, index {parent})"
                )));
            }
        }
        Ok(Err(format!(
            "Docker Content Trust: no tag signed for {digest} (nor for an index listing it)"
        )))
    }

    /// The verified trust data of `repository`, re-verified when the published timestamp
    /// changed or something it relies on expired.
    async fn dct_entry(&self, repository: &str) -> PolicyResult<Option<Arc<DctEntry>>> {
        let Some(head) = self.trust.published_head(repository).await? else {
            return Ok(None);
        };
        let t = now();
        let remembered = self
            .dct_views
            .lock()
            .ok()
            .and_then(|m| m.get(repository).cloned());
        if let Some(e) = remembered
            && e.head == head
            && t < e.valid_until
        {
            return Ok(Some(e));
        }
        let Some(v) = self.trust.verified(repository).await? else {
            return Ok(None);
        };
        let entry = Arc::new(DctEntry {
            valid_until: dct::valid_until(&v.verified, t),
            head: v.head,
            verified: v.verified,
        });
        if let Ok(mut m) = self.dct_views.lock() {
            if m.len() >= MAX_REMEMBERED {
                m.clear();
            }
            m.insert(repository.to_owned(), entry.clone());
        }
        Ok(Some(entry))
    }
}
