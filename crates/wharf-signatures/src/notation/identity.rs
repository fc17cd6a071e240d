//! Trusted identities (trust-store-trust-policy.md, "Trusted Identities
//! Constraints"): `*`, or `x509.subject: <DN>` whose attributes must all be
//! present with equal values in the signing certificate's subject.

use std::fmt;
use std::str::FromStr;

use super::chain::{self, Cert};
use super::error::PolicyError;

const X509_SUBJECT: &str = "x509.subject";

/// One entry of a policy's trusted identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIdentity {
    text: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Any,
    /// Attribute short name (or dotted OID) and value, in the order given.
    Subject(Vec<(String, String)>),
}

impl TrustedIdentity {
    /// Parses `*` or `x509.subject: C=US, ST=WA, O=Example, CN=signer`.
    /// Like notation: C, ST (or S) and O are required, each attribute once,
    /// no multi-valued RDNs and no `#`-hex values; escapes as RFC 4514
    /// (`\,` `\;` `\\` `\+` `\"` `\<` `\>` `\=` `\#`, `\ `, `\XX`).
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let bad = |reason: &str| PolicyError::BadIdentity {
            identity: text.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = text.trim();
        if trimmed == "*" {
            return Ok(TrustedIdentity {
                text: "*".into(),
                kind: Kind::Any,
            });
        }
        let Some((prefix, dn)) = trimmed.split_once(':') else {
            return Err(bad("expected \"*\" or \"x509.subject: <distinguished name>\""));
        };
        if prefix.trim() != X509_SUBJECT {
            return Err(bad("only \"x509.subject:\" identities are supported (or \"*\")"));
        }
        let attrs = parse_dn(dn).map_err(|reason| bad(&reason))?;
        for required in ["C", "ST", "O"] {
            if !attrs.iter().any(|(k, _)| k == required) {
                return Err(bad(
                    "the distinguished name must contain at least C, ST (or S) and O",
                ));
            }
        }
        Ok(TrustedIdentity {
            text: trimmed.to_owned(),
            kind: Kind::Subject(attrs),
        })
    }

    /// `*`: any signer whose chain leads to the trust store.
    pub fn is_wildcard(&self) -> bool {
        self.kind == Kind::Any
    }

    /// The identity as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether every attribute of `self` is in `other` with the same value,
    /// so `self` matches every certificate `other` matches (notation's
    /// definition of overlapping identities).
    pub(crate) fn is_subset_of(&self, other: &TrustedIdentity) -> bool {
        match (&self.kind, &other.kind) {
            (Kind::Subject(a), Kind::Subject(b)) => a.iter().all(|pair| b.contains(pair)),
            _ => false,
        }
    }

    /// Whether the signing certificate's subject satisfies this identity:
    /// each attribute named here occurs in the subject exactly once with an
    /// equal value (case-sensitive, as notation compares). An attribute the
    /// subject repeats cannot be matched, since it would be unclear which
    /// value the identity speaks of (notation refuses such subjects).
    pub(crate) fn matches(&self, leaf: &Cert<'_>) -> bool {
        let Kind::Subject(wanted) = &self.kind else {
            return true;
        };
        let subject = subject_attributes(leaf);
        wanted.iter().all(|(key, value)| {
            let mut found = subject.iter().filter(|(k, _)| k == key);
            matches!((found.next(), found.next()), (Some((_, Some(v))), None) if v == value)
        })
    }
}

impl FromStr for TrustedIdentity {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for TrustedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The leaf's subject as (short name or dotted OID, text value if a string).
fn subject_attributes(leaf: &Cert<'_>) -> Vec<(String, Option<String>)> {
    leaf.x509
        .subject()
        .iter_attributes()
        .map(|attr| {
            let oid = attr.attr_type().to_id_string();
            let key = chain::attribute_name(&oid).map_or(oid, str::to_owned);
            (key, chain::attribute_text(attr))
        })
        .collect()
}

/// An attribute type as written in an identity: a known short name (any
/// case; `S` for `ST`) or a dotted OID. Names for which Go has no short
/// name (`E`, `emailAddress`, …) are refused: the leaf would never show them.
fn attribute_key(raw: &str) -> Result<String, String> {
    let upper = raw.to_ascii_uppercase();
    let known = [
        "CN",
        "SERIALNUMBER",
        "C",
        "L",
        "ST",
        "STREET",
        "O",
        "OU",
        "POSTALCODE",
    ];
    if upper == "S" {
        return Ok("ST".into());
    }
    if known.contains(&upper.as_str()) {
        return Ok(upper);
    }
    let is_oid = !raw.is_empty()
        && raw.split('.').count() > 1
        && raw
            .split('.')
            .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()));
    if is_oid {
        // A known attribute written as an OID is the same attribute.
        return Ok(chain::attribute_name(raw).map_or(raw.to_owned(), str::to_owned));
    }
    Err(format!(
        "unknown attribute type {raw:?} (use C, ST, L, O, OU, CN, STREET, POSTALCODE, SERIALNUMBER or a dotted OID)"
    ))
}

/// Parses an RFC 4514 distinguished name into single-valued attributes.
fn parse_dn(dn: &str) -> Result<Vec<(String, String)>, String> {
    let chars: Vec<char> = dn.chars().collect();
    let mut attrs: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && chars[i] == ' ' {
            i += 1;
        }
        if i == chars.len() {
            if attrs.is_empty() {
                return Err("the distinguished name is empty".into());
            }
            return Err("the distinguished name ends with a separator".into());
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' {
            if matches!(chars[i], ',' | ';' | '+') {
                return Err(format!(
                    "attribute {:?} has no \"=\"",
                    chars[start..i].iter().collect::<String>().trim()
                ));
            }
            i += 1;
        }
        if i == chars.len() {
            return Err(format!(
                "attribute {:?} has no \"=\"",
                chars[start..].iter().collect::<String>().trim()
            ));
        }
        let raw_key: String = chars[start..i].iter().collect();
        let key = attribute_key(raw_key.trim())?;
        i += 1; // '='
        while i < chars.len() && chars[i] == ' ' {
            i += 1;
        }
        if i < chars.len() && chars[i] == '#' {
            return Err("hex-encoded (#) attribute values are not supported".into());
        }
        // The value, with its escapes; `keep` is the length up to the last
        // character that is not an unescaped trailing space.
        let mut bytes: Vec<u8> = Vec::new();
        let mut keep = 0;
        let mut end_of_rdn = None;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '\\' => {
                    let next = chars.get(i + 1).copied().ok_or("a value ends with \"\\\"")?;
                    if next.is_ascii_hexdigit() {
                        let low = chars
                            .get(i + 2)
                            .filter(|c| c.is_ascii_hexdigit())
                            .ok_or("an escape \\X must be two hex digits or a special character")?;
                        let byte =
                            u8::from_str_radix(&format!("{next}{low}"), 16).map_err(|e| e.to_string())?;
                        bytes.push(byte);
                        i += 3;
                    } else if matches!(next, ',' | ';' | '+' | '"' | '\\' | '<' | '>' | '=' | '#' | ' ') {
                        let mut buf = [0u8; 4];
                        bytes.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
                        i += 2;
                    } else {
                        return Err(format!("\"\\{next}\" is not a valid escape"));
                    }
                    keep = bytes.len();
                }
                ',' | ';' => {
                    end_of_rdn = Some(c);
                    i += 1;
                    break;
                }
                '+' => {
                    return Err("multi-valued RDNs (\"+\") are not supported".into());
                }
                '"' | '<' | '>' | '=' => {
                    return Err(format!("{c:?} in a value must be escaped as \"\\{c}\""));
                }
                _ => {
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    if c != ' ' {
                        keep = bytes.len();
                    }
                    i += 1;
                }
            }
        }
        bytes.truncate(keep);
        let value = String::from_utf8(bytes)
            .map_err(|_| format!("the value of {key} is not UTF-8 after unescaping"))?;
        if value.is_empty() {
            return Err(format!("attribute {key} has an empty value"));
        }
        if attrs.iter().any(|(k, _)| *k == key) {
            return Err(format!("attribute {key} appears more than once"));
        }
        attrs.push((key, value));
        if end_of_rdn.is_none() {
            return Ok(attrs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(s: &str) -> Vec<(String, String)> {
        match TrustedIdentity::parse(s).unwrap().kind {
            Kind::Subject(a) => a,
            Kind::Any => panic!("wildcard"),
        }
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_subjects_with_spaces_aliases_and_escapes() {
        assert_eq!(
            attrs("x509.subject: C=US, S=WA, o=Notary , CN=e2e"),
            pairs(&[("C", "US"), ("ST", "WA"), ("O", "Notary"), ("CN", "e2e")])
        );
        assert_eq!(
            attrs(r"x509.subject:C=US;ST=WA;O=a\, b\; c\\d\+e\=f\ ;OU=\ x\41"),
            pairs(&[("C", "US"), ("ST", "WA"), ("O", r"a, b; c\d+e=f "), ("OU", " xA")])
        );
        assert_eq!(
            attrs("x509.subject: C=US, ST=WA, O=Notary, 2.5.4.3=e2e, 1.2.3.4=x"),
            pairs(&[
                ("C", "US"),
                ("ST", "WA"),
                ("O", "Notary"),
                ("CN", "e2e"),
                ("1.2.3.4", "x")
            ])
        );
        assert!(TrustedIdentity::parse(" * ").unwrap().is_wildcard());
    }

    #[test]
    fn refuses_bad_identities() {
        for (text, reason) in [
            ("", "expected \"*\" or \"x509.subject: <distinguished name>\""),
            (
                "CN=e2e",
                "expected \"*\" or \"x509.subject: <distinguished name>\"",
            ),
            (
                "x509.san: foo",
                "only \"x509.subject:\" identities are supported (or \"*\")",
            ),
            ("x509.subject:", "the distinguished name is empty"),
            (
                "x509.subject: C=US, O=Notary",
                "the distinguished name must contain at least C, ST (or S) and O",
            ),
            (
                "x509.subject: C=US, ST=WA, O=Notary, C=DE",
                "attribute C appears more than once",
            ),
            (
                "x509.subject: C=US+ST=WA, O=Notary",
                "multi-valued RDNs (\"+\") are not supported",
            ),
            (
                "x509.subject: C=#1302",
                "hex-encoded (#) attribute values are not supported",
            ),
            (
                "x509.subject: C=US, ST=WA, O=Notary,",
                "the distinguished name ends with a separator",
            ),
            ("x509.subject: C=US, ST, O=x", "attribute \"ST\" has no \"=\""),
            (
                "x509.subject: C=US, ST=WA, O=Notary, E=a@b",
                "unknown attribute type \"E\" (use C, ST, L, O, OU, CN, STREET, POSTALCODE, SERIALNUMBER or a dotted OID)",
            ),
            ("x509.subject: C=, ST=WA, O=x", "attribute C has an empty value"),
            ("x509.subject: C=U\\S", "\"\\S\" is not a valid escape"),
        ] {
            assert_eq!(
                TrustedIdentity::parse(text).unwrap_err(),
                PolicyError::BadIdentity {
                    identity: text.into(),
                    reason: reason.into()
                },
                "{text}"
            );
        }
    }

    #[test]
    fn subsets_overlap() {
        let a = TrustedIdentity::parse("x509.subject: C=US, ST=WA, O=N").unwrap();
        let b = TrustedIdentity::parse("x509.subject: C=US, ST=WA, O=N, OU=x").unwrap();
        assert!(a.is_subset_of(&b));
        assert!(!b.is_subset_of(&a));
    }
}
