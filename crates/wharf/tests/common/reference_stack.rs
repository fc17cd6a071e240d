//! Debian's reference stack for tests that copy from another registry: CNCF Distribution
//! (`docker-registry`, 2.8) and `notary-server` 0.7, each on a free loopback port over
//! TLS with a CA made here, notary keeping its data in memory and its snapshot/timestamp
//! keys itself (the "local" trust service). Docker's daemon trusts the CA through
//! `/etc/docker/certs.d/localhost:PORT/ca.crt` (removed again on drop); the docker CLI skips
//! certificate checks of a trust server whose registry is a loopback name, and wharf gets
//! the CA with `--source-ca`. Also [`StaticTrustServer`]: files served over HTTPS as a
//! notary server serves them, to hand a client trust data no notary server would take.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, require_tool};

pub struct ReferenceStack {
    /// `localhost:PORT` of the registry.
    pub registry: String,
    /// `https://localhost:PORT` of the notary server.
    pub trust_url: String,
    /// The CA both certificates chain to.
    pub ca: PathBuf,
    pub dir: tempfile::TempDir,
    children: Vec<Child>,
    certs_d: PathBuf,
}

/// A CA and a certificate for `localhost` / 127.0.0.1 signed by it, in `dir`:
/// `ca.crt`, `server.crt`, `server.key`.
pub fn make_tls(dir: &Path) {
    require_tool("openssl");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=wharf-test-reference-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(dir.join("san.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        .expect("write san.cnf");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
    ]);
}

/// Wait until `url` answers over TLS with `ca` (any status), or fail with `log`.
fn wait_for(url: &str, ca: &Path, log: &Path) {
    let pem = std::fs::read(ca).expect("ca");
    let http = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if http.get(url).send().is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{url} did not come up; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

impl ReferenceStack {
    pub fn start() -> Self {
        Self::start_with_login(None)
    }

    /// The registry asks for `user` and `password` (basic authentication, an htpasswd
    /// file with a bcrypt hash as Distribution requires); notary still asks for nothing.
    pub fn start_with_password(user: &str, password: &str) -> Self {
        Self::start_with_login(Some((user, password)))
    }

    fn start_with_login(login: Option<(&str, &str)>) -> Self {
        require_tool("docker-registry");
        require_tool("notary-server");
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        make_tls(d);
        let (registry_port, trust_port) = (free_port(), free_port());
        let (cert, key) = (d.join("server.crt"), d.join("server.key"));
        let mut registry_yml = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{registry_port}\n  tls:\n    certificate: {}\n    key: {}\n",
            d.join("registry-data").display(),
            cert.display(),
            key.display()
        );
        if let Some((user, password)) = login {
            let out = Command::new("/usr/bin/python3")
                .args([
                    "-W",
                    "ignore",
                    "-c",
                    "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
                    password,
                ])
                .output()
                .expect("python3 for a bcrypt hash");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let hash = String::from_utf8(out.stdout).unwrap();
            std::fs::write(d.join("htpasswd"), format!("{user}:{}\n", hash.trim())).expect("htpasswd");
            registry_yml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: wharf-test\n    path: {}\n",
                d.join("htpasswd").display()
            ));
        }
        std::fs::write(d.join("registry.yml"), registry_yml).expect("registry.yml");
        std::fs::write(
            d.join("notary-server.json"),
            serde_json::json!({
                "server": {
                    "http_addr": format!("127.0.0.1:{trust_port}"),
                    "tls_key_file": key,
                    "tls_cert_file": cert,
                },
                "trust_service": {"type": "local", "hostname": "", "port": "", "key_algorithm": "ecdsa"},
                "logging": {"level": "warn"},
                "storage": {"backend": "memory"},
            })
            .to_string(),
        )
        .expect("notary-server.json");
        let spawn = |program: &str, args: &[&Path], log: &str| {
            let log = std::fs::File::create(d.join(log)).expect("log");
            Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start {program}: {e}"))
        };
        let registry = spawn(
            "docker-registry",
            &[Path::new("serve"), &d.join("registry.yml")],
            "registry.log",
        );
        let notary = spawn(
            "notary-server",
            &[Path::new("-config"), &d.join("notary-server.json")],
            "notary-server.log",
        );
        let ca = d.join("ca.crt");
        // Docker's daemon pulls and pushes with this CA.
        let certs_d = PathBuf::from(format!("/etc/docker/certs.d/localhost:{registry_port}"));
        std::fs::create_dir_all(&certs_d).expect("certs.d (tests run as root)");
        std::fs::copy(&ca, certs_d.join("ca.crt")).expect("certs.d ca.crt");
        let stack = ReferenceStack {
            registry: format!("localhost:{registry_port}"),
            trust_url: format!("https://localhost:{trust_port}"),
            ca: ca.clone(),
            children: vec![registry, notary],
            certs_d,
            dir,
        };
        wait_for(
            &format!("https://{}/v2/", stack.registry),
            &ca,
            &stack.dir.path().join("registry.log"),
        );
        wait_for(
            &format!("{}/_notary_server/health", stack.trust_url),
            &ca,
            &stack.dir.path().join("notary-server.log"),
        );
        stack
    }

    /// An HTTPS client trusting the stack's CA.
    pub fn http(&self) -> reqwest::blocking::Client {
        let pem = std::fs::read(&self.ca).expect("ca");
        reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client")
    }

    /// The current (`timestamp.json`, `root.json`…) trust file `file` of `gun`.
    pub fn trust_file(&self, gun: &str, file: &str) -> Vec<u8> {
        let r = self
            .http()
            .get(format!("{}/v2/{gun}/_trust/tuf/{file}", self.trust_url))
            .send()
            .expect("trust file");
        assert_eq!(r.status(), 200, "{file} of {gun}");
        r.bytes().expect("body").to_vec()
    }
}

impl Drop for ReferenceStack {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.certs_d);
    }
}

/// Files under `root` served over HTTPS (Python's `http.server`), so that a client reading
/// `/v2/<gun>/_trust/tuf/<file>` gets them as a notary server would serve them.
pub struct StaticTrustServer {
    /// `https://localhost:PORT`.
    pub url: String,
    child: Child,
}

impl StaticTrustServer {
    /// Serve `root` with the certificate of `tls` (a directory [`make_tls`] filled).
    pub fn start(root: &Path, tls: &Path) -> Self {
        let port = free_port();
        let script = "import http.server, ssl, sys\n\
            port, root, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]\n\
            class H(http.server.SimpleHTTPRequestHandler):\n\
            \x20   def __init__(self, *a, **k): super().__init__(*a, directory=root, **k)\n\
            \x20   def log_message(self, *a): pass\n\
            s = http.server.ThreadingHTTPServer(('127.0.0.1', port), H)\n\
            c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain(cert, key)\n\
            s.socket = c.wrap_socket(s.socket, server_side=True)\n\
            s.serve_forever()\n";
        let log = root.with_extension("log");
        let child = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(script)
            .arg(port.to_string())
            .arg(root)
            .arg(tls.join("server.crt"))
            .arg(tls.join("server.key"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start python3 https server");
        let url = format!("https://localhost:{port}");
        wait_for(&format!("{url}/"), &tls.join("ca.crt"), &log);
        StaticTrustServer { url, child }
    }
}

impl Drop for StaticTrustServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
