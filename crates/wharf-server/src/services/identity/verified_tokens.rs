//! Access tokens already verified, remembered by each signing-key set until they expire.

use crate::auth::Caller;

/// Tokens already verified, until they expire: a client presents the same token on
/// every request, and the ECDSA check was ~18% of a manifest GET (measured).
#[derive(Default)]
pub(super) struct VerifiedTokens {
    map: std::sync::RwLock<std::collections::HashMap<String, (Caller, i64)>>,
}

/// Bound on remembered tokens; past it the memory starts over (tokens live minutes).
const VERIFIED_TOKENS_MAX: usize = 10_000;

impl VerifiedTokens {
    pub(super) fn get(&self, token: &str, now: i64) -> Option<Caller> {
        let map = self.map.read().ok()?;
        map.get(token)
            .filter(|(_, exp)| now < *exp)
            .map(|(c, _)| c.clone())
    }

    pub(super) fn put(&self, token: &str, caller: &Caller, exp: i64) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= VERIFIED_TOKENS_MAX {
                map.clear();
            }
            map.insert(token.to_owned(), (caller.clone(), exp));
        }
    }
}
