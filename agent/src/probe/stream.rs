//! The connection a probe speaks HTTP over (plain TCP or TLS over TCP),
//! wrapped so that the first response byte is timestamped the moment it is
//! read from the socket, not when hyper later hands over parsed headers.
//!
//! For HTTP/1.1 the first byte read after the handshake is the response's.
//! For HTTP/2 the server speaks first (SETTINGS), so the reader scans frame
//! headers and stamps the first frame that belongs to a stream.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Where the instant of the first response byte lands; shared between the
/// stream (inside hyper) and the probe.
pub(crate) type FirstByte = Arc<OnceLock<Instant>>;

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
}

impl TimedStream {
    /// Wraps `inner`; `h2` selects HTTP/2 frame scanning.
    pub(crate) fn new(inner: Transport, first_byte: FirstByte, h2: bool) -> Self {
        TimedStream {
            inner,
            first_byte,
            h2: h2.then(H2Scan::default),
        }
    }
}

impl AsyncRead for TimedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match &mut this.inner {
            Transport::Plain(s) => ready!(Pin::new(s).poll_read(cx, buf))?,
            Transport::Tls(s) => ready!(Pin::new(s.as_mut()).poll_read(cx, buf))?,
        }
        if this.first_byte.get().is_none() {
            let fresh = &buf.filled()[before..];
            if !fresh.is_empty() {
                // The clock is read before any scanning.
                let now = Instant::now();
                let is_response = match &mut this.h2 {
                    None => true,
                    Some(scan) => scan.feed(fresh),
                };
                if is_response {
                    let _ = this.first_byte.set(now);
                }
            }
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

/// Scans the server's HTTP/2 frame headers (9 bytes: length, type, flags,
/// stream id) for the first frame on a stream: the response.
#[derive(Debug, Default)]
struct H2Scan {
    header: [u8; 9],
    have: usize,
    skip: usize,
}

impl H2Scan {
    const WINDOW_UPDATE: u8 = 0x8;

    /// Feeds bytes read from the server; true once a frame header that
    /// belongs to a stream (not connection control) has been seen.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
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
                    return true;
                }
                self.skip = length;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
