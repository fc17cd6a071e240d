//! `wharf content-trust show|enable|disable|reset`: the registry-level content-trust
//! policy through the admin API (`/api/v1/`), authenticated with the refresh token that
//! `wharf login` stored in the Docker config.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::docker_config::{config_dir, load_settings, stored_identity_token};
use super::http::percent_encode;
use super::report::{
    INVALID_RESPONSE, NOT_A_REGISTRY, NOT_CONFIRMED, NOT_LOGGED_IN, Report, connection_failed, fail,
    read_answer, server_error,
};
use crate::cli::{ContentTrustArgs, ContentTrustCommand, Output};

const DISABLE_WARNING: &str = "WARNING: disabling content trust deletes ALL trust data of EVERY repository \
(signatures and the keys the registry holds). This cannot be undone. Images stay in place; \
publishers will have to sign again after re-enabling.";

pub(crate) struct Session {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// The refresh token `wharf login` stored for `registry`.
fn identity_token(dir: &Path, registry: &str) -> anyhow::Result<String> {
    stored_identity_token(dir, registry)?.ok_or_else(|| {
        fail(
            NOT_LOGGED_IN,
            format!("not logged in to {registry}: run `wharf login {registry} -u USER` first"),
        )
    })
}

/// `application/x-www-form-urlencoded` (reqwest is built without its form feature).
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn session(args: &ContentTrustArgs) -> anyhow::Result<Session> {
    admin_session(args.registry.clone(), args.server.ca_file.clone()).await
}

/// An owner session on the admin API: the stored login exchanged for a
/// `registry:admin:*` token.
pub(crate) async fn admin_session(
    registry: Option<String>,
    ca_file: Option<PathBuf>,
) -> anyhow::Result<Session> {
    let dir = config_dir();
    let saved = load_settings(&dir);
    let registry = registry.or(saved.registry).ok_or_else(|| {
        fail(
            NOT_LOGGED_IN,
            "no registry selected: pass --registry HOST[:PORT] (or WHARF_REGISTRY), or run `wharf login HOST[:PORT] -u USER` first",
        )
    })?;
    // Before any request: without a stored login there is nothing to ask the server.
    let refresh = identity_token(&dir, &registry)?;
    let ca: Option<PathBuf> = ca_file.or(saved.ca_file);
    let http = super::http::client(ca.as_deref())?;
    let base = format!("https://{registry}");
    let ping = http
        .get(format!("{base}/v2/"))
        .send()
        .await
        .map_err(|e| connection_failed(&base, &e, "use --ca-file if it uses a private CA"))?;
    let (realm, service) = ping
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .and_then(super::login::parse_challenge)
        .ok_or_else(|| {
            fail(
                NOT_A_REGISTRY,
                format!("{base}/v2/ did not answer with a Bearer challenge; is it a Wharf registry?"),
            )
        })?;
    let resp = http
        .post(&realm)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("service", service.as_str()),
            ("scope", "registry:admin:*"),
            ("client_id", "wharf"),
        ]))
        .send()
        .await
        .map_err(|e| connection_failed(&format!("the token service {realm}"), &e, ""))?;
    let (status, body) = read_answer(resp).await;
    if !status.is_success() {
        let (code, message) = server_error(&body)
            .unwrap_or_else(|| (INVALID_RESPONSE.to_owned(), format!("it answered {status}")));
        return Err(fail(
            &code,
            format!(
                "the token service refused the stored login for {registry}: {message}; run `wharf login {registry} -u USER` again"
            ),
        ));
    }
    let token = body["access_token"]
        .as_str()
        .or(body["token"].as_str())
        .ok_or_else(|| fail(INVALID_RESPONSE, "the token service returned no token"))?
        .to_owned();
    Ok(Session { http, base, token })
}

impl Session {
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| connection_failed(&format!("the admin API at {}", self.base), &e, ""))?;
        let (status, v) = read_answer(resp).await;
        if status.is_success() {
            return Ok(v);
        }
        let Some((code, message)) = server_error(&v) else {
            return Err(fail(
                INVALID_RESPONSE,
                format!("the server answered {status} without an error message"),
            ));
        };
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(fail(
                &code,
                format!(
                    "not authorised: {message}; this needs the Owner role: log in as an owner with `wharf login`"
                ),
            ));
        }
        Err(fail(&code, format!("the server answered {status}: {message}")))
    }
}

/// Go ahead only with `--yes` or a "yes" on the terminal. People see the warning even
/// with `--yes`; in JSON mode it is shown only when a question follows, so that standard
/// error otherwise carries nothing but an error object.
fn confirmed(yes: bool, output: Output, warning: &str, question: &str) -> anyhow::Result<()> {
    let terminal = std::io::stdin().is_terminal();
    if output == Output::Table || (!yes && terminal) {
        eprintln!("{warning}");
    }
    if yes {
        return Ok(());
    }
    if !terminal {
        return Err(fail(
            NOT_CONFIRMED,
            "refusing without confirmation: standard input is not a terminal; pass --yes to confirm",
        ));
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(fail(NOT_CONFIRMED, "aborted; nothing was changed"))
    }
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
