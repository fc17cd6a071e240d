//! Passwords: an owner resets a user's (`PUT /api/v1/users/{name}/password`), a user
//! changes their own (`POST /api/v1/account/password`, current password required).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::gate::{OwnerActor, TokenActor};
use super::request::json_body;
use crate::app::AppState;
use crate::wire::WireError;

#[derive(serde::Deserialize, Default)]
struct NewPassword {
    #[serde(default)]
    password: Option<String>,
}

/// Empty body or no `password`: a generated one, returned once.
pub async fn reset_user_password(
    State(state): State<AppState>,
    Extension(OwnerActor(actor)): Extension<OwnerActor>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Response, WireError> {
    let req: NewPassword = if bytes.is_empty() {
        NewPassword::default()
    } else {
        json_body(&bytes, r#"{"password": "..."} (or no body for a generated one)"#)?
    };
    let (user, generated) = state.access.reset_password(&actor, &name, req.password).await?;
    let mut out = json!(user);
    if let Some(p) = generated {
        out["password"] = json!(p);
    }
    Ok(axum::Json(out).into_response())
}

#[derive(serde::Deserialize)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

pub async fn change_own_password(
    State(state): State<AppState>,
    Extension(TokenActor(actor)): Extension<TokenActor>,
    bytes: Bytes,
) -> Result<Response, WireError> {
    let req: PasswordChange = json_body(&bytes, r#"{"current_password": "...", "new_password": "..."}"#)?;
    state
        .identity
        .change_own_password(&actor, &req.current_password, &req.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
