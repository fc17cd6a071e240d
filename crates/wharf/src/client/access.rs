//! `wharf user|sp|admin-account|role|token|token-key|audit`: identity and access administration
//! through the admin API, as an owner (the login stored by `wharf login`).

use reqwest::Method;
use serde_json::{Value, json};

use super::http::percent_encode;
use super::prompt::password_from_stdin;
use super::report::{Column, Report, describe, fail, table};
use super::session::{Session, admin_session, login_command};
use crate::cli::{
    AdminAccountCommand, AdminArgs, AssignmentCommand, AuditCommand, RoleCommand, SpCommand, TokenCommand,
    TokenKeyCommand, UserCommand,
};

async fn open<C: clap::Subcommand>(a: &AdminArgs<C>) -> anyhow::Result<Session> {
    admin_session(a.registry.clone(), a.server.ca_file.clone()).await
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// A time as the API gives it (RFC 3339, UTC), or empty.
fn when(v: &Value) -> String {
    v.as_str().unwrap_or("").to_owned()
}

fn array(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}

/// A list: the items as a JSON array, and as a table of `columns`.
fn list(items: Vec<Value>, columns: &[Column<'_>]) -> Report {
    let text = table(&items, columns);
    Report::new(Value::Array(items), text)
}

/// What a delete command reports: the name it removed.
fn deleted(what: &str, name: &str) -> Report {
    Report::new(
        json!({ "name": name, "deleted": true }),
        format!("Deleted {what} {name}"),
    )
}

/// The next step for a principal that cannot do anything yet, as a command to paste.
fn no_role_hint(name: &str, role: &str) -> String {
    format!(
        "Hint: {name} has no role yet and can do nothing with this registry. Grant one: wharf role assignment create --role {role} --assignee {name} --scope registry"
    )
}

pub async fn user(a: AdminArgs<UserCommand>) -> anyhow::Result<Report> {
    Ok(match &a.command {
        UserCommand::Create { name, password_stdin } => {
            let mut body = json!({ "name": name });
            if *password_stdin {
                body["password"] = json!(password_from_stdin()?);
            }
            let mut v = open(&a)
                .await?
                .call(Method::POST, "/api/v1/users", Some(body))
                .await?;
            let mut text = format!("Created user {name}");
            match v["password"].as_str() {
                Some(p) => text.push_str(&format!("\nPassword (shown once): {p}")),
                // A stable field: null when the password came from standard input.
                None => v["password"] = Value::Null,
            }
            Report::new(v, text).with_hint(no_role_hint(name, "AcrPull"))
        }
        UserCommand::List => {
            let v = open(&a).await?.call(Method::GET, "/api/v1/users", None).await?;
            list(
                array(&v, "users"),
                &[
                    ("NAME", &|i| s(i, "name").to_owned()),
                    ("CREATED", &|i| when(&i["created_at"])),
                ],
            )
        }
        UserCommand::Delete { name } => {
            open(&a)
                .await?
                .call(
                    Method::DELETE,
                    &format!("/api/v1/users/{}", percent_encode(name)),
                    None,
                )
                .await?;
            deleted("user", name)
        }
        UserCommand::Password { name, password_stdin } => {
            // No body: the server generates one and shows it once.
            let body = if *password_stdin {
                Some(json!({ "password": password_from_stdin()? }))
            } else {
                None
            };
            let session = open(&a).await?;
            let mut v = session
                .call(
                    Method::PUT,
                    &format!("/api/v1/users/{}/password", percent_encode(name)),
                    body,
                )
                .await?;
            let mut text =
                format!("Set a new password for user {name} (their earlier logins no longer work)");
            match v["password"].as_str() {
                Some(p) => text.push_str(&format!("\nPassword (shown once): {p}")),
                None => v["password"] = Value::Null,
            }
            let report = Report::new(v, text);
            // An owner who reset their own password lost the stored login with the others.
            if session.username() == Some(name.as_str()) {
                report.with_hint(format!(
                    "That was your own login: the server revoked it; run `{}` again",
                    login_command(session.registry(), Some(name))
                ))
            } else {
                report
            }
        }
    })
}

/// `--role`/`--scope` of `sp create`: assign each role to the new service principal. If
/// one is refused the principal is deleted again, so a failed command leaves nothing
/// behind (and no secret is printed that belongs to a half-made principal).
async fn assign_new_sp(
    session: &Session,
    name: &str,
    roles: &[String],
    scope: Option<&str>,
) -> anyhow::Result<Vec<Value>> {
    let mut made = Vec::new();
    for role in roles {
        let mut body = json!({ "role": role, "assignee": name });
        if let Some(scope) = scope {
            body["scope"] = json!(scope);
        }
        match session
            .call(Method::POST, "/api/v1/role-assignments", Some(body))
            .await
        {
            Ok(v) => made.push(v),
            Err(e) => {
                let (code, message) = describe(&e);
                let path = format!("/api/v1/service-principals/{}", percent_encode(name));
                let undo = match session.call(Method::DELETE, &path, None).await {
                    Ok(_) => format!("service principal {name} was not kept; nothing was created"),
                    Err(e) => format!(
                        "removing service principal {name} again failed too ({}); delete it with `wharf sp delete {name}`",
                        describe(&e).1
                    ),
                };
                return Err(fail(&code, format!("{message}; {undo}")));
            }
        }
    }
    Ok(made)
}

pub async fn sp(a: AdminArgs<SpCommand>) -> anyhow::Result<Report> {
    Ok(match &a.command {
        SpCommand::Create { name, roles, scope } => {
            let session = open(&a).await?;
            let mut v = session
                .call(
                    Method::POST,
                    "/api/v1/service-principals",
                    Some(json!({ "name": name })),
                )
                .await?;
            let assigned = assign_new_sp(&session, name, roles, scope.as_deref()).await?;
            let mut text = format!(
                "Created service principal {name}\nClient id: {}\nSecret (shown once): {}",
                s(&v, "client_id"),
                s(&v, "secret")
            );
            for r in &assigned {
                text.push_str(&format!(
                    "\nAssigned {} to {name} on {}",
                    s(r, "role"),
                    s(r, "scope")
                ));
            }
            v["role_assignments"] = Value::Array(assigned);
            let report = Report::new(v, text);
            if roles.is_empty() {
                report.with_hint(no_role_hint(name, "AcrPush"))
            } else {
                report
            }
        }
        SpCommand::List => {
            let v = open(&a)
                .await?
                .call(Method::GET, "/api/v1/service-principals", None)
                .await?;
            list(
                array(&v, "service_principals"),
                &[
                    ("NAME", &|i| s(i, "name").to_owned()),
                    ("CLIENT ID", &|i| s(i, "client_id").to_owned()),
                    ("CREATED", &|i| when(&i["created_at"])),
                ],
            )
        }
        SpCommand::Delete { name } => {
            open(&a)
                .await?
                .call(
                    Method::DELETE,
                    &format!("/api/v1/service-principals/{}", percent_encode(name)),
                    None,
                )
                .await?;
            deleted("service principal", name)
        }
        SpCommand::ResetSecret { name } => {
            let v = open(&a)
                .await?
                .call(
                    Method::POST,
                    &format!("/api/v1/service-principals/{}/reset-secret", percent_encode(name)),
                    None,
                )
                .await?;
            let text = format!(
                "Client id: {}\nNew secret (shown once): {}",
                s(&v, "client_id"),
                s(&v, "secret")
            );
            Report::new(v, text)
        }
    })
}

fn admin_account_text(v: &Value) -> String {
    let on = v["enabled"].as_bool().unwrap_or(false);
    format!(
        "Username: {}\nEnabled: {}",
        s(v, "username"),
        if on { "yes" } else { "no" }
    )
}

pub async fn admin_account(a: AdminArgs<AdminAccountCommand>) -> anyhow::Result<Report> {
    Ok(match &a.command {
        AdminAccountCommand::Show => {
            let v = open(&a)
                .await?
                .call(Method::GET, "/api/v1/admin-account", None)
                .await?;
            let text = admin_account_text(&v);
            Report::new(v, text)
        }
        AdminAccountCommand::Enable => {
            let v = open(&a)
                .await?
                .call(Method::POST, "/api/v1/admin-account/enable", None)
                .await?;
            let text = format!(
                "Admin account enabled\nUsername: {}\nPassword (shown once): {}",
                s(&v, "username"),
                s(&v, "password")
            );
            Report::new(v, text)
        }
        AdminAccountCommand::Disable => {
            let v = open(&a)
                .await?
                .call(Method::POST, "/api/v1/admin-account/disable", None)
                .await?;
            Report::new(v, "Admin account disabled")
        }
    })
}

pub async fn role(a: AdminArgs<RoleCommand>) -> anyhow::Result<Report> {
    Ok(match &a.command {
        RoleCommand::List => {
            let v = open(&a).await?.call(Method::GET, "/api/v1/roles", None).await?;
            list(
                array(&v, "roles"),
                &[
                    ("ROLE", &|i| s(i, "name").to_owned()),
                    ("PERMISSIONS", &|i| {
                        array(i, "permissions")
                            .iter()
                            .filter_map(|p| p.as_str().map(str::to_owned))
                            .collect::<Vec<_>>()
                            .join(",")
                    }),
                    ("DESCRIPTION", &|i| s(i, "description").to_owned()),
                ],
            )
        }
        RoleCommand::Assignment(AssignmentCommand::Create(spec)) => {
            let mut body = json!({ "role": spec.role, "assignee": spec.assignee });
            if let Some(scope) = &spec.scope {
                body["scope"] = json!(scope);
            }
            let v = open(&a)
                .await?
                .call(Method::POST, "/api/v1/role-assignments", Some(body))
                .await?;
            let text = format!(
                "Assigned {} to {} on {} (effective from their next login or token)",
                s(&v, "role"),
                s(&v, "assignee"),
                s(&v, "scope")
            );
            Report::new(v, text)
        }
        RoleCommand::Assignment(AssignmentCommand::List { assignee }) => {
            let path = match assignee {
                Some(n) => format!("/api/v1/role-assignments?assignee={}", percent_encode(n)),
                None => "/api/v1/role-assignments".to_owned(),
            };
            let v = open(&a).await?.call(Method::GET, &path, None).await?;
            list(
                array(&v, "role_assignments"),
                &[
                    ("ASSIGNEE", &|i| s(i, "assignee").to_owned()),
                    ("KIND", &|i| s(i, "assignee_kind").to_owned()),
                    ("ROLE", &|i| s(i, "role").to_owned()),
                    ("SCOPE", &|i| s(i, "scope").to_owned()),
                    ("CREATED", &|i| when(&i["created_at"])),
                ],
            )
        }
        RoleCommand::Assignment(AssignmentCommand::Delete(spec)) => {
            let mut path = format!(
                "/api/v1/role-assignments?role={}&assignee={}",
                percent_encode(&spec.role),
                percent_encode(&spec.assignee)
            );
            if let Some(scope) = &spec.scope {
                path.push_str(&format!("&scope={}", percent_encode(scope)));
            }
            open(&a).await?.call(Method::DELETE, &path, None).await?;
            let scope = spec.scope.as_deref().unwrap_or("registry");
            Report::new(
                json!({ "role": spec.role, "assignee": spec.assignee, "scope": scope, "deleted": true }),
                format!("Removed {} from {} on {scope}", spec.role, spec.assignee),
            )
        }
    })
}

pub async fn token(a: AdminArgs<TokenCommand>) -> anyhow::Result<Report> {
    Ok(match &a.command {
        TokenCommand::Create { name, repositories } => {
            let v = open(&a)
                .await?
                .call(
                    Method::POST,
                    "/api/v1/tokens",
                    Some(json!({ "name": name, "repositories": repositories })),
                )
                .await?;
            let text = format!(
                "Created token {name}\nPassword (shown once): {}",
                s(&v, "password")
            );
            Report::new(v, text)
        }
        TokenCommand::List => {
            let v = open(&a).await?.call(Method::GET, "/api/v1/tokens", None).await?;
            list(
                array(&v, "tokens"),
                &[
                    ("NAME", &|i| s(i, "name").to_owned()),
                    ("REPOSITORIES", &|i| {
                        array(i, "repositories")
                            .iter()
                            .map(|r| {
                                let acts: Vec<String> = array(r, "actions")
                                    .iter()
                                    .filter_map(|x| x.as_str().map(str::to_owned))
                                    .collect();
                                format!("{}:{}", s(r, "repository"), acts.join(","))
                            })
                            .collect::<Vec<_>>()
                            .join(" ")
                    }),
                    ("CREATED", &|i| when(&i["created_at"])),
                ],
            )
        }
        TokenCommand::Delete { name } => {
            open(&a)
                .await?
                .call(
                    Method::DELETE,
                    &format!("/api/v1/tokens/{}", percent_encode(name)),
                    None,
                )
                .await?;
            deleted("token", name)
        }
    })
}

/// `key_id (created …)`, or `none` for an absent key.
fn signing_key(v: &Value) -> String {
    if v.is_null() {
        return "none".to_owned();
    }
    let created = when(&v["created_at"]);
    let created = if created.is_empty() {
        "unknown".to_owned()
    } else {
        created
    };
    format!("{} (created {created})", s(v, "key_id"))
}

pub async fn token_key(a: AdminArgs<TokenKeyCommand>) -> anyhow::Result<Report> {
    Ok(match &a.command {
        TokenKeyCommand::Show => {
            let v = open(&a)
                .await?
                .call(Method::GET, "/api/v1/token-signing-key", None)
                .await?;
            let text = format!(
                "Current key: {}\nPrevious key: {}",
                signing_key(&v["current"]),
                signing_key(&v["previous"])
            );
            Report::new(v, text)
        }
        TokenKeyCommand::Rotate => {
            let v = open(&a)
                .await?
                .call(Method::POST, "/api/v1/token-signing-key/rotate", None)
                .await?;
            let text = format!(
                "Rotated the token signing key\nCurrent key: {}\n\
                 Previous key (its tokens work until they expire): {}\n\
                 Retired key (its tokens are refused): {}",
                signing_key(&v["current"]),
                signing_key(&v["previous"]),
                v["retired_key_id"].as_str().unwrap_or("none")
            );
            Report::new(v, text)
        }
    })
}

pub async fn audit(a: AdminArgs<AuditCommand>) -> anyhow::Result<Report> {
    let AuditCommand::List { limit } = &a.command;
    let v = open(&a)
        .await?
        .call(Method::GET, &format!("/api/v1/audit?limit={limit}"), None)
        .await?;
    Ok(list(
        array(&v, "audit"),
        &[
            ("WHEN", &|i| when(&i["at"])),
            ("ACTOR", &|i| s(i, "actor").to_owned()),
            ("ACTION", &|i| s(i, "action").to_owned()),
            ("TARGET", &|i| s(i, "target").to_owned()),
            ("DETAIL", &|i| s(i, "detail").to_owned()),
        ],
    ))
}
