//! `wharf gc run [--dry-run] [--grace SECONDS]`: one garbage collection now, through
//! `POST /api/v1/gc` (owner only); the server's report as JSON, or a summary for people.

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
}
