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
mod update;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use wharf_store::{AuditRecord, MetadataStore, StoreError, TrustFile};
use wharf_tuf::metadata::{ROOT, SNAPSHOT, TIMESTAMP, is_valid_role};
use wharf_tuf::{Signed, Timestamp, UpdateError};

use crate::auth::secrets::KeyEncryptionKey;
use crate::clock::now;
use crate::names::valid_repository_name;
use policy::policy_value;
use published_cache::{Published, PublishedCache, valid_until};

pub use changefeed::{changefeed_json, parse_changefeed_query};
pub use error::{TrustError, TrustResult};
pub use multipart::parse_multipart;
pub use policy::{DISABLED_MESSAGE, POLICY_SETTING};
pub use update::MAX_UPDATE_BYTES;

/// How long clients and proxies may cache a metadata response (spec §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    /// `<role>.json`: may change on the next update.
    Current,
    /// By version or checksum: immutable.
    Consistent,
}

/// A metadata file to serve.
#[derive(Debug)]
pub struct Served {
    pub bytes: Vec<u8>,
    pub cache: CacheKind,
    pub created_at: i64,
}

/// The file named in `GET …/_trust/tuf/<name>`.
#[derive(Debug, PartialEq, Eq)]
pub enum MetaName<'a> {
    Current(&'a str),
    ByVersion(&'a str, i64),
    ByChecksum(&'a str, &'a str),
}

/// Parse a metadata file name; `None` when it names nothing notary would serve.
pub fn parse_meta_name(name: &str) -> Option<MetaName<'_>> {
    let stem = name.strip_suffix(".json")?;
    // Roles never contain '.', so a dot separates a version prefix or a checksum suffix.
    if let Some((prefix, role)) = stem.split_once('.')
        && !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_digit())
    {
        let version: i64 = prefix.parse().ok()?;
        return (version > 0 && is_valid_role(role)).then_some(MetaName::ByVersion(role, version));
    }
    if let Some((role, hex)) = stem.rsplit_once('.') {
        let hex_ok = matches!(hex.len(), 64 | 96 | 128) && hex.bytes().all(|b| b.is_ascii_hexdigit());
        return (hex_ok && is_valid_role(role)).then_some(MetaName::ByChecksum(role, hex));
    }
    is_valid_role(stem).then_some(MetaName::Current(stem))
}

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

    /// The current timestamp, re-signed (and stored) first when it or a server-managed
    /// snapshot has expired. A failed re-sign serves the stale file: clients then report
    /// the expiry themselves, which is clearer than a 500.
    async fn current_timestamp(
        &self,
        repository: &str,
        gun: &str,
    ) -> TrustResult<(TrustFile, BTreeMap<String, TrustFile>)> {
        let mut current = self.current_map(repository).await?;
        let ts = current.get(TIMESTAMP).cloned().ok_or(TrustError::NotFound)?;
        let bytes: BTreeMap<String, Vec<u8>> = current
            .iter()
            .map(|(r, f)| (r.clone(), f.content.clone()))
            .collect();
        if !bytes.contains_key(ROOT) || !bytes.contains_key(SNAPSHOT) {
            return Ok((ts, current));
        }
        let keys = self.server_keys(repository).await?;
        match wharf_tuf::refresh_timestamp(&bytes, &keys, Utc::now()) {
            Ok(files) if files.is_empty() => Ok((ts, current)),
            Ok(files) => {
                match self.commit(repository, gun, &files, None).await {
                    // Lost the race to another reader's re-sign: use theirs.
                    Ok(()) | Err(TrustError::Update(UpdateError::Version { .. })) => {}
                    Err(e) => return Err(e),
                }
                current = self.current_map(repository).await?;
                let ts = current.get(TIMESTAMP).cloned().ok_or(TrustError::NotFound)?;
                Ok((ts, current))
            }
            Err(e) => {
                tracing::warn!(%repository, error = %e, "cannot re-sign expired timestamp; serving it stale");
                Ok((ts, current))
            }
        }
    }

    /// The current published state of a repository, from memory while nothing it depends
    /// on has expired or been written since (see `published_cache`).
    async fn published_state(&self, repository: &str, gun: &str) -> TrustResult<Arc<Published>> {
        if let Some(hit) = self.published.get(repository, now()) {
            return Ok(hit);
        }
        let since = self.published.start_read();
        let (ts, _) = self.current_timestamp(repository, gun).await?;
        let expiry = |f: &TrustFile| {
            Signed::<Timestamp>::parse(f.content.clone())
                .ok()
                .and_then(|s| s.signed.expires)
                .map(|e| e.timestamp())
        };
        let mut roles = std::collections::HashMap::new();
        let mut expiries = vec![expiry(&ts)];
        match self.by_meta(repository, &ts, SNAPSHOT).await {
            Ok(sn) => {
                expiries.push(expiry(&sn));
                roles.insert(SNAPSHOT.to_owned(), sn);
            }
            Err(TrustError::NotFound) => {}
            Err(e) => return Err(e),
        }
        let published = Arc::new(Published {
            timestamp: ts,
            roles: std::sync::RwLock::new(roles),
            valid_until: valid_until(now(), expiries),
        });
        self.published.fill(since, repository, published.clone());
        Ok(published)
    }

    /// A role of the published state: the snapshot, or a role through the snapshot.
    async fn resolve(&self, repository: &str, published: &Published, role: &str) -> TrustResult<TrustFile> {
        let known = |r: &str| published.roles.read().ok().and_then(|m| m.get(r).cloned());
        if let Some(f) = known(role) {
            return Ok(f);
        }
        let snapshot = known(SNAPSHOT).ok_or(TrustError::NotFound)?;
        let file = self.by_meta(repository, &snapshot, role).await?;
        if let Ok(mut m) = published.roles.write() {
            m.insert(role.to_owned(), file.clone());
        }
        Ok(file)
    }

    /// The file named by a snapshot/timestamp `meta` entry's sha256.
    async fn by_meta(&self, repository: &str, parent: &TrustFile, role: &str) -> TrustResult<TrustFile> {
        let parsed = Signed::<Timestamp>::parse(parent.content.clone())
            .map_err(|e| TrustError::Internal(format!("stored {} unreadable: {e}", parent.role)))?;
        let sha = parsed
            .signed
            .meta
            .get(role)
            .and_then(|m| m.hashes.get("sha256"))
            .ok_or(TrustError::NotFound)?;
        self.meta
            .trust_file_by_sha256(repository, role, &hex::encode(sha))
            .await?
            .ok_or(TrustError::NotFound)
    }

    /// `GET …/_trust/tuf/<name>` (spec §1.3). "Current" walks timestamp → snapshot →
    /// role so a reader always sees one consistent published state.
    pub async fn get_metadata(&self, repository: &str, gun: &str, name: &str) -> TrustResult<Served> {
        let name = parse_meta_name(name).ok_or(TrustError::NotFound)?;
        let consistent = |f: TrustFile| Served {
            bytes: f.content,
            cache: CacheKind::Consistent,
            created_at: f.created_at,
        };
        match name {
            MetaName::ByVersion(role, version) => self
                .meta
                .trust_file_by_version(repository, role, version)
                .await?
                .map(consistent)
                .ok_or(TrustError::NotFound),
            MetaName::ByChecksum(role, hex) => self
                .meta
                .trust_file_by_sha256(repository, role, &hex.to_ascii_lowercase())
                .await?
                .map(consistent)
                .ok_or(TrustError::NotFound),
            MetaName::Current(role) => {
                let published = self.published_state(repository, gun).await?;
                let file = match role {
                    TIMESTAMP => published.timestamp.clone(),
                    _ => self.resolve(repository, &published, role).await?,
                };
                Ok(Served {
                    bytes: file.content,
                    cache: CacheKind::Current,
                    created_at: file.created_at,
                })
            }
        }
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
    use super::*;

    #[test]
    fn metadata_names() {
        assert_eq!(parse_meta_name("root.json"), Some(MetaName::Current("root")));
        assert_eq!(
            parse_meta_name("targets/releases.json"),
            Some(MetaName::Current("targets/releases"))
        );
        assert_eq!(
            parse_meta_name("01.root.json"),
            Some(MetaName::ByVersion("root", 1))
        );
        assert_eq!(parse_meta_name("0.root.json"), None);
        let hex = "a".repeat(64);
        assert_eq!(
            parse_meta_name(&format!("snapshot.{hex}.json")),
            Some(MetaName::ByChecksum("snapshot", &hex))
        );
        assert_eq!(parse_meta_name("root.key"), None);
        assert_eq!(parse_meta_name("bogus.json"), None);
    }

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
