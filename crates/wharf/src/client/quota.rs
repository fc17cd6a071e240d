//! `wharf quota show|set|remove`: storage quotas (`/api/v1/quotas`, owner only), the most
//! bytes a scope may hold before pushes into it are refused.
//!
//! As `wharf policy` does: the API replaces the whole document under its `version`, so
//! `set` and `remove` read it, change the one scope they name and write it back with the
//! version read; on 409 `CONFLICT` they read and apply once more, then give up with the
//! server's message.

use serde_json::{Value, json};

use super::report::{INVALID_INPUT, Report, fail, human_bytes, table};
use super::rules_document::{RuleChange, RulesApi as _, RulesDocument, scope_of};
use super::session::admin_session;
use crate::cli::{AdminArgs, QuotaCommand};

const QUOTAS: RulesDocument = RulesDocument {
    path: "/api/v1/quotas",
    noun: "quota",
    rule: "quota",
};

/// `10GiB`, `500 MiB`, `1024`: whole numbers of bytes, KiB, MiB, GiB or TiB (binary units,
/// as `wharf repository usage` prints sizes). The server refuses 0.
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let invalid = || {
        fail(
            INVALID_INPUT,
            format!(
                "invalid size {text:?}: expected a whole number of bytes, or of KiB, MiB, GiB or TiB (e.g. 10GiB)"
            ),
        )
    };
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "kib" => 10,
        "mib" => 20,
        "gib" => 30,
        "tib" => 40,
        _ => return Err(invalid()),
    };
    number.checked_mul(1u64 << shift).ok_or_else(invalid)
}

fn limit_text(rule: &Value) -> String {
    rule["max_bytes"]
        .as_u64()
        .map_or_else(|| "?".to_owned(), |n| format!("{} ({n} bytes)", human_bytes(n)))
}

fn show_text(document: &Value) -> anyhow::Result<String> {
    let version = QUOTAS.version_of(document)?;
    let rules = QUOTAS.rules_of(document)?;
    if rules.is_empty() {
        return Ok(format!("Quotas version {version}: none (pushes are not limited)"));
    }
    let scope = |r: &Value| scope_of(r).to_owned();
    let limit = |r: &Value| limit_text(r);
    Ok(format!(
        "Quotas version {version}\n{}",
        table(rules, &[("SCOPE", &scope), ("MAX", &limit)])
    ))
}

/// The quota rule `quota set` writes.
fn quota_rule(scope: &str, max_bytes: u64) -> Value {
    json!({ "scope": scope.trim(), "max_bytes": max_bytes })
}

pub async fn run(a: AdminArgs<QuotaCommand>) -> anyhow::Result<Report> {
    // A bad size is refused before logging in.
    let planned = match &a.command {
        QuotaCommand::Show => None,
        QuotaCommand::Set { scope, size } => Some(RuleChange::Set(quota_rule(scope, parse_size(size)?))),
        QuotaCommand::Remove { scope } => Some(RuleChange::Remove(scope.trim().to_owned())),
    };
    let session = admin_session(a.registry.clone(), a.server.ca_file.clone()).await?;
    let api = QUOTAS.on(&session);
    let Some(planned) = planned else {
        let document = api.get().await?;
        let text = show_text(&document)?;
        return Ok(Report::new(document, text));
    };
    let (stored, _) = QUOTAS.change(&api, &planned).await?;
    let version = QUOTAS.version_of(&stored)?;
    let text = match &planned {
        RuleChange::Set(rule) => {
            let max_bytes = rule["max_bytes"].as_u64().unwrap_or_default();
            format!(
                "Quota for {}: {} ({max_bytes} bytes) (quotas version {version})",
                scope_of(rule),
                human_bytes(max_bytes)
            )
        }
        RuleChange::Remove(scope) => format!("Removed the quota for {scope} (quotas version {version})"),
    };
    Ok(Report::new(stored, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("10GiB").unwrap(), 10 << 30);
        assert_eq!(parse_size(" 500 mib ").unwrap(), 500 << 20);
        assert_eq!(parse_size("3B").unwrap(), 3);
        for bad in ["10GB", "1.5GiB", "-1", "", "GiB", "99999999999TiB"] {
            assert_eq!(
                parse_size(bad).unwrap_err().to_string(),
                format!(
                    "invalid size {bad:?}: expected a whole number of bytes, or of KiB, MiB, GiB or TiB (e.g. 10GiB)"
                ),
            );
        }
    }
}
