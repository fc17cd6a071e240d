//! Notation signatures under the policy (verification arrives with `wharf_signatures::notation`).

use wharf_store::Digest;

use super::document::NotationRequirement;
use super::{PolicyResult, SignaturePolicyService};

pub struct NotationVerifier;

impl NotationVerifier {
    pub fn new(_req: &NotationRequirement) -> Result<Self, String> {
        Err("Notation signatures are not supported by this build yet".into())
    }

    pub async fn signed(
        &self,
        _service: &SignaturePolicyService,
        _generation: u64,
        _repository: &str,
        _digest: &Digest,
    ) -> PolicyResult<Result<String, String>> {
        Ok(Err("Notation: not supported".into()))
    }
}
