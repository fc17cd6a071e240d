//! Rotating the access-token signing key end to end: `wharf token-key show|rotate`
//! against a real server, tokens checked on `/v2/` before and after each rotation and
//! after a restart. Needs no docker daemon: the CLI's login lives in a plain directory.

mod common;

use std::path::Path;
use std::process::Output;

use base64::Engine;
use common::{Server, text, wharf_cli};
use serde_json::Value;

/// `wharf ARGS` with the login stored in `config` (a Docker config directory).
fn wharf(config: &Path, args: &[&str], stdin: &str) -> Output {
    wharf_cli(config, args, stdin)
}

fn ok(config: &Path, args: &[&str]) -> String {
    let out = wharf(config, args, "");
    assert!(out.status.success(), "wharf {args:?} failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(config: &Path, args: &[&str]) -> Value {
    let out = ok(config, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("wharf {args:?}: {e}: {out}"))
}

/// A `wharf login` as `user`, kept in its own config directory.
fn login(server: &Server, user: &str, password: &str) -> tempfile::TempDir {
    let config = tempfile::tempdir().expect("tempdir");
    let ca = server.ca.to_str().expect("ca path");
    let out = wharf(
        config.path(),
        &[
            "login",
            &server.host,
            "-u",
            user,
            "--password-stdin",
            "--ca-file",
            ca,
        ],
        password,
    );
    assert!(out.status.success(), "login {user}: {}", text(&out));
    config
}

/// The `kid` in a token's JWT header.
fn kid_of(token: &str) -> String {
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').next().expect("header"))
        .expect("base64");
    let header: Value = serde_json::from_slice(&header).expect("json");
    header["kid"].as_str().expect("kid").to_owned()
}

/// `GET /v2/` with `token`: the status and the challenge, if any.
fn ping(server: &Server, token: &str) -> (u16, String) {
    let resp = server
        .http()
        .get(server.url("/v2/"))
        .bearer_auth(token)
        .send()
        .expect("ping");
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (resp.status().as_u16(), challenge)
}

fn key_id(keys: &Value, which: &str) -> String {
    keys[which]["key_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no {which} key: {keys}"))
        .to_owned()
}

/// An object's field names, sorted.
fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

/// A time as the admin API shows it: RFC 3339 in UTC to the second.
fn utc_time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    let t = chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        s,
        "not UTC to the second"
    );
    t.to_utc()
}

/// What `show` answers after the rotation that answered `rotation`.
fn shown_after(rotation: &Value) -> Value {
    let mut keys = rotation.clone();
    keys.as_object_mut().expect("object").remove("retired_key_id");
    keys
}

#[test]
fn rotation_keeps_previous_tokens_until_the_next_one_and_survives_restart() {
    let mut server = Server::start();
    let admin = login(&server, "admin", &server.admin_password);
    let admin = admin.path();

    let first = json(admin, &["token-key", "show", "--output", "json"]);
    let k0 = key_id(&first, "current");
    assert!(first["previous"].is_null(), "{first}");
    assert_eq!(keys(&first), ["current", "previous"]);
    assert_eq!(keys(&first["current"]), ["created_at", "key_id"]);
    let made = utc_time(&first["current"]["created_at"]);
    let age = chrono::Utc::now().signed_duration_since(made).num_seconds();
    assert!((-5..600).contains(&age), "{first}");
    let t0 = server.token(&[]);
    assert_eq!(kid_of(&t0), k0);
    assert_eq!(ping(&server, &t0).0, 200);

    // First rotation: new tokens carry the new key, the old token still works.
    let once = json(admin, &["token-key", "rotate", "--output", "json"]);
    assert_eq!(keys(&once), ["current", "previous", "retired_key_id"]);
    let k1 = key_id(&once, "current");
    // The previous key keeps its own time; the new one was made now.
    assert_eq!(once["previous"], first["current"]);
    assert!(utc_time(&once["current"]["created_at"]) >= made, "{once}");
    assert_ne!(k1, k0);
    assert_eq!(key_id(&once, "previous"), k0);
    assert!(once["retired_key_id"].is_null(), "{once}");
    assert_eq!(ping(&server, &t0).0, 200);
    let t1 = server.token(&[]);
    assert_eq!(kid_of(&t1), k1);
    assert_eq!(ping(&server, &t1).0, 200);

    // A principal without the Owner role is refused and nothing changes.
    let password = "bob-password-1";
    let out = wharf(admin, &["user", "create", "bob", "--password-stdin"], password);
    assert!(out.status.success(), "{}", text(&out));
    ok(
        admin,
        &[
            "role",
            "assignment",
            "create",
            "--role",
            "AcrPush",
            "--assignee",
            "bob",
        ],
    );
    let bob_token = server
        .token_as("bob", password, &["registry:admin:*"])
        .expect("bob's token");
    let resp = server
        .http()
        .post(server.url("/api/v1/token-signing-key/rotate"))
        .bearer_auth(&bob_token)
        .send()
        .expect("rotate as bob");
    assert_eq!(resp.status().as_u16(), 401);
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        challenge.contains("scope=\"registry:admin:*\"") && challenge.contains("insufficient_scope"),
        "{challenge}"
    );
    let bob = login(&server, "bob", password);
    let out = wharf(bob.path(), &["token-key", "rotate"], "");
    assert!(!out.status.success(), "bob rotated: {}", text(&out));
    assert!(text(&out).contains("not authorised"), "{}", text(&out));
    assert_eq!(
        json(admin, &["token-key", "show", "--output", "json"]),
        shown_after(&once)
    );

    // Second rotation: the first key is retired and its token refused with a challenge;
    // the stored login (a refresh token, not signed by these keys) keeps working.
    let twice = json(admin, &["token-key", "rotate", "--output", "json"]);
    let k2 = key_id(&twice, "current");
    assert_eq!(key_id(&twice, "previous"), k1);
    assert_eq!(twice["retired_key_id"].as_str(), Some(k0.as_str()));
    let (status, challenge) = ping(&server, &t0);
    assert_eq!(status, 401);
    assert!(
        challenge.starts_with(&format!(
            "Bearer realm=\"https://{}/token\",service=\"wharf\"",
            server.host
        )),
        "{challenge}"
    );
    assert_eq!(ping(&server, &t1).0, 200);
    let t2 = server.token(&[]);
    assert_eq!(kid_of(&t2), k2);

    let audit = json(admin, &["audit", "list", "--output", "json"]);
    let rotations: Vec<&Value> = audit
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["action"] == "token-signing-key.rotate")
        .collect();
    assert_eq!(rotations.len(), 2, "{audit}");
    assert_eq!(rotations[0]["target"].as_str(), Some(k2.as_str()));
    assert_eq!(rotations[1]["target"].as_str(), Some(k1.as_str()));
    for r in &rotations {
        assert_eq!(r["actor"], "admin");
        assert!(
            r["detail"].as_str().unwrap_or("").starts_with("from 127.0.0.1"),
            "{r}"
        );
    }

    // A restart keeps both keys: tokens issued before it stay exactly as valid.
    server.restart();
    assert_eq!(
        json(admin, &["token-key", "show", "--output", "json"]),
        shown_after(&twice)
    );
    assert_eq!(ping(&server, &t1).0, 200);
    assert_eq!(ping(&server, &t2).0, 200);
    assert_eq!(ping(&server, &t0).0, 401);
    let table = ok(admin, &["token-key", "show"]);
    let created = |which: &str| twice[which]["created_at"].as_str().expect("time").to_owned();
    assert_eq!(
        table,
        format!(
            "Current key: {k2} (created {})\nPrevious key: {k1} (created {})\n",
            created("current"),
            created("previous")
        )
    );
}
