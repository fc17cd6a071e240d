//! Notation signatures under the policy: the image's referrers of artifact type
//! `application/vnd.cncf.notary.signature` (OCI 1.1 referrers API, or a manifest whose
//! config media type says so), each one's envelope blob verified by
//! `wharf_signatures::notation` against the rule's trust store and trusted identities.

use wharf_signatures::notation::{NotationPolicy, signature_envelope, verify};
use wharf_store::Digest;

use super::admission::read_small_blob;
use super::artifacts::NOTATION_ARTIFACT_TYPE;
use super::document::NotationRequirement;
use super::{PolicyResult, SignaturePolicyService};
use crate::clock::now;

/// Certificates expire and signatures carry expiry times: an answer is re-checked at
/// least this often, and never kept past the signature's own expiry.
const REVERIFY_SECONDS: i64 = 300;
/// Envelopes are small (the verifier refuses more than 1 MiB).
const MAX_ENVELOPE: u64 = 1024 * 1024;
/// Signatures looked at per image; more are ignored (and said so).
const MAX_SIGNATURES: usize = 32;

pub struct NotationVerifier {
    policy: NotationPolicy,
}

impl NotationVerifier {
    pub fn new(req: &NotationRequirement) -> Result<Self, String> {
        let roots: Vec<(&str, &str)> = req
            .trust_store
            .iter()
            .map(|c| (c.name.as_str(), c.certificate.as_str()))
            .collect();
        let identities: Vec<&str> = req.trusted_identities.iter().map(String::as_str).collect();
        let policy = NotationPolicy::from_pem(&roots, &identities).map_err(|e| format!("notation: {e}"))?;
        Ok(Self { policy })
    }

    /// Whether some Notation signature of `digest` verifies: who signed it, or why none
    /// did. Remembered per set of signature manifests (read on every call).
    pub async fn signed(
        &self,
        service: &SignaturePolicyService,
        generation: u64,
        repository: &str,
        digest: &Digest,
    ) -> PolicyResult<Result<String, String>> {
        let referrers = service
            .meta()
            .referrers(repository, digest, Some(NOTATION_ARTIFACT_TYPE))
            .await?;
        if referrers.is_empty() {
            return Ok(Err("Notation: no signature refers to this image".to_owned()));
        }
        let fingerprint = referrers
            .iter()
            .map(|r| r.digest.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let t = now();
        if let Some(answer) = service.verdicts().get(
            "notation",
            repository,
            digest.as_str(),
            &fingerprint,
            generation,
            t,
        ) {
            return Ok(answer);
        }
        let mut reasons = Vec::new();
        let mut until = t + REVERIFY_SECONDS;
        let mut answer = None;
        for referrer in referrers.iter().take(MAX_SIGNATURES) {
            match self
                .check_one(service, repository, digest, &referrer.digest)
                .await?
            {
                Ok((by, expiry)) => {
                    if let Some(e) = expiry {
                        until = until.min(e);
                    }
                    answer = Some(Ok(by));
                    break;
                }
                Err(why) => reasons.push(format!("signature {}: {why}", referrer.digest)),
            }
        }
        let answer = answer.unwrap_or_else(|| Err(format!("Notation: {}", reasons.join("; "))));
        service.verdicts().put(
            "notation",
            repository,
            digest.as_str(),
            fingerprint,
            generation,
            until,
            answer.clone(),
        );
        Ok(answer)
    }

    /// One signature manifest: (who signed, expiry) or why it does not count.
    async fn check_one(
        &self,
        service: &SignaturePolicyService,
        repository: &str,
        digest: &Digest,
        signature: &Digest,
    ) -> PolicyResult<Result<(String, Option<i64>), String>> {
        let Some(manifest) = service.meta().get_manifest(repository, signature).await? else {
            return Ok(Err("signature manifest is gone".to_owned()));
        };
        let envelope = match signature_envelope(&manifest.content) {
            Ok(e) => e,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let bytes = match read_small_blob(service, repository, &envelope.digest, MAX_ENVELOPE).await? {
            Ok(b) => b,
            Err(why) => return Ok(Err(why)),
        };
        let policy = &self.policy;
        let media_type = envelope.media_type.clone();
        let image = digest.as_str().to_owned();
        // Certificate chains and RSA checks: off the async workers.
        let verified = tokio::task::spawn_blocking({
            let policy = policy.clone();
            move || verify(&image, &media_type, &bytes, &policy, chrono::Utc::now())
        })
        .await
        .map_err(|e| super::SignaturePolicyError::Internal(format!("notation verification task: {e}")))?;
        Ok(match verified {
            Ok(accepted) => Ok((
                format!("Notation ({}, root {})", accepted.subject_dn, accepted.root_name),
                accepted.expiry.map(|e| e.timestamp()),
            )),
            Err(e) => Err(e.to_string()),
        })
    }
}
