//! Remembered cosign and Notation answers. An answer is keyed by the repository, the
//! image digest and the signature kind, and reused only while the signature manifests
//! found for the image are the same (`fingerprint`, looked up on every read), the policy
//! is the one it was made under (`generation`) and nothing it relied on has expired.

use std::collections::HashMap;
use std::sync::Mutex;

const MAX_ENTRIES: usize = 10_000;

struct Verdict {
    fingerprint: String,
    generation: u64,
    valid_until: i64,
    answer: Result<String, String>,
}

#[derive(Default)]
pub struct VerdictCache {
    map: Mutex<HashMap<(&'static str, String, String), Verdict>>,
}

impl VerdictCache {
    pub fn get(
        &self,
        kind: &'static str,
        repository: &str,
        digest: &str,
        fingerprint: &str,
        generation: u64,
        now: i64,
    ) -> Option<Result<String, String>> {
        let map = self.map.lock().ok()?;
        let v = map.get(&(kind, repository.to_owned(), digest.to_owned()))?;
        (v.fingerprint == fingerprint && v.generation == generation && now < v.valid_until)
            .then(|| v.answer.clone())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn put(
        &self,
        kind: &'static str,
        repository: &str,
        digest: &str,
        fingerprint: String,
        generation: u64,
        valid_until: i64,
        answer: Result<String, String>,
    ) {
        let Ok(mut map) = self.map.lock() else { return };
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(
            (kind, repository.to_owned(), digest.to_owned()),
            Verdict {
                fingerprint,
                generation,
                valid_until,
                answer,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_reused_only_for_the_same_signatures_policy_and_time() {
        let c = VerdictCache::default();
        c.put("cosign", "r", "d", "sig1".into(), 1, 100, Ok("k".into()));
        assert_eq!(c.get("cosign", "r", "d", "sig1", 1, 99), Some(Ok("k".into())));
        assert_eq!(
            c.get("cosign", "r", "d", "sig2", 1, 99),
            None,
            "signatures changed"
        );
        assert_eq!(c.get("cosign", "r", "d", "sig1", 2, 99), None, "policy changed");
        assert_eq!(c.get("cosign", "r", "d", "sig1", 1, 100), None, "expired");
        assert_eq!(c.get("notation", "r", "d", "sig1", 1, 99), None);
        assert_eq!(c.get("cosign", "r2", "d", "sig1", 1, 99), None);
    }
}
