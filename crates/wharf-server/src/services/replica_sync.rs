//! Keeps this replica's memory in step with what other replicas write to the shared
//! database. Per-request paths read memory (signing keys, revocations, anonymous-pull
//! scopes, published trust data) because a query each time would cost the manifest and
//! token hot paths; so once a second this loop takes up what changed:
//!
//! - token revocations (a user deleted or a secret reset on another replica),
//! - a token signing-key rotation,
//! - trust data changed, re-signed or wiped (the changefeed), which drops cached
//!   published state,
//! - the anonymous-pull scopes.
//!
//! Everything else a replica decides on (roles, the content-trust policy, sessions,
//! login lockouts) is read from the database when used. Once a minute it also does the
//! housekeeping: garbage collection and retention when their schedules are due, expired upload sessions,
//! old login-failure counters and revocations.
//!
//! With one SQLite process the loop finds only what this process wrote (or the `wharf`
//! CLI changed offline) and costs a few indexed queries a second.

use std::time::Duration;

use crate::app::{AppInner, AppState};
use crate::clock::{now, now_ms};
use crate::services::gc::GcError;
use crate::services::retention::RetentionError;

/// How often a replica looks; changes made on another replica apply here within this
/// (plus the length of a query). Documented in README.md as "within two seconds".
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Housekeeping runs every this many syncs.
const HOUSEKEEPING_EVERY: u32 = 60;
/// Failed-login counters untouched this long (and not locked) are forgotten.
const LOGIN_FAILURE_MEMORY_SECONDS: i64 = 24 * 60 * 60;

/// Run until the task is aborted. Failures are logged and retried at the next tick: a
/// database hiccup must not stop the replica from catching up later.
pub async fn run(state: &AppState) {
    let mut every = tokio::time::interval(SYNC_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u32 = 0;
    loop {
        every.tick().await;
        sync_once(state).await;
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(HOUSEKEEPING_EVERY) {
            housekeeping(state).await;
        }
    }
}

/// One pass over everything other replicas may have changed.
pub async fn sync_once(state: &AppInner) {
    if let Err(e) = state.identity.sync_revocations().await {
        tracing::warn!(error = %e, "replica sync: revocations");
    }
    if let Err(e) = state.identity.reload_signing_keys().await {
        tracing::warn!(error = %e, "replica sync: signing keys");
    }
    if let Err(e) = state.trust.sync_published().await {
        tracing::warn!(error = %e, "replica sync: trust changefeed");
    }
    if let Err(e) = state.anonymous.reload().await {
        tracing::warn!(error = %e, "replica sync: anonymous pull");
    }
    if let Err(e) = state.signature_policy.reload().await {
        tracing::warn!(error = %e, "replica sync: signature policy");
    }
    if let Err(e) = state.quotas.reload().await {
        tracing::warn!(error = %e, "replica sync: quotas");
    }
}

async fn housekeeping(state: &AppState) {
    // Garbage collection on its schedule (`gc.interval_seconds`), on a task of its own so
    // a long run never holds up the sync. Another replica running one is not an error:
    // that is this interval's run.
    {
        let state = state.clone();
        tokio::spawn(async move {
            match state.gc.run_if_due().await {
                None | Some(Ok(_)) => {}
                Some(Err(GcError::Busy)) => {
                    tracing::debug!("scheduled garbage collection: another replica is running one")
                }
                Some(Err(e)) => tracing::warn!(error = %e, "scheduled garbage collection failed"),
            }
        });
    }
    // Retention on its schedule (`retention.interval_seconds`), likewise on its own task.
    {
        let state = state.clone();
        tokio::spawn(async move {
            match state.retention.run_if_due().await {
                None | Some(Ok(_)) => {}
                Some(Err(RetentionError::Busy)) => {
                    tracing::debug!("scheduled retention: another replica is running it")
                }
                Some(Err(e)) => tracing::warn!(error = %e, "scheduled retention run failed"),
            }
        });
    }
    match state.uploads.sweep_stale().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(uploads = n, "removed idle uploads and their scratch space"),
        Err(e) => tracing::warn!(error = %e, "upload sweep failed"),
    }
    if let Err(e) = state
        .identity
        .prune_login_failures(now() - LOGIN_FAILURE_MEMORY_SECONDS)
        .await
    {
        tracing::warn!(error = %e, "pruning login failures failed");
    }
    if let Err(e) = state.identity.prune_revocations(now_ms()).await {
        tracing::warn!(error = %e, "pruning revocations failed");
    }
}
