//! Content trust end to end with real clients: `docker` (DOCKER_CONTENT_TRUST=1, which
//! uses the registry origin as its trust server), the Debian `notary` 0.7 CLI, the
//! `wharf content-trust` commands, and raw HTTP for the notary wire details.

mod common;

use std::process::{Command, Output, Stdio};

use common::{DockerClient, Server, notary, pushed_digest, refusal, refused, require_tool, text};
use serde_json::json;

const DCT: &[(&str, &str)] = &[
    ("DOCKER_CONTENT_TRUST", "1"),
    ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123"),
    ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-123"),
];

fn start_enabled() -> Server {
    Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")])
}

/// notary-server's answer for metadata it does not have, which Wharf gives byte for byte.
fn metadata_not_found() -> (u16, String, String) {
    refused(
        404,
        "METADATA_NOT_FOUND",
        "You have requested metadata that does not exist.",
    )
}

/// `wharf content-trust …` with the client's Docker config (as after `wharf login`).
fn wharf_ct(client: &DockerClient, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wharf"))
        .arg("content-trust")
        .args(args)
        .env("DOCKER_CONFIG", client.config.path())
        .stdin(Stdio::null())
        .output()
        .expect("run wharf")
}

/// `wharf content-trust ARGS --output json`: success, nothing on standard error (no
/// warning either: `--yes` was given), the JSON document.
fn ct_json(client: &DockerClient, args: &[&str]) -> serde_json::Value {
    let out = wharf_ct(client, &[args, &["--output", "json"]].concat());
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out)))
}

fn logged_in_client(server: &Server) -> DockerClient {
    let client = DockerClient::new();
    let out = client.wharf_login(server, "admin", &server.admin_password);
    assert!(out.status.success(), "wharf login: {}", text(&out));
    client
}

#[test]
fn docker_signed_push_and_trusted_pull_and_policy_switch() {
    let server = start_enabled();
    let client = logged_in_client(&server);
    let repo = format!("{}/team/signed", server.host);
    let v1 = format!("{repo}:v1");

    // First signed push initialises the repository (root + repository keys created locally).
    client.import_image(&v1);
    let out = client.cmd(&["push", &v1], DCT);
    let pushed = text(&out);
    assert!(
        out.status.success(),
        "signed push failed:\n{pushed}\n{}",
        server.log()
    );
    assert!(pushed.contains(&format!("Successfully signed {v1}")), "{pushed}");
    let digest = pushed_digest(&pushed);

    // A second signed tag reuses the keys.
    let v2 = format!("{repo}:v2");
    client.import_image(&v2);
    let out = client.cmd(&["push", &v2], DCT);
    assert!(out.status.success(), "second signed push:\n{}", text(&out));

    // An unsigned tag side by side.
    let unsigned = format!("{repo}:unsigned");
    client.import_image(&unsigned);
    client.ok(&["push", &unsigned]);

    // Trusted pull resolves the tag through trust data and pulls by the signed digest.
    client.ok(&["rmi", &v1]);
    let out = client.cmd(&["pull", &v1], DCT);
    let pulled = text(&out);
    assert!(out.status.success(), "trusted pull:\n{pulled}");
    assert!(
        pulled.contains(&digest),
        "pull did not use the signed digest {digest}:\n{pulled}"
    );

    let out = client.cmd(&["pull", &unsigned], DCT);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("No valid trust data for unsigned"),
        "{}",
        text(&out)
    );

    let plain = format!("{}/team/plain:v1", server.host);
    client.import_image(&plain);
    client.ok(&["push", &plain]);
    let out = client.cmd(&["pull", &plain], DCT);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("does not have trust data for"),
        "{}",
        text(&out)
    );

    let out = client.cmd(&["trust", "inspect", "--pretty", &repo], DCT);
    let inspected = text(&out);
    assert!(out.status.success(), "{inspected}");
    assert!(
        inspected.contains("v1") && inspected.contains("v2"),
        "{inspected}"
    );

    // Policy: show, refuse to disable without confirmation, disable with --yes.
    let out = wharf_ct(&client, &["show"]);
    assert_eq!(text(&out), "Content trust: enabled\n");
    assert_eq!(ct_json(&client, &["show"]), json!({ "enabled": true }));
    let out = wharf_ct(&client, &["disable"]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("ALL trust data of EVERY repository") && said.contains("--yes"),
        "{said}"
    );
    // In JSON mode the refusal is the error object alone.
    let out = wharf_ct(&client, &["disable", "--output", "json"]);
    assert!(!out.status.success() && out.stdout.is_empty(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "{\"error\":{\"code\":\"NOT_CONFIRMED\",\"message\":\"refusing without confirmation: standard input is \
         not a terminal; pass --yes to confirm\"}}\n"
    );
    assert_eq!(
        ct_json(&client, &["disable", "--yes"]),
        json!({ "enabled": false, "changed": true, "repositories_wiped": 1 })
    );
    assert_eq!(text(&wharf_ct(&client, &["show"])), "Content trust: disabled\n");

    // Images stay; trust data is gone; signing fails at the signing step with a clear message.
    client.ok(&["pull", &unsigned]);
    let http = server.http();
    let token = server.token(&[&format!("repository:{repo}:pull")]);
    let resp = http
        .get(server.url(&format!("/v2/{repo}/_trust/tuf/root.json")))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(refusal(resp), metadata_not_found());
    let v3 = format!("{}/team/other:v1", server.host);
    client.import_image(&v3);
    let out = client.cmd(&["push", &v3], DCT);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("content trust is disabled on this registry"),
        "{}",
        text(&out)
    );

    // Re-enabling starts from nothing: a fresh publisher can sign again.
    assert_eq!(
        ct_json(&client, &["enable"]),
        json!({ "enabled": true, "changed": true })
    );
    let fresh = logged_in_client(&server);
    fresh.import_image(&v3);
    let out = fresh.cmd(&["push", &v3], DCT);
    assert!(out.status.success(), "push after re-enable:\n{}", text(&out));

    // Per-repository reset leaves the others alone.
    let other = format!("{}/team/second:v1", server.host);
    fresh.import_image(&other);
    assert!(fresh.cmd(&["push", &other], DCT).status.success());
    assert_eq!(
        ct_json(&client, &["reset", "team/other", "--yes"]),
        json!({ "repository": "team/other", "deleted": true })
    );
    assert_eq!(
        ct_json(&client, &["reset", "team/other", "--yes"]),
        json!({ "repository": "team/other", "deleted": false })
    );
    fresh.ok(&["rmi", &v3, &other]);
    assert_eq!(
        fresh.fails(&["pull", &v3], DCT),
        format!(
            "Error: remote trust data does not exist for {0}/team/other: {0} does not have trust \
             data for {0}/team/other",
            server.host
        )
    );
    let out = fresh.cmd(&["pull", &other], DCT);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn notary_cli_publishes_rotates_and_deletes() {
    require_tool("notary");
    let server = start_enabled();
    let dir = server.scratch("notary");
    let gun = format!("{}/n/repo", server.host);
    let file = dir.join("payload.txt");
    std::fs::write(&file, b"hello").unwrap();
    let file = file.to_str().unwrap();

    let out = notary(&server, &dir, &["init", &gun]);
    assert!(out.status.success(), "init: {}", text(&out));
    let out = notary(&server, &dir, &["add", &gun, "hello", file]);
    assert!(out.status.success(), "add: {}", text(&out));
    let out = notary(&server, &dir, &["publish", &gun]);
    assert!(out.status.success(), "publish: {}\n{}", text(&out), server.log());

    // Server-side snapshot key, then a timestamp key rotation.
    let out = notary(&server, &dir, &["key", "rotate", &gun, "snapshot", "-r"]);
    assert!(out.status.success(), "rotate snapshot: {}", text(&out));
    let out = notary(&server, &dir, &["key", "rotate", &gun, "timestamp", "-r"]);
    assert!(out.status.success(), "rotate timestamp: {}", text(&out));
    let out = notary(&server, &dir, &["add", &gun, "again", file, "-p"]);
    assert!(out.status.success(), "publish after rotation: {}", text(&out));

    // Root key rotation (new root signed by old and new root keys).
    let out = notary(&server, &dir, &["key", "rotate", &gun, "root"]);
    assert!(out.status.success(), "rotate root: {}", text(&out));

    // Delegations: add (x509 certificate), publish, remove.
    let key = dir.join("deleg.key");
    let cert = dir.join("deleg.crt");
    let st = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args(["-x509", "-days", "30", "-subj", "/CN=delegate", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(st.status.success(), "{}", text(&st));
    let cert = cert.to_str().unwrap();
    let out = notary(
        &server,
        &dir,
        &[
            "delegation",
            "add",
            &gun,
            "targets/releases",
            cert,
            "--all-paths",
            "-p",
        ],
    );
    assert!(out.status.success(), "delegation add: {}", text(&out));
    // (`notary delegation list` is read-only and would need anonymous pull; read over HTTP.)
    let owner_read = server.token(&[&format!("repository:{gun}:pull")]);
    let targets_url = server.url(&format!("/v2/{gun}/_trust/tuf/targets.json"));
    let get_targets = || {
        server
            .http()
            .get(&targets_url)
            .bearer_auth(&owner_read)
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    assert!(get_targets().contains("targets/releases"));
    let out = notary(
        &server,
        &dir,
        &["delegation", "remove", &gun, "targets/releases", "-y", "-p"],
    );
    assert!(out.status.success(), "delegation remove: {}", text(&out));
    assert!(!get_targets().contains("targets/releases"));

    // What the server serves verifies in a fresh client cache (reads as the owner).
    let token = server.token(&[&format!("repository:{gun}:pull")]);
    let targets = server
        .http()
        .get(server.url(&format!("/v2/{gun}/_trust/tuf/targets.json")))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        targets.contains("hello") && targets.contains("again"),
        "{targets}"
    );
    let feed: serde_json::Value = server
        .http()
        .get(server.url(&format!("/v2/{gun}/_trust/changefeed?records=0")))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(feed["count"].as_u64().unwrap() >= 3, "{feed}");

    let out = notary(&server, &dir, &["delete", &gun, "--remote"]);
    assert!(out.status.success(), "delete: {}", text(&out));
    let resp = server
        .http()
        .get(server.url(&format!("/v2/{gun}/_trust/tuf/root.json")))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(refusal(resp), metadata_not_found());
}

#[test]
fn trust_wire_details() {
    let server = start_enabled();
    let http = server.http();
    let gun = format!("{}/w/repo", server.host);
    let rw = server.token(&[&format!("repository:{gun}:push,pull")]);
    let key_url = server.url(&format!("/v2/{gun}/_trust/tuf/timestamp.key"));
    // Stable pending key before init.
    let k1 = http
        .get(&key_url)
        .bearer_auth(&rw)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let k2 = http
        .get(&key_url)
        .bearer_auth(&rw)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(k1, k2);
    assert!(
        k1.starts_with(r#"{"keytype":"ed25519","keyval":{"public":""#),
        "{k1}"
    );
    // Unknown GUN host, bad multipart, missing data.
    let resp = http
        .get(server.url("/v2/elsewhere.example.com/w/repo/_trust/tuf/root.json"))
        .bearer_auth(&rw)
        .send()
        .unwrap();
    assert_eq!(
        refusal(resp),
        refused(
            400,
            "INVALID_GUN",
            "The server does not support actions on images of this name."
        )
    );
    let resp = http
        .post(server.url(&format!("/v2/{gun}/_trust/tuf/")))
        .bearer_auth(&rw)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(
        refusal(resp),
        refused(400, "MALFORMED_UPLOAD", "The body of your request is malformed.")
    );
    let resp = http
        .post(server.url(&format!("/v2/{gun}/_trust/tuf/")))
        .bearer_auth(&rw)
        .header("content-type", "multipart/form-data; boundary=B")
        .body("--B--\r\n")
        .send()
        .unwrap();
    // notary's validation error: docker and notary print the detail's `Msg`.
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().unwrap();
    let error = &body["errors"][0];
    assert_eq!(
        (
            &error["code"],
            &error["message"],
            &error["detail"]["Error"]["Msg"]
        ),
        (
            &json!("INVALID_UPDATE"),
            &json!("Update sent by the client is invalid."),
            &json!("no pre-existing root and no root provided in update.")
        ),
        "{body}"
    );
    let resp = http
        .get(server.url(&format!("/v2/{gun}/_trust/tuf/root.json")))
        .bearer_auth(&rw)
        .send()
        .unwrap();
    assert_eq!(refusal(resp), metadata_not_found());
    // Pull-only tokens cannot write; no token gets the challenge naming the GUN scope.
    let ro = server.token(&[&format!("repository:{gun}:pull")]);
    let resp = http.get(&key_url).bearer_auth(&ro).send().unwrap();
    assert_eq!(
        refusal(resp),
        refused(
            401,
            "UNAUTHORIZED",
            "access to the requested resource is not authorized"
        )
    );
    let resp = http.get(&key_url).send().unwrap();
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains(&format!("repository:{gun}:push,pull")),
        "{challenge}"
    );
}
