//! Retention through its real surfaces — the admin API, `wharf retention`, docker with and
//! without content trust, the registry API — on the embedded backend and, with
//! `WHARF_TEST_BACKEND=postgres-s3`, on PostgreSQL and Garage.
//!
//! Days cannot pass in a test: the servers here run with `retention.allow_short_periods`,
//! under which a policy "day" lasts one second (the clock, the stored `untagged_at`, and
//! every comparison are the production ones; only the unit shrinks).

mod common;

use std::time::Duration;

use serde_json::{Value, json};

use common::cli::{json_err, json_ok, login_dir};
use common::{
    DockerClient, Server, audit_records, logged_in, metric, push_tiny_image, pushed_digest, sha256, text,
    upload_blob, wharf_cli,
};

const DCT: &[(&str, &str)] = &[
    ("DOCKER_CONTENT_TRUST", "1"),
    ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123"),
    ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-123"),
];
const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
/// The untagged period of the policies here: three (one-second) days…
const DAYS: u64 = 3;
/// …and a wait safely past it.
const PAST_PERIOD: Duration = Duration::from_millis(4200);

fn retention_server() -> Server {
    Server::start_with(&[
        ("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true"),
        ("WHARF_RETENTION_ALLOW_SHORT_PERIODS", "true"),
        ("WHARF_GC_ALLOW_SHORT_GRACE", "true"),
        ("WHARF_GC_GRACE_SECONDS", "1"),
    ])
}

fn owner_token(server: &Server) -> String {
    server.token(&["registry:admin:*"])
}

fn call(
    server: &Server,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = server.http().request(method, server.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().expect("admin request");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn policy(server: &Server) -> Value {
    let (status, v) = call(
        server,
        &owner_token(server),
        reqwest::Method::GET,
        "/api/v1/retention-policy",
        None,
    );
    assert_eq!(status, 200, "{v}");
    v
}

fn set_policy(server: &Server, rules: Value) -> Value {
    let version = policy(server)["version"].clone();
    let (status, v) = call(
        server,
        &owner_token(server),
        reqwest::Method::PUT,
        "/api/v1/retention-policy",
        Some(json!({ "version": version, "rules": rules })),
    );
    assert_eq!(status, 200, "{v}");
    v
}

fn run(server: &Server, body: Value) -> Value {
    let (status, v) = call(
        server,
        &owner_token(server),
        reqwest::Method::POST,
        "/api/v1/retention/run",
        Some(body),
    );
    assert_eq!(status, 200, "{v}");
    v
}

/// (what, action, reason) of each candidate of `repo` in a report: `what` is the tag or
/// the digest of an untagged manifest.
fn decisions(report: &Value, repo: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = report["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .filter(|c| c["repository"] == repo)
        .map(|c| {
            let what = c["tag"].as_str().or(c["digest"].as_str()).unwrap_or_default();
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (what.to_owned(), s("action"), s("reason"))
        })
        .collect();
    out.sort();
    out
}

fn decision_of<'a>(all: &'a [(String, String, String)], what: &str) -> (&'a str, &'a str) {
    let (_, action, reason) = all
        .iter()
        .find(|(w, _, _)| w == what)
        .unwrap_or_else(|| panic!("{what} is not among the candidates: {all:?}"));
    (action, reason)
}

fn manifest_status(server: &Server, token: &str, repo: &str, reference: &str) -> u16 {
    server
        .http()
        .get(server.url(&format!("/v2/{repo}/manifests/{reference}")))
        .bearer_auth(token)
        .header(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .expect("manifest get")
        .status()
        .as_u16()
}

fn tags(server: &Server, token: &str, repo: &str) -> Vec<String> {
    let v: Value = server
        .http()
        .get(server.url(&format!("/v2/{repo}/tags/list")))
        .bearer_auth(token)
        .send()
        .expect("tags")
        .json()
        .expect("json");
    v["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| t.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn delete_tag(server: &Server, token: &str, repo: &str, tag: &str) {
    let r = server
        .http()
        .delete(server.url(&format!("/v2/{repo}/manifests/{tag}")))
        .bearer_auth(token)
        .send()
        .expect("tag delete");
    assert_eq!(r.status(), 202, "{}", r.text().unwrap_or_default());
}

fn cosign_fixture(name: &str) -> Vec<u8> {
    let path = common::repo_root().join("testdata/cosign").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The image skopeo signed with cosign and its `sha256-<hex>.sig` manifest, byte for byte
/// (`testdata/cosign/`), the image tagged `tag`. Returns the image digest.
fn push_cosign_signed(server: &Server, token: &str, repo: &str, tag: &str) -> String {
    let http = server.http();
    for hex in [
        "4933c1a81d4f181aeb6018a8de2208dfcd74d70b4a5aa6c0418a14fbfce5e06f",
        "e44dc0dca5f2416431ae1e65a2403e2ca295afd8faa5c71671a2f9d37c7e3824",
        "5f6d5fcf2e261543b3562b015870cc9b3245ffd85f3195dc4550ee7339902932",
        "6e8fa0cee587ea5b8683a966f3ec67ffd39abedb9811abdee8655805cbb27b52",
    ] {
        let name = if hex.starts_with("6e8f") {
            format!("blobs/{hex}")
        } else {
            format!("image-blobs/{hex}")
        };
        upload_blob(server, &http, token, repo, &cosign_fixture(&name));
    }
    let image = cosign_fixture("image-manifest.json");
    let digest = sha256(&image);
    common::put_manifest(server, token, repo, tag, OCI, image);
    common::put_manifest(
        server,
        token,
        repo,
        &format!("sha256-{}.sig", &digest[7..]),
        OCI,
        cosign_fixture("signature-manifest.json"),
    );
    digest
}

/// An OCI 1.1 referrer of `subject` whose one layer is a cosign signature payload: what
/// cosign's referrers mode pushes (by digest, no tag). Returns its digest.
fn push_signature_referrer(server: &Server, token: &str, repo: &str, subject: &str, size: usize) -> String {
    let http = server.http();
    let config = upload_blob(server, &http, token, repo, b"{}");
    let payload = upload_blob(server, &http, token, repo, b"{\"critical\":{}}");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI,
        "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": payload, "size": 15}],
        "subject": {"mediaType": OCI, "digest": subject, "size": size}
    }))
    .expect("json");
    let digest = sha256(&manifest);
    common::put_manifest(server, token, repo, &digest, OCI, manifest);
    digest
}

/// A docker-pushed image moved off its tag: push `reference`, then push another image to
/// the same tag. Returns the digest that lost the tag.
fn push_then_move(docker: &DockerClient, reference: &str) -> String {
    docker.import_image(reference);
    let first = pushed_digest(&docker.ok(&["push", reference]));
    docker.import_image(reference);
    let second = pushed_digest(&docker.ok(&["push", reference]));
    assert_ne!(first, second);
    first
}

/// Untagged manifests go after the period — except a DCT signed target (docker pushed it
/// signed, then an unsigned push moved the tag), the subject of a cosign `.sig` tag, the
/// subject of an OCI signature referrer (and that referrer, which goes with it), and what
/// is still within the period. The dry run lists exactly what the run then does and
/// changes nothing; the run is audited and counted; after a garbage collection what is
/// left still pulls with docker.
#[test]
fn untagged_manifests_go_after_the_period_and_signed_ones_stay() {
    let server = retention_server();
    let docker = logged_in(&server, "admin", &server.admin_password);
    let token = server.token(&[
        "repository:keep/app:pull,push,delete",
        "repository:keep/sig:pull,push,delete",
    ]);
    let app = format!("{}/keep/app", server.host);

    // v1 pushed signed, then moved by an unsigned push: the old digest is untagged but
    // still what the trust data signs for v1.
    let v1 = format!("{app}:v1");
    docker.import_image(&v1);
    let out = docker.cmd(&["push", &v1], DCT);
    assert!(out.status.success(), "{}", text(&out));
    let signed = pushed_digest(&text(&out));
    docker.import_image(&v1);
    let current_v1 = pushed_digest(&docker.ok(&["push", &v1]));
    assert_ne!(signed, current_v1);
    // Unsigned and moved: the one that must go.
    let old = push_then_move(&docker, &format!("{app}:old"));
    // cosign: the image untagged, its `.sig` tag kept.
    let cosigned = push_cosign_signed(&server, &token, "keep/sig", "v1");
    delete_tag(&server, &token, "keep/sig", "v1");
    // An OCI signature referrer on an image whose tag was deleted.
    let (referred, bytes) = push_tiny_image(&server, &server.http(), &token, "keep/sig", "ref", "referred");
    let referrer = push_signature_referrer(&server, &token, "keep/sig", &referred, bytes.len());
    delete_tag(&server, &token, "keep/sig", "ref");
    std::thread::sleep(PAST_PERIOD);
    // Untagged just now: within the period.
    let fresh = push_then_move(&docker, &format!("{app}:fresh"));

    set_policy(
        &server,
        json!([{ "scope": "repository:keep/*", "untagged_after_days": DAYS }]),
    );
    let before_tags = (
        tags(&server, &token, "keep/app"),
        tags(&server, &token, "keep/sig"),
    );
    let dry = run(&server, json!({ "dry_run": true }));
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        (
            &dry["manifests_removed"],
            &dry["tags_removed"],
            &dry["repositories"]
        ),
        (&json!(1), &json!(0), &json!(2)),
        "{dry}"
    );
    let app_decisions = decisions(&dry, "keep/app");
    let (action, reason) = decision_of(&app_decisions, &old);
    assert_eq!(action, "remove", "{app_decisions:?}");
    assert!(
        reason.starts_with("untagged for ") && reason.contains(" days (since "),
        "{reason}"
    );
    let (action, reason) = decision_of(&app_decisions, &signed);
    assert_eq!(action, "keep");
    assert!(reason.starts_with("signed target of v1 (targets"), "{reason}");
    assert_eq!(decision_of(&app_decisions, &fresh), ("keep", "within 3 days"));
    let sig_decisions = decisions(&dry, "keep/sig");
    let (action, reason) = decision_of(&sig_decisions, &cosigned);
    assert_eq!(action, "keep");
    assert!(
        reason.starts_with("subject of signature sha256:") && reason.ends_with(" (cosign)"),
        "{reason}"
    );
    assert_eq!(
        decision_of(&sig_decisions, &referred),
        ("keep", format!("subject of signature {referrer}").as_str())
    );
    assert_eq!(
        decision_of(&sig_decisions, &referrer),
        ("keep", format!("goes with its subject {referred}").as_str())
    );
    // The dry run changed nothing.
    assert_eq!(
        (
            tags(&server, &token, "keep/app"),
            tags(&server, &token, "keep/sig")
        ),
        before_tags
    );
    for digest in [&old, &signed, &fresh] {
        assert_eq!(
            manifest_status(&server, &token, "keep/app", digest),
            200,
            "{digest}"
        );
    }
    assert!(
        !audit_records(&server)
            .iter()
            .any(|r| r.1 == "retention.run" || r.3.contains("retention:")),
        "a dry run wrote audit records"
    );

    let report = run(&server, json!({}));
    assert_eq!(report["dry_run"], false);
    assert_eq!(
        decisions(&report, "keep/app")
            .into_iter()
            .map(|(w, a, _)| (w, a))
            .collect::<Vec<_>>(),
        app_decisions
            .iter()
            .map(|(w, a, _)| (w.clone(), a.clone()))
            .collect::<Vec<_>>(),
        "the run did what the dry run said"
    );
    assert_eq!(report["manifests_removed"], 1, "{report}");
    assert_eq!(manifest_status(&server, &token, "keep/app", &old), 404);
    for digest in [&signed, &fresh, &current_v1] {
        assert_eq!(
            manifest_status(&server, &token, "keep/app", digest),
            200,
            "{digest}"
        );
    }
    for digest in [&cosigned, &referred, &referrer] {
        assert_eq!(
            manifest_status(&server, &token, "keep/sig", digest),
            200,
            "{digest}"
        );
    }
    let audit = audit_records(&server);
    let deletion = audit
        .iter()
        .find(|r| r.1 == "manifest.delete" && r.2 == format!("keep/app@{old}"))
        .expect("the deletion is audited");
    assert!(deletion.3.contains("retention: untagged for "), "{deletion:?}");
    let summary = audit
        .iter()
        .find(|r| r.1 == "retention.run")
        .expect("run audited");
    assert!(
        summary.3.contains("manifests removed 1, tags removed 0"),
        "{summary:?}"
    );
    assert_eq!(metric(&server, "wharf_retention_manifests_removed_total"), 1);
    assert_eq!(metric(&server, "wharf_retention_runs_total"), 1);
    // Idempotent: a second run finds nothing more to remove.
    assert_eq!(run(&server, json!({}))["manifests_removed"], 0);

    // Garbage collection frees what the removed manifest alone used; what stayed pulls.
    std::thread::sleep(Duration::from_millis(1500));
    let (status, gc) = call(
        &server,
        &owner_token(&server),
        reqwest::Method::POST,
        "/api/v1/gc",
        Some(json!({ "grace_seconds": 1 })),
    );
    assert_eq!(status, 200, "{gc}");
    assert!(gc["blobs_removed"].as_u64().unwrap_or(0) >= 1, "{gc}");
    for reference in [
        format!("{app}:v1"),
        format!("{app}@{signed}"),
        format!("{app}@{fresh}"),
    ] {
        let _ = docker.cmd(&["rmi", "-f", &reference], &[]);
        docker.ok(&["pull", &reference]);
    }
}

/// keep_last K of `v*`: the newest K stay, older ones go — except a DCT-signed tag, kept
/// with the reason; tags no pattern matches are not touched; the dry run changes nothing.
#[test]
fn keep_last_removes_older_tags_but_never_a_signed_one() {
    let server = retention_server();
    let docker = logged_in(&server, "admin", &server.admin_password);
    let token = server.token(&["repository:tags/app:pull,push,delete"]);
    let app = format!("{}/tags/app", server.host);
    let v1 = format!("{app}:v1");
    docker.import_image(&v1);
    let out = docker.cmd(&["push", &v1], DCT);
    assert!(out.status.success(), "{}", text(&out));
    let mut digests = vec![pushed_digest(&text(&out))];
    for tag in ["v2", "v3", "v4", "latest"] {
        // Push times are kept in seconds: one second apart, so their order is certain.
        std::thread::sleep(Duration::from_millis(1100));
        let reference = format!("{app}:{tag}");
        docker.import_image(&reference);
        digests.push(pushed_digest(&docker.ok(&["push", &reference])));
    }
    set_policy(
        &server,
        json!([{ "scope": "registry", "keep_tags": [{ "pattern": "v*", "keep_last": 2 }] }]),
    );
    let expected = vec![
        (
            "v1".to_owned(),
            "keep".to_owned(),
            "signed: v1 (targets)".to_owned(),
        ),
        (
            "v2".to_owned(),
            "remove".to_owned(),
            "beyond the newest 2 of pattern v*".to_owned(),
        ),
        (
            "v3".to_owned(),
            "keep".to_owned(),
            "kept: newest 2 of pattern v*".to_owned(),
        ),
        (
            "v4".to_owned(),
            "keep".to_owned(),
            "kept: newest 2 of pattern v*".to_owned(),
        ),
    ];
    let before = tags(&server, &token, "tags/app");
    let dry = run(&server, json!({ "dry_run": true, "repository": "tags/app" }));
    let mut got = decisions(&dry, "tags/app");
    // The role docker signs with may be `targets` or `targets/releases`: the name counts.
    if let Some(d) = got.iter_mut().find(|d| d.0 == "v1") {
        d.2 = d.2.replace("targets/releases", "targets");
    }
    assert_eq!(got, expected, "{dry}");
    assert_eq!(
        tags(&server, &token, "tags/app"),
        before,
        "the dry run changed tags"
    );

    let report = run(&server, json!({ "repository": "tags/app" }));
    assert_eq!(report["tags_removed"], 1, "{report}");
    assert_eq!(tags(&server, &token, "tags/app"), ["latest", "v1", "v3", "v4"]);
    // The tag went, its manifest stays (now untagged, its clock started).
    assert_eq!(manifest_status(&server, &token, "tags/app", &digests[1]), 200);
    assert!(
        audit_records(&server).iter().any(|r| r.1 == "tag.delete"
            && r.2 == "tags/app:v2"
            && r.3.contains("retention: beyond the newest 2")),
        "the tag deletion is audited"
    );
    assert_eq!(metric(&server, "wharf_retention_tags_removed_total"), 1);
}

/// Bad documents are refused with the exact message and nothing is stored; a stale
/// version is a conflict; changes are audited; a user who may push but is not an owner is
/// refused on every retention route; a run naming an invalid repository is refused.
#[test]
fn only_owners_change_retention_and_bad_policies_change_nothing() {
    let server = retention_server();
    let owner = owner_token(&server);
    let put = |token: &str, doc: Value| {
        call(
            &server,
            token,
            reqwest::Method::PUT,
            "/api/v1/retention-policy",
            Some(doc),
        )
    };
    let refusal = |v: &Value| {
        (
            v["errors"][0]["code"].as_str().unwrap_or_default().to_owned(),
            v["errors"][0]["message"].as_str().unwrap_or_default().to_owned(),
        )
    };
    for (doc, message) in [
        (
            json!({"version": 0, "rules": [{"scope": "repo:x", "untagged_after_days": 7}]}),
            "rule 0: scope \"repo:x\" must be registry, repository:<name> or repository:<prefix>/*",
        ),
        (
            json!({"version": 0, "rules": [{"scope": "registry", "untagged_after_days": 0}]}),
            "rule 0 (registry): untagged_after_days must be 1 to 3650, got 0",
        ),
        (
            json!({"version": 0, "rules": [{"scope": "registry", "keep_tags": [{"pattern": "v[0-9]+", "keep_last": 3}]}]}),
            "rule 0 (registry): keep_tags pattern \"v[0-9]+\" must be 1 to 128 characters of a tag (letters, digits, _ . -) or the wildcards * and ?",
        ),
        (
            json!({"version": 0, "rules": [{"scope": "registry"}, {"scope": " registry"}]}),
            "rule 1: scope \" registry\" appears twice",
        ),
        (
            json!({"version": 0, "rules": [{"scope": "registry", "keep_tags": [{"pattern": "v*", "keep_last": 0}]}]}),
            "rule 0 (registry): keep_tags pattern \"v*\": keep_last must be 1 to 100000, got 0",
        ),
    ] {
        let (status, v) = put(&owner, doc);
        assert_eq!(status, 400, "{v}");
        assert_eq!(refusal(&v), ("POLICY_INVALID".to_owned(), message.to_owned()));
    }
    let (status, v) = put(&owner, json!({"version": 0, "rules": [], "extra": 1}));
    assert_eq!(status, 400);
    assert!(refusal(&v).1.contains("unknown field `extra`"), "{v}");
    assert_eq!(
        policy(&server),
        json!({"version": 0, "rules": []}),
        "nothing stored"
    );
    assert!(
        !audit_records(&server)
            .iter()
            .any(|r| r.1 == "retention-policy.update")
    );

    let rules = json!([{"scope": "repository:team/*", "untagged_after_days": 30}]);
    let (status, stored) = put(&owner, json!({"version": 0, "rules": rules}));
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored, json!({"version": 1, "rules": rules}));
    let (status, v) = put(&owner, json!({"version": 0, "rules": []}));
    assert_eq!(status, 409, "{v}");
    assert_eq!(
        refusal(&v),
        (
            "CONFLICT".to_owned(),
            "the retention policy changed since version 0 was read (it is now version 1); read it again and reapply the change".to_owned()
        )
    );
    assert_eq!(policy(&server), stored, "the stale write changed nothing");
    let updates: Vec<_> = audit_records(&server)
        .into_iter()
        .filter(|r| r.1 == "retention-policy.update")
        .collect();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert!(
        updates[0]
            .3
            .ends_with("version 1: repository:team/* untagged after 30 days"),
        "{updates:?}"
    );

    let (status, v) = call(
        &server,
        &owner,
        reqwest::Method::POST,
        "/api/v1/retention/run",
        Some(json!({"repository": "Not/Valid"})),
    );
    assert_eq!(status, 400);
    assert_eq!(
        refusal(&v),
        (
            "NAME_INVALID".to_owned(),
            "repository name \"Not/Valid\" is not valid".to_owned()
        )
    );

    // A user who may push and delete everywhere, but is not an owner.
    let (status, v) = call(
        &server,
        &owner,
        reqwest::Method::POST,
        "/api/v1/users",
        Some(json!({"name": "dev", "password": "dev-password-123"})),
    );
    assert_eq!(status, 201, "{v}");
    let (status, v) = call(
        &server,
        &owner,
        reqwest::Method::POST,
        "/api/v1/role-assignments",
        Some(json!({"role": "Contributor", "assignee": "dev", "scope": "registry"})),
    );
    assert_eq!(status, 201, "{v}");
    let dev = server
        .token_as(
            "dev",
            "dev-password-123",
            &["registry:admin:*", "repository:team/app:pull,push,delete"],
        )
        .expect("dev token");
    for (method, path, body) in [
        (reqwest::Method::GET, "/api/v1/retention-policy", None),
        (
            reqwest::Method::PUT,
            "/api/v1/retention-policy",
            Some(json!({"version": 1, "rules": []})),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/retention/run",
            Some(json!({"dry_run": true})),
        ),
    ] {
        let (status, v) = call(&server, &dev, method.clone(), path, body);
        assert_eq!(status, 401, "{method} {path}: {v}");
    }
    assert_eq!(policy(&server), stored, "the refused write changed nothing");
    assert!(!audit_records(&server).iter().any(|r| r.1 == "retention.run"));
}

/// `wharf retention show|set|remove|run`: one scope changed at a time, the report in
/// text and JSON, a non-owner refused in one line.
#[test]
fn wharf_retention_sets_shows_runs_and_removes() {
    let server = retention_server();
    let owner = login_dir(&server, "admin", &server.admin_password);
    let (v, _) = json_ok(
        owner.path(),
        &[
            "retention",
            "set",
            "--scope",
            "registry",
            "--untagged-after-days",
            "30",
        ],
        "",
    );
    assert_eq!(v["version"], 1, "{v}");
    let out = wharf_cli(
        owner.path(),
        &[
            "retention",
            "set",
            "--scope",
            "repository:team/*",
            "--keep-tags",
            "v*=3",
            "--keep-tags",
            "rc-*=1",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Retention rule for repository:team/*: keep last 3 of v*; keep last 1 of rc-* (policy version 2)\n"
    );
    let out = wharf_cli(owner.path(), &["retention", "show"], "");
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.starts_with("Retention policy version 2\n"), "{shown}");
    assert!(
        shown.contains("untagged after 30 days") && shown.contains("keep last 1 of rc-*"),
        "{shown}"
    );
    let (code, message) = json_err(
        owner.path(),
        &["retention", "set", "--scope", "registry", "--keep-tags", "v*"],
        "",
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "INVALID_INPUT",
            "--keep-tags expects PATTERN=COUNT, like v*=3, got \"v*\""
        )
    );
    let (code, message) = json_err(
        owner.path(),
        &[
            "retention",
            "set",
            "--scope",
            "registry",
            "--untagged-after-days",
            "0",
        ],
        "",
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "POLICY_INVALID",
            "the server answered 400 Bad Request: rule 0 (registry): untagged_after_days must be 1 to 3650, got 0"
        )
    );
    let (v, _) = json_ok(owner.path(), &["retention", "remove", "--scope", "registry"], "");
    assert_eq!(v["version"], 3);
    assert_eq!(v["rules"].as_array().map(Vec::len), Some(1), "{v}");
    let (code, _) = json_err(owner.path(), &["retention", "remove", "--scope", "registry"], "");
    assert_eq!(code, "NOT_FOUND");

    let (report, _) = json_ok(owner.path(), &["retention", "run", "--dry-run"], "");
    assert_eq!(report["dry_run"], true, "{report}");
    let out = wharf_cli(owner.path(), &["retention", "run"], "");
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.starts_with("Retention removed 0 untagged manifests and 0 tags in 0 repositories; kept 0 ("),
        "{printed}"
    );

    let token = owner_token(&server);
    let (status, _) = call(
        &server,
        &token,
        reqwest::Method::POST,
        "/api/v1/users",
        Some(json!({"name": "dev", "password": "dev-password-123"})),
    );
    assert_eq!(status, 201);
    let dev = login_dir(&server, "dev", "dev-password-123");
    for args in [
        &["retention", "show"][..],
        &["retention", "run", "--dry-run"][..],
        &["retention", "remove", "--scope", "repository:team/*"][..],
    ] {
        assert_eq!(json_err(dev.path(), args, "").0, "UNAUTHORIZED", "{args:?}");
    }
}
