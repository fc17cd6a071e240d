//! `wharf login`: follow the registry's Bearer challenge to its token service, exchange
//! the password for a refresh token, and store it where docker will use it.

use std::io::Read;

use anyhow::{Context, bail};

use super::docker_config::{WharfClientSettings, config_dir, store_identity_token, store_settings};
use crate::cli::LoginArgs;

/// `realm` and `service` from a `Bearer realm="…",service="…"` challenge.
pub(crate) fn parse_challenge(header: &str) -> Option<(String, String)> {
    let params = header.strip_prefix("Bearer ")?;
    let mut realm = None;
    let mut service = None;
    for part in params.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        let v = v.trim_matches('"').to_owned();
        match k {
            "realm" => realm = Some(v),
            "service" => service = Some(v),
            _ => {}
        }
    }
    Some((realm?, service?))
}

pub async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let password = if args.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the password from standard input")?;
        s.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        std::env::var("WHARF_PASSWORD")
            .context("give the password with --password-stdin (or WHARF_PASSWORD)")?
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    let ca = args.server.ca_file.as_deref();
    let http = super::http::client(ca)?;
    let base = format!("https://{}", args.registry);
    let ping = http
        .get(format!("{base}/v2/"))
        .send()
        .await
        .with_context(|| format!("cannot reach {base} (use --ca-file if it uses a private CA)"))?;
    let challenge = ping
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_challenge)
        .with_context(|| format!("{base}/v2/ did not answer with a Bearer challenge; is it a registry?"))?;
    let (realm, service) = challenge;
    let resp = http
        .get(&realm)
        .query(&[
            ("service", service.as_str()),
            ("account", &args.username),
            ("offline_token", "true"),
            ("client_id", "wharf"),
        ])
        .basic_auth(&args.username, Some(&password))
        .send()
        .await
        .with_context(|| format!("cannot reach the token service {realm}"))?;
    if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
        bail!("login refused: invalid username or password");
    }
    if !resp.status().is_success() {
        bail!("token service answered {}", resp.status());
    }
    let body: serde_json::Value = resp.json().await.context("token service sent invalid JSON")?;
    let refresh = body["refresh_token"]
        .as_str()
        .context("token service returned no refresh token")?;
    let dir = config_dir();
    store_identity_token(&dir, &args.registry, &args.username, refresh)?;
    let ca_file = ca.map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()));
    store_settings(
        &dir,
        &WharfClientSettings {
            registry: Some(args.registry.clone()),
            ca_file,
        },
    )?;
    println!(
        "Login Succeeded (credential stored in {})",
        dir.join("config.json").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parsing() {
        let (realm, service) =
            parse_challenge(r#"Bearer realm="https://localhost:5000/token",service="wharf",scope="x""#)
                .unwrap();
        assert_eq!(realm, "https://localhost:5000/token");
        assert_eq!(service, "wharf");
        assert!(parse_challenge("Basic realm=x").is_none());
    }
}
