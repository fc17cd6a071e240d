//! The registry with stock clients: docker (login, push, pull by tag and digest, deep
//! names, concurrent pushers) and skopeo (docker and oci transports, multi-platform --all).

mod common;

use std::process::Command;

use common::{DockerClient, Server, pushed_digest, require_tool, sha256};
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

/// An OCI image layout with one image per platform and an index over them.
fn write_oci_layout(dir: &std::path::Path, platforms: &[(&str, &str)]) -> String {
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
        let config = json!({"architecture": arch, "os": os, "rootfs": {"type": "layers", "diff_ids": [layer_digest]}, "config": {}});
        let config = serde_json::to_vec(&config).unwrap();
        let config_digest = put(&config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}]
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let md = put(&manifest);
        manifests.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len(), "platform": {"os": os, "architecture": arch}}));
    }
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})).unwrap();
    let index_digest = put(&index);
    let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": index_digest, "size": index.len(), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    index_digest
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
