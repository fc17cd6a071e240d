//! What a repository's published trust data says to a client, in the terms `docker trust
//! inspect` uses: who signed which tag (and for which digest), the signers (delegations),
//! and the administrative keys. Everything here comes from `wharf_tuf::verify_repository`,
//! the walk a notary/docker client does (timestamp → snapshot → the files it names, each
//! checked against the keys its parent declares, delegations only inside their `paths`),
//! never from the stored files directly: a stored file a client would not accept signs
//! nothing here either.

use chrono::{DateTime, Utc};
use wharf_tuf::metadata::{ROOT, TARGETS};
use wharf_tuf::{Files, IgnoreReason, TrustedTargets, VerifyError, verify_repository};

/// docker's name for signatures made with the repository (`targets`) key.
pub const REPO_ADMIN: &str = "Repo Admin";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustOverview {
    /// Whether the repository has any trust data at all.
    pub initialized: bool,
    /// Why a client would refuse the repository's trust data as a whole
    /// ("Trust data does not verify: …"); then no tag is signed and no key is shown.
    pub problem: Option<String>,
    /// Root key IDs as root.json lists them (for x509 keys, the certificate's ID — what
    /// `docker trust inspect` prints as "Root Key").
    pub root_key_ids: Vec<String>,
    /// Keys of the `targets` role ("Repository Key" in docker).
    pub repository_key_ids: Vec<String>,
    /// Delegations declared by files that verified.
    pub signers: Vec<SignerView>,
    /// Tag → what clients accept for it. Only tags some verified role lists inside its
    /// paths.
    pub signed_tags: std::collections::BTreeMap<String, TagTrust>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerView {
    pub name: String,
    pub key_ids: Vec<String>,
    pub threshold: i64,
    /// Why clients ignore what this signer signed (too few valid signatures by its keys,
    /// expired), when they do.
    pub ignored: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTrust {
    /// What `docker pull <repo>:<tag>` resolves the tag to: `targets/releases` first,
    /// then `targets` (see `TrustedTargets::pull_target`). `None`: docker refuses the
    /// tag ("No trust data for <tag>"), e.g. when only a signer's own role lists it.
    pub pull: Option<TagSignature>,
    /// Every role validly listing the tag, `targets` first then breadth first.
    pub signatures: Vec<TagSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSignature {
    pub signer: String,
    /// `sha256:<hex>` the signature vouches for (compare with the tag's current digest).
    pub digest: Option<String>,
}

/// Display name of a targets role: the delegation's last component, as docker names
/// signers. `targets/releases` (which every `docker trust signer add` also joins) stays
/// "releases": it is signed with delegates' keys, so calling it "Repo Admin" would lie.
pub fn signer_name(role: &str) -> String {
    if role == TARGETS {
        REPO_ADMIN.to_owned()
    } else {
        role.strip_prefix("targets/").unwrap_or(role).to_owned()
    }
}

/// Verify `files` as a client would. `guns` are the names the repository is reachable
/// under (one per server name): a root certificate names exactly one of them, and clients
/// using that name accept the data, so the first that verifies is the view.
pub fn verify(guns: &[String], files: &Files, now: DateTime<Utc>) -> Result<TrustedTargets, VerifyError> {
    let mut first_error = None;
    for gun in guns {
        match verify_repository(gun, files, now) {
            Ok(view) => return Ok(view),
            // Only the root check depends on the name; past it, every name fails alike.
            Err(e) if e.role() != Some(ROOT) => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(VerifyError::NoTrustData))
}

/// Summarise the verified view (or the failure) of one repository.
pub fn overview(verified: Result<TrustedTargets, VerifyError>) -> TrustOverview {
    let view = match verified {
        Ok(view) => view,
        Err(VerifyError::NoTrustData) => return TrustOverview::default(),
        Err(e) => {
            return TrustOverview {
                initialized: true,
                problem: Some(format!("Trust data does not verify: {e}")),
                ..Default::default()
            };
        }
    };
    let key_ids = |role: &str| -> Vec<String> {
        view.root
            .roles
            .get(role)
            .map(|rk| rk.keyids.clone())
            .unwrap_or_default()
    };
    // A signer that has not signed anything yet is not a problem worth flagging.
    let ignored = |role: &str| {
        view.ignored
            .iter()
            .find(|i| i.role == role && i.reason != IgnoreReason::NotPublished)
            .map(|i| i.reason.to_string())
    };
    let mut signers: Vec<SignerView> = view
        .roles
        .iter()
        .flat_map(|r| &r.delegations)
        .map(|d| SignerView {
            name: signer_name(&d.name),
            key_ids: d.keyids.clone(),
            threshold: d.threshold,
            ignored: ignored(&d.name),
        })
        .collect();
    signers.sort_by(|a, b| a.name.cmp(&b.name));
    let signature = |role: &str, t: &wharf_tuf::TrustedTarget| TagSignature {
        signer: signer_name(role),
        digest: t.digest(),
    };
    let signed_tags = view
        .names()
        .into_iter()
        .map(|tag| {
            let trust = TagTrust {
                pull: view.pull_target(tag).map(|(r, t)| signature(&r.name, t)),
                signatures: view
                    .signatures(tag)
                    .into_iter()
                    .map(|(r, t)| signature(&r.name, t))
                    .collect(),
            };
            (tag.to_owned(), trust)
        })
        .collect();
    TrustOverview {
        initialized: true,
        problem: None,
        root_key_ids: key_ids(ROOT),
        repository_key_ids: key_ids(TARGETS),
        signers,
        signed_tags,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::TimeZone as _;
    use serde_json::{Value, json};
    use wharf_tuf::keys::pem_encode;
    use wharf_tuf::metadata::format_go_time;
    use wharf_tuf::update::sign_and_encode;
    use wharf_tuf::{CertSigner, PrivateKey, PublicKey, Signer};

    use super::*;

    /// The captured docker vectors, vendored at the top of the repository
    /// (`testdata/README.md` says where they came from).
    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/notary/docker");
    const GUN_APP: &str = "localhost:5005/research/app";

    /// Every captured metadata file of `localhost:5005/research/app` (all versions, as the
    /// server stores them), with `timestamp` current.
    fn captured(timestamp: &str) -> Files {
        let dir = Path::new(FIXTURES);
        let mut files = Files::new(std::fs::read(dir.join(timestamp)).unwrap());
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            // D11 is another repository.
            if !name.ends_with(".json") || name.contains("-GET-timestamp") || name.contains("-D11-") {
                continue;
            }
            let (_, rest) = name
                .split_once("-GET-")
                .or_else(|| name.split_once("-POST-"))
                .unwrap();
            let stem = rest.strip_suffix(".json").unwrap().replace("%2F", "/");
            let role = match stem.rsplit_once('.') {
                Some((role, hex)) if hex.len() == 64 => role.to_owned(),
                _ => stem,
            };
            files.add(&role, std::fs::read(dir.join(&name)).unwrap());
        }
        files
    }

    fn capture_time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
    }

    fn sig(signer: &str, hex: &str) -> TagSignature {
        TagSignature {
            signer: signer.into(),
            digest: Some(format!("sha256:{hex}")),
        }
    }

    const V1: &str = "349c856e596cb464086930b968340609d64efc967a4504580c3b33dc5d8c2bbf";
    const V2: &str = "33c0d4e7b0d0036f7ec8861c2b3a16476073478584d8c037fa4fb2df3535fa6a";

    #[test]
    fn no_trust_data() {
        assert_eq!(overview(Err(VerifyError::NoTrustData)), TrustOverview::default());
        let o = overview(verify(&[GUN_APP.into()], &Files::default(), capture_time()));
        assert!(!o.initialized);
    }

    #[test]
    fn signer_names_follow_docker() {
        assert_eq!(signer_name("targets"), REPO_ADMIN);
        assert_eq!(signer_name("targets/releases"), "releases");
        assert_eq!(signer_name("targets/alice"), "alice");
    }

    /// shared/fixtures/notary/cli-output/seqD.out, D09: `docker trust inspect --pretty` printed
    /// v1 signed by alice (349c…), v2 by the repository key (33c0…), signer alice
    /// (ee23c50507e2), and these administrative keys.
    #[test]
    fn captured_repository_matches_docker_trust_inspect() {
        let guns = ["reg.example.com/research/app".to_owned(), GUN_APP.to_owned()];
        let files = captured("292-D09-trust-inspect-pretty-GET-timestamp.json");
        let o = overview(verify(&guns, &files, capture_time()));
        assert_eq!(o.problem, None);
        assert_eq!(
            o.root_key_ids,
            ["3e9569f1fa29652ccb2a7e8c83f20d3ff678d10277fb7e51d6183c22cb3268aa"]
        );
        assert_eq!(
            o.repository_key_ids,
            ["966a8ca9c560437a0d782225f806d16cd9aaa2b48d7a3c89a83ca86fc9b3c334"]
        );
        assert_eq!(o.signed_tags.keys().collect::<Vec<_>>(), ["v1", "v2"]);
        let v1 = &o.signed_tags["v1"];
        assert_eq!(v1.pull, Some(sig("releases", V1)));
        assert_eq!(
            v1.signatures,
            [sig(REPO_ADMIN, V1), sig("alice", V1), sig("releases", V1)]
        );
        let v2 = &o.signed_tags["v2"];
        assert_eq!(v2.pull, Some(sig(REPO_ADMIN, V2)));
        assert_eq!(v2.signatures, [sig(REPO_ADMIN, V2)]);
        let names: Vec<&str> = o.signers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["alice", "releases"]);
        assert!(o.signers[0].key_ids[0].starts_with("ee23c50507e2"));
        assert!(o.signers.iter().all(|s| s.ignored.is_none()));
    }

    /// seqD.out, D05: before any signer existed. Later files (targets v4 declaring
    /// alice and releases, their delegation files) are stored too, but the timestamp of
    /// that moment names targets v3: reading the newest file of each role showed v1
    /// "signed by alice".
    #[test]
    fn only_the_published_versions_count() {
        let files = captured("269-D05-trust-inspect-GET-timestamp.json");
        let o = overview(verify(&[GUN_APP.into()], &files, capture_time()));
        assert_eq!(o.signers, []);
        assert_eq!(o.signed_tags["v1"].signatures, [sig(REPO_ADMIN, V1)]);
        assert_eq!(o.signed_tags["v2"].signatures, [sig(REPO_ADMIN, V2)]);
    }

    #[test]
    fn unverifiable_data_signs_nothing() {
        let files = captured("292-D09-trust-inspect-pretty-GET-timestamp.json");
        // Not the GUN the root certificate names.
        let o = overview(verify(
            &["localhost:5005/research/other".into()],
            &files,
            capture_time(),
        ));
        assert!(o.initialized);
        assert!(
            o.problem
                .as_deref()
                .is_some_and(|p| p.starts_with("Trust data does not verify: root: ")),
            "{:?}",
            o.problem
        );
        assert!(o.signed_tags.is_empty() && o.signers.is_empty() && o.root_key_ids.is_empty());
        // A timestamp past its expiry (the server re-signs on read; one it could not
        // re-sign is what clients refuse).
        let later = Utc.with_ymd_and_hms(2026, 12, 8, 0, 0, 0).unwrap();
        let o = overview(verify(&[GUN_APP.into()], &files, later));
        assert_eq!(
            o.problem.as_deref(),
            Some("Trust data does not verify: timestamp: timestamp expired at Mon Dec 7 16:36:14 UTC 2026")
        );
    }

    // ---- Through the service: uploads as a docker client makes them. ------------------

    const REPO: &str = "team/app";
    const GUN: &str = "reg.example.com/team/app";

    /// An `ecdsa-x509` root key whose self-signed certificate names `cn`, as docker
    /// makes them.
    fn root_signer(cn: &str) -> CertSigner {
        use aws_lc_rs::encoding::AsBigEndian as _;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let cert = params.self_signed(&key).unwrap();
        let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
        )
        .unwrap();
        let scalar = pkcs8.private_key().as_be_bytes().unwrap();
        CertSigner {
            key: PrivateKey::from_raw("ecdsa", scalar.as_ref()).unwrap(),
            cert_key: PublicKey::new("ecdsa-x509", pem_encode("CERTIFICATE", cert.der()).into_bytes()),
        }
    }

    fn target(seed: u8) -> Value {
        use base64::Engine as _;
        json!({"hashes": {"sha256": base64::engine::general_purpose::STANDARD.encode([seed; 32])}, "length": 523})
    }

    fn digest(seed: u8) -> Option<String> {
        Some(format!("sha256:{}", hex::encode([seed; 32])))
    }

    fn targets_file(
        version: i64,
        targets: Value,
        delegations: &[(&str, &[&PublicKey])],
        signer: &dyn Signer,
    ) -> Vec<u8> {
        let mut keys = serde_json::Map::new();
        let mut roles = Vec::new();
        for (name, ks) in delegations {
            for k in *ks {
                keys.insert(k.key_id(), k.to_value());
            }
            let ids: Vec<String> = ks.iter().map(|k| k.key_id()).collect();
            roles.push(json!({"keyids": ids, "name": name, "paths": [""], "threshold": 1}));
        }
        let expires = format_go_time(Utc::now() + chrono::Duration::days(365));
        sign_and_encode(
            &json!({"_type": "Targets", "delegations": {"keys": keys, "roles": roles},
                    "expires": expires, "targets": targets, "version": version}),
            &[signer],
        )
        .unwrap()
    }

    fn multipart(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (role, bytes) in parts {
            body.extend_from_slice(
                format!("--B\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{role}\"\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--B--\r\n");
        body
    }

    async fn publish(svc: &super::super::TrustService, parts: &[(&str, &[u8])]) {
        let me = crate::services::access::Actor {
            name: "me".into(),
            from: None,
        };
        svc.update(
            REPO,
            GUN,
            &me,
            "multipart/form-data; boundary=B",
            &multipart(parts),
        )
        .await
        .unwrap();
    }

    /// `docker trust signer remove alice`: her entry leaves `targets` and her key leaves
    /// `targets/releases`. Her files stay stored and the snapshot still names them, but
    /// what she alone signed is no longer signed for any client.
    #[tokio::test]
    async fn a_removed_signer_signs_nothing() {
        let (_d, svc) = super::super::tests::service(true).await;
        let server_key = |role: &'static str| {
            let svc = &svc;
            async move {
                let body = svc.get_key(REPO, role).await.unwrap();
                PublicKey::from_value(&serde_json::from_slice(&body).unwrap()).unwrap()
            }
        };
        let (timestamp, snapshot) = (server_key("timestamp").await, server_key("snapshot").await);
        let root_key = root_signer(GUN);
        let targets_key = PrivateKey::generate_p256().unwrap();
        let alice = PrivateKey::generate_p256().unwrap();
        let bob = PrivateKey::generate_p256().unwrap();
        let mut keys = serde_json::Map::new();
        for k in [
            root_key.public_key(),
            targets_key.public_key(),
            &snapshot,
            &timestamp,
        ] {
            keys.insert(k.key_id(), k.to_value());
        }
        let role = |k: &PublicKey| json!({"keyids": [k.key_id()], "threshold": 1});
        let root = sign_and_encode(
            &json!({"_type": "Root", "consistent_snapshot": false,
                    "expires": format_go_time(Utc::now() + chrono::Duration::days(3650)), "keys": keys,
                    "roles": {"root": role(root_key.public_key()), "targets": role(targets_key.public_key()),
                              "snapshot": role(&snapshot), "timestamp": role(&timestamp)},
                    "version": 1}),
            &[&root_key],
        )
        .unwrap();
        let (ak, bk) = (alice.public_key(), bob.public_key());
        let targets = targets_file(
            2,
            json!({"v1": target(1)}),
            &[("targets/alice", &[ak]), ("targets/releases", &[ak, bk])],
            &targets_key,
        );
        publish(&svc, &[("root", &root), ("targets", &targets)]).await;
        let signed = targets_file(1, json!({"v2": target(2)}), &[], &alice);
        publish(&svc, &[("targets/alice", &signed), ("targets/releases", &signed)]).await;

        let o = svc.overview(REPO).await.unwrap();
        assert_eq!(o.problem, None);
        assert_eq!(o.signed_tags["v1"].pull.as_ref().unwrap().digest, digest(1));
        let v2 = &o.signed_tags["v2"];
        assert_eq!(v2.pull.as_ref().map(|p| p.signer.as_str()), Some("releases"));
        assert_eq!(
            v2.signatures
                .iter()
                .map(|s| s.signer.as_str())
                .collect::<Vec<_>>(),
            ["alice", "releases"]
        );

        let targets = targets_file(
            3,
            json!({"v1": target(1)}),
            &[("targets/releases", &[bk])],
            &targets_key,
        );
        publish(&svc, &[("targets", &targets)]).await;
        let o = svc.overview(REPO).await.unwrap();
        assert_eq!(o.problem, None);
        assert!(!o.signed_tags.contains_key("v2"), "{:?}", o.signed_tags);
        assert_eq!(o.signed_tags["v1"].pull.as_ref().unwrap().signer, REPO_ADMIN);
        assert_eq!(
            o.signers,
            [SignerView {
                name: "releases".into(),
                key_ids: vec![bk.key_id()],
                threshold: 1,
                ignored: Some("valid signatures did not meet threshold for targets/releases".into()),
            }]
        );
    }
}
