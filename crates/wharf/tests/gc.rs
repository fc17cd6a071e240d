//! Garbage collection through its real surfaces — the admin API, `wharf gc run` and the
//! registry API docker uses — on the embedded backend and, with
//! `WHARF_TEST_BACKEND=postgres-s3`, on PostgreSQL and Garage. The server runs with
//! `gc.allow_short_grace` and a grace of two seconds, so the tests wait seconds, not an hour.

mod common;

use std::time::Duration;

use serde_json::{Value, json};

use common::cli::{json_err, json_ok, keys, login_dir};
use common::{Server, logged_in, push_tiny_image, pushed_digest, sha256, text, upload_blob, wharf_cli};

/// The grace period the servers here run with, and how long to wait to be past it.
const GRACE: &str = "2";
const PAST_GRACE: Duration = Duration::from_millis(3200);

fn gc_server() -> Server {
    Server::start_with(&[
        ("WHARF_GC_ALLOW_SHORT_GRACE", "true"),
        ("WHARF_GC_GRACE_SECONDS", GRACE),
    ])
}

fn owner_token(server: &Server) -> String {
    server.token(&["registry:admin:*"])
}

/// `POST /api/v1/gc` with `body` and `token`: status and JSON answer.
fn post_gc(server: &Server, token: &str, body: Value) -> (u16, Value) {
    let r = server
        .http()
        .post(server.url("/api/v1/gc"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .expect("gc request");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn delete_manifest(server: &Server, token: &str, repo: &str, digest: &str) {
    let r = server
        .http()
        .delete(server.url(&format!("/v2/{repo}/manifests/{digest}")))
        .bearer_auth(token)
        .send()
        .expect("manifest delete");
    assert_eq!(r.status(), 202, "{}", r.text().unwrap_or_default());
}

fn local_blob_file(server: &Server, digest: &str) -> std::path::PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    server.data.join("storage/blobs/sha256").join(&hex[..2]).join(hex)
}

fn create_user(server: &Server, name: &str, password: &str) {
    let r = server
        .http()
        .post(server.url("/api/v1/users"))
        .bearer_auth(owner_token(server))
        .json(&json!({ "name": name, "password": password }))
        .send()
        .expect("create user");
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
}

/// The admin API: a dry run lists exactly what would go and changes nothing; a run
/// removes it, answers the report and is audited and counted; a grace under the minimum
/// is refused with 400, a non-owner with 401.
#[test]
fn the_admin_api_collects_unreferenced_blobs_and_refuses_what_it_must() {
    let server = gc_server();
    let token = server.token(&[
        "repository:api/a:pull,push,delete",
        "repository:api/b:pull,push,delete",
    ]);
    let http = server.http();
    let (kept_manifest, _) = push_tiny_image(&server, &http, &token, "api/a", "v1", "kept");
    let (dropped_manifest, _) = push_tiny_image(&server, &http, &token, "api/b", "v1", "dropped");
    let kept = [sha256(b"{\"seed\":\"kept\"}"), sha256(b"layer kept")];
    let dropped = [sha256(b"{\"seed\":\"dropped\"}"), sha256(b"layer dropped")];
    let orphan = upload_blob(&server, &http, &token, "api/b", b"uploaded, never referenced");
    delete_manifest(&server, &token, "api/b", &dropped_manifest);
    std::thread::sleep(PAST_GRACE);

    let owner = owner_token(&server);
    let (status, preview) = post_gc(&server, &owner, json!({ "dry_run": true }));
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["dry_run"], true);
    assert_eq!(
        (&preview["links_removed"], &preview["blobs_removed"]),
        (&json!(3), &json!(3)),
        "{preview}"
    );
    let mut listed: Vec<&str> = preview["would_remove"]["blobs"]
        .as_array()
        .expect("blob list")
        .iter()
        .map(|b| b["digest"].as_str().expect("digest"))
        .collect();
    listed.sort_unstable();
    let mut expected: Vec<&str> = dropped
        .iter()
        .map(String::as_str)
        .chain([orphan.as_str()])
        .collect();
    expected.sort_unstable();
    assert_eq!(listed, expected);
    // Asked again, not through a blob HEAD: that would renew the links it found old.
    let (status, again) = post_gc(&server, &owner, json!({ "dry_run": true }));
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["would_remove"], preview["would_remove"],
        "a dry run removed something"
    );
    if server.blobs_on_local_disk() {
        for d in dropped.iter().chain([&orphan]) {
            assert!(local_blob_file(&server, d).exists(), "a dry run removed {d}");
        }
    }

    let (status, report) = post_gc(&server, &owner, json!({ "dry_run": false }));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["dry_run"], false);
    assert!(report.get("would_remove").is_none(), "{report}");
    let freed = [
        "{\"seed\":\"dropped\"}".len(),
        "layer dropped".len(),
        "uploaded, never referenced".len(),
    ]
    .iter()
    .sum::<usize>();
    assert_eq!(
        (
            &report["links_removed"],
            &report["blobs_removed"],
            &report["bytes_freed"],
            &report["deletions_failed"]
        ),
        (&json!(3), &json!(3), &json!(freed), &json!(0)),
        "{report}"
    );
    assert!(report["duration_ms"].is_u64(), "{report}");
    for d in dropped.iter().chain([&orphan]) {
        assert_eq!(server.blob_status(&token, "api/b", d), 404, "{d} was not removed");
        if server.blobs_on_local_disk() {
            assert!(!local_blob_file(&server, d).exists(), "{d} is still on disk");
        }
    }
    for d in &kept {
        assert_eq!(server.blob_status(&token, "api/a", d), 200, "{d} was removed");
        if server.blobs_on_local_disk() {
            assert!(local_blob_file(&server, d).exists(), "{d} left the disk");
        }
    }
    let r = http
        .get(server.url(&format!("/v2/api/a/manifests/{kept_manifest}")))
        .bearer_auth(&token)
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .expect("manifest get");
    assert_eq!(r.status(), 200);
    let records = common::audit_records(&server);
    let (actor, _, target, detail) = records
        .iter()
        .rev()
        .find(|r| r.1 == "gc.run")
        .expect("gc.run audit record");
    assert_eq!((actor.as_str(), target.as_str()), ("admin", "registry"));
    assert!(
        detail.contains(&format!("links removed 3, blobs removed 3, bytes freed {freed},")),
        "{detail}"
    );
    assert_eq!(common::metric(&server, "wharf_gc_runs_total"), 1);
    assert_eq!(common::metric(&server, "wharf_gc_blobs_removed_total"), 3);
    assert_eq!(
        common::metric(&server, "wharf_gc_bytes_freed_total"),
        freed as u64
    );

    let (status, refusal) = post_gc(&server, &owner, json!({ "grace_seconds": 0 }));
    assert_eq!(status, 400, "{refusal}");
    assert_eq!(refusal["errors"][0]["code"], "GRACE_TOO_SHORT");
    assert_eq!(
        refusal["errors"][0]["message"],
        "the grace period must be at least 1 seconds"
    );

    create_user(&server, "dev", "dev-password-123");
    let dev = server
        .token_as("dev", "dev-password-123", &["registry:admin:*"])
        .expect("token");
    let (status, _) = post_gc(&server, &dev, json!({ "dry_run": true }));
    assert_eq!(status, 401);
    let r = http
        .post(server.url("/api/v1/gc"))
        .json(&json!({}))
        .send()
        .expect("anonymous gc");
    assert_eq!(r.status(), 401);
    assert_eq!(common::metric(&server, "wharf_gc_runs_total"), 1);
}

/// A push that finds a blob with HEAD skips its upload and PUTs its manifest later: a HEAD
/// (or GET) of a link older than half the grace renews it, so a collection in between
/// leaves it and the manifest PUT succeeds. A link nobody asked for is collected.
#[test]
fn a_blob_head_renews_an_old_link_for_the_manifest_put() {
    let server = gc_server();
    let token = server.token(&["repository:renew/app:pull,push,delete"]);
    let http = server.http();
    let (manifest, body) = push_tiny_image(&server, &http, &token, "renew/app", "v1", "renew");
    let blobs = [sha256(b"{\"seed\":\"renew\"}"), sha256(b"layer renew")];
    let orphan = upload_blob(&server, &http, &token, "renew/app", b"never asked for again");
    delete_manifest(&server, &token, "renew/app", &manifest);
    std::thread::sleep(PAST_GRACE);

    // The next push of the same image: each blob is there, so no upload.
    for d in &blobs {
        assert_eq!(server.blob_status(&token, "renew/app", d), 200);
    }
    let (status, report) = post_gc(&server, &owner_token(&server), json!({}));
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (&report["links_removed"], &report["blobs_removed"]),
        (&json!(1), &json!(1)),
        "{report}"
    );
    assert_eq!(server.blob_status(&token, "renew/app", &orphan), 404);
    common::put_manifest(
        &server,
        &token,
        "renew/app",
        "v1",
        "application/vnd.oci.image.manifest.v1+json",
        body,
    );
    for d in &blobs {
        assert_eq!(server.blob_status(&token, "renew/app", d), 200);
    }
}

/// `wharf gc run`: `--dry-run` prints what would go and changes nothing, a run prints its
/// summary (`--output json`: the report), a short `--grace` and a non-owner get one line
/// with the API's code.
#[test]
fn wharf_gc_run_reports_and_refuses_in_one_line() {
    let server = gc_server();
    let token = server.token(&["repository:cli/app:pull,push,delete"]);
    let http = server.http();
    let (manifest, _) = push_tiny_image(&server, &http, &token, "cli/app", "v1", "cli");
    delete_manifest(&server, &token, "cli/app", &manifest);
    let layer = sha256(b"layer cli");
    std::thread::sleep(PAST_GRACE);
    let owner = login_dir(&server, "admin", &server.admin_password);

    let out = wharf_cli(owner.path(), &["gc", "run", "--dry-run"], "");
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    let bytes = "{\"seed\":\"cli\"}".len() + "layer cli".len();
    assert!(
        printed.starts_with(&format!(
            "Dry run: would remove 2 blob links and 2 blobs, freeing {bytes} bytes ("
        )),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("  link  cli/app {layer}\n")),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("  blob  {layer} (9 bytes)")),
        "{printed}"
    );
    let (status, again) = post_gc(&server, &owner_token(&server), json!({ "dry_run": true }));
    assert_eq!(
        (status, &again["links_removed"]),
        (200, &json!(2)),
        "a dry run removed something: {again}"
    );

    let (code, message) = json_err(owner.path(), &["gc", "run", "--grace", "0"], "");
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "GRACE_TOO_SHORT",
            "the server answered 400 Bad Request: the grace period must be at least 1 seconds"
        )
    );

    let out = wharf_cli(owner.path(), &["gc", "run"], "");
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.starts_with(&format!(
            "Garbage collection removed 2 blob links and 2 blobs, freed {bytes} bytes in "
        )) && printed.ends_with(" ms\n"),
        "{printed}"
    );
    assert_eq!(server.blob_status(&token, "cli/app", &layer), 404);
    let (report, _) = json_ok(owner.path(), &["gc", "run", "--grace", "5"], "");
    assert_eq!(
        keys(&report),
        [
            "blobs_removed",
            "bytes_freed",
            "deletions_failed",
            "dry_run",
            "duration_ms",
            "links_removed",
            "tombstones_finished"
        ]
    );
    assert_eq!(
        (&report["links_removed"], &report["blobs_removed"]),
        (&json!(0), &json!(0))
    );
    // `gc status`: nothing running, the last run (the --grace 5 one) by the owner.
    let out = wharf_cli(owner.path(), &["gc", "status"], "");
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.starts_with(
            "No collection is running.\nGrace period 2 s; scheduled runs: on demand only\n\
             Last run on this replica, finished "
        ) && printed.contains(
            " (started by admin): Garbage collection removed 0 blob links and 0 blobs, freed 0 bytes in "
        ),
        "{printed}"
    );
    let (status, _) = json_ok(owner.path(), &["gc", "status"], "");
    assert_eq!(
        keys(&status),
        [
            "grace_seconds",
            "interval_seconds",
            "last_run",
            "progress",
            "running"
        ]
    );

    create_user(&server, "dev", "dev-password-123");
    let dev = login_dir(&server, "dev", "dev-password-123");
    let out = wharf_cli(dev.path(), &["gc", "run", "--dry-run"], "");
    assert!(!out.status.success() && out.stdout.is_empty(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        "wharf: not authorised: access to the requested resource is not authorized; \
         this needs the Owner role: log in as an owner with `wharf login`\n"
    );
    assert_eq!(json_err(dev.path(), &["gc", "run"], "").0, "UNAUTHORIZED");
    assert_eq!(json_err(dev.path(), &["gc", "status"], "").0, "UNAUTHORIZED");
}

/// The config and layer digests a manifest in `repo` names.
fn manifest_blobs(server: &Server, token: &str, repo: &str, reference: &str) -> Vec<String> {
    let r = server
        .http()
        .get(server.url(&format!("/v2/{repo}/manifests/{reference}")))
        .bearer_auth(token)
        .header(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .expect("manifest get");
    assert_eq!(r.status(), 200, "manifest {repo}:{reference}");
    let m: Value = r.json().expect("manifest json");
    let mut blobs = vec![m["config"]["digest"].as_str().expect("config").to_owned()];
    for l in m["layers"].as_array().expect("layers") {
        blobs.push(l["digest"].as_str().expect("layer digest").to_owned());
    }
    blobs
}

/// With docker: one image under two repositories (its layer shared) and a second image
/// only in `team/a`. Deleting the second by digest and collecting removes its blobs and
/// keeps the shared ones; docker pulls both repositories afterwards.
#[test]
fn docker_images_sharing_layers_survive_gc_and_pull_after_deletions() {
    let server = gc_server();
    let docker = logged_in(&server, "admin", &server.admin_password);
    let a_v1 = format!("{}/team/a:v1", server.host);
    let b_v1 = format!("{}/team/b:v1", server.host);
    let a_old = format!("{}/team/a:old", server.host);
    docker.import_image(&a_v1);
    docker.ok(&["tag", &a_v1, &b_v1]);
    docker.ok(&["push", &a_v1]);
    docker.ok(&["push", &b_v1]);
    docker.import_image(&a_old);
    let old_digest = pushed_digest(&docker.ok(&["push", &a_old]));

    let token = server.token(&[
        "repository:team/a:pull,push,delete",
        "repository:team/b:pull,push,delete",
    ]);
    let shared = manifest_blobs(&server, &token, "team/a", "v1");
    assert_eq!(shared, manifest_blobs(&server, &token, "team/b", "v1"));
    let old_only = manifest_blobs(&server, &token, "team/a", &old_digest);
    assert!(
        old_only.iter().all(|d| !shared.contains(d)),
        "{old_only:?} {shared:?}"
    );
    delete_manifest(&server, &token, "team/a", &old_digest);
    std::thread::sleep(PAST_GRACE);

    let (status, report) = post_gc(&server, &owner_token(&server), json!({}));
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (&report["blobs_removed"], &report["deletions_failed"]),
        (&json!(old_only.len()), &json!(0)),
        "{report}"
    );
    for d in &old_only {
        assert_eq!(server.blob_status(&token, "team/a", d), 404, "{d} kept");
    }
    for d in &shared {
        assert_eq!(server.blob_status(&token, "team/a", d), 200, "{d} removed");
        assert_eq!(server.blob_status(&token, "team/b", d), 200, "{d} removed");
    }

    docker.ok(&["rmi", &a_v1, &b_v1, &a_old]);
    docker.ok(&["pull", &a_v1]);
    docker.ok(&["pull", &b_v1]);
}

/// Push an image of a config from `seed`, `shared` and a layer from `seed` under
/// `reference`; the manifest's digest if the registry took it, else its answer.
fn push_with_shared_layer(
    server: &Server,
    http: &reqwest::blocking::Client,
    token: &str,
    repo: &str,
    seed: &str,
    shared: &[u8],
) -> Result<String, String> {
    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    let config = format!("{{\"seed\":\"{seed}\"}}");
    let layer = format!("layer {seed}");
    let config_digest = upload_blob(server, http, token, repo, config.as_bytes());
    let shared_digest = upload_blob(server, http, token, repo, shared);
    let layer_digest = upload_blob(server, http, token, repo, layer.as_bytes());
    let layer_of = |digest: &str, size: usize| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size});
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [layer_of(&shared_digest, shared.len()), layer_of(&layer_digest, layer.len())]
    }))
    .expect("manifest json");
    let r = http
        .put(server.url(&format!("/v2/{repo}/manifests/latest")))
        .bearer_auth(token)
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .expect("manifest put");
    if r.status() == 201 {
        Ok(sha256(&manifest))
    } else {
        Err(format!("{}: {}", r.status(), r.text().unwrap_or_default()))
    }
}

/// Pushes race collections run back to back with a one-second grace, the shared layer
/// going unreferenced between rounds: after every push the registry accepted, the
/// manifest and each of its blobs are there.
#[test]
fn a_push_racing_gc_rounds_never_loses_a_blob() {
    let server = Server::start_with(&[
        ("WHARF_GC_ALLOW_SHORT_GRACE", "true"),
        ("WHARF_GC_GRACE_SECONDS", "1"),
    ]);
    let token = server.token(&["repository:race/app:pull,push,delete"]);
    let owner = owner_token(&server);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let shared = b"a layer every round shares";
    std::thread::scope(|s| {
        let collector = s.spawn(|| {
            let (mut runs, mut busy) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, report) = post_gc(&server, &owner, json!({}));
                match status {
                    200 => runs += 1,
                    409 => {
                        assert_eq!(report["errors"][0]["code"], "GC_BUSY", "{report}");
                        busy += 1;
                    }
                    _ => panic!("gc answered {status}: {report}"),
                }
            }
            (runs, busy)
        });
        let http = server.http();
        let mut pushed = 0;
        for round in 0..20u64 {
            let seed = format!("race {round}");
            match push_with_shared_layer(&server, &http, &token, "race/app", &seed, shared) {
                Ok(digest) => {
                    pushed += 1;
                    let blobs = manifest_blobs(&server, &token, "race/app", &digest);
                    assert!(blobs.contains(&sha256(shared)), "{blobs:?}");
                    for d in &blobs {
                        assert_eq!(
                            server.blob_status(&token, "race/app", d),
                            200,
                            "round {round}: {d} lost after a successful push"
                        );
                    }
                    delete_manifest(&server, &token, "race/app", &digest);
                }
                Err(answer) => assert!(
                    answer.contains("BLOB_UNKNOWN"),
                    "round {round}: push refused: {answer}"
                ),
            }
            // Let the shared layer's link age past the grace in some rounds.
            std::thread::sleep(Duration::from_millis(400 * (round % 4)));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (runs, _busy) = collector.join().expect("collector");
        assert!(runs > 0, "no collection ran");
        assert!(pushed > 0, "no push succeeded");
    });
}

/// `GET /api/v1/gc` as the owner: the status.
fn gc_status(server: &Server, token: &str) -> Value {
    let r = server
        .http()
        .get(server.url("/api/v1/gc"))
        .bearer_auth(token)
        .send()
        .expect("gc status");
    assert_eq!(r.status(), 200);
    r.json().expect("status json")
}

/// A collection killed with SIGKILL in the middle of deleting blobs: after a restart the
/// dead run's lease keeps others out until it expires (its deletions may still land), no
/// manifest has lost a blob, and the next run finishes what the dead one left — a dry run
/// then finds nothing, and only the kept image's blobs remain on disk.
#[test]
fn a_collection_killed_mid_run_leaves_nothing_the_next_run_cannot_finish() {
    let mut server = gc_server();
    // Enough that the run is caught deleting: local deletions are fast, S3 ones slower.
    let junk: usize = if server.blobs_on_local_disk() { 3000 } else { 800 };
    let owner = owner_token(&server);
    let token = server.token(&["repository:keep/app:pull,push", "repository:junk/app:pull,push"]);
    let http = server.http();
    let shared = b"a layer the kept image and the junk share";
    let kept =
        push_with_shared_layer(&server, &http, &token, "keep/app", "keep", shared).expect("kept image");
    let kept_blobs = manifest_blobs(&server, &token, "keep/app", &kept);
    // Blobs no manifest references (the shared one too, under junk/app).
    upload_blob(&server, &http, &token, "junk/app", shared);
    std::thread::scope(|s| {
        for part in 0..4 {
            let (server, token) = (&server, &token);
            s.spawn(move || {
                let http = server.http();
                for i in (part..junk).step_by(4) {
                    upload_blob(server, &http, token, "junk/app", format!("junk {i}").as_bytes());
                }
            });
        }
    });
    std::thread::sleep(PAST_GRACE);
    let idle = gc_status(&server, &owner);
    assert_eq!(idle["running"], Value::Null, "{idle}");
    assert_eq!(idle["progress"], Value::Null, "{idle}");
    assert_eq!(idle["grace_seconds"], 2, "{idle}");

    // Start a run and kill the server once it is deleting blobs.
    let pid = server.pid();
    let seen = std::thread::scope(|s| {
        let run = s.spawn(|| {
            server
                .http()
                .post(server.url("/api/v1/gc"))
                .bearer_auth(&owner)
                .json(&json!({}))
                .send()
        });
        let http = server.http();
        loop {
            assert!(!run.is_finished(), "the run ended before it could be interrupted");
            let status: Value = http
                .get(server.url("/api/v1/gc"))
                .bearer_auth(&owner)
                .send()
                .and_then(|r| r.json())
                .expect("status during the run");
            let progress = &status["progress"];
            if progress["phase"] == "blobs" && progress["blobs_removed"].as_u64() > Some(0) {
                let killed = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .expect("kill");
                assert!(killed.success());
                let answer = run.join().expect("run thread");
                assert!(answer.is_err(), "the run answered although killed: {answer:?}");
                break status;
            }
        }
    });
    assert_eq!(seen["running"]["here"], true, "{seen}");
    assert_eq!(seen["progress"]["links_removed"], junk as u64 + 1, "{seen}");
    let removed_before_kill = seen["progress"]["blobs_removed"].as_u64().expect("count");
    assert!(removed_before_kill < junk as u64, "{seen}");

    server.restart();
    let owner = owner_token(&server);
    // The dead run's lease: shown as held by this replica with no run in progress, and
    // a new run is refused until it expires.
    let after = gc_status(&server, &owner);
    assert_eq!(after["running"]["here"], true, "{after}");
    assert_eq!(after["progress"], Value::Null, "{after}");
    let (busy, answer) = post_gc(&server, &owner, json!({}));
    assert_eq!(
        (busy, answer["errors"][0]["code"].as_str()),
        (409, Some("GC_BUSY")),
        "{answer}"
    );
    // No manifest lost a blob.
    for digest in &kept_blobs {
        assert_eq!(server.blob_status(&token, "keep/app", digest), 200, "{digest}");
    }
    let waited = std::time::Instant::now();
    while gc_status(&server, &owner)["running"] != Value::Null {
        assert!(
            waited.elapsed() < Duration::from_secs(150),
            "the dead run's lease never expired"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let (status, report) = post_gc(&server, &owner, json!({}));
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["blobs_removed"].as_u64().unwrap() + removed_before_kill,
        junk as u64,
        "every junk blob removed exactly once over both runs: {report}"
    );
    let (_, dry) = post_gc(&server, &owner, json!({"dry_run": true}));
    assert_eq!(
        (dry["links_removed"].as_u64(), dry["blobs_removed"].as_u64()),
        (Some(0), Some(0)),
        "{dry}"
    );
    let last = gc_status(&server, &owner)["last_run"].clone();
    assert_eq!(last["report"]["blobs_removed"], report["blobs_removed"], "{last}");
    assert_eq!(last["error"], Value::Null, "{last}");
    for digest in &kept_blobs {
        let r = http
            .get(server.url(&format!("/v2/keep/app/blobs/{digest}")))
            .bearer_auth(&token)
            .send()
            .expect("blob get");
        assert_eq!(r.status(), 200, "{digest}");
        assert_eq!(sha256(&r.bytes().expect("bytes")), *digest);
    }
    if server.blobs_on_local_disk() {
        let files = common::files_under(&server.data.join("storage/blobs")).len();
        assert_eq!(files, kept_blobs.len(), "blob files left on disk");
    }
}
