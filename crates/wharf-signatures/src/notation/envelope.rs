//! What both envelope formats carry, once parsed, and the signed-attribute
//! rules they share (signature-specification.md, "Signed Attributes").

use chrono::{DateTime, Utc};

use super::chain::SignatureAlgorithm;
use super::error::NotationError;

pub const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
pub const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
pub const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
pub const EXPIRY: &str = "io.cncf.notary.expiry";
pub const VERIFICATION_PLUGIN: &str = "io.cncf.notary.verificationPlugin";
pub const VERIFICATION_PLUGIN_MIN_VERSION: &str = "io.cncf.notary.verificationPluginMinVersion";

/// How the signing time is vouched for (signing-scheme.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningScheme {
    /// `notary.x509`: the signing time is the signer's own claim.
    X509,
    /// `notary.x509.signingAuthority`: a signing authority vouches for it.
    X509SigningAuthority,
}

impl SigningScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::X509 => "notary.x509",
            Self::X509SigningAuthority => "notary.x509.signingAuthority",
        }
    }
}

/// An envelope parsed and its signed attributes checked for form; nothing
/// in it is verified yet.
pub struct Parsed {
    pub alg: SignatureAlgorithm,
    /// The exact bytes the signature covers (JWS signing input, COSE ToBeSigned).
    pub signed: Vec<u8>,
    pub signature: Vec<u8>,
    pub payload: Vec<u8>,
    pub content_type: String,
    pub scheme: SigningScheme,
    /// `signingTime` under `notary.x509`, `authenticSigningTime` under
    /// `notary.x509.signingAuthority`.
    pub signing_time: DateTime<Utc>,
    pub expiry: Option<DateTime<Utc>>,
    /// DER certificates, leaf first.
    pub chain: Vec<Vec<u8>>,
}

/// The protected attributes as read from either format.
#[derive(Default)]
pub struct SignedAttributes {
    pub scheme: Option<String>,
    pub signing_time: Option<DateTime<Utc>>,
    pub authentic_signing_time: Option<DateTime<Utc>>,
    pub expiry: Option<DateTime<Utc>>,
    /// The `crit` entries, each already known to be present in the header.
    pub critical: Vec<String>,
    pub verification_plugin: Option<String>,
}

/// The signed attributes that passed [`check_signed_attributes`].
pub struct Checked {
    pub scheme: SigningScheme,
    pub signing_time: DateTime<Utc>,
    pub expiry: Option<DateTime<Utc>>,
}

/// The signed-attribute rules: a known scheme with its one time attribute,
/// the attributes the spec marks critical listed in `crit`, an expiry after
/// the signing time, and no critical attribute this verifier cannot process
/// (the spec: unknown critical attributes MUST fail verification; a
/// verification plugin's checks cannot be done here, so those fail too).
pub fn check_signed_attributes(a: SignedAttributes) -> Result<Checked, NotationError> {
    let malformed = |m: String| NotationError::MalformedEnvelope(m);
    let scheme = match a.scheme.as_deref() {
        None => return Err(malformed(format!("the {SIGNING_SCHEME} attribute is missing"))),
        Some("notary.x509") => SigningScheme::X509,
        Some("notary.x509.signingAuthority") => SigningScheme::X509SigningAuthority,
        Some(other) => return Err(NotationError::UnsupportedSigningScheme(other.to_owned())),
    };
    let signing_time = match scheme {
        SigningScheme::X509 => {
            if a.authentic_signing_time.is_some() {
                return Err(malformed(format!(
                    "{AUTHENTIC_SIGNING_TIME} must not be present under notary.x509"
                )));
            }
            a.signing_time
                .ok_or_else(|| malformed(format!("{SIGNING_TIME} is missing")))?
        }
        SigningScheme::X509SigningAuthority => {
            if a.signing_time.is_some() {
                return Err(malformed(format!(
                    "{SIGNING_TIME} must not be present under notary.x509.signingAuthority"
                )));
            }
            a.authentic_signing_time
                .ok_or_else(|| malformed(format!("{AUTHENTIC_SIGNING_TIME} is missing")))?
        }
    };
    let mut must_be_critical = vec![SIGNING_SCHEME];
    if a.expiry.is_some() {
        must_be_critical.push(EXPIRY);
    }
    if scheme == SigningScheme::X509SigningAuthority {
        must_be_critical.push(AUTHENTIC_SIGNING_TIME);
    }
    for name in must_be_critical {
        if !a.critical.iter().any(|c| c == name) {
            return Err(malformed(format!("{name} is not marked critical")));
        }
    }
    for name in &a.critical {
        match name.as_str() {
            SIGNING_SCHEME | SIGNING_TIME | AUTHENTIC_SIGNING_TIME | EXPIRY => {}
            VERIFICATION_PLUGIN | VERIFICATION_PLUGIN_MIN_VERSION => {
                return Err(NotationError::VerificationPluginRequired(
                    a.verification_plugin.clone().unwrap_or_default(),
                ));
            }
            other => return Err(NotationError::UnknownCriticalAttribute(other.to_owned())),
        }
    }
    if let Some(expiry) = a.expiry
        && expiry <= signing_time
    {
        return Err(malformed("the expiry is not after the signing time".into()));
    }
    Ok(Checked {
        scheme,
        signing_time,
        expiry: a.expiry,
    })
}
