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

/// Store `identity_token` for `registry` as docker does after a login with a refresh token.
pub fn store_identity_token(
    dir: &Path,
    registry: &str,
    username: &str,
    identity_token: &str,
) -> anyhow::Result<()> {
    let path = dir.join("config.json");
    let mut doc: Map<String, Value> = match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON; fix or remove it", path.display()))?,
        Ok(_) => Map::new(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
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
    }
}
