//! The registry with stock clients: docker (login, push, pull by tag and digest, deep
//! names, concurrent pushers) and skopeo (docker and oci transports, multi-platform --all).

mod common;

use std::process::Command;

use common::{DockerClient, Server, pushed_digest, require_tool, sha256, write_oci_layout};
use serde_json::json;

#[test]
fn wharf_login_then_docker_push_and_pull_by_tag_and_digest_with_a_deep_name() {
    let server = Server::start();
    let docker = DockerClient::new();
    let login = docker.wharf_login(&server, "admin", &server.admin_password);
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let config = std::fs::read_to_string(docker.config.path().join("config.json")).unwrap();
    assert!(config.contains("\"identitytoken\": \"wharf_rt_"), "{config}");
    assert!(
        !config.contains(&server.admin_password),
        "the password must not be stored"
    );

    let image = format!("{}/a/b/c/d/e/f/g/h/i:v1", server.host);
    docker.import_image(&image);
    let digest = pushed_digest(&docker.ok(&["push", &image]));
    docker.ok(&["rmi", "-f", &image]);
    let pulled = docker.ok(&["pull", &image]);
    assert!(pulled.contains(&digest), "{pulled}");
    let by_digest = format!("{}/a/b/c/d/e/f/g/h/i@{digest}", server.host);
    docker.ok(&["rmi", "-f", &image]);
    docker.ok(&["pull", &by_digest]);
    let inspect = docker.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &by_digest,
    ]);
    assert!(inspect.contains(&digest), "{inspect}");
}

#[test]
fn docker_login_with_a_password_and_wrong_password_is_refused() {
    let server = Server::start();
    let docker = DockerClient::new();
    let bad = docker.cmd(&["login", &server.host, "-u", "admin", "-p", "wrong"], &[]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("invalid username or password") || err.contains("unauthorized"),
        "{err}"
    );
    let good = docker.cmd(
        &["login", &server.host, "-u", "admin", "-p", &server.admin_password],
        &[],
    );
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    let image = format!("{}/team/app:1.0", server.host);
    docker.import_image(&image);
    docker.ok(&["push", &image]);
    // Anonymous docker (no login) cannot pull.
    let anon = DockerClient::new();
    let out = anon.cmd(&["pull", &image], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "{err}"
    );
}

#[test]
fn many_concurrent_docker_pushers_to_one_repository_end_consistent() {
    let server = Server::start();
    let docker = DockerClient::new();
    assert!(
        docker
            .wharf_login(&server, "admin", &server.admin_password)
            .status
            .success()
    );
    let images: Vec<String> = (0..4)
        .map(|i| format!("{}/shared/repo:t{i}", server.host))
        .collect();
    for img in &images {
        docker.import_image(img);
    }
    // Four pushes in parallel, plus the same tag pushed twice at once.
    let digests: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = images
            .iter()
            .map(|img| s.spawn(|| pushed_digest(&docker.ok(&["push", img]))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let http = server.http();
    let token = server.token(&["repository:shared/repo:pull"]);
    let tags: serde_json::Value = http
        .get(server.url("/v2/shared/repo/tags/list"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(tags["tags"], json!(["t0", "t1", "t2", "t3"]));
    for (i, d) in digests.iter().enumerate() {
        let resp = http
            .head(server.url(&format!("/v2/shared/repo/manifests/t{i}")))
            .bearer_auth(&token)
            .header("accept", "application/vnd.docker.distribution.manifest.v2+json")
            .send()
            .unwrap();
        assert_eq!(resp.headers()["docker-content-digest"].to_str().unwrap(), d);
    }
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo").args(args).output().expect("run skopeo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "skopeo {args:?} failed:\n{text}");
    text
}

#[test]
fn skopeo_copies_multi_platform_images_in_and_out_with_both_transports() {
    require_tool("skopeo");
    let server = Server::start();
    let certs = server.cert_dir();
    let certs = certs.to_str().unwrap();
    let creds = format!("admin:{}", server.admin_password);
    let layout = server.scratch("layout");
    let index_digest = write_oci_layout(&layout, &[("linux", "amd64"), ("linux", "arm64")]);
    let ours: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(&index_digest[7..])).unwrap())
            .unwrap();
    let children = |index: &serde_json::Value| -> Vec<String> {
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap().to_owned())
            .collect()
    };
    let src = format!("oci:{}:v1", layout.display());
    let dest = format!("docker://{}/multi/arch:v1", server.host);
    skopeo(&[
        "copy",
        "--all",
        "--dest-cert-dir",
        certs,
        "--dest-creds",
        &creds,
        &src,
        &dest,
    ]);
    // skopeo compresses the uncompressed layers on the way in (so manifests change); the
    // registry must hold both platforms, and from here on copies keep every digest.
    let served = skopeo(&["inspect", "--raw", "--cert-dir", certs, "--creds", &creds, &dest]);
    let served_index: serde_json::Value = serde_json::from_str(&served).unwrap();
    let platforms: Vec<&str> = served_index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);
    assert_eq!(children(&ours).len(), 2);
    let served_digest = sha256(served.trim_end().as_bytes());
    // Registry to registry over the docker transport, then back out to an OCI layout.
    let copy = format!("docker://{}/multi/copy:v1", server.host);
    skopeo(&[
        "copy",
        "--all",
        "--src-cert-dir",
        certs,
        "--src-creds",
        &creds,
        "--dest-cert-dir",
        certs,
        "--dest-creds",
        &creds,
        &dest,
        &copy,
    ]);
    let out_dir = server.scratch("out");
    let out = format!("oci:{}:v1", out_dir.display());
    skopeo(&[
        "copy",
        "--all",
        "--src-cert-dir",
        certs,
        "--src-creds",
        &creds,
        &copy,
        &out,
    ]);
    let top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(top["manifests"][0]["digest"], json!(served_digest));
    let out_index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out_dir.join("blobs/sha256").join(&served_digest[7..])).unwrap(),
    )
    .unwrap();
    assert_eq!(children(&out_index), children(&served_index));
    // docker picks its own platform from the index.
    let docker = DockerClient::new();
    assert!(
        docker
            .wharf_login(&server, "admin", &server.admin_password)
            .status
            .success()
    );
    let image = format!("{}/multi/arch:v1", server.host);
    docker.ok(&["pull", &image]);
    let arch = docker.ok(&["image", "inspect", "--format", "{{.Architecture}}", &image]);
    assert_eq!(arch.trim(), "amd64");
}

/// The README's client commands, character for character (the test checks they are
/// still in README.md), run by `sh` in a directory whose `wharf-data` is the server's
/// data directory, with 5000 replaced by the server's port. `sudo` is a no-op where
/// there is none (tests run as root).
struct Readme {
    work: std::path::PathBuf,
    docker_config: std::path::PathBuf,
    port: u16,
}

impl Readme {
    const TEXT: &str = include_str!("../../../README.md");

    /// `line` as README.md has it, with `fill` (placeholder, value) put in, `env` set
    /// and `stdin` typed in.
    fn run(
        &self,
        line: &str,
        fill: &[(&str, &str)],
        env: &[(&str, &str)],
        stdin: &str,
    ) -> std::process::Output {
        use std::io::Write;
        assert!(Self::TEXT.contains(line), "not in README.md: {line}");
        let mut line = line.replace("5000", &self.port.to_string());
        for (placeholder, value) in fill {
            line = line.replace(placeholder, value);
        }
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_wharf"))
            .parent()
            .unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "command -v sudo >/dev/null || sudo() {{ \"$@\"; }}\nset -e\n{line}"
            ))
            .current_dir(&self.work)
            .env("PATH", path)
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("WHARF_REGISTRY")
            .env_remove("WHARF_CA_FILE")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run sh");
        // A command that reads no input may have exited already.
        let _ = child.stdin.take().expect("stdin").write_all(stdin.as_bytes());
        child.wait_with_output().expect("wait for sh")
    }

    fn ok(&self, line: &str) -> String {
        self.ok_with(line, &[], &[], "")
    }

    fn ok_with(&self, line: &str, fill: &[(&str, &str)], env: &[(&str, &str)], stdin: &str) -> String {
        let out = self.run(line, fill, env, stdin);
        let text = common::text(&out);
        assert!(out.status.success(), "README command failed: {line}\n{text}");
        text
    }
}

/// Removes the docker `certs.d` entry the README has the user create for this port.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_readme_commands_work_with_the_data_directory_as_the_server_left_it() {
    require_tool("skopeo");
    let server = Server::start_with_generated_password();
    let docker = DockerClient::new();
    let work = server.scratch("work");
    std::os::unix::fs::symlink(&server.data, work.join("wharf-data")).unwrap();
    let readme = Readme {
        work: work.clone(),
        docker_config: docker.config.path().to_path_buf(),
        port: server.port,
    };
    // The folder clients are pointed at holds certificates only: skopeo, podman and
    // docker's certs.d read a `*.key` there as a client key and fail without its pair.
    let mut public: Vec<String> = std::fs::read_dir(server.data.join("tls"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    public.sort();
    assert_eq!(public, ["ca.crt", "server.crt"]);

    let _certs_d = RemoveOnDrop(format!("/etc/docker/certs.d/localhost:{}", server.port).into());
    readme.ok("sudo mkdir -p /etc/docker/certs.d/localhost:5000");
    readme.ok("sudo cp wharf-data/tls/ca.crt /etc/docker/certs.d/localhost:5000/ca.crt");
    readme.ok(
        "cat wharf-data/initial-admin-password | \\\n  wharf login localhost:5000 -u admin --password-stdin --ca-file wharf-data/tls/ca.crt",
    );

    // In place of `docker tag alpine:latest …`: no image is pulled from the internet here.
    docker.import_image(&format!("{}/team/app:v1", server.host));
    let pushed = readme.ok("docker push localhost:5000/team/app:v1");
    let digest = pushed_digest(&pushed);
    readme.ok("docker pull localhost:5000/team/app:v1");
    readme.ok_with(
        "docker pull localhost:5000/team/app@sha256:<digest printed by push>",
        &[("sha256:<digest printed by push>", &digest)],
        &[],
        "",
    );

    // The multi-platform copy that failed with "missing client certificate ca.cert for
    // key ca.key" while the keys lived in tls/; credentials come from `wharf login`.
    let index_digest = write_oci_layout(&work.join("layout"), &[("linux", "amd64"), ("linux", "arm64")]);
    readme.ok("skopeo copy --all --dest-cert-dir wharf-data/tls oci:./layout:v1 docker://localhost:5000/team/multi:v1");
    let creds = format!("admin:{}", server.admin_password);
    let dest = format!("docker://{}/team/multi:v1", server.host);
    let cert_dir = server.data.join("tls");
    let served = skopeo(&[
        "inspect",
        "--raw",
        "--cert-dir",
        cert_dir.to_str().unwrap(),
        "--creds",
        &creds,
        &dest,
    ]);
    let served: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(
        served["manifests"].as_array().unwrap().len(),
        2,
        "{served} (from {index_digest})"
    );
    // The control: the same folder with a key beside the CA, as earlier versions left it.
    let old_layout = server.scratch("old-tls");
    std::fs::copy(cert_dir.join("ca.crt"), old_layout.join("ca.crt")).unwrap();
    std::fs::copy(server.data.join("private/tls/ca.key"), old_layout.join("ca.key")).unwrap();
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--cert-dir",
            old_layout.to_str().unwrap(),
            "--creds",
            &creds,
            &dest,
        ])
        .output()
        .unwrap();
    let err = common::text(&out);
    assert!(
        !out.status.success() && err.contains("missing client certificate ca.cert for key ca.key"),
        "{err}"
    );

    // Content trust: a signed push, then notary pointed at the CA in the same folder.
    readme.ok("wharf content-trust enable");
    let dct = [
        ("DOCKER_CONTENT_TRUST", "1"),
        ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123"),
        ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-123"),
    ];
    let pushed = readme.ok_with("docker push localhost:5000/team/app:v1", &[], &dct, "");
    assert!(pushed.contains("Successfully signed"), "{pushed}");
    readme.ok_with("docker pull localhost:5000/team/app:v1", &[], &dct, "");
    let inspect = readme.ok("docker trust inspect --pretty localhost:5000/team/app");
    assert!(inspect.contains("v1"), "{inspect}");
    // notary asks for the registry credentials on its terminal, once per token.
    let creds = format!("admin\n{}\n", server.admin_password).repeat(8);
    readme.ok_with(
        "notary -s https://localhost:5000 --tlscacert wharf-data/tls/ca.crt -d ~/.docker/trust key rotate localhost:5000/team/app snapshot -r",
        &[("~/.docker", docker.config.path().to_str().unwrap())],
        &[("NOTARY_ROOT_PASSPHRASE", "root-pass-123")],
        &creds,
    );
    readme.ok_with("docker pull localhost:5000/team/app:v1", &[], &dct, "");

    readme.ok("curl --cacert wharf-data/tls/ca.crt https://localhost:5000/api/v1/openapi.json");
}
