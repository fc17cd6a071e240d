//! `wharf trust sign REPO:TAG [REPO:TAG…]` without a Docker daemon, for a repository
//! that already has trust data: each tag's manifest digest and size are read from the
//! registry (HEAD with every manifest type accepted), added to the roles this key store
//! can sign — the delegations it holds a key for (docker's `targets/releases` plus the
//! signer's own), else `targets` with the repository key — re-signed and published in
//! ONE upload. The server then writes snapshot and timestamp.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use wharf_tuf::metadata::{encode_file, format_go_time};
use wharf_tuf::{PrivateKey, Signer as _};

use super::inspect::{fetch_published, parse_reference};
use super::keystore::{KeyStore, StoredKey};
use super::revoke::{NO_SIGNING_KEY, publish};
use crate::client::report::{INVALID_INPUT, INVALID_RESPONSE, Report, fail};
use crate::client::session::{Session, open};

/// The repository has no trust data yet.
pub const NOT_INITIALIZED: &str = "NOT_INITIALIZED";
/// The tag is not in the registry.
pub const MANIFEST_UNKNOWN: &str = "MANIFEST_UNKNOWN";
const TARGETS_EXPIRY_DAYS: i64 = 3 * 365;
const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

pub async fn run(references: Vec<String>, role: Option<String>) -> anyhow::Result<Report> {
    let mut gun = None;
    let mut registry = String::new();
    let mut tags = Vec::new();
    for r in &references {
        let (g, host, tag) = parse_reference(r)?;
        let tag = tag.ok_or_else(|| fail(INVALID_INPUT, format!("{r} names no tag; sign REPO:TAG")))?;
        match &gun {
            None => gun = Some(g),
            Some(first) if *first != g => {
                return Err(fail(
                    INVALID_INPUT,
                    format!("{r} is in another repository than {first}; sign one repository per call"),
                ));
            }
            Some(_) => {}
        }
        registry = host;
        tags.push(tag);
    }
    let gun = gun.ok_or_else(|| fail(INVALID_INPUT, "name at least one REPO:TAG"))?;
    let repository = gun[registry.len() + 1..].to_owned();
    let session = open(
        Some(registry),
        None,
        &[
            &format!("repository:{gun}:push,pull"),
            &format!("repository:{repository}:pull"),
        ],
    )
    .await?;

    let mut entries = Vec::new();
    for tag in &tags {
        let (digest, size) = manifest_of(&session, &repository, tag).await?;
        entries.push((tag.clone(), digest, size));
    }

    let published = fetch_published(&session, &gun).await?.ok_or_else(|| {
        fail(
            NOT_INITIALIZED,
            format!(
                "{gun} has no trust data yet; initialise it once with `DOCKER_CONTENT_TRUST=1 docker push {gun}:{}` (wharf cannot create trust data yet)",
                tags[0]
            ),
        )
    })?;
    let verified = wharf_tuf::verify_repository(&gun, &published.files, chrono::Utc::now()).map_err(|e| {
        fail(
            INVALID_RESPONSE,
            format!("the trust data of {gun} does not verify: {e}"),
        )
    })?;
    let store = KeyStore::docker();
    let stored = store.list()?;

    // Delegations the verified files declare: name → key IDs.
    let mut declared: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &verified.roles {
        for d in &r.delegations {
            declared.insert(d.name.clone(), d.keyids.clone());
        }
    }
    let key_for = |ids: &[String], needs_gun: bool| -> Option<StoredKey> {
        stored
            .iter()
            .find(|k| ids.contains(&k.id) && (!needs_gun || k.gun.as_deref() == Some(gun.as_str())))
            .cloned()
    };
    let mut chosen: Vec<(String, StoredKey)> = Vec::new();
    match &role {
        Some(r) => {
            let ids = declared
                .get(r)
                .ok_or_else(|| fail(INVALID_INPUT, format!("{gun} declares no delegation {r}")))?;
            let key = key_for(ids, false).ok_or_else(|| no_key(r, &gun, &store))?;
            chosen.push((r.clone(), key));
        }
        None => {
            for (name, ids) in &declared {
                if let Some(k) = key_for(ids, false) {
                    chosen.push((name.clone(), k));
                }
            }
            if chosen.is_empty() {
                let ids = verified
                    .root
                    .roles
                    .get("targets")
                    .map(|r| r.keyids.clone())
                    .unwrap_or_default();
                let key = key_for(&ids, true).ok_or_else(|| no_key("targets", &gun, &store))?;
                chosen.push(("targets".to_owned(), key));
            }
        }
    }

    let expires = format_go_time(chrono::Utc::now() + chrono::Duration::days(TARGETS_EXPIRY_DAYS));
    let mut opened: BTreeMap<String, PrivateKey> = BTreeMap::new();
    let mut parts = Vec::new();
    for (role, stored_key) in &chosen {
        let key = match opened.get(&stored_key.id) {
            Some(k) => k.clone(),
            None => {
                let k = store.open(stored_key)?.key;
                opened.insert(stored_key.id.clone(), k.clone());
                k
            }
        };
        // A delegation declared but never published starts as an empty file (version 0,
        // so the first upload is version 1).
        let mut signed = match published.roles.get(role) {
            Some(bytes) => serde_json::from_slice::<Value>(bytes)
                .map_err(|e| fail(INVALID_RESPONSE, format!("{role}.json is not JSON: {e}")))?["signed"]
                .clone(),
            None => json!({
                "_type": "Targets",
                "delegations": {"keys": {}, "roles": []},
                "expires": expires,
                "targets": {},
                "version": 0,
            }),
        };
        let targets = signed["targets"]
            .as_object_mut()
            .ok_or_else(|| fail(INVALID_RESPONSE, format!("{role}.json has no targets")))?;
        for (tag, digest, size) in &entries {
            targets.insert(
                tag.clone(),
                json!({"hashes": {"sha256": B64.encode(digest)}, "length": size}),
            );
        }
        let version = signed["version"].as_i64().unwrap_or(0) + 1;
        signed["version"] = json!(version);
        signed["expires"] = json!(expires);
        let canonical = wharf_tuf::canonical::to_canonical(&signed)
            .map_err(|e| fail(INVALID_INPUT, format!("{role}: {e}")))?;
        let signature = key
            .sign(&canonical)
            .map_err(|e| fail(INVALID_INPUT, format!("signing {role}: {e}")))?;
        let body =
            encode_file(&signed, &[signature]).map_err(|e| fail(INVALID_INPUT, format!("{role}: {e}")))?;
        parts.push((role.clone(), body));
    }
    publish(&session, &gun, &parts).await?;

    let signed: Vec<Value> = entries
        .iter()
        .map(|(tag, digest, size)| json!({"tag": tag, "digest": format!("sha256:{}", hex::encode(digest)), "size": size}))
        .collect();
    let roles: Vec<&str> = parts.iter().map(|(r, _)| r.as_str()).collect();
    let text = entries
        .iter()
        .map(|(tag, _, _)| format!("Successfully signed {gun}:{tag}"))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Report::new(
        json!({"repository": gun, "signed": signed, "roles": roles}),
        text,
    ))
}

fn no_key(role: &str, gun: &str, store: &KeyStore) -> anyhow::Error {
    fail(
        NO_SIGNING_KEY,
        format!(
            "no key for role {role} of {gun} in {}; nothing was signed (run `wharf trust key load` with the signer's key, or sign as the repository's owner)",
            store.dir().display()
        ),
    )
}

/// Digest (raw 32 bytes) and size of the manifest `tag` names.
async fn manifest_of(session: &Session, repository: &str, tag: &str) -> anyhow::Result<(Vec<u8>, u64)> {
    let resp = session
        .send_with_accept(
            reqwest::Method::HEAD,
            &format!("/v2/{repository}/manifests/{tag}"),
            MANIFEST_TYPES,
        )
        .await?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(fail(
            MANIFEST_UNKNOWN,
            format!("{repository}:{tag} is not in the registry; push the image first"),
        ));
    }
    if !status.is_success() {
        return Err(fail(
            INVALID_RESPONSE,
            format!("reading the manifest of {repository}:{tag}: the registry answered {status}"),
        ));
    }
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let digest = header("docker-content-digest")
        .and_then(|d| d.strip_prefix("sha256:").map(str::to_owned))
        .and_then(|h| hex::decode(h).ok())
        .filter(|d| d.len() == 32)
        .ok_or_else(|| {
            fail(
                INVALID_RESPONSE,
                "the registry sent no sha256 Docker-Content-Digest",
            )
        })?;
    let size = header("content-length")
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| fail(INVALID_RESPONSE, "the registry sent no manifest size"))?;
    Ok((digest, size))
}
