//! The connection a probe speaks HTTP over (plain TCP or TLS over TCP),
//! wrapped so that the first response byte is timestamped the moment it is
//! read from the socket, not when hyper later hands over parsed headers.
//!
//! For HTTP/1.1 the first byte read after the handshake is the response's.
//! For HTTP/2 the server speaks first (SETTINGS), so the reader scans frame
//! headers and stamps the first frame that belongs to a stream.
//!
//! The wrapper is also where a hostile target is kept from holding the
//! runtime: reads are charged to the task's cooperative budget by size, so
//! a task that parses a flood yields after about 128 KiB, and the count
//! of informational (1xx) responses is bounded: over HTTP/1 through
//! hyper's callback, over HTTP/2 by counting the stream's HEADERS frames.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Where the instant of the first response byte lands; shared between the
/// stream (inside hyper) and the probe.
pub(crate) type FirstByte = Arc<OnceLock<Instant>>;

/// Informational (1xx) responses a probe accepts before the final one, as
/// Go's net/http does (it allows 5): enough for `100 Continue` and a few
/// `103 Early Hints`, and a flood of them fails at once.
pub(crate) const MAX_INFORMATIONAL: u32 = 8;

/// Bytes read per unit of the task's cooperative budget. Tokio's budget is
/// 128 units a poll, so a task reads (and hyper parses) about 128 KiB of
/// one target per poll before it yields to the other tasks and to the I/O
/// driver. tokio charges a unit per socket read whatever its size; a flood
/// of tiny messages (1xx heads, header lines) is cheap to read and dear to
/// parse, so reads are charged by their size here.
const READ_UNIT: usize = 1024;

/// About how many bytes a probe's task reads from its target per poll
/// (plus the one read that spends the budget, at most hyper's buffer).
#[cfg(test)]
const POLL_BYTES: usize = 128 * READ_UNIT;

/// The number of informational responses seen on one connection; hyper's
/// `on_informational` callback counts, the stream enforces.
pub(crate) type Informational = Arc<AtomicU32>;

/// The error a read returns once the target sent more than
/// [`MAX_INFORMATIONAL`] informational responses.
#[derive(Debug, thiserror::Error)]
#[error("more than {MAX_INFORMATIONAL} informational (1xx) responses")]
pub(crate) struct TooManyInformational;

/// Plain TCP or TLS over TCP.
pub(crate) enum Transport {
    /// Cleartext HTTP.
    Plain(TcpStream),
    /// HTTPS.
    Tls(Box<TlsStream<TcpStream>>),
}

/// A transport that records when the first response byte was read.
pub(crate) struct TimedStream {
    inner: Transport,
    first_byte: FirstByte,
    h2: Option<H2Scan>,
    /// Bytes read and not yet charged to the cooperative budget.
    unpaid: usize,
    informational: Option<Informational>,
}

impl TimedStream {
    /// Wraps `inner`; `h2` selects HTTP/2 frame scanning.
    pub(crate) fn new(inner: Transport, first_byte: FirstByte, h2: bool) -> Self {
        TimedStream {
            inner,
            first_byte,
            h2: h2.then(H2Scan::default),
            unpaid: 0,
            informational: None,
        }
    }

    /// Fails reads once `counter` (fed by hyper's `on_informational`)
    /// passes [`MAX_INFORMATIONAL`].
    pub(crate) fn bound_informational(&mut self, counter: Informational) {
        self.informational = Some(counter);
    }

    /// Charges earlier reads to the task's budget; pending (the task is
    /// woken after the runtime polled its driver) once the budget is spent.
    fn pay(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while self.unpaid >= READ_UNIT {
            ready!(tokio::task::coop::poll_proceed(cx)).made_progress();
            self.unpaid -= READ_UNIT;
        }
        Poll::Ready(())
    }
}

impl AsyncRead for TimedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this
            .informational
            .as_ref()
            .is_some_and(|n| n.load(Ordering::Relaxed) > MAX_INFORMATIONAL)
        {
            return Poll::Ready(Err(io::Error::other(TooManyInformational)));
        }
        ready!(this.pay(cx));
        let before = buf.filled().len();
        match &mut this.inner {
            Transport::Plain(s) => ready!(Pin::new(s).poll_read(cx, buf))?,
            Transport::Tls(s) => ready!(Pin::new(s.as_mut()).poll_read(cx, buf))?,
        }
        this.unpaid += buf.filled().len() - before;
        let fresh = &buf.filled()[before..];
        if fresh.is_empty() {
            return Poll::Ready(Ok(()));
        }
        // The clock is read before any scanning.
        let now = this.first_byte.get().is_none().then(Instant::now);
        let is_response = match &mut this.h2 {
            None => true,
            Some(scan) => {
                let is_response = scan.feed(fresh);
                if scan.headers > MAX_H2_HEADERS {
                    return Poll::Ready(Err(io::Error::other(TooManyInformational)));
                }
                is_response
            }
        };
        if let (Some(now), true) = (now, is_response) {
            let _ = this.first_byte.set(now);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TimedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Transport::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// HEADERS frames a probe's HTTP/2 stream may carry: the informational
/// responses allowed over HTTP/1 ([`MAX_INFORMATIONAL`]), the final
/// response and its trailers. h2 drops informational HEADERS without a
/// callback, so they are counted here.
const MAX_H2_HEADERS: u32 = MAX_INFORMATIONAL + 2;

/// Scans the server's HTTP/2 frame headers (9 bytes: length, type, flags,
/// stream id) for the first frame on a stream (the response) and counts
/// the HEADERS frames on streams.
#[derive(Debug, Default)]
struct H2Scan {
    header: [u8; 9],
    have: usize,
    skip: usize,
    /// HEADERS frames seen on streams (a probe opens one).
    headers: u32,
}

impl H2Scan {
    const HEADERS: u8 = 0x1;
    const WINDOW_UPDATE: u8 = 0x8;

    /// Feeds bytes read from the server; true if a frame header that
    /// belongs to a stream (not connection control) was among them.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
        let mut on_stream = false;
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (9 - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == 9 {
                self.have = 0;
                let h = &self.header;
                let length = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                let kind = h[3];
                let stream = u32::from_be_bytes([h[5] & 0x7f, h[6], h[7], h[8]]);
                if stream != 0 && kind != Self::WINDOW_UPDATE {
                    on_stream = true;
                }
                if stream != 0 && kind == Self::HEADERS {
                    self.headers = self.headers.saturating_add(1);
                }
                self.skip = length;
            }
        }
        on_stream
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads from `stream` until it is pending (within one poll of the
    /// task) and returns how many bytes that poll read.
    async fn read_one_poll(stream: &mut TimedStream) -> io::Result<usize> {
        std::future::poll_fn(|cx| {
            let mut total = 0;
            let mut chunk = [0u8; 8192];
            loop {
                let mut buf = ReadBuf::new(&mut chunk);
                match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                        return Poll::Ready(Ok(total));
                    }
                    Poll::Ready(Ok(())) => total += buf.filled().len(),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Ready(Ok(total)),
                }
            }
        })
        .await
    }

    #[tokio::test]
    async fn a_flood_is_read_a_poll_bytes_at_a_time() {
        const SENT: usize = 1 << 20;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let (mut peer, _) = listener.accept().unwrap_or_else(|e| panic!("{e}"));
            peer.write_all(&vec![b'x'; SENT])
                .unwrap_or_else(|e| panic!("{e}"));
        });
        let tcp = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // Let the whole flood sit in the socket buffers, so only the
        // budget can end a poll early.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut stream = TimedStream::new(Transport::Plain(tcp), FirstByte::default(), false);
        let (mut total, mut polls, mut most) = (0, 0, 0);
        while total < SENT {
            let n = read_one_poll(&mut stream)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            total += n;
            polls += 1;
            most = most.max(n);
            tokio::task::yield_now().await;
        }
        let _ = writer.join();
        // Without the guard, tokio's 128 reads a poll would take 1 MiB at once.
        assert!(most <= POLL_BYTES + 8192, "{most} bytes in one poll");
        assert!(polls >= SENT / (POLL_BYTES + 8192), "{polls} polls");
    }

    #[tokio::test]
    async fn reads_fail_past_the_informational_bound() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let _peer = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
        let tcp = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut stream = TimedStream::new(Transport::Plain(tcp), FirstByte::default(), false);
        let counter = Informational::default();
        stream.bound_informational(counter.clone());
        counter.store(MAX_INFORMATIONAL + 1, Ordering::Relaxed);
        let err = read_one_poll(&mut stream).await.err();
        assert!(
            err.is_some_and(|e| e.to_string().contains("informational")),
            "reads go on past the bound"
        );
    }

    fn frame(kind: u8, stream: u32, payload: usize) -> Vec<u8> {
        let mut f = vec![
            (payload >> 16) as u8,
            (payload >> 8) as u8,
            payload as u8,
            kind,
            0,
        ];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend(std::iter::repeat_n(0xAB, payload));
        f
    }

    #[test]
    fn settings_then_headers() {
        let mut bytes = frame(0x4, 0, 18); // SETTINGS
        bytes.extend(frame(0x4, 0, 0)); // SETTINGS ack
        let mut scan = H2Scan::default();
        assert!(!scan.feed(&bytes));
        assert!(scan.feed(&frame(0x1, 1, 30))); // HEADERS on stream 1
    }

    #[test]
    fn headers_frames_are_counted_past_the_first_response_byte() {
        let mut scan = H2Scan::default();
        let mut flood = Vec::new();
        for _ in 0..20 {
            flood.extend(frame(0x1, 1, 5)); // HEADERS :status 103
            flood.extend(frame(0x0, 1, 7)); // DATA between them: skipped
        }
        flood.extend(frame(0x1, 0, 3)); // stream 0 is not a stream's
        assert!(scan.feed(&flood));
        assert_eq!(scan.headers, 20);
        assert!(scan.headers > MAX_H2_HEADERS);
    }

    #[test]
    fn frames_split_at_every_byte() {
        let mut bytes = frame(0x4, 0, 12);
        bytes.extend(frame(0x8, 1, 4)); // WINDOW_UPDATE on stream 1: not a response
        bytes.extend(frame(0x6, 0, 8)); // PING
        let response_at = bytes.len();
        bytes.extend(frame(0x1, 1, 5));
        let mut scan = H2Scan::default();
        for (i, b) in bytes.iter().enumerate() {
            let hit = scan.feed(std::slice::from_ref(b));
            // The header is complete at the 9th byte of the HEADERS frame.
            assert_eq!(hit, i == response_at + 8, "byte {i}");
            if hit {
                break;
            }
        }
    }
}
