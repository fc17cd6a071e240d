//! Trust names (GUNs) have one reading. The security review's reproductions, each against
//! a real server: principals without a signing right, or with rights only under `team/*`,
//! shape a token request and a trust request (GUN in the path, Host header of their
//! choosing) to write or delete another repository's trust data. Every attempt must be
//! refused with the exact error and leave the trust data as it was.
//!
//! The uploads come from `tests/tools/trust_init.py`, an independent Python TUF signer
//! that makes a complete, valid first publish (root with CN = GUN, targets, the server's
//! snapshot and timestamp keys), so a refusal can only come from the name or the caller:
//! the owner's identical upload for the real GUN is accepted (the control).

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, create_user, text, wharf_cli};

const PYTHON: &str = "/usr/bin/python3";

fn tool() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/trust_init.py")
}

#[derive(Debug)]
struct Upload {
    /// Status of the `GET <role>.key` requests (200 when both answered).
    keys: u16,
    /// Status of the POST, when the key requests passed.
    status: Option<u16>,
    body: String,
}

/// A full first publish of `gun` with `token`, sending `Host: host`.
fn publish(server: &Server, gun: &str, host: &str, token: &str) -> Upload {
    assert!(
        Path::new(PYTHON).exists(),
        "missing tool `{PYTHON}`: run `sudo scripts/install-deps.sh`"
    );
    let out = Command::new(PYTHON)
        .arg(tool())
        .arg(format!("https://127.0.0.1:{}", server.port))
        .arg(gun)
        .args(["--host", host, "--token", token, "--ca"])
        .arg(&server.ca)
        .output()
        .expect("run trust_init.py");
    assert!(out.status.success(), "trust_init.py: {}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("trust_init.py output ({e}): {}", text(&out)));
    Upload {
        keys: v["keys"].as_u64().expect("keys") as u16,
        status: v["status"].as_u64().map(|s| s as u16),
        body: v["body"].as_str().unwrap_or_default().to_owned(),
    }
}

/// `DELETE /v2/<gun>/_trust/tuf/` with `Host: host`.
fn delete_trust(server: &Server, gun: &str, host: &str, token: &str) -> (u16, String) {
    let r = server
        .http()
        .delete(format!("https://127.0.0.1:{}/v2/{gun}/_trust/tuf/", server.port))
        .header("host", host)
        .bearer_auth(token)
        .send()
        .expect("delete");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

/// notary's INVALID_GUN, naming the refused GUN.
fn assert_invalid_gun(status: u16, body: &str, gun: &str) {
    assert_eq!(status, 400, "{body}");
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{body}"));
    assert_eq!(v["errors"][0]["code"], "INVALID_GUN", "{body}");
    assert_eq!(
        v["errors"][0]["detail"],
        format!("GUN must be <registry host>/<repository>, got {gun}"),
        "{body}"
    );
}

/// The gate's refusal of a token that does not carry the trust write.
fn assert_unauthorized(u: &Upload) {
    assert_eq!(u.keys, 401, "{u:?}");
    assert!(u.status.is_none(), "{u:?}");
    assert!(
        u.body
            .contains("access to the requested resource is not authorized"),
        "{u:?}"
    );
}

struct Owner {
    config: tempfile::TempDir,
}

impl Owner {
    fn login(server: &Server) -> Self {
        let config = tempfile::tempdir().expect("tempdir");
        let ca = server.ca.to_str().expect("ca path").to_owned();
        let out = wharf_cli(
            config.path(),
            &[
                "login",
                &server.host,
                "-u",
                "admin",
                "--password-stdin",
                "--ca-file",
                &ca,
            ],
            &server.admin_password,
        );
        assert!(out.status.success(), "{}", text(&out));
        Self { config }
    }

    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = wharf_cli(self.config.path(), args, stdin);
        assert!(out.status.success(), "wharf {args:?}: {}", text(&out));
        text(&out)
    }

    /// A user holding `role` on `scope`; returns its password.
    fn user(&self, name: &str, role: &str, scope: &str) -> String {
        let password = format!("{name}-password-1");
        create_user(self.config.path(), name, &password, &[(role, scope)]);
        password
    }
}

/// The owner signs `repository` under its real GUN: the control that the upload itself
/// is acceptable. Returns the root now served.
fn owner_publishes(server: &Server, repository: &str) -> String {
    let gun = format!("{}/{repository}", server.host);
    let token = server.token(&[&format!("repository:{gun}:push,pull")]);
    let u = publish(server, &gun, &server.host, &token);
    assert_eq!((u.keys, u.status), (200, Some(200)), "{u:?}");
    server
        .trust_root(repository)
        .expect("root after the owner's publish")
}

#[test]
fn a_pusher_without_the_signer_right_cannot_write_trust_data_through_a_host_header() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = Owner::login(&server);
    let mallory = owner.user("mallory", "AcrPush", "registry");
    let admin_account = owner.ok(&["admin-account", "enable"], "");
    let admin_password = admin_account
        .lines()
        .find_map(|l| l.strip_prefix("Password (shown once): "))
        .expect("admin account password")
        .to_owned();

    for (who, password) in [("mallory", mallory.as_str()), ("wharf", admin_password.as_str())] {
        // `localhost/team/app` is an ordinary repository name on this server (its names
        // are localhost:PORT and 127.0.0.1:PORT), so push on it is granted...
        let token = server
            .token_as(who, password, &["repository:localhost/team/app:push,pull"])
            .expect("token");
        // ...but it is no trust name, whatever Host the trust request carries.
        let u = publish(&server, "localhost/team/app", "localhost", &token);
        assert_invalid_gun(u.keys, &u.body, "localhost/team/app");
        assert_eq!(server.trust_root("team/app"), None, "{who}");

        // The real GUN needs the signer right, which neither holds.
        let gun = format!("{}/team/app", server.host);
        let token = server
            .token_as(who, password, &[&format!("repository:{gun}:push,pull")])
            .expect("token");
        assert_unauthorized(&publish(&server, &gun, &server.host, &token));
        assert_eq!(server.trust_root("team/app"), None, "{who}");
    }

    // Once the owner signed, the attempts still change nothing.
    let root = owner_publishes(&server, "team/app");
    let token = server
        .token_as("mallory", &mallory, &["repository:localhost/team/app:*"])
        .expect("token");
    let u = publish(&server, "localhost/team/app", "localhost", &token);
    assert_invalid_gun(u.keys, &u.body, "localhost/team/app");
    let (status, body) = delete_trust(&server, "localhost/team/app", "localhost", &token);
    assert_invalid_gun(status, &body, "localhost/team/app");
    assert_eq!(server.trust_root("team/app").as_deref(), Some(root.as_str()));
}

#[test]
fn rights_under_a_prefix_reach_no_trust_data_outside_it() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = Owner::login(&server);
    let app_root = owner_publishes(&server, "app");

    // Contributor on team/*: `team/app:*` is granted as an image repository; with
    // `Host: team` it once deleted the trust data of repository `app`.
    let carol = owner.user("carol", "Contributor", "repository:team/*");
    let token = server
        .token_as("carol", &carol, &["repository:team/app:*"])
        .expect("token");
    let (status, body) = delete_trust(&server, "team/app", "team", &token);
    assert_invalid_gun(status, &body, "team/app");
    assert_eq!(server.trust_root("app").as_deref(), Some(app_root.as_str()));

    // AcrPush on team/*: trust data for repository `x` through GUN `team/x`.
    let dave = owner.user("dave", "AcrPush", "repository:team/*");
    let token = server
        .token_as("dave", &dave, &["repository:team/x:push,pull"])
        .expect("token");
    let u = publish(&server, "team/x", "team", &token);
    assert_invalid_gun(u.keys, &u.body, "team/x");
    assert_eq!(server.trust_root("x"), None);

    // A repository token without trust/write: trust data for `app2` through `team/app2`,
    // and for its own repositories through the real GUN.
    let created = owner.ok(
        &[
            "token",
            "create",
            "ci",
            "--repository",
            "team/*:content/read,content/write",
        ],
        "",
    );
    let ci = created
        .lines()
        .find_map(|l| l.strip_prefix("Password (shown once): "))
        .expect("token password")
        .to_owned();
    let token = server
        .token_as("ci", &ci, &["repository:team/app2:push,pull"])
        .expect("token");
    let u = publish(&server, "team/app2", "team", &token);
    assert_invalid_gun(u.keys, &u.body, "team/app2");
    assert_eq!(server.trust_root("app2"), None);
    let gun = format!("{}/team/app2", server.host);
    let token = server
        .token_as("ci", &ci, &[&format!("repository:{gun}:push,pull")])
        .expect("token");
    assert_unauthorized(&publish(&server, &gun, &server.host, &token));
    assert_eq!(server.trust_root("team/app2"), None);

    // The audit trail holds the owner's publish and nothing of the refused attempts.
    let audit = owner.ok(&["audit", "list"], "");
    let trust_lines: Vec<&str> = audit.lines().filter(|l| l.contains("trust.")).collect();
    assert_eq!(trust_lines.len(), 1, "{audit}");
    assert!(
        trust_lines[0].contains("trust.update") && trust_lines[0].contains("app"),
        "{audit}"
    );
}

/// Any Host header, any case: a trust request on one of the server's own names reaches
/// exactly the repository after the host, and one on any other host is refused.
#[test]
fn the_trust_route_ignores_the_host_header() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let gun = format!("{}/team/app", server.host);
    let token = server.token(&[&format!("repository:{gun}:push,pull")]);
    // A signer's real GUN works with any Host header the client sends.
    let u = publish(&server, &gun, "evil.example.com", &token);
    assert_eq!((u.keys, u.status), (200, Some(200)), "{u:?}");
    assert!(server.trust_root("team/app").is_some());
    // The same request on a host that is not ours is refused even with Host set to it.
    let other = format!("localhost:{}/team/app", server.port + 1);
    let token = server.token(&[&format!("repository:{other}:push,pull")]);
    let u = publish(&server, &other, &format!("localhost:{}", server.port + 1), &token);
    assert_invalid_gun(u.keys, &u.body, &other);
}

/// The registry-wide changefeed once listed every repository's trust changes to anyone
/// who could read one repository.
#[test]
fn the_global_changefeed_lists_only_what_the_caller_may_read() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = Owner::login(&server);
    for repository in ["team/app", "app", "x", "other/y"] {
        owner_publishes(&server, repository);
    }
    let reader = owner.user("rita", "Reader", "repository:team/app");
    let token = server
        .token_as("rita", &reader, &["registry:catalog:*"])
        .expect("token");
    let feed = |token: &str| -> Vec<String> {
        let r = server
            .http()
            .get(server.url("/v2/_trust/changefeed?records=100"))
            .bearer_auth(token)
            .send()
            .expect("changefeed");
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().expect("json");
        v["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|c| c["GUN"].as_str().expect("GUN").to_owned())
            .collect()
    };
    assert_eq!(feed(&token), [format!("{}/team/app", server.host)]);
    let all = feed(&server.token(&["registry:catalog:*"]));
    assert_eq!(all.len(), 4, "{all:?}");
}
