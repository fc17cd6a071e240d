//! A real one-node Garage cluster (S3-compatible object store) on loopback, one per test
//! process, so S3 code is tested against a real S3 API instead of a mock.
//!
//! The node is started on first use of [`GarageNode::shared`] and each test takes its own
//! bucket and key from [`GarageNode::fresh_bucket`], so tests in one process run in
//! parallel without seeing each other's objects. Statics are never dropped, so a watchdog
//! shell stops the node and removes its directory once the test process is gone.
//!
//! The binary is `$WHARF_GARAGE`, else `/var/cache/wharf-tools/garage/bin/garage`, else
//! `garage` on `PATH`. Without one the tests fail loudly: a skipped S3 test would look
//! like a passing one.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where `scripts/install-garage.sh` installs Garage.
const CACHED_BINARY: &str = "/var/cache/wharf-tools/garage/bin/garage";
/// Garage's region name in the config below; clients must sign with it.
pub const REGION: &str = "garage";
/// How long a fresh node may take to answer its CLI and S3 port.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One running Garage node.
pub struct GarageNode {
    binary: PathBuf,
    config: PathBuf,
    /// `http://127.0.0.1:<port>`, path-style.
    pub endpoint: String,
    /// The node's directory (config, metadata, data, log).
    pub dir: PathBuf,
}

/// A bucket with a key allowed to read, write and own it.
#[derive(Debug, Clone)]
pub struct S3Bucket {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl GarageNode {
    /// The node of this test process, started on first call.
    pub fn shared() -> &'static GarageNode {
        static NODE: OnceLock<GarageNode> = OnceLock::new();
        NODE.get_or_init(|| GarageNode::start().unwrap_or_else(|e| panic!("starting Garage: {e}")))
    }

    /// A new empty bucket and a key for it, unique within this node.
    pub fn fresh_bucket(&self) -> S3Bucket {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "wharf-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let key_name = format!("{name}-key");
        self.cli(&["bucket", "create", &name])
            .unwrap_or_else(|e| panic!("{e}"));
        let key = self
            .cli(&["key", "create", &key_name])
            .unwrap_or_else(|e| panic!("{e}"));
        self.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", &name, "--key", &key_name,
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let field = |label: &str| {
            key.lines()
                .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_owned()))
                .unwrap_or_else(|| panic!("garage key create printed no {label:?}:\n{key}"))
        };
        S3Bucket {
            endpoint: self.endpoint.clone(),
            region: REGION.to_owned(),
            bucket: name,
            access_key_id: field("Key ID:"),
            secret_access_key: field("Secret key:"),
        }
    }

    /// Run the Garage CLI against this node; its stdout, or an error with its output.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        run(&self.binary, &self.config, args)
    }

    fn start() -> Result<GarageNode, String> {
        let binary = find_binary();
        let dir = std::env::temp_dir().join(format!("wharf-garage-{}-{}", std::process::id(), nanos()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let [rpc, s3, admin] = free_ports();
        let config = dir.join("garage.toml");
        std::fs::write(
            &config,
            format!(
                r#"metadata_dir = "{dir}/meta"
data_dir = "{dir}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"
[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
                dir = dir.display(),
                secret = random_hex(32),
            ),
        )
        .map_err(|e| format!("writing {}: {e}", config.display()))?;
        let log = std::fs::File::create(dir.join("garage.log")).map_err(|e| e.to_string())?;
        let server = Command::new(&binary)
            .arg("-c")
            .arg(&config)
            .arg("server")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("running {}: {e}", binary.display()))?;
        watchdog(server.id(), &dir);
        let node = GarageNode {
            binary,
            config,
            endpoint: format!("http://127.0.0.1:{s3}"),
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let id = loop {
            match node.cli(&["node", "id", "-q"]) {
                Ok(out) => break out.trim().split('@').next().unwrap_or_default().to_owned(),
                Err(e) if Instant::now() > deadline => {
                    return Err(format!(
                        "{e}\nserver log: {}",
                        node.dir.join("garage.log").display()
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        // `node id` answers from the key file, possibly before the RPC port listens; the
        // layout change needs RPC, so it is retried until the node takes it.
        loop {
            match node.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &id]) {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => {
                    return Err(format!(
                        "{e}\nserver log: {}",
                        node.dir.join("garage.log").display()
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        node.cli(&["layout", "apply", "--version", "1"])?;
        while TcpStream::connect(("127.0.0.1", s3)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("Garage's S3 port {s3} never opened"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(node)
    }
}

fn run(binary: &Path, config: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(binary)
        .arg("-c")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", binary.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "garage {} failed ({}):\n{stdout}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn find_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("WHARF_GARAGE") {
        return PathBuf::from(p);
    }
    if Path::new(CACHED_BINARY).is_file() {
        return PathBuf::from(CACHED_BINARY);
    }
    if let Some(p) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("garage"))
        .find(|p| p.is_file())
    {
        return p;
    }
    panic!(
        "Garage (S3-compatible store) is needed by the S3 tests but was not found: set \
         WHARF_GARAGE to its binary, or run scripts/install-garage.sh (installs Garage 2.x to \
         {CACHED_BINARY})"
    );
}

/// Three distinct free loopback ports. The listeners are held until all three are
/// chosen, then released for Garage to bind.
fn free_ports() -> [u16; 3] {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("binding a free loopback port"))
        .collect();
    let port = |i: usize| listeners[i].local_addr().expect("local address").port();
    [port(0), port(1), port(2)]
}

/// Stops Garage and removes its directory once process `parent` (this test process) is
/// gone, however it ends.
fn watchdog(server: u32, dir: &Path) {
    let script = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill {server} 2>/dev/null; \
         sleep 2; kill -9 {server} 2>/dev/null; rm -rf '{dir}'",
        parent = std::process::id(),
        dir = dir.display(),
    );
    // The watchdog outlives this process by design; it is not waited for.
    let _ = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("reading /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
