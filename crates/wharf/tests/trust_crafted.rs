//! The crafted-upload replay (`testdata/notary-capture/crafted.py`, an independent Python
//! TUF signer) against the real Wharf server: every case must get the same HTTP status, error
//! code and error `detail.Name` as the reference notary-server recorded in
//! `testdata/notary/crafted/example.com_crafted-final/results.json`, and afterwards the
//! served trust data must be exactly what the accepted cases uploaded (byte for byte for the
//! client-signed roles; version, meta hashes and signatures for the server-generated ones).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use common::Server;
use sha2::{Digest as _, Sha256, Sha512};

const PYTHON: &str = "/usr/bin/python3";

/// Both scripts import `tuflib.py` from `testdata/notary-capture`: without this Python
/// would write a `__pycache__` into the vendored directory of the source tree.
fn python() -> Command {
    let mut cmd = Command::new(PYTHON);
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

/// The vendored capture vectors and tools (`testdata/README.md` says where they came from).
fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Fail with a message naming what is missing (never skip).
fn require_python_tools(script: &Path) {
    assert!(
        Path::new(PYTHON).exists(),
        "missing tool `{PYTHON}`: run `sudo scripts/install-deps.sh`"
    );
    let out = Command::new(PYTHON)
        .args(["-c", "import cryptography, requests"])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "missing python3 modules `cryptography`/`requests` (python3-cryptography, \
         python3-requests): run `sudo scripts/install-deps.sh`\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(script.is_file(), "missing replay tool {}", script.display());
}

#[derive(Debug, PartialEq)]
struct Verdict {
    status: u64,
    code: String,
    detail_name: String,
}

/// `crafted.py` spells one label with a trailing `?` that the fixture copy dropped.
fn norm_label(label: &str) -> String {
    label.trim_end_matches('?').to_owned()
}

fn verdict(entry: &serde_json::Value) -> Verdict {
    let status = entry["status"].as_u64().expect("status");
    let body = entry["body"].as_str().expect("body");
    let (code, detail_name) = if body.trim().is_empty() {
        (String::new(), String::new())
    } else {
        let v: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("error body is not JSON ({e}): {body}"));
        let err = &v["errors"][0];
        (
            err["code"].as_str().unwrap_or_default().to_owned(),
            err["detail"]["Name"].as_str().unwrap_or_default().to_owned(),
        )
    };
    Verdict {
        status,
        code,
        detail_name,
    }
}

fn results(path: &Path) -> Vec<(String, serde_json::Value)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let v: Vec<serde_json::Value> = serde_json::from_str(&text).expect("results.json");
    v.into_iter()
        .map(|e| (e["label"].as_str().expect("label").to_owned(), e))
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Independent check (the capture tools' `tuflib.py`) of the signatures of what Wharf serves.
const VERIFY_PY: &str = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
from tuflib import canon, verify_sig
d = sys.argv[2]
load = lambda n: json.load(open(d + "/" + n + ".json", "rb"))
root = load("root"); keys = root["signed"]["keys"]; roles = root["signed"]["roles"]
def check(name, doc, role_keyids, key_table):
    msg = canon(doc["signed"]); ok = 0
    for s in doc["signatures"]:
        if s["keyid"] in role_keyids:
            k = key_table[s["keyid"]]
            verify_sig(k["keytype"], k["keyval"]["public"], s["method"], s["sig"], msg); ok += 1
    assert ok >= 1, name + ": no signature by an authorised key"
    print(name, "verified", ok)
for role in ("root", "targets", "snapshot", "timestamp"):
    check(role, load(role), roles[role]["keyids"], keys)
# The final targets (E26) no longer declares the delegation: use the last accepted targets
# that did (OK06), as stored beside the served files.
deleg = load("releases-parent")["signed"]["delegations"]
rel = [r for r in deleg["roles"] if r["name"] == "targets/releases"][0]
check("targets/releases", load("releases"), rel["keyids"], deleg["keys"])
"#;

#[test]
fn crafted_replay_matches_reference_verdicts_and_final_state() {
    let script = testdata().join("notary-capture/crafted.py");
    require_python_tools(&script);
    let reference_dir = testdata().join("notary/crafted/example.com_crafted-final");
    let reference = results(&reference_dir.join("results.json"));
    assert!(reference.len() >= 30, "reference results look truncated");

    let server = Server::start_with(&[("WHARF_CONTENT_TRUST_ENABLED_AT_BOOTSTRAP", "true")]);
    let gun = format!("{}/crafted-final", server.host);
    let token = server.token(&[&format!("repository:{gun}:push,pull")]);
    let out_dir = server.scratch("crafted-out");

    let out = python()
        .arg(&script)
        .arg(&gun)
        .env("TRUST_BASE", format!("https://{}", server.host))
        .env("TRUST_CA", &server.ca)
        .env("TRUST_TOKEN", &token)
        .env("CRAFTED_OUT", &out_dir)
        .output()
        .expect("run crafted.py");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "crafted.py failed:\n{printed}\n{}",
        server.log()
    );
    let ours = results(&out_dir.join("results.json"));

    // Same cases, same order; then label by label the same verdict.
    let labels =
        |r: &[(String, serde_json::Value)]| -> Vec<String> { r.iter().map(|(l, _)| norm_label(l)).collect() };
    assert_eq!(labels(&ours), labels(&reference), "case lists differ");
    let mut mismatches = Vec::new();
    for ((label, mine), (_, theirs)) in ours.iter().zip(&reference) {
        let mut t = verdict(theirs);
        // Deliberate difference: an upload of a version already stored is notary's VERSION,
        // which docker prints as "trust server rejected operation."; Wharf answers a typed
        // validation error that says the data changed and to sign again.
        if t.code == "VERSION" {
            t = Verdict {
                status: 400,
                code: "INVALID_UPDATE".into(),
                detail_name: "ErrValidation".into(),
            };
        }
        let m = verdict(mine);
        if m != t {
            mismatches.push(format!(
                "{label}: wharf {m:?} body {}\n    reference {t:?}",
                mine["body"]
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ from the reference:\n{}\n{printed}",
        mismatches.len(),
        reference.len(),
        mismatches.join("\n")
    );
    let accepted = ours.iter().filter(|(_, e)| e["status"] == 200).count();
    assert_eq!(accepted, 9, "OK01–OK08 and E26 are accepted by the reference");

    // What the accepted cases leave behind: for every role, the last uploaded bytes
    // (the `timestamp` part is ignored by the server, a `.json` filename suffix is stripped).
    let mut expected: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut releases_parent = None;
    for (label, entry) in &ours {
        if entry["status"] != 200 {
            continue;
        }
        let prefix = format!("{label}--");
        let mut parts = 0;
        for f in std::fs::read_dir(&out_dir).expect("read CRAFTED_OUT").flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(&prefix) else {
                continue;
            };
            let role = rest.strip_suffix(".json").expect(".json").replace("%2F", "/");
            let role = role.strip_suffix(".json").unwrap_or(&role).to_owned();
            parts += 1;
            let bytes = std::fs::read(f.path()).expect("read part");
            if role == "targets" && bytes.windows(16).any(|w| w == b"targets/releases") {
                releases_parent = Some(bytes.clone());
            }
            if role != "timestamp" {
                expected.insert(role, bytes);
            }
        }
        assert!(parts > 0, "no uploaded parts found for accepted case {label}");
    }
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        ["root", "targets", "targets/releases"],
        "roles uploaded by the accepted cases"
    );

    let http = server.http();
    let get = |name: &str| -> Vec<u8> {
        let resp = http
            .get(server.url(&format!("/v2/{gun}/_trust/tuf/{name}.json")))
            .bearer_auth(&token)
            .send()
            .expect("GET trust metadata");
        assert_eq!(resp.status().as_u16(), 200, "GET {name}.json");
        resp.bytes().expect("body").to_vec()
    };
    let mut served = BTreeMap::new();
    for role in ["root", "targets", "targets/releases", "snapshot", "timestamp"] {
        served.insert(role, get(role));
    }
    for (role, bytes) in &expected {
        assert!(
            served[role.as_str()] == *bytes,
            "served {role}.json is not the bytes of the last accepted upload:\nserved   {}\nexpected {}",
            String::from_utf8_lossy(&served[role.as_str()]),
            String::from_utf8_lossy(bytes)
        );
    }
    // The reference's final client-signed files have the same versions (2, 9, 3).
    let version = |bytes: &[u8]| -> u64 {
        let v: serde_json::Value = serde_json::from_slice(bytes).expect("metadata JSON");
        v["signed"]["version"].as_u64().expect("version")
    };
    for (role, file) in [
        ("root", "root"),
        ("targets", "targets"),
        ("targets/releases", "targets_releases"),
        ("snapshot", "snapshot"),
        ("timestamp", "timestamp"),
    ] {
        let reference_file =
            std::fs::read(reference_dir.join(format!("server-current-{file}.json"))).unwrap();
        assert_eq!(
            version(&served[role]),
            version(&reference_file),
            "{role} version differs from the reference server's after the same replay"
        );
    }

    // Server-generated snapshot/timestamp describe exactly the served files.
    let meta_of = |bytes: &[u8]| {
        serde_json::json!({
            "hashes": {"sha256": b64(&Sha256::digest(bytes)), "sha512": b64(&Sha512::digest(bytes))},
            "length": bytes.len(),
        })
    };
    let snapshot: serde_json::Value = serde_json::from_slice(&served["snapshot"]).unwrap();
    for role in ["root", "targets", "targets/releases"] {
        assert_eq!(
            snapshot["signed"]["meta"][role],
            meta_of(&served[role]),
            "snapshot meta for {role}"
        );
    }
    assert_eq!(
        snapshot["signed"]["meta"].as_object().unwrap().len(),
        3,
        "{snapshot}"
    );
    let timestamp: serde_json::Value = serde_json::from_slice(&served["timestamp"]).unwrap();
    assert_eq!(
        timestamp["signed"]["meta"]["snapshot"],
        meta_of(&served["snapshot"]),
        "timestamp meta for snapshot"
    );

    // Signatures, checked by the independent Python implementation.
    let verify_dir = server.scratch("served");
    for (role, file) in [
        ("root", "root"),
        ("targets", "targets"),
        ("targets/releases", "releases"),
        ("snapshot", "snapshot"),
        ("timestamp", "timestamp"),
    ] {
        std::fs::write(verify_dir.join(format!("{file}.json")), &served[role]).unwrap();
    }
    std::fs::write(
        verify_dir.join("releases-parent.json"),
        releases_parent.expect("an accepted targets declared targets/releases"),
    )
    .unwrap();
    let out = python()
        .arg("-c")
        .arg(VERIFY_PY)
        .arg(testdata().join("notary-capture"))
        .arg(&verify_dir)
        .output()
        .expect("run python3");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "signature check failed:\n{said}");
    assert_eq!(said.matches(" verified ").count(), 5, "{said}");
}
