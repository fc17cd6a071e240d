//! What a principal may do: its `Grants` (from role assignments, a repository token's
//! scope map, or the admin account's), by principal or by name, and the portal viewer.

use wharf_store::Principal;

use super::{IdentityError, IdentityService};
use crate::auth::access::token_action_perms;
use crate::auth::{AccessEntry, Grants, Perms, Role, Scope};
use crate::services::portal_sessions::SignedIn;

impl IdentityService {
    /// Everything `principal` may do, from its role assignments (or its token scope map).
    /// Read at every token request, so a change applies from the next token on.
    pub async fn grants_of(&self, principal: &Principal) -> Result<Grants, IdentityError> {
        match principal.kind.as_str() {
            crate::services::access::KIND_ADMIN_ACCOUNT => Ok(Grants::admin_account()),
            crate::services::access::KIND_TOKEN => {
                let mut entries: Vec<(Scope, Perms)> = Vec::new();
                for s in self.meta.token_scopes(principal.id).await? {
                    // Rows were validated on the way in; anything else grants nothing.
                    if let (Some(scope), Some(p)) = (
                        Scope::parse_repository(&s.repository),
                        token_action_perms(&s.action),
                    ) {
                        entries.push((scope, p));
                    }
                }
                Ok(Grants::new(entries))
            }
            _ => {
                let mut entries = Vec::new();
                for a in self.meta.list_assignments(Some(principal.id)).await? {
                    if let (Some(role), Some(scope)) = (Role::parse(&a.role), Scope::parse(&a.scope)) {
                        entries.push((scope, role.perms()));
                    }
                }
                Ok(Grants::new(entries))
            }
        }
    }

    /// Grants of the principal a verified token names (catalog filtering); a principal
    /// deleted since gets nothing.
    pub async fn grants_of_name(&self, name: &str) -> Result<Grants, IdentityError> {
        match self.meta.find_principal(name).await? {
            Some(p) if p.name == name => self.grants_of(&p).await,
            _ => Ok(Grants::default()),
        }
    }

    /// Who a portal session belongs to (gone if the principal was deleted since) and
    /// what they may do: their grants, and whether the access policy would give them
    /// `registry:admin:*` — the same decision a token request gets.
    pub async fn portal_viewer(
        &self,
        signed_in: &SignedIn,
    ) -> Result<Option<(Principal, Grants, bool)>, IdentityError> {
        let principal = self.meta.principal_by_id(signed_in.id).await?;
        // The same id may now name a principal created after the signed-in one was deleted.
        let Some(principal) =
            principal.filter(|p| p.name == signed_in.name && p.created_at == signed_in.created_at)
        else {
            return Ok(None);
        };
        let grants = self.grants_of(&principal).await?;
        let admin_scope = AccessEntry {
            kind: "registry".into(),
            name: "admin".into(),
            actions: vec!["*".into()],
        };
        let admin = !self.policy.grant(&grants, &[admin_scope], &self.names).is_empty();
        Ok(Some((principal, grants, admin)))
    }
}
