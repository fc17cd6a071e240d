//! `wharf user|sp|admin-account|role|token|token-key|audit`: identity and access administration
//! through the admin API, as an owner (the login stored by `wharf login`).

use std::io::Read;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use super::content_trust::{Session, admin_session};
use super::http::percent_encode;
use crate::cli::{
    AdminAccountCommand, AdminArgs, AssignmentCommand, AuditCommand, Output, RoleCommand, SpCommand,
    TokenCommand, TokenKeyCommand, UserCommand,
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

/// Print `items` as JSON or as an aligned table of `columns` (header, extractor).
/// A column: header and how to render a cell.
type Column<'a> = (&'a str, &'a dyn Fn(&Value) -> String);

fn print_list(output: Output, items: &[Value], columns: &[Column<'_>]) {
    if output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(items).unwrap_or_else(|_| "[]".into())
        );
        return;
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| columns.iter().map(|(_, f)| f(i)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(c, (h, _))| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(columns.iter().map(|(h, _)| (*h).to_owned()).collect());
    for r in rows {
        line(r);
    }
}

fn array(v: &Value, key: &str) -> Vec<Value> {
    v[key].as_array().cloned().unwrap_or_default()
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut buf = String::new();
    std::io::stdin()
        .read_to_string(&mut buf)
        .context("cannot read the password from standard input")?;
    let p = buf.trim_end_matches(['\n', '\r']).to_owned();
    if p.is_empty() {
        bail!("no password on standard input");
    }
    Ok(p)
}

pub async fn user(a: AdminArgs<UserCommand>) -> anyhow::Result<()> {
    match &a.command {
        UserCommand::Create { name, password_stdin } => {
            let mut body = json!({ "name": name });
            if *password_stdin {
                body["password"] = json!(read_password_stdin()?);
            }
            let v = open(&a)
                .await?
                .call(Method::POST, "/api/v1/users", Some(body))
                .await?;
            println!("Created user {name}");
            if let Some(p) = v["password"].as_str() {
                println!("Password (shown once): {p}");
            }
        }
        UserCommand::List(o) => {
            let v = open(&a).await?.call(Method::GET, "/api/v1/users", None).await?;
            print_list(
                o.output,
                &array(&v, "users"),
                &[
                    ("NAME", &|i| s(i, "name").to_owned()),
                    ("CREATED", &|i| when(&i["created_at"])),
                ],
            );
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
            println!("Deleted user {name}");
        }
    }
    Ok(())
}

pub async fn sp(a: AdminArgs<SpCommand>) -> anyhow::Result<()> {
    match &a.command {
        SpCommand::Create { name } => {
            let v = open(&a)
                .await?
                .call(
                    Method::POST,
                    "/api/v1/service-principals",
                    Some(json!({ "name": name })),
                )
                .await?;
            println!("Created service principal {name}");
            println!("Client id: {}", s(&v, "client_id"));
            println!("Secret (shown once): {}", s(&v, "secret"));
        }
        SpCommand::List(o) => {
            let v = open(&a)
                .await?
                .call(Method::GET, "/api/v1/service-principals", None)
                .await?;
            print_list(
                o.output,
                &array(&v, "service_principals"),
                &[
                    ("NAME", &|i| s(i, "name").to_owned()),
                    ("CLIENT ID", &|i| s(i, "client_id").to_owned()),
                    ("CREATED", &|i| when(&i["created_at"])),
                ],
            );
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
            println!("Deleted service principal {name}");
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
            println!("Client id: {}", s(&v, "client_id"));
            println!("New secret (shown once): {}", s(&v, "secret"));
        }
    }
    Ok(())
}

pub async fn admin_account(a: AdminArgs<AdminAccountCommand>) -> anyhow::Result<()> {
    match &a.command {
        AdminAccountCommand::Show(o) => {
            let v = open(&a)
                .await?
                .call(Method::GET, "/api/v1/admin-account", None)
                .await?;
            if o.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("Username: {}", s(&v, "username"));
                let on = v["enabled"].as_bool().unwrap_or(false);
                println!("Enabled: {}", if on { "yes" } else { "no" });
            }
        }
        AdminAccountCommand::Enable => {
            let v = open(&a)
                .await?
                .call(Method::POST, "/api/v1/admin-account/enable", None)
                .await?;
            println!("Admin account enabled");
            println!("Username: {}", s(&v, "username"));
            println!("Password (shown once): {}", s(&v, "password"));
        }
        AdminAccountCommand::Disable => {
            open(&a)
                .await?
                .call(Method::POST, "/api/v1/admin-account/disable", None)
                .await?;
            println!("Admin account disabled");
        }
    }
    Ok(())
}

pub async fn role(a: AdminArgs<RoleCommand>) -> anyhow::Result<()> {
    match &a.command {
        RoleCommand::List(o) => {
            let v = open(&a).await?.call(Method::GET, "/api/v1/roles", None).await?;
            print_list(
                o.output,
                &array(&v, "roles"),
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
            );
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
            println!(
                "Assigned {} to {} on {} (effective from their next login or token)",
                s(&v, "role"),
                s(&v, "assignee"),
                s(&v, "scope")
            );
        }
        RoleCommand::Assignment(AssignmentCommand::List { assignee, output }) => {
            let path = match assignee {
                Some(n) => format!("/api/v1/role-assignments?assignee={}", percent_encode(n)),
                None => "/api/v1/role-assignments".to_owned(),
            };
            let v = open(&a).await?.call(Method::GET, &path, None).await?;
            print_list(
                output.output,
                &array(&v, "role_assignments"),
                &[
                    ("ASSIGNEE", &|i| s(i, "assignee").to_owned()),
                    ("KIND", &|i| s(i, "assignee_kind").to_owned()),
                    ("ROLE", &|i| s(i, "role").to_owned()),
                    ("SCOPE", &|i| s(i, "scope").to_owned()),
                ],
            );
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
            println!(
                "Removed {} from {} on {}",
                spec.role,
                spec.assignee,
                spec.scope.as_deref().unwrap_or("registry")
            );
        }
    }
    Ok(())
}

pub async fn token(a: AdminArgs<TokenCommand>) -> anyhow::Result<()> {
    match &a.command {
        TokenCommand::Create { name, repositories } => {
            let v = open(&a)
                .await?
                .call(
                    Method::POST,
                    "/api/v1/tokens",
                    Some(json!({ "name": name, "repositories": repositories })),
                )
                .await?;
            println!("Created token {name}");
            println!("Password (shown once): {}", s(&v, "password"));
        }
        TokenCommand::List(o) => {
            let v = open(&a).await?.call(Method::GET, "/api/v1/tokens", None).await?;
            print_list(
                o.output,
                &array(&v, "tokens"),
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
            );
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
            println!("Deleted token {name}");
        }
    }
    Ok(())
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

pub async fn token_key(a: AdminArgs<TokenKeyCommand>) -> anyhow::Result<()> {
    match &a.command {
        TokenKeyCommand::Show(o) => {
            let v = open(&a)
                .await?
                .call(Method::GET, "/api/v1/token-signing-key", None)
                .await?;
            if o.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("Current key: {}", signing_key(&v["current"]));
                println!("Previous key: {}", signing_key(&v["previous"]));
            }
        }
        TokenKeyCommand::Rotate(o) => {
            let v = open(&a)
                .await?
                .call(Method::POST, "/api/v1/token-signing-key/rotate", None)
                .await?;
            if o.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("Rotated the token signing key");
                println!("Current key: {}", signing_key(&v["current"]));
                println!(
                    "Previous key (its tokens work until they expire): {}",
                    signing_key(&v["previous"])
                );
                println!(
                    "Retired key (its tokens are refused): {}",
                    v["retired_key_id"].as_str().unwrap_or("none")
                );
            }
        }
    }
    Ok(())
}

pub async fn audit(a: AdminArgs<AuditCommand>) -> anyhow::Result<()> {
    let AuditCommand::List { limit, output } = &a.command;
    let v = open(&a)
        .await?
        .call(Method::GET, &format!("/api/v1/audit?limit={limit}"), None)
        .await?;
    print_list(
        output.output,
        &array(&v, "audit"),
        &[
            ("WHEN", &|i| when(&i["at"])),
            ("ACTOR", &|i| s(i, "actor").to_owned()),
            ("ACTION", &|i| s(i, "action").to_owned()),
            ("TARGET", &|i| s(i, "target").to_owned()),
            ("DETAIL", &|i| s(i, "detail").to_owned()),
        ],
    );
    Ok(())
}
