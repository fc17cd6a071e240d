//! docker/go canonical JSON (notary's `json.MarshalCanonical`) and the Go
//! `encoding/json` file layout notary writes.
//!
//! Why hand-written: every published canonical-JSON crate differs from
//! docker/go on some input (key order by escaped bytes, control-character
//! escaping, NFC normalisation, floats). Signatures and key IDs are computed
//! over these exact bytes, so we reproduce the Go encoder rule by rule:
//! keys sorted by raw UTF-8 bytes, no whitespace, only `"` and `\` escaped,
//! integers only.

use serde_json::Value;

use crate::error::Error;

/// Largest integer a float64 represents exactly; notary decodes every number
/// through float64, so anything beyond this would silently change value.
const MAX_SAFE_INT: u64 = 1 << 53;

/// Canonical bytes of `v` (what is signed and what key IDs hash).
pub fn to_canonical(v: &Value) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(256);
    write_canonical(v, &mut out)?;
    Ok(out)
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_canonical_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // serde_json's Map is a BTreeMap<String, _> (preserve_order is off),
            // whose order is exactly Go's byte-wise string order. Sorting
            // explicitly keeps this correct even if a dependency turns
            // preserve_order on through feature unification.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical_string(k, out);
                out.push(b':');
                write_canonical(val, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) -> Result<(), Error> {
    if let Some(u) = n.as_u64() {
        if u <= MAX_SAFE_INT {
            out.extend_from_slice(u.to_string().as_bytes());
            return Ok(());
        }
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() <= MAX_SAFE_INT {
            out.extend_from_slice(i.to_string().as_bytes());
            return Ok(());
        }
    } else if let Some(f) = n.as_f64() {
        // `1.0` and `1e3` are integral: Go accepts and prints them as integers.
        if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INT as f64 {
            out.extend_from_slice((f as i64).to_string().as_bytes());
            return Ok(());
        }
        return Err(Error::Canonical(format!(
            "json: unsupported value: {}",
            go_float(f)
        )));
    }
    Err(Error::Canonical(format!("json: unsupported value: {n}")))
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` for the common cases (used only
/// in error messages, e.g. `json: unsupported value: 1.5`).
fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        let s = format!("{f:e}");
        // Rust: 1e21 / 1.5e-7; Go: 1e+21 / 1.5e-07.
        if let Some((mant, exp)) = s.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            let digits = if digits.len() < 2 {
                format!("0{digits}")
            } else {
                digits.to_string()
            };
            return format!("{mant}e{sign}{digits}");
        }
        s
    } else {
        format!("{f}")
    }
}

fn write_canonical_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Applies Go's default `json.Marshal` HTML escaping to already-valid JSON
/// bytes (`<` `>` `&` U+2028 U+2029). notary embeds the canonical `signed`
/// bytes as a `json.RawMessage`, which Go compacts with this escaping, so the
/// *file* differs from the *signed message* when names contain these.
/// Safe on canonical JSON: these characters can only occur inside strings.
pub fn go_html_escape(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 16);
    let mut i = 0;
    while i < json.len() {
        let b = json[i];
        match b {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            0xE2 if i + 2 < json.len()
                && json[i + 1] == 0x80
                && (json[i + 2] == 0xA8 || json[i + 2] == 0xA9) =>
            {
                out.extend_from_slice(if json[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
                continue;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

/// A JSON string literal as Go's `json.Marshal` writes it (HTML-safe, control
/// characters escaped). Used for signature objects, key-endpoint bodies and
/// error bodies, which Go marshals non-canonically.
pub fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: Value) -> String {
        String::from_utf8(to_canonical(&v).unwrap()).unwrap()
    }

    #[test]
    fn sorts_by_raw_bytes_and_escapes_only_quote_and_backslash() {
        assert_eq!(
            canon(json!({"b":1,"a":[true,null],"a b":"x","a!":2})),
            r#"{"a":[true,null],"a b":"x","a!":2,"b":1}"#
        );
        assert_eq!(canon(json!("q\"b\\<>&\u{e9}\t")), "\"q\\\"b\\\\<>&\u{e9}\t\"");
        // U+FB01 sorts before U+1F600 by UTF-8 bytes (not by UTF-16 units).
        assert_eq!(
            canon(json!({"\u{1F600}":1,"\u{FB01}":2})),
            "{\"\u{FB01}\":2,\"\u{1F600}\":1}"
        );
    }

    #[test]
    fn numbers_integers_only() {
        let v: Value = serde_json::from_str(r#"[1.0,1e3,-5,9007199254740992]"#).unwrap();
        assert_eq!(canon(v), "[1,1000,-5,9007199254740992]");
        let v: Value = serde_json::from_str("1.5").unwrap();
        assert_eq!(
            to_canonical(&v).unwrap_err().to_string(),
            "json: unsupported value: 1.5"
        );
        let v: Value = serde_json::from_str("9007199254740993").unwrap();
        assert!(to_canonical(&v).is_err());
        let v: Value = serde_json::from_str("1e300").unwrap();
        assert_eq!(
            to_canonical(&v).unwrap_err().to_string(),
            "json: unsupported value: 1e+300"
        );
    }

    #[test]
    fn html_escape() {
        assert_eq!(
            go_html_escape("{\"a<b>&\u{2028}\":1}".as_bytes()),
            br#"{"a\u003cb\u003e\u0026\u2028":1}"#.to_vec()
        );
        assert_eq!(go_json_string("a<\n\u{1}"), r#""a\u003c\n\u0001""#);
    }
}
