//! `wharf trust inspect REPO[:TAG]…`: what `docker trust inspect` prints, from the same
//! walk a docker client does (timestamp → the snapshot it names → root, targets and every
//! delegation by checksum, each verified against its parent's keys:
//! `wharf_tuf::verify_repository`), and in docker's JSON layout byte for byte (4-space
//! indentation, fields in docker's order, signers by name descending, tags in natural
//! order). Only reads: a pull token on the repository is enough.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use serde_json::Value;
use wharf_tuf::{Files, TrustedTargets};

use crate::client::report::{INVALID_INPUT, INVALID_RESPONSE, Report, fail};
use crate::client::session::{Session, open};

/// docker's name for what the repository (`targets`) key or `targets/releases` signed.
const REPO_ADMIN: &str = "Repo Admin";
const TARGETS: &str = "targets";
const RELEASES: &str = "targets/releases";
/// Not signed / no trust data, as docker words it.
pub const NO_SIGNATURES: &str = "NO_SIGNATURES";

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TrustRepo {
    name: String,
    signed_tags: Vec<TagRow>,
    signers: Vec<Signer>,
    administrative_keys: Vec<Signer>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TagRow {
    signed_tag: String,
    digest: String,
    signers: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Signer {
    name: String,
    keys: Vec<KeyRef>,
}

#[derive(Serialize)]
struct KeyRef {
    #[serde(rename = "ID")]
    id: String,
}

/// `host[:port]/path[:tag]` → (GUN, registry host, tag).
pub(super) fn parse_reference(reference: &str) -> anyhow::Result<(String, String, Option<String>)> {
    let bad = || {
        fail(
            INVALID_INPUT,
            format!("{reference} is not HOST[:PORT]/REPOSITORY[:TAG]"),
        )
    };
    if reference.contains('@') {
        return Err(fail(
            INVALID_INPUT,
            "cannot display trust info for a digest reference",
        ));
    }
    let slash = reference.find('/').ok_or_else(bad)?;
    let (name, tag) = match reference.rfind(':') {
        Some(i) if i > reference.rfind('/').unwrap_or(0) => {
            (&reference[..i], Some(reference[i + 1..].to_owned()))
        }
        _ => (reference, None),
    };
    if name.len() <= slash + 1 || tag.as_deref() == Some("") {
        return Err(bad());
    }
    Ok((name.to_owned(), reference[..slash].to_owned(), tag))
}

/// `host[:port]/path` naming a repository → (GUN, registry host); a tag is refused with
/// `why_not_a_tag` ("migrate takes a repository").
pub(super) fn parse_repository(reference: &str, why_not_a_tag: &str) -> anyhow::Result<(String, String)> {
    let (gun, host, tag) = parse_reference(reference)?;
    if tag.is_some() {
        return Err(fail(
            INVALID_INPUT,
            format!("{reference}: {why_not_a_tag} (HOST[:PORT]/REPOSITORY), not a tag"),
        ));
    }
    Ok((gun, host))
}

pub async fn run(references: Vec<String>, pretty: bool) -> anyhow::Result<Report> {
    let mut repos = Vec::new();
    for reference in &references {
        repos.push(inspect_one(reference).await?);
    }
    let json = serde_json::to_value(&repos)?;
    let text = if pretty {
        repos.iter().map(pretty_text).collect::<Vec<_>>().join("\n\n")
    } else {
        docker_json(&repos)?
    };
    Ok(Report::new(json, text))
}

/// `docker trust inspect --pretty`: three sections, tables laid out like Go's tabwriter
/// as docker configures it (minimum width 10, padding 3).
fn pretty_text(repo: &TrustRepo) -> String {
    let name = &repo.name;
    let mut out = String::new();
    if repo.signed_tags.is_empty() {
        out.push_str(&format!("\nNo signatures for {name}\n\n"));
    } else {
        out.push_str(&format!("\nSignatures for {name}\n\n"));
        let mut rows = vec![vec![
            "SIGNED TAG".to_owned(),
            "DIGEST".to_owned(),
            "SIGNERS".to_owned(),
        ]];
        for t in &repo.signed_tags {
            // The JSON's "Repo Admin" stands for "no delegation signed"; the table shows
            // that as "(Repo Admin)".
            let mut signers = if t.signers == [REPO_ADMIN] {
                vec![format!("({REPO_ADMIN})")]
            } else {
                t.signers.clone()
            };
            signers.sort();
            rows.push(vec![t.signed_tag.clone(), t.digest.clone(), signers.join(", ")]);
        }
        out.push_str(&tabwrite(&rows));
    }
    if !repo.signers.is_empty() {
        out.push_str(&format!("\nList of signers and their keys for {name}\n\n"));
        let mut signers: Vec<&Signer> = repo.signers.iter().collect();
        signers.sort_by(|a, b| natural_cmp(&a.name, &b.name));
        let mut rows = vec![vec!["SIGNER".to_owned(), "KEYS".to_owned()]];
        for s in signers {
            let mut ids: Vec<&str> = s.keys.iter().map(|k| k.id.as_str()).collect();
            ids.sort();
            let short: Vec<&str> = ids.iter().map(|id| &id[..id.len().min(12)]).collect();
            rows.push(vec![s.name.clone(), short.join(", ")]);
        }
        out.push_str(&tabwrite(&rows));
    }
    out.push_str(&format!("\nAdministrative keys for {name}\n\n"));
    // docker sorts the roles by name descending: targets ("Repository Key") before root.
    for (label, title) in [("Repository", "Repository Key"), ("Root", "Root Key")] {
        if let Some(s) = repo.administrative_keys.iter().find(|s| s.name == label) {
            let ids: Vec<&str> = s.keys.iter().map(|k| k.id.as_str()).collect();
            out.push_str(&format!("  {title}:\t{}\n", ids.join(", ")));
        }
    }
    out
}

/// Go `tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)` over tab-separated cells: every column
/// but the last padded to max(10, widest cell + 3).
fn tabwrite(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns.saturating_sub(1))
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(10)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if let Some(w) = widths.get(c) {
                out.push_str(&" ".repeat(w - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// Go's `json.MarshalIndent(v, "", "    ")` for these plain structures (no string here
/// needs Go's HTML escaping: tags, hex digests, key IDs and role names cannot hold `<>&`).
fn docker_json<T: Serialize>(value: &T) -> anyhow::Result<String> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut ser)?;
    Ok(String::from_utf8(out)?)
}

async fn inspect_one(reference: &str) -> anyhow::Result<TrustRepo> {
    let (gun, registry, tag) = parse_reference(reference)?;
    // The scope docker asks for: the GUN, host included.
    let session = open(Some(registry), None, &[&format!("repository:{gun}:pull")]).await?;
    let no_signatures = || {
        fail(
            NO_SIGNATURES,
            format!("no signatures or cannot access {reference}"),
        )
    };
    let Some(fetched) = fetch_published(&session, &gun).await? else {
        return Err(no_signatures());
    };
    let files = fetched.files;
    let verified = wharf_tuf::verify_repository(&gun, &files, chrono::Utc::now()).map_err(|e| {
        fail(
            NO_SIGNATURES,
            format!("no signatures or cannot access {reference}: {e}"),
        )
    })?;
    // A tag no verified release role lists (unsigned, or signed only in an expired
    // `targets/releases`) is, as docker 28 shows it, the repository with no signed tags —
    // not an error: notary's `ErrNoSuchTarget` is the one failure docker lets through.
    let signed_tags = tag_rows(&verified, tag.as_deref());
    Ok(TrustRepo {
        name: reference.to_owned(),
        signed_tags,
        signers: signers(&verified),
        administrative_keys: administrative_keys(&verified),
    })
}

/// The published trust data of a GUN as a client reads it: the current timestamp, the
/// snapshot it names, every file the snapshot names (by checksum).
pub(super) struct Published {
    pub files: Files,
    /// role → the bytes the snapshot names for it.
    pub roles: std::collections::BTreeMap<String, Vec<u8>>,
}

/// `None`: the repository has no trust data (404 on `timestamp.json`).
pub(super) async fn fetch_published(session: &Session, gun: &str) -> anyhow::Result<Option<Published>> {
    let Some(timestamp) = fetch(session, gun, "timestamp.json").await? else {
        return Ok(None);
    };
    let snapshot_sha = sha256_of(&timestamp, "snapshot")?;
    let snapshot = fetch(session, gun, &format!("snapshot.{snapshot_sha}.json"))
        .await?
        .ok_or_else(|| fail(INVALID_RESPONSE, "the snapshot the timestamp names is missing"))?;
    let mut files = Files::new(timestamp);
    let meta: Value = serde_json::from_slice(&snapshot)
        .map_err(|e| fail(INVALID_RESPONSE, format!("snapshot.json is not JSON: {e}")))?;
    let names: Vec<String> = meta["signed"]["meta"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut roles = std::collections::BTreeMap::new();
    for role in names {
        let sha = sha256_of(&snapshot, &role)?;
        if let Some(bytes) = fetch(session, gun, &format!("{role}.{sha}.json")).await? {
            files.add(&role, bytes.clone());
            roles.insert(role, bytes);
        }
    }
    files.add("snapshot", snapshot);
    Ok(Some(Published { files, roles }))
}

/// `published` verified as a docker client verifies it, or why not (for commands that change
/// trust data, which must not build on data that does not verify).
pub(super) fn verified(gun: &str, published: &Published) -> anyhow::Result<TrustedTargets> {
    wharf_tuf::verify_repository(gun, &published.files, chrono::Utc::now()).map_err(|e| {
        fail(
            INVALID_RESPONSE,
            format!("the trust data of {gun} does not verify: {e}"),
        )
    })
}

/// `GET /v2/<gun>/_trust/tuf/<file>`: the body, `None` on 404.
async fn fetch(session: &Session, gun: &str, file: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let resp = session
        .send(
            reqwest::Method::GET,
            &format!("/v2/{gun}/_trust/tuf/{file}"),
            None,
        )
        .await?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(fail(
            INVALID_RESPONSE,
            format!("reading the trust data of {gun} ({file}): the server answered {status}"),
        ));
    }
    Ok(Some(resp.bytes().await?.to_vec()))
}

/// Hex SHA-256 that a snapshot or timestamp file records for `role`.
fn sha256_of(file: &[u8], role: &str) -> anyhow::Result<String> {
    let v: Value = serde_json::from_slice(file)
        .map_err(|e| fail(INVALID_RESPONSE, format!("trust metadata is not JSON: {e}")))?;
    let b64 = v["signed"]["meta"][role]["hashes"]["sha256"]
        .as_str()
        .ok_or_else(|| {
            fail(
                INVALID_RESPONSE,
                format!("trust metadata has no sha256 for {role}"),
            )
        })?;
    let raw = B64
        .decode(b64)
        .map_err(|_| fail(INVALID_RESPONSE, format!("the sha256 of {role} is not base64")))?;
    Ok(hex::encode(raw))
}

pub(super) fn is_released(role: &str) -> bool {
    role == TARGETS || role == RELEASES
}

/// A role's signer name as docker shows it.
fn signer_name(role: &str) -> String {
    if is_released(role) {
        REPO_ADMIN.to_owned()
    } else {
        role.strip_prefix("targets/").unwrap_or(role).to_owned()
    }
}

/// docker's rows: a (tag, digest) pair counts when `targets` or `targets/releases` lists
/// it; its signers are the other roles listing the same pair (in the client's walk
/// order), or "Repo Admin" when there are none. Sorted by tag in natural order.
fn tag_rows(verified: &TrustedTargets, only: Option<&str>) -> Vec<TagRow> {
    let mut names: Vec<&String> = verified
        .roles
        .iter()
        .flat_map(|r| r.targets.keys())
        .filter(|n| only.is_none_or(|o| o == n.as_str()))
        .collect();
    names.sort();
    names.dedup();
    let mut rows: Vec<TagRow> = Vec::new();
    for name in names {
        let signatures = verified.signatures(name);
        let digest_of =
            |t: &wharf_tuf::TrustedTarget| hex::encode(t.hashes.get("sha256").cloned().unwrap_or_default());
        let mut released: Vec<String> = Vec::new();
        for (role, target) in &signatures {
            let d = digest_of(target);
            if is_released(&role.name) && !released.contains(&d) {
                released.push(d);
            }
        }
        for d in released {
            let mut signers: Vec<String> = signatures
                .iter()
                .filter(|(role, target)| !is_released(&role.name) && digest_of(target) == d)
                .map(|(role, _)| signer_name(&role.name))
                .collect();
            if signers.is_empty() {
                signers.push(REPO_ADMIN.to_owned());
            }
            rows.push(TagRow {
                signed_tag: name.clone(),
                digest: d,
                signers,
            });
        }
    }
    rows.sort_by(|a, b| natural_cmp(&a.signed_tag, &b.signed_tag));
    rows
}

/// Every delegation the verified files declare, except `targets/releases`, with the key
/// IDs as declared; sorted by name, descending (as docker sorts them).
fn signers(verified: &TrustedTargets) -> Vec<Signer> {
    let mut by_name: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for role in &verified.roles {
        for d in &role.delegations {
            if d.name == RELEASES {
                continue;
            }
            by_name.insert(signer_name(&d.name), d.keyids.clone());
        }
    }
    by_name
        .into_iter()
        .rev()
        .map(|(name, ids)| Signer {
            name,
            keys: ids.into_iter().map(|id| KeyRef { id }).collect(),
        })
        .collect()
}

/// Root then Repository, each role's key IDs sorted.
fn administrative_keys(verified: &TrustedTargets) -> Vec<Signer> {
    [("root", "Root"), (TARGETS, "Repository")]
        .into_iter()
        .filter_map(|(role, label)| {
            let mut ids = verified.root.roles.get(role)?.keyids.clone();
            ids.sort();
            Some(Signer {
                name: label.to_owned(),
                keys: ids.into_iter().map(|id| KeyRef { id }).collect(),
            })
        })
        .collect()
}

/// Natural order as docker's `sortorder.NaturalLess`: runs of digits compare as numbers.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (&a[..da], &b[..db]);
                let strip = |n: &[u8]| n.iter().skip_while(|c| **c == b'0').count();
                let ord = strip(na)
                    .cmp(&strip(nb))
                    .then_with(|| na[da - strip(na)..].cmp(&nb[db - strip(nb)..]))
                    .then_with(|| da.cmp(&db));
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_natural_order() {
        assert_eq!(
            parse_reference("localhost:5443/team/app:v1").unwrap(),
            (
                "localhost:5443/team/app".into(),
                "localhost:5443".into(),
                Some("v1".into())
            )
        );
        assert_eq!(
            parse_reference("localhost:5443/team/app").unwrap(),
            ("localhost:5443/team/app".into(), "localhost:5443".into(), None)
        );
        assert_eq!(
            parse_reference("app").unwrap_err().to_string(),
            "app is not HOST[:PORT]/REPOSITORY[:TAG]"
        );
        let mut tags = vec!["v10", "v2", "v1", "latest", "v1.10", "v1.9"];
        tags.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(tags, vec!["latest", "v1", "v1.9", "v1.10", "v2", "v10"]);
    }
}
