//! The server-side signature policy with real clients that do not verify anything
//! themselves: `docker pull` with content trust off (what docker 29 and containerd do) and
//! `skopeo`. Under `enforce`, only what the policy accepts as signed is served; `audit`
//! serves everything and records what enforce would refuse; the publisher's own flow (a
//! signed `docker push`) keeps working; the policy itself is an owner's, versioned and
//! audited.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{
    DockerClient, Server, create_user, logged_in as login, pushed_digest, require_tool, sha256, text,
    write_oci_layout,
};
use serde_json::{Value, json};

const DCT: &[(&str, &str)] = &[
    ("DOCKER_CONTENT_TRUST", "1"),
    ("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123"),
    ("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-123"),
];
/// A client that verifies nothing: the reason server-side enforcement exists.
const NO_DCT: &[(&str, &str)] = &[("DOCKER_CONTENT_TRUST", "0")];
const CONSUMER_PASSWORD: &str = "consumer-password-1";

fn dct_ok(client: &DockerClient, args: &[&str]) -> String {
    let out = client.cmd(args, DCT);
    let t = text(&out);
    assert!(out.status.success(), "docker {args:?} failed:\n{t}");
    t
}

fn plain_ok(client: &DockerClient, args: &[&str]) -> String {
    let out = client.cmd(args, NO_DCT);
    let t = text(&out);
    assert!(out.status.success(), "docker {args:?} failed:\n{t}");
    t
}

/// A user who may only pull under `team/*`, logged in with docker.
fn consumer(server: &Server, owner: &DockerClient) -> DockerClient {
    create_user(
        owner.config.path(),
        "consumer",
        CONSUMER_PASSWORD,
        &[("AcrPull", "repository:team/*")],
    );
    login(server, "consumer", CONSUMER_PASSWORD)
}

/// PUT the policy as `token`; (status, body).
fn put_policy_as(server: &Server, token: &str, doc: &Value) -> (u16, Value) {
    let r = server
        .http()
        .put(server.url("/api/v1/signature-policy"))
        .bearer_auth(token)
        .json(doc)
        .send()
        .expect("put policy");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// Replace the policy as the owner (reading the current version first); must succeed.
fn set_rules(server: &Server, rules: Value) -> Value {
    let version = common::signature_policy(server)["version"]
        .as_u64()
        .expect("version");
    let (status, body) = put_policy_as(
        server,
        &server.token(&["registry:admin:*"]),
        &json!({"version": version, "rules": rules}),
    );
    assert_eq!(status, 200, "{body}");
    body
}

fn metric(server: &Server, outcome: &str) -> u64 {
    common::metric(
        server,
        &format!("wharf_signature_policy_decisions_total{{outcome=\"{outcome}\"}}"),
    )
}

/// (action, target, detail) of every audit record.
fn audit(server: &Server) -> Vec<(String, String, String)> {
    common::audit_records(server)
        .into_iter()
        .map(|(_, action, target, detail)| (action, target, detail))
        .collect()
}

fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo").args(args).output().expect("run skopeo")
}

/// `skopeo inspect --raw` of `reference` as the consumer.
fn skopeo_raw(server: &Server, reference: &str) -> Output {
    let certs = server.cert_dir();
    skopeo(&[
        "inspect",
        "--raw",
        "--cert-dir",
        certs.to_str().unwrap(),
        "--creds",
        &format!("consumer:{CONSUMER_PASSWORD}"),
        &format!("docker://{}/{reference}", server.host),
    ])
}

/// The refusal message for a read of `what` under the `team/*` DCT rule.
fn dct_refusal(what: &str, reason: &str) -> String {
    format!(
        "{what} is not signed as the signature policy for repository:team/* requires \
         (accepted: Docker Content Trust): {reason}"
    )
}

#[test]
fn enforce_serves_clients_without_content_trust_only_what_dct_signed() {
    require_tool("skopeo");
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = login(&server, "admin", &server.admin_password);
    let consumer = consumer(&server, &owner);
    let repo = format!("{}/team/app", server.host);
    let (signed, unsigned, moved, revoked) = (
        format!("{repo}:signed"),
        format!("{repo}:unsigned"),
        format!("{repo}:moved"),
        format!("{repo}:revoked"),
    );
    for tag in [&signed, &moved, &revoked] {
        owner.import_image(tag);
        dct_ok(&owner, &["push", tag]);
    }
    owner.import_image(&unsigned);
    let unsigned_digest = pushed_digest(&plain_ok(&owner, &["push", &unsigned]));
    let signed_digest = pushed_digest(&dct_ok(&owner, &["push", &signed]));

    // Before any rule, everything is served.
    plain_ok(&consumer, &["pull", &unsigned]);
    let stored = set_rules(
        &server,
        json!([{"scope": "repository:team/*", "mode": "enforce", "dct": {}}]),
    );
    assert_eq!(stored["version"], 1, "{stored}");
    let refused_before = metric(&server, "refused");

    // Signed: served to docker (by tag) and to skopeo (by tag and by digest).
    plain_ok(&consumer, &["pull", &signed]);
    let out = skopeo_raw(&server, "team/app:signed");
    assert!(out.status.success(), "{}", text(&out));
    let out = skopeo_raw(&server, &format!("team/app@{signed_digest}"));
    assert!(out.status.success(), "{}", text(&out));

    // Unsigned: refused with the reason, by tag and by digest, to docker and skopeo.
    let reason = dct_refusal(
        "team/app:unsigned",
        "Docker Content Trust: tag unsigned is not signed by targets/releases or targets",
    );
    let err = consumer.fails(&["pull", &unsigned], NO_DCT);
    assert!(err.contains(&reason), "{err}");
    let out = skopeo_raw(&server, "team/app:unsigned");
    assert!(
        !out.status.success() && text(&out).contains(&reason),
        "{}",
        text(&out)
    );
    let by_digest = dct_refusal(
        &format!("team/app@{unsigned_digest}"),
        &format!("Docker Content Trust: no tag signed for {unsigned_digest} (nor for an index listing it)"),
    );
    let out = skopeo_raw(&server, &format!("team/app@{unsigned_digest}"));
    assert!(
        !out.status.success() && text(&out).contains(&by_digest),
        "{}",
        text(&out)
    );
    // The refusal is the distribution spec's DENIED, for HEAD too.
    let token = server
        .token_as("consumer", CONSUMER_PASSWORD, &["repository:team/app:pull"])
        .expect("consumer token");
    let r = server
        .http()
        .get(server.url("/v2/team/app/manifests/unsigned"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(common::refusal(r), (403, "DENIED".to_owned(), reason.clone()));
    let r = server
        .http()
        .head(server.url("/v2/team/app/manifests/unsigned"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);

    // A signed tag re-pushed to new content (without signing) is refused, naming both.
    let old = pushed_digest(&dct_ok(&owner, &["push", &moved]));
    owner.import_image(&moved);
    let new = pushed_digest(&plain_ok(&owner, &["push", &moved]));
    let err = consumer.fails(&["pull", &moved], NO_DCT);
    assert!(
        err.contains(&dct_refusal(
            "team/app:moved",
            &format!("Docker Content Trust: targets signed tag moved for {old}, but it now points to {new}")
        )),
        "{err}"
    );

    // Revoking a signature applies to the very next pull (nothing stale is remembered).
    plain_ok(&consumer, &["pull", &revoked]);
    dct_ok(&owner, &["trust", "revoke", "--yes", &revoked]);
    let err = consumer.fails(&["pull", &revoked], NO_DCT);
    assert!(
        err.contains(&dct_refusal(
            "team/app:revoked",
            "Docker Content Trust: tag revoked is not signed by targets/releases or targets"
        )),
        "{err}"
    );

    // The publisher's flow is unchanged: a signed push of a new tag (push, then sign) and
    // signing the re-pushed tag again make both servable.
    let fresh = format!("{repo}:fresh");
    owner.import_image(&fresh);
    dct_ok(&owner, &["push", &fresh]);
    plain_ok(&consumer, &["pull", &fresh]);
    dct_ok(&owner, &["push", &moved]);
    plain_ok(&consumer, &["pull", &moved]);
    // A publisher's own plain pull asks for pull only, so it is checked like anyone's.
    let err = owner.fails(&["pull", &unsigned], NO_DCT);
    assert!(err.contains(&reason), "{err}");

    // Counted and audited (at most once a minute per reference).
    assert!(metric(&server, "refused") >= refused_before + 6);
    let records = audit(&server);
    let refusals: Vec<_> = records
        .iter()
        .filter(|(a, t, _)| a == "signature-policy.refuse" && t == "team/app:unsigned")
        .collect();
    assert_eq!(refusals.len(), 1, "{records:?}");
    assert!(refusals[0].2.ends_with(&reason), "{:?}", refusals[0]);

    // Restricted to a role that has signed nothing: the owner's targets signatures no
    // longer count.
    set_rules(
        &server,
        json!([{"scope": "repository:team/*", "mode": "enforce", "dct": {"roles": ["targets/releases"]}}]),
    );
    let err = consumer.fails(&["pull", &signed], NO_DCT);
    assert!(
        err.contains(&dct_refusal(
            "team/app:signed",
            "Docker Content Trust: tag signed is not signed by targets/releases"
        )),
        "{err}"
    );
    set_rules(
        &server,
        json!([{"scope": "repository:team/*", "mode": "enforce", "dct": {"roles": ["targets"]}}]),
    );
    plain_ok(&consumer, &["pull", &signed]);

    // Audit mode: served, counted, recorded.
    set_rules(
        &server,
        json!([{"scope": "repository:team/*", "mode": "audit", "dct": {}}]),
    );
    let audited = metric(&server, "audited_unsigned");
    plain_ok(&consumer, &["pull", &unsigned]);
    assert_eq!(metric(&server, "audited_unsigned"), audited + 1);
    assert!(
        audit(&server)
            .iter()
            .any(|(a, t, _)| a == "signature-policy.audit" && t == "team/app:unsigned")
    );
    // Other repositories were never covered.
    owner.import_image(&format!("{}/other/app:x", server.host));
    plain_ok(&owner, &["push", &format!("{}/other/app:x", server.host)]);
}

#[test]
fn a_dct_signature_that_expires_stops_being_served() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = login(&server, "admin", &server.admin_password);
    let consumer = consumer(&server, &owner);
    let image = format!("{}/team/expiring:v1", server.host);
    owner.import_image(&image);
    plain_ok(&owner, &["push", &image]);
    let http = server.http();
    let token = server.token(&["repository:team/expiring:pull"]);
    let manifest = http
        .get(server.url("/v2/team/expiring/manifests/v1"))
        .bearer_auth(&token)
        .header("accept", "application/vnd.docker.distribution.manifest.v2+json")
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let digest = sha256(&manifest);
    // Trust data whose targets file expires in a few seconds, from an independent signer.
    let gun = format!("{}/team/expiring", server.host);
    let expires = chrono_like_now_plus(6);
    let out = Command::new("/usr/bin/python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/trust_init.py"))
        .arg(format!("https://{}", server.host))
        .arg(&gun)
        .args([
            "--token",
            &server.token(&[&format!("repository:{gun}:pull,push")]),
            "--target",
            &format!("v1={}:{}", &digest[7..], manifest.len()),
            "--targets-expires",
            &expires,
            "--ca",
        ])
        .arg(&server.ca)
        .output()
        .expect("trust_init.py");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    assert_eq!(v["status"], 200, "{v}");
    set_rules(
        &server,
        json!([{"scope": "registry", "mode": "enforce", "dct": {}}]),
    );
    plain_ok(&consumer, &["pull", &image]);
    std::thread::sleep(std::time::Duration::from_secs(8));
    let err = consumer.fails(&["pull", &image], NO_DCT);
    assert!(
        err.contains(
            "team/expiring:v1 is not signed as the signature policy for registry requires \
             (accepted: Docker Content Trust): Docker Content Trust data does not verify: "
        ) && err.contains("expired"),
        "{err}"
    );
}

/// Go's RFC 3339 form of now + `seconds`, UTC.
fn chrono_like_now_plus(seconds: u64) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("+{seconds} seconds"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("date");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_signed_multi_platform_index_serves_its_platforms() {
    require_tool("skopeo");
    require_tool("notary");
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let owner = login(&server, "admin", &server.admin_password);
    let consumer = consumer(&server, &owner);
    let certs = server.cert_dir();
    let certs = certs.to_str().unwrap();
    let layout = server.scratch("layout");
    write_oci_layout(&layout, &[("linux", "amd64"), ("linux", "arm64")]);
    let owner_creds = format!("admin:{}", server.admin_password);
    let dest = format!("docker://{}/team/multi:v1", server.host);
    let out = skopeo(&[
        "copy",
        "--all",
        "--dest-cert-dir",
        certs,
        "--dest-creds",
        &owner_creds,
        &format!("oci:{}:v1", layout.display()),
        &dest,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = skopeo_raw(&server, "team/multi:v1");
    assert!(out.status.success(), "{}", text(&out));
    let index = out.stdout.clone();
    let index_digest = sha256(&index);

    set_rules(
        &server,
        json!([{"scope": "repository:team/*", "mode": "enforce", "dct": {}}]),
    );
    let refused =
        |o: &Output| !o.status.success() && text(o).contains("is not signed as the signature policy");
    let out = skopeo_raw(&server, "team/multi:v1");
    assert!(refused(&out), "{}", text(&out));

    // Sign the index by tag with the notary CLI (a target added by hash).
    let trust_dir = server.scratch("notary");
    let gun = format!("{}/team/multi", server.host);
    for args in [
        vec!["init", gun.as_str()],
        vec![
            "addhash",
            gun.as_str(),
            "v1",
            &index.len().to_string(),
            "--sha256",
            &index_digest[7..],
            "-p",
        ],
    ] {
        let out = common::notary(&server, &trust_dir, &args);
        assert!(out.status.success(), "notary {args:?}: {}", text(&out));
    }

    // The index and each platform manifest (read by digest) are served.
    plain_ok(
        &consumer,
        &[
            "pull",
            "--platform",
            "linux/arm64",
            &format!("{}/team/multi:v1", server.host),
        ],
    );
    let out_dir = server.scratch("out");
    let out = skopeo(&[
        "copy",
        "--all",
        "--src-cert-dir",
        certs,
        "--src-creds",
        &format!("consumer:{CONSUMER_PASSWORD}"),
        &dest,
        &format!("oci:{}:v1", out_dir.display()),
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn only_owners_change_the_policy_and_every_change_is_checked_versioned_and_audited() {
    let server = Server::start();
    let owner = login(&server, "admin", &server.admin_password);
    let _consumer = consumer(&server, &owner);
    let owner_token = server.token(&["registry:admin:*"]);
    let rule = json!([{"scope": "registry", "mode": "enforce", "dct": {}}]);

    // A non-owner is refused, with or without a token; nothing changes.
    let consumer_token = server
        .token_as("consumer", CONSUMER_PASSWORD, &["registry:admin:*"])
        .expect("token");
    let (status, _) = put_policy_as(&server, &consumer_token, &json!({"version": 0, "rules": rule}));
    assert_eq!(status, 401);
    let r = server
        .http()
        .put(server.url("/api/v1/signature-policy"))
        .json(&json!({"version": 0, "rules": rule}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        common::signature_policy(&server),
        json!({"version": 0, "rules": []})
    );

    // Bad documents: exact errors, nothing stored.
    for (doc, message) in [
        (
            json!({"version": 0, "rules": [{"scope": "repository:Team", "mode": "enforce", "dct": {}}]}),
            "rule 0: scope \"repository:Team\" must be registry, repository:<name> or repository:<prefix>/*",
        ),
        (
            json!({"version": 0, "rules": [{"scope": "registry", "mode": "enforce"}]}),
            "rule 0 (registry): mode enforce needs at least one of dct, cosign, notation",
        ),
    ] {
        let (status, body) = put_policy_as(&server, &owner_token, &doc);
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["errors"][0]["code"], "POLICY_INVALID");
        assert_eq!(body["errors"][0]["message"], message);
    }
    assert_eq!(common::signature_policy(&server)["version"], 0);

    // A stale version is refused; the current one is stored as the next.
    let (status, body) = put_policy_as(&server, &owner_token, &json!({"version": 0, "rules": rule}));
    assert_eq!((status, body["version"].clone()), (200, json!(1)), "{body}");
    let (status, body) = put_policy_as(&server, &owner_token, &json!({"version": 0, "rules": []}));
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["errors"][0]["message"],
        "the signature policy changed since version 0 was read (it is now version 1); read it again and reapply the change"
    );
    assert_eq!(common::signature_policy(&server)["rules"], rule);
    let records = audit(&server);
    let changes: Vec<_> = records
        .iter()
        .filter(|(a, _, _)| a == "signature-policy.update")
        .collect();
    assert_eq!(changes.len(), 1, "{records:?}");
    assert!(
        changes[0].2.ends_with("version 1: registry enforce dct"),
        "{:?}",
        changes[0]
    );
}

/// The cosign fixtures: an image and its `.sig` manifest signed by skopeo 1.9.3
/// (`testdata/cosign/README.md`).
fn cosign_fixture(name: &str) -> Vec<u8> {
    let path = common::repo_root().join("testdata/cosign").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Push the captured image as `repo:v1` and its signature manifest as `sha256-<hex>.sig`
/// (with `payload` as the signature's payload blob): the bytes skopeo wrote, through the
/// registry API. Returns the image digest.
fn push_cosign_signed(server: &Server, token: &str, repo: &str, payload: &[u8]) -> String {
    const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
    let http = server.http();
    for hex in [
        "4933c1a81d4f181aeb6018a8de2208dfcd74d70b4a5aa6c0418a14fbfce5e06f",
        "e44dc0dca5f2416431ae1e65a2403e2ca295afd8faa5c71671a2f9d37c7e3824",
        "5f6d5fcf2e261543b3562b015870cc9b3245ffd85f3195dc4550ee7339902932",
    ] {
        common::upload_blob(
            server,
            &http,
            token,
            repo,
            &cosign_fixture(&format!("image-blobs/{hex}")),
        );
    }
    let payload_digest = common::upload_blob(server, &http, token, repo, payload);
    let image = cosign_fixture("image-manifest.json");
    let digest = sha256(&image);
    assert_eq!(
        digest,
        String::from_utf8(cosign_fixture("image-digest.txt"))
            .unwrap()
            .trim()
    );
    let mut signature = String::from_utf8(cosign_fixture("signature-manifest.json")).unwrap();
    let captured_payload = "sha256:6e8fa0cee587ea5b8683a966f3ec67ffd39abedb9811abdee8655805cbb27b52";
    if payload_digest != captured_payload {
        // A tampered payload: the layer names it (and its size), the signature stays.
        signature = signature
            .replace(captured_payload, &payload_digest)
            .replace("\"size\":298", &format!("\"size\":{}", payload.len()));
    }
    common::put_manifest(server, token, repo, "v1", OCI, image);
    let signature_tag = format!("sha256-{}.sig", &digest[7..]);
    common::put_manifest(server, token, repo, &signature_tag, OCI, signature.into_bytes());
    digest
}

#[test]
fn enforce_with_cosign_keys_serves_what_skopeo_signed_and_refuses_the_rest() {
    require_tool("skopeo");
    let server = Server::start();
    let owner = login(&server, "admin", &server.admin_password);
    let consumer = consumer(&server, &owner);
    let push = server.token(&[
        "repository:team/cosigned:pull,push",
        "repository:team/tampered:pull,push",
        "repository:team/plain:pull,push",
    ]);
    let payload = cosign_fixture("blobs/6e8fa0cee587ea5b8683a966f3ec67ffd39abedb9811abdee8655805cbb27b52");
    let digest = push_cosign_signed(&server, &push, "team/cosigned", &payload);
    let mut tampered = payload.clone();
    let at = tampered.len() - 3;
    tampered[at] = if tampered[at] == b'1' { b'2' } else { b'1' };
    push_cosign_signed(&server, &push, "team/tampered", &tampered);
    let http = server.http();
    common::push_tiny_image(&server, &http, &push, "team/plain", "v1", "plain");

    let key = |name: &str| String::from_utf8(cosign_fixture(&format!("{name}.pub"))).unwrap();
    set_rules(
        &server,
        json!([{"scope": "repository:team/*", "mode": "enforce",
                "cosign": {"keys": [{"name": "signer", "public_key": key("signer")}]}}]),
    );
    // Signed by the key: served to docker and skopeo, by tag and digest; the signature
    // manifest itself stays readable so clients can verify.
    let image = format!("{}/team/cosigned:v1", server.host);
    plain_ok(&consumer, &["pull", &image]);
    for reference in [
        "team/cosigned:v1".to_owned(),
        format!("team/cosigned@{digest}"),
        format!("team/cosigned:sha256-{}.sig", &digest[7..]),
    ] {
        let out = skopeo_raw(&server, &reference);
        assert!(out.status.success(), "{reference}: {}", text(&out));
    }
    // A tampered payload and an image without signature are refused, with the reason.
    let cosign_refusal = |what: &str, reason: &str| {
        format!(
            "{what} is not signed as the signature policy for repository:team/* requires \
             (accepted: cosign): cosign: {reason}"
        )
    };
    let out = skopeo_raw(&server, "team/tampered:v1");
    assert!(
        !out.status.success()
            && text(&out).contains(&cosign_refusal(
                "team/tampered:v1",
                &format!("no cosign signature of {digest} verified: signature 1 is not signed by any configured key")
            )),
        "{}",
        text(&out)
    );
    let err = consumer.fails(&["pull", &format!("{}/team/plain:v1", server.host)], NO_DCT);
    let plain_digest = common::sha256(
        &http
            .get(server.url("/v2/team/plain/manifests/v1"))
            .bearer_auth(&push)
            .send()
            .unwrap()
            .bytes()
            .unwrap(),
    );
    assert!(
        err.contains(&cosign_refusal(
            "team/plain:v1",
            &format!("no signature (sha256-{}.sig does not exist)", &plain_digest[7..])
        )),
        "{err}"
    );

    // Another key: the same signature no longer counts (the remembered answer belonged
    // to the previous policy).
    set_rules(
        &server,
        json!([{"scope": "repository:team/*", "mode": "enforce",
                "cosign": {"keys": [{"name": "other", "public_key": key("other")}]}}]),
    );
    let err = consumer.fails(&["pull", &image], NO_DCT);
    assert!(
        err.contains(&cosign_refusal(
            "team/cosigned:v1",
            &format!(
                "no cosign signature of {digest} verified: signature 1 is not signed by any configured key"
            )
        )),
        "{err}"
    );
    // A key that is not a public key is refused when the policy is written.
    let version = common::signature_policy(&server)["version"].as_u64().unwrap();
    let (status, body) = put_policy_as(
        &server,
        &server.token(&["registry:admin:*"]),
        &json!({"version": version, "rules": [{"scope": "registry", "mode": "enforce",
                "cosign": {"keys": [{"name": "bad", "public_key": "not a key"}]}}]}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("rule 0 (registry): cosign key \"bad\": "),
        "{body}"
    );
}

/// A blob of the notation CLI's e2e OCI layouts (`testdata/notation/README.md`).
fn notation_blob(layout: &str, hex: &str) -> Vec<u8> {
    let path = common::repo_root()
        .join("testdata/notation/notation-e2e")
        .join(layout)
        .join("blobs/sha256")
        .join(hex);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const NOTATION_IMAGE: &str = "b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

/// Push the notation e2e image as `repo:v1`, then the signature manifest `signature` of
/// `layout` with its envelope `envelope` (bytes, possibly altered) by digest.
fn push_notation_signed(
    server: &Server,
    token: &str,
    repo: &str,
    layout: &str,
    signature: &str,
    envelope: Vec<u8>,
) {
    let http = server.http();
    for hex in [
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "6de5fe1f75e4b1094c98086f403d5fd8117776ebe5aad1609281403d13dea070",
    ] {
        common::upload_blob(
            server,
            &http,
            token,
            repo,
            &notation_blob("e2e-valid-signature", hex),
        );
    }
    let envelope_digest = common::upload_blob(server, &http, token, repo, &envelope);
    let mut manifest = String::from_utf8(notation_blob(layout, signature)).unwrap();
    let original: Value = serde_json::from_str(&manifest).unwrap();
    let named = original["layers"][0]["digest"].as_str().unwrap().to_owned();
    if named != envelope_digest {
        manifest = manifest.replace(&named, &envelope_digest);
    }
    const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
    let image = notation_blob("e2e-valid-signature", NOTATION_IMAGE);
    common::put_manifest(server, token, repo, "v1", OCI, image);
    let by_digest = sha256(manifest.as_bytes());
    common::put_manifest(server, token, repo, &by_digest, OCI, manifest.into_bytes());
}

#[test]
fn enforce_with_a_notation_trust_store_serves_what_the_notation_cli_signed() {
    require_tool("skopeo");
    let server = Server::start();
    let owner = login(&server, "admin", &server.admin_password);
    let _consumer = consumer(&server, &owner);
    let push = server.token(&[
        "repository:team/notary:pull,push",
        "repository:team/tampered:pull,push",
        "repository:team/expired:pull,push",
    ]);
    let valid_sig = "90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f";
    let envelope = notation_blob(
        "e2e-valid-signature",
        "c9af07e038b2b1a463e648986ad7273157511ffeba0b689f33e5472bae471f50",
    );
    push_notation_signed(
        &server,
        &push,
        "team/notary",
        "e2e-valid-signature",
        valid_sig,
        envelope.clone(),
    );
    // One byte of the JWS signature changed (base64url stays valid).
    let mut tampered = envelope;
    let at = tampered
        .windows(13)
        .position(|w| w == b"\"signature\":\"")
        .unwrap()
        + 20;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    push_notation_signed(
        &server,
        &push,
        "team/tampered",
        "e2e-valid-signature",
        valid_sig,
        tampered,
    );
    push_notation_signed(
        &server,
        &push,
        "team/expired",
        "e2e-with-expired-cert",
        "b06e392c2d88206b492dbaf5381800578611eb24f86587bc7717cd3b736e5da7",
        notation_blob(
            "e2e-with-expired-cert",
            "8513a5ba473f32b78a87518b732700632c05cde0d59d179275c5c5a8096beeed",
        ),
    );
    let cert = |name: &str| {
        std::fs::read_to_string(
            common::repo_root()
                .join("testdata/notation/notation-e2e/localkeys")
                .join(name),
        )
        .unwrap()
    };
    let rule = |root: &str, identity: &str| {
        json!([{"scope": "repository:team/*", "mode": "enforce",
                "notation": {"trust_store": [{"name": "e2e", "certificate": cert(root)}],
                             "trusted_identities": [identity]}}])
    };
    set_rules(&server, rule("e2e.crt", "*"));
    let served = |reference: &str| skopeo_raw(&server, reference);
    for reference in [
        "team/notary:v1".to_owned(),
        format!("team/notary@sha256:{NOTATION_IMAGE}"),
        format!("team/notary@sha256:{valid_sig}"),
    ] {
        let out = served(&reference);
        assert!(out.status.success(), "{reference}: {}", text(&out));
    }
    let refusal = |repo: &str| {
        let out = served(&format!("{repo}:v1"));
        assert!(!out.status.success(), "{repo} served");
        text(&out)
    };
    let prefix = "is not signed as the signature policy for repository:team/* requires (accepted: Notation): Notation: signature sha256:";
    let out = refusal("team/tampered");
    assert!(
        out.contains(prefix) && out.contains("envelope signature invalid"),
        "{out}"
    );
    // Signed under another root: the chain does not lead to e2e.crt.
    let out = refusal("team/expired");
    assert!(
        out.contains(prefix) && out.contains("certificate chain does not lead to a trusted root"),
        "{out}"
    );
    // With its own root trusted, its certificate has expired; the e2e signature's root
    // is now the untrusted one.
    set_rules(&server, rule("expired_e2e.crt", "*"));
    let out = refusal("team/expired");
    assert!(out.contains(prefix) && out.contains("expired at"), "{out}");
    let out = refusal("team/notary");
    assert!(
        out.contains("certificate chain does not lead to a trusted root"),
        "{out}"
    );
    // A signer outside the trusted identities.
    set_rules(
        &server,
        rule("e2e.crt", "x509.subject: C=US, ST=WA, O=Someone Else"),
    );
    let out = refusal("team/notary");
    assert!(out.contains("is not a trusted identity"), "{out}");
}
