//! Recent admin and signing events.

use wharf_store::AuditRecord;

use super::html::{Notice, Section, Viewer, esc, page, table, time};

pub fn audit(viewer: &Viewer, records: &[AuditRecord], notice: &Option<Notice>) -> String {
    let rows: Vec<(String, Vec<String>)> = records
        .iter()
        .map(|r| {
            (
                String::new(),
                vec![
                    time(r.at),
                    esc(&r.actor),
                    format!("<code>{}</code>", esc(&r.action)),
                    esc(&r.target),
                    esc(&r.detail),
                ],
            )
        })
        .collect();
    let body = table(
        &format!("The {} most recent events, newest first", records.len()),
        &["When", "Who", "Action", "Target", "Detail"],
        &rows,
        "No events recorded yet.",
    );
    page("Audit", Section::Audit, Some(viewer), notice, &body)
}
