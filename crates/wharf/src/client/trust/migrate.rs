//! `wharf trust migrate HOST/REPO… --to cosign|notation`: the way off Docker Content Trust.
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

use super::inspect::{fetch_published, is_released, parse_repository};
use super::registry::{self, ImageRef};
use super::{SignTarget, Signer, cosign, notation};
use crate::client::report::{INVALID_RESPONSE, Report, fail};
use crate::client::session::{self, Session};

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

/// `wharf trust migrate`; the signer is opened (passphrase checked) before anything else.
pub async fn run(
    repositories: &[String],
    signer: Signer,
    dry_run: bool,
    ca_file: Option<std::path::PathBuf>,
) -> anyhow::Result<Report> {
    let mut documents = Vec::new();
    let mut lines = Vec::new();
    for reference in repositories {
        let (gun, host) = parse_repository(reference, "migrate takes a repository")?;
        let repository = gun[host.len() + 1..].to_owned();
        let scopes = [
            format!("repository:{gun}:pull"),
            format!("repository:{repository}:pull,push"),
        ];
        let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let s = session::open(Some(host.clone()), ca_file.clone(), &scopes).await?;
        let outcomes = migrate_one(&s, &gun, &host, &repository, &signer, dry_run).await?;
        lines.push(text_of(&gun, &outcomes, dry_run));
        documents.push(json_of(&gun, &outcomes));
    }
    let format = match signer {
        Signer::Cosign(_) => "cosign",
        Signer::Notation(_) => "notation",
    };
    Ok(Report::new(
        json!({"to": format, "dry_run": dry_run, "repositories": documents}),
        lines.join("\n"),
    ))
}

async fn migrate_one(
    s: &Session,
    gun: &str,
    host: &str,
    repository: &str,
    signer: &Signer,
    dry_run: bool,
) -> anyhow::Result<Vec<(String, Outcome)>> {
    let tags = tags_of(s, repository).await?;
    let Some(published) = fetch_published(s, gun).await? else {
        return Ok(skip_all(&tags, "no Docker Content Trust data"));
    };
    let verified = match wharf_tuf::verify_repository(gun, &published.files, chrono::Utc::now()) {
        Ok(v) => v,
        Err(e) => return Ok(skip_all(&tags, &format!("the trust data does not verify: {e}"))),
    };
    let mut names: BTreeSet<String> = tags.into_iter().collect();
    names.extend(verified.roles.iter().flat_map(|r| r.targets.keys().cloned()));
    let mut outcomes = Vec::new();
    for tag in names {
        let outcome = match signed_digest(&verified, &tag) {
            Err(why) => Outcome::Skipped(why),
            Ok((digest, size)) => sign_one(s, host, repository, &tag, digest, size, signer, dry_run).await?,
        };
        outcomes.push((tag, outcome));
    }
    Ok(outcomes)
}

/// The digest and size `docker pull` with content trust resolves `tag` to, or why none.
fn signed_digest(verified: &TrustedTargets, tag: &str) -> Result<(String, u64), String> {
    let released: Vec<_> = verified
        .signatures(tag)
        .into_iter()
        .filter(|(role, _)| is_released(&role.name))
        .collect();
    let Some((_, target)) = released.first() else {
        let ignored: Vec<String> = verified
            .ignored
            .iter()
            .map(|i| format!("{} ({})", i.role, i.reason))
            .collect();
        return Err(if ignored.is_empty() {
            "unsigned: no verified role lists it".to_owned()
        } else {
            format!(
                "unsigned: no verified role lists it (roles that count for nothing: {})",
                ignored.join(", ")
            )
        });
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

fn skip_all(tags: &[String], why: &str) -> Vec<(String, Outcome)> {
    tags.iter()
        .map(|t| (t.clone(), Outcome::Skipped(why.to_owned())))
        .collect()
}

/// The repository's tags (`GET /v2/<name>/tags/list`, every page).
async fn tags_of(s: &Session, repository: &str) -> anyhow::Result<Vec<String>> {
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
