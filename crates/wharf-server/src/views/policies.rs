//! Policies → Content trust and anonymous pull, the confirmations for destructive trust
//! changes, and Policies → Signature policy.

use std::fmt::Write as _;

use super::html::{Notice, Section, Viewer, button_form, esc, form, input, page, table, url_part};
use crate::services::signature_policy::document::{PolicyDocument, PolicyRule};

const CONTENT_TRUST_PAGE: &str = "/portal/policies/content-trust";
pub const SIGNATURE_POLICY_PAGE: &str = "/portal/policies/signature";

/// The pages under Policies, the current one marked.
fn policies_nav(current: &str) -> String {
    let mut out = String::from(r#"<nav aria-label="Policies" class="subnav"><ul>"#);
    for (href, label) in [
        (CONTENT_TRUST_PAGE, "Content trust and anonymous pull"),
        (SIGNATURE_POLICY_PAGE, "Signature policy"),
    ] {
        let mark = if href == current {
            r#" aria-current="page""#
        } else {
            ""
        };
        let _ = write!(out, r#"<li><a href="{href}"{mark}>{label}</a></li>"#);
    }
    out.push_str("</ul></nav>");
    out
}

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
    let body = format!(
        "{}{body}{}",
        policies_nav(CONTENT_TRUST_PAGE),
        anonymous_pull(viewer, anonymous)
    );
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

/// What the rule form holds: the settings of a rule being edited, or what was typed into
/// a form the server refused (so it can be corrected rather than typed again). Keys and
/// certificates are written as a name line followed by the PEM block, one after another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleForm {
    pub scope: String,
    pub mode: String,
    pub dct: bool,
    /// Comma-separated.
    pub dct_roles: String,
    pub cosign_keys: String,
    pub notation_roots: String,
    /// One per line.
    pub notation_identities: String,
    pub publishers_read_unsigned: bool,
}

impl Default for RuleForm {
    /// A new rule: audit (nothing is refused until an owner chooses enforce), publishers
    /// exempt as the API's default.
    fn default() -> Self {
        Self {
            scope: String::new(),
            mode: "audit".into(),
            dct: false,
            dct_roles: String::new(),
            cosign_keys: String::new(),
            notation_roots: String::new(),
            notation_identities: String::new(),
            publishers_read_unsigned: true,
        }
    }
}

fn named_blocks<'a>(items: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    items
        .map(|(name, pem)| format!("{name}\n{}\n", pem.trim_end()))
        .collect::<Vec<_>>()
        .join("\n")
}

impl RuleForm {
    /// The form filled with `rule`'s settings.
    pub fn of(rule: &PolicyRule) -> Self {
        Self {
            scope: rule.scope.clone(),
            mode: rule.mode.as_str().into(),
            dct: rule.dct.is_some(),
            dct_roles: rule.dct.as_ref().map(|d| d.roles.join(", ")).unwrap_or_default(),
            cosign_keys: rule
                .cosign
                .as_ref()
                .map(|c| named_blocks(c.keys.iter().map(|k| (k.name.as_str(), k.public_key.as_str()))))
                .unwrap_or_default(),
            notation_roots: rule
                .notation
                .as_ref()
                .map(|n| {
                    named_blocks(
                        n.trust_store
                            .iter()
                            .map(|c| (c.name.as_str(), c.certificate.as_str())),
                    )
                })
                .unwrap_or_default(),
            notation_identities: rule
                .notation
                .as_ref()
                .map(|n| n.trusted_identities.join("\n"))
                .unwrap_or_default(),
            publishers_read_unsigned: rule.publishers_read_unsigned,
        }
    }
}

/// A PEM text, folded behind its name (no script needed to open it).
fn pem_details(name: &str, pem: &str) -> String {
    format!(
        r#"<details><summary><code>{}</code></summary><pre>{}</pre></details>"#,
        esc(name),
        esc(pem.trim_end())
    )
}

/// What counts as signed under `rule`, with the names of its keys and certificates.
fn accepted(rule: &PolicyRule) -> String {
    let mut items = Vec::new();
    if let Some(dct) = &rule.dct {
        items.push(if dct.roles.is_empty() {
            "Docker Content Trust".to_owned()
        } else {
            let roles: Vec<String> = dct
                .roles
                .iter()
                .map(|r| format!("<code>{}</code>", esc(r)))
                .collect();
            format!("Docker Content Trust by {}", roles.join(", "))
        });
    }
    if let Some(cosign) = &rule.cosign {
        let keys: String = cosign
            .keys
            .iter()
            .map(|k| pem_details(&k.name, &k.public_key))
            .collect();
        items.push(format!("cosign, keys: {keys}"));
    }
    if let Some(notation) = &rule.notation {
        let roots: String = notation
            .trust_store
            .iter()
            .map(|c| pem_details(&c.name, &c.certificate))
            .collect();
        let identities: Vec<String> = notation
            .trusted_identities
            .iter()
            .map(|i| format!("<code>{}</code>", esc(i)))
            .collect();
        items.push(format!(
            "Notation, roots: {roots}trusted identities: {}",
            identities.join(", ")
        ));
    }
    if items.is_empty() {
        return r#"<span class="empty">nothing (no check)</span>"#.into();
    }
    let mut out = String::from(r#"<ul class="kinds">"#);
    for i in items {
        let _ = write!(out, "<li>{i}</li>");
    }
    out.push_str("</ul>");
    out
}

const MODES: [(&str, &str); 3] = [
    ("off", "off — no check"),
    ("audit", "audit — serve unsigned manifests, but record them"),
    ("enforce", "enforce — refuse unsigned manifests"),
];

fn mode_options(selected: &str, long: bool) -> String {
    let mut out = String::new();
    for (value, text) in MODES {
        let sel = if value == selected { " selected" } else { "" };
        let text = if long { text } else { value };
        let _ = write!(out, r#"<option value="{value}"{sel}>{text}</option>"#);
    }
    out
}

/// One rule's row: its settings, a mode change, Edit and Remove.
fn rule_row(viewer: &Viewer, version: &str, rule: &PolicyRule) -> (String, Vec<String>) {
    let scope = esc(&rule.scope);
    let change_mode = form(
        SIGNATURE_POLICY_PAGE,
        viewer.csrf,
        "inline",
        &format!(
            r#"<input type="hidden" name="op" value="mode"><input type="hidden" name="version" value="{version}"><input type="hidden" name="scope" value="{scope}"><select name="mode" aria-label="Mode of {scope}">{}</select> <button type="submit" class="change-mode">Change mode</button>"#,
            mode_options(rule.mode.as_str(), false)
        ),
    );
    let edit = format!(
        r#"<a class="edit" href="{SIGNATURE_POLICY_PAGE}?edit={}#rule-form">Edit</a>"#,
        url_part(&rule.scope, false)
    );
    let remove = button_form(
        SIGNATURE_POLICY_PAGE,
        viewer.csrf,
        &[("op", "remove"), ("version", version), ("scope", &rule.scope)],
        "Remove",
        true,
    );
    let publishers = if rule.publishers_read_unsigned {
        "may read unsigned"
    } else {
        "checked like every client"
    };
    (
        format!(r#" data-scope="{scope}""#),
        vec![
            format!("<code>{scope}</code>"),
            format!(
                r#"<span class="mode mode-{m}">{m}</span>"#,
                m = rule.mode.as_str()
            ),
            accepted(rule),
            publishers.to_owned(),
            format!(r#"<div class="row-actions">{change_mode} {edit} {remove}</div>"#),
        ],
    )
}

fn textarea(id: &str, name: &str, label: &str, value: &str, rows: u8, hint: &str) -> String {
    format!(
        r#"<p class="field"><label for="{id}">{}</label><textarea id="{id}" name="{name}" rows="{rows}" spellcheck="false" aria-describedby="{id}-hint">{}</textarea><small id="{id}-hint">{}</small></p>"#,
        esc(label),
        esc(value),
        esc(hint)
    )
}

fn checkbox(id: &str, name: &str, checked: bool, label: &str) -> String {
    let checked = if checked { " checked" } else { "" };
    format!(
        r#"<p><label><input type="checkbox" id="{id}" name="{name}" value="on"{checked}> {}</label></p>"#,
        esc(label)
    )
}

/// Policies → Signature policy: the rules, each with its mode change, Edit and Remove,
/// and the form that adds or replaces the rule of a scope. Every form carries the
/// version shown, so a change based on an older page is refused, not merged.
pub fn signature_policy(
    viewer: &Viewer,
    document: &PolicyDocument,
    entered: &RuleForm,
    notice: &Option<Notice>,
) -> String {
    let version = document.version.to_string();
    let rows: Vec<(String, Vec<String>)> = document
        .rules
        .iter()
        .map(|r| rule_row(viewer, &version, r))
        .collect();
    let listing = table(
        "Rules",
        &["Scope", "Mode", "Accepted signatures", "Publishers", ""],
        &rows,
        "No rules: every manifest is served, signed or not.",
    );
    let fields = format!(
        r#"<input type="hidden" name="op" value="set"><input type="hidden" name="version" value="{version}">{scope}<p class="field"><label for="rule-mode">Mode</label><select id="rule-mode" name="mode">{modes}</select></p>
<fieldset><legend>Accepted signatures (any one is enough)</legend>{dct}{roles}{cosign}{roots}{identities}</fieldset>
{publishers}
<p><button type="submit" id="rule-submit">Save rule</button> <a href="{SIGNATURE_POLICY_PAGE}">Clear</a></p>"#,
        scope = input(
            "rule-scope",
            "Scope",
            "text",
            &entered.scope,
            "registry, repository:<name> or repository:<prefix>/*"
        ),
        modes = mode_options(&entered.mode, true),
        dct = checkbox("rule-dct", "dct", entered.dct, "Docker Content Trust"),
        roles = input(
            "rule-roles",
            "Only these DCT roles (optional)",
            "text",
            &entered.dct_roles,
            "e.g. targets/releases, comma-separated; empty: what docker pull with content trust accepts (targets/releases, then targets)"
        ),
        cosign = textarea(
            "rule-cosign",
            "cosign",
            "cosign public keys",
            &entered.cosign_keys,
            4,
            "For each key a name on its own line, then its PEM block (-----BEGIN PUBLIC KEY----- …)"
        ),
        roots = textarea(
            "rule-notation-roots",
            "notation_roots",
            "Notation root certificates",
            &entered.notation_roots,
            4,
            "For each certificate a name on its own line, then its PEM block (-----BEGIN CERTIFICATE----- …)"
        ),
        identities = textarea(
            "rule-notation-identities",
            "identities",
            "Trusted Notation identities",
            &entered.notation_identities,
            2,
            "One per line: x509.subject: <DN>, or * for any signer chaining to the roots"
        ),
        publishers = checkbox(
            "rule-publishers",
            "publishers",
            entered.publishers_read_unsigned,
            "Publishers' push and signing sessions may read the unsigned manifests they are about to sign"
        ),
    );
    let add = form(SIGNATURE_POLICY_PAGE, viewer.csrf, "card", &fields);
    let body = format!(
        r#"{nav}<section><p>The registry decides for every client — docker without content trust, containerd, skopeo, Kubernetes nodes — whether a manifest is served.
The most specific rule covering a repository applies: the repository itself, then the longest prefix, then <code>registry</code>.
<strong>enforce</strong> refuses unsigned manifests with <code>DENIED</code>; <strong>audit</strong> serves them and records what enforce would refuse; <strong>off</strong> checks nothing.</p>
<p>Policy version <strong id="policy-version">{version}</strong></p>{listing}</section>
<section id="rule-form"><h2>Add or replace a rule</h2><p>Saving replaces the whole rule of that scope; <em>Edit</em> on a rule starts from its current settings.</p>{add}</section>"#,
        nav = policies_nav(SIGNATURE_POLICY_PAGE),
    );
    page("Signature policy", Section::Policies, Some(viewer), notice, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer() -> Viewer<'static> {
        Viewer {
            name: "admin",
            csrf: "csrf-token",
            admin: true,
        }
    }

    fn document(json: &str) -> PolicyDocument {
        PolicyDocument::parse(json.as_bytes()).unwrap()
    }

    const WITH_KEYS: &str = r#"{"version": 3, "rules": [
        {"scope": "registry", "mode": "audit",
         "cosign": {"keys": [{"name": "ci<key>", "public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}]},
         "notation": {"trust_store": [{"name": "root", "certificate": "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"}],
                      "trusted_identities": ["x509.subject: CN=ci, O=Acme"]}},
        {"scope": "repository:team/*", "mode": "enforce", "dct": {"roles": ["targets/releases"]}, "publishers_read_unsigned": false}
    ]}"#;

    #[test]
    fn rules_show_their_keys_certificates_and_exemption() {
        let page = signature_policy(&viewer(), &document(WITH_KEYS), &RuleForm::default(), &None);
        assert!(
            page.contains(r#"<strong id="policy-version">3</strong>"#),
            "{page}"
        );
        assert!(page.contains(
            r#"cosign, keys: <details><summary><code>ci&lt;key&gt;</code></summary><pre>-----BEGIN PUBLIC KEY-----
AAAA
-----END PUBLIC KEY-----</pre></details>"#
        ));
        assert!(page.contains("Notation, roots: <details><summary><code>root</code></summary>"));
        assert!(page.contains("trusted identities: <code>x509.subject: CN=ci, O=Acme</code>"));
        assert!(page.contains("Docker Content Trust by <code>targets/releases</code>"));
        assert!(page.contains(r#"<td data-label="Publishers">checked like every client</td>"#));
        assert!(page.contains(r#"<td data-label="Publishers">may read unsigned</td>"#));
        // Every form carries the version shown.
        assert_eq!(
            page.matches(r#"name="version" value="3""#).count(),
            5,
            "mode and remove per rule, and the rule form"
        );
        assert!(page.contains(r#"href="/portal/policies/signature?edit=repository%3Ateam%2F%2A#rule-form""#));
        assert!(!page.contains("<script"));
    }

    #[test]
    fn the_form_round_trips_a_rule() {
        let doc = document(WITH_KEYS);
        let form = RuleForm::of(&doc.rules[0]);
        assert_eq!(
            form.cosign_keys,
            "ci<key>\n-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
        );
        assert_eq!(form.notation_identities, "x509.subject: CN=ci, O=Acme");
        assert_eq!((form.mode.as_str(), form.dct), ("audit", false));
        let form = RuleForm::of(&doc.rules[1]);
        assert_eq!(form.dct_roles, "targets/releases");
        assert!(form.dct && !form.publishers_read_unsigned);
        let page = signature_policy(&viewer(), &doc, &form, &None);
        assert!(page.contains(r#"id="rule-scope" name="scope" type="text" value="repository:team/*""#));
        assert!(page.contains(r#"<option value="enforce" selected>"#));
        assert!(page.contains(r#"id="rule-dct" name="dct" value="on" checked>"#));
        assert!(page.contains(r#"id="rule-publishers" name="publishers" value="on">"#));
    }
}
