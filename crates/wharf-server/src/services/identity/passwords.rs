//! A user changing their own password: the current one is checked like a login
//! (throttled, so a stolen token cannot guess it), the new one replaces it, and every
//! refresh and access token issued before stops working. Owners reset others' passwords
//! through `AccessService::reset_password`.

use super::{IdentityError, IdentityService};
use crate::auth::password::hash_password;
use crate::clock::now;
use crate::services::access::{Actor, KIND_USER, MIN_PASSWORD, audit_record};

impl IdentityService {
    pub async fn change_own_password(
        &self,
        actor: &Actor,
        current: &str,
        new: &str,
    ) -> Result<(), IdentityError> {
        let principal = self.login_password(&actor.name, current, actor.from).await?;
        if principal.kind != KIND_USER {
            return Err(IdentityError::NotAUser(principal.name));
        }
        if new.chars().count() < MIN_PASSWORD {
            return Err(IdentityError::WeakPassword);
        }
        let hash = hash_password(new.to_owned()).await?;
        let t = now();
        let record = audit_record(actor, "user.change-password", &principal.name, "", t);
        self.meta
            .set_principal_secret(principal.id, Some(&hash), &record)
            .await?;
        // Tokens issued up to now, including the caller's own, stop working.
        self.revocations
            .revoke(&principal.name, crate::clock::now_ms())
            .await?;
        Ok(())
    }
}
