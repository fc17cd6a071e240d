//! Test harness: the real `wharf` binary on a free port with its own data directory,
//! real `docker` (with a daemon started by `scripts/start-dockerd.sh`), `skopeo`, `notary`;
//! headless `chromium` through `chromedriver` for the web portal ([`browser`]).
#![allow(dead_code)]

pub mod browser;
pub mod cli;
pub mod cluster;
pub mod portal_client;
pub mod reference_stack;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

pub const ADMIN_PASSWORD: &str = "test-owner-pw";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Fail with a message naming the missing tool and how to get it.
pub fn require_tool(name: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success());
    assert!(
        matches!(found, Ok(true)),
        "missing tool `{name}`: run `sudo scripts/install-deps.sh`"
    );
}

/// A port nothing listens on, picked at random below Linux's ephemeral range
/// (32768–60999): a port the kernel hands out (`bind :0`) is also what the next outgoing
/// connection of a busy machine (docker, Garage, PostgreSQL clients, the soak) may take
/// before the server binds it, or while a test restarts the server on it.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher as _, Hasher as _};
    const LOW: u16 = 20_000;
    const HIGH: u16 = 32_767;
    for _ in 0..500 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let port = LOW + (h.finish() % u64::from(HIGH - LOW)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}..{HIGH}");
}

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    /// `localhost:PORT`, as clients address it.
    pub host: String,
    pub data: PathBuf,
    pub ca: PathBuf,
    pub admin_password: String,
    /// The line `wharf serve` printed once it listened.
    pub listening: String,
    /// The host part of `WHARF_LISTEN` (an address or a name to resolve).
    listen_host: String,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(env: &[(&str, &str)]) -> Self {
        Self::start_listening(env, "127.0.0.1", Some(ADMIN_PASSWORD))
    }

    /// On the embedded SQLite database and local disk even in a `postgres-s3` run: for
    /// tests of those files themselves.
    pub fn start_embedded() -> Self {
        Self::start_with(&[("WHARF_DATABASE_URL", ""), ("WHARF_STORAGE_BACKEND", "fs")])
    }

    /// Whether this server keeps blob bytes under `<data>/storage` (not in a bucket).
    pub fn blobs_on_local_disk(&self) -> bool {
        !self
            .env
            .iter()
            .any(|(k, v)| k == "WHARF_STORAGE_BACKEND" && v == "s3")
    }

    pub fn start_with_owned(env: Vec<(String, String)>) -> Self {
        let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Self::start_with(&refs)
    }

    /// A fresh server whose owner password Wharf generates, as on a first start without
    /// `WHARF_ADMIN_PASSWORD`; read back from `<data>/initial-admin-password`.
    pub fn start_with_generated_password() -> Self {
        let mut s = Self::start_listening(&[], "127.0.0.1", None);
        let stored =
            std::fs::read_to_string(s.data.join("initial-admin-password")).expect("generated password file");
        s.admin_password = stored.trim_end().to_owned();
        s
    }

    /// `WHARF_LISTEN=<listen_host>:<free port>`; `admin_password` `None` = generated.
    pub fn start_listening(env: &[(&str, &str)], listen_host: &str, admin_password: Option<&str>) -> Self {
        // A port found free can still be taken before the server binds it (by another
        // test's server): then the next attempt takes another one.
        let mut attempt = 1;
        loop {
            let mut s = Self::prepared(env, listen_host, free_port(), admin_password);
            match s.try_spawn() {
                Ok(()) => return s,
                Err(log) if attempt < 5 && log.contains("Address already in use") => attempt += 1,
                Err(log) => panic!("wharf did not start; log:\n{log}"),
            }
        }
    }

    /// A server on a given port with a data directory of its own: the successor of a
    /// stopped server, reached under the same `localhost:PORT` (trust GUNs, docker's
    /// certificate and trust directories are keyed by it).
    pub fn start_on_port(env: &[(&str, &str)], port: u16, admin_password: &str) -> Self {
        Self::start_at(env, "127.0.0.1", port, Some(admin_password))
    }

    fn start_at(env: &[(&str, &str)], listen_host: &str, port: u16, admin_password: Option<&str>) -> Self {
        let mut s = Self::prepared(env, listen_host, port, admin_password);
        s.spawn();
        s
    }

    /// The server's settings, data directory and backend, not started yet.
    fn prepared(env: &[(&str, &str)], listen_host: &str, port: u16, admin_password: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        // `WHARF_TEST_BACKEND=postgres-s3`: this server gets its own PostgreSQL database and
        // Garage bucket (CI runs the whole suite once that way). A test's own settings win.
        let own_backend = env.iter().any(|(k, _)| *k == "WHARF_DATABASE_URL");
        let mut all_env = match std::env::var("WHARF_TEST_BACKEND").as_deref() {
            Ok("postgres-s3") if !own_backend => cluster::fresh_backend_env(),
            Ok("postgres-s3") => Vec::new(),
            Ok("") | Ok("embedded") | Err(_) => Vec::new(),
            Ok(other) => panic!("WHARF_TEST_BACKEND={other:?}: expected embedded or postgres-s3"),
        };
        all_env.retain(|(k, _)| !env.iter().any(|(t, _)| t == k));
        all_env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Server {
            child: None,
            port,
            host: format!("localhost:{port}"),
            ca: data.join("tls/ca.crt"),
            data,
            admin_password: admin_password.unwrap_or_default().to_owned(),
            listening: String::new(),
            listen_host: listen_host.to_owned(),
            env: all_env,
            _dir: dir,
        }
    }

    fn spawn(&mut self) {
        if let Err(log) = self.try_spawn() {
            panic!("wharf did not start; log:\n{log}");
        }
    }

    /// Starts the process and waits for its "listening" line; on failure the process is
    /// gone and the error is its log.
    fn try_spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self._dir.path().join("server.log"))
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
        cmd.arg("serve")
            .env("WHARF_LISTEN", format!("{}:{}", self.listen_host, self.port))
            .env("WHARF_DATA_DIR", &self.data)
            // Empty on a first start = generated; once the owner exists it is not read.
            .env("WHARF_ADMIN_PASSWORD", &self.admin_password)
            .env("WHARF_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start wharf");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("Wharf is listening on") {
                    let _ = tx.send(line.clone());
                }
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                self.listening = line;
                Ok(())
            }
            Err(_) => {
                self.kill9();
                Err(self.log())
            }
        }
    }

    /// The server process's id (for /proc readings).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Graceful stop with SIGTERM; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        c.wait().ok().and_then(|s| s.code())
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.host)
    }

    pub fn http(&self) -> reqwest::blocking::Client {
        let pem = std::fs::read(&self.ca).expect("ca");
        reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client")
    }

    /// The status of a blob HEAD in `repo` with `token`.
    pub fn blob_status(&self, token: &str, repo: &str, digest: &str) -> u16 {
        self.http()
            .head(self.url(&format!("/v2/{repo}/blobs/{digest}")))
            .bearer_auth(token)
            .send()
            .expect("blob head")
            .status()
            .as_u16()
    }

    /// An access token for `scopes` as the owner.
    pub fn token(&self, scopes: &[&str]) -> String {
        self.token_as("admin", &self.admin_password, scopes)
            .expect("owner token")
    }

    pub fn token_as(&self, user: &str, password: &str, scopes: &[&str]) -> Result<String, u16> {
        let resp = self.token_request(user, password, scopes);
        if !resp.status().is_success() {
            return Err(resp.status().as_u16());
        }
        let v: serde_json::Value = resp.json().expect("json");
        Ok(v["token"].as_str().expect("token field").to_owned())
    }

    /// The owner's view of `repository`'s current trust root (None = no trust data).
    pub fn trust_root(&self, repository: &str) -> Option<String> {
        let gun = format!("{}/{repository}", self.host);
        let token = self.token(&[&format!("repository:{gun}:pull")]);
        let r = self
            .http()
            .get(self.url(&format!("/v2/{gun}/_trust/tuf/root.json")))
            .bearer_auth(token)
            .send()
            .expect("get root");
        r.status().is_success().then(|| r.text().expect("body"))
    }

    /// A token request as `user` that must be refused: what the server said, as
    /// [`refusal`] reads it.
    pub fn token_refusal(&self, user: &str, password: &str, scopes: &[&str]) -> (u16, String, String) {
        let resp = self.token_request(user, password, scopes);
        assert!(!resp.status().is_success(), "token request as {user} was granted");
        refusal(resp)
    }

    fn token_request(&self, user: &str, password: &str, scopes: &[&str]) -> reqwest::blocking::Response {
        let mut q: Vec<(&str, &str)> = vec![("service", "wharf")];
        q.extend(scopes.iter().map(|s| ("scope", *s)));
        self.http()
            .get(self.url("/token"))
            .query(&q)
            .basic_auth(user, Some(password))
            .send()
            .expect("token")
    }

    /// A directory holding only the CA (what skopeo's --*-cert-dir wants).
    pub fn cert_dir(&self) -> PathBuf {
        let d = self._dir.path().join("certs");
        std::fs::create_dir_all(&d).expect("certs dir");
        std::fs::copy(&self.ca, d.join("ca.crt")).expect("copy ca");
        d
    }

    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self._dir.path().join(name);
        std::fs::create_dir_all(&p).expect("scratch");
        p
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

static DOCKERD: Once = Once::new();

pub fn ensure_dockerd() {
    require_tool("docker");
    require_tool("dockerd");
    DOCKERD.call_once(|| {
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/start-dockerd.sh"))
            .output()
            .expect("run start-dockerd.sh");
        assert!(
            out.status.success(),
            "cannot start dockerd: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// A docker CLI with its own config directory (credentials, trust keys).
pub struct DockerClient {
    pub config: tempfile::TempDir,
}

impl DockerClient {
    pub fn new() -> Self {
        ensure_dockerd();
        Self {
            config: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn cmd(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut c = Command::new("docker");
        c.args(args)
            .env("DOCKER_CONFIG", self.config.path())
            .stdin(Stdio::null());
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().expect("run docker")
    }

    /// Run docker, assert success, return stdout+stderr.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args, &[]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "docker {args:?} failed:\n{text}");
        text
    }

    /// Run docker, assert that it fails, return the error it printed last on standard
    /// error: the line a user reads for why (progress lines before it vary from run to run).
    pub fn fails(&self, args: &[&str], envs: &[(&str, &str)]) -> String {
        let out = self.cmd(args, envs);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "docker {args:?} should fail:\n{}{stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .to_owned()
    }

    /// `wharf login` into this client's config, as a user would.
    pub fn wharf_login(&self, server: &Server, user: &str, password: &str) -> Output {
        self.wharf_login_at(&server.host, &server.ca, user, password)
    }

    /// `wharf login HOST --ca-file CA` (a balancer's name, or one replica's).
    pub fn wharf_login_at(&self, host: &str, ca: &Path, user: &str, password: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .args(["login", host, "-u", user, "--password-stdin", "--ca-file"])
            .arg(ca)
            .env("DOCKER_CONFIG", self.config.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wharf login");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("write");
        child.wait_with_output().expect("wait")
    }

    /// Build a small unique image with `docker import` and tag it `reference`.
    pub fn import_image(&self, reference: &str) {
        let dir = tempfile::tempdir().expect("tempdir");
        let unique = format!(
            "{reference} {:?} {}",
            std::time::SystemTime::now(),
            std::process::id()
        );
        let tar = image_tarball(dir.path(), "img", &unique);
        self.ok(&["import", tar.to_str().expect("path"), reference]);
    }
}

/// A one-file root filesystem (`etc/wharf-test` holding `content`) packed as
/// `<dir>/<name>.tar`, for `docker import` / `podman import`.
pub fn image_tarball(dir: &Path, name: &str, content: &str) -> PathBuf {
    let root = dir.join(format!("{name}-root"));
    std::fs::create_dir_all(root.join("etc")).expect("mkdir");
    std::fs::write(root.join("etc/wharf-test"), content).expect("write");
    let tar = dir.join(format!("{name}.tar"));
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
    tar
}

/// Run `wharf serve ARGS` with a fresh data directory `<dir>/data` (not created
/// beforehand) and `env`, expecting it to fail; returns its stderr. The directory is
/// returned so a test can check that nothing was created.
pub fn serve_expecting_failure(args: &[&str], env: &[(&str, &str)]) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.arg("serve")
        .args(args)
        .env("WHARF_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("WHARF_DATA_DIR", dir.path().join("data"))
        .env("WHARF_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("WHARF_LOG", "info")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wharf serve");
    // A server that starts anyway would never exit on its own.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!("wharf serve {args:?} kept running:\n{}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "wharf serve {args:?} succeeded:\n{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    (stderr, dir)
}

/// Upload `bytes` as a blob of `repo` in one POST (must answer 201); returns its digest.
pub fn upload_blob(
    server: &Server,
    http: &reqwest::blocking::Client,
    token: &str,
    repo: &str,
    bytes: &[u8],
) -> String {
    let digest = sha256(bytes);
    let r = http
        .post(server.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
        .bearer_auth(token)
        .body(bytes.to_vec())
        .send()
        .expect("blob upload");
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
    digest
}

/// Push a config and one layer made from `seed`, and an OCI manifest naming them under
/// `reference` (must answer 201). Returns the manifest's digest and bytes.
pub fn push_tiny_image(
    server: &Server,
    http: &reqwest::blocking::Client,
    token: &str,
    repo: &str,
    reference: &str,
    seed: &str,
) -> (String, Vec<u8>) {
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    let config = format!("{{\"seed\":\"{seed}\"}}");
    let layer = format!("layer {seed}");
    let config_digest = upload_blob(server, http, token, repo, config.as_bytes());
    let layer_digest = upload_blob(server, http, token, repo, layer.as_bytes());
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}]
    }))
    .expect("manifest json");
    put_manifest(server, token, repo, reference, OCI_MANIFEST, manifest.clone());
    (sha256(&manifest), manifest)
}

/// stdout then stderr of a finished command, for assertions and failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `wharf ARGS` as a user runs it, with the login stored in the Docker config directory
/// `config` (never the tester's own `WHARF_*` settings), `stdin` piped in.
/// tag -> (digest, signers) from one repository of a `docker trust inspect` document.
pub fn signed_tags(doc: &serde_json::Value) -> Vec<(String, String, Vec<String>)> {
    doc["SignedTags"]
        .as_array()
        .expect("SignedTags")
        .iter()
        .map(|t| {
            (
                t["SignedTag"].as_str().unwrap().to_owned(),
                t["Digest"].as_str().unwrap().to_owned(),
                t["Signers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

/// Gives `assignee` (a user or service principal) `role` on `scope`, through the CLI
/// signed in as the owner whose docker config is `owner_config`.
pub fn assign_role(owner_config: &Path, role: &str, assignee: &str, scope: &str) {
    let out = wharf_cli(
        owner_config,
        &[
            "role",
            "assignment",
            "create",
            "--role",
            role,
            "--assignee",
            assignee,
            "--scope",
            scope,
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{role} on {scope} for {assignee}: {}",
        text(&out)
    );
}

/// Creates user `name` with `password` and the role assignments `(role, scope)`.
pub fn create_user(owner_config: &Path, name: &str, password: &str, roles: &[(&str, &str)]) {
    let out = wharf_cli(
        owner_config,
        &["user", "create", name, "--password-stdin"],
        password,
    );
    assert!(out.status.success(), "user create {name}: {}", text(&out));
    for (role, scope) in roles {
        assign_role(owner_config, role, name, scope);
    }
}

pub fn wharf_cli(config: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(args)
        .env("DOCKER_CONFIG", config)
        .env_remove("WHARF_REGISTRY")
        .env_remove("WHARF_CA_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wharf");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    child.wait_with_output().expect("wait")
}

/// The digest docker printed for a push (`<tag>: digest: sha256:... size: N`).
pub fn pushed_digest(output: &str) -> String {
    output
        .split_whitespace()
        .skip_while(|w| *w != "digest:")
        .nth(1)
        .unwrap_or_else(|| panic!("no digest in push output:\n{output}"))
        .to_owned()
}

/// The `errors[0].code` of a registry error body.
pub fn error_code(body: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not a JSON error body: {body}"));
    v["errors"][0]["code"].as_str().unwrap_or_default().to_owned()
}

/// The `errors[0]` code and message of a registry error body: what a client shows.
pub fn error_of(body: &str) -> (String, String) {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not a JSON error body: {body}"));
    let field = |name: &str| v["errors"][0][name].as_str().unwrap_or_default().to_owned();
    (field("code"), field("message"))
}

/// A refused request's status and the `errors[0]` code and message of its body.
pub fn refusal(r: reqwest::blocking::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let (code, message) = error_of(&r.text().expect("body"));
    (status, code, message)
}

/// What [`refusal`] returns, spelled out for comparing.
pub fn refused(status: u16, code: &str, message: &str) -> (u16, String, String) {
    (status, code.to_owned(), message.to_owned())
}

/// Every file under `dir`, for asserting that nothing was stored.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// An OCI image layout with one image per platform and an index over them.
pub fn write_oci_layout(dir: &std::path::Path, platforms: &[(&str, &str)]) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> String {
        let d = sha256(bytes);
        std::fs::write(blobs.join(&d[7..]), bytes).unwrap();
        d
    };
    let mut manifests = Vec::new();
    for (os, arch) in platforms {
        // A real (uncompressed) tar layer so that docker can unpack the pulled image.
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("platform"), format!("{os}/{arch}\n")).unwrap();
        let tar = src.path().join("layer.tar");
        assert!(
            Command::new("tar")
                .arg("-C")
                .arg(src.path())
                .arg("-cf")
                .arg(&tar)
                .arg("platform")
                .status()
                .unwrap()
                .success()
        );
        let layer = std::fs::read(&tar).unwrap();
        let layer_digest = put(&layer);
        let config = serde_json::json!({"architecture": arch, "os": os, "rootfs": {"type": "layers", "diff_ids": [layer_digest]}, "config": {}});
        let config = serde_json::to_vec(&config).unwrap();
        let config_digest = put(&config);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}]
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let md = put(&manifest);
        manifests.push(serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len(), "platform": {"os": os, "architecture": arch}}));
    }
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})).unwrap();
    let index_digest = put(&index);
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": index_digest, "size": index.len(), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    index_digest
}

/// The notary 0.7 CLI against `server` with its own trust directory, signing as the owner:
/// it asks for the token service's credentials on stdin (once per token), and its keys'
/// passphrases come from the environment.
pub fn notary(server: &Server, trust_dir: &Path, args: &[&str]) -> Output {
    use std::io::Write;
    let mut child = Command::new("notary")
        .arg("-s")
        .arg(format!("https://{}", server.host))
        .arg("--tlscacert")
        .arg(&server.ca)
        .arg("-d")
        .arg(trust_dir)
        .args(args)
        .env("NOTARY_ROOT_PASSPHRASE", "root-pass-123")
        .env("NOTARY_TARGETS_PASSPHRASE", "targets-pass-123")
        .env("NOTARY_SNAPSHOT_PASSPHRASE", "snapshot-pass-123")
        .env("NOTARY_DELEGATION_PASSPHRASE", "delegation-pass-123")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run notary");
    let creds = format!("admin\n{}\n", server.admin_password).repeat(8);
    let _ = child.stdin.take().expect("stdin").write_all(creds.as_bytes());
    child.wait_with_output().expect("notary")
}

/// A docker client logged in to `server` with `wharf login` as `user`.
pub fn logged_in(server: &Server, user: &str, password: &str) -> DockerClient {
    let c = DockerClient::new();
    let out = c.wharf_login(server, user, password);
    assert!(out.status.success(), "login {user}: {}", text(&out));
    c
}

/// `PUT /v2/<repo>/manifests/<reference>` of `body` as `media_type` (must answer 201).
pub fn put_manifest(
    server: &Server,
    token: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: Vec<u8>,
) {
    let r = server
        .http()
        .put(server.url(&format!("/v2/{repo}/manifests/{reference}")))
        .bearer_auth(token)
        .header("content-type", media_type)
        .body(body)
        .send()
        .expect("manifest put");
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
}

/// (actor, action, target, detail) of every audit record, oldest first.
pub fn audit_records(server: &Server) -> Vec<(String, String, String, String)> {
    let v: serde_json::Value = server
        .http()
        .get(server.url("/api/v1/audit?limit=1000"))
        .bearer_auth(server.token(&["registry:admin:*"]))
        .send()
        .expect("audit")
        .json()
        .expect("json");
    let mut out: Vec<_> = v["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (s("actor"), s("action"), s("target"), s("detail"))
        })
        .collect();
    out.reverse();
    out
}

/// The value of the `/metrics` sample whose line starts with `series` (name and labels).
pub fn metric(server: &Server, series: &str) -> u64 {
    let body = server
        .http()
        .get(server.url("/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("body");
    let prefix = format!("{series} ");
    body.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
        .trim()
        .parse()
        .expect("number")
}

/// The signature policy as the admin API holds it (read as the owner).
pub fn signature_policy(server: &Server) -> serde_json::Value {
    server
        .http()
        .get(server.url("/api/v1/signature-policy"))
        .bearer_auth(server.token(&["registry:admin:*"]))
        .send()
        .expect("get policy")
        .json()
        .expect("json")
}
