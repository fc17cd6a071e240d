//! Anonymous pull: the repositories (registry-wide, one repository, or a prefix) that
//! callers without credentials may pull, with their trust metadata — never push, never
//! trust writes, never the catalog. One owner setting, audited; kept in memory for the
//! per-request check (one SQLite process sees every change), so turning it off applies
//! to the very next request, also for tokens issued before.

use std::sync::{Arc, RwLock};

use wharf_store::{MetadataStore, StoreError};

use crate::auth::{Grants, Perms, Scope};
use crate::clock::now;
use crate::services::access::{Actor, audit_record};

/// Settings key: the scopes as a JSON array of `registry` / `repository:<name>` /
/// `repository:<prefix>/*`.
pub const ANONYMOUS_PULL_SETTING: &str = "anonymous_pull";

/// The `sub` of tokens issued without credentials. Not a valid principal name, so it
/// can never be mistaken for one (grants, revocations, audit).
pub const ANONYMOUS: &str = "<anonymous>";

#[derive(Debug, thiserror::Error)]
pub enum AnonymousPullError {
    #[error("scope {0:?} must be registry, repository:<name> or repository:<prefix>/*")]
    MalformedScope(String),
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
}

pub struct AnonymousPull {
    meta: Arc<dyn MetadataStore>,
    scopes: RwLock<Vec<Scope>>,
}

async fn stored_scopes(meta: &dyn MetadataStore) -> Result<Vec<Scope>, StoreError> {
    let stored = meta.get_setting(ANONYMOUS_PULL_SETTING).await?;
    Ok(stored
        .and_then(|raw| serde_json::from_slice::<Vec<String>>(&raw).ok())
        .unwrap_or_default()
        .iter()
        .filter_map(|s| Scope::parse(s))
        .collect())
}

impl AnonymousPull {
    pub async fn open(meta: Arc<dyn MetadataStore>) -> Result<Self, StoreError> {
        let scopes = stored_scopes(meta.as_ref()).await?;
        Ok(Self {
            meta,
            scopes: RwLock::new(scopes),
        })
    }

    /// Take up the stored scopes (another replica may have changed them).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let scopes = stored_scopes(self.meta.as_ref()).await?;
        if let Ok(mut current) = self.scopes.write() {
            *current = scopes;
        }
        Ok(())
    }

    /// The scopes open to anonymous pull, as `registry` / `repository:…` strings.
    pub fn scopes(&self) -> Vec<String> {
        self.scopes
            .read()
            .map(|s| s.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    pub fn enabled_anywhere(&self) -> bool {
        self.scopes.read().is_ok_and(|s| !s.is_empty())
    }

    /// Whether `repository` may be pulled without credentials right now.
    pub fn allows(&self, repository: &str) -> bool {
        self.scopes
            .read()
            .is_ok_and(|s| s.iter().any(|scope| scope.covers(repository)))
    }

    /// What an anonymous token may carry: pull on the open scopes, nothing else.
    pub fn grants(&self) -> Grants {
        let scopes = self.scopes.read().map(|s| s.clone()).unwrap_or_default();
        Grants::new(scopes.into_iter().map(|s| (s, Perms::PULL)).collect())
    }

    /// Replace the open scopes (an empty list turns anonymous pull off), recording who
    /// did it in the same transaction. Duplicates collapse; order is kept.
    pub async fn set(&self, actor: &Actor, scopes: &[String]) -> Result<Vec<String>, AnonymousPullError> {
        let mut parsed: Vec<Scope> = Vec::new();
        for s in scopes {
            let scope =
                Scope::parse(s.trim()).ok_or_else(|| AnonymousPullError::MalformedScope(s.clone()))?;
            if !parsed.contains(&scope) {
                parsed.push(scope);
            }
        }
        let texts: Vec<String> = parsed.iter().map(ToString::to_string).collect();
        let detail = if texts.is_empty() {
            "off".to_owned()
        } else {
            texts.join(", ")
        };
        let record = audit_record(actor, "anonymous-pull.set", "registry", &detail, now());
        let value = serde_json::to_vec(&texts).unwrap_or_default();
        self.meta
            .put_setting(ANONYMOUS_PULL_SETTING, &value, Some(&record))
            .await?;
        if let Ok(mut held) = self.scopes.write() {
            *held = parsed;
        }
        tracing::info!(actor = %actor.name, scopes = %detail, "anonymous pull changed");
        Ok(texts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scopes_are_validated_stored_audited_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let meta: Arc<dyn MetadataStore> = Arc::new(
            wharf_store::SqliteMetadataStore::open(&dir.path().join("m.db"))
                .await
                .unwrap(),
        );
        let anon = AnonymousPull::open(meta.clone()).await.unwrap();
        assert!(!anon.enabled_anywhere() && !anon.allows("team/app"));
        let owner = Actor {
            name: "admin".into(),
            from: None,
        };
        let bad = anon.set(&owner, &["repository:Team".into()]).await.unwrap_err();
        assert_eq!(
            bad.to_string(),
            "scope \"repository:Team\" must be registry, repository:<name> or repository:<prefix>/*"
        );
        assert!(meta.list_audit(10).await.unwrap().is_empty());
        let set = anon
            .set(
                &owner,
                &[
                    "repository:public/*".into(),
                    "repository:app".into(),
                    "repository:app".into(),
                ],
            )
            .await
            .unwrap();
        assert_eq!(set, ["repository:public/*", "repository:app"]);
        assert!(anon.allows("public/x") && anon.allows("app") && !anon.allows("app2"));
        assert_eq!(anon.grants().on("public/x"), Perms::PULL);
        let reopened = AnonymousPull::open(meta.clone()).await.unwrap();
        assert_eq!(reopened.scopes(), set);
        let audit = meta.list_audit(10).await.unwrap();
        assert_eq!(audit[0].action, "anonymous-pull.set");
        assert_eq!(
            audit[0].detail,
            "from unknown; repository:public/*, repository:app"
        );
        anon.set(&owner, &[]).await.unwrap();
        assert!(!anon.enabled_anywhere());
        assert_eq!(meta.list_audit(10).await.unwrap()[0].detail, "from unknown; off");
    }
}
