//! `wharf trust revoke REPO[:TAG]`: remove a tag's signature (or every tag's) from
//! `targets` and from every delegation holding it, as far as the key store holds a key
//! of the role — docker's rule: a role you cannot sign keeps its entries. The changed
//! roles are re-signed (version + 1, docker's 3-year expiry) and published in one upload;
//! the server then writes the snapshot and timestamp.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use wharf_tuf::metadata::{encode_file, format_go_time};
use wharf_tuf::{PrivateKey, Signer as _};

use super::inspect::{fetch_published, is_released, parse_reference};
use super::keystore::{KeyStore, StoredKey};
use crate::cli::Output;
use crate::client::prompt::confirmed;
use crate::client::report::{INVALID_INPUT, INVALID_RESPONSE, Report, fail};
use crate::client::session::{Session, open};

/// No key in the store for any role that signed what is to be revoked.
pub const NO_SIGNING_KEY: &str = "NO_SIGNING_KEY";
const TARGETS_EXPIRY_DAYS: i64 = 3 * 365;

pub async fn run(reference: String, yes: bool, output: Output) -> anyhow::Result<Report> {
    let (gun, registry, tag) = parse_reference(&reference)?;
    if tag.is_none() {
        confirmed(
            yes,
            output,
            &format!("WARNING: this removes the signatures of ALL tags of {gun} that your keys can sign."),
            &format!("Revoke every signature of {gun}?"),
        )?;
    }
    let session = open(Some(registry), None, &[&format!("repository:{gun}:push,pull")]).await?;
    let published = fetch_published(&session, &gun).await?.ok_or_else(|| {
        fail(
            super::inspect::NO_SIGNATURES,
            format!("no signatures or cannot access {reference}"),
        )
    })?;
    let verified = super::inspect::verified(&gun, &published)?;
    let store = KeyStore::docker();
    let stored = store.list()?;

    // Roles that list what goes, and whether we can sign each.
    let mut to_change: Vec<(String, Vec<String>, StoredKey)> = Vec::new();
    let mut unsignable: Vec<String> = Vec::new();
    for role in &verified.roles {
        let tags: Vec<String> = match &tag {
            Some(t) if role.targets.contains_key(t) => vec![t.clone()],
            Some(_) => continue,
            None if role.targets.is_empty() => continue,
            None => role.targets.keys().cloned().collect(),
        };
        let key = stored.iter().find(|k| {
            role.key_ids.contains(&k.id) && (role.name != "targets" || k.gun.as_deref() == Some(gun.as_str()))
        });
        match key {
            Some(k) => to_change.push((role.name.clone(), tags, k.clone())),
            None => unsignable.push(role.name.clone()),
        }
    }
    let what = tag
        .as_deref()
        .map_or_else(|| gun.clone(), |t| format!("{gun}:{t}"));
    if to_change.is_empty() {
        if unsignable.is_empty() {
            return Err(fail(
                super::inspect::NO_SIGNATURES,
                format!("no signatures or cannot access {reference}"),
            ));
        }
        return Err(fail(
            NO_SIGNING_KEY,
            format!(
                "no key for {} of {gun} in {}; nothing was changed (load the signer's key with `wharf trust key load`, or revoke as the repository's owner)",
                unsignable.join(", "),
                store.dir().display()
            ),
        ));
    }

    let expires = format_go_time(chrono::Utc::now() + chrono::Duration::days(TARGETS_EXPIRY_DAYS));
    let mut parts: Vec<(String, Vec<u8>)> = Vec::new();
    let mut opened: BTreeMap<String, PrivateKey> = BTreeMap::new();
    for (role, tags, stored_key) in &to_change {
        let key = match opened.get(&stored_key.id) {
            Some(k) => k.clone(),
            None => {
                let k = store.open(stored_key)?.key;
                opened.insert(stored_key.id.clone(), k.clone());
                k
            }
        };
        let bytes = published
            .roles
            .get(role)
            .ok_or_else(|| fail(INVALID_RESPONSE, format!("{role} is not in the snapshot")))?;
        let file: Value = serde_json::from_slice(bytes)
            .map_err(|e| fail(INVALID_RESPONSE, format!("{role}.json is not JSON: {e}")))?;
        let mut signed = file["signed"].clone();
        let targets = signed["targets"]
            .as_object_mut()
            .ok_or_else(|| fail(INVALID_RESPONSE, format!("{role}.json has no targets")))?;
        for t in tags {
            targets.remove(t);
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
    let roles: Vec<&str> = parts.iter().map(|(r, _)| r.as_str()).collect();
    let released_changed = to_change.iter().any(|(r, _, _)| is_released(r));
    let mut text = format!("Successfully deleted signature for {what}");
    if !unsignable.is_empty() {
        text.push_str(&format!(
            "\n{} still sign it (no key for them here)",
            unsignable.join(", ")
        ));
    }
    Ok(Report::new(
        json!({
            "repository": gun,
            "tag": tag,
            "roles": roles,
            "released_roles_changed": released_changed,
            "roles_not_signable": unsignable,
        }),
        text,
    ))
}

/// One `POST /v2/<gun>/_trust/tuf/` (notary's multipart body: field `files`, the role as
/// the file name), so every changed role is published together or not at all.
pub(super) async fn publish(session: &Session, gun: &str, parts: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    // Metadata files are one line of JSON (no CR or LF anywhere), so a boundary line
    // cannot occur inside a part.
    let boundary = "wharf-trust-update-0d2c9f7e4b1a";
    let mut body = Vec::new();
    for (role, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{role}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let resp = session
        .request(reqwest::Method::POST, &format!("/v2/{gun}/_trust/tuf/"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| session.unreachable(&e))?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        return Err(fail(
            INVALID_RESPONSE,
            format!(
                "the server refused the trust update for {gun} ({status}): {}",
                text.trim()
            ),
        ));
    }
    Ok(())
}
