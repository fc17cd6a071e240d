//! `ReadAhead`: a large receive buffer between the TCP socket and TLS.
//!
//! rustls asks the socket for at most one record (~16 KiB) per read, so a 1 GiB upload
//! cost ~68,000 `recvfrom` calls, each also sending window updates that the loopback
//! peer processes on our CPU. Reading up to `CAPACITY` bytes at once and handing rustls
//! slices of them trades those calls for one memcpy. The buffer exists only while data
//! is flowing: it is released when the socket has nothing more to give, so idle
//! keep-alive connections hold no memory.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const CAPACITY: usize = 256 << 10;

pub struct ReadAhead<S> {
    inner: S,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..]`.
    start: usize,
}

impl<S> ReadAhead<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            start: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start == this.buf.len() {
            this.start = 0;
            this.buf.clear();
            if this.buf.capacity() < CAPACITY {
                this.buf.reserve_exact(CAPACITY);
            }
            let mut rb = ReadBuf::uninit(this.buf.spare_capacity_mut());
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    // SAFETY: `ReadBuf` reports the first `n` bytes of the spare capacity
                    // as initialised and filled by the socket read.
                    unsafe { this.buf.set_len(n) };
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    // Nothing in flight: give the memory back while the peer is quiet.
                    this.buf = Vec::new();
                    return Poll::Pending;
                }
            }
        }
        let n = out.remaining().min(this.buf.len() - this.start);
        out.put_slice(&this.buf[this.start..this.start + n]);
        this.start += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
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
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn small_reads_see_every_byte_in_order_then_eof() {
        let data: Vec<u8> = (0..(3 * CAPACITY + 123)).map(|i| (i % 251) as u8).collect();
        let (mut tx, rx) = tokio::io::duplex(64 << 10);
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            tx.write_all(&sent).await.unwrap();
        });
        let mut reader = ReadAhead::new(rx);
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = reader.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        writer.await.unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data, "bytes differ");
    }

    #[tokio::test]
    async fn a_quiet_peer_leaves_no_buffer_behind() {
        let (mut tx, rx) = tokio::io::duplex(1024);
        let mut reader = ReadAhead::new(rx);
        tx.write_all(b"hello").await.unwrap();
        let mut out = [0u8; 5];
        reader.read_exact(&mut out).await.unwrap();
        assert_eq!(&out, b"hello");
        // The next read finds nothing to read: the buffer must be released.
        let pending = tokio::time::timeout(std::time::Duration::from_millis(50), reader.read(&mut out)).await;
        assert!(pending.is_err(), "read should still be waiting");
        assert_eq!(reader.buf.capacity(), 0);
    }
}
