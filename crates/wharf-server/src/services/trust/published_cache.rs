//! Published trust state kept in memory per repository. Serving `timestamp.json` or
//! `targets.json` otherwise means reading every current role, unsealing the server keys
//! and parsing root, timestamp and snapshot on each GET (measured ~5× notary-server's
//! CPU per `targets.json`). An entry lives until the earliest expiry it depends on (then
//! the slow path re-signs) and is dropped by every trust write of this process; a write
//! bumps `generation` so a reader that started before it cannot store what it replaced.
//! Like the SQLite read cache, this relies on one process owning the metadata.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use wharf_store::TrustFile;

/// Longest an entry is trusted even when nothing expires sooner.
const MAX_AGE_SECONDS: i64 = 3600;
/// Repositories remembered before the cache starts over.
const MAX_REPOSITORIES: usize = 4096;

/// One repository's current published files, as a reader walking timestamp → snapshot →
/// role would find them.
pub struct Published {
    pub timestamp: TrustFile,
    /// Roles resolved through the snapshot so far (filled lazily).
    pub roles: RwLock<HashMap<String, TrustFile>>,
    /// Unix seconds after which the entry must not be served.
    pub valid_until: i64,
}

#[derive(Default)]
pub struct PublishedCache {
    generation: AtomicU64,
    map: RwLock<HashMap<String, Arc<Published>>>,
}

impl PublishedCache {
    pub fn start_read(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn get(&self, repository: &str, now: i64) -> Option<Arc<Published>> {
        let map = self.map.read().ok()?;
        map.get(repository).filter(|p| now < p.valid_until).cloned()
    }

    /// Remember `published` unless a write happened since `since`.
    pub fn fill(&self, since: u64, repository: &str, published: Arc<Published>) {
        let Ok(mut map) = self.map.write() else { return };
        if self.generation.load(Ordering::Acquire) != since {
            return;
        }
        if map.len() >= MAX_REPOSITORIES {
            map.clear();
        }
        map.insert(repository.to_owned(), published);
    }

    /// After a committed write to `repository` (or to all, with `None`).
    pub fn invalidate(&self, repository: Option<&str>) {
        let mut map = match self.map.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        self.generation.fetch_add(1, Ordering::AcqRel);
        match repository {
            Some(r) => {
                map.remove(r);
            }
            None => map.clear(),
        }
    }
}

/// How long a published state may be served: until the first of its expiries.
pub fn valid_until(now: i64, expiries: impl IntoIterator<Item = Option<i64>>) -> i64 {
    expiries
        .into_iter()
        .flatten()
        .fold(now + MAX_AGE_SECONDS, i64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(until: i64) -> Arc<Published> {
        Arc::new(Published {
            timestamp: TrustFile {
                role: "timestamp".into(),
                version: 1,
                sha256: String::new(),
                content: vec![1],
                created_at: 0,
            },
            roles: RwLock::new(HashMap::new()),
            valid_until: until,
        })
    }

    #[test]
    fn entries_expire_and_writes_win_over_slow_readers() {
        let cache = PublishedCache::default();
        let since = cache.start_read();
        cache.fill(since, "a", published(100));
        assert!(cache.get("a", 99).is_some());
        assert!(cache.get("a", 100).is_none(), "never served past its expiry");
        // A reader that began before a write must not store its (older) answer.
        let slow_reader = cache.start_read();
        cache.invalidate(Some("a"));
        cache.fill(slow_reader, "a", published(100));
        assert!(cache.get("a", 1).is_none());
        cache.fill(cache.start_read(), "b", published(100));
        cache.invalidate(None);
        assert!(cache.get("b", 1).is_none());
        assert_eq!(valid_until(10, [Some(50), None, Some(30)]), 30);
        assert_eq!(valid_until(10, [None]), 10 + MAX_AGE_SECONDS);
    }
}
