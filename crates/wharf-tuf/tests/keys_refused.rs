//! Keys notary (or the Go clients) would not use the way Wharf would are
//! refused when declared in an uploaded root or in an uploaded targets
//! file's delegations.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use wharf_tuf::canonical::to_canonical;
use wharf_tuf::signature::verify_threshold;
use wharf_tuf::update::{NewFile, UpdateInput, Upload, parse_upload_part, validate_update};
use wharf_tuf::{CertSigner, PrivateKey, PublicKey, Signer, UpdateError};

use common::*;

const GUN: &str = "registry.example.com/team/app";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 16, 0, 0).unwrap()
}

struct Client {
    root: CertSigner,
    targets: PrivateKey,
    server: Vec<PrivateKey>,
}

impl Client {
    fn new(root: CertSigner) -> Self {
        Client {
            root,
            targets: PrivateKey::generate_p256().unwrap(),
            server: vec![
                PrivateKey::generate_ed25519().unwrap(),
                PrivateKey::generate_ed25519().unwrap(),
            ],
        }
    }

    fn root_file(&self, targets_key: &PublicKey) -> Vec<u8> {
        let v = root_value(
            1,
            t0() + Duration::days(3650),
            &[&self.root.cert_key],
            1,
            targets_key,
            self.server[1].public_key(),
            self.server[0].public_key(),
        );
        sign(&v, &[&self.root])
    }

    fn targets_file(&self, delegations: Value) -> Vec<u8> {
        sign(
            &targets_value(1, t0() + Duration::days(1095), json!({}), delegations),
            &[&self.targets],
        )
    }

    /// First push of a new GUN.
    fn push(&self, parts: &[(&str, &[u8])]) -> Result<Vec<NewFile>, UpdateError> {
        let uploads: Vec<Upload> = parts
            .iter()
            .map(|(n, b)| parse_upload_part(n, b.to_vec()))
            .collect::<Result<_, _>>()?;
        validate_update(
            &UpdateInput {
                gun: GUN,
                current: &BTreeMap::new(),
                uploads: &uploads,
                now: t0(),
            },
            &self.server,
        )
    }

    /// Pushes root + a targets file delegating `targets/releases` to `key`.
    fn push_delegating_to(&self, key: &PublicKey) -> Result<Vec<NewFile>, UpdateError> {
        let root = self.root_file(self.targets.public_key());
        let targets = self.targets_file(delegating_to(&[key]));
        self.push(&[("root", &root), ("targets", &targets)])
    }
}

fn delegating_to(keys: &[&PublicKey]) -> Value {
    let map: serde_json::Map<String, Value> = keys.iter().map(|k| (k.key_id(), k.to_value())).collect();
    let ids: Vec<String> = keys.iter().map(|k| k.key_id()).collect();
    json!({"keys": map, "roles": [{"keyids": ids, "name": "targets/releases", "paths": [""], "threshold": 1}]})
}

fn bad_targets(key: &PublicKey, why: &str) -> UpdateError {
    UpdateError::BadTargets(format!(
        "targets type metadata invalid: key {} refused: {why}",
        key.key_id()
    ))
}

#[test]
fn compressed_ecdsa_point_in_root_refused() {
    let client = Client::new(root_key(GUN, t0()));
    let compressed = PublicKey::new("ecdsa", compressed_spki(client.targets.public_key()));
    let root = client.root_file(&compressed);
    let targets = client.targets_file(no_delegations());
    assert_eq!(
        client
            .push(&[("root", &root), ("targets", &targets)])
            .unwrap_err(),
        UpdateError::BadRoot(format!(
            "root type metadata invalid: key {} refused: ecdsa public key is a compressed point",
            compressed.key_id()
        ))
    );
}

#[test]
fn compressed_ecdsa_point_in_delegation_refused() {
    let client = Client::new(root_key(GUN, t0()));
    let signer = PrivateKey::generate_p256().unwrap();
    let spki = PublicKey::new("ecdsa", compressed_spki(signer.public_key()));
    assert_eq!(
        client.push_delegating_to(&spki).unwrap_err(),
        bad_targets(&spki, "ecdsa public key is a compressed point")
    );
    // The bare SEC1 point (not wrapped in an SPKI) too.
    let sec1 = PublicKey::new("ecdsa", spki.public[spki.public.len() - 33..].to_vec());
    assert_eq!(
        client.push_delegating_to(&sec1).unwrap_err(),
        bad_targets(&sec1, "ecdsa public key is a compressed point")
    );
}

/// Why compressed points matter: the same private key listed twice (once
/// per encoding) has two key IDs and could meet a threshold of 2 alone.
/// Go cannot parse compressed points, so it never counts the second one.
#[test]
fn one_key_in_two_encodings_does_not_meet_threshold_two() {
    let signer = PrivateKey::generate_p256().unwrap();
    let plain = signer.public_key().clone();
    let compressed = PublicKey::new("ecdsa", compressed_spki(&plain));
    let keys: BTreeMap<String, PublicKey> = [
        (plain.key_id(), plain.clone()),
        (compressed.key_id(), compressed.clone()),
    ]
    .into();
    let signed = json!({"_type": "Targets", "version": 1});
    let mut s1 = signer.sign(&to_canonical(&signed).unwrap()).unwrap();
    let mut s2 = s1.clone();
    s1.keyid = plain.key_id();
    s2.keyid = compressed.key_id();
    assert_eq!(
        verify_threshold(&signed, &[s1, s2], &keys, 2, "targets/releases")
            .unwrap_err()
            .to_string(),
        "valid signatures did not meet threshold for targets/releases"
    );
}

#[test]
fn rsa_key_under_2048_bits_refused() {
    let client = Client::new(root_key(GUN, t0()));
    let small = PublicKey::new("rsa", rsa_spki(2047));
    assert_eq!(
        client.push_delegating_to(&small).unwrap_err(),
        bad_targets(&small, "RSA key must be at least 2048 bits, has 2047")
    );
    let small = PublicKey::new("rsa", rsa_spki(1024));
    assert_eq!(
        client.push_delegating_to(&small).unwrap_err(),
        bad_targets(&small, "RSA key must be at least 2048 bits, has 1024")
    );
    // What cannot be inspected is refused too.
    let garbage = PublicKey::new("rsa", b"not a key".to_vec());
    assert_eq!(
        client.push_delegating_to(&garbage).unwrap_err(),
        bad_targets(&garbage, "public key is not a DER SubjectPublicKeyInfo")
    );
    let big_enough = PublicKey::new("rsa", rsa_spki(2048));
    client.push_delegating_to(&big_enough).unwrap();
}

#[test]
fn sha1_signed_delegation_certificate_refused() {
    let client = Client::new(root_key(GUN, t0()));
    let key = PrivateKey::generate_p256().unwrap();
    let sha1 = cert_key(key.clone(), &cert_der(&key, &["alice"], true, t0(), 365)).cert_key;
    assert_eq!(
        client.push_delegating_to(&sha1).unwrap_err(),
        bad_targets(
            &sha1,
            "certificate with CN alice uses invalid SHA1 signature algorithm"
        )
    );
    let sha256 = cert_key(key.clone(), &cert_der(&key, &["alice"], false, t0(), 365)).cert_key;
    client.push_delegating_to(&sha256).unwrap();
}

#[test]
fn root_certificate_with_several_cns_refused() {
    // Wharf used to take the first CN, Go's Subject.CommonName is the last:
    // either order lets the two disagree on whether the cert names the GUN.
    for cns in [[GUN, "other"], ["other", GUN]] {
        let key = PrivateKey::generate_p256().unwrap();
        let root = cert_key(key.clone(), &cert_der(&key, &cns, false, t0(), 3650));
        let client = Client::new(root);
        let root_file = client.root_file(client.targets.public_key());
        let targets = client.targets_file(no_delegations());
        assert_eq!(
            client
                .push(&[("root", &root_file), ("targets", &targets)])
                .unwrap_err(),
            UpdateError::BadRoot(format!(
                "root type metadata invalid: key {} refused: certificate has 2 common names, at most one is accepted",
                client.root.cert_key.key_id()
            )),
            "{cns:?}"
        );
    }
    // Also as a delegation key.
    let client = Client::new(root_key(GUN, t0()));
    let key = PrivateKey::generate_p256().unwrap();
    let two = cert_key(key.clone(), &cert_der(&key, &["alice", "bob"], false, t0(), 365)).cert_key;
    assert_eq!(
        client.push_delegating_to(&two).unwrap_err(),
        bad_targets(&two, "certificate has 2 common names, at most one is accepted")
    );
}
