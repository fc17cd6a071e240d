//! What one client can hold of a real server: slow-headers connections are capped per
//! source address and closed after the header timeout, and meanwhile a normal
//! `docker pull` goes through.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{DockerClient, Server, text};

const PYTHON: &str = "/usr/bin/python3";
/// `listener::HEADER_TIMEOUT` (20 s), plus slack for a busy machine.
const HEADER_TIMEOUT_SECONDS: f64 = 20.0;

#[test]
fn slow_header_clients_are_capped_and_cut_while_docker_pull_works() {
    let server = Server::start();
    let docker = DockerClient::new();
    let out = docker.wharf_login(&server, "admin", &server.admin_password);
    assert!(out.status.success(), "{}", text(&out));
    let image = format!("{}/team/app:v1", server.host);
    docker.import_image(&image);
    docker.ok(&["push", &image]);
    docker.ok(&["rmi", &image]);

    // 1,000 slow connections from four addresses (under the per-address cap), and 300
    // from one greedy address (over it: 256 admitted, 44 closed at once).
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/slow_clients.py");
    let mut slow = Command::new(PYTHON)
        .arg(tool)
        .arg(server.port.to_string())
        .arg(&server.ca)
        .args(["--from", "127.0.0.2:250", "--from", "127.0.0.3:250"])
        .args(["--from", "127.0.0.4:250", "--from", "127.0.0.5:250"])
        .args(["--from", "127.0.0.6:300", "--watch", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run slow_clients.py");
    let mut lines = BufReader::new(slow.stdout.take().expect("stdout")).lines();
    let opened: serde_json::Value =
        serde_json::from_str(&lines.next().expect("first report").expect("read")).expect("json");
    for addr in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"] {
        assert_eq!(opened["opened"][addr], 250, "{opened}");
        assert_eq!(opened["refused"][addr], 0, "{opened}");
    }
    assert_eq!(opened["opened"]["127.0.0.6"], 256, "{opened}");
    assert_eq!(opened["refused"]["127.0.0.6"], 44, "{opened}");

    // While 1,256 slow connections are held, a normal client is served.
    let pulled = docker.cmd(&["pull", &image], &[]);
    assert!(
        pulled.status.success(),
        "pull during the flood: {}\n{}",
        text(&pulled),
        server.log()
    );

    // Every slow connection is closed by the server after the header timeout.
    let closed: serde_json::Value =
        serde_json::from_str(&lines.next().expect("second report").expect("read")).expect("json");
    assert_eq!(closed["still_open"], 0, "{closed}");
    let after: Vec<f64> = closed["closed_after"]
        .as_array()
        .expect("closed_after")
        .iter()
        .map(|v| v.as_f64().expect("seconds"))
        .collect();
    assert_eq!(after.len(), 1256);
    let longest = after.iter().copied().fold(0.0, f64::max);
    assert!(
        longest <= HEADER_TIMEOUT_SECONDS + 10.0,
        "closed after up to {longest} s: {after:?}"
    );
    assert!(slow.wait().expect("wait").success());
}
