//! Notary Project (Notation) signature verification, written from the Notary
//! Project specifications (signature-specification.md,
//! signature-envelope-jws.md, signature-envelope-cose.md,
//! trust-store-trust-policy.md). No I/O: the caller fetches the signature
//! manifest, asks [`signature_envelope`] which blob holds the envelope,
//! fetches it and hands its bytes to [`verify`].
//!
//! [`verify`] performs, in the specification's order, the validations of the
//! `strict` verification level with one trust store and its trusted
//! identities:
//!
//! 1. integrity: the envelope parses (JWS JSON or COSE_Sign1), its payload
//!    type is supported, its `alg` is the one the signing certificate's key
//!    demands, the signature verifies, and the payload names the image digest;
//! 2. authenticity: the certificate chain meets the certificate requirements
//!    and contains a certificate of the trust store, and the signer's subject
//!    matches a trusted identity;
//! 3. expiry: `io.cncf.notary.expiry`, if present, is in the future;
//! 4. authentic timestamp: under `notary.x509` every certificate is valid at
//!    the signing time and now (this policy has no TSA trust store, so the
//!    specification's timestamp countersignature check is not triggered and
//!    validity "now" is what it requires instead); under
//!    `notary.x509.signingAuthority` every certificate is valid at the
//!    authentic signing time;
//! 5. revocation: not checked.
//!
//! What the specification asks that is not done here, and why:
//!
//! - Revocation (OCSP, CRL): both need network fetches at verification time,
//!   which this pure library does not make; the `strict` level would enforce
//!   them. A caller that can fetch must add it.
//! - Timestamp countersignatures (`io.cncf.notary.timestampSignature`, RFC
//!   3161): their verification is triggered only by a `tsa` trust store in
//!   the policy, and [`NotationPolicy`] has none, so a countersignature is
//!   ignored and validity "now" is required, as the specification says for
//!   that case. A signature whose certificate has expired is therefore
//!   refused even if a TSA timestamped it.
//! - Verification plugins and other critical extended attributes: refused
//!   (the specification allows an implementation without plugins to fail
//!   signatures that need one).
//! - The `permissive`, `audit` and `skip` levels and per-check overrides:
//!   only `strict` exists; a registry gate has no use for "log and accept".
//! - Trust policy documents, registry scopes and named stores on disk: the
//!   caller builds one [`NotationPolicy`] from its own configuration.
//! - The payload's `mediaType` and `size` are not compared with the image's:
//!   the caller has only its digest, which already binds the content; they
//!   are returned in [`AcceptedNotation::target`] for callers that have them.
//! - Blob (detached) signatures: only OCI signature manifests are read.
//!
//! Where the specification is followed more closely than notation-go 1.3
//! does: certificates must also be valid at the claimed signing time
//! ("MUST be valid at signing time"; notation-go checks only "now" under
//! `notary.x509`), and a CA's basicConstraints must be critical.

mod cbor;
mod chain;
mod cose;
mod envelope;
mod error;
mod identity;
mod jws;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

pub use envelope::SigningScheme;
pub use error::{NotationError, PolicyError};
pub use identity::TrustedIdentity;

use chain::Cert;

/// Media type of a signature manifest's `artifactType` (or legacy `config.mediaType`).
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
/// Envelope media type of a JWS signature.
pub const MEDIA_TYPE_JWS: &str = "application/jose+json";
/// Envelope media type of a COSE signature.
pub const MEDIA_TYPE_COSE: &str = "application/cose";
/// The one payload content type the specification defines.
pub const PAYLOAD_CONTENT_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
/// Largest envelope accepted; notation's are 2 to 12 KiB.
pub const MAX_ENVELOPE_BYTES: u64 = 1024 * 1024;
pub use chain::MAX_CHAIN;

const OCI_IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// RFC 3339 in UTC to the second: how times appear in messages.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Which kind of named trust store a root belongs to (trust-store-trust-policy.md):
/// `ca` roots vouch for `notary.x509` signatures, `signingAuthority` roots for
/// `notary.x509.signingAuthority` ones; a root of one kind never vouches for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustStoreType {
    Ca,
    SigningAuthority,
}

/// One certificate of the trust store, with the name the operator gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRoot {
    name: String,
    store: TrustStoreType,
    der: Vec<u8>,
    subject: String,
}

impl TrustedRoot {
    /// Every `CERTIFICATE` block of a PEM text, each a root named `name`.
    pub fn from_pem(name: &str, store: TrustStoreType, pem: &str) -> Result<Vec<TrustedRoot>, PolicyError> {
        let bad = |reason: String| PolicyError::BadRoot {
            name: name.to_owned(),
            reason,
        };
        let mut roots = Vec::new();
        for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
            let block = block.map_err(|e| bad(format!("not valid PEM: {e}")))?;
            if block.label != "CERTIFICATE" {
                return Err(bad(format!("PEM block {:?} is not a CERTIFICATE", block.label)));
            }
            roots.push(TrustedRoot::from_der(name, store, &block.contents)?);
        }
        if roots.is_empty() {
            return Err(bad("no PEM CERTIFICATE block found".into()));
        }
        Ok(roots)
    }

    /// One DER certificate. Like notation's trust store, it must be a CA
    /// certificate or self-signed (a self-signed signing certificate).
    pub fn from_der(name: &str, store: TrustStoreType, der: &[u8]) -> Result<TrustedRoot, PolicyError> {
        let bad = |reason: String| PolicyError::BadRoot {
            name: name.to_owned(),
            reason,
        };
        if name.trim().is_empty() {
            return Err(bad("the name is empty".into()));
        }
        let cert = Cert::parse(der).map_err(|e| bad(format!("not an X.509 certificate: {e}")))?;
        if !cert.is_ca() && !cert.is_self_signed() {
            return Err(bad(format!(
                "certificate {} is neither a CA certificate nor self-signed",
                cert.subject
            )));
        }
        Ok(TrustedRoot {
            name: name.to_owned(),
            store,
            subject: cert.subject,
            der: der.to_vec(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn store(&self) -> TrustStoreType {
        self.store
    }
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// RFC 4514 subject of the certificate.
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

/// A trust store and the identities trusted to sign (one trust policy
/// statement at the `strict` level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotationPolicy {
    roots: Vec<TrustedRoot>,
    identities: Vec<TrustedIdentity>,
}

impl NotationPolicy {
    /// Checks the policy as notation checks a trust policy statement: at least
    /// one root and one identity, `*` alone, no overlapping identities.
    pub fn new(roots: Vec<TrustedRoot>, identities: Vec<TrustedIdentity>) -> Result<Self, PolicyError> {
        if roots.is_empty() {
            return Err(PolicyError::NoRoots);
        }
        if identities.is_empty() {
            return Err(PolicyError::NoIdentities);
        }
        if identities.len() > 1 && identities.iter().any(TrustedIdentity::is_wildcard) {
            return Err(PolicyError::WildcardWithOthers);
        }
        for (i, a) in identities.iter().enumerate() {
            for (j, b) in identities.iter().enumerate() {
                if i != j && a.is_subset_of(b) {
                    return Err(PolicyError::OverlappingIdentities(a.to_string(), b.to_string()));
                }
            }
        }
        Ok(NotationPolicy { roots, identities })
    }

    /// Convenience: `ca` roots as `(name, PEM)` pairs and identities as strings.
    pub fn from_pem(roots: &[(&str, &str)], identities: &[&str]) -> Result<Self, PolicyError> {
        let mut all = Vec::new();
        for (name, pem) in roots {
            all.extend(TrustedRoot::from_pem(name, TrustStoreType::Ca, pem)?);
        }
        let identities = identities
            .iter()
            .map(|s| TrustedIdentity::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        NotationPolicy::new(all, identities)
    }

    pub fn roots(&self) -> &[TrustedRoot] {
        &self.roots
    }
    pub fn identities(&self) -> &[TrustedIdentity] {
        &self.identities
    }

    /// The trust-store certificate the chain contains, of the store type the
    /// signing scheme calls for. The chain is already known to be valid from
    /// the leaf to its self-signed end, so any certificate of it equal to a
    /// trusted one makes the leaf trusted (usually the root; an intermediate
    /// in the store works too, as in notation).
    fn anchor(&self, chain: &[Cert<'_>], scheme: SigningScheme) -> Option<&TrustedRoot> {
        let store = match scheme {
            SigningScheme::X509 => TrustStoreType::Ca,
            SigningScheme::X509SigningAuthority => TrustStoreType::SigningAuthority,
        };
        chain
            .iter()
            .find_map(|cert| self.roots.iter().find(|r| r.store == store && r.der == cert.der))
    }
}

/// The blob a signature manifest points at: fetch it and pass it to [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeRef {
    /// [`MEDIA_TYPE_JWS`] or [`MEDIA_TYPE_COSE`].
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    /// The digest of the manifest this signature is attached to (`subject`).
    pub subject_digest: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestDoc {
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<DescriptorDoc>,
    layers: Option<Vec<DescriptorDoc>>,
    subject: Option<DescriptorDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorDoc {
    media_type: String,
    digest: String,
    size: u64,
}

/// Reads a signature manifest (signature-specification.md, "OCI
/// Signatures"): an OCI image manifest marked as a Notary Project signature
/// by `artifactType`, or by `config.mediaType` in the older form notation
/// still writes for registries without `artifactType`, with one layer (the
/// envelope) and a `subject`.
pub fn signature_envelope(manifest_json: &[u8]) -> Result<EnvelopeRef, NotationError> {
    let not = |m: String| NotationError::NotASignatureManifest(m);
    let doc: ManifestDoc =
        serde_json::from_slice(manifest_json).map_err(|e| not(format!("not a manifest: {e}")))?;
    if let Some(mt) = &doc.media_type
        && mt != OCI_IMAGE_MANIFEST
    {
        return Err(not(format!("mediaType is {mt:?}, not an OCI image manifest")));
    }
    match (&doc.artifact_type, &doc.config) {
        (Some(at), _) if at == SIGNATURE_ARTIFACT_TYPE => {}
        (Some(at), _) => return Err(not(format!("artifactType is {at:?}"))),
        (None, Some(config)) if config.media_type == SIGNATURE_ARTIFACT_TYPE => {}
        (None, Some(config)) => {
            return Err(not(format!(
                "no artifactType, and config.mediaType is {:?}",
                config.media_type
            )));
        }
        (None, None) => return Err(not("no artifactType and no config".into())),
    }
    let layers = doc.layers.unwrap_or_default();
    let [layer] = layers.as_slice() else {
        return Err(not(format!(
            "it has {} layers; a signature has exactly one",
            layers.len()
        )));
    };
    if layer.media_type != MEDIA_TYPE_JWS && layer.media_type != MEDIA_TYPE_COSE {
        return Err(NotationError::UnsupportedEnvelopeType(layer.media_type.clone()));
    }
    if !is_digest(&layer.digest) {
        return Err(not(format!("layer digest {:?} is not a digest", layer.digest)));
    }
    if layer.size > MAX_ENVELOPE_BYTES {
        return Err(NotationError::EnvelopeTooLarge {
            size: layer.size,
            max: MAX_ENVELOPE_BYTES,
        });
    }
    let subject = doc.subject.ok_or_else(|| not("it has no subject".into()))?;
    if !is_digest(&subject.digest) {
        return Err(not(format!(
            "subject digest {:?} is not a digest",
            subject.digest
        )));
    }
    Ok(EnvelopeRef {
        media_type: layer.media_type.clone(),
        digest: layer.digest.clone(),
        size: layer.size,
        subject_digest: subject.digest,
    })
}

/// `sha256:`, `sha384:` or `sha512:` and the lowercase hex of that length.
fn is_digest(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else {
        return false;
    };
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The signed descriptor (`targetArtifact` of the payload).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetArtifact {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PayloadDoc {
    target_artifact: TargetArtifact,
}

/// What a verified signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedNotation {
    /// RFC 4514 subject of the signing certificate.
    pub subject_dn: String,
    /// Name of the trust-store root that vouched for the chain.
    pub root_name: String,
    pub signing_scheme: SigningScheme,
    /// Signing time (as claimed under `notary.x509`, authentic under
    /// `notary.x509.signingAuthority`).
    pub signing_time: DateTime<Utc>,
    pub expiry: Option<DateTime<Utc>>,
    /// The signed descriptor; its digest is the image digest. The media type
    /// and size are returned for callers that compare them too.
    pub target: TargetArtifact,
}

/// Verifies one Notation signature envelope for `image_digest` under
/// `policy`, at time `now` (see the module documentation for what is checked).
pub fn verify(
    image_digest: &str,
    envelope_media_type: &str,
    envelope: &[u8],
    policy: &NotationPolicy,
    now: DateTime<Utc>,
) -> Result<AcceptedNotation, NotationError> {
    if !is_digest(image_digest) {
        return Err(NotationError::BadImageDigest(image_digest.to_owned()));
    }
    let size = envelope.len() as u64;
    if size > MAX_ENVELOPE_BYTES {
        return Err(NotationError::EnvelopeTooLarge {
            size,
            max: MAX_ENVELOPE_BYTES,
        });
    }

    // 1. Integrity.
    let parsed = match envelope_media_type {
        MEDIA_TYPE_JWS => jws::parse(envelope)?,
        MEDIA_TYPE_COSE => cose::parse(envelope)?,
        other => return Err(NotationError::UnsupportedEnvelopeType(other.to_owned())),
    };
    if parsed.content_type != PAYLOAD_CONTENT_TYPE {
        return Err(NotationError::UnsupportedContentType(parsed.content_type));
    }
    let certs = chain::parse_chain(&parsed.chain)?;
    let leaf = &certs[0];
    let key_alg = chain::algorithm_for_leaf(leaf)?;
    if key_alg != parsed.alg {
        // Checked before the signature: the key, not the envelope, decides
        // the algorithm (no algorithm substitution).
        return Err(NotationError::AlgorithmMismatch {
            envelope: parsed.alg.name().into(),
            key: key_alg.name().into(),
        });
    }
    chain::verify_envelope_signature(leaf, parsed.alg, &parsed.signed, &parsed.signature)?;
    // Only now, with the signature verified, is the payload read.
    let payload: PayloadDoc = serde_json::from_slice(&parsed.payload)
        .map_err(|e| NotationError::MalformedPayload(e.to_string()))?;
    let target = payload.target_artifact;
    if target.digest != image_digest {
        return Err(NotationError::DigestMismatch {
            signed: target.digest,
            expected: image_digest.to_owned(),
        });
    }

    // 2. Authenticity.
    chain::validate_chain(&certs)?;
    let root = policy
        .anchor(&certs, parsed.scheme)
        .ok_or(NotationError::UntrustedChain)?;
    if !policy.identities.iter().any(|id| id.matches(leaf)) {
        return Err(NotationError::UntrustedIdentity {
            subject: leaf.subject.clone(),
        });
    }

    // 3. Expiry: expired when now is at or past it.
    if let Some(expiry) = parsed.expiry
        && now >= expiry
    {
        return Err(NotationError::SignatureExpired(rfc3339(expiry)));
    }

    // 4. Authentic timestamp.
    chain::valid_at_signing_time(&certs, parsed.signing_time)?;
    if parsed.scheme == SigningScheme::X509 {
        chain::valid_now(&certs, now)?;
    }

    // 5. Revocation: not checked (needs OCSP/CRL fetches).
    Ok(AcceptedNotation {
        subject_dn: leaf.subject.clone(),
        root_name: root.name.clone(),
        signing_scheme: parsed.scheme,
        signing_time: parsed.signing_time,
        expiry: parsed.expiry,
        target,
    })
}
