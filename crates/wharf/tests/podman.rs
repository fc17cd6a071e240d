//! podman (Debian's 4.3, rootful, `vfs` storage in a scratch directory) against a real
//! server: login, push, pull, and a multi-platform `podman manifest push --all`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Server, image_tarball, require_tool, text};

/// podman with its own storage, run directory and credentials file.
struct Podman {
    dir: tempfile::TempDir,
    certs: PathBuf,
}

impl Podman {
    fn new(server: &Server) -> Self {
        require_tool("podman");
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            certs: server.cert_dir(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        Command::new("podman")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("REGISTRY_AUTH_FILE", d.join("auth.json"))
            .output()
            .expect("run podman")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(out.status.success(), "podman {args:?}: {}", text(&out));
        text(&out)
    }

    fn certs(&self) -> &str {
        self.certs.to_str().expect("cert dir")
    }

    /// A one-file image from a tarball, for `arch`.
    fn import(&self, reference: &str, arch: &str) {
        let tar = image_tarball(self.dir.path(), arch, &format!("{reference} {arch}"));
        self.ok(&["import", "--arch", arch, path(&tar), reference]);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn podman_logs_in_pushes_pulls_and_pushes_a_multi_platform_list() {
    let server = Server::start();
    let podman = Podman::new(&server);
    let bad = podman.cmd(&[
        "login",
        &server.host,
        "-u",
        "admin",
        "-p",
        "wrong",
        "--cert-dir",
        podman.certs(),
    ]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("invalid username/password"), "{}", text(&bad));
    let out = podman.ok(&[
        "login",
        &server.host,
        "-u",
        "admin",
        "-p",
        &server.admin_password,
        "--cert-dir",
        podman.certs(),
    ]);
    assert!(out.contains("Login Succeeded!"), "{out}");

    let amd = format!("{}/pod/app:v1", server.host);
    podman.import(&amd, "amd64");
    podman.ok(&["push", "--cert-dir", podman.certs(), &amd]);
    podman.ok(&["rmi", &amd]);
    podman.ok(&["pull", "--cert-dir", podman.certs(), &amd]);

    let arm = format!("{}/pod/app:arm", server.host);
    podman.import(&arm, "arm64");
    let list = format!("{}/pod/multi:v1", server.host);
    podman.ok(&["manifest", "create", &list]);
    podman.ok(&["manifest", "add", &list, &format!("containers-storage:{amd}")]);
    podman.ok(&[
        "manifest",
        "add",
        "--arch",
        "arm64",
        &list,
        &format!("containers-storage:{arm}"),
    ]);
    podman.ok(&[
        "manifest",
        "push",
        "--all",
        "--cert-dir",
        podman.certs(),
        &list,
        &format!("docker://{list}"),
    ]);

    // What the registry holds: an index naming both platforms, each manifest pullable.
    let token = server.token(&["repository:pod/multi:pull"]);
    let http = server.http();
    let index: serde_json::Value = http
        .get(server.url("/v2/pod/multi/manifests/v1"))
        .bearer_auth(&token)
        .header(
            "accept",
            "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json",
        )
        .send()
        .expect("index")
        .json()
        .expect("json");
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            m["platform"]["architecture"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"], "{index}");
    for m in index["manifests"].as_array().expect("manifests") {
        let digest = m["digest"].as_str().expect("digest");
        let r = http
            .get(server.url(&format!("/v2/pod/multi/manifests/{digest}")))
            .bearer_auth(&token)
            .header("accept", m["mediaType"].as_str().expect("media type"))
            .send()
            .expect("child");
        assert_eq!(r.status(), 200, "{digest}");
    }
    // podman pulls the list back for its own platform.
    podman.ok(&["rmi", "--all", "--force"]);
    podman.ok(&["pull", "--cert-dir", podman.certs(), &list]);
}
