//! Running the `wharf` client as scripts do: `--output json` answers and errors, and
//! logins in Docker config directories of their own.

use std::path::Path;

use serde_json::Value;

use super::{Server, text, wharf_cli};

/// `wharf ARGS --output json` with the login stored in `config`: it succeeds, writes
/// nothing to standard error, and prints one JSON document. That document and the raw
/// standard output (to count secrets in).
pub fn json_ok(config: &Path, args: &[&str], stdin: &str) -> (Value, String) {
    let args = [args, &["--output", "json"]].concat();
    let out = wharf_cli(config, &args, stdin);
    assert!(out.status.success(), "wharf {args:?} failed: {}", text(&out));
    assert!(
        out.stderr.is_empty(),
        "wharf {args:?} wrote to standard error in JSON mode: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("wharf {args:?}: {e}: {stdout}"));
    (v, stdout)
}

/// `wharf ARGS --output json` that must fail: nothing on standard output, exactly one
/// JSON object `{"error":{"code","message"}}` on standard error. Its code and message.
pub fn json_err(config: &Path, args: &[&str], stdin: &str) -> (String, String) {
    let args = [args, &["--output", "json"]].concat();
    let out = wharf_cli(config, &args, stdin);
    assert!(
        !out.status.success(),
        "wharf {args:?} should fail: {}",
        text(&out)
    );
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line expected: {stderr}"
    );
    let v: Value = serde_json::from_str(&stderr).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"));
    assert_eq!(keys(&v), ["error"], "{v}");
    assert_eq!(keys(&v["error"]), ["code", "message"], "{v}");
    (
        v["error"]["code"].as_str().expect("code").to_owned(),
        v["error"]["message"].as_str().expect("message").to_owned(),
    )
}

/// An object's field names, sorted.
pub fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

/// A `wharf login` as `user` in a Docker config directory of its own.
pub fn login_dir(server: &Server, user: &str, password: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = server.ca.to_str().expect("ca path");
    let args = [
        "login",
        &server.host,
        "-u",
        user,
        "--password-stdin",
        "--ca-file",
        ca,
    ];
    let out = wharf_cli(dir.path(), &args, password);
    assert!(out.status.success(), "login {user}: {}", text(&out));
    dir
}
