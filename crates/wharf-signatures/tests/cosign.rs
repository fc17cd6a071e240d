//! cosign verification on signatures made by skopeo 1.9.3 and captured from a registry
//! (`testdata/cosign/`, see its README.md), plus the key kinds skopeo did not sign with,
//! signed here by aws-lc-rs. Every refusal is checked by its exact message: those reach users.

use std::path::PathBuf;

use wharf_signatures::cosign::{
    self, AcceptedSignature, CosignError, CosignKey, KeyKind, MAX_PAYLOAD_BYTES, Rejection, SignatureLayer,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/cosign")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture_text(name: &str) -> String {
    String::from_utf8(fixture(name)).unwrap()
}

fn image_digest() -> String {
    fixture_text("image-digest.txt").trim().to_string()
}

fn signer() -> CosignKey {
    CosignKey::from_pem("signer", &fixture_text("signer.pub")).unwrap()
}

fn other() -> CosignKey {
    CosignKey::from_pem("other", &fixture_text("other.pub")).unwrap()
}

/// The layers of a captured `.sig` manifest with their payload blobs, as a caller would
/// fetch them (by digest).
fn captured(manifest: &str) -> Vec<(SignatureLayer, Vec<u8>)> {
    cosign::signature_layers(&fixture(manifest))
        .unwrap()
        .into_iter()
        .map(|layer| {
            let blob = fixture(&format!(
                "blobs/{}",
                layer.payload_digest.strip_prefix("sha256:").unwrap()
            ));
            (layer, blob)
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

const ANOTHER_DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

// ---- the captured signatures -----------------------------------------------------------

#[test]
fn the_tag_is_named_after_the_digest() {
    let digest = image_digest();
    assert_eq!(
        cosign::signature_tag(&digest).unwrap(),
        "sha256-ecdae96a97ef73f1d436f0f1671a613a7684bece3ef8c70bbddedb186b1afbf7.sig"
    );
    // The digest is the manifest's: the image was built from fixed bytes.
    assert_eq!(sha256(&fixture("image-manifest.json")), digest);
    assert_eq!(
        cosign::signature_tag("sha256:ECDAE96A").unwrap_err().to_string(),
        "image digest \"sha256:ECDAE96A\" is not sha256:<64 lowercase hex>"
    );
}

#[test]
fn the_manifest_names_one_signature_layer() {
    let layers = cosign::signature_layers(&fixture("signature-manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&fixture("signature-manifest.json")).unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(
        layers,
        vec![SignatureLayer {
            payload_digest: layer["digest"].as_str().unwrap().to_string(),
            payload_size: layer["size"].as_u64().unwrap(),
            signature_b64: layer["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap()
                .to_string(),
        }]
    );
}

#[test]
fn skopeos_signature_verifies_with_the_signing_key() {
    let accepted =
        cosign::verify(&image_digest(), &captured("signature-manifest.json"), &[signer()]).unwrap();
    assert_eq!(
        accepted,
        AcceptedSignature {
            key_name: "signer".into(),
            docker_reference: "127.0.0.1:5055/test/app:v1".into(),
            number: 1
        }
    );
    // Other keys configured beside it change nothing.
    let accepted = cosign::verify(
        &image_digest(),
        &captured("signature-manifest.json"),
        &[other(), signer()],
    )
    .unwrap();
    assert_eq!(accepted.key_name, "signer");
}

#[test]
fn another_key_is_refused() {
    let err = cosign::verify(&image_digest(), &captured("signature-manifest.json"), &[other()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no cosign signature of {} verified: signature 1 is not signed by any configured key",
            image_digest()
        )
    );
    assert!(
        matches!(&err, CosignError::Rejected { rejections, .. } if rejections == &[(1, Rejection::NoKeyVerifies)])
    );
}

#[test]
fn a_tampered_payload_is_refused() {
    let mut layers = captured("signature-manifest.json");
    let original = layers[0].0.payload_digest.clone();
    // One byte of the digest the payload signs: "sha256:ecdae…" becomes "sha256:fcdae…".
    let payload = &mut layers[0].1;
    let at = payload.windows(8).position(|w| w == b"sha256:e").unwrap() + 7;
    payload[at] = b'f';
    let tampered = sha256(payload);

    // As fetched under the manifest's digest: the blob is not the one the manifest names.
    let err = cosign::verify(&image_digest(), &layers, &[signer()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no cosign signature of {} verified: signature 1 has a payload blob with digest {tampered}, \
             not the {original} the signature manifest names",
            image_digest()
        )
    );

    // With the manifest rewritten to name the tampered blob, the signature no longer fits.
    layers[0].0.payload_digest = tampered;
    let err = cosign::verify(&image_digest(), &layers, &[signer()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no cosign signature of {} verified: signature 1 is not signed by any configured key",
            image_digest()
        )
    );
}

#[test]
fn a_payload_for_another_digest_is_refused() {
    // The captured signature is valid, but for the captured image, not this one.
    let err = cosign::verify(ANOTHER_DIGEST, &captured("signature-manifest.json"), &[signer()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no cosign signature of {ANOTHER_DIGEST} verified: signature 1 signs another image, {}",
            image_digest()
        )
    );
    assert!(matches!(
        &err,
        CosignError::Rejected { rejections, .. }
            if rejections == &[(1, Rejection::OtherImage { signed: image_digest() })]
    ));
}

#[test]
fn a_manifest_without_signature_layers_is_refused() {
    // The captured manifest with its layer's media type changed: no longer a signature.
    let manifest = fixture_text("signature-manifest.json").replace(
        "application/vnd.dev.cosign.simplesigning.v1+json",
        "application/vnd.oci.image.layer.v1.tar",
    );
    let layers = cosign::signature_layers(manifest.as_bytes()).unwrap();
    assert_eq!(layers, vec![]);
    // And with the layer but without its signature annotation.
    let manifest = fixture_text("signature-manifest.json").replace("dev.cosignproject.cosign/signature", "x");
    assert_eq!(cosign::signature_layers(manifest.as_bytes()).unwrap(), vec![]);

    let err = cosign::verify(&image_digest(), &[], &[signer()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("image {} has no cosign signatures", image_digest())
    );
}

#[test]
fn a_signature_that_is_not_base64_is_refused() {
    let mut layers = captured("signature-manifest.json");
    layers[0].0.signature_b64.insert(4, '*');
    let err = cosign::verify(&image_digest(), &layers, &[signer()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no cosign signature of {} verified: signature 1 has a dev.cosignproject.cosign/signature \
             annotation that is not base64",
            image_digest()
        )
    );
}

#[test]
fn of_two_signatures_the_one_by_a_configured_key_is_accepted() {
    let layers = captured("two-signatures-manifest.json");
    assert_eq!(layers.len(), 2);
    // Layer 1 (the first) was signed by `other`, layer 2 by `signer`.
    let accepted = cosign::verify(&image_digest(), &layers, &[signer()]).unwrap();
    assert_eq!(
        accepted,
        AcceptedSignature {
            key_name: "signer".into(),
            docker_reference: "127.0.0.1:5055/test/two:v1".into(),
            number: 2
        }
    );
    assert_eq!(
        cosign::verify(&image_digest(), &layers, &[other()])
            .unwrap()
            .number,
        1
    );
}

#[test]
fn every_refused_signature_is_explained() {
    let layers = captured("two-signatures-manifest.json");
    let err = cosign::verify(ANOTHER_DIGEST, &layers, &[signer()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no cosign signature of {ANOTHER_DIGEST} verified: signature 1 is not signed by any configured key; \
             signature 2 signs another image, {}",
            image_digest()
        )
    );
}

// ---- bounds and malformed input ----------------------------------------------------------

/// A `.sig` manifest with `count` signature layers naming `payload`.
fn manifest_with(count: usize, payload_size: u64) -> String {
    let layer = format!(
        r#"{{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"{ANOTHER_DIGEST}","size":{payload_size},"annotations":{{"dev.cosignproject.cosign/signature":"AA=="}}}}"#
    );
    format!(
        r#"{{"schemaVersion":2,"layers":[{}]}}"#,
        vec![layer; count].join(",")
    )
}

#[test]
fn at_most_100_signatures() {
    assert_eq!(
        cosign::signature_layers(manifest_with(100, 300).as_bytes())
            .unwrap()
            .len(),
        100
    );
    let err = cosign::signature_layers(manifest_with(101, 300).as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cosign signature manifest has more than 100 signatures"
    );

    let layers: Vec<_> = (0..101)
        .map(|_| captured("signature-manifest.json").remove(0))
        .collect();
    let err = cosign::verify(&image_digest(), &layers, &[signer()]).unwrap_err();
    assert_eq!(err, CosignError::TooManySignatures);
}

#[test]
fn payloads_of_at_most_64_kib() {
    assert!(cosign::signature_layers(manifest_with(1, MAX_PAYLOAD_BYTES).as_bytes()).is_ok());
    let err = cosign::signature_layers(manifest_with(2, 65537).as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cosign signature 1 declares a payload of 65537 bytes, more than the 65536 allowed"
    );

    // A blob longer than its layer said is refused before it is hashed or parsed.
    let mut layers = captured("signature-manifest.json");
    layers[0].1 = vec![b' '; 65537];
    let err = cosign::verify(&image_digest(), &layers, &[signer()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no cosign signature of {} verified: signature 1 has a payload of 65537 bytes, more than the 65536 allowed",
            image_digest()
        )
    );
}

#[test]
fn a_payload_blob_of_another_size_is_refused() {
    let mut layers = captured("signature-manifest.json");
    layers[0].1.push(b'\n');
    let err = cosign::verify(&image_digest(), &layers, &[signer()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no cosign signature of {} verified: signature 1 has a payload blob of 299 bytes, \
             not the 298 the signature manifest declares",
            image_digest()
        )
    );
}

#[test]
fn malformed_manifests_are_refused() {
    let cases = [
        (
            "not json",
            "cosign signature manifest is malformed: expected ident at line 1 column 2",
        ),
        (
            r#"{"schemaVersion":2,"manifests":[]}"#,
            "cosign signature manifest is malformed: it has no \"layers\" (not an image manifest)",
        ),
        (
            r#"{"layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"sha256:abc","size":1,"annotations":{"dev.cosignproject.cosign/signature":"AA=="}}]}"#,
            "cosign signature manifest is malformed: signature 1 has digest \"sha256:abc\", not sha256:<64 lowercase hex>",
        ),
        (
            r#"{"layers":[{"mediaType":"x","digest":"sha256:abc","size":-1}]}"#,
            "cosign signature manifest is malformed: invalid value: integer `-1`, expected u64 at line 1 column 59",
        ),
    ];
    for (manifest, message) in cases {
        assert_eq!(
            cosign::signature_layers(manifest.as_bytes())
                .unwrap_err()
                .to_string(),
            message,
            "{manifest}"
        );
    }
}

#[test]
fn the_caller_must_configure_keys_and_name_a_digest() {
    let layers = captured("signature-manifest.json");
    assert_eq!(
        cosign::verify(&image_digest(), &layers, &[])
            .unwrap_err()
            .to_string(),
        "no cosign public keys are configured"
    );
    assert_eq!(
        cosign::verify("latest", &layers, &[signer()])
            .unwrap_err()
            .to_string(),
        "image digest \"latest\" is not sha256:<64 lowercase hex>"
    );
}

// ---- payloads signed here: what skopeo's payload never shows -----------------------------

mod signed_here {
    use aws_lc_rs::encoding::AsDer as _;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self as sig, KeyPair as _};
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;

    use super::*;

    fn pem(der: &[u8]) -> String {
        let body = BASE64.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// A signature layer for `payload` with `signature`, and the payload.
    fn layer(payload: &[u8], signature: &[u8]) -> (SignatureLayer, Vec<u8>) {
        (
            SignatureLayer {
                payload_digest: sha256(payload),
                payload_size: payload.len() as u64,
                signature_b64: BASE64.encode(signature),
            },
            payload.to_vec(),
        )
    }

    fn payload_for(digest: &str) -> Vec<u8> {
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"registry.example/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
        )
        .into_bytes()
    }

    fn p256() -> (sig::EcdsaKeyPair, CosignKey) {
        let pair = sig::EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let key = CosignKey::from_pem("p256", &pem(pair.public_key().as_der().unwrap().as_ref())).unwrap();
        (pair, key)
    }

    fn sign_p256(pair: &sig::EcdsaKeyPair, payload: &[u8]) -> Vec<u8> {
        pair.sign(&SystemRandom::new(), payload)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    fn accepted_by(
        key: &CosignKey,
        payload: &[u8],
        signature: &[u8],
    ) -> Result<AcceptedSignature, CosignError> {
        cosign::verify(
            &image_digest(),
            &[layer(payload, signature)],
            std::slice::from_ref(key),
        )
    }

    /// A P-384 key and its SHA-256 signature over `payload_for(image_digest())`, made with
    /// Python's cryptography (`ec.SECP384R1()`, `ec.ECDSA(hashes.SHA256())`): aws-lc-rs signs
    /// P-384 only with SHA-384, and SHA-256 is what containers/image and cosign use.
    const P384_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEnjbRwWa1BYIJ8FFpRCCCfGasRu8gRu8U
NwA2wzSGSMoujOdKkFc5zVEyiMJZh6tHHBFt5g722M/rItyVdzR6N9a3xIjDTpHc
m6rKDsUqapqttOP9NUnA/Uqjr9vMUb1u
-----END PUBLIC KEY-----
";
    const P384_SHA256_SIGNATURE: &str = "MGQCMCR9TIJMnHrhZkG4RHi0ipwqwUVOhVYRUjL563BD/bkTToNxj1TvMjH9x8hdGuPkLQIwJjzCMnBZ59P/v3sg1DtPwP6TYDmj1yYc+z/2gtrJ43VVkNmUw8hY2xXarHv4fmTH";

    #[test]
    fn p384_with_sha256_or_sha384() {
        let payload = payload_for(&image_digest());
        let key = CosignKey::from_pem("p384", P384_PUBLIC_KEY).unwrap();
        assert_eq!(key.kind(), KeyKind::EcdsaP384);
        let signature = BASE64.decode(P384_SHA256_SIGNATURE).unwrap();
        assert_eq!(accepted_by(&key, &payload, &signature).unwrap().key_name, "p384");

        let pair = sig::EcdsaKeyPair::generate(&sig::ECDSA_P384_SHA384_ASN1_SIGNING).unwrap();
        let key = CosignKey::from_pem("p384", &pem(pair.public_key().as_der().unwrap().as_ref())).unwrap();
        let signature = pair.sign(&SystemRandom::new(), &payload).unwrap();
        assert_eq!(
            accepted_by(&key, &payload, signature.as_ref()).unwrap().key_name,
            "p384"
        );
    }

    #[test]
    fn ecdsa_signatures_must_be_der() {
        // sigstore's verifier takes ASN.1 DER only; the same signature as fixed r||s is refused.
        let payload = payload_for(&image_digest());
        let pair = sig::EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let key = CosignKey::from_pem("p256", &pem(pair.public_key().as_der().unwrap().as_ref())).unwrap();
        let fixed = pair.sign(&SystemRandom::new(), &payload).unwrap();
        let err = accepted_by(&key, &payload, fixed.as_ref()).unwrap_err();
        assert!(
            matches!(&err, CosignError::Rejected { rejections, .. } if rejections == &[(1, Rejection::NoKeyVerifies)])
        );
    }

    #[test]
    fn ed25519() {
        let pair = sig::Ed25519KeyPair::generate().unwrap();
        let key = CosignKey::from_pem("ed", &pem(pair.public_key().as_der().unwrap().as_ref())).unwrap();
        assert_eq!(key.kind(), KeyKind::Ed25519);
        let payload = payload_for(&image_digest());
        assert_eq!(
            accepted_by(&key, &payload, pair.sign(&payload).as_ref())
                .unwrap()
                .key_name,
            "ed"
        );
    }

    #[test]
    fn rsa_pkcs1_and_pss() {
        let pair = sig::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let key = CosignKey::from_pem("rsa", &pem(pair.public_key().as_der().unwrap().as_ref())).unwrap();
        assert_eq!(key.kind(), KeyKind::Rsa { bits: 2048 });
        let payload = payload_for(&image_digest());
        for padding in [
            &sig::RSA_PKCS1_SHA256 as &dyn sig::RsaEncoding,
            &sig::RSA_PSS_SHA256,
        ] {
            let mut signature = vec![0; pair.public_modulus_len()];
            pair.sign(padding, &SystemRandom::new(), &payload, &mut signature)
                .unwrap();
            assert_eq!(accepted_by(&key, &payload, &signature).unwrap().key_name, "rsa");
        }
    }

    #[test]
    fn signed_payloads_that_are_not_image_signatures_are_refused() {
        let (pair, key) = p256();
        let digest = image_digest();
        let cases = [
            (
                payload_for(&digest).replace_all("cosign container image signature", "something else"),
                "signature 1 has payload type \"something else\", not \"cosign container image signature\"",
            ),
            (
                // A critical member we do not know must not be ignored.
                payload_for(&digest).replace_all(r#""type":"#, r#""extra":1,"type":"#),
                "signature 1 has a malformed payload: unknown field `extra`, expected one of `identity`, \
                 `image`, `type` at line 1 column 184",
            ),
            (
                // Two digests in one payload: another parser might read the other one.
                payload_for(&digest).replace_all(
                    r#"{"docker-manifest-digest""#,
                    &format!(r#"{{"docker-manifest-digest":"{ANOTHER_DIGEST}","docker-manifest-digest""#),
                ),
                "signature 1 has a malformed payload: duplicate field `docker-manifest-digest` at line 1 column 200",
            ),
            (
                payload_for(&digest).replace_all(r#""optional":null"#, r#""optional":[]"#),
                "signature 1 has a malformed payload: invalid type: sequence, expected a map at line 1 column 231",
            ),
        ];
        for (payload, reason) in cases {
            let err = accepted_by(&key, &payload, &sign_p256(&pair, &payload)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("no cosign signature of {digest} verified: {reason}"),
                "{}",
                String::from_utf8_lossy(&payload)
            );
        }
        // `optional` may be absent, null or any object.
        for payload in [
            payload_for(&digest).replace_all(r#","optional":null"#, ""),
            payload_for(&digest).replace_all(r#""optional":null"#, r#""optional":{"creator":"x","a":[1]}"#),
        ] {
            assert!(accepted_by(&key, &payload, &sign_p256(&pair, &payload)).is_ok());
        }
    }

    trait ReplaceAll {
        fn replace_all(&self, from: &str, to: &str) -> Vec<u8>;
    }

    impl ReplaceAll for Vec<u8> {
        fn replace_all(&self, from: &str, to: &str) -> Vec<u8> {
            String::from_utf8(self.clone())
                .unwrap()
                .replace(from, to)
                .into_bytes()
        }
    }
}

// ---- keys ---------------------------------------------------------------------------------

#[test]
fn the_captured_keys_are_p256() {
    assert_eq!(signer().kind(), KeyKind::EcdsaP256);
    assert_eq!(signer().name(), "signer");
    assert_ne!(signer().spki_sha256(), other().spki_sha256());
}

#[test]
fn unusable_keys_are_refused() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    let pub_pem = fixture_text("signer.pub");
    let der = BASE64
        .decode(
            pub_pem
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let cases = [
        (
            "",
            "no PEM block (expected -----BEGIN PUBLIC KEY-----)".to_string(),
        ),
        (
            "-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\nAA==\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n",
            "PEM block is \"ENCRYPTED COSIGN PRIVATE KEY\", expected \"PUBLIC KEY\"".to_string(),
        ),
        (
            "-----BEGIN PUBLIC KEY-----\nAA==\n",
            "PEM block has no -----END PUBLIC KEY----- line".to_string(),
        ),
        (
            &format!("{pub_pem}{}", fixture_text("other.pub")),
            "more than one PEM block; give each key on its own".to_string(),
        ),
        (
            "-----BEGIN PUBLIC KEY-----\nnot*base64\n-----END PUBLIC KEY-----\n",
            "PEM body is not base64 (PEM headers are not supported)".to_string(),
        ),
        (
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "not a DER SubjectPublicKeyInfo".to_string(),
        ),
        (
            // The real key with a byte after its DER.
            &format!(
                "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
                BASE64.encode([&der[..], &[0]].concat())
            ),
            "not a DER SubjectPublicKeyInfo".to_string(),
        ),
    ];
    for (pem, problem) in cases {
        let err = CosignKey::from_pem("k", pem).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cosign public key \"k\": {problem}"),
            "{pem}"
        );
    }
    // Comments around the block are fine (Go's pem.Decode skips them too).
    let commented = format!("# the release key\n{pub_pem}# end\n");
    assert_eq!(
        CosignKey::from_pem("k", &commented).unwrap().spki_sha256(),
        signer().spki_sha256()
    );
}

#[test]
fn compressed_points_and_small_rsa_keys_are_refused() {
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            fixture_text("signer.pub")
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    // SPKI for P-256: 26 bytes of header, then 04 || X || Y. Compressed: 02|03 || X, and the
    // BIT STRING and SEQUENCE lengths shrink by 32.
    let mut compressed = der[..26].to_vec();
    compressed[1] -= 32;
    compressed[24] -= 32;
    compressed.push(2 + (der[26 + 64] & 1));
    compressed.extend_from_slice(&der[27..59]);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&compressed)
    );
    assert_eq!(
        CosignKey::from_pem("c", &pem).unwrap_err().to_string(),
        "cosign public key \"c\": ECDSA P-256 public key is not an uncompressed point"
    );

    // RSA 1024: SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { RSAPublicKey } }.
    let mut modulus = vec![0x00, 0xc0];
    modulus.extend(std::iter::repeat_n(0x11, 127));
    let mut rsa_public_key = vec![0x30, 0x81, 0x89, 0x02, 0x81, 0x81];
    rsa_public_key.extend(&modulus);
    rsa_public_key.extend([0x02, 0x03, 0x01, 0x00, 0x01]);
    let mut spki = vec![0x30, 0x81, 0x9f, 0x30, 0x0d, 0x06, 0x09];
    spki.extend([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00]);
    spki.extend([0x03, 0x81, 0x8d, 0x00]);
    spki.extend(&rsa_public_key);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&spki)
    );
    assert_eq!(
        CosignKey::from_pem("r", &pem).unwrap_err().to_string(),
        "cosign public key \"r\": RSA key has 1024 bits; 2048 to 8192 are supported"
    );
}
