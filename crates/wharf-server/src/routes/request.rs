//! What several routes read from requests, in one place: query values, form fields and
//! JSON bodies (with the message naming the expected shape), and draining a body after
//! an early refusal.

use axum::body::Bytes;

use super::RouteError;
use crate::wire::WireError;

/// After refusing a request early, read (and drop) what the client is still sending, up to
/// this much, so that it sees our error instead of a reset connection.
const DRAIN_LIMIT: u64 = 64 << 20;

pub async fn drain<S, E>(mut body: S)
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
{
    use futures_util::StreamExt;
    let mut seen = 0u64;
    while let Some(Ok(chunk)) = body.next().await {
        seen += chunk.len() as u64;
        if seen > DRAIN_LIMIT {
            break;
        }
    }
}

/// The whole body when it is at most `limit` bytes; `None` when it is larger, after reading
/// (and dropping) the rest as `drain` does, so the client gets the refusal instead of a
/// connection reset while it is still sending.
pub async fn read_within(body: axum::body::Body, limit: usize) -> Option<Bytes> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { return None };
        if bytes.len() + chunk.len() > limit {
            drain(stream).await;
            return None;
        }
        bytes.extend_from_slice(&chunk);
    }
    Some(Bytes::from(bytes))
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

/// Percent-decoding for the few query values we read (digests contain `:`, encoded as %3A).
pub fn decode(v: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| Some(hex(bytes[i + 1])? * 16 + hex(bytes[i + 2])?))
            .flatten();
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn query_value(query: &str, key: &str) -> Option<String> {
    query_param(query, key).map(decode)
}

/// Every `key=value` of a query string or `application/x-www-form-urlencoded` body,
/// decoded, in order.
pub fn pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// A JSON body of type `T`, or a 400 that says which `shape` was expected and why the
/// body is not it.
pub fn json_body<T: serde::de::DeserializeOwned>(bytes: &Bytes, shape: &str) -> Result<T, WireError> {
    serde_json::from_slice(bytes).map_err(|e| RouteError::BadRequest(format!("expected {shape}: {e}")).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_and_form_pairs_decode() {
        assert_eq!(
            query_value("a=1&digest=sha256%3Aab&b=2", "digest").as_deref(),
            Some("sha256:ab")
        );
        assert_eq!(query_value("a=1", "digest"), None);
        assert_eq!(query_value("mount=a&from=b%2Fc", "from").as_deref(), Some("b/c"));
        assert_eq!(decode("a+b%2Fc%zz%4"), "a b/c%zz%4");
        assert_eq!(
            pairs("x=1&&y=%41+b&z"),
            [
                ("x".into(), "1".into()),
                ("y".into(), "A b".into()),
                ("z".into(), String::new())
            ]
        );
    }
}
