//! `wharf repository list|show-tags|untag|delete`: the registry API (`/v2/`) with a token
//! for just the scope each command needs, obtained with the stored login. Rights are the
//! caller's own (pull to list tags, delete to untag or delete), not the Owner role.
//! `usage`, `lock|unlock|locks` and deleting a whole repository are the owner's admin API.

use reqwest::Method;
use serde_json::{Value, json};

use super::prompt::confirmed;
use super::report::{
    INVALID_INPUT, INVALID_RESPONSE, Report, fail, human_bytes, read_answer, server_error, table,
};
use super::session::{Session, open, selected_registry};
use crate::cli::{AdminArgs, LockAttributes, Output, RepositoryCommand};

/// Whether `s` can go into a URL path as it is. Names, tags and digests of the
/// distribution spec only use these; anything else (`?`, `#`, `%`, spaces) would change
/// the request's meaning, so it is refused here and the registry judges the rest.
fn path_safe(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:+=".contains(c))
}

fn bad_reference(message: String) -> anyhow::Error {
    fail(INVALID_INPUT, message)
}

/// `REPO:TAG`, e.g. `team/app:v1` (a registry host in front is allowed, see [`local`]).
fn split_tag(reference: &str) -> anyhow::Result<(&str, &str)> {
    if reference.contains('@') {
        return Err(bad_reference(format!(
            "untag takes REPO:TAG, not a digest ({reference}); to delete a manifest with all its tags use `wharf repository delete REPO@DIGEST`"
        )));
    }
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !repo.is_empty() && !tag.contains('/') && path_safe(repo) && path_safe(tag) => {
            Ok((repo, tag))
        }
        _ => Err(bad_reference(format!(
            "expected REPO:TAG, e.g. team/app:v1, not {reference:?}"
        ))),
    }
}

/// `REPO@DIGEST`, e.g. `team/app@sha256:…`.
fn split_digest(reference: &str) -> anyhow::Result<(&str, &str)> {
    match reference.split_once('@') {
        Some((repo, digest)) if path_safe(repo) && digest.contains(':') && path_safe(digest) => {
            Ok((repo, digest))
        }
        _ => Err(bad_reference(format!(
            "expected REPO@DIGEST, e.g. team/app@sha256:<hex>, not {reference:?}; to remove one tag use `wharf repository untag REPO:TAG`"
        ))),
    }
}

/// What `repository delete` removes: one manifest and its tags (`REPO@DIGEST`), or with
/// a bare name the whole repository (an owner's admin API call).
enum DeleteTarget<'a> {
    Manifest(&'a str, &'a str),
    Repository(&'a str),
}

fn delete_target(reference: &str) -> anyhow::Result<DeleteTarget<'_>> {
    if reference.contains('@') {
        let (repo, digest) = split_digest(reference)?;
        return Ok(DeleteTarget::Manifest(repo, digest));
    }
    // A colon after the last slash is a tag (one before it is a registry's port).
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') || reference.is_empty() || !path_safe(reference) {
        return Err(bad_reference(format!(
            "expected REPO@DIGEST (one manifest and its tags) or REPO (the whole repository), not {reference:?}; to remove one tag use `wharf repository untag REPO:TAG`"
        )));
    }
    Ok(DeleteTarget::Repository(reference))
}

/// The repository name without the registry host, so that the name docker uses
/// (`localhost:5000/team/app`) works as well as `team/app`.
fn local<'a>(registry: &str, repository: &'a str) -> &'a str {
    repository
        .strip_prefix(registry)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|r| !r.is_empty())
        .unwrap_or(repository)
}

/// The answer of a registry request as JSON (`Null` for an empty body), or its error
/// with the registry's code and message; `needs` says what a refused token lacked.
async fn answer(resp: reqwest::Response, needs: &str) -> anyhow::Result<Value> {
    let (status, v) = read_answer(resp).await;
    if status.is_success() {
        return Ok(v);
    }
    let Some((code, message)) = server_error(&v) else {
        return Err(fail(
            INVALID_RESPONSE,
            format!("the registry answered {status} without an error message"),
        ));
    };
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(fail(&code, format!("not authorised: {message}; {needs}")));
    }
    Err(fail(
        &code,
        format!("the registry answered {status}: {code}: {message}"),
    ))
}

/// The `rel="next"` target of a `Link` header, as a path on this registry. A link to
/// anywhere else is not followed: the session's token must not leave the registry.
fn next_page(session: &Session, headers: &reqwest::header::HeaderMap) -> anyhow::Result<Option<String>> {
    let Some(link) = headers.get(reqwest::header::LINK) else {
        return Ok(None);
    };
    let link = link.to_str().unwrap_or_default();
    let next = link.split(',').find_map(|l| {
        let (target, params) = l.trim().strip_prefix('<')?.split_once('>')?;
        params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"))
            .then_some(target)
    });
    let Some(target) = next else {
        return Ok(None);
    };
    let own = format!("https://{}", session.registry());
    let path = target.strip_prefix(&own).unwrap_or(target);
    if !path.starts_with('/') {
        return Err(fail(
            INVALID_RESPONSE,
            format!("the registry's next page is not on {own}: {target}"),
        ));
    }
    Ok(Some(path.to_owned()))
}

/// Every entry of the list `field` over all pages of `path` (`n`/`last` paging through
/// the `Link` header).
pub(crate) async fn all_pages(
    session: &Session,
    path: &str,
    page_size: u32,
    field: &str,
    needs: &str,
) -> anyhow::Result<Vec<String>> {
    let mut items: Vec<String> = Vec::new();
    let mut url = format!("{path}?n={page_size}");
    loop {
        let resp = session.send(Method::GET, &url, None).await?;
        let next = next_page(session, resp.headers())?;
        let v = answer(resp, needs).await?;
        let page: Vec<String> = v[field]
            .as_array()
            .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_owned)).collect())
            .ok_or_else(|| {
                fail(
                    INVALID_RESPONSE,
                    format!("the registry's answer has no {field} list"),
                )
            })?;
        // A next link after an empty page would be followed forever.
        if page.is_empty() && next.is_some() {
            return Err(fail(
                INVALID_RESPONSE,
                format!("the registry sent an empty page of {field} with a link to another"),
            ));
        }
        items.extend(page);
        match next {
            Some(n) => url = n,
            None => return Ok(items),
        }
    }
}

fn column(items: &[String], header: &str) -> String {
    let rows: Vec<Value> = items.iter().map(|i| json!(i)).collect();
    table(&rows, &[(header, &|v| v.as_str().unwrap_or_default().to_owned())])
}

pub async fn run(a: AdminArgs<RepositoryCommand>, output: Output) -> anyhow::Result<Report> {
    let registry = selected_registry(a.registry.clone())?;
    // Each command asks for the one scope it needs.
    let session = |scope: String| {
        let (registry, ca) = (registry.clone(), a.server.ca_file.clone());
        async move { open(Some(registry), ca, &[scope.as_str()]).await }
    };
    Ok(match &a.command {
        RepositoryCommand::List { paging } => {
            let s = session("registry:catalog:*".to_owned()).await?;
            let repositories = all_pages(
                &s,
                "/v2/_catalog",
                paging.page_size,
                "repositories",
                "listing repositories needs a login that may pull from at least one",
            )
            .await?;
            let text = if repositories.is_empty() {
                "No repositories (none exist, or none you may pull from)".to_owned()
            } else {
                column(&repositories, "REPOSITORY")
            };
            Report::new(json!({ "repositories": repositories }), text)
        }
        RepositoryCommand::ShowTags { repository, paging } => {
            let name = local(&registry, repository);
            if !path_safe(name) {
                return Err(bad_reference(format!(
                    "expected a repository name, e.g. team/app, not {repository:?}"
                )));
            }
            let s = session(format!("repository:{name}:pull")).await?;
            let tags = all_pages(
                &s,
                &format!("/v2/{name}/tags/list"),
                paging.page_size,
                "tags",
                &format!("listing the tags of {name} needs pull on it (e.g. the AcrPull role)"),
            )
            .await?;
            let text = if tags.is_empty() {
                format!("{name} has no tags")
            } else {
                column(&tags, "TAG")
            };
            Report::new(json!({ "name": name, "tags": tags }), text)
        }
        RepositoryCommand::Usage { repository, paging } => {
            let s = session("registry:admin:*".to_owned()).await?;
            let name = repository.as_deref().map(|r| local(&registry, r));
            usage(&s, name, paging.page_size).await?
        }
        RepositoryCommand::Untag { reference } => {
            let (repository, tag) = split_tag(reference)?;
            let name = local(&registry, repository);
            let s = session(format!("repository:{name}:delete")).await?;
            let resp = s
                .send(Method::DELETE, &format!("/v2/{name}/manifests/{tag}"), None)
                .await?;
            answer(resp, &delete_needs(name)).await?;
            Report::new(
                json!({ "repository": name, "tag": tag, "deleted": true }),
                format!("Removed tag {tag} from {name} (its manifest stays, pullable by digest)"),
            )
        }
        RepositoryCommand::Delete { reference, yes } => match delete_target(reference)? {
            DeleteTarget::Manifest(repository, digest) => {
                let name = local(&registry, repository);
                confirmed(
                    *yes,
                    output,
                    &format!(
                        "WARNING: this deletes manifest {digest} of {name} and every tag that points to it. \
This cannot be undone; pulls by those tags or by the digest fail from then on."
                    ),
                    &format!("Delete {name}@{digest}?"),
                )?;
                let s = session(format!("repository:{name}:delete")).await?;
                let resp = s
                    .send(Method::DELETE, &format!("/v2/{name}/manifests/{digest}"), None)
                    .await?;
                answer(resp, &delete_needs(name)).await?;
                Report::new(
                    json!({ "repository": name, "digest": digest, "deleted": true }),
                    format!("Deleted manifest {digest} and its tags from {name}"),
                )
            }
            DeleteTarget::Repository(repository) => {
                let name = local(&registry, repository);
                confirmed(
                    *yes,
                    output,
                    &format!(
                        "WARNING: this deletes every tag and manifest of {name}. This cannot be undone; \
its trust data stays until reset (`wharf content-trust reset {name}`)."
                    ),
                    &format!("Delete repository {name}?"),
                )?;
                let s = session("registry:admin:*".to_owned()).await?;
                s.call(Method::DELETE, &format!("/api/v1/repositories/{name}"), None)
                    .await?;
                Report::new(
                    json!({ "repository": name, "deleted": true }),
                    format!("Deleted repository {name}"),
                )
            }
        },
        RepositoryCommand::Lock {
            reference,
            attributes,
        }
        | RepositoryCommand::Unlock {
            reference,
            attributes,
        } => {
            let set = matches!(&a.command, RepositoryCommand::Lock { .. });
            let (repository, tag) = lock_target(reference)?;
            let name = local(&registry, repository);
            let s = session("registry:admin:*".to_owned()).await?;
            let v = s
                .call(
                    Method::PUT,
                    &format!("/api/v1/repositories/{name}/locks"),
                    Some(lock_body(tag, attributes, set)),
                )
                .await?;
            let what = match tag {
                Some(t) => format!("{name}:{t}"),
                None => name.to_owned(),
            };
            let text = match locked_against(&v) {
                "nothing" => format!("{what} is not locked"),
                against => format!("{what} is locked against {against}"),
            };
            Report::new(v, text)
        }
        RepositoryCommand::Locks { repository } => {
            let name = local(&registry, repository);
            if !path_safe(name) {
                return Err(bad_reference(format!(
                    "expected a repository name, e.g. team/app, not {repository:?}"
                )));
            }
            let s = session("registry:admin:*".to_owned()).await?;
            let v = s
                .call(Method::GET, &format!("/api/v1/repositories/{name}/locks"), None)
                .await?;
            let locks = v["locks"].as_array().cloned().unwrap_or_default();
            let text = if locks.is_empty() {
                format!("{name} has no locks")
            } else {
                table(
                    &locks,
                    &[
                        ("TARGET", &|l: &Value| match l["tag"].as_str() {
                            Some(t) => format!("{name}:{t}"),
                            None => format!("{name} (repository)"),
                        }),
                        ("LOCKED AGAINST", &|l: &Value| locked_against(l).to_owned()),
                        ("SINCE", &|l: &Value| {
                            l["updated_at"].as_str().unwrap_or_default().to_owned()
                        }),
                    ],
                )
            };
            Report::new(v, text)
        }
    })
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// The usage table: one row per repository, sizes in binary units.
fn usage_table(repositories: &[Value]) -> String {
    table(
        repositories,
        &[
            ("REPOSITORY", &|v| {
                v["repository"].as_str().unwrap_or_default().to_owned()
            }),
            ("SIZE", &|v| human_bytes(n(v, "linked_bytes"))),
            ("WOULD FREE", &|v| human_bytes(n(v, "exclusive_bytes"))),
            ("MANIFESTS", &|v| n(v, "manifests").to_string()),
            ("TAGS", &|v| n(v, "tags").to_string()),
            ("BLOBS", &|v| n(v, "blobs").to_string()),
        ],
    )
}

/// The registry's total, after the table.
fn registry_summary(registry: &Value) -> String {
    let stored = n(registry, "stored_bytes");
    let summed = n(registry, "repositories_bytes");
    let mut text = format!(
        "Registry: {} stored ({} blobs counted once, {} manifests); {} summed over {} repositories, so sharing saves {}",
        human_bytes(stored),
        n(registry, "blobs"),
        n(registry, "manifests"),
        human_bytes(summed),
        n(registry, "repositories"),
        human_bytes(summed.saturating_sub(stored)),
    );
    if n(registry, "unlinked_blobs") > 0 {
        text.push_str(&format!(
            "
{} in {} blobs no repository links, freed by garbage collection (`wharf gc run`)",
            human_bytes(n(registry, "unlinked_bytes")),
            n(registry, "unlinked_blobs")
        ));
    }
    text
}

/// `wharf repository usage [REPO]`: one repository, or every page of them with the
/// registry total (the total as the first page read it).
async fn usage(session: &Session, repository: Option<&str>, page_size: u32) -> anyhow::Result<Report> {
    if let Some(name) = repository {
        if !path_safe(name) {
            return Err(bad_reference(format!(
                "expected a repository name, e.g. team/app, not {name:?}"
            )));
        }
        let v = session
            .call(Method::GET, &format!("/api/v1/repositories/{name}/usage"), None)
            .await?;
        let text = usage_table(std::slice::from_ref(&v));
        return Ok(Report::new(v, text));
    }
    let mut registry = Value::Null;
    let mut repositories: Vec<Value> = Vec::new();
    let mut last: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/usage?n={page_size}");
        if let Some(l) = &last {
            path.push_str(&format!("&last={}", super::http::percent_encode(l)));
        }
        let v = session.call(Method::GET, &path, None).await?;
        if registry.is_null() {
            registry = v["registry"].clone();
        }
        let page = v["repositories"]
            .as_array()
            .ok_or_else(|| fail(INVALID_RESPONSE, "the server's answer has no repositories list"))?;
        repositories.extend(page.iter().cloned());
        match v["next"].as_str() {
            // A next name that does not move on would be followed forever.
            Some(next) if !page.is_empty() && last.as_deref() != Some(next) => last = Some(next.to_owned()),
            Some(_) => {
                return Err(fail(
                    INVALID_RESPONSE,
                    "the server sent a page of usage that does not advance",
                ));
            }
            None => break,
        }
    }
    let text = if repositories.is_empty() {
        format!("No repositories\n{}", registry_summary(&registry))
    } else {
        format!(
            "{}\n\n{}",
            usage_table(&repositories),
            registry_summary(&registry)
        )
    };
    Ok(Report::new(
        json!({ "registry": registry, "repositories": repositories }),
        text,
    ))
}

/// `REPO` or `REPO:TAG` (a colon after the last slash is a tag, one before it a port).
fn lock_target(reference: &str) -> anyhow::Result<(&str, Option<&str>)> {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    let (repository, tag) = if last.contains(':') {
        let (r, t) = split_tag(reference)?;
        (r, Some(t))
    } else {
        (reference, None)
    };
    if reference.contains('@') || !path_safe(repository) {
        return Err(bad_reference(format!(
            "expected REPO or REPO:TAG, e.g. team/app:v1, not {reference:?}"
        )));
    }
    Ok((repository, tag))
}

/// The admin API body for `lock` (`set`) or `unlock`: the attributes named, or both.
fn lock_body(tag: Option<&str>, attributes: &LockAttributes, set: bool) -> Value {
    let both = !attributes.no_delete && !attributes.no_write;
    let mut body = json!({});
    if let Some(t) = tag {
        body["tag"] = json!(t);
    }
    if both || attributes.no_delete {
        body["no_delete"] = json!(set);
    }
    if both || attributes.no_write {
        body["no_write"] = json!(set);
    }
    body
}

/// "deletion and writes", "deletion", "writes" or "nothing".
fn locked_against(v: &Value) -> &'static str {
    match (
        v["no_delete"].as_bool() == Some(true),
        v["no_write"].as_bool() == Some(true),
    ) {
        (true, true) => "deletion and writes",
        (true, false) => "deletion",
        (false, true) => "writes",
        (false, false) => "nothing",
    }
}

fn delete_needs(name: &str) -> String {
    format!("deleting in {name} needs the delete right on it (e.g. the AcrDelete role)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(split_tag("team/app:v1").unwrap(), ("team/app", "v1"));
        assert_eq!(
            split_tag("localhost:5000/team/app:v1").unwrap(),
            ("localhost:5000/team/app", "v1")
        );
        assert!(split_tag("localhost:5000/team/app").is_err());
        assert!(split_tag("team/app").is_err());
        assert!(split_tag("team/app:v1?x=1").is_err());
        assert!(split_tag("team/app@sha256:abc").is_err());
        assert_eq!(
            split_digest("team/app@sha256:abc").unwrap(),
            ("team/app", "sha256:abc")
        );
        assert!(split_digest("team/app:v1").is_err());
        assert!(split_digest("team/app@v1").is_err());
        assert!(split_digest("@sha256:abc").is_err());
        assert_eq!(local("localhost:5000", "localhost:5000/team/app"), "team/app");
        assert_eq!(local("localhost:5000", "team/app"), "team/app");
        assert_eq!(local("localhost:5000", "localhost:5000/"), "localhost:5000/");
    }
}
