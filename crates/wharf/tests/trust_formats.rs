//! `wharf trust key generate` and `wharf trust sign` with `--format cosign` and `--format
//! notation`, against a real server and checked by real clients: images pushed with
//! docker, signed by wharf (no cosign, no notation), then served or refused by the
//! server's signature policy and verified by skopeo's own sigstore policy.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{DockerClient, Server, create_user, logged_in, pushed_digest, require_tool, text, wharf_cli};
use serde_json::{Value, json};

const CONSUMER_PASSWORD: &str = "consumer-password-1";
const NO_DCT: &[(&str, &str)] = &[("DOCKER_CONTENT_TRUST", "0")];

/// `wharf ARGS` run in `dir` with the login of `client`, plus `env`.
fn wharf_in(dir: &Path, client: &DockerClient, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wharf"));
    c.args(args)
        .current_dir(dir)
        .env("DOCKER_CONFIG", client.config.path())
        .env_remove("WHARF_REGISTRY")
        .env_remove("WHARF_CA_FILE")
        .env_remove("COSIGN_PASSWORD")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run wharf")
}

/// The JSON report of a `wharf -o json …` that must succeed.
fn ok_json(out: Output) -> Value {
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

/// The `{"error":{code,message}}` of a `wharf -o json …` that must fail.
fn failed_json(out: Output) -> (String, String) {
    assert!(!out.status.success(), "succeeded: {}", text(&out));
    let v: Value = serde_json::from_slice(&out.stderr).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (
        v["error"]["code"].as_str().unwrap().to_owned(),
        v["error"]["message"].as_str().unwrap().to_owned(),
    )
}

/// Build a small image with docker and push it as `repo:tag`; its digest.
fn docker_push(server: &Server, owner: &DockerClient, repo: &str) -> String {
    let image = format!("{}/{repo}:v1", server.host);
    owner.import_image(&image);
    let out = owner.cmd(&["push", &image], NO_DCT);
    assert!(out.status.success(), "docker push: {}", text(&out));
    pushed_digest(&text(&out))
}

/// A user who may only pull under `team/*`, logged in with `wharf login`.
fn consumer(server: &Server, owner: &DockerClient) -> DockerClient {
    for args in [
        &["user", "create", "consumer", "--password-stdin"][..],
        &[
            "role",
            "assignment",
            "create",
            "--role",
            "AcrPull",
            "--assignee",
            "consumer",
            "--scope",
            "repository:team/*",
        ][..],
    ] {
        let out = wharf_cli(owner.config.path(), args, CONSUMER_PASSWORD);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
    }
    logged_in(server, "consumer", CONSUMER_PASSWORD)
}

/// Replace the signature policy's rules as the owner.
fn set_rules(server: &Server, rules: Value) {
    let version = common::signature_policy(server)["version"].as_u64().unwrap();
    let r = server
        .http()
        .put(server.url("/api/v1/signature-policy"))
        .bearer_auth(server.token(&["registry:admin:*"]))
        .json(&json!({"version": version, "rules": rules}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
}

/// A manifest of `repo` read with a push token (exempt from the policy); `None` on 404.
fn manifest(server: &Server, repo: &str, reference: &str) -> Option<Value> {
    let r = server
        .http()
        .get(server.url(&format!("/v2/{repo}/manifests/{reference}")))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .bearer_auth(server.token(&[&format!("repository:{repo}:pull,push")]))
        .send()
        .unwrap();
    if r.status() == 404 {
        return None;
    }
    assert_eq!(r.status(), 200);
    Some(r.json().unwrap())
}

/// The referrers of `digest` in `repo`.
fn referrers(server: &Server, repo: &str, digest: &str) -> Vec<Value> {
    let r = server
        .http()
        .get(server.url(&format!("/v2/{repo}/referrers/{digest}")))
        .bearer_auth(server.token(&[&format!("repository:{repo}:pull,push")]))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().unwrap()["manifests"]
        .as_array()
        .unwrap()
        .clone()
}

/// A skopeo that verifies sigstore signatures: `WHARF_SIGSTORE_SKOPEO`, else `skopeo` on
/// the PATH unless it is Debian's build, which has sigstore switched off
/// (`testdata/cosign/README.md`, "Which skopeo").
fn sigstore_skopeo() -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var("WHARF_SIGSTORE_SKOPEO") {
        return Some(p.into());
    }
    let out = Command::new("sh")
        .args(["-c", "command -v skopeo"])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    let binary = std::fs::read(&path).ok()?;
    let disabled = b"Debian-local change: sigstore disabled";
    let debian = binary.windows(disabled.len()).any(|w| w == disabled);
    (!debian).then(|| path.into())
}

/// `skopeo copy` of `reference` as the consumer, under a policy that requires a sigstore
/// signature by `public_key`, reading signatures from the registry as cosign stores them.
fn skopeo_copy_requiring(
    skopeo: &Path,
    server: &Server,
    dir: &Path,
    reference: &str,
    public_key: &Path,
) -> Output {
    let policy = dir.join("policy.json");
    std::fs::write(
        &policy,
        json!({
            "default": [{"type": "reject"}],
            "transports": {
                "docker": {server.host.as_str(): [{"type": "sigstoreSigned", "keyPath": public_key}]},
                "dir": {"": [{"type": "insecureAcceptAnything"}]}
            }
        })
        .to_string(),
    )
    .unwrap();
    let registries = dir.join("registries.d");
    std::fs::create_dir_all(&registries).unwrap();
    std::fs::write(
        registries.join("wharf.yaml"),
        format!(
            "docker:\n  {}:\n    use-sigstore-attachments: true\n",
            server.host
        ),
    )
    .unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    Command::new(skopeo)
        .arg("--policy")
        .arg(&policy)
        .arg("--registries.d")
        .arg(&registries)
        .args(["copy", "--src-cert-dir"])
        .arg(server.cert_dir())
        .args(["--src-creds", &format!("consumer:{CONSUMER_PASSWORD}")])
        .arg(format!("docker://{}/{reference}", server.host))
        .arg(format!("dir:{}", out_dir.path().display()))
        .output()
        .expect("run skopeo")
}

#[test]
fn cosign_signatures_made_by_wharf_pass_the_policy_and_skopeo() {
    require_tool("skopeo");
    require_tool("docker");
    let server = Server::start();
    let owner = logged_in(&server, "admin", &server.admin_password);
    let consumer = consumer(&server, &owner);
    let digest = docker_push(&server, &owner, "team/app");
    docker_push(&server, &owner, "team/plain");
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    let pass = [("COSIGN_PASSWORD", "signer-pass-1")];

    // A key pair in cosign's format; the private key readable by its owner only.
    let generated = ok_json(wharf_in(
        dir,
        &owner,
        &[
            "-o", "json", "trust", "key", "generate", "signer", "--format", "cosign",
        ],
        &pass,
    ));
    assert_eq!(generated["algorithm"], "ECDSA P-256");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.join("signer.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let key_text = std::fs::read_to_string(dir.join("signer.key")).unwrap();
    assert!(
        key_text.starts_with("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n"),
        "{key_text}"
    );
    // Never overwritten.
    let (code, message) = failed_json(wharf_in(
        dir,
        &owner,
        &[
            "-o", "json", "trust", "key", "generate", "signer", "--format", "cosign",
        ],
        &pass,
    ));
    assert_eq!(code, "INVALID_INPUT");
    assert_eq!(
        message,
        "signer.key already exists; nothing was written (choose another NAME or move it away)"
    );
    assert_eq!(std::fs::read_to_string(dir.join("signer.key")).unwrap(), key_text);

    let sign = |key: &str, password: &str| {
        wharf_in(
            dir,
            &owner,
            &[
                "-o",
                "json",
                "trust",
                "sign",
                "team/app:v1",
                "--format",
                "cosign",
                "--key",
                key,
            ],
            &[("COSIGN_PASSWORD", password)],
        )
    };
    let signed = ok_json(sign("signer.key", "signer-pass-1"));
    let signature_tag = format!("sha256-{}.sig", &digest[7..]);
    assert_eq!(
        signed["signed"],
        json!([{"reference": format!("{}/team/app:v1", server.host), "digest": digest,
                "signature": signature_tag, "added": true}])
    );
    let sig = manifest(&server, "team/app", &signature_tag).expect("signature manifest");
    assert_eq!(sig["layers"].as_array().unwrap().len(), 1);
    // Again with the same key: nothing added.
    let again = ok_json(sign("signer.key", "signer-pass-1"));
    assert_eq!(again["signed"][0]["added"], false);
    assert_eq!(manifest(&server, "team/app", &signature_tag), Some(sig.clone()));
    // A key written by another tool (cosign's format as tests/tools/cosign_key.py writes
    // it, with cosign 2's PEM label) opens, and its signature is appended: the first stays.
    let tool = common::repo_root().join("crates/wharf/tests/tools/cosign_key.py");
    let out = Command::new("/usr/bin/python3")
        .arg(&tool)
        .args(["--pem-type", "sigstore"])
        .arg(dir.join("second"))
        .arg("second-pass-1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let second = ok_json(sign("second.key", "second-pass-1"));
    assert_eq!(second["signed"][0]["added"], true);
    let both = manifest(&server, "team/app", &signature_tag).unwrap();
    let layers = both["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0], sig["layers"][0]);

    // The server's policy requiring the wharf-generated key serves the image and refuses
    // the unsigned one with its exact reason.
    let public = |name: &str| std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap();
    set_rules(
        &server,
        json!([{"scope": "repository:team/*", "mode": "enforce",
                "cosign": {"keys": [{"name": "signer", "public_key": public("signer")}]}}]),
    );
    let pulled = consumer.cmd(&["pull", &format!("{}/team/app:v1", server.host)], NO_DCT);
    assert!(pulled.status.success(), "{}", text(&pulled));
    let plain_digest = {
        let r = server
            .http()
            .get(server.url("/v2/team/plain/manifests/v1"))
            .header("accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
            .bearer_auth(server.token(&["repository:team/plain:pull,push"]))
            .send()
            .unwrap();
        common::sha256(&r.bytes().unwrap())
    };
    let err = consumer.fails(&["pull", &format!("{}/team/plain:v1", server.host)], NO_DCT);
    assert!(
        err.contains(&format!(
            "team/plain:v1 is not signed as the signature policy for repository:team/* requires \
             (accepted: cosign): cosign: no signature (sha256-{}.sig does not exist)",
            &plain_digest[7..]
        )),
        "{err}"
    );

    // skopeo's own sigstore verification: accepted with the key, refused with another.
    let Some(skopeo) = sigstore_skopeo() else {
        eprintln!(
            "NOT CHECKED: skopeo's sigstore verification (Debian's skopeo has sigstore switched off; \
             set WHARF_SIGSTORE_SKOPEO to an upstream skopeo)"
        );
        return;
    };
    let verify_dir = tempfile::tempdir().unwrap();
    let copy =
        |key: &str| skopeo_copy_requiring(&skopeo, &server, verify_dir.path(), "team/app:v1", &dir.join(key));
    let out = copy("signer.pub");
    assert!(out.status.success(), "skopeo with signer.pub: {}", text(&out));
    let out = copy("second.pub");
    assert!(out.status.success(), "skopeo with second.pub: {}", text(&out));
    ok_json(wharf_in(
        dir,
        &owner,
        &[
            "-o", "json", "trust", "key", "generate", "stranger", "--format", "cosign",
        ],
        &[("COSIGN_PASSWORD", "stranger-pass-1")],
    ));
    let out = copy("stranger.pub");
    assert!(!out.status.success(), "skopeo accepted a stranger's key");
    assert!(
        text(&out).contains("Source image rejected: None of the signatures were accepted"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_bad_cosign_signing_changes_nothing() {
    let server = Server::start();
    let owner = logged_in(&server, "admin", &server.admin_password);
    let push = server.token(&["repository:team/app:pull,push"]);
    let (digest, _) = common::push_tiny_image(&server, &server.http(), &push, "team/app", "v1", "app");
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    ok_json(wharf_in(
        dir,
        &owner,
        &[
            "-o", "json", "trust", "key", "generate", "signer", "--format", "cosign",
        ],
        &[("COSIGN_PASSWORD", "right-pass")],
    ));
    let signature_tag = format!("sha256-{}.sig", &digest[7..]);
    let sign = |refs: &[&str], password: Option<&str>| {
        let mut args = vec!["-o", "json", "trust", "sign"];
        args.extend_from_slice(refs);
        args.extend_from_slice(&["--format", "cosign", "--key", "signer.key"]);
        let env: Vec<(&str, &str)> = password.map(|p| ("COSIGN_PASSWORD", p)).into_iter().collect();
        wharf_in(dir, &owner, &args, &env)
    };

    // Wrong passphrase.
    let (code, message) = failed_json(sign(&["team/app:v1"], Some("wrong-pass")));
    assert_eq!(code, "WRONG_PASSPHRASE");
    assert_eq!(
        message,
        "signer.key: wrong passphrase for the cosign key (or the key file is damaged); nothing was signed"
    );
    assert_eq!(manifest(&server, "team/app", &signature_tag), None);
    // No passphrase and no terminal.
    let (code, message) = failed_json(sign(&["team/app:v1"], None));
    assert_eq!(code, "INVALID_INPUT");
    assert_eq!(
        message,
        "no passphrase for the cosign key: set COSIGN_PASSWORD or run on a terminal"
    );
    // One reference of two does not exist: the other is not signed either.
    let (code, message) = failed_json(sign(&["team/app:v1", "team/app:nope"], Some("right-pass")));
    assert_eq!(code, "MANIFEST_UNKNOWN");
    assert_eq!(
        message,
        format!("{}/team/app:nope does not exist; nothing was signed", server.host)
    );
    assert_eq!(manifest(&server, "team/app", &signature_tag), None);
    // A reference without a tag.
    let (code, message) = failed_json(sign(&["team/app"], Some("right-pass")));
    assert_eq!(code, "INVALID_INPUT");
    assert_eq!(
        message,
        "\"team/app\" is not an image reference (REPO:TAG or REPO@sha256:<hex>): it names no tag"
    );
    // A cosign key is not for Docker Content Trust (the default format).
    let (code, message) = failed_json(wharf_in(
        dir,
        &owner,
        &["-o", "json", "trust", "sign", "team/app:v1", "--key", "ci.key"],
        &[],
    ));
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("INVALID_INPUT", "--key is not for --format dct")
    );

    // A user who may pull but not push cannot add a signature.
    let out = wharf_cli(
        owner.config.path(),
        &["user", "create", "reader", "--password-stdin"],
        "reader-password-1",
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = wharf_cli(
        owner.config.path(),
        &[
            "role",
            "assignment",
            "create",
            "--role",
            "AcrPull",
            "--assignee",
            "reader",
            "--scope",
            "repository:team/*",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out));
    let reader = logged_in(&server, "reader", "reader-password-1");
    let out = wharf_in(
        dir,
        &reader,
        &[
            "-o",
            "json",
            "trust",
            "sign",
            "team/app:v1",
            "--format",
            "cosign",
            "--key",
            "signer.key",
        ],
        &[("COSIGN_PASSWORD", "right-pass")],
    );
    let (code, message) = failed_json(out);
    assert!(
        matches!(code.as_str(), "UNAUTHORIZED" | "DENIED"),
        "{code}: {message}"
    );
    assert!(
        message.starts_with("uploading a blob to team/app: the registry answered 401"),
        "{message}"
    );
    assert_eq!(manifest(&server, "team/app", &signature_tag), None);
}

#[test]
fn notation_signatures_made_by_wharf_pass_the_policy_with_their_certificate() {
    require_tool("docker");
    let server = Server::start();
    let owner = logged_in(&server, "admin", &server.admin_password);
    let consumer = consumer(&server, &owner);
    let digest = docker_push(&server, &owner, "team/notary");
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    let generate = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "-o", "json", "trust", "key", "generate", name, "--format", "notation",
        ];
        args.extend_from_slice(extra);
        wharf_in(dir, &owner, &args, &[])
    };
    let release = ok_json(generate("release", &[]));
    assert_eq!(release["subject"], "CN=release");
    ok_json(generate("other", &[]));
    // A supplied certificate and key are checked: a key that is not the certificate's is
    // refused, and nothing is written.
    let (code, message) = failed_json(generate(
        "mixed",
        &["--cert", "release.crt", "--cert-key", "other.key"],
    ));
    assert_eq!(code, "INVALID_INPUT");
    assert!(
        message.starts_with("other.key with release.crt cannot make a valid Notation signature: "),
        "{message}"
    );
    assert!(!dir.join("mixed.key").exists() && !dir.join("mixed.crt").exists());
    let imported = ok_json(generate(
        "imported",
        &["--cert", "release.crt", "--cert-key", "release.key"],
    ));
    assert_eq!(imported["generated"], false);
    assert_eq!(imported["sha256"], release["sha256"]);

    let sign = |key: &str, cert: &str| {
        ok_json(wharf_in(
            dir,
            &owner,
            &[
                "-o",
                "json",
                "trust",
                "sign",
                "team/notary:v1",
                "--format",
                "notation",
                "--key",
                key,
                "--cert",
                cert,
            ],
            &[],
        ))
    };
    let signed = sign("release.key", "release.crt");
    assert_eq!(signed["signed"][0]["added"], true);
    assert_eq!(signed["signed"][0]["digest"], digest);
    let found = referrers(&server, "team/notary", &digest);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["artifactType"], "application/vnd.cncf.notary.signature");
    assert_eq!(found[0]["digest"], signed["signed"][0]["signature"]);
    let sig = manifest(&server, "team/notary", found[0]["digest"].as_str().unwrap()).unwrap();
    assert_eq!(sig["subject"]["digest"], digest);
    assert_eq!(sig["layers"][0]["mediaType"], "application/jose+json");
    // Again, also through the imported copy of the same key: nothing added.
    assert_eq!(sign("imported.key", "imported.crt")["signed"][0]["added"], false);
    assert_eq!(referrers(&server, "team/notary", &digest).len(), 1);
    // A key that is not the certificate's, or no certificate: refused, nothing pushed.
    let refused = |extra: &[&str]| {
        let mut args = vec![
            "-o",
            "json",
            "trust",
            "sign",
            "team/notary:v1",
            "--format",
            "notation",
        ];
        args.extend_from_slice(extra);
        failed_json(wharf_in(dir, &owner, &args, &[]))
    };
    let (code, message) = refused(&["--key", "other.key", "--cert", "release.crt"]);
    assert_eq!(code, "INVALID_INPUT");
    assert!(
        message.starts_with("other.key with release.crt cannot make a valid Notation signature: "),
        "{message}"
    );
    assert_eq!(
        refused(&["--key", "release.key"]),
        (
            "INVALID_INPUT".to_owned(),
            "--format notation needs --key NAME.key and --cert NAME.crt".to_owned()
        )
    );
    assert_eq!(referrers(&server, "team/notary", &digest).len(), 1);

    let cert = |name: &str| std::fs::read_to_string(dir.join(format!("{name}.crt"))).unwrap();
    let rule = |root: &str| {
        json!([{"scope": "repository:team/*", "mode": "enforce",
                "notation": {"trust_store": [{"name": root, "certificate": cert(root)}],
                             "trusted_identities": ["*"]}}])
    };
    set_rules(&server, rule("release"));
    let image = format!("{}/team/notary:v1", server.host);
    let pulled = consumer.cmd(&["pull", &image], NO_DCT);
    assert!(pulled.status.success(), "{}", text(&pulled));
    // Another certificate as the trust anchor: refused, with why.
    set_rules(&server, rule("other"));
    let _ = consumer.cmd(&["rmi", &image], &[]);
    let err = consumer.fails(&["pull", &image], NO_DCT);
    assert!(
        err.contains(
            "team/notary:v1 is not signed as the signature policy for repository:team/* requires \
             (accepted: Notation): Notation: signature sha256:"
        ) && err.contains("certificate chain does not lead to a trusted root"),
        "{err}"
    );
}

/// `wharf ARGS` on a terminal (util-linux `script` gives it one), typing `lines` one by
/// one after its prompts appear; stdout+stderr of the session.
fn wharf_on_terminal(dir: &Path, args: &str, lines: &[&str]) -> (bool, String) {
    use std::io::Write as _;
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("{} {args}", env!("CARGO_BIN_EXE_wharf")),
            "/dev/null",
        ])
        .current_dir(dir)
        .env("DOCKER_CONFIG", dir.join("docker-config"))
        .env_remove("COSIGN_PASSWORD")
        .env_remove("WHARF_REGISTRY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script");
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        std::thread::sleep(std::time::Duration::from_millis(700));
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (out.status.success(), text(&out))
}

#[test]
fn a_new_cosign_key_asks_for_its_passphrase_twice_on_a_terminal() {
    require_tool("script");
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    let (ok, out) = wharf_on_terminal(
        dir,
        "trust key generate typo --format cosign",
        &["pass-one", "pass-two"],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("wharf: the passphrases differ; no key was written"),
        "{out}"
    );
    assert!(!dir.join("typo.key").exists() && !dir.join("typo.pub").exists());

    let (ok, out) = wharf_on_terminal(
        dir,
        "trust key generate typed --format cosign",
        &["pass-one", "pass-one"],
    );
    assert!(ok, "{out}");
    assert!(!out.contains("pass-one"), "the passphrase was echoed: {out}");
    // The key opens with the typed passphrase only: the right one gets as far as the
    // missing login, a wrong one stops at the key.
    let sign = |password: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .args([
                "trust",
                "sign",
                "team/app:v1",
                "--format",
                "cosign",
                "--key",
                "typed.key",
            ])
            .current_dir(dir)
            .env("DOCKER_CONFIG", dir.join("docker-config"))
            .env("COSIGN_PASSWORD", password)
            .env_remove("WHARF_REGISTRY")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        text(&out)
    };
    assert!(
        sign("pass-one").contains("no registry selected"),
        "{}",
        sign("pass-one")
    );
    assert_eq!(
        sign("pass-two"),
        "wharf: typed.key: wrong passphrase for the cosign key (or the key file is damaged); nothing was signed\n"
    );
}

/// `wharf trust migrate --to cosign`: exactly the tags Docker Content Trust signs validly
/// now get a cosign signature of the digest DCT signed; an unsigned tag and a revoked one
/// are skipped with the reason; a dry run signs nothing; a second run adds nothing; the
/// server's cosign policy then serves the migrated tag and refuses the others.
#[test]
fn migrate_signs_exactly_the_valid_dct_tags_with_cosign() {
    require_tool("docker");
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = logged_in(&server, "admin", &server.admin_password);
    let consumer = consumer(&server, &owner);
    let dct = [
        ("DOCKER_CONTENT_TRUST", "1"),
        ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123"),
        ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-123"),
    ];
    let repo = format!("{}/team/mig", server.host);
    let mut digests = std::collections::BTreeMap::new();
    for (tag, env) in [("v1", &dct[..]), ("v2", &dct[..]), ("plain", NO_DCT)] {
        let image = format!("{repo}:{tag}");
        owner.import_image(&image);
        let out = owner.cmd(&["push", &image], env);
        assert!(out.status.success(), "docker push {tag}: {}", text(&out));
        digests.insert(tag, pushed_digest(&text(&out)));
    }
    let revoked = wharf_in(
        owner.config.path(),
        &owner,
        &["trust", "revoke", &format!("{repo}:v2")],
        &dct[1..],
    );
    assert!(revoked.status.success(), "{}", text(&revoked));
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    generate_migration_key(dir, &owner);
    let migrate = |extra: &[&str]| ok_json(migrate_to_cosign(dir, &owner, &repo, extra));
    let skipped = json!([
        {"tag": "plain", "reason": "unsigned: no verified role lists it"},
        {"tag": "v2", "reason": "unsigned: no verified role lists it"},
    ]);
    let signature_tag = format!("sha256-{}.sig", &digests["v1"][7..]);

    let dry = migrate(&["--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        dry["repositories"],
        json!([{"repository": repo, "signed": [{"tag": "v1", "digest": digests["v1"], "added": false}],
                "skipped": skipped}])
    );
    assert_eq!(
        manifest(&server, "team/mig", &signature_tag),
        None,
        "a dry run signs nothing"
    );

    let run = migrate(&[]);
    assert_eq!(
        run["repositories"][0]["signed"],
        json!([{"tag": "v1", "digest": digests["v1"], "added": true}])
    );
    assert_eq!(run["repositories"][0]["skipped"], skipped);
    let sig = manifest(&server, "team/mig", &signature_tag).expect("signature of v1");
    for tag in ["v2", "plain"] {
        let other = format!("sha256-{}.sig", &digests[tag][7..]);
        assert_eq!(manifest(&server, "team/mig", &other), None, "{tag} was signed");
    }
    let again = migrate(&[]);
    assert_eq!(again["repositories"][0]["signed"][0]["added"], false);
    assert_eq!(manifest(&server, "team/mig", &signature_tag), Some(sig));

    // What the migration signed is what a cosign policy accepts.
    let public = std::fs::read_to_string(dir.join("mig.pub")).unwrap();
    set_rules(
        &server,
        json!([{"scope": "repository:team/*", "mode": "enforce",
                "cosign": {"keys": [{"name": "mig", "public_key": public}]}}]),
    );
    let pulled = consumer.cmd(&["pull", &format!("{repo}:v1")], NO_DCT);
    assert!(pulled.status.success(), "{}", text(&pulled));
    for tag in ["v2", "plain"] {
        let err = consumer.fails(&["pull", &format!("{repo}:{tag}")], NO_DCT);
        assert!(
            err.contains("is not signed as the signature policy"),
            "{tag}: {err}"
        );
    }
    // Not a repository, and not DCT as the target format: refused before any change.
    let (code, message) = failed_json(wharf_in(
        dir,
        &owner,
        &[
            "-o",
            "json",
            "trust",
            "migrate",
            &format!("{repo}:v1"),
            "--to",
            "cosign",
            "--key",
            "mig.key",
        ],
        MIGRATE_PASS,
    ));
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "INVALID_INPUT",
            format!("{repo}:v1: migrate takes a repository (HOST[:PORT]/REPOSITORY), not a tag").as_str()
        )
    );
    let (code, _) = failed_json(wharf_in(
        dir,
        &owner,
        &["-o", "json", "trust", "migrate", &repo, "--to", "dct"],
        MIGRATE_PASS,
    ));
    assert_eq!(code, "INVALID_INPUT");
}

/// Pushes `repo:v1` with docker and content trust on (a signed push); its digest.
fn dct_push(owner: &DockerClient, repo: &str) -> String {
    let image = format!("{repo}:v1");
    owner.import_image(&image);
    let out = owner.cmd(&["push", &image], DCT);
    assert!(out.status.success(), "docker push {image}: {}", text(&out));
    pushed_digest(&text(&out))
}

/// The cosign key passphrase of the migration tests.
const MIGRATE_PASS: &[(&str, &str)] = &[("COSIGN_PASSWORD", "migrate-pass-1")];

/// A cosign key `mig.key` in `dir`, made with `wharf trust key generate`.
fn generate_migration_key(dir: &Path, client: &DockerClient) {
    ok_json(wharf_in(
        dir,
        client,
        &[
            "-o", "json", "trust", "key", "generate", "mig", "--format", "cosign",
        ],
        MIGRATE_PASS,
    ));
}

/// `wharf -o json trust migrate PATTERN --to cosign --key mig.key EXTRA…` as `client` in `dir`.
fn migrate_to_cosign(dir: &Path, client: &DockerClient, pattern: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "-o", "json", "trust", "migrate", pattern, "--to", "cosign", "--key", "mig.key",
    ];
    args.extend_from_slice(extra);
    wharf_in(dir, client, &args, MIGRATE_PASS)
}

const DCT: &[(&str, &str)] = &[
    ("DOCKER_CONTENT_TRUST", "1"),
    ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123"),
    ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-123"),
];

/// `wharf trust migrate HOST/PREFIX/*`: the catalog expands the pattern to exactly the
/// repositories under the prefix the caller may see; one the caller may not push to is
/// reported as refused while the others are migrated, and the exit status says so; a
/// second run signs nothing; patterns that cannot be read or match nothing sign nothing.
#[test]
fn migrate_of_a_prefix_signs_exactly_its_repositories_and_reports_refusals() {
    require_tool("docker");
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = logged_in(&server, "admin", &server.admin_password);
    let host = server.host.clone();
    let mut digests = std::collections::BTreeMap::new();
    for repo in ["team/a", "team/b", "other/c"] {
        digests.insert(repo, dct_push(&owner, &format!("{host}/{repo}")));
    }
    let signature_of = |repo: &str| manifest(&server, repo, &format!("sha256-{}.sig", &digests[repo][7..]));
    // May push to team/a, only pull from team/b.
    create_user(
        owner.config.path(),
        "mixed",
        "mixed-password-1",
        &[("AcrPush", "repository:team/a"), ("AcrPull", "repository:team/b")],
    );
    let mixed = logged_in(&server, "mixed", "mixed-password-1");
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    generate_migration_key(dir, &owner);
    let pattern = format!("{host}/team/*");
    let migrate = |client: &DockerClient, pattern: &str| migrate_to_cosign(dir, client, pattern, &[]);
    let signed = |repo: &str, added: bool| {
        json!({"repository": format!("{host}/{repo}"),
               "signed": [{"tag": "v1", "digest": digests[repo], "added": added}], "skipped": []})
    };

    // mixed: team/a migrated, team/b refused by name, exit status non-zero.
    let out = migrate(&mixed, &pattern);
    assert!(!out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(
        report["repositories"],
        json!([signed("team/a", true),
               {"repository": format!("{host}/team/b"),
                "refused": "your login may not push to team/b, and storing a signature needs push"}])
    );
    assert_eq!(
        failed_json(out),
        (
            "DENIED".to_owned(),
            format!(
                "refused for 1 of 2 repositories ({host}/team/b): signing needs push; the others were migrated"
            )
        )
    );
    assert!(signature_of("team/a").is_some());
    assert_eq!(
        signature_of("team/b"),
        None,
        "a refused repository got a signature"
    );

    // The owner: exactly the two repositories under team/, never other/c.
    let run = ok_json(migrate(&owner, &pattern));
    assert_eq!(
        run["repositories"],
        json!([signed("team/a", false), signed("team/b", true)])
    );
    let sig_b = signature_of("team/b").expect("signature of team/b");
    assert_eq!(signature_of("other/c"), None, "outside the prefix");
    let again = ok_json(migrate(&owner, &pattern));
    assert_eq!(
        again["repositories"],
        json!([signed("team/a", false), signed("team/b", false)])
    );
    assert_eq!(signature_of("team/b"), Some(sig_b));

    // HOST/* is every repository the caller sees; mixed sees team/a and team/b only.
    let all = migrate(&mixed, &format!("{host}/*"));
    let report: Value = serde_json::from_slice(&all.stdout).unwrap();
    let names: Vec<&str> = report["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repository"].as_str().unwrap())
        .collect();
    assert_eq!(names, [format!("{host}/team/a"), format!("{host}/team/b")]);

    // Refused before anything is signed: `*` elsewhere than last, a prefix matching nothing.
    for (pattern, code, message) in [
        (
            format!("{host}/te*"),
            "INVALID_INPUT",
            format!(
                "{host}/te*: `*` only stands for every repository under a prefix, as the last component (HOST[:PORT]/PREFIX/* or HOST[:PORT]/*)"
            ),
        ),
        (
            format!("{host}/nothing/*"),
            "NAME_UNKNOWN",
            format!("no repository you may pull from matches {host}/nothing/*; nothing was signed"),
        ),
    ] {
        assert_eq!(
            failed_json(migrate(&owner, &pattern)),
            (code.to_owned(), message),
            "{pattern}"
        );
    }
    assert_eq!(signature_of("other/c"), None);
}

/// The signer key `role` in the Docker trust store of `client`, opened with `passphrase`.
fn stored_key(client: &DockerClient, role: &str, passphrase: &str) -> wharf_tuf::PrivateKey {
    let dir = client.config.path().join("trust/private");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let file = wharf_tuf::keyfile::decode_key_file(&text, passphrase).unwrap();
        if file.role == role {
            return file.key;
        }
    }
    panic!("no {role} key in {}", dir.display());
}

/// Republishes `role` of `gun` as it is now, but with `expires` and version + 1, signed by
/// `key`: what a signer whose delegation ran out without being renewed leaves behind.
fn republish_expiring(server: &Server, gun: &str, role: &str, key: &wharf_tuf::PrivateKey, expires: &str) {
    let token = server.token(&[&format!("repository:{gun}:pull,push")]);
    let current: Value = server
        .http()
        .get(server.url(&format!("/v2/{gun}/_trust/tuf/{role}.json")))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut signed = current["signed"].clone();
    signed["expires"] = json!(expires);
    signed["version"] = json!(signed["version"].as_i64().unwrap() + 1);
    let file = wharf_tuf::update::sign_and_encode(&signed, &[key]).unwrap();
    let mut body =
        format!("--B\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{role}\"\r\n\r\n")
            .into_bytes();
    body.extend_from_slice(&file);
    body.extend_from_slice(b"\r\n--B--\r\n");
    let r = server
        .http()
        .post(server.url(&format!("/v2/{gun}/_trust/tuf/")))
        .bearer_auth(&token)
        .header("content-type", "multipart/form-data; boundary=B")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
}

/// Migration over signed, unsigned and expired tags (issue 15): `old` is signed only in
/// `targets/releases`, whose metadata then expired. A DCT client ignores that role, so
/// `docker pull` with content trust refuses `old`; migrate skips it by name with the
/// reason and signs exactly `v1` (the repository key's); a dry run changes nothing; and
/// `wharf trust inspect` prints what `docker trust inspect` prints for the repository and
/// for `old`, byte for byte, in both layouts.
#[test]
fn migrate_skips_a_tag_only_an_expired_delegation_signs() {
    require_tool("docker");
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = logged_in(&server, "admin", &server.admin_password);
    let signer = logged_in(&server, "admin", &server.admin_password);
    let repo = format!("{}/team/exp", server.host);
    let v1 = dct_push(&owner, &repo);
    let mut digests = std::collections::BTreeMap::from([("v1", v1)]);
    for tag in ["old", "plain"] {
        let image = format!("{repo}:{tag}");
        owner.import_image(&image);
        let out = owner.cmd(&["push", &image], NO_DCT);
        assert!(out.status.success(), "docker push {tag}: {}", text(&out));
        digests.insert(tag, pushed_digest(&text(&out)));
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let keys = dir.to_str().unwrap();
    let repo_pass = [("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-123")];
    // The signer "rel": a key in the signer's own store, added by the owner, signing `old`
    // into targets/releases only.
    ok_json(wharf_in(
        dir,
        &signer,
        &["-o", "json", "trust", "key", "generate", "rel", "--dir", keys],
        &repo_pass,
    ));
    let rel_pub = dir.join("rel.pub");
    ok_json(wharf_in(
        dir,
        &owner,
        &[
            "-o",
            "json",
            "trust",
            "signer",
            "add",
            "rel",
            &repo,
            "--key",
            rel_pub.to_str().unwrap(),
        ],
        &repo_pass,
    ));
    ok_json(wharf_in(
        dir,
        &signer,
        &[
            "-o",
            "json",
            "trust",
            "sign",
            &format!("{repo}:old"),
            "--role",
            "targets/releases",
        ],
        &repo_pass,
    ));
    // The server refuses metadata that has already expired (as notary-server does), so the
    // role is published expiring in a few seconds, and the test waits that out.
    let key = stored_key(&signer, "rel", "repo-pass-123");
    let now = chrono::Utc::now();
    let expires = now - chrono::Duration::nanoseconds(now.timestamp_subsec_nanos().into())
        + chrono::Duration::seconds(4);
    republish_expiring(
        &server,
        &repo,
        "targets/releases",
        &key,
        &wharf_tuf::metadata::format_go_time(expires),
    );
    let expired = format!(
        "targets/releases expired at {}",
        wharf_tuf::metadata::format_go_expiry(&expires.fixed_offset())
    );
    while chrono::Utc::now() <= expires + chrono::Duration::seconds(1) {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // What docker does with the expired role: `old` is not trusted, v1 still is.
    let fresh = logged_in(&server, "admin", &server.admin_password);
    let refused = fresh.cmd(&["pull", &format!("{repo}:old")], DCT);
    assert!(!refused.status.success(), "DCT pull of old: {}", text(&refused));
    assert!(
        text(&refused).contains("No valid trust data for old"),
        "{}",
        text(&refused)
    );
    let pulled = fresh.cmd(&["pull", &format!("{repo}:v1")], DCT);
    assert!(pulled.status.success(), "{}", text(&pulled));
    // `wharf trust inspect` agrees with `docker trust inspect` on that repository and tag.
    for args in [
        vec!["trust", "inspect", repo.as_str()],
        vec!["trust", "inspect", "--pretty", repo.as_str()],
    ] {
        let mut args = args.clone();
        let old = format!("{repo}:old");
        for with_old in [false, true] {
            if with_old {
                *args.last_mut().unwrap() = old.as_str();
            }
            let docker = owner.cmd(&args, DCT);
            let wharf = wharf_in(dir, &owner, &args, &[]);
            assert_eq!(
                (wharf.status.success(), String::from_utf8_lossy(&wharf.stdout)),
                (docker.status.success(), String::from_utf8_lossy(&docker.stdout)),
                "{args:?}\ndocker: {}\nwharf: {}",
                text(&docker),
                text(&wharf)
            );
        }
    }

    generate_migration_key(dir, &owner);
    let migrate = |extra: &[&str]| ok_json(migrate_to_cosign(dir, &owner, &repo, extra));
    let signature_of =
        |tag: &str| manifest(&server, "team/exp", &format!("sha256-{}.sig", &digests[tag][7..]));
    let skipped = json!([
        {"tag": "old", "reason": format!("signed in targets/releases, which a DCT client ignores: {expired}")},
        {"tag": "plain", "reason": "unsigned: no verified role lists it"},
    ]);
    let dry = migrate(&["--dry-run"]);
    assert_eq!(
        dry["repositories"],
        json!([{"repository": repo, "signed": [{"tag": "v1", "digest": digests["v1"], "added": false}],
                "skipped": skipped}])
    );
    for tag in ["v1", "old", "plain"] {
        assert_eq!(signature_of(tag), None, "the dry run signed {tag}");
    }
    let run = migrate(&[]);
    assert_eq!(
        run["repositories"],
        json!([{"repository": repo, "signed": [{"tag": "v1", "digest": digests["v1"], "added": true}],
                "skipped": skipped}])
    );
    assert!(signature_of("v1").is_some());
    for tag in ["old", "plain"] {
        assert_eq!(signature_of(tag), None, "{tag} was signed");
    }
}

/// A caller who may pull a DCT-signed repository but not push to it: `wharf trust migrate`
/// (a run and a dry run, Notation and cosign) is refused with `DENIED`, the report names
/// the repository as refused, and no signature is stored (no referrer, no `.sig` tag).
#[test]
fn migrate_by_a_pull_only_caller_is_refused_and_stores_nothing() {
    require_tool("docker");
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = logged_in(&server, "admin", &server.admin_password);
    let consumer = consumer(&server, &owner);
    let repo = format!("{}/team/pullonly", server.host);
    let digest = dct_push(&owner, &repo);
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    let pass = [("COSIGN_PASSWORD", "migrate-pass-1")];
    ok_json(wharf_in(
        dir,
        &consumer,
        &[
            "-o", "json", "trust", "key", "generate", "n", "--format", "notation",
        ],
        &[],
    ));
    ok_json(wharf_in(
        dir,
        &consumer,
        &[
            "-o", "json", "trust", "key", "generate", "c", "--format", "cosign",
        ],
        &pass,
    ));
    let signers: [&[&str]; 2] = [
        &["--to", "notation", "--key", "n.key", "--cert", "n.crt"],
        &["--to", "cosign", "--key", "c.key"],
    ];
    for signer in signers {
        for dry_run in [false, true] {
            let mut args = vec!["-o", "json", "trust", "migrate", repo.as_str()];
            args.extend_from_slice(signer);
            if dry_run {
                args.push("--dry-run");
            }
            let out = wharf_in(dir, &consumer, &args, &pass);
            let report: Value =
                serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
            assert_eq!(
                report["repositories"],
                json!([{"repository": repo,
                        "refused": "your login may not push to team/pullonly, and storing a signature needs push"}]),
                "{args:?}"
            );
            assert_eq!(
                failed_json(out),
                (
                    "DENIED".to_owned(),
                    format!(
                        "refused for {repo}: your login may not push there, and storing a signature needs push; nothing was signed"
                    )
                ),
                "{args:?}"
            );
        }
    }
    assert_eq!(referrers(&server, "team/pullonly", &digest), Vec::<Value>::new());
    assert_eq!(
        manifest(&server, "team/pullonly", &format!("sha256-{}.sig", &digest[7..])),
        None
    );
}
