//! `wharf trust key generate|load|list`, with `docker trust key` semantics: a signer key
//! is an ECDSA P-256 key whose PEM `role` header is the signer's name (no GUN), encrypted
//! with the repository passphrase; `generate` also writes `NAME.pub` for
//! `docker trust signer add --key`.

use std::path::{Path, PathBuf};

use serde_json::json;
use wharf_tuf::PrivateKey;
use wharf_tuf::keyfile;

use super::keystore::{self, BAD_KEY_FILE, KeyStore, ROOT_ROLE, WRONG_PASSPHRASE};
use crate::cli::TrustKey;
use crate::client::report::{CONFIG_FILE, INVALID_INPUT, Report, fail, table};

/// `key load` and `key list`; `key generate` goes by its `--format` (`generate_in_store`
/// for dct).
pub fn run(command: TrustKey) -> anyhow::Result<Report> {
    let store = KeyStore::docker();
    match command {
        TrustKey::Generate { name, dir, .. } => generate(&store, &name, dir.as_deref()),
        TrustKey::Load { file, name } => load(&store, &file, &name),
        TrustKey::List => list(&store),
        TrustKey::Rotate { .. } => Err(fail(
            INVALID_INPUT,
            "key rotate runs through `wharf trust key rotate`",
        )),
        TrustKey::Backup { out, force } => super::backup::backup_keys(&out, force),
        TrustKey::Restore { file, overwrite } => super::backup::restore_keys(&file, overwrite),
    }
}

/// `key generate --format dct`: a signer key in docker's trust store and NAME.pub.
pub fn generate_in_store(name: &str, dir: Option<&Path>) -> anyhow::Result<Report> {
    generate(&KeyStore::docker(), name, dir)
}

/// docker's rule for signer names (`cli/command/trust/key_generate.go`).
pub(super) fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !first_ok || !rest_ok {
        return Err(fail(
            INVALID_INPUT,
            format!(
                "key name \"{name}\" must start with lowercase alphanumeric characters and can include \"-\" or \"_\" after the first character"
            ),
        ));
    }
    if name == ROOT_ROLE || name == "targets" || name == "releases" {
        return Err(fail(
            INVALID_INPUT,
            format!("\"{name}\" is a reserved role name; choose another signer name"),
        ));
    }
    Ok(())
}

fn generate(store: &KeyStore, name: &str, dir: Option<&Path>) -> anyhow::Result<Report> {
    check_name(name)?;
    let dir = dir.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let pub_path = dir.join(format!("{name}.pub"));
    if pub_path.exists() {
        return Err(fail(
            INVALID_INPUT,
            format!(
                "public key file already exists: \"{}\"; nothing was written",
                pub_path.display()
            ),
        ));
    }
    let key = PrivateKey::generate_p256().map_err(|e| fail(INVALID_INPUT, e.to_string()))?;
    let pem = keyfile::public_key_pem(&key, name).map_err(|e| fail(INVALID_INPUT, e.to_string()))?;
    let passphrase = keystore::new_passphrase(
        name,
        &format!(
            "Enter passphrase for new {name} key with ID {}",
            keystore::short(&key.key_id())
        ),
    )?;
    let private = store.save(&key, name, None, &passphrase)?;
    // The public half last, refusing to replace a file that appeared meanwhile; on failure
    // the private key is taken back so nothing is left half done.
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&pub_path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, pem.as_bytes()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&private);
        return Err(fail(
            CONFIG_FILE,
            format!("cannot write {}: {e}", pub_path.display()),
        ));
    }
    Ok(Report::new(
        json!({
            "name": name,
            "key_id": key.key_id(),
            "public_key_file": pub_path,
            "private_key_file": private,
        }),
        format!(
            "Successfully generated and loaded private key. Corresponding public key available: {}",
            pub_path.display()
        ),
    ))
}

fn load(store: &KeyStore, file: &Path, name: &str) -> anyhow::Result<Report> {
    check_name(name)?;
    let text = std::fs::read_to_string(file)
        .map_err(|e| fail(INVALID_INPUT, format!("cannot read {}: {e}", file.display())))?;
    let block =
        keyfile::parse_pem(&text).map_err(|e| fail(BAD_KEY_FILE, format!("{}: {e}", file.display())))?;
    if block.header("role") == Some(ROOT_ROLE) {
        return Err(fail(
            INVALID_INPUT,
            format!(
                "{} holds a root key; only signer keys can be loaded",
                file.display()
            ),
        ));
    }
    let source_passphrase = if block.label == keyfile::ENCRYPTED_LABEL {
        keystore::passphrase(
            name,
            &format!("Enter passphrase for encrypted key {}", file.display()),
        )?
    } else {
        String::new()
    };
    let key = keyfile::decode_key_file(&text, &source_passphrase)
        .map_err(|e| match e {
            keyfile::KeyFileError::WrongPassphrase => fail(
                WRONG_PASSPHRASE,
                format!(
                    "wrong passphrase for {}; nothing was loaded (set DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE to the file's passphrase)",
                    file.display()
                ),
            ),
            other => fail(BAD_KEY_FILE, format!("{}: {other}", file.display())),
        })?
        .key;
    let passphrase = keystore::new_passphrase(
        name,
        &format!(
            "Enter passphrase for new {name} key with ID {}",
            keystore::short(&key.key_id())
        ),
    )?;
    let private = store.save(&key, name, None, &passphrase)?;
    Ok(Report::new(
        json!({ "name": name, "key_id": key.key_id(), "private_key_file": private }),
        format!("Successfully imported key from {}", file.display()),
    ))
}

fn list(store: &KeyStore) -> anyhow::Result<Report> {
    let keys = store.list()?;
    let items: Vec<_> = keys
        .iter()
        .map(|k| json!({ "id": k.id, "role": k.role, "gun": k.gun }))
        .collect();
    let text = if items.is_empty() {
        format!("No keys in {}", store.dir().display())
    } else {
        table(
            &items,
            &[
                ("ID", &|i| i["id"].as_str().unwrap_or("").to_owned()),
                ("ROLE", &|i| i["role"].as_str().unwrap_or("").to_owned()),
                ("GUN", &|i| i["gun"].as_str().unwrap_or("").to_owned()),
            ],
        )
    };
    Ok(Report::new(json!({ "keys": items }), text))
}
