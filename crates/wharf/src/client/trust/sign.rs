//! `wharf trust sign REPO:TAG [REPO:TAG…]` without a Docker daemon. For a repository
//! with trust data, each tag's manifest digest and size are read from the
//! registry (HEAD with every manifest type accepted), added to the roles this key store
//! can sign — the delegations it holds a key for (docker's `targets/releases` plus the
//! signer's own), else `targets` with the repository key — re-signed and published in
//! ONE upload. A repository without trust data is initialised first (`initialize`, shared
//! with `signer add`), in the same upload. The server then writes snapshot and timestamp.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use wharf_tuf::metadata::{encode_file, format_go_time};
use wharf_tuf::{CertSigner, PrivateKey, PublicKey, Signer as _};

use super::inspect::{fetch_published, parse_reference};
use super::keystore::{self, KeyStore, ROOT_ROLE, StoredKey};
use super::revoke::{NO_SIGNING_KEY, publish};
use crate::client::report::{INVALID_INPUT, INVALID_RESPONSE, Report, fail};
use crate::client::session::{Session, open};

/// The tag is not in the registry.
pub const MANIFEST_UNKNOWN: &str = "MANIFEST_UNKNOWN";
pub(super) const TARGETS_EXPIRY_DAYS: i64 = 3 * 365;
pub(super) const ROOT_EXPIRY_DAYS: i64 = 10 * 365;
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

    let store = KeyStore::docker();
    let Some(published) = fetch_published(&session, &gun).await? else {
        if role.is_some() {
            return Err(fail(
                INVALID_INPUT,
                format!("{gun} has no trust data yet, so no delegation; sign without --role first"),
            ));
        }
        let parts = initialize(&session, &gun, &store, |signed| {
            add_targets(signed, &entries, "targets")
        })
        .await?;
        return finish(&session, &gun, &parts, &entries).await;
    };
    let verified = super::inspect::verified(&gun, &published)?;
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
                chosen.push(("targets".to_owned(), repository_key(&store, &verified, &gun)?));
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
        let signed = match published.roles.get(role) {
            Some(bytes) => serde_json::from_slice::<Value>(bytes)
                .map_err(|e| fail(INVALID_RESPONSE, format!("{role}.json is not JSON: {e}")))?["signed"]
                .clone(),
            None => empty_targets(),
        };
        parts.push((
            role.clone(),
            signed_targets(signed, &entries, &expires, &key, role)?,
        ));
    }
    finish(&session, &gun, &parts, &entries).await
}

/// The repository (`targets`) key of `gun` in `store`: one the verified root names for
/// `targets`, stored with the GUN's `gun:` header.
pub(super) fn repository_key(
    store: &KeyStore,
    verified: &wharf_tuf::TrustedTargets,
    gun: &str,
) -> anyhow::Result<StoredKey> {
    let ids = verified
        .root
        .roles
        .get("targets")
        .map(|r| r.keyids.clone())
        .unwrap_or_default();
    store
        .list()?
        .into_iter()
        .find(|k| ids.contains(&k.id) && k.gun.as_deref() == Some(gun))
        .ok_or_else(|| no_key("targets", gun, store))
}

fn empty_targets() -> Value {
    json!({
        "_type": "Targets",
        "delegations": {"keys": {}, "roles": []},
        "expires": "",
        "targets": {},
        "version": 0,
    })
}

/// The tags added to a targets role's `signed`.
fn add_targets(signed: &mut Value, entries: &[(String, Vec<u8>, u64)], role: &str) -> anyhow::Result<()> {
    let targets = signed["targets"]
        .as_object_mut()
        .ok_or_else(|| fail(INVALID_RESPONSE, format!("{role}.json has no targets")))?;
    for (tag, digest, size) in entries {
        targets.insert(
            tag.clone(),
            json!({"hashes": {"sha256": B64.encode(digest)}, "length": size}),
        );
    }
    Ok(())
}

/// `signed` with the tags added, version + 1 and a new expiry, signed by `key`: the file.
fn signed_targets(
    mut signed: Value,
    entries: &[(String, Vec<u8>, u64)],
    expires: &str,
    key: &PrivateKey,
    role: &str,
) -> anyhow::Result<Vec<u8>> {
    add_targets(&mut signed, entries, role)?;
    let version = signed["version"].as_i64().unwrap_or(0) + 1;
    signed["version"] = json!(version);
    signed["expires"] = json!(expires);
    sign_file(&signed, key, role)
}

pub(super) fn sign_file(
    signed: &Value,
    signer: &dyn wharf_tuf::Signer,
    role: &str,
) -> anyhow::Result<Vec<u8>> {
    sign_file_by_all(signed, &[signer], role)
}

/// `signed` as a metadata file signed by each of `signers` (a root signed by the old and
/// the new root key, or by every root key it names).
pub(super) fn sign_file_by_all(
    signed: &Value,
    signers: &[&dyn wharf_tuf::Signer],
    role: &str,
) -> anyhow::Result<Vec<u8>> {
    let canonical = wharf_tuf::canonical::to_canonical(signed)
        .map_err(|e| fail(INVALID_INPUT, format!("{role}: {e}")))?;
    let signatures = signers
        .iter()
        .map(|s| {
            s.sign(&canonical)
                .map_err(|e| fail(INVALID_INPUT, format!("signing {role}: {e}")))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    encode_file(signed, &signatures).map_err(|e| fail(INVALID_INPUT, format!("{role}: {e}")))
}

/// Publishes `parts` in one upload and reports the signed tags.
async fn finish(
    session: &Session,
    gun: &str,
    parts: &[(String, Vec<u8>)],
    entries: &[(String, Vec<u8>, u64)],
) -> anyhow::Result<Report> {
    publish(session, gun, parts).await?;
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

/// New trust data for `gun`, as docker makes it on the first signing or `docker trust signer
/// add` of a repository: the root key from the store (the first by ID, as docker reuses it
/// across repositories) or a new one, a new repository (`targets`) key, the server's
/// snapshot and timestamp keys, a self-signed root certificate naming the GUN, and targets
/// v1 as `edit` fills it (the tags to sign, or the first signer's delegations). The new
/// repository key is in the store when this returns; publishing root and targets, in one
/// upload, is the caller's.
pub(super) async fn initialize(
    session: &Session,
    gun: &str,
    store: &KeyStore,
    edit: impl FnOnce(&mut Value) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let timestamp_key = server_key(session, gun, "timestamp", reqwest::Method::GET).await?;
    let snapshot_key = server_key(session, gun, "snapshot", reqwest::Method::GET).await?;
    let root_key = match store.find(ROOT_ROLE, None)? {
        Some(stored) => store.open(&stored)?.key,
        None => {
            let key = PrivateKey::generate_p256().map_err(|e| fail(INVALID_INPUT, e.to_string()))?;
            let pass = keystore::new_passphrase(
                ROOT_ROLE,
                &format!(
                    "Enter passphrase for new root key with ID {}",
                    keystore::short(&key.key_id())
                ),
            )?;
            store.save(&key, ROOT_ROLE, None, &pass)?;
            key
        }
    };
    let targets_key = PrivateKey::generate_p256().map_err(|e| fail(INVALID_INPUT, e.to_string()))?;
    let pass = keystore::new_passphrase(
        "targets",
        &format!(
            "Enter passphrase for new repository key with ID {}",
            keystore::short(&targets_key.key_id())
        ),
    )?;
    let cert_key = root_certificate(&root_key, gun)?;
    let now = chrono::Utc::now();
    let root_signed = json!({
        "_type": "Root",
        "consistent_snapshot": false,
        "expires": format_go_time(now + chrono::Duration::days(ROOT_EXPIRY_DAYS)),
        "keys": {
            cert_key.key_id(): cert_key.to_value(),
            targets_key.key_id(): targets_key.public_key().to_value(),
            snapshot_key.key_id(): snapshot_key.to_value(),
            timestamp_key.key_id(): timestamp_key.to_value(),
        },
        "roles": {
            "root": {"keyids": [cert_key.key_id()], "threshold": 1},
            "snapshot": {"keyids": [snapshot_key.key_id()], "threshold": 1},
            "targets": {"keyids": [targets_key.key_id()], "threshold": 1},
            "timestamp": {"keyids": [timestamp_key.key_id()], "threshold": 1},
        },
        "version": 1,
    });
    let root_signer = CertSigner {
        key: root_key,
        cert_key,
    };
    let root_file = sign_file(&root_signed, &root_signer, ROOT_ROLE)?;
    let mut targets = empty_targets();
    edit(&mut targets)?;
    let expires = format_go_time(now + chrono::Duration::days(TARGETS_EXPIRY_DAYS));
    let targets_file = signed_targets(targets, &[], &expires, &targets_key, "targets")?;
    // The repository key is stored only once the files are built, and before they are
    // published: a key the published root names must never be lost.
    store.save(&targets_key, "targets", Some(gun), &pass)?;
    Ok(vec![
        (ROOT_ROLE.to_owned(), root_file),
        ("targets".to_owned(), targets_file),
    ])
}

/// `GET …/<role>.key`: the key the server signs `role` with; `POST` (a rotation): a new key
/// the registry made for `role`.
pub(super) async fn server_key(
    session: &Session,
    gun: &str,
    role: &str,
    method: reqwest::Method,
) -> anyhow::Result<PublicKey> {
    let rotating = method == reqwest::Method::POST;
    let resp = session
        .request(method, &format!("/v2/{gun}/_trust/tuf/{role}.key"))
        .send()
        .await
        .map_err(|e| session.unreachable(&e))?;
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let what = if rotating {
        format!("new {role} key")
    } else {
        format!("{role} key")
    };
    if !status.is_success() {
        let refusal = if rotating {
            format!("the registry did not rotate the {role} key of {gun}")
        } else {
            format!("the server gave no {role} key for {gun}")
        };
        return Err(fail(
            INVALID_RESPONSE,
            format!("{refusal} ({status}): {}", String::from_utf8_lossy(&body).trim()),
        ));
    }
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| fail(INVALID_RESPONSE, format!("the {what} is not JSON: {e}")))?;
    PublicKey::from_value(&v).map_err(|e| fail(INVALID_RESPONSE, format!("the {what}: {e}")))
}

/// The self-signed certificate notary makes for a root key: CN = GUN, ten years,
/// ECDSA-SHA256, key usage digitalSignature + keyEncipherment, code signing, not a CA.
pub(super) fn root_certificate(root: &PrivateKey, gun: &str) -> anyhow::Result<PublicKey> {
    use chrono::Datelike as _;
    let der = wharf_tuf::keyfile::pkcs8_der(root).map_err(|e| fail(INVALID_INPUT, e.to_string()))?;
    let pair = rcgen::KeyPair::try_from(der.as_slice())
        .map_err(|e| fail(INVALID_INPUT, format!("root key for the certificate: {e}")))?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, gun);
    let today = chrono::Utc::now();
    params.not_before = rcgen::date_time_ymd(today.year(), today.month() as u8, today.day() as u8);
    params.not_after =
        rcgen::date_time_ymd(today.year() + 10, today.month() as u8, today.day().min(28) as u8);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    let cert = params
        .self_signed(&pair)
        .map_err(|e| fail(INVALID_INPUT, format!("root certificate: {e}")))?;
    let pem = wharf_tuf::keys::pem_encode("CERTIFICATE", cert.der());
    Ok(PublicKey::new(wharf_tuf::keys::ECDSA_X509, pem.into_bytes()))
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
        .request(
            reqwest::Method::HEAD,
            &format!("/v2/{repository}/manifests/{tag}"),
        )
        .header("accept", MANIFEST_TYPES)
        .send()
        .await
        .map_err(|e| session.unreachable(&e))?;
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
