//! Notation verification against the Notary Project's own published test
//! data (`testdata/notation/`, see its README for sources): signatures the
//! notation CLI made in its e2e suite, and notation-go's test envelopes.
//!
//! Times: every test passes its own `now`. The e2e certificate `e2e.crt` is
//! valid 2022-12-19 to 2122-12-19, so the valid cases use 2025-06-01; the
//! expired-certificate case's leaf was valid only 2023-06-26T06:10Z to
//! 2023-06-27T06:10Z (signed at 06:07:26Z), and is checked on both sides of that end.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use wharf_signatures::notation::{
    AcceptedNotation, EnvelopeRef, MEDIA_TYPE_COSE, MEDIA_TYPE_JWS, NotationError, NotationPolicy,
    PolicyError, SigningScheme, TargetArtifact, TrustStoreType, TrustedIdentity, TrustedRoot,
    signature_envelope, verify,
};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/notation");

/// The e2e image manifest every e2e signature signs.
const E2E_IMAGE: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";
/// The alpine manifest notation-go's `internal/testdata` signatures sign.
const ALPINE_IMAGE: &str = "sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0";
/// The descriptor notation-go's mock envelopes sign.
const MOCK_IMAGE: &str = "sha256:60043cf45eaebc4c0867fea485a039b598f52fd09fd5b07b0b2d2f88fad9d74e";
const OTHER_IMAGE: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

const E2E_SUBJECT: &str = "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US";
const E2E_IDENTITY: &str = "x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=e2e";

fn read(path: &str) -> Vec<u8> {
    let full = format!("{TESTDATA}/{path}");
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn text(path: &str) -> String {
    String::from_utf8(read(path)).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn now() -> DateTime<Utc> {
    at("2025-06-01T00:00:00Z")
}

fn policy(roots: &[(&str, &str)], identities: &[&str]) -> NotationPolicy {
    let pems: Vec<(String, String)> = roots
        .iter()
        .map(|(name, path)| (name.to_string(), text(path)))
        .collect();
    let pairs: Vec<(&str, &str)> = pems.iter().map(|(n, p)| (n.as_str(), p.as_str())).collect();
    NotationPolicy::from_pem(&pairs, identities).unwrap()
}

fn e2e_policy(identity: &str) -> NotationPolicy {
    policy(&[("e2e", "notation-e2e/localkeys/e2e.crt")], &[identity])
}

/// Follows an e2e OCI layout from its signature manifest to the envelope,
/// as the registry would: manifest → [`signature_envelope`] → blob.
fn e2e_envelope(layout: &str, manifest_digest: &str) -> (EnvelopeRef, Vec<u8>) {
    let blob = |digest: &str| {
        read(&format!(
            "notation-e2e/{layout}/blobs/sha256/{}",
            digest.strip_prefix("sha256:").unwrap()
        ))
    };
    let r = signature_envelope(&blob(manifest_digest)).unwrap();
    let envelope = blob(&r.digest);
    assert_eq!(envelope.len() as u64, r.size);
    (r, envelope)
}

fn valid_e2e() -> (EnvelopeRef, Vec<u8>) {
    e2e_envelope(
        "e2e-valid-signature",
        "sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f",
    )
}

#[test]
fn signature_manifest_names_the_envelope() {
    let (r, _) = valid_e2e();
    assert_eq!(
        r,
        EnvelopeRef {
            media_type: MEDIA_TYPE_JWS.into(),
            digest: "sha256:c9af07e038b2b1a463e648986ad7273157511ffeba0b689f33e5472bae471f50".into(),
            size: 2070,
            subject_digest: E2E_IMAGE.into(),
        }
    );
}

#[test]
fn captured_signature_verifies_against_its_root_with_identity_and_wildcard() {
    let (r, envelope) = valid_e2e();
    for identity in [E2E_IDENTITY, "x509.subject: C=US, ST=WA, O=Notary", "*"] {
        let accepted = verify(E2E_IMAGE, &r.media_type, &envelope, &e2e_policy(identity), now());
        assert_eq!(
            accepted,
            Ok(AcceptedNotation {
                subject_dn: E2E_SUBJECT.into(),
                root_name: "e2e".into(),
                signing_scheme: SigningScheme::X509,
                signing_time: at("2023-06-27T05:30:33Z"),
                expiry: None,
                target: TargetArtifact {
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    digest: E2E_IMAGE.into(),
                    size: 517,
                },
            }),
            "{identity}"
        );
    }
}

#[test]
fn wrong_root_is_refused() {
    let (r, envelope) = valid_e2e();
    let other = policy(
        &[("notation-test", "notation-go/truststore/NotationTestRoot.pem")],
        &["*"],
    );
    assert_eq!(
        verify(E2E_IMAGE, &r.media_type, &envelope, &other, now()),
        Err(NotationError::UntrustedChain)
    );
}

#[test]
fn identity_mismatch_is_refused() {
    let (r, envelope) = valid_e2e();
    for identity in [
        "x509.subject: C=US, ST=WA, O=Notary, CN=someone-else",
        "x509.subject: C=US, ST=WA, O=notary",
        "x509.subject: C=US, ST=WA, O=Notary, OU=builds",
    ] {
        assert_eq!(
            verify(E2E_IMAGE, &r.media_type, &envelope, &e2e_policy(identity), now()),
            Err(NotationError::UntrustedIdentity {
                subject: E2E_SUBJECT.into()
            }),
            "{identity}"
        );
    }
}

#[test]
fn wrong_digest_is_refused() {
    let (r, envelope) = valid_e2e();
    assert_eq!(
        verify(OTHER_IMAGE, &r.media_type, &envelope, &e2e_policy("*"), now()),
        Err(NotationError::DigestMismatch {
            signed: E2E_IMAGE.into(),
            expected: OTHER_IMAGE.into(),
        })
    );
    assert_eq!(
        verify("sha256:B8479", &r.media_type, &envelope, &e2e_policy("*"), now()),
        Err(NotationError::BadImageDigest("sha256:B8479".into()))
    );
}

/// Rewrites one member of a JWS envelope's JSON.
fn with_member(envelope: &[u8], member: &str, edit: impl FnOnce(&str) -> String) -> Vec<u8> {
    let mut doc: serde_json::Value = serde_json::from_slice(envelope).unwrap();
    let old = doc[member].as_str().unwrap().to_owned();
    doc[member] = serde_json::Value::String(edit(&old));
    serde_json::to_vec(&doc).unwrap()
}

/// Flips the low bit of byte `index` of a base64url member's decoded bytes.
fn flip(b64: &str, index: usize) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(b64).unwrap();
    bytes[index] ^= 1;
    URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn tampered_envelope_is_refused() {
    let (r, envelope) = valid_e2e();
    let p = e2e_policy("*");
    // One byte of the payload: a digit of the signed digest.
    let payload = with_member(&envelope, "payload", |p| flip(p, 60));
    // One byte of the signature.
    let signature = with_member(&envelope, "signature", |s| flip(s, 100));
    // One byte of the protected header: a digit of the signing time.
    let protected = with_member(&envelope, "protected", |s| {
        let header = URL_SAFE_NO_PAD.decode(s).unwrap();
        let at = header.windows(8).position(|w| w == b"13:30:33").unwrap();
        flip(s, at + 1)
    });
    for tampered in [payload, signature, protected] {
        assert_eq!(
            verify(E2E_IMAGE, &r.media_type, &tampered, &p, now()),
            Err(NotationError::SignatureInvalid)
        );
    }
    // notation-go's published invalid envelope: the valid one with "=" added
    // to the payload. JWS base64url has no padding, so (as for notation) the
    // envelope does not even parse.
    let root = policy(
        &[("notation-test", "notation-go/truststore/NotationTestRoot.pem")],
        &["*"],
    );
    assert_eq!(
        verify(
            MOCK_IMAGE,
            MEDIA_TYPE_JWS,
            &read("notation-go/mock/ca_invalid_sig_env.json"),
            &root,
            now()
        ),
        Err(NotationError::MalformedEnvelope(
            "payload is not unpadded base64url: Invalid padding".into()
        ))
    );
}

#[test]
fn expired_certificate_is_refused() {
    let (r, envelope) = e2e_envelope(
        "e2e-with-expired-cert",
        "sha256:b06e392c2d88206b492dbaf5381800578611eb24f86587bc7717cd3b736e5da7",
    );
    let p = policy(
        &[("expired", "notation-e2e/localkeys/expired_e2e.crt")],
        &["x509.subject: C=AU, ST=Some-State, O=Internet Widgits Pty Ltd"],
    );
    let subject = "C=AU,ST=Some-State,O=Internet Widgits Pty Ltd";
    // While it was valid, the signature verifies...
    let before = verify(
        E2E_IMAGE,
        &r.media_type,
        &envelope,
        &p,
        at("2023-06-27T06:09:00Z"),
    );
    assert_eq!(before.unwrap().subject_dn, subject);
    // ...and once the certificate has expired, without an authentic
    // timestamp, it does not.
    assert_eq!(
        verify(E2E_IMAGE, &r.media_type, &envelope, &p, now()),
        Err(NotationError::CertificateExpired {
            subject: subject.into(),
            not_after: "2023-06-27T06:10:00Z".into(),
        })
    );
}

#[test]
fn expired_signature_is_refused() {
    let (r, envelope) = e2e_envelope(
        "e2e-expired-signature",
        "sha256:3829708badae8e4b14e1adbc2fac7182bc0c27c5b6f54153e8b68a12eab10a1e",
    );
    let p = e2e_policy(E2E_IDENTITY);
    let ok = verify(
        E2E_IMAGE,
        &r.media_type,
        &envelope,
        &p,
        at("2023-06-27T05:21:00Z"),
    )
    .unwrap();
    assert_eq!(ok.expiry, Some(at("2023-06-27T05:21:21Z")));
    for t in ["2023-06-27T05:21:21Z", "2025-06-01T00:00:00Z"] {
        assert_eq!(
            verify(E2E_IMAGE, &r.media_type, &envelope, &p, at(t)),
            Err(NotationError::SignatureExpired("2023-06-27T05:21:21Z".into())),
            "{t}"
        );
    }
}

#[test]
fn cose_and_jws_from_notation_go_verify() {
    let p = policy(&[("alpine", "notation-go/truststore/alpine.crt")], &["*"]);
    for (media_type, file, signed_at) in [
        (
            MEDIA_TYPE_COSE,
            "notation-go/internal-testdata/cose_signature.sig",
            "2023-03-14T04:45:22Z",
        ),
        (
            MEDIA_TYPE_JWS,
            "notation-go/internal-testdata/jws_signature.sig",
            "2023-03-14T08:10:02Z",
        ),
    ] {
        let accepted = verify(ALPINE_IMAGE, media_type, &read(file), &p, now()).unwrap();
        assert_eq!(accepted.subject_dn, "CN=alpine,O=Notary,L=Seattle,ST=WA,C=US");
        assert_eq!(accepted.root_name, "alpine");
        assert_eq!(accepted.signing_time, at(signed_at), "{file}");
        assert_eq!(accepted.target.size, 481);
    }
}

#[test]
fn tampered_cose_is_refused() {
    let p = policy(&[("alpine", "notation-go/truststore/alpine.crt")], &["*"]);
    let envelope = read("notation-go/internal-testdata/cose_signature.sig");
    // The last byte is the signature's; the payload JSON sits before it.
    let mut signature = envelope.clone();
    *signature.last_mut().unwrap() ^= 1;
    let at_digest = envelope.windows(7).position(|w| w == b"sha256:").unwrap() + 7;
    let mut payload = envelope.clone();
    payload[at_digest] ^= 1;
    for tampered in [signature, payload] {
        assert_eq!(
            verify(ALPINE_IMAGE, MEDIA_TYPE_COSE, &tampered, &p, now()),
            Err(NotationError::SignatureInvalid)
        );
    }
    // The same bytes read as the other envelope type are simply malformed.
    assert!(matches!(
        verify(ALPINE_IMAGE, MEDIA_TYPE_JWS, &envelope, &p, now()),
        Err(NotationError::MalformedEnvelope(_))
    ));
}

#[test]
fn two_certificate_chain_and_signing_authority_from_notation_go() {
    let root = text("notation-go/truststore/NotationTestRoot.pem");
    let ca = NotationPolicy::from_pem(&[("notation-test", &root)], &["*"]).unwrap();
    // Leaf and root share a subject, but the leaf is signed by the root: a
    // chain of two, PS384 with an RSA-3072 leaf.
    let accepted = verify(
        MOCK_IMAGE,
        MEDIA_TYPE_JWS,
        &read("notation-go/mock/ca_valid_sig_env.json"),
        &ca,
        now(),
    )
    .unwrap();
    assert_eq!(accepted.root_name, "notation-test");
    assert_eq!(accepted.expiry, Some(at("2120-11-09T07:00:00Z")));

    assert_eq!(
        verify(
            MOCK_IMAGE,
            MEDIA_TYPE_JWS,
            &read("notation-go/mock/ca_expired_sig_env.json"),
            &ca,
            now()
        ),
        Err(NotationError::SignatureExpired("2022-07-29T23:59:00Z".into()))
    );

    // notary.x509.signingAuthority: only a signingAuthority root vouches.
    let sa_envelope = read("notation-go/mock/sa_valid_sig_env.json");
    assert_eq!(
        verify(MOCK_IMAGE, MEDIA_TYPE_JWS, &sa_envelope, &ca, now()),
        Err(NotationError::UntrustedChain)
    );
    let sa_roots = TrustedRoot::from_pem("notation-sa", TrustStoreType::SigningAuthority, &root).unwrap();
    let sa = NotationPolicy::new(sa_roots, vec![TrustedIdentity::parse("*").unwrap()]).unwrap();
    let accepted = verify(MOCK_IMAGE, MEDIA_TYPE_JWS, &sa_envelope, &sa, now()).unwrap();
    assert_eq!(accepted.signing_scheme, SigningScheme::X509SigningAuthority);
    assert_eq!(accepted.signing_time, at("2020-11-09T07:00:00Z"));
    assert_eq!(accepted.root_name, "notation-sa");

    // A signature that needs a verification plugin and an unknown critical
    // attribute cannot be fully verified here.
    assert_eq!(
        verify(
            MOCK_IMAGE,
            MEDIA_TYPE_JWS,
            &read("notation-go/mock/ca_plugin_sig_env.json"),
            &ca,
            now()
        ),
        Err(NotationError::UnknownCriticalAttribute("SomeKey".into()))
    );
}

#[test]
fn manifests_that_are_not_notation_signatures_are_refused() {
    // notation's e2e "invalid signature": a signature manifest whose layer is
    // a tar of text, not an envelope.
    let manifest = read(
        "notation-e2e/e2e-invalid-signature/blobs/sha256/321fcc674d6771dd0e5bd21e599f2df3a482de99a400fd3a3fe371221b97a9c9",
    );
    assert_eq!(
        signature_envelope(&manifest),
        Err(NotationError::UnsupportedEnvelopeType(
            "application/vnd.oci.image.layer.v1.tar".into()
        ))
    );
    // The signed image's own manifest.
    let image = read(
        "notation-e2e/e2e-valid-signature/blobs/sha256/b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
    );
    assert_eq!(
        signature_envelope(&image),
        Err(NotationError::NotASignatureManifest(
            "no artifactType, and config.mediaType is \"application/vnd.notation.config\"".into()
        ))
    );
    // The OCI 1.1 form, with artifactType.
    let modern = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "artifactType":"application/vnd.cncf.notary.signature",
        "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},
        "layers":[{"mediaType":"application/cose","digest":"sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0","size":32654}],
        "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:73c803930ea3ba1e54bc25c2bdc53edd0284c62ed651fe7b00369da519a3c333","size":16724}}"#;
    assert_eq!(signature_envelope(modern).unwrap().media_type, MEDIA_TYPE_COSE);
    let huge = String::from_utf8_lossy(modern).replace("32654", "2000000");
    assert_eq!(
        signature_envelope(huge.as_bytes()),
        Err(NotationError::EnvelopeTooLarge {
            size: 2_000_000,
            max: 1024 * 1024
        })
    );
}

#[test]
fn envelope_bounds_and_types() {
    let (_, envelope) = valid_e2e();
    let p = e2e_policy("*");
    assert_eq!(
        verify(E2E_IMAGE, "application/json", &envelope, &p, now()),
        Err(NotationError::UnsupportedEnvelopeType("application/json".into()))
    );
    let big = vec![b' '; 1024 * 1024 + 1];
    assert_eq!(
        verify(E2E_IMAGE, MEDIA_TYPE_JWS, &big, &p, now()),
        Err(NotationError::EnvelopeTooLarge {
            size: 1024 * 1024 + 1,
            max: 1024 * 1024
        })
    );
    // An alg the key does not call for is refused before the signature is
    // tried (algorithm substitution).
    let es256 = with_member(&envelope, "protected", |p| {
        let header = String::from_utf8(URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
        URL_SAFE_NO_PAD.encode(header.replace("PS256", "ES256"))
    });
    assert_eq!(
        verify(E2E_IMAGE, MEDIA_TYPE_JWS, &es256, &p, now()),
        Err(NotationError::AlgorithmMismatch {
            envelope: "ES256".into(),
            key: "PS256".into()
        })
    );
}

#[test]
fn policy_input_is_checked() {
    let e2e = text("notation-e2e/localkeys/e2e.crt");
    assert_eq!(
        NotationPolicy::from_pem(&[("broken", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")], &["*"]),
        Err(PolicyError::BadRoot {
            name: "broken".into(),
            reason: "not an X.509 certificate: Parsing Error: Der(UnexpectedTag { expected: Some(Tag(16)), actual: Tag(0) })".into()
        })
    );
    assert_eq!(
        NotationPolicy::from_pem(&[("empty", "no pem here")], &["*"]),
        Err(PolicyError::BadRoot {
            name: "empty".into(),
            reason: "no PEM CERTIFICATE block found".into()
        })
    );
    assert_eq!(
        NotationPolicy::from_pem(
            &[(
                "garbled",
                "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"
            )],
            &["*"]
        ),
        Err(PolicyError::BadRoot {
            name: "garbled".into(),
            reason: "not valid PEM: base64 decode error".into()
        })
    );
    let key = text("notation-e2e/localkeys/e2e.crt").replace("CERTIFICATE", "PRIVATE KEY");
    assert_eq!(
        NotationPolicy::from_pem(&[("key", &key)], &["*"]),
        Err(PolicyError::BadRoot {
            name: "key".into(),
            reason: "PEM block \"PRIVATE KEY\" is not a CERTIFICATE".into()
        })
    );
    assert_eq!(NotationPolicy::from_pem(&[], &["*"]), Err(PolicyError::NoRoots));
    assert_eq!(
        NotationPolicy::from_pem(&[("e2e", &e2e)], &[]),
        Err(PolicyError::NoIdentities)
    );
    assert_eq!(
        NotationPolicy::from_pem(&[("e2e", &e2e)], &["*", E2E_IDENTITY]),
        Err(PolicyError::WildcardWithOthers)
    );
    assert_eq!(
        NotationPolicy::from_pem(
            &[("e2e", &e2e)],
            &[E2E_IDENTITY, "x509.subject: C=US, ST=WA, O=Notary"]
        ),
        Err(PolicyError::OverlappingIdentities(
            "x509.subject: C=US, ST=WA, O=Notary".into(),
            E2E_IDENTITY.into()
        ))
    );
    assert_eq!(
        NotationPolicy::from_pem(&[("e2e", &e2e)], &["CN=e2e"]),
        Err(PolicyError::BadIdentity {
            identity: "CN=e2e".into(),
            reason: "expected \"*\" or \"x509.subject: <distinguished name>\"".into()
        })
    );
    let p = NotationPolicy::from_pem(&[("e2e", &e2e)], &[E2E_IDENTITY]).unwrap();
    assert_eq!(p.roots()[0].subject(), E2E_SUBJECT);
}

// --- Generated cases (testdata/notation/generated/gen.py): what the
// published data lacks — ECDSA, longer chains, PSS-signed certificates, and
// one broken certificate requirement per envelope. Certificates are valid
// 2024-01-01 to 2044-01-01, signatures made 2025-01-01T12:00:00Z.

fn generated_policy(root: &str) -> NotationPolicy {
    policy(&[("generated", &format!("generated/{root}"))], &["*"])
}

fn generated(file: &str, root: &str) -> Result<AcceptedNotation, NotationError> {
    let media_type = if file.ends_with(".cose") {
        MEDIA_TYPE_COSE
    } else {
        MEDIA_TYPE_JWS
    };
    verify(
        E2E_IMAGE,
        media_type,
        &read(&format!("generated/{file}")),
        &generated_policy(root),
        now(),
    )
}

#[test]
fn ecdsa_and_pss_chains_of_three_verify() {
    for (file, root, subject) in [
        (
            "es256.jws",
            "ec-root.pem",
            "CN=leaf ES256,O=Wharf Test,ST=WA,C=US",
        ),
        (
            "es256.cose",
            "ec-root.pem",
            "CN=leaf ES256,O=Wharf Test,ST=WA,C=US",
        ),
        (
            "es384.cose",
            "ec-root.pem",
            "CN=leaf ES384,O=Wharf Test,ST=WA,C=US",
        ),
        (
            "es512.jws",
            "ec-root.pem",
            "CN=leaf ES512,O=Wharf Test,ST=WA,C=US",
        ),
        (
            "ps512.jws",
            "rsa-root.pem",
            "CN=leaf PS512,O=Wharf Test,ST=WA,C=US",
        ),
    ] {
        let accepted = generated(file, root).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(accepted.subject_dn, subject, "{file}");
        assert_eq!(accepted.signing_time, at("2025-01-01T12:00:00Z"));
        // The other family's root does not vouch for it.
        let other = if root == "ec-root.pem" {
            "rsa-root.pem"
        } else {
            "ec-root.pem"
        };
        assert_eq!(
            generated(file, other),
            Err(NotationError::UntrustedChain),
            "{file}"
        );
    }
}

#[test]
fn broken_certificate_requirements_are_refused() {
    let requirement = |subject: &str, reason: &str| NotationError::CertificateRequirement {
        subject: subject.into(),
        reason: reason.into(),
    };
    let leaf = "CN=leaf broken,O=Wharf Test,ST=WA,C=US";
    let cases = [
        (
            "bad-leaf-ca.jws",
            requirement(leaf, "a signing certificate must not be a CA (basicConstraints CA=true)"),
        ),
        (
            "bad-leaf-serverauth.jws",
            requirement(leaf, "extendedKeyUsage must not include serverAuth"),
        ),
        (
            "bad-intermediate-no-certsign.jws",
            requirement(
                "CN=Wharf Test EC Intermediate,O=Wharf Test,ST=WA,C=US",
                "a CA certificate's keyUsage must include keyCertSign",
            ),
        ),
        (
            "bad-pathlen.jws",
            requirement(
                "CN=Wharf Test EC Intermediate,O=Wharf Test,ST=WA,C=US",
                "pathLenConstraint 0 is exceeded: 1 CA certificates below it",
            ),
        ),
        (
            "bad-order.jws",
            NotationError::InvalidChain(
                "certificate CN=leaf ES256,O=Wharf Test,ST=WA,C=US is issued by CN=Wharf Test EC Intermediate,O=Wharf Test,ST=WA,C=US, not by the next certificate CN=Wharf Test EC Root,O=Wharf Test,ST=WA,C=US".into(),
            ),
        ),
        (
            // The specification wants the root in the chain; the trust
            // store holding it is not enough.
            "bad-no-root.jws",
            NotationError::InvalidChain(
                "it must end with a self-signed root certificate, and CN=Wharf Test EC Intermediate,O=Wharf Test,ST=WA,C=US is issued by CN=Wharf Test EC Root,O=Wharf Test,ST=WA,C=US".into(),
            ),
        ),
        (
            "bad-signed-before-valid.jws",
            NotationError::NotValidAtSigningTime {
                subject: leaf.into(),
                signing_time: "2025-01-01T12:00:00Z".into(),
                not_before: "2025-06-01T00:00:00Z".into(),
                not_after: "2044-01-01T00:00:00Z".into(),
            },
        ),
        (
            "bad-plugin.cose",
            NotationError::VerificationPluginRequired("com.example.plugin".into()),
        ),
        (
            "bad-unknown-crit.jws",
            NotationError::UnknownCriticalAttribute("com.example.policy".into()),
        ),
    ];
    for (file, error) in cases {
        assert_eq!(generated(file, "ec-root.pem"), Err(error), "{file}");
    }
}
