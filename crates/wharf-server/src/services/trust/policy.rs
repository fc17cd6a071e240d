//! The registry-level content-trust policy: one stored switch, set through the admin API
//! and the portal and audited. While it is off, updates and key rotations are refused.

use wharf_tuf::UpdateError;

use super::{TrustError, TrustResult, TrustService, audit};
use crate::services::access::Actor;

/// Settings key of the registry-level content-trust switch (`true` / `false`).
pub const POLICY_SETTING: &str = "content_trust_enabled";

/// Shown when a publisher signs while the policy is off. It travels as a typed
/// `ErrValidation`, so docker prints it after "failed to sign <gun>:<tag>: ".
pub const DISABLED_MESSAGE: &str =
    "content trust is disabled on this registry; an owner can enable it with `wharf content-trust enable`";

/// The refusal of a disable that was not confirmed: what it costs, and how the admin API
/// confirms it (the portal shows its own confirmation page).
pub const DISABLE_WARNING: &str = "disabling content trust deletes ALL trust data of EVERY repository \
(signatures, keys held by the registry) and cannot be undone; images stay. \
Send {\"enabled\":false,\"confirm_delete_all_trust_data\":true} to proceed";

/// What a change of the switch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// The switch already stood where asked; nothing was recorded.
    Unchanged,
    Enabled,
    /// Trust data of this many repositories was deleted.
    Disabled {
        repositories_wiped: u64,
    },
}

impl TrustService {
    pub async fn enabled(&self) -> TrustResult<bool> {
        Ok(self
            .meta
            .get_setting(POLICY_SETTING)
            .await?
            .is_some_and(|v| v == b"true"))
    }

    pub(super) async fn require_enabled(&self) -> TrustResult<()> {
        if self.enabled().await? {
            Ok(())
        } else {
            Err(TrustError::Update(UpdateError::Validation(
                DISABLED_MESSAGE.into(),
            )))
        }
    }

    /// Turn the policy on or off. Off deletes all trust data of every repository, so it
    /// needs `confirmed` (the one place that rule lives: the admin API and the portal
    /// both ask here), and it deletes in the same transaction that records the switch,
    /// so no half-wiped state is observable. Asking for the current state changes and
    /// records nothing.
    pub async fn set_enabled(
        &self,
        actor: &Actor,
        enabled: bool,
        confirmed: bool,
    ) -> TrustResult<PolicyOutcome> {
        if self.enabled().await? == enabled {
            return Ok(PolicyOutcome::Unchanged);
        }
        if enabled {
            let record = audit(actor, "content-trust.enable", "registry", "");
            self.meta
                .put_setting(POLICY_SETTING, policy_value(true), Some(&record))
                .await?;
            tracing::info!(actor = %actor.name, "content trust enabled");
            return Ok(PolicyOutcome::Enabled);
        }
        if !confirmed {
            return Err(TrustError::ConfirmationRequired);
        }
        let wiped = self
            .meta
            .trust_delete_all(
                POLICY_SETTING,
                policy_value(false),
                &audit(
                    actor,
                    "content-trust.disable",
                    "registry",
                    "all trust data deleted",
                ),
            )
            .await?;
        self.published.invalidate(None);
        tracing::warn!(actor = %actor.name, repositories = wiped, "content trust disabled; all trust data deleted");
        Ok(PolicyOutcome::Disabled {
            repositories_wiped: wiped,
        })
    }
}

pub(super) fn policy_value(enabled: bool) -> &'static [u8] {
    if enabled { b"true" } else { b"false" }
}
