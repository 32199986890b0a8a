//! A byte stream with a write deadline: a write, flush or shutdown that
//! makes no progress for the set time fails with `TimedOut`, so hyper
//! closes the connection. This is how a reader that stopped reading is
//! dropped (PROTOCOL.md 3.4): hyper stops polling a response body whose
//! bytes it cannot send, so only the socket can tell.
//!
//! Reads are passed through untouched; the idle time between writes is
//! not limited here (readers get heartbeats, PROTOCOL.md 4 and 5).
//! [`limit_unsent`] keeps the kernel from hiding a stalled peer behind
//! megabytes of socket buffer.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Caps what `stream`'s kernel buffer holds not yet sent at about `bytes`
/// (`TCP_NOTSENT_LOWAT`, Linux). Without it the send buffer autotunes up
/// to `net.ipv4.tcp_wmem`'s maximum (4 MiB by default) per connection, so
/// a reader that stopped reading would hold that much kernel memory, and
/// its writes would go on "progressing" into it, before the deadline
/// could start. Bytes in flight are not limited, so throughput is not.
/// Elsewhere, and if the option is refused, nothing changes.
pub fn limit_unsent(stream: &tokio::net::TcpStream, bytes: usize) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        let _ = socket2::SockRef::from(stream).set_tcp_notsent_lowat(bytes);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (stream, bytes);
}

/// `io` whose writes must progress within `limit`.
pub struct WriteDeadline<T> {
    io: T,
    limit: Duration,
    /// Armed at the first write that could not proceed, cleared by progress.
    stalled_since: Option<Pin<Box<Sleep>>>,
    armed: bool,
    /// Bumped once when a deadline passes.
    timeouts: Arc<AtomicU64>,
}

impl<T> WriteDeadline<T> {
    /// Wraps `io`; a passed deadline is counted in `timeouts`.
    pub fn new(io: T, limit: Duration, timeouts: Arc<AtomicU64>) -> Self {
        WriteDeadline {
            io,
            limit,
            stalled_since: None,
            armed: false,
            timeouts,
        }
    }

    fn progressed(&mut self) {
        self.armed = false;
    }

    /// Called when the inner write is pending: arms the deadline or fails
    /// once it has passed.
    fn poll_deadline<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let deadline = Instant::now() + self.limit;
        let sleep = self
            .stalled_since
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.armed {
            sleep.as_mut().reset(deadline);
            self.armed = true;
        }
        match sleep.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no write progress for {:?}", self.limit),
                )))
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Pending => this.poll_deadline(cx),
            ready => {
                this.progressed();
                ready
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.poll_deadline(cx),
            ready => {
                this.progressed();
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => this.poll_deadline(cx),
            ready => {
                this.progressed();
                ready
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_shutdown(cx) {
            Poll::Pending => this.poll_deadline(cx),
            ready => {
                this.progressed();
                ready
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_write_without_progress_fails_after_the_limit() {
        let (client, server) = tokio::io::duplex(64);
        let timeouts = Arc::new(AtomicU64::new(0));
        let mut w = WriteDeadline::new(server, Duration::from_secs(10), timeouts.clone());
        w.write_all(&[0; 64]).await.unwrap();
        let started = Instant::now();
        let err = w.write_all(&[0; 1]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert_eq!(timeouts.load(Ordering::Relaxed), 1);
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn progress_within_the_limit_rearms_it() {
        let (mut client, server) = tokio::io::duplex(64);
        let timeouts = Arc::new(AtomicU64::new(0));
        let mut w = WriteDeadline::new(server, Duration::from_secs(10), timeouts.clone());
        // A reader that takes 64 bytes every 6 s: slower than the writer,
        // never stalled for 10 s.
        let reader = tokio::spawn(async move {
            let mut buf = [0; 64];
            let mut total = 0;
            while total < 64 * 5 {
                tokio::time::sleep(Duration::from_secs(6)).await;
                total += client.read(&mut buf).await.unwrap();
            }
            total
        });
        w.write_all(&[0; 64 * 5]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 64 * 5);
        assert_eq!(timeouts.load(Ordering::Relaxed), 0);
    }
}
