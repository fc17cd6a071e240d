//! `wharf trust key generate NAME --format cosign` and `wharf trust sign … --format
//! cosign`: cosign key pairs and key-based cosign ("simple signing") signatures, stored
//! the way cosign stores them, without cosign.

use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use wharf_signatures::cosign::{
    self as verifier, CosignKey, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE,
};

use super::cosign_key::{self, KeyFileError, pem_encode};
use super::registry::{self, ImageRef, OCI_MANIFEST};
use super::{SignTarget, write_new_files};
use crate::client::prompt::{secret_from_terminal, stdin_is_terminal};
use crate::client::report::{CLI_ERROR, INVALID_INPUT, Report, fail};
use crate::client::session::Session;

/// The passphrase variable cosign reads.
pub const PASSWORD_VARIABLE: &str = "COSIGN_PASSWORD";
/// The error code of a key that does not open with the passphrase given.
pub const WRONG_PASSPHRASE: &str = "WRONG_PASSPHRASE";

/// The passphrase: `COSIGN_PASSWORD` (set, even empty, as cosign takes it), or asked on
/// the terminal (twice for a new key).
fn passphrase(confirm: bool) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var(PASSWORD_VARIABLE) {
        return Ok(p);
    }
    if !stdin_is_terminal() {
        return Err(fail(
            INVALID_INPUT,
            format!("no passphrase for the cosign key: set {PASSWORD_VARIABLE} or run on a terminal"),
        ));
    }
    let first = secret_from_terminal("Enter password for private key")?;
    if confirm && secret_from_terminal("Enter password for private key again")? != first {
        return Err(fail(INVALID_INPUT, "the passphrases differ; no key was written"));
    }
    Ok(first)
}

/// `NAME.key` (encrypted, cosign's format) and `NAME.pub`.
pub fn generate(name: &str) -> anyhow::Result<Report> {
    let key_path = PathBuf::from(format!("{name}.key"));
    let pub_path = PathBuf::from(format!("{name}.pub"));
    super::refuse_existing(&[&key_path, &pub_path])?;
    let pass = passphrase(true)?;
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
        .map_err(|_| fail(CLI_ERROR, "cannot generate an ECDSA P-256 key"))?;
    let pkcs8 = pair
        .to_pkcs8v1()
        .map_err(|_| fail(CLI_ERROR, "cannot encode the private key"))?;
    let spki = pair
        .public_key()
        .as_der()
        .map_err(|_| fail(CLI_ERROR, "cannot encode the public key"))?;
    let public_pem = pem_encode("PUBLIC KEY", spki.as_ref());
    let private_pem = cosign_key::encrypt(pkcs8.as_ref(), pass.as_bytes());
    write_new_files(&[
        (&key_path, private_pem.as_bytes()),
        (&pub_path, public_pem.as_bytes()),
    ])?;
    let public = CosignKey::from_pem("new", &public_pem).map_err(|e| fail(CLI_ERROR, e.to_string()))?;
    Ok(Report::new(
        json!({
            "format": "cosign",
            "private_key": key_path,
            "public_key": pub_path,
            "algorithm": "ECDSA P-256",
            "spki_sha256": public.spki_sha256(),
        }),
        format!(
            "Private key written to {} (encrypted with your passphrase)\nPublic key written to {}",
            key_path.display(),
            pub_path.display()
        ),
    )
    .with_hint(format!(
        "Accept its signatures: wharf policy set --scope … --mode enforce --cosign-key {}={}",
        super::short_name(name),
        pub_path.display()
    )))
}

/// A cosign private key, opened.
pub struct Signer {
    pair: EcdsaKeyPair,
    public: CosignKey,
}

/// Open a cosign key file (cosign's, skopeo's or ours) with `passphrase`.
pub fn open_key(path: &Path, passphrase: &str) -> anyhow::Result<Signer> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(
            INVALID_INPUT,
            format!("cannot read the cosign key {}: {e}", path.display()),
        )
    })?;
    let pkcs8 = cosign_key::decrypt(&text, passphrase.as_bytes()).map_err(|e| match e {
        KeyFileError::WrongPassphrase => fail(
            WRONG_PASSPHRASE,
            format!("{}: {e}; nothing was signed", path.display()),
        ),
        KeyFileError::Malformed(_) => fail(INVALID_INPUT, format!("{}: {e}", path.display())),
    })?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8).map_err(|_| {
        fail(
            INVALID_INPUT,
            format!(
                "{}: the key inside is not an ECDSA P-256 key (the only kind cosign generates and wharf signs with)",
                path.display()
            ),
        )
    })?;
    let spki = pair
        .public_key()
        .as_der()
        .map_err(|_| fail(CLI_ERROR, "cannot encode the public key"))?;
    let public = CosignKey::from_pem("signer", &pem_encode("PUBLIC KEY", spki.as_ref()))
        .map_err(|e| fail(CLI_ERROR, e.to_string()))?;
    Ok(Signer { pair, public })
}

/// Open the key before anything talks to the registry: a wrong passphrase stops here.
pub fn open_key_for_signing(path: &Path) -> anyhow::Result<Signer> {
    open_key(path, &passphrase(false)?)
}

/// The simple-signing payload cosign writes for `digest` as `identity`.
fn payload(identity: &str, digest: &str) -> Vec<u8> {
    // Keys in the order cosign writes them (serde_json sorts, and this order is sorted).
    serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": identity},
            "image": {"docker-manifest-digest": digest},
            "type": verifier::SIGNATURE_TYPE,
        },
        "optional": null,
    }))
    .expect("serializable")
}

/// Whether `payload` names `identity` as its docker-reference.
fn names_identity(payload: &[u8], identity: &str) -> bool {
    serde_json::from_slice::<Value>(payload)
        .ok()
        .is_some_and(|v| v["critical"]["identity"]["docker-reference"].as_str() == Some(identity))
}

/// Sign one image: add a layer to its `.sig` manifest, unless a signature by this key
/// for the same digest and identity is already there. Whether one was added.
pub async fn sign(s: &Session, signer: &Signer, target: &SignTarget<'_>) -> anyhow::Result<bool> {
    let repo = &target.image.repository;
    let digest = &target.digest;
    let identity = target.identity.as_str();
    let tag = verifier::signature_tag(digest).map_err(|e| fail(CLI_ERROR, e.to_string()))?;
    let existing = registry::manifest(s, repo, &tag).await?;
    let mut layers: Vec<Value> = Vec::new();
    if let Some(m) = &existing {
        let doc: Value = serde_json::from_slice(&m.bytes).unwrap_or(Value::Null);
        layers = doc["layers"].as_array().cloned().unwrap_or_default();
        let signatures = verifier::signature_layers(&m.bytes).map_err(|e| {
            fail(
                INVALID_INPUT,
                format!("{repo}:{tag} is there but is not a cosign signature manifest: {e}"),
            )
        })?;
        for layer in signatures {
            let bytes = registry::blob(s, repo, &layer.payload_digest).await?;
            let ours = verifier::verify(
                digest,
                &[(layer, bytes.clone())],
                std::slice::from_ref(&signer.public),
            )
            .is_ok();
            if ours && names_identity(&bytes, identity) {
                return Ok(false);
            }
        }
    }
    let payload = payload(identity, digest);
    let signature = signer
        .pair
        .sign(&SystemRandom::new(), &payload)
        .map_err(|_| fail(CLI_ERROR, "signing failed"))?;
    let signature_b64 = BASE64.encode(signature.as_ref());
    let layer = json!({
        "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
        "digest": registry::sha256_digest(&payload),
        "size": payload.len(),
        "annotations": {SIGNATURE_ANNOTATION: signature_b64},
    });
    // What the server and skopeo will check, checked before anything is stored.
    let ours = verifier::SignatureLayer {
        payload_digest: registry::sha256_digest(&payload),
        payload_size: payload.len() as u64,
        signature_b64,
    };
    verifier::verify(
        digest,
        &[(ours, payload.clone())],
        std::slice::from_ref(&signer.public),
    )
    .map_err(|e| fail(CLI_ERROR, format!("the new signature does not verify: {e}")))?;
    layers.push(layer);
    registry::push_blob(s, repo, &payload).await?;
    // The config lists every layer, as cosign writes it.
    let diff_ids: Vec<Value> = layers.iter().map(|l| l["digest"].clone()).collect();
    let config = serde_json::to_vec(&json!({
        "architecture": "",
        "config": {},
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("serializable");
    let config_digest = registry::push_blob(s, repo, &config).await?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": layers,
    }))
    .expect("serializable");
    registry::put_manifest(s, repo, &tag, OCI_MANIFEST, manifest).await?;
    Ok(true)
}

/// Where the signature of `target` is stored, for the report.
pub fn signature_location(target: &SignTarget<'_>) -> String {
    verifier::signature_tag(&target.digest).unwrap_or_default()
}

/// The payload's `docker-reference`: `host/repo:tag` for a tag (what skopeo writes, and
/// what its default `matchRepoDigestOrExact` identity demands of a pull by tag),
/// `host/repo` for a digest (what cosign writes).
pub fn identity(image: &ImageRef, registry: &str) -> String {
    if image.by_digest {
        format!("{registry}/{}", image.repository)
    } else {
        image.full(registry)
    }
}
