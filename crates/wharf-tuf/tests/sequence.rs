//! A realistic life cycle with real keys: docker first push (root v1 +
//! targets v2) with server-held snapshot and timestamp keys, second push,
//! delegation add, delegation-only push, root rotation, empty update,
//! read-path re-signing, and a client-managed snapshot repository.

mod common;

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use wharf_tuf::metadata::{Envelope, MetaFile};
use wharf_tuf::signature::verify_threshold;
use wharf_tuf::update::{
    NewFile, SNAPSHOT_EXPIRY, TIMESTAMP_EXPIRY, UpdateInput, Upload, generate_server_key, parse_upload_part,
    refresh_timestamp, validate_update,
};
use wharf_tuf::{PrivateKey, Root, Signer, UpdateError};

use common::*;

const GUN: &str = "registry.example.com/team/app";

struct Repo {
    files: BTreeMap<String, BTreeMap<i64, Vec<u8>>>,
}

impl Repo {
    fn current(&self) -> BTreeMap<String, Vec<u8>> {
        self.files
            .iter()
            .map(|(r, v)| (r.clone(), v.last_key_value().unwrap().1.clone()))
            .collect()
    }
    fn commit(&mut self, files: &[NewFile]) {
        for f in files {
            assert!(
                self.files
                    .entry(f.role.clone())
                    .or_default()
                    .insert(f.version, f.bytes.clone())
                    .is_none()
            );
        }
    }
    fn push(
        &mut self,
        parts: &[(&str, &[u8])],
        keys: &[PrivateKey],
        now: DateTime<Utc>,
    ) -> Result<Vec<NewFile>, UpdateError> {
        let uploads: Vec<Upload> = parts
            .iter()
            .map(|(n, b)| parse_upload_part(n, b.to_vec()))
            .collect::<Result<_, _>>()?;
        let current = self.current();
        let files = validate_update(
            &UpdateInput {
                gun: GUN,
                current: &current,
                uploads: &uploads,
                now,
            },
            keys,
        )?;
        self.commit(&files);
        self.assert_consistent();
        Ok(files)
    }
    /// What a client checks: timestamp/snapshot signed by the root's keys,
    /// hashes chain timestamp -> snapshot -> every role file.
    fn assert_consistent(&self) {
        let cur = self.current();
        let root: Root = Envelope::parse(cur["root"].clone()).unwrap().decode().unwrap();
        for role in ["snapshot", "timestamp"] {
            let env = Envelope::parse(cur[role].clone()).unwrap();
            let (keys, thr) = root.role_keys(role).unwrap();
            verify_threshold(&env.signed, &env.signatures, &keys, thr, role).unwrap();
            assert_eq!(
                env.to_go_layout().unwrap(),
                env.bytes,
                "{role} written in notary layout"
            );
        }
        let ts: MetaFile = Envelope::parse(cur["timestamp"].clone())
            .unwrap()
            .decode()
            .unwrap();
        assert!(ts.meta["snapshot"].matches(&cur["snapshot"]));
        let sn: MetaFile = Envelope::parse(cur["snapshot"].clone())
            .unwrap()
            .decode()
            .unwrap();
        for (role, bytes) in &cur {
            if role != "snapshot" && role != "timestamp" {
                assert!(sn.meta[role].matches(bytes), "snapshot meta for {role}");
            }
        }
    }
    fn version(&self, role: &str) -> i64 {
        *self.files[role].last_key_value().unwrap().0
    }
}

fn manifest_meta(body: &[u8]) -> serde_json::Value {
    let h = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body));
    json!({"hashes": {"sha256": h}, "length": body.len()})
}

#[test]
fn docker_lifecycle() {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 16, 0, 0).unwrap();
    // Server keys, as handed out by GET timestamp.key / snapshot.key.
    let ts = generate_server_key().unwrap();
    let sn = generate_server_key().unwrap();
    let body = String::from_utf8(ts.public_key().to_key_endpoint_json()).unwrap();
    assert!(
        body.starts_with(r#"{"keytype":"ed25519","keyval":{"public":""#)
            && body.ends_with(r#"","private":null}}"#)
    );
    let server = vec![ts.clone(), sn.clone()];

    // Client keys.
    let root1 = root_key(GUN, t0);
    let tgt = PrivateKey::generate_p256().unwrap();
    let mut repo = Repo {
        files: BTreeMap::new(),
    };

    // 1. first push: root v1 + targets v2.
    let root_v1 = root_value(
        1,
        t0 + Duration::days(3650),
        &[&root1.cert_key],
        1,
        tgt.public_key(),
        sn.public_key(),
        ts.public_key(),
    );
    let root_v1 = sign(&root_v1, &[&root1]);
    let tv2 = sign(
        &targets_value(
            2,
            t0 + Duration::days(1095),
            json!({"v1": manifest_meta(b"m1")}),
            no_delegations(),
        ),
        &[&tgt],
    );
    let files = repo
        .push(&[("targets", &tv2), ("root", &root_v1)], &server, t0)
        .unwrap();
    let got: Vec<(&str, i64)> = files.iter().map(|f| (f.role.as_str(), f.version)).collect();
    assert_eq!(
        got,
        [("root", 1), ("targets", 2), ("snapshot", 1), ("timestamp", 1)]
    );
    let tsm: MetaFile = Envelope::parse(repo.current()["timestamp"].clone())
        .unwrap()
        .decode()
        .unwrap();
    assert_eq!(tsm.expires.unwrap(), t0 + TIMESTAMP_EXPIRY);
    let snm: MetaFile = Envelope::parse(repo.current()["snapshot"].clone())
        .unwrap()
        .decode()
        .unwrap();
    assert_eq!(snm.expires.unwrap(), t0 + SNAPSHOT_EXPIRY);
    assert_eq!(snm.meta["root"].hashes.len(), 2, "sha256 + sha512");

    // 2. second push: targets v3. Replaying v3 afterwards is a VERSION conflict.
    let tv3 = sign(
        &targets_value(
            3,
            t0 + Duration::days(1095),
            json!({"v1": manifest_meta(b"m1"), "v2": manifest_meta(b"m2")}),
            no_delegations(),
        ),
        &[&tgt],
    );
    repo.push(&[("targets", &tv3)], &server, t0 + Duration::hours(1))
        .unwrap();
    assert_eq!((repo.version("snapshot"), repo.version("timestamp")), (2, 2));
    let err = repo
        .push(&[("targets", &tv3)], &server, t0 + Duration::hours(1))
        .unwrap_err();
    assert!(matches!(err, UpdateError::Version { .. }), "{err:?}");

    // 3. delegation add (targets v4 declares targets/releases) + the delegation file.
    let dk = PrivateKey::generate_p256().unwrap();
    let deleg = json!({"keys": {dk.key_id(): dk.public_key().to_value()},
                       "roles": [{"keyids": [dk.key_id()], "name": "targets/releases", "paths": [""], "threshold": 1}]});
    let tv4 = sign(
        &targets_value(4, t0 + Duration::days(1095), json!({}), deleg),
        &[&tgt],
    );
    let rel1 = sign(
        &targets_value(
            1,
            t0 + Duration::days(1095),
            json!({"v3": manifest_meta(b"m3")}),
            no_delegations(),
        ),
        &[&dk],
    );
    repo.push(
        &[("targets/releases", &rel1), ("targets", &tv4)],
        &server,
        t0 + Duration::hours(2),
    )
    .unwrap();

    // 4. delegation-only push; the stored parent is loaded to check it. A
    // delegation signed by the wrong key is refused with notary's message.
    let rel_bad = sign(
        &targets_value(2, t0 + Duration::days(1095), json!({}), no_delegations()),
        &[&tgt],
    );
    let err = repo
        .push(
            &[("targets/releases.json", &rel_bad)],
            &server,
            t0 + Duration::hours(3),
        )
        .unwrap_err();
    assert_eq!(
        err,
        UpdateError::BadTargets("valid signatures did not meet threshold for targets/releases".into())
    );
    let rel2 = sign(
        &targets_value(
            2,
            t0 + Duration::days(1095),
            json!({"v4": manifest_meta(b"m4")}),
            no_delegations(),
        ),
        &[&dk],
    );
    repo.push(
        &[("targets/releases.json", &rel2)],
        &server,
        t0 + Duration::hours(3),
    )
    .unwrap();
    assert_eq!(repo.version("snapshot"), 4);

    // 5. root rotation to a new root key: must be signed by old and new.
    let root2 = root_key(GUN, t0);
    let rv2 = root_value(
        2,
        t0 + Duration::days(3650),
        &[&root2.cert_key],
        1,
        tgt.public_key(),
        sn.public_key(),
        ts.public_key(),
    );
    let err = repo
        .push(
            &[("root", &sign(&rv2, &[&root2]))],
            &server,
            t0 + Duration::hours(4),
        )
        .unwrap_err();
    assert!(matches!(err, UpdateError::BadRoot(_)), "{err:?}");
    assert!(err.to_string().contains("could not rotate trust"), "{err}");
    repo.push(
        &[("root", &sign(&rv2, &[&root1, &root2]))],
        &server,
        t0 + Duration::hours(4),
    )
    .unwrap();
    // Next rotation only needs the (now current) new key; the old one no longer counts.
    let rv3 = root_value(
        3,
        t0 + Duration::days(3650),
        &[&root2.cert_key],
        1,
        tgt.public_key(),
        sn.public_key(),
        ts.public_key(),
    );
    let err = repo
        .push(
            &[("root", &sign(&rv3, &[&root1]))],
            &server,
            t0 + Duration::hours(5),
        )
        .unwrap_err();
    assert!(matches!(err, UpdateError::BadRoot(_)));
    repo.push(
        &[("root", &sign(&rv3, &[&root2]))],
        &server,
        t0 + Duration::hours(5),
    )
    .unwrap();
    assert_eq!(repo.version("root"), 3);

    // 6. empty update (docker trust revoke with nothing else): bumps snapshot + timestamp.
    let before = (repo.version("snapshot"), repo.version("timestamp"));
    repo.push(&[], &server, t0 + Duration::hours(6)).unwrap();
    assert_eq!(
        (repo.version("snapshot"), repo.version("timestamp")),
        (before.0 + 1, before.1 + 1)
    );

    // 7. read path: nothing to do while fresh; timestamp only after 15 days;
    // snapshot + timestamp once the snapshot expired too.
    assert!(
        refresh_timestamp(&repo.current(), &server, t0 + Duration::days(1))
            .unwrap()
            .is_empty()
    );
    let files = refresh_timestamp(&repo.current(), &server, t0 + Duration::days(15)).unwrap();
    assert_eq!(
        files.iter().map(|f| f.role.as_str()).collect::<Vec<_>>(),
        ["timestamp"]
    );
    repo.commit(&files);
    repo.assert_consistent();
    let files = refresh_timestamp(&repo.current(), &server, t0 + Duration::days(4 * 365)).unwrap();
    assert_eq!(
        files.iter().map(|f| f.role.as_str()).collect::<Vec<_>>(),
        ["snapshot", "timestamp"]
    );
    repo.commit(&files);
    repo.assert_consistent();

    // 8. a server that lost its snapshot key cannot generate a snapshot.
    let err = repo
        .push(&[], std::slice::from_ref(&ts), t0 + Duration::days(4 * 365))
        .unwrap_err();
    assert!(
        matches!(&err, UpdateError::BadHierarchy { missing, .. } if missing == "snapshot"),
        "{err:?}"
    );
}

#[test]
fn client_managed_snapshot() {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 16, 0, 0).unwrap();
    let ts = generate_server_key().unwrap();
    let server = vec![ts.clone()];
    let root1 = root_key(GUN, t0);
    let tgt = PrivateKey::generate_p256().unwrap();
    let snk = PrivateKey::generate_p256().unwrap();
    let rv1 = sign(
        &root_value(
            1,
            t0 + Duration::days(3650),
            &[&root1.cert_key],
            1,
            tgt.public_key(),
            snk.public_key(),
            ts.public_key(),
        ),
        &[&root1],
    );
    let tv1 = sign(
        &targets_value(1, t0 + Duration::days(1095), json!({}), no_delegations()),
        &[&tgt],
    );
    let sn_for = |root: &[u8], targets: &[u8], version: i64| {
        let fm = |b: &[u8]| wharf_tuf::FileMeta::from_bytes(b).to_value();
        sign(
            &json!({"_type": "Snapshot", "expires": wharf_tuf::metadata::format_go_time(t0 + Duration::days(1095)),
                     "meta": {"root": fm(root), "targets": fm(targets)}, "version": version}),
            &[&snk as &dyn Signer],
        )
    };
    let mut repo = Repo {
        files: BTreeMap::new(),
    };
    // Without the snapshot part the server cannot sign one.
    let err = repo
        .push(&[("root", &rv1), ("targets", &tv1)], &server, t0)
        .unwrap_err();
    assert!(matches!(err, UpdateError::BadHierarchy { .. }));
    // A snapshot whose meta does not match the uploaded targets is refused.
    let wrong = sn_for(&rv1, b"other", 1);
    let err = repo
        .push(
            &[("root", &rv1), ("targets", &tv1), ("snapshot", &wrong)],
            &server,
            t0,
        )
        .unwrap_err();
    let UpdateError::BadSnapshot(msg) = err else {
        panic!("{err:?}")
    };
    assert!(
        msg.starts_with("sha256 checksum for targets did not match: expected "),
        "{msg}"
    );
    // The right one is stored as uploaded; the timestamp points at it.
    let good = sn_for(&rv1, &tv1, 1);
    let files = repo
        .push(
            &[("root", &rv1), ("targets", &tv1), ("snapshot", &good)],
            &server,
            t0,
        )
        .unwrap();
    assert_eq!(files.iter().find(|f| f.role == "snapshot").unwrap().bytes, good);
    // Expired client snapshot: timestamp still re-signed when it expires,
    // snapshot left alone (the server cannot sign it).
    let files = refresh_timestamp(&repo.current(), &server, t0 + Duration::days(2000)).unwrap();
    assert_eq!(
        files.iter().map(|f| f.role.as_str()).collect::<Vec<_>>(),
        ["timestamp"]
    );
}

#[test]
fn root_rules_for_new_gun() {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 16, 0, 0).unwrap();
    let (ts, sn) = (generate_server_key().unwrap(), generate_server_key().unwrap());
    let server = vec![ts.clone(), sn.clone()];
    let tgt = PrivateKey::generate_p256().unwrap();
    let tv1 = sign(
        &targets_value(1, t0 + Duration::days(1095), json!({}), no_delegations()),
        &[&tgt],
    );
    let try_root = |cn: &str, version: i64| {
        let rk = root_key(cn, t0);
        let rv = sign(
            &root_value(
                version,
                t0 + Duration::days(3650),
                &[&rk.cert_key],
                1,
                tgt.public_key(),
                sn.public_key(),
                ts.public_key(),
            ),
            &[&rk],
        );
        let mut repo = Repo {
            files: BTreeMap::new(),
        };
        repo.push(&[("root", &rv), ("targets", &tv1)], &server, t0)
    };
    assert!(try_root(GUN, 1).is_ok());
    assert!(try_root(GUN, 2).is_ok(), "a first root may be version 2");
    assert_eq!(
        try_root(GUN, 3).unwrap_err(),
        UpdateError::BadRoot("Root modifications must increment the version. Current 1, new 3".into())
    );
    assert_eq!(
        try_root("other/gun", 1).unwrap_err(),
        UpdateError::BadRoot(
            "could not validate the path to a trusted root: unable to retrieve valid leaf certificates"
                .into()
        )
    );
    // Upload stage errors.
    assert_eq!(
        parse_upload_part("", tv1.clone()).unwrap_err(),
        UpdateError::NoFilename
    );
    assert_eq!(
        parse_upload_part("targets/Releases", tv1.clone()).unwrap_err(),
        UpdateError::InvalidRole("targets/Releases".into())
    );
    assert!(matches!(
        parse_upload_part("targets", b"{not json".to_vec()).unwrap_err(),
        UpdateError::MalformedJson(_)
    ));
}
