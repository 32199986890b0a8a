//! The probe engine: one HTTP(S) probe over a connection sonde opens
//! itself, each phase timed at the instants that bound it on the wire.
//!
//! - `dns`, `connect`, `tls`, `http`: the phases, each a thin layer over
//!   sonde's stub resolver (hickory-proto messages), tokio, rustls and hyper.
//! - `phase`: instants → contiguous durations (pure).
//! - `verdict`: expectations → up/down (pure); `failure`: error classes.
//! - `stream`: the transport wrapper that stamps the first response byte.
//! - `proxy`: which http:// proxy a hop goes through, the CONNECT bytes
//!   and the proxy's answer (pure); `tunnel`: that exchange's I/O.
//! - `decode`: content decoding (gzip, deflate, br, or by Content-Encoding).
//!
//! Everything a probe needs (resolver settings, TLS config, the request) is
//! prepared before its clock starts; between boundaries only the I/O runs.
//! The engine knows nothing of encoding, schedules or sinks: it reports a
//! [`ProbeReport`], which `result` maps to the wire record. `Status` and
//! `ErrorClass` are the shared vocabulary it borrows from `wire`.
#![allow(
    clippy::disallowed_types,
    reason = "the probe engine times phases on the wire: the real monotonic clock"
)]

pub mod basic;
pub(crate) mod cert;
pub(crate) mod connect;
pub(crate) mod decode;
pub(crate) mod dns;
pub(crate) mod failure;
pub(crate) mod http;
pub(crate) mod phase;
pub mod proxy;
pub(crate) mod stream;
pub mod tls;
pub(crate) mod tunnel;
pub(crate) mod verdict;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Uri};
use url::{Host, Url};
use wire::{ErrorClass, Status};

/// Which IP version to connect over: the configuration's own type, so a
/// check's setting reaches the engine unchanged (Auto races both families).
pub use config::IpVersion;
pub use dns::{
    DEFAULT_RESOLUTION_DELAY, DnsConfig, DnsReport, Family, FamilyOutcome, FamilyReport,
};
pub use failure::ProbeFailure;
pub use phase::{Phase, QuantizedTimings, Timings};
pub use proxy::{Proxies, Proxy, ProxyError};
pub use tls::{CertSummary, ProbeTls, TlsInfo, TlsOptions};
pub use verdict::{BodyAssertion, Expectations, HeaderAssertion, TlsExpectation};

use phase::PhaseClock;
use stream::{FirstByte, TimedStream, Transport};

/// A fixed address for a host and port, skipping DNS (curl's `--resolve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOverride {
    /// The host name as it appears in the URL.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The address to connect to instead of resolving.
    pub addr: IpAddr,
}

/// Everything one probe needs, prepared ahead of its clock.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// The target, http or https.
    pub url: Url,
    /// The request method.
    pub method: Method,
    /// Extra request headers (they win over sonde's defaults).
    pub headers: HeaderMap,
    /// The request body.
    pub body: Bytes,
    /// One deadline for the whole probe, every phase and hop included.
    pub timeout: Duration,
    /// IP version preference.
    pub ip_version: IpVersion,
    /// Ask this DNS server instead of the system's.
    pub dns_server: Option<SocketAddr>,
    /// How long a positive A answer waits for AAAA (RFC 8305's Resolution
    /// Delay).
    pub resolution_delay: Duration,
    /// Fixed addresses for some host:port pairs.
    pub resolve: Vec<ResolveOverride>,
    /// SNI and Host for the URL's own host (the connection still goes to
    /// the URL host's addresses).
    pub server_name: Option<String>,
    /// The TLS client configuration, built when an https hop first needs
    /// it (see [`tls::probe_tls`]).
    pub tls: ProbeTls,
    /// What makes the probe up.
    pub expect: Expectations,
    /// Follow up to this many redirects; 0 leaves them unfollowed.
    pub max_redirects: u32,
    /// Follow a redirect from https to http; without it such a probe is
    /// down (`insecure_redirect`) and nothing goes out in cleartext.
    pub allow_insecure_redirect: bool,
    /// Fail with `body_too_large` past this many body bytes.
    pub max_body_bytes: u64,
    /// Keep the last response's headers and body in the report (for
    /// `sonde wait`'s conditions); off by default so probes stay cheap.
    pub keep_response: bool,
    /// Decode the body in this coding before the body assertions see it
    /// (blackbox_exporter's `compression`; [`Compression::Auto`]: by the
    /// response's Content-Encoding, curl's `--compressed`); `None`: the
    /// body is taken as it arrives. Nothing is asked for: no
    /// Accept-Encoding goes out but the spec's own headers.
    pub compression: Option<Compression>,
    /// A limit on everything before the request goes out (DNS, TCP
    /// connect, the proxy's CONNECT exchange, the TLS handshake), per hop,
    /// beside the whole-probe `timeout` (curl's `--connect-timeout`). When
    /// it fires the probe fails in the phase that was open, classed as the
    /// whole-probe deadline classes it ([`ProbeFailure::deadline`]:
    /// `dns_timeout`, `connect_timeout`, else `timeout`), with a detail
    /// naming the connect timeout. `None`: only `timeout` bounds them.
    pub connect_timeout: Option<Duration>,
    /// Which HTTP versions the TLS handshake offers (ALPN).
    pub http_version: HttpVersion,
    /// The http:// forward proxies the probe's hops choose from (`sonde
    /// probe -x`, the proxy environment): each hop takes its own scheme's,
    /// unless the `no_proxy` list names its host. Scheduled checks never
    /// set any.
    pub proxy: Option<Proxies>,
    /// Keep the last hop's request as sent ([`ProbeReport::request`], for
    /// `-v`); copied before that hop's clock starts.
    pub keep_request: bool,
}

/// The HTTP versions a probe offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    /// What sonde offers by default: over TLS, ALPN `h2` and `http/1.1`
    /// (the server chooses); cleartext is HTTP/1.1.
    #[default]
    Auto,
    /// HTTP/1.1 only (curl's `--http1.1`): ALPN offers `http/1.1` alone.
    Http1,
    /// HTTP/2 where the server speaks it (curl's `--http2`): over TLS,
    /// ALPN offers `h2` then `http/1.1`, so a server without h2 is spoken
    /// to in HTTP/1.1, as curl falls back. Over cleartext http:// the
    /// request is HTTP/1.1: no `Upgrade: h2c` is sent (RFC 9113 section
    /// 3.1 deprecates that upgrade, hyper's client has none, and curl's
    /// upgrade ends in HTTP/1.1 against every server that does not take
    /// it), and no prior knowledge is assumed (that would fail against an
    /// HTTP/1.1 server, which curl's `--http2` does not).
    Http2,
}

/// The request a hop sent, as [`ProbeSpec::keep_request`] keeps it.
#[derive(Debug, Clone)]
pub struct SentRequest {
    /// The method.
    pub method: Method,
    /// The request-target as sent: origin-form (`/path?q`), absolute-form
    /// through a proxy (`http://host/path`), or over HTTP/2 the URL whose
    /// `:scheme`, `:authority` and `:path` were sent.
    pub target: String,
    /// The HTTP version spoken.
    pub version: hyper::Version,
    /// The headers sonde set (those hyper adds itself, such as
    /// Content-Length, are not in it; over HTTP/2 Host became
    /// `:authority`).
    pub headers: HeaderMap,
}

/// A content coding the probe decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `gzip`.
    Gzip,
    /// `deflate`: raw DEFLATE, as Go's `flate.NewReader` reads it (a
    /// zlib-wrapped body fails, as in blackbox_exporter).
    Deflate,
    /// `identity`: nothing to decode.
    Identity,
    /// `br`: Brotli (RFC 7932).
    Brotli,
    /// Decode by the response's Content-Encoding, as curl's `--compressed`
    /// does: `gzip` (or `x-gzip`), `deflate` (zlib-wrapped as RFC 9110
    /// names it, or raw, which many servers send: both are read), `br`;
    /// identity or none: nothing; an unknown or stacked coding: the body
    /// is taken as it is. Nothing is asked for here (`sonde probe
    /// --compressed` sends its own Accept-Encoding).
    Auto,
}

impl Compression {
    /// The coding's name (as in Content-Encoding; `auto` for [`Compression::Auto`]).
    pub fn token(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Deflate => "deflate",
            Compression::Identity => "identity",
            Compression::Brotli => "br",
            Compression::Auto => "auto",
        }
    }
}

impl ProbeSpec {
    /// A GET of `url` with sonde's defaults (10 s deadline, 2xx/3xx up,
    /// 1 MiB body cap, no redirects).
    pub fn new(url: Url, tls: impl Into<ProbeTls>) -> Self {
        ProbeSpec {
            url,
            method: Method::GET,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            timeout: Duration::from_secs(10),
            ip_version: IpVersion::Auto,
            dns_server: None,
            resolution_delay: DEFAULT_RESOLUTION_DELAY,
            resolve: Vec::new(),
            server_name: None,
            tls: tls.into(),
            expect: Expectations::default(),
            max_redirects: 0,
            allow_insecure_redirect: false,
            max_body_bytes: 1 << 20,
            keep_response: false,
            compression: None,
            connect_timeout: None,
            http_version: HttpVersion::Auto,
            proxy: None,
            keep_request: false,
        }
    }
}

/// One probe's result, with everything `sonde probe` shows.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// Wall-clock start.
    pub(crate) started_at: SystemTime,
    /// The first hop's phases; `total` covers every hop.
    pub timings: Timings,
    /// The last response's status code.
    pub status_code: Option<u16>,
    /// Up, down or unknown.
    pub status: Status,
    /// Why it is not up.
    pub failure: Option<ProbeFailure>,
    /// What the first hop's DNS lookup saw, per family (`None`: no lookup,
    /// the host was an IP literal or fixed by `resolve`).
    pub dns: Option<DnsReport>,
    /// The address the first hop connected to (the proxy's, through one).
    pub remote: Option<SocketAddr>,
    /// The first address the first hop tried: the first in attempt order
    /// once DNS answered, or the fixed or literal one. Set even when the
    /// connect failed (blackbox_exporter's `probe_ip_addr_hash` and
    /// `probe_ip_protocol` are set from it); `None` when DNS failed.
    pub chosen: Option<IpAddr>,
    /// The HTTP version of the last response.
    pub http_version: Option<hyper::Version>,
    /// What the first hop's TLS handshake negotiated.
    pub tls: Option<TlsInfo>,
    /// Body bytes of the last response.
    pub body_bytes: u64,
    /// Redirects followed.
    pub redirects: u32,
    /// The last response was a redirect that was not followed: following
    /// is off, the limit was reached, or it went from https to http
    /// unallowed. blackbox_exporter counts such a redirect too (it sets
    /// its count inside Go's CheckRedirect, which then refuses it).
    pub redirect_refused: bool,
    /// The URL of the last hop.
    pub final_url: Url,
    /// The last response's headers, when the spec asked to keep them.
    pub headers: Option<HeaderMap>,
    /// The last response's body (up to the failure, if any), when the spec
    /// asked to keep it.
    pub body: Option<Bytes>,
    /// The last response's Content-Length header, if it had one.
    pub content_length: Option<u64>,
    /// Body bytes of the last response after content decoding (equal to
    /// `body_bytes` when nothing was decoded).
    pub decoded_body_bytes: u64,
    /// The last response's Last-Modified header, Unix seconds.
    pub last_modified: Option<i64>,
    /// True when the probe failed because a body or header regular
    /// expression did (not) match (blackbox_exporter's
    /// `probe_failed_due_to_regex`).
    pub failed_due_to_regex: bool,
    /// What the last hop's TLS handshake negotiated (the first hop's is
    /// `tls`; the same without redirects). `None`: the last hop was
    /// cleartext or never got through its handshake.
    pub final_tls: Option<TlsInfo>,
    /// The last hop's request as sent, when the spec asked to keep it
    /// (`None` too when that hop failed before its request was built).
    pub request: Option<SentRequest>,
}

/// Runs probes. Holds what is read once per process (the system resolver
/// configuration); cheap to share.
#[derive(Clone)]
pub struct Prober {
    dns: DnsConfig,
}

impl Default for Prober {
    fn default() -> Self {
        Self::new()
    }
}

impl Prober {
    /// Reads the system resolver configuration (/etc/resolv.conf,
    /// /etc/hosts).
    pub fn new() -> Self {
        Self::with_dns(DnsConfig::system())
    }

    /// A prober resolving with `dns` instead of the system's files.
    pub fn with_dns(dns: DnsConfig) -> Self {
        Prober { dns }
    }

    /// Runs one probe of `spec`, redirects included, under one deadline.
    pub async fn probe(&self, spec: &ProbeSpec) -> ProbeReport {
        // A timeout past what an Instant holds is a deadline a year away.
        let now = tokio::time::Instant::now();
        let deadline = now
            .checked_add(spec.timeout)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400));
        let mut url = spec.url.clone();
        let mut method = spec.method.clone();
        let mut body = spec.body.clone();
        let mut first = self.hop(spec, &url, &method, &body, deadline).await;
        // The last hop, once a redirect was followed (else the first is).
        let mut later: Option<Hop> = None;
        let mut outcome = first.outcome.clone();
        let mut redirects = 0;
        let mut redirect_refused = false;
        loop {
            let last = later.as_ref().unwrap_or(&first);
            let status = last.exchange.status;
            if !(outcome.is_ok()
                && status.is_some_and(|s| matches!(s, 301 | 302 | 303 | 307 | 308)))
            {
                break;
            }
            let location = last.exchange.location.as_deref();
            let next = match location.map(|l| url.join(l)) {
                Some(Ok(next)) if matches!(next.scheme(), "http" | "https") => next,
                // Not following: the 3xx is the answer judged.
                Some(_) if spec.max_redirects == 0 => break,
                Some(_) => {
                    outcome = Err(ProbeFailure::new(
                        ErrorClass::HttpProtocol,
                        Phase::Body,
                        format!("unusable redirect Location {location:?}"),
                    ));
                    break;
                }
                // A 3xx without Location is a final answer.
                None => break,
            };
            if spec.max_redirects == 0 {
                redirect_refused = true;
                break;
            }
            if redirects == spec.max_redirects {
                redirect_refused = true;
                outcome = Err(ProbeFailure::new(
                    ErrorClass::TooManyRedirects,
                    Phase::Body,
                    format!("more than {} redirects", spec.max_redirects),
                ));
                break;
            }
            // Nothing goes out in cleartext that was meant for TLS.
            if url.scheme() == "https" && next.scheme() == "http" && !spec.allow_insecure_redirect {
                redirect_refused = true;
                outcome = Err(ProbeFailure::new(
                    ErrorClass::InsecureRedirect,
                    Phase::Body,
                    format!(
                        "redirect from https to {next} refused (allow_insecure_redirect is off)"
                    ),
                ));
                break;
            }
            redirects += 1;
            // As browsers and curl do: 303 (and 301/302 after a POST) becomes a GET.
            let status = status.unwrap_or(0);
            if status == 303 || (matches!(status, 301 | 302) && method == Method::POST) {
                method = Method::GET;
                body = Bytes::new();
            }
            url = next;
            let hop = self.hop(spec, &url, &method, &body, deadline).await;
            outcome = hop.outcome.clone();
            later = Some(hop);
        }
        // Only the last response is judged: a 3xx that was followed is
        // neither the status nor the body the check expects.
        let (outcome, failed_due_to_regex) = {
            let last = later.as_ref().unwrap_or(&first);
            judge(spec, last, outcome)
        };
        let tls = first.negotiated.take().map(tls::Negotiated::into_info);
        let last = later.as_mut().unwrap_or(&mut first);
        let final_tls = match last.negotiated.take() {
            Some(negotiated) => Some(negotiated.into_info()),
            // Without a redirect the last hop is the first.
            None if redirects == 0 => tls.clone(),
            None => None,
        };
        let last = later.as_ref().unwrap_or(&first);
        let timings = first.clock.timings(last.finish.max(first.clock.start()));
        let (status, failure) = match outcome {
            Ok(()) => (Status::Up, None),
            Err(f) if f.is_local() => (Status::Unknown, Some(f)),
            Err(f) => (Status::Down, Some(f)),
        };
        let exchange = &last.exchange;
        let kept = kept_response(spec, exchange);
        let request = match last.sent.clone() {
            Some(sent) if last.h2 => Some(sent.for_h2(&url)),
            sent => sent,
        };
        ProbeReport {
            started_at: first.started_at,
            timings,
            status_code: exchange.status,
            status,
            failure,
            dns: first.dns,
            remote: first.remote,
            chosen: first.chosen,
            http_version: exchange.version,
            tls,
            body_bytes: exchange.body_bytes,
            redirects,
            redirect_refused,
            final_url: url,
            headers: kept.0,
            body: kept.1,
            content_length: content_length(exchange, &method),
            decoded_body_bytes: exchange.decoded_body_bytes,
            last_modified: last_modified(&exchange.headers),
            failed_due_to_regex,
            final_tls,
            request,
        }
    }

    /// One request/response over a fresh connection.
    async fn hop(
        &self,
        spec: &ProbeSpec,
        url: &Url,
        method: &Method,
        body: &Bytes,
        deadline: tokio::time::Instant,
    ) -> Hop {
        let mut hop = Hop {
            started_at: SystemTime::now(),
            clock: PhaseClock::new(Instant::now()),
            first_byte: Arc::new(OnceLock::new()),
            dns: None,
            remote: None,
            chosen: None,
            negotiated: None,
            exchange: http::Exchange::default(),
            body_search: None,
            decoder: None,
            sent: None,
            h2: false,
            finish: Instant::now(),
            outcome: Ok(()),
        };
        // A deadline already past fails the hop before it starts: the
        // timer's millisecond grain would let a fast loopback hop finish.
        let run = async {
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::timeout_at(deadline, self.run_hop(spec, url, method, body, &mut hop))
                .await
                .ok()
        };
        let result = match run.await {
            Some(result) => result,
            None => {
                merge_first_byte(&mut hop);
                Err(cut_off(&mut hop, Phase::Body))
            }
        };
        hop.finish = match (&result, hop.exchange.finished) {
            (Ok(()), Some(done)) => done,
            _ => Instant::now(),
        };
        merge_first_byte(&mut hop);
        hop.outcome = result;
        hop
    }

    async fn run_hop(
        &self,
        spec: &ProbeSpec,
        url: &Url,
        method: &Method,
        body: &Bytes,
        hop: &mut Hop,
    ) -> Result<(), ProbeFailure> {
        // Everything before the clock starts: target, request, resolver.
        let via = spec.proxy.as_ref().and_then(|p| p.for_url(url));
        let target = Target::of(url, spec, via)?;
        let tunnel = via.filter(|_| url.scheme() == "https");
        let mut request = build_request(spec, url, &target, method, body, via)?;
        let informational = http::count_informational(&mut request.request);
        let informational_seen = informational.clone();
        if spec.keep_request {
            hop.sent = Some(request.sent());
        }
        // Only an https hop needs (and builds, the first time) the TLS
        // configuration: a plain probe never reads the system roots.
        let tls_name = match url.scheme() {
            "https" => {
                let name = tls::server_name(&target.sni).map_err(|detail| {
                    ProbeFailure::new(ErrorClass::TlsHandshake, Phase::Tls, detail)
                })?;
                let config = spec.tls.config().map_err(|e| {
                    ProbeFailure::new(ErrorClass::LocalResource, Phase::Tls, e.to_string())
                })?;
                let config = offered(config, spec.http_version);
                let connector = tokio_rustls::TlsConnector::from(config);
                Some((name, connector, spec.tls.anchors().cloned()))
            }
            _ => None,
        };
        let mut connect = tunnel.map(|p| tunnel::Prepared::new(&target.origin, p.authorization()));
        let mut lookup = match &target.addrs {
            Lookup::Name(host) => Some(self.dns.prepare(
                host,
                spec.dns_server,
                spec.ip_version,
                spec.resolution_delay,
            )?),
            Lookup::Fixed(_) => None,
        };
        // A fixed address is put in order before the clock starts; only a
        // resolved name's addresses are ordered between DNS and connect.
        let fixed = match &target.addrs {
            Lookup::Fixed(ip) => Some(attempt_addrs(&[*ip], spec.ip_version, target.port)),
            Lookup::Name(_) => None,
        };
        hop.body_search = spec.expect.body_search(spec.max_body_bytes);
        hop.decoder = spec.compression.and_then(decode::Decoder::new);

        hop.started_at = SystemTime::now();
        hop.clock = PhaseClock::new(Instant::now());
        // curl's --connect-timeout: everything before the request, under
        // its own limit beside the probe's deadline.
        let established = {
            let setup = Self::establish(
                spec,
                &target,
                fixed,
                &mut lookup,
                connect.as_mut(),
                tls_name,
                hop,
            );
            match spec.connect_timeout {
                None => setup.await,
                Some(limit) => {
                    let start = tokio::time::Instant::now();
                    let until = start.checked_add(limit).unwrap_or(start + limit.min(YEAR));
                    tokio::time::timeout_at(until, setup)
                        .await
                        .unwrap_or(Err(Expired::ConnectTimeout(limit)))
                }
            }
        };
        let (transport, h2) = match established {
            Ok(up) => up,
            Err(Expired::Failed(failure)) => return Err(failure),
            Err(Expired::ConnectTimeout(limit)) => {
                let mut failure = cut_off(hop, Phase::Connect);
                failure.detail = format!("connect timeout ({} ms) expired", limit.as_millis());
                return Err(failure);
            }
        };
        drop(lookup);
        hop.h2 = h2;
        let request = request.into_version(h2);
        let mut io = TimedStream::new(transport, hop.first_byte.clone(), h2);
        io.bound_informational(informational);
        let policy = http::BodyPolicy {
            keep: spec.keep_response,
            max_bytes: spec.max_body_bytes,
            follows_redirects: spec.max_redirects > 0,
        };
        let readers = http::BodyReaders {
            decoder: hop.decoder.as_mut(),
            search: hop.body_search.as_mut(),
        };
        http::exchange(
            io,
            h2,
            request,
            policy,
            readers,
            &mut hop.clock,
            &hop.first_byte,
            &mut hop.exchange,
        )
        .await?;
        // hyper may parse several 1xx heads out of one read before the
        // stream sees the count: the bound holds however the bytes came.
        if informational_seen.load(std::sync::atomic::Ordering::Relaxed) > stream::MAX_INFORMATIONAL
        {
            return Err(ProbeFailure::new(
                ErrorClass::HttpProtocol,
                Phase::Body,
                stream::TooManyInformational.to_string(),
            ));
        }
        Ok(())
    }

    /// DNS, connect, the proxy's tunnel and TLS: the connection the
    /// request goes out on, and whether it speaks HTTP/2.
    async fn establish(
        spec: &ProbeSpec,
        target: &Target,
        fixed: Option<Vec<SocketAddr>>,
        lookup: &mut Option<dns::PreparedLookup>,
        connect: Option<&mut tunnel::Prepared>,
        tls_name: Option<TlsName>,
        hop: &mut Hop,
    ) -> Result<(Transport, bool), Expired> {
        let order = |ips: &[IpAddr]| attempt_addrs(ips, spec.ip_version, target.port);
        let addrs = match (fixed, lookup.as_mut()) {
            (Some(addrs), _) => addrs,
            (None, Some(lookup)) => {
                // dn ends when the address list used for connecting is fixed.
                hop.clock.begin(Phase::Dns);
                let seen = hop.dns.insert(DnsReport::default());
                let ips = lookup.run(hop.clock.start(), seen).await?;
                hop.clock.end(Phase::Dns, Instant::now());
                order(&ips)
            }
            (None, None) => Vec::new(),
        };
        // Between DNS and connect only a copy: the address to report.
        hop.chosen = addrs.first().map(SocketAddr::ip);
        if addrs.is_empty() {
            return Err(Expired::Failed(ProbeFailure::new(
                ErrorClass::DnsNoAddress,
                Phase::Dns,
                format!("no {:?} address for {}", spec.ip_version, target.dialled),
            )));
        }

        hop.clock.begin(Phase::Connect);
        let joining = lookup
            .as_ref()
            .is_some_and(dns::PreparedLookup::awaits_late_a);
        let connected = match (lookup.as_mut(), &mut hop.dns) {
            (Some(lookup), Some(seen)) if joining => {
                let start = hop.clock.start();
                let late = async { order(&lookup.late_a(start, seen).await) };
                connect::connect_joining(&addrs, late).await
            }
            _ => connect::connect(&addrs).await,
        };
        let (mut tcp, remote) = connected.map_err(|e| {
            let mut failure = failure::connect(&e);
            if target.proxied {
                failure.detail = format!("proxy {}: {}", target.dialled, failure.detail);
            }
            failure
        })?;
        hop.clock.end(Phase::Connect, Instant::now());
        hop.remote = Some(remote);
        // The lookup's sockets (and any TCP retry) are closed now, not
        // held through the tunnel, TLS, the request and the body.
        *lookup = None;

        if let Some(prepared) = connect {
            hop.clock.begin(Phase::Proxy);
            let at = tunnel::open(&mut tcp, prepared).await?;
            hop.clock.end(Phase::Proxy, at);
        }

        Ok(match tls_name {
            Some((name, connector, anchors)) => {
                hop.clock.begin(Phase::Tls);
                let stream = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| failure::tls(&e))?;
                hop.clock.end(Phase::Tls, Instant::now());
                let negotiated = tls::Negotiated::of(stream.get_ref().1, anchors);
                let h2 = negotiated.is_h2();
                hop.negotiated = Some(negotiated);
                (Transport::Tls(Box::new(stream)), h2)
            }
            None => (Transport::Plain(tcp), false),
        })
    }
}

/// A year: the limit past which a timeout counts as "never".
const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// What the TLS handshake of an https hop needs, made before the clock.
type TlsName = (
    rustls_pki_types::ServerName<'static>,
    tokio_rustls::TlsConnector,
    Option<Arc<crate::tls::AnchorIndex>>,
);

/// How setting up a connection ended short of it.
#[derive(Debug)]
enum Expired {
    /// A phase failed.
    Failed(ProbeFailure),
    /// The spec's `connect_timeout` (this long) ran out first.
    ConnectTimeout(Duration),
}

impl From<ProbeFailure> for Expired {
    fn from(failure: ProbeFailure) -> Self {
        Expired::Failed(failure)
    }
}

/// The addresses a hop tries, in attempt order, at `port`.
fn attempt_addrs(ips: &[IpAddr], version: IpVersion, port: u16) -> Vec<SocketAddr> {
    connect::attempt_order(ips, version)
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}

/// The client configuration offering what `version` asks for in ALPN:
/// the probe's own (h2, http/1.1) or, for HTTP/1.1 only, a copy offering
/// http/1.1 alone (made per hop, before its clock starts; a copy of a
/// configuration is a few reference counts and one small list).
fn offered(config: &Arc<rustls::ClientConfig>, version: HttpVersion) -> Arc<rustls::ClientConfig> {
    match version {
        HttpVersion::Auto | HttpVersion::Http2 => config.clone(),
        HttpVersion::Http1 => {
            let mut only = (**config).clone();
            only.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(only)
        }
    }
}

/// The state of one hop, readable after its future is dropped (deadline).
struct Hop {
    started_at: SystemTime,
    clock: PhaseClock,
    first_byte: FirstByte,
    dns: Option<DnsReport>,
    remote: Option<SocketAddr>,
    /// See [`ProbeReport::chosen`].
    chosen: Option<IpAddr>,
    negotiated: Option<tls::Negotiated>,
    exchange: http::Exchange,
    /// The body assertions, searched as the body streams.
    body_search: Option<verdict::BodySearch>,
    /// The content decoder, for a check's `compression`.
    decoder: Option<decode::Decoder>,
    /// The request as built, for `keep_request` (HTTP/1.1's form; made
    /// HTTP/2's after the hop when ALPN chose h2).
    sent: Option<SentRequest>,
    /// The connection spoke HTTP/2.
    h2: bool,
    finish: Instant,
    outcome: Result<(), ProbeFailure>,
}

/// The failure of a hop cut off by a deadline (the probe's or the connect
/// timeout) in its open phase, `or` when none is open. Cut off in DNS,
/// what the families said decides the class (an NXDOMAIN beats the other
/// family's silence).
fn cut_off(hop: &mut Hop, or: Phase) -> ProbeFailure {
    let mut failure = ProbeFailure::deadline(hop.clock.open_phase().unwrap_or(or));
    if let Some(dns) = &mut hop.dns {
        dns.expire(hop.clock.start().elapsed());
        if failure.phase == Phase::Dns {
            failure.class = dns.failure_class();
        }
    }
    failure
}

fn merge_first_byte(hop: &mut Hop) {
    if let Some(at) = hop.first_byte.get() {
        hop.clock.end(Phase::Ttfb, *at);
    }
}

/// The headers and body a `keep_response` spec asked for, if a response came.
fn kept_response(
    spec: &ProbeSpec,
    exchange: &http::Exchange,
) -> (Option<HeaderMap>, Option<Bytes>) {
    if !spec.keep_response || exchange.status.is_none() {
        return (None, None);
    }
    (
        Some(exchange.headers.clone()),
        Some(Bytes::copy_from_slice(&exchange.body)),
    )
}

/// The probe's outcome once the last response is judged, and whether a
/// regex decided it (blackbox_exporter's `probe_failed_due_to_regex`).
fn judge(
    spec: &ProbeSpec,
    last: &Hop,
    outcome: Result<(), ProbeFailure>,
) -> (Result<(), ProbeFailure>, bool) {
    let exchange = &last.exchange;
    let Some(status) = exchange.status else {
        return (outcome, false);
    };
    if let Err(failure) = outcome {
        // A body that did not arrive whole: blackbox_exporter judged the
        // headers before reading it, and its regex read fails (unless the
        // gzip header failed first, before the regexes). A redirect that
        // went wrong never reached either.
        let body_broke = failure.phase == Phase::Body
            && exchange.finished.is_none()
            && !matches!(
                failure.class,
                ErrorClass::TooManyRedirects | ErrorClass::InsecureRedirect
            );
        let regex = body_broke
            && spec.expect.body_error_is_regex(
                status,
                &exchange.headers,
                !exchange.gzip_header_failed,
            );
        return (Err(failure), regex);
    }
    let seen = verdict::Observed {
        status,
        headers: &exchange.headers,
        version: exchange.version,
        tls: last.negotiated.is_some(),
        body: last.body_search.as_ref(),
    };
    match spec.expect.judge(&seen) {
        Ok(()) => (Ok(()), false),
        Err(broken) => (
            Err(ProbeFailure::new(broken.class, Phase::Body, broken.detail)),
            broken.regex,
        ),
    }
}

/// The response's length as Go's client sets `ContentLength`
/// (blackbox_exporter's `probe_http_content_length`; `None` is Go's -1).
/// HTTP/1: 0 for a 204 or 304, unknown for a chunked body or without one
/// number in Content-Length. HTTP/2 (Go's h2 transport): the number when
/// there is exactly one Content-Length value, 0 when the HEADERS frame
/// ended the stream without one (not for HEAD), else unknown.
fn content_length(exchange: &http::Exchange, method: &Method) -> Option<u64> {
    let headers = &exchange.headers;
    let parsed = |v: &HeaderValue| v.to_str().ok().and_then(|v| v.trim().parse().ok());
    if exchange
        .version
        .is_some_and(|v| v >= hyper::Version::HTTP_2)
    {
        let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
        return match (values.next(), values.next()) {
            (Some(one), None) => parsed(one),
            (None, _) if exchange.head_ended_stream && method != Method::HEAD => Some(0),
            _ => None,
        };
    }
    let http1 = exchange.version.is_some();
    if http1 && matches!(exchange.status, Some(204 | 304)) {
        return Some(0);
    }
    let chunked = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .any(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"));
    if http1 && chunked {
        return None;
    }
    headers.get(header::CONTENT_LENGTH).and_then(parsed)
}

/// The Last-Modified header as Unix seconds (any of HTTP's three date
/// formats, as Go's `http.ParseTime` reads them).
fn last_modified(headers: &HeaderMap) -> Option<i64> {
    let value = headers.get(header::LAST_MODIFIED)?.to_str().ok()?;
    let at = httpdate::parse_http_date(value.trim()).ok()?;
    match at.duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).ok(),
        Err(before) => i64::try_from(before.duration().as_secs()).ok().map(|s| -s),
    }
}

enum Lookup {
    Name(String),
    Fixed(IpAddr),
}

/// Where a hop connects and what it calls the server.
struct Target {
    /// The addresses dialled: the origin's, or the proxy's through one.
    addrs: Lookup,
    /// The port dialled.
    port: u16,
    /// What is dialled, for messages: the origin's host or the proxy.
    dialled: String,
    /// The connection goes to a proxy.
    proxied: bool,
    /// The origin's `host:port`, as a CONNECT names it.
    origin: String,
    /// SNI (and certificate name).
    sni: String,
    /// Host header value.
    authority: String,
}

/// The fixed address for `host` and `port` (`resolve`, an IP literal), or
/// the name to look up.
fn lookup_of(host: &Host<&str>, port: u16, spec: &ProbeSpec) -> Lookup {
    let name = match host {
        Host::Domain(d) => *d,
        _ => "",
    };
    let fixed = spec
        .resolve
        .iter()
        .find(|r| r.port == port && !name.is_empty() && r.host.eq_ignore_ascii_case(name))
        .map(|r| r.addr);
    match (fixed, host) {
        (Some(ip), _) => Lookup::Fixed(ip),
        (None, Host::Ipv4(ip)) => Lookup::Fixed(IpAddr::V4(*ip)),
        (None, Host::Ipv6(ip)) => Lookup::Fixed(IpAddr::V6(*ip)),
        (None, Host::Domain(name)) => Lookup::Name((*name).to_owned()),
    }
}

impl Target {
    fn of(url: &Url, spec: &ProbeSpec, via: Option<&Proxy>) -> Result<Target, ProbeFailure> {
        let bad = |detail: String| ProbeFailure::new(ErrorClass::HttpProtocol, Phase::Dns, detail);
        let port = url
            .port_or_known_default()
            .ok_or_else(|| bad(format!("no port for {url}")))?;
        let host = url.host().ok_or_else(|| bad(format!("no host in {url}")))?;
        let host_str = url.host_str().unwrap_or_default();
        let (addrs, dial_port, dialled) = match via {
            // DNS resolves the proxy's name; the origin's is the proxy's
            // business.
            Some(proxy) => {
                let host = match proxy.ip() {
                    Some(IpAddr::V4(ip)) => Host::Ipv4(ip),
                    Some(IpAddr::V6(ip)) => Host::Ipv6(ip),
                    None => Host::Domain(proxy.host()),
                };
                (
                    lookup_of(&host, proxy.port(), spec),
                    proxy.port(),
                    proxy.to_string(),
                )
            }
            None => (lookup_of(&host, port, spec), port, host_str.to_owned()),
        };
        let own_host = url.host_str() == spec.url.host_str();
        let sni = match (&spec.server_name, own_host) {
            (Some(name), true) => name.clone(),
            _ => host_str.to_owned(),
        };
        let authority = match url.port() {
            Some(p) => format!("{sni}:{p}"),
            None => sni.clone(),
        };
        let authority = if matches!(host, Host::Ipv6(_)) && spec.server_name.is_none() {
            match url.port() {
                Some(p) => format!("{host_str}:{p}"),
                None => host_str.to_owned(),
            }
        } else {
            authority
        };
        Ok(Target {
            addrs,
            port: dial_port,
            dialled,
            proxied: via.is_some(),
            origin: format!("{host_str}:{port}"),
            sni,
            authority,
        })
    }
}

/// A request built before the clock starts, in both URI forms: origin-form
/// for HTTP/1.1, absolute for HTTP/2 (its :authority and :scheme) and for
/// HTTP/1.1 to a proxy (absolute-form).
struct PreparedRequest {
    request: Request<Full<Bytes>>,
    origin_form: Uri,
    /// HTTP/1.1 sends the absolute form: the request goes to a proxy.
    absolute_form: bool,
}

impl PreparedRequest {
    fn into_version(self, h2: bool) -> Request<Full<Bytes>> {
        let mut request = self.request;
        if h2 {
            *request.version_mut() = hyper::Version::HTTP_2;
            request.headers_mut().remove(header::HOST);
        } else if !self.absolute_form {
            *request.uri_mut() = self.origin_form;
        }
        request
    }

    /// A copy of what HTTP/1.1 would send (see [`SentRequest::for_h2`]).
    fn sent(&self) -> SentRequest {
        let target = if self.absolute_form {
            self.request.uri().to_string()
        } else {
            self.origin_form.to_string()
        };
        SentRequest {
            method: self.request.method().clone(),
            target,
            version: hyper::Version::HTTP_11,
            headers: self.request.headers().clone(),
        }
    }
}

impl SentRequest {
    /// The request as HTTP/2 carried it: the absolute URL, no Host (it
    /// went as `:authority`).
    fn for_h2(mut self, url: &Url) -> SentRequest {
        self.version = hyper::Version::HTTP_2;
        let authority = self.headers.remove(header::HOST);
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let authority = authority
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| url.authority().to_owned(), str::to_owned);
        self.target = format!("{}://{authority}{path}", url.scheme());
        self
    }
}

fn build_request(
    spec: &ProbeSpec,
    url: &Url,
    target: &Target,
    method: &Method,
    body: &Bytes,
    via: Option<&Proxy>,
) -> Result<PreparedRequest, ProbeFailure> {
    let bad = |detail: String| ProbeFailure::new(ErrorClass::HttpProtocol, Phase::Ttfb, detail);
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let origin_form: Uri = path
        .parse()
        .map_err(|e| bad(format!("request path {path:?}: {e}")))?;
    let absolute: Uri = format!("{}://{}{}", url.scheme(), target.authority, path)
        .parse()
        .map_err(|e| bad(format!("request URI: {e}")))?;
    // Cleartext through a proxy: the proxy reads the absolute form (and
    // its credentials); https goes through a tunnel and the origin sees
    // an ordinary request, without any Proxy-Authorization.
    let to_proxy = via.filter(|_| url.scheme() == "http");
    let tunnelled = via.is_some() && to_proxy.is_none();
    let mut request = Request::new(Full::new(body.clone()));
    *request.method_mut() = method.clone();
    *request.uri_mut() = absolute;
    let headers = request.headers_mut();
    headers.reserve(spec.headers.len() + 5);
    let host = HeaderValue::from_str(&target.authority)
        .map_err(|e| bad(format!("Host header {:?}: {e}", target.authority)))?;
    headers.insert(header::HOST, host);
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    // Credentials stay with the origin they were given for (scheme, host
    // and port), as in curl: on a redirect elsewhere, neither the
    // authentication headers nor the check's secret headers follow.
    let same_origin = url == &spec.url || url.origin() == spec.url.origin();
    // A Host the check sets is its own URL's: a hop to another authority
    // sends that one's, as Go's client does after a redirect.
    let own_authority = url.host_str() == spec.url.host_str()
        && url.port_or_known_default() == spec.url.port_or_known_default();
    let sent = |name: &header::HeaderName| {
        (own_authority || name != header::HOST)
            && !(tunnelled && name == header::PROXY_AUTHORIZATION)
    };
    // A check's own headers replace sonde's defaults of the same name;
    // repeated names are all sent.
    for name in spec.headers.keys().filter(|n| sent(n)) {
        headers.remove(name);
    }
    for (name, value) in &spec.headers {
        if (!same_origin && is_credential(name, value)) || !sent(name) {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    if let Some(credentials) = to_proxy.and_then(Proxy::authorization) {
        headers.insert(header::PROXY_AUTHORIZATION, credentials.clone());
    }
    Ok(PreparedRequest {
        request,
        origin_form,
        absolute_form: to_proxy.is_some(),
    })
}

/// Whether a request header carries a credential: the HTTP
/// authentication and cookie headers, and any value the configuration
/// marked secret (`{ env = … }`, `{ file = … }`).
fn is_credential(name: &header::HeaderName, value: &HeaderValue) -> bool {
    value.is_sensitive()
        || name == header::AUTHORIZATION
        || name == header::PROXY_AUTHORIZATION
        || name == header::COOKIE
}

/// The User-Agent sonde sends unless a check sets its own.
pub(crate) const USER_AGENT: &str = concat!("sonde/", env!("CARGO_PKG_VERSION"));
