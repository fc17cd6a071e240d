//! Refuses metadata that Go's `encoding/json` would read differently from us.
//!
//! Go (and notary's `docker/go/canonical/json` fork of it) matches JSON
//! member names to struct fields *ignoring case*, and when several members
//! land in one field the last one wins. serde matches names exactly and
//! ignores the rest. So `{"version":5,"Version":1}` is version 5 to Wharf and
//! version 1 to every client: our version/expiry/key checks would pass on
//! values the clients never see.
//!
//! The rule, applied to every object that Go decodes into a *struct* (the
//! envelope, the `signed` body of each role type, signatures, keys and
//! `keyval`, root roles, delegations and their roles, file meta):
//! * a member whose name folds to a known field's name must be spelt exactly
//!   like it (`"Version"` alone is refused, not read as `version`);
//! * no two members may fold to the same name (this includes exact
//!   duplicates, which serde_json silently resolves to the last one).
//!
//! With both, the only member Go can read into a field is the one serde
//! reads, so Wharf reads exactly what Go reads; refusing (rather than
//! emulating Go's last-wins) keeps ambiguous documents out of storage, where
//! other tools might resolve them differently. Objects Go decodes into *maps*
//! (target names, `meta` file names, key IDs, root role names, hash
//! algorithms) are matched exactly by Go, so case variants there are distinct
//! entries and stay accepted; only exact duplicate keys are refused there.
//! `custom` is a `json.RawMessage` in Go and is not inspected.
//!
//! Folding: ASCII letters ignoring case, plus the non-ASCII runes Go folds
//! onto ASCII letters: U+017F `ſ` (s) and U+212A Kelvin sign (k) in every Go
//! version, U+0130 `İ` and U+0131 `ı` (i) since Go 1.21. Refusing all four is
//! the superset, so no Go version can read a field we did not check.
//!
//! Also here because it needs the raw text: Go's `time.Time.UnmarshalJSON`
//! parses the bytes between the quotes without decoding JSON escapes, so an
//! `expires` containing an escape fails in Go while serde_json decodes it.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};

/// A parsed JSON value keeping what `serde_json::Value` loses: member order,
/// duplicate members, and whether a string contained escapes.
enum Node {
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    Str { value: String, escaped: bool },
    Scalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    // serde_json reading from a slice lends strings without escapes straight
    // from the input and copies only those it had to unescape.
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node, E> {
        Ok(Node::Str {
            value: v.to_string(),
            escaped: false,
        })
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str {
            value: v.to_string(),
            escaped: true,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut members = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value::<Node>()?;
            members.push((k, v));
        }
        Ok(Node::Object(members))
    }
}

/// How Go decodes a JSON value (only what matters for member matching).
#[derive(Clone, Copy)]
enum Shape {
    /// A Go struct: known member names (all ASCII) and their shapes.
    Struct(&'static [(&'static str, Shape)]),
    /// A Go map with values of this shape.
    Map(&'static Shape),
    /// A Go slice with elements of this shape.
    Array(&'static Shape),
    /// The `signed` object: its struct depends on its `_type`.
    Body,
    /// A `time.Time`.
    Time,
    /// Scalars, `json.RawMessage`, anything not decoded into a struct.
    Opaque,
}

use Shape::{Array, Map, Opaque, Struct, Time};

// Field lists follow notary's `tuf/data` types (v0.7). Embedded structs
// (`SignedCommon` in every body, `RootRole` in `Role`) promote their fields.
const KEY: Shape = Struct(&[
    ("keytype", Opaque),
    ("keyval", Struct(&[("public", Opaque), ("private", Opaque)])),
]);
const KEYS: Shape = Map(&KEY);
const ROOT_ROLE: Shape = Struct(&[("keyids", Opaque), ("threshold", Opaque)]);
const DELEGATION_ROLE: Shape = Struct(&[
    ("keyids", Opaque),
    ("threshold", Opaque),
    ("name", Opaque),
    ("paths", Opaque),
]);
const FILE_META: Shape = Struct(&[("length", Opaque), ("hashes", Map(&Opaque)), ("custom", Opaque)]);
const FILES: Shape = Map(&FILE_META);
const TYPE: (&str, Shape) = ("_type", Opaque);
const EXPIRES: (&str, Shape) = ("expires", Time);
const VERSION: (&str, Shape) = ("version", Opaque);
const COMMON_BODY: &[(&str, Shape)] = &[TYPE, EXPIRES, VERSION];
const ROOT_BODY: &[(&str, Shape)] = &[
    TYPE,
    EXPIRES,
    VERSION,
    ("keys", KEYS),
    ("roles", Map(&ROOT_ROLE)),
    ("consistent_snapshot", Opaque),
];
const TARGETS_BODY: &[(&str, Shape)] = &[
    TYPE,
    EXPIRES,
    VERSION,
    ("targets", FILES),
    (
        "delegations",
        Struct(&[("keys", KEYS), ("roles", Array(&DELEGATION_ROLE))]),
    ),
];
const META_BODY: &[(&str, Shape)] = &[TYPE, EXPIRES, VERSION, ("meta", FILES)];
const SIGNATURE: Shape = Struct(&[("keyid", Opaque), ("method", Opaque), ("sig", Opaque)]);
const ENVELOPE: Shape = Struct(&[("signed", Shape::Body), ("signatures", Array(&SIGNATURE))]);

/// Where a value sits, rendered only for error messages.
enum Path<'a> {
    Envelope,
    Member(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
    Key(&'a Path<'a>, &'a str),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Envelope => f.write_str("envelope"),
            Path::Member(Path::Envelope, name) => f.write_str(name),
            Path::Member(p, name) => write!(f, "{p}.{name}"),
            Path::Index(p, i) => write!(f, "{p}[{i}]"),
            Path::Key(p, k) => write!(f, "{p}[{k:?}]"),
        }
    }
}

/// A member name as Go folds it for field matching (see module docs).
fn go_fold(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '\u{17F}' => 'S',
            '\u{212A}' => 'K',
            '\u{130}' | '\u{131}' => 'I',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Checks a whole metadata file (see module docs). Errors name the place,
/// e.g. `signed: member "Version" is a case variant of "version" …`.
pub(crate) fn check_document(bytes: &[u8]) -> Result<(), String> {
    let node: Node = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    walk(&node, ENVELOPE, &Path::Envelope)
}

fn walk(node: &Node, shape: Shape, path: &Path<'_>) -> Result<(), String> {
    match (shape, node) {
        (Struct(fields), Node::Object(members)) => check_struct(members, fields, path),
        (Shape::Body, Node::Object(members)) => {
            let typ = members.iter().rev().find_map(|(k, v)| match v {
                Node::Str { value, .. } if k == "_type" => Some(value.as_str()),
                _ => None,
            });
            let fields = match typ {
                Some("Root") => ROOT_BODY,
                Some("Targets") => TARGETS_BODY,
                Some("Snapshot" | "Timestamp") => META_BODY,
                // Any other type is refused later by the structure checks.
                _ => COMMON_BODY,
            };
            check_struct(members, fields, path)
        }
        (Map(inner), Node::Object(members)) => {
            let mut seen = HashSet::with_capacity(members.len());
            for (k, v) in members {
                if !seen.insert(k.as_str()) {
                    return Err(format!("{path}: duplicate key {k:?}"));
                }
                walk(v, *inner, &Path::Key(path, k))?;
            }
            Ok(())
        }
        (Array(inner), Node::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, *inner, &Path::Index(path, i))?;
            }
            Ok(())
        }
        (Time, Node::Str { escaped: true, .. }) => Err(format!(
            "{path}: a JSON escape in a time is refused (Go parses the raw text)"
        )),
        // Wrong JSON types (and `null`, which Go skips) are left to the typed
        // decoding that follows.
        _ => Ok(()),
    }
}

fn check_struct(
    members: &[(String, Node)],
    fields: &'static [(&'static str, Shape)],
    path: &Path<'_>,
) -> Result<(), String> {
    // Folded name -> first spelling seen.
    let mut seen: HashMap<String, &str> = HashMap::with_capacity(members.len());
    for (name, _) in members {
        let folded = go_fold(name);
        if let Some((field, _)) = fields
            .iter()
            .find(|(f, _)| *f != name.as_str() && f.eq_ignore_ascii_case(&folded))
        {
            return Err(format!(
                "{path}: member {name:?} is a case variant of {field:?} (Go reads both into one field)"
            ));
        }
        if let Some(first) = seen.get(&folded) {
            return Err(if first == name {
                format!("{path}: duplicate member {name:?}")
            } else {
                format!("{path}: members {first:?} and {name:?} differ only in case")
            });
        }
        seen.insert(folded, name);
    }
    for (name, value) in members {
        if let Some((_, shape)) = fields.iter().find(|(f, _)| f == name) {
            walk(value, *shape, &Path::Member(path, name))?;
        }
    }
    Ok(())
}
