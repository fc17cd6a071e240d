//! `wharf account password`: the stored login's user changes their own password
//! (`POST /api/v1/account/password`, any valid token of theirs; no Owner role needed).

use reqwest::Method;
use serde_json::json;

use super::prompt::{secret_from_terminal, stdin_is_terminal, two_passwords_from_stdin};
use super::report::{INVALID_INPUT, INVALID_RESPONSE, Report, fail, read_answer, server_error};
use super::session::{Session, login_command, open};
use crate::cli::{AccountCommand, AdminArgs};

/// The current and the new password, typed twice so a typo does not lock the user out.
fn passwords_from_terminal() -> anyhow::Result<(String, String)> {
    let current = secret_from_terminal("Current password")?;
    let new = secret_from_terminal("New password")?;
    let again = secret_from_terminal("New password again")?;
    if new != again {
        return Err(fail(
            INVALID_INPUT,
            "the two new passwords differ; nothing was changed",
        ));
    }
    if current.is_empty() || new.is_empty() {
        return Err(fail(INVALID_INPUT, "a password is empty; nothing was changed"));
    }
    Ok((current, new))
}

async fn change(session: &Session, current: &str, new: &str) -> anyhow::Result<()> {
    let resp = session
        .send(
            Method::POST,
            "/api/v1/account/password",
            Some(json!({ "current_password": current, "new_password": new })),
        )
        .await?;
    // The access gate's refusals carry a Bearer challenge; a 401 without one is the
    // handler's own: the current password did not match.
    let challenged = resp.headers().contains_key(reqwest::header::WWW_AUTHENTICATE);
    let (status, v) = read_answer(resp).await;
    if status.is_success() {
        return Ok(());
    }
    let Some((code, message)) = server_error(&v) else {
        return Err(fail(
            INVALID_RESPONSE,
            format!("the server answered {status} without an error message"),
        ));
    };
    Err(match status {
        reqwest::StatusCode::UNAUTHORIZED if !challenged => fail(
            &code,
            format!("the current password was refused: {message}; nothing was changed"),
        ),
        reqwest::StatusCode::UNAUTHORIZED => fail(
            &code,
            format!(
                "not authorised: {message}; run `{}` again",
                login_command(session.registry(), session.username())
            ),
        ),
        _ => fail(&code, format!("the server answered {status}: {message}")),
    })
}

pub async fn run(a: AdminArgs<AccountCommand>) -> anyhow::Result<Report> {
    let AccountCommand::Password { password_stdin } = a.command;
    // Refused before anything is asked of the server: there is no one to ask.
    if !password_stdin && !stdin_is_terminal() {
        return Err(fail(
            INVALID_INPUT,
            "standard input is not a terminal: pass --password-stdin with the current and the new password on two lines",
        ));
    }
    // A token that only proves who the caller is: changing one's own password needs no
    // role. Opened first, so nobody types passwords for a login that is not there.
    let session = open(a.registry, a.server.ca_file, &[]).await?;
    let (current, new) = if password_stdin {
        two_passwords_from_stdin("the current password", "the new one")?
    } else {
        passwords_from_terminal()?
    };
    change(&session, &current, &new).await?;
    let registry = session.registry();
    let who = session.username().map_or_else(
        || "Password changed".to_owned(),
        |u| format!("Password changed for {u}"),
    );
    // The server revoked every login of this user, the one stored here included (and
    // docker's, which is the same entry).
    let text = format!(
        "{who}\nYour stored login for {registry} no longer works (the server revoked it): run `{}` again",
        login_command(registry, session.username())
    );
    Ok(Report::new(json!({ "changed": true, "login_again": true }), text))
}
