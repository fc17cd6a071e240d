//! `wharf anonymous-pull`, `wharf user password`, `wharf account password`,
//! `wharf repository` and `wharf policy` against a real server, checked as a user would: the table output,
//! the `--output json` fields, and what the server does afterwards.

mod common;

use std::path::Path;

use common::cli::{json_err, json_ok, keys, login_dir};
use common::{Server, push_tiny_image, text, wharf_cli};
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

#[test]
fn owners_set_passwords_and_users_change_their_own() {
    let server = Server::start();
    let owner = login_dir(&server, "admin", &server.admin_password);
    let cfg = owner.path();
    create_user(cfg, "alice", "alice-password-1");

    // An owner sets one: the old password stops working, the new one works.
    let (stdout, stderr) = run_ok(
        cfg,
        &["user", "password", "alice", "--password-stdin"],
        "alice-password-2\n",
    );
    assert_eq!(
        stdout,
        "Set a new password for user alice (their earlier logins no longer work)\n"
    );
    assert_eq!(stderr, "");
    assert_eq!(server.token_as("alice", "alice-password-1", &[]), Err(401));
    assert!(server.token_as("alice", "alice-password-2", &[]).is_ok());
    // ...or has one generated, shown exactly once.
    let (v, stdout) = json_ok(cfg, &["user", "password", "alice"], "");
    assert_eq!(keys(&v), ["created_at", "kind", "name", "password"]);
    assert_eq!((&v["name"], &v["kind"]), (&json!("alice"), &json!("user")));
    let generated = v["password"].as_str().expect("generated password");
    assert_eq!(stdout.matches(generated).count(), 1, "{stdout}");
    assert_eq!(server.token_as("alice", "alice-password-2", &[]), Err(401));
    assert!(server.token_as("alice", generated, &[]).is_ok());
    let (v, _) = json_ok(
        cfg,
        &["user", "password", "alice", "--password-stdin"],
        "alice-password-3",
    );
    assert_eq!(v["password"], serde_json::Value::Null);
    assert_eq!(
        run_err(
            cfg,
            &["user", "password", "nobody", "--password-stdin"],
            "some-password-1"
        ),
        "wharf: the server answered 404 Not Found: no user named \"nobody\"\n"
    );

    // alice changes her own; she may read the registry, so a command shows whether her
    // stored login works.
    run_ok(
        cfg,
        &[
            "role",
            "assignment",
            "create",
            "--role",
            "AcrPull",
            "--assignee",
            "alice",
        ],
        "",
    );
    let alice = login_dir(&server, "alice", "alice-password-3");
    let acfg = alice.path();
    run_ok(acfg, &["repository", "list"], "");

    // A wrong current password: the server's reason, and nothing changed.
    assert_eq!(
        run_err(
            acfg,
            &["account", "password", "--password-stdin"],
            "not-her-password\nalice-password-4\n"
        ),
        "wharf: the current password was refused: invalid username or password; nothing was changed\n"
    );
    assert_eq!(
        json_err(
            acfg,
            &["account", "password", "--password-stdin"],
            "not-her-password\nalice-password-4\n"
        ),
        (
            "UNAUTHORIZED".to_owned(),
            "the current password was refused: invalid username or password; nothing was changed".to_owned()
        )
    );
    assert!(server.token_as("alice", "alice-password-3", &[]).is_ok());
    assert_eq!(server.token_as("alice", "alice-password-4", &[]), Err(401));
    run_ok(acfg, &["repository", "list"], "");
    // Without a terminal the passwords come from standard input, two lines.
    assert_eq!(
        run_err(acfg, &["account", "password"], "alice-password-3\n"),
        "wharf: standard input is not a terminal: pass --password-stdin with the current and \
         the new password on two lines\n"
    );
    assert_eq!(
        json_err(
            acfg,
            &["account", "password", "--password-stdin"],
            "alice-password-3\n"
        ),
        (
            "INVALID_INPUT".to_owned(),
            "expected two lines on standard input: the current password, then the new one (got 1 line(s))"
                .to_owned()
        )
    );

    // The change; the stored login is revoked with her other logins, as she is told.
    let login_again = format!("wharf login {} -u alice", server.host);
    let (stdout, _) = run_ok(
        acfg,
        &["account", "password", "--password-stdin"],
        "alice-password-3\nalice-password-4\n",
    );
    assert_eq!(
        stdout,
        format!(
            "Password changed for alice\nYour stored login for {} no longer works \
             (the server revoked it): run `{login_again}` again\n",
            server.host
        )
    );
    assert_eq!(server.token_as("alice", "alice-password-3", &[]), Err(401));
    assert!(server.token_as("alice", "alice-password-4", &[]).is_ok());
    assert_eq!(
        run_err(acfg, &["repository", "list"], ""),
        format!(
            "wharf: the token service refused the stored login for {}: refresh token is invalid \
             or revoked; run `{login_again}` again\n",
            server.host
        )
    );
    // Logged in again, the JSON answer says the same.
    let alice = login_dir(&server, "alice", "alice-password-4");
    assert_eq!(
        json_ok(
            alice.path(),
            &["account", "password", "--password-stdin"],
            "alice-password-4\nalice-password-5\n"
        )
        .0,
        json!({ "changed": true, "login_again": true })
    );
    assert!(server.token_as("alice", "alice-password-5", &[]).is_ok());

    // An owner who sets their own password this way is told that their login went too.
    let (_, stderr) = run_ok(
        cfg,
        &["user", "password", "admin", "--password-stdin"],
        "new-owner-password-1",
    );
    assert_eq!(
        stderr,
        format!(
            "That was your own login: the server revoked it; run `wharf login {} -u admin` again\n",
            server.host
        )
    );
    assert!(
        run_err(cfg, &["user", "list"], "").contains("refresh token is invalid or revoked"),
        "the owner's stored login still works"
    );
}

#[test]
fn repositories_are_listed_untagged_and_deleted() {
    let server = Server::start();
    let owner = login_dir(&server, "admin", &server.admin_password);
    let cfg = owner.path();
    let http = server.http();
    let token = server.token(&[
        "repository:team/app:push,pull",
        "repository:team/lib:push,pull",
        "repository:other/x:push,pull",
    ]);
    let (first, _) = push_tiny_image(&server, &http, &token, "team/app", "v1", "one");
    push_tiny_image(&server, &http, &token, "team/app", "v2", "one");
    let (third, _) = push_tiny_image(&server, &http, &token, "team/app", "v3", "three");
    push_tiny_image(&server, &http, &token, "team/lib", "1.0", "lib");
    push_tiny_image(&server, &http, &token, "other/x", "latest", "x");
    // The manifest as a client pulls it: status and error code.
    let pull = |reference: &str| {
        let r = http
            .get(server.url(&format!("/v2/team/app/manifests/{reference}")))
            .bearer_auth(server.token(&["repository:team/app:pull"]))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .expect("get manifest");
        let status = r.status().as_u16();
        let body = r.text().unwrap_or_default();
        let code = if status == 200 {
            String::new()
        } else {
            common::error_code(&body)
        };
        (status, code)
    };
    let unknown = (404, "MANIFEST_UNKNOWN".to_owned());

    // Listings, through as many pages as there are.
    assert_eq!(
        run_ok(cfg, &["repository", "list"], "").0,
        "REPOSITORY\nother/x\nteam/app\nteam/lib\n"
    );
    assert_eq!(
        json_ok(cfg, &["repository", "list", "--page-size", "1"], "").0,
        json!({ "repositories": ["other/x", "team/app", "team/lib"] })
    );
    assert_eq!(
        run_ok(
            cfg,
            &["repository", "show-tags", "team/app", "--page-size", "2"],
            ""
        )
        .0,
        "TAG\nv1\nv2\nv3\n"
    );
    // The name docker uses, with the registry in front, works too.
    let docker_name = format!("{}/team/app", server.host);
    assert_eq!(
        json_ok(
            cfg,
            &["repository", "show-tags", &docker_name, "--page-size", "1"],
            ""
        )
        .0,
        json!({ "name": "team/app", "tags": ["v1", "v2", "v3"] })
    );
    assert_eq!(
        run_err(cfg, &["repository", "show-tags", "team/nope"], ""),
        "wharf: the registry answered 404 Not Found: NAME_UNKNOWN: repository \"team/nope\" is not known\n"
    );

    // untag removes the tag only: the manifest stays, by digest and under its other tag.
    assert_eq!(
        run_ok(cfg, &["repository", "untag", "team/app:v2"], "").0,
        "Removed tag v2 from team/app (its manifest stays, pullable by digest)\n"
    );
    assert_eq!(pull("v2"), unknown);
    assert_eq!(pull("v1").0, 200);
    assert_eq!(
        json_ok(cfg, &["repository", "untag", "team/app:v1"], "").0,
        json!({ "repository": "team/app", "tag": "v1", "deleted": true })
    );
    assert_eq!(pull("v1"), unknown);
    assert_eq!(pull(&first).0, 200);
    let (code, message) = json_err(cfg, &["repository", "untag", "team/app:v1"], "");
    assert_eq!(code, "MANIFEST_UNKNOWN");
    assert!(
        message.starts_with("the registry answered 404 Not Found: MANIFEST_UNKNOWN: "),
        "{message}"
    );
    assert_eq!(
        json_err(cfg, &["repository", "untag", &format!("team/app@{first}")], "").0,
        "INVALID_INPUT"
    );

    // delete asks first; without a terminal and without --yes it refuses, changing nothing.
    let by_digest = format!("team/app@{third}");
    assert_eq!(
        json_err(cfg, &["repository", "delete", &by_digest], ""),
        (
            "NOT_CONFIRMED".to_owned(),
            "refusing without confirmation: standard input is not a terminal; pass --yes to confirm"
                .to_owned()
        )
    );
    assert_eq!(pull("v3").0, 200);
    let (stdout, stderr) = run_ok(cfg, &["repository", "delete", &by_digest, "--yes"], "");
    assert_eq!(
        stdout,
        format!("Deleted manifest {third} and its tags from team/app\n")
    );
    assert_eq!(
        stderr,
        format!(
            "WARNING: this deletes manifest {third} of team/app and every tag that points to it. \
             This cannot be undone; pulls by those tags or by the digest fail from then on.\n"
        )
    );
    assert_eq!(pull(&third), unknown);
    assert_eq!(pull("v3"), unknown);
    assert_eq!(
        run_ok(cfg, &["repository", "show-tags", "team/app"], "").0,
        "team/app has no tags\n"
    );
    assert_eq!(
        json_ok(
            cfg,
            &["repository", "delete", &format!("team/app@{first}"), "--yes"],
            ""
        )
        .0,
        json!({ "repository": "team/app", "digest": first, "deleted": true })
    );
    assert_eq!(pull(&first), unknown);
    // A repository without manifests is no longer listed.
    assert_eq!(
        json_ok(cfg, &["repository", "list"], "").0,
        json!({ "repositories": ["other/x", "team/lib"] })
    );
    assert_eq!(
        json_err(
            cfg,
            &["repository", "delete", &format!("team/app@{first}"), "--yes"],
            ""
        )
        .0,
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(
        run_err(cfg, &["repository", "delete", "team/app:v1", "--yes"], ""),
        "wharf: expected REPO@DIGEST (one manifest and its tags) or REPO (the whole repository), \
         not \"team/app:v1\"; to remove one tag use `wharf repository untag REPO:TAG`\n"
    );

    // Others see what they may pull (not other/x), and delete only where they may.
    create_user(cfg, "bob", "bob-password-1");
    run_ok(
        cfg,
        &[
            "role",
            "assignment",
            "create",
            "--role",
            "AcrPull",
            "--assignee",
            "bob",
            "--scope",
            "repository:team/*",
        ],
        "",
    );
    let bob = login_dir(&server, "bob", "bob-password-1");
    assert_eq!(
        json_ok(bob.path(), &["repository", "list"], "").0,
        json!({ "repositories": ["team/lib"] })
    );
    assert_eq!(
        run_err(bob.path(), &["repository", "untag", "team/lib:1.0"], ""),
        "wharf: not authorised: access to the requested resource is not authorized; \
         deleting in team/lib needs the delete right on it (e.g. the AcrDelete role)\n"
    );
    assert_eq!(
        json_ok(bob.path(), &["repository", "show-tags", "team/lib"], "").0,
        json!({ "name": "team/lib", "tags": ["1.0"] })
    );
    // A whole repository: an owner's command; bob is refused and nothing goes.
    let (code, message) = json_err(bob.path(), &["repository", "delete", "team/lib", "--yes"], "");
    assert_eq!(code, "UNAUTHORIZED", "{message}");
    assert!(message.contains("this needs the Owner role"), "{message}");
    assert_eq!(
        json_ok(cfg, &["repository", "delete", "team/lib", "--yes"], "").0,
        json!({ "repository": "team/lib", "deleted": true })
    );
    assert_eq!(
        json_ok(cfg, &["repository", "list"], "").0,
        json!({ "repositories": ["other/x"] })
    );
    assert_eq!(
        json_err(cfg, &["repository", "delete", "team/lib", "--yes"], "").0,
        "NAME_UNKNOWN"
    );
}

#[test]
fn the_signature_policy_is_set_shown_and_removed() {
    let server = Server::start();
    let owner = login_dir(&server, "admin", &server.admin_password);
    let cfg = owner.path();
    let http = server.http();
    let push = server.token(&["repository:team/app:push,pull"]);
    push_tiny_image(&server, &http, &push, "team/app", "v1", "unsigned");
    // A plain pull (pull only, as docker asks): checked whoever makes it.
    let pull_status = || {
        let r = http
            .get(server.url("/v2/team/app/manifests/v1"))
            .bearer_auth(server.token(&["repository:team/app:pull"]))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .expect("get manifest");
        let status = r.status().as_u16();
        let body = r.text().unwrap_or_default();
        (
            status,
            if status == 200 {
                String::new()
            } else {
                common::error_code(&body)
            },
        )
    };
    assert_eq!(pull_status().0, 200);

    assert_eq!(
        run_ok(cfg, &["policy", "show"], "").0,
        "Signature policy version 0: no rules (every manifest is served, signed or not)\n"
    );
    assert_eq!(
        json_ok(cfg, &["policy", "show"], "").0,
        json!({ "version": 0, "rules": [] })
    );

    // Refuse unsigned images under team/ to every client.
    assert_eq!(
        run_ok(
            cfg,
            &[
                "policy",
                "set",
                "--scope",
                "repository:team/*",
                "--mode",
                "enforce",
                "--dct"
            ],
            ""
        ),
        (
            "Added the rule for repository:team/*: enforce, accepts dct (policy version 1)\n".to_owned(),
            String::new()
        )
    );
    let team = json!({ "scope": "repository:team/*", "mode": "enforce", "dct": {} });
    assert_eq!(
        common::signature_policy(&server),
        json!({ "version": 1, "rules": [team] })
    );
    assert_eq!(pull_status(), (403, "DENIED".to_owned()));

    // Another scope; roles imply --dct; the JSON answer is the stored document.
    let registry = json!({
        "scope": "registry",
        "mode": "audit",
        "dct": { "roles": ["targets/releases"] },
        "publishers_read_unsigned": false
    });
    assert_eq!(
        json_ok(
            cfg,
            &[
                "policy",
                "set",
                "--scope",
                "registry",
                "--mode",
                "audit",
                "--dct-role",
                "targets/releases",
                "--no-publisher-exemption"
            ],
            ""
        )
        .0,
        json!({ "version": 2, "rules": [team, registry] })
    );
    assert_eq!(
        run_ok(cfg, &["policy", "show"], "").0,
        "Signature policy version 2\n\
         SCOPE              MODE     ACCEPTS                NOTE\n\
         repository:team/*  enforce  dct\n\
         registry           audit    dct[targets/releases]  publishers may read unsigned: no\n"
    );
    assert_eq!(
        json_ok(cfg, &["policy", "show"], "").0,
        common::signature_policy(&server)
    );

    // set replaces the rule of exactly that scope, in place; the same rule again writes
    // nothing.
    assert_eq!(
        run_ok(
            cfg,
            &[
                "policy",
                "set",
                "--scope",
                "repository:team/*",
                "--mode",
                "audit",
                "--dct"
            ],
            ""
        )
        .0,
        "Replaced the rule for repository:team/*: audit, accepts dct (policy version 3)\n"
    );
    assert_eq!(
        run_ok(
            cfg,
            &[
                "policy",
                "set",
                "--scope",
                "repository:team/*",
                "--mode",
                "audit",
                "--dct"
            ],
            ""
        )
        .0,
        "The rule for repository:team/* is already audit, accepts dct (policy version 3); nothing changed\n"
    );
    assert_eq!(pull_status().0, 200, "audit serves unsigned images");

    // The server's refusals, exactly; nothing is stored.
    assert_eq!(
        run_err(
            cfg,
            &["policy", "set", "--scope", "team", "--mode", "enforce", "--dct"],
            ""
        ),
        "wharf: the server answered 400 Bad Request: rule 2: scope \"team\" must be registry, \
         repository:<name> or repository:<prefix>/*\n"
    );
    assert_eq!(
        json_err(
            cfg,
            &[
                "policy",
                "set",
                "--scope",
                "repository:lab/x",
                "--mode",
                "enforce"
            ],
            ""
        ),
        (
            "POLICY_INVALID".to_owned(),
            "the server answered 400 Bad Request: rule 2 (repository:lab/x): mode enforce needs \
             at least one of dct, cosign, notation"
                .to_owned()
        )
    );
    // Key files are read before the server is asked, and named when they cannot be.
    let missing = owner.path().join("missing.pem");
    let spec = format!("ci={}", missing.display());
    assert_eq!(
        json_err(
            cfg,
            &[
                "policy",
                "set",
                "--scope",
                "registry",
                "--mode",
                "enforce",
                "--cosign-key",
                &spec
            ],
            ""
        ),
        (
            "INVALID_INPUT".to_owned(),
            format!(
                "cannot read the cosign key file {} (--cosign-key {spec}): No such file or directory (os error 2)",
                missing.display()
            )
        )
    );
    // A key the server cannot use is refused with its rule named (cosign keys go to the
    // server as read).
    let key = owner.path().join("ci.pub");
    std::fs::write(
        &key,
        "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let (code, message) = json_err(
        cfg,
        &[
            "policy",
            "set",
            "--scope",
            "registry",
            "--mode",
            "enforce",
            "--cosign-key",
            &format!("ci={}", key.display()),
        ],
        "",
    );
    assert_eq!(code, "POLICY_INVALID");
    assert!(
        message.starts_with("the server answered 400 Bad Request: rule 1 (registry): cosign"),
        "{message}"
    );
    let (code, message) = json_err(
        cfg,
        &["policy", "set", "--scope", "registry", "--mode", "strict"],
        "",
    );
    assert_eq!(code, "USAGE", "{message}");
    assert_eq!(common::signature_policy(&server)["version"], 3);

    // Export, and import into a changed policy: the file's rules, the current version.
    let (exported, _) = json_ok(cfg, &["policy", "export"], "");
    assert_eq!(exported, common::signature_policy(&server));
    let (text, _) = run_ok(cfg, &["policy", "export"], "");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        exported
    );
    let file = owner.path().join("policy.json");
    std::fs::write(&file, &text).unwrap();

    // remove: exactly that scope, or an error naming it.
    assert_eq!(
        run_ok(cfg, &["policy", "remove", "--scope", "repository:team/*"], "").0,
        "Removed the rule for repository:team/* (policy version 4)\n"
    );
    assert_eq!(
        run_err(cfg, &["policy", "remove", "--scope", "repository:team/*"], ""),
        "wharf: no rule for scope repository:team/*\n"
    );
    assert_eq!(
        json_err(cfg, &["policy", "remove", "--scope", "repository:team/app"], ""),
        (
            "NOT_FOUND".to_owned(),
            "no rule for scope repository:team/app".to_owned()
        )
    );
    assert_eq!(
        json_ok(cfg, &["policy", "remove", "--scope", "registry"], "").0,
        json!({ "version": 5, "rules": [] })
    );

    let team_audit = json!({ "scope": "repository:team/*", "mode": "audit", "dct": {} });
    assert_eq!(
        run_ok(cfg, &["policy", "import", file.to_str().unwrap()], "").0,
        format!("Imported 2 rules from {} (policy version 6)\n", file.display())
    );
    assert_eq!(
        common::signature_policy(&server),
        json!({ "version": 6, "rules": [team_audit, registry] })
    );
    std::fs::write(&file, r#"{"version": 1}"#).unwrap();
    assert_eq!(
        json_err(cfg, &["policy", "import", file.to_str().unwrap()], ""),
        (
            "INVALID_INPUT".to_owned(),
            format!(
                "{} has no \"rules\" list: expected a policy as `wharf policy export` writes it",
                file.display()
            )
        )
    );

    // cosign keys and Notation roots go to the server as the files hold them, and rules
    // the CLI does not change go back exactly as the server sent them.
    let cosign_key = common::repo_root().join("testdata/cosign/signer.pub");
    let notation_root = common::repo_root().join("testdata/notation/notation-e2e/localkeys/e2e.crt");
    let (v, _) = json_ok(
        cfg,
        &[
            "policy",
            "set",
            "--scope",
            "repository:signed/*",
            "--mode",
            "enforce",
            "--cosign-key",
            &format!("signer={}", cosign_key.display()),
            "--notation-root",
            &format!("e2e={}", notation_root.display()),
            "--notation-identity",
            "*",
        ],
        "",
    );
    let signed = json!({
        "scope": "repository:signed/*",
        "mode": "enforce",
        "cosign": { "keys": [{ "name": "signer", "public_key": std::fs::read_to_string(&cosign_key).unwrap() }] },
        "notation": {
            "trust_store": [{ "name": "e2e", "certificate": std::fs::read_to_string(&notation_root).unwrap() }],
            "trusted_identities": ["*"]
        }
    });
    assert_eq!(v["rules"][2], signed);
    assert_eq!(v["version"], 7);
    assert!(
        run_ok(cfg, &["policy", "show"], "")
            .0
            .contains("\nrepository:signed/*  enforce  cosign[signer] or notation[e2e; *]\n"),
        "{}",
        run_ok(cfg, &["policy", "show"], "").0
    );
    run_ok(
        cfg,
        &[
            "policy",
            "set",
            "--scope",
            "repository:team/*",
            "--mode",
            "enforce",
            "--dct",
        ],
        "",
    );
    assert_eq!(
        common::signature_policy(&server),
        json!({ "version": 8, "rules": [team, registry, signed] })
    );

    // Only owners read or change it.
    create_user(cfg, "alice", "alice-password-1");
    let alice = login_dir(&server, "alice", "alice-password-1");
    assert_eq!(
        run_err(alice.path(), &["policy", "show"], ""),
        "wharf: not authorised: access to the requested resource is not authorized; \
         this needs the Owner role: log in as an owner with `wharf login`\n"
    );
    assert_eq!(
        json_err(alice.path(), &["policy", "remove", "--scope", "registry"], "").0,
        "UNAUTHORIZED"
    );
    assert_eq!(
        json_err(
            alice.path(),
            &["policy", "set", "--scope", "registry", "--mode", "off"],
            ""
        )
        .0,
        "UNAUTHORIZED"
    );
    assert_eq!(common::signature_policy(&server)["version"], 8);
}
