//! `wharf content-trust show|enable|disable|reset`: the registry-level content-trust
//! policy through the admin API (`/api/v1/`), authenticated with the refresh token that
//! `wharf login` stored in the Docker config.

use serde_json::json;

use super::prompt::confirmed;
use super::report::Report;
use super::session::{Session, admin_session};
use crate::cli::{ContentTrustArgs, ContentTrustCommand, Output};

const DISABLE_WARNING: &str = "WARNING: disabling content trust deletes ALL trust data of EVERY repository \
(signatures and the keys the registry holds). This cannot be undone. Images stay in place; \
publishers will have to sign again after re-enabling.";

async fn session(args: &ContentTrustArgs) -> anyhow::Result<Session> {
    admin_session(args.registry.clone(), args.server.ca_file.clone()).await
}

fn on_off(enabled: bool) -> &'static str {
    if enabled { "enabled" } else { "disabled" }
}

pub async fn run(args: ContentTrustArgs, output: Output) -> anyhow::Result<Report> {
    Ok(match &args.command {
        ContentTrustCommand::Show => {
            let v = session(&args)
                .await?
                .call(reqwest::Method::GET, "/api/v1/content-trust", None)
                .await?;
            let on = v["enabled"].as_bool().unwrap_or(false);
            Report::new(json!({ "enabled": on }), format!("Content trust: {}", on_off(on)))
        }
        ContentTrustCommand::Enable => {
            let v = session(&args)
                .await?
                .call(
                    reqwest::Method::PUT,
                    "/api/v1/content-trust",
                    Some(json!({"enabled": true})),
                )
                .await?;
            Report::new(
                json!({ "enabled": true, "changed": v["changed"].as_bool().unwrap_or(false) }),
                "Content trust: enabled",
            )
        }
        ContentTrustCommand::Disable { yes } => {
            confirmed(
                *yes,
                output,
                DISABLE_WARNING,
                "Disable content trust and delete all trust data?",
            )?;
            let v = session(&args)
                .await?
                .call(
                    reqwest::Method::PUT,
                    "/api/v1/content-trust",
                    Some(json!({"enabled": false, "confirm_delete_all_trust_data": true})),
                )
                .await?;
            let n = v["repositories_wiped"].as_u64().unwrap_or(0);
            Report::new(
                json!({
                    "enabled": false,
                    "changed": v["changed"].as_bool().unwrap_or(false),
                    "repositories_wiped": n,
                }),
                format!("Content trust: disabled (trust data of {n} repositories deleted)"),
            )
        }
        ContentTrustCommand::Reset { repository, yes } => {
            confirmed(
                *yes,
                output,
                &format!(
                    "WARNING: this deletes all trust data (signatures, registry-held keys) of {repository}. \
This cannot be undone; its images stay."
                ),
                &format!("Reset trust data of {repository}?"),
            )?;
            let v = session(&args)
                .await?
                .call(
                    reqwest::Method::DELETE,
                    &format!("/api/v1/repositories/{repository}/trust"),
                    None,
                )
                .await?;
            let deleted = v["deleted"].as_bool().unwrap_or(false);
            let text = if deleted {
                format!("Trust data of {repository} deleted")
            } else {
                format!("{repository} had no trust data")
            };
            Report::new(json!({ "repository": repository, "deleted": deleted }), text)
        }
    })
}
