//! The Docker Content Trust half of the policy: is a tag (or a digest) signed in the
//! repository's current trust data, as `wharf_tuf::verify_repository` reads it — the walk
//! docker and notary do (timestamp → snapshot → root, targets, delegations; thresholds,
//! expiry, delegation paths). Pure functions over the verified view; the service keeps
//! one verified view per repository, keyed by the published timestamp.

use wharf_tuf::{TrustedTargets, VerifyError};

/// Which signatures count: `roles` empty means what `docker pull` with content trust
/// resolves (`targets/releases`, then `targets`); otherwise any of these roles.
fn accepted_digests<'a>(view: &'a TrustedTargets, roles: &[String], tag: &str) -> Vec<(String, &'a str)> {
    if roles.is_empty() {
        view.pull_target(tag)
            .and_then(|(role, target)| Some((target.digest()?, role.name.as_str())))
            .into_iter()
            .collect()
    } else {
        view.signatures(tag)
            .into_iter()
            .filter(|(role, _)| roles.iter().any(|r| r == &role.name))
            .filter_map(|(role, target)| Some((target.digest()?, role.name.as_str())))
            .collect()
    }
}

fn roles_text(roles: &[String]) -> String {
    if roles.is_empty() {
        "targets/releases or targets".to_owned()
    } else {
        roles.join(" or ")
    }
}

/// Why the trust data as a whole signs nothing.
pub fn unusable(verified: &Result<TrustedTargets, VerifyError>) -> Option<String> {
    match verified {
        Ok(_) => None,
        Err(VerifyError::NoTrustData) => Some("no Docker Content Trust data".to_owned()),
        Err(e) => Some(format!("Docker Content Trust data does not verify: {e}")),
    }
}

/// Whether `tag` is signed for `digest`: the role that signs it, or why not.
pub fn tag_signed(
    view: &TrustedTargets,
    roles: &[String],
    tag: &str,
    digest: &str,
) -> Result<String, String> {
    let accepted = accepted_digests(view, roles, tag);
    if let Some((_, role)) = accepted.iter().find(|(d, _)| d == digest) {
        return Ok((*role).to_owned());
    }
    match accepted.first() {
        Some((other, role)) => Err(format!(
            "Docker Content Trust: {role} signed tag {tag} for {other}, but it now points to {digest}"
        )),
        None => Err(format!(
            "Docker Content Trust: tag {tag} is not signed by {}",
            roles_text(roles)
        )),
    }
}

/// Whether some tag's accepted signature is for `digest`: that tag and role.
pub fn digest_signed(view: &TrustedTargets, roles: &[String], digest: &str) -> Option<(String, String)> {
    view.names().into_iter().find_map(|tag| {
        accepted_digests(view, roles, tag)
            .into_iter()
            .find(|(d, _)| d == digest)
            .map(|(_, role)| (tag.to_owned(), role.to_owned()))
    })
}

/// Unix seconds after which a verification of `view` must be redone even if the trust
/// data did not change: the first expiry of a role it relies on, and at most a minute
/// (the server-managed snapshot and timestamp re-sign themselves and change the head).
pub fn valid_until(view: &Result<TrustedTargets, VerifyError>, now: i64) -> i64 {
    let cap = now + 60;
    match view {
        Ok(v) => v
            .roles
            .iter()
            .filter_map(|r| r.expires.map(|e| e.timestamp()))
            .fold(cap, i64::min),
        Err(_) => cap,
    }
}
