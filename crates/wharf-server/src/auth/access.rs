//! Who may do what: scopes as the Docker token spec writes them, and `AccessPolicy`,
//! the single place that decides which requested actions a principal is granted.
//! Registry, trust, admin API and portal all ask it; later roles extend `grant` only.

use serde::{Deserialize, Serialize};
use wharf_store::Principal;

use crate::names::valid_repository_name;

/// One `access` entry of a token, and one requested `scope`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// Actions on a repository, as clients request them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }
}

impl AccessEntry {
    /// Parse `type:name:actions`. The name may itself hold colons (trust GUNs carry
    /// `host:port`), so type is before the first colon and actions after the last.
    pub fn parse_scope(scope: &str) -> Option<Self> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        // `repository(plugin)` is an old docker class suffix; the class is irrelevant here.
        let kind = kind.split_once('(').map_or(kind, |(k, _)| k);
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        let actions: Vec<String> = actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        Some(Self {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions,
        })
    }

    pub fn scope_string(&self) -> String {
        format!("{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

/// Parse every space-separated scope in each of `raw` (GET repeats `scope=`, POST joins with spaces).
pub fn parse_scopes<'a>(raw: impl IntoIterator<Item = &'a str>) -> Vec<AccessEntry> {
    raw.into_iter()
        .flat_map(str::split_whitespace)
        .filter_map(AccessEntry::parse_scope)
        .collect()
}

/// The authorisation decision point.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy;

impl AccessPolicy {
    /// The subset of `requested` that `principal` receives in a token. Until roles exist,
    /// every authenticated principal is the owner and gets every well-formed request.
    pub fn grant(&self, _principal: &Principal, requested: &[AccessEntry]) -> Vec<AccessEntry> {
        let mut granted: Vec<AccessEntry> = Vec::new();
        for req in requested {
            let actions: Vec<String> = match req.kind.as_str() {
                "repository" if repository_part(&req.name).is_some() => req
                    .actions
                    .iter()
                    .filter(|a| matches!(a.as_str(), "pull" | "push" | "delete" | "*"))
                    .cloned()
                    .collect(),
                // Every authenticated principal is the owner until roles exist; the
                // owner administers the registry.
                "registry" if req.name == "catalog" || req.name == "admin" => req
                    .actions
                    .iter()
                    .filter(|a| a.as_str() == "*")
                    .cloned()
                    .collect(),
                _ => Vec::new(),
            };
            if actions.is_empty() {
                continue;
            }
            match granted
                .iter_mut()
                .find(|g| g.kind == req.kind && g.name == req.name)
            {
                Some(g) => {
                    for a in actions {
                        if !g.actions.contains(&a) {
                            g.actions.push(a);
                        }
                    }
                }
                None => granted.push(AccessEntry {
                    kind: req.kind.clone(),
                    name: req.name.clone(),
                    actions,
                }),
            }
        }
        granted
    }
}

/// A repository name, or a trust GUN `host[:port]/name` whose tail is one.
fn repository_part(name: &str) -> Option<&str> {
    if valid_repository_name(name) {
        return Some(name);
    }
    let (host, repo) = name.split_once('/')?;
    (looks_like_host(host) && valid_repository_name(repo)).then_some(repo)
}

/// `name[:port]` where name is `localhost` or has dots between non-empty labels, the way
/// docker tells a registry host from a first path component.
fn looks_like_host(s: &str) -> bool {
    let name = s.rsplit_once(':').map_or(s, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            ""
        }
    });
    let labels_ok = name
        .split('.')
        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    labels_ok && (name == "localhost" || name.contains('.') || s.contains(':'))
}

/// The verified caller of a request: who, and what their token allows.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: String,
    pub access: Vec<AccessEntry>,
}

impl Caller {
    pub fn may(&self, repository: &str, action: Action) -> bool {
        self.access.iter().any(|e| {
            e.kind == "repository"
                && e.name == repository
                && e.actions.iter().any(|a| a == action.as_str() || a == "*")
        })
    }

    /// Registry administration (content-trust policy, resets): `registry:admin:*`.
    pub fn may_administer(&self) -> bool {
        self.access
            .iter()
            .any(|e| e.kind == "registry" && e.name == "admin" && e.actions.iter().any(|a| a == "*"))
    }

    pub fn may_list_catalog(&self) -> bool {
        self.access
            .iter()
            .any(|e| e.kind == "registry" && e.name == "catalog" && e.actions.iter().any(|a| a == "*"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Principal {
        Principal {
            id: 1,
            name: "admin".into(),
            kind: "user".into(),
            password_hash: None,
            created_at: 0,
        }
    }

    #[test]
    fn scopes_parse_including_gun_with_port() {
        let s = AccessEntry::parse_scope("repository:localhost:5000/team/app:pull,push").unwrap();
        assert_eq!(
            (s.kind.as_str(), s.name.as_str()),
            ("repository", "localhost:5000/team/app")
        );
        assert_eq!(s.actions, vec!["pull", "push"]);
        assert_eq!(
            AccessEntry::parse_scope("repository(plugin):a:pull")
                .unwrap()
                .kind,
            "repository"
        );
        assert!(AccessEntry::parse_scope("nocolons").is_none());
        let all = parse_scopes(["repository:a:pull repository:b:push", "registry:catalog:*"]);
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn policy_grants_only_well_formed_requests_and_merges_duplicates() {
        let req = parse_scopes([
            "repository:a/b:pull",
            "repository:a/b:push,bogus",
            "repository:UPPER:pull",
            "repository:../x:pull",
            "registry:catalog:*",
            "other:thing:*",
        ]);
        let granted = AccessPolicy.grant(&owner(), &req);
        assert_eq!(
            granted,
            vec![
                AccessEntry {
                    kind: "repository".into(),
                    name: "a/b".into(),
                    actions: vec!["pull".into(), "push".into()]
                },
                AccessEntry {
                    kind: "registry".into(),
                    name: "catalog".into(),
                    actions: vec!["*".into()]
                },
            ]
        );
        let caller = Caller {
            principal: "admin".into(),
            access: granted,
        };
        assert!(caller.may("a/b", Action::Push));
        assert!(!caller.may("a/b", Action::Delete));
        assert!(!caller.may("a/c", Action::Pull));
        assert!(caller.may_list_catalog());
        assert!(!caller.may_administer());
    }

    #[test]
    fn trust_gun_and_admin_scopes_are_granted_to_the_owner() {
        let req = parse_scopes(["repository:localhost:5000/team/app:push,pull", "registry:admin:*"]);
        let caller = Caller {
            principal: "admin".into(),
            access: AccessPolicy.grant(&owner(), &req),
        };
        assert!(caller.may("localhost:5000/team/app", Action::Push));
        assert!(caller.may("localhost:5000/team/app", Action::Pull));
        assert!(!caller.may("team/app", Action::Pull));
        assert!(caller.may_administer());
    }
}
