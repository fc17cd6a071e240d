//! The admin API's versioned documents of rules, one rule per scope: the signature policy
//! (`wharf policy`), storage quotas (`wharf quota`) and the retention policy (`wharf
//! retention`).
//!
//! Each API replaces the whole document and guards it with its `version`, so a change
//! reads it, changes the one scope's rule and writes it back with the version read; when
//! someone wrote in between (409 `CONFLICT`) it reads again and applies the change once
//! more, then gives up with the server's message. Rules are handled as the JSON the server
//! sent, so those a change does not touch — and fields a newer server adds — go back as
//! they came.

use reqwest::Method;
use serde_json::Value;

use super::report::{INVALID_RESPONSE, describe, fail};
use super::session::Session;

/// `remove` of a scope without a rule: the code the admin API gives things that are not there.
pub const NOT_FOUND: &str = "NOT_FOUND";
/// The admin API's answer to a write based on an older version.
pub const CONFLICT: &str = "CONFLICT";

/// Where a document is read and written: the admin API (a stand-in in the tests).
pub trait RulesApi {
    async fn get(&self) -> anyhow::Result<Value>;
    async fn put(&self, document: &Value) -> anyhow::Result<Value>;
}

/// One of the admin API's rule documents: where it lives and how its messages name it.
#[derive(Clone, Copy)]
pub struct RulesDocument {
    pub path: &'static str,
    /// "policy", "quota": "the server answered without a policy version".
    pub noun: &'static str,
    /// "rule", "quota", "retention rule": "no quota for scope …".
    pub rule: &'static str,
}

/// A rule's scope as the server reads it (surrounding blanks do not count).
pub fn scope_of(rule: &Value) -> &str {
    rule["scope"].as_str().unwrap_or_default().trim()
}

/// A change to one scope's rule.
pub enum RuleChange {
    /// Add this rule, or replace the one with its scope.
    Set(Value),
    Remove(String),
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Added,
    Replaced,
    Removed,
    /// The rule was already exactly this: nothing was written (no audit record).
    Unchanged,
}

/// A document read through a logged-in session.
pub struct AdminRules<'a> {
    session: &'a Session,
    path: &'static str,
}

impl RulesApi for AdminRules<'_> {
    async fn get(&self) -> anyhow::Result<Value> {
        self.session.call(Method::GET, self.path, None).await
    }

    async fn put(&self, document: &Value) -> anyhow::Result<Value> {
        self.session
            .call(Method::PUT, self.path, Some(document.clone()))
            .await
    }
}

impl RulesDocument {
    /// This document behind the admin API of `session`.
    pub fn on<'a>(&self, session: &'a Session) -> AdminRules<'a> {
        AdminRules {
            session,
            path: self.path,
        }
    }

    pub fn version_of(&self, document: &Value) -> anyhow::Result<u64> {
        document["version"].as_u64().ok_or_else(|| {
            fail(
                INVALID_RESPONSE,
                format!("the server answered without a {} version: {document}", self.noun),
            )
        })
    }

    /// The version for a message: `?` when the server sent none.
    pub fn shown_version(&self, document: &Value) -> String {
        self.version_of(document)
            .map_or_else(|_| "?".to_owned(), |v| v.to_string())
    }

    pub fn rules_of<'d>(&self, document: &'d Value) -> anyhow::Result<&'d Vec<Value>> {
        document["rules"].as_array().ok_or_else(|| {
            fail(
                INVALID_RESPONSE,
                format!("the server answered without {} rules: {document}", self.noun),
            )
        })
    }

    /// `document` with `change` applied (its version kept: the one read), or `None` when
    /// that changes nothing.
    pub fn apply(&self, document: &Value, change: &RuleChange) -> anyhow::Result<(Option<Value>, Applied)> {
        let mut rules = self.rules_of(document)?.clone();
        let applied = match change {
            RuleChange::Set(rule) => match rules.iter().position(|r| scope_of(r) == scope_of(rule)) {
                Some(i) if &rules[i] == rule => return Ok((None, Applied::Unchanged)),
                Some(i) => {
                    rules[i] = rule.clone();
                    Applied::Replaced
                }
                None => {
                    rules.push(rule.clone());
                    Applied::Added
                }
            },
            RuleChange::Remove(scope) => {
                let before = rules.len();
                rules.retain(|r| scope_of(r) != scope.trim());
                if rules.len() == before {
                    return Err(fail(
                        NOT_FOUND,
                        format!("no {} for scope {}", self.rule, scope.trim()),
                    ));
                }
                Applied::Removed
            }
        };
        let mut next = document.clone();
        next["rules"] = Value::Array(rules);
        Ok((Some(next), applied))
    }

    /// Read, change, write with the version read; once more when someone else wrote in
    /// between. The stored document and what the change did.
    pub async fn change(&self, api: &impl RulesApi, change: &RuleChange) -> anyhow::Result<(Value, Applied)> {
        let mut retried = false;
        loop {
            let current = api.get().await?;
            self.version_of(&current)?;
            let (next, applied) = self.apply(&current, change)?;
            let Some(next) = next else {
                return Ok((current, applied));
            };
            match api.put(&next).await {
                Ok(stored) => return Ok((stored, applied)),
                Err(e) if !retried && describe(&e).0 == CONFLICT => retried = true,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::RefCell;

    use serde_json::json;

    use super::*;

    /// A document endpoint that answers `CONFLICT` to the first `conflicts` writes, as if
    /// another owner had written just before each (adding a rule of their own).
    pub(crate) struct Fake {
        pub stored: RefCell<Value>,
        pub conflicts: RefCell<u32>,
        pub writes: RefCell<u32>,
    }

    impl Fake {
        pub(crate) fn new(document: Value, conflicts: u32) -> Self {
            Self {
                stored: RefCell::new(document),
                conflicts: RefCell::new(conflicts),
                writes: RefCell::new(0),
            }
        }
    }

    impl RulesApi for Fake {
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
                    .push(json!({"scope": format!("repository:other{v}")}));
                return Err(fail(CONFLICT, "the server answered 409 Conflict: changed"));
            }
            assert_eq!(
                document["version"], stored["version"],
                "written with the version read"
            );
            let mut next = document.clone();
            next["version"] = json!(stored["version"].as_u64().unwrap() + 1);
            *stored = next.clone();
            Ok(next)
        }
    }

    pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    const QUOTAS: RulesDocument = RulesDocument {
        path: "/api/v1/quotas",
        noun: "quota",
        rule: "quota",
    };

    #[test]
    fn a_change_is_applied_again_once_after_a_conflict_and_keeps_the_other_rules() {
        let api = Fake::new(
            json!({"version": 3, "rules": [{"scope": "registry", "max_bytes": 9}]}),
            1,
        );
        let set = RuleChange::Set(json!({"scope": "repository:team/*", "max_bytes": 5}));
        let (stored, applied) = block_on(QUOTAS.change(&api, &set)).unwrap();
        assert_eq!((*api.writes.borrow(), applied), (2, Applied::Added));
        assert_eq!(
            stored,
            json!({"version": 5, "rules": [
                {"scope": "registry", "max_bytes": 9},
                {"scope": "repository:other3"},
                {"scope": "repository:team/*", "max_bytes": 5},
            ]})
        );
        // The same rule again writes nothing; another value for the scope replaces it.
        let (_, applied) = block_on(QUOTAS.change(&api, &set)).unwrap();
        assert_eq!((*api.writes.borrow(), applied), (2, Applied::Unchanged));
        let bigger = RuleChange::Set(json!({"scope": " repository:team/* ", "max_bytes": 6}));
        let (stored, applied) = block_on(QUOTAS.change(&api, &bigger)).unwrap();
        assert_eq!(applied, Applied::Replaced);
        assert_eq!(QUOTAS.rules_of(&stored).unwrap().len(), 3);

        *api.conflicts.borrow_mut() = 2;
        let err = block_on(QUOTAS.change(&api, &RuleChange::Remove("registry".into()))).unwrap_err();
        assert_eq!(describe(&err).0, CONFLICT);
        assert_eq!(*api.writes.borrow(), 5, "one retry, then the server's answer");
        let err =
            block_on(QUOTAS.change(&api, &RuleChange::Remove("repository:nothing".into()))).unwrap_err();
        assert_eq!(
            describe(&err),
            (
                NOT_FOUND.to_owned(),
                "no quota for scope repository:nothing".to_owned()
            )
        );
    }

    #[test]
    fn a_document_without_version_or_rules_is_refused_by_name() {
        let err = QUOTAS.version_of(&json!({"rules": []})).unwrap_err();
        assert_eq!(
            describe(&err),
            (
                INVALID_RESPONSE.to_owned(),
                "the server answered without a quota version: {\"rules\":[]}".to_owned()
            )
        );
        assert_eq!(QUOTAS.shown_version(&json!({})), "?");
        let err = QUOTAS.rules_of(&json!({"version": 1})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the server answered without quota rules: {\"version\":1}"
        );
    }
}
