//! What a valid manifest is: the four media types we store, their required fields, and
//! the digests they reference. Parsing never rewrites the bytes; they are stored as sent.

use serde::Deserialize;
use serde_json::{Map, Value};
use wharf_store::Digest;

use super::error::RegistryError;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Layers that live elsewhere (`urls`) and are not expected in the registry.
const FOREIGN_LAYER_TYPES: &[&str] = &[
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

pub fn is_index(media_type: &str) -> bool {
    media_type == DOCKER_LIST || media_type == OCI_INDEX
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<i64>,
    urls: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<Map<String, Value>>,
}

/// The facts about a manifest the registry needs to store and index it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedManifest {
    pub media_type: String,
    pub blobs: Vec<Digest>,
    pub manifests: Vec<Digest>,
    pub subject: Option<Digest>,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

fn invalid(msg: impl Into<String>) -> RegistryError {
    RegistryError::ManifestInvalid(msg.into())
}

fn descriptor(d: &RawDescriptor, what: &str) -> Result<Digest, RegistryError> {
    let media = d.media_type.as_deref().unwrap_or("");
    if media.is_empty() {
        return Err(invalid(format!("{what} has no mediaType")));
    }
    let digest = d
        .digest
        .as_deref()
        .ok_or_else(|| invalid(format!("{what} has no digest")))?;
    let digest = Digest::parse(digest).map_err(|e| invalid(format!("{what} digest {digest:?}: {e}")))?;
    match d.size {
        Some(s) if s >= 0 => Ok(digest),
        _ => Err(invalid(format!("{what} needs a non-negative size"))),
    }
}

/// Validate `bytes` sent with `content_type` (the request's Content-Type, if any).
pub fn parse_manifest(bytes: &[u8], content_type: Option<&str>) -> Result<ParsedManifest, RegistryError> {
    // The whole document is read once as JSON first: serde skips the members
    // `RawManifest` does not name without checking them, so invalid UTF-8 or a broken
    // `\u` escape there would pass, and we store the bytes as sent, for every client to
    // read (found by the `manifest` fuzz target).
    serde_json::from_slice::<Value>(bytes)
        .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "application/json" && c != "application/octet-stream");
    if let Some(h) = header.as_deref()
        && (h == DOCKER_SCHEMA1 || h == DOCKER_SCHEMA1_SIGNED)
    {
        return Err(invalid(
            "Docker schema 1 manifests are not supported; push with a current client",
        ));
    }
    let media_type = match (&header, &raw.media_type) {
        (Some(h), Some(b)) if h != b => {
            return Err(invalid(format!(
                "Content-Type {h} does not match the manifest's mediaType {b}"
            )));
        }
        (Some(h), _) => h.clone(),
        (None, Some(b)) => b.clone(),
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_owned(),
        (None, None) => OCI_MANIFEST.to_owned(),
    };
    if raw.schema_version != Some(2) {
        return Err(invalid("schemaVersion must be 2"));
    }
    let subject = raw
        .subject
        .as_ref()
        .map(|s| descriptor(s, "subject"))
        .transpose()?;
    let annotations = raw
        .annotations
        .as_ref()
        .map(|a| Value::Object(a.clone()).to_string());
    match media_type.as_str() {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            if raw.manifests.is_some() {
                return Err(invalid("an image manifest must not have `manifests`"));
            }
            let config = raw
                .config
                .as_ref()
                .ok_or_else(|| invalid("image manifest has no config"))?;
            let mut blobs = vec![descriptor(config, "config")?];
            let layers = raw
                .layers
                .as_ref()
                .ok_or_else(|| invalid("image manifest has no layers"))?;
            for (i, layer) in layers.iter().enumerate() {
                let digest = descriptor(layer, &format!("layer {i}"))?;
                let foreign = layer.urls.as_ref().is_some_and(|u| !u.is_empty())
                    && FOREIGN_LAYER_TYPES.contains(&layer.media_type.as_deref().unwrap_or(""));
                if !foreign {
                    blobs.push(digest);
                }
            }
            // OCI 1.1: an artifact's type is artifactType, else its config media type.
            let artifact_type = raw.artifact_type.clone().or_else(|| config.media_type.clone());
            Ok(ParsedManifest {
                media_type,
                blobs,
                manifests: Vec::new(),
                subject,
                artifact_type,
                annotations,
            })
        }
        DOCKER_LIST | OCI_INDEX => {
            if raw.config.is_some() || raw.layers.is_some() {
                return Err(invalid("an index must not have config or layers"));
            }
            let children = raw
                .manifests
                .as_ref()
                .ok_or_else(|| invalid("index has no manifests"))?;
            let manifests = children
                .iter()
                .enumerate()
                .map(|(i, m)| descriptor(m, &format!("manifest {i}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ParsedManifest {
                media_type,
                blobs: Vec::new(),
                manifests,
                subject,
                artifact_type: raw.artifact_type.clone(),
                annotations,
            })
        }
        other => Err(invalid(format!("unsupported manifest media type {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_manifest_references_config_and_layers_but_not_foreign_layers() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{}","size":10}},
               "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{}","size":5}},
                         {{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{}","size":5,"urls":["https://x"]}}]}}"#,
            d('a'),
            d('b'),
            d('c')
        );
        let m = parse_manifest(body.as_bytes(), Some(DOCKER_MANIFEST)).unwrap();
        assert_eq!(
            m.blobs,
            vec![Digest::parse(&d('a')).unwrap(), Digest::parse(&d('b')).unwrap()]
        );
        assert_eq!(m.media_type, DOCKER_MANIFEST);
    }

    /// Fuzzing regressions (`manifest` target): invalid UTF-8 or a truncated `\u` escape
    /// in a member the registry does not read was accepted and would have been stored.
    #[test]
    fn invalid_json_in_an_unread_member_is_refused() {
        let index = |note: &[u8]| {
            let mut body =
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","x-note":""#).into_bytes();
            body.extend_from_slice(note);
            body.extend_from_slice(
                format!(
                    r#"","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":2}}]}}"#,
                    d('a')
                )
                .as_bytes(),
            );
            body
        };
        assert!(parse_manifest(&index(b"ok"), Some(OCI_INDEX)).is_ok());
        for (note, want) in [
            (
                &b"a\xffb"[..],
                "manifest is not valid JSON: invalid unicode code point at line 1 column 85",
            ),
            (
                &b"\\u12"[..],
                "manifest is not valid JSON: invalid escape at line 1 column 89",
            ),
        ] {
            match parse_manifest(&index(note), Some(OCI_INDEX)) {
                Err(RegistryError::ManifestInvalid(msg)) => assert_eq!(msg, want),
                other => panic!("expected ManifestInvalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_manifests_are_refused_with_a_reason() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("not json", None, "manifest is not valid JSON"),
            (r#"{"schemaVersion":1}"#, None, "schemaVersion must be 2"),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
                None,
                "image manifest has no config",
            ),
            (
                r#"{"schemaVersion":2}"#,
                Some(OCI_INDEX),
                "index has no manifests",
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"a/b"}"#,
                Some(OCI_INDEX),
                "does not match",
            ),
            ("{}", Some(DOCKER_SCHEMA1_SIGNED), "schema 1"),
            (
                r#"{"schemaVersion":2,"mediaType":"text/plain"}"#,
                None,
                "unsupported manifest media type",
            ),
        ];
        for (body, ct, want) in cases {
            let err = parse_manifest(body.as_bytes(), *ct).unwrap_err().to_string();
            assert!(err.contains(want), "{body}: {err}");
        }
        let bad_digest = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"x","digest":"sha256:nothex","size":1}]}"#;
        assert!(
            parse_manifest(bad_digest.as_bytes(), None)
                .unwrap_err()
                .to_string()
                .contains("manifest 0 digest")
        );
    }

    #[test]
    fn artifact_type_and_subject_are_extracted() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/x.sig","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},"layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":7}},"annotations":{{"k":"v"}}}}"#,
            d('a'),
            d('e')
        );
        let m = parse_manifest(body.as_bytes(), None).unwrap();
        assert_eq!(m.artifact_type.as_deref(), Some("application/x.sig"));
        assert_eq!(m.subject, Some(Digest::parse(&d('e')).unwrap()));
        assert_eq!(m.annotations.as_deref(), Some(r#"{"k":"v"}"#));
    }
}
