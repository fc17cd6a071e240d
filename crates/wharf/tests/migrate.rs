//! `wharf migrate`: a single-machine Wharf (SQLite, blobs on disk) holding a signed and an
//! unsigned image, a user and a repository token is stopped and moved to PostgreSQL and
//! S3 (wharf-testbed's cluster and Garage node); its successor on the same `localhost:PORT`
//! with the same TLS certificate and key-encryption key then serves `DOCKER_CONTENT_TRUST=1
//! docker pull` and every old login. A second run is refused, naming what the target holds.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::cli::json_ok;
use common::cluster::shared_backend_env;
use common::{DockerClient, Server, pushed_digest, text, wharf_cli};
use wharf_testbed::garage::GarageNode;
use wharf_testbed::postgres::PostgresCluster;

const DCT: &[(&str, &str)] = &[
    ("DOCKER_CONTENT_TRUST", "1"),
    ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123"),
    ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-123"),
];

/// `wharf migrate ARGS` with none of the tester's `WHARF_*` settings: both deployments are
/// described by their files alone.
fn wharf_migrate(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.arg("migrate")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("WHARF_") {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("run wharf migrate")
}

fn toml_str(p: &Path) -> String {
    format!("{:?}", p.to_str().expect("utf-8 path"))
}

#[test]
fn a_single_machine_registry_moves_to_postgres_and_s3_with_its_trust_and_logins() {
    // The old deployment is the embedded one whatever WHARF_TEST_BACKEND says.
    let mut old = Server::start_with(&[
        ("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true"),
        ("WHARF_DATABASE_URL", ""),
    ]);
    let owner = DockerClient::new();
    let out = owner.wharf_login(&old, "admin", &old.admin_password);
    assert!(out.status.success(), "login: {}", text(&out));

    let signed = format!("{}/team/signed:v1", old.host);
    owner.import_image(&signed);
    let out = owner.cmd(&["push", &signed], DCT);
    let pushed = text(&out);
    assert!(out.status.success(), "signed push:\n{pushed}");
    assert!(
        pushed.contains(&format!("Successfully signed {signed}")),
        "{pushed}"
    );
    let signed_digest = pushed_digest(&pushed);

    let plain = format!("{}/plain/app:v1", old.host);
    owner.import_image(&plain);
    let plain_digest = pushed_digest(&owner.ok(&["push", &plain]));

    let created = wharf_cli(
        owner.config.path(),
        &["user", "create", "bob", "--password-stdin"],
        "bob-password-1",
    );
    assert!(created.status.success(), "{}", text(&created));
    let (token, _) = json_ok(
        owner.config.path(),
        &[
            "token",
            "create",
            "deployer",
            "--repository",
            "plain/app:content/read",
        ],
        "",
    );
    let token_password = token["password"].as_str().expect("token password").to_owned();
    assert_eq!(old.terminate(), Some(0), "{}", old.log());

    // NEW.toml: PostgreSQL + S3, the old key-encryption key and TLS certificate.
    let database_url = PostgresCluster::shared().fresh_database();
    let bucket = GarageNode::shared().fresh_bucket();
    let kek = std::fs::read_to_string(old.data.join("key-encryption-key")).expect("old kek");
    let kek = kek.trim();
    let cert = old.data.join("tls/server.crt");
    let key = old.data.join("private/tls/server.key");
    let work = tempfile::tempdir().expect("tempdir");
    let new_data = work.path().join("new-data");
    let old_toml = work.path().join("old.toml");
    let new_toml = work.path().join("new.toml");
    std::fs::write(
        &old_toml,
        format!(
            "listen = \"127.0.0.1:{}\"\ndata_dir = {}\n",
            old.port,
            toml_str(&old.data)
        ),
    )
    .unwrap();
    std::fs::write(
        &new_toml,
        format!(
            r#"data_dir = {data}
public_hosts = ["{host}"]

[database]
url = "{database_url}"

[storage]
backend = "s3"

[storage.s3]
endpoint = "{endpoint}"
region = "{region}"
bucket = "{bucket_name}"
path_style = true
access_key_id = "{access}"
secret_access_key = "{secret}"

[security]
key_encryption_key = "{kek}"

[tls]
cert = {cert}
key = {key}
"#,
            data = toml_str(&new_data),
            host = old.host,
            endpoint = bucket.endpoint,
            region = bucket.region,
            bucket_name = bucket.bucket,
            access = bucket.access_key_id,
            secret = bucket.secret_access_key,
            cert = toml_str(&cert),
            key = toml_str(&key),
        ),
    )
    .unwrap();
    let (from, to) = (old_toml.to_str().unwrap(), new_toml.to_str().unwrap());

    // A target without the old key-encryption key is refused before anything is copied,
    // with the key to use named (a file path, never the key).
    let new_text = std::fs::read_to_string(&new_toml).unwrap();
    let kek_line = format!("key_encryption_key = \"{kek}\"\n");
    let other_kek = "key_encryption_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n";
    let kek_file = old.data.join("key-encryption-key");
    for (name, replacement, says) in [
        (
            "other-kek.toml",
            other_kek,
            format!(
                "has a different key-encryption key than {from}: the keys sealed in the database would not open; set its security.key_encryption_key to the content of {}",
                kek_file.display()
            ),
        ),
        (
            "no-kek.toml",
            "",
            format!(
                "sets no key-encryption key: the keys sealed in the database open only with the source's, so set security.key_encryption_key (or WHARF_SECURITY_KEY_ENCRYPTION_KEY) to the content of {}",
                kek_file.display()
            ),
        ),
    ] {
        let bad = work.path().join(name);
        std::fs::write(&bad, new_text.replace(&kek_line, replacement)).unwrap();
        let out = wharf_migrate(&["--from", from, "--to", bad.to_str().unwrap()]);
        assert!(!out.status.success(), "{name}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.trim_end(),
            format!("wharf: {} {says}", bad.display()),
            "{name}"
        );
        assert!(!stderr.contains(kek), "{name}");
    }

    let old_db = old.data.join("metadata.db");
    let old_db_before = common::sha256(&std::fs::read(&old_db).unwrap());
    let started = std::time::Instant::now();
    let out = wharf_migrate(&["--from", from, "--to", to]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "migrate failed:\n{stdout}{stderr}");
    eprintln!("wharf migrate took {:?}:\n{stdout}{stderr}", started.elapsed());
    // Two images of a config and one layer each, all copied on this first run.
    assert!(stderr.contains("  blobs 4/4, "), "{stderr}");
    assert!(stdout.contains("Blobs: 4 copied ("), "{stdout}");
    // The summary table's rows: what the target now holds.
    let rows: Vec<(String, u64)> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("TABLE"))
        .skip(1)
        .map(|l| {
            let mut f = l.split_whitespace();
            let table = f.next().expect("table").to_owned();
            (table, f.next().expect("rows").parse().expect("count"))
        })
        .collect();
    assert_eq!(rows.len(), wharf_store::transfer::TABLES.len(), "{stdout}");
    let count = |t: &str| rows.iter().find(|(n, _)| n == t).map(|r| r.1);
    assert_eq!(count("principals"), Some(3), "admin, bob, deployer: {stdout}");
    assert_eq!(count("manifests"), Some(2), "{stdout}");
    assert!(count("trust_files") >= Some(4), "{stdout}");
    assert!(count("trust_keys") >= Some(1), "{stdout}");

    // Done once is done: a second run is refused, saying exactly what is there.
    let held: Vec<String> = wharf_store::transfer::TABLES
        .iter()
        .filter_map(|t| {
            let n = count(t.name)?;
            (n > 0).then(|| format!("{n} {}", if n == 1 { t.singular } else { t.plural }))
        })
        .collect();
    let (last, init) = held.split_last().unwrap();
    let expected = format!(
        "the target database already holds {} and {last}; pass --force to replace them",
        init.join(", ")
    );
    let again = wharf_migrate(&["--from", from, "--to", to, "--output", "json"]);
    assert!(!again.status.success());
    let err: serde_json::Value =
        serde_json::from_slice(&again.stderr).unwrap_or_else(|e| panic!("{e}: {}", text(&again)));
    assert_eq!(err["error"]["code"], "TARGET_NOT_EMPTY");
    assert_eq!(err["error"]["message"], expected.as_str());

    // The old deployment was only read: it could start again as it was.
    assert_eq!(common::sha256(&std::fs::read(&old_db).unwrap()), old_db_before);

    // The successor: same port and certificate, the new database and bucket.
    let mut env = shared_backend_env(&database_url, &bucket);
    env.push(("WHARF_SECURITY_KEY_ENCRYPTION_KEY".into(), kek.to_owned()));
    env.push(("WHARF_TLS_CERT".into(), cert.display().to_string()));
    env.push(("WHARF_TLS_KEY".into(), key.display().to_string()));
    env.push(("WHARF_PUBLIC_HOSTS".into(), old.host.clone()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut new = Server::start_on_port(&env, old.port, &old.admin_password);
    new.ca = old.ca.clone();

    // Nothing cached by the daemon: every layer comes from the new bucket.
    owner.ok(&["rmi", &signed, &plain]);
    let reader = DockerClient::new();
    let out = reader.wharf_login_at(&new.host, &new.ca, "admin", &old.admin_password);
    assert!(
        out.status.success(),
        "owner login on the new server: {}",
        text(&out)
    );
    let out = reader.cmd(&["pull", &signed], DCT);
    let pulled = text(&out);
    assert!(out.status.success(), "trusted pull:\n{pulled}\n{}", new.log());
    assert!(pulled.contains(&signed_digest), "{pulled}");
    let by_digest = format!("{}/plain/app@{plain_digest}", new.host);
    reader.ok(&["pull", &by_digest]);

    let bob = DockerClient::new();
    let out = bob.wharf_login_at(&new.host, &new.ca, "bob", "bob-password-1");
    assert!(out.status.success(), "bob: {}", text(&out));
    let deployer = DockerClient::new();
    let out = deployer.wharf_login_at(&new.host, &new.ca, "deployer", &token_password);
    assert!(out.status.success(), "token: {}", text(&out));
    reader.ok(&["rmi", &by_digest]);
    deployer.ok(&["pull", &plain]);
    // The token's scope map came along: it reads plain/app only.
    let refused = deployer.fails(&["pull", &format!("{}/team/signed:v1", new.host)], &[]);
    assert!(
        refused.contains("denied") || refused.contains("unauthorized"),
        "{refused}"
    );
    new.terminate();
}
