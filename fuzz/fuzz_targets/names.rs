//! Names, references and digests: `names::valid_repository_name`, `valid_tag`,
//! `Reference::parse`, `wharf_store::Digest::parse` and `ServerNames::classify`.
//! Properties: what is accepted has the grammar's shape (checked here independently),
//! a parsed digest or tag is exactly the input, a GUN splits back into our host and a
//! valid repository, and a name whose first component is one of our hosts is never an
//! image repository.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_server::names::{Reference, valid_repository_name, valid_tag};
use wharf_server::server_names::{RequestName, ServerNames};
use wharf_store::Digest;

const HOSTS: [&str; 2] = ["reg.example.com", "127.0.0.1:5000"];

fn repository_shape(name: &str) -> bool {
    name.len() <= 255
        && name.split('/').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && !c.starts_with(['.', '_', '-'])
                && !c.ends_with(['.', '_', '-'])
                && !c.contains("..")
                && !c.contains("___")
                && !c.contains(".-")
                && !c.contains("-.")
                && !c.contains("_-")
                && !c.contains("-_")
                && !c.contains("._")
                && !c.contains("_.")
        })
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if valid_repository_name(s) {
        assert!(repository_shape(s), "accepted repository name {s:?}");
    }
    if valid_tag(s) {
        assert!(s.len() <= 128 && !s.starts_with(['.', '-']), "accepted tag {s:?}");
    }
    match Reference::parse(s) {
        Ok(Reference::Tag(t)) => assert!(t == s && valid_tag(&t)),
        Ok(Reference::Digest(d)) => assert_eq!(d.as_str(), s),
        Err(_) => {}
    }
    if let Ok(d) = Digest::parse(s) {
        assert!(s.len() == 71 && s.starts_with("sha256:"), "accepted digest {s:?}");
        assert!(
            d.hex()
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(Digest::parse(d.as_str()).as_ref(), Ok(&d));
    }
    let names = ServerNames::from_hosts(&HOSTS);
    match names.classify(s) {
        Some(RequestName::Trust { host, repository }) => {
            assert!(names.is_ours(host) && valid_repository_name(repository));
            assert_eq!(format!("{host}/{repository}"), s);
        }
        Some(RequestName::Image(name)) => {
            assert_eq!(name, s);
            assert!(valid_repository_name(name));
            let first = name.split('/').next().unwrap_or_default();
            assert!(
                !name.contains('/') || !names.is_ours(first),
                "{s:?} read as an image repository"
            );
        }
        None => {}
    }
});
