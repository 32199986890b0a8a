//! The validated plan: what the agent runs, with every default filled in.
//!
//! Values arrive compiled, in the types the engine uses (an `http::Method`
//! and `HeaderMap`, a bytes regex, decoded certificates and keys), so the
//! engine builds its probe spec and the gateway sink its client without
//! parsing or reading anything again, and without knowing TOML. Secrets
//! stay wrapped in [`Secret`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::secret::Secret;

/// Everything one agent process does.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Who the agent is and its process-wide limits.
    pub agent: Agent,
    /// Every configured check, in file order, including disabled ones.
    pub checks: Vec<Check>,
    /// Where records go.
    pub sinks: Sinks,
    /// What Prometheus sees beyond the defaults.
    pub prometheus: Prometheus,
}

/// `[prometheus]`: the per-check histograms and blackbox_exporter's
/// `/probe` modules.
#[derive(Debug, Clone, PartialEq)]
pub struct Prometheus {
    /// Keep and expose the per-check histograms
    /// (`sonde_probe_phase_duration_seconds`, `sonde_probe_duration_seconds`).
    pub histograms: bool,
    /// The histograms' upper bounds, seconds: ascending, finite, positive,
    /// at most [`Prometheus::MAX_BUCKETS`] (+Inf is implied).
    pub phase_buckets: Vec<f64>,
    /// A blackbox_exporter configuration file whose modules `/probe` runs.
    pub blackbox_config: Option<PathBuf>,
}

impl Prometheus {
    /// The most `phase_buckets` a configuration may give: each bucket is a
    /// series per phase per check.
    pub const MAX_BUCKETS: usize = 30;

    /// The default `phase_buckets`: Prometheus' client libraries' default.
    pub const DEFAULT_BUCKETS: [f64; 11] = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
}

impl Default for Prometheus {
    fn default() -> Self {
        Prometheus {
            histograms: true,
            phase_buckets: Prometheus::DEFAULT_BUCKETS.to_vec(),
            blackbox_config: None,
        }
    }
}

impl Plan {
    /// The checks to schedule (those with `enabled = true`).
    pub fn enabled_checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.enabled)
    }

    /// What `sonde check-config` points out in a valid plan: every check
    /// and gateway whose `ca_file` now replaces the system roots (before
    /// this release both were trusted), so no configuration changes meaning
    /// silently.
    pub fn notes(&self) -> Vec<String> {
        let replaces = |what: String, ca: &Certificates, key: &str| {
            format!(
                "{what}: {key}ca_file {} replaces the system roots (they were trusted \
                 besides it before this release); set {key}system_roots = true to trust both",
                ca.path.display()
            )
        };
        let checks = self.checks.iter().filter_map(|c| match &c.tls.ca {
            Some(ca) if !c.tls.system_roots && !c.tls.insecure => {
                Some(replaces(format!("check {:?}", c.name), ca, "tls."))
            }
            _ => None,
        });
        let gateways = self.sinks.gateways.iter().filter_map(|g| match &g.ca {
            Some(ca) if !g.system_roots => Some(replaces(format!("gateway {:?}", g.name), ca, "")),
            _ => None,
        });
        checks.chain(gateways).collect()
    }
}

/// `[agent]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Identifies this agent to gateways (records are deduplicated by agent id
    /// and sequence). Default `"sonde"`; required when a gateway is configured.
    pub id: String,
    /// Region label attached to records and metrics.
    pub region: Option<String>,
    /// Most probes in flight at once.
    pub concurrency: usize,
    /// Directory for the file sink and the gateway spools.
    pub state_dir: PathBuf,
    /// Address of the Prometheus metrics and `/healthz` endpoint, if any.
    pub metrics_listen: Option<SocketAddr>,
}

/// One configured check, all defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Unique name, `[A-Za-z0-9_.-]+`.
    pub name: String,
    /// Target, `http` or `https`, with a host and no credentials.
    pub url: url::Url,
    /// HTTP method (upper-case).
    pub method: http::Method,
    /// Request headers, in name order; names as written (for rendering).
    pub headers: Vec<Header>,
    /// The same headers as sent: secret values are marked sensitive.
    pub header_map: http::HeaderMap,
    /// Request body, if any.
    pub body: Option<String>,
    /// Time between probe starts (at least one second).
    pub interval: Duration,
    /// Budget for the whole probe (below `interval`).
    pub timeout: Duration,
    /// Statuses that count as up; a status is up when any range holds it.
    pub expect_status: Vec<RangeInclusive<u16>>,
    /// The body (its first `max_body_bytes`) must contain this text.
    pub body_contains: Option<String>,
    /// The body (its first 1 MiB, or `max_body_bytes` if smaller) must
    /// match this pattern.
    pub body_matches: Option<Pattern>,
    /// Which address families to resolve and connect to.
    pub ip_version: IpVersion,
    /// DNS server to ask instead of the system's resolver configuration.
    pub dns_server: Option<SocketAddr>,
    /// How long a positive A answer waits for AAAA (RFC 8305's
    /// Resolution Delay).
    pub resolution_delay: Duration,
    /// Redirects to follow; 0 means a 3xx is the result.
    pub follow_redirects: u8,
    /// Follow a redirect from https to http (else the probe is down,
    /// `insecure_redirect`).
    pub allow_insecure_redirect: bool,
    /// Most body bytes read (and searched by body assertions), counted
    /// after decoding.
    pub max_body_bytes: u64,
    /// How the body is decoded before the body assertions see it.
    pub compression: Compression,
    /// TLS settings (ignored for `http` URLs).
    pub tls: Tls,
    /// Labels attached to the check's records and metrics.
    pub labels: BTreeMap<String, String>,
    /// Whether the check is scheduled.
    pub enabled: bool,
}

/// One request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Name as written (an HTTP token).
    pub name: String,
    /// Value; secret values print as `<redacted>`.
    pub value: HeaderValue,
}

/// A header value written in the file, or read from a secret source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Written in the configuration.
    Plain(String),
    /// From an environment variable or a file.
    Secret(Secret<String>),
}

impl HeaderValue {
    /// The value to send on the wire.
    pub fn expose(&self) -> &str {
        match self {
            HeaderValue::Plain(s) => s,
            HeaderValue::Secret(s) => s.expose(),
        }
    }
}

/// A compiled `body_matches` pattern, matched against the body's bytes;
/// equal when the source text is equal.
#[derive(Debug, Clone)]
pub struct Pattern(regex::bytes::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Pattern {
    /// Compiles `source`.
    pub fn new(source: &str) -> Result<Pattern, regex::Error> {
        regex::bytes::Regex::new(source).map(Pattern)
    }

    /// The compiled regex.
    pub fn regex(&self) -> &regex::bytes::Regex {
        &self.0
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// A check's `compression`: which content coding its body is decoded
/// from before `body_contains` and `body_matches` see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// By the response's Content-Encoding (gzip, x-gzip, deflate, br; an
    /// unknown or absent coding: as it came), as curl's `--compressed`
    /// decodes. The default, so assertions see text whenever a server
    /// compresses anyway.
    #[default]
    Auto,
    /// gzip, whatever Content-Encoding says (a body that is not fails).
    Gzip,
    /// Brotli, likewise.
    Brotli,
    /// Raw DEFLATE, likewise (blackbox_exporter's `deflate`).
    Deflate,
    /// Nothing is decoded: the body as it came.
    Identity,
}

impl Compression {
    /// The value as written in sonde.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Auto => "auto",
            Compression::Gzip => "gzip",
            Compression::Brotli => "br",
            Compression::Deflate => "deflate",
            Compression::Identity => "identity",
        }
    }
}

/// Address families a check uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpVersion {
    /// Ask for A and AAAA in parallel and use what answers.
    #[default]
    Auto,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
    /// Both families asked for; IPv4's addresses only, unless there are
    /// none (blackbox_exporter's `preferred_ip_protocol: ip4` with
    /// `ip_protocol_fallback`).
    Prefer4,
    /// Both families asked for; IPv6's addresses only, unless there are
    /// none (blackbox_exporter's default).
    Prefer6,
}

/// TLS settings of a check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tls {
    /// The CA named by `ca_file`: it replaces the system roots unless
    /// [`Tls::system_roots`] says to trust both; when absent the system
    /// roots alone are used.
    pub ca: Option<Certificates>,
    /// Whether the system roots are trusted: always without a `ca`; with
    /// one, only when `system_roots = true` (curl's and
    /// blackbox_exporter's rule: a named CA replaces them).
    pub system_roots: bool,
    /// Client certificate and key for mutual TLS.
    pub client_cert: Option<ClientCert>,
    /// Skip certificate verification (the handshake is still timed).
    pub insecure: bool,
    /// SNI and verification name instead of the URL's host.
    pub server_name: Option<String>,
}

impl Default for Tls {
    /// The system roots, no client certificate, verification on.
    fn default() -> Tls {
        Tls {
            ca: None,
            system_roots: true,
            client_cert: None,
            insecure: false,
            server_name: None,
        }
    }
}

/// Certificates read from a PEM file at validation time, decoded and
/// checked; shared between the checks that name the same file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Certificates {
    /// The path as configured, for messages.
    pub path: PathBuf,
    /// The certificates, in file order (at least one).
    pub certs: Arc<[CertificateDer<'static>]>,
}

/// A client certificate chain and its private key, known to match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientCert {
    /// Certificate chain, leaf first.
    pub cert: Certificates,
    /// Private key; never printed. Its source names the key file.
    pub key: Secret<PrivateKey>,
}

/// A decoded private key (PKCS#8, PKCS#1 or SEC1) that rustls can sign
/// with. `Debug` never shows it.
#[derive(PartialEq, Eq)]
pub struct PrivateKey(Arc<PrivateKeyDer<'static>>);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl PrivateKey {
    /// Wraps a decoded key.
    pub fn new(der: PrivateKeyDer<'static>) -> Self {
        PrivateKey(Arc::new(der))
    }

    /// The key as rustls takes it (an owned copy).
    pub fn der(&self) -> PrivateKeyDer<'static> {
        self.0.clone_key()
    }
}

impl Clone for PrivateKey {
    fn clone(&self) -> Self {
        PrivateKey(Arc::clone(&self.0))
    }
}

impl std::hash::Hash for PrivateKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.secret_der().hash(state);
    }
}

/// `[sinks]`: at least one is enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sinks {
    /// Append-only segment files, if enabled.
    pub file: Option<FileSink>,
    /// One line per record on standard output, if enabled.
    pub stdout: Option<StdoutSink>,
    /// Regional gateways to stream to.
    pub gateways: Vec<GatewaySink>,
}

/// `[sinks.file]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSink {
    /// Where segments live (default `state_dir/records`).
    pub dir: PathBuf,
    /// A segment is closed when it reaches this size.
    pub segment_max_bytes: u64,
    /// A segment is closed when it is this old.
    pub segment_max_age: Duration,
    /// Oldest segments are deleted past this total size.
    pub retention_max_bytes: u64,
    /// Segments older than this are deleted.
    pub retention_max_age: Duration,
    /// When written records are forced to disk.
    pub fsync: Fsync,
}

/// When the file sink calls fsync: durability against throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// After every write: nothing acknowledged is lost on power failure, at
    /// the cost of one disk flush per batch (slow on spinning disks).
    Always,
    /// At most this long after a write: a power failure loses up to this
    /// much; the default (1s) costs one flush a second.
    Every(Duration),
    /// Leave it to the kernel: fastest, and a power failure may lose the
    /// last ~30 s. A process crash loses nothing either way.
    Never,
}

/// `[sinks.stdout]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdoutSink {
    /// How each record is printed.
    pub format: StdoutFormat,
}

/// Line format of the stdout sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StdoutFormat {
    /// Aligned text for people.
    #[default]
    Human,
    /// One JSON object per line, for pipes.
    Json,
}

/// One `[[sinks.gateway]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySink {
    /// Unique among gateways; names the spool directory.
    pub name: String,
    /// The gateway's ingest URLs, never empty, in the order the sink
    /// tries them: `url` is a list of one; `urls` lists replicas of one
    /// region that share one log, between which the sink fails over.
    pub urls: Vec<url::Url>,
    /// Bearer token, from the environment or a file.
    pub token: Secret<String>,
    /// Records waiting for the gateway are spooled here (`state_dir/spool/NAME`).
    pub spool_dir: PathBuf,
    /// Spool size limit.
    pub spool_max_bytes: u64,
    /// The CA of an `https` gateway's certificate (a private CA); it
    /// replaces the system roots unless [`GatewaySink::system_roots`].
    pub ca: Option<Certificates>,
    /// Whether the system roots are trusted: always without a `ca`; with
    /// one, only when `system_roots = true`, as for a check.
    pub system_roots: bool,
}
