//! Locks on repositories and tags, and content trust protecting signed tags from deletion,
//! through real clients: docker (plain and with content trust), the `wharf` CLI and the
//! registry and admin APIs. Runs on the embedded backend and, with
//! `WHARF_TEST_BACKEND=postgres-s3`, on PostgreSQL and Garage.

mod common;

use serde_json::{Value, json};

use common::cli::{json_err, json_ok};
use common::{
    DockerClient, Server, audit_records, logged_in, pushed_digest, refusal, refused, text, wharf_cli,
};

const DCT: &[(&str, &str)] = &[
    ("DOCKER_CONTENT_TRUST", "1"),
    ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123"),
    ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-123"),
];

fn owner_token(server: &Server) -> String {
    server.token(&["registry:admin:*"])
}

/// The digest `reference` (a tag) of `repo` resolves to now, or the status if it does not.
fn current_digest(server: &Server, repo: &str, reference: &str) -> Result<String, u16> {
    let r = server
        .http()
        .head(server.url(&format!("/v2/{repo}/manifests/{reference}")))
        .bearer_auth(server.token(&[&format!("repository:{repo}:pull")]))
        .header(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        )
        .send()
        .expect("manifest head");
    if r.status() != 200 {
        return Err(r.status().as_u16());
    }
    Ok(r.headers()["docker-content-digest"]
        .to_str()
        .expect("digest header")
        .to_owned())
}

/// `DELETE /v2/<repo>/manifests/<reference>` as the owner.
fn delete_reference(server: &Server, repo: &str, reference: &str) -> reqwest::blocking::Response {
    server
        .http()
        .delete(server.url(&format!("/v2/{repo}/manifests/{reference}")))
        .bearer_auth(server.token(&[&format!("repository:{repo}:delete")]))
        .send()
        .expect("manifest delete")
}

fn locks_of(server: &Server, token: &str, repo: &str) -> (u16, Value) {
    let r = server
        .http()
        .get(server.url(&format!("/api/v1/repositories/{repo}/locks")))
        .bearer_auth(token)
        .send()
        .expect("locks");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn put_locks(server: &Server, token: &str, repo: &str, body: &str) -> reqwest::blocking::Response {
    server
        .http()
        .put(server.url(&format!("/api/v1/repositories/{repo}/locks")))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .expect("put locks")
}

/// A write-locked tag: docker's re-push is refused with the lock named and the old digest
/// still pulls, other tags push; a delete lock stops the registry API and `wharf repository
/// delete`; every change is audited; unlocking lets everything through again.
#[test]
fn locks_refuse_pushes_and_deletions_until_unlocked() {
    let server = Server::start();
    let owner = logged_in(&server, "admin", &server.admin_password);
    let cfg = owner.config.path();
    let repo = format!("{}/team/app", server.host);
    owner.import_image(&format!("{repo}:v1"));
    let v1 = pushed_digest(&owner.ok(&["push", &format!("{repo}:v1")]));

    let (locked, _) = json_ok(cfg, &["repository", "lock", "team/app:v1", "--no-write"], "");
    assert_eq!(locked["no_write"], true, "{locked}");
    assert_eq!(locked["no_delete"], false, "{locked}");
    let said = text(&wharf_cli(
        cfg,
        &["repository", "lock", "team/app:v1", "--no-write"],
        "",
    ));
    assert_eq!(said, "team/app:v1 is locked against writes\n");

    owner.import_image(&format!("{repo}:v1"));
    let refused_push = owner.fails(&["push", &format!("{repo}:v1")], &[]);
    assert_eq!(
        refused_push,
        r#"denied: tag "v1" of "team/app" is locked against writes (unlock it with: wharf repository unlock team/app:v1 --no-write)"#
    );
    assert_eq!(current_digest(&server, "team/app", "v1"), Ok(v1.clone()));
    owner.ok(&["rmi", &format!("{repo}:v1")]);
    owner.ok(&["pull", &format!("{repo}@{v1}")]);
    owner.import_image(&format!("{repo}:v2"));
    let v2 = pushed_digest(&owner.ok(&["push", &format!("{repo}:v2")]));

    // A write lock refuses deletion too; so does a delete lock on the repository.
    let write_locked = refused(
        403,
        "DENIED",
        r#"tag "v1" of "team/app" is locked against writes (unlock it with: wharf repository unlock team/app:v1 --no-write)"#,
    );
    assert_eq!(refusal(delete_reference(&server, "team/app", "v1")), write_locked);
    assert_eq!(refusal(delete_reference(&server, "team/app", &v1)), write_locked);
    json_ok(cfg, &["repository", "lock", "team/app", "--no-delete"], "");
    let repo_locked = r#"repository "team/app" is locked against deletion (unlock it with: wharf repository unlock team/app --no-delete)"#;
    assert_eq!(
        refusal(delete_reference(&server, "team/app", "v2")),
        refused(403, "DENIED", repo_locked)
    );
    assert_eq!(
        json_err(cfg, &["repository", "delete", "team/app", "--yes"], ""),
        (
            "DENIED".to_owned(),
            format!("the server answered 403 Forbidden: {repo_locked}")
        )
    );
    assert_eq!(current_digest(&server, "team/app", "v1"), Ok(v1.clone()));
    assert_eq!(current_digest(&server, "team/app", "v2"), Ok(v2.clone()));

    let (shown, _) = json_ok(cfg, &["repository", "locks", "team/app"], "");
    let flags: Vec<(Value, Value, Value)> = shown["locks"]
        .as_array()
        .expect("locks")
        .iter()
        .map(|l| (l["tag"].clone(), l["no_delete"].clone(), l["no_write"].clone()))
        .collect();
    assert_eq!(
        flags,
        [
            (Value::Null, json!(true), json!(false)),
            (json!("v1"), json!(false), json!(true))
        ]
    );
    let lock_records: Vec<(String, String, String)> = audit_records(&server)
        .into_iter()
        .filter(|(_, action, _, _)| action == "repository.lock")
        .map(|(actor, _, target, detail)| {
            (
                actor,
                target,
                detail.split("; ").nth(1).unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        lock_records,
        [
            (
                "admin".to_owned(),
                "team/app:v1".to_owned(),
                "no_delete=unchanged, no_write=true".to_owned()
            ),
            (
                "admin".to_owned(),
                "team/app:v1".to_owned(),
                "no_delete=unchanged, no_write=true".to_owned()
            ),
            (
                "admin".to_owned(),
                "team/app".to_owned(),
                "no_delete=true, no_write=unchanged".to_owned()
            ),
        ]
    );

    // Unlocked (no flag: both attributes), everything passes again.
    let said = text(&wharf_cli(cfg, &["repository", "unlock", "team/app:v1"], ""));
    assert_eq!(said, "team/app:v1 is not locked\n");
    json_ok(cfg, &["repository", "unlock", "team/app"], "");
    assert_eq!(
        json_ok(cfg, &["repository", "locks", "team/app"], "").0["locks"],
        json!([])
    );
    owner.import_image(&format!("{repo}:v1"));
    let v1_again = pushed_digest(&owner.ok(&["push", &format!("{repo}:v1")]));
    assert_ne!(v1_again, v1);
    assert_eq!(delete_reference(&server, "team/app", "v1").status(), 202);
    json_ok(cfg, &["repository", "delete", "team/app", "--yes"], "");
    assert_eq!(current_digest(&server, "team/app", "v2"), Err(404));
}

/// A write-locked repository takes no blob, manifest or trust data; a delete-locked one
/// keeps its blob links.
#[test]
fn a_write_locked_repository_takes_nothing_new() {
    let server = Server::start();
    let token = server.token(&["repository:team/app:pull,push,delete"]);
    let http = server.http();
    let (first, _) = common::push_tiny_image(&server, &http, &token, "team/app", "v1", "one");
    let owner = owner_token(&server);
    assert_eq!(
        put_locks(&server, &owner, "team/app", r#"{"no_write": true}"#).status(),
        200
    );
    let frozen = refused(
        403,
        "DENIED",
        r#"repository "team/app" is locked against writes (unlock it with: wharf repository unlock team/app --no-write)"#,
    );
    let upload = http
        .post(server.url("/v2/team/app/blobs/uploads/"))
        .bearer_auth(&token)
        .send()
        .expect("upload start");
    assert_eq!(refusal(upload), frozen);
    let layer = common::sha256(b"layer one");
    let blob_delete = http
        .delete(server.url(&format!("/v2/team/app/blobs/{layer}")))
        .bearer_auth(&token)
        .send()
        .expect("blob delete");
    assert_eq!(refusal(blob_delete), frozen);
    // A manifest whose blobs are all there already is still refused.
    let manifest = http
        .get(server.url(&format!("/v2/team/app/manifests/{first}")))
        .bearer_auth(&token)
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .expect("manifest get")
        .bytes()
        .expect("body");
    let put = http
        .put(server.url("/v2/team/app/manifests/v2"))
        .bearer_auth(&token)
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_vec())
        .send()
        .expect("manifest put");
    assert_eq!(refusal(put), frozen);
    assert_eq!(current_digest(&server, "team/app", "v2"), Err(404));
    assert_eq!(current_digest(&server, "team/app", "v1"), Ok(first));
}

/// Only owners set locks: a user who may push and delete is answered as every owner route
/// answers them. Bad requests are refused with what was wrong, and change nothing.
#[test]
fn only_owners_change_locks_and_bad_requests_change_nothing() {
    let server = Server::start();
    let owner = owner_token(&server);
    let token = server.token(&["repository:team/app:pull,push,delete"]);
    common::push_tiny_image(&server, &server.http(), &token, "team/app", "v1", "one");
    for (path, body) in [
        (
            "/api/v1/users",
            r#"{"name": "pusher", "password": "pusher-password-1"}"#,
        ),
        (
            "/api/v1/role-assignments",
            r#"{"role": "AcrPush", "assignee": "pusher", "scope": "repository:team/app"}"#,
        ),
        (
            "/api/v1/role-assignments",
            r#"{"role": "AcrDelete", "assignee": "pusher", "scope": "repository:team/app"}"#,
        ),
    ] {
        let r = server
            .http()
            .post(server.url(path))
            .bearer_auth(&owner)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("setup");
        assert_eq!(r.status(), 201, "{path}: {}", r.text().unwrap_or_default());
    }
    let pusher = server
        .token_as(
            "pusher",
            "pusher-password-1",
            &["repository:team/app:push,pull,delete", "registry:admin:*"],
        )
        .expect("pusher token");
    let other_owner_route = server
        .http()
        .put(server.url("/api/v1/anonymous-pull"))
        .bearer_auth(&pusher)
        .header("content-type", "application/json")
        .body(r#"{"scopes": ["registry"]}"#)
        .send()
        .expect("anonymous pull");
    let as_other_routes = refusal(other_owner_route);
    assert_eq!(as_other_routes.0, 401, "{as_other_routes:?}");
    assert_eq!(
        refusal(put_locks(
            &server,
            &pusher,
            "team/app",
            r#"{"tag": "v1", "no_delete": true}"#
        )),
        as_other_routes
    );
    let (status, _) = locks_of(&server, &pusher, "team/app");
    assert_eq!(status, 401);

    let bad = |body: &str, repo: &str| refusal(put_locks(&server, &owner, repo, body));
    let shape =
        r#"{"tag": "v1" (leave out for the repository), "no_delete": true|false, "no_write": true|false}"#;
    assert_eq!(
        bad(r#"{"tag": "v1"}"#, "team/app"),
        refused(
            400,
            "BAD_REQUEST",
            &format!("say what to change: expected {shape}")
        )
    );
    let (status, code, message) = bad(r#"{"no_delete": "yes"}"#, "team/app");
    assert_eq!((status, code.as_str()), (400, "BAD_REQUEST"));
    assert!(message.starts_with(&format!("expected {shape}: ")), "{message}");
    assert_eq!(
        bad(r#"{"tag": "v9", "no_delete": true}"#, "team/app"),
        refused(404, "MANIFEST_UNKNOWN", "manifest team/app:v9 is not known")
    );
    assert_eq!(
        bad(r#"{"tag": "-v1", "no_delete": true}"#, "team/app"),
        refused(400, "TAG_INVALID", r#"invalid tag "-v1""#)
    );
    assert_eq!(
        bad(r#"{"no_delete": true}"#, "team/none"),
        refused(404, "NAME_UNKNOWN", r#"repository "team/none" is not known"#)
    );
    assert_eq!(
        bad(r#"{"no_delete": true}"#, "Team/App"),
        refused(400, "NAME_INVALID", r#"invalid repository name "Team/App""#)
    );
    assert_eq!(
        locks_of(&server, &owner, "team/app"),
        (200, json!({ "repository": "team/app", "locks": [] }))
    );
    assert!(
        audit_records(&server)
            .iter()
            .all(|(_, action, _, _)| action != "repository.lock"),
        "a refused change was audited"
    );
    assert_eq!(delete_reference(&server, "team/app", "v1").status(), 202);
}

/// Content trust comes first: a tag signed for what it points at is not deleted — by tag,
/// by its digest, or with its repository — until `docker trust revoke`; it still pulls
/// with content trust meanwhile. An unsigned tag of the same repository deletes.
#[test]
fn signed_tags_are_not_deleted_until_revoked() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = logged_in(&server, "admin", &server.admin_password);
    let repo = format!("{}/team/app", server.host);
    owner.import_image(&format!("{repo}:signed"));
    let signed = dct_ok(&owner, &["push", &format!("{repo}:signed")]);
    assert!(signed.contains("Successfully signed"), "{signed}");
    let digest = pushed_digest(&signed);
    owner.import_image(&format!("{repo}:plain"));
    owner.ok(&["push", &format!("{repo}:plain")]);

    let by_tag = format!(
        r#"tag "signed" of "team/app" is signed (targets); revoke the signature first: docker trust revoke {repo}:signed"#
    );
    assert_eq!(
        refusal(delete_reference(&server, "team/app", "signed")),
        refused(403, "DENIED", &by_tag)
    );
    assert_eq!(
        refusal(delete_reference(&server, "team/app", &digest)),
        refused(
            403,
            "DENIED",
            &format!(
                r#"manifest {digest} of "team/app" is signed as tag "signed" (targets); revoke the signature first: docker trust revoke {repo}:signed"#
            )
        )
    );
    let cfg = owner.config.path();
    assert_eq!(
        json_err(cfg, &["repository", "untag", "team/app:signed"], "").1,
        format!("the registry answered 403 Forbidden: DENIED: {by_tag}")
    );
    assert_eq!(
        json_err(cfg, &["repository", "delete", "team/app", "--yes"], "").1,
        format!(
            r#"the server answered 403 Forbidden: repository "team/app" has signed tags "signed" (targets); revoke the signatures first (docker trust revoke {repo}:signed) or reset the repository's trust data"#
        )
    );
    assert_eq!(current_digest(&server, "team/app", "signed"), Ok(digest.clone()));
    owner.ok(&["rmi", &format!("{repo}:signed")]);
    dct_ok(&owner, &["pull", &format!("{repo}:signed")]);

    assert_eq!(delete_reference(&server, "team/app", "plain").status(), 202);
    dct_ok(&owner, &["trust", "revoke", "-y", &format!("{repo}:signed")]);
    assert_eq!(delete_reference(&server, "team/app", "signed").status(), 202);
    assert_eq!(current_digest(&server, "team/app", "signed"), Err(404));
}

/// Run docker with content trust, assert success, return stdout+stderr.
fn dct_ok(client: &DockerClient, args: &[&str]) -> String {
    let out = client.cmd(args, DCT);
    let t = text(&out);
    assert!(out.status.success(), "docker {args:?} failed:\n{t}");
    t
}

/// A write-locked repository keeps its trust data too: `docker trust revoke` (a trust
/// update and nothing else) is refused with the lock named, the tag still pulls with
/// content trust, and after unlocking the revocation goes through.
#[test]
fn a_write_locked_repository_keeps_its_trust_data() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = logged_in(&server, "admin", &server.admin_password);
    let repo = format!("{}/team/app", server.host);
    owner.import_image(&format!("{repo}:v1"));
    dct_ok(&owner, &["push", &format!("{repo}:v1")]);
    let trust_before = trust_targets(&server);
    assert!(trust_before.contains(r#""_type":"Targets""#), "{trust_before}");
    let token = owner_token(&server);
    assert_eq!(
        put_locks(&server, &token, "team/app", r#"{"no_write": true}"#).status(),
        200
    );

    let out = owner.cmd(&["trust", "revoke", "-y", &format!("{repo}:v1")], DCT);
    assert!(
        !out.status.success(),
        "revoking under a write lock must fail: {}",
        text(&out)
    );
    let said = text(&out);
    assert!(
        said.contains(
            r#"repository "team/app" is locked against writes (unlock it with: wharf repository unlock team/app --no-write)"#
        ),
        "{said}"
    );
    assert_eq!(trust_targets(&server), trust_before);
    owner.ok(&["rmi", &format!("{repo}:v1")]);
    dct_ok(&owner, &["pull", &format!("{repo}:v1")]);

    assert_eq!(
        put_locks(&server, &token, "team/app", r#"{"no_write": false}"#).status(),
        200
    );
    dct_ok(&owner, &["trust", "revoke", "-y", &format!("{repo}:v1")]);
    assert_eq!(delete_reference(&server, "team/app", "v1").status(), 202);
}

/// The published `targets` role of team/app, as a client reads it.
fn trust_targets(server: &Server) -> String {
    let gun = format!("{}/team/app", server.host);
    server
        .http()
        .get(server.url(&format!("/v2/{gun}/_trust/tuf/targets.json")))
        .bearer_auth(server.token(&[&format!("repository:{gun}:pull")]))
        .send()
        .expect("targets")
        .text()
        .expect("body")
}
