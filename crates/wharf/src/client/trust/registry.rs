//! What `wharf trust sign` needs of the registry API (`/v2/`): image references, manifests
//! and blobs read and written with a session's token, referrers listed.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::client::report::{INVALID_INPUT, INVALID_RESPONSE, fail, server_error};
use crate::client::session::Session;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An image reference as people write it: `[HOST[:PORT]/]REPO:TAG` or `…@sha256:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry named in the reference, if any.
    pub registry: Option<String>,
    pub repository: String,
    /// The tag or the digest.
    pub reference: String,
    pub by_digest: bool,
}

impl ImageRef {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let bad = |why: &str| {
            fail(
                INVALID_INPUT,
                format!("{text:?} is not an image reference (REPO:TAG or REPO@sha256:<hex>): {why}"),
            )
        };
        let (name, reference, by_digest) = if let Some((name, digest)) = text.split_once('@') {
            let hex = digest.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64
                || !hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(bad("the digest is not sha256:<64 lowercase hex>"));
            }
            (name, digest.to_owned(), true)
        } else {
            let slash = text.rfind('/').map_or(0, |i| i + 1);
            match text[slash..].rsplit_once(':') {
                Some((_, tag)) if !tag.is_empty() => {
                    (&text[..text.len() - tag.len() - 1], tag.to_owned(), false)
                }
                _ => return Err(bad("it names no tag")),
            }
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (Some(first.to_owned()), rest.to_owned())
            }
            _ => (None, name.to_owned()),
        };
        if repository.is_empty() {
            return Err(bad("it names no repository"));
        }
        Ok(Self {
            registry,
            repository,
            reference,
            by_digest,
        })
    }

    /// How the reference is shown and signed: `host/repo:tag` or `host/repo@digest`.
    pub fn full(&self, registry: &str) -> String {
        let sep = if self.by_digest { '@' } else { ':' };
        format!("{registry}/{}{sep}{}", self.repository, self.reference)
    }
}

/// The one registry all `refs` name (or the selected one when they name none).
pub fn common_registry(refs: &[ImageRef], selected: Option<String>) -> anyhow::Result<Option<String>> {
    let mut named = refs.iter().filter_map(|r| r.registry.clone());
    let first = named.next();
    if let Some(other) = named.find(|r| Some(r) != first.as_ref()) {
        return Err(fail(
            INVALID_INPUT,
            format!(
                "the references name two registries ({} and {other}); sign the images of each registry with its own command",
                first.unwrap_or_default()
            ),
        ));
    }
    Ok(first.or(selected))
}

/// A manifest as the registry serves it.
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

/// The registry's refusal of `what`, with its code and message.
pub async fn refused(resp: reqwest::Response, what: &str) -> anyhow::Error {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    match server_error(&body) {
        Some((code, message)) => fail(
            &code,
            format!("{what}: the registry answered {status}: {message}"),
        ),
        None => fail(
            INVALID_RESPONSE,
            format!("{what}: the registry answered {status}"),
        ),
    }
}

/// The manifest `reference` (tag or digest) of `repository`; `None` when there is none.
pub async fn manifest(s: &Session, repository: &str, reference: &str) -> anyhow::Result<Option<Manifest>> {
    let resp = s
        .request(Method::GET, &format!("/v2/{repository}/manifests/{reference}"))
        .header("accept", MANIFEST_TYPES)
        .send()
        .await
        .map_err(|e| s.unreachable(&e))?;
    if resp.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(refused(resp, &format!("reading {repository}:{reference}")).await);
    }
    let media_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(OCI_MANIFEST)
        .to_owned();
    let bytes = resp.bytes().await.map_err(|e| s.unreachable(&e))?.to_vec();
    Ok(Some(Manifest {
        digest: sha256_digest(&bytes),
        bytes,
        media_type,
    }))
}

/// The blob `digest` of `repository`, checked against its digest.
pub async fn blob(s: &Session, repository: &str, digest: &str) -> anyhow::Result<Vec<u8>> {
    let resp = s
        .request(Method::GET, &format!("/v2/{repository}/blobs/{digest}"))
        .send()
        .await
        .map_err(|e| s.unreachable(&e))?;
    if !resp.status().is_success() {
        return Err(refused(resp, &format!("reading blob {digest} of {repository}")).await);
    }
    let bytes = resp.bytes().await.map_err(|e| s.unreachable(&e))?.to_vec();
    if sha256_digest(&bytes) != digest {
        return Err(fail(
            INVALID_RESPONSE,
            format!("blob {digest} of {repository}: the registry sent other bytes"),
        ));
    }
    Ok(bytes)
}

/// Upload `bytes` as a blob of `repository` (skipped when it is there); its digest.
pub async fn push_blob(s: &Session, repository: &str, bytes: &[u8]) -> anyhow::Result<String> {
    let digest = sha256_digest(bytes);
    let head = s
        .request(Method::HEAD, &format!("/v2/{repository}/blobs/{digest}"))
        .send()
        .await
        .map_err(|e| s.unreachable(&e))?;
    if head.status().is_success() {
        return Ok(digest);
    }
    let what = format!("uploading a blob to {repository}");
    let start = s
        .request(Method::POST, &format!("/v2/{repository}/blobs/uploads/"))
        .send()
        .await
        .map_err(|e| s.unreachable(&e))?;
    if start.status() != StatusCode::ACCEPTED {
        return Err(refused(start, &what).await);
    }
    let path = upload_location(&start, &what)?;
    let sep = if path.contains('?') { '&' } else { '?' };
    let done = s
        .request(Method::PUT, &format!("{path}{sep}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
        .map_err(|e| s.unreachable(&e))?;
    if done.status() != StatusCode::CREATED {
        return Err(refused(done, &what).await);
    }
    Ok(digest)
}

/// Store `bytes` as the manifest `reference` of `repository`.
pub async fn put_manifest(
    s: &Session,
    repository: &str,
    reference: &str,
    media_type: &str,
    bytes: Vec<u8>,
) -> anyhow::Result<()> {
    let resp = s
        .request(Method::PUT, &format!("/v2/{repository}/manifests/{reference}"))
        .header("content-type", media_type)
        .body(bytes)
        .send()
        .await
        .map_err(|e| s.unreachable(&e))?;
    if resp.status() != StatusCode::CREATED {
        return Err(refused(resp, &format!("storing {repository}:{reference}")).await);
    }
    Ok(())
}

/// The descriptors of the manifests that refer to `digest` with `artifact_type`.
pub async fn referrers(
    s: &Session,
    repository: &str,
    digest: &str,
    artifact_type: &str,
) -> anyhow::Result<Vec<Value>> {
    let resp = s
        .request(Method::GET, &format!("/v2/{repository}/referrers/{digest}"))
        .query(&[("artifactType", artifact_type)])
        .send()
        .await
        .map_err(|e| s.unreachable(&e))?;
    if !resp.status().is_success() {
        return Err(refused(resp, &format!("listing the referrers of {repository}@{digest}")).await);
    }
    let body: Value = resp.json().await.map_err(|e| s.unreachable(&e))?;
    let all = body["manifests"].as_array().cloned().unwrap_or_default();
    // A registry may ignore the filter; apply it here too.
    Ok(all
        .into_iter()
        .filter(|d| d["artifactType"].as_str() == Some(artifact_type))
        .collect())
}

/// The upload's `Location` as a path of the session's server.
pub(super) fn upload_location(resp: &reqwest::Response, what: &str) -> anyhow::Result<String> {
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            fail(
                INVALID_RESPONSE,
                format!("{what}: the registry named no upload location"),
            )
        })?;
    Ok(match location.strip_prefix("https://") {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]).to_owned(),
        None => location.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_people_write() {
        let r = ImageRef::parse("team/app:v1").unwrap();
        assert_eq!(
            (r.registry, r.repository.as_str(), r.reference.as_str()),
            (None, "team/app", "v1")
        );
        let r = ImageRef::parse("localhost:5000/team/app:v1").unwrap();
        assert_eq!(r.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(r.full("localhost:5000"), "localhost:5000/team/app:v1");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("app@{d}")).unwrap();
        assert!(r.by_digest);
        assert_eq!(r.reference, d);
        assert!(ImageRef::parse("localhost:5000/team/app").is_err());
        assert!(ImageRef::parse("app@sha256:abc").is_err());
    }
}
