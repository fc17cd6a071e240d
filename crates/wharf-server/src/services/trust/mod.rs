//! Content trust: a Notary v1 compatible trust service per repository (spec
//! `notary-server.md` §1), the registry-level content-trust policy and its audit trail.
//! Validation and signing live in `wharf_tuf`; this service maps GUNs to repositories,
//! holds the server keys (sealed with the KEK), and commits each update atomically.

mod changefeed;
mod deletion;
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
use crate::server_names::{RequestName, ServerNames};
use crate::services::access::{Actor, audit_record};
use policy::policy_value;
use published_cache::PublishedCache;

pub use changefeed::{changefeed_json, parse_changefeed_query};
pub use deletion::{Deleting, DeletionCheck};
pub use error::{TrustError, TrustResult};
pub use multipart::parse_multipart;
pub use policy::{DISABLE_WARNING, DISABLED_MESSAGE, POLICY_SETTING, PolicyOutcome};
pub use serve::{CacheKind, MetaName, Served, parse_meta_name};
pub use update::MAX_UPDATE_BYTES;

pub struct TrustService {
    meta: Arc<dyn MetadataStore>,
    kek: Arc<KeyEncryptionKey>,
    names: Arc<ServerNames>,
    published: PublishedCache,
    /// Other processes (replicas) write the same database: a remembered published state is
    /// checked against the stored timestamp before it is served.
    shared_database: bool,
    /// The newest changefeed row this replica has acted on: trust data changed through
    /// another replica shows up there, and its cached published state must go.
    changes_seen: std::sync::atomic::AtomicI64,
    /// Uploads validated at once (CPU-bound work on blocking threads): one per core but
    /// one, so the async workers always keep a core.
    validation: tokio::sync::Semaphore,
}

impl TrustService {
    /// Initialise the policy from config on the very first start only; afterwards the
    /// stored value (changed through the admin API) wins.
    pub async fn open(
        meta: Arc<dyn MetadataStore>,
        kek: Arc<KeyEncryptionKey>,
        names: Arc<ServerNames>,
        enabled_at_bootstrap: bool,
        shared_database: bool,
    ) -> Result<Self, StoreError> {
        meta.init_setting(POLICY_SETTING, policy_value(enabled_at_bootstrap))
            .await?;
        let newest = meta
            .trust_changes(None, -1, -1)
            .await?
            .first()
            .map_or(0, |c| c.id);
        Ok(Self {
            meta,
            kek,
            names,
            published: PublishedCache::default(),
            shared_database,
            changes_seen: std::sync::atomic::AtomicI64::new(newest),
            validation: tokio::sync::Semaphore::new(validation_slots()),
        })
    }

    /// Forget the cached published state of every repository whose trust data changed
    /// (through any replica) since the last call: the changefeed has a row for every
    /// stored timestamp and every deletion. Returns how many changes were seen.
    pub async fn sync_published(&self) -> Result<usize, StoreError> {
        use std::sync::atomic::Ordering;
        let mut seen = 0;
        loop {
            let after = self.changes_seen.load(Ordering::Acquire);
            let changes = self.meta.trust_changes(None, after, SYNC_BATCH).await?;
            for c in &changes {
                self.published.invalidate(Some(&c.repository));
                self.changes_seen.fetch_max(c.id, Ordering::AcqRel);
            }
            seen += changes.len();
            if changes.len() < SYNC_BATCH as usize {
                return Ok(seen);
            }
        }
    }

    /// The repository a GUN names: `<host>/<repository>` where host is one of the
    /// server's names (`ServerNames`, the reading the token service uses too). The
    /// request's Host header plays no part.
    pub fn repository_of<'a>(&self, gun: &'a str) -> TrustResult<&'a str> {
        match self.names.classify(gun) {
            Some(RequestName::Trust { repository, .. }) => Ok(repository),
            _ => Err(TrustError::InvalidGun(gun.to_owned())),
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

    /// Signed tags, signers and administrative keys of `repository` (the portal's view),
    /// as a client verifying the published trust data sees them.
    pub async fn overview(&self, repository: &str) -> TrustResult<overview::TrustOverview> {
        let Some(files) = self.published_files(repository).await? else {
            return Ok(overview::TrustOverview::default());
        };
        let guns = self.guns(repository);
        // Signature checks and parsing (files up to megabytes) off the async workers.
        tokio::task::spawn_blocking(move || {
            overview::overview(overview::verify(&guns, &files, chrono::Utc::now()))
        })
        .await
        .map_err(|e| TrustError::Internal(format!("trust verification task failed: {e}")))
    }
}

/// A repository's published trust data as a client would verify it, tagged with the
/// published timestamp it was read under: a verification kept in memory is good exactly as
/// long as [`TrustService::published_head`] still names that timestamp.
pub struct VerifiedTrust {
    pub head: String,
    pub verified: Result<wharf_tuf::TrustedTargets, wharf_tuf::VerifyError>,
}

impl TrustService {
    /// SHA-256 of the timestamp a client would read now; `None` without trust data. From
    /// memory in one process; one indexed query on replicas sharing a database.
    pub async fn published_head(&self, repository: &str) -> TrustResult<Option<String>> {
        let gun = self.names.gun_of(repository);
        match self.published_state(repository, &gun).await {
            Ok(p) => Ok(Some(p.timestamp.sha256.clone())),
            Err(TrustError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Verify the published trust data as docker would (the signature policy's DCT check).
    pub async fn verified(&self, repository: &str) -> TrustResult<Option<VerifiedTrust>> {
        let Some(head) = self.published_head(repository).await? else {
            return Ok(None);
        };
        let Some(files) = self.published_files(repository).await? else {
            return Ok(None);
        };
        let guns = self.guns(repository);
        let verified =
            tokio::task::spawn_blocking(move || overview::verify(&guns, &files, chrono::Utc::now()))
                .await
                .map_err(|e| TrustError::Internal(format!("trust verification task failed: {e}")))?;
        Ok(Some(VerifiedTrust { head, verified }))
    }

    fn guns(&self, repository: &str) -> Vec<String> {
        self.names
            .hosts()
            .iter()
            .map(|h| format!("{h}/{repository}"))
            .collect()
    }
}

/// Changefeed rows read per query while catching up.
const SYNC_BATCH: i64 = 1000;

fn validation_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

/// Trust audit records name who and from where, in the words of every other record.
fn audit(actor: &Actor, action: &str, target: &str, detail: &str) -> AuditRecord {
    audit_record(actor, action, target, detail, now())
}

#[cfg(test)]
mod tests {
    use wharf_tuf::UpdateError;

    use super::*;

    fn me() -> Actor {
        Actor {
            name: "me".into(),
            from: None,
        }
    }

    pub(super) async fn service(enabled: bool) -> (tempfile::TempDir, TrustService) {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(
            wharf_store::SqliteMetadataStore::open(&dir.path().join("m.db"))
                .await
                .unwrap(),
        );
        let kek = Arc::new(KeyEncryptionKey::from_base64(&format!("{}=", "A".repeat(43))).unwrap());
        let names = ServerNames::new(&["reg.example.com".to_owned()], "127.0.0.1:1".parse().unwrap());
        let svc = TrustService::open(meta, kek, Arc::new(names), enabled, false)
            .await
            .unwrap();
        (dir, svc)
    }

    #[tokio::test]
    async fn keys_are_stable_before_init_and_writes_need_the_policy() {
        let (_d, svc) = service(false).await;
        assert!(!svc.enabled().await.unwrap());
        assert_eq!(svc.repository_of("reg.example.com/a/b").unwrap(), "a/b");
        assert_eq!(svc.repository_of("localhost:1/a").unwrap(), "a");
        assert!(svc.repository_of("evil.example.com/a").is_err());
        assert!(svc.repository_of("reg.example.com/UPPER").is_err());
        // Not ours, whatever Host header a request carries.
        assert!(svc.repository_of("localhost/a").is_err());
        assert!(svc.repository_of("a/b").is_err());
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
                &me(),
                "multipart/form-data; boundary=B",
                body,
            )
            .await;
        assert!(
            matches!(&refused, Err(TrustError::Update(UpdateError::Validation(m))) if m == DISABLED_MESSAGE),
            "{refused:?}"
        );
        svc.set_enabled(&me(), true, false).await.unwrap();
        let refused = svc
            .update(
                "a",
                "reg.example.com/a",
                &me(),
                "multipart/form-data; boundary=B",
                body,
            )
            .await;
        assert!(
            matches!(&refused, Err(TrustError::Update(UpdateError::Validation(m))) if m.contains("no pre-existing root")),
            "{refused:?}"
        );
        // Disabling wipes server keys too: the next pending key is a new one.
        assert!(matches!(
            svc.set_enabled(&me(), false, false).await,
            Err(TrustError::ConfirmationRequired)
        ));
        assert!(svc.enabled().await.unwrap());
        svc.set_enabled(&me(), false, true).await.unwrap();
        assert_ne!(k1, svc.get_key("a", "timestamp").await.unwrap());
        assert!(matches!(
            svc.get_metadata("a", "reg.example.com/a", "root.json").await,
            Err(TrustError::NotFound)
        ));
    }

    /// The token service and the trust route read every name the same way. Names are
    /// generated from host-like and path-like pieces (ours in other cases, not ours, bare
    /// first components, invalid pieces); for each, what a token grants and what the
    /// trust route would touch must agree:
    /// - a pusher without the signer right never gets a write on a name the trust route
    ///   accepts;
    /// - a signer whose rights cover one repository (or one prefix) gets a write only on
    ///   names the trust route maps into that repository (or prefix);
    /// - a signer on the repository the trust route names does get the write.
    #[tokio::test]
    async fn token_service_and_trust_route_agree_on_every_name() {
        use crate::auth::{AccessEntry, AccessPolicy, Grants, Perms, Role, Scope};
        let (_d, svc) = service(true).await;
        let hosts = [
            "reg.example.com",
            "REG.example.com",
            "localhost:1",
            "LocalHost:1",
            "127.0.0.1:1",
            "localhost",
            "localhost:2",
            "127.0.0.1",
            "team",
            "evil.example.com",
            "reg.example.com:443",
        ];
        let parts = [
            "team",
            "app",
            "x",
            "a.b",
            "a-b",
            "Up",
            "",
            "..",
            "app2",
            "localhost",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let writes = |grants: &Grants, name: &str| {
            let req = [AccessEntry {
                kind: "repository".into(),
                name: name.to_owned(),
                actions: vec!["push".into(), "delete".into(), "*".into()],
            }];
            !AccessPolicy.grant(grants, &req, &svc.names).is_empty()
        };
        let pusher = Grants::new(vec![(Scope::Registry, Role::AcrPush.perms() | Perms::DELETE)]);
        let prefix_signer = Grants::new(vec![(Scope::Prefix("team/".into()), Role::Owner.perms())]);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut name = String::new();
            if next(3) > 0 {
                name.push_str(hosts[next(hosts.len())]);
                name.push('/');
            }
            let depth = 1 + next(3);
            let path: Vec<&str> = (0..depth).map(|_| parts[next(parts.len())]).collect();
            name.push_str(&path.join("/"));

            let trust = svc.repository_of(&name).ok();
            accepted += usize::from(trust.is_some());
            if writes(&pusher, &name) {
                assert_eq!(trust, None, "a pusher without signing writes trust via {name:?}");
            }
            if writes(&prefix_signer, &name)
                && let Some(repository) = trust
            {
                assert!(repository.starts_with("team/"), "{name:?} reaches {repository}");
            }
            // Every tail of the name as the one repository a signer holds.
            for (i, _) in name.match_indices('/').chain([(0, "")]) {
                let held = if i == 0 { name.as_str() } else { &name[i + 1..] };
                let signer = Grants::new(vec![(Scope::Repository(held.to_owned()), Role::Owner.perms())]);
                if writes(&signer, &name)
                    && let Some(repository) = trust
                {
                    assert_eq!(
                        repository, held,
                        "{name:?} granted for {held} reaches {repository}"
                    );
                }
            }
            if let Some(repository) = trust {
                let signer = Grants::new(vec![(
                    Scope::Repository(repository.to_owned()),
                    Role::Owner.perms(),
                )]);
                assert!(
                    writes(&signer, &name),
                    "the signer of {repository} is refused {name:?}"
                );
            }
        }
        // The generator reaches both readings often enough to mean something.
        assert!(accepted > 2_000, "only {accepted} trust names generated");
    }

    /// The registry-wide changefeed shows a caller only repositories it may read, and
    /// pages over the visible changes the way the unfiltered feed pages over all.
    #[tokio::test]
    async fn the_global_changefeed_shows_only_readable_repositories() {
        let (_d, svc) = service(true).await;
        // Interleaved changes: a, b, c, a, b, c, ... (timestamp versions 1..=4 each).
        for version in 1..=4 {
            for repository in ["a", "b", "c"] {
                let file = wharf_store::NewTrustFile {
                    role: "timestamp".into(),
                    version,
                    sha256: format!("{repository}{version}"),
                    content: b"{}".to_vec(),
                };
                svc.meta
                    .trust_commit(
                        repository,
                        &format!("reg.example.com/{repository}"),
                        &[file],
                        None,
                        0,
                    )
                    .await
                    .unwrap();
            }
        }
        let feed = |query: &'static str| {
            let svc = &svc;
            async move {
                let body = svc.readable_changefeed(query, |r| r == "b").await.unwrap();
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                v["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        (
                            r["GUN"].as_str().unwrap().to_owned(),
                            r["SHA256"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect::<Vec<_>>()
            }
        };
        let b = |v: &[i64]| {
            v.iter()
                .map(|n| ("reg.example.com/b".to_owned(), format!("b{n}")))
                .collect::<Vec<_>>()
        };
        assert_eq!(feed("records=100").await, b(&[1, 2, 3, 4]));
        // Forward pages of two: the second page starts after the first page's last ID.
        assert_eq!(feed("records=2").await, b(&[1, 2]));
        // ID 5 is b's second change: the page after it.
        assert_eq!(feed("change_id=5&records=2").await, b(&[3, 4]));
        // Backwards from the newest.
        assert_eq!(feed("change_id=-1&records=3").await, b(&[2, 3, 4]));
        assert_eq!(feed("change_id=-1&records=1").await, b(&[4]));
        // The unfiltered per-repository feed is unchanged.
        let all: serde_json::Value =
            serde_json::from_slice(&svc.changefeed(None, "records=100").await.unwrap()).unwrap();
        assert_eq!(all["count"], 12);
    }
}
