//! A real PostgreSQL server for tests: one cluster per test process (`PostgresCluster::shared`),
//! one fresh database per test (`fresh_database`), so tests never see each other's rows.
//!
//! The cluster lives in a temporary directory and is stopped and deleted by a small watchdog
//! shell once the test process is gone: statics are never dropped, so nothing in this process
//! could do it. A cluster that cannot start panics with the binary and the log's tail; tests
//! that need PostgreSQL never skip silently.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The superuser every test connects as (trust authentication on 127.0.0.1: no password).
pub const USER: &str = "wharf";

/// Environment variable naming a directory with `initdb`, `pg_ctl` and `createdb`, for
/// machines where they are neither in Debian's place nor on PATH.
pub const BIN_ENV: &str = "WHARF_POSTGRES_BIN";

/// Server settings for a disposable cluster. Durability is pointless for data that is
/// deleted when the tests end, and fsyncs would dominate the suite's time on a shared disk.
const SERVER_SETTINGS: &[&str] = &[
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "listen_addresses=127.0.0.1",
    "max_connections=200",
];

const START_ATTEMPTS: usize = 5;

/// A running test cluster on 127.0.0.1.
pub struct PostgresCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    next_database: AtomicU64,
}

impl PostgresCluster {
    /// The cluster of this test process, started on first use.
    pub fn shared() -> &'static PostgresCluster {
        // The outcome is kept, failure included: every test that asks after a failed start
        // gets the same message instead of starting another cluster.
        static SHARED: OnceLock<Result<PostgresCluster, String>> = OnceLock::new();
        match SHARED.get_or_init(PostgresCluster::start) {
            Ok(cluster) => cluster,
            Err(message) => panic!("test PostgreSQL cluster: {message}"),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` in this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// A newly created, uniquely named, empty database; returns its URL.
    pub fn fresh_database(&self) -> String {
        let n = self.next_database.fetch_add(1, Ordering::Relaxed);
        let name = format!("wharf_{}_{n}", std::process::id());
        let port = self.port.to_string();
        let out = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &port, "-U", USER, &name])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.join("createdb").display()));
        assert!(
            out.status.success(),
            "createdb {name} failed ({}): {}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            log_tail(&self.dir)
        );
        self.url(&name)
    }

    /// Take the database a URL of this cluster names away, as an outage would: its open
    /// connections are terminated and new ones refused, until `unblock_database`.
    pub fn block_database(&self, url: &str) {
        let name = database_of(url);
        self.sql(&format!(
            "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
        ));
    }

    pub fn unblock_database(&self, url: &str) {
        self.sql(&format!(
            "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS true;",
            database_of(url)
        ));
    }

    /// Run SQL as the cluster's superuser in the `postgres` database.
    fn sql(&self, sql: &str) {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                "postgres",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.join("psql").display()));
        assert!(
            out.status.success(),
            "psql failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start() -> Result<PostgresCluster, String> {
        let bin = bin_dir()?;
        let as_root = running_as_root();
        let dir = cluster_dir(as_root)?;
        // The watchdog exists before anything else, so even a failed start leaves nothing.
        spawn_watchdog(&bin, &dir, as_root)?;
        let data = dir.join("data");
        // An ICU default collation that does not sort by bytes: a query that forgets
        // COLLATE "C" then fails the ordering contracts instead of passing by luck.
        run(
            server_command(as_root, &bin.join("initdb"), &dir)
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    USER,
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ])
                .args(["--locale-provider=icu", "--icu-locale=en-US"]),
            &dir,
        )?;
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let mut options = format!("-p {port} -k {}", dir.display());
            for s in SERVER_SETTINGS {
                options.push_str(" -c ");
                options.push_str(s);
            }
            let mut start = server_command(as_root, &bin.join("pg_ctl"), &dir);
            start
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("log"))
                .args(["-w", "-t", "60", "-o", &options, "start"])
                // Its own process group: a Ctrl-C on the test run must not kill the server
                // out from under the watchdog, which stops it properly.
                .process_group(0);
            match run(&mut start, &dir) {
                Ok(()) => {
                    return Ok(PostgresCluster {
                        bin,
                        dir,
                        port,
                        next_database: AtomicU64::new(0),
                    });
                }
                // Most likely another process took the port between our probe and the
                // server's bind: try another.
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }
}

/// The newest installed server: `$WHARF_POSTGRES_BIN`, Debian's `/usr/lib/postgresql/N/bin`,
/// or PATH.
fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os(BIN_ENV) {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").is_file() {
            Ok(dir)
        } else {
            Err(format!("{BIN_ENV}={} has no initdb", dir.display()))
        };
    }
    let debian = Path::new("/usr/lib/postgresql");
    let newest = fs::read_dir(debian).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let version: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .max_by_key(|(version, _)| *version)
            .map(|(_, bin)| bin)
    });
    if let Some(bin) = newest {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| dir.join("initdb").is_file())
        .ok_or_else(|| {
            format!(
                "no PostgreSQL server binaries (initdb) in {}/*/bin or on PATH: install the \
                 postgresql package (scripts/install-deps.sh) or set {BIN_ENV}",
                debian.display()
            )
        })
}

/// The database part of a URL made by `url` (names are `wharf_<pid>_<n>`: no quoting needed).
fn database_of(url: &str) -> &str {
    let name = url.rsplit('/').next().unwrap_or_default();
    assert!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "not a database URL of this cluster: {url}"
    );
    name
}

fn running_as_root() -> bool {
    // /proc/self belongs to the process's effective user.
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The cluster's directory. `initdb` refuses to run as root, so as root the server runs as
/// `postgres`, which must own the directory and be able to reach it.
fn cluster_dir(as_root: bool) -> Result<PathBuf, String> {
    let mut base = std::env::temp_dir();
    if as_root && !traversable_by_all(&base) {
        base = PathBuf::from("/tmp");
    }
    let dir = tempfile::Builder::new()
        .prefix("wharf-pg-")
        .tempdir_in(&base)
        .map_err(|e| format!("cannot create a directory in {}: {e}", base.display()))?
        // Deleted by the watchdog, after the server has stopped.
        .keep();
    if as_root {
        let out = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run chown: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "chown postgres {} failed (is there a postgres user?): {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(dir)
}

fn traversable_by_all(dir: &Path) -> bool {
    dir.ancestors()
        .all(|d| fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// `program` run as the server's user: ourselves, or `postgres` when we are root.
fn server_command(as_root: bool, program: &Path, dir: &Path) -> Command {
    let mut cmd = if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    // A working directory the server's user can enter (ours may be /root/...).
    cmd.current_dir(dir).stdin(Stdio::null());
    cmd
}

/// Waits for this test process to end, then stops the server and deletes its directory.
fn spawn_watchdog(bin: &Path, dir: &Path, as_root: bool) -> Result<(), String> {
    let stop = if as_root {
        r#"runuser -u postgres -- "$3" -D "$2/data" -m immediate stop"#
    } else {
        r#""$3" -D "$2/data" -m immediate stop"#
    };
    let script =
        format!(r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf "$2""#);
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("wharf-pg-watchdog")
        .arg(std::process::id().to_string())
        .arg(dir)
        .arg(bin.join("pg_ctl"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Out of the test run's process group, so a Ctrl-C does not skip the clean-up.
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| format!("cannot start the clean-up watchdog (sh): {e}"))
}

fn run(cmd: &mut Command, dir: &Path) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{shown} failed ({}):\n{}{}\nserver log ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        dir.join("log").display(),
        log_tail(dir)
    ))
}

fn log_tail(dir: &Path) -> String {
    let log = fs::read_to_string(dir.join("log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn free_port() -> Result<u16, String> {
    // Bound and dropped at once: the server binds it a moment later (start retries if
    // someone else was quicker).
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_databases_are_distinct_and_reachable() {
        let cluster = PostgresCluster::shared();
        let (a, b) = (cluster.fresh_database(), cluster.fresh_database());
        assert_ne!(a, b);
        let port = cluster.port().to_string();
        let out = Command::new(cluster.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &port, "-U", USER, "-XAtc", "SHOW fsync"])
            .arg(b.rsplit('/').next().unwrap())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "off");
    }
}
