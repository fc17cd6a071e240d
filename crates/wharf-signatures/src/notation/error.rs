//! Why a Notation signature or a Notation policy was refused.
//!
//! Every message is one line: the verification errors reach users inside the
//! registry's DENIED error, the policy errors an operator reading a config error.

use thiserror::Error;

/// Why a signature envelope (or the manifest naming it) was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NotationError {
    #[error("not a Notary Project signature manifest: {0}")]
    NotASignatureManifest(String),
    #[error("image digest {0:?} is not a valid digest")]
    BadImageDigest(String),
    #[error("signature envelope is {size} bytes, more than the {max} allowed")]
    EnvelopeTooLarge { size: u64, max: u64 },
    #[error(
        "unsupported signature envelope media type {0:?} (expected application/jose+json or application/cose)"
    )]
    UnsupportedEnvelopeType(String),
    #[error("signature envelope is malformed: {0}")]
    MalformedEnvelope(String),
    #[error("unsupported signed payload content type {0:?}")]
    UnsupportedContentType(String),
    #[error("unsupported signing scheme {0:?}")]
    UnsupportedSigningScheme(String),
    #[error("signature requires the verification plugin {0:?}, which this registry does not run")]
    VerificationPluginRequired(String),
    #[error("signature has the critical attribute {0:?}, which this registry does not understand")]
    UnknownCriticalAttribute(String),
    #[error("unsupported signature algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("envelope algorithm {envelope} does not match the signing key, which requires {key}")]
    AlgorithmMismatch { envelope: String, key: String },
    #[error("envelope signature invalid")]
    SignatureInvalid,
    #[error("signed payload is malformed: {0}")]
    MalformedPayload(String),
    #[error("signed for {signed} not {expected}")]
    DigestMismatch { signed: String, expected: String },
    #[error("certificate chain has {count} certificates, more than the {max} allowed")]
    ChainTooLong { count: usize, max: usize },
    #[error("certificate {index} of the chain cannot be parsed: {reason}")]
    MalformedCertificate { index: usize, reason: String },
    #[error("certificate chain is invalid: {0}")]
    InvalidChain(String),
    #[error("certificate {subject} does not meet the Notary Project requirements: {reason}")]
    CertificateRequirement { subject: String, reason: String },
    #[error("certificate chain does not lead to a trusted root")]
    UntrustedChain,
    #[error("signer {subject} is not a trusted identity")]
    UntrustedIdentity { subject: String },
    #[error("signature expired at {0}")]
    SignatureExpired(String),
    #[error(
        "certificate {subject} was not valid at signing time {signing_time} (valid from {not_before} to {not_after})"
    )]
    NotValidAtSigningTime {
        subject: String,
        signing_time: String,
        not_before: String,
        not_after: String,
    },
    #[error("certificate {subject} expired at {not_after}")]
    CertificateExpired { subject: String, not_after: String },
    #[error("certificate {subject} is not valid before {not_before}")]
    CertificateNotYetValid { subject: String, not_before: String },
}

/// Why a trust store or trusted identity given to [`super::NotationPolicy`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error("trusted root {name:?}: {reason}")]
    BadRoot { name: String, reason: String },
    #[error("trusted identity {identity:?}: {reason}")]
    BadIdentity { identity: String, reason: String },
    #[error("the trust store is empty: name at least one root certificate")]
    NoRoots,
    #[error("no trusted identities: name at least one, or \"*\" for any signer the trust store vouches for")]
    NoIdentities,
    #[error("the trusted identity \"*\" cannot be combined with other identities")]
    WildcardWithOthers,
    #[error("trusted identities {0:?} and {1:?} overlap (one matches every signer the other does)")]
    OverlappingIdentities(String, String),
}
