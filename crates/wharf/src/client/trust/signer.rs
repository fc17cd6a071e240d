//! `wharf trust signer add|remove NAME HOST/REPO…`: who may sign a repository's tags, as
//! `docker trust signer` manages it. A signer is the delegation `targets/NAME` plus the
//! signer's keys in `targets/releases` (the role `docker pull` with content trust reads
//! first); both live in `targets.json`, which the repository (`targets`) key re-signs and
//! publishes. Docker and wharf can then take turns: a signer added here signs with
//! `docker trust sign`, and the other way round. A repository without trust data is
//! initialised first, as docker does it (`sign::initialize`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};
use wharf_tuf::PublicKey;
use wharf_tuf::keyfile::{KeyFileError, parse_pem};
use wharf_tuf::metadata::format_go_time;

use super::inspect::{NO_SIGNATURES, fetch_published, parse_repository};
use super::key::check_name;
use super::keystore::KeyStore;
use super::revoke::publish;
use super::sign::{TARGETS_EXPIRY_DAYS, initialize, repository_key, sign_file};
use crate::client::report::{INVALID_INPUT, INVALID_RESPONSE, Report, fail};
use crate::client::session::{Session, open};

const RELEASES: &str = "targets/releases";

/// A change to one repository's signers.
enum SignerChange {
    Add(Vec<PublicKey>),
    Remove,
}

pub async fn add(name: String, repositories: Vec<String>, key_files: Vec<PathBuf>) -> anyhow::Result<Report> {
    check_name(&name)?;
    if key_files.is_empty() {
        return Err(fail(
            INVALID_INPUT,
            "name the signer's public key with --key NAME.pub",
        ));
    }
    let keys = key_files
        .iter()
        .map(|f| public_key(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    change(&name, &repositories, &SignerChange::Add(keys)).await
}

pub async fn remove(name: String, repositories: Vec<String>) -> anyhow::Result<Report> {
    check_name(&name)?;
    change(&name, &repositories, &SignerChange::Remove).await
}

/// A signer's public key file: `PUBLIC KEY` (what `docker trust key generate` and `wharf
/// trust key generate` write) or a `CERTIFICATE`.
fn public_key(file: &std::path::Path) -> anyhow::Result<PublicKey> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| fail(INVALID_INPUT, format!("cannot read {}: {e}", file.display())))?;
    let bad = |why: String| {
        fail(
            INVALID_INPUT,
            format!("{} is not a public key: {why}", file.display()),
        )
    };
    let block = parse_pem(&text).map_err(|e| match e {
        KeyFileError::Malformed(why) => bad(why),
        other => bad(other.to_string()),
    })?;
    let key = match block.label.as_str() {
        "PUBLIC KEY" => PublicKey::new(wharf_tuf::keys::ECDSA, block.der),
        "CERTIFICATE" => PublicKey::new(
            wharf_tuf::keys::ECDSA_X509,
            wharf_tuf::keys::pem_encode("CERTIFICATE", &block.der).into_bytes(),
        ),
        other => return Err(bad(format!("its PEM block is {other:?}"))),
    };
    key.check_acceptable().map_err(bad)?;
    Ok(key)
}

async fn change(name: &str, repositories: &[String], change: &SignerChange) -> anyhow::Result<Report> {
    if repositories.is_empty() {
        return Err(fail(INVALID_INPUT, "name at least one HOST[:PORT]/REPOSITORY"));
    }
    let role = format!("targets/{name}");
    let mut done = Vec::new();
    let mut lines = Vec::new();
    for reference in repositories {
        let (gun, host) = parse_repository(reference, "signers belong to a repository")?;
        let session = open(Some(host), None, &[&format!("repository:{gun}:push,pull")]).await?;
        let Changed {
            removed_releases,
            initialized,
        } = change_one(&session, &gun, &role, change).await?;
        lines.push(match change {
            SignerChange::Add(_) if initialized => format!(
                "Initialized trust data for {gun} (a new repository key is in your trust store; back it up) and added signer \"{name}\""
            ),
            SignerChange::Add(_) => format!("Added signer \"{name}\" to {gun}"),
            SignerChange::Remove if removed_releases => format!(
                "Removed signer \"{name}\" from {gun}; it was the last key of {RELEASES}, so that role went too (tags signed by the repository key stay)"
            ),
            SignerChange::Remove => format!("Removed signer \"{name}\" from {gun}"),
        });
        done.push(
            json!({"repository": gun, "role": role, "releases_removed": removed_releases,
                         "initialized": initialized}),
        );
    }
    let action = match change {
        SignerChange::Add(_) => "added",
        SignerChange::Remove => "removed",
    };
    Ok(Report::new(
        json!({"signer": name, action: done}),
        lines.join("\n"),
    ))
}

/// What one repository's change did.
struct Changed {
    /// The last signer left `targets/releases`, so that role went too.
    removed_releases: bool,
    /// The repository had no trust data and was initialised.
    initialized: bool,
}

/// Edit, re-sign and publish `gun`'s targets.json (or initialise it with the signer).
async fn change_one(
    session: &Session,
    gun: &str,
    role: &str,
    change: &SignerChange,
) -> anyhow::Result<Changed> {
    let store = KeyStore::docker();
    let Some(published) = fetch_published(session, gun).await? else {
        if let SignerChange::Remove = change {
            return Err(fail(
                NO_SIGNATURES,
                format!("{gun} has no trust data, so no signer to remove"),
            ));
        }
        // As `docker trust signer add` does: the repository is initialised (root, a new
        // repository key) with the delegation in its first targets.json, one upload.
        let parts = initialize(session, gun, &store, |signed| {
            edit_delegations(signed, role, change, gun).map(|_| ())
        })
        .await?;
        publish(session, gun, &parts).await?;
        return Ok(Changed {
            removed_releases: false,
            initialized: true,
        });
    };
    let verified = super::inspect::verified(gun, &published)?;
    let stored = repository_key(&store, &verified, gun)?;
    let targets_key = store.open(&stored)?.key;
    let targets_file = published
        .roles
        .get("targets")
        .ok_or_else(|| fail(INVALID_RESPONSE, format!("{gun} publishes no targets.json")))?;
    let mut signed = serde_json::from_slice::<Value>(targets_file)
        .map_err(|e| fail(INVALID_RESPONSE, format!("targets.json is not JSON: {e}")))?["signed"]
        .take();
    let removed_releases = edit_delegations(&mut signed, role, change, gun)?;
    let version = signed["version"].as_i64().unwrap_or(0) + 1;
    signed["version"] = json!(version);
    signed["expires"] = json!(format_go_time(
        chrono::Utc::now() + chrono::Duration::days(TARGETS_EXPIRY_DAYS)
    ));
    let file = sign_file(&signed, &targets_key, "targets")?;
    publish(session, gun, &[("targets".to_owned(), file)]).await?;
    Ok(Changed {
        removed_releases,
        initialized: false,
    })
}

/// `targets.signed` with the signer added (its keys in `targets/NAME` and in
/// `targets/releases`, both created when missing) or removed (its role, its keys from
/// `targets/releases`, keys no role names any more). Whether `targets/releases` went.
fn edit_delegations(
    signed: &mut Value,
    role: &str,
    change: &SignerChange,
    gun: &str,
) -> anyhow::Result<bool> {
    let delegations = &mut signed["delegations"];
    if !delegations.is_object() {
        *delegations = json!({"keys": {}, "roles": []});
    }
    let mut roles: Vec<Value> = delegations["roles"].as_array().cloned().unwrap_or_default();
    let position = |roles: &[Value], name: &str| roles.iter().position(|r| r["name"] == name);
    let mut removed_releases = false;
    match change {
        SignerChange::Add(keys) => {
            let ids: Vec<String> = keys.iter().map(PublicKey::key_id).collect();
            for key in keys {
                delegations["keys"][key.key_id()] = key.to_value();
            }
            for name in [role, RELEASES] {
                match position(&roles, name) {
                    Some(i) => {
                        let mut have: Vec<Value> = roles[i]["keyids"].as_array().cloned().unwrap_or_default();
                        for id in &ids {
                            if !have.iter().any(|h| h == id) {
                                have.push(json!(id));
                            }
                        }
                        roles[i]["keyids"] = Value::Array(have);
                    }
                    None => roles.push(json!({"name": name, "keyids": ids, "threshold": 1, "paths": [""]})),
                }
            }
        }
        SignerChange::Remove => {
            let i = position(&roles, role).ok_or_else(|| {
                fail(
                    INVALID_INPUT,
                    format!("{gun} has no signer \"{}\"", role.trim_start_matches("targets/")),
                )
            })?;
            let gone: Vec<Value> = roles.remove(i)["keyids"].as_array().cloned().unwrap_or_default();
            // The signer's keys leave releases unless another signer holds the same key.
            let kept: BTreeSet<String> = roles
                .iter()
                .filter(|r| r["name"] != RELEASES)
                .flat_map(|r| r["keyids"].as_array().cloned().unwrap_or_default())
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect();
            if let Some(r) = position(&roles, RELEASES) {
                let left: Vec<Value> = roles[r]["keyids"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|k| !gone.contains(k) || k.as_str().is_some_and(|k| kept.contains(k)))
                    .collect();
                if left.is_empty() {
                    roles.remove(r);
                    removed_releases = true;
                } else {
                    roles[r]["keyids"] = Value::Array(left);
                }
            }
        }
    }
    // Keys no role names any more are dropped.
    let named: BTreeSet<String> = roles
        .iter()
        .flat_map(|r| r["keyids"].as_array().cloned().unwrap_or_default())
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    if let Some(keys) = delegations["keys"].as_object_mut() {
        keys.retain(|id, _| named.contains(id));
    }
    delegations["roles"] = Value::Array(roles);
    Ok(removed_releases)
}
