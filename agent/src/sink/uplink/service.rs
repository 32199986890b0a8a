//! The gateway's ingest endpoint (PROTOCOL.md 1, 2) over one long-lived
//! HTTP/2 connection that this module opens itself: TCP, then rustls with
//! ALPN `h2` for `https`, or HTTP/2 with prior knowledge (h2c) for `http`,
//! which is allowed only to a loopback host. One client per configured URL;
//! one request at a time; any failure drops the connection and the next
//! request opens a new one.
//!
//! It turns an answer into a [`policy::Outcome`] and decides nothing.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http2;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::policy::{Ack, Outcome};
use crate::retry::parse_retry_after;
use crate::tls::{self, ClientTls, Roots, server_name};

/// The content type of an ingest body.
pub(crate) const CONTENT_TYPE_FRAMES: &str = "application/vnd.sonde.frames";
/// The ingest path used when the configured URL has none.
pub(crate) const INGEST_PATH: &str = "/v1/frames";
/// How long opening a connection (TCP, TLS, HTTP/2) may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request may take, from sending to the whole answer.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Answers are small JSON objects; more than this is not the gateway.
const MAX_ANSWER: usize = 64 << 10;

/// Why a gateway URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not `http` or `https`.
    #[error("gateway URL {0}: the scheme must be https (or http to a loopback address)")]
    Scheme(String),
    /// `http` to a host that is not loopback.
    #[error(
        "gateway URL {0}: cleartext http is allowed only to a loopback address \
         (127.0.0.0/8, ::1, localhost); use https"
    )]
    CleartextNotLoopback(String),
    /// No host in the URL.
    #[error("gateway URL {0}: no host")]
    NoHost(String),
}

/// Where and how to reach the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// TLS or not.
    pub(crate) tls: bool,
    /// The host to connect to, without brackets.
    pub(crate) host: String,
    /// The port.
    pub(crate) port: u16,
    /// The request URI: scheme, authority and the ingest path.
    pub(crate) uri: String,
}

/// The endpoint of a configured gateway URL. A URL without a path (or
/// `/`) means the gateway's standard ingest path, `/v1/frames`; any other
/// path is used as given. Refuses cleartext to anything but loopback.
pub(crate) fn endpoint(url: &url::Url) -> Result<Endpoint, EndpointError> {
    let shown = url.as_str().to_owned();
    let tls = match url.scheme() {
        "https" => true,
        "http" => false,
        _ => return Err(EndpointError::Scheme(shown)),
    };
    let host = url
        .host()
        .ok_or_else(|| EndpointError::NoHost(shown.clone()))?;
    if !tls && !config::is_loopback(url) {
        return Err(EndpointError::CleartextNotLoopback(shown));
    }
    let bare = match host {
        url::Host::Ipv6(ip) => ip.to_string(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Domain(d) => d.to_owned(),
    };
    let port = url
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    let path = match url.path() {
        "" | "/" => INGEST_PATH,
        p => p,
    };
    let authority = match host {
        url::Host::Ipv6(ip) => format!("[{ip}]:{port}"),
        _ => format!("{bare}:{port}"),
    };
    let scheme = if tls { "https" } else { "http" };
    Ok(Endpoint {
        tls,
        host: bare,
        port,
        uri: format!("{scheme}://{authority}{path}"),
    })
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The TLS configuration (CA file, system roots).
    #[error("gateway TLS: {0}")]
    Tls(#[from] tls::TlsConfigError),
    /// The token is not a valid header value.
    #[error("gateway token: not a valid HTTP header value (control characters?)")]
    Token,
    /// The URI.
    #[error("gateway URL {0}: {1}")]
    Uri(String, String),
    /// No URL at all (validation refuses that first).
    #[error("gateway: no URL configured")]
    NoUrl,
}

/// A client of one gateway's ingest endpoint.
pub(crate) struct Client {
    endpoint: Endpoint,
    uri: Uri,
    auth: HeaderValue,
    tls: Option<(TlsConnector, rustls_pki_types::ServerName<'static>)>,
    conn: Option<http2::SendRequest<Full<Bytes>>>,
    connects: u64,
}

impl Client {
    /// A client for each of `urls`, in order, with bearer `token`. For
    /// `https`, `ca` is trusted when given, the system roots without it or
    /// when `system_roots` (the rule of a check's `ca_file`); that TLS
    /// configuration is built once and shared by every URL.
    pub(crate) fn each(
        urls: &[url::Url],
        token: &str,
        ca: Option<&config::Certificates>,
        system_roots: bool,
    ) -> Result<Vec<Client>, ClientError> {
        if urls.is_empty() {
            return Err(ClientError::NoUrl);
        }
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ClientError::Token)?;
        auth.set_sensitive(true);
        let mut shared_tls: Option<Arc<rustls::ClientConfig>> = None;
        let mut clients = Vec::with_capacity(urls.len());
        for url in urls {
            let endpoint = endpoint(url)?;
            let uri: Uri = endpoint
                .uri
                .parse()
                .map_err(|e: hyper::http::uri::InvalidUri| {
                    ClientError::Uri(endpoint.uri.clone(), e.to_string())
                })?;
            let tls = if endpoint.tls {
                let config = match &shared_tls {
                    Some(config) => Arc::clone(config),
                    None => {
                        let options = ClientTls {
                            roots: Roots::of(ca.map(|ca| ca.certs.clone()), system_roots),
                            identity: None,
                            insecure: false,
                            tls13_only: false,
                        };
                        let config = tls::build(&options, &tls::GATEWAY_ALPN)?;
                        shared_tls = Some(Arc::clone(&config));
                        config
                    }
                };
                let name = server_name(&endpoint.host)
                    .map_err(|e| ClientError::Uri(endpoint.uri.clone(), e))?;
                Some((TlsConnector::from(config), name))
            } else {
                None
            };
            clients.push(Client {
                endpoint,
                uri,
                auth: auth.clone(),
                tls,
                conn: None,
                connects: 0,
            });
        }
        Ok(clients)
    }

    /// The request URI.
    pub(crate) fn uri(&self) -> &str {
        &self.endpoint.uri
    }

    /// Connections opened so far.
    pub(crate) fn connects(&self) -> u64 {
        self.connects
    }

    /// Drops the connection; the next request opens a new one.
    pub(crate) fn disconnect(&mut self) {
        self.conn = None;
    }

    async fn connect(&mut self) -> Result<http2::SendRequest<Full<Bytes>>, String> {
        let addr = (self.endpoint.host.as_str(), self.endpoint.port);
        let tcp = TcpStream::connect(addr).await.map_err(|e| {
            format!(
                "connecting to {}:{}: {e}",
                self.endpoint.host, self.endpoint.port
            )
        })?;
        let _ = tcp.set_nodelay(true);
        let sender = match &self.tls {
            None => handshake(tcp).await?,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS handshake with {}: {e}", self.endpoint.host))?;
                if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                    return Err(format!(
                        "{} did not negotiate HTTP/2 (ALPN h2); is it a sonde gateway?",
                        self.endpoint.host
                    ));
                }
                handshake(tls).await?
            }
        };
        self.connects += 1;
        Ok(sender)
    }

    /// POSTs `body` (whole frames) and reports how it ended. Opens the
    /// connection first if there is none.
    pub(crate) async fn send(&mut self, body: Bytes) -> Outcome {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(body)).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => {
                self.conn = None;
                Outcome::Transport(e)
            }
            Err(_) => {
                self.conn = None;
                Outcome::Transport(format!("no answer within {REQUEST_TIMEOUT:?}"))
            }
        }
    }

    async fn exchange(&mut self, body: Bytes) -> Result<Outcome, String> {
        let mut sender = match self.conn.take().filter(|c| !c.is_closed()) {
            Some(c) => c,
            None => tokio::time::timeout(CONNECT_TIMEOUT, self.connect())
                .await
                .map_err(|_| format!("connecting took more than {CONNECT_TIMEOUT:?}"))??,
        };
        sender
            .ready()
            .await
            .map_err(|e| format!("gateway connection: {e}"))?;
        let request = Request::post(self.uri.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, CONTENT_TYPE_FRAMES)
            .body(Full::new(body))
            .map_err(|e| format!("building the request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("sending to the gateway: {e}"))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()).ok());
        let answer = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| format!("reading the gateway's answer: {e}"))?
            .to_bytes();
        self.conn = Some(sender);
        if status == 200 {
            return match serde_json::from_slice::<Ack>(&answer) {
                Ok(ack) => Ok(Outcome::Acked(ack)),
                Err(e) => {
                    self.conn = None;
                    Err(format!("200 without an acknowledgement: {e}"))
                }
            };
        }
        Ok(Outcome::Refused {
            status,
            refusal: serde_json::from_slice(&answer).unwrap_or_default(),
            retry_after,
        })
    }
}

/// HTTP/2 over `io` with keep-alive pings (a dead peer is noticed within
/// 30 s), the connection driven by its own task: the gateway sink's and
/// the alerter's gateway reader's.
pub(crate) async fn handshake<T, B>(io: T) -> Result<http2::SendRequest<B>, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10))
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP/2 handshake with the gateway: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "gateway connection closed");
        }
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(url: &str) -> Result<Endpoint, EndpointError> {
        endpoint(&url::Url::parse(url).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn endpoints_default_the_path_and_keep_a_given_one() {
        let e = ep("http://127.0.0.1:7700").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.uri, "http://127.0.0.1:7700/v1/frames");
        assert!(!e.tls);
        let e = ep("https://gw.example/ingest").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.uri, "https://gw.example:443/ingest");
        assert_eq!((e.host.as_str(), e.port, e.tls), ("gw.example", 443, true));
        let e = ep("http://[::1]:9/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (e.host.as_str(), e.uri.as_str()),
            ("::1", "http://[::1]:9/v1/frames")
        );
        assert!(ep("http://localhost:7700/").is_ok());
        assert!(ep("http://127.1.2.3:7700/").is_ok());
    }

    #[test]
    fn cleartext_is_refused_off_loopback() {
        for url in [
            "http://10.0.0.1:7700/",
            "http://gw.example/",
            "http://[2001:db8::1]/",
        ] {
            assert!(
                matches!(ep(url), Err(EndpointError::CleartextNotLoopback(_))),
                "{url}"
            );
        }
        assert!(matches!(
            ep("ftp://127.0.0.1/"),
            Err(EndpointError::Scheme(_))
        ));
    }
}
