//! Retention: removing untagged manifests after a number of days, and tags beyond the newest
//! K of a pattern, per the owner's policy (`document.rs`), never what is signed
//! (`protection.rs`, the one decision). Retention removes manifests and tags only; the
//! blobs they leave unreferenced are freed by a later garbage collection.
//!
//! **The untagged clock.** A manifest counts as untagged since it last lost a tag (the store
//! sets `untagged_at` when a push moves a tag away from it or the tag is deleted), or, if it
//! never lost one, since it was pushed. Not its push time alone: an image pushed a month ago
//! and untagged today has been untagged for minutes, and must not vanish at once.
//!
//! **A run**, per repository with an enabled rule (repositories and untagged manifests are
//! read in pages; a repository's tags are read whole when it has tag rules):
//! 1. tag rules: the tags each pattern matches, newest push first; the newest `keep_last`
//!    stay, the others are removed unless protected;
//! 2. untagged manifests: those untagged longer than the period are removed unless
//!    protected.
//!
//! Each removal goes through a conditional store deletion that checks again as it deletes
//! (the tag still points where it did and was not pushed again; the manifest is still
//! untagged for long enough and no index lists it), so a push racing a run wins, and
//! stopping a run at any point leaves nothing half-done: a later run just carries on.
//! Each removal is audited like the registry DELETE (`manifest.delete`, `tag.delete`,
//! with the reason), each run with one `retention.run` summary. A dry run reports the same
//! decisions and changes nothing. Runs take the retention lease, so one runs at a time
//! across replicas.

mod document;
mod protection;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wharf_store::{Digest, MetadataStore, RETENTION_LEASE, StoreError, TagDetail, UntaggedManifest};

pub use document::{KeepTags, RetentionDocument, RetentionPolicyError, RetentionRule, glob_matches};
use protection::{DctFacts, Target};

use super::access::{Actor, audit_record};
use crate::auth::Scope;
use crate::auth::secrets::random_bytes;
use crate::clock::{now, rfc3339};
use crate::services::signature_policy::document::most_specific;
use crate::services::trust::{TrustError, TrustService};

/// Settings key of the policy document (JSON, `RetentionDocument`).
pub const RETENTION_POLICY_SETTING: &str = "retention_policy";
const EMPTY_POLICY: &[u8] = br#"{"version":0,"rules":[]}"#;
const DAY_SECONDS: i64 = 24 * 60 * 60;
/// Candidates a report lists (it counts them all).
pub const REPORT_LIMIT: usize = 1000;
const LEASE_SECONDS: i64 = 120;
const RENEW_BELOW_SECONDS: i64 = 60;
/// Repositories and untagged manifests read per query.
const PAGE: u32 = 200;

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("{0}")]
    Invalid(#[from] RetentionPolicyError),
    #[error(
        "the retention policy changed since version {read} was read (it is now version {current}); read it again and reapply the change"
    )]
    VersionConflict { read: u64, current: u64 },
    #[error("repository name {0:?} is not valid")]
    InvalidRepository(String),
    #[error("another retention run is in progress")]
    Busy,
    #[error("retention stopped: {0}")]
    Store(#[from] StoreError),
    #[error("retention stopped: {0}")]
    Internal(String),
}

impl From<TrustError> for RetentionError {
    fn from(e: TrustError) -> Self {
        match e {
            TrustError::Store(s) | TrustError::Updating(s) => Self::Store(s),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// What happens to a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Remove,
    Keep,
}

/// One tag or untagged manifest a rule looked at, with what happened and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Candidate {
    pub repository: String,
    /// Set for a tag; absent for an untagged manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub digest: String,
    pub action: Action,
    pub reason: String,
}

/// What a run did (a dry run: would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    pub dry_run: bool,
    /// Repositories a rule applied to.
    pub repositories: u64,
    /// Untagged manifests removed (dry run: that would be).
    pub manifests_removed: u64,
    /// Tags removed (dry run: that would be).
    pub tags_removed: u64,
    /// Candidates kept: within their period, among the newest, or protected.
    pub kept: u64,
    #[serde(rename = "duration_ms", serialize_with = "as_millis")]
    pub duration: Duration,
    /// The candidates, in the order looked at (at most `REPORT_LIMIT`).
    pub candidates: Vec<Candidate>,
    /// More candidates than the list holds (the counts are complete).
    pub truncated: bool,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl RetentionReport {
    fn add(&mut self, candidate: Candidate) {
        match candidate.action {
            Action::Keep => self.kept += 1,
            Action::Remove if candidate.tag.is_some() => self.tags_removed += 1,
            Action::Remove => self.manifests_removed += 1,
        }
        if self.candidates.len() < REPORT_LIMIT {
            self.candidates.push(candidate);
        } else {
            self.truncated = true;
        }
    }

    fn summary(&self) -> String {
        format!(
            "repositories {}, manifests removed {}, tags removed {}, kept {}, {} ms",
            self.repositories,
            self.manifests_removed,
            self.tags_removed,
            self.kept,
            self.duration.as_millis()
        )
    }
}

#[derive(Default)]
struct Counters {
    runs: AtomicU64,
    failed_runs: AtomicU64,
    manifests_removed: AtomicU64,
    tags_removed: AtomicU64,
}

pub struct RetentionService {
    meta: Arc<dyn MetadataStore>,
    trust: Arc<TrustService>,
    /// This replica's id, the prefix of the lease holder's name.
    replica: String,
    /// How long a policy "day" lasts: a day, or a second with `retention.allow_short_periods`
    /// (tests, which cannot wait days).
    day_seconds: i64,
    /// `retention.interval_seconds`: scheduled runs at most this often; `None` = on demand.
    schedule: Option<Duration>,
    last_scheduled: std::sync::Mutex<Option<Instant>>,
    counters: Counters,
}

/// One run's state: who, whether it changes anything, the lease, the report so far.
struct Run<'a> {
    actor: &'a Actor,
    dry_run: bool,
    holder: String,
    lease_until: i64,
    report: RetentionReport,
}

impl RetentionService {
    pub fn new(meta: Arc<dyn MetadataStore>, trust: Arc<TrustService>, replica: &str) -> Self {
        Self {
            meta,
            trust,
            replica: replica.to_owned(),
            day_seconds: DAY_SECONDS,
            schedule: None,
            last_scheduled: std::sync::Mutex::new(None),
            counters: Counters::default(),
        }
    }

    /// Run on a schedule (`run_if_due`), at most once per `interval` on this replica.
    pub fn with_schedule(mut self, interval: Option<Duration>) -> Self {
        self.schedule = interval;
        self
    }

    /// Count a policy day as one second (`retention.allow_short_periods`, tests only).
    pub fn with_short_days(mut self) -> Self {
        self.day_seconds = 1;
        self
    }

    /// The stored policy (the empty one when none was ever stored).
    pub async fn document(&self) -> Result<RetentionDocument, RetentionError> {
        let stored = self.meta.get_setting(RETENTION_POLICY_SETTING).await?;
        Ok(RetentionDocument::parse(
            stored.as_deref().unwrap_or(EMPTY_POLICY),
        )?)
    }

    /// Replace the policy. `document.version` must be the version the caller read; the
    /// stored one becomes the next. Checked whole before anything is written; stored with
    /// its audit record under a compare-and-swap on the stored bytes.
    pub async fn replace(
        &self,
        actor: &Actor,
        mut document: RetentionDocument,
    ) -> Result<RetentionDocument, RetentionError> {
        document.validate()?;
        let stored = self
            .meta
            .init_setting(RETENTION_POLICY_SETTING, EMPTY_POLICY)
            .await?;
        let current = RetentionDocument::parse(&stored).map(|d| d.version).unwrap_or(0);
        if document.version != current {
            return Err(RetentionError::VersionConflict {
                read: document.version,
                current,
            });
        }
        document.version = current + 1;
        let bytes = serde_json::to_vec(&document)
            .map_err(|e| RetentionError::Internal(format!("policy not serialisable: {e}")))?;
        let summary = summary(&document);
        let record = audit_record(actor, "retention-policy.update", "registry", &summary, now());
        let written = self
            .meta
            .update_settings_if(
                RETENTION_POLICY_SETTING,
                &stored,
                &[(RETENTION_POLICY_SETTING, Some(&bytes))],
                &record,
            )
            .await?;
        if !written {
            return Err(RetentionError::VersionConflict {
                read: current,
                current: current + 1,
            });
        }
        tracing::info!(actor = %actor.name, policy = %summary, "retention policy changed");
        Ok(document)
    }

    /// The scheduled run, called by the housekeeping: runs when a schedule is set and its
    /// interval has passed since this replica's last scheduled attempt. A run another
    /// replica holds the lease for counts as this interval's (`Busy`).
    pub async fn run_if_due(&self) -> Option<Result<RetentionReport, RetentionError>> {
        let interval = self.schedule?;
        {
            let mut last = self.last_scheduled.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < interval) {
                return None;
            }
            *last = Some(Instant::now());
        }
        let actor = Actor {
            name: "wharf (schedule)".into(),
            from: None,
        };
        Some(self.run(&actor, false, None).await)
    }

    /// Apply the policy now (to one repository, or all), or with `dry_run` only report.
    pub async fn run(
        &self,
        actor: &Actor,
        dry_run: bool,
        repository: Option<&str>,
    ) -> Result<RetentionReport, RetentionError> {
        if let Some(r) = repository
            && !crate::names::valid_repository_name(r)
        {
            return Err(RetentionError::InvalidRepository(r.to_owned()));
        }
        let started = Instant::now();
        let document = self.document().await?;
        let scopes = document.validate()?;
        let rules: Vec<(Scope, RetentionRule)> = scopes.into_iter().zip(document.rules).collect();
        let request = random_bytes::<12>().map_err(|e| RetentionError::Internal(e.to_string()))?;
        let mut run = Run {
            actor,
            dry_run,
            holder: format!("{}/{}", self.replica, hex::encode(request)),
            lease_until: 0,
            report: RetentionReport {
                dry_run,
                ..RetentionReport::default()
            },
        };
        if !dry_run {
            let t = now();
            if !self
                .meta
                .take_lease(RETENTION_LEASE, &run.holder, t + LEASE_SECONDS, t)
                .await?
            {
                return Err(RetentionError::Busy);
            }
            run.lease_until = t + LEASE_SECONDS;
        }
        let outcome = self.apply(&mut run, &rules, repository).await;
        run.report.duration = started.elapsed();
        if dry_run {
            return outcome.map(|()| run.report);
        }
        if let Err(e) = self.meta.release_lease(RETENTION_LEASE, &run.holder).await {
            tracing::warn!(error = %e, "retention lease not released; it expires");
        }
        let report = run.report;
        let c = &self.counters;
        c.runs.fetch_add(1, Ordering::Relaxed);
        if outcome.is_err() {
            c.failed_runs.fetch_add(1, Ordering::Relaxed);
        }
        c.manifests_removed
            .fetch_add(report.manifests_removed, Ordering::Relaxed);
        c.tags_removed.fetch_add(report.tags_removed, Ordering::Relaxed);
        let detail = match &outcome {
            Ok(()) => report.summary(),
            Err(e) => format!("{e}; so far: {}", report.summary()),
        };
        let target = repository.unwrap_or("registry");
        let record = audit_record(actor, "retention.run", target, &detail, now());
        if let Err(e) = self.meta.add_audit(&record).await {
            tracing::warn!(error = %e, "retention audit record not written");
        }
        match outcome {
            Ok(()) => {
                tracing::info!(summary = %report.summary(), "retention run done");
                Ok(report)
            }
            Err(e) => {
                tracing::warn!(error = %e, summary = %report.summary(), "retention run stopped");
                Err(e)
            }
        }
    }

    async fn apply(
        &self,
        run: &mut Run<'_>,
        rules: &[(Scope, RetentionRule)],
        only: Option<&str>,
    ) -> Result<(), RetentionError> {
        if rules.is_empty() {
            return Ok(());
        }
        if let Some(repository) = only {
            if self.meta.repository_exists(repository).await? {
                self.apply_to(run, rules, repository).await?;
            }
            return Ok(());
        }
        let mut last: Option<String> = None;
        loop {
            let page = self.meta.list_repositories("", last.as_deref(), PAGE).await?;
            for repository in &page {
                self.apply_to(run, rules, repository).await?;
            }
            match page.last() {
                Some(l) if page.len() == PAGE as usize => last = Some(l.clone()),
                _ => return Ok(()),
            }
        }
    }

    /// Renew the lease when less than `RENEW_BELOW_SECONDS` is left. Removals do not depend
    /// on it (each is checked by the store as it happens); it only keeps runs one at a time.
    async fn keep_lease(&self, run: &mut Run<'_>) -> Result<(), RetentionError> {
        if run.dry_run {
            return Ok(());
        }
        let t = now();
        if run.lease_until - t >= RENEW_BELOW_SECONDS {
            return Ok(());
        }
        if !self
            .meta
            .take_lease(RETENTION_LEASE, &run.holder, t + LEASE_SECONDS, t)
            .await?
        {
            return Err(RetentionError::Busy);
        }
        run.lease_until = t + LEASE_SECONDS;
        Ok(())
    }

    async fn apply_to(
        &self,
        run: &mut Run<'_>,
        rules: &[(Scope, RetentionRule)],
        repository: &str,
    ) -> Result<(), RetentionError> {
        let Some(rule) = most_specific(rules, repository) else {
            return Ok(());
        };
        if !rule.enabled || (rule.keep_tags.is_empty() && rule.untagged_after_days.is_none()) {
            return Ok(());
        }
        self.keep_lease(run).await?;
        run.report.repositories += 1;
        let dct = match self.trust.verified(repository).await? {
            Some(v) => DctFacts::from_view(&v.verified),
            None => DctFacts::None,
        };
        if !rule.keep_tags.is_empty() {
            let tags = self.meta.tag_details(repository).await?;
            self.apply_tag_rules(run, repository, &rule.keep_tags, &dct, tags)
                .await?;
        }
        if let Some(days) = rule.untagged_after_days {
            self.apply_untagged_rule(run, repository, days, &dct).await?;
        }
        Ok(())
    }

    async fn apply_tag_rules(
        &self,
        run: &mut Run<'_>,
        repository: &str,
        keep_tags: &[KeepTags],
        dct: &DctFacts,
        tags: Vec<TagDetail>,
    ) -> Result<(), RetentionError> {
        let mut groups: Vec<Vec<TagDetail>> = vec![Vec::new(); keep_tags.len()];
        for tag in tags {
            if let Some(i) = keep_tags.iter().position(|k| glob_matches(&k.pattern, &tag.tag)) {
                groups[i].push(tag);
            }
        }
        for (keep, mut group) in keep_tags.iter().zip(groups) {
            // Newest push first; equal times by name, so runs decide the same way.
            group.sort_by(|a, b| b.pushed_at.cmp(&a.pushed_at).then_with(|| b.tag.cmp(&a.tag)));
            for (rank, tag) in group.iter().enumerate() {
                let digest = Digest::parse(&tag.digest)
                    .map_err(|e| RetentionError::Internal(format!("stored tag digest: {e}")))?;
                let (action, reason) = if rank < keep.keep_last as usize {
                    (
                        Action::Keep,
                        format!("kept: newest {} of pattern {}", keep.keep_last, keep.pattern),
                    )
                } else if let Some(why) = self
                    .protection(repository, dct, Target::Tag { tag: &tag.tag })
                    .await?
                {
                    (Action::Keep, why)
                } else {
                    let reason = format!("beyond the newest {} of pattern {}", keep.keep_last, keep.pattern);
                    self.keep_lease(run).await?;
                    if run.dry_run
                        || self
                            .meta
                            .delete_tag_if_unchanged(
                                repository,
                                &tag.tag,
                                &digest,
                                tag.pushed_at,
                                &audit_record(
                                    run.actor,
                                    "tag.delete",
                                    &format!("{repository}:{}", tag.tag),
                                    &format!("retention: {reason}"),
                                    now(),
                                ),
                            )
                            .await?
                    {
                        (Action::Remove, reason)
                    } else {
                        (
                            Action::Keep,
                            "pushed again or locked since retention looked".to_owned(),
                        )
                    }
                };
                run.report.add(Candidate {
                    repository: repository.to_owned(),
                    tag: Some(tag.tag.clone()),
                    digest: tag.digest.clone(),
                    action,
                    reason,
                });
            }
        }
        Ok(())
    }

    async fn apply_untagged_rule(
        &self,
        run: &mut Run<'_>,
        repository: &str,
        days: u32,
        dct: &DctFacts,
    ) -> Result<(), RetentionError> {
        let t = now();
        let cutoff = t.saturating_sub(i64::from(days).saturating_mul(self.day_seconds));
        let mut after: Option<Digest> = None;
        loop {
            // Every untagged manifest, so the report also says which are still within
            // their period.
            let page = self
                .meta
                .untagged_manifests(repository, i64::MAX, after.as_ref(), PAGE)
                .await?;
            for manifest in &page {
                let (action, reason) = self
                    .untagged_verdict(run, repository, days, cutoff, dct, manifest)
                    .await?;
                run.report.add(Candidate {
                    repository: repository.to_owned(),
                    tag: None,
                    digest: manifest.digest.as_str().to_owned(),
                    action,
                    reason,
                });
            }
            match page.last() {
                Some(l) if page.len() == PAGE as usize => after = Some(l.digest.clone()),
                _ => return Ok(()),
            }
        }
    }

    async fn untagged_verdict(
        &self,
        run: &mut Run<'_>,
        repository: &str,
        days: u32,
        cutoff: i64,
        dct: &DctFacts,
        manifest: &UntaggedManifest,
    ) -> Result<(Action, String), RetentionError> {
        if manifest.untagged_since >= cutoff {
            let unit = if days == 1 { "day" } else { "days" };
            return Ok((Action::Keep, format!("within {days} {unit}")));
        }
        let target = Target::Manifest {
            digest: &manifest.digest,
            subject: manifest.subject.as_ref(),
        };
        if let Some(why) = self.protection(repository, dct, target).await? {
            return Ok((Action::Keep, why));
        }
        let age = (now() - manifest.untagged_since) / self.day_seconds;
        let reason = format!(
            "untagged for {age} days (since {})",
            rfc3339(manifest.untagged_since)
        );
        if run.dry_run {
            return Ok((Action::Remove, reason));
        }
        self.keep_lease(run).await?;
        let record = audit_record(
            run.actor,
            "manifest.delete",
            &format!("{repository}@{}", manifest.digest),
            &format!("retention: {reason}"),
            now(),
        );
        if self
            .meta
            .delete_untagged_manifest(repository, &manifest.digest, cutoff, &record)
            .await?
        {
            Ok((Action::Remove, reason))
        } else {
            Ok((
                Action::Keep,
                "tagged, listed by an index or locked against deletion".to_owned(),
            ))
        }
    }

    /// This replica's retention counters, Prometheus text format (dry runs not counted).
    pub fn render_metrics(&self) -> String {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "# HELP wharf_retention_runs_total Retention runs started by this replica (not dry runs).\n\
             # TYPE wharf_retention_runs_total counter\n\
             wharf_retention_runs_total {}\n\
             # HELP wharf_retention_failed_runs_total Retention runs that stopped on an error.\n\
             # TYPE wharf_retention_failed_runs_total counter\n\
             wharf_retention_failed_runs_total {}\n\
             # HELP wharf_retention_manifests_removed_total Untagged manifests removed by retention.\n\
             # TYPE wharf_retention_manifests_removed_total counter\n\
             wharf_retention_manifests_removed_total {}\n\
             # HELP wharf_retention_tags_removed_total Tags removed by retention.\n\
             # TYPE wharf_retention_tags_removed_total counter\n\
             wharf_retention_tags_removed_total {}\n",
            get(&c.runs),
            get(&c.failed_runs),
            get(&c.manifests_removed),
            get(&c.tags_removed),
        )
    }
}

/// The audit record's detail: each rule in a few words.
fn summary(document: &RetentionDocument) -> String {
    if document.rules.is_empty() {
        return format!("version {}: no rules", document.version);
    }
    let rules: Vec<String> = document
        .rules
        .iter()
        .map(|r| {
            let mut parts = vec![r.scope.clone()];
            if !r.enabled {
                parts.push("disabled".into());
            }
            if let Some(d) = r.untagged_after_days {
                parts.push(format!("untagged after {d} days"));
            }
            for k in &r.keep_tags {
                parts.push(format!("keep last {} of {}", k.keep_last, k.pattern));
            }
            parts.join(" ")
        })
        .collect();
    format!("version {}: {}", document.version, rules.join("; "))
}
