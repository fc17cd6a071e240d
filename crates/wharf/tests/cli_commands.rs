//! `wharf anonymous-pull` against a real server, checked as a user would: the table output,
//! the `--output json` fields, and what the server does afterwards.

mod common;

use std::path::Path;

use common::cli::{json_err, json_ok, login_dir};
use common::{Server, text, wharf_cli};
use serde_json::json;

/// `wharf ARGS` that succeeds: its standard output and standard error.
fn run_ok(config: &Path, args: &[&str], stdin: &str) -> (String, String) {
    let out = wharf_cli(config, args, stdin);
    assert!(out.status.success(), "wharf {args:?} failed: {}", text(&out));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `wharf ARGS` that fails: nothing on standard output, one line on standard error.
fn run_err(config: &Path, args: &[&str], stdin: &str) -> String {
    let out = wharf_cli(config, args, stdin);
    assert!(
        !out.status.success(),
        "wharf {args:?} should fail: {}",
        text(&out)
    );
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr}");
    stderr
}

/// `GET /token` without credentials, as docker asks before an anonymous pull.
fn anonymous_token_status(server: &Server) -> u16 {
    server
        .http()
        .get(server.url("/token?service=wharf&scope=repository:public/app:pull"))
        .send()
        .expect("token")
        .status()
        .as_u16()
}

fn create_user(owner: &Path, name: &str, password: &str) {
    run_ok(owner, &["user", "create", name, "--password-stdin"], password);
}

#[test]
fn anonymous_pull_is_shown_opened_and_closed() {
    let server = Server::start();
    let owner = login_dir(&server, "admin", &server.admin_password);
    let cfg = owner.path();

    assert_eq!(
        run_ok(cfg, &["anonymous-pull", "show"], "").0,
        "Anonymous pull: off\n"
    );
    assert_eq!(
        json_ok(cfg, &["anonymous-pull", "show"], "").0,
        json!({ "scopes": [] })
    );
    assert_eq!(anonymous_token_status(&server), 401);

    // enable without --scope opens the whole registry.
    assert_eq!(
        run_ok(cfg, &["anonymous-pull", "enable"], "").0,
        "Anonymous pull: on for registry\n"
    );
    assert_eq!(anonymous_token_status(&server), 200);
    // Scopes add up; one already open is not repeated.
    assert_eq!(
        json_ok(
            cfg,
            &[
                "anonymous-pull",
                "enable",
                "--scope",
                "repository:public/*",
                "--scope",
                "registry"
            ],
            ""
        )
        .0,
        json!({ "scopes": ["registry", "repository:public/*"] })
    );
    // disable --scope closes only that one.
    assert_eq!(
        json_ok(cfg, &["anonymous-pull", "disable", "--scope", "registry"], "").0,
        json!({ "scopes": ["repository:public/*"] })
    );
    assert_eq!(anonymous_token_status(&server), 200);
    // A scope that was not open on its own is named, and nothing else changes.
    let (stdout, stderr) = run_ok(
        cfg,
        &["anonymous-pull", "disable", "--scope", "repository:public/app"],
        "",
    );
    assert_eq!(stdout, "Anonymous pull: on for repository:public/*\n");
    assert_eq!(
        stderr,
        "Not open on its own, so nothing was closed for: repository:public/app \
         (`wharf anonymous-pull show` lists what is open)\n"
    );
    // A malformed scope: the server's reason, nothing stored.
    assert_eq!(
        run_err(cfg, &["anonymous-pull", "enable", "--scope", "team"], ""),
        "wharf: the server answered 400 Bad Request: scope \"team\" must be registry, \
         repository:<name> or repository:<prefix>/*\n"
    );
    assert_eq!(
        json_err(cfg, &["anonymous-pull", "enable", "--scope", "team"], "").0,
        "SCOPE_INVALID"
    );

    // Without --scope, disable turns it off entirely.
    assert_eq!(
        run_ok(cfg, &["anonymous-pull", "disable"], "").0,
        "Anonymous pull: off\n"
    );
    assert_eq!(anonymous_token_status(&server), 401);

    // Only owners change it.
    create_user(cfg, "alice", "alice-password-1");
    let alice = login_dir(&server, "alice", "alice-password-1");
    assert_eq!(
        run_err(alice.path(), &["anonymous-pull", "enable"], ""),
        "wharf: not authorised: access to the requested resource is not authorized; \
         this needs the Owner role: log in as an owner with `wharf login`\n"
    );
    assert_eq!(
        json_err(alice.path(), &["anonymous-pull", "enable"], "").0,
        "UNAUTHORIZED"
    );
    assert_eq!(
        json_ok(cfg, &["anonymous-pull", "show"], "").0,
        json!({ "scopes": [] })
    );
    assert_eq!(anonymous_token_status(&server), 401);
}
