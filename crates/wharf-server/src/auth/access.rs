//! Who may do what: scopes as the Docker token spec writes them, and `AccessPolicy`,
//! the single place that decides which requested actions a principal is granted.
//! Registry, trust, admin API and portal all ask it; later roles extend `grant` only.

use crate::names::valid_repository_name;
use crate::server_names::{RequestName, ServerNames};
use serde::{Deserialize, Serialize};

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

/// Permission bits a role or a token scope map carries on a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Perms(u8);

impl Perms {
    pub const NONE: Perms = Perms(0);
    pub const PULL: Perms = Perms(1);
    pub const PUSH: Perms = Perms(2);
    pub const DELETE: Perms = Perms(4);
    /// Push trust data (AcrImageSigner); needed in addition to push for signed pushes.
    pub const SIGN: Perms = Perms(8);
    /// Catalog and other listings.
    pub const META_READ: Perms = Perms(16);
    pub const META_WRITE: Perms = Perms(32);
    /// Registry administration: policies, principals, role assignments, tokens, audit.
    pub const ADMIN: Perms = Perms(64);

    pub const fn union(self, o: Perms) -> Perms {
        Perms(self.0 | o.0)
    }

    pub const fn contains(self, o: Perms) -> bool {
        self.0 & o.0 == o.0
    }

    /// Names for `wharf role list`, in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Perms::PULL, "pull"),
            (Perms::PUSH, "push"),
            (Perms::DELETE, "delete"),
            (Perms::SIGN, "sign"),
            (Perms::META_READ, "metadata/read"),
            (Perms::META_WRITE, "metadata/write"),
            (Perms::ADMIN, "admin"),
        ]
        .into_iter()
        .filter(|(p, _)| self.contains(*p))
        .map(|(_, n)| n)
        .collect()
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, o: Perms) -> Perms {
        self.union(o)
    }
}

/// The built-in roles, with ACR's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Contributor,
    Reader,
    AcrPull,
    AcrPush,
    AcrDelete,
    AcrImageSigner,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Owner,
        Role::Contributor,
        Role::Reader,
        Role::AcrPull,
        Role::AcrPush,
        Role::AcrDelete,
        Role::AcrImageSigner,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Contributor => "Contributor",
            Role::Reader => "Reader",
            Role::AcrPull => "AcrPull",
            Role::AcrPush => "AcrPush",
            Role::AcrDelete => "AcrDelete",
            Role::AcrImageSigner => "AcrImageSigner",
        }
    }

    /// Exact, case-sensitive names, as ACR spells them.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// What the role allows on its scope. Owner includes signing (unlike ACR) because the
    /// bootstrap owner must be able to publish signed images with no further setup.
    pub fn perms(self) -> Perms {
        match self {
            Role::Owner => {
                Perms::PULL
                    | Perms::PUSH
                    | Perms::DELETE
                    | Perms::SIGN
                    | Perms::META_READ
                    | Perms::META_WRITE
                    | Perms::ADMIN
            }
            Role::Contributor => {
                Perms::PULL | Perms::PUSH | Perms::DELETE | Perms::META_READ | Perms::META_WRITE
            }
            Role::Reader => Perms::PULL | Perms::META_READ,
            Role::AcrPull => Perms::PULL,
            Role::AcrPush => Perms::PULL | Perms::PUSH,
            Role::AcrDelete => Perms::DELETE,
            Role::AcrImageSigner => Perms::SIGN,
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Role::Owner => "everything, including administration and role assignments",
            Role::Contributor => "pull, push and delete images",
            Role::Reader => "pull images and read metadata",
            Role::AcrPull => "pull images",
            Role::AcrPush => "pull and push images",
            Role::AcrDelete => "delete images",
            Role::AcrImageSigner => "push trust data (signed tags); needed in addition to push",
        }
    }
}

/// Where an assignment or a token scope-map entry applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Registry,
    Repository(String),
    /// `repository:<prefix>/*`: every repository under `<prefix>/` (held with the slash).
    Prefix(String),
}

impl Scope {
    /// `registry`, `repository:<name>` or `repository:<prefix>/*`.
    pub fn parse(s: &str) -> Option<Scope> {
        if s == "registry" {
            return Some(Scope::Registry);
        }
        Scope::parse_repository(s.strip_prefix("repository:")?)
    }

    /// A bare `<name>` or `<prefix>/*` (token scope maps name repositories without a type).
    pub fn parse_repository(name: &str) -> Option<Scope> {
        if let Some(prefix) = name.strip_suffix("/*") {
            return valid_repository_name(prefix).then(|| Scope::Prefix(format!("{prefix}/")));
        }
        valid_repository_name(name).then(|| Scope::Repository(name.to_owned()))
    }

    pub fn covers(&self, repository: &str) -> bool {
        match self {
            Scope::Registry => true,
            Scope::Repository(r) => r == repository,
            Scope::Prefix(p) => repository.starts_with(p.as_str()),
        }
    }

    /// The repository part as token scope maps print it.
    pub fn repository_text(&self) -> String {
        match self {
            Scope::Registry => "*".to_owned(),
            Scope::Repository(r) => r.clone(),
            Scope::Prefix(p) => format!("{p}*"),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Registry => f.write_str("registry"),
            other => write!(f, "repository:{}", other.repository_text()),
        }
    }
}

/// ACR scope-map actions a repository token may carry, plus `trust/write`.
pub const TOKEN_ACTIONS: [&str; 6] = [
    "content/read",
    "content/write",
    "content/delete",
    "metadata/read",
    "metadata/write",
    "trust/write",
];

/// The permission a scope-map action stands for.
pub fn token_action_perms(action: &str) -> Option<Perms> {
    Some(match action {
        "content/read" => Perms::PULL,
        "content/write" => Perms::PUSH,
        "content/delete" => Perms::DELETE,
        "metadata/read" => Perms::META_READ,
        "metadata/write" => Perms::META_WRITE,
        "trust/write" => Perms::SIGN,
        _ => return None,
    })
}

/// Everything one principal may do: the union of its role assignments (or its token scope
/// map), loaded once per token request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    entries: Vec<(Scope, Perms)>,
}

impl Grants {
    pub fn new(entries: Vec<(Scope, Perms)>) -> Self {
        Self { entries }
    }

    /// ACR's admin account: full data-plane rights, never signing, never administration.
    pub fn admin_account() -> Self {
        Self::new(vec![(
            Scope::Registry,
            Perms::PULL | Perms::PUSH | Perms::DELETE | Perms::META_READ | Perms::META_WRITE,
        )])
    }

    pub fn on(&self, repository: &str) -> Perms {
        self.entries
            .iter()
            .filter(|(s, _)| s.covers(repository))
            .fold(Perms::NONE, |acc, (_, p)| acc | *p)
    }

    pub fn on_registry(&self) -> Perms {
        self.entries
            .iter()
            .filter(|(s, _)| *s == Scope::Registry)
            .fold(Perms::NONE, |acc, (_, p)| acc | *p)
    }

    fn anywhere(&self) -> Perms {
        self.entries.iter().fold(Perms::NONE, |acc, (_, p)| acc | *p)
    }

    /// Whether a repository shows up in this principal's catalog.
    pub fn may_read(&self, repository: &str) -> bool {
        let p = self.on(repository);
        p.contains(Perms::PULL) || p.contains(Perms::META_READ)
    }
}

/// The authorisation decision point.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy;

impl AccessPolicy {
    /// The subset of `requested` that a principal holding `grants` receives in a token.
    ///
    /// `names` reads each repository entry (the same reading the trust routes use): a
    /// trust GUN `<our host>/<repo>` needs the signer right in addition to push (or
    /// delete) to write trust data; a plain `repository:<repo>` entry (image pushes)
    /// needs only push. A name that is neither gets nothing.
    pub fn grant(&self, grants: &Grants, requested: &[AccessEntry], names: &ServerNames) -> Vec<AccessEntry> {
        let mut granted: Vec<AccessEntry> = Vec::new();
        for req in requested {
            let actions: Vec<String> = match req.kind.as_str() {
                "repository" => match names.classify(&req.name) {
                    Some(name) => {
                        let have = grants.on(name.repository());
                        let is_gun = matches!(name, RequestName::Trust { .. });
                        let trust_extra = if is_gun { Perms::SIGN } else { Perms::NONE };
                        req.actions
                            .iter()
                            .filter(|a| {
                                let need = match a.as_str() {
                                    "pull" => Perms::PULL,
                                    "push" => Perms::PUSH | trust_extra,
                                    "delete" => Perms::DELETE | trust_extra,
                                    "*" => Perms::PULL | Perms::PUSH | Perms::DELETE | trust_extra,
                                    _ => return false,
                                };
                                have.contains(need)
                            })
                            .cloned()
                            .collect()
                    }
                    None => Vec::new(),
                },
                // The catalog itself is filtered per caller; anyone who can read something
                // may ask for it.
                "registry" if req.name == "catalog" => {
                    let any = grants.anywhere();
                    let readable = any.contains(Perms::PULL) || any.contains(Perms::META_READ);
                    keep_star(&req.actions, readable)
                }
                "registry" if req.name == "admin" => {
                    keep_star(&req.actions, grants.on_registry().contains(Perms::ADMIN))
                }
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

fn keep_star(actions: &[String], allowed: bool) -> Vec<String> {
    if !allowed {
        return Vec::new();
    }
    actions.iter().filter(|a| a.as_str() == "*").cloned().collect()
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

    fn owner() -> Grants {
        Grants::new(vec![(Scope::Registry, Role::Owner.perms())])
    }

    fn hosts() -> ServerNames {
        ServerNames::from_hosts(&["localhost:5000", "reg.example.com"])
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
        let granted = AccessPolicy.grant(&owner(), &req, &hosts());
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
            access: AccessPolicy.grant(&owner(), &req, &hosts()),
        };
        assert!(caller.may("localhost:5000/team/app", Action::Push));
        assert!(caller.may("localhost:5000/team/app", Action::Pull));
        assert!(!caller.may("team/app", Action::Pull));
        assert!(caller.may_administer());
    }

    #[test]
    fn scopes_parse_and_cover() {
        assert_eq!(Scope::parse("registry"), Some(Scope::Registry));
        assert_eq!(
            Scope::parse("repository:team/app"),
            Some(Scope::Repository("team/app".into()))
        );
        assert_eq!(
            Scope::parse("repository:team/*"),
            Some(Scope::Prefix("team/".into()))
        );
        for bad in [
            "",
            "registry:x",
            "repository:",
            "repository:Team",
            "repo:x",
            "repository:*",
            "repository:a/*/b",
        ] {
            assert_eq!(Scope::parse(bad), None, "{bad}");
        }
        let p = Scope::parse("repository:team/*").unwrap();
        assert!(p.covers("team/app") && p.covers("team/a/b"));
        assert!(!p.covers("team") && !p.covers("teamx/app"));
        assert_eq!(p.to_string(), "repository:team/*");
    }

    /// The whole matrix: every role, on every scope kind, against every action, on a
    /// repository inside and outside the scope, as an image scope and as a trust GUN.
    #[test]
    fn role_action_scope_matrix() {
        // (role, pull, push, delete, gun pull, gun push, gun *, catalog, admin)
        let table: [(Role, [bool; 8]); 7] = [
            (Role::Owner, [true, true, true, true, true, true, true, true]),
            (
                Role::Contributor,
                [true, true, true, true, false, false, true, false],
            ),
            (
                Role::Reader,
                [true, false, false, true, false, false, true, false],
            ),
            (
                Role::AcrPull,
                [true, false, false, true, false, false, true, false],
            ),
            (
                Role::AcrPush,
                [true, true, false, true, false, false, true, false],
            ),
            (
                Role::AcrDelete,
                [false, false, true, false, false, false, false, false],
            ),
            (
                Role::AcrImageSigner,
                [false, false, false, false, false, false, false, false],
            ),
        ];
        let scopes = [
            Scope::Registry,
            Scope::Repository("team/app".into()),
            Scope::Prefix("team/".into()),
        ];
        for (role, expect) in table {
            for scope in &scopes {
                let g = Grants::new(vec![(scope.clone(), role.perms())]);
                for repo in ["team/app", "other/app"] {
                    let inside = scope.covers(repo);
                    let gun = format!("localhost:5000/{repo}");
                    let req = parse_scopes([
                        format!("repository:{repo}:pull").as_str(),
                        &format!("repository:{repo}:push"),
                        &format!("repository:{repo}:delete"),
                        &format!("repository:{gun}:pull"),
                        &format!("repository:{gun}:push"),
                        &format!("repository:{gun}:*"),
                        "registry:catalog:*",
                        "registry:admin:*",
                    ]);
                    let c = Caller {
                        principal: "p".into(),
                        access: AccessPolicy.grant(&g, &req, &hosts()),
                    };
                    let registry_wide = *scope == Scope::Registry;
                    let got = [
                        c.may(repo, Action::Pull),
                        c.may(repo, Action::Push),
                        c.may(repo, Action::Delete),
                        c.may(&gun, Action::Pull),
                        c.may(&gun, Action::Push),
                        c.access
                            .iter()
                            .any(|e| e.name == gun && e.actions.iter().any(|a| a == "*")),
                    ];
                    let want: Vec<bool> = expect[..6].iter().map(|w| *w && inside).collect();
                    assert_eq!(got.to_vec(), want, "{role:?} on {scope} for {repo}");
                    // Catalog is requestable by anyone who can read somewhere.
                    assert_eq!(c.may_list_catalog(), expect[6], "{role:?} catalog on {scope}");
                    assert_eq!(
                        c.may_administer(),
                        expect[7] && registry_wide,
                        "{role:?} admin on {scope}"
                    );
                }
            }
        }
    }

    #[test]
    fn signed_push_needs_push_and_signer_together() {
        let req = parse_scopes([
            "repository:localhost:5000/team/app:push,pull",
            "repository:team/app:push,pull",
        ]);
        let both = Grants::new(vec![
            (Scope::Registry, Role::AcrPush.perms()),
            (Scope::Repository("team/app".into()), Role::AcrImageSigner.perms()),
        ]);
        let c = Caller {
            principal: "p".into(),
            access: AccessPolicy.grant(&both, &req, &hosts()),
        };
        assert!(c.may("localhost:5000/team/app", Action::Push));
        assert!(c.may("team/app", Action::Push));
        // A host-less GUN whose first component is a configured host is still a GUN.
        let g = parse_scopes(["repository:reg.example.com/team/app:push"]);
        assert!(
            AccessPolicy
                .grant(
                    &Grants::new(vec![(Scope::Registry, Role::AcrPush.perms())]),
                    &g,
                    &hosts()
                )
                .is_empty()
        );
    }

    #[test]
    fn admin_account_and_token_scope_maps() {
        let req = parse_scopes([
            "repository:a:push,pull,delete",
            "repository:localhost:5000/a:push",
            "registry:admin:*",
        ]);
        let c = Caller {
            principal: "wharf".into(),
            access: AccessPolicy.grant(&Grants::admin_account(), &req, &hosts()),
        };
        assert!(c.may("a", Action::Push) && c.may("a", Action::Delete));
        assert!(!c.may("localhost:5000/a", Action::Push));
        assert!(!c.may_administer());

        let perms = ["content/read", "content/write", "trust/write"]
            .iter()
            .filter_map(|a| token_action_perms(a))
            .fold(Perms::NONE, |a, b| a | b);
        let token = Grants::new(vec![(Scope::Repository("a".into()), perms)]);
        let req = parse_scopes(["repository:localhost:5000/a:push,pull", "repository:b:pull"]);
        let c = Caller {
            principal: "t".into(),
            access: AccessPolicy.grant(&token, &req, &hosts()),
        };
        assert!(c.may("localhost:5000/a", Action::Push));
        assert!(!c.may("b", Action::Pull));
        assert_eq!(token_action_perms("content/exec"), None);
    }
}
