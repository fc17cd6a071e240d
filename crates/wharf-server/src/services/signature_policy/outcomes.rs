//! What the policy's decisions leave behind: counters for `/metrics`, and audit records
//! of refusals (and of what `audit` mode let through), rate-limited per reference.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{MAX_REMEMBERED, SignaturePolicyService};
use crate::clock::now;
use crate::services::access::{Actor, audit_record};

#[derive(Default)]
pub(super) struct Counters {
    pub(super) signed: AtomicU64,
    pub(super) refused: AtomicU64,
    pub(super) audited: AtomicU64,
    pub(super) publisher: AtomicU64,
    pub(super) artifact: AtomicU64,
}

/// Refusals recorded in the audit log per repository and reference at most this often,
/// so a client retrying in a loop cannot flood the log.
const AUDIT_EVERY_SECONDS: i64 = 60;

impl SignaturePolicyService {
    /// An audit record of a refusal (or of what audit mode let through), at most once a
    /// minute per repository and reference on this replica.
    pub(super) async fn record(&self, actor: &Actor, action: &str, what: &str, message: &str) {
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
}
