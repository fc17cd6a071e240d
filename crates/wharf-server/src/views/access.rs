//! Access control (IAM): role assignments, users, service principals, the admin account
//! and repository-scoped tokens, each with its forms.

use std::fmt::Write as _;

use wharf_store::RoleAssignment;

use super::html::{Notice, Section, Viewer, button_form, esc, form, input, page, select, table, time};
use crate::auth::Role;
use crate::services::access::{AdminAccountView, PrincipalView, TokenView};

pub struct AccessData<'a> {
    pub assignments: &'a [RoleAssignment],
    pub users: &'a [PrincipalView],
    pub service_principals: &'a [PrincipalView],
    pub admin_account: &'a AdminAccountView,
    pub tokens: &'a [TokenView],
}

/// A credential shown exactly once, right after it was created.
pub struct OneTimeSecret {
    pub what: String,
    pub login: String,
    pub secret: String,
}

/// What the forms held when a post failed, so the user can correct it.
#[derive(Default)]
pub struct Entered {
    pub role: String,
    pub assignee: String,
    pub scope: String,
}

pub fn access(
    viewer: &Viewer,
    data: &AccessData,
    entered: &Entered,
    secret: Option<&OneTimeSecret>,
    notice: &Option<Notice>,
) -> String {
    let csrf = viewer.csrf;
    let mut body = String::new();
    if let Some(s) = secret {
        let _ = write!(
            body,
            r#"<div class="secret" role="status" id="one-time-secret"><p><strong>{}</strong> — copy it now; it is shown only once.</p><p>Login: <code id="secret-login">{}</code></p><p>Secret: <code id="secret-value">{}</code></p></div>"#,
            esc(&s.what),
            esc(&s.login),
            esc(&s.secret)
        );
    }

    // Role assignments.
    body.push_str(r#"<section id="role-assignments"><h2>Role assignments</h2>"#);
    let rows: Vec<(String, Vec<String>)> = data
        .assignments
        .iter()
        .map(|a| {
            (
                format!(
                    r#" data-assignment="{}|{}|{}""#,
                    esc(&a.principal),
                    esc(&a.role),
                    esc(&a.scope)
                ),
                vec![
                    esc(&a.principal),
                    esc(&a.principal_kind),
                    esc(&a.role),
                    format!("<code>{}</code>", esc(&a.scope)),
                    button_form(
                        "/portal/access/unassign",
                        csrf,
                        &[("role", &a.role), ("assignee", &a.principal), ("scope", &a.scope)],
                        "Remove",
                        true,
                    ),
                ],
            )
        })
        .collect();
    body.push_str(&table(
        "Who holds which role where",
        &["Assignee", "Kind", "Role", "Scope", ""],
        &rows,
        "No role assignments.",
    ));
    let roles: Vec<(String, String)> = Role::ALL
        .iter()
        .map(|r| (r.name().to_owned(), format!("{} — {}", r.name(), r.description())))
        .collect();
    let scope = if entered.scope.is_empty() {
        "registry"
    } else {
        &entered.scope
    };
    let add = format!(
        "<h3>Add role assignment</h3>{}{}{}<p><button type=\"submit\" id=\"assign-submit\">Add role assignment</button></p>",
        // Nothing typed yet: the least privileged role is preselected, so a hurried
        // click never hands out Owner.
        select(
            "assign-role",
            "Role",
            &roles,
            if entered.role.is_empty() {
                Role::AcrPull.name()
            } else {
                &entered.role
            },
        ),
        input(
            "assign-assignee",
            "Assignee",
            "text",
            &entered.assignee,
            "A user or service principal name"
        ),
        input(
            "assign-scope",
            "Scope",
            "text",
            scope,
            "registry, repository:NAME or repository:PREFIX/*"
        ),
    );
    body.push_str(&form("/portal/access/assign", csrf, "card", &add));
    body.push_str("</section>");

    // Users.
    body.push_str(r#"<section id="users"><h2>Users</h2>"#);
    body.push_str(&principal_table(
        data.users,
        "/portal/access/delete-user",
        csrf,
        "No users.",
    ));
    let add_user = format!(
        "<h3>Create user</h3>{}{}<p><button type=\"submit\" id=\"user-submit\">Create user</button></p>",
        input("user-name", "Name", "text", "", ""),
        input(
            "user-password",
            "Password",
            "password",
            "",
            "At least 8 characters; leave empty to generate one"
        ),
    );
    body.push_str(&form("/portal/access/create-user", csrf, "card", &add_user));
    body.push_str("</section>");

    // Service principals.
    body.push_str(r#"<section id="service-principals"><h2>Service principals</h2>"#);
    let sp_rows: Vec<(String, Vec<String>)> = data
        .service_principals
        .iter()
        .map(|p| {
            (
                format!(r#" data-principal="{}""#, esc(&p.name)),
                vec![
                    esc(&p.name),
                    format!("<code>{}</code>", esc(p.client_id.as_deref().unwrap_or(""))),
                    time(p.created_at),
                    format!(
                        "{} {}",
                        button_form(
                            "/portal/access/reset-sp-secret",
                            csrf,
                            &[("name", &p.name)],
                            "New secret",
                            false
                        ),
                        button_form(
                            "/portal/access/delete-sp",
                            csrf,
                            &[("name", &p.name)],
                            "Delete",
                            true
                        )
                    ),
                ],
            )
        })
        .collect();
    body.push_str(&table(
        "Service principals (for CI)",
        &["Name", "Client id", "Created", ""],
        &sp_rows,
        "No service principals.",
    ));
    let add_sp = format!(
        "<h3>Create service principal</h3>{}<p><button type=\"submit\" id=\"sp-submit\">Create service principal</button></p>",
        input(
            "sp-name",
            "Name",
            "text",
            "",
            "A secret is generated and shown once"
        ),
    );
    body.push_str(&form("/portal/access/create-sp", csrf, "card", &add_sp));
    body.push_str("</section>");

    // Admin account.
    let a = data.admin_account;
    let _ = write!(
        body,
        r#"<section id="admin-account"><h2>Admin account</h2><p>The admin account <code>{}</code> is <strong id="admin-account-state">{}</strong>. It has pull, push and delete rights on every repository, and can never sign or administer.</p>{}</section>"#,
        esc(&a.username),
        if a.enabled { "enabled" } else { "disabled" },
        if a.enabled {
            button_form(
                "/portal/access/disable-admin-account",
                csrf,
                &[],
                "Disable admin account",
                true,
            )
        } else {
            button_form(
                "/portal/access/enable-admin-account",
                csrf,
                &[],
                "Enable admin account",
                false,
            )
        }
    );

    // Repository tokens.
    body.push_str(r#"<section id="tokens"><h2>Repository-scoped tokens</h2>"#);
    let token_rows: Vec<(String, Vec<String>)> = data
        .tokens
        .iter()
        .map(|t| {
            let scopes = t
                .repositories
                .iter()
                .map(|r| {
                    format!(
                        "<code>{}:{}</code>",
                        esc(&r.repository),
                        esc(&r.actions.join(","))
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>");
            (
                format!(r#" data-token="{}""#, esc(&t.name)),
                vec![
                    esc(&t.name),
                    scopes,
                    time(t.created_at),
                    button_form(
                        "/portal/access/delete-token",
                        csrf,
                        &[("name", &t.name)],
                        "Delete",
                        true,
                    ),
                ],
            )
        })
        .collect();
    body.push_str(&table(
        "Tokens confined to their repositories",
        &["Name", "Repositories", "Created", ""],
        &token_rows,
        "No tokens.",
    ));
    let add_token = format!(
        r#"<h3>Create token</h3>{}<p class="field"><label for="token-repositories">Repositories and actions, one per line</label><textarea id="token-repositories" name="repositories" rows="3" aria-describedby="token-repositories-hint"></textarea><small id="token-repositories-hint">REPO:ACTIONS, e.g. team/app:content/read,content/write,trust/write</small></p><p><button type="submit" id="token-submit">Create token</button></p>"#,
        input("token-name", "Name", "text", "", ""),
    );
    body.push_str(&form("/portal/access/create-token", csrf, "card", &add_token));
    body.push_str("</section>");

    page("Access control", Section::Access, Some(viewer), notice, &body)
}

fn principal_table(list: &[PrincipalView], delete_action: &str, csrf: &str, empty: &str) -> String {
    let rows: Vec<(String, Vec<String>)> = list
        .iter()
        .map(|p| {
            (
                format!(r#" data-principal="{}""#, esc(&p.name)),
                vec![
                    esc(&p.name),
                    time(p.created_at),
                    format!(
                        "{} {}",
                        button_form(
                            "/portal/access/reset-password",
                            csrf,
                            &[("name", &p.name)],
                            "New password",
                            false
                        ),
                        button_form(delete_action, csrf, &[("name", &p.name)], "Delete", true)
                    ),
                ],
            )
        })
        .collect();
    table(
        "Users who sign in with a password",
        &["Name", "Created", ""],
        &rows,
        empty,
    )
}
