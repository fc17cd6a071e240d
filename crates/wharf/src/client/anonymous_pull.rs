//! `wharf anonymous-pull show|enable|disable`: the scopes open to callers without
//! credentials (`/api/v1/anonymous-pull`, owner only).

use reqwest::Method;
use serde_json::{Value, json};

use super::report::{INVALID_RESPONSE, Report, fail};
use super::session::{Session, admin_session};
use crate::cli::{AdminArgs, AnonymousPullCommand};

const PATH: &str = "/api/v1/anonymous-pull";

/// The `scopes` of an answer of the anonymous-pull endpoint.
fn scopes_of(v: &Value) -> anyhow::Result<Vec<String>> {
    v["scopes"]
        .as_array()
        .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_owned)).collect())
        .ok_or_else(|| {
            fail(
                INVALID_RESPONSE,
                format!("the server answered without scopes: {v}"),
            )
        })
}

fn report(scopes: Vec<String>) -> Report {
    let text = if scopes.is_empty() {
        "Anonymous pull: off".to_owned()
    } else {
        format!("Anonymous pull: on for {}", scopes.join(", "))
    };
    Report::new(json!({ "scopes": scopes }), text)
}

/// Store `scopes` as the whole list, unless it is what is stored already: an unchanged
/// setting needs no audit record. What the server keeps (it normalises) is the answer.
async fn store(session: &Session, current: Vec<String>, scopes: Vec<String>) -> anyhow::Result<Vec<String>> {
    if scopes == current {
        return Ok(current);
    }
    scopes_of(
        &session
            .call(Method::PUT, PATH, Some(json!({ "scopes": scopes })))
            .await?,
    )
}

pub async fn run(a: AdminArgs<AnonymousPullCommand>) -> anyhow::Result<Report> {
    let session = admin_session(a.registry.clone(), a.server.ca_file.clone()).await?;
    // The API replaces the whole list, so enable and disable read it first and change
    // only the scopes they were given. (Two owners changing it at the same moment: the
    // later write wins; the audit trail shows both.)
    let current = scopes_of(&session.call(Method::GET, PATH, None).await?)?;
    Ok(match a.command {
        AnonymousPullCommand::Show => report(current),
        AnonymousPullCommand::Enable { scopes } => {
            let added = if scopes.is_empty() {
                vec!["registry".to_owned()]
            } else {
                scopes
            };
            let mut next = current.clone();
            for s in added.iter().map(|s| s.trim()) {
                if !next.iter().any(|c| c == s) {
                    next.push(s.to_owned());
                }
            }
            report(store(&session, current, next).await?)
        }
        AnonymousPullCommand::Disable { scopes } if scopes.is_empty() => {
            report(store(&session, current, Vec::new()).await?)
        }
        AnonymousPullCommand::Disable { scopes } => {
            let removed: Vec<&str> = scopes.iter().map(|s| s.trim()).collect();
            // A scope that was never open on its own is named, so nobody takes the repository
            // for closed while another scope (e.g. registry) still opens it.
            let absent: Vec<&str> = removed
                .iter()
                .copied()
                .filter(|s| !current.iter().any(|c| c == s))
                .collect();
            let next: Vec<String> = current
                .iter()
                .filter(|c| !removed.contains(&c.as_str()))
                .cloned()
                .collect();
            let r = report(store(&session, current, next).await?);
            if absent.is_empty() {
                r
            } else {
                r.with_hint(format!(
                    "Not open on its own, so nothing was closed for: {} (`wharf anonymous-pull show` lists what is open)",
                    absent.join(", ")
                ))
            }
        }
    })
}
