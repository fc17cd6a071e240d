//! Identity and access end to end: `wharf user|sp|admin-account|role|token|audit` and the
//! stock docker 28 client (with and without DOCKER_CONTENT_TRUST) against a real server.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{DockerClient, Server, text, wharf_cli};

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
    let out = pusher.cmd(&["push", &other], DCT);
    assert!(!out.status.success(), "unsigned pusher signed: {}", text(&out));
    let said = text(&out).to_lowercase();
    eprintln!("unsigned pusher saw: {said}");
    assert!(
        said.contains("not authorized") || said.contains("unauthorized"),
        "{said}"
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
    let out = puller.cmd(&["push", &mine], &[]);
    assert!(!out.status.success(), "puller pushed: {}", text(&out));

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
    assert!(
        !out.status.success() && text(&out).contains("409"),
        "{}",
        text(&out)
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
    let acct = DockerClient::new();
    let mut login = Command::new("docker")
        .args(["login", &server.host, "-u", "wharf", "--password-stdin"])
        .env("DOCKER_CONFIG", acct.config.path())
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
    assert!(out.status.success(), "docker login admin account: {}", text(&out));
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
    assert_eq!(server.token_as("wharf", &password, &[]), Err(401));
}

#[test]
fn service_principal_confined_to_one_repository() {
    let server = Server::start();
    let admin = owner(&server);
    let created = ok(&admin, &["sp", "create", "ci"]);
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
    assign(&admin, "AcrPush", "ci", "repository:ci/app");
    // Something it must not see in the catalog.
    let other = format!("{}/team/secret:v1", server.host);
    admin.import_image(&other);
    admin.ok(&["push", &other]);

    let ci = login(&server, &id, &secret);
    let mine = format!("{}/ci/app:v1", server.host);
    ci.import_image(&mine);
    ci.ok(&["push", &mine]);
    let theirs = format!("{}/team/app:v1", server.host);
    ci.import_image(&theirs);
    assert!(!ci.cmd(&["push", &theirs], &[]).status.success());
    assert!(!ci.cmd(&["pull", &other], &[]).status.success());

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
    assert_eq!(server.token_as(&id, &secret, &[]), Err(401));
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
    assert!(!tok.cmd(&["push", &elsewhere], &[]).status.success());

    // Deleting the token revokes its stored login.
    ok(&admin, &["token", "delete", "ci-token"]);
    assert!(!tok.cmd(&["pull", &signed], &[]).status.success());
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
            .status()
            .as_u16()
    };
    assert_eq!(grant(&refresh), 200);
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
    assert_eq!(grant(&refresh), 401);
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
    for _ in 0..6 {
        let got = server.token_as("carol", "nope-nope", &[]);
        assert!(matches!(got, Err(401 | 429)), "{got:?}");
    }
    assert_eq!(server.token_as("carol", &carol, &[]), Err(429));
}
