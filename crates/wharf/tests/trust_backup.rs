//! `wharf trust key backup` / `wharf trust key restore` with keys made by the real docker
//! CLI: a delegation key from `docker trust key generate`, root and repository keys from a
//! signed `docker push`. Backed up, deleted, restored — and docker signs and verifies with
//! the restored keys again. Plus the refusals: a changed archive, a wrong passphrase, a
//! conflicting key file, hostile entry names; each leaves the trust directory as it was.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{DockerClient, Server, logged_in, pushed_digest, text};
use serde_json::Value;

const DCT: &[(&str, &str)] = &[
    ("DOCKER_CONTENT_TRUST", "1"),
    ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123"),
    ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-123"),
];
const PASSPHRASE: &str = "backup-pass-123";

/// `wharf ARGS` with the Docker config `config`, the backup passphrase `passphrase` in
/// the environment (none when `None`) and no terminal.
fn wharf(config: &Path, passphrase: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wharf"));
    c.args(args)
        .env("DOCKER_CONFIG", config)
        .env_remove("WHARF_BACKUP_PASSPHRASE")
        .stdin(Stdio::null());
    if let Some(p) = passphrase {
        c.env("WHARF_BACKUP_PASSPHRASE", p);
    }
    c.output().expect("run wharf")
}

fn wharf_json(config: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let out = wharf(config, Some(PASSPHRASE), &all);
    assert!(out.status.success(), "wharf {args:?} failed: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)))
}

/// The `{"error":{code,message}}` of a failed `--output json` run.
fn wharf_error(config: &Path, passphrase: Option<&str>, args: &[&str]) -> (String, String) {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let out = wharf(config, passphrase, &all);
    assert!(
        !out.status.success(),
        "wharf {args:?} should fail: {}",
        text(&out)
    );
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let v: Value =
        serde_json::from_slice(&out.stderr).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)));
    (
        v["error"]["code"].as_str().unwrap().to_owned(),
        v["error"]["message"].as_str().unwrap().to_owned(),
    )
}

fn dct_ok(client: &DockerClient, args: &[&str]) -> String {
    let out = client.cmd(args, DCT);
    let t = text(&out);
    assert!(out.status.success(), "docker {args:?} failed:\n{t}");
    t
}

/// name -> bytes of every file in `dir` (empty when it does not exist).
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut all: Vec<_> = listing
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    all.sort();
    all
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn private(client: &DockerClient) -> PathBuf {
    client.config.path().join("trust/private")
}

/// (key id, role, gun) of a report's `keys`, sorted by role.
fn keys_of(report: &Value) -> Vec<(String, String, Option<String>)> {
    let mut keys: Vec<_> = report["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            (
                k["key_id"].as_str().unwrap().to_owned(),
                k["role"].as_str().unwrap().to_owned(),
                k["gun"].as_str().map(str::to_owned),
            )
        })
        .collect();
    keys.sort_by(|a, b| a.1.cmp(&b.1));
    keys
}

#[test]
fn keys_backed_up_deleted_and_restored_sign_again() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let publisher = logged_in(&server, "admin", &server.admin_password);
    let repo = format!("{}/team/backed-up", server.host);

    // A delegation key (docker trust key generate) and the root + repository keys of a
    // signed push, all in the publisher's trust directory.
    let pub_dir = server.scratch("pub");
    dct_ok(
        &publisher,
        &[
            "trust",
            "key",
            "generate",
            "alice",
            "--dir",
            pub_dir.to_str().unwrap(),
        ],
    );
    let v1 = format!("{repo}:v1");
    publisher.import_image(&v1);
    let pushed = dct_ok(&publisher, &["push", &v1]);
    assert!(pushed.contains(&format!("Successfully signed {v1}")), "{pushed}");
    let originals = files(&private(&publisher));
    assert_eq!(
        originals.len(),
        3,
        "alice, root, targets: {:?}",
        originals.iter().map(|f| &f.0).collect::<Vec<_>>()
    );

    let backup = server.scratch("backup").join("keys.wkb");
    let report = wharf_json(
        publisher.config.path(),
        &["trust", "key", "backup", "--out", backup.to_str().unwrap()],
    );
    assert_eq!(mode(&backup), 0o600);
    let keys = keys_of(&report);
    let roles: Vec<(&str, Option<&str>)> = keys.iter().map(|k| (k.1.as_str(), k.2.as_deref())).collect();
    assert_eq!(
        roles,
        vec![("alice", None), ("root", None), ("targets", Some(repo.as_str()))]
    );
    let mut ids: Vec<String> = keys.iter().map(|k| format!("{}.key", k.0)).collect();
    ids.sort();
    assert_eq!(ids, originals.iter().map(|f| f.0.clone()).collect::<Vec<_>>());
    // The archive does not hold the key files in the clear.
    let archive = std::fs::read(&backup).unwrap();
    assert!(archive.starts_with(b"WHARFKB\0"));
    assert!(!String::from_utf8_lossy(&archive).contains("PRIVATE KEY"));

    // A second backup to the same file is refused, the first one stays.
    let (code, message) = wharf_error(
        publisher.config.path(),
        Some(PASSPHRASE),
        &["trust", "key", "backup", "--out", backup.to_str().unwrap()],
    );
    assert_eq!(code, "FILE_EXISTS");
    assert_eq!(
        message,
        format!("{} already exists; pass --force to replace it", backup.display())
    );
    assert_eq!(std::fs::read(&backup).unwrap(), archive);

    // The keys are lost: without them docker cannot sign a new tag.
    std::fs::remove_dir_all(private(&publisher)).unwrap();
    let lost = format!("{repo}:lost");
    publisher.import_image(&lost);
    let out = publisher.cmd(&["push", &lost], DCT);
    assert!(!out.status.success(), "signed without keys:\n{}", text(&out));

    // Restored: the same bytes, the directory 0700 and each file 0600.
    let report = wharf_json(
        publisher.config.path(),
        &["trust", "key", "restore", backup.to_str().unwrap()],
    );
    assert_eq!(keys_of(&report).len(), 3);
    assert!(
        report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["status"] == "restored"),
        "{report}"
    );
    assert_eq!(files(&private(&publisher)), originals);
    assert_eq!(mode(&private(&publisher)), 0o700);
    for (name, _) in &originals {
        assert_eq!(mode(&private(&publisher).join(name)), 0o600, "{name}");
    }

    // Restoring again changes nothing.
    let report = wharf_json(
        publisher.config.path(),
        &["trust", "key", "restore", backup.to_str().unwrap()],
    );
    assert!(
        report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["status"] == "already present"),
        "{report}"
    );

    // docker signs a new tag of the same repository with the restored keys ...
    let v2 = format!("{repo}:v2");
    publisher.import_image(&v2);
    let pushed = dct_ok(&publisher, &["push", &v2]);
    assert!(pushed.contains(&format!("Successfully signed {v2}")), "{pushed}");
    let v2_digest = pushed_digest(&pushed);
    // ... and a client with no trust cache verifies it.
    let fresh = logged_in(&server, "admin", &server.admin_password);
    let pulled = dct_ok(&fresh, &["pull", &v2]);
    assert!(pulled.contains(&v2_digest), "{pulled}");
}

/// A trust directory holding one real key made by `docker trust key generate`.
fn client_with_key(name: &str) -> DockerClient {
    let client = DockerClient::new();
    let dir = tempfile::tempdir().unwrap();
    dct_ok(
        &client,
        &[
            "trust",
            "key",
            "generate",
            name,
            "--dir",
            dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(files(&private(&client)).len(), 1);
    client
}

fn backup_of(client: &DockerClient, out: &Path) {
    wharf_json(
        client.config.path(),
        &["trust", "key", "backup", "--out", out.to_str().unwrap()],
    );
}

#[test]
fn a_changed_archive_or_a_wrong_passphrase_restores_nothing() {
    let source = client_with_key("bob");
    let scratch = tempfile::tempdir().unwrap();
    let backup = scratch.path().join("keys.wkb");
    backup_of(&source, &backup);
    let archive = std::fs::read(&backup).unwrap();

    let target = tempfile::tempdir().unwrap();
    let target_private = target.path().join("trust/private");
    let decrypt_error = "cannot decrypt the key backup: wrong passphrase, or the file was altered or damaged";
    // One byte changed in the KDF parameters, the salt, the nonce, the ciphertext, the tag.
    for at in [13, 30, 45, 60, archive.len() - 1] {
        let mut tampered = archive.clone();
        tampered[at] ^= 0x01;
        let file = scratch.path().join(format!("tampered-{at}.wkb"));
        std::fs::write(&file, &tampered).unwrap();
        let (code, message) = wharf_error(
            target.path(),
            Some(PASSPHRASE),
            &["trust", "key", "restore", file.to_str().unwrap()],
        );
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("DECRYPTION_FAILED", decrypt_error),
            "byte {at}"
        );
        assert!(
            !target.path().join("trust").exists(),
            "byte {at}: something was written"
        );
    }
    let (code, message) = wharf_error(
        target.path(),
        Some("not-the-passphrase"),
        &["trust", "key", "restore", backup.to_str().unwrap()],
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("DECRYPTION_FAILED", decrypt_error)
    );
    let (code, message) = wharf_error(
        target.path(),
        Some(""),
        &["trust", "key", "restore", backup.to_str().unwrap()],
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("INVALID_INPUT", "the backup passphrase must not be empty")
    );
    let (code, message) = wharf_error(
        target.path(),
        None,
        &["trust", "key", "restore", backup.to_str().unwrap()],
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "INVALID_INPUT",
            "no backup passphrase: set WHARF_BACKUP_PASSPHRASE or run on a terminal to be asked"
        )
    );
    // A plain tar of the key directory, as people make today, is not taken for a backup.
    let tar = scratch.path().join("keys.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(source.config.path())
        .arg("-cf")
        .arg(&tar)
        .arg("trust")
        .status()
        .unwrap();
    assert!(st.success());
    let (code, message) = wharf_error(
        target.path(),
        Some(PASSPHRASE),
        &["trust", "key", "restore", tar.to_str().unwrap()],
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "INVALID_INPUT",
            "not a Wharf key backup (it does not start with the backup file's magic bytes)"
        )
    );
    assert!(!target_private.exists());

    // The untouched archive restores.
    wharf_json(
        target.path(),
        &["trust", "key", "restore", backup.to_str().unwrap()],
    );
    assert_eq!(files(&target_private), files(&private(&source)));
}

#[test]
fn an_empty_passphrase_or_no_keys_makes_no_backup() {
    let source = client_with_key("carol");
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("keys.wkb");
    let args = ["trust", "key", "backup", "--out", out.to_str().unwrap()];
    let (code, message) = wharf_error(source.config.path(), Some(""), &args);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("INVALID_INPUT", "the backup passphrase must not be empty")
    );
    let (code, _) = wharf_error(source.config.path(), None, &args);
    assert_eq!(code, "INVALID_INPUT");
    assert!(!out.exists());

    let empty = tempfile::tempdir().unwrap();
    let (code, message) = wharf_error(empty.path(), Some(PASSPHRASE), &args);
    assert_eq!(code, "INVALID_INPUT");
    assert_eq!(
        message,
        format!(
            "no private keys to back up: {} does not exist",
            empty.path().join("trust/private").display()
        )
    );
    assert!(!out.exists());

    // --force replaces an existing file, still 0600.
    std::fs::write(&out, b"old").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
    wharf_json(
        source.config.path(),
        &[
            "trust",
            "key",
            "backup",
            "--out",
            out.to_str().unwrap(),
            "--force",
        ],
    );
    assert!(std::fs::read(&out).unwrap().starts_with(b"WHARFKB\0"));
    assert_eq!(mode(&out), 0o600);
}

#[test]
fn a_different_key_file_with_the_same_id_is_not_replaced_without_overwrite() {
    let source = client_with_key("dave");
    let second = tempfile::tempdir().unwrap();
    dct_ok(
        &source,
        &[
            "trust",
            "key",
            "generate",
            "erin",
            "--dir",
            second.path().to_str().unwrap(),
        ],
    );
    let originals = files(&private(&source));
    assert_eq!(originals.len(), 2);
    let scratch = tempfile::tempdir().unwrap();
    let backup = scratch.path().join("keys.wkb");
    backup_of(&source, &backup);

    // The target holds a different file under the first key's id (say, a re-encrypted copy).
    let target = tempfile::tempdir().unwrap();
    let target_private = target.path().join("trust/private");
    std::fs::create_dir_all(&target_private).unwrap();
    let (conflicting_name, _) = &originals[0];
    let id = conflicting_name.trim_end_matches(".key");
    let other =
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nrole: dave\n\nAAEC\n-----END ENCRYPTED PRIVATE KEY-----\n";
    std::fs::write(target_private.join(conflicting_name), other).unwrap();

    let (code, message) = wharf_error(
        target.path(),
        Some(PASSPHRASE),
        &["trust", "key", "restore", backup.to_str().unwrap()],
    );
    assert_eq!(code, "KEY_CONFLICT");
    assert_eq!(
        message,
        format!(
            "nothing restored: {} already holds a different key file with the same key id: {id} (pass --overwrite to replace it with the backup's)",
            target_private.display()
        )
    );
    // Nothing written: the existing file unchanged, the other key not restored either.
    assert_eq!(
        files(&target_private),
        vec![(conflicting_name.clone(), other.to_vec())]
    );

    let report = wharf_json(
        target.path(),
        &["trust", "key", "restore", backup.to_str().unwrap(), "--overwrite"],
    );
    let mut statuses: Vec<(String, String)> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key_id"].as_str().unwrap().to_owned(),
                k["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    statuses.sort();
    assert!(
        statuses.contains(&(id.to_owned(), "overwritten".to_owned())),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().any(|(k, s)| k != id && s == "restored"),
        "{statuses:?}"
    );
    assert_eq!(files(&target_private), originals);
}

/// An archive in the documented format (crates/wharf/src/client/trust/backup.rs), built
/// here independently of wharf's writer so that entries wharf itself never writes can be
/// tried: Argon2id with the header's parameters, AES-256-GCM with the header as AAD.
fn craft_archive(entries: &[(&str, &[u8])], passphrase: &str) -> Vec<u8> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let (m, t, p) = (256u32, 1u32, 1u32);
    let salt = [7u8; 16];
    let nonce = [9u8; 12];
    let mut header = b"WHARFKB\0".to_vec();
    header.extend([1u8, 1u8]);
    for v in [m, t, p] {
        header.extend(v.to_be_bytes());
    }
    header.extend(salt);
    header.push(1);
    header.extend(nonce);
    let mut payload = (entries.len() as u32).to_be_bytes().to_vec();
    for (name, bytes) in entries {
        payload.extend((name.len() as u16).to_be_bytes());
        payload.extend(name.as_bytes());
        payload.extend((bytes.len() as u32).to_be_bytes());
        payload.extend(*bytes);
    }
    let mut key = [0u8; 32];
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(m, t, p, Some(32)).unwrap(),
    )
    .hash_password_into(passphrase.as_bytes(), &salt, &mut key)
    .unwrap();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&header),
        &mut payload,
    )
    .unwrap();
    header.extend(payload);
    header
}

#[test]
fn hostile_entries_are_refused_and_nothing_is_written() {
    let source = client_with_key("frank");
    let (good_name, good_bytes) = files(&private(&source)).remove(0);
    let scratch = tempfile::tempdir().unwrap();

    // The crafted writer matches wharf's reader: a well-formed crafted archive restores.
    let ok = scratch.path().join("ok.wkb");
    std::fs::write(&ok, craft_archive(&[(&good_name, &good_bytes)], PASSPHRASE)).unwrap();
    let target = tempfile::tempdir().unwrap();
    wharf_json(target.path(), &["trust", "key", "restore", ok.to_str().unwrap()]);
    assert_eq!(
        files(&target.path().join("trust/private")),
        vec![(good_name.clone(), good_bytes.clone())]
    );

    let hex = "ab".repeat(32);
    let traversal = format!("../../{}.key", &hex[..58]);
    let absolute = "/tmp/wharf-hostile.key".to_owned();
    let nested = format!("sub/{}.key", &hex[..60]);
    let not_key = format!("{hex}.pem");
    let cases: Vec<(String, Vec<u8>, String)> = vec![
        (
            traversal.clone(),
            good_bytes.clone(),
            "a key file name must be a key id of 64 lowercase hex digits followed by .key (no directories)"
                .to_owned(),
        ),
        (
            absolute.clone(),
            good_bytes.clone(),
            "a key file name must be a key id of 64 lowercase hex digits followed by .key (no directories)"
                .to_owned(),
        ),
        (
            nested.clone(),
            good_bytes.clone(),
            "a key file name must be a key id of 64 lowercase hex digits followed by .key (no directories)"
                .to_owned(),
        ),
        (
            not_key.clone(),
            good_bytes.clone(),
            "a key file name must end in .key".to_owned(),
        ),
        (
            format!("{hex}.key"),
            b"#!/bin/sh\necho hi\n".to_vec(),
            "not a PEM file (no BEGIN line)".to_owned(),
        ),
        (
            format!("{hex}.key"),
            b"-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n".to_vec(),
            "a PEM block of type \"CERTIFICATE\", not a private key".to_owned(),
        ),
    ];
    for (name, bytes, reason) in cases {
        // The good key first: it must not be written either when a later entry is refused.
        let file = scratch.path().join("hostile.wkb");
        std::fs::write(
            &file,
            craft_archive(&[(&good_name, &good_bytes), (&name, &bytes)], PASSPHRASE),
        )
        .unwrap();
        let empty = tempfile::tempdir().unwrap();
        let (code, message) = wharf_error(
            empty.path(),
            Some(PASSPHRASE),
            &["trust", "key", "restore", file.to_str().unwrap()],
        );
        assert_eq!(code, "INVALID_INPUT", "{name}");
        assert_eq!(
            message,
            format!("the key backup holds an entry named {name:?}: {reason}")
        );
        assert!(
            !empty.path().join("trust").exists(),
            "{name}: something was written"
        );
    }
    assert!(!Path::new("/tmp/wharf-hostile.key").exists());

    // The same key twice.
    let file = scratch.path().join("twice.wkb");
    std::fs::write(
        &file,
        craft_archive(
            &[(&good_name, &good_bytes), (&good_name, &good_bytes)],
            PASSPHRASE,
        ),
    )
    .unwrap();
    let empty = tempfile::tempdir().unwrap();
    let (code, message) = wharf_error(
        empty.path(),
        Some(PASSPHRASE),
        &["trust", "key", "restore", file.to_str().unwrap()],
    );
    assert_eq!(code, "INVALID_INPUT");
    assert_eq!(
        message,
        format!("the key backup holds an entry named {good_name:?}: it appears twice")
    );
    assert!(!empty.path().join("trust").exists());
}
