//! The CONNECT exchange with an http:// proxy, over the TCP connection the
//! probe opened to it: the request (built before the clock) goes out, the
//! answer is read into a fixed buffer until its head ends. What the bytes
//! mean is `proxy`'s (pure); this is the thin I/O around it.

use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use wire::ErrorClass;

use super::failure::ProbeFailure;
use super::phase::Phase;
use super::proxy::{self, ConnectHead};

/// What a tunnel needs, allocated before the probe's clock starts.
pub(crate) struct Prepared {
    /// The CONNECT request's bytes.
    pub(crate) request: Vec<u8>,
    /// Where the answer is read: [`proxy::MAX_CONNECT_HEAD`] bytes, never grown.
    pub(crate) head: Vec<u8>,
}

impl Prepared {
    /// The CONNECT to `authority` (`host:port`) with the proxy's credentials.
    pub(crate) fn new(authority: &str, authorization: Option<&hyper::header::HeaderValue>) -> Self {
        Prepared {
            request: proxy::connect_request(authority, authorization),
            head: vec![0; proxy::MAX_CONNECT_HEAD],
        }
    }
}

/// Sends the CONNECT and reads the proxy's answer; the instant its 2xx
/// head was read whole. Every failure is in the proxy phase: the proxy
/// refused (`connect_error`, its status in the detail), closed or reset
/// the connection (`connect_error`), or answered with something that is
/// not an HTTP head within 16 KiB (`http_protocol`). A proxy that never
/// answers is left to the caller's deadline.
pub(crate) async fn open<S>(io: &mut S, prepared: &mut Prepared) -> Result<Instant, ProbeFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let fail = |class, detail: String| ProbeFailure::new(class, Phase::Proxy, detail);
    let io_fail = |e: std::io::Error| {
        fail(
            ErrorClass::ConnectError,
            format!("proxy, during CONNECT: {e}"),
        )
    };
    io.write_all(&prepared.request).await.map_err(io_fail)?;
    io.flush().await.map_err(io_fail)?;
    let mut len = 0;
    loop {
        let n = io.read(&mut prepared.head[len..]).await.map_err(io_fail)?;
        let at = Instant::now();
        if n == 0 {
            return Err(fail(
                ErrorClass::ConnectError,
                "proxy closed the connection before answering CONNECT".into(),
            ));
        }
        len += n;
        let head = &prepared.head[..len];
        match proxy::parse_connect_head(head) {
            Ok(ConnectHead::Incomplete) => continue,
            Ok(ConnectHead::Open { len: used }) if used == len => return Ok(at),
            Ok(ConnectHead::Open { .. }) => {
                // The tunnel's first bytes are the client's (TLS speaks
                // first): anything more from the proxy now is not HTTP.
                return Err(fail(
                    ErrorClass::HttpProtocol,
                    "proxy sent bytes after its answer to CONNECT".into(),
                ));
            }
            Ok(ConnectHead::Refused { status, reason }) => {
                let reason = if reason.is_empty() {
                    String::new()
                } else {
                    format!(" {reason}")
                };
                return Err(fail(
                    ErrorClass::ConnectError,
                    format!("proxy refused CONNECT: {status}{reason}"),
                ));
            }
            Err(e) => return Err(fail(ErrorClass::HttpProtocol, e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    async fn answer_with(chunks: &[&[u8]]) -> Result<Instant, ProbeFailure> {
        let (mut client, mut server) = duplex(64 << 10);
        let chunks: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
        let proxy = tokio::spawn(async move {
            let mut seen = vec![0; 4096];
            let _ = server.read(&mut seen).await;
            for chunk in chunks {
                let _ = server.write_all(&chunk).await;
                tokio::task::yield_now().await;
            }
            drop(server);
        });
        let mut prepared = Prepared::new("origin.test:443", None);
        let result = open(&mut client, &mut prepared).await;
        let _ = proxy.await;
        result
    }

    #[tokio::test]
    async fn a_2xx_in_pieces_opens_the_tunnel() {
        let r = answer_with(&[b"HTTP/1.1 2", b"00 Connection established\r\n", b"\r\n"]).await;
        assert!(r.is_ok(), "{r:?}");
    }

    #[tokio::test]
    async fn refusals_garbage_and_silence_fail_in_the_proxy_phase() {
        let refused = answer_with(&[b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"]).await;
        let refused = refused
            .err()
            .unwrap_or_else(|| panic!("407 opened a tunnel"));
        assert_eq!(refused.class, ErrorClass::ConnectError);
        assert_eq!(refused.phase, Phase::Proxy);
        assert_eq!(
            refused.detail,
            "proxy refused CONNECT: 407 Proxy Authentication Required"
        );
        let garbage = answer_with(&[b"\x16\x03\x01\x00\x05hello"]).await;
        assert!(garbage.is_err_and(|f| f.class == ErrorClass::HttpProtocol));
        let closed = answer_with(&[b"HTTP/1.1 200"]).await;
        assert!(
            closed
                .is_err_and(|f| f.class == ErrorClass::ConnectError && f.detail.contains("closed"))
        );
        let huge_header = vec![b'a'; proxy::MAX_CONNECT_HEAD];
        let huge = answer_with(&[b"HTTP/1.1 200 OK\r\nX: ", &huge_header]).await;
        assert!(
            huge.is_err_and(|f| f.class == ErrorClass::HttpProtocol && f.detail.contains("16384"))
        );
        let early = answer_with(&[b"HTTP/1.1 200 OK\r\n\r\nsurprise"]).await;
        assert!(early.is_err_and(|f| f.detail.contains("after its answer")));
    }
}
