//! Storage quotas: the most bytes a scope — the registry, one repository, every
//! repository under a prefix — may hold, and the check a push passes before anything it
//! sends is kept.
//!
//! What a quota measures is `UsageStore::scope_usage`: the scope's distinct linked blobs
//! (a layer several of its repositories share counted once) plus its manifests; for the
//! registry, everything stored. A blob the scope already links costs nothing, so a
//! re-push of the same image always passes. The most specific rule covering a repository
//! decides (as for the signature policy): a repository rule inside a prefix rule replaces
//! it for that repository rather than adding to it.
//!
//! The document is stored in the settings store as the signature policy is: versioned,
//! replaced under a compare-and-swap with its audit record (`quota.update`), held in
//! memory and re-read by every replica once a second (`replica_sync.rs`).
//!
//! Concurrency: check, then write. Two pushes into one scope each see the usage before
//! the other's blob is linked, so a scope can end up over its limit by what was in flight
//! at once (bounded by the uploads finishing concurrently); the next push then fails.
//! Holding a lock per scope across the commit of an upload would serialise every push of
//! a team on one replica and still not cover other replicas.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use wharf_store::{Digest, MetadataStore, StoreError, UsageScope};

use crate::auth::Scope;
use crate::clock::now;
use crate::services::access::{Actor, audit_record};
use crate::services::signature_policy::document::most_specific;
use crate::services::{RegistryError, RegistryResult};

/// Settings key of the quota document (JSON, `QuotaDocument`).
pub const QUOTAS_SETTING: &str = "quotas";
const EMPTY_QUOTAS: &[u8] = br#"{"version":0,"rules":[]}"#;
/// Enough for one rule per team or repository; every push reads the rules from memory.
const MAX_RULES: usize = 1000;

/// One limit. `max_bytes` is read as any JSON number so that `0`, `-1` and `1.5` get
/// this service's message rather than a deserialiser's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaRule {
    /// `registry`, `repository:<name>` or `repository:<prefix>/*`.
    pub scope: String,
    pub max_bytes: serde_json::Number,
}

/// All quotas. `version` counts stored changes; a write naming an older one is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaDocument {
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub rules: Vec<QuotaRule>,
}

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("the quota document is not valid JSON of the expected shape: {0}")]
    Malformed(String),
    #[error("rule {index}: scope {scope:?} must be registry, repository:<name> or repository:<prefix>/*")]
    Scope { index: usize, scope: String },
    #[error("rule {index}: scope {scope:?} appears twice")]
    DuplicateScope { index: usize, scope: String },
    #[error("rule {index} ({scope}): max_bytes must be a whole number of bytes greater than 0, not {value}")]
    MaxBytes {
        index: usize,
        scope: String,
        value: String,
    },
    #[error(
        "the quotas changed since version {read} was read (they are now version {current}); read them again and reapply the change"
    )]
    VersionConflict { read: u64, current: u64 },
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A rule ready for the push path: its scope parsed, its limit a number.
#[derive(Debug, Clone)]
struct Limit {
    scope: Scope,
    /// As the owner wrote it (trimmed), for messages.
    scope_text: String,
    max_bytes: u64,
}

struct Compiled {
    stored: Vec<u8>,
    document: QuotaDocument,
    limits: Vec<(Scope, Limit)>,
}

impl QuotaDocument {
    pub fn parse(bytes: &[u8]) -> Result<Self, QuotaError> {
        serde_json::from_slice(bytes).map_err(|e| QuotaError::Malformed(e.to_string()))
    }

    /// Every rule checked; the scopes and limits in rule order.
    fn limits(&self) -> Result<Vec<(Scope, Limit)>, QuotaError> {
        if self.rules.len() > MAX_RULES {
            return Err(QuotaError::Malformed(format!(
                "at most {MAX_RULES} rules, got {}",
                self.rules.len()
            )));
        }
        let mut limits: Vec<(Scope, Limit)> = Vec::with_capacity(self.rules.len());
        for (index, rule) in self.rules.iter().enumerate() {
            let scope_text = rule.scope.trim();
            let scope = Scope::parse(scope_text).ok_or_else(|| QuotaError::Scope {
                index,
                scope: rule.scope.clone(),
            })?;
            if limits.iter().any(|(s, _)| *s == scope) {
                return Err(QuotaError::DuplicateScope {
                    index,
                    scope: rule.scope.clone(),
                });
            }
            let max_bytes =
                rule.max_bytes
                    .as_u64()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| QuotaError::MaxBytes {
                        index,
                        scope: scope_text.to_owned(),
                        value: rule.max_bytes.to_string(),
                    })?;
            limits.push((
                scope.clone(),
                Limit {
                    scope,
                    scope_text: scope_text.to_owned(),
                    max_bytes,
                },
            ));
        }
        Ok(limits)
    }
}

fn compile(stored: &[u8]) -> Result<Compiled, QuotaError> {
    let document = QuotaDocument::parse(stored)?;
    let limits = document.limits()?;
    Ok(Compiled {
        stored: stored.to_vec(),
        document,
        limits,
    })
}

/// Sizes in messages, in binary units as `wharf repository usage` prints them.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// What a push would add to its repository's scope.
pub enum Addition<'a> {
    /// A blob of this size (free when the scope already links it).
    Blob { digest: &'a Digest, size: u64 },
    /// A manifest's bytes (free when the repository already holds it).
    Manifest { digest: &'a Digest, size: u64 },
}

pub struct QuotaService {
    meta: Arc<dyn MetadataStore>,
    compiled: RwLock<Arc<Compiled>>,
}

impl QuotaService {
    pub async fn open(meta: Arc<dyn MetadataStore>) -> Result<Self, StoreError> {
        let stored = meta.init_setting(QUOTAS_SETTING, EMPTY_QUOTAS).await?;
        let compiled = compile(&stored).unwrap_or_else(|e| {
            // Only a document written by a newer or broken build gets here. Enforcing
            // nothing is the reading that loses no data; the operator is told loudly.
            tracing::error!(error = %e, "stored quotas are not valid; no quota applied");
            compile(EMPTY_QUOTAS).expect("the empty quota document is valid")
        });
        Ok(Self {
            meta,
            compiled: RwLock::new(Arc::new(compiled)),
        })
    }

    fn current(&self) -> Arc<Compiled> {
        match self.compiled.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn install(&self, compiled: Compiled) {
        let compiled = Arc::new(compiled);
        match self.compiled.write() {
            Ok(mut c) => *c = compiled,
            Err(p) => *p.into_inner() = compiled,
        }
    }

    /// The quotas as stored (and as the admin API shows them).
    pub fn document(&self) -> QuotaDocument {
        self.current().document.clone()
    }

    /// Take up quotas another replica stored.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let Some(stored) = self.meta.get_setting(QUOTAS_SETTING).await? else {
            return Ok(());
        };
        if stored != self.current().stored {
            match compile(&stored) {
                Ok(c) => self.install(c),
                Err(e) => {
                    tracing::error!(error = %e, "stored quotas are not valid; keeping the previous ones")
                }
            }
        }
        Ok(())
    }

    /// Replace the quotas. `document.version` must be the version the caller read; the
    /// stored one becomes the next. Checked whole before anything is written; stored with
    /// its audit record under a compare-and-swap on the stored bytes.
    pub async fn replace(
        &self,
        actor: &Actor,
        mut document: QuotaDocument,
    ) -> Result<QuotaDocument, QuotaError> {
        let limits = document.limits()?;
        let stored = self
            .meta
            .get_setting(QUOTAS_SETTING)
            .await?
            .unwrap_or_else(|| EMPTY_QUOTAS.to_vec());
        let current = QuotaDocument::parse(&stored).map(|d| d.version).unwrap_or(0);
        if document.version != current {
            return Err(QuotaError::VersionConflict {
                read: document.version,
                current,
            });
        }
        document.version = current + 1;
        // Stored as read: scopes trimmed, limits as plain integers.
        for (rule, (_, limit)) in document.rules.iter_mut().zip(&limits) {
            rule.scope = limit.scope_text.clone();
            rule.max_bytes = limit.max_bytes.into();
        }
        let bytes = serde_json::to_vec(&document)
            .map_err(|e| QuotaError::Internal(format!("quotas not serialisable: {e}")))?;
        let summary = summary(document.version, &limits);
        let record = audit_record(actor, "quota.update", "registry", &summary, now());
        let written = self
            .meta
            .update_settings_if(
                QUOTAS_SETTING,
                &stored,
                &[(QUOTAS_SETTING, Some(&bytes))],
                &record,
            )
            .await?;
        if !written {
            return Err(QuotaError::VersionConflict {
                read: current,
                current: current + 1,
            });
        }
        self.install(compile(&bytes)?);
        tracing::info!(actor = %actor.name, quotas = %summary, "quotas changed");
        Ok(document)
    }

    /// Whether `repository` may take `addition`: refused with `QuotaExceeded` when the
    /// most specific quota covering it would be exceeded. No rule covering it: no query.
    /// One usage query otherwise (plus a manifest lookup for manifests).
    pub async fn admit(&self, repository: &str, addition: Addition<'_>) -> RegistryResult<()> {
        let compiled = self.current();
        let Some(limit) = most_specific(&compiled.limits, repository) else {
            return Ok(());
        };
        let usage_scope = match &limit.scope {
            Scope::Registry => UsageScope::Registry,
            Scope::Repository(name) => UsageScope::Repository(name),
            Scope::Prefix(prefix) => UsageScope::Prefix(prefix),
        };
        let (blob, size) = match addition {
            Addition::Blob { digest, size } => (Some(digest), size),
            Addition::Manifest { digest, size } => {
                if self.meta.get_manifest(repository, digest).await?.is_some() {
                    return Ok(());
                }
                (None, size)
            }
        };
        let usage = self.meta.scope_usage(usage_scope, blob).await?;
        if usage.holds_blob || usage.linked_bytes.saturating_add(size) <= limit.max_bytes {
            return Ok(());
        }
        tracing::info!(
            repository,
            scope = %limit.scope_text,
            used = usage.linked_bytes,
            adding = size,
            max_bytes = limit.max_bytes,
            "push refused: quota exceeded"
        );
        Err(RegistryError::QuotaExceeded(format!(
            "quota exceeded for {scope}: {used} used + {adding} would exceed {max} (raise it with: wharf quota set {scope} <bytes>)",
            scope = limit.scope_text,
            used = human_bytes(usage.linked_bytes),
            adding = human_bytes(size),
            max = human_bytes(limit.max_bytes),
        )))
    }

    /// Whether any quota covers `repository` (callers skip size look-ups otherwise).
    pub fn applies_to(&self, repository: &str) -> bool {
        most_specific(&self.current().limits, repository).is_some()
    }
}

/// The audit record's detail: every scope and its limit in bytes.
fn summary(version: u64, limits: &[(Scope, Limit)]) -> String {
    if limits.is_empty() {
        return format!("version {version}: no quotas");
    }
    let rules: Vec<String> = limits
        .iter()
        .map(|(_, l)| format!("{} {}", l.scope_text, l.max_bytes))
        .collect();
    format!("version {version}: {}", rules.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str) -> Result<Vec<(Scope, Limit)>, String> {
        QuotaDocument::parse(json.as_bytes())
            .and_then(|d| d.limits())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn documents_are_checked_whole_with_exact_messages() {
        let limits = check(
            r#"{"rules":[{"scope":" repository:team/* ","max_bytes":1024},{"scope":"registry","max_bytes":5}]}"#,
        )
        .unwrap();
        assert_eq!(limits[0].0, Scope::Prefix("team/".into()));
        assert_eq!(limits[0].1.scope_text, "repository:team/*");
        assert_eq!(limits[0].1.max_bytes, 1024);
        for (value, shown) in [("0", "0"), ("-1", "-1"), ("1.5", "1.5")] {
            assert_eq!(
                check(&format!(
                    r#"{{"rules":[{{"scope":"registry","max_bytes":{value}}}]}}"#
                ))
                .unwrap_err(),
                format!(
                    "rule 0 (registry): max_bytes must be a whole number of bytes greater than 0, not {shown}"
                )
            );
        }
        assert_eq!(
            check(r#"{"rules":[{"scope":"repository:Team/*","max_bytes":1}]}"#).unwrap_err(),
            "rule 0: scope \"repository:Team/*\" must be registry, repository:<name> or repository:<prefix>/*"
        );
        assert_eq!(
            check(r#"{"rules":[{"scope":"registry","max_bytes":1},{"scope":"registry","max_bytes":2}]}"#)
                .unwrap_err(),
            "rule 1: scope \"registry\" appears twice"
        );
        assert!(
            check(r#"{"rules":[{"scope":"registry","max_bytes":1,"soft":true}]}"#)
                .unwrap_err()
                .starts_with(
                    "the quota document is not valid JSON of the expected shape: unknown field `soft`, expected `scope` or `max_bytes`"
                )
        );
        assert!(
            check(r#"{"rules":[{"scope":"registry","max_bytes":"10GiB"}]}"#)
                .unwrap_err()
                .starts_with("the quota document is not valid JSON of the expected shape: invalid type: string \"10GiB\"")
        );
    }

    #[test]
    fn the_most_specific_quota_decides_and_sizes_read_in_binary_units() {
        let limits = check(
            r#"{"rules":[{"scope":"registry","max_bytes":1},{"scope":"repository:team/*","max_bytes":2},{"scope":"repository:team/app","max_bytes":3}]}"#,
        )
        .unwrap();
        let max = |repo: &str| most_specific(&limits, repo).map(|l| l.max_bytes);
        assert_eq!(max("other"), Some(1));
        assert_eq!(max("team/web"), Some(2));
        assert_eq!(max("team/app"), Some(3));
        assert_eq!(most_specific(&limits[1..], "other").map(|l| l.max_bytes), None);
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(300 << 20), "300.0 MiB");
    }
}
