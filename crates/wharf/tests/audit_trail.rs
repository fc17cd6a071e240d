//! The audit trail of a real publisher's work: a signed `docker push` records who pushed
//! which digest to which tag and which trust roles changed, from where; deleting a tag,
//! a manifest and a blob through the registry API records each, with the caller.

mod common;

use common::{DockerClient, Server, audit_records, pushed_digest, text, upload_blob};

const DCT: &[(&str, &str)] = &[
    ("DOCKER_CONTENT_TRUST", "1"),
    ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123"),
    ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-123"),
];

#[test]
fn pushes_signatures_and_deletions_are_in_the_audit_trail() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let docker = DockerClient::new();
    let out = docker.wharf_login(&server, "admin", &server.admin_password);
    assert!(out.status.success(), "{}", text(&out));
    let image = format!("{}/team/app:v1", server.host);
    docker.import_image(&image);
    let out = docker.cmd(&["push", &image], DCT);
    assert!(out.status.success(), "signed push: {}", text(&out));
    let digest = pushed_digest(&text(&out));

    let records = audit_records(&server);
    let push = records
        .iter()
        .find(|r| r.1 == "manifest.push")
        .unwrap_or_else(|| panic!("{records:?}"));
    assert_eq!(
        push,
        &(
            "admin".to_owned(),
            "manifest.push".to_owned(),
            "team/app:v1".to_owned(),
            format!("from 127.0.0.1; {digest}")
        )
    );
    let signed = records
        .iter()
        .find(|r| r.1 == "trust.update")
        .unwrap_or_else(|| panic!("{records:?}"));
    assert_eq!((signed.0.as_str(), signed.2.as_str()), ("admin", "team/app"));
    // docker's first publish: the new root, targets as it stands after adding v1 (its
    // init made version 1, the tag version 2), and the server's snapshot and timestamp.
    assert_eq!(
        signed.3,
        "from 127.0.0.1; root v1, targets v2, snapshot v1, timestamp v1"
    );

    // Deletions through the registry API, each with the caller and the source address;
    // a signed tag is deleted only after its signature is revoked (content trust first).
    let out = docker.cmd(&["trust", "revoke", "-y", &image], DCT);
    assert!(out.status.success(), "trust revoke: {}", text(&out));
    let token = server.token(&["repository:team/app:pull,push,delete"]);
    let http = server.http();
    let blob = upload_blob(&server, &http, &token, "team/app", b"a blob to delete");
    let delete = |path: String| {
        http.delete(server.url(&path))
            .bearer_auth(&token)
            .send()
            .expect("delete")
            .status()
            .as_u16()
    };
    assert_eq!(delete("/v2/team/app/manifests/v1".into()), 202);
    assert_eq!(delete(format!("/v2/team/app/manifests/{digest}")), 202);
    assert_eq!(delete(format!("/v2/team/app/blobs/{blob}")), 202);
    // Deleting what is gone records nothing.
    assert_eq!(delete("/v2/team/app/manifests/v1".into()), 404);
    let tail: Vec<_> = audit_records(&server)
        .into_iter()
        .filter(|r| r.1.ends_with(".delete"))
        .collect();
    let from = |action: &str, target: String| {
        (
            "admin".to_owned(),
            action.to_owned(),
            target,
            "from 127.0.0.1".to_owned(),
        )
    };
    assert_eq!(
        tail,
        [
            from("tag.delete", "team/app:v1".into()),
            from("manifest.delete", format!("team/app@{digest}")),
            from("blob.delete", format!("team/app@{blob}")),
        ]
    );

    // An owner deletes the whole repository through the admin API: audited, gone, and a
    // second delete says so.
    let owner = server.token(&["registry:admin:*"]);
    let delete_repo = || {
        server
            .http()
            .delete(server.url("/api/v1/repositories/team/app"))
            .bearer_auth(&owner)
            .send()
            .expect("delete repository")
    };
    let r = delete_repo();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().expect("json");
    assert_eq!(v, serde_json::json!({"repository": "team/app", "deleted": true}));
    let r = delete_repo();
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().expect("json");
    assert_eq!(v["errors"][0]["code"], "NAME_UNKNOWN");
    assert_eq!(v["errors"][0]["message"], "repository \"team/app\" is not known");
    let r = http
        .get(server.url("/v2/team/app/tags/list"))
        .bearer_auth(&token)
        .send()
        .expect("tags");
    assert_eq!(r.status(), 404);
    let last = audit_records(&server).pop().expect("a record");
    assert_eq!(
        last,
        (
            "admin".to_owned(),
            "repository.delete".to_owned(),
            "team/app".to_owned(),
            "from 127.0.0.1".to_owned()
        )
    );
}
