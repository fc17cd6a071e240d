//! Storage usage through its real surfaces — the admin API, `wharf repository usage`,
//! `/metrics` and the portal — after real `docker push`es, on the embedded backend and,
//! with `WHARF_TEST_BACKEND=postgres-s3`, on PostgreSQL and Garage.

mod common;

use std::time::Duration;

use serde_json::{Value, json};

use common::cli::{json_err, json_ok, keys, login_dir};
use common::portal_client::PortalClient;
use common::{Server, logged_in, metric, push_tiny_image, pushed_digest, refusal, refused, text, wharf_cli};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn owner_token(server: &Server) -> String {
    server.token(&["registry:admin:*"])
}

/// `GET path` with `token`: status and JSON answer.
fn get(server: &Server, token: &str, path: &str) -> (u16, Value) {
    let r = server
        .http()
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn repository_usage(server: &Server, repo: &str) -> Value {
    let (status, v) = get(
        server,
        &owner_token(server),
        &format!("/api/v1/repositories/{repo}/usage"),
    );
    assert_eq!(status, 200, "{v}");
    v
}

fn registry_usage(server: &Server) -> Value {
    let (status, v) = get(server, &owner_token(server), "/api/v1/usage");
    assert_eq!(status, 200, "{v}");
    v["registry"].clone()
}

/// A manifest as docker pushed it: its own length and its config's and layers' digests
/// and sizes.
struct Pushed {
    manifest_bytes: u64,
    blobs: Vec<(String, u64)>,
}

fn pushed(server: &Server, token: &str, repo: &str, reference: &str) -> Pushed {
    let r = server
        .http()
        .get(server.url(&format!("/v2/{repo}/manifests/{reference}")))
        .bearer_auth(token)
        .header(
            "accept",
            format!("{OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json"),
        )
        .send()
        .expect("manifest get");
    assert_eq!(r.status(), 200, "manifest {repo}:{reference}");
    let bytes = r.bytes().expect("body");
    let m: Value = serde_json::from_slice(&bytes).expect("manifest json");
    let entry = |e: &Value| {
        (
            e["digest"].as_str().expect("digest").to_owned(),
            e["size"].as_u64().expect("size"),
        )
    };
    let mut blobs = vec![entry(&m["config"])];
    blobs.extend(m["layers"].as_array().expect("layers").iter().map(entry));
    Pushed {
        manifest_bytes: bytes.len() as u64,
        blobs,
    }
}

fn blob_sum(blobs: &[(String, u64)]) -> u64 {
    blobs.iter().map(|(_, s)| s).sum()
}

fn create_user(server: &Server, name: &str, password: &str) {
    let owner = owner_token(server);
    let r = server
        .http()
        .post(server.url("/api/v1/users"))
        .bearer_auth(&owner)
        .json(&json!({ "name": name, "password": password }))
        .send()
        .expect("create user");
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
}

/// A user holding every right on `repo` except the Owner role.
fn pusher(server: &Server, name: &str, password: &str, repo: &str) {
    create_user(server, name, password);
    let r = server
        .http()
        .post(server.url("/api/v1/role-assignments"))
        .bearer_auth(owner_token(server))
        .json(&json!({ "role": "AcrPush", "assignee": name, "scope": format!("repository:{repo}") }))
        .send()
        .expect("assign");
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
}

/// One image pushed by docker to two repositories (every blob shared) and a second image
/// only in `team/a`: the registry counts the shared blobs once, each repository counts
/// them, and only what no other repository links is "would free". Deleting a manifest
/// keeps its blobs linked until garbage collection; deleting a repository moves the
/// shared blobs into the other's "would free".
#[test]
fn docker_pushes_sharing_layers_are_counted_once_and_would_free_per_repository() {
    let server = Server::start_with(&[
        ("WHARF_GC_ALLOW_SHORT_GRACE", "true"),
        ("WHARF_GC_GRACE_SECONDS", "1"),
    ]);
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

    let token = server.token(&["repository:team/a:pull,delete", "repository:team/b:pull"]);
    let shared = pushed(&server, &token, "team/a", "v1");
    let in_b = pushed(&server, &token, "team/b", "v1");
    assert_eq!(shared.blobs, in_b.blobs, "docker pushed different blobs");
    let old = pushed(&server, &token, "team/a", "old");
    assert!(old.blobs.iter().all(|b| !shared.blobs.contains(b)));
    let (shared_bytes, old_bytes) = (blob_sum(&shared.blobs), blob_sum(&old.blobs));

    let a = repository_usage(&server, "team/a");
    assert_eq!(
        a,
        json!({
            "repository": "team/a",
            "linked_bytes": shared_bytes + old_bytes + shared.manifest_bytes + old.manifest_bytes,
            "exclusive_bytes": old_bytes + shared.manifest_bytes + old.manifest_bytes,
            "manifest_bytes": shared.manifest_bytes + old.manifest_bytes,
            "manifests": 2, "tags": 2, "blobs": shared.blobs.len() + old.blobs.len(),
        })
    );
    let b = repository_usage(&server, "team/b");
    assert_eq!(
        (&b["linked_bytes"], &b["exclusive_bytes"]),
        (
            &json!(shared_bytes + in_b.manifest_bytes),
            &json!(in_b.manifest_bytes)
        )
    );
    let all_manifests = 2 * shared.manifest_bytes + old.manifest_bytes;
    assert_eq!(
        registry_usage(&server),
        json!({
            "stored_bytes": shared_bytes + old_bytes + all_manifests,
            "repositories_bytes": 2 * shared_bytes + old_bytes + all_manifests,
            "blobs": shared.blobs.len() + old.blobs.len(),
            "manifest_bytes": all_manifests, "manifests": 3, "tags": 3, "repositories": 2,
            "unlinked_bytes": 0, "unlinked_blobs": 0,
        })
    );

    // The portal's repository page shows the same figures to an owner, and nothing of
    // them to a user who may only pull.
    let mut owner_portal = PortalClient::new(&server);
    assert_eq!(owner_portal.sign_in("admin", &server.admin_password), 303);
    let (status, page) = owner_portal.get("/portal/repositories/team/a");
    assert_eq!(status, 200, "{page}");
    // Each size carries its exact byte count in its title.
    for (id, field) in [
        ("usage-size", "linked_bytes"),
        ("usage-would-free", "exclusive_bytes"),
    ] {
        let shown = format!(r#"id="{id}"><span title="{} bytes">"#, a[field]);
        assert!(page.contains(&shown), "{shown} not in {page}");
    }
    create_user(&server, "reader", "reader-password-1");
    let r = server
        .http()
        .post(server.url("/api/v1/role-assignments"))
        .bearer_auth(owner_token(&server))
        .json(&json!({ "role": "AcrPull", "assignee": "reader", "scope": "repository:team/a" }))
        .send()
        .expect("assign");
    assert_eq!(r.status(), 201);
    let mut reader_portal = PortalClient::new(&server);
    assert_eq!(reader_portal.sign_in("reader", "reader-password-1"), 303);
    let (status, page) = reader_portal.get("/portal/repositories/team/a");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("team/a") && !page.contains("repository-usage"),
        "{page}"
    );

    // A deleted manifest's blobs stay linked (and counted) until garbage collection.
    let r = server
        .http()
        .delete(server.url(&format!("/v2/team/a/manifests/{old_digest}")))
        .bearer_auth(&token)
        .send()
        .expect("delete");
    assert_eq!(r.status(), 202);
    let a = repository_usage(&server, "team/a");
    assert_eq!(
        (&a["linked_bytes"], &a["manifests"], &a["tags"]),
        (
            &json!(shared_bytes + old_bytes + shared.manifest_bytes),
            &json!(1),
            &json!(1)
        )
    );
    std::thread::sleep(Duration::from_millis(2200));
    let r = server
        .http()
        .post(server.url("/api/v1/gc"))
        .bearer_auth(owner_token(&server))
        .json(&json!({}))
        .send()
        .expect("gc");
    assert_eq!(r.status(), 200);
    let a = repository_usage(&server, "team/a");
    assert_eq!(
        (&a["linked_bytes"], &a["exclusive_bytes"]),
        (
            &json!(shared_bytes + shared.manifest_bytes),
            &json!(shared.manifest_bytes)
        )
    );

    // With team/b gone, team/a alone would free the shared blobs.
    let r = server
        .http()
        .delete(server.url("/api/v1/repositories/team/b"))
        .bearer_auth(owner_token(&server))
        .send()
        .expect("delete repository");
    assert_eq!(r.status(), 200);
    let a = repository_usage(&server, "team/a");
    assert_eq!(a["exclusive_bytes"], a["linked_bytes"]);
    let registry = registry_usage(&server);
    assert_eq!(
        (
            &registry["stored_bytes"],
            &registry["repositories_bytes"],
            &registry["repositories"]
        ),
        (&a["linked_bytes"], &a["linked_bytes"], &json!(1))
    );
    assert_eq!(
        metric(&server, "wharf_storage_bytes{kind=\"stored\"}"),
        a["linked_bytes"].as_u64().unwrap()
    );
}

/// Only an owner reads usage; bad pages and names are refused with the registry API's
/// codes and change nothing.
#[test]
fn usage_routes_refuse_non_owners_and_bad_requests() {
    let server = Server::start();
    let token = server.token(&["repository:dev/app:pull,push"]);
    let http = server.http();
    push_tiny_image(&server, &http, &token, "dev/app", "v1", "refusals");
    pusher(&server, "dev", "dev-password-123", "dev/app");
    let dev = server
        .token_as(
            "dev",
            "dev-password-123",
            &["registry:admin:*", "repository:dev/app:pull,push"],
        )
        .expect("dev token");
    let unauthorized = refused(
        401,
        "UNAUTHORIZED",
        "access to the requested resource is not authorized",
    );
    for path in ["/api/v1/usage", "/api/v1/repositories/dev/app/usage"] {
        let r = http.get(server.url(path)).bearer_auth(&dev).send().expect("get");
        assert_eq!(refusal(r), unauthorized, "{path}");
        let r = http.get(server.url(path)).send().expect("get");
        assert_eq!(refusal(r).0, 401, "{path} anonymous");
    }

    let owner = owner_token(&server);
    let before = registry_usage(&server);
    let ask = |path: &str| {
        refusal(
            http.get(server.url(path))
                .bearer_auth(&owner)
                .send()
                .expect("get"),
        )
    };
    assert_eq!(
        ask("/api/v1/usage?n=0"),
        refused(400, "PAGINATION_NUMBER_INVALID", "n must be between 1 and 1000")
    );
    assert_eq!(
        ask("/api/v1/usage?n=1001"),
        refused(400, "PAGINATION_NUMBER_INVALID", "n must be between 1 and 1000")
    );
    assert_eq!(
        ask("/api/v1/usage?n=ten"),
        refused(400, "PAGINATION_NUMBER_INVALID", "n=\"ten\" is not a number")
    );
    assert_eq!(
        ask("/api/v1/repositories/Dev/App/usage"),
        refused(400, "NAME_INVALID", "invalid repository name \"Dev/App\"")
    );
    assert_eq!(
        ask("/api/v1/repositories/dev/nothing/usage"),
        refused(404, "NAME_UNKNOWN", "repository \"dev/nothing\" is not known")
    );
    assert_eq!(ask("/api/v1/repositories/dev/app").0, 404);
    assert_eq!(registry_usage(&server), before);
}

/// `wharf repository usage`: a table in binary units with the registry's total, the same
/// figures as JSON, one repository by name, pages followed to the end, and the refusals
/// in one line.
#[test]
fn wharf_repository_usage_prints_tables_and_json() {
    let server = Server::start();
    let token = server.token(&[
        "repository:cli/a:pull,push",
        "repository:cli/b:pull,push",
        "repository:cli/c:pull,push",
    ]);
    let http = server.http();
    // cli/a and cli/c hold the same image: its config and layer are shared.
    for (repo, seed) in [("cli/a", "shared"), ("cli/b", "b"), ("cli/c", "shared")] {
        push_tiny_image(&server, &http, &token, repo, "v1", seed);
    }
    // A 2 MiB layer in cli/b: the table shows it in MiB.
    let big = vec![7u8; 2 << 20];
    let big_digest = common::upload_blob(&server, &http, &token, "cli/b", &big);
    let owner = login_dir(&server, "admin", &server.admin_password);

    // Two repositories per page: the client follows `next` to the end.
    let (v, _) = json_ok(owner.path(), &["repository", "usage", "--page-size", "2"], "");
    assert_eq!(keys(&v), ["registry", "repositories"]);
    let names: Vec<&str> = v["repositories"]
        .as_array()
        .expect("list")
        .iter()
        .map(|r| r["repository"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["cli/a", "cli/b", "cli/c"]);
    assert_eq!(v["registry"], registry_usage(&server));
    let b = &v["repositories"][1];
    assert_eq!(b, &repository_usage(&server, "cli/b"));
    assert!(b["linked_bytes"].as_u64().unwrap() > 2 << 20, "{b}");

    // The pages as the API sends them: the registry total on the first page only.
    let admin = owner_token(&server);
    let (status, first) = get(&server, &admin, "/api/v1/usage?n=2");
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (&first["registry"], &first["next"]),
        (&v["registry"], &json!("cli/b"))
    );
    assert_eq!(first["repositories"].as_array().map(Vec::len), Some(2));
    let (status, second) = get(&server, &admin, "/api/v1/usage?n=2&last=cli%2Fb");
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        second,
        json!({ "registry": null, "repositories": [v["repositories"][2]], "next": null })
    );

    let out = wharf_cli(owner.path(), &["repository", "usage"], "");
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    // The shared config and layer: `{"seed":"shared"}` and `layer shared`, 29 bytes; the
    // manifests are 394 bytes each.
    assert_eq!(
        printed,
        "REPOSITORY  SIZE     WOULD FREE  MANIFESTS  TAGS  BLOBS\n\
         cli/a       423 B    394 B       1          1     2\n\
         cli/b       2.0 MiB  2.0 MiB     1          1     3\n\
         cli/c       423 B    394 B       1          1     2\n\
         \n\
         Registry: 2.0 MiB stored (5 blobs counted once, 3 manifests); 2.0 MiB summed over 3 repositories, \
         so sharing saves 29 B\n"
    );

    let (one, _) = json_ok(owner.path(), &["repository", "usage", "cli/b"], "");
    assert_eq!(one, repository_usage(&server, "cli/b"));
    assert_eq!(one["blobs"], 3, "{one} (config, layer and {big_digest})");

    assert_eq!(
        json_err(owner.path(), &["repository", "usage", "cli/none"], ""),
        (
            "NAME_UNKNOWN".to_owned(),
            "the server answered 404 Not Found: repository \"cli/none\" is not known".to_owned()
        )
    );
    pusher(&server, "dev", "dev-password-123", "cli/a");
    let dev = login_dir(&server, "dev", "dev-password-123");
    assert_eq!(
        json_err(dev.path(), &["repository", "usage", "cli/a"], "").0,
        "UNAUTHORIZED"
    );
}
