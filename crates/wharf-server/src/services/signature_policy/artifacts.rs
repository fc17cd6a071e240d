//! Which manifests are signatures themselves. They stay readable under `enforce` (a client
//! verifying an image must fetch its signatures), so the test must not let an image
//! through: a manifest counts only when every layer is a signature envelope type, which no
//! container runtime unpacks as a filesystem layer. A tag name (`sha256-….sig`) or an
//! `artifactType` alone proves nothing — a pusher chooses both.

use serde::Deserialize;
use wharf_store::ManifestRecord;

/// cosign's simple-signing payload layer (cosign, skopeo `--sign-by-sigstore-private-key`).
pub const COSIGN_SIGNATURE_LAYER: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Notation signature envelopes.
pub const NOTATION_JWS_LAYER: &str = "application/jose+json";
pub const NOTATION_COSE_LAYER: &str = "application/cose";
/// in-toto attestations as cosign stores them (`.att`): signed statements, not images.
const DSSE_LAYER: &str = "application/vnd.dsse.envelope.v1+json";
/// The artifact type of Notation signature manifests (referrers API filter).
pub const NOTATION_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";

const SIGNATURE_LAYERS: [&str; 4] = [
    COSIGN_SIGNATURE_LAYER,
    NOTATION_JWS_LAYER,
    NOTATION_COSE_LAYER,
    DSSE_LAYER,
];

#[derive(Deserialize)]
struct Layers {
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    #[serde(rename = "mediaType", default)]
    media_type: String,
}

/// Whether `record` is a signature artifact (see the module comment).
pub fn is_signature_artifact(record: &ManifestRecord) -> bool {
    let Ok(doc) = serde_json::from_slice::<Layers>(&record.content) else {
        return false;
    };
    doc.manifests.is_none()
        && !doc.layers.is_empty()
        && doc
            .layers
            .iter()
            .all(|l| SIGNATURE_LAYERS.contains(&l.media_type.as_str()))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use wharf_store::Digest;

    use super::*;

    fn record(content: &str) -> ManifestRecord {
        ManifestRecord {
            digest: Digest::of(content.as_bytes()),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            content: Bytes::from(content.to_owned()),
            subject: None,
            artifact_type: None,
            annotations: None,
            created_at: 0,
        }
    }

    #[test]
    fn only_manifests_made_of_signature_layers_count() {
        let sig = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json"},
            "layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json"}]}"#;
        assert!(is_signature_artifact(&record(sig)));
        let notation = r#"{"schemaVersion":2,"artifactType":"application/vnd.cncf.notary.signature",
            "layers":[{"mediaType":"application/jose+json"}]}"#;
        assert!(is_signature_artifact(&record(notation)));
        // An image dressed up as a signature (artifactType, a .sig tag) is still an image.
        let disguised = r#"{"schemaVersion":2,"artifactType":"application/vnd.cncf.notary.signature",
            "layers":[{"mediaType":"application/jose+json"},
                      {"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip"}]}"#;
        assert!(!is_signature_artifact(&record(disguised)));
        assert!(!is_signature_artifact(&record(
            r#"{"schemaVersion":2,"layers":[]}"#
        )));
        let index = r#"{"schemaVersion":2,"manifests":[],
            "layers":[{"mediaType":"application/jose+json"}]}"#;
        assert!(!is_signature_artifact(&record(index)));
        assert!(!is_signature_artifact(&record("not json")));
    }
}
