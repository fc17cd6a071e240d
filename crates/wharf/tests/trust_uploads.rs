//! Hostile trust uploads from the security review, against a real server: each shapes an
//! otherwise valid first publish (the control is accepted) so that only the hostile part
//! can be the reason for the refusal, and nothing is stored.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, text};

const PYTHON: &str = "/usr/bin/python3";

/// A full first publish of `repository` by the owner, shaped by `extra` arguments of
/// `tests/tools/trust_init.py`; returns (status, body).
fn publish(server: &Server, repository: &str, extra: &[&str]) -> (u16, String) {
    let gun = format!("{}/{repository}", server.host);
    let token = server.token(&[&format!("repository:{gun}:push,pull")]);
    let out = Command::new(PYTHON)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/trust_init.py"))
        .arg(server.url(""))
        .arg(&gun)
        .args(["--token", &token, "--ca"])
        .arg(&server.ca)
        .args(extra)
        .output()
        .expect("run trust_init.py");
    assert!(out.status.success(), "trust_init.py: {}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["keys"], 200, "{v}");
    (
        v["status"].as_u64().expect("status") as u16,
        v["body"].as_str().unwrap_or_default().to_owned(),
    )
}

fn error(body: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{body}"));
    (
        v["errors"][0]["code"].as_str().unwrap_or_default().to_owned(),
        v["errors"][0]["detail"].to_string(),
    )
}

#[test]
fn hostile_uploads_are_refused_exactly_and_store_nothing() {
    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);

    // A boundary of RFC 2046's 70 characters is fine; one more is refused at once (the
    // review's 200,000-character boundary cost 37 s of quadratic search).
    assert_eq!(
        publish(&server, "ok/boundary", &["--boundary-length", "70"]).0,
        200
    );
    let (status, body) = publish(&server, "long/boundary", &["--boundary-length", "71"]);
    assert_eq!(
        (status, error(&body).0.as_str()),
        (400, "MALFORMED_UPLOAD"),
        "{body}"
    );
    assert_eq!(server.trust_root("long/boundary"), None);

    // The valid targets signature repeated 40,000 times (7.7 MB): every copy was once
    // verified; now more than 200 signatures are refused before any verification.
    let (status, body) = publish(&server, "many/signatures", &["--signatures", "40000"]);
    assert_eq!(status, 400, "{body}");
    let (code, detail) = error(&body);
    assert_eq!(code, "INVALID_UPDATE", "{body}");
    assert!(
        detail.contains("targets has too many signatures: 40000, limit 200"),
        "{body}"
    );
    assert_eq!(server.trust_root("many/signatures"), None);
    assert_eq!(publish(&server, "two/signatures", &["--signatures", "2"]).0, 200);

    // An `expires` Go cannot parse: one delegate's upload like this once broke `notary
    // list` of the whole repository for everyone.
    for bad in [
        "2030-01-01t00:00:00z",
        "2030-01-01 00:00:00Z",
        "2030-01-01T23:59:60Z",
    ] {
        let (status, body) = publish(&server, "bad/expires", &["--targets-expires", bad]);
        assert_eq!(status, 400, "{bad}: {body}");
        // notary's MALFORMED_JSON carries no detail (the reason, Go's own parse error, is
        // in wharf-tuf's unit tests).
        assert_eq!(error(&body).0, "MALFORMED_JSON", "{bad}: {body}");
        assert_eq!(server.trust_root("bad/expires"), None);
    }

    // Larger than the 10 MiB update limit: the exact message, nothing stored.
    let (status, body) = publish(&server, "huge/update", &["--signatures", "60000"]);
    assert_eq!(status, 400, "{body}");
    let (code, detail) = error(&body);
    assert_eq!(code, "INVALID_UPDATE", "{body}");
    assert!(
        detail.contains("update is larger than the server's 10 MiB limit"),
        "{body}"
    );
    assert_eq!(server.trust_root("huge/update"), None);

    // The registry kept answering throughout.
    let r = server
        .http()
        .get(server.url("/v2/"))
        .bearer_auth(server.token(&[]))
        .send()
        .expect("ping");
    assert_eq!(r.status(), 200);
}
