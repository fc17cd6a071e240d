//! The one decision "may retention remove this, and if not, why": every tag and manifest a
//! rule would remove passes through [`RetentionService::protection`] first. Content trust
//! comes first: what is signed stays until its signature is revoked. (Repository and tag
//! locks are meant to join here, as one more reason.)

use std::collections::HashMap;

use wharf_store::{Digest, StoreResult};

use super::RetentionService;
use crate::services::signature_policy::is_signature_artifact;

/// What retention would remove.
pub enum Target<'a> {
    /// A tag (the manifest stays; it becomes untagged).
    Tag { tag: &'a str },
    /// A manifest no tag points at.
    Manifest {
        digest: &'a Digest,
        subject: Option<&'a Digest>,
    },
}

/// One repository's Docker Content Trust data, as docker would verify it now.
pub enum DctFacts {
    /// No trust data: nothing is DCT-signed.
    None,
    /// Trust data that does not verify: what it signs cannot be told, so nothing in the
    /// repository is removed (the reason says why).
    Unverifiable(String),
    Signed {
        /// Signed target digest → "<tag> (<role>)", the first tag (in name order) and role
        /// of the walk that signs it.
        digests: HashMap<String, String>,
        /// Signed tag → its role.
        tags: HashMap<String, String>,
    },
}

impl DctFacts {
    pub fn from_view(verified: &Result<wharf_tuf::TrustedTargets, wharf_tuf::VerifyError>) -> Self {
        let view = match verified {
            Ok(view) => view,
            Err(wharf_tuf::VerifyError::NoTrustData) => return DctFacts::None,
            Err(e) => {
                return DctFacts::Unverifiable(format!("Docker Content Trust data does not verify: {e}"));
            }
        };
        let mut digests = HashMap::new();
        let mut tags = HashMap::new();
        // Every verified role counts (not only what `docker pull` resolves): a signer's
        // own delegation vouching for a digest is a signature its owner means to keep.
        for name in view.names() {
            for (role, target) in view.signatures(name) {
                tags.entry(name.to_owned()).or_insert_with(|| role.name.clone());
                if let Some(digest) = target.digest() {
                    digests
                        .entry(digest)
                        .or_insert_with(|| format!("{name} ({})", role.name));
                }
            }
        }
        DctFacts::Signed { digests, tags }
    }
}

/// A cosign attachment tag (`sha256-<hex>.sig`, `.att`, `.sbom`): the digest it belongs to.
fn cosign_attachment_of(tag: &str) -> Option<String> {
    let rest = tag.strip_prefix("sha256-")?;
    let (hex, kind) = rest.split_once('.')?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) && matches!(kind, "sig" | "att" | "sbom"))
        .then(|| format!("sha256:{hex}"))
}

impl RetentionService {
    /// Why `target` must stay (`Some(reason)`), or `None` when retention may remove it.
    /// Never removed:
    /// - anything in a repository whose trust data does not verify;
    /// - a DCT-signed tag (keep-last-K skips it: the signature must be revoked first);
    /// - a cosign attachment tag (it goes with its image, which a tag rule does not touch);
    /// - a manifest that is a signed target of some tag in the current trust data;
    /// - the subject of a signature (a cosign `sha256-<hex>.sig` tag, or an OCI referrer
    ///   that is a signature or attestation — cosign, Notation);
    /// - a referrer whose subject is still there (it goes with its subject);
    /// - a platform manifest some index lists (it goes with the index).
    pub(super) async fn protection(
        &self,
        repository: &str,
        dct: &DctFacts,
        target: Target<'_>,
    ) -> StoreResult<Option<String>> {
        if let DctFacts::Unverifiable(why) = dct {
            return Ok(Some(why.clone()));
        }
        match target {
            Target::Tag { tag } => {
                if let DctFacts::Signed { tags, .. } = dct
                    && let Some(role) = tags.get(tag)
                {
                    return Ok(Some(format!("signed: {tag} ({role})")));
                }
                if let Some(subject) = cosign_attachment_of(tag) {
                    return Ok(Some(format!("cosign attachment of {subject}")));
                }
                Ok(None)
            }
            Target::Manifest { digest, subject } => {
                if let DctFacts::Signed { digests, .. } = dct
                    && let Some(by) = digests.get(digest.as_str())
                {
                    return Ok(Some(format!("signed target of {by}")));
                }
                if let Some(hex) = digest.as_str().strip_prefix("sha256:")
                    && let Some(signature) = self
                        .meta
                        .resolve_tag(repository, &format!("sha256-{hex}.sig"))
                        .await?
                {
                    return Ok(Some(format!("subject of signature {signature} (cosign)")));
                }
                for referrer in self.meta.referrers(repository, digest, None).await? {
                    if let Some(record) = self.meta.get_manifest(repository, &referrer.digest).await?
                        && is_signature_artifact(&record)
                    {
                        return Ok(Some(format!("subject of signature {}", referrer.digest)));
                    }
                }
                if let Some(subject) = subject
                    && self.meta.get_manifest(repository, subject).await?.is_some()
                {
                    return Ok(Some(format!("goes with its subject {subject}")));
                }
                if let Some(parent) = self.meta.manifest_parents(repository, digest).await?.first() {
                    return Ok(Some(format!("child of index {parent}")));
                }
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_attachment_tags_name_their_image() {
        let hex = "a".repeat(64);
        assert_eq!(
            cosign_attachment_of(&format!("sha256-{hex}.sig")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(
            cosign_attachment_of(&format!("sha256-{hex}.att")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(cosign_attachment_of(&format!("sha256-{hex}.txt")), None);
        assert_eq!(cosign_attachment_of("sha256-abc.sig"), None);
        assert_eq!(cosign_attachment_of("v1.sig"), None);
    }
}
