//! Server-side signature policy: whether a manifest read is answered, decided by the
//! registry for every client (docker without content trust, containerd, skopeo,
//! Kubernetes nodes), not by the client.
//!
//! Rules per scope (`document.rs`) carry a mode — `off`, `audit` (serve, but record and
//! count what enforce would refuse), `enforce` (refuse with `DENIED`) — and what counts as
//! signed: Docker Content Trust (`dct.rs`, the repository's current trust data verified as
//! docker does), cosign signatures (`cosign.rs`) and Notation signatures (`notation.rs`).
//! Any one accepted signature is enough.
//!
//! Who is not checked:
//! - a request whose token carries push on the repository (a publisher's push or signing
//!   session: docker, cosign, notation and skopeo read the manifest they sign), unless the
//!   rule sets `publishers_read_unsigned: false`; a plain pull asks for pull only, so it is
//!   checked whoever makes it;
//! - signature artifacts themselves (`artifacts.rs`), which clients fetch to verify.
//!
//! Verifications are remembered, never trusted blindly: a DCT view is keyed by the
//! published timestamp (checked on every read: from memory in one process, one indexed
//! query on replicas sharing a database), a cosign or Notation answer by the digests of
//! the signature manifests found for the image (looked up on every read). A new, changed
//! or deleted signature therefore takes effect on the very next read, on every replica.
//! Policy changes: at once on the replica that made them, within a second on the others
//! (`replica_sync.rs`).

mod artifacts;
mod cosign;
mod dct;
pub mod document;
mod notation;
mod verdicts;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use wharf_store::{BlobStore, Digest, ManifestRecord, MetadataStore, StoreError};
use wharf_tuf::{TrustedTargets, VerifyError};

use crate::auth::{Action, Caller, Scope};
use crate::clock::now;
use crate::names::Reference;
use crate::services::access::{Actor, audit_record};
use crate::services::trust::{TrustError, TrustService};
pub use artifacts::{COSIGN_SIGNATURE_LAYER, NOTATION_ARTIFACT_TYPE, is_signature_artifact};
use document::{Mode, PolicyDocument, PolicyError, PolicyRule, most_specific};
use verdicts::VerdictCache;

/// Settings key of the policy document (JSON, `document::PolicyDocument`).
pub const SIGNATURE_POLICY_SETTING: &str = "signature_policy";

#[derive(Debug, thiserror::Error)]
pub enum SignaturePolicyError {
    #[error("{0}")]
    Invalid(#[from] PolicyError),
    #[error(
        "the signature policy changed since version {read} was read (it is now version {current}); read it again and reapply the change"
    )]
    VersionConflict { read: u64, current: u64 },
    /// The read is refused under `enforce`; the message names what, which rule and why.
    #[error("{0}")]
    NotSigned(String),
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<TrustError> for SignaturePolicyError {
    fn from(e: TrustError) -> Self {
        match e {
            TrustError::Store(s) | TrustError::Updating(s) => Self::Store(s),
            other => Self::Internal(other.to_string()),
        }
    }
}

type PolicyResult<T> = Result<T, SignaturePolicyError>;

/// The stored policy, parsed once, with its rules' scopes and verifiers ready.
struct CompiledPolicy {
    stored: Vec<u8>,
    document: PolicyDocument,
    rules: Vec<(Scope, Arc<CompiledRule>)>,
    /// Bumped on every change this process takes up: remembered cosign/Notation answers
    /// carry it, so none made under an older policy is reused.
    generation: u64,
}

struct CompiledRule {
    rule: PolicyRule,
    cosign: Option<cosign::CosignVerifier>,
    notation: Option<notation::NotationVerifier>,
}

/// One repository's verified trust data, good while the published timestamp is `head`
/// and until `valid_until`.
struct DctEntry {
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

#[derive(Default)]
struct Counters {
    signed: AtomicU64,
    refused: AtomicU64,
    audited: AtomicU64,
    publisher: AtomicU64,
    artifact: AtomicU64,
}

/// Refusals recorded in the audit log per repository and reference at most this often,
/// so a client retrying in a loop cannot flood the log.
const AUDIT_EVERY_SECONDS: i64 = 60;
const MAX_REMEMBERED: usize = 10_000;

pub struct SignaturePolicyService {
    meta: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
    trust: Arc<TrustService>,
    compiled: RwLock<Arc<CompiledPolicy>>,
    generations: AtomicU64,
    dct_views: Mutex<HashMap<String, Arc<DctEntry>>>,
    verdicts: VerdictCache,
    counters: Counters,
    recent_audits: Mutex<HashMap<String, i64>>,
}

fn compile(stored: &[u8], generation: u64) -> Result<CompiledPolicy, PolicyError> {
    let document = PolicyDocument::parse(stored)?;
    let mut verifiers: Vec<(Option<cosign::CosignVerifier>, Option<notation::NotationVerifier>)> = Vec::new();
    let scopes = document.validate(|rule| {
        let c = rule
            .cosign
            .as_ref()
            .map(cosign::CosignVerifier::new)
            .transpose()?;
        let n = rule
            .notation
            .as_ref()
            .map(notation::NotationVerifier::new)
            .transpose()?;
        verifiers.push((c, n));
        Ok(())
    })?;
    let rules = scopes
        .into_iter()
        .zip(document.rules.iter().cloned())
        .zip(verifiers)
        .map(|((scope, rule), (cosign, notation))| {
            (
                scope,
                Arc::new(CompiledRule {
                    rule,
                    cosign,
                    notation,
                }),
            )
        })
        .collect();
    Ok(CompiledPolicy {
        stored: stored.to_vec(),
        document,
        rules,
        generation,
    })
}

const EMPTY_POLICY: &[u8] = br#"{"version":0,"rules":[]}"#;

impl SignaturePolicyService {
    pub async fn open(
        meta: Arc<dyn MetadataStore>,
        blobs: Arc<dyn BlobStore>,
        trust: Arc<TrustService>,
    ) -> Result<Self, StoreError> {
        let stored = meta.init_setting(SIGNATURE_POLICY_SETTING, EMPTY_POLICY).await?;
        let compiled = compile(&stored, 0).unwrap_or_else(|e| {
            // Only a policy written by a newer or broken build gets here; checking nothing
            // would be the dangerous reading, so every rule-less read stays unchecked but
            // the operator is told loudly.
            tracing::error!(error = %e, "stored signature policy is not valid; no rules applied");
            compile(EMPTY_POLICY, 0).expect("the empty policy is valid")
        });
        Ok(Self {
            meta,
            blobs,
            trust,
            compiled: RwLock::new(Arc::new(compiled)),
            generations: AtomicU64::new(0),
            dct_views: Mutex::new(HashMap::new()),
            verdicts: VerdictCache::default(),
            counters: Counters::default(),
            recent_audits: Mutex::new(HashMap::new()),
        })
    }

    fn current(&self) -> Arc<CompiledPolicy> {
        match self.compiled.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn install(&self, stored: &[u8]) -> Result<(), PolicyError> {
        let generation = self.generations.fetch_add(1, Ordering::AcqRel) + 1;
        let compiled = Arc::new(compile(stored, generation)?);
        match self.compiled.write() {
            Ok(mut c) => *c = compiled,
            Err(p) => *p.into_inner() = compiled,
        }
        Ok(())
    }

    /// The policy as stored (and as the admin API shows it).
    pub fn document(&self) -> PolicyDocument {
        self.current().document.clone()
    }

    /// Take up a policy another replica stored.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let Some(stored) = self.meta.get_setting(SIGNATURE_POLICY_SETTING).await? else {
            return Ok(());
        };
        if stored != self.current().stored
            && let Err(e) = self.install(&stored)
        {
            tracing::error!(error = %e, "stored signature policy is not valid; keeping the previous one");
        }
        Ok(())
    }

    /// Replace the policy. `document.version` must be the version the caller read; the
    /// stored one becomes the next. Checked whole (scopes, keys, certificates) before
    /// anything is written; stored with its audit record, guarded against a concurrent
    /// change (compare-and-swap on the stored bytes).
    pub async fn replace(&self, actor: &Actor, mut document: PolicyDocument) -> PolicyResult<PolicyDocument> {
        let stored = self
            .meta
            .get_setting(SIGNATURE_POLICY_SETTING)
            .await?
            .unwrap_or_else(|| EMPTY_POLICY.to_vec());
        let current = PolicyDocument::parse(&stored).map(|d| d.version).unwrap_or(0);
        if document.version != current {
            return Err(SignaturePolicyError::VersionConflict {
                read: document.version,
                current,
            });
        }
        document.version = current + 1;
        let bytes = serde_json::to_vec(&document)
            .map_err(|e| SignaturePolicyError::Internal(format!("policy not serialisable: {e}")))?;
        compile(&bytes, 0)?;
        let summary = summary(&document);
        let record = audit_record(actor, "signature-policy.update", "registry", &summary, now());
        let written = self
            .meta
            .update_settings_if(
                SIGNATURE_POLICY_SETTING,
                &stored,
                &[(SIGNATURE_POLICY_SETTING, Some(&bytes))],
                &record,
            )
            .await?;
        if !written {
            return Err(SignaturePolicyError::VersionConflict {
                read: document.version - 1,
                current: document.version,
            });
        }
        self.install(&bytes)?;
        tracing::info!(actor = %actor.name, policy = %summary, "signature policy changed");
        Ok(document)
    }

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

    /// An audit record of a refusal (or of what audit mode let through), at most once a
    /// minute per repository and reference on this replica.
    async fn record(&self, actor: &Actor, action: &str, what: &str, message: &str) {
        let t = now();
        let key = format!("{action} {what}");
        let due = match self.recent_audits.lock() {
            Ok(mut m) => {
                if m.len() >= MAX_REMEMBERED {
                    m.clear();
                }
                match m.get(&key) {
                    Some(at) if t - at < AUDIT_EVERY_SECONDS => false,
                    _ => {
                        m.insert(key, t);
                        true
                    }
                }
            }
            Err(_) => true,
        };
        if !due {
            return;
        }
        let record = audit_record(actor, action, what, message, t);
        if let Err(e) = self.meta.add_audit(&record).await {
            tracing::error!(error = %e, "could not record a signature-policy decision");
        }
    }

    /// Prometheus lines for `/metrics`.
    pub fn render_metrics(&self) -> String {
        let c = &self.counters;
        let mut out = String::from(
            "# HELP wharf_signature_policy_decisions_total Manifest reads the signature policy checked, by outcome.\n\
             # TYPE wharf_signature_policy_decisions_total counter\n",
        );
        for (outcome, n) in [
            ("signed", &c.signed),
            ("refused", &c.refused),
            ("audited_unsigned", &c.audited),
            ("publisher", &c.publisher),
            ("signature_artifact", &c.artifact),
        ] {
            out.push_str(&format!(
                "wharf_signature_policy_decisions_total{{outcome=\"{outcome}\"}} {}\n",
                n.load(Ordering::Relaxed)
            ));
        }
        out
    }

    pub(crate) fn meta(&self) -> &dyn MetadataStore {
        self.meta.as_ref()
    }

    pub(crate) fn blobs(&self) -> &dyn BlobStore {
        self.blobs.as_ref()
    }

    pub(crate) fn verdicts(&self) -> &VerdictCache {
        &self.verdicts
    }
}

/// A signature payload or envelope blob of `repository`, read whole when it is at most
/// `limit` bytes: its bytes, or why it cannot be used.
async fn read_small_blob(
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

/// The audit record's detail: each rule's scope, mode and accepted kinds (keys and
/// certificates are named, not copied).
fn summary(document: &PolicyDocument) -> String {
    if document.rules.is_empty() {
        return format!("version {}: no rules", document.version);
    }
    let rules: Vec<String> = document
        .rules
        .iter()
        .map(|r| {
            let mut kinds = Vec::new();
            if let Some(d) = &r.dct {
                kinds.push(if d.roles.is_empty() {
                    "dct".to_owned()
                } else {
                    format!("dct[{}]", d.roles.join(","))
                });
            }
            if let Some(c) = &r.cosign {
                let names: Vec<&str> = c.keys.iter().map(|k| k.name.as_str()).collect();
                kinds.push(format!("cosign[{}]", names.join(",")));
            }
            if let Some(n) = &r.notation {
                let names: Vec<&str> = n.trust_store.iter().map(|k| k.name.as_str()).collect();
                kinds.push(format!("notation[{}]", names.join(",")));
            }
            format!("{} {} {}", r.scope, r.mode.as_str(), kinds.join("+"))
                .trim_end()
                .to_owned()
        })
        .collect();
    format!("version {}: {}", document.version, rules.join("; "))
}
