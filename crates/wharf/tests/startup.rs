//! `wharf serve` start-up: every setting and file checked before anything is created,
//! one-line messages naming the setting, host names as listen addresses, the data
//! directory's layout (private keys apart from the certificates clients are pointed
//! at, also for directories an earlier version made) and a log without colour codes.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{Server, serve_expecting_failure};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Asserts the exact stderr of a failed start and that the data directory was not made.
fn assert_refused(args: &[&str], env: &[(&str, &str)], message: &str) {
    let (stderr, dir) = serve_expecting_failure(args, env);
    assert_eq!(stderr, format!("wharf: {message}\n"));
    assert!(
        !dir.path().join("data").exists(),
        "{message}: the data directory was created: {:?}",
        common::files_under(&dir.path().join("data"))
    );
}

#[test]
fn a_malformed_key_encryption_key_is_refused_by_print_config_and_serve_without_showing_it() {
    let secret = "c2VjcmV0LXZhbHVlLW9mLTIwLWJ5dGVz"; // base64 of 24 bytes, not 32
    let message = "invalid configuration: security.key_encryption_key (WHARF_SECURITY_KEY_ENCRYPTION_KEY) must be base64 of exactly 32 bytes, e.g. from `openssl rand -base64 32`";
    let env = [("WHARF_SECURITY_KEY_ENCRYPTION_KEY", secret)];
    assert_refused(&["--print-config"], &env, message);
    assert_refused(&[], &env, message);
    // The same key in a config file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wharf.toml");
    std::fs::write(&file, format!("[security]\nkey_encryption_key = \"{secret}\"\n")).unwrap();
    assert_refused(&["--config", file.to_str().unwrap()], &[], message);
}

#[test]
fn a_missing_config_file_is_named_once_with_its_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("missing.toml");
    assert_refused(
        &["--config", file.to_str().unwrap()],
        &[],
        &format!(
            "cannot read config file {}: No such file or directory (os error 2)",
            file.display()
        ),
    );
}

/// A self-signed certificate for localhost and its key, as an operator would bring.
fn operator_certificate(dir: &Path, name: &str) -> (String, String) {
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "30", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // A server certificate, not a CA (openssl's default), or rustls clients refuse it.
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", common::text(&out));
    (cert.display().to_string(), key.display().to_string())
}

#[test]
fn tls_certificate_and_key_are_checked_before_anything_is_created() {
    common::require_tool("openssl");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = operator_certificate(dir.path(), "server");
    let (_, other_key) = operator_certificate(dir.path(), "other");
    let missing = dir.path().join("missing.pem").display().to_string();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.display().to_string();
    let cases = [
        (
            &missing,
            &key,
            format!("cannot read tls.cert {missing}: No such file or directory (os error 2)"),
        ),
        (
            &cert,
            &missing,
            format!("cannot read tls.key {missing}: No such file or directory (os error 2)"),
        ),
        (
            &garbage,
            &key,
            format!("tls.cert {garbage} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        ),
        (
            // A certificate where the key belongs holds no key either.
            &cert,
            &cert,
            format!("tls.key {cert} holds no PEM private key (-----BEGIN PRIVATE KEY-----)"),
        ),
        (
            &cert,
            &other_key,
            format!("tls.key {other_key} is not the key of the certificate in tls.cert {cert}"),
        ),
    ];
    for (c, k, message) in cases {
        assert_refused(&[], &[("WHARF_TLS_CERT", c), ("WHARF_TLS_KEY", k)], &message);
    }
    // The right pair serves, and no local CA is generated beside it.
    let server = Server::start_with(&[("WHARF_TLS_CERT", &cert), ("WHARF_TLS_KEY", &key)]);
    assert!(!server.data.join("tls").exists());
    assert!(!server.data.join("private").exists());
    let http = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap())
        .build()
        .unwrap();
    let status = http.get(server.url("/v2/")).send().unwrap().status();
    assert_eq!(status, 401);
}

#[test]
fn listen_takes_a_host_name_and_says_when_it_does_not_resolve() {
    let server = Server::start_listening(&[], "localhost", Some(common::ADMIN_PASSWORD));
    assert_eq!(
        server.listening,
        format!("Wharf is listening on https://127.0.0.1:{}", server.port)
    );
    let status = server.http().get(server.url("/v2/")).send().unwrap().status();
    assert_eq!(status, 401);
    // The log is a file here, not a terminal: no colour codes.
    let log = server.log();
    assert!(log.contains("wharf listening"), "{log}");
    assert!(!log.contains("\x1b["), "colour codes in the log:\n{log:?}");

    let listen = "wharf-no-such-host.invalid:5000";
    assert_refused(
        &[],
        &[("WHARF_LISTEN", listen)],
        &format!(
            "invalid configuration: listen \"{listen}\": cannot resolve host \"wharf-no-such-host.invalid\" to an address"
        ),
    );
}

#[test]
fn a_data_directory_with_keys_beside_the_certificates_is_upgraded_on_start() {
    let mut server = Server::start();
    let (public, private) = (server.data.join("tls"), server.data.join("private/tls"));
    let files = ["ca.key", "server.key", "server.names"];
    let read = |p: &Path| std::fs::read(p).unwrap();
    let (ca, server_crt) = (read(&public.join("ca.crt")), read(&public.join("server.crt")));
    let keys: Vec<Vec<u8>> = files.iter().map(|f| read(&private.join(f))).collect();
    server.kill9();

    // The layout of earlier versions: everything in tls/, no private/.
    for f in files {
        std::fs::rename(private.join(f), public.join(f)).unwrap();
        std::fs::set_permissions(public.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::remove_dir_all(server.data.join("private")).unwrap();
    server.restart();

    assert_eq!(names_in(&public), ["ca.crt", "server.crt"]);
    assert_eq!(names_in(&private), files);
    assert_eq!(
        (mode(&server.data.join("private")), mode(&private)),
        (0o700, 0o700)
    );
    for (f, key) in files.iter().zip(&keys) {
        assert_eq!(mode(&private.join(f)), 0o600, "{f}");
        assert_eq!(&read(&private.join(f)), key, "{f} changed");
    }
    // The same CA and certificate (not reissued), and clients that trust it connect.
    assert_eq!(read(&public.join("ca.crt")), ca);
    assert_eq!(read(&public.join("server.crt")), server_crt);
    let http = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    assert_eq!(http.get(server.url("/v2/")).send().unwrap().status(), 401);
    assert!(
        server.log().contains("moved a private TLS file"),
        "{}",
        server.log()
    );
}

/// A database that does not answer stops the start with a message naming where it looked
/// — never the password from the URL.
#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let port = common::free_port();
    let url = format!("postgres://wharf:hunter2-secret@127.0.0.1:{port}/wharf");
    let (stderr, _dir) = serve_expecting_failure(&[], &[("WHARF_DATABASE_URL", &url)]);
    assert!(!stderr.contains("hunter2"), "the password was printed: {stderr}");
    assert_eq!(
        stderr,
        format!(
            "wharf: metadata database unavailable: cannot connect to PostgreSQL at 127.0.0.1:{port} \
             (database wharf, user wharf): error communicating with database: Connection refused (os error 111)\n"
        )
    );
}

/// A bucket that does not exist, or credentials the store refuses, stop the start with a
/// message naming endpoint and bucket — never the secret key.
#[test]
fn a_missing_bucket_or_a_wrong_key_is_named_without_the_secret() {
    let bucket = wharf_testbed::garage::GarageNode::shared().fresh_bucket();
    let base = [
        ("WHARF_STORAGE_BACKEND", "s3"),
        ("WHARF_STORAGE_S3_ENDPOINT", bucket.endpoint.as_str()),
        ("WHARF_STORAGE_S3_REGION", bucket.region.as_str()),
        ("WHARF_STORAGE_S3_PATH_STYLE", "true"),
        ("WHARF_STORAGE_S3_ACCESS_KEY_ID", bucket.access_key_id.as_str()),
    ];
    let mut missing = base.to_vec();
    missing.push(("WHARF_STORAGE_S3_BUCKET", "no-such-bucket"));
    missing.push((
        "WHARF_STORAGE_S3_SECRET_ACCESS_KEY",
        bucket.secret_access_key.as_str(),
    ));
    let (stderr, _dir) = serve_expecting_failure(&[], &missing);
    assert!(
        !stderr.contains(&bucket.secret_access_key),
        "the secret was printed: {stderr}"
    );
    assert_eq!(
        stderr,
        format!(
            "wharf: blob storage: S3 bucket \"no-such-bucket\" at {} is not usable: the bucket does not exist \
             (writing a probe object: the store answered NoSuchBucket)\n",
            bucket.endpoint
        )
    );

    let mut wrong_key = base.to_vec();
    wrong_key.push(("WHARF_STORAGE_S3_BUCKET", bucket.bucket.as_str()));
    wrong_key.push((
        "WHARF_STORAGE_S3_SECRET_ACCESS_KEY",
        "not-the-secret-key-0123456789",
    ));
    let (stderr, _dir) = serve_expecting_failure(&[], &wrong_key);
    assert!(
        !stderr.contains("not-the-secret-key"),
        "the secret was printed: {stderr}"
    );
    assert_eq!(
        stderr,
        format!(
            "wharf: blob storage: S3 bucket {:?} at {} is not usable: the credentials were refused \
             (writing a probe object: the store answered AccessDenied)\n",
            bucket.bucket, bucket.endpoint
        )
    );
}

/// `--print-config` shows the effective settings — never a secret: not the key-encryption
/// key, not the S3 secret key, not the password in the database URL.
#[test]
fn print_config_shows_no_secret() {
    let kek = "A".repeat(43) + "=";
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["serve", "--print-config"])
        .env("WHARF_SECURITY_KEY_ENCRYPTION_KEY", &kek)
        .env(
            "WHARF_DATABASE_URL",
            "postgres://wharf:db-pass-123@db.example:5432/wharf",
        )
        .env("WHARF_STORAGE_BACKEND", "s3")
        .env("WHARF_STORAGE_S3_BUCKET", "blobs")
        .env("WHARF_STORAGE_S3_REGION", "garage")
        .env("WHARF_STORAGE_S3_ACCESS_KEY_ID", "GK-visible")
        .env("WHARF_STORAGE_S3_SECRET_ACCESS_KEY", "s3-secret-456")
        .output()
        .expect("wharf serve --print-config");
    assert!(out.status.success(), "{}", common::text(&out));
    let shown = String::from_utf8(out.stdout).unwrap();
    for secret in [kek.as_str(), "db-pass-123", "s3-secret-456"] {
        assert!(!shown.contains(secret), "{secret} printed:\n{shown}");
    }
    // What is not secret is shown as configured.
    for expected in [
        "url = \"postgres://…@db.example:5432/wharf\"",
        "secret_access_key = \"<redacted>\"",
        "key_encryption_key = \"<redacted>\"",
        "access_key_id = \"GK-visible\"",
        "bucket = \"blobs\"",
    ] {
        assert!(shown.contains(expected), "{expected} missing:\n{shown}");
    }
}
