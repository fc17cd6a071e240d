//! `wharf content-trust show|enable|disable|reset`: the registry-level content-trust
//! policy through the admin API (`/api/v1/`), authenticated with the refresh token that
//! `wharf login` stored in the Docker config.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::docker_config::{WharfClientSettings, config_dir};
use super::http::percent_encode;
use crate::cli::{ContentTrustArgs, ContentTrustCommand};

const DISABLE_WARNING: &str = "WARNING: disabling content trust deletes ALL trust data of EVERY repository \
(signatures and the keys the registry holds). This cannot be undone. Images stay in place; \
publishers will have to sign again after re-enabling.";

pub(crate) struct Session {
    http: reqwest::Client,
    base: String,
    token: String,
}

fn settings() -> WharfClientSettings {
    std::fs::read_to_string(config_dir().join("wharf.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn identity_token(registry: &str) -> anyhow::Result<String> {
    let path = config_dir().join("config.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}; run `wharf login {registry}` first",
            path.display()
        )
    })?;
    let doc: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
    doc["auths"][registry]["identitytoken"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no stored login for {registry}; run `wharf login {registry}` first"))
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
    let saved = settings();
    let registry = registry.or(saved.registry).context(
        "no registry selected: pass --registry HOST[:PORT] (or WHARF_REGISTRY), or run `wharf login` first",
    )?;
    let ca: Option<PathBuf> = ca_file.or(saved.ca_file);
    let http = super::http::client(ca.as_deref())?;
    let base = format!("https://{registry}");
    let ping = http
        .get(format!("{base}/v2/"))
        .send()
        .await
        .with_context(|| format!("cannot reach {base} (use --ca-file if it uses a private CA)"))?;
    let (realm, service) = ping
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .and_then(super::login::parse_challenge)
        .with_context(|| {
            format!("{base}/v2/ did not answer with a Bearer challenge; is it a Wharf registry?")
        })?;
    let refresh = identity_token(&registry)?;
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
        .with_context(|| format!("cannot reach the token service {realm}"))?;
    if !resp.status().is_success() {
        bail!(
            "the token service refused the stored login ({}); run `wharf login {registry}` again",
            resp.status()
        );
    }
    let body: Value = resp.json().await.context("token service sent invalid JSON")?;
    let token = body["access_token"]
        .as_str()
        .or(body["token"].as_str())
        .context("token service returned no token")?
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
        let resp = req.send().await.context("cannot reach the admin API")?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("not authorised: this needs the Owner role; log in as an owner with `wharf login`");
        }
        if !status.is_success() {
            let msg = v["errors"][0]["message"].as_str().unwrap_or("no details");
            bail!("the server answered {status}: {msg}");
        }
        Ok(v)
    }
}

/// Ask on the terminal; refuse outright when nobody can answer.
fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("refusing without confirmation: standard input is not a terminal; pass --yes to confirm");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

pub async fn run(args: ContentTrustArgs) -> anyhow::Result<()> {
    match &args.command {
        ContentTrustCommand::Show => {
            let v = session(&args)
                .await?
                .call(reqwest::Method::GET, "/api/v1/content-trust", None)
                .await?;
            let on = v["enabled"].as_bool().unwrap_or(false);
            println!("Content trust: {}", if on { "enabled" } else { "disabled" });
        }
        ContentTrustCommand::Enable => {
            session(&args)
                .await?
                .call(
                    reqwest::Method::PUT,
                    "/api/v1/content-trust",
                    Some(json!({"enabled": true})),
                )
                .await?;
            println!("Content trust: enabled");
        }
        ContentTrustCommand::Disable { yes } => {
            eprintln!("{DISABLE_WARNING}");
            if !yes && !confirm("Disable content trust and delete all trust data?")? {
                bail!("aborted; nothing was changed");
            }
            let v = session(&args)
                .await?
                .call(
                    reqwest::Method::PUT,
                    "/api/v1/content-trust",
                    Some(json!({"enabled": false, "confirm_delete_all_trust_data": true})),
                )
                .await?;
            let n = v["repositories_wiped"].as_u64().unwrap_or(0);
            println!("Content trust: disabled (trust data of {n} repositories deleted)");
        }
        ContentTrustCommand::Reset { repository, yes } => {
            eprintln!(
                "WARNING: this deletes all trust data (signatures, registry-held keys) of {repository}. \
This cannot be undone; its images stay."
            );
            if !yes && !confirm(&format!("Reset trust data of {repository}?"))? {
                bail!("aborted; nothing was changed");
            }
            let v = session(&args)
                .await?
                .call(
                    reqwest::Method::DELETE,
                    &format!("/api/v1/repositories/{repository}/trust"),
                    None,
                )
                .await?;
            if v["deleted"].as_bool().unwrap_or(false) {
                println!("Trust data of {repository} deleted");
            } else {
                println!("{repository} had no trust data");
            }
        }
    }
    Ok(())
}
