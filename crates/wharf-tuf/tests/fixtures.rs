//! Static checks over every captured metadata file (spec §7 test 1):
//! byte-exact re-serialisation, key IDs, signatures, snapshot/timestamp meta.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wharf_tuf::metadata::{Envelope, MetaFile};
use wharf_tuf::signature::verify_signature;
use wharf_tuf::{PublicKey, canonical};

use common::NOTARY_FIXTURES;

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(Path::new(NOTARY_FIXTURES).join(dir))
        .unwrap_or_else(|e| panic!("fixtures dir {dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Files that were captured *because* they are broken (see the capture notes,
/// `shared/fixtures/notary/README.md`):
/// (name fragment, expected failure kind).
const EXPECTED_BROKEN: &[(&str, &str)] = &[
    // custom data with 12345678901234567890: we refuse integers above 2^53
    // (notary rounds through float64 and then fails the signature check).
    ("126-E03-addhash-special-names-POST-targets", "canonical"),
    ("268-E2-e-c-bigint-POST-targets", "canonical"), // notary-server rejected it too (400)
    ("220-E2-e-c-sorted-POST-targets", "sig"),
    ("232-E2-e-c-unsorted-POST-targets", "sig"),
    ("244-E2-e-c-float-POST-targets", "canonical"), // json: unsupported value: 1.5
    ("256-E2-e-c-exp-POST-targets", "sig"),
    ("C-E04-malformed-json-POST-targets", "parse"),
    ("C-E07-root-bad-signature-POST-root", "sig"),
    ("C-E12-targets-bad-sig-POST-targets", "sig"),
    ("C-X12-signature-method-unknown-POST-targets", "sig"),
    ("C-X13-ecdsa-der-signature-POST-targets", "sig"),
    ("C-WS01-pretty-printed-targets", "layout"), // valid but not notary's byte layout
];

fn expected_broken(n: &str) -> Option<&'static str> {
    EXPECTED_BROKEN
        .iter()
        .find(|(frag, _)| n.contains(frag))
        .map(|(_, k)| *k)
}

#[derive(Default, Debug)]
struct Tally {
    files: usize,
    layout_identical: usize,
    key_ids: usize,
    sigs_ok: usize,
    sigs_unknown_key: usize,
    meta_checked: usize,
    broken: Vec<(String, &'static str)>,
}

fn check_dir(dir: &str) -> Tally {
    let paths = files(dir, "json");
    let mut t = Tally::default();
    // Pass 1: every key any file declares (key IDs are content hashes, so
    // pooling them over the directory is safe), plus the server key bodies.
    let mut keys: BTreeMap<String, PublicKey> = BTreeMap::new();
    let mut by_sha: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut envs = Vec::new();
    for p in &paths {
        let bytes = fs::read(p).unwrap();
        by_sha.insert(hex::encode(Sha256::digest(&bytes)), bytes.clone());
        let n = name(p);
        match Envelope::parse(bytes) {
            Ok(env) => {
                let declared = env
                    .signed
                    .get("keys")
                    .into_iter()
                    .chain(env.signed.pointer("/delegations/keys"));
                for map in declared {
                    for (id, kv) in map.as_object().unwrap() {
                        let k = PublicKey::from_value(kv).unwrap();
                        assert_eq!(&k.key_id(), id, "key ID recomputes in {n}");
                        t.key_ids += 1;
                        keys.insert(id.clone(), k);
                    }
                }
                envs.push((n, env));
            }
            Err(_) => {
                assert_eq!(expected_broken(&n), Some("parse"), "{n} does not parse");
                t.broken.push((n, "parse"));
            }
        }
    }
    for p in files(dir, "key") {
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        if v.get("errors").is_some() {
            continue; // an error response captured under a .key name
        }
        let k = PublicKey::from_value(&v).unwrap();
        keys.insert(k.key_id(), k);
    }
    // Pass 2: layout, signatures, meta.
    for (n, env) in &envs {
        t.files += 1;
        let broken = expected_broken(n);
        let msg = match env.canonical_signed() {
            Ok(m) => m,
            Err(e) => {
                assert_eq!(broken, Some("canonical"), "{n}: {e}");
                assert!(e.to_string().starts_with("json: unsupported value: "), "{e}");
                t.broken.push((n.clone(), "canonical"));
                continue;
            }
        };
        let relayout = env.to_go_layout().unwrap();
        if relayout == env.bytes {
            t.layout_identical += 1;
        } else {
            assert!(
                matches!(broken, Some("layout") | Some("sig")),
                "{n}: re-serialisation differs"
            );
            if broken == Some("layout") {
                t.broken.push((n.clone(), "layout"));
            }
        }
        let mut all_ok = true;
        for s in &env.signatures {
            match keys.get(&s.keyid) {
                None => t.sigs_unknown_key += 1,
                Some(k) => {
                    if verify_signature(k, &s.method, &s.sig, &msg).is_ok() {
                        t.sigs_ok += 1;
                    } else {
                        all_ok = false;
                    }
                }
            }
        }
        if !all_ok {
            assert_eq!(broken, Some("sig"), "{n}: a signature does not verify");
            t.broken.push((n.clone(), "sig"));
        } else {
            assert_ne!(broken, Some("sig"), "{n} was expected to have a bad signature");
        }
        if matches!(env.common.typ.as_str(), "Snapshot" | "Timestamp") {
            let m: MetaFile = env.decode().unwrap();
            for (role, fm) in &m.meta {
                let want = hex::encode(&fm.hashes["sha256"]);
                if let Some(file) = by_sha.get(&want) {
                    assert!(fm.matches(file), "{n}: meta for {role} (length/sha512) mismatch");
                    t.meta_checked += 1;
                }
            }
        }
    }
    t
}

#[test]
fn notary_cli_vectors() {
    let t = check_dir("notary-cli");
    assert_eq!(t.files, 101);
    assert_eq!(t.layout_identical, 101);
    assert!(t.broken.is_empty(), "{:?}", t.broken);
    assert_eq!(t.sigs_unknown_key, 0);
    assert!(t.sigs_ok >= 101 && t.meta_checked > 50, "{t:?}");
}

#[test]
fn docker_vectors() {
    let t = check_dir("docker");
    assert_eq!((t.files, t.layout_identical), (47, 47));
    assert!(t.broken.is_empty(), "{:?}", t.broken);
    assert_eq!(t.sigs_unknown_key, 0);
    assert!(t.meta_checked > 20, "{t:?}");
}

#[test]
fn docker_auth_vectors() {
    let t = check_dir("docker-auth");
    assert_eq!((t.files, t.layout_identical), (18, 18));
    assert!(t.broken.is_empty(), "{:?}", t.broken);
    assert!(t.meta_checked > 5, "{t:?}");
}

#[test]
fn misc_part2_vectors() {
    let t = check_dir("misc-part2");
    // 294 .json files: 292 envelopes + 2 unparsable; only the intentionally broken ones fail.
    assert_eq!(t.files, 292);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, k) in &t.broken {
        *kinds.entry(k).or_default() += 1;
    }
    // X11 (method "ECDSA") verifies: notary compares methods case-insensitively.
    assert_eq!(kinds.get("sig"), Some(&9), "{:?}", t.broken);
    assert_eq!(kinds.get("parse"), Some(&2));
    assert_eq!(kinds.get("canonical"), Some(&3));
    assert_eq!(kinds.get("layout"), Some(&3));
    assert!(t.meta_checked > 100, "{t:?}");
}

/// HTML escaping: the file has `\u003c…`, the signed message has raw `<>&`.
#[test]
fn html_escaped_target_name() {
    let p = files("misc-part2", "json")
        .into_iter()
        .find(|p| name(p).contains("161-E2-e-names1-POST-targets"))
        .unwrap();
    let env = Envelope::parse(fs::read(&p).unwrap()).unwrap();
    let msg = env.canonical_signed().unwrap();
    assert!(env.bytes.windows(6).any(|w| w == b"\\u003c"));
    assert!(msg.windows(10).any(|w| w == b"name<with>"));
    assert!(!msg.windows(6).any(|w| w == b"\\u003c"));
    let escaped = canonical::go_html_escape(&msg);
    assert_eq!(&env.bytes[10..10 + escaped.len()], escaped.as_slice());
    assert_eq!(env.to_go_layout().unwrap(), env.bytes);
}

/// `GET *.key` bodies are reproduced byte for byte.
#[test]
fn key_endpoint_bodies() {
    let mut n = 0;
    for dir in ["notary-cli", "docker", "docker-auth", "misc-part2"] {
        for p in files(dir, "key") {
            let bytes = fs::read(&p).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            if v.get("errors").is_some() {
                continue;
            }
            let k = PublicKey::from_value(&v).unwrap();
            assert_eq!(k.to_key_endpoint_json(), bytes, "{}", name(&p));
            n += 1;
        }
    }
    assert!(n >= 30, "{n}");
}

/// Root certificate keys: CN, validity, canonical key ID.
#[test]
fn docker_root_certificate() {
    let p = files("docker", "json")
        .into_iter()
        .find(|p| name(p).contains("246-D01-docker-push-first-POST-root"))
        .unwrap();
    let env = Envelope::parse(fs::read(&p).unwrap()).unwrap();
    let root: wharf_tuf::Root = env.decode().unwrap();
    let rk = &root.roles["root"];
    let key = &root.keys[&rk.keyids[0]];
    assert_eq!(key.keytype, "ecdsa-x509");
    let certs = wharf_tuf::keys::parse_pem_certificates(&key.public).unwrap();
    assert_eq!(
        certs[0].common_name.as_deref(),
        Some("localhost:5005/research/app")
    );
    assert_eq!(certs[0].not_after - certs[0].not_before, 3650 * 86400);
    // Standard PEM round-trips byte-exactly (so the ID is stable).
    assert_eq!(certs[0].to_pem().as_bytes(), key.public.as_slice());
    let canonical_id = key.canonical_key_id().unwrap();
    assert_ne!(canonical_id, key.key_id());
    assert_eq!(canonical_id, certs[0].bare_public_key().unwrap().key_id());
}
