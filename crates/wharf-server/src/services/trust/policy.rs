//! The registry-level content-trust policy: one stored switch, set through the admin API
//! and the portal and audited. While it is off, updates and key rotations are refused.

use wharf_tuf::UpdateError;

use super::{TrustError, TrustResult, TrustService, audit};

/// Settings key of the registry-level content-trust switch (`true` / `false`).
pub const POLICY_SETTING: &str = "content_trust_enabled";

/// Shown when a publisher signs while the policy is off. It travels as a typed
/// `ErrValidation`, so docker prints it after "failed to sign <gun>:<tag>: ".
pub const DISABLED_MESSAGE: &str =
    "content trust is disabled on this registry; an owner can enable it with `wharf content-trust enable`";

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

    /// Turn the policy on or off. Off deletes all trust data of every repository in the
    /// same transaction that records the switch, so no half-wiped state is observable.
    pub async fn set_enabled(&self, actor: &str, enabled: bool) -> TrustResult<u64> {
        if enabled {
            let record = audit(actor, "content-trust.enable", "registry", "");
            self.meta
                .put_setting(POLICY_SETTING, policy_value(true), Some(&record))
                .await?;
            tracing::info!(%actor, "content trust enabled");
            return Ok(0);
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
        tracing::warn!(%actor, repositories = wiped, "content trust disabled; all trust data deleted");
        Ok(wiped)
    }
}

pub(super) fn policy_value(enabled: bool) -> &'static [u8] {
    if enabled { b"true" } else { b"false" }
}
