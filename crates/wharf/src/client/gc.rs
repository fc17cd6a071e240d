//! `wharf gc run [--dry-run] [--grace SECONDS]`: one garbage collection now, through
//! `POST /api/v1/gc` (owner only); the server's report as JSON, or a summary for people.
//! `wharf gc status`: `GET /api/v1/gc`, what runs where and the answering replica's last run.

use reqwest::Method;
use serde_json::{Value, json};

use super::report::Report;
use super::session::admin_session;
use crate::cli::{AdminArgs, GcCommand};

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// "removed N blob links and M blobs, freed X bytes in Y ms", or for a dry run "would
/// remove …" followed by what would go.
fn summary(v: &Value) -> String {
    let counts = format!(
        "{} blob links and {} blobs",
        n(v, "links_removed"),
        n(v, "blobs_removed")
    );
    if v["dry_run"].as_bool() == Some(true) {
        let mut text = format!(
            "Dry run: would remove {counts}, freeing {} bytes ({} ms)",
            n(v, "bytes_freed"),
            n(v, "duration_ms")
        );
        let list = &v["would_remove"];
        for link in list["links"].as_array().into_iter().flatten() {
            text.push_str(&format!(
                "\n  link  {} {}",
                link["repository"].as_str().unwrap_or(""),
                link["digest"].as_str().unwrap_or("")
            ));
        }
        for blob in list["blobs"].as_array().into_iter().flatten() {
            text.push_str(&format!(
                "\n  blob  {} ({} bytes)",
                blob["digest"].as_str().unwrap_or(""),
                n(blob, "size")
            ));
        }
        if list["truncated"].as_bool() == Some(true) {
            text.push_str("\n  … and more (the counts above are complete)");
        }
        text
    } else {
        let mut text = format!(
            "Garbage collection removed {counts}, freed {} bytes in {} ms",
            n(v, "bytes_freed"),
            n(v, "duration_ms")
        );
        if n(v, "tombstones_finished") > 0 {
            text.push_str(&format!(
                "\n{} of the blobs were left by an interrupted run",
                n(v, "tombstones_finished")
            ));
        }
        if n(v, "deletions_failed") > 0 {
            text.push_str(&format!(
                "\n{} blobs could not be deleted this time; the next run retries them (see the server log)",
                n(v, "deletions_failed")
            ));
        }
        text
    }
}

/// "No collection is running." or who runs one and how far it got, then the last run.
fn status_text(v: &Value) -> String {
    let progress = &v["progress"];
    let running = &v["running"];
    let mut text = if progress.is_object() {
        format!(
            "A collection is running on this replica since {} ({}): {} blob links and {} blobs removed so far, {} bytes freed",
            progress["started_at"].as_str().unwrap_or(""),
            progress["phase"].as_str().unwrap_or(""),
            n(progress, "links_removed"),
            n(progress, "blobs_removed"),
            n(progress, "bytes_freed")
        )
    } else if running.is_object() {
        format!(
            "A collection holds the GC lease on replica {} until {}",
            running["replica"].as_str().unwrap_or(""),
            running["lease_expires_at"].as_str().unwrap_or("")
        )
    } else {
        "No collection is running.".to_owned()
    };
    let schedule = match n(v, "interval_seconds") {
        0 => "on demand only".to_owned(),
        s => format!("every {s} s"),
    };
    text.push_str(&format!(
        "
Grace period {} s; scheduled runs: {schedule}",
        n(v, "grace_seconds")
    ));
    let last = &v["last_run"];
    if last.is_object() {
        text.push_str(&format!(
            "
Last run on this replica, finished {} (started by {}): {}",
            last["finished_at"].as_str().unwrap_or(""),
            last["by"].as_str().unwrap_or(""),
            summary(&last["report"])
        ));
        if let Some(e) = last["error"].as_str() {
            text.push_str(&format!(
                "
  stopped: {e}"
            ));
        }
    }
    text
}

pub async fn run(a: AdminArgs<GcCommand>) -> anyhow::Result<Report> {
    let session = admin_session(a.registry.clone(), a.server.ca_file.clone()).await?;
    match a.command {
        GcCommand::Run { dry_run, grace } => {
            let mut body = json!({ "dry_run": dry_run });
            if let Some(g) = grace {
                body["grace_seconds"] = json!(g);
            }
            let v = session.call(Method::POST, "/api/v1/gc", Some(body)).await?;
            let text = summary(&v);
            Ok(Report::new(v, text))
        }
        GcCommand::Status => {
            let v = session.call(Method::GET, "/api/v1/gc", None).await?;
            let text = status_text(&v);
            Ok(Report::new(v, text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_for_people() {
        let run = json!({"dry_run": false, "links_removed": 3, "blobs_removed": 2, "bytes_freed": 1234,
            "tombstones_finished": 0, "deletions_failed": 0, "duration_ms": 17});
        assert_eq!(
            summary(&run),
            "Garbage collection removed 3 blob links and 2 blobs, freed 1234 bytes in 17 ms"
        );
        let dry = json!({"dry_run": true, "links_removed": 1, "blobs_removed": 1, "bytes_freed": 5,
            "tombstones_finished": 0, "deletions_failed": 0, "duration_ms": 2,
            "would_remove": {"links": [{"repository": "a/b", "digest": "sha256:aa"}],
                             "blobs": [{"digest": "sha256:aa", "size": 5}], "truncated": false}});
        assert_eq!(
            summary(&dry),
            "Dry run: would remove 1 blob links and 1 blobs, freeing 5 bytes (2 ms)\n  link  a/b sha256:aa\n  blob  sha256:aa (5 bytes)"
        );
    }

    #[test]
    fn status_for_people() {
        let idle = json!({"running": null, "progress": null, "last_run": null, "grace_seconds": 3600, "interval_seconds": 0});
        assert_eq!(
            status_text(&idle),
            "No collection is running.\nGrace period 3600 s; scheduled runs: on demand only"
        );
        let busy = json!({"running": {"replica": "r2", "here": false, "lease_expires_at": "2026-12-06T12:00:00Z"},
            "progress": null, "grace_seconds": 600, "interval_seconds": 86400,
            "last_run": {"finished_at": "2026-12-05T12:00:00Z", "by": "wharf (schedule)", "error": "garbage collection stopped: x",
                "report": {"dry_run": false, "links_removed": 1, "blobs_removed": 0, "bytes_freed": 0, "duration_ms": 4}}});
        assert_eq!(
            status_text(&busy),
            "A collection holds the GC lease on replica r2 until 2026-12-06T12:00:00Z\n\
             Grace period 600 s; scheduled runs: every 86400 s\n\
             Last run on this replica, finished 2026-12-05T12:00:00Z (started by wharf (schedule)): \
             Garbage collection removed 1 blob links and 0 blobs, freed 0 bytes in 4 ms\n  stopped: garbage collection stopped: x"
        );
    }
}
