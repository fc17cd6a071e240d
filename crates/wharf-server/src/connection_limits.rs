//! What one client can hold of the server: connection slots (in total and per source
//! address) and how long a connection may sit without moving a byte. Without these,
//! 900 TLS connections sending partial headers stayed open for over a minute and
//! ~20,000 of them exhausted the file descriptors so new requests failed.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The server holds its maximum number of connections.
    Total,
    /// This source address holds its maximum.
    PerAddress,
}

/// Counts open connections, in total and per source address.
pub struct ConnectionLimits {
    max_total: usize,
    max_per_address: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One admitted connection; its slot frees when dropped.
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    address: IpAddr,
}

impl ConnectionLimits {
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_address,
            open: Mutex::new(Open::default()),
        })
    }

    /// A slot for a connection from `address`, or why there is none.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<ConnectionSlot, Refused> {
        let mut open = self.open.lock().map_err(|_| Refused::Total)?;
        if open.total >= self.max_total {
            return Err(Refused::Total);
        }
        let mine = open.by_address.get(&address).copied().unwrap_or(0);
        if mine >= self.max_per_address {
            return Err(Refused::PerAddress);
        }
        open.total += 1;
        open.by_address.insert(address, mine + 1);
        Ok(ConnectionSlot {
            limits: self.clone(),
            address,
        })
    }

    pub fn open_total(&self) -> usize {
        self.open.lock().map_or(0, |o| o.total)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.limits.open.lock() {
            open.total = open.total.saturating_sub(1);
            if let Some(n) = open.by_address.get_mut(&self.address) {
                *n -= 1;
                if *n == 0 {
                    open.by_address.remove(&self.address);
                }
            }
        }
    }
}

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    u64::try_from(EPOCH.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// When a connection last moved a byte either way.
#[derive(Clone)]
pub struct Activity(Arc<AtomicU64>);

impl Activity {
    fn new() -> Self {
        Self(Arc::new(AtomicU64::new(now_ms())))
    }

    fn touch(&self) {
        self.0.store(now_ms(), Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.0.load(Ordering::Relaxed)))
    }

    /// Resolves once the connection has moved no byte for `limit`: the caller then drops
    /// it. A slow upload or download keeps moving bytes and is never cut; a client that
    /// sends nothing after the TLS handshake, or sits on an HTTP/2 connection without
    /// using it, is.
    pub async fn idle_for(&self, limit: Duration) {
        loop {
            let quiet = self.quiet_for();
            if quiet >= limit {
                return;
            }
            tokio::time::sleep(limit - quiet).await;
        }
    }
}

/// A byte stream that records its activity.
pub struct Watched<S> {
    inner: S,
    activity: Activity,
}

impl<S> Watched<S> {
    pub fn new(inner: S) -> (Self, Activity) {
        let activity = Activity::new();
        (
            Self {
                inner,
                activity: activity.clone(),
            },
            activity,
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[test]
    fn slots_are_capped_in_total_and_per_address_and_freed_on_drop() {
        let limits = ConnectionLimits::new(3, 2);
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        let a1 = limits.admit(a).unwrap();
        let _a2 = limits.admit(a).unwrap();
        assert_eq!(limits.admit(a).err(), Some(Refused::PerAddress));
        let _b1 = limits.admit(b).unwrap();
        assert_eq!(limits.admit(b).err(), Some(Refused::Total));
        drop(a1);
        assert_eq!(limits.open_total(), 2);
        let _b2 = limits.admit(b).unwrap();
        assert_eq!(limits.admit(a).err(), Some(Refused::Total));
    }

    #[tokio::test]
    async fn a_connection_that_moves_bytes_is_not_idle() {
        let (mut peer, ours) = tokio::io::duplex(64);
        let (mut ours, activity) = Watched::new(ours);
        let limit = Duration::from_millis(300);
        let idle = activity.clone();
        let watchdog = tokio::spawn(async move { idle.idle_for(limit).await });
        // Bytes every 100 ms for 600 ms: the watchdog must not fire meanwhile.
        for _ in 0..6 {
            peer.write_all(b"x").await.unwrap();
            let mut one = [0u8; 1];
            ours.read_exact(&mut one).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(!watchdog.is_finished());
        }
        // Then silence: it fires.
        tokio::time::timeout(Duration::from_secs(2), watchdog)
            .await
            .expect("idle connection detected")
            .unwrap();
    }
}
