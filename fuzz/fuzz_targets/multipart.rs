//! notary's multipart upload body (`services::trust::parse_multipart`). The input is
//! the Content-Type header, a newline, then the body.
//! Properties: at most `MAX_PARTS` parts, each part's content is bytes of the body
//! (never more in total than the body), bounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_fuzz::within_allocation_bound;
use wharf_server::services::trust::parse_multipart;

const MAX_PARTS: usize = 256;

fuzz_target!(|data: &[u8]| {
    let Some(newline) = data.iter().position(|b| *b == b'\n') else {
        return;
    };
    let Ok(content_type) = std::str::from_utf8(&data[..newline]) else {
        return;
    };
    let body = &data[newline + 1..];
    let Ok(parts) = within_allocation_bound("multipart", data.len(), || parse_multipart(content_type, body))
    else {
        return;
    };
    assert!(parts.len() <= MAX_PARTS, "{} parts", parts.len());
    let total: usize = parts.iter().map(|(_, content)| content.len()).sum();
    assert!(
        total <= body.len(),
        "parts hold {total} bytes of a {}-byte body",
        body.len()
    );
    for (_, content) in &parts {
        assert!(
            content.is_empty() || body.windows(content.len()).any(|w| w == content.as_slice()),
            "part content is not taken from the body"
        );
    }
});
