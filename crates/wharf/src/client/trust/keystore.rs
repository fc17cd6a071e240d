//! docker's trust key store, `$DOCKER_CONFIG/trust/private/<key id>.key`, shared with
//! the docker CLI: files it wrote are read here and the other way round (the file format
//! is `wharf_tuf::keyfile`). The directory is 0700 and every key file 0600, as docker
//! keeps them. Passphrases come from docker's environment variables or a terminal prompt
//! and are never printed.

use std::path::{Path, PathBuf};

use wharf_tuf::PrivateKey;
use wharf_tuf::keyfile::{self, KeyFile, KeyFileError};

use crate::client::docker_config::config_dir;
use crate::client::prompt::{secret_from_terminal, stdin_is_terminal};
use crate::client::report::{CONFIG_FILE, INVALID_INPUT, fail};

/// The root role's name in key files and metadata.
pub const ROOT_ROLE: &str = "root";
const ROOT_PASSPHRASE_ENV: &str = "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE";
const REPOSITORY_PASSPHRASE_ENV: &str = "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE";

/// Wrong passphrase for a key.
pub const WRONG_PASSPHRASE: &str = "WRONG_PASSPHRASE";
/// A key file that is not one docker could have written.
pub const BAD_KEY_FILE: &str = "BAD_KEY_FILE";

/// One key file, as its PEM headers describe it (read without the passphrase).
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub id: String,
    pub role: String,
    pub gun: Option<String>,
    pub path: PathBuf,
}

pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    /// The store docker uses: `$DOCKER_CONFIG/trust/private` (default `~/.docker`).
    pub fn docker() -> Self {
        Self::at(config_dir().join("trust").join("private"))
    }

    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.key"))
    }

    /// Every `*.key` file, sorted by key ID. A file whose PEM cannot be read is refused
    /// by name: silently skipping it could make `sign` create a second key for a role.
    pub fn list(&self) -> anyhow::Result<Vec<StoredKey>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(fail(
                    CONFIG_FILE,
                    format!("cannot read {}: {e}", self.dir.display()),
                ));
            }
        };
        let mut keys = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| fail(CONFIG_FILE, format!("cannot read {}: {e}", self.dir.display())))?
                .path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".key"))
            else {
                continue;
            };
            let text = read_key_text(&path)?;
            let block = keyfile::parse_pem(&text).map_err(|e| bad_file(&path, &e))?;
            keys.push(StoredKey {
                id: id.to_owned(),
                role: block.header("role").unwrap_or_default().to_owned(),
                gun: block.header("gun").map(str::to_owned),
                path,
            });
        }
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(keys)
    }

    /// The first key (by ID, as docker picks) of `role`, for `gun` when given.
    pub fn find(&self, role: &str, gun: Option<&str>) -> anyhow::Result<Option<StoredKey>> {
        Ok(self
            .list()?
            .into_iter()
            .find(|k| k.role == role && (gun.is_none() || k.gun.as_deref() == gun)))
    }

    /// Decrypts a stored key with the passphrase its role uses (environment or prompt).
    pub fn open(&self, stored: &StoredKey) -> anyhow::Result<KeyFile> {
        let text = read_key_text(&stored.path)?;
        let block = keyfile::parse_pem(&text).map_err(|e| bad_file(&stored.path, &e))?;
        let passphrase = if block.label == keyfile::ENCRYPTED_LABEL {
            passphrase(
                &stored.role,
                &format!(
                    "Enter passphrase for {} key with ID {}",
                    stored.role,
                    short(&stored.id)
                ),
            )?
        } else {
            String::new()
        };
        open_with(stored, &passphrase)
    }

    /// Writes `key` encrypted with `passphrase` as `<key id>.key` (0600, in a 0700
    /// directory), through a temporary file so a failure leaves no half-written key.
    pub fn save(
        &self,
        key: &PrivateKey,
        role: &str,
        gun: Option<&str>,
        passphrase: &str,
    ) -> anyhow::Result<PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let text = keyfile::encode_key_file(key, role, gun, passphrase)
            .map_err(|e| fail(INVALID_INPUT, format!("cannot encode the {role} key: {e}")))?;
        let io = |what: &Path, e: std::io::Error| {
            fail(CONFIG_FILE, format!("cannot write {}: {e}", what.display()))
        };
        if !self.dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|e| io(&self.dir, e))?;
        }
        // `trust` and `trust/private` both 0700, as docker creates them (the mode given
        // to a recursive create only applies to directories it makes).
        for d in [Some(self.dir.as_path()), self.dir.parent()]
            .into_iter()
            .flatten()
        {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).map_err(|e| io(d, e))?;
        }
        let path = self.path_of(&key.key_id());
        let tmp = self.dir.join(format!(".{}.tmp", key.key_id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io(&tmp, e))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
        Ok(path)
    }
}

/// Decrypts `stored` with `passphrase`; checks that it holds the key its name says.
pub fn open_with(stored: &StoredKey, passphrase: &str) -> anyhow::Result<KeyFile> {
    let text = read_key_text(&stored.path)?;
    let file = keyfile::decode_key_file(&text, passphrase).map_err(|e| match e {
        KeyFileError::WrongPassphrase => fail(
            WRONG_PASSPHRASE,
            format!(
                "wrong passphrase for the {} key {} ({}); check {}",
                stored.role,
                short(&stored.id),
                stored.path.display(),
                env_for(&stored.role)
            ),
        ),
        other => bad_file(&stored.path, &other),
    })?;
    if file.key.key_id() != stored.id {
        return Err(fail(
            BAD_KEY_FILE,
            format!(
                "{} holds key {}, not the key its name says; move it away",
                stored.path.display(),
                file.key.key_id()
            ),
        ));
    }
    Ok(file)
}

fn read_key_text(path: &Path) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(path).map_err(|e| fail(CONFIG_FILE, format!("cannot read {}: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|_| {
        fail(
            BAD_KEY_FILE,
            format!(
                "{} is not a docker trust key file (not text); move it away or restore it from a backup",
                path.display()
            ),
        )
    })
}

fn bad_file(path: &Path, e: &KeyFileError) -> anyhow::Error {
    fail(
        BAD_KEY_FILE,
        format!(
            "{}: {e}; move it away or restore it from a backup",
            path.display()
        ),
    )
}

/// The first 7 characters of a key ID, as docker's prompts show it.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(7)]
}

fn env_for(role: &str) -> &'static str {
    if role == ROOT_ROLE {
        ROOT_PASSPHRASE_ENV
    } else {
        REPOSITORY_PASSPHRASE_ENV
    }
}

/// The passphrase of a key of `role`: docker's environment variable (root, or
/// repository for every other key), else asked on the terminal.
pub fn passphrase(role: &str, prompt: &str) -> anyhow::Result<String> {
    let env = env_for(role);
    if let Ok(p) = std::env::var(env) {
        return Ok(p);
    }
    if stdin_is_terminal() {
        return secret_from_terminal(prompt);
    }
    Err(fail(
        INVALID_INPUT,
        format!("no passphrase for the {role} key: set {env} or run on a terminal"),
    ))
}

/// The passphrase for a key about to be created: the environment variable, else asked
/// twice on the terminal (a typo would lock the key away for good).
pub fn new_passphrase(role: &str, prompt: &str) -> anyhow::Result<String> {
    let first = passphrase(role, prompt)?;
    if std::env::var(env_for(role)).is_err() {
        let again = secret_from_terminal("Repeat passphrase")?;
        if again != first {
            return Err(fail(
                INVALID_INPUT,
                "the passphrases do not match; nothing was written",
            ));
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const DOCKER_ALICE: &str = include_str!("../../../../wharf-tuf/tests/fixtures/docker-alice.key");
    const DOCKER_ALICE_ID: &str = "59260a354aba03f7061a839b2dbd75a4a40ae8943bf06513827afd33aa0404eb";

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn saves_private_files_in_a_private_dir_and_lists_them() {
        let tmp = tempfile::tempdir().unwrap();
        let store = KeyStore::at(tmp.path().join("trust").join("private"));
        assert!(store.list().unwrap().is_empty());
        let key = PrivateKey::generate_p256().unwrap();
        let path = store
            .save(&key, "targets", Some("localhost:5443/app"), "pw")
            .unwrap();
        assert_eq!(path, store.dir().join(format!("{}.key", key.key_id())));
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(&tmp.path().join("trust")), 0o700);
        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, key.key_id());
        assert_eq!(listed[0].role, "targets");
        assert_eq!(listed[0].gun.as_deref(), Some("localhost:5443/app"));
        // Only the key file is left (no temporary file).
        assert_eq!(std::fs::read_dir(store.dir()).unwrap().count(), 1);
    }

    #[test]
    fn a_docker_key_is_found_by_role_and_a_corrupted_file_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let store = KeyStore::at(tmp.path().to_path_buf());
        std::fs::write(tmp.path().join(format!("{DOCKER_ALICE_ID}.key")), DOCKER_ALICE).unwrap();
        let found = store.find("alice", None).unwrap().expect("alice");
        assert_eq!(found.id, DOCKER_ALICE_ID);
        assert!(store.find("targets", None).unwrap().is_none());
        let opened = open_with(&found, "repopass").unwrap();
        assert_eq!(opened.key.key_id(), DOCKER_ALICE_ID);
        assert_eq!(opened.role, "alice");
        let err = open_with(&found, "wrong").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "wrong passphrase for the alice key 59260a3 ({}); check DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
                found.path.display()
            )
        );
        // A file named for another key is refused by name.
        let renamed = tmp.path().join("1111.key");
        std::fs::write(&renamed, DOCKER_ALICE).unwrap();
        let err = open_with(
            &StoredKey {
                id: "1111".into(),
                role: "alice".into(),
                gun: None,
                path: renamed.clone(),
            },
            "repopass",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} holds key {DOCKER_ALICE_ID}, not the key its name says; move it away",
                renamed.display()
            )
        );
        std::fs::remove_file(&renamed).unwrap();

        let broken = tmp.path().join("0000.key");
        std::fs::write(&broken, "garbage").unwrap();
        let err = store.list().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: not a docker trust key file: no PEM block; move it away or restore it from a backup",
                broken.display()
            )
        );
    }
}
