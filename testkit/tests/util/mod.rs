//! A minimal HTTP(S) client for testkit's own tests: hyper's client
//! connection API over a stream we open, with the phase instants recorded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Version;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// What one GET saw, with durations measured like a probe would.
#[derive(Debug)]
pub struct Outcome {
    pub status: u16,
    pub version: Version,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    /// connect() to the end of the TLS handshake (zero for plain).
    pub tls: Duration,
    /// Connection ready to response head received.
    pub ttfb: Duration,
    /// Response head to last body byte.
    pub body_time: Duration,
    pub alpn: Option<Vec<u8>>,
}

/// TLS options for [`get`].
pub struct Tls {
    pub config: Arc<ClientConfig>,
    pub server_name: &'static str,
}

/// GET `path` on a fresh connection to `addr`.
pub async fn get(addr: SocketAddr, tls: Option<Tls>, path: &str) -> anyhow::Result<Outcome> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    match tls {
        None => request(tcp, false, Duration::ZERO, None, path).await,
        Some(tls) => {
            let start = Instant::now();
            let connector = tokio_rustls::TlsConnector::from(tls.config);
            let name = ServerName::try_from(tls.server_name)?;
            let stream = connector.connect(name, tcp).await?;
            let tls_time = start.elapsed();
            let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            let h2 = alpn.as_deref() == Some(b"h2");
            request(stream, h2, tls_time, alpn, path).await
        }
    }
}

async fn request<IO>(
    io: IO,
    h2: bool,
    tls: Duration,
    alpn: Option<Vec<u8>>,
    path: &str,
) -> anyhow::Result<Outcome>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let uri = if h2 {
        format!("https://localhost{path}")
    } else {
        path.to_owned()
    };
    let mut req = hyper::Request::get(uri);
    if !h2 {
        // h2 carries the authority in the URI (:authority), not in Host.
        req = req.header("host", "localhost");
    }
    let req = req.body(Empty::<Bytes>::new())?;
    let start = Instant::now();
    let resp = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        sender.send_request(req).await?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(conn);
        sender.send_request(req).await?
    };
    finish(resp, start, tls, alpn).await
}

async fn finish(
    resp: hyper::Response<Incoming>,
    start: Instant,
    tls: Duration,
    alpn: Option<Vec<u8>>,
) -> anyhow::Result<Outcome> {
    let ttfb = start.elapsed();
    let head_at = Instant::now();
    let status = resp.status().as_u16();
    let version = resp.version();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok(Outcome {
        status,
        version,
        headers,
        body,
        tls,
        ttfb,
        body_time: head_at.elapsed(),
        alpn,
    })
}

/// A client config trusting `ca`, offering `alpn`.
pub fn tls(ca: &testkit::pki::Ca, alpn: &[&[u8]]) -> Tls {
    Tls {
        config: ca.client_config(alpn),
        server_name: "localhost",
    }
}
