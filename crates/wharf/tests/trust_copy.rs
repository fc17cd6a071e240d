//! `wharf trust copy`: signed images and their Docker Content Trust data from Debian's
//! reference stack (Distribution 2.8 + notary-server 0.7, pushed to by the stock docker CLI
//! with content trust) into Wharf; then a docker client that never saw the source pulls
//! every signed tag from Wharf with content trust, and `docker trust inspect` shows the same
//! signers and digests on both. Refusals (no root key, source trust data that does not
//! verify, a caller who may not sign, other trust data at the destination) are exact and
//! leave the destination without new manifests or trust data.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use common::reference_stack::{ReferenceStack, StaticTrustServer};
use common::{DockerClient, Server, logged_in, text};
use serde_json::Value;

const ROOT_PASS: &str = "root-pass-123";
const REPO_PASS: &str = "repo-pass-123";

/// docker with content trust against the reference stack's notary server.
fn dct_env(stack: &ReferenceStack) -> Vec<(&'static str, String)> {
    vec![
        ("DOCKER_CONTENT_TRUST", "1".to_owned()),
        ("DOCKER_CONTENT_TRUST_SERVER", stack.trust_url.clone()),
        ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", ROOT_PASS.to_owned()),
        ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", REPO_PASS.to_owned()),
    ]
}

fn docker_ok(client: &DockerClient, args: &[&str], env: &[(&str, String)]) -> String {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = client.cmd(args, &env);
    let t = text(&out);
    assert!(out.status.success(), "docker {args:?} failed:\n{t}");
    t
}

/// `wharf -o json trust copy ARGS` with Docker config `config` and the root passphrase.
fn wharf_copy(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["-o", "json", "trust", "copy"])
        .args(args)
        .env("DOCKER_CONFIG", config)
        .env("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", ROOT_PASS)
        .env_remove("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE")
        .stdin(Stdio::null())
        .output()
        .expect("run wharf")
}

fn json_ok(out: &Output) -> Value {
    assert!(out.status.success(), "wharf trust copy failed: {}", text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

/// `{"error":{"code","message"}}` that `--output json` prints on standard error.
fn json_error(out: &Output) -> (String, String) {
    assert!(!out.status.success(), "should fail: {}", text(out));
    let v: Value = serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {}", text(out)));
    (
        v["error"]["code"].as_str().unwrap().to_owned(),
        v["error"]["message"].as_str().unwrap().to_owned(),
    )
}

/// The `docker trust inspect` document of `repo` (first entry), as `client` sees it.
fn trust_inspect(client: &DockerClient, repo: &str, env: &[(&str, String)]) -> Value {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = client.cmd(&["trust", "inspect", repo], &env);
    assert!(out.status.success(), "trust inspect {repo}:\n{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    v[0].clone()
}

/// Tags of `repo` in Wharf (empty when it has none), read as the owner.
fn wharf_tags(server: &Server, repo: &str) -> Vec<String> {
    let token = server.token(&[&format!("repository:{repo}:pull")]);
    let r = server
        .http()
        .get(server.url(&format!("/v2/{repo}/tags/list")))
        .bearer_auth(token)
        .send()
        .expect("tags");
    if r.status() == 404 {
        return Vec::new();
    }
    let v: Value = r.json().expect("json");
    let mut tags: Vec<String> = v["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    tags.sort();
    tags
}

/// The destination has neither tags nor trust data.
fn assert_untouched(server: &Server, repo: &str) {
    assert_eq!(wharf_tags(server, repo), Vec::<String>::new(), "tags of {repo}");
    assert_eq!(server.trust_root(repo), None, "trust data of {repo}");
}

/// A publisher's docker client that pushed `tags` of `repo` to the reference stack with
/// content trust (keys in its config), plus an unsigned tag `plain` when `unsigned`.
fn publish_signed(stack: &ReferenceStack, repo: &str, tags: &[&str], unsigned: bool) -> DockerClient {
    let publisher = DockerClient::new();
    let env = dct_env(stack);
    for tag in tags {
        let reference = format!("{}/{repo}:{tag}", stack.registry);
        publisher.import_image(&reference);
        let out = docker_ok(&publisher, &["push", &reference], &env);
        assert!(out.contains(&format!("Successfully signed {reference}")), "{out}");
    }
    if unsigned {
        let reference = format!("{}/{repo}:plain", stack.registry);
        publisher.import_image(&reference);
        publisher.ok(&["push", &reference]);
    }
    publisher
}

#[test]
fn signed_images_copy_from_the_reference_stack_and_pull_from_wharf_with_content_trust() {
    let stack = ReferenceStack::start();
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let env = dct_env(&stack);
    let src = format!("{}/team/app", stack.registry);
    let publisher = publish_signed(&stack, "team/app", &["v1"], true);
    // v2's layer is 20 MiB of random bytes: the copy sends it in several upload chunks.
    let big = format!("{src}:v2");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let mut random = vec![0u8; 20 << 20];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut random).unwrap();
    std::fs::write(root.join("random.bin"), random).unwrap();
    let tar = dir.path().join("big.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    publisher.ok(&["import", tar.to_str().unwrap(), &big]);
    let out = docker_ok(&publisher, &["push", &big], &env);
    assert!(out.contains(&format!("Successfully signed {big}")), "{out}");

    // v3 is signed by the delegation signer alice (docker signs into targets/releases and
    // targets/alice with her key).
    let keys = tempfile::tempdir().unwrap();
    docker_ok(
        &publisher,
        &[
            "trust",
            "key",
            "generate",
            "alice",
            "--dir",
            keys.path().to_str().unwrap(),
        ],
        &env,
    );
    let pub_key = keys.path().join("alice.pub");
    let out = docker_ok(
        &publisher,
        &[
            "trust",
            "signer",
            "add",
            "--key",
            pub_key.to_str().unwrap(),
            "alice",
            &src,
        ],
        &env,
    );
    assert!(
        out.contains(&format!("Successfully added signer: alice to {src}")),
        "{out}"
    );
    publisher.import_image(&format!("{src}:v3"));
    let out = docker_ok(&publisher, &["trust", "sign", &format!("{src}:v3")], &env);
    assert!(out.contains(&format!("Successfully signed {src}:v3")), "{out}");
    let source_view = trust_inspect(&publisher, &src, &env);
    assert_eq!(
        source_view["SignedTags"].as_array().unwrap().len(),
        3,
        "{source_view}"
    );

    // The copy, by the publisher (root key in its store), logged in to Wharf.
    let login = publisher.wharf_login(&server, "admin", &server.admin_password);
    assert!(login.status.success(), "{}", text(&login));
    let dst = format!("{}/mirror/app", server.host);
    let ca = stack.ca.to_str().unwrap();
    let copy_args = ["--source-trust-server", &stack.trust_url, "--source-ca", ca];
    let mut args = vec![src.as_str(), dst.as_str()];
    args.extend(copy_args);
    let report = json_ok(&wharf_copy(publisher.config.path(), &args));
    assert_eq!(
        report["signed_tags"],
        serde_json::json!(["v1", "v2", "v3"]),
        "{report}"
    );
    assert_eq!(
        report["skipped"],
        serde_json::json!([{"tag": "plain", "reason": "unsigned (copy it with --all-tags)"}])
    );
    assert_eq!(report["trust_data"], "published");
    assert_eq!(
        report["roles"],
        serde_json::json!(["root", "targets", "targets/alice", "targets/releases"]),
        "{report}"
    );
    assert_eq!(wharf_tags(&server, "mirror/app"), ["v1", "v2", "v3"]);

    // targets.json and the delegations are the publisher's files, byte for byte.
    let wharf_gun = format!("{}/mirror/app", server.host);
    let token = server.token(&[&format!("repository:{wharf_gun}:pull")]);
    for role in ["targets", "targets/releases", "targets/alice"] {
        let ours = server
            .http()
            .get(server.url(&format!("/v2/{wharf_gun}/_trust/tuf/{role}.json")))
            .bearer_auth(&token)
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        assert_eq!(
            ours.to_vec(),
            stack.trust_file(&src, &format!("{role}.json")),
            "{role}"
        );
    }

    // A docker client that never saw either repository pulls every signed tag from Wharf
    // with content trust; its trust inspect shows the source's signers and digests.
    let fresh = logged_in(&server, "admin", &server.admin_password);
    let wharf_dct = vec![("DOCKER_CONTENT_TRUST", "1".to_owned())];
    for tag in ["v1", "v2", "v3"] {
        let digest = source_view["SignedTags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["SignedTag"] == tag)
            .unwrap()["Digest"]
            .as_str()
            .unwrap()
            .to_owned();
        let out = docker_ok(&fresh, &["pull", &format!("{dst}:{tag}")], &wharf_dct);
        assert!(out.contains(&format!("sha256:{digest}")), "pull {tag}:\n{out}");
    }
    let copied_view = trust_inspect(&fresh, &dst, &wharf_dct);
    assert_eq!(copied_view["SignedTags"], source_view["SignedTags"]);
    assert_eq!(copied_view["Signers"], source_view["Signers"]);
    // The root key is the publisher's, certified anew for the destination's name.
    let root_ids = |v: &Value| {
        v["AdministrativeKeys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["Name"] == "Root")
            .unwrap()["Keys"]
            .clone()
    };
    assert_ne!(root_ids(&copied_view), root_ids(&source_view));
    let root: Value = serde_json::from_str(&server.trust_root("mirror/app").unwrap()).unwrap();
    let root_key_id = root["signed"]["roles"]["root"]["keyids"][0].as_str().unwrap();
    let cert_pem = base64::engine::general_purpose::STANDARD
        .decode(
            root["signed"]["keys"][root_key_id]["keyval"]["public"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let subject = Command::new("openssl")
        .args(["x509", "-noout", "-subject"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(&cert_pem)?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&subject.stdout).trim(),
        format!("subject=CN = {dst}")
    );

    // Again: nothing to do. With --all-tags the unsigned tag comes along as a plain image,
    // which a content-trust pull refuses.
    let again = json_ok(&wharf_copy(publisher.config.path(), &args));
    assert_eq!(again["trust_data"], "unchanged", "{again}");
    assert!(
        again["copied"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["pushed"] == false),
        "{again}"
    );
    args.push("--all-tags");
    let all = json_ok(&wharf_copy(publisher.config.path(), &args));
    assert_eq!(all["skipped"], serde_json::json!([]), "{all}");
    let plain = all["copied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["tag"] == "plain")
        .unwrap();
    assert_eq!(
        (&plain["signed"], &plain["pushed"]),
        (&Value::Bool(false), &Value::Bool(true))
    );
    assert_eq!(wharf_tags(&server, "mirror/app"), ["plain", "v1", "v2", "v3"]);
    let out = fresh.cmd(
        &["pull", &format!("{dst}:plain")],
        &[("DOCKER_CONTENT_TRUST", "1")],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("No valid trust data for plain"),
        "{}",
        text(&out)
    );
}

#[test]
fn refusals_name_the_problem_and_leave_the_destination_unchanged() {
    let stack = ReferenceStack::start();
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let src = format!("{}/team/ref", stack.registry);
    let publisher = publish_signed(&stack, "team/ref", &["v1"], false);
    let login = publisher.wharf_login(&server, "admin", &server.admin_password);
    assert!(login.status.success(), "{}", text(&login));
    let ca = stack.ca.to_str().unwrap();
    let dst = format!("{}/mirror/ref", server.host);
    let args = [
        src.as_str(),
        dst.as_str(),
        "--source-trust-server",
        &stack.trust_url,
        "--source-ca",
        ca,
    ];

    // 1. No root key: the publisher's config without its root key file.
    let keyless = tempfile::tempdir().unwrap();
    std::fs::copy(
        publisher.config.path().join("config.json"),
        keyless.path().join("config.json"),
    )
    .unwrap();
    let _ = std::fs::copy(
        publisher.config.path().join("wharf.json"),
        keyless.path().join("wharf.json"),
    );
    let private = publisher.config.path().join("trust/private");
    std::fs::create_dir_all(keyless.path().join("trust/private")).unwrap();
    let mut root_id = String::new();
    for entry in std::fs::read_dir(&private).unwrap() {
        let entry = entry.unwrap();
        let pem = std::fs::read_to_string(entry.path()).unwrap();
        if pem.contains("role: root") {
            root_id = entry
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".key")
                .to_owned();
        } else {
            std::fs::copy(
                entry.path(),
                keyless.path().join("trust/private").join(entry.file_name()),
            )
            .unwrap();
        }
    }
    assert_eq!(root_id.len(), 64, "the publisher's root key file");
    let (code, message) = json_error(&wharf_copy(keyless.path(), &args));
    assert_eq!(code, "NO_SIGNING_KEY");
    assert_eq!(
        message,
        format!(
            "the root key {root_id} of {src} is not in {}; nothing was copied (the destination's root must be signed by the publisher's root key: load it with `wharf trust key restore` or `wharf trust key load`)",
            keyless.path().join("trust/private").display()
        )
    );
    assert_untouched(&server, "mirror/ref");

    // 2. A caller with push but not sign on the destination.
    let owner = server.token(&["registry:admin:*"]);
    for (path, body) in [
        (
            "/api/v1/users",
            r#"{"name": "pusher", "password": "pusher-password-1"}"#,
        ),
        (
            "/api/v1/role-assignments",
            r#"{"role": "AcrPush", "assignee": "pusher", "scope": "repository:mirror/ref"}"#,
        ),
    ] {
        let r = server
            .http()
            .post(server.url(path))
            .bearer_auth(&owner)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 201, "{path}: {}", r.text().unwrap_or_default());
    }
    let pusher = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(pusher.path().join("trust")).unwrap();
    copy_dir(&private, &pusher.path().join("trust/private"));
    let pusher_client = DockerClient { config: pusher };
    let login = pusher_client.wharf_login(&server, "pusher", "pusher-password-1");
    assert!(login.status.success(), "{}", text(&login));
    let (code, message) = json_error(&wharf_copy(pusher_client.config.path(), &args));
    assert_eq!(code, "DENIED");
    assert_eq!(
        message,
        format!("pusher may not sign {dst} (that needs push and sign on the repository); nothing was copied")
    );
    assert_untouched(&server, "mirror/ref");

    // 3. Source trust data that does not verify: the notary server's files served
    //    elsewhere with one signature of the timestamp changed.
    let files = tempfile::tempdir().unwrap();
    let tuf = files.path().join(format!("v2/{src}/_trust/tuf"));
    std::fs::create_dir_all(tuf.join("targets")).unwrap();
    let timestamp: Value = serde_json::from_slice(&stack.trust_file(&src, "timestamp.json")).unwrap();
    let snapshot = stack.trust_file(&src, "snapshot.json");
    std::fs::write(
        tuf.join(format!("snapshot.{}.json", hex_sha256(&snapshot))),
        &snapshot,
    )
    .unwrap();
    for role in ["root", "targets"] {
        let bytes = stack.trust_file(&src, &format!("{role}.json"));
        std::fs::write(tuf.join(format!("{role}.{}.json", hex_sha256(&bytes))), &bytes).unwrap();
    }
    let mut tampered = timestamp.clone();
    let sig = tampered["signatures"][0]["sig"].as_str().unwrap().to_owned();
    let mut raw = base64::engine::general_purpose::STANDARD.decode(&sig).unwrap();
    raw[10] ^= 0x01;
    tampered["signatures"][0]["sig"] = Value::String(base64::engine::general_purpose::STANDARD.encode(raw));
    std::fs::write(tuf.join("timestamp.json"), serde_json::to_vec(&tampered).unwrap()).unwrap();
    // Served with the stack's own certificate, so one --source-ca covers both servers.
    let fake = StaticTrustServer::start(files.path(), stack.dir.path());
    let tampered_args = [
        src.as_str(),
        dst.as_str(),
        "--source-trust-server",
        &fake.url,
        "--source-ca",
        ca,
    ];
    let (code, message) = json_error(&wharf_copy(publisher.config.path(), &tampered_args));
    assert_eq!(code, "SOURCE_NOT_VERIFIED");
    assert!(
        message.starts_with(&format!("the trust data of {src} does not verify: timestamp: ")),
        "{message}"
    );
    assert!(message.ends_with("; nothing was copied"), "{message}");
    assert_untouched(&server, "mirror/ref");

    // 4. Other trust data at the destination: the owner signed an image there first.
    let owner_client = logged_in(&server, "admin", &server.admin_password);
    let other = format!("{dst}:own");
    owner_client.import_image(&other);
    let signed = owner_client.cmd(
        &["push", &other],
        &[
            ("DOCKER_CONTENT_TRUST", "1"),
            ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", ROOT_PASS),
            ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", REPO_PASS),
        ],
    );
    assert!(signed.status.success(), "{}", text(&signed));
    let root_before = server.trust_root("mirror/ref");
    let (code, message) = json_error(&wharf_copy(publisher.config.path(), &args));
    assert_eq!(code, "TRUST_DATA_EXISTS");
    assert_eq!(
        message,
        format!(
            "{dst} already has other trust data; nothing was copied (copy into a repository without trust data, or delete its trust data first: `wharf content-trust reset mirror/ref --yes`)"
        )
    );
    assert_eq!(wharf_tags(&server, "mirror/ref"), ["own"]);
    assert_eq!(server.trust_root("mirror/ref"), root_before);
}

fn hex_sha256(bytes: &[u8]) -> String {
    common::sha256(bytes).trim_start_matches("sha256:").to_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// `GET /v2/<repo>/manifests/<reference>` on `server` as the owner: digest and body, or
/// `None` on 404.
fn wharf_manifest(server: &Server, repo: &str, reference: &str) -> Option<(String, Value)> {
    let token = server.token(&[&format!("repository:{repo}:pull")]);
    let r = server
        .http()
        .get(server.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header(
            "accept",
            "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json",
        )
        .bearer_auth(token)
        .send()
        .expect("manifest");
    if r.status() == 404 {
        return None;
    }
    assert_eq!(r.status(), 200, "{repo}@{reference}");
    let bytes = r.bytes().unwrap();
    Some((common::sha256(&bytes), serde_json::from_slice(&bytes).unwrap()))
}

/// Another Wharf as the source: read with the login `wharf login` stored for it (its token
/// service, an identity token), its trust data from the registry itself (no
/// --source-trust-server); an index signed with `wharf trust sign` arrives with every
/// child manifest, and an image pulls from the destination with content trust.
#[test]
fn a_wharf_source_is_read_with_its_stored_login_and_an_index_comes_with_its_children() {
    common::require_tool("skopeo");
    let trust_on = [("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")];
    let (source, target) = (Server::start_with(&trust_on), Server::start_with(&trust_on));
    let publisher = logged_in(&source, "admin", &source.admin_password);
    let src = format!("{}/team/app", source.host);
    let dct = [
        ("DOCKER_CONTENT_TRUST", "1"),
        ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", ROOT_PASS),
        ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", REPO_PASS),
    ];
    publisher.import_image(&format!("{src}:v1"));
    let out = publisher.cmd(&["push", &format!("{src}:v1")], &dct);
    assert!(out.status.success(), "{}", text(&out));

    let layout = source.scratch("layout");
    common::write_oci_layout(&layout, &[("linux", "amd64"), ("linux", "arm64")]);
    let certs = source.cert_dir();
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--dest-cert-dir",
            certs.to_str().unwrap(),
            "--dest-creds",
        ])
        .arg(format!("admin:{}", source.admin_password))
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker://{src}:multi"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["trust", "sign", &format!("{src}:multi")])
        .env("DOCKER_CONFIG", publisher.config.path())
        .env("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", ROOT_PASS)
        .env("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", REPO_PASS)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let (index_digest, index) = wharf_manifest(&source, "team/app", "multi").unwrap();

    // The same Docker config logs in to the destination; the source keeps its stored login.
    let login = publisher.wharf_login(&target, "admin", &target.admin_password);
    assert!(login.status.success(), "{}", text(&login));
    let dst = format!("{}/mirror/app", target.host);
    let report = json_ok(&wharf_copy(
        publisher.config.path(),
        &[&src, &dst, "--source-ca", source.ca.to_str().unwrap()],
    ));
    assert_eq!(
        report["signed_tags"],
        serde_json::json!(["multi", "v1"]),
        "{report}"
    );
    assert_eq!(report["trust_data"], "published");
    let (copied_digest, _) = wharf_manifest(&target, "mirror/app", "multi").unwrap();
    assert_eq!(copied_digest, index_digest);
    for child in index["manifests"].as_array().unwrap() {
        let digest = child["digest"].as_str().unwrap();
        let (got, manifest) = wharf_manifest(&target, "mirror/app", digest).expect("child manifest copied");
        assert_eq!(got, digest);
        assert!(
            manifest["layers"].as_array().is_some_and(|l| !l.is_empty()),
            "{manifest}"
        );
    }
    let fresh = logged_in(&target, "admin", &target.admin_password);
    let out = fresh.cmd(&["pull", &format!("{dst}:v1")], &[("DOCKER_CONTENT_TRUST", "1")]);
    assert!(out.status.success(), "{}", text(&out));
}

/// Bad command lines are refused before any server is asked (none runs here).
#[test]
fn bad_arguments_are_refused_before_anything_is_asked() {
    let config = tempfile::tempdir().unwrap();
    for (args, message) in [
        (
            vec!["localhost:1/team/app:v1", "localhost:2/team/app"],
            "localhost:1/team/app:v1: copy takes a repository (HOST[:PORT]/REPOSITORY), not a tag",
        ),
        (
            vec!["localhost:1/team/app", "localhost:1/team/app"],
            "localhost:1/team/app is both source and destination",
        ),
        (
            vec![
                "localhost:1/team/app",
                "localhost:2/team/app",
                "--source-trust-server",
                "http://localhost:3",
            ],
            "--source-trust-server http://localhost:3: a trust server is reached over https://, as docker requires",
        ),
    ] {
        let (code, got) = json_error(&wharf_copy(config.path(), &args));
        assert_eq!(
            (code.as_str(), got.as_str()),
            ("INVALID_INPUT", message),
            "{args:?}"
        );
    }
}

/// A source registry that asks for a password: read with the user and password `docker
/// login` stored for it (basic authentication); without a stored login the copy stops
/// with what to do, before the destination is asked.
#[test]
fn a_source_behind_basic_authentication_is_read_with_the_password_docker_login_stored() {
    let stack = ReferenceStack::start_with_password("reader", "reader-pass-1");
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let publisher = DockerClient::new();
    // The password on standard input, as a script logs in (docker stores it in config.json:
    // this config has no credential helper).
    let mut login = Command::new("docker")
        .args(["login", &stack.registry, "-u", "reader", "--password-stdin"])
        .env("DOCKER_CONFIG", publisher.config.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut login.stdin.take().unwrap(), b"reader-pass-1\n").unwrap();
    let login = login.wait_with_output().unwrap();
    assert!(login.status.success(), "{}", text(&login));
    let src = format!("{}/team/locked", stack.registry);
    let env = dct_env(&stack);
    publisher.import_image(&format!("{src}:v1"));
    let out = docker_ok(&publisher, &["push", &format!("{src}:v1")], &env);
    assert!(out.contains(&format!("Successfully signed {src}:v1")), "{out}");

    let dst = format!("{}/mirror/locked", server.host);
    let args = [
        src.as_str(),
        dst.as_str(),
        "--source-trust-server",
        &stack.trust_url,
        "--source-ca",
        stack.ca.to_str().unwrap(),
    ];
    // Without the stored password: refused, nothing at the destination.
    let stranger = tempfile::tempdir().unwrap();
    let (code, message) = json_error(&wharf_copy(stranger.path(), &args));
    assert_eq!(code, "NOT_LOGGED_IN");
    assert_eq!(
        message,
        format!(
            "https://{} asks for a password and the Docker config stores none for {}: run `docker login {}` first",
            stack.registry, stack.registry, stack.registry
        )
    );
    assert_untouched(&server, "mirror/locked");

    let login = publisher.wharf_login(&server, "admin", &server.admin_password);
    assert!(login.status.success(), "{}", text(&login));
    let report = json_ok(&wharf_copy(publisher.config.path(), &args));
    assert_eq!(report["signed_tags"], serde_json::json!(["v1"]), "{report}");
    let fresh = logged_in(&server, "admin", &server.admin_password);
    let out = fresh.cmd(&["pull", &format!("{dst}:v1")], &[("DOCKER_CONTENT_TRUST", "1")]);
    assert!(out.status.success(), "{}", text(&out));
}
