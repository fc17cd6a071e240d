//! What a client believes: the published trust data of one repository
//! verified the way the notary 0.7 client (and through it docker 28) does on
//! `notary list`, `docker pull` and `docker trust inspect`, computed from the
//! files the server stores. The answer to "is tag T of this repository
//! validly signed, by which roles, for which digest?".
//!
//! Why not simply read the newest stored file of each role: clients never
//! see "newest". They start at the current timestamp, take the snapshot
//! whose hashes it names, and from there exactly the root, `targets` and
//! delegation files the snapshot names; every file must carry a threshold
//! of signatures by the keys its parent declares for it and must not have
//! expired, and a delegation only counts for target names inside its
//! `paths`. A file stored but not reachable that way, or reachable but not
//! verifying, signs nothing for a client.
//!
//! The walk ([`verify_repository`]), in the client's order:
//! 1. root: the one the snapshot names (what `GET root.json` serves), valid
//!    under notary's trust-on-first-use rules ([`validate_root`] without a
//!    previous root: a leaf certificate with CN = GUN valid now, a threshold
//!    of signatures by the root's own certificates), not expired. A client
//!    with a cached root would also require the new root to be signed by the
//!    old one (rotation); the server pins no root, so that chain is not
//!    walked — a stored root was checked against its predecessor on upload.
//! 2. timestamp: signed by a threshold of the root's timestamp keys, well
//!    formed, not expired.
//! 3. snapshot: the stored file whose SHA-256 the timestamp names, matching
//!    every hash it names and no longer than its length; signed by the
//!    root's snapshot keys, well formed, not expired; the root from step 1
//!    must match the snapshot's `root` entry.
//! 4. `targets`: the file the snapshot names, checked the same way against
//!    the root's targets keys.
//! 5. delegations, parent before child, children in the order the parent
//!    lists them (notary `downloadTargets`): each one its parent declares
//!    and the snapshot names, checked against the keys and threshold the
//!    *parent* declares for it. Its effective `paths` are those of its own
//!    that start with one of its parent's (notary
//!    `RestrictDelegationPathPrefixes`; `targets` has `[""]`), and only
//!    target names starting with one of them count (notary `CheckPaths`).
//!    notary 0.7 has no `path_hash_prefixes`: a delegation with none of
//!    `paths` signs nothing.
//!
//! Fatal and not (mirroring `downloadTargets`, which fails the whole update
//! for every error except `ErrExpired` and `ErrRoleThreshold` of a
//! delegation):
//! - [`VerifyError`] (the client fails, so `docker pull` fails for every
//!   tag): any failure of root, timestamp, snapshot or `targets`; for a
//!   delegation: a file the snapshot names but the store lacks, a hash or
//!   length mismatch, a file that does not parse or is not well formed, no
//!   signatures at all, a key listed under an ID that is not its own.
//! - [`IgnoredRole`] (the client warns and goes on; the role and everything
//!   below it sign nothing): a delegation with too few valid signatures by
//!   the keys its parent declares (for example after `docker trust signer
//!   remove` took its signer's key out of `targets/releases`), an expired
//!   delegation, and a declared delegation the snapshot does not name
//!   (notary skips those silently; reported here so an owner can see why).
//!
//! Not checked, because they need a client's cache: version rollback
//! against previously seen files, and a root rotation chain (see 1).
//! Signature counting is [`verify_threshold`]'s (each key's first
//! signature decides).

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, FixedOffset, Utc};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::keys::PublicKey;
use crate::metadata::{
    DelegationRole, Envelope, FileMeta, MetaFile, ROOT, Root, SNAPSHOT, TARGETS, TIMESTAMP, Targets,
    check_expiry,
};
use crate::signature::verify_threshold;
use crate::update::validate_root;

/// docker's release role: what `docker pull` looks at first.
pub const RELEASES: &str = "targets/releases";

/// The stored metadata of one repository, as the verifier reads it: the
/// current timestamp, and stored files found by role and SHA-256 (the way
/// clients fetch `<role>.<sha256>.json`). Holding more files than the
/// published state names (older versions, orphaned delegations) is fine:
/// only files named by hash are ever read.
#[derive(Debug, Clone, Default)]
pub struct Files {
    timestamp: Option<Vec<u8>>,
    by_sha256: HashMap<(String, String), Vec<u8>>,
}

impl Files {
    /// Files whose current timestamp (what `GET timestamp.json` serves) is
    /// `timestamp`.
    pub fn new(timestamp: Vec<u8>) -> Self {
        Files {
            timestamp: Some(timestamp),
            by_sha256: HashMap::new(),
        }
    }

    /// Adds a stored file of `role` (any version); it is found by the
    /// SHA-256 of `bytes`, computed here so a mislabelled row cannot stand
    /// in for another file.
    pub fn add(&mut self, role: &str, bytes: Vec<u8>) {
        let sha = hex::encode(Sha256::digest(&bytes));
        self.by_sha256.insert((role.to_owned(), sha), bytes);
    }

    /// The stored file of `role` whose SHA-256 is `sha256_hex` (lowercase).
    pub fn get(&self, role: &str, sha256_hex: &str) -> Option<&[u8]> {
        self.by_sha256
            .get(&(role.to_owned(), sha256_hex.to_owned()))
            .map(Vec::as_slice)
    }
}

/// Why the repository's trust data does not verify for a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No timestamp: the repository has no trust data.
    #[error("no trust data")]
    NoTrustData,
    /// `by` names a file of `role` the store does not hold.
    #[error("{role} named by {by} is not stored")]
    Missing { role: String, by: String },
    /// A file failed a check; `reason` is notary's message where it has one.
    #[error("{role}: {reason}")]
    Invalid { role: String, reason: String },
}

impl VerifyError {
    /// The role whose file failed (`None` without trust data).
    pub fn role(&self) -> Option<&str> {
        match self {
            VerifyError::NoTrustData => None,
            VerifyError::Missing { role, .. } | VerifyError::Invalid { role, .. } => Some(role),
        }
    }
}

/// A delegation that contributes nothing, and why (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredRole {
    pub role: String,
    pub reason: IgnoreReason,
}

/// Why a declared delegation signs nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreReason {
    /// The snapshot names no file for it: nothing published yet (a signer
    /// added but not signing so far), which notary skips silently.
    #[error("not in the snapshot")]
    NotPublished,
    /// Too few valid signatures by the keys its parent declares (notary's
    /// message), e.g. after its signer's key was taken out of the role.
    #[error("{0}")]
    Threshold(String),
    /// Expired (notary's message).
    #[error("{0}")]
    Expired(String),
}

/// One target entry a verified role vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedTarget {
    pub length: i64,
    /// Algorithm → raw hash bytes (docker writes only `sha256`).
    pub hashes: BTreeMap<String, Vec<u8>>,
}

impl TrustedTarget {
    /// `sha256:<hex>`, the manifest digest docker pulls; `None` without a
    /// 32-byte `sha256` hash (docker refuses such a target: "no valid hash,
    /// expecting sha256").
    pub fn digest(&self) -> Option<String> {
        self.hashes
            .get("sha256")
            .filter(|h| h.len() == 32)
            .map(|h| format!("sha256:{}", hex::encode(h)))
    }
}

/// A targets role whose file verified.
#[derive(Debug, Clone)]
pub struct TrustedRole {
    /// `targets` or `targets/…`.
    pub name: String,
    /// The keys and threshold the file verified against: the root's for
    /// `targets`, the parent's delegation entry for a delegation.
    pub key_ids: Vec<String>,
    pub threshold: i64,
    /// Effective path prefixes (restricted by every ancestor).
    pub paths: Vec<String>,
    pub version: i64,
    pub expires: Option<DateTime<FixedOffset>>,
    /// Target name → entry, only names inside `paths`.
    pub targets: BTreeMap<String, TrustedTarget>,
    /// The delegation entries this file declares, as listed (whether or not
    /// each child verified), and the keys it declares for them.
    pub delegations: Vec<DelegationRole>,
    pub delegation_keys: BTreeMap<String, PublicKey>,
    /// Indices (into [`TrustedTargets::roles`]) of verified children, in the
    /// order this file lists them.
    children: Vec<usize>,
}

impl TrustedRole {
    /// notary `CheckPaths`: `name` starts with one of the effective paths.
    pub fn allows(&self, name: &str) -> bool {
        self.paths.iter().any(|p| name.starts_with(p.as_str()))
    }
}

/// The verified view of a repository.
#[derive(Debug, Clone)]
pub struct TrustedTargets {
    /// The verified root (administrative keys: `roles.root`, `roles.targets`).
    pub root: Root,
    /// Verified targets roles; `roles[0]` is `targets`, then delegations
    /// parent before child.
    pub roles: Vec<TrustedRole>,
    /// Delegations that sign nothing, in the order they were met.
    pub ignored: Vec<IgnoredRole>,
}

impl TrustedTargets {
    pub fn role(&self, name: &str) -> Option<&TrustedRole> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// Every verified role that lists `name` inside its paths, with its
    /// entry, in notary's walk order (`targets`, then breadth first; what
    /// `docker trust inspect <repo>:<tag>` reads).
    pub fn signatures(&self, name: &str) -> Vec<(&TrustedRole, &TrustedTarget)> {
        self.breadth_first()
            .into_iter()
            .map(|i| &self.roles[i])
            .filter_map(|r| Some((r, r.targets.get(name)?)))
            .collect()
    }

    /// Every target name some verified role lists inside its paths.
    pub fn names(&self) -> std::collections::BTreeSet<&str> {
        self.roles
            .iter()
            .flat_map(|r| r.targets.keys().map(String::as_str))
            .collect()
    }

    /// The entry `docker pull <repo>:<name>` resolves, and from which role:
    /// notary `GetTargetByName(name, "targets/releases", "targets")` — first
    /// the `targets/releases` subtree, then `targets` and every other
    /// delegation outside it, each breadth first, the first role listing the
    /// name wins — after which docker refuses the answer unless it came from
    /// `targets/releases` or `targets` ("No trust data for <tag>"). So a
    /// name only a signer's own delegation lists is not pullable, and a
    /// child of `targets/releases` listing it shadows `targets`.
    pub fn pull_target(&self, name: &str) -> Option<(&TrustedRole, &TrustedTarget)> {
        for (subtree, skip) in [(RELEASES, TARGETS), (TARGETS, RELEASES)] {
            if let Some((role, target)) = self.first_in_walk(name, subtree, skip) {
                return matches!(role.name.as_str(), RELEASES | TARGETS).then_some((role, target));
            }
        }
        None
    }

    /// Role indices in notary `WalkTargets` order (breadth first from
    /// `targets`, children in listing order).
    fn breadth_first(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.roles.len());
        let mut queue: VecDeque<usize> = (!self.roles.is_empty()).then_some(0).into_iter().collect();
        while let Some(i) = queue.pop_front() {
            out.push(i);
            queue.extend(&self.roles[i].children);
        }
        out
    }

    /// notary `WalkTargets(name, subtree, visitor, skip)` with a visitor that
    /// stops at the first role listing `name`. Roles above `subtree` are
    /// passed through; a role is visited only inside `subtree`, when its
    /// paths allow `name` and it is not `skip`; only visited roles are
    /// descended into.
    fn first_in_walk(&self, name: &str, subtree: &str, skip: &str) -> Option<(&TrustedRole, &TrustedTarget)> {
        let mut queue: VecDeque<usize> = (!self.roles.is_empty()).then_some(0).into_iter().collect();
        while let Some(i) = queue.pop_front() {
            let role = &self.roles[i];
            if subtree
                .strip_prefix(role.name.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
            {
                queue.extend(&role.children);
                continue;
            }
            let inside = role.name == subtree
                || role
                    .name
                    .strip_prefix(subtree)
                    .is_some_and(|rest| rest.starts_with('/'));
            if inside && role.name != skip && role.allows(name) {
                if let Some(target) = role.targets.get(name) {
                    return Some((role, target));
                }
                queue.extend(&role.children);
            }
        }
        None
    }
}

fn invalid(role: &str, reason: impl Into<String>) -> VerifyError {
    VerifyError::Invalid {
        role: role.to_owned(),
        reason: reason.into(),
    }
}

fn parse<T: DeserializeOwned>(role: &str, bytes: &[u8]) -> Result<(Envelope, T), VerifyError> {
    let env = Envelope::parse(bytes.to_vec()).map_err(|e| invalid(role, e.to_string()))?;
    let typed = env.decode().map_err(|e| invalid(role, e.to_string()))?;
    Ok((env, typed))
}

/// The entry for `role` in `by`'s `meta` (the structure checks already
/// require the ones asked for; this keeps a missing one an error, not a panic).
fn meta_for<'a>(file: &'a MetaFile, role: &str, by: &str) -> Result<&'a FileMeta, VerifyError> {
    file.meta.get(role).ok_or_else(|| VerifyError::Missing {
        role: role.to_owned(),
        by: by.to_owned(),
    })
}

/// The stored file `meta` names for `role` (by its sha256), checked
/// against every hash named and the length. A client reads at most `length`
/// bytes, so a longer file fails its hash check there.
fn named_file<'a>(files: &'a Files, role: &str, by: &str, meta: &FileMeta) -> Result<&'a [u8], VerifyError> {
    let missing = || VerifyError::Missing {
        role: role.to_owned(),
        by: by.to_owned(),
    };
    let sha = meta.hashes.get("sha256").ok_or_else(missing)?;
    let bytes = files.get(role, &hex::encode(sha)).ok_or_else(missing)?;
    check_named(role, meta, bytes)?;
    Ok(bytes)
}

fn check_named(role: &str, meta: &FileMeta, bytes: &[u8]) -> Result<(), VerifyError> {
    if bytes.len() as i64 > meta.length {
        return Err(invalid(
            role,
            format!(
                "{} bytes, longer than the {} its parent names",
                bytes.len(),
                meta.length
            ),
        ));
    }
    meta.check_hashes(bytes, role).map_err(|e| invalid(role, e))
}

/// Signatures of a base role against the root's keys for it.
fn verify_base(root: &Root, role: &str, env: &Envelope) -> Result<(), VerifyError> {
    let (keys, threshold) = root
        .role_keys(role)
        .ok_or_else(|| invalid(role, format!("tuf: invalid role {role}")))?;
    verify_threshold(&env.signed, &env.signatures, &keys, threshold, role)
        .map_err(|e| invalid(role, e.to_string()))
}

/// notary `RestrictDelegationPathPrefixes`: the child's paths that start
/// with one of the parent's.
fn restrict_paths(parent: &[String], child: &[String]) -> Vec<String> {
    child
        .iter()
        .filter(|c| parent.iter().any(|p| c.starts_with(p.as_str())))
        .cloned()
        .collect()
}

fn trusted_role(
    name: &str,
    key_ids: Vec<String>,
    threshold: i64,
    paths: Vec<String>,
    t: Targets,
) -> TrustedRole {
    let allowed = |n: &str| paths.iter().any(|p| n.starts_with(p.as_str()));
    let targets = t
        .targets
        .into_iter()
        .filter(|(n, _)| allowed(n))
        .map(|(n, m)| {
            (
                n,
                TrustedTarget {
                    length: m.length,
                    hashes: m.hashes,
                },
            )
        })
        .collect();
    TrustedRole {
        name: name.to_owned(),
        key_ids,
        threshold,
        paths,
        version: t.version,
        expires: t.expires,
        targets,
        delegations: t.delegations.roles,
        delegation_keys: t.delegations.keys,
        children: Vec::new(),
    }
}

/// A delegation still to load: its parent (index into the verified roles)
/// and the parent's entry for it.
struct Pending {
    parent: usize,
    entry: DelegationRole,
    paths: Vec<String>,
}

/// The delegations `parent` declares, to load after it (in listing order,
/// each name once: notary's builder would refuse to load a role twice).
fn children_of(parent: usize, role: &TrustedRole) -> Vec<Pending> {
    let mut seen = std::collections::BTreeSet::new();
    role.delegations
        .iter()
        .filter(|d| seen.insert(d.name.as_str()))
        .map(|d| Pending {
            parent,
            entry: d.clone(),
            paths: restrict_paths(&role.paths, &d.paths),
        })
        .collect()
}

/// Verifies the published trust data of the repository `gun` names, as a
/// client without a cache would on `notary list` / `docker pull`; see the
/// module docs for every check and for what is fatal.
pub fn verify_repository(
    gun: &str,
    files: &Files,
    now: DateTime<Utc>,
) -> Result<TrustedTargets, VerifyError> {
    let ts_bytes = files.timestamp.as_deref().ok_or(VerifyError::NoTrustData)?;
    // Files are located through metadata not yet verified; nothing in a file
    // is believed before the file itself has verified.
    let (ts_env, ts) = parse::<MetaFile>(TIMESTAMP, ts_bytes)?;
    ts.validate_structure(TIMESTAMP)
        .map_err(|e| invalid(TIMESTAMP, e))?;
    let sn_bytes = named_file(files, SNAPSHOT, TIMESTAMP, meta_for(&ts, SNAPSHOT, TIMESTAMP)?)?;
    let (sn_env, sn) = parse::<MetaFile>(SNAPSHOT, sn_bytes)?;
    sn.validate_structure(SNAPSHOT)
        .map_err(|e| invalid(SNAPSHOT, e))?;
    let root_bytes = named_file(files, ROOT, SNAPSHOT, meta_for(&sn, ROOT, SNAPSHOT)?)?;

    // 1. root
    let root_env = Envelope::parse(root_bytes.to_vec()).map_err(|e| invalid(ROOT, e.to_string()))?;
    let root = validate_root(gun, None, &root_env, now).map_err(|e| invalid(ROOT, e))?;
    check_expiry(ROOT, root.expires.as_ref(), now).map_err(|e| invalid(ROOT, e))?;
    // 2. timestamp
    verify_base(&root, TIMESTAMP, &ts_env)?;
    check_expiry(TIMESTAMP, ts.expires.as_ref(), now).map_err(|e| invalid(TIMESTAMP, e))?;
    // 3. snapshot (its hashes were checked when it was located)
    verify_base(&root, SNAPSHOT, &sn_env)?;
    check_expiry(SNAPSHOT, sn.expires.as_ref(), now).map_err(|e| invalid(SNAPSHOT, e))?;

    // 4. targets
    let t_bytes = named_file(files, TARGETS, SNAPSHOT, meta_for(&sn, TARGETS, SNAPSHOT)?)?;
    let (t_env, t) = parse::<Targets>(TARGETS, t_bytes)?;
    verify_base(&root, TARGETS, &t_env)?;
    t.validate_structure(TARGETS).map_err(|e| invalid(TARGETS, e))?;
    check_expiry(TARGETS, t.expires.as_ref(), now).map_err(|e| invalid(TARGETS, e))?;
    let (key_ids, threshold) = root
        .roles
        .get(TARGETS)
        .map(|r| (r.keyids.clone(), r.threshold))
        .unwrap_or_default();
    let mut roles = vec![trusted_role(TARGETS, key_ids, threshold, vec![String::new()], t)];
    let mut ignored = Vec::new();

    // 5. delegations, depth first: a stack holding each parent's children
    // in reverse so they come off in listing order.
    let mut stack: Vec<Pending> = children_of(0, &roles[0]).into_iter().rev().collect();
    while let Some(p) = stack.pop() {
        let name = p.entry.name.as_str();
        let mut ignore = |reason: IgnoreReason| {
            ignored.push(IgnoredRole {
                role: name.to_owned(),
                reason,
            })
        };
        // notary `ChecksumKnown`: an entry with neither hashes nor length
        // is as good as none.
        let Some(meta) = sn
            .meta
            .get(name)
            .filter(|m| !m.hashes.is_empty() || m.length != 0)
        else {
            ignore(IgnoreReason::NotPublished);
            continue;
        };
        let bytes = named_file(files, name, SNAPSHOT, meta)?;
        let (env, d) = parse::<Targets>(name, bytes)?;
        d.validate_structure(name).map_err(|e| invalid(name, e))?;
        let parent = &roles[p.parent];
        let keys: BTreeMap<String, PublicKey> = p
            .entry
            .keyids
            .iter()
            .filter_map(|id| Some((id.clone(), parent.delegation_keys.get(id)?.clone())))
            .collect();
        match verify_threshold(&env.signed, &env.signatures, &keys, p.entry.threshold, name) {
            Ok(()) => {}
            Err(Error::Threshold(why)) => {
                ignore(IgnoreReason::Threshold(why));
                continue;
            }
            Err(e) => return Err(invalid(name, e.to_string())),
        }
        if let Err(why) = check_expiry(name, d.expires.as_ref(), now) {
            ignore(IgnoreReason::Expired(why));
            continue;
        }
        let index = roles.len();
        let role = trusted_role(name, p.entry.keyids.clone(), p.entry.threshold, p.paths, d);
        let children = children_of(index, &role);
        roles[p.parent].children.push(index);
        roles.push(role);
        stack.extend(children.into_iter().rev());
    }
    Ok(TrustedTargets { root, roles, ignored })
}
