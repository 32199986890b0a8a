//! The receivers' HTTP client: POST a body to one http(s) URL over
//! HTTP/1.1 on a connection this module opens itself (TCP, then rustls
//! from [`crate::tls`] for `https`), within one deadline for the whole
//! exchange, reading at most [`MAX_ANSWER`] of the answer.
//!
//! One request at a time. The connection is kept for the next request
//! while it is idle for less than [`MAX_IDLE`]; a kept connection that
//! fails before any answer is replaced by a new one once, within the same
//! deadline. It reports what came back and decides nothing.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{HOST, HeaderMap, HeaderValue, RETRY_AFTER};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::retry::parse_retry_after;
use crate::tls;

/// At most this much of an answer is read; the rest is left unread.
pub const MAX_ANSWER: usize = 64 << 10;
/// A connection idle longer than this is not reused: servers close idle
/// connections, and a request racing that close would fail.
pub const MAX_IDLE: Duration = Duration::from_secs(15);

/// Why a client cannot be built for a URL.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Not `http` or `https`.
    #[error("receiver URL {0}: the scheme must be https (or http)")]
    Scheme(String),
    /// No host in the URL.
    #[error("receiver URL {0}: no host")]
    NoHost(String),
    /// The TLS configuration (CA file, system roots).
    #[error("receiver TLS: {0}")]
    Tls(#[from] tls::TlsConfigError),
    /// The host is not a valid TLS server name.
    #[error("receiver URL {0}: {1}")]
    ServerName(String, String),
}

/// Why an exchange ended without an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The TCP connection could not be opened.
    #[error("connecting to {addr}: {reason}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The OS's reason.
        reason: String,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with {host}: {reason}")]
    Tls {
        /// The host.
        host: String,
        /// rustls' reason.
        reason: String,
    },
    /// HTTP broke: the connection closed, a malformed answer.
    #[error("HTTP exchange with {host}: {reason}")]
    Protocol {
        /// The host.
        host: String,
        /// hyper's reason.
        reason: String,
    },
    /// No answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// What a receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The `Retry-After` delay, when there was a valid one.
    pub retry_after: Option<Duration>,
    /// The start of the body (at most [`MAX_ANSWER`]; less if reading it
    /// failed after the status arrived).
    pub body: Bytes,
}

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    tls: bool,
    /// Without brackets.
    host: String,
    port: u16,
    /// The `Host` header: the authority, the port only when not the default.
    authority: String,
    /// Origin form: path and query.
    path: String,
}

fn target(url: &url::Url) -> Result<Target, ClientError> {
    let shown = || url.as_str().to_owned();
    let tls = match url.scheme() {
        "https" => true,
        "http" => false,
        _ => return Err(ClientError::Scheme(shown())),
    };
    let host = url.host().ok_or_else(|| ClientError::NoHost(shown()))?;
    let (bare, shown_host) = match host {
        url::Host::Ipv6(ip) => (ip.to_string(), format!("[{ip}]")),
        url::Host::Ipv4(ip) => (ip.to_string(), ip.to_string()),
        url::Host::Domain(d) => (d.to_owned(), d.to_owned()),
    };
    let port = url
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    let authority = match url.port() {
        Some(p) => format!("{shown_host}:{p}"),
        None => shown_host,
    };
    let mut path = url.path().to_owned();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    Ok(Target {
        tls,
        host: bare,
        port,
        authority,
        path,
    })
}

struct Idle {
    sender: http1::SendRequest<Full<Bytes>>,
    since: Instant,
}

/// A client of one URL. `post` takes `&self`; requests are meant to be
/// made one at a time (a second concurrent one opens its own connection).
pub struct HttpClient {
    target: Target,
    url: String,
    tls: Option<(TlsConnector, rustls_pki_types::ServerName<'static>)>,
    timeout: Duration,
    idle: Mutex<Option<Idle>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HttpClient {
    /// A client POSTing to `url` within `timeout` per exchange. For
    /// `https`, `ca_file` is trusted instead of the system roots when
    /// given. Plain `http` is allowed to any host.
    pub fn new(
        url: &url::Url,
        ca_file: Option<&std::path::Path>,
        timeout: Duration,
    ) -> Result<HttpClient, ClientError> {
        let target = target(url)?;
        let tls = if target.tls {
            let options = tls::TlsOptions {
                ca_file: ca_file.map(ToOwned::to_owned),
                ..tls::TlsOptions::default()
            };
            // The probes' builder, offering HTTP/1.1 only: this client
            // does not speak h2.
            let mut config = (*tls::client_config(&options)?).clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = tls::server_name(&target.host)
                .map_err(|e| ClientError::ServerName(url.to_string(), e))?;
            Some((TlsConnector::from(std::sync::Arc::new(config)), name))
        } else {
            None
        };
        Ok(HttpClient {
            target,
            url: url.to_string(),
            tls,
            timeout,
            idle: Mutex::new(None),
        })
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// POSTs `body` with `headers` (`Host` is set here) and returns the
    /// answer, or why there was none.
    pub async fn post(&self, headers: &HeaderMap, body: Bytes) -> Result<Answer, HttpError> {
        match tokio::time::timeout(self.timeout, self.exchange(headers, body)).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout(self.timeout)),
        }
    }

    async fn exchange(&self, headers: &HeaderMap, body: Bytes) -> Result<Answer, HttpError> {
        if let Some(sender) = self.take_idle() {
            match self.send(sender, headers, body.clone()).await {
                Ok(answer) => return Ok(answer),
                // The server may have closed it as we sent: once more, fresh.
                Err(e) => {
                    tracing::debug!(url = %self.url, error = %e, "kept connection failed; reconnecting");
                }
            }
        }
        let sender = self.connect().await?;
        self.send(sender, headers, body).await
    }

    fn take_idle(&self) -> Option<http1::SendRequest<Full<Bytes>>> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        (idle.since.elapsed() < MAX_IDLE && !idle.sender.is_closed()).then_some(idle.sender)
    }

    async fn send(
        &self,
        mut sender: http1::SendRequest<Full<Bytes>>,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Answer, HttpError> {
        // Every error here comes before an answer: once the status is in,
        // the answer stands even if its body breaks off.
        let protocol = |e: hyper::Error| HttpError::Protocol {
            host: self.target.host.clone(),
            reason: e.to_string(),
        };
        sender.ready().await.map_err(protocol)?;
        let mut request = Request::post(self.target.path.as_str())
            .body(Full::new(body))
            .map_err(|e| HttpError::Protocol {
                host: self.target.host.clone(),
                reason: format!("building the request: {e}"),
            })?;
        *request.headers_mut() = headers.clone();
        if let Ok(host) = HeaderValue::from_str(&self.target.authority) {
            request.headers_mut().insert(HOST, host);
        }
        let response = sender.send_request(request).await.map_err(protocol)?;
        let (answer, whole) = read_answer(response).await;
        if whole {
            *self.idle.lock().unwrap_or_else(PoisonError::into_inner) = Some(Idle {
                sender,
                since: Instant::now(),
            });
        }
        Ok(answer)
    }

    async fn connect(&self) -> Result<http1::SendRequest<Full<Bytes>>, HttpError> {
        let Target { host, port, .. } = &self.target;
        let tcp = TcpStream::connect((host.as_str(), *port))
            .await
            .map_err(|e| HttpError::Connect {
                addr: format!("{host}:{port}"),
                reason: e.to_string(),
            })?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => handshake(tcp, host).await,
            Some((connector, name)) => {
                let tls =
                    connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|e| HttpError::Tls {
                            host: host.clone(),
                            reason: e.to_string(),
                        })?;
                handshake(tls, host).await
            }
        }
    }
}

/// The answer, and whether its body was read to the end (so the
/// connection can serve another request).
async fn read_answer(response: Response<hyper::body::Incoming>) -> (Answer, bool) {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()).ok());
    let mut incoming = response.into_body();
    let mut body = Vec::new();
    let whole = loop {
        match incoming.frame().await {
            None => break true,
            Some(Err(_)) => break false,
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let room = MAX_ANSWER - body.len();
                if data.len() > room {
                    body.extend_from_slice(&data[..room]);
                    break false;
                }
                body.extend_from_slice(&data);
            }
        }
    };
    let answer = Answer {
        status,
        retry_after,
        body: body.into(),
    };
    (answer, whole)
}

async fn handshake<T>(io: T, host: &str) -> Result<http1::SendRequest<Full<Bytes>>, HttpError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| HttpError::Protocol {
            host: host.to_owned(),
            reason: e.to_string(),
        })?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "receiver connection closed");
        }
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(url: &str) -> Result<Target, ClientError> {
        target(&url::Url::parse(url).unwrap())
    }

    #[test]
    fn targets_keep_path_query_and_a_non_default_port() {
        let a = t("http://127.0.0.1:9093/api/v2/alerts").unwrap();
        assert_eq!(
            (
                a.tls,
                a.host.as_str(),
                a.port,
                a.authority.as_str(),
                a.path.as_str()
            ),
            (false, "127.0.0.1", 9093, "127.0.0.1:9093", "/api/v2/alerts")
        );
        let b = t("https://hooks.example/in?team=ops").unwrap();
        assert_eq!(
            (b.tls, b.port, b.authority.as_str(), b.path.as_str()),
            (true, 443, "hooks.example", "/in?team=ops")
        );
        let c = t("http://[::1]:8080").unwrap();
        assert_eq!(
            (c.host.as_str(), c.authority.as_str(), c.path.as_str()),
            ("::1", "[::1]:8080", "/")
        );
        // Plain http off loopback is allowed (Alertmanager in a cluster).
        assert!(t("http://alertmanager.monitoring:9093/").is_ok());
        assert!(matches!(t("ftp://x/"), Err(ClientError::Scheme(_))));
    }
}
