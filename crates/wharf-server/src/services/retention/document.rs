//! The retention policy as owners write it: rules per scope (the registry, one repository,
//! a prefix — the signature policy's scope grammar, and its "most specific wins"), each
//! removing untagged manifests after a number of days and/or tags beyond the newest K of a
//! pattern. Checked whole before it is stored; the JSON form is the admin API's and the
//! stored form.

use serde::{Deserialize, Serialize};

use crate::auth::Scope;
use crate::names::valid_tag;

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Keep the newest `keep_last` tags (by push time) matching `pattern`; remove the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepTags {
    /// A glob over the whole tag: `*` any run of characters (also none), `?` one character,
    /// anything else itself. A glob rather than a regular expression because tags are
    /// short, people write `v*` and `release-?.*`, and a regex's anchoring and escaping are
    /// easy to get wrong in a rule that deletes.
    pub pattern: String,
    pub keep_last: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// `registry`, `repository:<name>` or `repository:<prefix>/*`.
    pub scope: String,
    /// A disabled rule still wins for its scope: it switches retention off there (so a
    /// more specific rule can exempt repositories from a registry-wide one).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// Remove a manifest no tag has pointed at for this many days (see `services/retention`
    /// for the clock and what is never removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untagged_after_days: Option<u32>,
    /// Tag rules: each tag belongs to the first entry whose pattern matches it; tags no
    /// pattern matches are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_tags: Vec<KeepTags>,
}

/// The whole policy. `version` counts stored changes: a write naming an older version is
/// refused, so two owners editing at once cannot silently undo each other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionDocument {
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub rules: Vec<RetentionRule>,
}

/// Why a retention policy is refused. Each message names the rule.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RetentionPolicyError {
    #[error("the retention policy is not valid JSON of the expected shape: {0}")]
    Malformed(String),
    #[error("rule {index}: scope {scope:?} must be registry, repository:<name> or repository:<prefix>/*")]
    Scope { index: usize, scope: String },
    #[error("rule {index}: scope {scope:?} appears twice")]
    DuplicateScope { index: usize, scope: String },
    #[error("rule {index} ({scope}): {message}")]
    Rule {
        index: usize,
        scope: String,
        message: String,
    },
}

const MAX_RULES: usize = 1000;
const MAX_KEEP_TAGS: usize = 100;
/// Ten years: anything longer is a typo for "never", which is leaving the field out.
const MAX_DAYS: u32 = 3650;
const MAX_KEEP_LAST: u32 = 100_000;
const MAX_PATTERN: usize = 128;

impl RetentionDocument {
    pub fn parse(bytes: &[u8]) -> Result<Self, RetentionPolicyError> {
        serde_json::from_slice(bytes).map_err(|e| RetentionPolicyError::Malformed(e.to_string()))
    }

    /// Check every rule; answers the rules' scopes in order.
    pub fn validate(&self) -> Result<Vec<Scope>, RetentionPolicyError> {
        if self.rules.len() > MAX_RULES {
            return Err(RetentionPolicyError::Malformed(format!(
                "at most {MAX_RULES} rules, got {}",
                self.rules.len()
            )));
        }
        let mut scopes: Vec<Scope> = Vec::with_capacity(self.rules.len());
        for (index, rule) in self.rules.iter().enumerate() {
            let scope = Scope::parse(rule.scope.trim()).ok_or_else(|| RetentionPolicyError::Scope {
                index,
                scope: rule.scope.clone(),
            })?;
            if scopes.contains(&scope) {
                return Err(RetentionPolicyError::DuplicateScope {
                    index,
                    scope: rule.scope.clone(),
                });
            }
            let rule_error = |message: String| RetentionPolicyError::Rule {
                index,
                scope: rule.scope.clone(),
                message,
            };
            if let Some(days) = rule.untagged_after_days
                && !(1..=MAX_DAYS).contains(&days)
            {
                return Err(rule_error(format!(
                    "untagged_after_days must be 1 to {MAX_DAYS}, got {days}"
                )));
            }
            if rule.keep_tags.len() > MAX_KEEP_TAGS {
                return Err(rule_error(format!("at most {MAX_KEEP_TAGS} keep_tags entries")));
            }
            for (n, keep) in rule.keep_tags.iter().enumerate() {
                if !valid_pattern(&keep.pattern) {
                    return Err(rule_error(format!(
                        "keep_tags pattern {:?} must be 1 to {MAX_PATTERN} characters of a tag (letters, digits, _ . -) or the wildcards * and ?",
                        keep.pattern
                    )));
                }
                if rule.keep_tags[..n].iter().any(|k| k.pattern == keep.pattern) {
                    return Err(rule_error(format!(
                        "keep_tags pattern {:?} appears twice",
                        keep.pattern
                    )));
                }
                if !(1..=MAX_KEEP_LAST).contains(&keep.keep_last) {
                    return Err(rule_error(format!(
                        "keep_tags pattern {:?}: keep_last must be 1 to {MAX_KEEP_LAST}, got {}",
                        keep.pattern, keep.keep_last
                    )));
                }
            }
            scopes.push(scope);
        }
        Ok(scopes)
    }
}

/// A pattern is tag characters and wildcards: the tag grammar with `*` and `?` allowed
/// anywhere (each wildcard checked as if it were a letter).
fn valid_pattern(pattern: &str) -> bool {
    if pattern.is_empty() || pattern.len() > MAX_PATTERN {
        return false;
    }
    let as_tag: String = pattern
        .chars()
        .map(|c| if c == '*' || c == '?' { 'x' } else { c })
        .collect();
    valid_tag(&as_tag)
}

/// Whether `tag` matches the glob `pattern` as a whole (`*` any run, `?` one character).
pub fn glob_matches(pattern: &str, tag: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), tag.chars().collect());
    // Greedy match with one backtrack point: linear for the patterns tags allow.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        RetentionDocument::parse(json.as_bytes())
            .and_then(|d| d.validate().map(|_| ()))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn globs_match_whole_tags() {
        assert!(glob_matches("v*", "v1.2"));
        assert!(glob_matches("v*", "v"));
        assert!(!glob_matches("v*", "latest"));
        assert!(glob_matches("release-?.*", "release-1.0"));
        assert!(!glob_matches("release-?.*", "release-10.0"));
        assert!(glob_matches("*-rc*", "1.0-rc2"));
        assert!(!glob_matches("v1", "v10"));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("a*b*c", "aXbYbZc"));
        assert!(!glob_matches("a*b*c", "aXbYbZ"));
    }

    #[test]
    fn documents_are_checked_whole_with_the_rule_named() {
        let doc = RetentionDocument::parse(
            br#"{"rules":[{"scope":"repository:team/*","untagged_after_days":7,"keep_tags":[{"pattern":"v*","keep_last":3}]}]}"#,
        )
        .unwrap();
        assert!(doc.rules[0].enabled, "defaults to true");
        assert_eq!(doc.validate().unwrap(), [Scope::Prefix("team/".into())]);
        assert_eq!(
            err(r#"{"rules":[{"scope":"repository:Team"}]}"#),
            "rule 0: scope \"repository:Team\" must be registry, repository:<name> or repository:<prefix>/*"
        );
        assert_eq!(
            err(r#"{"rules":[{"scope":"registry"},{"scope":"registry"}]}"#),
            "rule 1: scope \"registry\" appears twice"
        );
        assert_eq!(
            err(r#"{"rules":[{"scope":"registry","untagged_after_days":0}]}"#),
            "rule 0 (registry): untagged_after_days must be 1 to 3650, got 0"
        );
        assert_eq!(
            err(r#"{"rules":[{"scope":"registry","keep_tags":[{"pattern":"v/*","keep_last":1}]}]}"#),
            "rule 0 (registry): keep_tags pattern \"v/*\" must be 1 to 128 characters of a tag (letters, digits, _ . -) or the wildcards * and ?"
        );
        assert_eq!(
            err(r#"{"rules":[{"scope":"registry","keep_tags":[{"pattern":"v*","keep_last":0}]}]}"#),
            "rule 0 (registry): keep_tags pattern \"v*\": keep_last must be 1 to 100000, got 0"
        );
        assert_eq!(
            err(
                r#"{"rules":[{"scope":"registry","keep_tags":[{"pattern":"v*","keep_last":1},{"pattern":"v*","keep_last":2}]}]}"#
            ),
            "rule 0 (registry): keep_tags pattern \"v*\" appears twice"
        );
        assert!(
            err(r#"{"rules":[{"scope":"registry","untagged_after_days":-1}]}"#)
                .starts_with("the retention policy is not valid JSON of the expected shape: invalid value")
        );
        assert!(err(r#"{"rules":[{"scope":"registry","keep":1}]}"#).contains("unknown field `keep`"));
    }
}
