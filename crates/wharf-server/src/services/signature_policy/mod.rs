//! Server-side signature policy: whether a manifest read is answered, decided by the
//! registry for every client (docker without content trust, containerd, skopeo,
//! Kubernetes nodes), not by the client.
//!
//! Rules per scope (`document.rs`) carry a mode — `off`, `audit` (serve, but record and
//! count what enforce would refuse), `enforce` (refuse with `DENIED`) — and what counts as
//! signed: Docker Content Trust (`dct.rs`, the repository's current trust data verified as
//! docker does), cosign signatures (`cosign.rs`) and Notation signatures (`notation.rs`).
//! Any one accepted signature is enough. `admission.rs` decides each read; `outcomes.rs`
//! counts the decisions and records refusals in the audit log.
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

mod admission;
mod artifacts;
mod cosign;
mod dct;
pub mod document;
mod notation;
mod outcomes;
mod verdicts;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use wharf_store::{BlobStore, MetadataStore, StoreError};

use crate::auth::Scope;
use crate::clock::now;
use crate::services::access::{Actor, audit_record};
use crate::services::trust::{TrustError, TrustService};
pub use admission::Admission;
use admission::DctEntry;
pub use artifacts::{COSIGN_SIGNATURE_LAYER, NOTATION_ARTIFACT_TYPE, is_signature_artifact};
use document::{PolicyDocument, PolicyError, PolicyRule};
use outcomes::Counters;
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

/// Repositories (DCT views) and references (audit rate limit) remembered before starting over.
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
