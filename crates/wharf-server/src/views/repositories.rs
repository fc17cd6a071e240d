//! Repositories: the searchable list, and one repository with its tags and trust status.

use std::fmt::Write as _;

use wharf_store::{Lock, RepositoryUsage, TagDetail};

use super::html::{Notice, Section, Viewer, button_form, esc, page, short_id, size, table, time, url_part};
use crate::services::trust::overview::{TagSignature, TrustOverview};

pub struct RepositoryList<'a> {
    pub query: &'a str,
    pub names: &'a [String],
    /// Cursor for the next page, when there is one.
    pub next: Option<&'a str>,
    /// Whether this is not the first page (offer a way back).
    pub paged: bool,
}

pub fn list(viewer: &Viewer, l: &RepositoryList, notice: &Option<Notice>) -> String {
    let mut body = format!(
        r#"<form method="get" action="/portal/repositories" role="search" class="card">
<p class="field"><label for="repo-search">Search repositories</label><input id="repo-search" name="q" type="search" value="{}"></p>
<p><button type="submit">Search</button></p></form>"#,
        esc(l.query)
    );
    let rows: Vec<(String, Vec<String>)> = l
        .names
        .iter()
        .map(|n| {
            (
                format!(r#" data-repository="{}""#, esc(n)),
                vec![format!(
                    r#"<a href="/portal/repositories/{}">{}</a>"#,
                    url_part(n, true),
                    esc(n)
                )],
            )
        })
        .collect();
    let empty = if l.query.is_empty() {
        "No repositories you can read yet.".to_owned()
    } else {
        format!("No repository you can read matches “{}”.", l.query)
    };
    body.push_str(&table(
        "Repositories you can read",
        &["Repository"],
        &rows,
        &empty,
    ));
    let q = url_part(l.query, false);
    let mut pager = String::new();
    if l.paged {
        let _ = write!(pager, r#"<a href="/portal/repositories?q={q}">First page</a>"#);
    }
    if let Some(next) = l.next {
        let _ = write!(
            pager,
            r#"<a href="/portal/repositories?q={q}&amp;last={}" rel="next">Next page</a>"#,
            url_part(next, false)
        );
    }
    if !pager.is_empty() {
        let _ = write!(body, r#"<nav class="pager" aria-label="Pages">{pager}</nav>"#);
    }
    page("Repositories", Section::Repositories, Some(viewer), notice, &body)
}

pub struct RepositoryDetail<'a> {
    pub name: &'a str,
    /// `host[:port]` the browser reached the registry by.
    pub host: &'a str,
    pub tags: &'a [TagDetail],
    pub trust: &'a TrustOverview,
    pub trust_enabled: bool,
    /// The viewer may delete images here (delete right on the repository).
    pub may_delete: bool,
    /// Storage usage, for owners only (as in the admin API): "would free" tells which
    /// blobs other repositories share, which a reader of this one need not learn.
    pub usage: Option<&'a RepositoryUsage>,
    /// The repository's locks (its own first); owners may lock and unlock.
    pub locks: &'a [Lock],
}

/// "Locked" and what against, e.g. `Locked: deletion, writes`.
fn lock_badge(lock: &Lock) -> String {
    let what: Vec<&str> = [(lock.no_delete, "deletion"), (lock.no_write, "writes")]
        .into_iter()
        .filter_map(|(set, word)| set.then_some(word))
        .collect();
    format!(
        r#"<span class="locked" title="Locked against {what}">Locked: {what}</span>"#,
        what = what.join(", ")
    )
}

/// An owner's Lock / Unlock button for the repository (`tag` empty) or a tag: Lock sets
/// both attributes, Unlock clears both (the CLI and API change them one by one).
fn lock_toggle(viewer: &Viewer, repository: &str, tag: &str, locked: bool) -> String {
    let (action, label) = if locked {
        ("unlock", "Unlock")
    } else {
        ("lock", "Lock")
    };
    button_form(
        "/portal/lock",
        viewer.csrf,
        &[("repository", repository), ("tag", tag), ("action", action)],
        label,
        false,
    )
}

/// The signature status cell of one tag: signed when `docker pull` with content trust
/// would resolve the tag to its current digest.
fn signed_cell(trust: &TrustOverview, tag: &TagDetail) -> String {
    if trust.problem.is_some() {
        return r#"<span class="signed-invalid">Trust data does not verify</span>"#.to_owned();
    }
    let Some(t) = trust.signed_tags.get(&tag.tag) else {
        return r#"<span class="signed-no">Not signed</span>"#.to_owned();
    };
    let current = |s: &TagSignature| s.digest.as_deref() == Some(tag.digest.as_str());
    let signers: Vec<&str> = t
        .signatures
        .iter()
        .filter(|s| current(s))
        .map(|s| s.signer.as_str())
        .collect();
    match &t.pull {
        Some(pull) if current(pull) => format!(
            r#"<span class="signed-yes">Signed</span> by <span class="signers">{}</span>"#,
            esc(&signers.join(", "))
        ),
        Some(_) => r#"<span class="signed-stale">Signed for another digest (tag moved after signing)</span>"#
            .to_owned(),
        // docker pull only trusts `targets` and `targets/releases`.
        None if !signers.is_empty() => format!(
            r#"<span class="signed-no">Not signed for docker pull</span>: only <span class="signers">{}</span> signed it, and docker pull trusts neither"#,
            esc(&signers.join(", "))
        ),
        None => r#"<span class="signed-no">Not signed</span>"#.to_owned(),
    }
}

pub fn detail(viewer: &Viewer, d: &RepositoryDetail, notice: &Option<Notice>) -> String {
    let rows: Vec<(String, Vec<String>)> = d
        .tags
        .iter()
        .map(|t| {
            let lock = d.locks.iter().find(|l| l.tag.as_deref() == Some(t.tag.as_str()));
            (format!(r#" data-tag="{}""#, esc(&t.tag)), {
                let mut cells = vec![
                    match lock {
                        Some(l) => format!("{} {}", esc(&t.tag), lock_badge(l)),
                        None => esc(&t.tag),
                    },
                    format!(r#"<code class="digest">{}</code>"#, esc(&t.digest)),
                    size(t.size),
                    time(t.pushed_at),
                    signed_cell(d.trust, t),
                ];
                if d.may_delete {
                    cells.push(button_form(
                        "/portal/delete-tag",
                        viewer.csrf,
                        &[("repository", d.name), ("tag", &t.tag)],
                        "Delete tag",
                        true,
                    ));
                }
                if viewer.admin {
                    cells.push(lock_toggle(viewer, d.name, &t.tag, lock.is_some()));
                }
                cells
            })
        })
        .collect();
    let mut body = String::new();
    let _ = write!(
        body,
        r#"<p>Pull with <code id="pull-command">docker pull {}:&lt;tag&gt;</code>. Content trust is {} on this registry.</p>"#,
        esc(&format!("{}/{}", d.host, d.name)),
        if d.trust_enabled { "enabled" } else { "disabled" }
    );
    if let Some(u) = d.usage {
        let _ = write!(
            body,
            r#"<p id="repository-usage">Size <strong id="usage-size">{}</strong> in {} manifests and {} blobs; deleting it would free <strong id="usage-would-free">{}</strong> (blobs other repositories also link stay).</p>"#,
            size(u.linked_bytes),
            u.manifests,
            u.blobs,
            size(u.exclusive_bytes)
        );
    }
    let repository_lock = d.locks.iter().find(|l| l.tag.is_none());
    if repository_lock.is_some() || viewer.admin {
        let _ = write!(
            body,
            r#"<p id="repository-lock">{} {}</p>"#,
            repository_lock.map_or_else(|| "Not locked.".to_owned(), lock_badge),
            if viewer.admin {
                lock_toggle(viewer, d.name, "", repository_lock.is_some())
            } else {
                String::new()
            }
        );
    }
    body.push_str("<section><h2>Tags</h2>");
    let mut headers = vec!["Tag", "Digest", "Size", "Pushed", "Signature"];
    if d.may_delete {
        headers.push("");
    }
    if viewer.admin {
        headers.push("Lock");
    }
    body.push_str(&table(
        "Tags, their digests and signatures",
        &headers,
        &rows,
        "This repository has no tags.",
    ));
    if d.may_delete {
        let _ = write!(
            body,
            r#"<p><a href="/portal/delete-repository?repository={}" id="delete-repository">Delete this repository…</a></p>"#,
            super::html::url_part(d.name, false)
        );
    }
    body.push_str("</section><section><h2>Signers</h2>");
    if !d.trust.initialized {
        body.push_str(r#"<p class="empty" id="no-trust-data">This repository has no trust data.</p>"#);
    } else if let Some(problem) = &d.trust.problem {
        // What docker and notary clients meet too: every signed pull of this repository
        // fails until the data is republished or reset.
        let _ = write!(
            body,
            r#"<p class="signed-invalid" id="trust-problem">{}</p>"#,
            esc(problem)
        );
    } else {
        let signer_rows: Vec<(String, Vec<String>)> = d
            .trust
            .signers
            .iter()
            .map(|s| {
                (
                    format!(r#" data-signer="{}""#, esc(&s.name)),
                    vec![
                        esc(&s.name),
                        s.key_ids
                            .iter()
                            .map(|k| short_id(k))
                            .collect::<Vec<_>>()
                            .join(" "),
                        s.threshold.to_string(),
                        match &s.ignored {
                            Some(why) => format!(
                                r#"<span class="signed-stale">Ignored by clients: {}</span>"#,
                                esc(why)
                            ),
                            None => "Trusted".to_owned(),
                        },
                    ],
                )
            })
            .collect();
        body.push_str(&table(
            "Signers (delegations) and their keys",
            &["Signer", "Keys", "Threshold", "Signatures"],
            &signer_rows,
            "No signers besides the repository key.",
        ));
        let ids = |v: &[String]| {
            v.iter()
                .map(|k| format!("<code>{}</code>", esc(k)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = write!(
            body,
            r#"<h2>Administrative keys</h2><dl><dt>Repository key</dt><dd id="repository-key">{}</dd><dt>Root key</dt><dd id="root-key">{}</dd></dl>"#,
            ids(&d.trust.repository_key_ids),
            ids(&d.trust.root_key_ids)
        );
    }
    body.push_str("</section>");
    if viewer.admin && d.trust.initialized {
        body.push_str(&super::policies::reset_link(d.name));
    }
    page(d.name, Section::Repositories, Some(viewer), notice, &body)
}

/// The step before a repository's images are gone.
pub fn confirm_delete(viewer: &Viewer, repository: &str, notice: &Option<Notice>) -> String {
    let inner = format!(
        r#"<input type="hidden" name="repository" value="{repo}">
<p><label><input type="checkbox" name="confirm" value="delete-repository" id="confirm-delete-repository"> I understand that every tag and manifest of {repo} will be deleted</label></p>
<p><button type="submit" class="danger" id="delete-repository-submit">Delete {repo}</button> <a href="/portal/repositories/{href}">Cancel</a></p>"#,
        repo = esc(repository),
        href = super::html::url_part(repository, true),
    );
    let body = format!(
        r#"<div class="warning" role="alert"><p><strong>Deleting {repo} removes every tag and manifest in it; pulls of it fail from then on.</strong> Its trust data is kept until it is reset; the layers' bytes are freed by garbage collection.</p></div>{}"#,
        super::html::form("/portal/delete-repository", viewer.csrf, "card", &inner),
        repo = esc(repository),
    );
    page(
        "Delete repository?",
        Section::Repositories,
        Some(viewer),
        notice,
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::trust::overview::TagTrust;

    fn tag(digest: &str) -> TagDetail {
        TagDetail {
            tag: "v1".into(),
            digest: digest.into(),
            media_type: String::new(),
            pushed_at: 0,
            size: 0,
        }
    }

    fn sig(signer: &str, digest: &str) -> TagSignature {
        TagSignature {
            signer: signer.into(),
            digest: Some(digest.into()),
        }
    }

    fn with(pull: Option<TagSignature>, signatures: Vec<TagSignature>) -> TrustOverview {
        TrustOverview {
            initialized: true,
            signed_tags: [("v1".to_owned(), TagTrust { pull, signatures })].into(),
            ..Default::default()
        }
    }

    #[test]
    fn signature_cell_follows_what_docker_pull_resolves() {
        let t = tag("sha256:aa");
        let signed = with(
            Some(sig("releases", "sha256:aa")),
            vec![
                sig("Repo Admin", "sha256:bb"),
                sig("alice", "sha256:aa"),
                sig("releases", "sha256:aa"),
            ],
        );
        assert_eq!(
            signed_cell(&signed, &t),
            r#"<span class="signed-yes">Signed</span> by <span class="signers">alice, releases</span>"#
        );
        let moved = with(
            Some(sig("Repo Admin", "sha256:bb")),
            vec![sig("Repo Admin", "sha256:bb")],
        );
        assert!(signed_cell(&moved, &t).contains("Signed for another digest"));
        let own_role_only = with(None, vec![sig("alice", "sha256:aa")]);
        assert!(
            signed_cell(&own_role_only, &t)
                .starts_with(r#"<span class="signed-no">Not signed for docker pull</span>: only <span class="signers">alice</span>"#)
        );
        assert!(signed_cell(&TrustOverview::default(), &t).contains("Not signed"));
        let broken = TrustOverview {
            problem: Some("Trust data does not verify: targets: targets expired at …".into()),
            ..signed
        };
        assert_eq!(
            signed_cell(&broken, &t),
            r#"<span class="signed-invalid">Trust data does not verify</span>"#
        );
    }
}
