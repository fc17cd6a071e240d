//! Locks on repositories and tags (ACR's `deleteEnabled` / `writeEnabled` set to false):
//! what owners set. The registry's writes check them inside their own transactions
//! (`RepositoryStore`), so a write and a lock change never interleave.

use async_trait::async_trait;

use crate::StoreResult;
use crate::metadata::AuditRecord;

/// A lock on a repository (`tag: None`) or one of its tags. At least one attribute is set:
/// a lock with neither does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub tag: Option<String>,
    /// Deletion is refused (ACR `deleteEnabled: false`).
    pub no_delete: bool,
    /// New content is refused, and so is deletion (ACR `writeEnabled: false`, which locks
    /// an image against both).
    pub no_write: bool,
    /// When an owner last changed it (unix seconds).
    pub updated_at: i64,
}

/// One owner's change to the lock of a repository (`tag: None`) or tag; an attribute left
/// `None` keeps its current value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockChange {
    pub tag: Option<String>,
    pub no_delete: Option<bool>,
    pub no_write: Option<bool>,
}

/// What `LockStore::change_lock` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockChangeOutcome {
    /// The lock as it now stands; `None` when neither attribute is set any more.
    Changed(Option<Lock>),
    /// No such repository: nothing changed, nothing audited.
    RepositoryUnknown,
    /// The repository has no such tag: nothing changed, nothing audited.
    TagUnknown,
}

#[async_trait]
pub trait LockStore: Send + Sync + 'static {
    /// Every lock of `repository`: its own first, then its tags' in name order.
    async fn locks(&self, repository: &str) -> StoreResult<Vec<Lock>>;
    /// Apply `change` (the repository, or a tag it holds, must exist) with its audit record,
    /// in one transaction that registry writes of the repository cannot interleave with.
    async fn change_lock(
        &self,
        repository: &str,
        change: &LockChange,
        audit: &AuditRecord,
    ) -> StoreResult<LockChangeOutcome>;
}

/// Which locks stand in the way of one registry write: the backends run the same query
/// inside the write's transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LockScope<'a> {
    /// Storing a manifest, by tag (`Some`) or by digest: `no_write` of the repository or
    /// of that tag.
    Write(Option<&'a str>),
    /// Deleting a tag: any lock of the repository or of the tag.
    DeleteTag(&'a str),
    /// Deleting a manifest, which takes its tags with it: any lock of the repository or
    /// of a tag pointing at it.
    DeleteManifest(&'a crate::Digest),
    /// Deleting the repository: any lock in it.
    Repository,
    /// Unlinking a blob: any lock of the repository itself.
    Blob,
}

impl LockScope<'_> {
    /// The query (`$1` the repository id, `$2` the second value returned) for the first
    /// lock in the way, the repository's own ('' sorts first) before a tag's.
    pub(crate) fn query(self) -> (&'static str, String) {
        match self {
            Self::Write(tag) => (
                "SELECT tag, no_delete, no_write, updated_at FROM locks
                  WHERE repository_id = $1 AND no_write = 1 AND (tag = '' OR tag = $2)
                  ORDER BY tag LIMIT 1",
                tag.unwrap_or("").to_owned(),
            ),
            Self::DeleteTag(tag) => (
                "SELECT tag, no_delete, no_write, updated_at FROM locks
                  WHERE repository_id = $1 AND (tag = '' OR tag = $2)
                  ORDER BY tag LIMIT 1",
                tag.to_owned(),
            ),
            Self::DeleteManifest(digest) => (
                "SELECT tag, no_delete, no_write, updated_at FROM locks
                  WHERE repository_id = $1
                    AND (tag = '' OR tag IN (SELECT name FROM tags WHERE repository_id = $1 AND manifest_digest = $2))
                  ORDER BY tag LIMIT 1",
                digest.as_str().to_owned(),
            ),
            // `$2` is '' here: every lock in the repository counts.
            Self::Repository => (
                "SELECT tag, no_delete, no_write, updated_at FROM locks
                  WHERE repository_id = $1 AND tag >= $2
                  ORDER BY tag LIMIT 1",
                String::new(),
            ),
            Self::Blob => (
                "SELECT tag, no_delete, no_write, updated_at FROM locks
                  WHERE repository_id = $1 AND tag = $2",
                String::new(),
            ),
        }
    }
}

/// A lock row's `tag` column: '' is the repository itself.
pub(crate) fn tag_key(tag: Option<&str>) -> &str {
    tag.unwrap_or("")
}

pub(crate) fn lock_from_row(tag: String, no_delete: i64, no_write: i64, updated_at: i64) -> Lock {
    Lock {
        tag: (!tag.is_empty()).then_some(tag),
        no_delete: no_delete != 0,
        no_write: no_write != 0,
        updated_at,
    }
}

/// The lock after `change`: attributes it leaves `None` keep their value.
pub(crate) fn next_lock(change: &LockChange, current: Option<&Lock>, now: i64) -> Option<Lock> {
    let no_delete = change
        .no_delete
        .unwrap_or_else(|| current.is_some_and(|l| l.no_delete));
    let no_write = change
        .no_write
        .unwrap_or_else(|| current.is_some_and(|l| l.no_write));
    (no_delete || no_write).then(|| Lock {
        tag: change.tag.clone(),
        no_delete,
        no_write,
        updated_at: now,
    })
}
