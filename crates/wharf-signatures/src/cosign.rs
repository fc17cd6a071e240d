//! sigstore / cosign "simple signing" image signatures, key-based, as cosign and skopeo
//! (`--sign-by-sigstore-private-key`, registries.d `use-sigstore-attachments: true`) store
//! them in a registry. No I/O: the caller fetches and hands over bytes.
//!
//! The stored form: for an image manifest `sha256:<hex>`, an OCI image manifest tagged
//! [`signature_tag`] (`sha256-<hex>.sig`) in the same repository. Each of its layers of media
//! type [`SIMPLE_SIGNING_MEDIA_TYPE`] is one signature: the layer's blob is the payload JSON,
//! its annotation [`SIGNATURE_ANNOTATION`] the base64 signature over the payload's exact bytes.
//! The payload names the signed manifest digest:
//!
//! ```json
//! {"critical":{"identity":{"docker-reference":"host/repo:tag"},
//!              "image":{"docker-manifest-digest":"sha256:..."},
//!              "type":"cosign container image signature"},
//!  "optional":{"creator":"containers/image 5.22.1","timestamp":1796545637}}
//! ```
//!
//! (skopeo always writes `optional` with `creator` and `timestamp`; cosign writes
//! `"optional":null` when there are no annotations. See `testdata/cosign/README.md`.)
//!
//! Use: [`signature_tag`] names the manifest to fetch, [`signature_layers`] reads it and says
//! which payload blobs to fetch, [`verify`] decides. Keyless signatures (Fulcio certificates,
//! Rekor bundles) are not supported: their extra annotations are ignored and the signature
//! must verify with a configured public key like any other.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// Media type of a signature layer in a `.sig` manifest.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 signature over the payload blob.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `critical.type` of an image signature payload.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
/// Most signature layers one `.sig` manifest may carry. Each costs a blob fetch and up to one
/// signature check per configured key; cosign and skopeo add one layer per signing, so a
/// real image stays far below this.
pub const MAX_SIGNATURE_LAYERS: usize = 100;
/// Largest payload accepted. skopeo's payloads are about 300 bytes; cosign's grow only with
/// user annotations (`-a key=value`).
pub const MAX_PAYLOAD_BYTES: u64 = 64 * 1024;

/// The tag under which cosign and skopeo store the signatures of `image_digest`
/// (`sha256:<hex>` → `sha256-<hex>.sig`).
pub fn signature_tag(image_digest: &str) -> Result<String, CosignError> {
    let hex = sha256_hex(image_digest).ok_or_else(|| CosignError::InvalidImageDigest(image_digest.into()))?;
    Ok(format!("sha256-{hex}.sig"))
}

/// The 64 hex digits of a `sha256:<64 lowercase hex>` digest; `None` for anything else.
/// Lowercase only: digests are compared as strings, and registries and the signing tools
/// write lowercase.
fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    (hex.len() == 64 && hex.bytes().all(lower_hex)).then_some(hex)
}

// ---------------------------------------------------------------------------------------
// Keys

/// The kinds of public key a cosign signature can be checked with, and the algorithms each
/// accepts (see [`CosignKey::verifies`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    EcdsaP256,
    EcdsaP384,
    Ed25519,
    Rsa { bits: usize },
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::EcdsaP256 => f.write_str("ECDSA P-256"),
            KeyKind::EcdsaP384 => f.write_str("ECDSA P-384"),
            KeyKind::Ed25519 => f.write_str("Ed25519"),
            KeyKind::Rsa { bits } => write!(f, "RSA {bits}"),
        }
    }
}

/// A configured public key: a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as `cosign
/// generate-key-pair` writes `cosign.pub`, with the name the operator gave it (reported as
/// the signer of an accepted signature).
#[derive(Clone)]
pub struct CosignKey {
    name: String,
    kind: KeyKind,
    /// What aws-lc-rs verifies with: the uncompressed EC point, the PKCS#1 RSAPublicKey, or
    /// the 32 Ed25519 bytes (the SPKI's subjectPublicKey).
    public: Vec<u8>,
    spki_sha256: String,
}

impl fmt::Debug for CosignKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosignKey")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("spki_sha256", &self.spki_sha256)
            .finish()
    }
}

/// Why a configured public key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cosign public key {name:?}: {problem}")]
pub struct KeyError {
    pub name: String,
    pub problem: String,
}

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_ED25519: &str = "1.3.101.112";
/// aws-lc-rs's RSA verification range (`RSA_*_2048_8192_*`); Go's signers make 2048–4096.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

impl CosignKey {
    /// Parse a PEM `PUBLIC KEY` block. Text before and after the block is allowed (as Go's
    /// `pem.Decode`, which cosign and skopeo use, allows it); a second PEM block is refused,
    /// because those tools would silently use only the first while an operator who pasted
    /// two keys into one file would expect both to count.
    pub fn from_pem(name: impl Into<String>, pem: &str) -> Result<Self, KeyError> {
        let name = name.into();
        let fail = |problem: String| KeyError {
            name: name.clone(),
            problem,
        };
        let der = decode_single_pem(pem, "PUBLIC KEY").map_err(fail)?;
        let (kind, public) = parse_spki(&der).map_err(fail)?;
        let spki_sha256 = hex::encode(Sha256::digest(&der));
        Ok(CosignKey {
            name,
            kind,
            public,
            spki_sha256,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Hex SHA-256 of the DER SubjectPublicKeyInfo: names the key in logs without its name.
    pub fn spki_sha256(&self) -> &str {
        &self.spki_sha256
    }

    /// Whether `signature` is this key's signature over `message`, in any encoding the
    /// signing tools produce for this kind of key:
    /// - ECDSA: ASN.1 DER `(r, s)` only (sigstore's verifier takes nothing else). P-256 with
    ///   SHA-256; P-384 with SHA-256 (containers/image hard-codes SHA-256 for every kind of
    ///   key) or SHA-384 (sigstore's default hash for P-384 keys).
    /// - Ed25519: over the message itself.
    /// - RSA: PKCS#1 v1.5 with SHA-256 (what sigstore loads an RSA key as), or PSS with
    ///   SHA-256 (sigstore's other RSA verifier).
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
        let algorithms: &[&'static dyn VerificationAlgorithm] = match self.kind {
            KeyKind::EcdsaP256 => &[&sig::ECDSA_P256_SHA256_ASN1],
            KeyKind::EcdsaP384 => &[&sig::ECDSA_P384_SHA256_ASN1, &sig::ECDSA_P384_SHA384_ASN1],
            KeyKind::Ed25519 => &[&sig::ED25519],
            KeyKind::Rsa { .. } => &[&sig::RSA_PKCS1_2048_8192_SHA256, &sig::RSA_PSS_2048_8192_SHA256],
        };
        algorithms.iter().any(|algorithm| {
            UnparsedPublicKey::new(*algorithm, &self.public)
                .verify(message, signature)
                .is_ok()
        })
    }
}

/// The DER body of the one PEM block in `text`, which must have type `label`.
fn decode_single_pem(text: &str, label: &str) -> Result<Vec<u8>, String> {
    const BEGIN: &str = "-----BEGIN ";
    const END: &str = "-----END ";
    let Some(start) = text.find(BEGIN) else {
        return Err(format!("no PEM block (expected -----BEGIN {label}-----)"));
    };
    let after_begin = &text[start + BEGIN.len()..];
    let Some((found, rest)) = after_begin.split_once("-----") else {
        return Err("PEM BEGIN line is not closed with -----".into());
    };
    if found != label {
        return Err(format!("PEM block is {found:?}, expected {label:?}"));
    }
    let end_line = format!("{END}{label}-----");
    let Some(body_len) = rest.find(&end_line) else {
        return Err(format!("PEM block has no {end_line} line"));
    };
    if rest[body_len + end_line.len()..].contains(BEGIN) {
        return Err("more than one PEM block; give each key on its own".into());
    }
    let body: String = rest[..body_len]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    BASE64
        .decode(body.as_bytes())
        .map_err(|_| "PEM body is not base64 (PEM headers are not supported)".into())
}

/// Kind and verification bytes of a DER SubjectPublicKeyInfo.
fn parse_spki(der: &[u8]) -> Result<(KeyKind, Vec<u8>), String> {
    use x509_parser::prelude::FromDer as _;
    use x509_parser::public_key::PublicKey;
    let not_spki = || "not a DER SubjectPublicKeyInfo".to_string();
    let (rest, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der).map_err(|_| not_spki())?;
    if !rest.is_empty() {
        return Err(not_spki());
    }
    let key_bytes = spki.subject_public_key.data.to_vec();
    match spki.algorithm.algorithm.to_id_string().as_str() {
        OID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            let (kind, point_len) = match curve.as_deref() {
                Some(OID_P256) => (KeyKind::EcdsaP256, 65),
                Some(OID_P384) => (KeyKind::EcdsaP384, 97),
                Some(other) => {
                    return Err(format!(
                        "unsupported elliptic curve {other} (P-256 and P-384 are)"
                    ));
                }
                None => return Err("EC key without a named curve".into()),
            };
            // Uncompressed points only: Go (cosign, skopeo) cannot parse a compressed one, so
            // no signer of ours has such a key.
            if key_bytes.len() != point_len || key_bytes[0] != 4 {
                return Err(format!("{kind} public key is not an uncompressed point"));
            }
            Ok((kind, key_bytes))
        }
        OID_RSA_ENCRYPTION => {
            let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
                return Err("RSA public key cannot be parsed".into());
            };
            // Exact bit length (x509-parser's key_size counts whole bytes).
            let n = rsa.modulus;
            let n = &n[n.iter().take_while(|b| **b == 0).count()..];
            let bits = n.first().map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize);
            if !RSA_BITS.contains(&bits) {
                return Err(format!(
                    "RSA key has {bits} bits; {} to {} are supported",
                    RSA_BITS.start(),
                    RSA_BITS.end()
                ));
            }
            Ok((KeyKind::Rsa { bits }, key_bytes))
        }
        OID_ED25519 if key_bytes.len() == 32 => Ok((KeyKind::Ed25519, key_bytes)),
        OID_ED25519 => Err("Ed25519 public key is not 32 bytes".into()),
        other => Err(format!(
            "unsupported key algorithm {other} (ECDSA P-256/P-384, Ed25519 and RSA are)"
        )),
    }
}

// ---------------------------------------------------------------------------------------
// The signature manifest

/// One signature layer of a `.sig` manifest: which blob holds the payload, and the
/// signature over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLayer {
    /// `sha256:<hex>` of the payload blob.
    pub payload_digest: String,
    /// The size the manifest declares; at most [`MAX_PAYLOAD_BYTES`].
    pub payload_size: u64,
    /// The [`SIGNATURE_ANNOTATION`] value, standard base64 as the tools write it (decoded
    /// only by [`verify`], so that one bad signature refuses only itself).
    pub signature_b64: String,
}

#[derive(Deserialize)]
struct ManifestDoc {
    layers: Option<Vec<LayerDoc>>,
}

#[derive(Deserialize)]
struct LayerDoc {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: Option<std::collections::HashMap<String, String>>,
}

/// The signature layers of a `.sig` manifest (OCI or Docker schema 2 image manifest, as
/// cosign writes either), in manifest order: the layers of media type
/// [`SIMPLE_SIGNING_MEDIA_TYPE`] that carry a [`SIGNATURE_ANNOTATION`]. Other layers are not
/// signatures and are left out. An empty list is not an error here; [`verify`] refuses it
/// with [`CosignError::NoSignatures`].
pub fn signature_layers(manifest_json: &[u8]) -> Result<Vec<SignatureLayer>, CosignError> {
    let doc: ManifestDoc =
        serde_json::from_slice(manifest_json).map_err(|e| CosignError::MalformedManifest(e.to_string()))?;
    let Some(layers) = doc.layers else {
        return Err(CosignError::MalformedManifest(
            "it has no \"layers\" (not an image manifest)".into(),
        ));
    };
    let mut found = Vec::new();
    for layer in layers {
        if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE {
            continue;
        }
        let Some(signature_b64) = layer.annotations.and_then(|mut a| a.remove(SIGNATURE_ANNOTATION)) else {
            continue;
        };
        // Numbered as verify numbers them, from 1, in the order they are listed.
        let number = found.len() + 1;
        if number > MAX_SIGNATURE_LAYERS {
            return Err(CosignError::TooManySignatures);
        }
        if sha256_hex(&layer.digest).is_none() {
            return Err(CosignError::MalformedManifest(format!(
                "signature {number} has digest {:?}, not sha256:<64 lowercase hex>",
                layer.digest
            )));
        }
        if layer.size > MAX_PAYLOAD_BYTES {
            return Err(CosignError::PayloadTooLarge {
                number,
                size: layer.size,
            });
        }
        found.push(SignatureLayer {
            payload_digest: layer.digest,
            payload_size: layer.size,
            signature_b64,
        });
    }
    Ok(found)
}

// ---------------------------------------------------------------------------------------
// Verification

/// The signature that made [`verify`] accept an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedSignature {
    /// [`CosignKey::name`] of the key it verified with.
    pub key_name: String,
    /// The payload's `critical.identity.docker-reference`, as signed (skopeo writes the
    /// destination it pushed to, tag included). [`verify`] does not judge it: whether the
    /// signed name must match the repository is the caller's policy.
    pub docker_reference: String,
    /// Its position among the signatures, from 1.
    pub number: usize,
}

/// Why one signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The payload blob handed over is longer than [`MAX_PAYLOAD_BYTES`].
    PayloadTooLarge { size: u64 },
    /// The payload blob is not the size the signature manifest declares.
    PayloadSizeMismatch { declared: u64, actual: u64 },
    /// The payload blob's SHA-256 is not the digest the signature manifest names.
    PayloadDigestMismatch { declared: String, actual: String },
    /// The signature annotation is not standard base64.
    SignatureNotBase64,
    /// No configured key verifies the signature over the payload.
    NoKeyVerifies,
    /// Signed by a configured key, but the payload is not a simple-signing payload.
    MalformedPayload(String),
    /// Signed by a configured key, but `critical.type` is another kind of signature.
    WrongType(String),
    /// Signed by a configured key, but for another manifest digest.
    OtherImage { signed: String },
}

impl fmt::Display for Rejection {
    /// A predicate: "signature 2 " + this reads as a sentence.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::PayloadTooLarge { size } => {
                write!(
                    f,
                    "has a payload of {size} bytes, more than the {MAX_PAYLOAD_BYTES} allowed"
                )
            }
            Rejection::PayloadSizeMismatch { declared, actual } => write!(
                f,
                "has a payload blob of {actual} bytes, not the {declared} the signature manifest declares"
            ),
            Rejection::PayloadDigestMismatch { declared, actual } => write!(
                f,
                "has a payload blob with digest {actual}, not the {declared} the signature manifest names"
            ),
            Rejection::SignatureNotBase64 => {
                write!(f, "has a {SIGNATURE_ANNOTATION} annotation that is not base64")
            }
            Rejection::NoKeyVerifies => f.write_str("is not signed by any configured key"),
            Rejection::MalformedPayload(detail) => write!(f, "has a malformed payload: {detail}"),
            Rejection::WrongType(kind) => write!(f, "has payload type {kind:?}, not {SIGNATURE_TYPE:?}"),
            Rejection::OtherImage { signed } => write!(f, "signs another image, {signed}"),
        }
    }
}

/// Why an image's cosign signatures were not accepted. Each message is one line, fit to be
/// shown to the user whose pull or push is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignError {
    #[error("image digest {0:?} is not sha256:<64 lowercase hex>")]
    InvalidImageDigest(String),
    #[error("cosign signature manifest is malformed: {0}")]
    MalformedManifest(String),
    #[error("cosign signature manifest has more than {MAX_SIGNATURE_LAYERS} signatures")]
    TooManySignatures,
    #[error(
        "cosign signature {number} declares a payload of {size} bytes, more than the {MAX_PAYLOAD_BYTES} allowed"
    )]
    PayloadTooLarge { number: usize, size: u64 },
    #[error("no cosign public keys are configured")]
    NoKeys,
    #[error("image {image_digest} has no cosign signatures")]
    NoSignatures { image_digest: String },
    /// Every signature was refused; one entry per signature, in order (`number` from 1).
    #[error("{}", rejected_message(image_digest, rejections))]
    Rejected {
        image_digest: String,
        rejections: Vec<(usize, Rejection)>,
    },
}

/// How many rejections one message lists before summing up the rest: the message reaches a
/// user in one error line.
const LISTED_REJECTIONS: usize = 3;

fn rejected_message(image_digest: &str, rejections: &[(usize, Rejection)]) -> String {
    let mut message = format!("no cosign signature of {image_digest} verified: ");
    let listed: Vec<String> = rejections
        .iter()
        .take(LISTED_REJECTIONS)
        .map(|(number, why)| format!("signature {number} {why}"))
        .collect();
    message.push_str(&listed.join("; "));
    if rejections.len() > LISTED_REJECTIONS {
        message.push_str(&format!("; and {} more", rejections.len() - LISTED_REJECTIONS));
    }
    message
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    critical: Critical,
    // Object or null (cosign writes null when there are no annotations); its contents
    // (creator, timestamp, user annotations) decide nothing here. Absent is tolerated too.
    #[serde(default, rename = "optional")]
    _optional: Option<serde_json::Map<String, serde_json::Value>>,
}

// deny_unknown_fields in `critical` and below, as containers/image does: a "critical" member
// we do not understand must not be ignored. (serde also refuses duplicate members, so two
// parsers cannot read different digests out of one payload.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Accept `image_digest` if one of the signatures, each given with its payload blob as
/// fetched, is a valid signature by one of `keys` over a payload of type
/// [`SIGNATURE_TYPE`] that names exactly `image_digest`. The first such signature, in
/// manifest order, is returned. Otherwise the error says why each signature was refused.
///
/// Per signature, in this order: the payload blob is the one the manifest names (size, then
/// SHA-256), the signature decodes and verifies with a configured key over the payload's
/// exact bytes, and only then is the payload parsed (untrusted JSON is read only once it is
/// known to be signed) and its type and digest compared.
pub fn verify(
    image_digest: &str,
    layers_with_payloads: &[(SignatureLayer, Vec<u8>)],
    keys: &[CosignKey],
) -> Result<AcceptedSignature, CosignError> {
    if sha256_hex(image_digest).is_none() {
        return Err(CosignError::InvalidImageDigest(image_digest.into()));
    }
    if keys.is_empty() {
        return Err(CosignError::NoKeys);
    }
    if layers_with_payloads.is_empty() {
        return Err(CosignError::NoSignatures {
            image_digest: image_digest.into(),
        });
    }
    if layers_with_payloads.len() > MAX_SIGNATURE_LAYERS {
        return Err(CosignError::TooManySignatures);
    }
    let mut rejections = Vec::new();
    for (index, (layer, payload)) in layers_with_payloads.iter().enumerate() {
        let number = index + 1;
        match check_one(image_digest, layer, payload, keys) {
            Ok((key, docker_reference)) => {
                return Ok(AcceptedSignature {
                    key_name: key.name.clone(),
                    docker_reference,
                    number,
                });
            }
            Err(why) => rejections.push((number, why)),
        }
    }
    Err(CosignError::Rejected {
        image_digest: image_digest.into(),
        rejections,
    })
}

fn check_one<'k>(
    image_digest: &str,
    layer: &SignatureLayer,
    payload: &[u8],
    keys: &'k [CosignKey],
) -> Result<(&'k CosignKey, String), Rejection> {
    let size = payload.len() as u64;
    if size > MAX_PAYLOAD_BYTES {
        return Err(Rejection::PayloadTooLarge { size });
    }
    if size != layer.payload_size {
        return Err(Rejection::PayloadSizeMismatch {
            declared: layer.payload_size,
            actual: size,
        });
    }
    let actual = format!("sha256:{}", hex::encode(Sha256::digest(payload)));
    if actual != layer.payload_digest {
        return Err(Rejection::PayloadDigestMismatch {
            declared: layer.payload_digest.clone(),
            actual,
        });
    }
    let signature = BASE64
        .decode(layer.signature_b64.as_bytes())
        .map_err(|_| Rejection::SignatureNotBase64)?;
    let key = keys
        .iter()
        .find(|key| key.verifies(payload, &signature))
        .ok_or(Rejection::NoKeyVerifies)?;
    let parsed: Payload =
        serde_json::from_slice(payload).map_err(|e| Rejection::MalformedPayload(e.to_string()))?;
    if parsed.critical.kind != SIGNATURE_TYPE {
        return Err(Rejection::WrongType(parsed.critical.kind));
    }
    let signed = parsed.critical.image.docker_manifest_digest;
    if signed != image_digest {
        return Err(Rejection::OtherImage { signed });
    }
    Ok((key, parsed.critical.identity.docker_reference))
}
