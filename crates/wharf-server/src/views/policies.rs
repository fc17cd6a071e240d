//! Policies → Content trust, and the confirmations for destructive trust changes.

use super::html::{Notice, Section, Viewer, esc, form, page};

/// What disabling costs, said plainly (the same facts the CLI and API state).
pub const DISABLE_CONSEQUENCES: &str = "Disabling content trust permanently deletes ALL trust data of EVERY \
repository: signatures, signers and the keys the registry holds. This cannot be undone. Images and tags are \
kept. Publishers will have to sign again after content trust is enabled again.";

pub fn content_trust(viewer: &Viewer, enabled: bool, notice: &Option<Notice>) -> String {
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
    page("Content trust", Section::Policies, Some(viewer), notice, &body)
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
