//! Request logging and Prometheus metrics. Each request gets an id (echoed in
//! `X-Request-Id`) and one span carrying principal and repository once known.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::app::AppState;

/// Latency histogram buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<HashMap<(&'static str, &'static str, u16), Series>>,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub uploads_in_flight: AtomicI64,
}

impl Metrics {
    fn observe(&self, route: &'static str, method: &'static str, status: u16, seconds: f64) {
        if let Ok(mut map) = self.requests.lock() {
            let s = map.entry((route, method, status)).or_default();
            s.count += 1;
            s.sum += seconds;
            for (i, b) in BUCKETS.iter().enumerate() {
                if seconds <= *b {
                    s.buckets[i] += 1;
                }
            }
        }
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP wharf_http_requests_total HTTP requests by route, method and status.\n");
        out.push_str("# TYPE wharf_http_requests_total counter\n");
        let map = match self.requests.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let mut keys: Vec<_> = map.keys().collect();
        keys.sort();
        for k in &keys {
            let s = &map[*k];
            let _ = writeln!(
                out,
                "wharf_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}",
                k.0, k.1, k.2, s.count
            );
        }
        out.push_str("# HELP wharf_http_request_duration_seconds Request latency.\n");
        out.push_str("# TYPE wharf_http_request_duration_seconds histogram\n");
        for k in &keys {
            let s = &map[*k];
            let labels = format!("route=\"{}\",method=\"{}\",status=\"{}\"", k.0, k.1, k.2);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "wharf_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "wharf_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "wharf_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "wharf_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP wharf_blob_bytes_received_total Blob bytes accepted by uploads.\n# TYPE wharf_blob_bytes_received_total counter\nwharf_blob_bytes_received_total {}",
            self.bytes_in.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP wharf_blob_bytes_sent_total Blob bytes served.\n# TYPE wharf_blob_bytes_sent_total counter\nwharf_blob_bytes_sent_total {}",
            self.bytes_out.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP wharf_uploads_in_flight Upload requests being received now.\n# TYPE wharf_uploads_in_flight gauge\nwharf_uploads_in_flight {}",
            self.uploads_in_flight.load(Ordering::Relaxed)
        );
        out
    }
}

/// Counts an upload request as in flight for as long as it lives.
pub struct InFlight<'a>(&'a Metrics);

impl<'a> InFlight<'a> {
    pub fn start(m: &'a Metrics) -> Self {
        m.uploads_in_flight.fetch_add(1, Ordering::Relaxed);
        Self(m)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.uploads_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn request_id(req: &Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let r = crate::auth::secrets::random_bytes::<8>().unwrap_or_default();
            hex::encode(r)
        })
}

pub async fn trace_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = request_id(&req);
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let version = req.version();
    let route = crate::routes::route_kind(&path);
    let span = tracing::info_span!("request", id = %id, method = %method, path = %path, version = ?version,
        principal = tracing::field::Empty, repository = tracing::field::Empty);
    let started = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    state
        .metrics
        .observe(route, method_label(&method), status, elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request done"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// A fixed label per method, so counting a request allocates nothing and a client cannot
/// create unbounded label values with made-up methods.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}
