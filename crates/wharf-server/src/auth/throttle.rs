//! Failed-login throttling: after a few failures, a principal (and, with a higher
//! threshold, a source address) is locked out for an exponentially growing time.
//!
//! Attempts in flight count as well as failures: a key with `free` failures left lets
//! at most that many password checks run at once (one at a time once none are left), and
//! further attempts wait for those to finish, then see the lockout they caused. So a
//! burst of parallel wrong passwords costs exactly the checks a sequential one would —
//! it can no longer race past the lockout while the slow hash runs.
//!
//! Kept in memory: with SQLite one process serves the registry, so it sees every attempt;
//! a restart forgets the counters (documented in README.md).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::now;

/// Failures allowed per principal before lockouts start.
pub const PRINCIPAL_FREE_FAILURES: u32 = 5;
/// Failures allowed per source address (one address may serve many users: NAT, CI).
pub const ADDRESS_FREE_FAILURES: u32 = 20;
/// Longest lockout, in seconds.
pub const MAX_LOCK_SECONDS: i64 = 15 * 60;
/// Entries kept; past it the oldest entries that hold no lockout are dropped first, so
/// spraying fresh names cannot wipe real lockouts.
const MAX_ENTRIES: usize = 100_000;
/// How often a waiting attempt looks again even without a wake-up (a lock expiring
/// wakes nobody).
const RECHECK: Duration = Duration::from_millis(500);

#[derive(Default)]
pub struct Throttle {
    table: Mutex<Table>,
    /// Woken whenever an attempt ends.
    ended: Notify,
}

#[derive(Default)]
struct Table {
    entries: HashMap<String, Entry>,
    /// Keys in the order they were created, for eviction.
    order: VecDeque<String>,
}

#[derive(Clone, Copy, Default)]
struct Entry {
    failures: u32,
    locked_until: i64,
    in_flight: u32,
}

impl Entry {
    /// Checks that may run at once: the failures left before a lockout, at least one.
    fn room(&self, free: u32) -> u32 {
        free.saturating_sub(self.failures).max(1)
    }
}

/// One password check under way for its keys. Report how it went; dropping it (also on
/// an error in between) ends the attempt either way.
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    keys: Vec<(String, u32)>,
}

impl Throttle {
    /// Wait for a turn to check a password for `keys` (name, free failures), or the
    /// seconds left on a lockout of any of them.
    pub async fn begin(&self, keys: &[(String, u32)]) -> Result<Attempt<'_>, i64> {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Registered before looking, so an attempt ending in between still wakes us.
            ended.as_mut().enable();
            if self.try_begin(keys, now())? {
                return Ok(Attempt {
                    throttle: self,
                    keys: keys.to_vec(),
                });
            }
            let _ = tokio::time::timeout(RECHECK, ended).await;
        }
    }

    /// `Err(seconds)` when locked; `Ok(true)` when the attempt may run now.
    fn try_begin(&self, keys: &[(String, u32)], now: i64) -> Result<bool, i64> {
        let Ok(mut table) = self.table.lock() else {
            return Ok(true);
        };
        let left = keys
            .iter()
            .filter_map(|(k, _)| table.entries.get(k))
            .map(|e| e.locked_until - now)
            .max()
            .unwrap_or(0);
        if left > 0 {
            return Err(left);
        }
        let has_room = keys
            .iter()
            .all(|(k, free)| table.entries.get(k).is_none_or(|e| e.in_flight < e.room(*free)));
        if !has_room {
            return Ok(false);
        }
        for (k, _) in keys {
            table.entry(k, now).in_flight += 1;
        }
        Ok(true)
    }

    #[cfg(test)]
    fn failures(&self, key: &str) -> u32 {
        self.table
            .lock()
            .map(|t| t.entries.get(key).map_or(0, |e| e.failures))
            .unwrap_or(0)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().map(|t| t.entries.len()).unwrap_or(0)
    }
}

impl Table {
    fn entry(&mut self, key: &str, now: i64) -> &mut Entry {
        if !self.entries.contains_key(key) {
            if self.entries.len() >= MAX_ENTRIES {
                self.evict(now);
            }
            self.order.push_back(key.to_owned());
        }
        self.entries.entry(key.to_owned()).or_default()
    }

    /// Drop the oldest entry that neither locks anyone out nor has a check running;
    /// only when every entry does is the oldest dropped regardless.
    fn evict(&mut self, now: i64) {
        for _ in 0..self.order.len() {
            let Some(key) = self.order.pop_front() else { return };
            match self.entries.get(&key) {
                Some(e) if e.locked_until > now || e.in_flight > 0 => self.order.push_back(key),
                Some(_) => {
                    self.entries.remove(&key);
                    return;
                }
                None => {}
            }
        }
        if let Some(key) = self.order.pop_front() {
            self.entries.remove(&key);
        }
    }
}

impl Attempt<'_> {
    /// Count a failure for every key; each key past its free failures locks for
    /// 2^(excess) seconds, capped.
    pub fn failed(self, now: i64) {
        if let Ok(mut table) = self.throttle.table.lock() {
            for (k, free) in &self.keys {
                let e = table.entry(k, now);
                e.failures = e.failures.saturating_add(1);
                if e.failures > *free {
                    let excess = (e.failures - free).min(20);
                    e.locked_until = now + (1i64 << excess).min(MAX_LOCK_SECONDS);
                }
            }
        }
    }

    /// A successful login clears the principal's counter (`key`), not the address's:
    /// one good password must not reset a spray from the same address.
    pub fn succeeded(self, key: &str) {
        if let Ok(mut table) = self.throttle.table.lock()
            && let Some(e) = table.entries.get_mut(key)
        {
            e.failures = 0;
            e.locked_until = 0;
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Ok(mut table) = self.throttle.table.lock() {
            for (k, _) in &self.keys {
                if let Some(e) = table.entries.get_mut(k) {
                    e.in_flight = e.in_flight.saturating_sub(1);
                }
            }
        }
        self.throttle.ended.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn locks_after_free_failures_with_growing_delay() {
        let t = Throttle::default();
        let keys = [("p:alice".to_owned(), 2)];
        t.begin(&keys).await.unwrap().failed(100);
        t.begin(&keys).await.unwrap().failed(100);
        assert_eq!(t.try_begin(&keys, 100), Ok(true));
        let t = Throttle::default();
        for _ in 0..3 {
            assert!(t.try_begin(&keys, 100).unwrap());
            Attempt {
                throttle: &t,
                keys: keys.to_vec(),
            }
            .failed(100);
        }
        assert_eq!(t.try_begin(&keys, 100), Err(2));
        assert!(t.try_begin(&keys, 102).unwrap());
        Attempt {
            throttle: &t,
            keys: keys.to_vec(),
        }
        .failed(102);
        assert_eq!(t.try_begin(&keys, 102), Err(4));
        assert!(t.try_begin(&keys, 106).unwrap());
        Attempt {
            throttle: &t,
            keys: keys.to_vec(),
        }
        .succeeded("p:alice");
        assert_eq!(t.failures("p:alice"), 0);
        assert_eq!(t.try_begin(&keys, 106), Ok(true));
    }

    /// 60 parallel wrong passwords: the checks that run are exactly those a sequential
    /// client gets before the lockout (free failures + the one that locks).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_attempts_cannot_race_past_the_lockout() {
        let t = Arc::new(Throttle::default());
        let checks = Arc::new(AtomicU32::new(0));
        let keys = vec![("p:bob".to_owned(), PRINCIPAL_FREE_FAILURES)];
        let mut tasks = Vec::new();
        for _ in 0..60 {
            let (t, checks, keys) = (t.clone(), checks.clone(), keys.clone());
            tasks.push(tokio::spawn(async move {
                let Ok(attempt) = t.begin(&keys).await else { return };
                checks.fetch_add(1, Ordering::SeqCst);
                // The slow hash.
                tokio::time::sleep(Duration::from_millis(50)).await;
                attempt.failed(now());
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(checks.load(Ordering::SeqCst), PRINCIPAL_FREE_FAILURES + 1);
        assert!(t.try_begin(&keys, now()).is_err());
    }

    #[test]
    fn a_full_table_drops_old_unlocked_entries_not_lockouts() {
        let t = Throttle::default();
        let locked = [("p:victim".to_owned(), 0)];
        assert!(t.try_begin(&locked, 100).unwrap());
        Attempt {
            throttle: &t,
            keys: locked.to_vec(),
        }
        .failed(100);
        for i in 0..MAX_ENTRIES + 10 {
            let key = [(format!("p:spray{i}"), 5)];
            assert!(t.try_begin(&key, 100).unwrap());
            Attempt {
                throttle: &t,
                keys: key.to_vec(),
            }
            .failed(100);
        }
        assert!(t.len() <= MAX_ENTRIES);
        assert_eq!(t.try_begin(&locked, 100), Err(2));
        // The sprayed names evicted first were the oldest.
        assert_eq!(t.failures("p:spray0"), 0);
        assert_eq!(t.failures(&format!("p:spray{}", MAX_ENTRIES + 9)), 1);
    }
}
