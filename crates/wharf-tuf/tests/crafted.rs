//! Replays the crafted uploads (testdata/notary/crafted/*) through the update
//! validator, in order, against an in-memory store, and compares each
//! outcome with the reference notary-server's recorded verdict: HTTP status
//! and the complete response body (byte-exact, incl. the typed `Msg`).
//!
//! The uploads name the *reference server's* timestamp/snapshot keys, whose
//! private halves we do not have. `ReferenceKeys` therefore "holds" exactly
//! those public keys (so key-availability decisions — E10, E11 — are real)
//! but produces signatures with a throw-away key: they do not verify, which
//! is irrelevant to the verdicts. Signature validity of generated files is
//! covered by `tests/sequence.rs` with real keys.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use wharf_tuf::metadata::{Envelope, MetaFile};
use wharf_tuf::update::{NewFile, UpdateInput, parse_upload_part, validate_update};
use wharf_tuf::{Error, FileMeta, PrivateKey, PublicKey, Root, Signature, Signer};

use common::NOTARY_FIXTURES;

struct ReferenceKey {
    public: PublicKey,
    throwaway: PrivateKey,
}

impl Signer for ReferenceKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }
    fn sign(&self, msg: &[u8]) -> Result<Signature, Error> {
        let mut s = self.throwaway.sign(msg)?;
        s.keyid = self.public.key_id();
        Ok(s)
    }
}

#[derive(Default)]
struct Store {
    /// role -> version -> bytes
    files: BTreeMap<String, BTreeMap<i64, Vec<u8>>>,
}

impl Store {
    fn current(&self) -> BTreeMap<String, Vec<u8>> {
        self.files
            .iter()
            .filter_map(|(r, v)| Some((r.clone(), v.last_key_value()?.1.clone())))
            .collect()
    }
    fn commit(&mut self, files: Vec<NewFile>) {
        for f in files {
            let prev = self
                .files
                .entry(f.role.clone())
                .or_default()
                .insert(f.version, f.bytes);
            assert!(
                prev.is_none(),
                "validator produced an already stored version of {}",
                f.role
            );
        }
    }
}

fn dir(name: &str) -> PathBuf {
    Path::new(NOTARY_FIXTURES).join("crafted").join(name)
}

/// Uploaded parts of a case: files `LABEL--<name>.json`, `%2F` = `/`.
fn parts(d: &Path, label: &str) -> Vec<(String, Vec<u8>)> {
    let prefix = format!("{label}--");
    let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let n = p.file_name()?.to_str()?.to_string();
            let rest = n
                .strip_prefix(&prefix)?
                .strip_suffix(".json")?
                .replace("%2F", "/");
            Some((rest, fs::read(&p).unwrap()))
        })
        .collect();
    v.sort();
    v
}

fn parse(bytes: &[u8]) -> Envelope {
    Envelope::parse(bytes.to_vec()).unwrap()
}

/// Capture time: crafted.py writes every root with expires = now + 3650 days.
fn capture_time(root_bytes: &[u8]) -> DateTime<Utc> {
    let root: Root = parse(root_bytes).decode().unwrap();
    root.expires.unwrap().with_timezone(&Utc) - Duration::days(3650) + Duration::seconds(60)
}

struct Outcome {
    replayed: usize,
    accepted: usize,
    skipped: Vec<String>,
    store: Store,
}

fn replay(dirname: &str, results: &str) -> Outcome {
    let d = dir(dirname);
    let cases: Vec<Value> = serde_json::from_slice(&fs::read(d.join(results)).unwrap()).unwrap();
    let gun = dirname.replacen('_', "/", 1);

    // The server's keys: timestamp key as served, snapshot key as listed by
    // the first accepted root (crafted.py puts the served snapshot key there).
    let ts_json: Value =
        serde_json::from_slice(&fs::read(d.join("server-timestamp.key.json")).unwrap()).unwrap();
    let ts_key = PublicKey::from_value(&ts_json).unwrap();
    let first_ok = cases.iter().find(|c| c["status"] == 200).unwrap()["label"]
        .as_str()
        .unwrap()
        .to_string();
    let first_root = parts(&d, &first_ok)
        .into_iter()
        .find(|(n, _)| n == "root")
        .unwrap()
        .1;
    let now = capture_time(&first_root);
    let root: Root = parse(&first_root).decode().unwrap();
    let sn_id = &root.roles["snapshot"].keyids[0];
    assert_eq!(&root.roles["timestamp"].keyids[0], &ts_key.key_id());
    let server_keys = vec![
        ReferenceKey {
            public: ts_key,
            throwaway: PrivateKey::generate_ed25519().unwrap(),
        },
        ReferenceKey {
            public: root.keys[sn_id].clone(),
            throwaway: PrivateKey::generate_ed25519().unwrap(),
        },
    ];

    let mut out = Outcome {
        replayed: 0,
        accepted: 0,
        skipped: Vec::new(),
        store: Store::default(),
    };
    for case in &cases {
        let label = case["label"].as_str().unwrap();
        let files = parts(&d, label);
        if files.is_empty() {
            // E02 (body not multipart) is an HTTP-layer case: nothing to replay.
            out.skipped.push(label.to_string());
            continue;
        }
        let current = out.store.current();
        let result = files
            .into_iter()
            .map(|(name, body)| parse_upload_part(&name, body))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|uploads| {
                let input = UpdateInput {
                    gun: &gun,
                    current: &current,
                    uploads: &uploads,
                    now,
                };
                validate_update(&input, &server_keys)
            });
        let (status, body) = match &result {
            Ok(_) => (200, String::new()),
            Err(e) => (e.http_status(), String::from_utf8(e.to_body()).unwrap()),
        };
        assert_eq!(
            status,
            case["status"].as_u64().unwrap() as u16,
            "{dirname} {label}: {result:?}"
        );
        assert_eq!(body, case["body"].as_str().unwrap(), "{dirname} {label}");
        if let Ok(files) = result {
            check_generated(&files, &out.store);
            out.store.commit(files);
            out.accepted += 1;
        }
        out.replayed += 1;
    }
    out
}

/// Generated snapshot/timestamp reference the exact bytes being stored.
fn check_generated(files: &[NewFile], store: &Store) {
    let mut cur = store.current();
    for f in files {
        cur.insert(f.role.clone(), f.bytes.clone());
    }
    let ts: MetaFile = parse(&cur["timestamp"]).decode().unwrap();
    assert!(ts.meta["snapshot"].matches(&cur["snapshot"]));
    let sn: MetaFile = parse(&cur["snapshot"]).decode().unwrap();
    for f in files
        .iter()
        .filter(|f| f.role != "snapshot" && f.role != "timestamp")
    {
        let m: &FileMeta = &sn.meta[&f.role];
        assert!(m.matches(&f.bytes), "snapshot meta for {}", f.role);
    }
}

fn version(bytes: &[u8]) -> i64 {
    parse(bytes).common.version
}

#[test]
fn crafted_final() {
    let o = replay("example.com_crafted-final", "results.json");
    assert_eq!((o.replayed, o.accepted), (34, 9));
    assert_eq!(o.skipped, ["E02-not-multipart"]);
    // Final state equals what the reference server served afterwards.
    let d = dir("example.com_crafted-final");
    let cur = o.store.current();
    for (role, file) in [
        ("root", "root"),
        ("targets", "targets"),
        ("targets/releases", "targets_releases"),
    ] {
        let served = fs::read(d.join(format!("server-current-{file}.json"))).unwrap();
        assert_eq!(cur[role], served, "current {role}");
    }
    for role in ["snapshot", "timestamp"] {
        let served = fs::read(d.join(format!("server-current-{role}.json"))).unwrap();
        assert_eq!(version(&cur[role]), version(&served), "{role} version numbering");
        let ours: MetaFile = parse(&cur[role]).decode().unwrap();
        let theirs: MetaFile = parse(&served).decode().unwrap();
        assert_eq!(
            ours.meta.keys().collect::<Vec<_>>(),
            theirs.meta.keys().collect::<Vec<_>>()
        );
    }
    // Same bytes referenced => same hashes as the reference snapshot.
    let ours: MetaFile = parse(&cur["snapshot"]).decode().unwrap();
    let theirs: MetaFile = parse(&fs::read(d.join("server-current-snapshot.json")).unwrap())
        .decode()
        .unwrap();
    assert_eq!(ours.meta, theirs.meta);
}

#[test]
fn crafted_extra() {
    let o = replay("example.com_crafted-x", "results-extra.json");
    assert_eq!((o.replayed, o.accepted), (12, 5));
}

#[test]
fn crafted_threshold() {
    let o = replay("example.com_crafted-thr", "results-threshold.json");
    assert_eq!((o.replayed, o.accepted), (5, 3));
    assert_eq!(version(&o.store.current()["root"]), 3);
}

#[test]
fn crafted_pem() {
    let o = replay("example.com_crafted-pem", "results-pem.json");
    assert_eq!((o.replayed, o.accepted), (4, 1));
}
