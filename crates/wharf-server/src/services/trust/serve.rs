//! Serving metadata: notary's `GET …/_trust/tuf/<name>` by version, by checksum, or as
//! the current published state (kept in `published_cache`), re-signing an expired
//! timestamp on the way.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use wharf_store::TrustFile;
use wharf_tuf::metadata::{ROOT, SNAPSHOT, TIMESTAMP, is_valid_role};
use wharf_tuf::{Files, Signed, Snapshot, Timestamp};

use super::published_cache::{Published, valid_until};
use super::{TrustError, TrustResult, TrustService};
use crate::clock::now;

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

impl TrustService {
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
                    Ok(()) | Err(TrustError::Outdated { .. }) => {}
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
    pub(super) async fn published_state(&self, repository: &str, gun: &str) -> TrustResult<Arc<Published>> {
        if let Some(hit) = self.published.get(repository, now())
            && self.still_current(repository, &hit).await?
        {
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

    /// Whether a remembered state is still the stored one. One process owning the database
    /// drops the entry on every write itself; replicas sharing one check the stored
    /// timestamp (one indexed query), because a client that just published through
    /// another replica must not read the older state here — notary refuses a rollback.
    async fn still_current(&self, repository: &str, hit: &Published) -> TrustResult<bool> {
        if !self.shared_database {
            return Ok(true);
        }
        let head = self.meta.trust_head(repository, TIMESTAMP).await?;
        Ok(head.is_some_and(|(version, sha256)| {
            version == hit.timestamp.version && sha256 == hit.timestamp.sha256
        }))
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

    /// What a client fetching the published state gets, for verifying it: the current
    /// timestamp (re-signed first when expired, as `GET timestamp.json` does), the snapshot
    /// it names and every file that snapshot names, all through the same lookups that
    /// serve them. A named file that is not stored is left out (verification reports it).
    /// `None` without trust data.
    pub(super) async fn published_files(&self, repository: &str) -> TrustResult<Option<Files>> {
        let gun = self.names.gun_of(repository);
        let published = match self.published_state(repository, &gun).await {
            Ok(p) => p,
            Err(TrustError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut files = Files::new(published.timestamp.content.clone());
        let snapshot = match self.resolve(repository, &published, SNAPSHOT).await {
            Ok(f) => f,
            Err(TrustError::NotFound) => return Ok(Some(files)),
            Err(e) => return Err(e),
        };
        // Which files to fetch; the verifier checks each against the snapshot's hashes.
        let named: Vec<String> = Signed::<Snapshot>::parse(snapshot.content.clone())
            .map(|s| s.signed.meta.into_keys().collect())
            .unwrap_or_default();
        files.add(SNAPSHOT, snapshot.content);
        for role in named {
            if role == SNAPSHOT || role == TIMESTAMP || !is_valid_role(&role) {
                continue;
            }
            match self.resolve(repository, &published, &role).await {
                Ok(f) => files.add(&role, f.content),
                Err(TrustError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(files))
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
}
