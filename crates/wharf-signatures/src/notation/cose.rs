//! The COSE envelope (signature-envelope-cose.md): a COSE_Sign1_Tagged
//! message (RFC 9052) with the Notary Project's header parameters.

use chrono::{DateTime, Utc};

use super::cbor::{self, Value};
use super::chain::SignatureAlgorithm;
use super::envelope::{
    self, AUTHENTIC_SIGNING_TIME, EXPIRY, Parsed, SIGNING_SCHEME, SIGNING_TIME, SignedAttributes,
    VERIFICATION_PLUGIN,
};
use super::error::NotationError;

const TAG_COSE_SIGN1: u64 = 18;
const LABEL_ALG: u64 = 1;
const LABEL_CRIT: u64 = 2;
const LABEL_CONTENT_TYPE: u64 = 3;
const LABEL_X5CHAIN: u64 = 33;

fn malformed(m: impl Into<String>) -> NotationError {
    NotationError::MalformedEnvelope(m.into())
}

fn get<'v, 'a>(map: &'v [(Value<'a>, Value<'a>)], key: &Value<'_>) -> Option<&'v Value<'a>> {
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn label_name(label: &Value<'_>) -> String {
    match label {
        Value::Text(t) => (*t).to_owned(),
        other => other
            .as_i64()
            .map_or_else(|| format!("{other:?}"), |n| n.to_string()),
    }
}

pub fn parse(bytes: &[u8]) -> Result<Parsed, NotationError> {
    let message = cbor::decode(bytes).map_err(|e| malformed(format!("not CBOR: {e}")))?;
    let Value::Tag(TAG_COSE_SIGN1, inner) = message else {
        return Err(malformed("not a COSE_Sign1_Tagged message (CBOR tag 18)"));
    };
    let Value::Array(parts) = *inner else {
        return Err(malformed("COSE_Sign1 is not an array"));
    };
    let [protected_bytes, unprotected, payload, signature] = parts.as_slice() else {
        return Err(malformed("COSE_Sign1 does not have 4 parts"));
    };
    let Value::Bytes(protected_bytes) = protected_bytes else {
        return Err(malformed("the protected header is not a byte string"));
    };
    let protected =
        match cbor::decode(protected_bytes).map_err(|e| malformed(format!("the protected header: {e}")))? {
            Value::Map(m) => m,
            _ => return Err(malformed("the protected header is not a map")),
        };
    let Value::Map(unprotected) = unprotected else {
        return Err(malformed("the unprotected header is not a map"));
    };
    let Value::Bytes(payload) = payload else {
        return Err(malformed("the payload is detached or not a byte string"));
    };
    let Value::Bytes(signature) = signature else {
        return Err(malformed("the signature is not a byte string"));
    };
    // RFC 9052 3: a label must not be in both buckets.
    if let Some((label, _)) = unprotected.iter().find(|(k, _)| get(&protected, k).is_some()) {
        return Err(malformed(format!(
            "header {} is both protected and unprotected",
            label_name(label)
        )));
    }

    let alg_label = get(&protected, &Value::Unsigned(LABEL_ALG))
        .ok_or_else(|| malformed("the protected header has no algorithm (label 1)"))?;
    let alg = alg_label
        .as_i64()
        .and_then(SignatureAlgorithm::from_cose)
        .ok_or_else(|| NotationError::UnsupportedAlgorithm(format!("COSE {}", label_name(alg_label))))?;
    let content_type = match get(&protected, &Value::Unsigned(LABEL_CONTENT_TYPE)) {
        Some(Value::Text(t)) => (*t).to_owned(),
        Some(other) => {
            return Err(NotationError::UnsupportedContentType(label_name(other)));
        }
        None => return Err(malformed("the protected header has no content type (label 3)")),
    };

    let critical = match get(&protected, &Value::Unsigned(LABEL_CRIT)) {
        Some(Value::Array(labels)) if !labels.is_empty() => {
            let mut names = Vec::with_capacity(labels.len());
            for label in labels {
                if get(&protected, label).is_none() {
                    return Err(malformed(format!(
                        "header {} is marked critical but not present",
                        label_name(label)
                    )));
                }
                match label {
                    Value::Text(t) => names.push((*t).to_owned()),
                    // Labels 0 to 8 are COSE's own and must not be listed;
                    // any other integer label is one we do not know.
                    Value::Unsigned(0..=8) => {
                        return Err(malformed(format!(
                            "\"crit\" lists the COSE header {}",
                            label_name(label)
                        )));
                    }
                    other => {
                        return Err(NotationError::UnknownCriticalAttribute(label_name(other)));
                    }
                }
            }
            names
        }
        Some(_) => return Err(malformed("\"crit\" (label 2) is not a non-empty array")),
        None => return Err(malformed("the protected header has no \"crit\" (label 2)")),
    };

    let text = |name: &str| -> Result<Option<String>, NotationError> {
        match get(&protected, &Value::Text(name)) {
            None => Ok(None),
            Some(Value::Text(t)) => Ok(Some((*t).to_owned())),
            Some(_) => Err(malformed(format!("header {name:?} is not a text string"))),
        }
    };
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, NotationError> {
        let Some(v) = get(&protected, &Value::Text(name)) else {
            return Ok(None);
        };
        // An epoch-based date/time (RFC 8949 3.4.2): tag 1 over a number.
        let t = match v {
            Value::Tag(1, inner) => match **inner {
                Value::Unsigned(_) | Value::Negative(_) => {
                    inner.as_i64().and_then(|s| DateTime::from_timestamp(s, 0))
                }
                Value::Float(f) if f.is_finite() => {
                    let secs = f.floor();
                    DateTime::from_timestamp(secs as i64, ((f - secs) * 1e9) as u32)
                }
                _ => None,
            },
            _ => None,
        };
        t.map(Some)
            .ok_or_else(|| malformed(format!("header {name:?} is not a tag 1 date/time")))
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

    // x5chain is unprotected in what notation writes; the spec allows it
    // protected too. RFC 9360: one certificate may be a bare byte string.
    let x5chain = get(unprotected, &Value::Unsigned(LABEL_X5CHAIN))
        .or_else(|| get(&protected, &Value::Unsigned(LABEL_X5CHAIN)))
        .ok_or_else(|| malformed("the x5chain certificate chain (label 33) is missing"))?;
    let chain = match x5chain {
        Value::Bytes(der) => vec![der.to_vec()],
        Value::Array(certs) => certs
            .iter()
            .map(|c| match c {
                Value::Bytes(der) => Ok(der.to_vec()),
                _ => Err(malformed("an x5chain entry is not a byte string")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(malformed("x5chain is not an array of byte strings")),
    };

    Ok(Parsed {
        alg,
        signed: cbor::sig_structure(protected_bytes, payload),
        signature: signature.to_vec(),
        payload: payload.to_vec(),
        content_type,
        scheme,
        signing_time,
        expiry,
        chain,
    })
}
