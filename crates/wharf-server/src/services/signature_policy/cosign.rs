//! cosign signatures under the policy: the `sha256-<hex>.sig` manifest of an image (as
//! cosign and skopeo store them), its payload blobs, verified by
//! `wharf_signatures::cosign` against the rule's public keys.

use wharf_signatures::cosign::{CosignKey, signature_layers, signature_tag, verify};
use wharf_store::Digest;

use super::admission::read_small_blob;
use super::document::CosignRequirement;
use super::{PolicyResult, SignaturePolicyService};
use crate::clock::now;

/// Key-based verdicts do not expire; re-verified at least this often anyway.
const REVERIFY_SECONDS: i64 = 3600;
/// cosign's payloads are small JSON documents (the verifier refuses more).
const MAX_PAYLOAD: u64 = 64 * 1024;

pub struct CosignVerifier {
    keys: Vec<CosignKey>,
}

impl CosignVerifier {
    pub fn new(req: &CosignRequirement) -> Result<Self, String> {
        let keys = req
            .keys
            .iter()
            .map(|k| {
                CosignKey::from_pem(k.name.clone(), &k.public_key)
                    .map_err(|e| format!("cosign key {:?}: {e}", k.name))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }

    /// Whether `digest` carries a cosign signature by one of the keys: the key's name, or
    /// why not. Remembered per signature manifest (a new signature, or a deleted one,
    /// changes the `.sig` tag's digest, which is read every time).
    pub async fn signed(
        &self,
        service: &SignaturePolicyService,
        generation: u64,
        repository: &str,
        digest: &Digest,
    ) -> PolicyResult<Result<String, String>> {
        let tag = match signature_tag(digest.as_str()) {
            Ok(t) => t,
            Err(e) => return Ok(Err(format!("cosign: {e}"))),
        };
        let Some(signatures) = service.meta().manifest_by_tag(repository, &tag).await? else {
            return Ok(Err(format!("cosign: no signature ({tag} does not exist)")));
        };
        let fingerprint = signatures.digest.as_str();
        let t = now();
        if let Some(answer) =
            service
                .verdicts()
                .get("cosign", repository, digest.as_str(), fingerprint, generation, t)
        {
            return Ok(answer);
        }
        let answer = self
            .verify(service, repository, digest, &signatures.content)
            .await?;
        service.verdicts().put(
            "cosign",
            repository,
            digest.as_str(),
            fingerprint.to_owned(),
            generation,
            t + REVERIFY_SECONDS,
            answer.clone(),
        );
        Ok(answer)
    }

    async fn verify(
        &self,
        service: &SignaturePolicyService,
        repository: &str,
        digest: &Digest,
        manifest: &[u8],
    ) -> PolicyResult<Result<String, String>> {
        let layers = match signature_layers(manifest) {
            Ok(l) => l,
            Err(e) => return Ok(Err(format!("cosign: {e}"))),
        };
        let mut with_payloads = Vec::with_capacity(layers.len());
        for layer in layers {
            match read_small_blob(service, repository, &layer.payload_digest, MAX_PAYLOAD).await? {
                Ok(payload) => with_payloads.push((layer, payload)),
                Err(why) => return Ok(Err(format!("cosign: {why}"))),
            }
        }
        Ok(match verify(digest.as_str(), &with_payloads, &self.keys) {
            Ok(accepted) => Ok(format!("cosign (key {})", accepted.key_name)),
            Err(e) => Err(format!("cosign: {e}")),
        })
    }
}
