//! Access tokens that stop working before they expire: those of a principal deleted, or
//! whose secret was reset or disabled, issued before that moment. Tokens are checked
//! against this on every request — also when the verified-token memory answers — so a
//! deleted user's token is refused at once instead of living out its minutes.
//!
//! In memory: with SQLite one process issues and checks every token. An entry is needed
//! only as long as a token issued before it can still be valid, so entries older than
//! the longest token lifetime are dropped.

use std::collections::HashMap;
use std::sync::RwLock;

#[derive(Default)]
pub struct Revocations {
    /// Principal name → tokens issued at or before this time (ms) are refused.
    since: RwLock<HashMap<String, i64>>,
}

impl Revocations {
    /// Refuse `principal`'s tokens issued up to `at_ms`; forget revocations no token
    /// issued before them can outlive (`max_token_lifetime` seconds).
    pub fn revoke(&self, principal: &str, at_ms: i64, max_token_lifetime: i64) {
        if let Ok(mut since) = self.since.write() {
            since.retain(|_, t| *t + max_token_lifetime * 1000 >= at_ms);
            since.insert(principal.to_owned(), at_ms);
        }
    }

    /// Whether a token of `principal` issued at `issued_at_ms` was revoked.
    pub fn is_revoked(&self, principal: &str, issued_at: i64) -> bool {
        self.since
            .read()
            .ok()
            .and_then(|s| s.get(principal).copied())
            .is_some_and(|at| issued_at <= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_issued_before_a_revocation_are_refused_later_ones_pass() {
        let r = Revocations::default();
        assert!(!r.is_revoked("alice", 100));
        r.revoke("alice", 100_000, 360);
        assert!(r.is_revoked("alice", 99_999) && r.is_revoked("alice", 100_000));
        // The same second, a millisecond later: a fresh login after the change.
        assert!(!r.is_revoked("alice", 100_001));
        assert!(!r.is_revoked("bob", 50));
        // Once no token from before it can be valid, the entry goes.
        r.revoke("bob", 500_000, 360);
        assert!(!r.is_revoked("alice", 99_999));
        assert!(r.is_revoked("bob", 500_000));
    }
}
