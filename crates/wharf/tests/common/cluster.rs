//! A scale-out deployment for tests, every part real: `n` `wharf serve` replicas on one
//! throw-away PostgreSQL database and one Garage bucket (`wharf-testbed`), behind HAProxy
//! (TCP mode, TLS passed through, round-robin, health-checked on `/readyz`). Clients use
//! the balancer's name, `localhost:<port>`; each replica can also be reached directly.
//!
//! The replicas share what an operator would share: the key-encryption key (so keys one
//! replica sealed open on the others), one TLS certificate (replica 1 generates it for
//! the balancer's name; the others are configured with it), and the owner's password.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wharf_testbed::garage::{GarageNode, S3Bucket};
use wharf_testbed::postgres::PostgresCluster;

use super::{Server, free_port, require_tool};

pub struct Cluster {
    pub replicas: Vec<Server>,
    /// `localhost:<balancer port>`: the one name clients use.
    pub host: String,
    pub ca: PathBuf,
    pub database_url: String,
    pub bucket: S3Bucket,
    balancer: Child,
    dir: tempfile::TempDir,
}

/// The environment every replica of one deployment shares.
pub fn shared_backend_env(database_url: &str, bucket: &S3Bucket) -> Vec<(String, String)> {
    [
        ("WHARF_DATABASE_URL", database_url),
        ("WHARF_STORAGE_BACKEND", "s3"),
        ("WHARF_STORAGE_S3_ENDPOINT", &bucket.endpoint),
        ("WHARF_STORAGE_S3_REGION", &bucket.region),
        ("WHARF_STORAGE_S3_BUCKET", &bucket.bucket),
        ("WHARF_STORAGE_S3_PATH_STYLE", "true"),
        ("WHARF_STORAGE_S3_ACCESS_KEY_ID", &bucket.access_key_id),
        ("WHARF_STORAGE_S3_SECRET_ACCESS_KEY", &bucket.secret_access_key),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A fresh database and bucket: what `WHARF_TEST_BACKEND=postgres-s3` gives every server.
pub fn fresh_backend_env() -> Vec<(String, String)> {
    let url = PostgresCluster::shared().fresh_database();
    let bucket = GarageNode::shared().fresh_bucket();
    shared_backend_env(&url, &bucket)
}

fn random_kek() -> String {
    let out = Command::new("openssl")
        .args(["rand", "-base64", "32"])
        .output()
        .expect("openssl rand");
    assert!(out.status.success(), "openssl rand failed");
    String::from_utf8(out.stdout).expect("base64").trim().to_owned()
}

impl Cluster {
    pub fn start(n: usize) -> Self {
        Self::start_with(n, &[])
    }

    /// `n` replicas with `extra` settings on top of the shared ones.
    pub fn start_with(n: usize, extra: &[(&str, &str)]) -> Self {
        require_tool("haproxy");
        assert!(n >= 1);
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = PostgresCluster::shared().fresh_database();
        let bucket = GarageNode::shared().fresh_bucket();
        let lb_port = free_port();
        let host = format!("localhost:{lb_port}");
        let mut env = shared_backend_env(&database_url, &bucket);
        env.push(("WHARF_SECURITY_KEY_ENCRYPTION_KEY".into(), random_kek()));
        env.push(("WHARF_PUBLIC_HOSTS".into(), host.clone()));
        env.push(("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP".into(), "true".into()));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let first = Server::start_with_owned(env.clone());
        let cert = first.data.join("tls/server.crt");
        let key = first.data.join("private/tls/server.key");
        let ca = first.ca.clone();
        let mut replicas = vec![first];
        let mut rest = env.clone();
        rest.push(("WHARF_TLS_CERT".into(), cert.display().to_string()));
        rest.push(("WHARF_TLS_KEY".into(), key.display().to_string()));
        for _ in 1..n {
            let mut replica = Server::start_with_owned(rest.clone());
            // Its certificate is replica 1's, issued by replica 1's CA.
            replica.ca = ca.clone();
            replicas.push(replica);
        }
        let balancer = start_haproxy(dir.path(), lb_port, &replicas);
        let cluster = Cluster {
            replicas,
            host,
            ca,
            database_url,
            bucket,
            balancer,
            dir,
        };
        cluster.wait_until_balanced();
        cluster
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.host)
    }

    /// An HTTPS client trusting the deployment's CA.
    pub fn http(&self) -> reqwest::blocking::Client {
        self.replicas[0].http()
    }

    /// HAProxy marks a server up after its first passing `/readyz` check; until then the
    /// balancer would refuse connections.
    fn wait_until_balanced(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = self.http();
        loop {
            let ups = (0..self.replicas.len() * 2)
                .filter(|_| {
                    client
                        .get(self.url("/healthz"))
                        .send()
                        .is_ok_and(|r| r.status().is_success())
                })
                .count();
            if ups == self.replicas.len() * 2 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the balancer did not reach every replica; haproxy log:\n{}",
                std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.balancer.kill();
        let _ = self.balancer.wait();
    }
}

fn start_haproxy(dir: &Path, port: u16, replicas: &[Server]) -> Child {
    let mut servers = String::new();
    for (i, r) in replicas.iter().enumerate() {
        // TLS passes through; the check speaks TLS itself to ask `/readyz`.
        servers.push_str(&format!(
            "    server r{i} 127.0.0.1:{} check check-ssl verify none inter 500ms fall 2 rise 1\n",
            r.port
        ));
    }
    let config = format!(
        "global\n    maxconn 2048\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 300s\n    timeout server 300s\n    retries 3\n    option redispatch\n\
         frontend wharf\n    bind 127.0.0.1:{port}\n    default_backend replicas\n\
         backend replicas\n    balance roundrobin\n    option httpchk GET /readyz\n    http-check expect status 200\n{servers}"
    );
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, config).expect("haproxy.cfg");
    let log = std::fs::File::create(dir.join("haproxy.log")).expect("haproxy.log");
    Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&file)
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start haproxy")
}
