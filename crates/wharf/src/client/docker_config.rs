//! The Docker client config (`$DOCKER_CONFIG/config.json`): `wharf login` writes the same
//! entry `docker login` would (user name plus identity token), keeping every other key.
//! Wharf's own client settings (which server, which CA) live beside it in `wharf.json`,
//! because docker drops unknown keys when it rewrites its file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::report::{CONFIG_FILE, fail};

pub fn config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".docker")
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WharfClientSettings {
    pub registry: Option<String>,
    pub ca_file: Option<PathBuf>,
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().context("config path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// The config file as a JSON object; empty when there is none yet.
fn read_config(path: &Path) -> anyhow::Result<Map<String, Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => serde_json::from_str(&text).map_err(|e| {
            fail(
                CONFIG_FILE,
                format!("{} is not valid JSON ({e}); fix or remove it", path.display()),
            )
        }),
        Ok(_) => Ok(Map::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(fail(CONFIG_FILE, format!("cannot read {}: {e}", path.display()))),
    }
}

/// Store `identity_token` for `registry` as docker does after a login with a refresh token.
pub fn store_identity_token(
    dir: &Path,
    registry: &str,
    username: &str,
    identity_token: &str,
) -> anyhow::Result<()> {
    let path = dir.join("config.json");
    let mut doc = read_config(&path)?;
    let auths = doc.entry("auths").or_insert_with(|| json!({}));
    let auths = auths
        .as_object_mut()
        .context("config.json: `auths` is not an object")?;
    auths.insert(
        registry.to_owned(),
        json!({ "auth": STANDARD.encode(format!("{username}:")), "identitytoken": identity_token }),
    );
    write_private(&path, &serde_json::to_string_pretty(&doc)?)
}

/// The identity token stored for `registry`, if any.
pub fn stored_identity_token(dir: &Path, registry: &str) -> anyhow::Result<Option<String>> {
    let doc = read_config(&dir.join("config.json"))?;
    Ok(doc
        .get("auths")
        .and_then(|a| a.get(registry))
        .and_then(|e| e.get("identitytoken"))
        .and_then(Value::as_str)
        .map(str::to_owned))
}

/// The user name of the login stored for `registry` (the part of `auth` before `:`), if
/// any: what to suggest when that login has to be renewed.
pub fn stored_username(dir: &Path, registry: &str) -> anyhow::Result<Option<String>> {
    Ok(stored_auth(dir, registry)?
        .map(|(user, _)| user)
        .filter(|u| !u.is_empty()))
}

/// The user name and password `docker login` stored for `registry` (`auth`, base64 of
/// `user:password`), if it stored a password (a login with an identity token stores none).
pub fn stored_password(dir: &Path, registry: &str) -> anyhow::Result<Option<(String, String)>> {
    Ok(stored_auth(dir, registry)?.filter(|(u, p)| !u.is_empty() && !p.is_empty()))
}

/// `auths.<registry>.auth` decoded and split at the first `:`.
fn stored_auth(dir: &Path, registry: &str) -> anyhow::Result<Option<(String, String)>> {
    let doc = read_config(&dir.join("config.json"))?;
    Ok(doc
        .get("auths")
        .and_then(|a| a.get(registry))
        .and_then(|e| e.get("auth"))
        .and_then(Value::as_str)
        .and_then(|a| STANDARD.decode(a).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned()))))
}

/// Remove `registry`'s entry from `auths` (what `docker logout` does for a file-stored
/// login), keeping every other key. Whether there was one.
pub fn remove_login(dir: &Path, registry: &str) -> anyhow::Result<bool> {
    let path = dir.join("config.json");
    let mut doc = read_config(&path)?;
    let removed = doc
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .is_some_and(|auths| auths.remove(registry).is_some());
    if removed {
        write_private(&path, &serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(removed)
}

/// What `wharf login` saved; defaults when nothing (readable) was.
pub fn load_settings(dir: &Path) -> WharfClientSettings {
    std::fs::read_to_string(dir.join("wharf.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

pub fn store_settings(dir: &Path, settings: &WharfClientSettings) -> anyhow::Result<()> {
    write_private(&dir.join("wharf.json"), &serde_json::to_string_pretty(settings)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_keeps_other_entries_and_writes_docker_shape() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"other:1":{"auth":"eDp5"}},"credsStore":""}"#,
        )
        .unwrap();
        store_identity_token(dir.path(), "localhost:5000", "admin", "wharf_rt_x").unwrap();
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap()).unwrap();
        assert_eq!(v["auths"]["other:1"]["auth"], "eDp5");
        assert_eq!(v["auths"]["localhost:5000"]["identitytoken"], "wharf_rt_x");
        assert_eq!(v["auths"]["localhost:5000"]["auth"], STANDARD.encode("admin:"));
        assert_eq!(v["credsStore"], "");
        assert_eq!(
            stored_username(dir.path(), "localhost:5000").unwrap().as_deref(),
            Some("admin")
        );
        assert_eq!(stored_username(dir.path(), "elsewhere:1").unwrap(), None);
    }

    #[test]
    fn logout_removes_only_that_registry() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"other:1":{"auth":"eDp5"}},"credsStore":""}"#,
        )
        .unwrap();
        store_identity_token(dir.path(), "localhost:5000", "admin", "wharf_rt_x").unwrap();
        assert_eq!(
            stored_identity_token(dir.path(), "localhost:5000")
                .unwrap()
                .as_deref(),
            Some("wharf_rt_x")
        );
        assert!(remove_login(dir.path(), "localhost:5000").unwrap());
        assert!(!remove_login(dir.path(), "localhost:5000").unwrap());
        assert_eq!(stored_identity_token(dir.path(), "localhost:5000").unwrap(), None);
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap()).unwrap();
        assert_eq!(v["auths"], json!({"other:1": {"auth": "eDp5"}}));
        assert_eq!(v["credsStore"], "");
        let empty = tempfile::tempdir().unwrap();
        assert!(!remove_login(empty.path(), "localhost:5000").unwrap());
    }
}
