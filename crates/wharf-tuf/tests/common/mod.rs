//! Test helpers: a minimal self-signed X.509 (DER) builder for notary root
//! certificates (CN = GUN, ECDSA P-256, ecdsa-with-SHA256) and metadata
//! builders. Hand-rolled so the library needs no certificate-builder crate.
#![allow(dead_code)]

/// The captured Notary / docker vectors, vendored at the top of the repository
/// (`testdata/README.md` says where they came from).
pub const NOTARY_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/notary");

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use serde_json::{Value, json};
use wharf_tuf::keys::pem_encode;
use wharf_tuf::metadata::format_go_time;
use wharf_tuf::update::sign_and_encode;
use wharf_tuf::{CertSigner, PrivateKey, PublicKey, Signer};

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 128 {
        out.push(n as u8);
    } else if n < 256 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &a in &arcs[2..] {
        let mut chunk = vec![(a & 0x7f) as u8];
        let mut v = a >> 7;
        while v > 0 {
            chunk.push(((v & 0x7f) as u8) | 0x80);
            v >>= 7;
        }
        chunk.reverse();
        body.extend(chunk);
    }
    der(0x06, &body)
}

fn time(t: DateTime<Utc>) -> Vec<u8> {
    let s = format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        t.year() % 100,
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    der(0x17, s.as_bytes()) // UTCTime (years < 2050)
}

/// A subject/issuer name with one RDN per CN, in the given order.
fn name(cns: &[&str]) -> Vec<u8> {
    let rdns: Vec<Vec<u8>> = cns
        .iter()
        .map(|cn| der(0x31, &seq(&[oid(&[2, 5, 4, 3]), der(0x0c, cn.as_bytes())])))
        .collect();
    seq(&rdns)
}

/// Self-signed certificate for `key` with CN = `cn`, as notary makes root keys.
pub fn root_cert_der(key: &PrivateKey, cn: &str, not_before: DateTime<Utc>, days: i64) -> Vec<u8> {
    cert_der(key, &[cn], false, not_before, days)
}

/// Self-signed certificate for `key` with the CNs `cns` (one RDN each) and
/// ecdsa-with-SHA256, or ecdsa-with-SHA1 when `sha1` (the signature itself
/// is always SHA-256: nothing verifies certificate signatures here).
pub fn cert_der(key: &PrivateKey, cns: &[&str], sha1: bool, not_before: DateTime<Utc>, days: i64) -> Vec<u8> {
    let sig_alg = if sha1 {
        seq(&[oid(&[1, 2, 840, 10045, 4, 1])])
    } else {
        seq(&[oid(&[1, 2, 840, 10045, 4, 3, 2])])
    };
    let ext_basic = seq(&[oid(&[2, 5, 29, 19]), der(0x01, &[0xff]), der(0x04, &seq(&[]))]);
    let tbs = seq(&[
        der(0xa0, &der(0x02, &[2])),
        der(0x02, &[0x01, 0x23, 0x45]),
        sig_alg.clone(),
        name(cns),
        seq(&[time(not_before), time(not_before + Duration::days(days))]),
        name(cns),
        key.public_key().public.clone(), // DER SPKI of the ecdsa key
        der(0xa3, &seq(&[ext_basic])),
    ]);
    let secret = key.raw_secret();
    let sk = p256::ecdsa::SigningKey::from_slice(&secret).unwrap();
    use p256::ecdsa::signature::Signer as _;
    let sig: p256::ecdsa::Signature = sk.sign(&tbs);
    let mut bits = vec![0u8];
    bits.extend_from_slice(sig.to_der().as_bytes());
    seq(&[tbs, sig_alg, der(0x03, &bits)])
}

/// An `ecdsa-x509` key for a certificate and the signer for it.
pub fn cert_key(key: PrivateKey, cert_der: &[u8]) -> CertSigner {
    let pem = pem_encode("CERTIFICATE", cert_der);
    CertSigner {
        key,
        cert_key: PublicKey::new("ecdsa-x509", pem.into_bytes()),
    }
}

/// The same P-256 key as `key` (an `ecdsa` SPKI) with its point compressed:
/// SEC1 `02|03 || X` instead of `04 || X || Y`.
pub fn compressed_spki(key: &PublicKey) -> Vec<u8> {
    let spki = &key.public;
    assert_eq!(spki.len(), 91, "P-256 SPKI with an uncompressed point");
    let alg_id = &spki[2..23];
    let point = &spki[26..];
    assert_eq!(point[0], 4);
    let mut compressed = vec![2 | (point[64] & 1)];
    compressed.extend_from_slice(&point[1..33]);
    let mut bits = vec![0u8];
    bits.extend_from_slice(&compressed);
    seq(&[alg_id.to_vec(), der(0x03, &bits)])
}

/// An RSA SubjectPublicKeyInfo whose modulus has exactly `bits` bits (not a
/// real key: enough for checks that look at the size).
pub fn rsa_spki(bits: usize) -> Vec<u8> {
    let mut n = vec![0xa5u8; bits.div_ceil(8)];
    let top = bits - (n.len() - 1) * 8; // bits used in the first byte, 1..=8
    n[0] = (0xff >> (8 - top)) & 0xa5 | (1 << (top - 1));
    // DER INTEGER: a leading zero only when the top bit is set.
    let mut int = if n[0] & 0x80 != 0 { vec![0u8] } else { vec![] };
    int.extend_from_slice(&n);
    let key = seq(&[der(0x02, &int), der(0x02, &[0x01, 0x00, 0x01])]);
    let mut bits_str = vec![0u8];
    bits_str.extend_from_slice(&key);
    seq(&[
        seq(&[oid(&[1, 2, 840, 113549, 1, 1, 1]), der(0x05, &[])]),
        der(0x03, &bits_str),
    ])
}

/// An `ecdsa-x509` root key and the signer for it.
pub fn root_key(cn: &str, now: DateTime<Utc>) -> CertSigner {
    let key = PrivateKey::generate_p256().unwrap();
    let pem = pem_encode("CERTIFICATE", &root_cert_der(&key, cn, now, 3650));
    CertSigner {
        key,
        cert_key: PublicKey::new("ecdsa-x509", pem.into_bytes()),
    }
}

pub fn root_value(
    version: i64,
    expires: DateTime<Utc>,
    root_keys: &[&PublicKey],
    threshold: i64,
    targets: &PublicKey,
    snapshot: &PublicKey,
    timestamp: &PublicKey,
) -> Value {
    let mut keys = serde_json::Map::new();
    for k in root_keys.iter().chain([&targets, &snapshot, &timestamp]) {
        keys.insert(k.key_id(), k.to_value());
    }
    let ids = |ks: &[&PublicKey]| ks.iter().map(|k| k.key_id()).collect::<Vec<_>>();
    json!({
        "_type": "Root", "consistent_snapshot": false, "expires": format_go_time(expires), "keys": keys,
        "roles": {
            "root": {"keyids": ids(root_keys), "threshold": threshold},
            "snapshot": {"keyids": [snapshot.key_id()], "threshold": 1},
            "targets": {"keyids": [targets.key_id()], "threshold": 1},
            "timestamp": {"keyids": [timestamp.key_id()], "threshold": 1},
        },
        "version": version,
    })
}

pub fn targets_value(version: i64, expires: DateTime<Utc>, targets: Value, delegations: Value) -> Value {
    json!({"_type": "Targets", "delegations": delegations, "expires": format_go_time(expires),
           "targets": targets, "version": version})
}

pub fn no_delegations() -> Value {
    json!({"keys": {}, "roles": []})
}

pub fn sign(v: &Value, signers: &[&dyn Signer]) -> Vec<u8> {
    sign_and_encode(v, signers).unwrap()
}
