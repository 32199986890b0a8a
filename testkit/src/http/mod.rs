//! An HTTP(S) target on loopback: HTTP/1.1 and HTTP/2 (by ALPN), a configured
//! response (optionally per path), delays that each land in exactly one
//! probe phase, and misbehaviours for failure classification.
//!
//! Built for benchmarks as well as tests: no logging, no sleeps, no locks on
//! the normal request path (the ALPN of the last TLS connection takes one
//! uncontended lock per handshake). Plain connections speak HTTP/1.1 only.
//!
//! ```no_run
//! use std::time::Duration;
//! use testkit::http::{HttpTarget, Response};
//! let ca = testkit::pki::Ca::new();
//! let target = HttpTarget::builder()
//!     .tls(&ca.leaf(&["localhost", "127.0.0.1"]))
//!     .first_byte_delay(Duration::from_millis(50))
//!     .route("/redirect", Response::redirect(302, "/final"))
//!     .start();
//! let url = target.url("/redirect"); // https://127.0.0.1:PORT/redirect
//! ```

mod body;
mod conn;
mod delay;
mod raw;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::{HeaderName, HeaderValue};
use rustls::{RootCertStore, ServerConfig};

use crate::pki::{Ca, Leaf};
use crate::thread::ServerThread;

/// A response the target answers with.
#[derive(Debug, Clone)]
pub struct Response {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

impl Default for Response {
    /// `200`, `content-type: text/plain`, body `ok\n`.
    fn default() -> Self {
        Response::ok("ok\n").header("content-type", "text/plain")
    }
}

impl Response {
    /// A response with `status` (panics if not 100..=999), no headers, empty body.
    pub fn new(status: u16) -> Response {
        let status = StatusCode::from_u16(status)
            .unwrap_or_else(|_| panic!("testkit: invalid HTTP status {status}"));
        Response {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// `200` with `body`.
    pub fn ok(body: impl Into<Bytes>) -> Response {
        Response::new(200).body(body)
    }

    /// A redirect (`status`, e.g. 301, 302, 307) to `location`. A
    /// `{port}` in it becomes the target's own port, for a redirect to
    /// another host name of the same server (`http://alias.test:{port}/`).
    pub fn redirect(status: u16, location: &str) -> Response {
        Response::new(status).header("location", location)
    }

    /// Replaces `{port}` in header values with `port`.
    fn with_own_port(mut self, port: u16) -> Response {
        for (_, value) in &mut self.headers {
            if let Ok(text) = value.to_str() {
                if text.contains("{port}") {
                    let replaced = text.replace("{port}", &port.to_string());
                    if let Ok(v) = HeaderValue::from_str(&replaced) {
                        *value = v;
                    }
                }
            }
        }
        self
    }

    /// Adds a header (panics if the name or value is not valid HTTP).
    /// Content-Length is computed by the server; do not set it.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        let n = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|_| panic!("testkit: invalid header name {name:?}"));
        let v = HeaderValue::from_str(value)
            .unwrap_or_else(|_| panic!("testkit: invalid header value {value:?}"));
        self.headers.push((n, v));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Response {
        self.body = body.into();
        self
    }

    /// `200` with `body` gzip-compressed, `content-encoding: gzip`.
    pub fn gzip(body: &[u8]) -> Response {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, body).expect("testkit: gzip into memory");
        let bytes = e.finish().expect("testkit: gzip into memory");
        Response::ok(bytes).header("content-encoding", "gzip")
    }

    /// `200` with `body` in raw DEFLATE (what Go's `flate.NewReader`, so
    /// blackbox_exporter's `deflate`, reads), `content-encoding: deflate`.
    pub fn deflate(body: &[u8]) -> Response {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, body).expect("testkit: deflate into memory");
        let bytes = e.finish().expect("testkit: deflate into memory");
        Response::ok(bytes).header("content-encoding", "deflate")
    }

    /// `200` with `body` brotli-compressed, `content-encoding: br`.
    pub fn brotli(body: &[u8]) -> Response {
        let mut bytes = Vec::new();
        let params = brotli::enc::BrotliEncoderParams::default();
        brotli::BrotliCompress(&mut &body[..], &mut bytes, &params)
            .expect("testkit: brotli into memory");
        Response::ok(bytes).header("content-encoding", "br")
    }

    /// `200` with `body` zlib-wrapped (RFC 1950, as HTTP's `deflate`
    /// means), `content-encoding: deflate`.
    pub fn zlib(body: &[u8]) -> Response {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, body).expect("testkit: deflate into memory");
        let bytes = e.finish().expect("testkit: deflate into memory");
        Response::ok(bytes).header("content-encoding", "deflate")
    }
}

/// Which application protocols a TLS target offers by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alpn {
    /// `h2` and `http/1.1` (server prefers h2 if the client offers it).
    #[default]
    H2AndHttp11,
    /// Only `h2`: a client that offers only `http/1.1` fails the handshake.
    H2,
    /// Only `http/1.1`.
    Http11,
    /// No ALPN extension at all; the target speaks HTTP/1.1.
    None,
}

impl Alpn {
    fn protocols(self) -> &'static [&'static [u8]] {
        match self {
            Alpn::H2AndHttp11 => &[b"h2", b"http/1.1"],
            Alpn::H2 => &[b"h2"],
            Alpn::Http11 => &[b"http/1.1"],
            Alpn::None => &[],
        }
    }
}

/// Ways the target fails on purpose. Each replaces the normal response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Reads the request, answers bytes that are not HTTP, closes.
    Garbage,
    /// HTTP/1.1: `Content-Length: 1000`, sends 100 body bytes, closes the
    /// connection. HTTP/2: the same head and 100 bytes, then resets the stream.
    CloseMidBody,
    /// A valid head, then `chunk` body bytes every `interval`, forever
    /// (no Content-Length; chunked on HTTP/1.1).
    Trickle {
        /// Pause before each chunk.
        interval: Duration,
        /// Bytes per chunk.
        chunk: usize,
    },
    /// Accepts (and completes TLS), reads the request, never answers.
    Silent,
    /// A 200 whose body is this many bytes (Content-Length set), streamed.
    HugeBody(u64),
    /// A 200 with a chunked body of `len` filler bytes that holds `needle`
    /// at byte `at`, split across two chunks (so across two reads of any
    /// client), generated as it is sent.
    HugeBodyWith {
        /// Body length in bytes (the needle included).
        len: u64,
        /// The text placed in the filler.
        needle: &'static str,
        /// Where the needle starts.
        at: u64,
    },
    /// A 200 with a chunked body that never ends, sent as fast as the
    /// client reads.
    EndlessBody,
    /// HTTP/1.1: reads the request, then sends informational responses
    /// (`100 Continue`, `103 Early Hints`) as fast as the client reads,
    /// forever, and never a final response.
    InformationalFlood,
    /// HTTP/1.1: this many informational responses, then `200` with body
    /// `ok`, as a server sending Early Hints does.
    InformationalThenOk(u32),
    /// HTTP/1.1: reads the request, sends a status line, then header lines
    /// as fast as the client reads, forever.
    EndlessHeaders,
}

/// What the server thread needs; immutable once started.
#[derive(Debug)]
pub(crate) struct Config {
    default: Response,
    routes: HashMap<String, Response>,
    tls_handshake_delay: Option<Duration>,
    first_byte_delay: Option<Duration>,
    body_delay: Option<Duration>,
    misbehaviour: Option<Misbehaviour>,
}

impl Config {
    fn response_for(&self, path: &str) -> &Response {
        if self.routes.is_empty() {
            return &self.default;
        }
        self.routes.get(path).unwrap_or(&self.default)
    }
}

/// Counters shared with the server thread.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    connections: AtomicU64,
    requests: AtomicU64,
    /// A status that replaces every configured one (0: none), set at run
    /// time by [`HttpTarget::set_status`].
    status_override: AtomicU16,
    last_alpn: Mutex<Option<Vec<u8>>>,
    last_request_headers: Mutex<Option<hyper::HeaderMap>>,
}

impl Stats {
    pub(crate) fn status(&self) -> Option<hyper::StatusCode> {
        match self.status_override.load(Ordering::Relaxed) {
            0 => None,
            n => hyper::StatusCode::from_u16(n).ok(),
        }
    }
}

/// Configures an [`HttpTarget`]; see [`HttpTarget::builder`].
#[derive(Debug, Default)]
pub struct HttpTargetBuilder {
    leaf: Option<Leaf>,
    alpn: Alpn,
    client_roots: Option<RootCertStore>,
    ipv6: bool,
    config: ConfigParts,
}

#[derive(Debug, Default)]
struct ConfigParts {
    default: Response,
    routes: HashMap<String, Response>,
    tls_handshake_delay: Option<Duration>,
    first_byte_delay: Option<Duration>,
    body_delay: Option<Duration>,
    misbehaviour: Option<Misbehaviour>,
}

impl HttpTargetBuilder {
    /// Serve TLS with `leaf` (any leaf: valid, expired, self-signed...).
    pub fn tls(mut self, leaf: &Leaf) -> Self {
        self.leaf = Some(leaf.clone());
        self
    }

    /// ALPN protocols offered (TLS only; default h2 and http/1.1).
    pub fn alpn(mut self, alpn: Alpn) -> Self {
        self.alpn = alpn;
        self
    }

    /// Require a client certificate issued by `ca` (TLS only); the handshake
    /// fails for clients that present none or another CA's.
    pub fn require_client_cert(mut self, ca: &Ca) -> Self {
        self.client_roots = Some(ca.root_store());
        self
    }

    /// Also listen on `[::1]`, on the same port as on 127.0.0.1 (see
    /// [`HttpTarget::addr_v6`]). Panics at start
    /// if IPv6 loopback is unavailable; check [`crate::ipv6_available`].
    pub fn ipv6(mut self, on: bool) -> Self {
        self.ipv6 = on;
        self
    }

    /// The response for every path without a [`route`](Self::route).
    pub fn response(mut self, response: Response) -> Self {
        self.config.default = response;
        self
    }

    /// The response for exactly `path` (e.g. `"/redirect"`; no query string).
    pub fn route(mut self, path: &str, response: Response) -> Self {
        self.config.routes.insert(path.to_owned(), response);
        self
    }

    /// Hold back the server's first TLS flight (ServerHello...) this long
    /// after the ClientHello arrives: lands in the TLS phase only.
    /// Ignored by plain targets.
    pub fn tls_handshake_delay(mut self, delay: Duration) -> Self {
        self.config.tls_handshake_delay = Some(delay);
        self
    }

    /// Wait this long after the request is fully read before the first
    /// response byte: lands in time-to-first-byte only. (Bytes that are not
    /// the response still come at once: TLS 1.3 session tickets after the
    /// handshake, the h2 server preface/SETTINGS.)
    pub fn first_byte_delay(mut self, delay: Duration) -> Self {
        self.config.first_byte_delay = Some(delay);
        self
    }

    /// Wait this long after the response head is written and flushed before
    /// the body: lands in the body transfer (rt - ttfb) only.
    pub fn body_delay(mut self, delay: Duration) -> Self {
        self.config.body_delay = Some(delay);
        self
    }

    /// Fail on purpose instead of answering normally.
    pub fn misbehave(mut self, misbehaviour: Misbehaviour) -> Self {
        self.config.misbehaviour = Some(misbehaviour);
        self
    }

    /// Starts the target; panics with the reason if it cannot.
    pub fn start(self) -> HttpTarget {
        self.try_start()
            .unwrap_or_else(|e| panic!("testkit: starting the HTTP target: {e}"))
    }

    /// Starts the target.
    pub fn try_start(self) -> std::io::Result<HttpTarget> {
        let tls_config: Option<Arc<ServerConfig>> = self.leaf.as_ref().map(|leaf| {
            crate::pki::server_config(leaf, self.alpn.protocols(), self.client_roots.clone())
        });
        let (v4, addr, v6) = bind_listeners(self.ipv6)?;
        let addr_v6 = v6.as_ref().map(TcpListener::local_addr).transpose()?;
        let parts = self.config;
        let port = addr.port();
        let config = Arc::new(Config {
            default: parts.default.with_own_port(port),
            routes: parts
                .routes
                .into_iter()
                .map(|(path, r)| (path, r.with_own_port(port)))
                .collect(),
            tls_handshake_delay: parts.tls_handshake_delay,
            first_byte_delay: parts.first_byte_delay,
            body_delay: parts.body_delay,
            misbehaviour: parts.misbehaviour,
        });
        let stats = Arc::new(Stats::default());
        let shared = Arc::new(conn::Shared {
            config,
            stats: stats.clone(),
            tls: tls_config.map(tokio_rustls::TlsAcceptor::from),
        });
        let tls = shared.tls.is_some();
        let thread = ServerThread::spawn("http", move || conn::serve(v4, v6, shared))?;
        Ok(HttpTarget {
            addr,
            addr_v6,
            tls,
            stats,
            _thread: thread,
        })
    }
}

/// A running HTTP(S) target; stops when dropped.
#[derive(Debug)]
pub struct HttpTarget {
    addr: SocketAddr,
    addr_v6: Option<SocketAddr>,
    tls: bool,
    stats: Arc<Stats>,
    _thread: ServerThread,
}

impl HttpTarget {
    /// A builder: plain HTTP/1.1, `200 ok`, no delays, until configured.
    pub fn builder() -> HttpTargetBuilder {
        HttpTargetBuilder::default()
    }

    /// A plain HTTP/1.1 target answering `200 ok` to everything.
    pub fn plain() -> HttpTarget {
        HttpTarget::builder().start()
    }

    /// A TLS target with `leaf`, ALPN h2 + http/1.1, answering `200 ok`.
    pub fn tls(leaf: &Leaf) -> HttpTarget {
        HttpTarget::builder().tls(leaf).start()
    }

    /// From now on answers every request with `status` (a target that
    /// goes down and comes back while a test runs), or, with `None`, as
    /// configured again.
    pub fn set_status(&self, status: Option<u16>) {
        self.stats
            .status_override
            .store(status.unwrap_or(0), Ordering::Relaxed);
    }

    /// The IPv4 address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The IPv6 address (`[::1]:PORT`) if built with `.ipv6(true)`.
    pub fn addr_v6(&self) -> Option<SocketAddr> {
        self.addr_v6
    }

    /// The IPv4 port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Whether the target serves TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// `http(s)://127.0.0.1:PORT{path}`; `path` should start with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme(), self.addr)
    }

    /// `https://localhost:PORT{path}` (or http): for leaves issued for "localhost".
    pub fn url_localhost(&self, path: &str) -> String {
        format!("{}://localhost:{}{path}", self.scheme(), self.addr.port())
    }

    fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// TCP connections accepted so far (both listeners).
    pub fn connections(&self) -> u64 {
        self.stats.connections.load(Ordering::Relaxed)
    }

    /// Requests answered so far (for misbehaviours: requests read).
    pub fn requests(&self) -> u64 {
        self.stats.requests.load(Ordering::Relaxed)
    }

    /// The headers of the last request this target answered, as they
    /// arrived (`None` before the first).
    pub fn last_request_headers(&self) -> Option<hyper::HeaderMap> {
        self.stats
            .last_request_headers
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    /// The ALPN protocol negotiated on the last completed TLS handshake
    /// (`Some(b"h2")`, `Some(b"http/1.1")`), `None` if none was negotiated.
    pub fn last_alpn(&self) -> Option<Vec<u8>> {
        self.stats
            .last_alpn
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }
}

/// 127.0.0.1:0 and, when asked, [::1] on the same port (so one URL reaches
/// both families); a port taken on ::1 is tried again with another.
fn bind_listeners(
    ipv6: bool,
) -> std::io::Result<(TcpListener, std::net::SocketAddr, Option<TcpListener>)> {
    let mut tries = 0;
    loop {
        let v4 = TcpListener::bind("127.0.0.1:0")?;
        let addr = v4.local_addr()?;
        if !ipv6 {
            return Ok((v4, addr, None));
        }
        match TcpListener::bind(("::1", addr.port())) {
            Ok(v6) => return Ok((v4, addr, Some(v6))),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 20 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}
