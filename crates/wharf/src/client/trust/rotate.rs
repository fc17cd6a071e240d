//! `wharf trust key rotate HOST/REPO root|targets|snapshot|timestamp [-r]`, as `notary key
//! rotate` does it: a new key for the role goes into a new root.json (version + 1), signed
//! by the root key — for a root rotation by the old root key AND the new one, so a client
//! that trusts the old root accepts the new one — and published.
//!
//! * `root`, `targets`: new keys made here and kept in the store (docker's format);
//!   a `targets` rotation also re-signs targets.json with the new key in the same upload.
//! * `snapshot`, `timestamp`: the registry holds them (`-r`, required): it makes the new
//!   key on request and keeps signing with the old one until the new root names the new.

use serde_json::{Value, json};
use wharf_tuf::metadata::format_go_time;
use wharf_tuf::{CertSigner, PrivateKey, PublicKey, Signer as _};

use super::inspect::{fetch_published, parse_repository};
use super::keystore::{self, KeyStore, ROOT_ROLE};
use super::revoke::publish;
use super::sign::{
    ROOT_EXPIRY_DAYS, TARGETS_EXPIRY_DAYS, root_certificate, server_key, sign_file, sign_file_by_all,
};
use crate::client::report::{INVALID_INPUT, INVALID_RESPONSE, Report, fail};
use crate::client::session::open;

pub async fn run(repository: String, role: String, remote: bool) -> anyhow::Result<Report> {
    let (gun, host) = parse_repository(&repository, "keys belong to a repository")?;
    match (role.as_str(), remote) {
        ("root" | "targets", true) => {
            return Err(fail(
                INVALID_INPUT,
                format!("the {role} key is yours, not the registry's: rotate it without -r"),
            ));
        }
        ("snapshot" | "timestamp", false) => {
            return Err(fail(
                INVALID_INPUT,
                format!("the registry holds the {role} key of {gun}: rotate it with -r"),
            ));
        }
        ("root" | "targets" | "snapshot" | "timestamp", _) => {}
        _ => {
            return Err(fail(
                INVALID_INPUT,
                format!("{role} is not a role to rotate: root, targets, snapshot or timestamp"),
            ));
        }
    }
    // Rotating the registry's keys needs the repository's owner (`*`), like deleting it.
    let session = open(Some(host), None, &[&format!("repository:{gun}:*")]).await?;
    let published = fetch_published(&session, &gun).await?.ok_or_else(|| {
        fail(
            super::inspect::NO_SIGNATURES,
            format!("{gun} has no trust data to rotate keys of"),
        )
    })?;
    let verified = super::inspect::verified(&gun, &published)?;
    let store = KeyStore::docker();
    let (root_key, root_cert) = current_root(&store, &verified, &gun)?;
    let root_bytes = published
        .roles
        .get(ROOT_ROLE)
        .ok_or_else(|| fail(INVALID_RESPONSE, format!("{gun} publishes no root.json")))?;
    let mut root: Value = serde_json::from_slice::<Value>(root_bytes)
        .map_err(|e| fail(INVALID_RESPONSE, format!("root.json is not JSON: {e}")))?["signed"]
        .take();

    let mut parts = Vec::new();
    let mut signers: Vec<CertSigner> = Vec::new();
    let new_id = match role.as_str() {
        "root" => {
            let key = new_key(&store, ROOT_ROLE, None)?;
            let cert = root_certificate(&key, &gun)?;
            set_role_key(&mut root, ROOT_ROLE, &cert);
            signers.push(CertSigner {
                key,
                cert_key: cert.clone(),
            });
            cert.key_id()
        }
        "targets" => {
            let key = new_key(&store, "targets", Some(&gun))?;
            let public = key.public_key();
            set_role_key(&mut root, "targets", public);
            parts.push(("targets".to_owned(), resigned_targets(&published, &key)?));
            public.key_id()
        }
        server_role => {
            let public = server_key(&session, &gun, server_role, reqwest::Method::POST).await?;
            set_role_key(&mut root, server_role, &public);
            public.key_id()
        }
    };
    signers.insert(
        0,
        CertSigner {
            key: root_key,
            cert_key: root_cert,
        },
    );
    let version = root["version"].as_i64().unwrap_or(0) + 1;
    root["version"] = json!(version);
    root["expires"] = json!(format_go_time(
        chrono::Utc::now() + chrono::Duration::days(ROOT_EXPIRY_DAYS)
    ));
    let signers: Vec<&dyn wharf_tuf::Signer> = signers.iter().map(|s| s as &dyn wharf_tuf::Signer).collect();
    let root_file = sign_file_by_all(&root, &signers, ROOT_ROLE)?;
    parts.insert(0, (ROOT_ROLE.to_owned(), root_file));
    publish(&session, &gun, &parts).await?;
    Ok(Report::new(
        json!({"repository": gun, "role": role, "key_id": new_id, "root_version": version}),
        format!(
            "Successfully rotated {role} key for repository {gun}: new key {} (root version {version})",
            keystore::short(&new_id)
        ),
    ))
}

/// The root key in the store that the verified root names, with its certificate.
fn current_root(
    store: &KeyStore,
    verified: &wharf_tuf::TrustedTargets,
    gun: &str,
) -> anyhow::Result<(PrivateKey, PublicKey)> {
    let stored = store.list()?;
    for id in verified
        .root
        .roles
        .get(ROOT_ROLE)
        .map(|r| r.keyids.clone())
        .unwrap_or_default()
    {
        let Some(cert) = verified.root.keys.get(&id) else {
            continue;
        };
        let Ok(canonical) = cert.canonical_key_id() else {
            continue;
        };
        if let Some(k) = stored.iter().find(|k| k.id == canonical && k.role == ROOT_ROLE) {
            return Ok((store.open(k)?.key, cert.clone()));
        }
    }
    Err(fail(
        super::revoke::NO_SIGNING_KEY,
        format!(
            "no root key of {gun} in {}; nothing was changed (rotations need the repository's root key)",
            store.dir().display()
        ),
    ))
}

/// A new P-256 key for `role`, saved in the store (passphrase from the environment or a
/// prompt) before anything is published, so a published root never names a lost key.
fn new_key(store: &KeyStore, role: &str, gun: Option<&str>) -> anyhow::Result<PrivateKey> {
    let key = PrivateKey::generate_p256().map_err(|e| fail(INVALID_INPUT, e.to_string()))?;
    let pass = keystore::new_passphrase(
        role,
        &format!(
            "Enter passphrase for new {role} key with ID {}",
            keystore::short(&key.key_id())
        ),
    )?;
    store.save(&key, role, gun, &pass)?;
    Ok(key)
}

/// `root.signed` with `role` naming only `key`; keys no role names any more dropped.
fn set_role_key(root: &mut Value, role: &str, key: &PublicKey) {
    root["keys"][key.key_id()] = key.to_value();
    root["roles"][role]["keyids"] = json!([key.key_id()]);
    let named: std::collections::BTreeSet<String> = root["roles"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(_, r)| r["keyids"].as_array().cloned().unwrap_or_default())
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    if let Some(keys) = root["keys"].as_object_mut() {
        keys.retain(|id, _| named.contains(id));
    }
}

/// targets.json as published, version + 1, signed by the new targets key.
fn resigned_targets(published: &super::inspect::Published, key: &PrivateKey) -> anyhow::Result<Vec<u8>> {
    let bytes = published
        .roles
        .get("targets")
        .ok_or_else(|| fail(INVALID_RESPONSE, "no targets.json is published"))?;
    let mut signed = serde_json::from_slice::<Value>(bytes)
        .map_err(|e| fail(INVALID_RESPONSE, format!("targets.json is not JSON: {e}")))?["signed"]
        .take();
    signed["version"] = json!(signed["version"].as_i64().unwrap_or(0) + 1);
    signed["expires"] = json!(format_go_time(
        chrono::Utc::now() + chrono::Duration::days(TARGETS_EXPIRY_DAYS)
    ));
    sign_file(&signed, key, "targets")
}
