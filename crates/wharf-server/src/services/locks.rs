//! Locks on repositories and tags (ACR's `deleteEnabled` / `writeEnabled`): owners set and
//! clear them here; the registry's writes are refused by the store, inside their own
//! transactions, and this module words the refusal.

use std::sync::Arc;

use wharf_store::{Lock, LockChange, LockChangeOutcome, MetadataStore};

use super::access::{Actor, audit_record};
use super::error::{RegistryError, RegistryResult};
use crate::clock::now;
use crate::names::{valid_repository_name, valid_tag};

/// What a refused request was about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Store a manifest or tag, upload or mount a blob, publish trust data.
    Write,
    /// Delete a tag, manifest, blob link or the repository.
    Delete,
}

/// The refusal for `attempt` in `repository` stopped by `lock`, naming the lock and the
/// command that lifts it, e.g. `tag "v1" of "team/app" is locked against writes (unlock
/// it with: wharf repository unlock team/app:v1 --no-write)`.
pub fn refusal(repository: &str, lock: &Lock, attempt: Attempt) -> RegistryError {
    let (subject, reference) = match &lock.tag {
        Some(tag) => (
            format!("tag {tag:?} of {repository:?}"),
            format!("{repository}:{tag}"),
        ),
        None => (format!("repository {repository:?}"), repository.to_owned()),
    };
    // Only the attributes that stop this attempt: a write is stopped by `no_write` alone.
    let no_delete = lock.no_delete && attempt == Attempt::Delete;
    let (what, flags) = match (no_delete, lock.no_write) {
        (true, true) => ("deletion and writes", ""),
        (true, false) => ("deletion", " --no-delete"),
        _ => ("writes", " --no-write"),
    };
    RegistryError::Denied(format!(
        "{subject} is locked against {what} (unlock it with: wharf repository unlock {reference}{flags})"
    ))
}

pub struct LockService {
    meta: Arc<dyn MetadataStore>,
}

impl LockService {
    pub fn new(meta: Arc<dyn MetadataStore>) -> Self {
        Self { meta }
    }

    /// Every lock of `repository`: its own first, then its tags'.
    pub async fn list(&self, repository: &str) -> RegistryResult<Vec<Lock>> {
        if !valid_repository_name(repository) {
            return Err(RegistryError::NameInvalid(repository.to_owned()));
        }
        let locks = self.meta.locks(repository).await?;
        if locks.is_empty() && !self.meta.repository_exists(repository).await? {
            return Err(RegistryError::NameUnknown(repository.to_owned()));
        }
        Ok(locks)
    }

    /// Set or clear attributes of the lock of `repository` or one of its tags (audited as
    /// `repository.lock`). Returns the lock as it now stands, `None` when nothing is locked.
    pub async fn change(
        &self,
        actor: &Actor,
        repository: &str,
        change: &LockChange,
    ) -> RegistryResult<Option<Lock>> {
        if !valid_repository_name(repository) {
            return Err(RegistryError::NameInvalid(repository.to_owned()));
        }
        if let Some(tag) = change.tag.as_deref().filter(|t| !valid_tag(t)) {
            return Err(RegistryError::TagInvalid(tag.to_owned()));
        }
        if change.no_delete.is_none() && change.no_write.is_none() {
            return Err(RegistryError::Unsupported(
                "say what to change: no_delete and/or no_write".to_owned(),
            ));
        }
        let target = match &change.tag {
            Some(tag) => format!("{repository}:{tag}"),
            None => repository.to_owned(),
        };
        let said = |v: Option<bool>| v.map_or("unchanged", |b| if b { "true" } else { "false" });
        let detail = format!(
            "no_delete={}, no_write={}",
            said(change.no_delete),
            said(change.no_write)
        );
        let record = audit_record(actor, "repository.lock", &target, &detail, now());
        match self.meta.change_lock(repository, change, &record).await? {
            LockChangeOutcome::Changed(lock) => Ok(lock),
            LockChangeOutcome::RepositoryUnknown => Err(RegistryError::NameUnknown(repository.to_owned())),
            LockChangeOutcome::TagUnknown => Err(RegistryError::ManifestUnknown(target)),
        }
    }
}

/// The repository's own lock, if it forbids writes. Uploads, mounts and trust updates ask
/// up front: a manifest naming their blobs or a tag they sign could not be stored anyway,
/// and the store refuses that inside the manifest's transaction.
pub async fn write_lock(
    meta: &dyn MetadataStore,
    repository: &str,
) -> wharf_store::StoreResult<Option<Lock>> {
    Ok(meta
        .locks(repository)
        .await?
        .into_iter()
        .find(|l| l.tag.is_none() && l.no_write))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(tag: Option<&str>, no_delete: bool, no_write: bool) -> Lock {
        Lock {
            tag: tag.map(str::to_owned),
            no_delete,
            no_write,
            updated_at: 0,
        }
    }

    #[test]
    fn refusals_name_the_lock_and_the_command_that_lifts_it() {
        let said = |l: &Lock, a| refusal("team/app", l, a).to_string();
        assert_eq!(
            said(&lock(Some("v1"), false, true), Attempt::Write),
            r#"tag "v1" of "team/app" is locked against writes (unlock it with: wharf repository unlock team/app:v1 --no-write)"#
        );
        assert_eq!(
            said(&lock(Some("v1"), true, true), Attempt::Write),
            r#"tag "v1" of "team/app" is locked against writes (unlock it with: wharf repository unlock team/app:v1 --no-write)"#
        );
        assert_eq!(
            said(&lock(None, true, false), Attempt::Delete),
            r#"repository "team/app" is locked against deletion (unlock it with: wharf repository unlock team/app --no-delete)"#
        );
        assert_eq!(
            said(&lock(None, false, true), Attempt::Delete),
            r#"repository "team/app" is locked against writes (unlock it with: wharf repository unlock team/app --no-write)"#
        );
        assert_eq!(
            said(&lock(Some("v1"), true, true), Attempt::Delete),
            r#"tag "v1" of "team/app" is locked against deletion and writes (unlock it with: wharf repository unlock team/app:v1)"#
        );
    }
}
