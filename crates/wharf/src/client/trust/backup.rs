//! `wharf trust key backup --out FILE` and `wharf trust key restore FILE`: every private
//! key docker keeps under `$DOCKER_CONFIG/trust/private/` in one file protected by a
//! backup passphrase, and back.
//!
//! Each key file is archived byte for byte: docker's keys stay encrypted with their own
//! passphrases inside the archive, and a restored file is exactly the file that was backed
//! up (same PEM headers `role:`/`gun:`, same PKCS#8 encryption), so docker and notary use
//! it as before. Nothing here needs or asks for a key's own passphrase.
//!
//! # Archive format (version 1)
//!
//! All integers big-endian. The first 51 bytes are the header; all of them are the AEAD's
//! associated data, so a changed KDF parameter, salt or nonce is refused like a changed
//! ciphertext byte.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `WHARFKB\0` |
//! | 8 | 1 | format version, `1` |
//! | 9 | 1 | KDF, `1` = Argon2id (version 0x13) |
//! | 10 | 4 | Argon2 memory cost in KiB (`m`) |
//! | 14 | 4 | Argon2 time cost, passes (`t`) |
//! | 18 | 4 | Argon2 parallelism, lanes (`p`) |
//! | 22 | 16 | salt, random per archive |
//! | 38 | 1 | AEAD, `1` = AES-256-GCM |
//! | 39 | 12 | nonce, random per archive |
//! | 51 | n + 16 | ciphertext of the payload, then the 16-byte GCM tag |
//!
//! The 32-byte AES key is Argon2id(passphrase, salt, m, t, p). Written archives use
//! m = 64 MiB, t = 3, p = 4 (RFC 9106 §4, second recommended option); reading accepts the
//! parameters the header names within [`MAX_M_COST_KIB`], [`MAX_T_COST`], [`MAX_P_COST`],
//! so that a hostile file cannot make the KDF take the machine's memory before the tag
//! is checked.
//!
//! The payload is the entry count (u32), then per entry the file name's length (u16), the
//! file name (UTF-8, `<64 hex digits>.key`), the content's length (u32) and the content:
//! the key file's bytes. Nothing may follow the last entry.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use serde_json::{Value, json};

use crate::client::prompt;
use crate::client::report::{self, CONFIG_FILE, INVALID_INPUT, Report, fail};

/// The backup file given to `backup --out` exists and `--force` was not given.
pub const FILE_EXISTS: &str = "FILE_EXISTS";
/// The archive cannot be opened: wrong passphrase, or a changed or damaged file.
pub const DECRYPTION_FAILED: &str = "DECRYPTION_FAILED";
/// `restore` would replace a different key file with the same key id (`--overwrite`).
pub const KEY_CONFLICT: &str = "KEY_CONFLICT";

/// Where the backup passphrase comes from when standard input is not a terminal.
pub const PASSPHRASE_ENV: &str = "WHARF_BACKUP_PASSPHRASE";

const MAGIC: &[u8; 8] = b"WHARFKB\0";
const VERSION: u8 = 1;
const KDF_ARGON2ID: u8 = 1;
const AEAD_AES_256_GCM: u8 = 1;
const SALT_LEN: usize = 16;
const HEADER_LEN: usize = 8 + 1 + 1 + 12 + SALT_LEN + 1 + NONCE_LEN;
const TAG_LEN: usize = 16;

/// The largest Argon2 memory cost a header may name: 1 GiB.
pub const MAX_M_COST_KIB: u32 = 1024 * 1024;
/// The most Argon2 passes a header may name.
pub const MAX_T_COST: u32 = 64;
/// The most Argon2 lanes a header may name.
pub const MAX_P_COST: u32 = 64;
/// Backups larger than this are not read (docker's key files are about 500 bytes each).
const MAX_ARCHIVE_BYTES: u64 = 64 * 1024 * 1024;

/// Argon2id cost parameters, as stored in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl KdfParams {
    /// What `backup` writes (RFC 9106 §4, second recommended option).
    pub const DEFAULT: KdfParams = KdfParams {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 4,
    };
}

/// One archived key file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `<key id>.key`
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Why an archive or an entry in it is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackupError {
    #[error("not a Wharf key backup (it does not start with the backup file's magic bytes)")]
    NotABackup,
    #[error("the key backup is truncated")]
    Truncated,
    #[error("unsupported key backup format version {0} (this wharf reads version 1)")]
    UnsupportedVersion(u8),
    #[error("unsupported key backup algorithm: {0}")]
    UnsupportedAlgorithm(String),
    #[error(
        "the key backup's KDF parameters are out of bounds (m={m} KiB, t={t}, p={p}; at most m={max_m} KiB, t={max_t}, p={max_p})",
        max_m = MAX_M_COST_KIB,
        max_t = MAX_T_COST,
        max_p = MAX_P_COST
    )]
    KdfParamsOutOfBounds { m: u32, t: u32, p: u32 },
    #[error("cannot decrypt the key backup: wrong passphrase, or the file was altered or damaged")]
    Decryption,
    #[error("the key backup's content is malformed: {0}")]
    MalformedPayload(String),
    #[error("the key backup holds an entry named {name:?}: {reason}")]
    BadEntry { name: String, reason: String },
}

/// What a key file's PEM headers say about the key (no passphrase needed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub key_id: String,
    pub role: Option<String>,
    pub gun: Option<String>,
}

/// The key id of a file name `<64 lowercase hex digits>.key`, the way docker and notary name
/// key files; anything else (a path, `..`, another extension) is refused.
pub fn key_id_of(name: &str) -> Result<&str, String> {
    let id = name
        .strip_suffix(".key")
        .ok_or_else(|| "a key file name must end in .key".to_owned())?;
    if id.len() != 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(
            "a key file name must be a key id of 64 lowercase hex digits followed by .key (no directories)"
                .to_owned(),
        );
    }
    Ok(id)
}

/// Check that `bytes` is one PEM private key block and return its `role:` and `gun:` headers.
pub fn parse_private_key_pem(bytes: &[u8]) -> Result<(Option<String>, Option<String>), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not a PEM file (not UTF-8 text)".to_owned())?;
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    let begin = lines
        .by_ref()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| "empty file, not a PEM private key".to_owned())?;
    let label = begin
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or_else(|| "not a PEM file (no BEGIN line)".to_owned())?;
    if !label.ends_with("PRIVATE KEY") {
        return Err(format!("a PEM block of type {label:?}, not a private key"));
    }
    let end = format!("-----END {label}-----");
    let (mut role, mut gun) = (None, None);
    let mut body = String::new();
    let mut in_headers = true;
    let mut ended = false;
    for line in lines.by_ref() {
        if line == end {
            ended = true;
            break;
        }
        if in_headers {
            if let Some((name, value)) = line.split_once(':') {
                match name.trim() {
                    "role" => role = Some(value.trim().to_owned()),
                    "gun" => gun = Some(value.trim().to_owned()),
                    _ => {}
                }
                continue;
            }
            in_headers = false;
            if line.is_empty() {
                continue;
            }
        }
        body.push_str(line.trim());
    }
    if !ended {
        return Err(format!("a PEM block without its END line ({end})"));
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("more than one PEM block, or text after the key".to_owned());
    }
    match base64::engine::general_purpose::STANDARD.decode(&body) {
        Ok(der) if !der.is_empty() => Ok((role, gun)),
        Ok(_) => Err("a PEM private key block with no content".to_owned()),
        Err(e) => Err(format!("the PEM block's content is not base64: {e}")),
    }
}

/// Validate one entry (name and content) and say what it holds.
pub fn check_entry(entry: &Entry) -> Result<KeyInfo, BackupError> {
    let bad = |reason: String| BackupError::BadEntry {
        name: entry.name.clone(),
        reason,
    };
    let key_id = key_id_of(&entry.name).map_err(bad)?.to_owned();
    let (role, gun) = parse_private_key_pem(&entry.bytes).map_err(bad)?;
    Ok(KeyInfo { key_id, role, gun })
}

fn derive_key(passphrase: &[u8], salt: &[u8], params: KdfParams) -> Result<LessSafeKey, BackupError> {
    let out_of_bounds = || BackupError::KdfParamsOutOfBounds {
        m: params.m_cost_kib,
        t: params.t_cost,
        p: params.p_cost,
    };
    if params.m_cost_kib > MAX_M_COST_KIB || params.t_cost > MAX_T_COST || params.p_cost > MAX_P_COST {
        return Err(out_of_bounds());
    }
    let argon_params = argon2::Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(32))
        .map_err(|_| out_of_bounds())?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon_params);
    let mut key = [0u8; 32];
    argon
        .hash_password_into(passphrase, salt, &mut key)
        .map_err(|_| out_of_bounds())?;
    let unbound = UnboundKey::new(&AES_256_GCM, &key).map_err(|_| BackupError::Decryption)?;
    key.fill(0);
    Ok(LessSafeKey::new(unbound))
}

fn encode_payload(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        out.extend_from_slice(&(e.name.len() as u16).to_be_bytes());
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(&(e.bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(&e.bytes);
    }
    out
}

fn decode_payload(mut data: &[u8]) -> Result<Vec<Entry>, BackupError> {
    fn take<'a>(data: &mut &'a [u8], n: usize) -> Result<&'a [u8], BackupError> {
        if data.len() < n {
            return Err(BackupError::MalformedPayload(
                "an entry runs past the end".to_owned(),
            ));
        }
        let (head, rest) = data.split_at(n);
        *data = rest;
        Ok(head)
    }
    let count = u32::from_be_bytes(take(&mut data, 4)?.try_into().expect("4 bytes"));
    let mut entries = Vec::new();
    for _ in 0..count {
        let name_len = u16::from_be_bytes(take(&mut data, 2)?.try_into().expect("2 bytes")) as usize;
        let name = String::from_utf8(take(&mut data, name_len)?.to_vec())
            .map_err(|_| BackupError::MalformedPayload("an entry name is not UTF-8".to_owned()))?;
        let len = u32::from_be_bytes(take(&mut data, 4)?.try_into().expect("4 bytes")) as usize;
        let bytes = take(&mut data, len)?.to_vec();
        entries.push(Entry { name, bytes });
    }
    if !data.is_empty() {
        return Err(BackupError::MalformedPayload(format!(
            "{} bytes after the last entry",
            data.len()
        )));
    }
    Ok(entries)
}

/// The archive of `entries` under `passphrase` (format in the module documentation).
pub fn seal(entries: &[Entry], passphrase: &str, params: KdfParams) -> anyhow::Result<Vec<u8>> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| anyhow::anyhow!("no randomness for the salt"))?;
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| anyhow::anyhow!("no randomness for the nonce"))?;
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(KDF_ARGON2ID);
    out.extend_from_slice(&params.m_cost_kib.to_be_bytes());
    out.extend_from_slice(&params.t_cost.to_be_bytes());
    out.extend_from_slice(&params.p_cost.to_be_bytes());
    out.extend_from_slice(&salt);
    out.push(AEAD_AES_256_GCM);
    out.extend_from_slice(&nonce);
    debug_assert_eq!(out.len(), HEADER_LEN);
    let key = derive_key(passphrase.as_bytes(), &salt, params)?;
    let mut sealed = encode_payload(entries);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&out[..HEADER_LEN]),
        &mut sealed,
    )
    .map_err(|_| anyhow::anyhow!("encryption failed"))?;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The entries of an archive, or why it is refused. Entries are returned as archived;
/// [`check_entry`] validates each.
pub fn open(archive: &[u8], passphrase: &str) -> Result<Vec<Entry>, BackupError> {
    if archive.len() < MAGIC.len() || &archive[..MAGIC.len()] != MAGIC {
        return Err(BackupError::NotABackup);
    }
    if archive.len() < HEADER_LEN + TAG_LEN {
        return Err(BackupError::Truncated);
    }
    let (header, sealed) = archive.split_at(HEADER_LEN);
    if header[8] != VERSION {
        return Err(BackupError::UnsupportedVersion(header[8]));
    }
    if header[9] != KDF_ARGON2ID {
        return Err(BackupError::UnsupportedAlgorithm(format!("KDF {}", header[9])));
    }
    if header[38] != AEAD_AES_256_GCM {
        return Err(BackupError::UnsupportedAlgorithm(format!("AEAD {}", header[38])));
    }
    let u32_at = |at: usize| u32::from_be_bytes(header[at..at + 4].try_into().expect("4 bytes"));
    let params = KdfParams {
        m_cost_kib: u32_at(10),
        t_cost: u32_at(14),
        p_cost: u32_at(18),
    };
    let key = derive_key(passphrase.as_bytes(), &header[22..22 + SALT_LEN], params)?;
    let nonce =
        Nonce::try_assume_unique_for_key(&header[39..39 + NONCE_LEN]).map_err(|_| BackupError::Truncated)?;
    let mut buf = sealed.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(header), &mut buf)
        .map_err(|_| BackupError::Decryption)?;
    decode_payload(plain)
}

/// Key files with what their PEM headers say.
type KeyFiles = Vec<(Entry, KeyInfo)>;

/// The key files `backup` takes: every regular `<key id>.key` file directly in `private`
/// (docker's layout), sorted by name; other names are returned as skipped. A `.key` file
/// that is not a PEM private key is an error: silently leaving a key out of a backup is
/// worse than refusing it.
fn collect_keys(private: &Path) -> anyhow::Result<(KeyFiles, Vec<String>)> {
    let listing = std::fs::read_dir(private).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            fail(
                INVALID_INPUT,
                format!("no private keys to back up: {} does not exist", private.display()),
            )
        } else {
            fail(CONFIG_FILE, format!("cannot list {}: {e}", private.display()))
        }
    })?;
    let mut names = Vec::new();
    for item in listing {
        let item = item.map_err(|e| fail(CONFIG_FILE, format!("cannot list {}: {e}", private.display())))?;
        names.push((item.file_name().to_string_lossy().into_owned(), item.path()));
    }
    names.sort();
    let (mut keys, mut skipped) = (Vec::new(), Vec::new());
    for (name, path) in names {
        let is_file = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
        if !is_file || key_id_of(&name).is_err() {
            skipped.push(name);
            continue;
        }
        let bytes = std::fs::read(&path)
            .map_err(|e| fail(CONFIG_FILE, format!("cannot read {}: {e}", path.display())))?;
        let entry = Entry { name, bytes };
        let info = check_entry(&entry).map_err(|e| {
            fail(
                INVALID_INPUT,
                format!("refusing to back up {}: {}", path.display(), entry_reason(&e)),
            )
        })?;
        keys.push((entry, info));
    }
    if keys.is_empty() {
        return Err(fail(
            INVALID_INPUT,
            format!("no private keys to back up in {}", private.display()),
        ));
    }
    Ok((keys, skipped))
}

fn entry_reason(e: &BackupError) -> String {
    match e {
        BackupError::BadEntry { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// The backup passphrase: `WHARF_BACKUP_PASSPHRASE`, or asked on the terminal (twice when
/// a new backup is made, so a typo does not lock the keys away). Never empty.
fn backup_passphrase(confirm: bool) -> anyhow::Result<String> {
    let passphrase = match std::env::var(PASSPHRASE_ENV) {
        Ok(p) => p,
        Err(_) if prompt::stdin_is_terminal() => {
            let first = prompt::secret_from_terminal("Backup passphrase")?;
            if confirm && !first.is_empty() {
                let second = prompt::secret_from_terminal("Repeat the backup passphrase")?;
                if first != second {
                    return Err(fail(INVALID_INPUT, "the two backup passphrases differ"));
                }
            }
            first
        }
        Err(_) => {
            return Err(fail(
                INVALID_INPUT,
                format!("no backup passphrase: set {PASSPHRASE_ENV} or run on a terminal to be asked"),
            ));
        }
    };
    if passphrase.is_empty() {
        return Err(fail(INVALID_INPUT, "the backup passphrase must not be empty"));
    }
    Ok(passphrase)
}

fn private_dir() -> PathBuf {
    super::keystore::KeyStore::docker().dir().to_path_buf()
}

fn key_json(info: &KeyInfo) -> Value {
    json!({ "key_id": info.key_id, "role": info.role, "gun": info.gun })
}

fn key_table(items: &[Value], with_status: bool) -> String {
    let cell = |v: &Value, k: &str| v[k].as_str().unwrap_or("-").to_owned();
    let id = |v: &Value| cell(v, "key_id");
    let role = |v: &Value| cell(v, "role");
    let gun = |v: &Value| cell(v, "gun");
    let status = |v: &Value| cell(v, "status");
    let mut columns: Vec<report::Column<'_>> = vec![("KEY ID", &id), ("ROLE", &role), ("GUN", &gun)];
    if with_status {
        columns.push(("STATUS", &status));
    }
    report::table(items, &columns)
}

/// Run `wharf trust key backup|restore`.
/// `wharf trust key backup --out FILE [--force]`.
pub fn backup_keys(out: &Path, force: bool) -> anyhow::Result<Report> {
    backup(&private_dir(), out, force, KdfParams::DEFAULT)
}

/// `wharf trust key restore FILE [--overwrite]`.
pub fn restore_keys(file: &Path, overwrite: bool) -> anyhow::Result<Report> {
    restore(&private_dir(), file, overwrite)
}

fn backup(private: &Path, out: &Path, force: bool, params: KdfParams) -> anyhow::Result<Report> {
    if !force && std::fs::symlink_metadata(out).is_ok() {
        return Err(fail(
            FILE_EXISTS,
            format!("{} already exists; pass --force to replace it", out.display()),
        ));
    }
    let (keys, skipped) = collect_keys(private)?;
    let passphrase = backup_passphrase(true)?;
    let entries: Vec<Entry> = keys.iter().map(|(e, _)| e.clone()).collect();
    let archive = seal(&entries, &passphrase, params)?;
    write_private_file(out, &archive, force)
        .map_err(|e| fail(report::CLI_ERROR, format!("cannot write {}: {e}", out.display())))?;
    let items: Vec<Value> = keys.iter().map(|(_, info)| key_json(info)).collect();
    let mut text = format!(
        "Backed up {} private key(s) from {} to {}\n{}",
        items.len(),
        private.display(),
        out.display(),
        key_table(&items, false)
    );
    if !skipped.is_empty() {
        text.push_str(&format!(
            "\nSkipped (not <key id>.key files): {}",
            skipped.join(", ")
        ));
    }
    Ok(Report::new(
        json!({ "file": out, "trust_dir": private, "keys": items, "skipped": skipped }),
        text,
    ))
}

/// Write `bytes` to `path` with mode 0600: a new file, or (`replace`) a temporary file in
/// the same directory renamed over the old one, so a failure never leaves half a file.
fn write_private_file(path: &Path, bytes: &[u8], replace: bool) -> std::io::Result<()> {
    if !replace {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(bytes)?;
        return f.sync_all();
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.wharf-tmp-{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn restore(private: &Path, file: &Path, overwrite: bool) -> anyhow::Result<Report> {
    let meta = std::fs::metadata(file)
        .map_err(|e| fail(INVALID_INPUT, format!("cannot read {}: {e}", file.display())))?;
    if meta.len() > MAX_ARCHIVE_BYTES {
        return Err(fail(
            INVALID_INPUT,
            format!(
                "{} is too large for a key backup ({} bytes)",
                file.display(),
                meta.len()
            ),
        ));
    }
    let archive = std::fs::read(file)
        .map_err(|e| fail(INVALID_INPUT, format!("cannot read {}: {e}", file.display())))?;
    // Refuse what is not a backup before asking anything.
    if !archive.starts_with(MAGIC) {
        return Err(fail(INVALID_INPUT, BackupError::NotABackup.to_string()));
    }
    let passphrase = backup_passphrase(false)?;
    let entries = open(&archive, &passphrase).map_err(|e| match e {
        BackupError::Decryption => fail(DECRYPTION_FAILED, e.to_string()),
        other => fail(INVALID_INPUT, other.to_string()),
    })?;
    // Every entry is checked, and every conflict found, before anything is written.
    let mut seen = BTreeSet::new();
    let mut plan = Vec::new();
    let mut conflicts = Vec::new();
    for entry in &entries {
        let info = check_entry(entry).map_err(|e| fail(INVALID_INPUT, e.to_string()))?;
        if !seen.insert(entry.name.clone()) {
            return Err(fail(
                INVALID_INPUT,
                BackupError::BadEntry {
                    name: entry.name.clone(),
                    reason: "it appears twice".to_owned(),
                }
                .to_string(),
            ));
        }
        let target = private.join(&entry.name);
        let status = match std::fs::read(&target) {
            Ok(existing) if existing == entry.bytes => "already present",
            Ok(_) => {
                conflicts.push(info.key_id.clone());
                "overwritten"
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "restored",
            Err(e) => {
                return Err(fail(
                    CONFIG_FILE,
                    format!("cannot read {}: {e}", target.display()),
                ));
            }
        };
        plan.push((entry, info, target, status));
    }
    if !conflicts.is_empty() && !overwrite {
        return Err(fail(
            KEY_CONFLICT,
            format!(
                "nothing restored: {} already holds a different key file with the same key id: {} (pass --overwrite to replace it with the backup's)",
                private.display(),
                conflicts.join(", ")
            ),
        ));
    }
    create_private_dir(private)?;
    for (entry, _, target, status) in &plan {
        if *status == "already present" {
            continue;
        }
        write_private_file(target, &entry.bytes, true)
            .map_err(|e| fail(CONFIG_FILE, format!("cannot write {}: {e}", target.display())))?;
    }
    let items: Vec<Value> = plan
        .iter()
        .map(|(_, info, _, status)| {
            let mut v = key_json(info);
            v["status"] = json!(status);
            v
        })
        .collect();
    let count = |s: &str| plan.iter().filter(|p| p.3 == s).count();
    let text = format!(
        "Restored {} private key(s) into {} ({} already present, {} overwritten)\n{}",
        count("restored") + count("overwritten"),
        private.display(),
        count("already present"),
        count("overwritten"),
        key_table(&items, true)
    );
    Ok(Report::new(
        json!({ "file": file, "trust_dir": private, "keys": items }),
        text,
    ))
}

/// `trust/` and `trust/private/`, created 0700 where missing (existing ones keep the mode
/// their owner gave them).
fn create_private_dir(private: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(private)
        .map_err(|e| fail(CONFIG_FILE, format!("cannot create {}: {e}", private.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the tests run the KDF dozens of times.
    const FAST: KdfParams = KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };
    const ID: &str = "9a8aa7b2b5e1b1b4ac4d6c7d30c07ad8a70b9fbfc6c5b2e5f7e6e4d0b6a3f1c2";

    fn key_file(role: &str, gun: Option<&str>) -> Vec<u8> {
        let gun = gun.map(|g| format!("gun: {g}\n")).unwrap_or_default();
        format!("-----BEGIN ENCRYPTED PRIVATE KEY-----\n{gun}role: {role}\n\nMIHeMEkGCSqGSIb3DQEFDTA8\nAAEC\n-----END ENCRYPTED PRIVATE KEY-----\n")
            .into_bytes()
    }

    fn entries() -> Vec<Entry> {
        vec![
            Entry {
                name: format!("{ID}.key"),
                bytes: key_file("root", None),
            },
            Entry {
                name: format!("{}.key", "0".repeat(64)),
                bytes: key_file("targets", Some("localhost:5000/team/app")),
            },
        ]
    }

    #[test]
    fn round_trip_keeps_every_byte() {
        let archive = seal(&entries(), "backup-pass", FAST).unwrap();
        assert_eq!(&archive[..8], b"WHARFKB\0");
        assert_eq!(open(&archive, "backup-pass").unwrap(), entries());
        // The KDF parameters are in the header as written.
        assert_eq!(&archive[10..14], &64u32.to_be_bytes());
        assert_eq!(&archive[14..18], &1u32.to_be_bytes());
        assert_eq!(&archive[18..22], &1u32.to_be_bytes());
        // Two archives of the same keys differ (fresh salt and nonce).
        let again = seal(&entries(), "backup-pass", FAST).unwrap();
        assert_ne!(archive[22..51], again[22..51]);
        assert_ne!(archive[51..], again[51..]);
    }

    #[test]
    fn the_default_parameters_round_trip() {
        let archive = seal(&entries(), "backup-pass", KdfParams::DEFAULT).unwrap();
        assert_eq!(&archive[10..14], &(64 * 1024u32).to_be_bytes());
        assert_eq!(open(&archive, "backup-pass").unwrap(), entries());
    }

    #[test]
    fn a_wrong_passphrase_is_refused() {
        let archive = seal(&entries(), "backup-pass", FAST).unwrap();
        assert_eq!(open(&archive, "backup-pasS"), Err(BackupError::Decryption));
        assert_eq!(open(&archive, ""), Err(BackupError::Decryption));
    }

    #[test]
    fn a_changed_byte_in_any_region_is_refused() {
        let archive = seal(&entries(), "backup-pass", FAST).unwrap();
        let len = archive.len();
        let cases: Vec<(&str, usize, BackupError)> = vec![
            ("magic", 0, BackupError::NotABackup),
            ("version", 8, BackupError::UnsupportedVersion(VERSION ^ 2)),
            (
                "kdf id",
                9,
                BackupError::UnsupportedAlgorithm(format!("KDF {}", KDF_ARGON2ID ^ 2)),
            ),
            ("m cost", 13, BackupError::Decryption),
            ("t cost", 17, BackupError::Decryption),
            ("p cost", 21, BackupError::Decryption),
            ("salt", 30, BackupError::Decryption),
            (
                "aead id",
                38,
                BackupError::UnsupportedAlgorithm(format!("AEAD {}", AEAD_AES_256_GCM ^ 2)),
            ),
            ("nonce", 45, BackupError::Decryption),
            ("ciphertext first", 51, BackupError::Decryption),
            ("ciphertext last", len - TAG_LEN - 1, BackupError::Decryption),
            ("tag", len - 1, BackupError::Decryption),
        ];
        for (region, at, expected) in cases {
            let mut tampered = archive.clone();
            tampered[at] ^= 2;
            assert_eq!(open(&tampered, "backup-pass"), Err(expected), "{region}");
        }
        // A parameter pushed past the bounds is refused before the KDF runs.
        let mut huge = archive.clone();
        huge[10..14].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            open(&huge, "backup-pass"),
            Err(BackupError::KdfParamsOutOfBounds {
                m: u32::MAX,
                t: 1,
                p: 1
            })
        );
        assert_eq!(
            open(&archive[..len - 1], "backup-pass"),
            Err(BackupError::Decryption)
        );
        let mut longer = archive.clone();
        longer.push(0);
        assert_eq!(open(&longer, "backup-pass"), Err(BackupError::Decryption));
        assert_eq!(
            open(&archive[..HEADER_LEN + 3], "backup-pass"),
            Err(BackupError::Truncated)
        );
        assert_eq!(open(b"tar archive", "backup-pass"), Err(BackupError::NotABackup));
    }

    #[test]
    fn an_empty_archive_round_trips_and_a_payload_with_trailing_bytes_is_refused() {
        assert_eq!(open(&seal(&[], "p", FAST).unwrap(), "p").unwrap(), vec![]);
        let mut payload = encode_payload(&entries());
        payload.push(7);
        assert_eq!(
            decode_payload(&payload),
            Err(BackupError::MalformedPayload(
                "1 bytes after the last entry".to_owned()
            ))
        );
        let payload = encode_payload(&entries());
        assert!(matches!(
            decode_payload(&payload[..payload.len() - 1]),
            Err(BackupError::MalformedPayload(_))
        ));
    }

    #[test]
    fn entry_names_must_be_key_ids() {
        for name in [
            "../".to_owned() + &"a".repeat(61) + ".key",
            format!("x/{}.key", "a".repeat(62)),
            format!("/{}.key", "a".repeat(63)),
            "..".to_owned(),
            format!("{}.pem", "a".repeat(64)),
            format!("{}.key", "A".repeat(64)),
            format!("{}.key", "a".repeat(63)),
            ".key".to_owned(),
        ] {
            assert!(key_id_of(&name).is_err(), "{name}");
        }
        assert_eq!(key_id_of(&format!("{ID}.key")), Ok(ID));
    }

    #[test]
    fn entry_content_must_be_one_pem_private_key() {
        assert_eq!(
            parse_private_key_pem(&key_file("targets", Some("h/r"))),
            Ok((Some("targets".to_owned()), Some("h/r".to_owned())))
        );
        let plain = b"-----BEGIN PRIVATE KEY-----\nrole: alice\n\nAAEC\n-----END PRIVATE KEY-----\n";
        assert_eq!(parse_private_key_pem(plain), Ok((Some("alice".to_owned()), None)));
        let cert = b"-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
        assert_eq!(
            parse_private_key_pem(cert),
            Err("a PEM block of type \"CERTIFICATE\", not a private key".to_owned())
        );
        assert!(parse_private_key_pem(b"").is_err());
        assert!(parse_private_key_pem(b"#!/bin/sh\nrm -rf /\n").is_err());
        let unterminated = b"-----BEGIN PRIVATE KEY-----\nAAEC\n";
        assert!(parse_private_key_pem(unterminated).is_err());
        let two = [plain.as_slice(), plain.as_slice()].concat();
        assert_eq!(
            parse_private_key_pem(&two),
            Err("more than one PEM block, or text after the key".to_owned())
        );
        let not_base64 = b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n";
        assert!(parse_private_key_pem(not_base64).is_err());
    }
}
