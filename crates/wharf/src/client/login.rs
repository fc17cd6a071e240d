//! `wharf login`: follow the registry's Bearer challenge to its token service, exchange
//! the password for a refresh token, and store it where docker will use it.
//! `wharf logout`: forget it again.

use std::io::Read;

use serde_json::json;

use super::docker_config::{
    WharfClientSettings, config_dir, load_settings, remove_login, store_identity_token, store_settings,
};
use super::report::{
    INVALID_INPUT, INVALID_RESPONSE, NOT_A_REGISTRY, NOT_LOGGED_IN, Report, connection_failed, fail,
    read_answer, server_error,
};
use crate::cli::{LoginArgs, LogoutArgs};

/// The token service (realm, service) the registry at `base` names in the Bearer
/// challenge of its `/v2/` ping: where `wharf login` and every later session get tokens.
pub(crate) async fn token_service(http: &reqwest::Client, base: &str) -> anyhow::Result<(String, String)> {
    let ping = http
        .get(format!("{base}/v2/"))
        .send()
        .await
        .map_err(|e| connection_failed(base, &e, "use --ca-file if it uses a private CA"))?;
    ping.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_challenge)
        .ok_or_else(|| {
            fail(
                NOT_A_REGISTRY,
                format!("{base}/v2/ did not answer with a Bearer challenge; is it a Wharf registry?"),
            )
        })
}

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

pub async fn login(args: LoginArgs) -> anyhow::Result<Report> {
    let password = if args.password_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| {
            fail(
                INVALID_INPUT,
                format!("cannot read the password from standard input: {e}"),
            )
        })?;
        s.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        std::env::var("WHARF_PASSWORD").map_err(|_| {
            fail(
                INVALID_INPUT,
                "give the password with --password-stdin (or WHARF_PASSWORD)",
            )
        })?
    };
    if password.is_empty() {
        return Err(fail(INVALID_INPUT, "the password is empty"));
    }
    let ca = args.server.ca_file.as_deref();
    let http = super::http::client(ca)?;
    let base = format!("https://{}", args.registry);
    let (realm, service) = token_service(&http, &base).await?;
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
        .map_err(|e| connection_failed(&format!("the token service {realm}"), &e, ""))?;
    let (status, body) = read_answer(resp).await;
    if !status.is_success() {
        // The server's own words: a lockout says how long it lasts, as docker shows it.
        return Err(match server_error(&body) {
            Some((code, message)) => fail(&code, format!("login refused: {message}")),
            None => fail(
                INVALID_RESPONSE,
                format!("login refused: the token service answered {status}"),
            ),
        });
    }
    let refresh = body["refresh_token"]
        .as_str()
        .ok_or_else(|| fail(INVALID_RESPONSE, "the token service returned no refresh token"))?;
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
    let config_file = dir.join("config.json");
    Ok(Report::new(
        json!({
            "registry": args.registry,
            "username": args.username,
            "config_file": config_file,
        }),
        format!("Login Succeeded (credential stored in {})", config_file.display()),
    ))
}

/// `wharf logout [REGISTRY]`: forget the stored login, as `docker logout` does.
pub fn logout(args: LogoutArgs) -> anyhow::Result<Report> {
    let dir = config_dir();
    let registry = args
        .registry
        .or_else(|| load_settings(&dir).registry)
        .ok_or_else(|| {
            fail(
                NOT_LOGGED_IN,
                "no registry selected: name it (`wharf logout HOST[:PORT]`) or set WHARF_REGISTRY",
            )
        })?;
    let removed = remove_login(&dir, &registry)?;
    let config_file = dir.join("config.json");
    // The server has no endpoint that revokes one refresh token, so logging out can only
    // forget it; say so rather than let people believe a copied token died too.
    let text = if removed {
        format!(
            "Removed the login for {registry} from {} (forgotten here only: the server cannot revoke a single stored login)",
            config_file.display()
        )
    } else {
        format!(
            "Not logged in to {registry}: {} holds no login for it",
            config_file.display()
        )
    };
    Ok(Report::new(
        json!({
            "registry": registry,
            "removed": removed,
            "revoked_on_server": false,
            "config_file": config_file,
        }),
        text,
    ))
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
