//! `wharf trust copy SRC DST [--all-tags]`: signed images and their Docker Content Trust
//! data from another registry (a Wharf, or any registry with a notary server) into this one,
//! keeping the publisher's signatures.
//!
//! 1. The source's trust data is fetched and verified here as a docker client without a
//!    cache verifies it; data that does not verify stops the copy before anything is written.
//! 2. Each tag `docker pull` trusts (`targets` or `targets/releases` signs it) is copied as
//!    the signed digest, byte for byte: every child of an index, every blob the destination
//!    lacks (streamed, its digest checked on the way), then the manifest under the tag.
//!    With `--all-tags` unsigned tags are copied too, as plain images.
//! 3. One publish at the destination: a new root.json (version 1) naming the same targets
//!    keys, the destination's server-held snapshot and timestamp keys, and the publisher's
//!    root key(s) re-certified for the destination GUN (notary and docker require the root
//!    certificate's CN to be the GUN), signed by those root keys from the local store; and
//!    targets.json with every verified delegation exactly as published — their signatures
//!    name no GUN, so they stay the publisher's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use wharf_tuf::metadata::format_go_time;
use wharf_tuf::{CertSigner, PrivateKey, TrustedTargets};

use super::inspect::{Published, fetch_published, parse_repository};
use super::keystore::{KeyStore, ROOT_ROLE};
use super::registry;
use super::revoke::{NO_SIGNING_KEY, publish};
use super::sign::{ROOT_EXPIRY_DAYS, root_certificate, server_key, sign_file_by_all};
use crate::client::report::{INVALID_INPUT, INVALID_RESPONSE, Report, fail};
use crate::client::session::{self, Session};

/// The source's trust data does not verify.
pub const SOURCE_NOT_VERIFIED: &str = "SOURCE_NOT_VERIFIED";
/// The destination already has other trust data.
pub const TRUST_DATA_EXISTS: &str = "TRUST_DATA_EXISTS";
/// The destination refuses the caller what the copy needs (push and sign).
pub const DENIED: &str = "DENIED";

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/// Blob bytes go to the destination in pieces of this size, so a layer of any size is
/// copied in bounded memory.
const CHUNK: usize = 8 << 20;

/// What `wharf trust copy` was asked.
pub struct CopyRequest {
    pub source: String,
    pub destination: String,
    pub all_tags: bool,
    /// `https://…` of the source's notary server; the source registry itself by default.
    pub source_trust_server: Option<String>,
    pub source_ca: Option<PathBuf>,
    pub destination_ca: Option<PathBuf>,
}

/// A tag to copy: the digest to copy it as, and for a signed tag the size the trust data
/// records.
struct Planned {
    tag: String,
    digest: String,
    signed_size: Option<u64>,
}

pub async fn run(req: CopyRequest) -> anyhow::Result<Report> {
    let (src_gun, src_host) = parse_repository(&req.source, "copy takes a repository")?;
    let (dst_gun, dst_host) = parse_repository(&req.destination, "copy takes a repository")?;
    if src_gun == dst_gun {
        return Err(fail(
            INVALID_INPUT,
            format!("{src_gun} is both source and destination"),
        ));
    }
    let src_repo = src_gun[src_host.len() + 1..].to_owned();
    let dst_repo = dst_gun[dst_host.len() + 1..].to_owned();
    // docker's rule, and what every `wharf trust` command does: the trust server is the
    // registry itself unless one is named.
    let trust_base = match req.source_trust_server.as_deref() {
        None => format!("https://{src_host}"),
        Some(url) if url.starts_with("https://") => url.trim_end_matches('/').to_owned(),
        Some(url) => {
            return Err(fail(
                INVALID_INPUT,
                format!(
                    "--source-trust-server {url}: a trust server is reached over https://, as docker requires"
                ),
            ));
        }
    };

    // 1. Everything read and checked before the destination is touched.
    let ca = req.source_ca.as_deref();
    let src_registry = session::open_foreign(
        &format!("https://{src_host}"),
        &src_host,
        ca,
        &[&format!("repository:{src_repo}:pull")],
    )
    .await?;
    let src_trust = if trust_base == format!("https://{src_host}") {
        session::open_foreign(
            &trust_base,
            &src_host,
            ca,
            &[
                &format!("repository:{src_gun}:pull"),
                &format!("repository:{src_repo}:pull"),
            ],
        )
        .await?
    } else {
        session::open_foreign(
            &trust_base,
            &src_host,
            ca,
            &[&format!("repository:{src_gun}:pull")],
        )
        .await?
    };
    let published = fetch_published(&src_trust, &src_gun).await?;
    let verified = match &published {
        Some(p) => Some(
            wharf_tuf::verify_repository(&src_gun, &p.files, chrono::Utc::now()).map_err(|e| {
                fail(
                    SOURCE_NOT_VERIFIED,
                    format!("the trust data of {src_gun} does not verify: {e}; nothing was copied"),
                )
            })?,
        ),
        None if req.all_tags => None,
        None => {
            return Err(fail(
                super::inspect::NO_SIGNATURES,
                format!(
                    "{src_gun} has no trust data at {trust_base}; nothing was copied (name its notary server with --source-trust-server, or copy its images unsigned with --all-tags)"
                ),
            ));
        }
    };
    let source_tags = super::migrate::tags_of(&src_registry, &src_repo).await?;
    let (planned, mut skipped) = plan(verified.as_ref(), &source_tags, req.all_tags);
    let root_signers = match &verified {
        Some(v) => root_keys(&KeyStore::docker(), v, &src_gun)?,
        None => Vec::new(),
    };

    // 2. The destination: the caller must be able to sign there, and its trust data must be
    //    absent or already this copy.
    let dst = session::open(
        Some(dst_host.clone()),
        req.destination_ca.clone(),
        &[
            &format!("repository:{dst_gun}:push,pull"),
            &format!("repository:{dst_repo}:pull,push"),
        ],
    )
    .await?;
    let trust_parts = match (&published, &verified) {
        (Some(p), Some(v)) => {
            let roles = roles_to_copy(p, v);
            match fetch_published(&dst, &dst_gun).await? {
                Some(existing) if same_trust(&existing, &roles) => None,
                Some(_) => {
                    return Err(fail(
                        TRUST_DATA_EXISTS,
                        format!(
                            "{dst_gun} already has other trust data; nothing was copied (copy into a repository without trust data, or delete its trust data first: `wharf content-trust reset {dst_repo} --yes`)"
                        ),
                    ));
                }
                None => Some((p, roles)),
            }
        }
        _ => None,
    };
    let new_root = match &trust_parts {
        Some((p, _)) => Some(destination_root(&dst, &dst_gun, p, &root_signers).await?),
        None => None,
    };

    // 3. Images, then the trust data that vouches for them.
    let mut copied = Vec::new();
    for item in planned {
        match copy_image(&src_registry, &src_repo, &dst, &dst_repo, &item).await? {
            Ok(pushed) => copied.push((item, pushed)),
            Err(why) => skipped.push((item.tag, why)),
        }
    }
    let mut roles_published = Vec::new();
    if let (Some((_, roles)), Some(root)) = (trust_parts.as_ref(), new_root) {
        let mut parts = vec![(ROOT_ROLE.to_owned(), root)];
        parts.extend(roles.iter().map(|(r, b)| (r.clone(), b.clone())));
        publish(&dst, &dst_gun, &parts).await?;
        roles_published = parts.into_iter().map(|(r, _)| r).collect();
        roles_published.sort();
    }
    skipped.sort();
    Ok(report(
        &src_gun,
        &dst_gun,
        &copied,
        &skipped,
        verified.is_some(),
        &roles_published,
    ))
}

/// The tags to copy and the names skipped with why. A name counts as signed exactly when
/// `docker pull` with content trust would accept it.
fn plan(
    verified: Option<&TrustedTargets>,
    source_tags: &[String],
    all_tags: bool,
) -> (Vec<Planned>, Vec<(String, String)>) {
    let tags: BTreeSet<&str> = source_tags.iter().map(String::as_str).collect();
    let mut names = tags.clone();
    if let Some(v) = verified {
        names.extend(v.names());
    }
    let (mut planned, mut skipped) = (Vec::new(), Vec::new());
    for name in names {
        let signed = verified.and_then(|v| v.pull_target(name));
        match signed {
            Some((_, target)) => match target.digest() {
                Some(digest) => planned.push(Planned {
                    tag: name.to_owned(),
                    digest,
                    signed_size: Some(u64::try_from(target.length).unwrap_or(0)),
                }),
                None => skipped.push((name.to_owned(), "its trust data has no sha256 hash".to_owned())),
            },
            None if !tags.contains(name) => skipped.push((
                name.to_owned(),
                "signed only by a delegation docker pull does not trust, and not a tag of the source"
                    .to_owned(),
            )),
            None if all_tags => planned.push(Planned {
                tag: name.to_owned(),
                digest: String::new(),
                signed_size: None,
            }),
            None => skipped.push((name.to_owned(), "unsigned (copy it with --all-tags)".to_owned())),
        }
    }
    (planned, skipped)
}

/// The private keys in `store` of the root keys the verified root of `gun` names, as many
/// as its threshold asks for; too few is `NO_SIGNING_KEY`, naming the missing key IDs (the
/// names of their files in the store).
fn root_keys(store: &KeyStore, verified: &TrustedTargets, gun: &str) -> anyhow::Result<Vec<PrivateKey>> {
    let role = verified.root.roles.get(ROOT_ROLE);
    let ids = role.map(|r| r.keyids.clone()).unwrap_or_default();
    let threshold = role.map_or(1, |r| r.threshold.max(1)) as usize;
    let stored = store.list()?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for id in &ids {
        let Some(canonical) = verified.root.keys.get(id).and_then(|c| c.canonical_key_id().ok()) else {
            continue;
        };
        match stored.iter().find(|k| k.id == canonical && k.role == ROOT_ROLE) {
            Some(k) => found.push(k.clone()),
            None => missing.push(canonical),
        }
    }
    if found.len() < threshold {
        return Err(fail(
            NO_SIGNING_KEY,
            format!(
                "the root key {} of {gun} is not in {}; nothing was copied (the destination's root must be signed by the publisher's root key: load it with `wharf trust key restore` or `wharf trust key load`)",
                missing.join(", "),
                store.dir().display()
            ),
        ));
    }
    found
        .iter()
        .take(threshold)
        .map(|k| Ok(store.open(k)?.key))
        .collect()
}

/// targets.json and every delegation that verified, as published. A delegation that signs
/// nothing (too few valid signatures, expired) would be refused by the destination and is
/// left out.
fn roles_to_copy(published: &Published, verified: &TrustedTargets) -> Vec<(String, Vec<u8>)> {
    verified
        .roles
        .iter()
        .filter_map(|r| Some((r.name.clone(), published.roles.get(&r.name)?.clone())))
        .collect()
}

/// The destination already publishes exactly these roles, byte for byte: an earlier copy.
fn same_trust(existing: &Published, roles: &[(String, Vec<u8>)]) -> bool {
    let theirs: BTreeMap<&str, &[u8]> = existing
        .roles
        .iter()
        .filter(|(r, _)| r.as_str() == "targets" || r.starts_with("targets/"))
        .map(|(r, b)| (r.as_str(), b.as_slice()))
        .collect();
    let ours: BTreeMap<&str, &[u8]> = roles.iter().map(|(r, b)| (r.as_str(), b.as_slice())).collect();
    theirs == ours
}

/// root.json v1 for `gun`: the source root's targets role and keys, the destination's
/// snapshot and timestamp keys, and each root key re-certified for `gun`, signed by all.
async fn destination_root(
    dst: &Session,
    gun: &str,
    published: &Published,
    root_keys: &[PrivateKey],
) -> anyhow::Result<Vec<u8>> {
    let probe = dst
        .request(Method::GET, &format!("/v2/{gun}/_trust/tuf/timestamp.key"))
        .send()
        .await
        .map_err(|e| dst.unreachable(&e))?;
    if matches!(probe.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(fail(
            DENIED,
            format!(
                "{} may not sign {gun} (that needs push and sign on the repository); nothing was copied",
                dst.username().unwrap_or("this login")
            ),
        ));
    }
    let timestamp_key = server_key(dst, gun, "timestamp", Method::GET).await?;
    let snapshot_key = server_key(dst, gun, "snapshot", Method::GET).await?;
    let source_root = published
        .roles
        .get(ROOT_ROLE)
        .ok_or_else(|| fail(INVALID_RESPONSE, "the source publishes no root.json"))?;
    let source: Value = serde_json::from_slice::<Value>(source_root)
        .map_err(|e| fail(INVALID_RESPONSE, format!("root.json is not JSON: {e}")))?["signed"]
        .take();
    let targets_role = source["roles"]["targets"].clone();
    let mut keys = serde_json::Map::new();
    for id in targets_role["keyids"].as_array().into_iter().flatten() {
        let id = id.as_str().unwrap_or_default();
        keys.insert(id.to_owned(), source["keys"][id].clone());
    }
    let mut signers = Vec::new();
    for key in root_keys {
        let cert_key = root_certificate(key, gun)?;
        keys.insert(cert_key.key_id(), cert_key.to_value());
        signers.push(CertSigner {
            key: key.clone(),
            cert_key,
        });
    }
    keys.insert(snapshot_key.key_id(), snapshot_key.to_value());
    keys.insert(timestamp_key.key_id(), timestamp_key.to_value());
    let root_ids: Vec<String> = signers.iter().map(|s| s.cert_key.key_id()).collect();
    let root = json!({
        "_type": "Root",
        "consistent_snapshot": false,
        "expires": format_go_time(chrono::Utc::now() + chrono::Duration::days(ROOT_EXPIRY_DAYS)),
        "keys": keys,
        "roles": {
            "root": {"keyids": root_ids, "threshold": signers.len()},
            "snapshot": {"keyids": [snapshot_key.key_id()], "threshold": 1},
            "targets": targets_role,
            "timestamp": {"keyids": [timestamp_key.key_id()], "threshold": 1},
        },
        "version": 1,
    });
    let signers: Vec<&dyn wharf_tuf::Signer> = signers.iter().map(|s| s as &dyn wharf_tuf::Signer).collect();
    sign_file_by_all(&root, &signers, ROOT_ROLE)
}

/// Copy one tag. `Ok(Err(why))`: skipped (the source no longer has what was signed);
/// `Ok(Ok(pushed))`: in place, `pushed` false when the destination already had it.
async fn copy_image(
    src: &Session,
    src_repo: &str,
    dst: &Session,
    dst_repo: &str,
    item: &Planned,
) -> anyhow::Result<Result<(String, bool), String>> {
    let reference = if item.digest.is_empty() {
        item.tag.as_str()
    } else {
        item.digest.as_str()
    };
    let Some(manifest) = registry::manifest(src, src_repo, reference).await? else {
        return Ok(Err(format!("{reference} is not in the source registry")));
    };
    if !item.digest.is_empty() && manifest.digest != item.digest {
        return Ok(Err(format!(
            "the source registry sent {} for {}",
            manifest.digest, item.digest
        )));
    }
    if let Some(size) = item.signed_size
        && manifest.bytes.len() as u64 != size
    {
        return Ok(Err(format!(
            "its signed digest {} has {} bytes in the source, the trust data says {size}",
            item.digest,
            manifest.bytes.len()
        )));
    }
    let digest = manifest.digest.clone();
    if destination_digest(dst, dst_repo, &item.tag).await?.as_deref() == Some(digest.as_str()) {
        return Ok(Ok((digest, false)));
    }
    if let Err(why) = copy_content(src, src_repo, dst, dst_repo, &manifest).await? {
        return Ok(Err(why));
    }
    registry::put_manifest(dst, dst_repo, &item.tag, &manifest.media_type, manifest.bytes).await?;
    Ok(Ok((digest, true)))
}

/// What a manifest references, in the destination: an index's children (each stored by
/// digest), an image's config and layers.
async fn copy_content(
    src: &Session,
    src_repo: &str,
    dst: &Session,
    dst_repo: &str,
    manifest: &registry::Manifest,
) -> anyhow::Result<Result<(), String>> {
    let doc: Value = serde_json::from_slice(&manifest.bytes).map_err(|e| {
        fail(
            INVALID_RESPONSE,
            format!("manifest {} is not JSON: {e}", manifest.digest),
        )
    })?;
    let media_type = doc["mediaType"].as_str().unwrap_or(&manifest.media_type);
    if INDEX_TYPES.contains(&media_type) {
        for child in doc["manifests"].as_array().into_iter().flatten() {
            let Some(digest) = child["digest"].as_str() else {
                continue;
            };
            let Some(child_manifest) = registry::manifest(src, src_repo, digest).await? else {
                return Ok(Err(format!(
                    "its child manifest {digest} is not in the source registry"
                )));
            };
            if child_manifest.digest != digest {
                return Ok(Err(format!("the source registry sent other bytes for {digest}")));
            }
            if let Err(why) = Box::pin(copy_content(src, src_repo, dst, dst_repo, &child_manifest)).await? {
                return Ok(Err(why));
            }
            registry::put_manifest(
                dst,
                dst_repo,
                digest,
                &child_manifest.media_type,
                child_manifest.bytes,
            )
            .await?;
        }
        return Ok(Ok(()));
    }
    let blobs = doc["config"]["digest"].as_str().into_iter().chain(
        doc["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["digest"].as_str()),
    );
    for digest in blobs {
        copy_blob(src, src_repo, dst, dst_repo, digest).await?;
    }
    Ok(Ok(()))
}

/// The digest `tag` names at the destination, if it exists.
async fn destination_digest(dst: &Session, repo: &str, tag: &str) -> anyhow::Result<Option<String>> {
    let resp = dst
        .request(Method::HEAD, &format!("/v2/{repo}/manifests/{tag}"))
        .header("accept", INDEX_TYPES.join(", ") + ", " + registry::MANIFEST_TYPES)
        .send()
        .await
        .map_err(|e| dst.unreachable(&e))?;
    if !resp.status().is_success() {
        return Ok(None);
    }
    Ok(resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned))
}

/// One blob from the source into the destination unless the destination has it: read in
/// pieces, each piece sent as a chunk of one upload, its SHA-256 checked before the upload
/// is committed (the destination checks it again).
async fn copy_blob(
    src: &Session,
    src_repo: &str,
    dst: &Session,
    dst_repo: &str,
    digest: &str,
) -> anyhow::Result<()> {
    let head = dst
        .request(Method::HEAD, &format!("/v2/{dst_repo}/blobs/{digest}"))
        .send()
        .await
        .map_err(|e| dst.unreachable(&e))?;
    if head.status().is_success() {
        return Ok(());
    }
    let mut source = src
        .request(Method::GET, &format!("/v2/{src_repo}/blobs/{digest}"))
        .send()
        .await
        .map_err(|e| src.unreachable(&e))?;
    if !source.status().is_success() {
        return Err(fail(
            INVALID_RESPONSE,
            format!(
                "reading blob {digest} of {src_repo}: the source registry answered {}",
                source.status()
            ),
        ));
    }
    let what = format!("uploading blob {digest} to {dst_repo}");
    let start = dst
        .request(Method::POST, &format!("/v2/{dst_repo}/blobs/uploads/"))
        .send()
        .await
        .map_err(|e| dst.unreachable(&e))?;
    if start.status() != StatusCode::ACCEPTED {
        return Err(registry::refused(start, &what).await);
    }
    let mut location = registry::upload_location(&start, &what)?;
    let mut hasher = Sha256::new();
    let mut offset = 0u64;
    let mut buffer: Vec<u8> = Vec::with_capacity(CHUNK);
    loop {
        let piece = source.chunk().await.map_err(|e| src.unreachable(&e))?;
        if let Some(bytes) = &piece {
            hasher.update(bytes);
            buffer.extend_from_slice(bytes);
        }
        if buffer.len() >= CHUNK || (piece.is_none() && !buffer.is_empty()) {
            let end = offset + buffer.len() as u64 - 1;
            let resp = dst
                .request(Method::PATCH, &location)
                .header("content-type", "application/octet-stream")
                .header("content-range", format!("{offset}-{end}"))
                .body(std::mem::take(&mut buffer))
                .send()
                .await
                .map_err(|e| dst.unreachable(&e))?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(registry::refused(resp, &what).await);
            }
            location = registry::upload_location(&resp, &what)?;
            offset = end + 1;
        }
        if piece.is_none() {
            break;
        }
    }
    let got = format!("sha256:{}", hex::encode(hasher.finalize()));
    if got != digest {
        let _ = dst.request(Method::DELETE, &location).send().await;
        return Err(fail(
            INVALID_RESPONSE,
            format!(
                "blob {digest} of {src_repo}: the source registry sent other bytes ({got}); the copy stopped"
            ),
        ));
    }
    let sep = if location.contains('?') { '&' } else { '?' };
    let done = dst
        .request(Method::PUT, &format!("{location}{sep}digest={digest}"))
        .send()
        .await
        .map_err(|e| dst.unreachable(&e))?;
    if done.status() != StatusCode::CREATED {
        return Err(registry::refused(done, &what).await);
    }
    Ok(())
}

fn report(
    src_gun: &str,
    dst_gun: &str,
    copied: &[(Planned, (String, bool))],
    skipped: &[(String, String)],
    had_trust: bool,
    roles: &[String],
) -> Report {
    let trust = match (had_trust, roles.is_empty()) {
        (false, _) => "none",
        (true, false) => "published",
        (true, true) => "unchanged",
    };
    let copied_json: Vec<Value> = copied
        .iter()
        .map(|(p, (digest, pushed))| {
            json!({"tag": p.tag, "digest": digest, "signed": p.signed_size.is_some(), "pushed": pushed})
        })
        .collect();
    let signed: Vec<&str> = copied
        .iter()
        .filter(|(p, _)| p.signed_size.is_some())
        .map(|(p, _)| p.tag.as_str())
        .collect();
    let skipped_json: Vec<Value> = skipped
        .iter()
        .map(|(tag, reason)| json!({"tag": tag, "reason": reason}))
        .collect();
    let mut text = format!(
        "{src_gun} -> {dst_gun}: copied {} tags ({} signed), skipped {}",
        copied.len(),
        signed.len(),
        skipped.len()
    );
    for (p, (digest, pushed)) in copied {
        let kind = if p.signed_size.is_some() {
            "signed"
        } else {
            "unsigned"
        };
        let state = if *pushed { "" } else { ", already there" };
        text.push_str(&format!("\n  copied   {} ({digest}, {kind}{state})", p.tag));
    }
    for (tag, reason) in skipped {
        text.push_str(&format!("\n  skipped  {tag}: {reason}"));
    }
    text.push_str(&match trust {
        "published" => format!("\nTrust data published for {dst_gun}: {}", roles.join(", ")),
        "unchanged" => format!("\nTrust data of {dst_gun} is already this copy; nothing published"),
        _ => format!("\n{src_gun} has no trust data; nothing published"),
    });
    Report::new(
        json!({
            "source": src_gun,
            "destination": dst_gun,
            "copied": copied_json,
            "signed_tags": signed,
            "skipped": skipped_json,
            "trust_data": trust,
            "roles": roles,
        }),
        text,
    )
}
