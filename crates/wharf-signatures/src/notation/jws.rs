//! The JWS envelope (signature-envelope-jws.md): flattened JWS JSON
//! serialization with the Notary Project's protected and unprotected headers.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::chain::SignatureAlgorithm;
use super::envelope::{
    self, AUTHENTIC_SIGNING_TIME, EXPIRY, Parsed, SIGNING_SCHEME, SIGNING_TIME, SignedAttributes,
    VERIFICATION_PLUGIN,
};
use super::error::NotationError;

/// "no additional top level fields are supported"; serde also refuses a
/// member given twice.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    payload: String,
    protected: String,
    header: UniqueMap,
    signature: String,
}

/// A JSON object whose members are kept in order and must be unique: with
/// duplicates, two JSON readers could disagree on what was signed.
struct UniqueMap(Vec<(String, Value)>);

impl UniqueMap {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<'de> Deserialize<'de> for UniqueMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueMap, A::Error> {
                let mut out: Vec<(String, Value)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    if out.iter().any(|(seen, _)| *seen == k) {
                        return Err(de::Error::custom(format!("header {k:?} appears twice")));
                    }
                    out.push((k, v));
                }
                Ok(UniqueMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// JWS registered header names (RFC 7515 4.1), which `crit` must not list.
const REGISTERED: [&str; 11] = [
    "alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit",
];

pub fn parse(bytes: &[u8]) -> Result<Parsed, NotationError> {
    let malformed = NotationError::MalformedEnvelope;
    let env: Flattened = serde_json::from_slice(bytes)
        .map_err(|e| malformed(format!("not a flattened JWS JSON envelope: {e}")))?;
    let b64url = |what: &str, s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|e| malformed(format!("{what} is not unpadded base64url: {e}")))
    };
    let protected_json = b64url("protected", &env.protected)?;
    let payload = b64url("payload", &env.payload)?;
    let signature = b64url("signature", &env.signature)?;
    let protected: UniqueMap =
        serde_json::from_slice(&protected_json).map_err(|e| malformed(format!("protected header: {e}")))?;

    // RFC 7515 7.2.1: protected and unprotected header names are disjoint.
    if let Some((name, _)) = env.header.0.iter().find(|(k, _)| protected.get(k).is_some()) {
        return Err(malformed(format!(
            "header {name:?} is both protected and unprotected"
        )));
    }

    let text = |name: &str| -> Result<Option<String>, NotationError> {
        match protected.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(malformed(format!("header {name:?} is not a string"))),
        }
    };
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, NotationError> {
        text(name)?
            .map(|s| {
                DateTime::parse_from_rfc3339(&s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| malformed(format!("header {name:?} is not an RFC 3339 time: {e}")))
            })
            .transpose()
    };

    let alg_name = text("alg")?.ok_or_else(|| malformed("the \"alg\" header is missing".into()))?;
    let alg = SignatureAlgorithm::from_jws(&alg_name)
        .ok_or_else(|| NotationError::UnsupportedAlgorithm(format!("{alg_name:?}")))?;
    let content_type = text("cty")?.ok_or_else(|| malformed("the \"cty\" header is missing".into()))?;

    let critical = match protected.get("crit") {
        None => return Err(malformed("the \"crit\" header is missing".into())),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut names: Vec<String> = Vec::with_capacity(items.len());
            for item in items {
                let Value::String(name) = item else {
                    return Err(malformed("\"crit\" lists something other than a name".into()));
                };
                if REGISTERED.contains(&name.as_str()) {
                    return Err(malformed(format!(
                        "\"crit\" lists the registered header {name:?}"
                    )));
                }
                if protected.get(name).is_none() {
                    return Err(malformed(format!(
                        "header {name:?} is marked critical but not present"
                    )));
                }
                if names.contains(name) {
                    return Err(malformed(format!("\"crit\" lists {name:?} twice")));
                }
                names.push(name.clone());
            }
            names
        }
        Some(_) => return Err(malformed("\"crit\" is not a non-empty array".into())),
    };

    let attributes = SignedAttributes {
        scheme: text(SIGNING_SCHEME)?,
        signing_time: time(SIGNING_TIME)?,
        authentic_signing_time: time(AUTHENTIC_SIGNING_TIME)?,
        expiry: time(EXPIRY)?,
        critical,
        verification_plugin: text(VERIFICATION_PLUGIN)?,
    };
    let envelope::Checked {
        scheme,
        signing_time,
        expiry,
    } = envelope::check_signed_attributes(attributes)?;

    let chain = match env.header.get("x5c") {
        Some(Value::Array(certs)) => certs
            .iter()
            .map(|c| match c {
                // RFC 7515 4.1.6: base64 (not base64url) DER.
                Value::String(s) => STANDARD
                    .decode(s)
                    .map_err(|e| malformed(format!("an x5c certificate is not base64: {e}"))),
                _ => Err(malformed("an x5c entry is not a string".into())),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(malformed("\"x5c\" is not an array".into())),
        None => return Err(malformed("the \"x5c\" certificate chain is missing".into())),
    };

    let mut signed = Vec::with_capacity(env.protected.len() + env.payload.len() + 1);
    signed.extend_from_slice(env.protected.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(env.payload.as_bytes());

    Ok(Parsed {
        alg,
        signed,
        signature,
        payload,
        content_type,
        scheme,
        signing_time,
        expiry,
        chain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An envelope with the given protected header JSON text (the signature
    /// is junk: these checks come before it is verified).
    fn envelope(protected: &str, header: &str) -> Vec<u8> {
        format!(
            r#"{{"payload":"e30","protected":"{}","header":{header},"signature":"AA"}}"#,
            URL_SAFE_NO_PAD.encode(protected)
        )
        .into_bytes()
    }

    const X5C: &str = r#"{"x5c":["AA=="]}"#;

    fn refusal(protected: &str, header: &str) -> NotationError {
        match parse(&envelope(protected, header)) {
            Ok(_) => panic!("accepted {protected}"),
            Err(e) => e,
        }
    }

    fn header(extra: &str, crit: &str) -> String {
        format!(
            r#"{{"alg":"PS256","cty":"application/vnd.cncf.notary.payload.v1+json","crit":[{crit}],"io.cncf.notary.signingScheme":"notary.x509","io.cncf.notary.signingTime":"2025-01-01T00:00:00Z"{extra}}}"#
        )
    }

    const SCHEME: &str = r#""io.cncf.notary.signingScheme""#;

    #[test]
    fn accepts_the_minimal_form() {
        let p = parse(&envelope(&header("", SCHEME), X5C)).unwrap();
        assert_eq!(p.alg, SignatureAlgorithm::Ps256);
        assert_eq!(p.chain, vec![vec![0u8]]);
        assert_eq!(p.payload, b"{}");
    }

    #[test]
    fn refuses_ambiguous_or_incomplete_headers() {
        let m = |s: &str| NotationError::MalformedEnvelope(s.into());
        let cases = [
            (
                header(r#","alg":"PS256""#, SCHEME),
                X5C.to_string(),
                m("protected header: header \"alg\" appears twice at line 1 column 218"),
            ),
            (
                header("", SCHEME),
                r#"{"x5c":["AA=="],"cty":"x"}"#.to_string(),
                m("header \"cty\" is both protected and unprotected"),
            ),
            (header("", ""), X5C.into(), m("\"crit\" is not a non-empty array")),
            (
                header("", r#""io.cncf.notary.signingScheme","alg""#),
                X5C.into(),
                m("\"crit\" lists the registered header \"alg\""),
            ),
            (
                header("", r#""io.cncf.notary.signingScheme","io.cncf.notary.expiry""#),
                X5C.into(),
                m("header \"io.cncf.notary.expiry\" is marked critical but not present"),
            ),
            (
                header(r#","io.cncf.notary.expiry":"2026-01-01T00:00:00Z""#, SCHEME),
                X5C.into(),
                m("io.cncf.notary.expiry is not marked critical"),
            ),
            (
                header(
                    r#","io.cncf.notary.expiry":"2024-01-01T00:00:00Z""#,
                    r#""io.cncf.notary.signingScheme","io.cncf.notary.expiry""#,
                ),
                X5C.into(),
                m("the expiry is not after the signing time"),
            ),
            (
                header(
                    r#","io.cncf.notary.authenticSigningTime":"2025-01-01T00:00:00Z""#,
                    SCHEME,
                ),
                X5C.into(),
                m("io.cncf.notary.authenticSigningTime must not be present under notary.x509"),
            ),
            (
                header("", SCHEME).replace("PS256", "none"),
                X5C.into(),
                NotationError::UnsupportedAlgorithm("\"none\"".into()),
            ),
            (
                header("", SCHEME).replace("\"notary.x509\"", "\"notary.x509.v2\""),
                X5C.into(),
                NotationError::UnsupportedSigningScheme("notary.x509.v2".into()),
            ),
            (
                header("", SCHEME),
                "{}".into(),
                m("the \"x5c\" certificate chain is missing"),
            ),
        ];
        for (protected, unprotected, error) in cases {
            assert_eq!(refusal(&protected, &unprotected), error, "{protected}");
        }
    }
}
