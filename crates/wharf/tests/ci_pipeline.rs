//! The CI signing guide (docs/ci-pipelines.md), run as a pipeline runs it: the pipeline
//! files call `scripts/ci/push-and-sign.sh`, and so does this test — a service principal
//! logs in, the signer key comes back from its backup (the pipeline secret), skopeo pushes
//! the build's OCI layout and `wharf trust sign` signs, with no Docker daemon reachable
//! from the job. Then `DOCKER_CONTENT_TRUST=1 docker pull` verifies on a machine with docker.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, assign_role, logged_in, repo_root, require_tool, text, wharf_cli};
use serde_json::Value;

const ROOT_PASS: &str = "root-pass-123";
const REPO_PASS: &str = "repo-pass-123";
const CI_KEY_PASS: &str = "ci-key-pass-123";
const BACKUP_PASS: &str = "backup-pass-123";

/// `wharf ARGS` with the Docker config `config` and `env`.
fn wharf(config: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wharf"));
    c.args(args)
        .env("DOCKER_CONFIG", config)
        .env_remove("WHARF_REGISTRY")
        .env_remove("WHARF_CA_FILE")
        .env_remove("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE")
        .env_remove("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run wharf");
    assert!(out.status.success(), "wharf {args:?}: {}", text(&out));
    text(&out)
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{what}: {}", text(&out));
}

#[test]
fn a_pipeline_without_docker_pushes_and_signs_what_a_dct_pull_verifies() {
    require_tool("skopeo");
    require_tool("docker");
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = logged_in(&server, "admin", &server.admin_password);
    let repo = format!("{}/team/app", server.host);
    let dct = [
        ("DOCKER_CONTENT_TRUST", "1"),
        ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", ROOT_PASS),
        ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", REPO_PASS),
    ];

    // Once, on the owner's machine: the repository's trust data (a signed push), the
    // pipeline's own signer key in a store of its own, backed up as the pipeline secret,
    // the signer added, and a service principal that may push and sign under team/*.
    let base = format!("{repo}:base");
    owner.import_image(&base);
    let out = owner.cmd(&["push", &base], &dct);
    assert!(out.status.success(), "signed push: {}", text(&out));
    let secrets = tempfile::tempdir().unwrap();
    let signer_store = secrets.path().join("signer-docker-config");
    std::fs::create_dir_all(&signer_store).unwrap();
    let dir = secrets.path().to_str().unwrap();
    let key_env = [("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", CI_KEY_PASS)];
    wharf(
        &signer_store,
        &["trust", "key", "generate", "ci", "--dir", dir],
        &key_env,
    );
    let backup = secrets.path().join("ci-key.backup");
    wharf(
        &signer_store,
        &["trust", "key", "backup", "--out", backup.to_str().unwrap()],
        &[("WHARF_BACKUP_PASSPHRASE", BACKUP_PASS)],
    );
    let ci_pub = secrets.path().join("ci.pub");
    wharf(
        owner.config.path(),
        &[
            "trust",
            "signer",
            "add",
            "ci",
            &repo,
            "--key",
            ci_pub.to_str().unwrap(),
        ],
        &[
            ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", ROOT_PASS),
            ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", REPO_PASS),
        ],
    );
    let out = wharf_cli(
        owner.config.path(),
        &[
            "-o",
            "json",
            "sp",
            "create",
            "ci",
            "--role",
            "AcrPush",
            "--scope",
            "repository:team/*",
        ],
        "",
    );
    assert!(out.status.success(), "sp create: {}", text(&out));
    let sp: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (client_id, secret) = (
        sp["client_id"].as_str().unwrap().to_owned(),
        sp["secret"].as_str().unwrap().to_owned(),
    );
    assign_role(owner.config.path(), "AcrImageSigner", "ci", "repository:team/*");

    // The build's output, an OCI layout (made here with docker; the job only reads it).
    let build = tempfile::tempdir().unwrap();
    let source = format!("{repo}:build-source");
    owner.import_image(&source);
    let archive = build.path().join("image.tar");
    run(
        Command::new("docker").args(["save", "-o", archive.to_str().unwrap(), &source]),
        "docker save",
    );
    let layout = format!("{}:app", build.path().join("oci").display());
    run(
        Command::new("skopeo").args([
            "copy",
            &format!("docker-archive:{}", archive.display()),
            &format!("oci:{layout}"),
        ]),
        "skopeo copy to an OCI layout",
    );

    // The job: wharf and skopeo on the PATH, a home of its own, and no Docker daemon.
    let runner = tempfile::tempdir().unwrap();
    let wharf_dir = Path::new(env!("CARGO_BIN_EXE_wharf")).parent().unwrap();
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/ci/push-and-sign.sh"))
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", wharf_dir.display()),
        )
        .env("HOME", runner.path())
        .env(
            "DOCKER_HOST",
            format!("unix://{}/no-docker.sock", runner.path().display()),
        )
        .env("WHARF_REGISTRY", &server.host)
        .env("WHARF_CLIENT_ID", &client_id)
        .env("WHARF_CLIENT_SECRET", &secret)
        .env("WHARF_KEY_BACKUP", &backup)
        .env("WHARF_BACKUP_PASSPHRASE", BACKUP_PASS)
        .env("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", CI_KEY_PASS)
        .env("IMAGE_LAYOUT", &layout)
        .env("IMAGE", "team/app:v1")
        .env("WHARF_CA_FILE", &server.ca)
        .env("WHARF_CERT_DIR", server.cert_dir())
        .output()
        .expect("run the pipeline script");
    let job_log = text(&out);
    assert!(out.status.success(), "the job failed:\n{job_log}");
    assert!(
        job_log.contains(&format!("Successfully signed {repo}:v1")),
        "{job_log}"
    );
    assert!(
        !job_log.contains(&secret),
        "the job printed the secret:\n{job_log}"
    );

    // On a machine with docker and no trust cache: the pull verifies, signed by "ci".
    let consumer = logged_in(&server, "admin", &server.admin_password);
    let pulled = consumer.cmd(&["pull", &format!("{repo}:v1")], &[("DOCKER_CONTENT_TRUST", "1")]);
    assert!(pulled.status.success(), "DCT pull: {}", text(&pulled));
    let inspect = consumer.cmd(&["trust", "inspect", &format!("{repo}:v1")], &[]);
    let v: Value = serde_json::from_slice(&inspect.stdout).unwrap_or_else(|_| panic!("{}", text(&inspect)));
    assert_eq!(v[0]["SignedTags"][0]["SignedTag"], "v1");
    assert_eq!(v[0]["SignedTags"][0]["Signers"], serde_json::json!(["ci"]));
}
