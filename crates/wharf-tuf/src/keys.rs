//! TUF public keys in notary's dialect: `{"keytype", "keyval":{"private":null,
//! "public":<base64>}}`, key IDs, and the X.509 certificate handling needed
//! for root keys (`ecdsa-x509` / `rsa-x509` carry a PEM certificate bundle).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::canonical::{go_json_string, to_canonical};
use crate::error::Error;

pub const ED25519: &str = "ed25519";
pub const ECDSA: &str = "ecdsa";
pub const RSA: &str = "rsa";
pub const ECDSA_X509: &str = "ecdsa-x509";
pub const RSA_X509: &str = "rsa-x509";

/// A public key as it appears in root `keys` and `delegations.keys`.
/// `public` holds the decoded bytes (raw ed25519 key, DER SPKI, or PEM text
/// for `*-x509`); the key ID re-encodes them, exactly like notary does.
/// Unknown key types are kept (they verify nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub keytype: String,
    pub public: Vec<u8>,
}

impl PublicKey {
    pub fn new(keytype: impl Into<String>, public: Vec<u8>) -> Self {
        PublicKey {
            keytype: keytype.into(),
            public,
        }
    }

    /// The key object with `private: null`, as hashed for the key ID and as
    /// written into metadata.
    pub fn to_value(&self) -> Value {
        json!({"keytype": self.keytype, "keyval": {"private": null, "public": B64.encode(&self.public)}})
    }

    /// Key ID: lowercase hex SHA-256 of the canonical JSON of the key object.
    /// For x509 keys this hashes the PEM text, so it depends on PEM layout.
    pub fn key_id(&self) -> String {
        // to_value() contains only strings and null: canonicalisation cannot fail.
        let bytes = to_canonical(&self.to_value()).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }

    pub fn is_x509(&self) -> bool {
        self.keytype == ECDSA_X509 || self.keytype == RSA_X509
    }

    /// notary's "canonical key ID": for x509 keys the ID of the bare public key
    /// (`ecdsa`/`rsa` SPKI) inside the leaf certificate; for others the key ID.
    pub fn canonical_key_id(&self) -> Result<String, Error> {
        if !self.is_x509() {
            return Ok(self.key_id());
        }
        let certs = parse_pem_certificates(&self.public)?;
        let leaf = certs
            .first()
            .ok_or_else(|| Error::Key("no certificate in key".into()))?;
        Ok(leaf.bare_public_key()?.key_id())
    }

    /// Body of `GET /tuf/<role>.key`: Go struct member order (`public` before
    /// `private`), not canonical (matches the captured `*-GET-timestamp.key`).
    pub fn to_key_endpoint_json(&self) -> Vec<u8> {
        format!(
            r#"{{"keytype":{},"keyval":{{"public":{},"private":null}}}}"#,
            go_json_string(&self.keytype),
            go_json_string(&B64.encode(&self.public))
        )
        .into_bytes()
    }

    /// Refuses keys that must not be accepted into uploaded metadata (root
    /// `keys`, delegation keys): see [`spki_problem`] for bare keys and the
    /// keys inside certificates; certificates also must not be SHA-1 signed
    /// (notary refuses them for root keys; the same weakness applies to
    /// delegations) and must not carry several CNs (Go reads the last, a
    /// naive reader the first, so they could disagree on whether a root
    /// certificate names the GUN). Every certificate of a bundle is checked.
    /// Ed25519 and unknown key types have nothing to check (unknown types
    /// verify nothing). A PEM bundle that does not parse is left alone:
    /// Wharf's verifier and Go's both fail on it, so it verifies nothing.
    pub fn check_acceptable(&self) -> Result<(), String> {
        match self.keytype.as_str() {
            ECDSA | RSA => spki_problem(&self.public).map_or(Ok(()), Err),
            ECDSA_X509 | RSA_X509 => {
                let Ok(certs) = parse_pem_certificates(&self.public) else {
                    return Ok(());
                };
                for c in &certs {
                    if c.common_name_count > 1 {
                        return Err(format!(
                            "certificate has {} common names, at most one is accepted",
                            c.common_name_count
                        ));
                    }
                    if c.sha1_signature {
                        return Err(format!(
                            "certificate with CN {} uses invalid SHA1 signature algorithm",
                            c.common_name.as_deref().unwrap_or("")
                        ));
                    }
                    if let Some(p) = spki_problem(&c.spki_der) {
                        return Err(p);
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Parses a key object (`keyval.private` is ignored, as in notary's ID).
    pub fn from_value(v: &Value) -> Result<Self, Error> {
        serde_json::from_value(v.clone()).map_err(|e| Error::Key(e.to_string()))
    }
}

#[derive(Deserialize)]
struct KeyRepr {
    keytype: String,
    keyval: KeyValRepr,
}

#[derive(Deserialize)]
struct KeyValRepr {
    #[serde(default, deserialize_with = "de_b64_nullable")]
    public: Vec<u8>,
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = KeyRepr::deserialize(d)?;
        Ok(PublicKey {
            keytype: r.keytype,
            public: r.keyval.public,
        })
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

/// Base64 (standard, padded) like Go's `[]byte` JSON fields; `null` = empty.
pub(crate) fn de_b64_nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s {
        None => Ok(Vec::new()),
        Some(s) => B64.decode(s.as_bytes()).map_err(serde::de::Error::custom),
    }
}

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// notary's minimum RSA modulus size (verifiers and certificate checks).
pub const MIN_RSA_BITS: usize = 2048;

/// Exact bit length of an RSA modulus, like Go's `N.BitLen()`. (x509-parser's
/// `key_size` counts whole bytes, so a 2047-bit modulus would pass as 2048.)
fn rsa_modulus_bits(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Option<usize> {
    let Ok(x509_parser::public_key::PublicKey::RSA(k)) = spki.parsed() else {
        return None;
    };
    let n = k.modulus;
    let n = &n[n.iter().take_while(|b| **b == 0).count()..];
    Some(n.first().map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize))
}

/// Why an SPKI (bare `ecdsa`/`rsa` key or a certificate's key) must not be
/// used, if it must not:
/// * an elliptic-curve point in compressed SEC1 form: Go cannot parse it,
///   while p256 can, and the same private key then has a second key ID with
///   which one signer could meet a threshold of 2 alone;
/// * an RSA modulus under 2048 bits: notary's verifiers refuse it;
/// * anything these checks cannot parse: the verifiers (p256, rsa) use
///   another DER parser than x509-parser, so a key we cannot inspect might
///   still verify. No client writes such keys; Go could not use them either.
pub fn spki_problem(spki_der: &[u8]) -> Option<String> {
    use x509_parser::prelude::FromDer as _;
    let Ok((rest, spki)) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der) else {
        // A bare SEC1 point given instead of an SPKI.
        if is_compressed_point(spki_der) {
            return Some(compressed_point_message());
        }
        return Some("public key is not a DER SubjectPublicKeyInfo".into());
    };
    if !rest.is_empty() {
        return Some("public key is not a DER SubjectPublicKeyInfo".into());
    }
    match spki.algorithm.algorithm.to_id_string().as_str() {
        OID_EC_PUBLIC_KEY if is_compressed_point(&spki.subject_public_key.data) => {
            Some(compressed_point_message())
        }
        OID_RSA_ENCRYPTION => match rsa_modulus_bits(&spki) {
            None => Some("RSA public key cannot be parsed".into()),
            Some(bits) if bits < MIN_RSA_BITS => Some(format!(
                "RSA key must be at least {MIN_RSA_BITS} bits, has {bits}"
            )),
            Some(_) => None,
        },
        _ => None,
    }
}

/// SEC1 compressed form: `02|03 || X`, X as long as the field (32 bytes for
/// P-256, up to 66 for P-521).
fn is_compressed_point(point: &[u8]) -> bool {
    matches!(point.first(), Some(2 | 3)) && (33..=67).contains(&point.len())
}

fn compressed_point_message() -> String {
    "ecdsa public key is a compressed point".to_string()
}

/// Public-key algorithm of a certificate / SPKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Ecdsa,
    Rsa,
    Other,
}

/// What notary's root validation needs from one certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub der: Vec<u8>,
    /// The subject CN when there is exactly one. With several, Go's
    /// `Subject.CommonName` is the last and a naive reading the first; such
    /// certificates are refused (see [`PublicKey::check_acceptable`]) and
    /// never match a GUN.
    pub common_name: Option<String>,
    /// Number of CN attributes in the subject.
    pub common_name_count: usize,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
    pub sha1_signature: bool,
    pub key_algorithm: KeyAlgorithm,
    pub rsa_bits: Option<usize>,
    /// DER SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
}

impl CertInfo {
    pub fn parse_der(der: &[u8]) -> Result<Self, Error> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| Error::Key(format!("invalid certificate: {e}")))?;
        let cns: Vec<_> = cert.subject().iter_common_name().collect();
        let common_name = match cns.as_slice() {
            [only] => only.as_str().ok().map(str::to_string),
            _ => None,
        };
        let spki = cert.public_key();
        let (key_algorithm, rsa_bits) = match spki.algorithm.algorithm.to_id_string().as_str() {
            OID_EC_PUBLIC_KEY => (KeyAlgorithm::Ecdsa, None),
            OID_RSA_ENCRYPTION => (KeyAlgorithm::Rsa, rsa_modulus_bits(spki)),
            _ => (KeyAlgorithm::Other, None),
        };
        // sha1WithRSA, dsaWithSHA1, ecdsa-with-SHA1 (what Go refuses here).
        let sha1_signature = matches!(
            cert.signature_algorithm.algorithm.to_id_string().as_str(),
            "1.2.840.113549.1.1.5" | "1.2.840.10040.4.3" | "1.2.840.10045.4.1"
        );
        Ok(CertInfo {
            der: der.to_vec(),
            common_name,
            common_name_count: cns.len(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            is_ca: cert.is_ca(),
            sha1_signature,
            key_algorithm,
            rsa_bits,
            spki_der: spki.raw.to_vec(),
        })
    }

    /// notary `utils.ValidateCertificate`: sane window, no SHA-1, RSA >= 2048
    /// and, if `now` is given, valid now (NotBefore may be one day ahead).
    pub fn validate(&self, now: Option<i64>) -> Result<(), Error> {
        if self.not_before > self.not_after {
            return Err(Error::Key("certificate validity window is invalid".into()));
        }
        if self.sha1_signature {
            return Err(Error::Key(
                "certificate uses invalid SHA1 signature algorithm".into(),
            ));
        }
        if self.key_algorithm == KeyAlgorithm::Rsa && self.rsa_bits.unwrap_or(0) < MIN_RSA_BITS {
            return Err(Error::Key("RSA bit length is too short".into()));
        }
        if let Some(now) = now {
            let tomorrow = now + 86_400;
            if tomorrow < self.not_before || now > self.not_after {
                return Err(Error::Key("certificate is expired".into()));
            }
        }
        Ok(())
    }

    /// The plain `ecdsa` / `rsa` key inside the certificate.
    pub fn bare_public_key(&self) -> Result<PublicKey, Error> {
        let t = match self.key_algorithm {
            KeyAlgorithm::Ecdsa => ECDSA,
            KeyAlgorithm::Rsa => RSA,
            KeyAlgorithm::Other => return Err(Error::Key("unsupported certificate key algorithm".into())),
        };
        Ok(PublicKey::new(t, self.spki_der.clone()))
    }

    /// Standard PEM (Go `pem.Encode`): 64-column base64, `\n`, final newline.
    pub fn to_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.der)
    }
}

/// Go `pem.Encode` layout.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Parses a PEM certificate bundle leniently (CRLF, missing final newline,
/// any line width), like Go's `pem.Decode` loop in notary's
/// `LoadCertBundleFromPEM`. A non-CERTIFICATE block is an error.
pub fn parse_pem_certificates(pem: &[u8]) -> Result<Vec<CertInfo>, Error> {
    let text = std::str::from_utf8(pem).map_err(|_| Error::Key("PEM is not UTF-8".into()))?;
    let mut certs = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after
            .find("-----")
            .ok_or_else(|| Error::Key("bad PEM header".into()))?;
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let end = body_start
            .find(&end_marker)
            .ok_or_else(|| Error::Key("unterminated PEM block".into()))?;
        if label != "CERTIFICATE" {
            return Err(Error::Key(format!("invalid pem block type {label}")));
        }
        let b64: String = body_start[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = B64
            .decode(b64.as_bytes())
            .map_err(|e| Error::Key(format!("bad PEM base64: {e}")))?;
        certs.push(CertInfo::parse_der(&der)?);
        rest = &body_start[end + end_marker.len()..];
    }
    if certs.is_empty() {
        return Err(Error::Key("no valid certificates found".into()));
    }
    Ok(certs)
}

/// Builds the `*-x509` key notary derives from a (re-encoded) certificate
/// chain: PEM of the leaf followed by the given intermediates.
pub fn cert_chain_to_key(leaf: &CertInfo, intermediates: &[CertInfo]) -> Option<PublicKey> {
    let keytype = match leaf.key_algorithm {
        KeyAlgorithm::Ecdsa => ECDSA_X509,
        KeyAlgorithm::Rsa => RSA_X509,
        KeyAlgorithm::Other => return None,
    };
    let mut pem = leaf.to_pem();
    for c in intermediates {
        pem.push_str(&c.to_pem());
    }
    Some(PublicKey::new(keytype, pem.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_input_layout() {
        let k = PublicKey::new(ED25519, vec![1, 2, 3]);
        assert_eq!(
            to_canonical(&k.to_value()).unwrap(),
            br#"{"keytype":"ed25519","keyval":{"private":null,"public":"AQID"}}"#.to_vec()
        );
        assert_eq!(
            k.to_key_endpoint_json(),
            br#"{"keytype":"ed25519","keyval":{"public":"AQID","private":null}}"#.to_vec()
        );
    }
}
