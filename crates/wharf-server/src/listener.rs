//! The HTTPS accept loop. Our own loop (not `axum::serve`) so that TCP_NODELAY and the
//! HTTP/2 windows can be set: without them h2 uploads run ~10× slower (measured). It also
//! holds what a client may hold: connection slots, the time to finish a request's
//! headers, and the time a connection may sit without moving a byte.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::connection_limits::{ConnectionLimits, Refused, Watched};
use crate::read_ahead::ReadAhead;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Time to send a request's headers, counted from the moment the server waits for
/// them — which is also how long an idle HTTP/1.1 keep-alive connection stays open.
/// Clients reconnect transparently; a slow-headers attacker is cut after this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// A connection that moves no byte either way for this long is closed (an HTTP/2
/// connection nobody uses, a client silent after the handshake). Transfers in progress
/// move bytes and are never cut.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest pause after failing accepts (out of descriptors): doubles from 10 ms.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    limits: Arc<ConnectionLimits>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Windows well above loopback/LAN bandwidth-delay products, yet bounded so that a
    // client outrunning the disk parks at most a few MiB per connection in memory.
    // Measured: 16/32 MiB cost ~+20 MiB RSS on an h2 upload; 4/8 MiB halved h2 upload
    // throughput (flow-control stalls behind 1 MiB disk writes); 8/16 MiB sits between.
    builder
        .http2()
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(16 << 20)
        .max_frame_size((1 << 20) - 1)
        .adaptive_window(false)
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let builder = Arc::new(builder);
    let mut backoff = Duration::ZERO;
    let mut refusals_logged_at: Option<std::time::Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff = Duration::ZERO;
                    a
                }
                Err(e) => {
                    // Usually EMFILE: wait for descriptors to free instead of spinning.
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_ACCEPT_BACKOFF);
                    tracing::warn!(error = %e, pause_ms = backoff.as_millis() as u64, "accept failed");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match limits.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                // Closed at once: holding it would spend the descriptor it is about.
                drop(tcp);
                if refusals_logged_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    refusals_logged_at = Some(std::time::Instant::now());
                    let reason = match why {
                        Refused::Total => "the server holds its maximum number of connections",
                        Refused::PerAddress => "this address holds its maximum number of connections",
                    };
                    tracing::warn!(%peer, reason, "connection refused (logged at most every 10 s)");
                }
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        // The peer address travels with every request: failed-login throttling and audit
        // records key on it.
        let service = TowerToHyperService::new(tower::util::MapRequest::new(
            app.clone(),
            move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                req
            },
        ));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let (tcp, activity) = Watched::new(tcp);
            let tls =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(ReadAhead::new(tcp))).await {
                    Ok(Ok(mut s)) => {
                        // Encrypted output queued per connection before a socket write: rustls'
                        // 64 KiB default cost one writev per 64 KiB of a blob download; 256 KiB
                        // took ~10% off download CPU (measured), at up to 256 KiB per busy
                        // connection, released as the socket drains.
                        s.get_mut().1.set_buffer_limit(Some(256 << 10));
                        s
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            tokio::select! {
                served = watcher.watch(conn.into_owned()) => {
                    if let Err(e) = served {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                () = activity.idle_for(IDLE_TIMEOUT) => {
                    tracing::debug!(%peer, "connection closed after {IDLE_TIMEOUT:?} without a byte");
                }
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish within {DRAIN_TIMEOUT:?}");
    }
}
