//! Content trust: a Notary v1 compatible trust service per repository (spec
//! `notary-server.md` §1), the registry-level content-trust policy and its audit trail.
//! Validation and signing live in `wharf_tuf`; this service maps GUNs to repositories,
//! holds the server keys (sealed with the KEK), and commits each update atomically.

mod changefeed;
mod error;
mod keys;
mod multipart;
pub mod overview;
mod policy;
mod published_cache;
mod reset;
mod serve;
mod update;

use std::collections::BTreeMap;
use std::sync::Arc;

use wharf_store::{AuditRecord, MetadataStore, StoreError, TrustFile};

use crate::auth::secrets::KeyEncryptionKey;
use crate::clock::now;
use crate::names::valid_repository_name;
use policy::policy_value;
use published_cache::PublishedCache;

pub use changefeed::{changefeed_json, parse_changefeed_query};
pub use error::{TrustError, TrustResult};
pub use multipart::parse_multipart;
pub use policy::{DISABLED_MESSAGE, POLICY_SETTING};
pub use serve::{CacheKind, MetaName, Served, parse_meta_name};
pub use update::MAX_UPDATE_BYTES;

pub struct TrustService {
    meta: Arc<dyn MetadataStore>,
    kek: Arc<KeyEncryptionKey>,
    public_hosts: Vec<String>,
    published: PublishedCache,
}

impl TrustService {
    /// Initialise the policy from config on the very first start only; afterwards the
    /// stored value (changed through the admin API) wins.
    pub async fn open(
        meta: Arc<dyn MetadataStore>,
        kek: Arc<KeyEncryptionKey>,
        public_hosts: Vec<String>,
        enabled_at_bootstrap: bool,
    ) -> Result<Self, StoreError> {
        meta.init_setting(POLICY_SETTING, policy_value(enabled_at_bootstrap))
            .await?;
        Ok(Self {
            meta,
            kek,
            public_hosts,
            published: PublishedCache::default(),
        })
    }

    /// The repository a GUN names: `<host[:port]>/<repository>` where host is a
    /// configured public host or the host this request arrived on.
    pub fn repository_of<'a>(&self, gun: &'a str, request_host: &str) -> TrustResult<&'a str> {
        let invalid = || TrustError::InvalidGun(gun.to_owned());
        let (host, repo) = gun.split_once('/').ok_or_else(invalid)?;
        let ours = host.eq_ignore_ascii_case(request_host)
            || self.public_hosts.iter().any(|h| h.eq_ignore_ascii_case(host));
        if ours && valid_repository_name(repo) {
            Ok(repo)
        } else {
            Err(invalid())
        }
    }

    async fn current_map(&self, repository: &str) -> TrustResult<BTreeMap<String, TrustFile>> {
        Ok(self
            .meta
            .trust_current(repository)
            .await?
            .into_iter()
            .map(|f| (f.role.clone(), f))
            .collect())
    }

    /// Signed tags, signers and administrative keys of `repository` (the portal's view).
    pub async fn overview(&self, repository: &str) -> TrustResult<overview::TrustOverview> {
        let files = self.meta.trust_current(repository).await?;
        Ok(overview::overview(&files))
    }
}

fn audit(actor: &str, action: &str, target: &str, detail: &str) -> AuditRecord {
    AuditRecord {
        at: now(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail: detail.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use wharf_tuf::UpdateError;

    use super::*;

    async fn service(enabled: bool) -> (tempfile::TempDir, TrustService) {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(
            wharf_store::SqliteMetadataStore::open(&dir.path().join("m.db"))
                .await
                .unwrap(),
        );
        let kek = Arc::new(KeyEncryptionKey::from_base64(&format!("{}=", "A".repeat(43))).unwrap());
        let svc = TrustService::open(meta, kek, vec!["reg.example.com".into()], enabled)
            .await
            .unwrap();
        (dir, svc)
    }

    #[tokio::test]
    async fn keys_are_stable_before_init_and_writes_need_the_policy() {
        let (_d, svc) = service(false).await;
        assert!(!svc.enabled().await.unwrap());
        assert_eq!(
            svc.repository_of("reg.example.com/a/b", "localhost:1").unwrap(),
            "a/b"
        );
        assert_eq!(svc.repository_of("localhost:1/a", "localhost:1").unwrap(), "a");
        assert!(svc.repository_of("evil.example.com/a", "localhost:1").is_err());
        assert!(svc.repository_of("reg.example.com/UPPER", "localhost:1").is_err());
        let k1 = svc.get_key("a", "timestamp").await.unwrap();
        assert_eq!(k1, svc.get_key("a", "timestamp").await.unwrap());
        assert_ne!(k1, svc.get_key("a", "snapshot").await.unwrap());
        assert!(matches!(
            svc.get_key("a", "root").await,
            Err(TrustError::NotFound)
        ));
        let body = b"--B--\r\n";
        let refused = svc
            .update(
                "a",
                "reg.example.com/a",
                "me",
                "multipart/form-data; boundary=B",
                body,
            )
            .await;
        assert!(
            matches!(&refused, Err(TrustError::Update(UpdateError::Validation(m))) if m == DISABLED_MESSAGE),
            "{refused:?}"
        );
        svc.set_enabled("me", true).await.unwrap();
        let refused = svc
            .update(
                "a",
                "reg.example.com/a",
                "me",
                "multipart/form-data; boundary=B",
                body,
            )
            .await;
        assert!(
            matches!(&refused, Err(TrustError::Update(UpdateError::Validation(m))) if m.contains("no pre-existing root")),
            "{refused:?}"
        );
        // Disabling wipes server keys too: the next pending key is a new one.
        svc.set_enabled("me", false).await.unwrap();
        assert_ne!(k1, svc.get_key("a", "timestamp").await.unwrap());
        assert!(matches!(
            svc.get_metadata("a", "reg.example.com/a", "root.json").await,
            Err(TrustError::NotFound)
        ));
    }
}
