//! Storage quotas through their real surfaces — `docker push`, the registry API, the
//! admin API and `wharf quota` — on the embedded backend and, with
//! `WHARF_TEST_BACKEND=postgres-s3`, on PostgreSQL and Garage.

mod common;

use serde_json::{Value, json};

use common::cli::{json_err, json_ok, login_dir};
use common::{
    Server, audit_records, image_tarball, logged_in, push_tiny_image, refusal, refused, sha256, upload_blob,
};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn owner_token(server: &Server) -> String {
    server.token(&["registry:admin:*"])
}

fn quotas(server: &Server) -> Value {
    let r = server
        .http()
        .get(server.url("/api/v1/quotas"))
        .bearer_auth(owner_token(server))
        .send()
        .expect("get quotas");
    assert_eq!(r.status(), 200);
    r.json().expect("json")
}

/// `PUT /api/v1/quotas` as the owner: status and answer.
fn put_quotas(server: &Server, document: &Value) -> reqwest::blocking::Response {
    server
        .http()
        .put(server.url("/api/v1/quotas"))
        .bearer_auth(owner_token(server))
        .json(document)
        .send()
        .expect("put quotas")
}

/// Replace the quotas with `rules` (read first, written with that version).
fn set_quotas(server: &Server, rules: Value) {
    let version = quotas(server)["version"].as_u64().expect("version");
    let r = put_quotas(server, &json!({ "version": version, "rules": rules }));
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
}

fn registry_usage(server: &Server) -> Value {
    let r = server
        .http()
        .get(server.url("/api/v1/usage"))
        .bearer_auth(owner_token(server))
        .send()
        .expect("usage");
    assert_eq!(r.status(), 200);
    r.json::<Value>().expect("json")["registry"].clone()
}

fn repository_linked_bytes(server: &Server, repo: &str) -> u64 {
    let r = server
        .http()
        .get(server.url(&format!("/api/v1/repositories/{repo}/usage")))
        .bearer_auth(owner_token(server))
        .send()
        .expect("usage");
    assert_eq!(r.status(), 200);
    r.json::<Value>().expect("json")["linked_bytes"]
        .as_u64()
        .expect("linked_bytes")
}

fn create_pusher(server: &Server, name: &str, password: &str, repo: &str) {
    let owner = owner_token(server);
    let r = server
        .http()
        .post(server.url("/api/v1/users"))
        .bearer_auth(&owner)
        .json(&json!({ "name": name, "password": password }))
        .send()
        .expect("create user");
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
    let r = server
        .http()
        .post(server.url("/api/v1/role-assignments"))
        .bearer_auth(&owner)
        .json(&json!({ "role": "AcrPush", "assignee": name, "scope": format!("repository:{repo}") }))
        .send()
        .expect("assign");
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
}

/// An image of one layer of about `kib` KiB that gzip cannot shrink much (hex of a
/// SHA-256 chain), imported into docker as `reference`.
fn import_sized_image(docker: &common::DockerClient, reference: &str, kib: usize) {
    let mut content = String::with_capacity(kib * 1024 * 2);
    let mut state = sha256(reference.as_bytes());
    while content.len() < kib * 1024 * 2 {
        state = sha256(state.as_bytes());
        content.push_str(&state[7..]);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tar = image_tarball(dir.path(), "img", &content);
    docker.ok(&["import", tar.to_str().expect("path"), reference]);
}

fn tags_status(server: &Server, token: &str, repo: &str) -> (u16, Value) {
    let r = server
        .http()
        .get(server.url(&format!("/v2/{repo}/tags/list")))
        .bearer_auth(token)
        .send()
        .expect("tags");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// A prefix quota on real docker pushes: an image over it is refused with docker showing
/// the DENIED message and nothing is stored; the same layers pushed to another repository
/// under the prefix cost only the new manifest (shared blobs count once); raising the
/// quota lets the refused push through.
#[test]
fn docker_push_over_a_prefix_quota_is_denied_until_the_quota_is_raised() {
    let server = Server::start();
    let docker = logged_in(&server, "admin", &server.admin_password);
    let reference = |repo: &str| format!("{}/{repo}:v1", server.host);
    import_sized_image(&docker, &reference("team/a"), 96);
    docker.ok(&["push", &reference("team/a")]);
    let first = registry_usage(&server)["stored_bytes"].as_u64().expect("stored");
    assert!(first > 40 * 1024, "the layer did not stay large: {first}");

    // Room for a manifest or two, not for another ~100 KiB layer.
    let limit = first + 4096;
    set_quotas(
        &server,
        json!([{ "scope": "repository:team/*", "max_bytes": limit }]),
    );
    import_sized_image(&docker, &reference("team/b"), 96);
    let before = registry_usage(&server);
    let printed = docker.fails(&["push", &reference("team/b")], &[]);
    // Which blob docker finishes first varies; the scope, its usage and limit do not.
    let (start, end) = (
        format!(
            "denied: quota exceeded for repository:team/*: {} used + ",
            human(first)
        ),
        format!(
            " would exceed {} (raise it with: wharf quota set repository:team/* <bytes>)",
            human(limit)
        ),
    );
    assert!(
        printed.starts_with(&start) && printed.ends_with(&end),
        "{printed}"
    );
    let token = server.token(&[
        "repository:team/a:pull",
        "repository:team/b:pull",
        "repository:team/c:pull",
    ]);
    assert_eq!(
        tags_status(&server, &token, "team/b").0,
        404,
        "team/b was created"
    );
    assert_eq!(
        registry_usage(&server),
        before,
        "the refused push stored something"
    );

    // The same image under another name in the prefix: its blobs are already in the
    // scope, only its manifest is new. Counted per repository it would not fit.
    docker.ok(&["tag", &reference("team/a"), &reference("team/c")]);
    docker.ok(&["push", &reference("team/c")]);
    let (status, tags) = tags_status(&server, &token, "team/c");
    assert_eq!((status, &tags["tags"]), (200, &json!(["v1"])));
    let per_repository =
        repository_linked_bytes(&server, "team/a") + repository_linked_bytes(&server, "team/c");
    assert!(
        per_repository > limit,
        "{per_repository} <= {limit}: the test proves nothing"
    );
    // And pushing team/a again costs nothing at all.
    docker.ok(&["push", &reference("team/a")]);

    // Raised through the CLI: the refused push goes through.
    let owner = login_dir(&server, "admin", &server.admin_password);
    json_ok(owner.path(), &["quota", "set", "repository:team/*", "10MiB"], "");
    docker.ok(&["push", &reference("team/b")]);
    let (status, tags) = tags_status(&server, &token, "team/b");
    assert_eq!((status, &tags["tags"]), (200, &json!(["v1"])));
}

/// The registry API on its own: a monolithic upload, the last PUT of a chunked upload, a
/// cross-repository mount and a manifest PUT over a repository quota are each refused
/// with the exact DENIED message, and leave no blob, link, session or tag behind; a blob
/// the repository already links costs nothing; the registry rule covers what no more
/// specific rule does.
#[test]
fn uploads_mounts_and_manifests_over_quota_are_denied_and_store_nothing() {
    let server = Server::start();
    let http = server.http();
    let token = server.token(&[
        "repository:q/app:pull,push",
        "repository:q/other:pull,push",
        "repository:free/app:pull,push",
    ]);
    set_quotas(
        &server,
        json!([{ "scope": "repository:q/app", "max_bytes": 100 }]),
    );
    let denied = |used: &str, adding: &str| {
        refused(
            403,
            "DENIED",
            &format!(
                "quota exceeded for repository:q/app: {used} used + {adding} would exceed 100 B (raise it with: wharf quota set repository:q/app <bytes>)"
            ),
        )
    };
    let before = registry_usage(&server);

    // Monolithic.
    let big = vec![b'x'; 150];
    let r = http
        .post(server.url(&format!("/v2/q/app/blobs/uploads/?digest={}", sha256(&big))))
        .bearer_auth(&token)
        .body(big.clone())
        .send()
        .expect("post");
    assert_eq!(refusal(r), denied("0 B", "150 B"));
    assert_eq!(server.blob_status(&token, "q/app", &sha256(&big)), 404);

    // Chunked: the PATCH is taken (the size is not known yet), the final PUT refused and
    // the session gone with its bytes.
    let r = http
        .post(server.url("/v2/q/app/blobs/uploads/"))
        .bearer_auth(&token)
        .send()
        .expect("start");
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().expect("location").to_owned();
    let location = if location.starts_with("http") {
        location
    } else {
        server.url(&location)
    };
    let r = http
        .patch(&location)
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .body(big.clone())
        .send()
        .expect("patch");
    assert_eq!(r.status(), 202);
    let separator = if location.contains('?') { '&' } else { '?' };
    let r = http
        .put(format!("{location}{separator}digest={}", sha256(&big)))
        .bearer_auth(&token)
        .send()
        .expect("put");
    assert_eq!(refusal(r), denied("0 B", "150 B"));
    assert_eq!(server.blob_status(&token, "q/app", &sha256(&big)), 404);
    let r = http.get(&location).bearer_auth(&token).send().expect("status");
    assert_eq!(refusal(r).1, "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(tags_status(&server, &token, "q/app").0, 404, "q/app was created");
    assert_eq!(
        registry_usage(&server),
        before,
        "a refused upload stored something"
    );

    // Under the quota; the same blob again is free, a different one is not.
    let small = upload_blob(&server, &http, &token, "q/app", &[b'a'; 60]);
    assert_eq!(upload_blob(&server, &http, &token, "q/app", &[b'a'; 60]), small);
    let other = vec![b'b'; 60];
    let r = http
        .post(server.url(&format!("/v2/q/app/blobs/uploads/?digest={}", sha256(&other))))
        .bearer_auth(&token)
        .body(other.clone())
        .send()
        .expect("post");
    assert_eq!(refusal(r), denied("60 B", "60 B"));

    // A mount from a repository no quota covers.
    let mounted = upload_blob(&server, &http, &token, "q/other", &[b'm'; 80]);
    let r = http
        .post(server.url(&format!("/v2/q/app/blobs/uploads/?mount={mounted}&from=q/other")))
        .bearer_auth(&token)
        .send()
        .expect("mount");
    assert_eq!(refusal(r), denied("60 B", "80 B"));
    assert_eq!(server.blob_status(&token, "q/app", &mounted), 404);

    // A manifest naming the stored blob: its own bytes would go over.
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": small, "size": 60},
        "layers": []
    }))
    .expect("manifest");
    let r = http
        .put(server.url("/v2/q/app/manifests/v1"))
        .bearer_auth(&token)
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .expect("manifest put");
    assert_eq!(refusal(r), denied("60 B", &format!("{} B", manifest.len())));
    let (status, tags) = tags_status(&server, &token, "q/app");
    assert_eq!(status, 200);
    assert!(tags["tags"].as_array().is_none_or(Vec::is_empty), "{tags}");

    // A registry rule applies where no more specific one does: free/app is measured
    // against everything stored, q/app still against its own rule.
    let stored = registry_usage(&server)["stored_bytes"].as_u64().expect("stored");
    set_quotas(
        &server,
        json!([
            { "scope": "repository:q/app", "max_bytes": 100 },
            { "scope": "registry", "max_bytes": stored + 50 },
        ]),
    );
    let r = http
        .post(server.url(&format!("/v2/free/app/blobs/uploads/?digest={}", sha256(&other))))
        .bearer_auth(&token)
        .body(other.clone())
        .send()
        .expect("post");
    assert_eq!(
        refusal(r),
        refused(
            403,
            "DENIED",
            &format!(
                "quota exceeded for registry: {} used + 60 B would exceed {} (raise it with: wharf quota set registry <bytes>)",
                human(stored),
                human(stored + 50)
            )
        )
    );
    assert_eq!(server.blob_status(&token, "free/app", &sha256(&other)), 404);
    // Raised: the same push goes through, into both scopes.
    set_quotas(
        &server,
        json!([{ "scope": "repository:q/app", "max_bytes": 10_000 }]),
    );
    let (_, pushed) = push_tiny_image(&server, &http, &token, "q/app", "v1", "raised");
    upload_blob(&server, &http, &token, "free/app", &other);

    // Lowered below what q/app holds: nothing is deleted, what it holds may be pushed
    // again and tagged anew (a tag adds no bytes), anything new is refused.
    let held = repository_linked_bytes(&server, "q/app");
    set_quotas(&server, json!([{ "scope": "repository:q/app", "max_bytes": 1 }]));
    common::put_manifest(&server, &token, "q/app", "v1", OCI_MANIFEST, pushed.clone());
    common::put_manifest(&server, &token, "q/app", "again", OCI_MANIFEST, pushed);
    assert_eq!(upload_blob(&server, &http, &token, "q/app", &[b'a'; 60]), small);
    let r = http
        .post(server.url(&format!("/v2/q/app/blobs/uploads/?digest={}", sha256(&other))))
        .bearer_auth(&token)
        .body(other.clone())
        .send()
        .expect("post");
    assert_eq!(
        refusal(r),
        refused(
            403,
            "DENIED",
            &format!(
                "quota exceeded for repository:q/app: {} used + 60 B would exceed 1 B (raise it with: wharf quota set repository:q/app <bytes>)",
                human(held)
            )
        )
    );
    assert_eq!(repository_linked_bytes(&server, "q/app"), held);
}

/// Sizes as the server's messages print them (binary units, one decimal).
fn human(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let units = ["KiB", "MiB", "GiB"];
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", units[unit])
}

/// Owner only; bad documents refused whole with exact messages and nothing stored; a
/// write based on an older version is a 409; every stored change is audited.
#[test]
fn quota_api_refuses_non_owners_bad_documents_and_stale_versions() {
    let server = Server::start();
    let http = server.http();
    create_pusher(&server, "dev", "dev-password-123", "team/app");
    let dev = server
        .token_as(
            "dev",
            "dev-password-123",
            &["registry:admin:*", "repository:team/app:pull,push"],
        )
        .expect("dev token");
    let unauthorized = refused(
        401,
        "UNAUTHORIZED",
        "access to the requested resource is not authorized",
    );
    let change = json!({ "version": 0, "rules": [{ "scope": "registry", "max_bytes": 1 }] });
    let r = http
        .get(server.url("/api/v1/quotas"))
        .bearer_auth(&dev)
        .send()
        .expect("get");
    assert_eq!(refusal(r), unauthorized);
    let r = http
        .put(server.url("/api/v1/quotas"))
        .bearer_auth(&dev)
        .json(&change)
        .send()
        .expect("put");
    assert_eq!(refusal(r), unauthorized);
    let r = http
        .put(server.url("/api/v1/quotas"))
        .json(&change)
        .send()
        .expect("put");
    assert_eq!(refusal(r).0, 401);
    assert_eq!(quotas(&server), json!({ "version": 0, "rules": [] }));

    let bad = |document: &str| {
        refusal(
            http.put(server.url("/api/v1/quotas"))
                .bearer_auth(owner_token(&server))
                .header("content-type", "application/json")
                .body(document.to_owned())
                .send()
                .expect("put"),
        )
    };
    let invalid = |message: &str| refused(400, "QUOTA_INVALID", message);
    assert_eq!(
        bad(r#"{"version":0,"rules":[{"scope":"repository:Team/*","max_bytes":1}]}"#),
        invalid(
            "rule 0: scope \"repository:Team/*\" must be registry, repository:<name> or repository:<prefix>/*"
        )
    );
    for (value, shown) in [("0", "0"), ("-5", "-5"), ("1.5", "1.5")] {
        assert_eq!(
            bad(&format!(
                r#"{{"version":0,"rules":[{{"scope":"repository:team/*","max_bytes":{value}}}]}}"#
            )),
            invalid(&format!(
                "rule 0 (repository:team/*): max_bytes must be a whole number of bytes greater than 0, not {shown}"
            ))
        );
    }
    assert_eq!(
        bad(
            r#"{"version":0,"rules":[{"scope":"registry","max_bytes":1},{"scope":"registry","max_bytes":2}]}"#
        ),
        invalid("rule 1: scope \"registry\" appears twice")
    );
    assert_eq!(
        bad(r#"{"version":0,"rules":[{"scope":"registry","max_bytes":1,"soft":true}]}"#),
        invalid(
            "the quota document is not valid JSON of the expected shape: unknown field `soft`, expected `scope` or `max_bytes` at line 1 column 62"
        )
    );
    assert_eq!(
        bad(r#"{"version":0,"rules":[{"scope":"registry"}]}"#),
        invalid(
            "the quota document is not valid JSON of the expected shape: missing field `max_bytes` at line 1 column 42"
        )
    );
    assert_eq!(quotas(&server), json!({ "version": 0, "rules": [] }));
    assert!(audit_records(&server).iter().all(|r| r.1 != "quota.update"));

    // Stored trimmed, with the next version; the old version is now stale.
    let r = put_quotas(
        &server,
        &json!({ "version": 0, "rules": [{ "scope": " repository:team/* ", "max_bytes": 1024 }] }),
    );
    assert_eq!(r.status(), 200);
    let stored = json!({ "version": 1, "rules": [{ "scope": "repository:team/*", "max_bytes": 1024 }] });
    assert_eq!(r.json::<Value>().expect("json"), stored);
    assert_eq!(
        refusal(put_quotas(&server, &json!({ "version": 0, "rules": [] }))),
        refused(
            409,
            "CONFLICT",
            "the quotas changed since version 0 was read (they are now version 1); read them again and reapply the change"
        )
    );
    assert_eq!(quotas(&server), stored);
    let records: Vec<_> = audit_records(&server)
        .into_iter()
        .filter(|r| r.1 == "quota.update")
        .map(|r| (r.0, r.2, r.3))
        .collect();
    assert_eq!(
        records,
        [(
            "admin".to_owned(),
            "registry".to_owned(),
            "from 127.0.0.1; version 1: repository:team/* 1024".to_owned()
        )]
    );
}

/// `wharf quota`: set in binary units, show as a table and as JSON, remove; a bad size is
/// refused before anything is asked; a non-owner is refused.
#[test]
fn wharf_quota_sets_shows_and_removes() {
    let server = Server::start();
    let owner = login_dir(&server, "admin", &server.admin_password);
    let (stored, _) = json_ok(owner.path(), &["quota", "set", "repository:team/*", "10GiB"], "");
    assert_eq!(
        stored,
        json!({ "version": 1, "rules": [{ "scope": "repository:team/*", "max_bytes": 10u64 << 30 }] })
    );
    json_ok(owner.path(), &["quota", "set", "registry", "1024"], "");
    let out = common::wharf_cli(owner.path(), &["quota", "show"], "");
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Quotas version 2\n\
         SCOPE              MAX\n\
         repository:team/*  10.0 GiB (10737418240 bytes)\n\
         registry           1.0 KiB (1024 bytes)\n"
    );
    let out = common::wharf_cli(owner.path(), &["quota", "set", "registry", "2KiB"], "");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Quota for registry: 2.0 KiB (2048 bytes) (quotas version 3)\n"
    );
    let (shown, _) = json_ok(owner.path(), &["quota", "show"], "");
    assert_eq!(shown, quotas(&server));
    let out = common::wharf_cli(owner.path(), &["quota", "remove", "registry"], "");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Removed the quota for registry (quotas version 4)\n"
    );
    assert_eq!(
        json_err(owner.path(), &["quota", "remove", "registry"], ""),
        ("NOT_FOUND".to_owned(), "no quota for scope registry".to_owned())
    );
    assert_eq!(
        json_err(owner.path(), &["quota", "set", "registry", "10GB"], ""),
        (
            "INVALID_INPUT".to_owned(),
            "invalid size \"10GB\": expected a whole number of bytes, or of KiB, MiB, GiB or TiB (e.g. 10GiB)"
                .to_owned()
        )
    );
    assert_eq!(
        json_err(owner.path(), &["quota", "set", "repository:Team", "1"], ""),
        (
            "QUOTA_INVALID".to_owned(),
            "the server answered 400 Bad Request: rule 1: scope \"repository:Team\" must be registry, repository:<name> or repository:<prefix>/*"
                .to_owned()
        )
    );
    assert_eq!(quotas(&server)["version"], 4);

    create_pusher(&server, "dev", "dev-password-123", "team/app");
    let dev = login_dir(&server, "dev", "dev-password-123");
    assert_eq!(json_err(dev.path(), &["quota", "show"], "").0, "UNAUTHORIZED");
    assert_eq!(
        json_err(dev.path(), &["quota", "set", "repository:team/app", "1"], "").0,
        "UNAUTHORIZED"
    );
    assert_eq!(quotas(&server)["version"], 4);
}
