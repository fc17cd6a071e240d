//! Content trust comes first: a tag that `docker pull` with content trust resolves to its
//! current digest is not deleted (nor that digest's manifest, nor the repository) while the
//! signature stands — the signed tag would point at nothing. The publisher revokes it first
//! (`docker trust revoke`): the server holds no targets or delegation keys, so it cannot
//! revoke on the caller's behalf.

use wharf_store::Digest;
use wharf_tuf::TrustedTargets;

use super::{TrustResult, TrustService};

/// What is about to be deleted.
#[derive(Debug, Clone, Copy)]
pub enum Deleting<'a> {
    /// A tag and the digest it points at now.
    Tag { tag: &'a str, digest: &'a Digest },
    /// A manifest, with every tag pointing at it.
    Manifest { digest: &'a Digest },
    /// The whole repository: its tags and the digests they point at now.
    Repository { tags: &'a [(String, String)] },
}

/// Whether a deletion may go ahead, as the published trust data says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeletionCheck {
    /// Content trust is off registry-wide: no trust data is served, nothing is signed.
    TrustOff,
    /// Nothing it deletes is signed under the published timestamp `head` (`None`: no trust
    /// data); the store re-checks that the head is unchanged in the deletion's transaction.
    Unsigned { head: Option<String> },
    /// Refused: why, naming tags, roles and the command that revokes.
    Signed(String),
}

impl TrustService {
    /// Whether deleting `what` in `repository` would delete a validly signed tag's target.
    pub async fn deletion_check(&self, repository: &str, what: Deleting<'_>) -> TrustResult<DeletionCheck> {
        if !self.enabled().await? {
            return Ok(DeletionCheck::TrustOff);
        }
        let Some(verified) = self.verified(repository).await? else {
            return Ok(DeletionCheck::Unsigned { head: None });
        };
        // Trust data a client would refuse signs nothing: `docker pull` fails on it anyway.
        let Ok(view) = &verified.verified else {
            return Ok(DeletionCheck::Unsigned {
                head: Some(verified.head),
            });
        };
        let gun = self.names.gun_of(repository);
        let signed = signed_tags(view, what);
        if signed.is_empty() {
            return Ok(DeletionCheck::Unsigned {
                head: Some(verified.head),
            });
        }
        Ok(DeletionCheck::Signed(refusal(repository, &gun, what, &signed)))
    }
}

/// A tag whose pull target is what the deletion removes, and the roles that sign it there.
struct SignedTag {
    tag: String,
    roles: Vec<String>,
}

/// The tags `docker pull` with content trust resolves to a digest `what` deletes. A
/// signature only for another (older) digest of a tag protects nothing: that tag is not
/// signed for what it points at now.
fn signed_tags(view: &TrustedTargets, what: Deleting<'_>) -> Vec<SignedTag> {
    let signed_at = |tag: &str, digest: &str| -> Option<SignedTag> {
        let (_, target) = view.pull_target(tag)?;
        if target.digest().as_deref() != Some(digest) {
            return None;
        }
        // Every role that validly lists this digest for the tag, in notary's walk order.
        let roles = view
            .signatures(tag)
            .into_iter()
            .filter(|(_, t)| t.digest().as_deref() == Some(digest))
            .map(|(role, _)| role.name.clone())
            .collect();
        Some(SignedTag {
            tag: tag.to_owned(),
            roles,
        })
    };
    match what {
        Deleting::Tag { tag, digest } => signed_at(tag, digest.as_str()).into_iter().collect(),
        Deleting::Manifest { digest } => view
            .names()
            .into_iter()
            .filter_map(|tag| signed_at(tag, digest.as_str()))
            .collect(),
        Deleting::Repository { tags } => tags
            .iter()
            .filter_map(|(tag, digest)| signed_at(tag, digest))
            .collect(),
    }
}

fn refusal(repository: &str, gun: &str, what: Deleting<'_>, signed: &[SignedTag]) -> String {
    let revoke = signed
        .iter()
        .map(|s| format!("docker trust revoke {gun}:{}", s.tag))
        .collect::<Vec<_>>()
        .join(", ");
    let described = signed
        .iter()
        .map(|s| format!("{:?} ({})", s.tag, s.roles.join(", ")))
        .collect::<Vec<_>>()
        .join(", ");
    match what {
        Deleting::Tag { .. } => format!(
            "tag {} of {repository:?} is signed ({}); revoke the signature first: {revoke}",
            format_args!("{:?}", signed[0].tag),
            signed[0].roles.join(", ")
        ),
        Deleting::Manifest { digest } => format!(
            "manifest {digest} of {repository:?} is signed as tag {described}; revoke the signature first: {revoke}"
        ),
        Deleting::Repository { .. } => format!(
            "repository {repository:?} has signed tags {described}; revoke the signatures first ({revoke}) or reset the repository's trust data"
        ),
    }
}
