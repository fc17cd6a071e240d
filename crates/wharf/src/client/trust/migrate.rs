//! `wharf trust migrate HOST/REPO… --to cosign|notation`: the way off Docker Content Trust.
//! `HOST/PREFIX/*` stands for every repository under `PREFIX/` the catalog shows the caller
//! (`HOST/*`: all of them); one the caller may not push to is reported as refused, the
//! others are migrated, and the command then fails (`DENIED`).
//!
//! For each repository the published trust data is fetched and verified here, as a DCT
//! client without a cache would (`wharf_tuf::verify_repository`); every tag that verifies
//! — listed by `targets` or `targets/releases`, what `docker pull` trusts — gets a cosign
//! or Notation signature of the very digest DCT signed. Everything else is skipped with the
//! reason: no trust data, trust data that does not verify (an expired or badly signed
//! role), a tag no verified role signs, a signed digest no longer in the registry. The
//! signers add nothing where the key already signed that digest, so a second run is a
//! no-op; `--dry-run` lists what a run would sign and signs nothing.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use wharf_tuf::TrustedTargets;

use super::inspect::{Published, fetch_published, is_released, parse_repository};
use super::registry::{self, ImageRef};
use super::{SignTarget, Signer, cosign, notation};
use crate::client::report::{INVALID_INPUT, INVALID_RESPONSE, Report, fail};
use crate::client::repository::all_pages;
use crate::client::session::{self, Session};

/// The caller may not push to a repository (the registry's own code for a refusal).
const DENIED: &str = "DENIED";
/// A `HOST/PREFIX/*` that matches no repository the caller may see.
const NAME_UNKNOWN: &str = "NAME_UNKNOWN";

/// One tag's outcome.
enum Outcome {
    /// Signed now (`added`), or already carried this key's signature.
    Signed {
        digest: String,
        added: bool,
    },
    WouldSign {
        digest: String,
    },
    Skipped(String),
}

/// Catalog page size when expanding `HOST/PREFIX/*`.
const CATALOG_PAGE: u32 = 1000;

/// One repository to migrate: its trust GUN, registry host and name in the registry.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Repository {
    gun: String,
    host: String,
    name: String,
}

/// `wharf trust migrate`; the signer is opened (passphrase checked) before anything else.
/// Every argument is expanded first (`HOST/PREFIX/*` through the catalog), so a pattern
/// that matches nothing or a malformed name is refused before the first signature.
pub async fn run(
    references: &[String],
    signer: Signer,
    dry_run: bool,
    ca_file: Option<std::path::PathBuf>,
) -> anyhow::Result<Report> {
    let mut repositories: Vec<Repository> = Vec::new();
    for reference in references {
        for r in expand(reference, ca_file.clone()).await? {
            if !repositories.contains(&r) {
                repositories.push(r);
            }
        }
    }
    let mut documents = Vec::new();
    let mut lines = Vec::new();
    let mut refused = Vec::new();
    for Repository { gun, host, name } in &repositories {
        let scopes = [
            format!("repository:{gun}:pull"),
            format!("repository:{name}:pull,push"),
        ];
        let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let s = session::open(Some(host.clone()), ca_file.clone(), &scopes).await?;
        // The token service leaves out what the login may not do: without push nothing
        // could be stored, so the repository is reported as refused and the others go on.
        if !s.granted(name).iter().any(|a| a == "push" || a == "*") {
            let why = format!("your login may not push to {name}, and storing a signature needs push");
            lines.push(format!("{gun}: refused: {why}; nothing was signed"));
            documents.push(json!({"repository": gun, "refused": why}));
            refused.push(gun.clone());
            continue;
        }
        let outcomes = migrate_one(&s, gun, host, name, &signer, dry_run).await?;
        lines.push(text_of(gun, &outcomes, dry_run));
        documents.push(json_of(gun, &outcomes));
    }
    let format = match signer {
        Signer::Cosign(_) => "cosign",
        Signer::Notation(_) => "notation",
    };
    let report = Report::new(
        json!({"to": format, "dry_run": dry_run, "repositories": documents}),
        lines.join("\n"),
    );
    if refused.is_empty() {
        return Ok(report);
    }
    let message = if refused.len() == repositories.len() {
        format!(
            "refused for {}: your login may not push there, and storing a signature needs push; nothing was signed",
            refused.join(", ")
        )
    } else {
        format!(
            "refused for {} of {} repositories ({}): signing needs push; the others were migrated",
            refused.len(),
            repositories.len(),
            refused.join(", ")
        )
    };
    Ok(report.with_refusal(DENIED, message))
}

/// `HOST/REPOSITORY` as itself; `HOST/PREFIX/*` as every repository under `PREFIX/`, and
/// `HOST/*` as every repository, that the catalog shows the caller (every page).
async fn expand(reference: &str, ca_file: Option<std::path::PathBuf>) -> anyhow::Result<Vec<Repository>> {
    let Some(pattern) = reference.strip_suffix("/*") else {
        if reference.contains('*') {
            return Err(wildcard_misplaced(reference));
        }
        let (gun, host) = parse_repository(reference, "migrate takes a repository")?;
        let name = gun[host.len() + 1..].to_owned();
        return Ok(vec![Repository { gun, host, name }]);
    };
    if pattern.contains('*') {
        return Err(wildcard_misplaced(reference));
    }
    let (host, prefix) = match pattern.split_once('/') {
        Some((host, prefix)) => (host, Some(prefix)),
        None => (pattern, None),
    };
    if host.is_empty() || prefix.is_some_and(|p| p.is_empty() || p.ends_with('/')) {
        return Err(fail(
            INVALID_INPUT,
            format!("{reference} is not HOST[:PORT]/PREFIX/* or HOST[:PORT]/*"),
        ));
    }
    let s = session::open(Some(host.to_owned()), ca_file, &["registry:catalog:*"]).await?;
    let names = all_pages(
        &s,
        "/v2/_catalog",
        CATALOG_PAGE,
        "repositories",
        "listing repositories needs a login that may pull from at least one",
    )
    .await?;
    let under = prefix.map(|p| format!("{p}/"));
    let found: Vec<Repository> = names
        .into_iter()
        .filter(|n| under.as_deref().is_none_or(|u| n.starts_with(u)))
        .map(|name| Repository {
            gun: format!("{host}/{name}"),
            host: host.to_owned(),
            name,
        })
        .collect();
    if found.is_empty() {
        return Err(fail(
            NAME_UNKNOWN,
            format!("no repository you may pull from matches {reference}; nothing was signed"),
        ));
    }
    Ok(found)
}

fn wildcard_misplaced(reference: &str) -> anyhow::Error {
    fail(
        INVALID_INPUT,
        format!(
            "{reference}: `*` only stands for every repository under a prefix, as the last component (HOST[:PORT]/PREFIX/* or HOST[:PORT]/*)"
        ),
    )
}

async fn migrate_one(
    s: &Session,
    gun: &str,
    host: &str,
    repository: &str,
    signer: &Signer,
    dry_run: bool,
) -> anyhow::Result<Vec<(String, Outcome)>> {
    // cosign's own artifact tags are not images: listing them as "unsigned" after every
    // run would be noise (one a DCT role does list still comes back through `names`).
    let tags: Vec<String> = tags_of(s, repository)
        .await?
        .into_iter()
        .filter(|t| !is_cosign_artifact_tag(t))
        .collect();
    let Some(published) = fetch_published(s, gun).await? else {
        return Ok(skip_all(&tags, "no Docker Content Trust data"));
    };
    let verified = match wharf_tuf::verify_repository(gun, &published.files, chrono::Utc::now()) {
        Ok(v) => v,
        Err(e) => return Ok(skip_all(&tags, &format!("the trust data does not verify: {e}"))),
    };
    let ignored = ignored_releases(&published, &verified);
    let mut names: BTreeSet<String> = tags.into_iter().collect();
    names.extend(verified.roles.iter().flat_map(|r| r.targets.keys().cloned()));
    names.extend(ignored.iter().flat_map(|i| i.tags.iter().cloned()));
    let mut outcomes = Vec::new();
    for tag in names {
        let outcome = match signed_digest(&verified, &ignored, &tag) {
            Err(why) => Outcome::Skipped(why),
            Ok((digest, size)) => sign_one(s, host, repository, &tag, digest, size, signer, dry_run).await?,
        };
        outcomes.push((tag, outcome));
    }
    Ok(outcomes)
}

/// A `targets/releases` the client ignores (expired, or too few valid signatures) and the
/// tags its file lists. Those names are read from the file without trusting it: they only
/// explain why such a tag is skipped.
struct IgnoredReleases {
    role: String,
    reason: String,
    tags: BTreeSet<String>,
}

fn ignored_releases(published: &Published, verified: &TrustedTargets) -> Vec<IgnoredReleases> {
    verified
        .ignored
        .iter()
        .filter(|i| is_released(&i.role))
        .map(|i| IgnoredReleases {
            role: i.role.clone(),
            reason: i.reason.to_string(),
            tags: published
                .roles
                .get(&i.role)
                .and_then(|bytes| serde_json::from_slice::<Value>(bytes).ok())
                .and_then(|file| {
                    file["signed"]["targets"]
                        .as_object()
                        .map(|t| t.keys().cloned().collect())
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// The digest and size `docker pull` with content trust resolves `tag` to, or why none.
fn signed_digest(
    verified: &TrustedTargets,
    ignored: &[IgnoredReleases],
    tag: &str,
) -> Result<(String, u64), String> {
    let released: Vec<_> = verified
        .signatures(tag)
        .into_iter()
        .filter(|(role, _)| is_released(&role.name))
        .collect();
    let Some((_, target)) = released.first() else {
        let in_ignored: Vec<String> = ignored
            .iter()
            .filter(|i| i.tags.contains(tag))
            .map(|i| format!("{}, which a DCT client ignores: {}", i.role, i.reason))
            .collect();
        if !in_ignored.is_empty() {
            return Err(format!("signed in {}", in_ignored.join("; and in ")));
        }
        // Other ignored roles are not named: a tag they list would still not be trusted,
        // since only `targets` and `targets/releases` count for `docker pull`.
        return Err("unsigned: no verified role lists it".to_owned());
    };
    let digest = target
        .digest()
        .ok_or_else(|| "its DCT target has no sha256 hash".to_owned())?;
    Ok((digest, u64::try_from(target.length).unwrap_or(0)))
}

#[allow(clippy::too_many_arguments)]
async fn sign_one(
    s: &Session,
    host: &str,
    repository: &str,
    tag: &str,
    digest: String,
    size: u64,
    signer: &Signer,
    dry_run: bool,
) -> anyhow::Result<Outcome> {
    let Some(manifest) = registry::manifest(s, repository, &digest).await? else {
        return Ok(Outcome::Skipped(format!(
            "its signed digest {digest} is not in the registry"
        )));
    };
    if manifest.bytes.len() as u64 != size {
        return Ok(Outcome::Skipped(format!(
            "its signed digest {digest} has {} bytes in the registry, the trust data says {size}",
            manifest.bytes.len()
        )));
    }
    if dry_run {
        return Ok(Outcome::WouldSign { digest });
    }
    let image = ImageRef {
        registry: Some(host.to_owned()),
        repository: repository.to_owned(),
        reference: tag.to_owned(),
        by_digest: false,
    };
    let target = SignTarget {
        identity: cosign::identity(&image, host),
        image: &image,
        digest: digest.clone(),
        media_type: manifest.media_type,
        size,
    };
    let added = match signer {
        Signer::Cosign(k) => cosign::sign(s, k, &target).await?,
        Signer::Notation(k) => notation::sign(s, k, &target).await?.0,
    };
    Ok(Outcome::Signed { digest, added })
}

/// `sha256-<64 hex>.sig|.att|.sbom`: where cosign keeps signatures, attestations and SBOMs.
fn is_cosign_artifact_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let Some((hex, kind)) = rest.split_once('.') else {
        return false;
    };
    hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && matches!(kind, "sig" | "att" | "sbom")
}

fn skip_all(tags: &[String], why: &str) -> Vec<(String, Outcome)> {
    tags.iter()
        .map(|t| (t.clone(), Outcome::Skipped(why.to_owned())))
        .collect()
}

/// The repository's tags (`GET /v2/<name>/tags/list`, every page).
pub(super) async fn tags_of(s: &Session, repository: &str) -> anyhow::Result<Vec<String>> {
    let mut tags = Vec::new();
    let mut path = format!("/v2/{repository}/tags/list?n=1000");
    loop {
        let resp = s
            .request(Method::GET, &path)
            .send()
            .await
            .map_err(|e| s.unreachable(&e))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(tags);
        }
        if !resp.status().is_success() {
            return Err(fail(
                INVALID_RESPONSE,
                format!(
                    "listing the tags of {repository}: the registry answered {}",
                    resp.status()
                ),
            ));
        }
        let next = resp
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.split_once('<')?.1.split_once('>').map(|(p, _)| p.to_owned()));
        let page: Value = resp.json().await.map_err(|e| s.unreachable(&e))?;
        tags.extend(
            page["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_owned)),
        );
        match next {
            Some(p) => path = p,
            None => return Ok(tags),
        }
    }
}

fn json_of(gun: &str, outcomes: &[(String, Outcome)]) -> Value {
    let mut signed = Vec::new();
    let mut skipped = Vec::new();
    for (tag, outcome) in outcomes {
        match outcome {
            Outcome::Signed { digest, added } => {
                signed.push(json!({"tag": tag, "digest": digest, "added": added}));
            }
            Outcome::WouldSign { digest } => {
                signed.push(json!({"tag": tag, "digest": digest, "added": false}));
            }
            Outcome::Skipped(reason) => skipped.push(json!({"tag": tag, "reason": reason})),
        }
    }
    json!({"repository": gun, "signed": signed, "skipped": skipped})
}

fn text_of(gun: &str, outcomes: &[(String, Outcome)], dry_run: bool) -> String {
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|(_, o)| f(o)).count();
    let added = count(|o| matches!(o, Outcome::Signed { added: true, .. }));
    let already = count(|o| matches!(o, Outcome::Signed { added: false, .. }));
    let would = count(|o| matches!(o, Outcome::WouldSign { .. }));
    let skipped = count(|o| matches!(o, Outcome::Skipped(_)));
    let mut out = if dry_run {
        format!("{gun}: dry run: would sign {would} tags, skip {skipped}; nothing was signed")
    } else {
        format!("{gun}: signed {added} tags, {already} already signed with this key, skipped {skipped}")
    };
    for (tag, outcome) in outcomes {
        let line = match outcome {
            Outcome::Signed { digest, added: true } => format!("  signed   {tag} ({digest})"),
            Outcome::Signed { digest, added: false } => format!("  already  {tag} ({digest})"),
            Outcome::WouldSign { digest } => format!("  would    {tag} ({digest})"),
            Outcome::Skipped(reason) => format!("  skipped  {tag}: {reason}"),
        };
        out.push('\n');
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::is_cosign_artifact_tag;

    #[test]
    fn cosign_artifact_tags_are_told_from_image_tags() {
        let hex = "dde9f7f71a9b399021ab1f05c6443589d02aec18eb21d748a4aa9b0f986a75a0";
        for kind in ["sig", "att", "sbom"] {
            assert!(is_cosign_artifact_tag(&format!("sha256-{hex}.{kind}")), "{kind}");
        }
        for tag in [
            "v1".to_owned(),
            format!("sha256-{hex}"),
            format!("sha256-{hex}.tar"),
            format!("sha256-{}.sig", &hex[1..]),
            format!("sha256-{}.sig", hex.to_uppercase()),
        ] {
            assert!(!is_cosign_artifact_tag(&tag), "{tag}");
        }
    }
}
