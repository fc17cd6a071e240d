//! The distribution-spec grammar for repository names, tags and references. Checked
//! before anything touches a store, so hostile names never reach SQL or paths.

use wharf_store::Digest;

/// Longest repository name we accept (the spec's practical limit; clients send it in URLs).
pub const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// `path-component ( "/" path-component )*`, each `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
/// Any number of components: there is no depth limit.
pub fn valid_repository_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-", between alphanumerics.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|x| x.is_ascii_alphanumeric() || b"_.-".contains(x))
}

/// What follows `/manifests/`: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    Tag,
    Digest(wharf_store::DigestError),
}

impl Reference {
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.contains(':') {
            Digest::parse(s)
                .map(Reference::Digest)
                .map_err(ReferenceError::Digest)
        } else if valid_tag(s) {
            Ok(Reference::Tag(s.to_owned()))
        } else {
            Err(ReferenceError::Tag)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in [
            "a",
            "library/ubuntu",
            "a/b/c/d/e/f/g/h/i",
            "my-app",
            "my__app",
            "a.b_c--d",
            "0",
        ] {
            assert!(valid_repository_name(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "Upper/case",
            "a/../b",
            "..",
            "a/",
            "/a",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "a b",
            "a%2Fb",
            "a/_b",
        ] {
            assert!(!valid_repository_name(bad), "{bad}");
        }
        assert!(!valid_repository_name(&"a".repeat(256)));
        assert!(valid_repository_name("a/".repeat(100).trim_end_matches('/')));
    }

    #[test]
    fn tags_and_references() {
        for ok in ["latest", "v1.0", "_x", "V1", &"t".repeat(128)] {
            assert!(valid_tag(ok), "{ok}");
        }
        for bad in ["", "..", ".x", "-x", "a/b", "a:b", &"t".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
        assert_eq!(Reference::parse("v1"), Ok(Reference::Tag("v1".into())));
        assert!(matches!(
            Reference::parse("sha256:zz"),
            Err(ReferenceError::Digest(_))
        ));
        assert_eq!(Reference::parse(".."), Err(ReferenceError::Tag));
    }
}
