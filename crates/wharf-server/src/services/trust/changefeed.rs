//! Notary's changefeed (`GET …/_trust/changefeed` and `GET /v2/_trust/changefeed`): its
//! query parameters and the JSON of one page of changes.

use chrono::{DateTime, Utc};

use super::{TrustError, TrustResult, TrustService};

/// One changefeed page, already in notary's JSON shape.
pub fn changefeed_json(changes: &[wharf_store::TrustChange]) -> Vec<u8> {
    let records: Vec<serde_json::Value> = changes
        .iter()
        .map(|c| {
            let at = DateTime::<Utc>::from_timestamp(c.created_at, 0)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            serde_json::json!({
                "ID": c.id.to_string(),
                "CreatedAt": at,
                "GUN": c.gun,
                "Version": c.version,
                "SHA256": c.sha256,
                "Category": c.category,
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "count": records.len(), "records": records })).unwrap_or_default()
}

/// Notary's changefeed query: `records` required (0 = 100), `change_id` optional.
pub fn parse_changefeed_query(query: &str) -> TrustResult<(i64, i64)> {
    let mut change_id = None;
    let mut records = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "change_id" => change_id = Some(v),
            "records" => records = Some(v),
            _ => {}
        }
    }
    let records: i32 = records
        .and_then(|r| r.parse().ok())
        .ok_or_else(|| TrustError::InvalidParameters(format!("invalid records parameter: {records:?}")))?;
    let records = if records == 0 { 100 } else { i64::from(records) };
    let change_id = match change_id {
        None | Some("") => 0,
        Some(v) => v
            .parse()
            .map_err(|_| TrustError::InvalidParameters(format!("invalid change_id parameter: {v}")))?,
    };
    Ok((change_id, records))
}

impl TrustService {
    /// Changefeed of one repository.
    pub async fn changefeed(&self, repository: Option<&str>, query: &str) -> TrustResult<Vec<u8>> {
        let (change_id, records) = parse_changefeed_query(query)?;
        let changes = self.meta.trust_changes(repository, change_id, records).await?;
        Ok(changefeed_json(&changes))
    }

    /// The registry-wide changefeed as one caller may see it: only changes of
    /// repositories `may_read` accepts, paged exactly like the unfiltered feed (a page
    /// holds up to `records` visible changes; `change_id` moves past hidden ones).
    pub async fn readable_changefeed(
        &self,
        query: &str,
        may_read: impl Fn(&str) -> bool,
    ) -> TrustResult<Vec<u8>> {
        let (change_id, records) = parse_changefeed_query(query)?;
        let want = records.unsigned_abs().min(MAX_PAGE) as usize;
        // Notary's two directions: forward from `change_id`, or back from it (or from
        // the newest change when it is negative).
        let backward = records < 0 || change_id < 0;
        let step = if backward { -(want as i64) } else { want as i64 };
        let mut cursor = change_id;
        let mut visible: Vec<wharf_store::TrustChange> = Vec::new();
        while visible.len() < want {
            let batch = self.meta.trust_changes(None, cursor, step).await?;
            let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
                break;
            };
            let exhausted = batch.len() < want;
            cursor = if backward { first.id } else { last.id };
            let mut seen: Vec<_> = batch.into_iter().filter(|c| may_read(&c.repository)).collect();
            if backward {
                seen.append(&mut visible);
                visible = seen;
            } else {
                visible.append(&mut seen);
            }
            if exhausted {
                break;
            }
        }
        if backward {
            let extra = visible.len().saturating_sub(want);
            visible.drain(..extra);
        } else {
            visible.truncate(want);
        }
        Ok(changefeed_json(&visible))
    }
}

/// The store's own cap on one page of changes.
const MAX_PAGE: u64 = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changefeed_query_rules() {
        assert_eq!(parse_changefeed_query("records=0").unwrap(), (0, 100));
        assert_eq!(
            parse_changefeed_query("change_id=-1&records=-5").unwrap(),
            (-1, -5)
        );
        assert!(parse_changefeed_query("change_id=3").is_err());
        assert!(parse_changefeed_query("change_id=x&records=1").is_err());
    }
}
