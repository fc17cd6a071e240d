//! What a repository's published trust data says, in the terms `docker trust inspect`
//! uses: who signed which tag (and for which digest), the signers (delegations), and the
//! administrative keys. Read-only; validation happened when the data was uploaded.

use std::collections::{BTreeMap, BTreeSet};

use wharf_store::TrustFile;
use wharf_tuf::metadata::{ROOT, Root, Signed, TARGETS, Targets};

/// docker's name for signatures made with the repository (`targets`) key.
pub const REPO_ADMIN: &str = "Repo Admin";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustOverview {
    /// Whether the repository has any trust data at all.
    pub initialized: bool,
    /// Root key IDs as root.json lists them (for x509 keys, the certificate's ID — what
    /// `docker trust inspect` prints as "Root Key").
    pub root_key_ids: Vec<String>,
    /// Keys of the `targets` role ("Repository Key" in docker).
    pub repository_key_ids: Vec<String>,
    pub signers: Vec<SignerView>,
    /// Tag → signatures over it, one per signing role.
    pub signed_tags: BTreeMap<String, Vec<TagSignature>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerView {
    pub name: String,
    pub key_ids: Vec<String>,
    pub threshold: i64,
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

/// Summarise the current files of one repository (`trust_current`).
pub fn overview(files: &[TrustFile]) -> TrustOverview {
    let by_role: BTreeMap<&str, &TrustFile> = files.iter().map(|f| (f.role.as_str(), f)).collect();
    let mut out = TrustOverview {
        initialized: by_role.contains_key(ROOT),
        ..Default::default()
    };
    if let Some(root) = by_role
        .get(ROOT)
        .and_then(|f| Signed::<Root>::parse(f.content.clone()).ok())
    {
        let key_ids = |role: &str| -> Vec<String> {
            root.signed
                .roles
                .get(role)
                .map(|rk| rk.keyids.clone())
                .unwrap_or_default()
        };
        out.root_key_ids = key_ids(ROOT);
        out.repository_key_ids = key_ids(TARGETS);
    }
    // Walk targets and the delegations each reachable file declares, so a delegation
    // file left behind by a removed signer does not count.
    let mut queue = vec![TARGETS.to_owned()];
    let mut seen = BTreeSet::new();
    while let Some(role) = queue.pop() {
        if !seen.insert(role.clone()) {
            continue;
        }
        let Some(parsed) = by_role
            .get(role.as_str())
            .and_then(|f| Signed::<Targets>::parse(f.content.clone()).ok())
        else {
            continue;
        };
        for d in &parsed.signed.delegations.roles {
            out.signers.push(SignerView {
                name: signer_name(&d.name),
                key_ids: d.keyids.clone(),
                threshold: d.threshold,
            });
            queue.push(d.name.clone());
        }
        for (tag, meta) in &parsed.signed.targets {
            let signature = TagSignature {
                signer: signer_name(&role),
                digest: meta
                    .hashes
                    .get("sha256")
                    .map(|h| format!("sha256:{}", hex::encode(h))),
            };
            let list = out.signed_tags.entry(tag.clone()).or_default();
            if !list.contains(&signature) {
                list.push(signature);
            }
        }
    }
    out.signers.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(role: &str, content: &[u8]) -> TrustFile {
        TrustFile {
            role: role.into(),
            version: 1,
            sha256: String::new(),
            content: content.to_vec(),
            created_at: 0,
        }
    }

    fn fixture(path: &str) -> Vec<u8> {
        let base = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/notary/");
        std::fs::read(format!("{base}{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn no_files_means_no_trust_data() {
        let o = overview(&[]);
        assert!(!o.initialized);
        assert!(o.signed_tags.is_empty() && o.signers.is_empty());
    }

    #[test]
    fn signer_names_follow_docker() {
        assert_eq!(signer_name("targets"), REPO_ADMIN);
        assert_eq!(signer_name("targets/releases"), "releases");
        assert_eq!(signer_name("targets/alice"), "alice");
    }

    #[test]
    fn delegation_targets_and_orphans() {
        let targets = br#"{"signed":{"_type":"Targets","delegations":{"keys":{"k1":{"keytype":"ecdsa","keyval":{"private":null,"public":"AA=="}}},"roles":[{"name":"targets/alice","keyids":["k1"],"threshold":1,"paths":[""]}]},"expires":"2030-01-01T00:00:00Z","targets":{"v1":{"hashes":{"sha256":"AAEC"},"length":10}},"version":2},"signatures":[]}"#;
        let alice = br#"{"signed":{"_type":"Targets","delegations":{"keys":{},"roles":[]},"expires":"2030-01-01T00:00:00Z","targets":{"v1":{"hashes":{"sha256":"AAEC"},"length":10},"v2":{"hashes":{"sha256":"AwQF"},"length":10}},"version":1},"signatures":[]}"#;
        let orphan = br#"{"signed":{"_type":"Targets","delegations":{"keys":{},"roles":[]},"expires":"2030-01-01T00:00:00Z","targets":{"v9":{"hashes":{"sha256":"AAEC"},"length":10}},"version":1},"signatures":[]}"#;
        let o = overview(&[
            file("targets", targets),
            file("targets/alice", alice),
            file("targets/bob", orphan),
        ]);
        assert_eq!(
            o.signers,
            vec![SignerView {
                name: "alice".into(),
                key_ids: vec!["k1".into()],
                threshold: 1
            }]
        );
        let signers =
            |tag: &str| -> Vec<String> { o.signed_tags[tag].iter().map(|s| s.signer.clone()).collect() };
        assert_eq!(signers("v1"), vec![REPO_ADMIN.to_string(), "alice".into()]);
        assert_eq!(signers("v2"), vec!["alice".to_string()]);
        assert_eq!(o.signed_tags["v2"][0].digest.as_deref(), Some("sha256:030405"));
        assert!(
            !o.signed_tags.contains_key("v9"),
            "orphaned delegation file counted"
        );
    }

    /// The IDs `docker trust inspect --pretty` printed for this captured repository
    /// (fixtures/notary/cli-output/seqD.out, "Administrative keys").
    #[test]
    fn administrative_keys_match_docker_trust_inspect() {
        let o = overview(&[
            file(
                "root",
                &fixture("docker/246-D01-docker-push-first-POST-root.json"),
            ),
            file(
                "targets",
                &fixture("docker/246-D01-docker-push-first-POST-targets.json"),
            ),
        ]);
        assert!(o.initialized);
        assert_eq!(
            o.root_key_ids,
            vec!["3e9569f1fa29652ccb2a7e8c83f20d3ff678d10277fb7e51d6183c22cb3268aa".to_string()]
        );
        assert_eq!(
            o.repository_key_ids,
            vec!["966a8ca9c560437a0d782225f806d16cd9aaa2b48d7a3c89a83ca86fc9b3c334".to_string()]
        );
        let v1 = &o.signed_tags["v1"];
        assert_eq!(v1.len(), 1);
        assert_eq!(v1[0].signer, REPO_ADMIN);
        assert!(
            v1[0]
                .digest
                .as_deref()
                .is_some_and(|d| d.starts_with("sha256:") && d.len() == 71)
        );
    }
}
