//! Identity and access end to end: `wharf user|sp|admin-account|role|token|audit` and the
//! stock docker 28 client (with and without DOCKER_CONTENT_TRUST) against a real server.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::cli::{json_err, json_ok, keys, login_dir};
use common::{DockerClient, Server, refusal, refused, text, wharf_cli};
use serde_json::{Value, json};

/// What docker prints when the registry's token lacks the push (or pull) it asked for.
const DENIED: &str = "denied: requested access to the resource is denied";

const DCT: &[(&str, &str)] = &[
    ("DOCKER_CONTENT_TRUST", "1"),
    ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123"),
    ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-123"),
];

/// `wharf ARGS` with `client`'s Docker config (its stored login), `stdin` piped in.
fn wharf(client: &DockerClient, args: &[&str], stdin: &str) -> Output {
    wharf_cli(client.config.path(), args, stdin)
}

fn ok(client: &DockerClient, args: &[&str]) -> String {
    let out = wharf(client, args, "");
    assert!(out.status.success(), "wharf {args:?} failed: {}", text(&out));
    text(&out)
}

/// Run, expect failure, return the one-line message.
fn fails(client: &DockerClient, args: &[&str]) -> String {
    let out = wharf(client, args, "");
    assert!(
        !out.status.success(),
        "wharf {args:?} should fail: {}",
        text(&out)
    );
    let t = text(&out);
    assert_eq!(t.trim().lines().count(), 1, "one line expected: {t}");
    t
}

/// A time as the admin API and the CLI show it: RFC 3339 in UTC to the second
/// (`2026-12-06T03:31:52Z`), and recent.
fn assert_recent_time(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    let t = chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        s,
        "not UTC to the second"
    );
    let age = chrono::Utc::now().signed_duration_since(t).num_seconds();
    assert!((-5..600).contains(&age), "{s} is {age} s old");
}

/// `docker login` (not `wharf login`) as `user` in a Docker config of its own, as a CI job
/// that only has a client id and secret would do it.
fn docker_login(server: &Server, user: &str, password: &str) -> DockerClient {
    let c = DockerClient::new();
    let mut login = Command::new("docker")
        .args(["login", &server.host, "-u", user, "--password-stdin"])
        .env("DOCKER_CONFIG", c.config.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker login");
    login
        .stdin
        .take()
        .expect("stdin")
        .write_all(password.as_bytes())
        .expect("write");
    let out = login.wait_with_output().expect("wait");
    assert!(out.status.success(), "docker login {user}: {}", text(&out));
    c
}

fn owner(server: &Server) -> DockerClient {
    let c = DockerClient::new();
    let out = c.wharf_login(server, "admin", &server.admin_password);
    assert!(out.status.success(), "{}", text(&out));
    c
}

fn login(server: &Server, user: &str, password: &str) -> DockerClient {
    let c = DockerClient::new();
    let out = c.wharf_login(server, user, password);
    assert!(out.status.success(), "login {user}: {}", text(&out));
    c
}

fn new_user(admin: &DockerClient, name: &str) -> String {
    let password = format!("{name}-password-1");
    let out = wharf(admin, &["user", "create", name, "--password-stdin"], &password);
    assert!(out.status.success(), "{}", text(&out));
    password
}

fn assign(admin: &DockerClient, role: &str, who: &str, scope: &str) {
    ok(
        admin,
        &[
            "role",
            "assignment",
            "create",
            "--role",
            role,
            "--assignee",
            who,
            "--scope",
            scope,
        ],
    );
}

/// Owner's view of a repository's trust root (None = no trust data).
fn trust_root(server: &Server, repo: &str) -> Option<String> {
    let gun = format!("{}/{repo}", server.host);
    let token = server.token(&[&format!("repository:{gun}:pull")]);
    let resp = server
        .http()
        .get(server.url(&format!("/v2/{gun}/_trust/tuf/root.json")))
        .bearer_auth(token)
        .send()
        .expect("get root");
    resp.status().is_success().then(|| resp.text().expect("body"))
}

#[test]
fn signer_pusher_puller_and_relogin_after_grant() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let admin = owner(&server);
    let (sp, pp, rp) = (
        new_user(&admin, "signer"),
        new_user(&admin, "pusher"),
        new_user(&admin, "puller"),
    );
    assign(&admin, "AcrPush", "signer", "registry");
    assign(&admin, "AcrImageSigner", "signer", "repository:team/*");
    assign(&admin, "AcrPush", "pusher", "registry");
    assign(&admin, "AcrPull", "puller", "registry");

    // The signer publishes a signed tag.
    let signer = login(&server, "signer", &sp);
    let signed = format!("{}/team/app:v1", server.host);
    signer.import_image(&signed);
    let out = signer.cmd(&["push", &signed], DCT);
    assert!(
        out.status.success(),
        "signed push: {}\n{}",
        text(&out),
        server.log()
    );

    // A pusher without the signer role: the image goes up, signing fails, no trust data.
    let pusher = login(&server, "pusher", &pp);
    let other = format!("{}/team/other:v1", server.host);
    pusher.import_image(&other);
    // The image goes up; the signing step is refused (the trust API answers 401).
    assert_eq!(
        pusher.fails(&["push", &other], DCT),
        "you are not authorized to perform this operation: server returned 401."
    );
    assert_eq!(trust_root(&server, "team/other"), None);
    // Plain pushes still work for the pusher.
    pusher.ok(&["push", &other]);

    // A puller pulls the signed tag with content trust but cannot push.
    let puller = login(&server, "puller", &rp);
    let out = puller.cmd(&["pull", &signed], DCT);
    assert!(out.status.success(), "trusted pull: {}", text(&out));
    let mine = format!("{}/team/puller:v1", server.host);
    puller.import_image(&mine);
    assert_eq!(puller.fails(&["push", &mine], &[]), DENIED);

    // Grant signing; after a fresh login the pusher can sign.
    assign(&admin, "AcrImageSigner", "pusher", "repository:team/other");
    let pusher = login(&server, "pusher", &pp);
    pusher.import_image(&other);
    let out = pusher.cmd(&["push", &other], DCT);
    assert!(out.status.success(), "signed push after grant: {}", text(&out));
    assert!(trust_root(&server, "team/other").is_some());

    // Every change is audited with who and from where.
    let audit = ok(&admin, &["audit", "list", "--output", "json"]);
    assert!(
        audit.contains("role-assignment.create") && audit.contains("from 127.0.0.1"),
        "{audit}"
    );
    // The first owner, created at the first start, is on record too (with its role, in
    // the same transaction).
    let records: serde_json::Value = serde_json::from_str(&audit).unwrap();
    let bootstrap = records
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "user.create" && r["target"] == "admin")
        .unwrap_or_else(|| panic!("no record of the bootstrap owner: {audit}"));
    assert_eq!(bootstrap["actor"], "wharf");
    assert_eq!(bootstrap["detail"], "bootstrap owner; Owner on registry");
}

#[test]
fn bad_input_is_refused_exactly_and_changes_nothing() {
    let server = Server::start();
    let admin = owner(&server);
    new_user(&admin, "alice");
    let before = ok(&admin, &["role", "assignment", "list", "--output", "json"]);

    let t = fails(
        &admin,
        &[
            "role",
            "assignment",
            "create",
            "--role",
            "AcrPusher",
            "--assignee",
            "alice",
        ],
    );
    assert!(t.contains("unknown role \"AcrPusher\""), "{t}");
    let t = fails(
        &admin,
        &[
            "role",
            "assignment",
            "create",
            "--role",
            "AcrPush",
            "--assignee",
            "nobody",
        ],
    );
    assert!(t.contains("unknown assignee \"nobody\""), "{t}");
    let t = fails(
        &admin,
        &[
            "role",
            "assignment",
            "create",
            "--role",
            "AcrPush",
            "--assignee",
            "alice",
            "--scope",
            "repo:x",
        ],
    );
    assert!(t.contains("malformed scope \"repo:x\""), "{t}");
    assign(&admin, "AcrPush", "alice", "repository:team/app");
    let t = fails(
        &admin,
        &[
            "role",
            "assignment",
            "create",
            "--role",
            "AcrPush",
            "--assignee",
            "alice",
            "--scope",
            "repository:team/app",
        ],
    );
    assert!(
        t.contains("409") && t.contains("alice already has AcrPush on repository:team/app"),
        "{t}"
    );
    let out = wharf(
        &admin,
        &["user", "create", "alice", "--password-stdin"],
        "another-pass-1",
    );
    assert!(!out.status.success());
    assert_eq!(
        text(&out),
        "wharf: the server answered 409 Conflict: a principal or token named \"alice\" already exists \
         (users, service principals and tokens share one namespace)\n"
    );
    let t = fails(
        &admin,
        &["token", "create", "t", "--repository", "team/app:content/exec"],
    );
    assert!(t.contains("malformed repository permission"), "{t}");
    ok(
        &admin,
        &[
            "role",
            "assignment",
            "delete",
            "--role",
            "AcrPush",
            "--assignee",
            "alice",
            "--scope",
            "repository:team/app",
        ],
    );
    assert_eq!(
        ok(&admin, &["role", "assignment", "list", "--output", "json"]),
        before
    );
    assert!(fails(&admin, &["user", "delete", "nobody"]).contains("no user named \"nobody\""));

    // The only registry-wide Owner cannot remove that assignment (nobody could manage the
    // registry afterwards); with a second owner it can.
    let drop_own_owner = [
        "role",
        "assignment",
        "delete",
        "--role",
        "Owner",
        "--assignee",
        "admin",
    ];
    let t = fails(&admin, &drop_own_owner);
    assert!(
        t.contains("admin holds the only registry-wide Owner assignment; assign Owner on registry to someone else first"),
        "{t}"
    );
    assert_eq!(
        ok(&admin, &["role", "assignment", "list", "--output", "json"]),
        before
    );
    assign(&admin, "Owner", "alice", "registry");
    ok(&admin, &drop_own_owner);
    let alice = login(&server, "alice", "alice-password-1");
    let t = fails(
        &alice,
        &[
            "role",
            "assignment",
            "delete",
            "--role",
            "Owner",
            "--assignee",
            "alice",
        ],
    );
    assert!(
        t.contains("alice holds the only registry-wide Owner assignment"),
        "{t}"
    );
    assign(&alice, "Owner", "admin", "registry");

    // The admin account: off by default, never a signer.
    assert!(ok(&admin, &["admin-account", "show"]).contains("Enabled: no"));
    let enabled = ok(&admin, &["admin-account", "enable"]);
    let password = enabled
        .lines()
        .find_map(|l| l.strip_prefix("Password (shown once): "))
        .expect("password")
        .to_owned();
    let t = fails(
        &admin,
        &[
            "role",
            "assignment",
            "create",
            "--role",
            "AcrImageSigner",
            "--assignee",
            "wharf",
        ],
    );
    assert!(
        t.contains("the admin account can never be granted AcrImageSigner"),
        "{t}"
    );
    // It pushes images with docker, but its tokens never carry trust writes.
    let acct = docker_login(&server, "wharf", &password);
    let img = format!("{}/acct/app:v1", server.host);
    acct.import_image(&img);
    acct.ok(&["push", &img]);
    let gun_push = format!("repository:{}/acct/app:push,pull", server.host);
    let token = server.token_as("wharf", &password, &[&gun_push]).expect("token");
    let claims = token.split('.').nth(1).expect("claims");
    use base64::Engine;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .expect("b64");
    let claims: serde_json::Value = serde_json::from_slice(&claims).expect("json");
    assert_eq!(
        claims["access"][0]["actions"],
        serde_json::json!(["pull"]),
        "{claims}"
    );
    ok(&admin, &["admin-account", "disable"]);
    assert_eq!(
        server.token_refusal("wharf", &password, &[]),
        refused(401, "UNAUTHORIZED", "invalid username or password")
    );
}

#[test]
fn service_principal_confined_to_one_repository() {
    let server = Server::start();
    let admin = owner(&server);
    // A role that is refused removes the new principal again: nothing half-made is left.
    // (Another name than the one created next: revocations are kept per name to the
    // second, so a name deleted and re-created within one second has that second's
    // tokens refused.)
    let (code, message) = json_err(
        admin.config.path(),
        &["sp", "create", "ci-typo", "--role", "AcrPusher"],
        "",
    );
    assert_eq!(code, "UNKNOWN_ROLE");
    assert_eq!(
        message,
        "the server answered 400 Bad Request: unknown role \"AcrPusher\"; built-in roles are Owner, Contributor, \
         Reader, AcrPull, AcrPush, AcrDelete, AcrImageSigner; service principal ci-typo was not kept; nothing was created"
    );
    assert_eq!(json_ok(admin.config.path(), &["sp", "list"], "").0, json!([]));

    // Created with its role, it can push at once.
    let created = ok(
        &admin,
        &[
            "sp",
            "create",
            "ci",
            "--role",
            "AcrPush",
            "--scope",
            "repository:ci/app",
        ],
    );
    assert!(
        created.contains("\nAssigned AcrPush to ci on repository:ci/app\n") && !created.contains("Hint"),
        "{created}"
    );
    let id = created
        .lines()
        .find_map(|l| l.strip_prefix("Client id: "))
        .expect("id")
        .to_owned();
    let secret = created
        .lines()
        .find_map(|l| l.strip_prefix("Secret (shown once): "))
        .expect("secret")
        .to_owned();
    // Something it must not see in the catalog.
    let other = format!("{}/team/secret:v1", server.host);
    admin.import_image(&other);
    admin.ok(&["push", &other]);

    let ci = docker_login(&server, &id, &secret);
    let mine = format!("{}/ci/app:v1", server.host);
    ci.import_image(&mine);
    ci.ok(&["push", &mine]);
    let theirs = format!("{}/team/app:v1", server.host);
    ci.import_image(&theirs);
    assert_eq!(ci.fails(&["push", &theirs], &[]), DENIED);
    assert_eq!(
        ci.fails(&["pull", &other], &[]),
        format!(
            "Error response from daemon: pull access denied for {}/team/secret, repository does not \
             exist or may require 'docker login': {DENIED}",
            server.host
        )
    );

    let token = server
        .token_as(&id, &secret, &["registry:catalog:*"])
        .expect("token");
    let cat: serde_json::Value = server
        .http()
        .get(server.url("/v2/_catalog"))
        .bearer_auth(token)
        .send()
        .expect("catalog")
        .json()
        .expect("json");
    assert_eq!(cat["repositories"], serde_json::json!(["ci/app"]));

    let list = ok(&admin, &["sp", "list", "--output", "json"]);
    assert!(list.contains(&id) && !list.contains(&secret), "{list}");
    ok(&admin, &["sp", "reset-secret", "ci"]);
    assert_eq!(
        server.token_refusal(&id, &secret, &[]),
        refused(401, "UNAUTHORIZED", "invalid username or password")
    );
}

#[test]
fn scoped_token_pushes_signed_image_and_is_refused_elsewhere() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let admin = owner(&server);
    let created = ok(
        &admin,
        &[
            "token",
            "create",
            "ci-token",
            "--repository",
            "tok/app:content/read,content/write,trust/write",
        ],
    );
    let password = created
        .lines()
        .find_map(|l| l.strip_prefix("Password (shown once): "))
        .expect("password")
        .to_owned();
    assert!(ok(&admin, &["token", "list"]).contains("tok/app:content/read,content/write,trust/write"));

    let tok = login(&server, "ci-token", &password);
    let signed = format!("{}/tok/app:v1", server.host);
    tok.import_image(&signed);
    let out = tok.cmd(&["push", &signed], DCT);
    assert!(
        out.status.success(),
        "token signed push: {}\n{}",
        text(&out),
        server.log()
    );
    tok.ok(&["rmi", &signed]);
    let out = tok.cmd(&["pull", &signed], DCT);
    assert!(out.status.success(), "token trusted pull: {}", text(&out));
    let elsewhere = format!("{}/tok/other:v1", server.host);
    tok.import_image(&elsewhere);
    assert_eq!(tok.fails(&["push", &elsewhere], &[]), DENIED);

    // Deleting the token revokes its stored login.
    ok(&admin, &["token", "delete", "ci-token"]);
    assert_eq!(
        tok.fails(&["pull", &signed], &[]),
        format!(
            "Error response from daemon: Head \"https://{}/v2/tok/app/manifests/v1\": unauthorized: \
             refresh token is invalid or revoked",
            server.host
        )
    );
}

#[test]
fn wrong_password_lockout_and_deleted_principals_refresh_token() {
    let server = Server::start();
    let admin = owner(&server);
    let pw = new_user(&admin, "bob");
    assign(&admin, "AcrPull", "bob", "registry");
    let bob = login(&server, "bob", &pw);
    let out = bob.wharf_login(&server, "bob", "wrong-password");
    assert!(!out.status.success());
    assert_eq!(text(&out), "wharf: login refused: invalid username or password\n");

    // The stored refresh token works, until bob is deleted.
    let refresh = {
        let cfg: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(bob.config.path().join("config.json")).expect("config"),
        )
        .expect("json");
        cfg["auths"][&server.host]["identitytoken"]
            .as_str()
            .expect("token")
            .to_owned()
    };
    let grant = |t: &str| {
        server
            .http()
            .post(server.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=refresh_token&refresh_token={t}&service=wharf"
            ))
            .send()
            .expect("token")
    };
    assert_eq!(grant(&refresh).status(), 200);
    // An access token of bob's, used once so the server remembers it as verified.
    let access = server
        .token_as("bob", &pw, &["repository:team/app:pull"])
        .expect("token");
    let use_token = |t: &str| {
        let r = server
            .http()
            .get(server.url("/v2/team/app/tags/list"))
            .bearer_auth(t)
            .send()
            .expect("tags");
        (r.status().as_u16(), r.text().unwrap_or_default())
    };
    assert_ne!(use_token(&access).0, 401);
    ok(&admin, &["user", "delete", "bob"]);
    assert_eq!(
        refusal(grant(&refresh)),
        refused(401, "UNAUTHORIZED", "refresh token is invalid or revoked")
    );
    // Deleting bob revokes the access token at once, not when it expires.
    let (status, body) = use_token(&access);
    assert_eq!(status, 401, "{body}");
    assert!(
        body.contains(
            "authentication required: token was revoked: its principal was deleted or its secret changed"
        ),
        "{body}"
    );

    // Repeated failures lock the name out (429 with Retry-After), even for the right password.
    let carol = new_user(&admin, "carol");
    let wrong = refused(401, "UNAUTHORIZED", "invalid username or password");
    let locked_out = |got: &(u16, String, String)| {
        let seconds = got
            .2
            .strip_prefix("too many failed logins; try again in ")
            .and_then(|rest| rest.strip_suffix(" seconds"))
            .and_then(|n| n.parse::<u64>().ok());
        got.0 == 429 && got.1 == "TOOMANYREQUESTS" && seconds.is_some_and(|n| n >= 1)
    };
    for _ in 0..6 {
        let got = server.token_refusal("carol", "nope-nope", &[]);
        assert!(got == wrong || locked_out(&got), "{got:?}");
    }
    let got = server.token_refusal("carol", &carol, &[]);
    assert!(locked_out(&got), "{got:?}");

    // `wharf login` during a lockout says what the server says (as docker does): how
    // long the lockout lasts, not just a status.
    let erin = new_user(&admin, "erin");
    lock_out(&server, "erin", 5);
    let config = tempfile::tempdir().expect("tempdir");
    let ca = server.ca.to_str().expect("ca path");
    let login_erin = [
        "login",
        &server.host,
        "-u",
        "erin",
        "--password-stdin",
        "--ca-file",
        ca,
    ];
    let out = wharf_cli(config.path(), &login_erin, &erin);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let seconds = said
        .strip_prefix("wharf: login refused: too many failed logins; try again in ")
        .and_then(|rest| rest.strip_suffix(" seconds\n"))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("not the server's lockout message: {said:?}"));
    assert!((1..=8).contains(&seconds), "{said}");
    let (code, message) = json_err(config.path(), &login_erin, &erin);
    assert_eq!(code, "TOOMANYREQUESTS");
    assert!(
        message.starts_with("login refused: too many failed logins; try again in ")
            && message.ends_with(" seconds"),
        "{message}"
    );
}

/// Fail logins as `user` until the lockout is at least `seconds` long, waiting out the
/// shorter ones (attempts during a lockout are not checked, so they do not count).
fn lock_out(server: &Server, user: &str, seconds: u64) {
    let http = server.http();
    loop {
        let r = http
            .get(server.url("/token"))
            .query(&[("service", "wharf")])
            .basic_auth(user, Some("wrong-password"))
            .send()
            .expect("token");
        match r.status().as_u16() {
            401 => {}
            429 => {
                let left: u64 = r.headers()["retry-after"]
                    .to_str()
                    .expect("retry-after")
                    .parse()
                    .expect("seconds");
                if left >= seconds {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_secs(left + 1));
            }
            other => panic!("unexpected {other}"),
        }
    }
}

#[test]
fn every_command_answers_json_with_the_documented_fields() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path();
    let ca = server.ca.to_str().expect("ca path");
    let config_file = cfg.join("config.json");

    let login = [
        "login",
        &server.host,
        "-u",
        "admin",
        "--password-stdin",
        "--ca-file",
        ca,
    ];
    let (v, _) = json_ok(cfg, &login, &server.admin_password);
    assert_eq!(
        v,
        json!({ "registry": server.host, "username": "admin", "config_file": config_file })
    );

    // Users. A password given on standard input is never echoed; a generated one is shown
    // exactly once.
    let (alice, _) = json_ok(
        cfg,
        &["user", "create", "alice", "--password-stdin"],
        "alice-password-1",
    );
    assert_eq!(keys(&alice), ["created_at", "kind", "name", "password"]);
    assert_eq!(
        (&alice["name"], &alice["kind"], &alice["password"]),
        (&json!("alice"), &json!("user"), &Value::Null)
    );
    assert_recent_time(&alice["created_at"]);
    let (generated, stdout) = json_ok(cfg, &["user", "create", "gen"], "");
    let password = generated["password"].as_str().expect("generated password");
    assert_eq!(stdout.matches(password).count(), 1, "{stdout}");
    assert!(server.token_as("gen", password, &[]).is_ok());
    // The table output tells people that a new user can do nothing yet, and how to change it.
    let out = wharf_cli(
        cfg,
        &["user", "create", "dave", "--password-stdin"],
        "dave-password-1",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Created user dave\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Hint: dave has no role yet and can do nothing with this registry. Grant one: \
         wharf role assignment create --role AcrPull --assignee dave --scope registry\n"
    );
    let (users, _) = json_ok(cfg, &["user", "list"], "");
    let users = users.as_array().expect("array");
    let mut names: Vec<&str> = users.iter().map(|u| u["name"].as_str().expect("name")).collect();
    names.sort_unstable();
    assert_eq!(names, ["admin", "alice", "dave", "gen"]);
    for u in users {
        assert_eq!(keys(u), ["created_at", "kind", "name"], "{u}");
        assert_recent_time(&u["created_at"]);
    }
    let created = alice["created_at"].as_str().expect("time");
    let table = text(&wharf_cli(cfg, &["user", "list"], ""));
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["alice", created]),
        "{table}"
    );
    assert_eq!(
        json_ok(cfg, &["user", "delete", "gen"], "").0,
        json!({ "name": "gen", "deleted": true })
    );

    // Service principals: the secret once, at creation and at reset, never in the list.
    let (ci, stdout) = json_ok(cfg, &["sp", "create", "ci"], "");
    assert_eq!(
        keys(&ci),
        [
            "client_id",
            "created_at",
            "kind",
            "name",
            "role_assignments",
            "secret"
        ]
    );
    assert_eq!(
        (&ci["name"], &ci["kind"], &ci["role_assignments"]),
        (&json!("ci"), &json!("sp"), &json!([]))
    );
    assert_recent_time(&ci["created_at"]);
    let (id, secret) = (
        ci["client_id"].as_str().expect("client id"),
        ci["secret"].as_str().expect("secret"),
    );
    assert_eq!(stdout.matches(secret).count(), 1, "{stdout}");
    assert!(server.token_as(id, secret, &[]).is_ok());
    let (list, stdout) = json_ok(cfg, &["sp", "list"], "");
    assert_eq!(
        list,
        json!([{ "name": "ci", "kind": "sp", "client_id": id, "created_at": ci["created_at"] }])
    );
    assert!(!stdout.contains(secret));
    let (reset, stdout) = json_ok(cfg, &["sp", "reset-secret", "ci"], "");
    assert_eq!(
        keys(&reset),
        ["client_id", "created_at", "kind", "name", "secret"]
    );
    let new_secret = reset["secret"].as_str().expect("secret");
    assert_ne!(new_secret, secret);
    assert_eq!(stdout.matches(new_secret).count(), 1, "{stdout}");
    assert_eq!(
        json_ok(cfg, &["sp", "delete", "ci"], "").0,
        json!({ "name": "ci", "deleted": true })
    );
    // --scope only makes sense with --role.
    let (code, message) = json_err(cfg, &["sp", "create", "x", "--scope", "registry"], "");
    assert_eq!(code, "USAGE");
    assert!(
        message.starts_with("the following required arguments were not provided"),
        "{message}"
    );

    // The admin account: the password once, when enabled.
    let off = json!({ "username": "wharf", "enabled": false });
    assert_eq!(json_ok(cfg, &["admin-account", "show"], "").0, off);
    let (on, stdout) = json_ok(cfg, &["admin-account", "enable"], "");
    assert_eq!(keys(&on), ["enabled", "password", "username"]);
    assert_eq!((&on["username"], &on["enabled"]), (&json!("wharf"), &json!(true)));
    let acct_password = on["password"].as_str().expect("password");
    assert_eq!(stdout.matches(acct_password).count(), 1, "{stdout}");
    assert_eq!(json_ok(cfg, &["admin-account", "disable"], "").0, off);

    // Roles and assignments.
    let (roles, _) = json_ok(cfg, &["role", "list"], "");
    let roles = roles.as_array().expect("array");
    let names: Vec<&str> = roles.iter().map(|r| r["name"].as_str().expect("name")).collect();
    assert_eq!(
        names,
        [
            "Owner",
            "Contributor",
            "Reader",
            "AcrPull",
            "AcrPush",
            "AcrDelete",
            "AcrImageSigner"
        ]
    );
    for r in roles {
        assert_eq!(keys(r), ["description", "name", "permissions"], "{r}");
    }
    let spec = [
        "--role",
        "AcrPull",
        "--assignee",
        "alice",
        "--scope",
        "repository:team/*",
    ];
    let (a, _) = json_ok(cfg, &[&["role", "assignment", "create"][..], &spec].concat(), "");
    assert_eq!(
        keys(&a),
        ["assignee", "assignee_kind", "created_at", "role", "scope"]
    );
    assert_eq!(
        (&a["role"], &a["assignee"], &a["assignee_kind"], &a["scope"]),
        (
            &json!("AcrPull"),
            &json!("alice"),
            &json!("user"),
            &json!("repository:team/*")
        )
    );
    assert_recent_time(&a["created_at"]);
    assert_eq!(
        json_ok(cfg, &["role", "assignment", "list", "--assignee", "alice"], "").0,
        json!([a])
    );
    assert_eq!(
        json_ok(cfg, &[&["role", "assignment", "delete"][..], &spec].concat(), "").0,
        json!({ "role": "AcrPull", "assignee": "alice", "scope": "repository:team/*", "deleted": true })
    );

    // Repository tokens: the password once.
    let (t, stdout) = json_ok(
        cfg,
        &[
            "token",
            "create",
            "ci-token",
            "--repository",
            "team/app:content/read,content/write",
        ],
        "",
    );
    assert_eq!(keys(&t), ["created_at", "name", "password", "repositories"]);
    assert_eq!(
        t["repositories"],
        json!([{ "repository": "team/app", "actions": ["content/read", "content/write"] }])
    );
    assert_recent_time(&t["created_at"]);
    let token_password = t["password"].as_str().expect("password");
    assert_eq!(stdout.matches(token_password).count(), 1, "{stdout}");
    let (tokens, stdout) = json_ok(cfg, &["token", "list"], "");
    assert_eq!(
        tokens,
        json!([{ "name": "ci-token", "created_at": t["created_at"], "repositories": t["repositories"] }])
    );
    assert!(!stdout.contains(token_password));
    assert_eq!(
        json_ok(cfg, &["token", "delete", "ci-token"], "").0,
        json!({ "name": "ci-token", "deleted": true })
    );

    // The audit trail, newest first.
    let (audit, _) = json_ok(cfg, &["audit", "list", "--limit", "2"], "");
    let audit = audit.as_array().expect("array");
    assert_eq!(audit.len(), 2);
    for r in audit {
        assert_eq!(keys(r), ["action", "actor", "at", "detail", "target"], "{r}");
        assert_recent_time(&r["at"]);
        assert_eq!(r["actor"], "admin");
    }
    assert_eq!(
        (&audit[0]["action"], &audit[0]["target"]),
        (&json!("token.delete"), &json!("ci-token"))
    );
    assert_eq!(
        (&audit[1]["action"], &audit[1]["target"]),
        (&json!("token.create"), &json!("ci-token"))
    );

    // Failures are one JSON object on standard error, with the API's code...
    let (code, message) = json_err(
        cfg,
        &["user", "create", "alice", "--password-stdin"],
        "another-pass-1",
    );
    assert_eq!(code, "ALREADY_EXISTS");
    assert_eq!(
        message,
        "the server answered 409 Conflict: a principal or token named \"alice\" already exists \
         (users, service principals and tokens share one namespace)"
    );
    assert_eq!(
        json_err(cfg, &["user", "delete", "nobody"], ""),
        (
            "NOT_FOUND".to_owned(),
            "the server answered 404 Not Found: no user named \"nobody\"".to_owned()
        )
    );
    let alice_cfg = login_dir(&server, "alice", "alice-password-1");
    assert_eq!(
        json_err(alice_cfg.path(), &["user", "list"], ""),
        (
            "UNAUTHORIZED".to_owned(),
            "not authorised: access to the requested resource is not authorized; this needs the Owner role: \
             log in as an owner with `wharf login`"
                .to_owned()
        )
    );
    // ...or the CLI's own.
    let nowhere = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        json_err(nowhere.path(), &["user", "list"], ""),
        (
            "NOT_LOGGED_IN".to_owned(),
            "no registry selected: pass --registry HOST[:PORT] (or WHARF_REGISTRY), or run \
             `wharf login HOST[:PORT] -u USER` first"
                .to_owned()
        )
    );
    assert_eq!(
        json_err(nowhere.path(), &["user", "list", "--registry", &server.host], ""),
        (
            "NOT_LOGGED_IN".to_owned(),
            format!(
                "not logged in to {0}: run `wharf login {0} -u USER` first",
                server.host
            )
        )
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let (code, message) = json_err(
        nowhere.path(),
        &[
            "login",
            &format!("localhost:{closed}"),
            "-u",
            "x",
            "--password-stdin",
        ],
        "some-password",
    );
    assert_eq!(code, "CONNECTION_FAILED");
    assert!(
        message.starts_with(&format!("cannot reach https://localhost:{closed}: "))
            && message.contains("Connection refused"),
        "{message}"
    );
    let out = wharf_cli(cfg, &["user", "list", "--bogus", "--output", "json"], "");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "{\"error\":{\"code\":\"USAGE\",\"message\":\"unexpected argument '--bogus' found (see `wharf --help`)\"}}\n"
    );
}

#[test]
fn logout_forgets_the_stored_login() {
    let server = Server::start();
    let dir = login_dir(&server, "admin", &server.admin_password);
    let cfg = dir.path();
    let config_file = cfg.join("config.json");
    json_ok(cfg, &["user", "list"], "");

    let out = wharf_cli(cfg, &["logout"], "");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "Removed the login for {} from {} (forgotten here only: the server cannot revoke a single stored login)\n",
            server.host,
            config_file.display()
        )
    );
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_file).expect("config")).expect("json");
    assert_eq!(config["auths"], json!({}), "{config}");

    let out = wharf_cli(cfg, &["user", "list"], "");
    assert!(!out.status.success());
    assert_eq!(
        text(&out),
        format!(
            "wharf: not logged in to {0}: run `wharf login {0} -u USER` first\n",
            server.host
        )
    );
    // Logging out twice is not an error; JSON says nothing was there.
    assert_eq!(
        json_ok(cfg, &["logout", &server.host], "").0,
        json!({
            "registry": server.host,
            "removed": false,
            "revoked_on_server": false,
            "config_file": config_file,
        })
    );
}
