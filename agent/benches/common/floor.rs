//! The bare client every cost figure is measured against: tokio connect,
//! TCP_NODELAY, an optional fresh rustls handshake, one HTTP/1.1 GET read
//! to the end of its Content-Length. Nothing else. Shared by the `probe`
//! and `agent` benches.
#![allow(clippy::disallowed_types, reason = "benchmarks measure real time")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use rustls::ClientConfig;
use rustls::client::Resumption;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// One bare probe's phases (tl is absent for plain HTTP).
#[derive(Debug, Clone, Copy, Default)]
pub struct FloorPhases {
    pub connect: Duration,
    pub tls: Option<Duration>,
    pub ttfb: Duration,
}

/// A bare client of one address.
#[derive(Clone)]
pub struct Floor {
    addr: SocketAddr,
    request: Arc<[u8]>,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Floor {
    /// A client of `addr` that calls the server `host` (Host, SNI).
    pub fn new(
        addr: SocketAddr,
        host: &str,
        tls: Option<Arc<ClientConfig>>,
    ) -> anyhow::Result<Floor> {
        let name = ServerName::try_from(host.to_owned()).context("server name")?;
        Ok(Floor {
            addr,
            request: format!("GET / HTTP/1.1\r\nHost: {host}:{}\r\n\r\n", addr.port())
                .into_bytes()
                .into(),
            tls: tls.map(|config| (TlsConnector::from(config), name)),
        })
    }

    /// One probe; `buf` is reused between probes.
    pub async fn probe(&self, buf: &mut Vec<u8>) -> anyhow::Result<FloorPhases> {
        let start = Instant::now();
        let tcp = TcpStream::connect(self.addr).await?;
        let connect = start.elapsed();
        tcp.set_nodelay(true)?;
        let (tls, ttfb) = match &self.tls {
            None => (None, get(tcp, &self.request, buf).await?),
            Some((connector, name)) => {
                let start = Instant::now();
                let stream = connector.connect(name.clone(), tcp).await?;
                let tls = start.elapsed();
                (Some(tls), get(stream, &self.request, buf).await?)
            }
        };
        Ok(FloorPhases { connect, tls, ttfb })
    }
}

/// The floor's TLS configuration: the same provider and ALPN offer as
/// sonde's, resumption off, so every handshake is a full one.
pub fn floor_tls(roots: rustls::RootCertStore) -> anyhow::Result<Arc<ClientConfig>> {
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = sonde::tls::PROBE_ALPN.iter().map(|p| p.to_vec()).collect();
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// Writes `request` and reads the response to its end; returns the time
/// from the write to the first byte read.
async fn get<S>(mut stream: S, request: &[u8], buf: &mut Vec<u8>) -> anyhow::Result<Duration>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    stream.write_all(request).await?;
    stream.flush().await?;
    buf.clear();
    let mut ttfb = None;
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 << 10);
        }
        let n = stream.read_buf(buf).await?;
        ttfb.get_or_insert_with(|| start.elapsed());
        ensure!(n > 0, "connection closed before the response ended");
        if response_len(buf).is_some_and(|len| buf.len() >= len) {
            break;
        }
    }
    ttfb.context("no response byte")
}

/// The whole response's length once its head is in: head + Content-Length.
fn response_len(buf: &[u8]) -> Option<usize> {
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = std::str::from_utf8(&buf[..head]).ok()?;
    let body = text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    })?;
    Some(head + body)
}
