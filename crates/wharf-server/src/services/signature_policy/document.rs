//! The signature policy as owners write it: rules per scope (the registry, one
//! repository, a prefix), each with a mode and what counts as signed. The JSON form is
//! the admin API's and the stored form; it is checked whole before anything is stored,
//! so a key or certificate that does not parse is refused with its rule named.

use serde::{Deserialize, Serialize};

use crate::auth::Scope;

/// What a rule does with a manifest read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// No check.
    Off,
    /// Serve everything; record and count what `enforce` would refuse.
    Audit,
    /// Serve only manifests signed under the rule.
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Audit => "audit",
            Mode::Enforce => "enforce",
        }
    }
}

/// Docker Content Trust: the repository's current trust data, verified as docker does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DctRequirement {
    /// Only signatures by these roles count (`targets`, `targets/releases`,
    /// `targets/<signer>`). Empty: what `docker pull` with content trust resolves —
    /// `targets/releases`, then `targets`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// A cosign (sigstore) public key, PEM `PUBLIC KEY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedKey {
    pub name: String,
    pub public_key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosignRequirement {
    pub keys: Vec<NamedKey>,
}

/// A trusted root certificate for Notation signatures, PEM `CERTIFICATE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedCertificate {
    pub name: String,
    pub certificate: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotationRequirement {
    pub trust_store: Vec<NamedCertificate>,
    /// `x509.subject: <DN>` entries, or `*` for any signer chaining to the trust store.
    pub trusted_identities: Vec<String>,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// `registry`, `repository:<name>` or `repository:<prefix>/*`.
    pub scope: String,
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dct: Option<DctRequirement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosign: Option<CosignRequirement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notation: Option<NotationRequirement>,
    /// Whether a request whose token carries push on the repository (a publisher's push
    /// or signing session: `docker push`, `cosign sign`, `skopeo copy`) may read unsigned
    /// manifests. Plain pulls ask for pull only and are checked whatever the caller's
    /// roles, so this does not open unsigned content to a publisher's `docker pull`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub publishers_read_unsigned: bool,
}

impl PolicyRule {
    /// The kinds of signature this rule accepts, as messages name them.
    pub fn accepted_kinds(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        if self.dct.is_some() {
            kinds.push("Docker Content Trust");
        }
        if self.cosign.is_some() {
            kinds.push("cosign");
        }
        if self.notation.is_some() {
            kinds.push("Notation");
        }
        kinds
    }
}

/// The whole policy. `version` counts stored changes: a write naming an older version is
/// refused, so two owners editing at once cannot silently undo each other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
}

/// Why a policy document is refused. Each message names the rule.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("the policy is not valid JSON of the expected shape: {0}")]
    Malformed(String),
    #[error("rule {index}: scope {scope:?} must be registry, repository:<name> or repository:<prefix>/*")]
    Scope { index: usize, scope: String },
    #[error("rule {index}: scope {scope:?} appears twice")]
    DuplicateScope { index: usize, scope: String },
    #[error("rule {index} ({scope}): mode {mode} needs at least one of dct, cosign, notation")]
    NothingAccepted {
        index: usize,
        scope: String,
        mode: &'static str,
    },
    #[error("rule {index} ({scope}): {message}")]
    Rule {
        index: usize,
        scope: String,
        message: String,
    },
}

/// Limits that keep a policy small enough to hold and check on every replica.
const MAX_RULES: usize = 1000;
const MAX_KEYS: usize = 100;
const MAX_ROLE_NAME: usize = 255;

impl PolicyDocument {
    pub fn parse(bytes: &[u8]) -> Result<Self, PolicyError> {
        let doc: PolicyDocument =
            serde_json::from_slice(bytes).map_err(|e| PolicyError::Malformed(e.to_string()))?;
        Ok(doc)
    }

    /// Check every rule: its scope, that it accepts something when it checks anything,
    /// role names, and that keys and certificates parse (through `check_material`, the
    /// verifiers' own parsers, so what is stored is what will be used).
    pub fn validate(
        &self,
        mut check_material: impl FnMut(&PolicyRule) -> Result<(), String>,
    ) -> Result<Vec<Scope>, PolicyError> {
        if self.rules.len() > MAX_RULES {
            return Err(PolicyError::Malformed(format!(
                "at most {MAX_RULES} rules, got {}",
                self.rules.len()
            )));
        }
        let mut scopes: Vec<Scope> = Vec::with_capacity(self.rules.len());
        for (index, rule) in self.rules.iter().enumerate() {
            let scope = Scope::parse(rule.scope.trim()).ok_or_else(|| PolicyError::Scope {
                index,
                scope: rule.scope.clone(),
            })?;
            if scopes.contains(&scope) {
                return Err(PolicyError::DuplicateScope {
                    index,
                    scope: rule.scope.clone(),
                });
            }
            let rule_error = |message: String| PolicyError::Rule {
                index,
                scope: rule.scope.clone(),
                message,
            };
            if rule.mode != Mode::Off && rule.accepted_kinds().is_empty() {
                return Err(PolicyError::NothingAccepted {
                    index,
                    scope: rule.scope.clone(),
                    mode: rule.mode.as_str(),
                });
            }
            if let Some(dct) = &rule.dct {
                for role in &dct.roles {
                    let valid = (role == "targets" || role.starts_with("targets/"))
                        && role.len() <= MAX_ROLE_NAME
                        && !role.ends_with('/')
                        && !role.contains("//");
                    if !valid {
                        return Err(rule_error(format!(
                            "dct role {role:?} must be targets or targets/<name>"
                        )));
                    }
                }
            }
            if let Some(cosign) = &rule.cosign
                && (cosign.keys.is_empty() || cosign.keys.len() > MAX_KEYS)
            {
                return Err(rule_error(format!("cosign needs 1 to {MAX_KEYS} keys")));
            }
            if let Some(notation) = &rule.notation {
                if notation.trust_store.is_empty() || notation.trust_store.len() > MAX_KEYS {
                    return Err(rule_error(format!(
                        "notation needs 1 to {MAX_KEYS} trust_store certificates"
                    )));
                }
                if notation.trusted_identities.is_empty() {
                    return Err(rule_error(
                        "notation needs trusted_identities (x509.subject: <DN>, or \"*\")".into(),
                    ));
                }
            }
            check_material(rule).map_err(rule_error)?;
            scopes.push(scope);
        }
        Ok(scopes)
    }
}

/// Which rule applies to a repository: the most specific scope that covers it — the
/// repository itself, then the longest prefix, then the registry.
pub fn most_specific<'a, T>(rules: &'a [(Scope, T)], repository: &str) -> Option<&'a T> {
    let rank = |s: &Scope| match s {
        Scope::Repository(_) => usize::MAX,
        Scope::Prefix(p) => p.len(),
        Scope::Registry => 0,
    };
    rules
        .iter()
        .filter(|(s, _)| s.covers(repository))
        .max_by_key(|(s, _)| rank(s))
        .map(|(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(_: &PolicyRule) -> Result<(), String> {
        Ok(())
    }

    #[test]
    fn rules_are_checked_whole_and_named_in_errors() {
        let doc =
            PolicyDocument::parse(br#"{"rules":[{"scope":"repository:team/*","mode":"enforce","dct":{}}]}"#)
                .unwrap();
        assert_eq!(doc.rules[0].accepted_kinds(), ["Docker Content Trust"]);
        assert!(doc.rules[0].publishers_read_unsigned, "defaults to true");
        assert_eq!(doc.validate(ok).unwrap(), [Scope::Prefix("team/".into())]);

        let err =
            |json: &str| PolicyDocument::parse(json.as_bytes()).and_then(|d| d.validate(ok).map(|_| ()));
        assert_eq!(
            err(r#"{"rules":[{"scope":"repository:Team","mode":"off"}]}"#)
                .unwrap_err()
                .to_string(),
            "rule 0: scope \"repository:Team\" must be registry, repository:<name> or repository:<prefix>/*"
        );
        assert_eq!(
            err(r#"{"rules":[{"scope":"registry","mode":"enforce"}]}"#)
                .unwrap_err()
                .to_string(),
            "rule 0 (registry): mode enforce needs at least one of dct, cosign, notation"
        );
        assert_eq!(
            err(r#"{"rules":[{"scope":"registry","mode":"off"},{"scope":"registry","mode":"off"}]}"#)
                .unwrap_err()
                .to_string(),
            "rule 1: scope \"registry\" appears twice"
        );
        assert_eq!(
            err(r#"{"rules":[{"scope":"registry","mode":"audit","dct":{"roles":["releases"]}}]}"#)
                .unwrap_err()
                .to_string(),
            "rule 0 (registry): dct role \"releases\" must be targets or targets/<name>"
        );
        assert_eq!(
            err(r#"{"rules":[{"scope":"registry","mode":"audit","cosign":{"keys":[]}}]}"#)
                .unwrap_err()
                .to_string(),
            "rule 0 (registry): cosign needs 1 to 100 keys"
        );
        assert!(
            err(r#"{"rules":[{"scope":"registry","mode":"strict"}]}"#)
                .unwrap_err()
                .to_string()
                .starts_with("the policy is not valid JSON of the expected shape: unknown variant `strict`")
        );
        assert!(
            err(r#"{"rules":[{"scope":"registry","mode":"off","extra":1}]}"#)
                .unwrap_err()
                .to_string()
                .contains("unknown field `extra`")
        );
        let material = PolicyDocument::parse(
            br#"{"rules":[{"scope":"registry","mode":"audit","cosign":{"keys":[{"name":"k","public_key":"x"}]}}]}"#,
        )
        .unwrap()
        .validate(|_| Err("cosign key \"k\": not a PEM public key".into()))
        .unwrap_err();
        assert_eq!(
            material.to_string(),
            "rule 0 (registry): cosign key \"k\": not a PEM public key"
        );
    }

    #[test]
    fn the_most_specific_scope_wins() {
        let rules = vec![
            (Scope::Registry, "registry"),
            (Scope::Prefix("team/".into()), "team"),
            (Scope::Prefix("team/web/".into()), "team/web"),
            (Scope::Repository("team/web/app".into()), "app"),
        ];
        assert_eq!(most_specific(&rules, "other"), Some(&"registry"));
        assert_eq!(most_specific(&rules, "team/x"), Some(&"team"));
        assert_eq!(most_specific(&rules, "team/web/y"), Some(&"team/web"));
        assert_eq!(most_specific(&rules, "team/web/app"), Some(&"app"));
        assert_eq!(most_specific(&rules[1..], "other"), None);
    }
}
