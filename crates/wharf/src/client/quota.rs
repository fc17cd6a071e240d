//! `wharf quota show|set|remove`: storage quotas (`/api/v1/quotas`, owner only), the most
//! bytes a scope may hold before pushes into it are refused.
//!
//! As `wharf policy` does: the API replaces the whole document under its `version`, so
//! `set` and `remove` read it, change the one scope they name and write it back with the
//! version read; on 409 `CONFLICT` they read and apply once more, then give up with the
//! server's message.

use reqwest::Method;
use serde_json::{Value, json};

use super::report::{INVALID_INPUT, INVALID_RESPONSE, Report, describe, fail, human_bytes, table};
use super::session::{Session, admin_session};
use crate::cli::{AdminArgs, QuotaCommand};

const PATH: &str = "/api/v1/quotas";
/// `remove` of a scope without a quota: the code the admin API gives things that are not there.
const NOT_FOUND: &str = "NOT_FOUND";
/// The admin API's answer to a write based on an older version.
const CONFLICT: &str = "CONFLICT";

/// Where the quotas are read and written: the admin API (a stand-in in the tests below).
trait QuotaApi {
    async fn get(&self) -> anyhow::Result<Value>;
    async fn put(&self, document: &Value) -> anyhow::Result<Value>;
}

impl QuotaApi for Session {
    async fn get(&self) -> anyhow::Result<Value> {
        self.call(Method::GET, PATH, None).await
    }

    async fn put(&self, document: &Value) -> anyhow::Result<Value> {
        self.call(Method::PUT, PATH, Some(document.clone())).await
    }
}

fn version_of(document: &Value) -> anyhow::Result<u64> {
    document["version"].as_u64().ok_or_else(|| {
        fail(
            INVALID_RESPONSE,
            format!("the server answered without a quota version: {document}"),
        )
    })
}

fn rules_of(document: &Value) -> anyhow::Result<&Vec<Value>> {
    document["rules"].as_array().ok_or_else(|| {
        fail(
            INVALID_RESPONSE,
            format!("the server answered without quota rules: {document}"),
        )
    })
}

fn scope_of(rule: &Value) -> &str {
    rule["scope"].as_str().unwrap_or_default().trim()
}

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
    let version = version_of(document)?;
    let rules = rules_of(document)?;
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

enum Change {
    Set { scope: String, max_bytes: u64 },
    Remove(String),
}

/// `document` with `change` applied (its version kept: the one read); `None` when that
/// changes nothing.
fn apply(document: &Value, change: &Change) -> anyhow::Result<Option<Value>> {
    let mut rules = rules_of(document)?.clone();
    match change {
        Change::Set { scope, max_bytes } => {
            let rule = json!({ "scope": scope, "max_bytes": max_bytes });
            match rules.iter().position(|r| scope_of(r) == scope) {
                Some(i) if rules[i] == rule => return Ok(None),
                Some(i) => rules[i] = rule,
                None => rules.push(rule),
            }
        }
        Change::Remove(scope) => {
            let before = rules.len();
            rules.retain(|r| scope_of(r) != scope);
            if rules.len() == before {
                return Err(fail(NOT_FOUND, format!("no quota for scope {scope}")));
            }
        }
    }
    let mut next = document.clone();
    next["rules"] = Value::Array(rules);
    Ok(Some(next))
}

/// Read, change, write with the version read; once more when someone else wrote in between.
async fn change(api: &impl QuotaApi, change: &Change) -> anyhow::Result<Value> {
    let mut retried = false;
    loop {
        let current = api.get().await?;
        version_of(&current)?;
        let Some(next) = apply(&current, change)? else {
            return Ok(current);
        };
        match api.put(&next).await {
            Ok(stored) => return Ok(stored),
            Err(e) if !retried && describe(&e).0 == CONFLICT => retried = true,
            Err(e) => return Err(e),
        }
    }
}

pub async fn run(a: AdminArgs<QuotaCommand>) -> anyhow::Result<Report> {
    // A bad size is refused before logging in.
    let planned = match &a.command {
        QuotaCommand::Show => None,
        QuotaCommand::Set { scope, size } => Some(Change::Set {
            scope: scope.trim().to_owned(),
            max_bytes: parse_size(size)?,
        }),
        QuotaCommand::Remove { scope } => Some(Change::Remove(scope.trim().to_owned())),
    };
    let session = admin_session(a.registry.clone(), a.server.ca_file.clone()).await?;
    let Some(planned) = planned else {
        let document = session.get().await?;
        let text = show_text(&document)?;
        return Ok(Report::new(document, text));
    };
    let stored = change(&session, &planned).await?;
    let version = version_of(&stored)?;
    let text = match &planned {
        Change::Set { scope, max_bytes } => format!(
            "Quota for {scope}: {} ({max_bytes} bytes) (quotas version {version})",
            human_bytes(*max_bytes)
        ),
        Change::Remove(scope) => format!("Removed the quota for {scope} (quotas version {version})"),
    };
    Ok(Report::new(stored, text))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

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

    /// An endpoint that answers `CONFLICT` to the first `conflicts` writes.
    struct Fake {
        stored: RefCell<Value>,
        conflicts: RefCell<u32>,
        writes: RefCell<u32>,
    }

    impl QuotaApi for Fake {
        async fn get(&self) -> anyhow::Result<Value> {
            Ok(self.stored.borrow().clone())
        }

        async fn put(&self, document: &Value) -> anyhow::Result<Value> {
            *self.writes.borrow_mut() += 1;
            let mut stored = self.stored.borrow_mut();
            if *self.conflicts.borrow() > 0 {
                *self.conflicts.borrow_mut() -= 1;
                let v = stored["version"].as_u64().unwrap();
                stored["version"] = json!(v + 1);
                stored["rules"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"scope": format!("repository:other{v}"), "max_bytes": 1}));
                return Err(fail(CONFLICT, "changed"));
            }
            assert_eq!(document["version"], stored["version"]);
            let mut next = document.clone();
            next["version"] = json!(stored["version"].as_u64().unwrap() + 1);
            *stored = next.clone();
            Ok(next)
        }
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_change_is_applied_again_once_after_a_conflict_and_keeps_the_other_rules() {
        let api = Fake {
            stored: RefCell::new(json!({"version": 3, "rules": [{"scope": "registry", "max_bytes": 9}]})),
            conflicts: RefCell::new(1),
            writes: RefCell::new(0),
        };
        let set = Change::Set {
            scope: "repository:team/*".into(),
            max_bytes: 5,
        };
        let stored = run(change(&api, &set)).unwrap();
        assert_eq!(*api.writes.borrow(), 2);
        assert_eq!(
            stored,
            json!({"version": 5, "rules": [
                {"scope": "registry", "max_bytes": 9},
                {"scope": "repository:other3", "max_bytes": 1},
                {"scope": "repository:team/*", "max_bytes": 5},
            ]})
        );
        // The same limit again writes nothing.
        run(change(&api, &set)).unwrap();
        assert_eq!(*api.writes.borrow(), 2);

        *api.conflicts.borrow_mut() = 2;
        let err = run(change(&api, &Change::Remove("registry".into()))).unwrap_err();
        assert_eq!(describe(&err).0, CONFLICT);
        assert_eq!(*api.writes.borrow(), 4, "one retry, then the server's answer");
        let err = run(change(&api, &Change::Remove("repository:nothing".into()))).unwrap_err();
        assert_eq!(err.to_string(), "no quota for scope repository:nothing");
    }
}
