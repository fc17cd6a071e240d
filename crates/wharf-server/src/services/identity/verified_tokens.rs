//! Access tokens already verified, remembered by each signing-key set until they expire.

use crate::auth::Caller;

/// Tokens already verified, until they expire: a client presents the same token on
/// every request, and the ECDSA check was ~18% of a manifest GET (measured).
#[derive(Default)]
pub(super) struct VerifiedTokens {
    /// Token → (caller, expiry, issued at).
    map: std::sync::RwLock<std::collections::HashMap<String, (Caller, i64, i64)>>,
}

/// Bound on remembered tokens; past it the memory starts over (tokens live minutes).
const VERIFIED_TOKENS_MAX: usize = 10_000;

impl VerifiedTokens {
    /// The caller and when its token was issued.
    pub(super) fn get(&self, token: &str, now: i64) -> Option<(Caller, i64)> {
        let map = self.map.read().ok()?;
        map.get(token)
            .filter(|(_, exp, _)| now < *exp)
            .map(|(c, _, iat)| (c.clone(), *iat))
    }

    pub(super) fn put(&self, token: &str, caller: &Caller, exp: i64, issued_at: i64) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= VERIFIED_TOKENS_MAX {
                map.clear();
            }
            map.insert(token.to_owned(), (caller.clone(), exp, issued_at));
        }
    }
}
