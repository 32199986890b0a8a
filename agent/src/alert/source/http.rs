//! The source's HTTP: one HTTP/2 connection per stream (TLS with ALPN
//! `h2`, or h2c with prior knowledge, which only loopback may use, the
//! gateway sink's rules), carrying `GET /v1/stream` and, beside it, the
//! `GET /v1/history` pages of a heal. It reports what the gateway
//! answered and decides nothing.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use hyper::{Request, Response};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::message::{self, HistoryPage};
use super::{SourceConfig, SourceError};
use crate::sink::uplink::service::{endpoint, handshake};
use crate::tls::{self, TlsOptions};

/// How long opening a connection (TCP, TLS, HTTP/2) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the stream's answer head may take.
const HEAD_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a history page may take, whole: the gateway may first wait
/// up to 5 s for its writer (PROTOCOL.md 3.10).
const HISTORY_TIMEOUT: Duration = Duration::from_secs(30);
/// A page of 10 000 records is about 2 MB of JSON; more is not a page.
const MAX_HISTORY_BYTES: usize = 64 << 20;
/// Records per history page: the most the gateway gives.
pub(crate) const HISTORY_LIMIT: u32 = 10_000;
/// An error answer is a small JSON object; only its start is kept.
const MAX_ERROR_BYTES: usize = 4 << 10;

/// How a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No answer: connecting, TLS, HTTP/2, a timeout, a broken connection.
    Transport(String),
    /// The gateway answered with an error status.
    Refused {
        /// The status.
        status: u16,
        /// Its reason (the body of PROTOCOL.md 2.4, cut short).
        reason: String,
    },
    /// A 200 whose body is not the protocol's (or is over its bound).
    Malformed(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transport(e) | Failure::Malformed(e) => f.write_str(e),
            Failure::Refused { status, reason } => write!(f, "HTTP {status}: {reason}"),
        }
    }
}

/// Where and how to reach one gateway's reader endpoints.
pub(crate) struct Client {
    host: String,
    port: u16,
    /// `scheme://authority` and the URL's path without its trailing `/`.
    base: String,
    auth: HeaderValue,
    tls: Option<(TlsConnector, rustls_pki_types::ServerName<'static>)>,
}

impl Client {
    /// A client for `cfg`: checks the URL, reads the CA file now.
    pub(crate) fn new(cfg: &SourceConfig) -> Result<Client, SourceError> {
        let ep = endpoint(&cfg.url).map_err(|e| SourceError::Url(e.to_string()))?;
        if !ep.tls && cfg.ca_file.is_some() {
            return Err(SourceError::CaOverCleartext(cfg.url.to_string()));
        }
        // The endpoint's URI is scheme://authority/path: keep the first two.
        let uri: hyper::Uri = ep.uri.parse().map_err(|e: hyper::http::uri::InvalidUri| {
            SourceError::Url(format!("gateway URL {}: {e}", ep.uri))
        })?;
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or_else(|| SourceError::Url(format!("gateway URL {}: no authority", ep.uri)))?;
        let scheme = if ep.tls { "https" } else { "http" };
        let base = format!(
            "{scheme}://{authority}{}",
            cfg.url.path().trim_end_matches('/')
        );
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", cfg.token))
            .map_err(|_| SourceError::Token)?;
        auth.set_sensitive(true);
        let tls = if ep.tls {
            let opts = TlsOptions {
                ca_file: cfg.ca_file.clone(),
                ..TlsOptions::default()
            };
            // The probes' builder (a named CA replaces the system roots),
            // offering only h2 as the gateway sink does.
            let mut config = (*tls::client_config(&opts)?).clone();
            config.alpn_protocols = tls::GATEWAY_ALPN.iter().map(|p| p.to_vec()).collect();
            let name = tls::server_name(&ep.host)
                .map_err(|e| SourceError::Url(format!("gateway URL {}: {e}", ep.uri)))?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Client {
            host: ep.host,
            port: ep.port,
            base,
            auth,
            tls,
        })
    }

    /// The stream's URL, for logs.
    pub(crate) fn stream_url(&self, since: Option<u64>) -> String {
        match since {
            Some(s) => format!("{}/v1/stream?since={s}", self.base),
            None => format!("{}/v1/stream", self.base),
        }
    }

    fn history_url(&self, from: u64, to: u64) -> String {
        format!(
            "{}/v1/history?from_gseq={from}&to_gseq={to}&limit={HISTORY_LIMIT}",
            self.base
        )
    }

    /// Opens a connection.
    pub(crate) async fn connect(&self) -> Result<Conn, Failure> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.open()).await {
            Ok(r) => r.map_err(Failure::Transport),
            Err(_) => Err(Failure::Transport(format!(
                "connecting to {}:{} took more than {CONNECT_TIMEOUT:?}",
                self.host, self.port
            ))),
        }
    }

    async fn open(&self) -> Result<Conn, String> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connecting to {}:{}: {e}", self.host, self.port))?;
        let _ = tcp.set_nodelay(true);
        let send = match &self.tls {
            None => handshake(tcp).await?,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS handshake with {}: {e}", self.host))?;
                if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                    return Err(format!(
                        "{} did not negotiate HTTP/2 (ALPN h2); is it a sonde gateway?",
                        self.host
                    ));
                }
                handshake(tls).await?
            }
        };
        Ok(Conn { send })
    }

    /// `GET /v1/stream`, resuming after `since`: the event stream's body.
    pub(crate) async fn stream(
        &self,
        conn: &mut Conn,
        since: Option<u64>,
    ) -> Result<Incoming, Failure> {
        let url = self.stream_url(since);
        let head = conn.get(&url, &self.auth, "text/event-stream");
        match tokio::time::timeout(HEAD_TIMEOUT, head).await {
            Ok(r) => r.map(Response::into_body),
            Err(_) => Err(Failure::Transport(format!(
                "no answer to the stream request within {HEAD_TIMEOUT:?}"
            ))),
        }
    }

    /// One page of `GET /v1/history` from `from` (the first gseq, or the
    /// previous page's cursor, which is the same thing) to `to`.
    pub(crate) async fn history(
        &self,
        conn: &mut Conn,
        from: u64,
        to: u64,
    ) -> Result<HistoryPage, Failure> {
        let url = self.history_url(from, to);
        let page = async {
            let response = conn.get(&url, &self.auth, "application/json").await?;
            let body = Limited::new(response.into_body(), MAX_HISTORY_BYTES)
                .collect()
                .await
                .map_err(|e| history_body_failure(&*e, MAX_HISTORY_BYTES))?
                .to_bytes();
            message::history_page(&body).map_err(|e| Failure::Malformed(e.to_string()))
        };
        match tokio::time::timeout(HISTORY_TIMEOUT, page).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Transport(format!(
                "no history page within {HISTORY_TIMEOUT:?}"
            ))),
        }
    }
}

/// Why a history body (read through [`Limited`] to `max` bytes) could
/// not be read: over the bound it is no page, and asking again gives the
/// same, so it is malformed; anything else is the connection's.
fn history_body_failure(
    e: &(dyn std::error::Error + Send + Sync + 'static),
    max: usize,
) -> Failure {
    if e.is::<LengthLimitError>() {
        Failure::Malformed(format!("a history page larger than {max} bytes"))
    } else {
        Failure::Transport(format!("reading a history page: {e}"))
    }
}

/// An open HTTP/2 connection; clones share it.
#[derive(Clone)]
pub(crate) struct Conn {
    send: http2::SendRequest<Empty<Bytes>>,
}

impl Conn {
    /// A GET whose answer is 2xx; an error status is read into its reason.
    async fn get(
        &mut self,
        url: &str,
        auth: &HeaderValue,
        accept: &'static str,
    ) -> Result<Response<Incoming>, Failure> {
        self.send
            .ready()
            .await
            .map_err(|e| Failure::Transport(format!("gateway connection: {e}")))?;
        let request = Request::get(url)
            .header(AUTHORIZATION, auth.clone())
            .header(ACCEPT, accept)
            .body(Empty::new())
            .map_err(|e| Failure::Transport(format!("building the request for {url}: {e}")))?;
        let response = self
            .send
            .send_request(request)
            .await
            .map_err(|e| Failure::Transport(format!("GET {url}: {e}")))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        let body = Limited::new(response.into_body(), MAX_ERROR_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Err(Failure::Refused {
            status,
            reason: refusal_reason(&body),
        })
    }
}

/// The `reason` (else `error`) of an error answer's JSON, else its text.
fn refusal_reason(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Refusal {
        error: Option<String>,
        reason: Option<String>,
    }
    match serde_json::from_slice::<Refusal>(body) {
        Ok(Refusal {
            reason: Some(reason),
            ..
        }) => reason,
        Ok(Refusal {
            error: Some(error), ..
        }) => error,
        _ => String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(200)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str, ca: Option<&str>) -> SourceConfig {
        SourceConfig {
            name: "eu".into(),
            url: url::Url::parse(url).unwrap(),
            token: "t0ken".into(),
            ca_file: ca.map(Into::into),
        }
    }

    #[test]
    fn urls_keep_a_path_prefix_and_refuse_cleartext_off_loopback() {
        let c = Client::new(&cfg("http://127.0.0.1:7700", None)).unwrap();
        assert_eq!(c.stream_url(None), "http://127.0.0.1:7700/v1/stream");
        assert_eq!(
            c.history_url(5, 9),
            "http://127.0.0.1:7700/v1/history?from_gseq=5&to_gseq=9&limit=10000"
        );
        let c = Client::new(&cfg("http://[::1]:7700/sonde/", None)).unwrap();
        assert_eq!(
            c.stream_url(Some(3)),
            "http://[::1]:7700/sonde/v1/stream?since=3"
        );
        assert!(matches!(
            Client::new(&cfg("http://10.0.0.1:7700", None)),
            Err(SourceError::Url(_))
        ));
        assert!(matches!(
            Client::new(&cfg("http://127.0.0.1:7700", Some("/ca.pem"))),
            Err(SourceError::CaOverCleartext(_))
        ));
        assert!(matches!(
            Client::new(&cfg("https://gw.example", Some("/nonexistent/ca.pem"))),
            Err(SourceError::Tls(_))
        ));
        let mut bad = cfg("http://127.0.0.1:7700", None);
        bad.token = "a\nb".into();
        assert!(matches!(Client::new(&bad), Err(SourceError::Token)));
    }

    #[tokio::test]
    async fn a_history_body_over_the_bound_is_malformed_not_a_transport_failure() {
        let body = http_body_util::Full::new(Bytes::from_static(b"0123456789"));
        let e = Limited::new(body, 4).collect().await.err().unwrap();
        assert_eq!(
            history_body_failure(&*e, 4),
            Failure::Malformed("a history page larger than 4 bytes".into())
        );
        let broken: Box<dyn std::error::Error + Send + Sync> = "connection reset".into();
        assert!(matches!(
            history_body_failure(&*broken, 4),
            Failure::Transport(_)
        ));
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(
            refusal_reason(br#"{"error":"unauthorized","reason":"unknown token","offset":null}"#),
            "unknown token"
        );
        assert_eq!(refusal_reason(br#"{"error":"overloaded"}"#), "overloaded");
        assert_eq!(refusal_reason(b" busy \n"), "busy");
    }
}
