//! An HTTPS client that trusts the system roots plus an optional CA file.

use std::path::Path;

use anyhow::Context;

pub fn client(ca_file: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder().user_agent(concat!("wharf/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read CA file {}", ca.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("{} is not a PEM certificate", ca.display()))?;
        b = b.add_root_certificate(cert);
    }
    b.build().context("cannot build HTTPS client")
}

/// Percent-encode everything but RFC 3986 unreserved characters (query values, path
/// segments, form fields).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
