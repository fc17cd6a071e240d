//! Wiping one repository's trust data: notary's `DELETE …/_trust/tuf/` and the owner's
//! reset (the way back after a lost root key).

use super::{TrustError, TrustResult, TrustService, audit};
use crate::names::valid_repository_name;
use crate::services::access::Actor;

impl TrustService {
    /// `DELETE …/_trust/tuf/` and `wharf content-trust reset`: wipe one repository.
    pub async fn delete(&self, repository: &str, gun: &str, actor: &Actor) -> TrustResult<bool> {
        let deleted = self
            .meta
            .trust_delete(repository, gun, &audit(actor, "trust.reset", repository, gun))
            .await?;
        self.published.invalidate(Some(repository));
        tracing::info!(%repository, actor = %actor.name, deleted, "trust data of repository deleted");
        Ok(deleted)
    }

    /// `wharf content-trust reset REPOSITORY`: the lost-root-key path for one repository.
    pub async fn reset(&self, repository: &str, actor: &Actor) -> TrustResult<bool> {
        if !valid_repository_name(repository) {
            return Err(TrustError::InvalidGun(repository.to_owned()));
        }
        // The changefeed names GUNs: the server's first name.
        let gun = self.names.gun_of(repository);
        self.delete(repository, &gun, actor).await
    }
}
