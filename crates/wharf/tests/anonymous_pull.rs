//! Anonymous pull, owner-controlled, against a real server with the real clients: the
//! notary 0.7 CLI's read-only commands (which send no credentials) and a trusted
//! `docker pull` without any login work on an open repository and fail on a private
//! one; anonymous callers never push, write trust data or read the catalog; turning it
//! off applies at the next request, also to tokens issued before.

mod common;

use std::process::{Command, Output, Stdio};

use common::{DockerClient, Server, pushed_digest, require_tool, text};

const DCT: &[(&str, &str)] = &[
    ("DOCKER_CONTENT_TRUST", "1"),
    ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123"),
    ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-123"),
];

/// notary without credentials (nothing on stdin), its own trust directory.
fn notary(server: &Server, dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new("notary")
        .arg("-s")
        .arg(format!("https://{}", server.host))
        .arg("--tlscacert")
        .arg(&server.ca)
        .arg("-d")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run notary")
}

fn set_anonymous_pull(server: &Server, scopes: &[&str]) -> serde_json::Value {
    let r = server
        .http()
        .put(server.url("/api/v1/anonymous-pull"))
        .bearer_auth(server.token(&["registry:admin:*"]))
        .json(&serde_json::json!({ "scopes": scopes }))
        .send()
        .expect("put");
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().expect("json");
    assert_eq!(status, 200, "{body}");
    body
}

/// A token asked for without credentials.
fn anonymous_token(server: &Server, scopes: &[&str]) -> Result<String, u16> {
    let mut q: Vec<(&str, &str)> = vec![("service", "wharf")];
    q.extend(scopes.iter().map(|s| ("scope", *s)));
    let r = server
        .http()
        .get(server.url("/token"))
        .query(&q)
        .send()
        .expect("token");
    if !r.status().is_success() {
        return Err(r.status().as_u16());
    }
    let v: serde_json::Value = r.json().expect("json");
    Ok(v["token"].as_str().expect("token").to_owned())
}

#[test]
fn anonymous_pull_opens_exactly_what_the_owner_chose() {
    require_tool("notary");
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let publisher = DockerClient::new();
    let out = publisher.wharf_login(&server, "admin", &server.admin_password);
    assert!(out.status.success(), "{}", text(&out));
    let mut digests = Vec::new();
    for repo in ["public/app", "private/app"] {
        let image = format!("{}/{repo}:v1", server.host);
        publisher.import_image(&image);
        let out = publisher.cmd(&["push", &image], DCT);
        assert!(out.status.success(), "signed push: {}", text(&out));
        digests.push(pushed_digest(&text(&out)));
        publisher.ok(&["rmi", &image]);
    }

    // Off by default: no token without credentials.
    assert_eq!(
        anonymous_token(&server, &["repository:public/app:pull"]),
        Err(401)
    );

    let set = set_anonymous_pull(&server, &["repository:public/*"]);
    assert_eq!(set["scopes"], serde_json::json!(["repository:public/*"]));

    // notary's read-only commands, no credentials: the public repository's targets.
    let dir = server.scratch("notary-anon");
    let public = format!("{}/public/app", server.host);
    let out = notary(&server, &dir, &["list", &public]);
    assert!(out.status.success(), "notary list: {}", text(&out));
    let listed = text(&out);
    let hex = digests[0].trim_start_matches("sha256:");
    assert!(listed.contains("v1") && listed.contains(hex), "{listed}");
    let out = notary(&server, &dir, &["lookup", &public, "v1"]);
    assert!(
        out.status.success() && text(&out).contains(hex),
        "lookup: {}",
        text(&out)
    );
    let out = notary(&server, &dir, &["delegation", "list", &public]);
    assert!(out.status.success(), "delegation list: {}", text(&out));

    // The private one stays private.
    let private = format!("{}/private/app", server.host);
    let out = notary(&server, &dir, &["list", &private]);
    assert!(!out.status.success(), "private list must fail: {}", text(&out));
    assert!(
        text(&out).contains("you are not authorized to perform this operation: server returned 401"),
        "{}",
        text(&out)
    );

    // A trusted docker pull with no login at all.
    let stranger = DockerClient::new();
    let out = stranger.cmd(&["pull", &format!("{public}:v1")], DCT);
    assert!(out.status.success(), "anonymous trusted pull: {}", text(&out));
    assert!(text(&out).contains(hex), "{}", text(&out));
    let out = stranger.cmd(&["pull", &format!("{private}:v1")], DCT);
    assert!(!out.status.success(), "private pull must fail: {}", text(&out));

    // Never more than pull: no push, no trust write, no catalog, no other repository.
    let token = anonymous_token(
        &server,
        &[
            "repository:public/app:push,pull,delete,*",
            &format!("repository:{public}:push,pull,*"),
            "repository:private/app:pull",
            "registry:catalog:*",
            "registry:admin:*",
        ],
    )
    .expect("anonymous token");
    let http = server.http();
    let status = |method: reqwest::Method, path: &str| {
        http.request(method, server.url(path))
            .bearer_auth(&token)
            .send()
            .expect("request")
            .status()
            .as_u16()
    };
    assert_eq!(status(reqwest::Method::GET, "/v2/public/app/tags/list"), 200);
    assert_eq!(
        status(reqwest::Method::POST, "/v2/public/app/blobs/uploads/"),
        401
    );
    assert_eq!(
        status(
            reqwest::Method::DELETE,
            &format!("/v2/public/app/manifests/{}", digests[0])
        ),
        401
    );
    assert_eq!(
        status(
            reqwest::Method::GET,
            &format!("/v2/{public}/_trust/tuf/timestamp.key")
        ),
        401
    );
    assert_eq!(
        status(
            reqwest::Method::GET,
            &format!("/v2/{public}/_trust/tuf/root.json")
        ),
        200
    );
    assert_eq!(status(reqwest::Method::GET, "/v2/private/app/tags/list"), 401);
    assert_eq!(status(reqwest::Method::GET, "/v2/_catalog"), 401);
    assert_eq!(status(reqwest::Method::GET, "/api/v1/users"), 401);

    // Off again: the very next request is refused, also with the token from before.
    assert_eq!(set_anonymous_pull(&server, &[])["scopes"], serde_json::json!([]));
    assert_eq!(status(reqwest::Method::GET, "/v2/public/app/tags/list"), 401);
    assert_eq!(
        anonymous_token(&server, &["repository:public/app:pull"]),
        Err(401)
    );
    let out = notary(&server, &server.scratch("notary-after"), &["list", &public]);
    assert!(!out.status.success(), "list after turning it off: {}", text(&out));

    // Bad scopes are refused with the reason and change nothing; both changes audited.
    let r = server
        .http()
        .put(server.url("/api/v1/anonymous-pull"))
        .bearer_auth(server.token(&["registry:admin:*"]))
        .json(&serde_json::json!({ "scopes": ["repository:Public"] }))
        .send()
        .expect("put");
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().expect("json");
    assert_eq!(body["errors"][0]["code"], "SCOPE_INVALID");
    assert_eq!(
        body["errors"][0]["message"],
        "scope \"repository:Public\" must be registry, repository:<name> or repository:<prefix>/*"
    );
    let audit: serde_json::Value = server
        .http()
        .get(server.url("/api/v1/audit"))
        .bearer_auth(server.token(&["registry:admin:*"]))
        .send()
        .expect("audit")
        .json()
        .expect("json");
    let changes: Vec<String> = audit["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter(|r| r["action"] == "anonymous-pull.set")
        .map(|r| r["detail"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes.iter().any(|d| d.ends_with("; off")), "{changes:?}");
    assert!(
        changes.iter().any(|d| d.ends_with("; repository:public/*")),
        "{changes:?}"
    );
}
