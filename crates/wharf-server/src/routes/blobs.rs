//! Blob GET/HEAD (with single `Range`) and DELETE.

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, LOCATION, RANGE,
};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use wharf_store::{ByteRange, Digest};

use super::RouteError;
use crate::app::AppState;
use crate::services::RegistryError;
use crate::services::access::Actor;
use crate::wire::WireError;

pub fn parse_digest(s: &str) -> Result<Digest, WireError> {
    Digest::parse(s).map_err(|e| RegistryError::DigestInvalid(format!("{s:?}: {e}")).into())
}

/// One `bytes=a-b`, `bytes=a-` or `bytes=-n` range against a blob of `size` bytes.
/// `Ok(None)` means serve the whole blob; `Err` means 416.
fn parse_range(header: &str, size: u64) -> Result<Option<ByteRange>, ()> {
    let spec = header.trim().strip_prefix("bytes=").ok_or(())?;
    if spec.contains(',') {
        return Err(()); // multipart ranges are not offered
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| ());
    let (start, end) = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => {
            let n = num(b)?;
            if n == 0 || size == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size - 1)
        }
        (false, true) => (num(a)?, size.saturating_sub(1)),
        (false, false) => (num(a)?, num(b)?.min(size.saturating_sub(1))),
        (true, true) => return Err(()),
    };
    if size == 0 || start > end || start >= size {
        return Err(());
    }
    Ok(Some(ByteRange { start, end }))
}

pub async fn get(
    state: &AppState,
    name: &str,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, WireError> {
    let digest = parse_digest(digest)?;
    let size = state.blobs.stat(name, &digest).await?;
    let range = match headers.get(RANGE).and_then(|v| v.to_str().ok()) {
        Some(h) => match parse_range(h, size) {
            Ok(r) => r,
            Err(()) => {
                return Err(RouteError::RangeNotSatisfiable {
                    range: h.to_owned(),
                    size,
                }
                .into());
            }
        },
        None => None,
    };
    if !head && let Some(url) = state.blobs.download_redirect(&digest).await? {
        // The caller was authorised for this repository and the blob is linked to it;
        // the bytes come from the store, through a URL that expires.
        return Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(LOCATION, url)
            .header("docker-content-digest", digest.as_str())
            .header(CONTENT_LENGTH, 0)
            .body(Body::empty())
            .map_err(|_| WireError::internal());
    }
    let len = range.map_or(size, |r| r.len());
    let mut builder = Response::builder()
        .status(if range.is_some() {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        })
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, len)
        .header(ACCEPT_RANGES, "bytes")
        .header("docker-content-digest", digest.as_str())
        .header(ETAG, format!("\"{digest}\""))
        // Content-addressed: the bytes behind a digest never change.
        .header(CACHE_CONTROL, "max-age=31536000");
    if let Some(r) = range {
        builder = builder.header(CONTENT_RANGE, format!("bytes {}-{}/{size}", r.start, r.end));
    }
    if head {
        return builder.body(Body::empty()).map_err(|_| WireError::internal());
    }
    let stream = state.blobs.read(&digest, range).await?;
    let st = state.clone();
    let counted = stream.inspect(move |chunk| {
        if let Ok(c) = chunk {
            st.metrics.bytes_out.fetch_add(c.len() as u64, Ordering::Relaxed);
        }
    });
    builder
        .body(Body::from_stream(counted))
        .map_err(|_| WireError::internal())
}

pub async fn delete(
    state: &AppState,
    actor: &Actor,
    name: &str,
    digest: &str,
) -> Result<Response, WireError> {
    let digest = parse_digest(digest)?;
    state.blobs.delete(actor, name, &digest).await?;
    Ok((StatusCode::ACCEPTED, [(CONTENT_LENGTH, "0")]).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |s, e| Ok(Some(ByteRange { start: s, end: e }));
        assert_eq!(parse_range("bytes=0-9", 100), r(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), r(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), r(90, 99));
        assert_eq!(parse_range("bytes=50-500", 100), r(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=5-1", 100), Err(()));
        assert_eq!(parse_range("bytes=0-1,3-4", 100), Err(()));
        assert_eq!(parse_range("items=0-1", 100), Err(()));
        assert_eq!(parse_range("bytes=0-0", 0), Err(()));
    }
}
