//! The token service (`/token`): Basic credentials via GET, as `docker login` and pulls
//! use it, and the OAuth2 form via POST (password and refresh-token grants), as docker
//! uses it once it holds an identity token.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::RouteError;
use super::request::pairs;
use super::{Peer, peer_ip};
use crate::app::AppState;
use crate::auth::access::parse_scopes;
use crate::clock::rfc3339;
use crate::wire::WireError;

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn bad_request(message: &str) -> WireError {
    RouteError::TokenRequestInvalid(message.to_owned()).into()
}

fn check_service(state: &AppState, pairs: &[(String, String)]) -> Result<(), WireError> {
    match first(pairs, "service") {
        Some(s) if s != state.identity.service() => Err(bad_request(&format!(
            "this token service issues tokens for service {:?}",
            state.identity.service()
        ))),
        _ => Ok(()),
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let raw = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let encoded = raw
        .strip_prefix("Basic ")
        .or_else(|| raw.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

pub async fn get_token(
    State(state): State<AppState>,
    peer: Peer,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WireError> {
    let pairs = pairs(query.as_deref().unwrap_or(""));
    check_service(&state, &pairs)?;
    let Some((user, pass)) = basic_credentials(&headers) else {
        // No credentials: docker and notary ask like this before pulling. With anonymous
        // pull open somewhere, they get a token for what it opens; otherwise a login is
        // required.
        if state.anonymous.enabled_anywhere() {
            let scopes = parse_scopes(
                pairs
                    .iter()
                    .filter(|(k, _)| k == "scope")
                    .map(|(_, v)| v.as_str()),
            );
            let issued = state
                .identity
                .issue_anonymous(&state.anonymous.grants(), &scopes)?;
            let body = json!({
                "token": issued.token,
                "access_token": issued.token,
                "expires_in": issued.expires_in,
                "issued_at": rfc3339(issued.issued_at),
            });
            return Ok((StatusCode::OK, axum::Json(body)).into_response());
        }
        return Err(RouteError::Unauthorized {
            challenge: None,
            message: "authentication required: send Basic credentials".into(),
        }
        .into());
    };
    let principal = state
        .identity
        .login_password(&user, &pass, peer_ip(&peer))
        .await
        .inspect_err(|e| {
            tracing::warn!(user = %user, error = %e, "token request refused");
        })?;
    tracing::Span::current().record("principal", principal.name.as_str());
    let scopes = parse_scopes(
        pairs
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.as_str()),
    );
    let issued = state.identity.issue(&principal, &scopes).await?;
    let mut body = json!({
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": rfc3339(issued.issued_at),
    });
    if first(&pairs, "offline_token") == Some("true") {
        body["refresh_token"] = json!(state.identity.new_refresh_token(&principal).await?);
    }
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

pub async fn post_token(
    State(state): State<AppState>,
    peer: Peer,
    body: Bytes,
) -> Result<Response, WireError> {
    let form = pairs(std::str::from_utf8(&body).map_err(|_| bad_request("form body is not UTF-8"))?);
    check_service(&state, &form)?;
    let principal = match first(&form, "grant_type") {
        Some("refresh_token") => {
            let token =
                first(&form, "refresh_token").ok_or_else(|| bad_request("refresh_token is missing"))?;
            state.identity.login_refresh(token).await?
        }
        Some("password") => {
            let user = first(&form, "username").ok_or_else(|| bad_request("username is missing"))?;
            let pass = first(&form, "password").ok_or_else(|| bad_request("password is missing"))?;
            state
                .identity
                .login_password(user, pass, peer_ip(&peer))
                .await
                .inspect_err(|e| tracing::warn!(user = %user, error = %e, "token request refused"))?
        }
        _ => return Err(bad_request("grant_type must be password or refresh_token")),
    };
    tracing::Span::current().record("principal", principal.name.as_str());
    let scopes = parse_scopes(first(&form, "scope"));
    let issued = state.identity.issue(&principal, &scopes).await?;
    let mut out = json!({
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "issued_at": rfc3339(issued.issued_at),
    });
    if first(&form, "grant_type") == Some("password") && first(&form, "access_type") == Some("offline") {
        out["refresh_token"] = json!(state.identity.new_refresh_token(&principal).await?);
    }
    Ok((StatusCode::OK, axum::Json(out)).into_response())
}
