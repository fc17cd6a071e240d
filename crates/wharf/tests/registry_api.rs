//! The registry HTTP API driven directly: every protocol path and every bad input, each
//! asserting the exact error code and that nothing was stored.

mod common;

use std::io::Read;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Server, error_code, error_of, files_under, refusal, refused, sha256};
use reqwest::blocking::{Body, Client, Response};
use serde_json::{Value, json};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

struct Api {
    server: Server,
    http: Client,
    token: String,
}

impl Api {
    fn new(repos: &[&str]) -> Self {
        Self::with(Server::start(), repos)
    }

    fn with(server: Server, repos: &[&str]) -> Self {
        let mut scopes: Vec<String> = repos
            .iter()
            .map(|r| format!("repository:{r}:pull,push,delete"))
            .collect();
        scopes.push("registry:catalog:*".into());
        let refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let token = server.token(&refs);
        Self {
            http: server.http(),
            server,
            token,
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http
            .request(method, self.server.url(path))
            .bearer_auth(&self.token)
    }

    fn upload(&self, repo: &str, bytes: &[u8]) -> String {
        common::upload_blob(&self.server, &self.http, &self.token, repo, bytes)
    }

    /// Push config + one layer and an OCI manifest under `reference`; returns (digest, bytes).
    fn push_image(&self, repo: &str, reference: &str, seed: &str) -> (String, Vec<u8>) {
        common::push_tiny_image(&self.server, &self.http, &self.token, repo, reference, seed)
    }

    fn put_manifest(&self, repo: &str, reference: &str, content_type: &str, body: Vec<u8>) -> Response {
        self.req(reqwest::Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .unwrap()
    }

    fn status(&self, method: reqwest::Method, path: &str) -> u16 {
        self.req(method, path).send().unwrap().status().as_u16()
    }

    /// A request that must be refused: status, error code and message.
    fn refusal(&self, method: reqwest::Method, path: &str) -> (u16, String, String) {
        refusal(self.req(method, path).send().unwrap())
    }

    /// Blob and upload files on the local disk; `None` when the server keeps blobs in an
    /// S3 bucket (`WHARF_TEST_BACKEND=postgres-s3`), whose own leftovers tests are in
    /// `crates/wharf-store/tests/s3_blob.rs`.
    fn stored_files(&self) -> Option<Vec<std::path::PathBuf>> {
        self.server
            .blobs_on_local_disk()
            .then(|| files_under(&self.server.data.join("storage")))
    }
}

/// What a client reads for an upload URL that no longer (or never) named a session.
fn upload_unknown() -> (u16, String, String) {
    refused(
        404,
        "BLOB_UPLOAD_UNKNOWN",
        "upload session is not known (it may have expired, been cancelled or completed)",
    )
}

fn code_of(r: Response) -> (u16, String) {
    let status = r.status().as_u16();
    (status, error_code(&r.text().unwrap()))
}

#[test]
fn ping_without_token_gets_a_challenge_and_forged_tokens_are_refused() {
    let api = Api::new(&["a"]);
    let r = api.http.get(api.server.url("/v2/")).send().unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["docker-distribution-api-version"], "registry/2.0");
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"https://{}/token\",service=\"wharf\"",
            api.server.host
        )
    );
    assert_eq!(
        error_of(&r.text().unwrap()),
        ("UNAUTHORIZED".into(), "authentication required".into())
    );

    let r = api.http.get(api.server.url("/v2/a/tags/list")).send().unwrap();
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .ends_with(",scope=\"repository:a:pull\"")
    );

    // A token from another Wharf (another signing key) and an edited token are refused.
    let other = Server::start();
    let foreign = other.token(&["repository:a:pull"]);
    let r = api
        .http
        .get(api.server.url("/v2/a/tags/list"))
        .bearer_auth(&foreign)
        .send()
        .unwrap();
    let bad_signature = refused(
        401,
        "UNAUTHORIZED",
        "authentication required: token signature is invalid",
    );
    assert_eq!(refusal(r), bad_signature);
    let mut parts: Vec<&str> = api.token.split('.').collect();
    let tampered_payload = parts[1].replacen('e', "f", 1);
    parts[1] = &tampered_payload;
    let r = api
        .http
        .get(api.server.url("/v2/"))
        .bearer_auth(parts.join("."))
        .send()
        .unwrap();
    assert_eq!(refusal(r), bad_signature);
    // A token for repository a does not open repository b.
    let r = api
        .http
        .get(api.server.url("/v2/b/tags/list"))
        .bearer_auth(&api.token)
        .send()
        .unwrap();
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"insufficient_scope\"")
    );
    assert_eq!(
        refusal(r),
        refused(
            401,
            "UNAUTHORIZED",
            "access to the requested resource is not authorized"
        )
    );
    // Wrong password at the token service; an unknown name gets the same answer.
    let wrong = refused(401, "UNAUTHORIZED", "invalid username or password");
    assert_eq!(
        api.server.token_refusal("admin", "nope", &["repository:a:pull"]),
        wrong
    );
    assert_eq!(
        api.server.token_refusal("nobody", "nope", &["repository:a:pull"]),
        wrong
    );
}

#[test]
fn expired_tokens_are_refused() {
    // One process issues and checks the token, so no clock skew needs tolerating.
    let server = Server::start_with(&[
        ("WHARF_AUTH_TOKEN_TTL_SECONDS", "5"),
        ("WHARF_AUTH_CLOCK_SKEW_SECONDS", "0"),
    ]);
    let api = Api::with(server, &["a"]);
    assert_eq!(api.status(reqwest::Method::GET, "/v2/"), 200);
    // Past the 5 s lifetime by more than the second the token's times are rounded to.
    std::thread::sleep(std::time::Duration::from_secs(6));
    let r = api.req(reqwest::Method::GET, "/v2/").send().unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        error_of(&r.text().unwrap()),
        (
            "UNAUTHORIZED".into(),
            "authentication required: token has expired".into()
        )
    );
}

#[test]
fn monolithic_chunked_and_resumable_uploads_then_range_reads() {
    let api = Api::new(&["up/load"]);
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let digest = sha256(&data);
    // Chunked: POST, PATCH with Content-Range, status GET, PATCH, PUT.
    let r = api
        .req(reqwest::Method::POST, "/v2/up/load/blobs/uploads/")
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["range"], "0-0");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let r = api
        .http
        .patch(api.server.url(&location))
        .bearer_auth(&api.token)
        .header("content-range", "0-999999")
        .body(data[..1_000_000].to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["range"], "0-999999");
    let r = api
        .http
        .get(api.server.url(&location))
        .bearer_auth(&api.token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-999999");
    // Out of order: refused with 416, and the upload did not move.
    let r = api
        .http
        .patch(api.server.url(&location))
        .bearer_auth(&api.token)
        .header("content-range", "2000000-2999999")
        .body(data[2_000_000..].to_vec())
        .send()
        .unwrap();
    assert_eq!(r.headers()["range"], "0-999999");
    assert_eq!(
        refusal(r),
        refused(416, "BLOB_UPLOAD_INVALID", "chunk must start at offset 1000000")
    );
    let r = api
        .http
        .get(api.server.url(&location))
        .bearer_auth(&api.token)
        .send()
        .unwrap();
    assert_eq!(r.headers()["range"], "0-999999");
    // Streamed PATCH without Content-Range (as docker does), then PUT with the final chunk.
    let r = api
        .http
        .patch(api.server.url(&location))
        .bearer_auth(&api.token)
        .body(data[1_000_000..2_000_000].to_vec())
        .send()
        .unwrap();
    assert_eq!(r.headers()["range"], "1999999".replace("1999999", "0-1999999"));
    let r = api
        .http
        .put(format!("{}?digest={digest}", api.server.url(&location)))
        .bearer_auth(&api.token)
        .body(data[2_000_000..].to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["docker-content-digest"].to_str().unwrap(), digest);
    assert_eq!(
        api.refusal(reqwest::Method::GET, &location),
        upload_unknown(),
        "a completed upload is gone"
    );

    let blob = format!("/v2/up/load/blobs/{digest}");
    let r = api.req(reqwest::Method::HEAD, &blob).send().unwrap();
    assert_eq!(r.headers()["content-length"], "3000000");
    assert_eq!(
        api.req(reqwest::Method::GET, &blob)
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .as_ref(),
        &data[..]
    );
    let r = api
        .req(reqwest::Method::GET, &blob)
        .header("range", "bytes=10-19")
        .send()
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 10-19/3000000");
    assert_eq!(r.bytes().unwrap().as_ref(), &data[10..20]);
    let r = api
        .req(reqwest::Method::GET, &blob)
        .header("range", "bytes=3000000-")
        .send()
        .unwrap();
    assert_eq!(r.headers()["content-range"], "bytes */3000000");
    assert_eq!(
        refusal(r),
        refused(
            416,
            "RANGE_INVALID",
            "range \"bytes=3000000-\" does not fit a 3000000-byte blob"
        )
    );

    // Empty blob via POST + PUT without body.
    let empty = sha256(b"");
    let r = api
        .req(reqwest::Method::POST, "/v2/up/load/blobs/uploads/")
        .send()
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let r = api
        .http
        .put(format!("{}?digest={empty}", api.server.url(&loc)))
        .bearer_auth(&api.token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        api.status(reqwest::Method::HEAD, &format!("/v2/up/load/blobs/{empty}")),
        200
    );
}

#[test]
fn wrong_digest_is_refused_and_nothing_is_stored() {
    let api = Api::new(&["d"]);
    let claimed = sha256(b"what I claim");
    let before = api.stored_files();
    let r = api
        .req(
            reqwest::Method::POST,
            &format!("/v2/d/blobs/uploads/?digest={claimed}"),
        )
        .body("what I send")
        .send()
        .unwrap();
    assert_eq!(code_of(r), (400, "DIGEST_INVALID".into()));
    assert_eq!(
        api.status(reqwest::Method::HEAD, &format!("/v2/d/blobs/{claimed}")),
        404
    );
    assert_eq!(
        api.status(
            reqwest::Method::HEAD,
            &format!("/v2/d/blobs/{}", sha256(b"what I send"))
        ),
        404
    );
    assert_eq!(api.stored_files(), before, "no blob and no upload leftovers");
    // Same through a chunked upload: the session is gone afterwards.
    let r = api
        .req(reqwest::Method::POST, "/v2/d/blobs/uploads/")
        .send()
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let r = api
        .http
        .put(format!("{}?digest={claimed}", api.server.url(&loc)))
        .bearer_auth(&api.token)
        .body("other")
        .send()
        .unwrap();
    assert_eq!(code_of(r), (400, "DIGEST_INVALID".into()));
    assert_eq!(api.refusal(reqwest::Method::GET, &loc), upload_unknown());
    assert_eq!(api.stored_files(), before);
    // Malformed digests.
    let r = api
        .req(reqwest::Method::POST, "/v2/d/blobs/uploads/?digest=sha256:xyz")
        .body("x")
        .send()
        .unwrap();
    assert_eq!(code_of(r), (400, "DIGEST_INVALID".into()));
    let r = api
        .req(reqwest::Method::GET, "/v2/d/blobs/md5:abc")
        .send()
        .unwrap();
    assert_eq!(code_of(r), (400, "DIGEST_INVALID".into()));
}

#[test]
fn bad_manifests_are_refused_with_exact_codes_and_nothing_is_stored() {
    let api = Api::new(&["m"]);
    let missing = sha256(b"never uploaded");
    let config = api.upload("m", b"{}");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": missing, "size": 5}]
    }))
    .unwrap();
    let r = api.put_manifest("m", "v1", OCI_MANIFEST, manifest.clone());
    let (status, body) = (r.status().as_u16(), r.text().unwrap());
    assert_eq!(
        (status, error_code(&body).as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    assert!(body.contains(&missing), "{body}");
    let cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
        (b"{not json".to_vec(), OCI_MANIFEST, 400, "MANIFEST_INVALID"),
        (
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#.to_vec(),
            OCI_MANIFEST,
            400,
            "MANIFEST_INVALID",
        ),
        (
            br#"{"schemaVersion":1,"name":"m","tag":"v1","fsLayers":[]}"#.to_vec(),
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            400,
            "MANIFEST_INVALID",
        ),
        (manifest.clone(), OCI_INDEX, 400, "MANIFEST_INVALID"),
        (
            vec![b' '; 4 * 1024 * 1024 + 1],
            OCI_MANIFEST,
            413,
            "MANIFEST_INVALID",
        ),
    ];
    for (body, ct, want_status, want_code) in cases {
        let r = api.put_manifest("m", "v1", ct, body);
        assert_eq!(code_of(r), (want_status, want_code.to_owned()), "{ct}");
    }
    // Too large without a Content-Length (chunked): refused once the limit is passed, and
    // the client still reads the answer (the server reads and drops the rest it sends).
    let r = api
        .req(reqwest::Method::PUT, "/v2/m/manifests/v1")
        .header("content-type", OCI_MANIFEST)
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(vec![
            b' ';
            12 << 20
        ])))
        .send()
        .unwrap();
    assert_eq!(code_of(r), (413, "MANIFEST_INVALID".into()));
    // Digest in the URL that does not match the body.
    let r = api.put_manifest("m", &sha256(b"other"), OCI_MANIFEST, manifest);
    assert_eq!(code_of(r), (400, "DIGEST_INVALID".into()));
    // Nothing became visible.
    let r = api
        .req(reqwest::Method::GET, "/v2/m/manifests/v1")
        .send()
        .unwrap();
    assert_eq!(code_of(r), (404, "MANIFEST_UNKNOWN".into()));
    let tags: Value = api
        .req(reqwest::Method::GET, "/v2/m/tags/list")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(tags["tags"], json!([]));
    let catalog: Value = api
        .req(reqwest::Method::GET, "/v2/_catalog")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(catalog["repositories"], json!([]));
}

fn curl_path_as_is(server: &Server, token: &str, method: &str, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "--path-as-is",
            "-X",
            method,
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "--cacert",
        ])
        .arg(&server.ca)
        .args([
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
        ])
        .args(["--data-binary", "{}"])
        .arg(server.url(path))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("status line");
    assert!(
        body.starts_with('{'),
        "{method} {path}: status {status}, body {body:?}"
    );
    (status.parse().unwrap(), error_code(body))
}

#[test]
fn hostile_names_and_tags_are_refused() {
    common::require_tool("curl");
    let api = Api::new(&["ok"]);
    for name in ["UPPER/case", "a/../b", "..", "a/.hidden", "a//b", "a%2Fb", "a_-b"] {
        let (status, code) = curl_path_as_is(
            &api.server,
            &api.token,
            "PUT",
            &format!("/v2/{name}/manifests/v1"),
        );
        assert_eq!((status, code.as_str()), (400, "NAME_INVALID"), "{name}");
    }
    let long = "a".repeat(256);
    let (status, code) = curl_path_as_is(&api.server, &api.token, "GET", &format!("/v2/{long}/tags/list"));
    assert_eq!((status, code.as_str()), (400, "NAME_INVALID"));
    for tag in ["..", "-bad", ".x", &"t".repeat(129)] {
        let (status, code) =
            curl_path_as_is(&api.server, &api.token, "PUT", &format!("/v2/ok/manifests/{tag}"));
        assert_eq!((status, code.as_str()), (400, "TAG_INVALID"), "{tag}");
    }
    assert!(
        api.stored_files().is_none_or(|f| f.is_empty()),
        "{:?}",
        api.stored_files()
    );
}

#[test]
fn unknown_and_cancelled_uploads() {
    let api = Api::new(&["u"]);
    let r = api
        .req(
            reqwest::Method::PATCH,
            "/v2/u/blobs/uploads/00000000-0000-0000-0000-000000000000",
        )
        .body("x")
        .send()
        .unwrap();
    assert_eq!(code_of(r), (404, "BLOB_UPLOAD_UNKNOWN".into()));
    let r = api
        .req(reqwest::Method::GET, "/v2/u/blobs/uploads/..%2F..%2Fetc")
        .send()
        .unwrap();
    assert_eq!(code_of(r), (404, "BLOB_UPLOAD_UNKNOWN".into()));
    let r = api
        .req(reqwest::Method::POST, "/v2/u/blobs/uploads/")
        .send()
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(api.status(reqwest::Method::DELETE, &loc), 204);
    assert_eq!(api.refusal(reqwest::Method::GET, &loc), upload_unknown());
    assert!(
        api.stored_files().is_none_or(|f| f.is_empty()),
        "{:?}",
        api.stored_files()
    );
    // An upload of one repository cannot be used through another.
    let api2 = Api::with(Server::start(), &["u", "v"]);
    let r = api2
        .req(reqwest::Method::POST, "/v2/u/blobs/uploads/")
        .send()
        .unwrap();
    let loc = r.headers()["location"]
        .to_str()
        .unwrap()
        .replace("/v2/u/", "/v2/v/");
    assert_eq!(api2.refusal(reqwest::Method::GET, &loc), upload_unknown());
}

#[test]
fn tags_catalog_pagination_deletes_and_mounts() {
    let api = Api::new(&["p/one", "p/two", "p/three"]);
    let (d1, _) = api.push_image("p/one", "a", "1");
    api.push_image("p/one", "b", "2");
    api.push_image("p/one", "c", "3");
    api.push_image("p/two", "x", "4");
    let r = api
        .req(reqwest::Method::GET, "/v2/p/one/tags/list?n=2")
        .send()
        .unwrap();
    assert_eq!(
        r.headers()["link"],
        "</v2/p/one/tags/list?n=2&last=b>; rel=\"next\""
    );
    assert_eq!(r.json::<Value>().unwrap()["tags"], json!(["a", "b"]));
    let r = api
        .req(reqwest::Method::GET, "/v2/p/one/tags/list?n=2&last=b")
        .send()
        .unwrap();
    assert!(r.headers().get("link").is_none());
    assert_eq!(r.json::<Value>().unwrap()["tags"], json!(["c"]));
    let r = api.req(reqwest::Method::GET, "/v2/_catalog?n=1").send().unwrap();
    assert_eq!(r.headers()["link"], "</v2/_catalog?n=1&last=p/one>; rel=\"next\"");
    assert_eq!(r.json::<Value>().unwrap()["repositories"], json!(["p/one"]));
    let r = api.req(reqwest::Method::GET, "/v2/_catalog?n=x").send().unwrap();
    assert_eq!(code_of(r), (400, "PAGINATION_NUMBER_INVALID".into()));
    let r = api
        .req(reqwest::Method::GET, "/v2/p/three/tags/list")
        .send()
        .unwrap();
    assert_eq!(code_of(r), (404, "NAME_UNKNOWN".into()));

    // Mount a blob from p/one into p/three without uploading it again.
    let layer = sha256(b"layer 1");
    let r = api
        .req(
            reqwest::Method::POST,
            &format!("/v2/p/three/blobs/uploads/?mount={layer}&from=p/one"),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("/v2/p/three/blobs/{layer}")
    );
    assert_eq!(
        api.status(reqwest::Method::HEAD, &format!("/v2/p/three/blobs/{layer}")),
        200
    );
    // Mounting something the source does not have starts a normal upload.
    let r = api
        .req(
            reqwest::Method::POST,
            &format!("/v2/p/three/blobs/uploads/?mount={}&from=p/one", sha256(b"nope")),
        )
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);

    // Delete by tag removes the tag only; by digest removes the manifest and its tags.
    assert_eq!(api.status(reqwest::Method::DELETE, "/v2/p/one/manifests/b"), 202);
    assert_eq!(
        api.refusal(reqwest::Method::GET, "/v2/p/one/manifests/b"),
        refused(404, "MANIFEST_UNKNOWN", "manifest p/one:b is not known")
    );
    assert_eq!(
        api.status(reqwest::Method::DELETE, &format!("/v2/p/one/manifests/{d1}")),
        202
    );
    assert_eq!(
        api.refusal(reqwest::Method::GET, "/v2/p/one/manifests/a"),
        refused(404, "MANIFEST_UNKNOWN", "manifest p/one:a is not known")
    );
    let r = api
        .req(reqwest::Method::DELETE, &format!("/v2/p/one/manifests/{d1}"))
        .send()
        .unwrap();
    assert_eq!(code_of(r), (404, "MANIFEST_UNKNOWN".into()));
    // Blob delete unlinks.
    assert_eq!(
        api.status(reqwest::Method::DELETE, &format!("/v2/p/three/blobs/{layer}")),
        202
    );
    assert_eq!(
        api.status(reqwest::Method::HEAD, &format!("/v2/p/three/blobs/{layer}")),
        404
    );
    let r = api
        .req(reqwest::Method::DELETE, &format!("/v2/p/three/blobs/{layer}"))
        .send()
        .unwrap();
    assert_eq!(code_of(r), (404, "BLOB_UNKNOWN".into()));
}

#[test]
fn manifest_kinds_accept_negotiation_and_referrers() {
    let api = Api::new(&["r"]);
    let (image, image_bytes) = api.push_image("r", "v1", "img");
    let r = api
        .req(reqwest::Method::GET, "/v2/r/manifests/v1")
        .header("accept", OCI_MANIFEST)
        .send()
        .unwrap();
    assert_eq!(r.headers()["content-type"], OCI_MANIFEST);
    assert_eq!(r.headers()["docker-content-digest"].to_str().unwrap(), image);
    assert_eq!(
        r.bytes().unwrap().as_ref(),
        &image_bytes[..],
        "stored byte for byte"
    );
    // An index over it, refused to a client that only takes single manifests.
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": image, "size": image_bytes.len(), "platform": {"os": "linux", "architecture": "amd64"}}]})).unwrap();
    assert_eq!(
        api.put_manifest("r", "multi", OCI_INDEX, index.clone()).status(),
        201
    );
    let r = api
        .req(reqwest::Method::GET, "/v2/r/manifests/multi")
        .header("accept", "application/vnd.docker.distribution.manifest.v2+json")
        .send()
        .unwrap();
    assert_eq!(code_of(r), (404, "MANIFEST_UNKNOWN".into()));
    let r = api
        .req(reqwest::Method::GET, "/v2/r/manifests/multi")
        .header("accept", OCI_INDEX)
        .send()
        .unwrap();
    assert_eq!(r.bytes().unwrap().as_ref(), &index[..]);
    // An index naming a manifest that is not there.
    let dangling = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(b"x"), "size": 1}]}))
    .unwrap();
    assert_eq!(
        code_of(api.put_manifest("r", "bad", OCI_INDEX, dangling)),
        (400, "MANIFEST_BLOB_UNKNOWN".into())
    );

    // OCI 1.1 artifacts referring to the image.
    let empty = api.upload("r", b"{}");
    let artifact = |kind: &str, payload: &str| {
        let layer = api.upload("r", payload.as_bytes());
        serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": kind,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": payload.len()}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": image, "size": image_bytes.len()},
            "annotations": {"org.example.kind": kind}}),
        )
        .unwrap()
    };
    let sig = artifact("application/vnd.example.signature", "sig");
    let sbom = artifact("application/vnd.example.sbom", "sbom");
    for a in [&sig, &sbom] {
        let r = api.put_manifest("r", &sha256(a), OCI_MANIFEST, a.clone());
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["oci-subject"].to_str().unwrap(), image);
    }
    let r = api
        .req(reqwest::Method::GET, &format!("/v2/r/referrers/{image}"))
        .send()
        .unwrap();
    assert_eq!(r.headers()["content-type"], OCI_INDEX);
    let all: Value = r.json().unwrap();
    assert_eq!(all["manifests"].as_array().unwrap().len(), 2);
    let r = api
        .req(
            reqwest::Method::GET,
            &format!("/v2/r/referrers/{image}?artifactType=application/vnd.example.sbom"),
        )
        .send()
        .unwrap();
    assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    let only: Value = r.json().unwrap();
    assert_eq!(
        only["manifests"],
        json!([{"mediaType": OCI_MANIFEST, "digest": sha256(&sbom), "size": sbom.len(),
        "artifactType": "application/vnd.example.sbom", "annotations": {"org.example.kind": "application/vnd.example.sbom"}}])
    );
    let none: Value = api
        .req(
            reqwest::Method::GET,
            &format!("/v2/r/referrers/{}", sha256(b"nothing")),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(none["manifests"], json!([]));
}

/// A request body that streams data until told to stop, to be cut off mid-upload; it
/// counts what it has handed to the connection.
struct EndlessBody {
    stop: Arc<AtomicBool>,
    sent: Arc<std::sync::atomic::AtomicUsize>,
}

impl Read for EndlessBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        let n = buf.len().min(64 * 1024);
        buf[..n].fill(b'z');
        self.sent.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }
}

/// The server's `wharf_uploads_in_flight` gauge.
fn uploads_in_flight(api: &Api) -> i64 {
    let body = api
        .http
        .get(api.server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix("wharf_uploads_in_flight "))
        .and_then(|v| v.trim().parse().ok())
        .expect("wharf_uploads_in_flight")
}

#[test]
fn kill_9_mid_upload_leaves_nothing_half_visible_and_the_upload_resumes() {
    let mut api = Api::new(&["crash"]);
    let first = vec![b'a'; 1_000_000];
    let rest = vec![b'b'; 500_000];
    let whole: Vec<u8> = [first.clone(), rest.clone()].concat();
    let r = api
        .req(reqwest::Method::POST, "/v2/crash/blobs/uploads/")
        .send()
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let r = api
        .http
        .patch(api.server.url(&loc))
        .bearer_auth(&api.token)
        .body(first)
        .send()
        .unwrap();
    assert_eq!(r.headers()["range"], "0-999999");
    // A second chunk is streaming when the server is killed.
    let stop = Arc::new(AtomicBool::new(false));
    let (url, token, http) = (api.server.url(&loc), api.token.clone(), api.http.clone());
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let body = EndlessBody {
        stop: stop.clone(),
        sent: sent.clone(),
    };
    let streaming =
        std::thread::spawn(move || http.patch(url).bearer_auth(token).body(Body::new(body)).send());
    // Killed only once the server is inside the upload and has taken bytes of it: the
    // handler counts itself in flight, and 4 MiB handed to the connection is more than
    // loopback socket buffers hold, so most of it has reached the server.
    while uploads_in_flight(&api) < 1 || sent.load(Ordering::Relaxed) < 4 << 20 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    api.server.kill9();
    stop.store(true, Ordering::Relaxed);
    drop(streaming);
    api.server.restart();
    // The acknowledged part survived; the cut-off part was never acknowledged.
    let r = api.req(reqwest::Method::GET, &loc).send().unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["range"], "0-999999");
    assert_eq!(
        api.status(
            reqwest::Method::HEAD,
            &format!("/v2/crash/blobs/{}", sha256(&whole))
        ),
        404
    );
    let r = api
        .http
        .put(format!("{}?digest={}", api.server.url(&loc), sha256(&whole)))
        .bearer_auth(&api.token)
        .body(rest)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let got = api
        .req(
            reqwest::Method::GET,
            &format!("/v2/crash/blobs/{}", sha256(&whole)),
        )
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(got.as_ref(), &whole[..]);
}

#[test]
fn many_concurrent_pushers_of_the_same_blob_and_tag_end_consistent() {
    let api = Api::new(&["race"]);
    let blob: Vec<u8> = (0..2_000_000u32).map(|i| (i % 253) as u8).collect();
    let digest = sha256(&blob);
    std::thread::scope(|s| {
        for _ in 0..12 {
            s.spawn(|| {
                let r = api
                    .req(reqwest::Method::POST, "/v2/race/blobs/uploads/")
                    .send()
                    .unwrap();
                let loc = r.headers()["location"].to_str().unwrap().to_owned();
                let r = api
                    .http
                    .patch(api.server.url(&loc))
                    .bearer_auth(&api.token)
                    .body(blob.clone())
                    .send()
                    .unwrap();
                assert_eq!(r.status(), 202);
                let r = api
                    .http
                    .put(format!("{}?digest={digest}", api.server.url(&loc)))
                    .bearer_auth(&api.token)
                    .send()
                    .unwrap();
                assert_eq!(r.status(), 201);
            });
        }
    });
    assert_eq!(
        api.req(reqwest::Method::GET, &format!("/v2/race/blobs/{digest}"))
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .as_ref(),
        &blob[..]
    );
    if let Some(files) = api.stored_files() {
        let blob_files: Vec<_> = files
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("/blobs/"))
            .collect();
        assert_eq!(blob_files.len(), 1, "one copy of the bytes: {blob_files:?}");
        assert!(
            files_under(&api.server.data.join("storage/uploads")).is_empty(),
            "no upload leftovers"
        );
    }

    // Twelve different manifests pushed to one tag at once: every one stored, the tag
    // names exactly one of them.
    let digests: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..12)
            .map(|i| {
                let api = &api;
                s.spawn(move || api.push_image("race", "latest", &format!("m{i}")).0)
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let r = api
        .req(reqwest::Method::HEAD, "/v2/race/manifests/latest")
        .header("accept", OCI_MANIFEST)
        .send()
        .unwrap();
    let winner = r.headers()["docker-content-digest"].to_str().unwrap().to_owned();
    assert!(digests.contains(&winner));
    for d in &digests {
        assert_eq!(
            api.status(reqwest::Method::HEAD, &format!("/v2/race/manifests/{d}")),
            200
        );
    }
    let tags: Value = api
        .req(reqwest::Method::GET, "/v2/race/tags/list")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(tags["tags"], json!(["latest"]));
}

#[test]
fn refresh_tokens_work_over_post_and_metrics_are_exposed() {
    let api = Api::new(&["m"]);
    let r = api
        .http
        .get(api.server.url("/token?service=wharf&offline_token=true"))
        .basic_auth("admin", Some(&api.server.admin_password))
        .send()
        .unwrap();
    let refresh = r.json::<Value>().unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = api.http.post(api.server.url("/token")).body(format!("grant_type=refresh_token&service=wharf&client_id=t&refresh_token={refresh}&scope=repository%3Am%3Apull")).send().unwrap();
    assert_eq!(r.status(), 200);
    let tok = r.json::<Value>().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The token works: the repository is simply empty.
    let r = api
        .http
        .get(api.server.url("/v2/m/tags/list"))
        .bearer_auth(&tok)
        .send()
        .unwrap();
    assert_eq!(
        refusal(r),
        refused(404, "NAME_UNKNOWN", "repository \"m\" is not known")
    );
    let r = api
        .http
        .post(api.server.url("/token"))
        .body("grant_type=refresh_token&service=wharf&refresh_token=wharf_rt_forged")
        .send()
        .unwrap();
    assert_eq!(
        refusal(r),
        refused(401, "UNAUTHORIZED", "refresh token is invalid or revoked")
    );
    api.upload("m", b"counted");
    let metrics = api
        .http
        .get(api.server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("wharf_http_requests_total{route=\"uploads\",method=\"POST\",status=\"201\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("wharf_blob_bytes_received_total 7"), "{metrics}");
    assert!(metrics.contains("wharf_uploads_in_flight 0"));
}

#[test]
fn sigterm_finishes_and_exits_zero() {
    let mut server = Server::start();
    assert_eq!(server.terminate(), Some(0));
}

/// The data directory holds password and token hashes and sealed keys: owner only,
/// whatever the umask, also for a directory an earlier version made 0755.
#[test]
fn the_data_directory_and_database_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    // The SQLite files are what this checks, whatever WHARF_TEST_BACKEND says.
    let mut server = Server::start_embedded();
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&server.data), 0o700);
    for name in ["metadata.db", "metadata.db-wal", "metadata.db-shm"] {
        let p = server.data.join(name);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{name}");
        }
    }
    assert!(server.data.join("metadata.db-wal").exists(), "WAL file expected");
    // A directory and database left world-readable are closed on the next start.
    server.terminate();
    std::fs::set_permissions(&server.data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let db = server.data.join("metadata.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    server.restart();
    assert_eq!((mode(&server.data), mode(&db)), (0o700, 0o600));
}
