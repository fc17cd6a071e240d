//! The one reading of a request name: an image repository (`team/app`) or a trust GUN
//! (`<one of our hosts>/team/app`). The token service, the access gate, the trust routes
//! and the trust audit all classify names here, and only from the server's own
//! configuration — its public host names and its listen address — never from a header
//! the client sends: two readings of one name let a pusher write trust data of a
//! repository it could not sign for.

use std::net::{IpAddr, SocketAddr};

use crate::names::valid_repository_name;

/// What a request name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestName<'a> {
    /// An image repository: the registry API's names.
    Image(&'a str),
    /// A trust GUN `<host>/<repository>` whose host is one of this server's names.
    Trust { host: &'a str, repository: &'a str },
}

impl<'a> RequestName<'a> {
    /// The repository whose data the name reaches.
    pub fn repository(self) -> &'a str {
        match self {
            RequestName::Image(r) | RequestName::Trust { repository: r, .. } => r,
        }
    }
}

/// The host names (with `:port` unless clients reach the server on 443) that identify
/// this registry in trust GUNs. Lower-case; compared without regard to ASCII case, the
/// way host names are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNames {
    hosts: Vec<String>,
}

impl ServerNames {
    /// The configured public hosts, then what the listen address itself is reached by:
    /// on loopback or all interfaces `localhost` and the loopback address, otherwise the
    /// address. Port 443 is also written without a port, as docker does for it.
    pub fn new(public_hosts: &[String], listen: SocketAddr) -> Self {
        let mut hosts: Vec<String> = Vec::new();
        let mut add = |h: String| {
            let h = h.to_ascii_lowercase();
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        };
        for h in public_hosts {
            add(h.clone());
            if let Some(bare) = h.strip_suffix(":443") {
                add(bare.to_owned());
            }
        }
        let port = listen.port();
        let ip = listen.ip();
        let mut listen_names: Vec<String> = Vec::new();
        if ip.is_loopback() || ip.is_unspecified() {
            listen_names.push("localhost".into());
            listen_names.push("127.0.0.1".into());
            if ip.is_ipv6() {
                listen_names.push("[::1]".into());
            }
        } else {
            listen_names.push(match ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            });
        }
        for name in listen_names {
            add(format!("{name}:{port}"));
            if port == 443 {
                add(name);
            }
        }
        Self { hosts }
    }

    /// Exactly these names (tests and tools that have no listen address).
    pub fn from_hosts<S: AsRef<str>>(hosts: &[S]) -> Self {
        Self {
            hosts: hosts.iter().map(|h| h.as_ref().to_ascii_lowercase()).collect(),
        }
    }

    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    pub fn is_ours(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// The reading of `name`, or `None` when it is neither a repository name nor a GUN
    /// of this server. A first component that is one of our names always makes a GUN,
    /// even where the whole would also be a valid repository name (`reg.example.com/app`
    /// with `reg.example.com` configured): such names are reserved for trust data and
    /// never name an image repository, so the two readings cannot overlap.
    pub fn classify<'a>(&self, name: &'a str) -> Option<RequestName<'a>> {
        if let Some((host, repository)) = name.split_once('/')
            && self.is_ours(host)
        {
            return valid_repository_name(repository).then_some(RequestName::Trust { host, repository });
        }
        valid_repository_name(name).then_some(RequestName::Image(name))
    }

    /// The GUN under which this server names `repository` where no request names it
    /// (an owner's reset recorded in the changefeed): the first configured name.
    pub fn gun_of(&self, repository: &str) -> String {
        match self.hosts.first() {
            Some(h) => format!("{h}/{repository}"),
            None => repository.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> ServerNames {
        ServerNames::new(
            &["Reg.Example.com".to_owned(), "mirror.example.com:443".to_owned()],
            "127.0.0.1:5000".parse().unwrap(),
        )
    }

    #[test]
    fn names_come_from_configuration_and_the_listen_address() {
        assert_eq!(
            names().hosts(),
            [
                "reg.example.com",
                "mirror.example.com:443",
                "mirror.example.com",
                "localhost:5000",
                "127.0.0.1:5000"
            ]
        );
        let on_443 = ServerNames::new(&[], "0.0.0.0:443".parse().unwrap());
        assert_eq!(
            on_443.hosts(),
            ["localhost:443", "localhost", "127.0.0.1:443", "127.0.0.1"]
        );
        let v6 = ServerNames::new(&[], "[2001:db8::1]:5000".parse().unwrap());
        assert_eq!(v6.hosts(), ["[2001:db8::1]:5000"]);
        let v6_any = ServerNames::new(&[], "[::]:5000".parse().unwrap());
        assert!(v6_any.is_ours("[::1]:5000") && v6_any.is_ours("localhost:5000"));
    }

    #[test]
    fn a_name_has_one_reading() {
        let n = names();
        assert_eq!(n.classify("team/app"), Some(RequestName::Image("team/app")));
        assert_eq!(
            n.classify("localhost:5000/team/app"),
            Some(RequestName::Trust {
                host: "localhost:5000",
                repository: "team/app"
            })
        );
        assert_eq!(
            n.classify("REG.example.COM/app").map(RequestName::repository),
            Some("app")
        );
        // The review's reproductions: a host that is not ours is no GUN, whatever the
        // client's Host header says; the whole name is then an ordinary repository.
        assert_eq!(
            n.classify("localhost/team/app"),
            Some(RequestName::Image("localhost/team/app"))
        );
        assert_eq!(n.classify("team/x"), Some(RequestName::Image("team/x")));
        assert_eq!(n.classify("localhost:5001/team/app"), None);
        assert_eq!(n.classify("evil.example.com:5000/app"), None);
        assert_eq!(n.classify("localhost:5000/"), None);
        assert_eq!(n.classify("localhost:5000/Team"), None);
        assert_eq!(n.classify("localhost:5000"), None);
        assert_eq!(n.classify(""), None);
        assert_eq!(n.gun_of("a/b"), "reg.example.com/a/b");
        assert_eq!(ServerNames::from_hosts::<&str>(&[]).gun_of("a"), "a");
    }
}
