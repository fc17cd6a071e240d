//! X.509 for Notation: the signing key and its algorithm, certificate
//! signatures, and the certificate requirements of the Notary Project
//! signature specification ("Certificate Requirements", "Algorithm Selection").

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use chrono::{DateTime, Utc};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer as _;
use x509_parser::signature_algorithm::SignatureAlgorithm as X509SigAlg;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

use super::error::NotationError;
use super::rfc3339;

/// The most certificates a chain may hold; real chains have 2 to 4.
pub const MAX_CHAIN: usize = 10;

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";
const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
const OID_SHA384: &str = "2.16.840.1.101.3.4.2.2";
const OID_SHA512: &str = "2.16.840.1.101.3.4.2.3";

/// The six signature algorithms the Notary Project allows for envelopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
}

impl SignatureAlgorithm {
    pub fn from_jws(alg: &str) -> Option<Self> {
        Some(match alg {
            "PS256" => Self::Ps256,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            "ES512" => Self::Es512,
            _ => return None,
        })
    }

    pub fn from_cose(label: i64) -> Option<Self> {
        Some(match label {
            -37 => Self::Ps256,
            -38 => Self::Ps384,
            -39 => Self::Ps512,
            -7 => Self::Es256,
            -35 => Self::Es384,
            -36 => Self::Es512,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
        }
    }

    /// Envelope signatures: RSASSA-PSS with the salt as long as the hash
    /// (what notation signs with; aws-lc-rs checks exactly that length), and
    /// ECDSA as the fixed-width r‖s both JWS and COSE use.
    fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Self::Ps256 => &sig::RSA_PSS_2048_8192_SHA256,
            Self::Ps384 => &sig::RSA_PSS_2048_8192_SHA384,
            Self::Ps512 => &sig::RSA_PSS_2048_8192_SHA512,
            Self::Es256 => &sig::ECDSA_P256_SHA256_FIXED,
            Self::Es384 => &sig::ECDSA_P384_SHA384_FIXED,
            Self::Es512 => &sig::ECDSA_P521_SHA512_FIXED,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
    P521,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa { bits: usize },
    Ec(Curve),
}

/// One parsed certificate of an envelope's chain or of the trust store.
pub struct Cert<'a> {
    pub der: &'a [u8],
    pub x509: X509Certificate<'a>,
    /// RFC 4514 form, for messages and for the caller.
    pub subject: String,
}

impl<'a> Cert<'a> {
    pub fn parse(der: &'a [u8]) -> Result<Self, String> {
        let (rest, x509) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err("trailing bytes after the certificate".into());
        }
        let subject = dn_string(x509.subject());
        Ok(Cert { der, x509, subject })
    }

    fn key(&self) -> Result<KeyKind, String> {
        let spki = self.x509.public_key();
        match spki.algorithm.algorithm.to_id_string().as_str() {
            OID_RSA_ENCRYPTION => {
                let Ok(x509_parser::public_key::PublicKey::RSA(k)) = spki.parsed() else {
                    return Err("RSA public key cannot be parsed".into());
                };
                // Exact modulus length: x509-parser's key_size counts whole bytes.
                let n = k.modulus;
                let n = &n[n.iter().take_while(|b| **b == 0).count()..];
                let bits = n.first().map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize);
                Ok(KeyKind::Rsa { bits })
            }
            OID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string());
                match curve.as_deref() {
                    Some(OID_P256) => Ok(KeyKind::Ec(Curve::P256)),
                    Some(OID_P384) => Ok(KeyKind::Ec(Curve::P384)),
                    Some(OID_P521) => Ok(KeyKind::Ec(Curve::P521)),
                    _ => Err("elliptic curve is not P-256, P-384 or P-521".into()),
                }
            }
            other => Err(format!("public key algorithm {other} is not RSA or ECDSA")),
        }
    }

    fn key_bytes(&self) -> &[u8] {
        // RSA: the PKCS#1 RSAPublicKey; EC: the SEC1 point — what aws-lc-rs reads.
        &self.x509.public_key().subject_public_key.data
    }

    fn self_issued(&self) -> bool {
        self.x509.subject().as_raw() == self.x509.issuer().as_raw()
    }

    /// Self-issued and its signature verifies with its own key: a root.
    fn self_signed(&self) -> bool {
        self.self_issued() && verify_issued(self, self).is_ok()
    }

    pub fn not_before(&self) -> DateTime<Utc> {
        time(self.x509.validity().not_before.timestamp())
    }

    pub fn not_after(&self) -> DateTime<Utc> {
        time(self.x509.validity().not_after.timestamp())
    }

    /// Whether basicConstraints says CA (for the trust store's own check).
    pub fn is_ca(&self) -> bool {
        matches!(self.x509.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
    }

    pub fn is_self_signed(&self) -> bool {
        self.self_signed()
    }
}

fn time(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The algorithm the signing certificate's key demands ("Algorithm Selection":
/// the key type and size decide, so an envelope cannot pick a weaker one).
pub fn algorithm_for_leaf(leaf: &Cert<'_>) -> Result<SignatureAlgorithm, NotationError> {
    let requirement = |reason: String| NotationError::CertificateRequirement {
        subject: leaf.subject.clone(),
        reason,
    };
    match leaf.key().map_err(requirement)? {
        KeyKind::Rsa { bits: 2048 } => Ok(SignatureAlgorithm::Ps256),
        KeyKind::Rsa { bits: 3072 } => Ok(SignatureAlgorithm::Ps384),
        KeyKind::Rsa { bits: 4096 } => Ok(SignatureAlgorithm::Ps512),
        KeyKind::Rsa { bits } => Err(requirement(format!(
            "RSA key of {bits} bits (the Notary Project signs with 2048, 3072 or 4096)"
        ))),
        KeyKind::Ec(Curve::P256) => Ok(SignatureAlgorithm::Es256),
        KeyKind::Ec(Curve::P384) => Ok(SignatureAlgorithm::Es384),
        KeyKind::Ec(Curve::P521) => Ok(SignatureAlgorithm::Es512),
    }
}

/// Checks an envelope signature with the signing certificate's key.
pub fn verify_envelope_signature(
    leaf: &Cert<'_>,
    alg: SignatureAlgorithm,
    signed: &[u8],
    signature: &[u8],
) -> Result<(), NotationError> {
    UnparsedPublicKey::new(alg.verification(), leaf.key_bytes())
        .verify(signed, signature)
        .map_err(|_| NotationError::SignatureInvalid)
}

/// Checks that `issuer`'s key signed `child`. Certificate signatures are
/// PKCS#1 v1.5 or PSS (RSA) or ECDSA over SHA-2; SHA-1 is refused outright
/// ("Other requirements" 3).
fn verify_issued(child: &Cert<'_>, issuer: &Cert<'_>) -> Result<(), String> {
    let outer = &child.x509.signature_algorithm;
    // RFC 5280 4.1.1.2: the signed and the unsigned algorithm must agree, or
    // what was signed is not what we are about to check.
    if *outer != child.x509.tbs_certificate.signature {
        return Err("signature algorithm differs inside and outside the signed part".into());
    }
    let issuer_key = issuer.key()?;
    let oid = outer.algorithm.to_id_string();
    let alg: &'static dyn VerificationAlgorithm = match (oid.as_str(), issuer_key) {
        ("1.2.840.113549.1.1.5" | "1.2.840.10045.4.1", _) => {
            return Err("signed with SHA-1, which the Notary Project forbids".into());
        }
        ("1.2.840.113549.1.1.11", KeyKind::Rsa { .. }) => &sig::RSA_PKCS1_2048_8192_SHA256,
        ("1.2.840.113549.1.1.12", KeyKind::Rsa { .. }) => &sig::RSA_PKCS1_2048_8192_SHA384,
        ("1.2.840.113549.1.1.13", KeyKind::Rsa { .. }) => &sig::RSA_PKCS1_2048_8192_SHA512,
        ("1.2.840.113549.1.1.10", KeyKind::Rsa { .. }) => pss_algorithm(outer)?,
        ("1.2.840.10045.4.3.2", KeyKind::Ec(c)) => match c {
            Curve::P256 => &sig::ECDSA_P256_SHA256_ASN1,
            Curve::P384 => &sig::ECDSA_P384_SHA256_ASN1,
            Curve::P521 => &sig::ECDSA_P521_SHA256_ASN1,
        },
        ("1.2.840.10045.4.3.3", KeyKind::Ec(c)) => match c {
            Curve::P256 => &sig::ECDSA_P256_SHA384_ASN1,
            Curve::P384 => &sig::ECDSA_P384_SHA384_ASN1,
            Curve::P521 => &sig::ECDSA_P521_SHA384_ASN1,
        },
        ("1.2.840.10045.4.3.4", KeyKind::Ec(c)) => match c {
            Curve::P256 => &sig::ECDSA_P256_SHA512_ASN1,
            Curve::P384 => &sig::ECDSA_P384_SHA512_ASN1,
            Curve::P521 => &sig::ECDSA_P521_SHA512_ASN1,
        },
        (other, _) => {
            return Err(format!(
                "signature algorithm {other} is not supported with the issuer's key"
            ));
        }
    };
    UnparsedPublicKey::new(alg, issuer.key_bytes())
        .verify(
            child.x509.tbs_certificate.as_ref(),
            &child.x509.signature_value.data,
        )
        .map_err(|_| "signature does not verify with the issuer's key".into())
}

/// RSASSA-PSS certificate signatures: aws-lc-rs verifies MGF1 with the same
/// hash and a salt as long as the hash, so only parameters saying exactly
/// that are accepted.
fn pss_algorithm(
    alg: &x509_parser::x509::AlgorithmIdentifier<'_>,
) -> Result<&'static dyn VerificationAlgorithm, String> {
    let bad = || "RSASSA-PSS parameters are not supported".to_string();
    let Ok(X509SigAlg::RSASSA_PSS(params)) = X509SigAlg::try_from(alg) else {
        return Err(bad());
    };
    let hash = params.hash_algorithm_oid().to_id_string();
    let mgf = params.mask_gen_algorithm().map_err(|_| bad())?;
    if mgf.hash.to_id_string() != hash || params.trailer_field() != 1 {
        return Err(bad());
    }
    match (hash.as_str(), params.salt_length()) {
        (OID_SHA256, 32) => Ok(&sig::RSA_PSS_2048_8192_SHA256),
        (OID_SHA384, 48) => Ok(&sig::RSA_PSS_2048_8192_SHA384),
        (OID_SHA512, 64) => Ok(&sig::RSA_PSS_2048_8192_SHA512),
        _ => Err(bad()),
    }
}

/// Parses every certificate of an envelope's chain (leaf first).
pub fn parse_chain(ders: &[Vec<u8>]) -> Result<Vec<Cert<'_>>, NotationError> {
    if ders.is_empty() {
        return Err(NotationError::MalformedEnvelope(
            "the certificate chain is empty".into(),
        ));
    }
    if ders.len() > MAX_CHAIN {
        return Err(NotationError::ChainTooLong {
            count: ders.len(),
            max: MAX_CHAIN,
        });
    }
    ders.iter()
        .enumerate()
        .map(|(index, der)| {
            Cert::parse(der).map_err(|reason| NotationError::MalformedCertificate { index, reason })
        })
        .collect()
}

/// The chain's own validity ("Certificate Requirements" and "Other
/// requirements" of the signature specification): leaf first, each
/// certificate issued by the next, ending in a self-signed root; the leaf a
/// code-signing certificate, the others CA certificates. A chain of one is a
/// self-signed signing certificate and meets the leaf requirements only.
/// Trust (which root) and time are checked elsewhere.
pub fn validate_chain(chain: &[Cert<'_>]) -> Result<(), NotationError> {
    let invalid = NotationError::InvalidChain;
    let last = chain.len() - 1;
    for (i, cert) in chain.iter().enumerate() {
        if i == last {
            if !cert.self_issued() {
                return Err(invalid(format!(
                    "it must end with a self-signed root certificate, and {} is issued by {}",
                    cert.subject,
                    dn_string(cert.x509.issuer())
                )));
            }
            verify_issued(cert, cert)
                .map_err(|reason| invalid(format!("root certificate {}: {reason}", cert.subject)))?;
        } else {
            // A self-signed certificate before the end would make the rest
            // unrelated to the chain ("MUST NOT contain a certificate that is
            // unrelated to the certificate chain").
            if cert.self_signed() {
                return Err(invalid(format!(
                    "certificate {} is self-signed but is not the last of the chain",
                    cert.subject
                )));
            }
            let parent = &chain[i + 1];
            if cert.x509.issuer().as_raw() != parent.x509.subject().as_raw() {
                return Err(invalid(format!(
                    "certificate {} is issued by {}, not by the next certificate {}",
                    cert.subject,
                    dn_string(cert.x509.issuer()),
                    parent.subject
                )));
            }
            verify_issued(cert, parent).map_err(|reason| {
                invalid(format!(
                    "certificate {} is not issued by {}: {reason}",
                    cert.subject, parent.subject
                ))
            })?;
        }
        let requirement = |reason: String| NotationError::CertificateRequirement {
            subject: cert.subject.clone(),
            reason,
        };
        if i == 0 {
            leaf_requirements(cert).map_err(requirement)?;
        } else {
            // CA certificates below this one, not counting the leaf.
            ca_requirements(cert, i - 1).map_err(requirement)?;
        }
    }
    Ok(())
}

fn leaf_requirements(cert: &Cert<'_>) -> Result<(), String> {
    let x = &cert.x509;
    let bc = x
        .basic_constraints()
        .map_err(|e| format!("basic constraints: {e}"))?;
    if bc.is_some_and(|bc| bc.value.ca) {
        return Err("a signing certificate must not be a CA (basicConstraints CA=true)".into());
    }
    let ku = x.key_usage().map_err(|e| format!("key usage: {e}"))?;
    let Some(ku) = ku else {
        return Err("the keyUsage extension must be present".into());
    };
    if !ku.critical {
        return Err("the keyUsage extension must be critical".into());
    }
    let ku = ku.value;
    if !ku.digital_signature() {
        return Err("keyUsage must include digitalSignature".into());
    }
    let forbidden = [
        (ku.key_encipherment(), "keyEncipherment"),
        (ku.data_encipherment(), "dataEncipherment"),
        (ku.key_agreement(), "keyAgreement"),
        (ku.key_cert_sign(), "keyCertSign"),
        (ku.crl_sign(), "cRLSign"),
        (ku.encipher_only(), "encipherOnly"),
        (ku.decipher_only(), "decipherOnly"),
    ];
    if let Some((_, name)) = forbidden.iter().find(|(set, _)| *set) {
        return Err(format!("keyUsage must not include {name}"));
    }
    let eku = x
        .extended_key_usage()
        .map_err(|e| format!("extended key usage: {e}"))?;
    if let Some(eku) = eku {
        let e = eku.value;
        // The spec's list, plus OCSP signing as notation also refuses it.
        let forbidden = [
            (e.any, "anyExtendedKeyUsage"),
            (e.server_auth, "serverAuth"),
            (e.client_auth, "clientAuth"),
            (e.email_protection, "emailProtection"),
            (e.time_stamping, "timeStamping"),
            (e.ocsp_signing, "OCSPSigning"),
        ];
        if let Some((_, name)) = forbidden.iter().find(|(set, _)| *set) {
            return Err(format!("extendedKeyUsage must not include {name}"));
        }
    }
    match cert.key()? {
        KeyKind::Rsa { bits } if bits < 2048 => Err(format!("RSA key of {bits} bits is shorter than 2048")),
        _ => Ok(()),
    }
}

fn ca_requirements(cert: &Cert<'_>, cas_below: usize) -> Result<(), String> {
    let x = &cert.x509;
    let bc = x
        .basic_constraints()
        .map_err(|e| format!("basic constraints: {e}"))?;
    let Some(bc) = bc else {
        return Err("a CA certificate must have the basicConstraints extension".into());
    };
    if !bc.critical || !bc.value.ca {
        return Err("a CA certificate's basicConstraints must be critical with CA=true".into());
    }
    if let Some(max) = bc.value.path_len_constraint
        && (max as usize) < cas_below
    {
        return Err(format!(
            "pathLenConstraint {max} is exceeded: {cas_below} CA certificates below it"
        ));
    }
    let ku = x.key_usage().map_err(|e| format!("key usage: {e}"))?;
    let Some(ku) = ku else {
        return Err("the keyUsage extension must be present".into());
    };
    if !ku.critical {
        return Err("the keyUsage extension must be critical".into());
    }
    if !ku.value.key_cert_sign() {
        return Err("a CA certificate's keyUsage must include keyCertSign".into());
    }
    Ok(())
}

/// Every certificate valid at the (claimed or authentic) signing time.
pub fn valid_at_signing_time(chain: &[Cert<'_>], signing_time: DateTime<Utc>) -> Result<(), NotationError> {
    for cert in chain {
        if signing_time < cert.not_before() || signing_time > cert.not_after() {
            return Err(NotationError::NotValidAtSigningTime {
                subject: cert.subject.clone(),
                signing_time: rfc3339(signing_time),
                not_before: rfc3339(cert.not_before()),
                not_after: rfc3339(cert.not_after()),
            });
        }
    }
    Ok(())
}

/// Every certificate valid at verification time (needed when nothing
/// authentic says when the signature was made).
pub fn valid_now(chain: &[Cert<'_>], now: DateTime<Utc>) -> Result<(), NotationError> {
    for cert in chain {
        if now > cert.not_after() {
            return Err(NotationError::CertificateExpired {
                subject: cert.subject.clone(),
                not_after: rfc3339(cert.not_after()),
            });
        }
        if now < cert.not_before() {
            return Err(NotationError::CertificateNotYetValid {
                subject: cert.subject.clone(),
                not_before: rfc3339(cert.not_before()),
            });
        }
    }
    Ok(())
}

/// Short names Go's `pkix.Name` prints (what notation matches trusted
/// identities against); any other attribute goes by its dotted OID.
pub fn attribute_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.17" => "POSTALCODE",
        _ => return None,
    })
}

/// An attribute's value as text, if it is a string type. Besides the types
/// x509-parser reads, BMPString (UTF-16) and TeletexString (read as Latin-1,
/// as Go does in practice) occur in older certificates.
pub fn attribute_text(attr: &AttributeTypeAndValue<'_>) -> Option<String> {
    if let Ok(s) = attr.as_str() {
        return Some(s.to_owned());
    }
    let value = attr.attr_value();
    let data = value.data;
    match value.tag().0 {
        30 if data.len() % 2 == 0 => {
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        20 => Some(data.iter().map(|b| char::from(*b)).collect()),
        _ => None,
    }
}

/// RFC 4514 string of a name (last RDN first, like Go and notation print it).
pub fn dn_string(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let oid = attr.attr_type().to_id_string();
                    let key = attribute_name(&oid).map_or(oid.clone(), str::to_owned);
                    match attribute_text(attr) {
                        Some(v) => format!("{key}={}", escape_dn_value(&v)),
                        None => format!("{key}=#{}", hex::encode(attr.attr_value().data)),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// RFC 4514 section 2.4 escaping.
pub fn escape_dn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        if c == '\0' {
            out.push_str("\\00");
        } else {
            out.push(c);
        }
    }
    out
}
