//! Policies → Content trust and anonymous pull, and the confirmations for destructive
//! trust changes.

use super::html::{Notice, Section, Viewer, button_form, esc, form, input, page, table};

/// What disabling costs, said plainly (the same facts the CLI and API state).
pub const DISABLE_CONSEQUENCES: &str = "Disabling content trust permanently deletes ALL trust data of EVERY \
repository: signatures, signers and the keys the registry holds. This cannot be undone. Images and tags are \
kept. Publishers will have to sign again after content trust is enabled again.";

pub fn content_trust(
    viewer: &Viewer,
    enabled: bool,
    anonymous: &[String],
    notice: &Option<Notice>,
) -> String {
    let state = if enabled { "Enabled" } else { "Disabled" };
    let checked = |on: bool| if on == enabled { " checked" } else { "" };
    let inner = format!(
        r#"<fieldset><legend>Content trust</legend>
<p><label><input type="radio" name="enabled" value="true" id="trust-enabled"{}> Enabled</label></p>
<p><label><input type="radio" name="enabled" value="false" id="trust-disabled"{}> Disabled</label></p>
</fieldset>
<p><button type="submit" id="trust-save">Save</button></p>"#,
        checked(true),
        checked(false)
    );
    let body = format!(
        r#"<section><p>Content trust is <strong id="trust-state">{state}</strong> for the whole registry.
When enabled, publishers push signed tags with <code>DOCKER_CONTENT_TRUST=1</code> and consumers pull only what was signed.</p>
{}</section>"#,
        form("/portal/policies/content-trust", viewer.csrf, "card", &inner)
    );
    let body = format!("{body}{}", anonymous_pull(viewer, anonymous));
    page("Content trust", Section::Policies, Some(viewer), notice, &body)
}

/// The scopes open to anonymous pull, each with a Remove button, and a form to add one.
fn anonymous_pull(viewer: &Viewer, scopes: &[String]) -> String {
    let rows: Vec<(String, Vec<String>)> = scopes
        .iter()
        .map(|s| {
            let remove = button_form(
                "/portal/policies/anonymous-pull",
                viewer.csrf,
                &[("op", "remove"), ("scope", s)],
                "Remove",
                true,
            );
            (String::new(), vec![format!("<code>{}</code>", esc(s)), remove])
        })
        .collect();
    let listing = table(
        "Open to anonymous pull",
        &["Scope", ""],
        &rows,
        "Anonymous pull is off: every pull needs a login.",
    );
    let add = form(
        "/portal/policies/anonymous-pull",
        viewer.csrf,
        "card",
        &format!(
            r#"<input type="hidden" name="op" value="add">{}<p><button type="submit" id="anonymous-add">Open to anonymous pull</button></p>"#,
            input(
                "anonymous-scope",
                "Scope",
                "text",
                "",
                "registry, repository:<name> or repository:<prefix>/*"
            )
        ),
    );
    format!(
        r#"<section id="anonymous-pull"><h2>Anonymous pull</h2><p>Callers without credentials may pull images and read trust metadata of these repositories — never push, sign or list the catalog.</p>{listing}{add}</section>"#
    )
}

/// The step between choosing Disabled and losing every signature.
pub fn confirm_disable(viewer: &Viewer, notice: &Option<Notice>) -> String {
    let inner = r#"<input type="hidden" name="enabled" value="false"><input type="hidden" name="step" value="confirm">
<p><label><input type="checkbox" name="confirm" value="delete-all-trust-data" id="confirm-delete"> I understand that all trust data of every repository will be deleted permanently</label></p>
<p><button type="submit" class="danger" id="confirm-disable">Delete all trust data and disable content trust</button> <a href="/portal/policies/content-trust">Cancel</a></p>"#;
    let body = format!(
        r#"<div class="warning" role="alert"><p><strong>{}</strong></p></div>{}"#,
        esc(DISABLE_CONSEQUENCES),
        form("/portal/policies/content-trust", viewer.csrf, "card", inner)
    );
    page(
        "Disable content trust?",
        Section::Policies,
        Some(viewer),
        notice,
        &body,
    )
}

/// Confirmation for wiping one repository's trust data (the lost-root-key path).
pub fn confirm_reset(viewer: &Viewer, repository: &str, notice: &Option<Notice>) -> String {
    let inner = format!(
        r#"<input type="hidden" name="repository" value="{repo}">
<p><label><input type="checkbox" name="confirm" value="delete-trust-data" id="confirm-reset"> I understand that the trust data of {repo} will be deleted permanently</label></p>
<p><button type="submit" class="danger" id="reset-trust">Delete trust data of {repo}</button> <a href="/portal/repositories/{href}">Cancel</a></p>"#,
        repo = esc(repository),
        href = super::html::url_part(repository, true),
    );
    let body = format!(
        r#"<div class="warning" role="alert"><p><strong>Resetting trust deletes every signature, signer and registry-held key of {repo}, permanently.</strong> Its images and tags are kept; other repositories are not touched. Use this when the root key is lost: the next signed push starts the repository's trust data afresh.</p></div>{}"#,
        form("/portal/trust-reset", viewer.csrf, "card", &inner),
        repo = esc(repository),
    );
    page(
        "Reset trust data?",
        Section::Policies,
        Some(viewer),
        notice,
        &body,
    )
}

/// A small form that leads to `confirm_reset` (shown on repository pages to owners).
pub fn reset_link(repository: &str) -> String {
    format!(
        r#"<p><a href="/portal/trust-reset?repository={}">Reset trust data of this repository…</a></p>"#,
        super::html::url_part(repository, false)
    )
}
