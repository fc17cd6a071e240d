//! `verify_repository`: the verified view of captured docker repositories
//! matches what `docker trust inspect` and `docker pull` printed, and crafted
//! repositories show only what a client accepts.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use wharf_tuf::metadata::{FileMeta, format_go_time};
use wharf_tuf::signature::Signature;
use wharf_tuf::{
    Files, IgnoreReason, IgnoredRole, PrivateKey, PublicKey, Signer, TrustedTargets, VerifyError,
    verify_repository,
};

use common::*;

/// The captures were made on 2026-11-22; their timestamps expire on 2026-12-07.
fn capture_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

/// The role a captured file belongs to, from its name
/// (`NNN-STEP-GET-targets%2Falice.<sha256>.json`, `…-POST-root.json`).
fn role_of(file_name: &str) -> String {
    let (_, rest) = file_name
        .split_once("-GET-")
        .or_else(|| file_name.split_once("-POST-"))
        .unwrap_or_else(|| panic!("{file_name}: not a GET or POST capture"));
    let stem = rest.strip_suffix(".json").unwrap().replace("%2F", "/");
    match stem.rsplit_once('.') {
        Some((role, hex)) if hex.len() == 64 => role.to_owned(),
        _ => stem,
    }
}

/// Every captured metadata file of `localhost:5005/research/app` in `dir`
/// (all versions, as the server stores them) whose name starts with one of
/// `prefixes` (all when empty), and the current timestamp `timestamp`.
fn captured(dir: &str, prefixes: &[&str], timestamp: &str) -> Files {
    let dir = Path::new(NOTARY_FIXTURES).join(dir);
    let mut files = Files::new(fs::read(dir.join(timestamp)).unwrap());
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.contains("-GET-timestamp"))
        // D11 initialises another repository (research/fresh).
        .filter(|n| !n.contains("-D11-"))
        .filter(|n| prefixes.is_empty() || prefixes.iter().any(|p| n.starts_with(p)))
        .collect();
    names.sort();
    for n in names {
        files.add(&role_of(&n), fs::read(dir.join(&n)).unwrap());
    }
    files
}

/// One row of `docker trust inspect`: tag, digest (hex), signers.
type InspectRow = (String, String, Vec<String>);

/// docker's `matchReleasedSignatures` over the verified view (docker/cli
/// `cli/command/trust/common.go`): a (tag, digest) pair is shown when
/// `targets` or `targets/releases` lists it; its signers are the other roles
/// listing the same pair, "Repo Admin" when there are none (`inspect.go`).
fn docker_trust_inspect(view: &TrustedTargets) -> Vec<InspectRow> {
    let released = |r: &str| r == "targets" || r == "targets/releases";
    let mut rows: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for name in view.names() {
        let sigs = view.signatures(name);
        for (role, t) in &sigs {
            if released(&role.name) {
                let hex = t.digest().unwrap().trim_start_matches("sha256:").to_owned();
                rows.entry((name.to_owned(), hex)).or_default();
            }
        }
        for (role, t) in &sigs {
            let hex = t.digest().unwrap().trim_start_matches("sha256:").to_owned();
            if let Some(signers) = rows.get_mut(&(name.to_owned(), hex))
                && !released(&role.name)
            {
                signers.push(role.name.trim_start_matches("targets/").to_owned());
            }
        }
    }
    rows.into_iter()
        .map(|((tag, digest), mut signers)| {
            if signers.is_empty() {
                signers.push("Repo Admin".into());
            }
            (tag, digest, signers)
        })
        .collect()
}

/// docker's "List of signers": delegations declared by verified files,
/// `targets/releases` left out, with their key IDs.
fn docker_signers(view: &TrustedTargets) -> Vec<(String, Vec<String>)> {
    view.roles
        .iter()
        .flat_map(|r| &r.delegations)
        .filter(|d| d.name != "targets/releases")
        .map(|d| (d.name.trim_start_matches("targets/").to_owned(), d.keyids.clone()))
        .collect()
}

const GUN_APP: &str = "localhost:5005/research/app";
const V1: &str = "349c856e596cb464086930b968340609d64efc967a4504580c3b33dc5d8c2bbf";
const V2: &str = "33c0d4e7b0d0036f7ec8861c2b3a16476073478584d8c037fa4fb2df3535fa6a";
const ROOT_KEY: &str = "3e9569f1fa29652ccb2a7e8c83f20d3ff678d10277fb7e51d6183c22cb3268aa";
const REPOSITORY_KEY: &str = "966a8ca9c560437a0d782225f806d16cd9aaa2b48d7a3c89a83ca86fc9b3c334";

fn row(tag: &str, digest: &str, signers: &[&str]) -> InspectRow {
    (
        tag.into(),
        digest.into(),
        signers.iter().map(|s| s.to_string()).collect(),
    )
}

fn assert_admin_keys(view: &TrustedTargets) {
    assert_eq!(view.root.roles["root"].keyids, [ROOT_KEY]);
    assert_eq!(view.root.roles["targets"].keyids, [REPOSITORY_KEY]);
}

/// `cli-output/seqD.out`, D05: `docker trust inspect` after two pushes.
/// Every stored version is offered (targets v2, v3, v4 and the delegation
/// files written later); the timestamp of that moment names targets v3, so
/// that is the one read.
#[test]
fn d05_trust_inspect_matches_docker() {
    let files = captured("docker", &[], "269-D05-trust-inspect-GET-timestamp.json");
    let view = verify_repository(GUN_APP, &files, capture_time()).unwrap();
    assert_eq!(
        docker_trust_inspect(&view),
        [row("v1", V1, &["Repo Admin"]), row("v2", V2, &["Repo Admin"])]
    );
    assert_eq!(docker_signers(&view), []);
    assert_admin_keys(&view);
    assert_eq!(view.roles.len(), 1, "no delegations yet");
    assert_eq!(
        view.roles[0].version, 3,
        "the targets the snapshot names, not the newest (v4)"
    );
    assert!(view.ignored.is_empty());
}

/// `cli-output/seqD.out`, D09 (`docker trust inspect --pretty` after alice
/// signed v1), and `seqF2.out`, F18 (the same repository read by a fresh
/// client one update later).
#[test]
fn d09_and_f18_trust_inspect_match_docker() {
    let d09 = captured("docker", &[], "292-D09-trust-inspect-pretty-GET-timestamp.json");
    let f18 = captured(
        "misc-part2",
        &["09", "10"],
        "097-F18-inspect-fresh-GET-timestamp.json",
    );
    for (label, files) in [("D09", d09), ("F18", f18)] {
        let view =
            verify_repository(GUN_APP, &files, capture_time()).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(
            docker_trust_inspect(&view),
            [row("v1", V1, &["alice"]), row("v2", V2, &["Repo Admin"])],
            "{label}"
        );
        let signers = docker_signers(&view);
        assert_eq!(signers.len(), 1, "{label}");
        assert_eq!(signers[0].0, "alice");
        assert!(
            signers[0].1[0].starts_with("ee23c50507e2"),
            "{label}: {signers:?}"
        );
        assert_admin_keys(&view);
        let names: Vec<&str> = view.roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["targets", "targets/alice", "targets/releases"], "{label}");
        assert!(view.ignored.is_empty(), "{label}");
    }
}

/// `cli-output/seqD.out`: D03/D04 pulled v1 and v2 by these digests; D13
/// `docker pull …:nope` printed "No valid trust data for nope". After D08
/// v1 comes from `targets/releases`.
#[test]
fn docker_pull_resolves_the_captured_digests() {
    let files = captured("docker", &[], "258-D03-docker-pull-cached-GET-timestamp.json");
    let view = verify_repository(GUN_APP, &files, capture_time()).unwrap();
    for (tag, digest) in [("v1", V1), ("v2", V2)] {
        let (role, target) = view.pull_target(tag).unwrap();
        assert_eq!(role.name, "targets");
        assert_eq!(target.digest().unwrap(), format!("sha256:{digest}"));
        assert_eq!(target.length, 523);
    }
    let files = captured("docker", &[], "317-D13-pull-unsigned-tag-GET-timestamp.json");
    let view = verify_repository(GUN_APP, &files, capture_time()).unwrap();
    assert!(view.pull_target("nope").is_none());
    let (role, target) = view.pull_target("v1").unwrap();
    assert_eq!(role.name, "targets/releases");
    assert_eq!(target.digest().unwrap(), format!("sha256:{V1}"));
    assert_eq!(view.pull_target("v2").unwrap().0.name, "targets");
}

#[test]
fn captured_repository_under_another_gun_or_too_late_does_not_verify() {
    let files = captured("docker", &[], "292-D09-trust-inspect-pretty-GET-timestamp.json");
    let err = verify_repository("localhost:5005/research/other", &files, capture_time()).unwrap_err();
    assert_eq!(err.role(), Some("root"), "{err}");
    // The server re-signs the timestamp on read; a stale one is what clients refuse.
    let later = Utc.with_ymd_and_hms(2026, 12, 8, 0, 0, 0).unwrap();
    let err = verify_repository(GUN_APP, &files, later).unwrap_err();
    assert_eq!(
        err,
        VerifyError::Invalid {
            role: "timestamp".into(),
            reason: "timestamp expired at Mon Dec 7 16:36:14 UTC 2026".into()
        }
    );
    assert_eq!(
        verify_repository(GUN_APP, &Files::default(), capture_time()).unwrap_err(),
        VerifyError::NoTrustData
    );
}

// ---- Crafted repositories -------------------------------------------------

const GUN: &str = "registry.example.com/team/app";

/// A repository with a root (x509 root key, CN = GUN), a targets key and
/// server snapshot/timestamp keys; files are stored, then published by a
/// snapshot naming some of them.
struct Repo {
    now: DateTime<Utc>,
    targets_key: PrivateKey,
    snapshot_key: PrivateKey,
    timestamp_key: PrivateKey,
    root: Vec<u8>,
    stored: Vec<(String, Vec<u8>)>,
}

fn target(seed: u8) -> Value {
    json!({"hashes": {"sha256": B64.encode([seed; 32])}, "length": 523})
}

fn digest(seed: u8) -> String {
    format!("sha256:{}", hex::encode([seed; 32]))
}

/// `delegations` member: (name, keys, threshold, paths) per role.
fn delegations(roles: &[(&str, &[&PublicKey], i64, &[&str])]) -> Value {
    let mut keys = serde_json::Map::new();
    let mut entries = Vec::new();
    for (name, ks, threshold, paths) in roles {
        for k in *ks {
            keys.insert(k.key_id(), k.to_value());
        }
        let ids: Vec<String> = ks.iter().map(|k| k.key_id()).collect();
        entries.push(json!({"keyids": ids, "name": name, "paths": paths, "threshold": threshold}));
    }
    json!({"keys": keys, "roles": entries})
}

impl Repo {
    fn new() -> Self {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let root_key = root_key(GUN, now - Duration::days(1));
        let targets_key = PrivateKey::generate_p256().unwrap();
        let snapshot_key = PrivateKey::generate_ed25519().unwrap();
        let timestamp_key = PrivateKey::generate_ed25519().unwrap();
        let root = root_value(
            1,
            now + Duration::days(3650),
            &[root_key.public_key()],
            1,
            targets_key.public_key(),
            snapshot_key.public_key(),
            timestamp_key.public_key(),
        );
        let root = sign(&root, &[&root_key]);
        Repo {
            now,
            targets_key,
            snapshot_key,
            timestamp_key,
            root,
            stored: Vec::new(),
        }
    }

    fn expires(&self) -> DateTime<Utc> {
        self.now + Duration::days(365)
    }

    /// A targets-role file (version, targets, delegations) signed by `signers`.
    fn targets_file(
        &self,
        version: i64,
        targets: Value,
        delegations: Value,
        signers: &[&dyn Signer],
    ) -> Vec<u8> {
        sign(
            &targets_value(version, self.expires(), targets, delegations),
            signers,
        )
    }

    /// Stores a file without publishing it.
    fn store(&mut self, role: &str, bytes: &[u8]) {
        self.stored.push((role.to_owned(), bytes.to_vec()));
    }

    /// Stores `files` and publishes a snapshot naming root and exactly them,
    /// and a timestamp naming that snapshot. Returns what the verifier reads:
    /// every stored file, the new timestamp current.
    fn publish(&mut self, files: &[(&str, &[u8])]) -> Files {
        self.publish_lacking(files, &[])
    }

    /// [`Repo::publish`], but the bytes of the roles in `lacking` are named
    /// without being stored.
    fn publish_lacking(&mut self, files: &[(&str, &[u8])], lacking: &[&str]) -> Files {
        let mut meta = serde_json::Map::new();
        meta.insert("root".into(), FileMeta::from_bytes(&self.root).to_value());
        for (role, bytes) in files {
            meta.insert(role.to_string(), FileMeta::from_bytes(bytes).to_value());
            if !lacking.contains(role) {
                self.store(role, bytes);
            }
        }
        let expires = format_go_time(self.expires());
        let snapshot = sign(
            &json!({"_type": "Snapshot", "expires": expires, "meta": meta, "version": 2}),
            &[&self.snapshot_key],
        );
        let timestamp = sign(
            &json!({"_type": "Timestamp", "expires": expires,
                    "meta": {"snapshot": FileMeta::from_bytes(&snapshot).to_value()}, "version": 2}),
            &[&self.timestamp_key],
        );
        let mut out = Files::new(timestamp);
        out.add("root", self.root.clone());
        out.add("snapshot", snapshot);
        for (role, bytes) in &self.stored {
            out.add(role, bytes.clone());
        }
        out
    }

    fn verify(&self, files: &Files) -> Result<TrustedTargets, VerifyError> {
        verify_repository(GUN, files, self.now)
    }
}

fn signer_roles<'a>(view: &'a TrustedTargets, tag: &str) -> Vec<&'a str> {
    view.signatures(tag)
        .into_iter()
        .map(|(r, _)| r.name.as_str())
        .collect()
}

fn ignored(view: &TrustedTargets) -> Vec<(&str, String)> {
    view.ignored
        .iter()
        .map(|i| (i.role.as_str(), i.reason.to_string()))
        .collect()
}

#[test]
fn delegation_targets_outside_its_paths_are_not_signed() {
    let mut r = Repo::new();
    let delegate = PrivateKey::generate_p256().unwrap();
    let dk = delegate.public_key();
    let targets = r.targets_file(
        2,
        json!({}),
        delegations(&[
            ("targets/releases", &[dk], 1, &["prod-"]),
            ("targets/a", &[dk], 1, &["a/"]),
        ]),
        &[&r.targets_key],
    );
    let releases = r.targets_file(
        1,
        json!({"prod-1": target(1), "dev-1": target(2)}),
        delegations(&[]),
        &[&delegate],
    );
    // A child may only narrow its parent's paths: "c" is outside "a/".
    let a = r.targets_file(
        1,
        json!({"a/1": target(3)}),
        delegations(&[("targets/a/b", &[dk], 1, &["a/b", "c"])]),
        &[&delegate],
    );
    let ab = r.targets_file(
        1,
        json!({"a/b1": target(4), "c1": target(5), "a/x": target(6)}),
        delegations(&[]),
        &[&delegate],
    );
    let files = r.publish(&[
        ("targets", &targets),
        ("targets/releases", &releases),
        ("targets/a", &a),
        ("targets/a/b", &ab),
    ]);
    let view = r.verify(&files).unwrap();
    assert_eq!(signer_roles(&view, "prod-1"), ["targets/releases"]);
    assert_eq!(view.pull_target("prod-1").unwrap().1.digest().unwrap(), digest(1));
    assert!(view.signatures("dev-1").is_empty());
    assert!(view.pull_target("dev-1").is_none());
    assert_eq!(view.role("targets/a/b").unwrap().paths, ["a/b"]);
    assert_eq!(signer_roles(&view, "a/b1"), ["targets/a/b"]);
    assert!(view.signatures("c1").is_empty(), "outside the parent's paths");
    assert!(
        view.signatures("a/x").is_empty(),
        "inside the parent's, outside its own"
    );
    assert_eq!(
        view.names().into_iter().collect::<Vec<_>>(),
        ["a/1", "a/b1", "prod-1"]
    );
}

#[test]
fn removed_signers_sign_nothing() {
    let mut r = Repo::new();
    let alice = PrivateKey::generate_p256().unwrap();
    let bob = PrivateKey::generate_p256().unwrap();
    let (ak, bk) = (alice.public_key(), bob.public_key());
    // Before: alice and bob both in targets/releases (threshold 1), alice
    // also with her own delegation; alice signed v1 into both.
    let before = r.targets_file(
        2,
        json!({}),
        delegations(&[
            ("targets/alice", &[ak], 1, &[""]),
            ("targets/releases", &[ak, bk], 1, &[""]),
        ]),
        &[&r.targets_key],
    );
    let alice_file = r.targets_file(1, json!({"v1": target(1)}), delegations(&[]), &[&alice]);
    let releases = r.targets_file(1, json!({"v1": target(1)}), delegations(&[]), &[&alice]);
    let files = r.publish(&[
        ("targets", &before),
        ("targets/alice", &alice_file),
        ("targets/releases", &releases),
    ]);
    let view = r.verify(&files).unwrap();
    assert_eq!(signer_roles(&view, "v1"), ["targets/alice", "targets/releases"]);

    // `docker trust signer remove alice`: her entry goes, her key leaves
    // targets/releases. The snapshot still names both files (server
    // snapshots never drop an entry) and both are still stored.
    let after = r.targets_file(
        3,
        json!({}),
        delegations(&[("targets/releases", &[bk], 1, &[""])]),
        &[&r.targets_key],
    );
    let files = r.publish(&[
        ("targets", &after),
        ("targets/alice", &alice_file),
        ("targets/releases", &releases),
    ]);
    let view = r.verify(&files).unwrap();
    assert!(
        view.signatures("v1").is_empty(),
        "{:?}",
        signer_roles(&view, "v1")
    );
    assert!(view.pull_target("v1").is_none());
    assert!(view.role("targets/alice").is_none());
    assert_eq!(
        ignored(&view),
        [(
            "targets/releases",
            "valid signatures did not meet threshold for targets/releases".to_string()
        )]
    );
}

#[test]
fn the_targets_the_snapshot_names_is_read_not_the_newest() {
    let mut r = Repo::new();
    let v2 = r.targets_file(2, json!({"old": target(1)}), delegations(&[]), &[&r.targets_key]);
    let v3 = r.targets_file(3, json!({"new": target(2)}), delegations(&[]), &[&r.targets_key]);
    r.store("targets", &v3);
    let files = r.publish(&[("targets", &v2)]);
    let view = r.verify(&files).unwrap();
    assert_eq!(view.roles[0].version, 2);
    assert_eq!(signer_roles(&view, "old"), ["targets"]);
    assert!(view.signatures("new").is_empty());
}

#[test]
fn expired_targets_fail_and_expired_delegations_sign_nothing() {
    let mut r = Repo::new();
    let delegate = PrivateKey::generate_p256().unwrap();
    let expired = r.now - Duration::hours(1);
    let targets = sign(
        &targets_value(
            2,
            r.now + Duration::days(30),
            json!({"v1": target(1)}),
            delegations(&[("targets/releases", &[delegate.public_key()], 1, &[""])]),
        ),
        &[&r.targets_key],
    );
    let releases = sign(
        &targets_value(1, expired, json!({"v2": target(2)}), delegations(&[])),
        &[&delegate],
    );
    let files = r.publish(&[("targets", &targets), ("targets/releases", &releases)]);
    let view = r.verify(&files).unwrap();
    assert_eq!(signer_roles(&view, "v1"), ["targets"]);
    assert!(view.signatures("v2").is_empty());
    assert_eq!(ignored(&view)[0].0, "targets/releases");
    assert!(ignored(&view)[0].1.starts_with("targets/releases expired at "));

    // The same repository 31 days later: targets itself has expired, which
    // fails the whole repository for a client.
    let later = r.now + Duration::days(31);
    let err = verify_repository(GUN, &files, later).unwrap_err();
    assert_eq!(err.role(), Some("targets"));
    assert!(
        err.to_string().starts_with("targets: targets expired at "),
        "{err}"
    );
}

/// `file` with its first signature's bytes flipped.
fn corrupt(file: &[u8]) -> Vec<u8> {
    let env = wharf_tuf::Envelope::parse(file.to_vec()).unwrap();
    let mut sigs: Vec<Signature> = env.signatures.clone();
    sigs[0].sig[5] ^= 0xff;
    wharf_tuf::metadata::encode_file(&env.signed, &sigs).unwrap()
}

#[test]
fn bad_signatures_are_not_signatures() {
    let mut r = Repo::new();
    let delegate = PrivateKey::generate_p256().unwrap();
    let targets = r.targets_file(
        2,
        json!({"v1": target(1)}),
        delegations(&[("targets/releases", &[delegate.public_key()], 1, &[""])]),
        &[&r.targets_key],
    );
    let releases = corrupt(&r.targets_file(1, json!({"v2": target(2)}), delegations(&[]), &[&delegate]));
    let files = r.publish(&[("targets", &targets), ("targets/releases", &releases)]);
    let view = r.verify(&files).unwrap();
    assert!(view.signatures("v2").is_empty());
    assert_eq!(
        ignored(&view),
        [(
            "targets/releases",
            "valid signatures did not meet threshold for targets/releases".to_string()
        )]
    );
    // A delegate's key on the top-level targets file is no signature for it.
    let forged = r.targets_file(2, json!({"v1": target(9)}), delegations(&[]), &[&delegate]);
    let mut r = Repo::new();
    let files = r.publish(&[("targets", &forged)]);
    assert_eq!(
        r.verify(&files).unwrap_err(),
        VerifyError::Invalid {
            role: "targets".into(),
            reason: "valid signatures did not meet threshold for targets".into()
        }
    );
    let files = r.publish(&[(
        "targets",
        &corrupt(&r.targets_file(2, json!({}), delegations(&[]), &[&r.targets_key])),
    )]);
    assert_eq!(r.verify(&files).unwrap_err().role(), Some("targets"));
}

#[test]
fn a_threshold_of_two_needs_two_signatures() {
    let mut r = Repo::new();
    let (k1, k2) = (
        PrivateKey::generate_p256().unwrap(),
        PrivateKey::generate_ed25519().unwrap(),
    );
    let targets = r.targets_file(
        2,
        json!({}),
        delegations(&[("targets/releases", &[k1.public_key(), k2.public_key()], 2, &[""])]),
        &[&r.targets_key],
    );
    let one = r.targets_file(1, json!({"v1": target(1)}), delegations(&[]), &[&k1]);
    let files = r.publish(&[("targets", &targets), ("targets/releases", &one)]);
    let view = r.verify(&files).unwrap();
    assert!(view.signatures("v1").is_empty());
    assert_eq!(ignored(&view).len(), 1);
    // The same key twice is still one key.
    let twice = r.targets_file(1, json!({"v1": target(1)}), delegations(&[]), &[&k1, &k1]);
    let files = r.publish(&[("targets", &targets), ("targets/releases", &twice)]);
    assert!(r.verify(&files).unwrap().signatures("v1").is_empty());
    let both = r.targets_file(1, json!({"v1": target(1)}), delegations(&[]), &[&k1, &k2]);
    let files = r.publish(&[("targets", &targets), ("targets/releases", &both)]);
    let view = r.verify(&files).unwrap();
    assert_eq!(signer_roles(&view, "v1"), ["targets/releases"]);
    assert!(view.ignored.is_empty());
}

#[test]
fn delegations_missing_from_snapshot_or_store() {
    let mut r = Repo::new();
    let delegate = PrivateKey::generate_p256().unwrap();
    let dk = delegate.public_key();
    let targets = r.targets_file(
        2,
        json!({"v1": target(1)}),
        delegations(&[
            ("targets/releases", &[dk], 1, &[""]),
            ("targets/bob", &[dk], 1, &[""]),
        ]),
        &[&r.targets_key],
    );
    let releases = r.targets_file(1, json!({"v2": target(2)}), delegations(&[]), &[&delegate]);
    let bob = r.targets_file(1, json!({"v3": target(3)}), delegations(&[]), &[&delegate]);
    // bob's file is stored but no snapshot names it: notary skips the role.
    r.store("targets/bob", &bob);
    let files = r.publish(&[("targets", &targets), ("targets/releases", &releases)]);
    let view = r.verify(&files).unwrap();
    assert_eq!(signer_roles(&view, "v2"), ["targets/releases"]);
    assert!(view.signatures("v3").is_empty());
    assert_eq!(
        view.ignored,
        [IgnoredRole {
            role: "targets/bob".into(),
            reason: IgnoreReason::NotPublished
        }]
    );

    // A file the snapshot names but the store lacks fails the client's
    // update as a whole.
    r.stored.clear();
    let files = r.publish_lacking(
        &[("targets", &targets), ("targets/releases", &releases)],
        &["targets/releases"],
    );
    assert_eq!(
        r.verify(&files).unwrap_err(),
        VerifyError::Missing {
            role: "targets/releases".into(),
            by: "snapshot".into()
        }
    );
}

#[test]
fn docker_pull_prefers_releases_and_ignores_other_delegations() {
    let mut r = Repo::new();
    let alice = PrivateKey::generate_p256().unwrap();
    let ak = alice.public_key();
    let targets = r.targets_file(
        2,
        json!({"both": target(1), "top": target(2), "shadowed": target(3)}),
        delegations(&[
            ("targets/alice", &[ak], 1, &[""]),
            ("targets/releases", &[ak], 1, &[""]),
        ]),
        &[&r.targets_key],
    );
    let releases = r.targets_file(
        1,
        json!({"both": target(4)}),
        delegations(&[("targets/releases/x", &[ak], 1, &[""])]),
        &[&alice],
    );
    let x = r.targets_file(1, json!({"shadowed": target(5)}), delegations(&[]), &[&alice]);
    let alice_file = r.targets_file(
        1,
        json!({"mine": target(6), "top": target(7)}),
        delegations(&[]),
        &[&alice],
    );
    let files = r.publish(&[
        ("targets", &targets),
        ("targets/releases", &releases),
        ("targets/releases/x", &x),
        ("targets/alice", &alice_file),
    ]);
    let view = r.verify(&files).unwrap();
    let pulled = |tag: &str| {
        view.pull_target(tag)
            .map(|(role, t)| (role.name.clone(), t.digest().unwrap()))
    };
    assert_eq!(pulled("both"), Some(("targets/releases".into(), digest(4))));
    assert_eq!(pulled("top"), Some(("targets".into(), digest(2))));
    assert_eq!(pulled("mine"), None, "only alice's own delegation lists it");
    // notary finds it under targets/releases first; docker then refuses a
    // child of releases (its GetTargetByName shadowing).
    assert_eq!(pulled("shadowed"), None);
    // Every role listing a name, breadth first from targets.
    assert_eq!(signer_roles(&view, "both"), ["targets", "targets/releases"]);
    assert_eq!(signer_roles(&view, "top"), ["targets", "targets/alice"]);
    assert_eq!(signer_roles(&view, "shadowed"), ["targets", "targets/releases/x"]);
}
