//! Storage → Garbage collection: whether a collection runs and where, this replica's
//! progress and last run, a dry run's lists, and the buttons to preview or collect.

use std::fmt::Write as _;

use super::html::{Notice, Section, Viewer, button_form, esc, page, size, table};
use crate::services::gc::{GcPhase, GcReport, GcStatus};

pub const GC_PAGE: &str = "/portal/storage/gc";

/// How many of a dry run's links and blobs the page lists (the counts are complete).
const PREVIEW_ROWS: usize = 50;

pub fn gc(viewer: &Viewer, status: &GcStatus, preview: Option<&GcReport>, notice: &Option<Notice>) -> String {
    let mut body = String::new();
    body.push_str(r#"<section aria-labelledby="gc-now"><h2 id="gc-now">Now</h2>"#);
    body.push_str(&running(status));
    let schedule = if status.interval_seconds == 0 {
        "Runs only on demand (<code>gc.interval_seconds</code> = 0).".to_owned()
    } else {
        format!(
            "Runs every {} seconds on a schedule (one replica at a time).",
            status.interval_seconds
        )
    };
    let _ = write!(
        body,
        r#"<p>Blobs and blob links go once nothing has referenced them for <strong id="gc-grace">{}</strong> seconds (<code>gc.grace_seconds</code>), so pushes in flight keep theirs. {schedule} Untagged manifests are not collected.</p>"#,
        status.grace_seconds
    );
    let _ = write!(
        body,
        r#"<div class="row-actions">{}{}<a href="{GC_PAGE}">Refresh</a></div></section>"#,
        button_form(
            GC_PAGE,
            viewer.csrf,
            &[("op", "dry-run")],
            "Preview (dry run)",
            false
        ),
        button_form(
            GC_PAGE,
            viewer.csrf,
            &[("op", "run")],
            "Collect garbage now",
            true
        ),
    );
    body.push_str(&last_run(status));
    if let Some(report) = preview {
        body.push_str(&dry_run(report));
    }
    page(
        "Garbage collection",
        Section::Storage,
        Some(viewer),
        notice,
        &body,
    )
}

fn running(status: &GcStatus) -> String {
    match (&status.running, &status.progress) {
        (_, Some(p)) => {
            let phase = match p.phase {
                GcPhase::Tombstones => "finishing an interrupted run's deletions",
                GcPhase::Links => "removing unreferenced blob links",
                GcPhase::Blobs => "deleting unreferenced blobs",
            };
            format!(
                r#"<p id="gc-state">A collection is running on this replica since {}: {phase}. So far {} links and {} blobs removed, {} freed.</p>"#,
                esc(&p.started_at),
                p.links_removed,
                p.blobs_removed,
                size(p.bytes_freed)
            )
        }
        (Some(r), None) if r.here => format!(
            r#"<p id="gc-state">The GC lease is held by an earlier run of this replica that stopped (the server restarted). Its deletions may still be landing, so no collection starts until the lease runs out at {}; the next run then finishes what it left.</p>"#,
            esc(&r.lease_expires_at)
        ),
        (Some(r), None) => format!(
            r#"<p id="gc-state">A collection is running on replica <code>{}</code> (its lease runs until {}). Its progress is shown on that replica.</p>"#,
            esc(&r.replica),
            esc(&r.lease_expires_at)
        ),
        (None, None) => r#"<p id="gc-state">No collection is running.</p>"#.to_owned(),
    }
}

fn last_run(status: &GcStatus) -> String {
    let Some(last) = &status.last_run else {
        return r#"<section aria-labelledby="gc-last"><h2 id="gc-last">Last run</h2><p class="empty">None on this replica since it started; the audit log lists every run (<code>gc.run</code>).</p></section>"#.to_owned();
    };
    let r = &last.report;
    let outcome = match &last.error {
        Some(e) => format!(r#"<p class="notice error">Stopped: {}</p>"#, esc(e)),
        None => String::new(),
    };
    format!(
        r#"<section aria-labelledby="gc-last"><h2 id="gc-last">Last run</h2>{outcome}<dl id="gc-last-run">
<dt>Finished</dt><dd>{}</dd><dt>Started by</dt><dd>{}</dd>
<dt>Blob links removed</dt><dd>{}</dd><dt>Blobs removed</dt><dd>{}</dd><dt>Freed</dt><dd>{}</dd>
<dt>Interrupted deletions finished</dt><dd>{}</dd><dt>Deletions to retry</dt><dd>{}</dd><dt>Took</dt><dd>{} ms</dd></dl></section>"#,
        esc(&last.finished_at),
        esc(&last.by),
        r.links_removed,
        r.blobs_removed,
        size(r.bytes_freed),
        r.tombstones_finished,
        r.deletions_failed,
        r.duration.as_millis()
    )
}

/// The notice after "Collect now" when the run finished while the page waited.
pub fn finished_notice(report: &GcReport) -> String {
    format!(
        "Garbage collection finished: {} blob links and {} blobs removed, {} freed.",
        report.links_removed,
        report.blobs_removed,
        size(report.bytes_freed)
    )
}

fn dry_run(report: &GcReport) -> String {
    let mut out = format!(
        r#"<section aria-labelledby="gc-preview"><h2 id="gc-preview">Dry run</h2><p id="gc-preview-summary">A collection now would remove {} blob links and {} blobs, freeing {}. Nothing was changed.</p>"#,
        report.links_removed,
        report.blobs_removed,
        size(report.bytes_freed)
    );
    if let Some(list) = &report.would_remove {
        let links: Vec<(String, Vec<String>)> = list
            .links
            .iter()
            .take(PREVIEW_ROWS)
            .map(|l| {
                (
                    String::new(),
                    vec![esc(&l.repository), format!("<code>{}</code>", esc(&l.digest))],
                )
            })
            .collect();
        out.push_str(&table(
            "Blob links that would go",
            &["Repository", "Blob"],
            &links,
            "No blob link would go.",
        ));
        let blobs: Vec<(String, Vec<String>)> = list
            .blobs
            .iter()
            .take(PREVIEW_ROWS)
            .map(|b| {
                (
                    String::new(),
                    vec![format!("<code>{}</code>", esc(&b.digest)), size(b.size)],
                )
            })
            .collect();
        out.push_str(&table(
            "Blobs that would be deleted",
            &["Blob", "Size"],
            &blobs,
            "No blob would be deleted.",
        ));
        if list.links.len() > PREVIEW_ROWS || list.blobs.len() > PREVIEW_ROWS || list.truncated {
            let _ = write!(
                out,
                r#"<p>The first {PREVIEW_ROWS} of each are shown; <code>wharf gc run --dry-run --output json</code> lists up to 1000.</p>"#
            );
        }
    }
    out.push_str("</section>");
    out
}
