//! The multipart/form-data body of notary's `POST …/_trust/tuf/` (spec §1.4), split
//! into its files. Linear in the body: the boundary is at most 70 characters (RFC 2046;
//! Go's writer, which docker and notary use, makes 60), every search starts where the
//! previous one ended, and the number of parts is capped.

use super::{TrustError, TrustResult};

/// RFC 2046 §5.1.1: a boundary is 1 to 70 characters.
pub const MAX_BOUNDARY_LEN: usize = 70;
/// Files in one update: root, targets, snapshot and the delegation roles a publish
/// changes. Real updates carry a handful.
pub const MAX_PARTS: usize = 256;

/// A multipart/form-data body split into (filename, content) parts. The filename is
/// taken raw: delegation roles contain `/` and must not be sanitised (spec §1.4).
pub fn parse_multipart(content_type: &str, body: &[u8]) -> TrustResult<Vec<(String, Vec<u8>)>> {
    let bad = |m: &str| TrustError::MalformedUpload(m.to_owned());
    let mut params = content_type.split(';').map(str::trim);
    if !params
        .next()
        .is_some_and(|t| t.eq_ignore_ascii_case("multipart/form-data"))
    {
        return Err(bad("content type is not multipart/form-data"));
    }
    let boundary = params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| bad("no multipart boundary"))?;
    if boundary.len() > MAX_BOUNDARY_LEN {
        return Err(bad("multipart boundary longer than 70 characters (RFC 2046)"));
    }
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut pos = find(body, delim, 0).ok_or_else(|| bad("no multipart boundary in body"))?;
    let mut parts = Vec::new();
    loop {
        pos += delim.len();
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        if parts.len() == MAX_PARTS {
            return Err(bad("more than 256 files in one update"));
        }
        // Skip transport padding, then the CRLF ending the delimiter line.
        while body.get(pos).is_some_and(|b| *b == b' ' || *b == b'\t') {
            pos += 1;
        }
        if !body[pos..].starts_with(b"\r\n") {
            return Err(bad("malformed multipart delimiter"));
        }
        pos += 2;
        let header_end = find(body, b"\r\n\r\n", pos).ok_or_else(|| bad("unterminated part headers"))?;
        let headers =
            std::str::from_utf8(&body[pos..header_end]).map_err(|_| bad("part headers are not UTF-8"))?;
        let content_start = header_end + 4;
        let mut end_marker = b"\r\n".to_vec();
        end_marker.extend_from_slice(delim);
        let content_end = find(body, &end_marker, content_start).ok_or_else(|| bad("unterminated part"))?;
        let filename = headers
            .split("\r\n")
            .filter_map(|h| h.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
            .and_then(|(_, v)| disposition_filename(v))
            .unwrap_or_default();
        parts.push((filename, body[content_start..content_end].to_vec()));
        pos = content_end + 2;
    }
}

/// First `needle` in `hay` at or after `from`. Needles here are at most 74 bytes (CRLF,
/// `--` and a capped boundary), so this is linear in the bytes searched.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let hay = hay.get(from..)?;
    let mut at = 0;
    while at + needle.len() <= hay.len() {
        let next = hay[at..=hay.len() - needle.len()]
            .iter()
            .position(|b| *b == first)?;
        let start = at + next;
        if hay[start + 1..start + needle.len()] == *rest {
            return Some(from + start);
        }
        at = start + 1;
    }
    None
}

/// `filename="…"` of a Content-Disposition value, unescaping Go's `\"` and `\\`.
fn disposition_filename(v: &str) -> Option<String> {
    let idx = v.find("filename=")?;
    let rest = &v[idx + "filename=".len()..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?),
                '"' => return Some(out),
                c => out.push(c),
            }
        }
        None
    } else {
        Some(rest.split(';').next().unwrap_or("").trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_keeps_raw_filenames_and_accepts_empty_bodies() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"files\"; filename=\"targets/releases\"\r\n\
Content-Type: application/octet-stream\r\n\r\n{\"a\":1}\r\n--XX\r\nContent-Disposition: form-data; name=\"files\"; filename=\"root\"\r\n\r\nline\r\nnext\r\n--XX--\r\n";
        let parts = parse_multipart("multipart/form-data; boundary=XX", body).unwrap();
        assert_eq!(parts[0], ("targets/releases".into(), b"{\"a\":1}".to_vec()));
        assert_eq!(parts[1], ("root".into(), b"line\r\nnext".to_vec()));
        assert!(
            parse_multipart("multipart/form-data; boundary=XX", b"--XX--\r\n")
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            parse_multipart("application/json", b"{}"),
            Err(TrustError::MalformedUpload(_))
        ));
        assert!(parse_multipart("multipart/form-data; boundary=XX", b"--XX\r\nbroken").is_err());
    }

    /// The review's 200,000-character boundary took 37 s: now refused at once by length,
    /// and a 70-character one over a 10 MB body is one linear pass.
    #[test]
    fn long_boundaries_and_part_floods_are_refused() {
        let long = "b".repeat(MAX_BOUNDARY_LEN + 1);
        let refused = parse_multipart(&format!("multipart/form-data; boundary={long}"), b"");
        assert!(
            matches!(&refused, Err(TrustError::MalformedUpload(m)) if m == "multipart boundary longer than 70 characters (RFC 2046)"),
            "{refused:?}"
        );
        // Almost-matching bytes everywhere (the quadratic case for a naive search).
        let boundary = "a".repeat(MAX_BOUNDARY_LEN);
        let mut body =
            format!("--{boundary}\r\nContent-Disposition: form-data; filename=\"root\"\r\n\r\n").into_bytes();
        body.extend(std::iter::repeat_n(b'-', 10 << 20));
        let refused = parse_multipart(&format!("multipart/form-data; boundary={boundary}"), &body);
        assert!(matches!(&refused, Err(TrustError::MalformedUpload(m)) if m == "unterminated part"));
        let mut flood = String::new();
        for _ in 0..=MAX_PARTS {
            flood.push_str("--B\r\nContent-Disposition: form-data; filename=\"x\"\r\n\r\n{}\r\n");
        }
        flood.push_str("--B--\r\n");
        let refused = parse_multipart("multipart/form-data; boundary=B", flood.as_bytes());
        assert!(
            matches!(&refused, Err(TrustError::MalformedUpload(m)) if m == "more than 256 files in one update"),
            "{refused:?}"
        );
        assert_eq!(find(b"xxabcab", b"ab", 0), Some(2));
        assert_eq!(find(b"xxabcab", b"ab", 3), Some(5));
        assert_eq!(find(b"xxabcab", b"abd", 0), None);
        assert_eq!(find(b"ab", b"ab", 1), None);
    }
}
