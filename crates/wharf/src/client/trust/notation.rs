//! `wharf trust key generate NAME --format notation` and `wharf trust sign … --format
//! notation`: Notary Project signing keys with a self-signed code-signing certificate, and
//! JWS signature envelopes pushed as OCI 1.1 referrers of the image, as the notation CLI
//! pushes them, without notation.

use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, EcdsaSigningAlgorithm,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use wharf_signatures::notation::{
    self as verifier, MEDIA_TYPE_JWS, NotationPolicy, PAYLOAD_CONTENT_TYPE, SIGNATURE_ARTIFACT_TYPE,
    TrustStoreType, TrustedIdentity, TrustedRoot,
};

use super::cosign_key::pem_decode;
use super::registry::{self, OCI_MANIFEST};
use super::{SignTarget, write_new_files};
use crate::client::report::{CLI_ERROR, INVALID_INPUT, Report, fail};
use crate::client::session::Session;

/// The empty config of an OCI 1.1 artifact manifest (`{}`).
const EMPTY_CONFIG_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_CONFIG: &[u8] = b"{}";
/// How long a generated certificate is valid (notation's test certificates: a year).
const CERT_DAYS: i64 = 365;

/// A Notation signing key with its certificate chain (leaf first).
pub struct Signer {
    pair: EcdsaKeyPair,
    alg: &'static str,
    chain: Vec<Vec<u8>>,
}

/// Every `CERTIFICATE` block of a PEM file, as DER.
fn certificates(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(
            INVALID_INPUT,
            format!("cannot read the certificate {}: {e}", path.display()),
        )
    })?;
    let roots = TrustedRoot::from_pem("cert", TrustStoreType::Ca, &text)
        .map_err(|e| fail(INVALID_INPUT, format!("{}: {e}", path.display())))?;
    if roots.is_empty() {
        return Err(fail(
            INVALID_INPUT,
            format!("{}: no CERTIFICATE in the file", path.display()),
        ));
    }
    Ok(roots.into_iter().map(|r| r.der().to_vec()).collect())
}

/// A PKCS#8 `PRIVATE KEY` (ECDSA P-256 or P-384) and the JWS algorithm it signs with.
fn private_key(path: &Path) -> anyhow::Result<(EcdsaKeyPair, &'static str)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(
            INVALID_INPUT,
            format!("cannot read the key {}: {e}", path.display()),
        )
    })?;
    let der = match pem_decode(&text) {
        Some((label, der)) if label == "PRIVATE KEY" => der,
        _ => {
            return Err(fail(
                INVALID_INPUT,
                format!("{}: not a PKCS#8 PEM \"PRIVATE KEY\"", path.display()),
            ));
        }
    };
    let algorithms: [(&'static EcdsaSigningAlgorithm, &str); 2] = [
        (&ECDSA_P256_SHA256_FIXED_SIGNING, "ES256"),
        (&ECDSA_P384_SHA384_FIXED_SIGNING, "ES384"),
    ];
    algorithms
        .iter()
        .find_map(|(alg, name)| EcdsaKeyPair::from_pkcs8(alg, &der).ok().map(|p| (p, *name)))
        .ok_or_else(|| {
            fail(
                INVALID_INPUT,
                format!(
                    "{}: not an ECDSA P-256 or P-384 key (the kinds wharf signs Notation signatures with)",
                    path.display()
                ),
            )
        })
}

/// The trust policy that accepts exactly this chain's root, any signer under it.
fn own_policy(chain: &[Vec<u8>]) -> anyhow::Result<NotationPolicy> {
    let root = TrustedRoot::from_der("own", TrustStoreType::Ca, chain.last().expect("a chain"))
        .map_err(|e| fail(INVALID_INPUT, e.to_string()))?;
    let any = TrustedIdentity::parse("*").map_err(|e| fail(CLI_ERROR, e.to_string()))?;
    NotationPolicy::new(vec![root], vec![any]).map_err(|e| fail(INVALID_INPUT, e.to_string()))
}

impl Signer {
    /// Open `key` and `cert` and prove they belong together and meet the Notary Project
    /// certificate requirements, by signing a probe and verifying it as the server does.
    pub fn open(key: &Path, cert: &Path) -> anyhow::Result<Self> {
        let (pair, alg) = private_key(key)?;
        let chain = certificates(cert)?;
        let signer = Self { pair, alg, chain };
        let probe = registry::sha256_digest(b"wharf notation key probe");
        let envelope = signer.envelope(&probe, OCI_MANIFEST, 2, Utc::now())?;
        verifier::verify(
            &probe,
            MEDIA_TYPE_JWS,
            &envelope,
            &own_policy(&signer.chain)?,
            Utc::now(),
        )
        .map_err(|e| {
            fail(
                INVALID_INPUT,
                format!(
                    "{} with {} cannot make a valid Notation signature: {e}",
                    key.display(),
                    cert.display()
                ),
            )
        })?;
        Ok(signer)
    }

    /// A JWS envelope (signature-envelope-jws.md) over the descriptor of the image.
    fn envelope(
        &self,
        digest: &str,
        media_type: &str,
        size: u64,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Vec<u8>> {
        let protected = serde_json::to_vec(&json!({
            "alg": self.alg,
            "crit": ["io.cncf.notary.signingScheme"],
            "cty": PAYLOAD_CONTENT_TYPE,
            "io.cncf.notary.signingScheme": "notary.x509",
            "io.cncf.notary.signingTime": at.to_rfc3339_opts(SecondsFormat::Secs, true),
        }))
        .expect("serializable");
        let payload = serde_json::to_vec(&json!({
            "targetArtifact": {"digest": digest, "mediaType": media_type, "size": size}
        }))
        .expect("serializable");
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&protected),
            URL_SAFE_NO_PAD.encode(&payload)
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| fail(CLI_ERROR, "signing failed"))?;
        let x5c: Vec<String> = self.chain.iter().map(|c| STANDARD.encode(c)).collect();
        Ok(serde_json::to_vec(&json!({
            "payload": URL_SAFE_NO_PAD.encode(&payload),
            "protected": URL_SAFE_NO_PAD.encode(&protected),
            "header": {
                "x5c": x5c,
                "io.cncf.notary.signingAgent": concat!("wharf/", env!("CARGO_PKG_VERSION")),
            },
            "signature": URL_SAFE_NO_PAD.encode(signature.as_ref()),
        }))
        .expect("serializable"))
    }
}

/// `NAME.key` (PKCS#8 PEM, 0600) and `NAME.crt`: a new P-256 key with a self-signed
/// code-signing certificate, or the supplied certificate and key after checking them.
pub fn generate(name: &str, cert: Option<&Path>, cert_key: Option<&Path>) -> anyhow::Result<Report> {
    let key_path = PathBuf::from(format!("{name}.key"));
    let crt_path = PathBuf::from(format!("{name}.crt"));
    super::refuse_existing(&[&key_path, &crt_path])?;
    let (key_pem, crt_pem, generated) = match (cert, cert_key) {
        (Some(cert), Some(key)) => {
            Signer::open(key, cert)?;
            let read = |p: &Path| {
                std::fs::read_to_string(p)
                    .map_err(|e| fail(INVALID_INPUT, format!("cannot read {}: {e}", p.display())))
            };
            (read(key)?, read(cert)?, false)
        }
        (None, None) => {
            let (key, crt) = self_signed(name)?;
            (key, crt, true)
        }
        _ => {
            return Err(fail(
                INVALID_INPUT,
                "--cert and --cert-key go together: a certificate and its private key",
            ));
        }
    };
    write_new_files(&[(&key_path, key_pem.as_bytes()), (&crt_path, crt_pem.as_bytes())])?;
    let chain = certificates(&crt_path)?;
    let leaf = TrustedRoot::from_der("leaf", TrustStoreType::Ca, &chain[0])
        .map_err(|e| fail(CLI_ERROR, e.to_string()))?;
    let thumbprint = registry::sha256_digest(&chain[0]);
    Ok(Report::new(
        json!({
            "format": "notation",
            "private_key": key_path,
            "certificate": crt_path,
            "subject": leaf.subject(),
            "sha256": thumbprint.trim_start_matches("sha256:"),
            "generated": generated,
        }),
        format!(
            "Private key written to {}\nCertificate written to {} (subject {})",
            key_path.display(),
            crt_path.display(),
            leaf.subject()
        ),
    )
    .with_hint(format!(
        "Accept its signatures: wharf policy set --scope … --mode enforce --notation-root {}={} --notation-identity '*'",
        super::short_name(name),
        crt_path.display()
    )))
}

/// A P-256 key and a self-signed certificate meeting the Notary Project's signing
/// certificate requirements: CA=false, keyUsage digitalSignature (critical), extended key
/// usage codeSigning.
fn self_signed(name: &str) -> anyhow::Result<(String, String)> {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    };
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| fail(CLI_ERROR, e.to_string()))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    // A minute back, so that a signature made at once, on a clock a little behind, is not
    // before the certificate's start.
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(1);
    params.not_after = now + time::Duration::days(CERT_DAYS);
    let cert = params
        .self_signed(&key)
        .map_err(|e| fail(CLI_ERROR, e.to_string()))?;
    Ok((key.serialize_pem(), cert.pem()))
}

/// Whether `envelope` is a signature of `digest` by this signer that verifies.
fn signed_by(signer: &Signer, policy: &NotationPolicy, digest: &str, envelope: &[u8]) -> bool {
    let leaf = serde_json::from_slice::<Value>(envelope)
        .ok()
        .and_then(|v| v["header"]["x5c"][0].as_str().map(str::to_owned));
    leaf.is_some_and(|l| l == STANDARD.encode(&signer.chain[0]))
        && verifier::verify(digest, MEDIA_TYPE_JWS, envelope, policy, Utc::now()).is_ok()
}

/// Sign one image: push a signature manifest referring to it, unless a valid signature by
/// this certificate is already among its referrers. Whether one was added, and the
/// signature manifest's digest.
pub async fn sign(s: &Session, signer: &Signer, target: &SignTarget<'_>) -> anyhow::Result<(bool, String)> {
    let repo = &target.image.repository;
    let digest = &target.digest;
    let policy = own_policy(&signer.chain)?;
    for descriptor in registry::referrers(s, repo, digest, SIGNATURE_ARTIFACT_TYPE).await? {
        let Some(sig_digest) = descriptor["digest"].as_str() else {
            continue;
        };
        let Some(manifest) = registry::manifest(s, repo, sig_digest).await? else {
            continue;
        };
        let Ok(envelope_ref) = verifier::signature_envelope(&manifest.bytes) else {
            continue;
        };
        if envelope_ref.media_type != MEDIA_TYPE_JWS {
            continue;
        }
        let envelope = registry::blob(s, repo, &envelope_ref.digest).await?;
        if signed_by(signer, &policy, digest, &envelope) {
            return Ok((false, sig_digest.to_owned()));
        }
    }
    let now = Utc::now();
    let envelope = signer.envelope(digest, &target.media_type, target.size, now)?;
    verifier::verify(digest, MEDIA_TYPE_JWS, &envelope, &policy, now)
        .map_err(|e| fail(CLI_ERROR, format!("the new signature does not verify: {e}")))?;
    let config_digest = registry::push_blob(s, repo, EMPTY_CONFIG).await?;
    let envelope_digest = registry::push_blob(s, repo, &envelope).await?;
    let thumbprints: Vec<String> = signer
        .chain
        .iter()
        .map(|c| {
            registry::sha256_digest(c)
                .trim_start_matches("sha256:")
                .to_owned()
        })
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SIGNATURE_ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_CONFIG_TYPE, "digest": config_digest, "size": EMPTY_CONFIG.len()},
        "layers": [{"mediaType": MEDIA_TYPE_JWS, "digest": envelope_digest, "size": envelope.len()}],
        "subject": {"mediaType": target.media_type, "digest": digest, "size": target.size},
        "annotations": {
            "io.cncf.notary.x509chain.thumbprint#S256": serde_json::to_string(&thumbprints).expect("serializable"),
            "org.opencontainers.image.created": now.to_rfc3339_opts(SecondsFormat::Secs, true),
        },
    }))
    .expect("serializable");
    let manifest_digest = registry::sha256_digest(&manifest);
    registry::put_manifest(s, repo, &manifest_digest, OCI_MANIFEST, manifest).await?;
    Ok((true, manifest_digest))
}
