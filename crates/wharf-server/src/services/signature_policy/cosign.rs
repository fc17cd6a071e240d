//! cosign signatures under the policy (verification arrives with `wharf_signatures::cosign`).

use wharf_store::Digest;

use super::document::CosignRequirement;
use super::{PolicyResult, SignaturePolicyService};

pub struct CosignVerifier;

impl CosignVerifier {
    pub fn new(_req: &CosignRequirement) -> Result<Self, String> {
        Err("cosign signatures are not supported by this build yet".into())
    }

    pub async fn signed(
        &self,
        _service: &SignaturePolicyService,
        _generation: u64,
        _repository: &str,
        _digest: &Digest,
    ) -> PolicyResult<Result<String, String>> {
        Ok(Err("cosign: not supported".into()))
    }
}
