//! `wharf retention show|set|remove|run`: the retention policy (`/api/v1/retention-policy`,
//! owner only) and runs of it (`POST /api/v1/retention/run`).
//!
//! Like `wharf policy`, `set` and `remove` read the whole document, change the one scope's
//! rule and write it back with the version read; on `CONFLICT` (someone wrote in between)
//! they read it again and apply the change once more, then give up with the server's
//! message. Rules they do not touch go back as the server sent them.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::report::{INVALID_INPUT, Report, fail, table};
use super::rules_document::{Applied, RuleChange, RulesApi as _, RulesDocument, scope_of};
use super::session::admin_session;
use crate::cli::{AdminArgs, RetentionCommand, RetentionSetArgs};

const RETENTION: RulesDocument = RulesDocument {
    path: "/api/v1/retention-policy",
    noun: "policy",
    rule: "retention rule",
};

/// One line about a rule: `untagged after 7 days; keep last 3 of v*`.
fn summary(rule: &Value) -> String {
    let mut parts = Vec::new();
    if rule["enabled"].as_bool() == Some(false) {
        parts.push("disabled".to_owned());
    }
    if let Some(days) = rule["untagged_after_days"].as_u64() {
        parts.push(format!("untagged after {days} days"));
    }
    for keep in rule["keep_tags"].as_array().into_iter().flatten() {
        parts.push(format!(
            "keep last {} of {}",
            keep["keep_last"].as_u64().unwrap_or(0),
            keep["pattern"].as_str().unwrap_or("?")
        ));
    }
    if parts.is_empty() {
        "nothing removed".to_owned()
    } else {
        parts.join("; ")
    }
}

fn show_text(document: &Value) -> anyhow::Result<String> {
    let version = RETENTION.version_of(document)?;
    let rules = RETENTION.rules_of(document)?;
    if rules.is_empty() {
        return Ok(format!(
            "Retention policy version {version}: no rules (nothing is removed)"
        ));
    }
    let scope = |r: &Value| scope_of(r).to_owned();
    let what = |r: &Value| summary(r);
    Ok(format!(
        "Retention policy version {version}\n{}",
        table(rules, &[("SCOPE", &scope), ("RULE", &what)])
    ))
}

/// `PATTERN=K` of `--keep-tags`.
fn keep_tags(spec: &str) -> anyhow::Result<Value> {
    let bad = || {
        fail(
            INVALID_INPUT,
            format!("--keep-tags expects PATTERN=COUNT, like v*=3, got {spec:?}"),
        )
    };
    let (pattern, count) = spec.rsplit_once('=').ok_or_else(bad)?;
    let count: u64 = count.trim().parse().map_err(|_| bad())?;
    if pattern.trim().is_empty() {
        return Err(bad());
    }
    Ok(json!({ "pattern": pattern.trim(), "keep_last": count }))
}

/// The rule `set` writes, as the server stores it (defaults left out).
fn rule_from(args: &RetentionSetArgs) -> anyhow::Result<Value> {
    let mut rule = Map::new();
    rule.insert("scope".into(), json!(args.scope.trim()));
    if args.disabled {
        rule.insert("enabled".into(), json!(false));
    }
    if let Some(days) = args.untagged_after_days {
        rule.insert("untagged_after_days".into(), json!(days));
    }
    if !args.keep_tags.is_empty() {
        let entries = args
            .keep_tags
            .iter()
            .map(|s| keep_tags(s))
            .collect::<anyhow::Result<Vec<Value>>>()?;
        rule.insert("keep_tags".into(), Value::Array(entries));
    }
    Ok(Value::Object(rule))
}

/// The run report for people: the counts, then one line per candidate.
fn run_text(v: &Value) -> String {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    let dry = v["dry_run"].as_bool() == Some(true);
    let mut text = format!(
        "{} {} untagged manifests and {} tags in {} repositories; kept {} ({} ms)",
        if dry {
            "Dry run: would remove"
        } else {
            "Retention removed"
        },
        n("manifests_removed"),
        n("tags_removed"),
        n("repositories"),
        n("kept"),
        n("duration_ms")
    );
    for c in v["candidates"].as_array().into_iter().flatten() {
        let what = match c["tag"].as_str() {
            Some(tag) => format!("{}:{tag}", c["repository"].as_str().unwrap_or("")),
            None => format!(
                "{}@{}",
                c["repository"].as_str().unwrap_or(""),
                c["digest"].as_str().unwrap_or("")
            ),
        };
        text.push_str(&format!(
            "\n  {:<6} {what}  {}",
            c["action"].as_str().unwrap_or("?"),
            c["reason"].as_str().unwrap_or("")
        ));
    }
    if v["truncated"].as_bool() == Some(true) {
        text.push_str("\n  … and more (the counts above are complete)");
    }
    text
}

pub async fn run(a: AdminArgs<RetentionCommand>) -> anyhow::Result<Report> {
    // What can be refused without the server is refused before logging in.
    if let RetentionCommand::Set(args) = &a.command {
        rule_from(args)?;
    }
    let session = admin_session(a.registry.clone(), a.server.ca_file.clone()).await?;
    match &a.command {
        RetentionCommand::Show => {
            let document = RETENTION.on(&session).get().await?;
            let text = show_text(&document)?;
            Ok(Report::new(document, text))
        }
        RetentionCommand::Set(args) => {
            let rule = rule_from(args)?;
            let set = RuleChange::Set(rule.clone());
            let (stored, applied) = RETENTION.change(&RETENTION.on(&session), &set).await?;
            let version = RETENTION.version_of(&stored)?;
            let text = if applied != Applied::Unchanged {
                format!(
                    "Retention rule for {}: {} (policy version {version})",
                    scope_of(&rule),
                    summary(&rule)
                )
            } else {
                format!(
                    "The retention rule for {} is already {} (policy version {version}); nothing changed",
                    scope_of(&rule),
                    summary(&rule)
                )
            };
            Ok(Report::new(stored, text))
        }
        RetentionCommand::Remove { scope } => {
            let remove = RuleChange::Remove(scope.clone());
            let (stored, _) = RETENTION.change(&RETENTION.on(&session), &remove).await?;
            let text = format!(
                "Removed the retention rule for {} (policy version {})",
                scope.trim(),
                RETENTION.version_of(&stored)?
            );
            Ok(Report::new(stored, text))
        }
        RetentionCommand::Run { dry_run, repository } => {
            let mut body = json!({ "dry_run": dry_run });
            if let Some(r) = repository {
                body["repository"] = json!(r);
            }
            let v = session
                .call(Method::POST, "/api/v1/retention/run", Some(body))
                .await?;
            let text = run_text(&v);
            Ok(Report::new(v, text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::report::describe;
    use crate::client::rules_document::NOT_FOUND;

    #[test]
    fn rules_and_changes() {
        assert_eq!(
            keep_tags("v*=3").unwrap(),
            json!({"pattern": "v*", "keep_last": 3})
        );
        assert_eq!(
            describe(&keep_tags("v*").unwrap_err()).1,
            "--keep-tags expects PATTERN=COUNT, like v*=3, got \"v*\""
        );
        let doc = json!({"version": 2, "rules": [{"scope": "registry", "untagged_after_days": 30}]});
        let rule = json!({"scope": "repository:team/*", "keep_tags": [{"pattern": "v*", "keep_last": 3}]});
        let (next, applied) = RETENTION.apply(&doc, &RuleChange::Set(rule.clone())).unwrap();
        let next = next.unwrap();
        assert_eq!(applied, Applied::Added);
        assert_eq!(next["version"], 2, "written with the version read");
        assert_eq!(next["rules"][1], rule);
        assert_eq!(
            RETENTION.apply(&next, &RuleChange::Set(rule)).unwrap(),
            (None, Applied::Unchanged)
        );
        assert_eq!(
            describe(
                &RETENTION
                    .apply(&doc, &RuleChange::Remove("repository:x".into()))
                    .unwrap_err()
            ),
            (
                NOT_FOUND.to_owned(),
                "no retention rule for scope repository:x".to_owned()
            )
        );
        assert_eq!(summary(&next["rules"][1]), "keep last 3 of v*");
        assert_eq!(summary(&doc["rules"][0]), "untagged after 30 days");
    }

    #[test]
    fn run_reports_for_people() {
        let v = json!({"dry_run": true, "repositories": 1, "manifests_removed": 1, "tags_removed": 0,
            "kept": 1, "duration_ms": 3, "truncated": false, "candidates": [
                {"repository": "a", "digest": "sha256:aa", "action": "remove", "reason": "untagged for 9 days"},
                {"repository": "a", "tag": "v1", "digest": "sha256:bb", "action": "keep", "reason": "signed: v1 (targets)"}]});
        assert_eq!(
            run_text(&v),
            "Dry run: would remove 1 untagged manifests and 0 tags in 1 repositories; kept 1 (3 ms)\n  remove a@sha256:aa  untagged for 9 days\n  keep   a:v1  signed: v1 (targets)"
        );
    }
}
