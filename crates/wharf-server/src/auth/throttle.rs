//! Failed-login throttling: after a few failures, a principal (and, with a higher
//! threshold, a source address) is locked out for an exponentially growing time.
//!
//! Failure counts and lockouts live in the metadata database, so every replica sees
//! them: guessing through five replicas costs what guessing through one does, and a
//! restart forgets nothing.
//!
//! Attempts in flight count as well as failures: a key with `free` failures left lets
//! at most that many password checks run at once in this process (one at a time once
//! none are left), and further attempts wait for those to finish, then see the lockout
//! they caused. So a burst of parallel wrong passwords costs exactly the checks a
//! sequential one would — it cannot race past the lockout while the slow hash runs. The
//! in-flight count is per replica (it only lives for the length of a hash); across N
//! replicas a burst can run at most N times that many checks before the shared lockout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use wharf_store::{LoginFailures, MetadataStore, StoreError};

use crate::clock::now;

/// Failures allowed per principal before lockouts start.
pub const PRINCIPAL_FREE_FAILURES: u32 = 5;
/// Failures allowed per source address (one address may serve many users: NAT, CI).
pub const ADDRESS_FREE_FAILURES: u32 = 20;
/// Longest lockout, in seconds.
pub const MAX_LOCK_SECONDS: i64 = 15 * 60;
/// How often a waiting attempt looks again even without a wake-up (a lock expiring, or
/// an attempt ending on another replica, wakes nobody here).
const RECHECK: Duration = Duration::from_millis(500);

pub struct Throttle {
    store: Arc<dyn MetadataStore>,
    /// Password checks running now in this process, per key (absent = none).
    in_flight: Mutex<HashMap<String, u32>>,
    /// Woken whenever an attempt ends.
    ended: Notify,
    /// Attempts ended so far, counted under the `in_flight` lock: a caller that read the
    /// stored failures before an attempt ended must not count that attempt's slot as free
    /// (its failure, written before it ended, is missing from what the caller read).
    ends: std::sync::atomic::AtomicU64,
}

/// Why an attempt may not run.
#[derive(Debug, thiserror::Error)]
pub enum ThrottleRefusal {
    #[error("locked out for {0} more seconds")]
    Locked(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One password check under way for its keys. Report how it went; dropping it (also on
/// an error in between) ends the attempt either way.
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    keys: Vec<(String, u32)>,
}

/// Checks that may run at once for a key: the failures left before a lockout, at least one.
fn room(failures: u32, free: u32) -> u32 {
    free.saturating_sub(failures).max(1)
}

/// The lockout after `failures` failures of a key allowing `free`: none within the free
/// ones, then 2, 4, 8 … seconds up to `MAX_LOCK_SECONDS`.
fn lock_seconds(failures: u32, free: u32) -> Option<i64> {
    (failures > free).then(|| (1i64 << (failures - free).min(20)).min(MAX_LOCK_SECONDS))
}

impl Throttle {
    pub fn new(store: Arc<dyn MetadataStore>) -> Self {
        Self {
            store,
            in_flight: Mutex::new(HashMap::new()),
            ended: Notify::new(),
            ends: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Wait for a turn to check a password for `keys` (name, free failures), or the
    /// seconds left on a lockout of any of them.
    pub async fn begin(&self, keys: &[(String, u32)]) -> Result<Attempt<'_>, ThrottleRefusal> {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Registered before looking, so an attempt ending in between still wakes us.
            ended.as_mut().enable();
            if self.try_begin(keys, now()).await? {
                return Ok(Attempt {
                    throttle: self,
                    keys: keys.to_vec(),
                });
            }
            let _ = tokio::time::timeout(RECHECK, ended).await;
        }
    }

    /// `Locked(seconds)` when locked; `Ok(true)` when the attempt may run now (it then
    /// counts as in flight).
    async fn try_begin(&self, keys: &[(String, u32)], now: i64) -> Result<bool, ThrottleRefusal> {
        use std::sync::atomic::Ordering;
        let ends_before = self.ends.load(Ordering::Acquire);
        let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        let stored = self.store.login_failures(&names).await?;
        let of = |key: &str| stored.iter().find(|f| f.key == key);
        let left = stored.iter().map(|f| f.locked_until - now).max().unwrap_or(0);
        if left > 0 {
            return Err(ThrottleRefusal::Locked(left));
        }
        let Ok(mut in_flight) = self.in_flight.lock() else {
            return Ok(true);
        };
        if self.ends.load(Ordering::Acquire) != ends_before {
            // An attempt ended while the failures were read: read them again (its end
            // also woke `begin`, so the retry is immediate).
            return Ok(false);
        }
        let has_room = keys.iter().all(|(k, free)| {
            let failures = of(k).map_or(0, |f: &LoginFailures| f.failures);
            in_flight.get(k).copied().unwrap_or(0) < room(failures, *free)
        });
        if !has_room {
            return Ok(false);
        }
        for (k, _) in keys {
            *in_flight.entry(k.clone()).or_default() += 1;
        }
        Ok(true)
    }
}

impl Attempt<'_> {
    /// The password was wrong: count it for every key, locking those past their free
    /// failures. The attempt ends (waiters wake) only after the lock is stored.
    pub async fn failed(self, now: i64) -> Result<(), StoreError> {
        for (key, free) in &self.keys {
            let failures = self.throttle.store.add_login_failure(key, now).await?;
            if let Some(secs) = lock_seconds(failures, *free) {
                self.throttle.store.lock_login(key, now + secs).await?;
            }
        }
        Ok(())
    }

    pub async fn succeeded(self, key: &str) -> Result<(), StoreError> {
        self.throttle.store.clear_login_failures(key).await
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.throttle.in_flight.lock() {
            self.throttle
                .ends
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            for (k, _) in &self.keys {
                if let Some(n) = in_flight.get_mut(k) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        in_flight.remove(k);
                    }
                }
            }
        }
        self.throttle.ended.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use wharf_store::SqliteMetadataStore;

    use super::*;

    async fn throttle() -> (tempfile::TempDir, Arc<dyn MetadataStore>, Arc<Throttle>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn MetadataStore> =
            Arc::new(SqliteMetadataStore::open(&dir.path().join("m.db")).await.unwrap());
        let t = Arc::new(Throttle::new(store.clone()));
        (dir, store, t)
    }

    fn locked(r: Result<bool, ThrottleRefusal>) -> Option<i64> {
        match r {
            Err(ThrottleRefusal::Locked(s)) => Some(s),
            _ => None,
        }
    }

    /// Whether an attempt may run at `at`; one that may is ended at once.
    async fn may_begin(t: &Throttle, keys: &[(String, u32)], at: i64) -> bool {
        let may = t.try_begin(keys, at).await.unwrap();
        if may {
            drop(Attempt {
                throttle: t,
                keys: keys.to_vec(),
            });
        }
        may
    }

    async fn fail(t: &Throttle, keys: &[(String, u32)], at: i64) {
        assert!(t.try_begin(keys, at).await.unwrap());
        Attempt {
            throttle: t,
            keys: keys.to_vec(),
        }
        .failed(at)
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn locks_after_free_failures_with_growing_delay() {
        let (_d, _s, t) = throttle().await;
        let keys = [("p:alice".to_owned(), 2)];
        for _ in 0..3 {
            fail(&t, &keys, 100).await;
        }
        assert_eq!(locked(t.try_begin(&keys, 100).await), Some(2));
        fail(&t, &keys, 102).await;
        assert_eq!(locked(t.try_begin(&keys, 102).await), Some(4));
        assert!(may_begin(&t, &keys, 106).await);
        assert!(t.try_begin(&keys, 106).await.unwrap());
        Attempt {
            throttle: &t,
            keys: keys.to_vec(),
        }
        .succeeded("p:alice")
        .await
        .unwrap();
        assert!(may_begin(&t, &keys, 106).await);
        for _ in 0..3 {
            fail(&t, &keys, 200).await;
        }
        assert_eq!(
            locked(t.try_begin(&keys, 200).await),
            Some(2),
            "success did not reset the count"
        );
    }

    /// The counters are the database's: a second replica (another `Throttle` on the same
    /// store) sees the first one's lockout and adds to its count.
    #[tokio::test]
    async fn replicas_share_counts_and_lockouts() {
        let (_d, store, a) = throttle().await;
        let b = Throttle::new(store);
        let keys = [("p:carol".to_owned(), 2)];
        fail(&a, &keys, 100).await;
        fail(&b, &keys, 100).await;
        fail(&a, &keys, 100).await;
        assert_eq!(locked(b.try_begin(&keys, 100).await), Some(2));
        assert_eq!(locked(a.try_begin(&keys, 100).await), Some(2));
    }

    /// 60 parallel wrong passwords: the checks that run are exactly those a sequential
    /// client gets before the lockout (free failures + the one that locks).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_attempts_cannot_race_past_the_lockout() {
        let (_d, _s, t) = throttle().await;
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
                attempt.failed(now()).await.unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(checks.load(Ordering::SeqCst), PRINCIPAL_FREE_FAILURES + 1);
        assert!(locked(t.try_begin(&keys, now()).await).is_some());
    }

    #[tokio::test]
    async fn pruning_forgets_old_failures_but_never_a_running_lockout() {
        let (_d, store, t) = throttle().await;
        let victim = [("p:victim".to_owned(), 0)];
        let sprayed = [("p:spray".to_owned(), 5)];
        fail(&t, &victim, 100).await;
        fail(&t, &sprayed, 100).await;
        // The victim's lock runs to 102; prune everything last touched before 101.
        assert_eq!(store.prune_login_failures(101).await.unwrap(), 1);
        assert_eq!(locked(t.try_begin(&victim, 100).await), Some(2));
        assert_eq!(
            store.login_failures(&["p:spray".to_owned()]).await.unwrap(),
            vec![]
        );
    }
}
