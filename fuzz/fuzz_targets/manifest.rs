//! Manifest and index validation (`services::manifest_doc::parse_manifest`). The first
//! byte picks the Content-Type the request would carry.
//! Properties: an accepted manifest has a supported media type, every descriptor it
//! names (config, layers, index entries, subject) carries a mediaType, a valid sha256
//! digest and a non-negative size, and every digest the registry will check is one the
//! document names; bounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use wharf_fuzz::within_allocation_bound;
use wharf_server::services::manifest_doc::{
    DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, parse_manifest,
};
use wharf_store::Digest;

const CONTENT_TYPES: [Option<&str>; 8] = [
    None,
    Some(OCI_MANIFEST),
    Some(OCI_INDEX),
    Some(DOCKER_MANIFEST),
    Some(DOCKER_LIST),
    Some("application/json"),
    Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
    Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
];

/// The descriptor's digest, after checking the size/digest rules.
fn checked_descriptor(d: &Value, what: &str) -> Digest {
    let media = d.get("mediaType").and_then(Value::as_str).unwrap_or("");
    assert!(!media.is_empty(), "accepted {what} without mediaType: {d}");
    let digest = d
        .get("digest")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("accepted {what} without digest"));
    let digest = Digest::parse(digest).unwrap_or_else(|e| panic!("accepted {what} digest {digest:?}: {e}"));
    let size = d.get("size").and_then(Value::as_i64);
    assert!(
        size.is_some_and(|s| s >= 0),
        "accepted {what} with size {:?}",
        d.get("size")
    );
    digest
}

/// A member that is present and not `null` (serde reads `null` as absent).
fn member<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc.get(name).filter(|v| !v.is_null())
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(pick) % CONTENT_TYPES.len()];
    let Ok(parsed) = within_allocation_bound("manifest", body.len(), || parse_manifest(body, content_type))
    else {
        return;
    };
    assert!(
        [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].contains(&parsed.media_type.as_str()),
        "accepted media type {}",
        parsed.media_type
    );
    let doc: Value = serde_json::from_slice(body).expect("accepted manifest is JSON");
    assert_eq!(doc.get("schemaVersion").and_then(Value::as_i64), Some(2));
    let mut named = Vec::new();
    if let Some(config) = member(&doc, "config") {
        named.push(checked_descriptor(config, "config"));
    }
    for (i, layer) in member(&doc, "layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        named.push(checked_descriptor(layer, &format!("layer {i}")));
    }
    let mut children = Vec::new();
    for (i, child) in member(&doc, "manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        children.push(checked_descriptor(child, &format!("manifest {i}")));
    }
    if let Some(subject) = member(&doc, "subject") {
        assert_eq!(
            parsed.subject.as_ref(),
            Some(&checked_descriptor(subject, "subject"))
        );
    } else {
        assert!(parsed.subject.is_none());
    }
    for blob in &parsed.blobs {
        assert!(
            named.contains(blob),
            "checks blob {blob} the manifest does not name"
        );
    }
    assert_eq!(
        parsed.manifests, children,
        "index entries differ from the document's"
    );
    if parsed.media_type == OCI_MANIFEST || parsed.media_type == DOCKER_MANIFEST {
        assert!(member(&doc, "config").is_some() && member(&doc, "layers").is_some());
        assert_eq!(
            parsed.blobs.first(),
            named.first(),
            "config is not the first blob checked"
        );
    } else {
        assert!(parsed.blobs.is_empty());
    }
});
