//! Signature verification and signing in notary's dialect.
//!
//! Methods (compared case-insensitively, notary lowercases on decode):
//! `ecdsa` (SHA-256, raw r||s), `eddsa` (Ed25519), `rsapss` / legacy
//! `pycrypto-pkcs#1 pss` (PSS, SHA-256, salt 32), `rsapkcs1v15` (SHA-256).
//! Unknown methods and key/method mismatches make a signature invalid, which
//! the threshold check then counts as missing.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::canonical::{go_json_string, to_canonical};
use crate::error::Error;
use crate::keys::{self, PublicKey, parse_pem_certificates};

/// One entry of an envelope's `signatures` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub keyid: String,
    /// As written by the signer (case preserved, so files re-serialise byte-exact).
    pub method: String,
    pub sig: Vec<u8>,
}

#[derive(Deserialize)]
struct SigRepr {
    #[serde(default, deserialize_with = "de_string_nullable")]
    keyid: String,
    #[serde(default, deserialize_with = "de_string_nullable")]
    method: String,
    #[serde(default, deserialize_with = "keys::de_b64_nullable")]
    sig: Vec<u8>,
}

fn de_string_nullable<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = SigRepr::deserialize(d)?;
        Ok(Signature {
            keyid: r.keyid,
            method: r.method,
            sig: r.sig,
        })
    }
}

impl Signature {
    /// Go `json.Marshal` layout: `{"keyid":…,"method":…,"sig":…}`.
    pub fn to_go_json(&self) -> String {
        format!(
            r#"{{"keyid":{},"method":{},"sig":{}}}"#,
            go_json_string(&self.keyid),
            go_json_string(&self.method),
            go_json_string(&B64.encode(&self.sig))
        )
    }
}

#[cfg(test)]
thread_local! {
    /// Signature verifications run on this thread. Tests only: lets them
    /// assert that the verification work of an upload is bounded.
    pub(crate) static VERIFICATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Verifies one signature over `msg` with `key`. `Err` = invalid for any
/// reason (wrong method for key type, bad encoding, bad signature).
pub fn verify_signature(key: &PublicKey, method: &str, sig: &[u8], msg: &[u8]) -> Result<(), Error> {
    #[cfg(test)]
    VERIFICATIONS.with(|c| c.set(c.get() + 1));
    let bad = |why: &str| Error::Signature(why.to_string());
    match method.to_ascii_lowercase().as_str() {
        "eddsa" => {
            if key.keytype != keys::ED25519 {
                return Err(bad("eddsa signature with non-ed25519 key"));
            }
            let pk: [u8; 32] = key
                .public
                .as_slice()
                .try_into()
                .map_err(|_| bad("bad ed25519 key length"))?;
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk).map_err(|_| bad("bad ed25519 key"))?;
            let s =
                ed25519_dalek::Signature::from_slice(sig).map_err(|_| bad("bad ed25519 signature length"))?;
            use ed25519_dalek::Verifier as _;
            vk.verify(msg, &s).map_err(|_| bad("ed25519 signature invalid"))
        }
        "ecdsa" => {
            let spki = match key.keytype.as_str() {
                keys::ECDSA => key.public.clone(),
                keys::ECDSA_X509 => leaf_spki(key)?,
                _ => return Err(bad("ecdsa signature with non-ecdsa key")),
            };
            // Go cannot parse compressed points; counting them would give one
            // private key a second key ID (also for data stored before
            // uploads refused such keys).
            if let Some(why) = keys::spki_problem(&spki) {
                return Err(Error::Signature(why));
            }
            use p256::pkcs8::DecodePublicKey as _;
            let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&spki)
                .map_err(|_| bad("unsupported ecdsa key (only P-256)"))?;
            // notary requires exactly 2 * field size bytes (raw r||s); DER is rejected.
            if sig.len() != 64 {
                return Err(bad("ecdsa signature has wrong length"));
            }
            let s = p256::ecdsa::Signature::from_slice(sig).map_err(|_| bad("bad ecdsa signature"))?;
            use p256::ecdsa::signature::Verifier as _;
            vk.verify(msg, &s).map_err(|_| bad("ecdsa signature invalid"))
        }
        m @ ("rsapss" | "pycrypto-pkcs#1 pss" | "rsapkcs1v15") => {
            let spki = match key.keytype.as_str() {
                keys::RSA => key.public.clone(),
                keys::RSA_X509 => leaf_spki(key)?,
                _ => return Err(bad("rsa signature with non-rsa key")),
            };
            // notary's RSA verifiers refuse moduli under 2048 bits.
            if let Some(why) = keys::spki_problem(&spki) {
                return Err(Error::Signature(why));
            }
            use rsa::pkcs8::DecodePublicKey as _;
            use rsa::signature::Verifier as _;
            let pk = rsa::PublicKey::from_public_key_der(&spki).map_err(|_| bad("bad rsa key"))?;
            if m == "rsapkcs1v15" {
                let vk = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(pk);
                let s = rsa::pkcs1v15::Signature::try_from(sig).map_err(|_| bad("bad rsa signature"))?;
                vk.verify(msg, &s).map_err(|_| bad("rsa signature invalid"))
            } else {
                let vk = rsa::pss::VerifyingKey::<sha2::Sha256>::new(pk);
                let s = rsa::pss::Signature::try_from(sig).map_err(|_| bad("bad rsa signature"))?;
                vk.verify(msg, &s).map_err(|_| bad("rsa signature invalid"))
            }
        }
        _ => Err(Error::Signature(format!(
            "signing method is not supported: {method}"
        ))),
    }
}

fn leaf_spki(key: &PublicKey) -> Result<Vec<u8>, Error> {
    let certs = parse_pem_certificates(&key.public)?;
    certs
        .into_iter()
        .next()
        .map(|c| c.spki_der)
        .ok_or_else(|| Error::Key("no certificate".into()))
}

/// notary `signed.VerifySignatures`: re-canonicalise `signed`, then count the
/// distinct key IDs of `keys` with a valid signature. `role` only names the
/// role in the error message.
///
/// Work is bounded by the role's keys, not by the signatures sent: a
/// signature whose key ID is not one of `keys` is skipped, and only the
/// first signature of each key is verified (later ones with the same key
/// ID are ignored). notary verifies every signature and counts each key
/// once, so it would also accept "bad, then good" for one key; no client
/// writes two signatures for one key, and verifying all of them let one
/// upload with 54,000 copies of a key ID cost 16 s.
pub fn verify_threshold(
    signed: &Value,
    signatures: &[Signature],
    keys: &BTreeMap<String, PublicKey>,
    threshold: i64,
    role: &str,
) -> Result<(), Error> {
    if signatures.is_empty() {
        return Err(Error::Signature("tuf: data has no signatures".into()));
    }
    if threshold < 1 {
        return Err(Error::Threshold("tuf: role threshold must be at least 1".into()));
    }
    let msg = to_canonical(signed)?;
    let mut tried = BTreeSet::new();
    let mut valid = 0i64;
    for s in signatures {
        let Some(key) = keys.get(&s.keyid) else { continue };
        if !tried.insert(s.keyid.as_str()) {
            continue;
        }
        // notary fails hard when a listed key's real ID differs from the ID
        // it is listed under.
        if key.key_id() != s.keyid {
            return Err(Error::Signature(
                "tuf: key ID does not match the key's content".into(),
            ));
        }
        if verify_signature(key, &s.method, &s.sig, &msg).is_ok() {
            valid += 1;
        }
    }
    if valid < threshold {
        return Err(Error::Threshold(format!(
            "valid signatures did not meet threshold for {role}"
        )));
    }
    Ok(())
}

/// Something that can sign on behalf of one public key (a key the server
/// holds, or an external signer service).
pub trait Signer {
    fn public_key(&self) -> &PublicKey;
    /// Signs `msg` (the canonical bytes of `signed`).
    fn sign(&self, msg: &[u8]) -> Result<Signature, Error>;
}

/// A private key the library can sign with: Ed25519 (what the reference
/// server uses for its timestamp/snapshot keys) or ECDSA P-256.
#[derive(Clone)]
pub struct PrivateKey {
    inner: PrivateInner,
    public: PublicKey,
}

#[derive(Clone)]
enum PrivateInner {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

fn random_32() -> Result<[u8; 32], Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| Error::Crypto(format!("getrandom: {e}")))?;
    Ok(b)
}

impl PrivateKey {
    pub fn generate_ed25519() -> Result<Self, Error> {
        Self::from_raw(keys::ED25519, &random_32()?)
    }

    pub fn generate_p256() -> Result<Self, Error> {
        // A random 32-byte string is a valid scalar with overwhelming
        // probability; retry the negligible failure case.
        for _ in 0..8 {
            if let Ok(k) = Self::from_raw(keys::ECDSA, &random_32()?) {
                return Ok(k);
            }
        }
        Err(Error::Crypto("could not generate a P-256 key".into()))
    }

    /// Rebuilds a key from `keytype` (`ed25519` or `ecdsa`) and its 32 raw
    /// secret bytes (see [`PrivateKey::raw_secret`]); for server persistence.
    pub fn from_raw(keytype: &str, secret: &[u8]) -> Result<Self, Error> {
        match keytype {
            keys::ED25519 => {
                let seed: [u8; 32] = secret
                    .try_into()
                    .map_err(|_| Error::Crypto("ed25519 secret must be 32 bytes".into()))?;
                let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
                let public = PublicKey::new(keys::ED25519, sk.verifying_key().to_bytes().to_vec());
                Ok(PrivateKey {
                    inner: PrivateInner::Ed25519(sk),
                    public,
                })
            }
            keys::ECDSA => {
                let sk = p256::ecdsa::SigningKey::from_slice(secret)
                    .map_err(|_| Error::Crypto("invalid P-256 secret".into()))?;
                use p256::pkcs8::EncodePublicKey as _;
                let der = sk
                    .verifying_key()
                    .to_public_key_der()
                    .map_err(|e| Error::Crypto(format!("spki encoding: {e}")))?;
                let public = PublicKey::new(keys::ECDSA, der.as_bytes().to_vec());
                Ok(PrivateKey {
                    inner: PrivateInner::P256(sk),
                    public,
                })
            }
            other => Err(Error::Crypto(format!("unsupported private key type {other}"))),
        }
    }

    /// 32 raw secret bytes (ed25519 seed / P-256 scalar). Store encrypted.
    pub fn raw_secret(&self) -> Vec<u8> {
        match &self.inner {
            PrivateInner::Ed25519(k) => k.to_bytes().to_vec(),
            PrivateInner::P256(k) => k.to_bytes().to_vec(),
        }
    }

    pub fn key_id(&self) -> String {
        self.public.key_id()
    }
}

impl Signer for PrivateKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Signature, Error> {
        let (method, sig) = match &self.inner {
            PrivateInner::Ed25519(k) => {
                use ed25519_dalek::Signer as _;
                ("eddsa", k.sign(msg).to_bytes().to_vec())
            }
            PrivateInner::P256(k) => {
                use p256::ecdsa::signature::Signer as _;
                let s: p256::ecdsa::Signature = k.sign(msg);
                ("ecdsa", s.to_bytes().to_vec())
            }
        };
        Ok(Signature {
            keyid: self.public.key_id(),
            method: method.to_string(),
            sig,
        })
    }
}

/// Signs with a private key on behalf of an `ecdsa-x509` / `rsa-x509` key
/// (a root certificate): the signature carries the certificate key's ID.
#[derive(Debug, Clone)]
pub struct CertSigner {
    pub key: PrivateKey,
    pub cert_key: PublicKey,
}

impl Signer for CertSigner {
    fn public_key(&self) -> &PublicKey {
        &self.cert_key
    }

    fn sign(&self, msg: &[u8]) -> Result<Signature, Error> {
        let mut s = self.key.sign(msg)?;
        s.keyid = self.cert_key.key_id();
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sign_verify_roundtrip_and_threshold() {
        let ed = PrivateKey::generate_ed25519().unwrap();
        let ec = PrivateKey::generate_p256().unwrap();
        let signed = json!({"_type":"Targets","version":1});
        let msg = to_canonical(&signed).unwrap();
        let s1 = ed.sign(&msg).unwrap();
        let s2 = ec.sign(&msg).unwrap();
        assert_eq!(s2.sig.len(), 64);
        verify_signature(ed.public_key(), "EdDSA", &s1.sig, &msg).unwrap();
        verify_signature(ec.public_key(), "ecdsa", &s2.sig, &msg).unwrap();
        assert!(verify_signature(ec.public_key(), "ecdsa", &s2.sig, b"other").is_err());
        assert!(verify_signature(ec.public_key(), "eddsa", &s2.sig, &msg).is_err());
        let keys: BTreeMap<_, _> = [
            (ed.key_id(), ed.public_key().clone()),
            (ec.key_id(), ec.public_key().clone()),
        ]
        .into();
        verify_threshold(&signed, &[s1.clone(), s2.clone()], &keys, 2, "targets").unwrap();
        // duplicates of one key count once
        let err = verify_threshold(&signed, &[s1.clone(), s1.clone()], &keys, 2, "targets").unwrap_err();
        assert_eq!(
            err.to_string(),
            "valid signatures did not meet threshold for targets"
        );
        let again = PrivateKey::from_raw("ecdsa", &ec.raw_secret()).unwrap();
        assert_eq!(again.key_id(), ec.key_id());
    }
}
