//! Failed-login throttling: after a few failures, a principal (and, with a higher
//! threshold, a source address) is locked out for an exponentially growing time.
//! Kept in memory: with SQLite one process serves the registry, so it sees every attempt;
//! a restart forgets the counters (documented in README.md).

use std::collections::HashMap;
use std::sync::Mutex;

/// Failures allowed per principal before lockouts start.
pub const PRINCIPAL_FREE_FAILURES: u32 = 5;
/// Failures allowed per source address (one address may serve many users: NAT, CI).
pub const ADDRESS_FREE_FAILURES: u32 = 20;
/// Longest lockout, in seconds.
pub const MAX_LOCK_SECONDS: i64 = 15 * 60;
/// Entries kept before the table starts over (bounds memory under a spraying attack).
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct Throttle {
    map: Mutex<HashMap<String, Entry>>,
}

#[derive(Clone, Copy, Default)]
struct Entry {
    failures: u32,
    locked_until: i64,
}

impl Throttle {
    /// Seconds left on the longest lockout among `keys`, if any.
    pub fn locked(&self, keys: &[(String, u32)], now: i64) -> Option<i64> {
        let map = self.map.lock().ok()?;
        keys.iter()
            .filter_map(|(k, _)| map.get(k))
            .map(|e| e.locked_until - now)
            .filter(|left| *left > 0)
            .max()
    }

    /// Count a failure for every key; each key past its free failures locks for
    /// 2^(excess) seconds, capped.
    pub fn failed(&self, keys: &[(String, u32)], now: i64) {
        let Ok(mut map) = self.map.lock() else { return };
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        for (k, free) in keys {
            let e = map.entry(k.clone()).or_default();
            e.failures = e.failures.saturating_add(1);
            if e.failures > *free {
                let excess = (e.failures - free).min(20);
                e.locked_until = now + (1i64 << excess).min(MAX_LOCK_SECONDS);
            }
        }
    }

    /// A successful login clears the principal's counter (not the address's: one good
    /// password must not reset a spray from the same address).
    pub fn succeeded(&self, key: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_free_failures_with_growing_delay() {
        let t = Throttle::default();
        let keys = [("p:alice".to_owned(), 2)];
        t.failed(&keys, 100);
        t.failed(&keys, 100);
        assert_eq!(t.locked(&keys, 100), None);
        t.failed(&keys, 100);
        assert_eq!(t.locked(&keys, 100), Some(2));
        t.failed(&keys, 100);
        assert_eq!(t.locked(&keys, 100), Some(4));
        assert_eq!(t.locked(&keys, 104), None);
        t.succeeded("p:alice");
        assert_eq!(t.locked(&keys, 100), None);
    }
}
