//! Server-side validation of a multi-role update (notary `validateUpdate`,
//! spec §3) and generation of the server-signed snapshot / timestamp.
//!
//! Decision on the §3.2 hashing pitfall: snapshot/timestamp `meta` is always
//! computed over the exact bytes that will be stored and served (notary
//! hashes a re-serialisation). Identical for real clients; for a
//! non-canonically formatted upload our repository stays consistent where
//! notary's breaks.
//!
//! Decision on the stored root: it is trusted as stored (it was validated on
//! upload) and not re-validated, so an expired root certificate does not
//! lock a repository (notary would fail with an untyped INVALID_UPDATE).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::canonical::to_canonical;
use crate::error::{Error, UpdateError};
use crate::keys::{CertInfo, PublicKey, cert_chain_to_key, parse_pem_certificates};
use crate::limits::{MAX_DELEGATIONS, MAX_KEYS, MAX_METADATA_BYTES, MAX_ROLE_KEYS, MAX_SIGNATURES};
use crate::metadata::{
    Envelope, FileMeta, MetaFile, ROOT, Root, SNAPSHOT, TARGETS, TIMESTAMP, Targets, check_expiry,
    encode_file, format_go_time, is_delegation, is_valid_role, parent_role,
};
use crate::signature::{PrivateKey, Signature, Signer, verify_threshold};

/// Server-generated timestamp lifetime (notary: 14 days).
pub const TIMESTAMP_EXPIRY: Duration = Duration::days(14);
/// Server-generated snapshot lifetime (notary: 3 x 365 days).
pub const SNAPSHOT_EXPIRY: Duration = Duration::days(3 * 365);
/// Client defaults, for tools that create metadata.
pub const TARGETS_EXPIRY: Duration = Duration::days(3 * 365);
pub const ROOT_EXPIRY: Duration = Duration::days(10 * 365);

/// One uploaded multipart part, checked by [`parse_upload_part`].
#[derive(Debug, Clone)]
pub struct Upload {
    /// Role name (`.json` suffix stripped).
    pub role: String,
    /// `signed.version` as uploaded.
    pub version: i64,
    pub bytes: Vec<u8>,
}

/// First-stage check of one multipart part (notary's handler): filename is
/// the role (raw, may contain `/`, optional `.json`), body must be an
/// envelope. Errors: NO_FILENAME, INVALID_ROLE, the role's typed error for a
/// body over [`MAX_METADATA_BYTES`] (checked before parsing), MALFORMED_JSON.
pub fn parse_upload_part(filename: &str, body: Vec<u8>) -> Result<Upload, UpdateError> {
    let role = filename.strip_suffix(".json").unwrap_or(filename);
    if role.is_empty() {
        return Err(UpdateError::NoFilename);
    }
    if !is_valid_role(role) {
        return Err(UpdateError::InvalidRole(role.to_string()));
    }
    check_size(role, &body)?;
    let env = Envelope::parse(body).map_err(|e| UpdateError::MalformedJson(e.to_string()))?;
    Ok(Upload {
        role: role.to_string(),
        version: env.common.version,
        bytes: env.bytes,
    })
}

/// The typed error notary uses for a failure of `role`'s file (timestamp
/// uploads have none: they are only parsed, then ignored).
fn role_error(role: &str, msg: String) -> UpdateError {
    match role {
        ROOT => UpdateError::BadRoot(msg),
        SNAPSHOT => UpdateError::BadSnapshot(msg),
        TIMESTAMP => UpdateError::Validation(msg),
        _ => UpdateError::BadTargets(msg),
    }
}

/// [`MAX_METADATA_BYTES`], checked before any parsing.
fn check_size(role: &str, bytes: &[u8]) -> Result<(), UpdateError> {
    if bytes.len() > MAX_METADATA_BYTES {
        return Err(role_error(
            role,
            format!(
                "{role} metadata is too large: {} bytes, limit {MAX_METADATA_BYTES} bytes",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

/// Parses an uploaded file for validation: size first, then JSON, then the
/// signature count, all before any signature is verified.
fn parse_upload(up: &Upload) -> Result<Envelope, UpdateError> {
    check_size(&up.role, &up.bytes)?;
    let env = Envelope::parse(up.bytes.clone()).map_err(|e| role_error(&up.role, e.to_string()))?;
    if env.signatures.len() > MAX_SIGNATURES {
        return Err(role_error(
            &up.role,
            format!(
                "{} has too many signatures: {}, limit {MAX_SIGNATURES}",
                up.role,
                env.signatures.len()
            ),
        ));
    }
    Ok(env)
}

/// [`MAX_ROLE_KEYS`] for one role entry of `container`'s file.
fn check_role_key_count(container: &str, role: &str, keyids: &[String]) -> Result<(), String> {
    if keyids.len() > MAX_ROLE_KEYS {
        return Err(format!(
            "{container} type metadata invalid: {role} lists too many key IDs: {}, limit {MAX_ROLE_KEYS}",
            keyids.len()
        ));
    }
    Ok(())
}

/// [`MAX_KEYS`] for the keys declared in `container`'s file.
fn check_key_count(container: &str, keys: &BTreeMap<String, PublicKey>) -> Result<(), String> {
    if keys.len() > MAX_KEYS {
        return Err(format!(
            "{container} type metadata invalid: too many keys: {}, limit {MAX_KEYS}",
            keys.len()
        ));
    }
    Ok(())
}

/// Counts of an uploaded root, before its keys and certificates are parsed.
fn check_root_limits(root: &Root) -> Result<(), String> {
    check_key_count(ROOT, &root.keys)?;
    for (name, r) in &root.roles {
        check_role_key_count(ROOT, name, &r.keyids)?;
    }
    Ok(())
}

/// Counts of an uploaded targets/delegation file, before its keys are parsed.
fn check_targets_limits(role: &str, t: &Targets) -> Result<(), String> {
    let n = t.delegations.roles.len();
    if n > MAX_DELEGATIONS {
        return Err(format!(
            "{role} type metadata invalid: too many delegations: {n}, limit {MAX_DELEGATIONS}"
        ));
    }
    check_key_count(role, &t.delegations.keys)?;
    for d in &t.delegations.roles {
        check_role_key_count(role, &d.name, &d.keyids)?;
    }
    Ok(())
}

/// A file to store (in one transaction) after a successful update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    pub role: String,
    pub version: i64,
    /// Exact bytes to store and serve.
    pub bytes: Vec<u8>,
}

impl NewFile {
    /// Lowercase hex sha256 of the bytes (the `<role>.<sha256>.json` name).
    pub fn sha256_hex(&self) -> String {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&self.bytes))
    }
}

/// The private keys the server holds for a GUN (timestamp and, when
/// server-managed, snapshot). Looked up by the key IDs the root lists.
pub trait KeyLookup {
    fn signer(&self, role: &str, key_id: &str) -> Option<&dyn Signer>;
}

impl<S: Signer> KeyLookup for [S] {
    fn signer(&self, _role: &str, key_id: &str) -> Option<&dyn Signer> {
        self.iter()
            .find(|s| s.public_key().key_id() == key_id)
            .map(|s| s as &dyn Signer)
    }
}

impl<S: Signer> KeyLookup for Vec<S> {
    fn signer(&self, role: &str, key_id: &str) -> Option<&dyn Signer> {
        self.as_slice().signer(role, key_id)
    }
}

/// A fresh server key (Ed25519, like notary's `local` signer). Its
/// `public_key().to_key_endpoint_json()` is the `GET …/<role>.key` body.
pub fn generate_server_key() -> Result<PrivateKey, Error> {
    PrivateKey::generate_ed25519()
}

/// Input of [`validate_update`].
#[derive(Debug, Clone, Copy)]
pub struct UpdateInput<'a> {
    pub gun: &'a str,
    /// Current stored file per role (`root`, `targets`, `targets/…`,
    /// `snapshot`, `timestamp`), i.e. the highest stored version. Missing
    /// roles are simply absent (new GUN: empty map). Only roles the update
    /// touches (and their ancestors) are read.
    pub current: &'a BTreeMap<String, Vec<u8>>,
    /// Parts in upload order; for a repeated role the last one wins.
    pub uploads: &'a [Upload],
    pub now: DateTime<Utc>,
}

struct LoadedTargets {
    targets: Targets,
    bytes: Vec<u8>,
}

/// Validates an update and returns every file to store atomically:
/// accepted uploads (root, targets, delegations, snapshot) plus a generated
/// snapshot (when none was uploaded) and a generated timestamp. Uploaded
/// timestamps are ignored. The caller must still enforce the unique
/// (gun, role, version) constraint at commit and map a violation to
/// [`UpdateError::Version`] (concurrent updates).
pub fn validate_update(
    input: &UpdateInput<'_>,
    keys: &(impl KeyLookup + ?Sized),
) -> Result<Vec<NewFile>, UpdateError> {
    let now = input.now;
    let mut uploads: BTreeMap<&str, &Upload> = BTreeMap::new();
    for u in input.uploads {
        if u.role != TIMESTAMP {
            uploads.insert(u.role.as_str(), u);
        }
    }
    let mut out: Vec<NewFile> = Vec::new();

    // 2. current root (allowed to be expired; trusted as stored).
    let stored_root = match input.current.get(ROOT) {
        Some(b) => Some((parse_stored::<Root>(b, ROOT)?, b.clone())),
        None => None,
    };

    // 3. root upload.
    let (root, root_bytes) = if let Some(up) = uploads.get(ROOT) {
        let current = stored_root.as_ref().map_or(1, |(r, _)| r.version);
        if up.version != current && up.version != current + 1 {
            return Err(UpdateError::BadRoot(format!(
                "Root modifications must increment the version. Current {current}, new {}",
                up.version
            )));
        }
        let env = parse_upload(up)?;
        let root = validate_root(input.gun, stored_root.as_ref().map(|(r, _)| r), &env, now)
            .map_err(UpdateError::BadRoot)?;
        if root.version < current {
            return Err(UpdateError::BadRoot(format!(
                "version {} is lower than min version {current}",
                root.version
            )));
        }
        check_expiry(ROOT, root.expires.as_ref(), now).map_err(UpdateError::BadRoot)?;
        out.push(NewFile {
            role: ROOT.into(),
            version: up.version,
            bytes: up.bytes.clone(),
        });
        (root, up.bytes.clone())
    } else if let Some((r, b)) = stored_root {
        (r, b)
    } else {
        return Err(UpdateError::Validation(
            "no pre-existing root and no root provided in update.".into(),
        ));
    };

    // 4. targets and delegations, shallowest first.
    let mut names: Vec<&str> = uploads
        .keys()
        .copied()
        .filter(|r| *r == TARGETS || is_delegation(r))
        .collect();
    names.sort_by(|a, b| a.split('/').count().cmp(&b.split('/').count()).then(a.cmp(b)));
    let mut loaded: BTreeMap<String, LoadedTargets> = BTreeMap::new();
    for name in names {
        // Ancestors not loaded yet come from storage (current versions,
        // expiry allowed). A missing ancestor is skipped: the child then
        // fails with "delegation does not exist".
        let mut ancestors = Vec::new();
        let mut a = parent_role(name);
        while a != ROOT {
            ancestors.push(a);
            a = parent_role(a);
        }
        for anc in ancestors.into_iter().rev() {
            if loaded.contains_key(anc) {
                continue;
            }
            let Some(bytes) = input.current.get(anc) else {
                continue;
            };
            let env = Envelope::parse(bytes.clone())
                .map_err(|e| UpdateError::Internal(format!("stored {anc} unreadable: {e}")))?;
            let t = load_targets(anc, &env, &root, &loaded, None).map_err(UpdateError::InvalidUpdate)?;
            loaded.insert(
                anc.to_string(),
                LoadedTargets {
                    targets: t,
                    bytes: bytes.clone(),
                },
            );
        }
        let up = uploads[name];
        let env = parse_upload(up)?;
        let t = load_targets(name, &env, &root, &loaded, Some(now)).map_err(UpdateError::BadTargets)?;
        loaded.insert(
            name.to_string(),
            LoadedTargets {
                targets: t,
                bytes: up.bytes.clone(),
            },
        );
        out.push(NewFile {
            role: name.to_string(),
            version: up.version,
            bytes: up.bytes.clone(),
        });
    }

    // 5. snapshot: uploaded (validated, stored as is) or generated.
    let snapshot_bytes = if let Some(up) = uploads.get(SNAPSHOT) {
        let env = parse_upload(up)?;
        check_uploaded_snapshot(&env, &root, &root_bytes, &loaded, now).map_err(UpdateError::BadSnapshot)?;
        out.push(NewFile {
            role: SNAPSHOT.into(),
            version: up.version,
            bytes: up.bytes.clone(),
        });
        up.bytes.clone()
    } else {
        let prev = match input.current.get(SNAPSHOT) {
            Some(b) => Some(parse_stored::<MetaFile>(b, SNAPSHOT)?),
            None => None,
        };
        let mut sn = match prev {
            Some(prev) => {
                prev.validate_structure(SNAPSHOT)
                    .map_err(UpdateError::Validation)?;
                prev
            }
            None => {
                if !loaded.contains_key(TARGETS) {
                    return Err(UpdateError::Validation("targets must be loaded first".into()));
                }
                MetaFile {
                    typ: "Snapshot".into(),
                    expires: None,
                    meta: BTreeMap::new(),
                    version: 0,
                }
            }
        };
        sn.meta.insert(ROOT.into(), FileMeta::from_bytes(&root_bytes));
        for (name, l) in &loaded {
            sn.meta.insert(name.clone(), FileMeta::from_bytes(&l.bytes));
        }
        sn.version += 1;
        let file = sign_meta_file(&sn, SNAPSHOT, &root, keys, now + SNAPSHOT_EXPIRY)?.ok_or_else(|| {
            UpdateError::BadHierarchy {
                missing: SNAPSHOT.into(),
                msg: "no snapshot was included in update and server does not hold current snapshot key for repository"
                    .into(),
            }
        })?;
        out.push(NewFile {
            role: SNAPSHOT.into(),
            version: sn.version,
            bytes: file.clone(),
        });
        file
    };

    // 6. timestamp: always generated.
    let ts = next_timestamp(input.current.get(TIMESTAMP), &snapshot_bytes)?;
    let file = sign_meta_file(&ts, TIMESTAMP, &root, keys, now + TIMESTAMP_EXPIRY)?
        .ok_or_else(|| UpdateError::BadRoot("no  timestamp keys exist on the server".into()))?;
    out.push(NewFile {
        role: TIMESTAMP.into(),
        version: ts.version,
        bytes: file,
    });

    // 7. versions must be newer than what is stored.
    for f in &out {
        if let Some(cur) = input.current.get(&f.role) {
            let cur_version = Envelope::parse(cur.clone())
                .map(|e| e.common.version)
                .unwrap_or(0);
            if f.version <= cur_version {
                return Err(UpdateError::Version {
                    role: f.role.clone(),
                    version: f.version,
                });
            }
        }
    }
    Ok(out)
}

/// Read path (spec §1.3): if the current timestamp or the snapshot it
/// points to has expired, returns re-signed files to store before serving
/// (a new snapshot only when the server holds the snapshot key, then a new
/// timestamp). Empty when nothing needs re-signing, or when the only
/// expired file is a client-managed snapshot (serve stale; clients report
/// the expiry). `current` must hold root, snapshot and timestamp.
pub fn refresh_timestamp(
    current: &BTreeMap<String, Vec<u8>>,
    keys: &(impl KeyLookup + ?Sized),
    now: DateTime<Utc>,
) -> Result<Vec<NewFile>, UpdateError> {
    let get = |role: &str| {
        current
            .get(role)
            .ok_or_else(|| UpdateError::Internal(format!("no current {role} stored")))
    };
    let root: Root = parse_stored(get(ROOT)?, ROOT)?;
    let ts_bytes = get(TIMESTAMP)?;
    let ts: MetaFile = parse_stored(ts_bytes, TIMESTAMP)?;
    let sn_bytes = get(SNAPSHOT)?;
    let sn: MetaFile = parse_stored(sn_bytes, SNAPSHOT)?;
    let ts_expired = check_expiry(TIMESTAMP, ts.expires.as_ref(), now).is_err();
    let sn_expired = check_expiry(SNAPSHOT, sn.expires.as_ref(), now).is_err();
    let mut out = Vec::new();
    let mut snapshot_bytes = sn_bytes.clone();
    if sn_expired {
        let mut next = sn.clone();
        next.version += 1;
        if let Some(file) = sign_meta_file(&next, SNAPSHOT, &root, keys, now + SNAPSHOT_EXPIRY)? {
            snapshot_bytes = file.clone();
            out.push(NewFile {
                role: SNAPSHOT.into(),
                version: next.version,
                bytes: file,
            });
        }
    }
    if ts_expired || !out.is_empty() {
        let next = next_timestamp(Some(ts_bytes), &snapshot_bytes)?;
        let file =
            sign_meta_file(&next, TIMESTAMP, &root, keys, now + TIMESTAMP_EXPIRY)?.ok_or_else(|| {
                UpdateError::Internal("server holds no timestamp key for this repository".into())
            })?;
        out.push(NewFile {
            role: TIMESTAMP.into(),
            version: next.version,
            bytes: file,
        });
    }
    Ok(out)
}

fn parse_stored<T: serde::de::DeserializeOwned>(bytes: &[u8], role: &str) -> Result<T, UpdateError> {
    Envelope::parse(bytes.to_vec())
        .and_then(|e| e.decode())
        .map_err(|e| UpdateError::Internal(format!("stored {role} unreadable: {e}")))
}

fn next_timestamp(prev: Option<&Vec<u8>>, snapshot_bytes: &[u8]) -> Result<MetaFile, UpdateError> {
    let version = match prev {
        Some(b) => {
            let p: MetaFile = parse_stored(b, TIMESTAMP)?;
            p.validate_structure(TIMESTAMP).map_err(UpdateError::Validation)?;
            p.version + 1
        }
        None => 1,
    };
    let mut meta = BTreeMap::new();
    meta.insert(SNAPSHOT.to_string(), FileMeta::from_bytes(snapshot_bytes));
    Ok(MetaFile {
        typ: "Timestamp".into(),
        expires: None,
        meta,
        version,
    })
}

/// Signs a snapshot/timestamp with the role's keys the server holds.
/// `Ok(None)` = the server holds no key or fewer than the threshold.
fn sign_meta_file(
    m: &MetaFile,
    role: &str,
    root: &Root,
    keys: &(impl KeyLookup + ?Sized),
    expires: DateTime<Utc>,
) -> Result<Option<Vec<u8>>, UpdateError> {
    let typ = if role == TIMESTAMP {
        "Timestamp"
    } else {
        "Snapshot"
    };
    let signed = m.to_value(typ, &format_go_time(expires));
    let msg = to_canonical(&signed).map_err(|e| UpdateError::Internal(e.to_string()))?;
    let Some(role_keys) = root.roles.get(role) else {
        return Ok(None);
    };
    let mut sigs: Vec<Signature> = Vec::new();
    for id in &role_keys.keyids {
        if sigs.iter().any(|s| &s.keyid == id) {
            continue;
        }
        if let Some(signer) = keys.signer(role, id) {
            let mut s = signer
                .sign(&msg)
                .map_err(|e| UpdateError::Internal(format!("signing {role}: {e}")))?;
            s.keyid = id.clone();
            sigs.push(s);
        }
    }
    if sigs.is_empty() || (sigs.len() as i64) < role_keys.threshold {
        return Ok(None);
    }
    encode_file(&signed, &sigs)
        .map(Some)
        .map_err(|e| UpdateError::Internal(e.to_string()))
}

/// Loads a `targets` or delegation file: signatures against the root's
/// targets role or the parent's delegation entry, structure, version and
/// (when `now` is given) expiry. Order of checks as notary's builder.
fn load_targets(
    name: &str,
    env: &Envelope,
    root: &Root,
    loaded: &BTreeMap<String, LoadedTargets>,
    now: Option<DateTime<Utc>>,
) -> Result<Targets, String> {
    let uploaded = now.is_some();
    let decode = |env: &Envelope| -> Result<Targets, String> {
        let t: Targets = env.decode().map_err(|e| e.to_string())?;
        t.validate_structure(name)?;
        // Stored ancestors are trusted as stored (a key refused today must
        // not make a delegate's push fail); uploads are checked.
        if uploaded {
            check_targets_limits(name, &t)?;
            check_declared_keys(name, &t.delegations.keys)?;
        }
        Ok(t)
    };
    let expiry = |t: &Targets| match now {
        Some(now) => check_expiry(name, t.expires.as_ref(), now),
        None => Ok(()),
    };
    if name == TARGETS {
        let (keys, threshold) = root.role_keys(TARGETS).ok_or("tuf: invalid role targets")?;
        verify_threshold(&env.signed, &env.signatures, &keys, threshold, TARGETS)
            .map_err(|e| e.to_string())?;
        let t = decode(env)?;
        expiry(&t)?;
        return Ok(t);
    }
    let missing = || format!("tuf: invalid role {name}. delegation does not exist");
    let parent = loaded.get(parent_role(name)).ok_or_else(missing)?;
    let entry = parent.targets.delegation(name).ok_or_else(missing)?;
    let t = decode(env)?;
    expiry(&t)?;
    let keys = parent.targets.delegation_keys(entry);
    verify_threshold(&env.signed, &env.signatures, &keys, entry.threshold, name)
        .map_err(|e| e.to_string())?;
    Ok(t)
}

/// Refuses an uploaded file declaring a key notary (or the Go clients)
/// would not use the way Wharf would ([`PublicKey::check_acceptable`]).
fn check_declared_keys(role: &str, keys: &BTreeMap<String, PublicKey>) -> Result<(), String> {
    for (id, key) in keys {
        key.check_acceptable()
            .map_err(|why| format!("{role} type metadata invalid: key {id} refused: {why}"))?;
    }
    Ok(())
}

fn check_uploaded_snapshot(
    env: &Envelope,
    root: &Root,
    root_bytes: &[u8],
    loaded: &BTreeMap<String, LoadedTargets>,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let (keys, threshold) = root.role_keys(SNAPSHOT).ok_or("tuf: invalid role snapshot")?;
    verify_threshold(&env.signed, &env.signatures, &keys, threshold, SNAPSHOT).map_err(|e| e.to_string())?;
    let sn: MetaFile = env.decode().map_err(|e| e.to_string())?;
    sn.validate_structure(SNAPSHOT)?;
    check_expiry(SNAPSHOT, sn.expires.as_ref(), now)?;
    let empty = FileMeta::default();
    sn.meta
        .get(ROOT)
        .unwrap_or(&empty)
        .check_hashes(root_bytes, ROOT)?;
    for (name, l) in loaded {
        sn.meta.get(name).unwrap_or(&empty).check_hashes(&l.bytes, name)?;
    }
    Ok(())
}

/// Root certificates of a root's `root` role: leaf per key ID (the ID of the
/// key as listed) and the CA certificates bundled with it.
struct RootCerts {
    leaves: BTreeMap<String, CertInfo>,
    intermediates: BTreeMap<String, Vec<CertInfo>>,
}

/// notary `parseAllCerts`: keys whose public part is a PEM bundle with
/// exactly one non-CA certificate (key type not checked, as in notary).
fn parse_all_certs(root: &Root) -> RootCerts {
    let mut rc = RootCerts {
        leaves: BTreeMap::new(),
        intermediates: BTreeMap::new(),
    };
    let Some(r) = root.roles.get(ROOT) else { return rc };
    for id in &r.keyids {
        let Some(key) = root.keys.get(id) else { continue };
        let Ok(certs) = parse_pem_certificates(&key.public) else {
            continue;
        };
        let (cas, mut leaves): (Vec<CertInfo>, Vec<CertInfo>) = certs.into_iter().partition(|c| c.is_ca);
        if leaves.len() != 1 {
            continue;
        }
        let kid = key.key_id();
        rc.leaves.insert(kid.clone(), leaves.remove(0));
        rc.intermediates.insert(kid, cas);
    }
    rc
}

/// notary `validRootLeafCerts`: CN == GUN and certificate sane (and valid
/// at `now` when given).
fn valid_leaf_certs(
    leaves: &BTreeMap<String, CertInfo>,
    gun: &str,
    now: Option<i64>,
) -> Option<BTreeMap<String, CertInfo>> {
    let valid: BTreeMap<String, CertInfo> = leaves
        .iter()
        .filter(|(_, c)| c.common_name.as_deref() == Some(gun) && c.validate(now).is_ok())
        .map(|(k, c)| (k.clone(), c.clone()))
        .collect();
    (!valid.is_empty()).then_some(valid)
}

/// notary `CertsToKeys`: the x509 keys rebuilt from the certificates in
/// standard PEM, keyed by the ID of the re-encoded key.
fn certs_to_keys(
    leaves: &BTreeMap<String, CertInfo>,
    intermediates: &BTreeMap<String, Vec<CertInfo>>,
) -> BTreeMap<String, PublicKey> {
    leaves
        .iter()
        .filter_map(|(id, leaf)| {
            let ints = intermediates.get(id).map(Vec::as_slice).unwrap_or(&[]);
            cert_chain_to_key(leaf, ints)
        })
        .map(|k| (k.key_id(), k))
        .collect()
}

/// notary `trustpinning.ValidateRoot` with an empty trust-pinning config
/// (TOFU): structure, a valid leaf certificate with CN == GUN, signatures
/// by a threshold of the previous root's certificates (rotation) and by a
/// threshold of its own certificates. Returns notary's error message.
/// Version and expiry are checked by the caller.
pub fn validate_root(
    gun: &str,
    prev: Option<&Root>,
    env: &Envelope,
    now: DateTime<Utc>,
) -> Result<Root, String> {
    const PATH: &str = "could not validate the path to a trusted root: ";
    let root: Root = env.decode().map_err(|e| e.to_string())?;
    root.validate_structure()?;
    check_root_limits(&root)?;
    check_declared_keys(ROOT, &root.keys)?;
    let now_s = now.timestamp();
    let certs = parse_all_certs(&root);
    let from_root = valid_leaf_certs(&certs.leaves, gun, Some(now_s))
        .ok_or_else(|| format!("{PATH}unable to retrieve valid leaf certificates"))?;
    let valid_ints: BTreeMap<String, Vec<CertInfo>> = certs
        .intermediates
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.iter()
                    .filter(|c| c.validate(Some(now_s)).is_ok())
                    .cloned()
                    .collect(),
            )
        })
        .collect();
    if let Some(prev) = prev {
        let prev_certs = parse_all_certs(prev);
        // Expiry of the previously trusted certificates is not checked.
        let trusted = valid_leaf_certs(&prev_certs.leaves, gun, None)
            .ok_or_else(|| format!("{PATH}could not retrieve trusted certs from previous root role data"))?;
        let threshold = prev
            .roles
            .get(ROOT)
            .map(|r| r.threshold)
            .ok_or_else(|| format!("{PATH}could not retrieve previous root role data"))?;
        let keys = certs_to_keys(&trusted, &prev_certs.intermediates);
        verify_threshold(&env.signed, &env.signatures, &keys, threshold, ROOT).map_err(|_| {
            "could not rotate trust to a new trusted root: failed to validate data with current trusted certificates"
                .to_string()
        })?;
    }
    let threshold = root.roles.get(ROOT).map_or(0, |r| r.threshold);
    let keys = certs_to_keys(&from_root, &valid_ints);
    verify_threshold(&env.signed, &env.signatures, &keys, threshold, ROOT)
        .map_err(|_| format!("{PATH}failed to validate integrity of roots"))?;
    Ok(root)
}

/// Convenience for tools: the value of an envelope's `signed` re-signed
/// with `signers` and encoded like notary.
pub fn sign_and_encode(signed: &Value, signers: &[&dyn Signer]) -> Result<Vec<u8>, Error> {
    let msg = to_canonical(signed)?;
    let sigs = signers
        .iter()
        .map(|s| s.sign(&msg))
        .collect::<Result<Vec<_>, _>>()?;
    encode_file(signed, &sigs)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use chrono::TimeZone as _;
    use serde_json::json;

    use super::*;
    use crate::signature::VERIFICATIONS;

    const GUN: &str = "example.com/limits";

    /// A GUN with a stored root (trusted as stored, so its root key need not
    /// be a certificate), a client targets key and server-held snapshot and
    /// timestamp keys.
    struct Repo {
        now: DateTime<Utc>,
        root_key: PrivateKey,
        targets: PrivateKey,
        server: Vec<PrivateKey>,
        current: BTreeMap<String, Vec<u8>>,
    }

    fn root_value(
        version: i64,
        keys: &[&PublicKey],
        role_ids: [Vec<String>; 4],
        now: DateTime<Utc>,
    ) -> Value {
        let keys: serde_json::Map<String, Value> = keys.iter().map(|k| (k.key_id(), k.to_value())).collect();
        let [root, targets, snapshot, timestamp] = role_ids;
        json!({"_type": "Root", "consistent_snapshot": false, "expires": format_go_time(now + ROOT_EXPIRY),
               "keys": keys, "version": version,
               "roles": {"root": {"keyids": root, "threshold": 1}, "targets": {"keyids": targets, "threshold": 1},
                         "snapshot": {"keyids": snapshot, "threshold": 1}, "timestamp": {"keyids": timestamp, "threshold": 1}}})
    }

    fn repo() -> Repo {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 16, 0, 0).unwrap();
        let root_key = PrivateKey::generate_ed25519().unwrap();
        let targets = PrivateKey::generate_p256().unwrap();
        let (sn, ts) = (generate_server_key().unwrap(), generate_server_key().unwrap());
        let ks = [&root_key, &targets, &sn, &ts].map(|k| k.public_key().clone());
        let root = root_value(
            1,
            &ks.iter().collect::<Vec<_>>(),
            ks.clone().map(|k| vec![k.key_id()]),
            now,
        );
        let root = sign_and_encode(&root, &[&root_key]).unwrap();
        Repo {
            now,
            root_key,
            targets,
            server: vec![sn, ts],
            current: [(ROOT.to_string(), root)].into(),
        }
    }

    impl Repo {
        fn push(&self, role: &str, bytes: Vec<u8>) -> Result<Vec<NewFile>, UpdateError> {
            let up = parse_upload_part(role, bytes)?;
            self.validate(up)
        }
        fn validate(&self, up: Upload) -> Result<Vec<NewFile>, UpdateError> {
            let input = UpdateInput {
                gun: GUN,
                current: &self.current,
                uploads: &[up],
                now: self.now,
            };
            validate_update(&input, &self.server)
        }
        fn targets_value(&self, delegations: Value) -> Value {
            json!({"_type": "Targets", "delegations": delegations, "expires": format_go_time(self.now + TARGETS_EXPIRY),
                   "targets": {}, "version": 1})
        }
    }

    fn verifications() -> usize {
        VERIFICATIONS.with(Cell::get)
    }

    #[test]
    fn thousands_of_signatures_for_one_key_refused_before_any_verification() {
        let r = repo();
        let signed = r.targets_value(json!({"keys": {}, "roles": []}));
        let junk = Signature {
            keyid: r.targets.key_id(),
            method: "ecdsa".into(),
            sig: vec![7; 64],
        };
        let bytes = encode_file(&signed, &vec![junk; 5000]).unwrap();
        VERIFICATIONS.with(|c| c.set(0));
        assert_eq!(
            r.push(TARGETS, bytes).unwrap_err(),
            UpdateError::BadTargets("targets has too many signatures: 5000, limit 200".into())
        );
        assert_eq!(verifications(), 0);
    }

    #[test]
    fn each_key_is_verified_at_most_once() {
        let r = repo();
        let signed = r.targets_value(json!({"keys": {}, "roles": []}));
        let good = r.targets.sign(&to_canonical(&signed).unwrap()).unwrap();
        let junk = Signature {
            sig: vec![7; 64],
            ..good.clone()
        };
        let stranger = Signature {
            keyid: "00".repeat(32),
            ..junk.clone()
        };
        // The first signature of a key decides; later ones with its key ID
        // and ones by keys outside the role are never verified.
        let mut sigs = vec![good];
        sigs.extend(std::iter::repeat_n(junk.clone(), 150));
        sigs.extend(std::iter::repeat_n(stranger.clone(), 49));
        VERIFICATIONS.with(|c| c.set(0));
        r.push(TARGETS, encode_file(&signed, &sigs).unwrap()).unwrap();
        assert_eq!(verifications(), 1);

        let mut sigs = vec![junk; 100];
        sigs.extend(std::iter::repeat_n(stranger, 100));
        VERIFICATIONS.with(|c| c.set(0));
        assert_eq!(
            r.push(TARGETS, encode_file(&signed, &sigs).unwrap()).unwrap_err(),
            UpdateError::BadTargets("valid signatures did not meet threshold for targets".into())
        );
        assert_eq!(verifications(), 1);
    }

    #[test]
    fn oversized_files_refused_before_parsing() {
        let r = repo();
        let body = vec![b' '; 8 * 1024 * 1024 + 1];
        let too_large =
            |role: &str| format!("{role} metadata is too large: 8388609 bytes, limit 8388608 bytes");
        for (role, want) in [
            ("root", UpdateError::BadRoot(too_large("root"))),
            ("targets", UpdateError::BadTargets(too_large("targets"))),
            ("targets/a.json", UpdateError::BadTargets(too_large("targets/a"))),
            ("snapshot", UpdateError::BadSnapshot(too_large("snapshot"))),
            ("timestamp", UpdateError::Validation(too_large("timestamp"))),
        ] {
            assert_eq!(parse_upload_part(role, body.clone()).unwrap_err(), want, "{role}");
        }
        // Also for uploads not made by parse_upload_part.
        let up = Upload {
            role: TARGETS.into(),
            version: 2,
            bytes: body,
        };
        assert_eq!(
            r.validate(up).unwrap_err(),
            UpdateError::BadTargets(too_large("targets"))
        );
    }

    #[test]
    fn delegation_counts_limited() {
        let r = repo();
        let push = |delegations: Value| {
            let signed = r.targets_value(delegations);
            r.push(TARGETS, sign_and_encode(&signed, &[&r.targets]).unwrap())
        };
        let role = |i: usize, ids: Vec<String>| json!({"keyids": ids, "name": format!("targets/d{i}"), "paths": [""], "threshold": 1});
        let roles: Vec<Value> = (0..1001).map(|i| role(i, vec![])).collect();
        assert_eq!(
            push(json!({"keys": {}, "roles": roles})).unwrap_err(),
            UpdateError::BadTargets(
                "targets type metadata invalid: too many delegations: 1001, limit 1000".into()
            )
        );
        let keys: serde_json::Map<String, Value> = (0..1001u32)
            .map(|i| {
                let k = PublicKey::new(
                    crate::keys::ED25519,
                    [i.to_be_bytes().to_vec(), vec![0; 28]].concat(),
                );
                (k.key_id(), k.to_value())
            })
            .collect();
        assert_eq!(
            push(json!({"keys": keys, "roles": []})).unwrap_err(),
            UpdateError::BadTargets("targets type metadata invalid: too many keys: 1001, limit 1000".into())
        );
        let k = r.targets.public_key();
        let roles = vec![role(0, vec![k.key_id(); 101])];
        assert_eq!(
            push(json!({"keys": {k.key_id(): k.to_value()}, "roles": roles})).unwrap_err(),
            UpdateError::BadTargets(
                "targets type metadata invalid: targets/d0 lists too many key IDs: 101, limit 100".into()
            )
        );
        let roles: Vec<Value> = (0..1000).map(|i| role(i, vec![k.key_id(); 100])).collect();
        push(json!({"keys": {k.key_id(): k.to_value()}, "roles": roles})).unwrap();
    }

    #[test]
    fn root_key_counts_limited() {
        let r = repo();
        let ks = [&r.root_key, &r.targets, &r.server[0], &r.server[1]].map(|k| k.public_key().clone());
        let ids = ks.clone().map(|k| vec![k.key_id()]);
        let push_root = |keys: Vec<PublicKey>, role_ids: [Vec<String>; 4]| {
            let v = root_value(2, &keys.iter().collect::<Vec<_>>(), role_ids, r.now);
            r.push(ROOT, sign_and_encode(&v, &[&r.root_key]).unwrap())
        };
        let mut many = ids.clone();
        many[1] = vec![r.targets.key_id(); 101];
        assert_eq!(
            push_root(ks.to_vec(), many).unwrap_err(),
            UpdateError::BadRoot(
                "root type metadata invalid: targets lists too many key IDs: 101, limit 100".into()
            )
        );
        let mut keys = ks.to_vec();
        keys.extend((0..997u32).map(|i| {
            PublicKey::new(
                crate::keys::ED25519,
                [i.to_be_bytes().to_vec(), vec![1; 28]].concat(),
            )
        }));
        assert_eq!(
            push_root(keys, ids).unwrap_err(),
            UpdateError::BadRoot("root type metadata invalid: too many keys: 1001, limit 1000".into())
        );
    }
}
