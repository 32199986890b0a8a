//! gateway.toml: the raw TOML shape (serde, unknown keys refused) and the
//! validated [`GatewayConfig`] the server runs from.
//!
//! Parsing reads tokens from the environment or files through
//! [`config::Host`], so it is testable without either; it opens no socket.
//! Tokens are held as [`config::Secret`] and never printed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use config::{ErrorKind, Host, Secret};
use serde::Deserialize;

/// Why a gateway.toml was refused: the configuration crate's one error
/// type (one error, the first found). Syntax errors carry
/// `origin:line:col:`; values refused after parsing print as
/// `origin: key: message`.
pub use config::{ConfigError, ConfigErrors};

use config::SecretRef as RawToken;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIngest {
    max_request_bytes: Option<usize>,
    max_requests_per_second: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRing {
    max_age: Option<String>,
    max_records: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReaders {
    queue_frames: Option<usize>,
    max_readers: Option<usize>,
    write_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWriter {
    ack: Option<String>,
    max_file_bytes: Option<u64>,
    fsync_interval: Option<String>,
    queue_frames: Option<usize>,
    retain_max_bytes: Option<u64>,
    retain_max_age: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgentLimits {
    max_session_skew: Option<String>,
    max_checks: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    name: String,
    token: RawToken,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    max_connections: Option<usize>,
    header_read_timeout: Option<String>,
    idle_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    id: String,
    token: RawToken,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReader {
    name: String,
    token: RawToken,
    checks: Option<Vec<String>>,
    agents: Option<Vec<String>>,
}

/// A string or a list of strings (`audience`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrant {
    subject: Option<String>,
    group: Option<String>,
    checks: Option<Vec<String>>,
    agents: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidc {
    issuer: String,
    audience: OneOrMany,
    jwks_url: Option<String>,
    jwks_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    jwks_refresh: Option<String>,
    leeway: Option<String>,
    algorithms: Option<Vec<String>>,
    scope_claim: Option<String>,
    groups_claim: Option<String>,
    #[serde(default)]
    grant: Vec<RawGrant>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCors {
    allow_origins: Option<Vec<String>>,
    allow_credentials: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUi {
    enabled: Option<bool>,
    regions: Option<Vec<RawRegion>>,
    oidc: Option<RawUiOidc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUiOidc {
    issuer: String,
    client_id: String,
    scopes: Option<Vec<String>>,
    connect_origins: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegion {
    name: String,
    url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    data_dir: PathBuf,
    name: Option<String>,
    region: Option<String>,
    #[serde(default)]
    cors: RawCors,
    #[serde(default)]
    ui: RawUi,
    tls: Option<RawTls>,
    #[serde(default)]
    ingest: RawIngest,
    #[serde(default)]
    ring: RawRing,
    #[serde(default)]
    readers: RawReaders,
    #[serde(default)]
    writer: RawWriter,
    #[serde(default)]
    agent: Vec<RawAgent>,
    #[serde(default)]
    reader: Vec<RawReader>,
    #[serde(default)]
    oidc: Vec<RawOidc>,
    #[serde(default)]
    agent_limits: RawAgentLimits,
    #[serde(default)]
    admin: Vec<RawAdmin>,
    #[serde(default)]
    server: RawServer,
    alert: Option<RawAlert>,
    jetstream: Option<RawJetStream>,
}

/// `[jetstream]`: the region's log in a NATS JetStream stream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJetStream {
    servers: Vec<String>,
    stream: Option<String>,
    subject_prefix: Option<String>,
    replicas: Option<usize>,
    max_age: Option<String>,
    max_bytes: Option<u64>,
    duplicate_window: Option<String>,
    user: Option<String>,
    password: Option<RawToken>,
    token: Option<RawToken>,
    nkey_seed: Option<RawToken>,
    creds_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

/// `[alert]`: run the alerter in the gateway's process (a one-region setup).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlert {
    config: PathBuf,
}

/// Certificate chain and key for HTTPS, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// Limits on `POST /v1/frames`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestLimits {
    /// Largest request body; larger ones get 413.
    pub max_request_bytes: usize,
    /// Requests per second per agent before 429; 0 is unlimited.
    pub max_requests_per_second: u32,
}

/// Bounds of the replay ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLimits {
    /// Records older than this (by acceptance time) leave the ring.
    pub max_age: Duration,
    /// The ring never holds more records than this.
    pub max_records: usize,
}

/// Bounds on live readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderLimits {
    /// Accepted frames a reader may fall behind before it is dropped.
    pub queue_frames: usize,
    /// Readers connected at once; more get 503.
    pub max_readers: usize,
    /// A connection whose pending write makes no progress for this long is
    /// closed (PROTOCOL.md 3.4): a reader that stopped reading.
    pub write_timeout: Duration,
}

/// The default of `[readers] write_timeout`.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// When ingest acknowledges accepted frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckAfter {
    /// Once they are written and fsynced (group commit): an acknowledged
    /// frame survives a gateway crash or power loss. The default.
    #[default]
    Durable,
    /// Once they are queued for the writer: lower ingest latency; a crash
    /// loses up to `fsync_interval` of acknowledged frames from the files.
    Queued,
}

/// The wire-file writer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterSettings {
    /// When ingest acknowledges.
    pub ack: AckAfter,
    /// Directory of the wire files.
    pub data_dir: PathBuf,
    /// A file is closed and the next one started once it passes this size.
    pub max_file_bytes: u64,
    /// Longest time written data waits for fsync (with `ack = "durable"`,
    /// data with an agent waiting is synced at once).
    pub fsync_interval: Duration,
    /// Frames waiting for the writer before ingest answers 503.
    pub queue_frames: usize,
    /// Which old files the writer deletes.
    pub retain: Retention,
}

/// How much of its wire files the writer keeps: past either bound, the
/// oldest files are deleted (never the one being written). Unset bounds
/// keep everything. Start-up reads every file kept (PROTOCOL.md 9). The
/// store's rule ([`store::Retain`], [`store::expired`]), so the writer and
/// the file sink keep files the same way.
pub type Retention = store::Retain;

/// What any one agent's frames may claim (PROTOCOL.md 2.2): bounds that
/// keep one bad frame (a clock ahead, a leaked token) from poisoning the
/// agent's high-water mark or growing the gateway's state without end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentLimits {
    /// How far ahead of the gateway's clock a frame's session may start.
    pub max_session_skew: Duration,
    /// Distinct check names per agent; a frame bringing one more is refused.
    pub max_checks: usize,
}

impl AgentLimits {
    /// 5 minutes of skew, 10 000 checks per agent.
    pub const DEFAULT: AgentLimits = AgentLimits {
        max_session_skew: Duration::from_secs(300),
        max_checks: 10_000,
    };
}

/// An operator allowed to use the admin endpoints (PROTOCOL.md 2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAuth {
    /// Who it is, for the log.
    pub name: String,
    /// Its bearer token.
    pub token: Secret<String>,
}

/// An agent allowed to send frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAuth {
    /// The agent id its frames must carry.
    pub id: String,
    /// Its bearer token.
    pub token: Secret<String>,
}

/// A reader allowed to follow the stream, and what it may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderAuth {
    /// A name for logs and metrics.
    pub name: String,
    /// Its bearer token.
    pub token: Secret<String>,
    /// Globs over check names; empty means every check.
    pub checks: Vec<String>,
    /// Globs over agent ids; empty means every agent.
    pub agents: Vec<String>,
}

/// Where an issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// `jwks_url`: fetched (https, or http to loopback).
    Url(String),
    /// `jwks_file`: read from disk.
    File(PathBuf),
}

impl std::fmt::Display for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksSource::Url(url) => f.write_str(url),
            JwksSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// An identity provider whose tokens readers may present (`[[oidc]]`,
/// PROTOCOL.md 3.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIssuer {
    /// `iss`, exactly.
    pub issuer: String,
    /// Accepted `aud` values (a token needs one of them).
    pub audiences: Vec<String>,
    /// Its keys.
    pub keys: JwksSource,
    /// An extra CA for `jwks_url` beside the system's roots.
    pub ca_file: Option<PathBuf>,
    /// How often keys are reloaded (default 10 min).
    pub refresh: Duration,
    /// Clock skew allowed on `exp` and `nbf` (default 30 s, at most 5 min).
    pub leeway: Duration,
    /// Signature algorithms accepted (default RS256, ES256, EdDSA).
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// How claims become a scope.
    pub rules: crate::oidc::claims::ScopeRules,
}

/// Default `[[oidc]] jwks_refresh`.
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(600);
/// Default `[[oidc]] leeway`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// The most `[[oidc]] leeway` may be.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// Which gateway this is, told to every reader (PROTOCOL.md 3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `name`, default `gateway`.
    pub name: String,
    /// `region`, if set.
    pub region: Option<String>,
}

/// Which other origins' pages may read (`[cors]`, PROTOCOL.md 3.8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    /// Exact origins (`scheme://host[:port]`), or `*` alone; empty: off.
    pub allow_origins: Vec<String>,
    /// Whether a page may send credentials (exact origins only).
    pub allow_credentials: bool,
}

/// The live page (`[ui]`, PROTOCOL.md 3.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ui {
    /// Whether `/` serves the page (default true).
    pub enabled: bool,
    /// The regional gateways the page reads, at most [`MAX_REGIONS`];
    /// empty: this gateway alone.
    pub regions: Vec<Region>,
    /// Sign-in with an identity provider (`[ui.oidc]`); none: the page
    /// asks for a reader token.
    pub oidc: Option<UiOidc>,
}

impl Default for Ui {
    fn default() -> Self {
        Ui {
            enabled: true,
            regions: Vec::new(),
            oidc: None,
        }
    }
}

/// How the page signs in (`[ui.oidc]`, PROTOCOL.md 3.12): the
/// authorization code flow with PKCE against `issuer`, whose ID token is
/// the bearer for every region. Checked against `[[oidc]]`: the gateway
/// verifies the tokens the page gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiOidc {
    /// The issuer, exactly as an `[[oidc]] issuer` (its discovery
    /// document is `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    /// `scheme://host[:port]` of `issuer`: the page fetches from it.
    pub issuer_origin: String,
    /// The page's client id at the provider: the ID token's `aud`, so
    /// one of that `[[oidc]]`'s `audience`.
    pub client_id: String,
    /// The scopes asked for; `openid` among them (default `["openid"]`).
    pub scopes: Vec<String>,
    /// Other origins the page may fetch from: a token endpoint that is
    /// not on the issuer's origin (default none).
    pub connect_origins: Vec<String>,
}

/// One regional gateway the page reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Its name, as the page shows it.
    pub name: String,
    /// Its origin (`https://host[:port]`); the page's own for this gateway.
    pub url: String,
}

/// The most regions one page reads (one connection each).
pub const MAX_REGIONS: usize = 10;

/// A validated gateway configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Where `sonde gateway` listens (tests hand `serve` their own listener).
    pub listen: SocketAddr,
    /// Its name and region.
    pub identity: Identity,
    /// Cross-origin readers.
    pub cors: Cors,
    /// The live page.
    pub ui: Ui,
    /// HTTPS; without it the listener must be on loopback.
    pub tls: Option<TlsFiles>,
    /// Ingest limits.
    pub ingest: IngestLimits,
    /// Replay ring bounds.
    pub ring: RingLimits,
    /// Reader bounds.
    pub readers: ReaderLimits,
    /// Writer settings.
    pub writer: WriterSettings,
    /// Agents and their tokens.
    pub agents: Vec<AgentAuth>,
    /// Readers, their tokens and scopes.
    pub reader_tokens: Vec<ReaderAuth>,
    /// Identity providers whose tokens readers may present.
    pub oidc: Vec<OidcIssuer>,
    /// Per-agent bounds on what frames may claim.
    pub agent_limits: AgentLimits,
    /// Operators; none disables the admin endpoints.
    pub admins: Vec<AdminAuth>,
    /// `[alert] config`: an alert.toml whose alerter runs in this process
    /// beside the gateway (`sonde gateway` starts it; this crate only
    /// carries the path).
    pub alert_config: Option<PathBuf>,
    /// `[jetstream]`: the region's log is a JetStream stream shared by
    /// every replica; the local writer is not used.
    pub jetstream: Option<JetStream>,
    /// The listener's bounds: connection cap (clamped to the fd limit
    /// less [`FD_RESERVE`]), header-read and idle timeouts.
    pub server: listen::Limits,
}

/// Connections the gateway holds open at once by default (before the
/// fd-limit clamp); readers and agents each hold one.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;

/// Descriptors the gateway keeps out of its connection cap: wire files,
/// the runtime, logs (at `ulimit -n 256`: 128 connections).
pub const FD_RESERVE: u64 = 128;

/// The listener's default bounds.
pub const DEFAULT_SERVER_LIMITS: listen::Limits = listen::Limits {
    fd_budget: listen::FdBudget::AllBut(FD_RESERVE),
    ..listen::Limits::with_max_connections(DEFAULT_MAX_CONNECTIONS)
};

/// Whether `text` is an origin as browsers send it: `http` or `https`,
/// `://`, a host, an optional port, nothing after.
fn is_origin(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    // `[::1]` has colons of its own: a port follows only its `]`.
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !rest.ends_with(']') => (h, Some(p)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".-[]:".contains(&c));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    matches!(scheme, "http" | "https") && host_ok && port_ok
}

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7700";

impl GatewayConfig {
    /// A configuration with every default, no agents and no readers, writing
    /// to `data_dir`. Tests and benches start from it.
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            identity: Identity {
                name: "gateway".into(),
                region: None,
            },
            cors: Cors::default(),
            ui: Ui::default(),
            tls: None,
            ingest: IngestLimits {
                max_request_bytes: 8 << 20,
                max_requests_per_second: 0,
            },
            ring: RingLimits {
                max_age: Duration::from_secs(300),
                max_records: 1_000_000,
            },
            readers: ReaderLimits {
                queue_frames: 4096,
                max_readers: 10_000,
                write_timeout: DEFAULT_WRITE_TIMEOUT,
            },
            writer: WriterSettings {
                ack: AckAfter::Durable,
                data_dir,
                max_file_bytes: 64 << 20,
                fsync_interval: Duration::from_secs(1),
                queue_frames: 65_536,
                retain: Retention::default(),
            },
            agents: Vec::new(),
            reader_tokens: Vec::new(),
            oidc: Vec::new(),
            agent_limits: AgentLimits::DEFAULT,
            admins: Vec::new(),
            server: DEFAULT_SERVER_LIMITS,
            alert_config: None,
            jetstream: None,
        }
    }

    /// Parses and validates gateway.toml text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str, host: &dyn Host) -> Result<Self, ConfigErrors> {
        let raw: RawConfig = config::from_toml(text, origin)?;
        let invalid = |field: String, message: String| {
            ConfigErrors::from(ConfigError::at_key(
                origin,
                field,
                ErrorKind::Unusable { message },
            ))
        };
        let mut cfg = GatewayConfig::with_data_dir(raw.data_dir);
        let listen = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        cfg.listen = listen.parse().map_err(|_| {
            invalid(
                "listen".into(),
                format!("`{listen}` is not an address such as \"127.0.0.1:7700\""),
            )
        })?;
        for (key, value) in [("name", &raw.name), ("region", &raw.region)] {
            if let Some(v) = value.as_deref().filter(|v| !config::is_name(v)) {
                return Err(invalid(
                    key.into(),
                    format!("{v:?} is not a name (1 to 64 of A-Z a-z 0-9 _ . -)"),
                ));
            }
        }
        if let Some(name) = raw.name {
            cfg.identity.name = name;
        }
        cfg.identity.region = raw.region;
        cfg.alert_config = raw.alert.map(|a| a.config);
        if let Some(js) = raw.jetstream {
            cfg.jetstream = Some(jetstream(
                js,
                cfg.identity.region.as_deref(),
                host,
                &invalid,
            )?);
        }
        if let Some(origins) = raw.cors.allow_origins {
            for (i, o) in origins.iter().enumerate() {
                let star_alone = o == "*" && origins.len() == 1;
                if !(is_origin(o) || star_alone) {
                    return Err(invalid(
                        format!("cors.allow_origins[{i}]"),
                        format!(
                            "{o:?} is not an origin such as \"https://status.example.com\" \
                             (or \"*\" alone)"
                        ),
                    ));
                }
            }
            cfg.cors.allow_origins = origins;
        }
        if let Some(credentials) = raw.cors.allow_credentials {
            if credentials && cfg.cors.allow_origins.iter().any(|o| o == "*") {
                return Err(invalid(
                    "cors.allow_credentials".into(),
                    "credentials go only to exact origins, not \"*\"".into(),
                ));
            }
            cfg.cors.allow_credentials = credentials;
        }
        if let Some(enabled) = raw.ui.enabled {
            cfg.ui.enabled = enabled;
        }
        let regions = raw.ui.regions.unwrap_or_default();
        if regions.len() > MAX_REGIONS {
            return Err(invalid(
                "ui.regions".into(),
                format!(
                    "{} regions; the page reads at most {MAX_REGIONS}",
                    regions.len()
                ),
            ));
        }
        for (i, r) in regions.into_iter().enumerate() {
            if !config::is_name(&r.name) {
                return Err(invalid(
                    format!("ui.regions[{i}].name"),
                    format!(
                        "bad name {} (valid: {})",
                        crate::ingest::shown_name(&r.name),
                        config::NAME_VALID
                    ),
                ));
            }
            if cfg.ui.regions.iter().any(|o| o.name == r.name) {
                return Err(invalid(
                    format!("ui.regions[{i}].name"),
                    format!("region `{}` is listed twice", r.name),
                ));
            }
            let url = r.url.trim_end_matches('/').to_owned();
            if !is_origin(&url) {
                return Err(invalid(
                    format!("ui.regions[{i}].url"),
                    format!(
                        "{:?} is not a gateway's origin such as \"https://gw.eu-west.example:7700\"",
                        r.url
                    ),
                ));
            }
            cfg.ui.regions.push(Region { name: r.name, url });
        }
        // Checked once `[[oidc]]` is: the page's issuer must be one.
        let ui_oidc = raw.ui.oidc;
        cfg.tls = raw.tls.map(|t| TlsFiles {
            cert_file: t.cert_file,
            key_file: t.key_file,
        });
        if cfg.tls.is_none() && !cfg.listen.ip().is_loopback() {
            return Err(invalid(
                "listen".into(),
                format!(
                    "{} is not loopback: configure [tls] to listen there",
                    cfg.listen
                ),
            ));
        }
        if let Some(n) = raw.ingest.max_request_bytes {
            cfg.ingest.max_request_bytes = positive(n, "ingest.max_request_bytes", &invalid)?;
        }
        if let Some(n) = raw.ingest.max_requests_per_second {
            cfg.ingest.max_requests_per_second = n;
        }
        if let Some(text) = raw.ring.max_age {
            cfg.ring.max_age = duration(&text, "ring.max_age", &invalid)?;
        }
        if let Some(n) = raw.ring.max_records {
            cfg.ring.max_records = positive(n, "ring.max_records", &invalid)?;
        }
        if let Some(n) = raw.readers.queue_frames {
            cfg.readers.queue_frames = positive(n, "readers.queue_frames", &invalid)?;
        }
        if let Some(n) = raw.readers.max_readers {
            cfg.readers.max_readers = n;
        }
        if let Some(text) = raw.readers.write_timeout {
            cfg.readers.write_timeout = duration(&text, "readers.write_timeout", &invalid)?;
        }
        if let Some(text) = raw.writer.ack {
            cfg.writer.ack = match text.as_str() {
                "durable" => AckAfter::Durable,
                "queued" => AckAfter::Queued,
                other => {
                    return Err(invalid(
                        "writer.ack".into(),
                        format!("{other:?} (valid: \"durable\" or \"queued\")"),
                    ));
                }
            };
        }
        if let Some(n) = raw.writer.max_file_bytes {
            cfg.writer.max_file_bytes = n.max(4096);
        }
        if let Some(text) = raw.writer.fsync_interval {
            cfg.writer.fsync_interval = duration(&text, "writer.fsync_interval", &invalid)?;
        }
        if let Some(n) = raw.writer.queue_frames {
            cfg.writer.queue_frames = positive(n, "writer.queue_frames", &invalid)?;
        }
        if let Some(n) = raw.writer.retain_max_bytes {
            if n < cfg.writer.max_file_bytes {
                return Err(invalid(
                    "writer.retain_max_bytes".into(),
                    format!(
                        "{n} is below max_file_bytes ({}): at least one whole file must fit",
                        cfg.writer.max_file_bytes
                    ),
                ));
            }
            cfg.writer.retain.max_bytes = Some(n);
        }
        if let Some(text) = raw.writer.retain_max_age {
            cfg.writer.retain.max_age = Some(duration(&text, "writer.retain_max_age", &invalid)?);
        }
        if let Some(text) = raw.agent_limits.max_session_skew {
            cfg.agent_limits.max_session_skew =
                duration(&text, "agent_limits.max_session_skew", &invalid)?;
        }
        if let Some(n) = raw.agent_limits.max_checks {
            cfg.agent_limits.max_checks = positive(n, "agent_limits.max_checks", &invalid)?;
        }
        if let Some(n) = raw.server.max_connections {
            cfg.server.max_connections = positive(n, "server.max_connections", &invalid)?;
        }
        if let Some(text) = raw.server.header_read_timeout {
            cfg.server.header_read_timeout =
                duration(&text, "server.header_read_timeout", &invalid)?;
        }
        if let Some(text) = raw.server.idle_timeout {
            cfg.server.idle_timeout = duration(&text, "server.idle_timeout", &invalid)?;
        }
        for (i, a) in raw.agent.into_iter().enumerate() {
            if !config::is_name(&a.id) {
                return Err(invalid(
                    format!("agent[{i}].id"),
                    format!(
                        "bad id {} (valid: {})",
                        crate::ingest::shown_name(&a.id),
                        config::NAME_VALID
                    ),
                ));
            }
            if cfg.agents.iter().any(|b| b.id == a.id) {
                return Err(invalid(
                    format!("agent[{i}].id"),
                    format!("agent `{}` is listed twice", a.id),
                ));
            }
            let token = a
                .token
                .resolve(host)
                .map_err(|m| invalid(format!("agent[{i}].token"), m))?;
            cfg.agents.push(AgentAuth { id: a.id, token });
        }
        for (i, r) in raw.reader.into_iter().enumerate() {
            let token = r
                .token
                .resolve(host)
                .map_err(|m| invalid(format!("reader[{i}].token"), m))?;
            cfg.reader_tokens.push(ReaderAuth {
                name: r.name,
                token,
                checks: r.checks.unwrap_or_default(),
                agents: r.agents.unwrap_or_default(),
            });
        }
        for (i, o) in raw.oidc.into_iter().enumerate() {
            let issuer = oidc_issuer(o, &format!("oidc[{i}]"), &invalid)?;
            if cfg.oidc.iter().any(|other| other.issuer == issuer.issuer) {
                return Err(invalid(
                    format!("oidc[{i}].issuer"),
                    format!("issuer {:?} is listed twice", issuer.issuer),
                ));
            }
            cfg.oidc.push(issuer);
        }
        if let Some(o) = ui_oidc {
            cfg.ui.oidc = Some(ui_oidc_config(o, &cfg.oidc, &invalid)?);
        }
        for (i, a) in raw.admin.into_iter().enumerate() {
            let token = a
                .token
                .resolve(host)
                .map_err(|m| invalid(format!("admin[{i}].token"), m))?;
            cfg.admins.push(AdminAuth {
                name: a.name,
                token,
            });
        }
        let mut seen: Vec<&str> = Vec::new();
        let all = cfg
            .agents
            .iter()
            .map(|a| (format!("agent `{}`", a.id), &a.token));
        let all = all.chain(
            cfg.reader_tokens
                .iter()
                .map(|r| (format!("reader `{}`", r.name), &r.token)),
        );
        let all = all.chain(
            cfg.admins
                .iter()
                .map(|a| (format!("admin `{}`", a.name), &a.token)),
        );
        for (who, token) in all {
            if seen.contains(&token.expose().as_str()) {
                return Err(invalid(
                    "token".into(),
                    format!("{who} shares its token with another entry"),
                ));
            }
            seen.push(token.expose());
        }
        Ok(cfg)
    }
}

/// How the gateway signs in to NATS (`[jetstream]`, at most one way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatsAuth {
    /// No credentials.
    None,
    /// `user` and `password`.
    UserPassword {
        /// The user.
        user: String,
        /// Its password.
        password: Secret<String>,
    },
    /// `token`.
    Token(Secret<String>),
    /// `nkey_seed`: an NKey seed (`SU...`), whose public key the server knows.
    NKey(Secret<String>),
    /// `creds_file`: a JWT and NKey seed, as `nsc` writes them.
    CredsFile(PathBuf),
}

/// `[jetstream]`: the region's records live in a JetStream stream that
/// every gateway replica of the region publishes to and reads
/// (PROTOCOL.md 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStream {
    /// Client URLs of the NATS servers (`nats://host:port`, `tls://...`).
    pub servers: Vec<String>,
    /// The credentials.
    pub auth: NatsAuth,
    /// A CA bundle (PEM) the servers' certificates are checked against;
    /// implies TLS.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and key (PEM) for servers that ask for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// The stream's name (default `sonde-<region>`, `.` as `_`).
    pub stream: String,
    /// Its subjects are `<subject_prefix>.<region>.<agent>` (default `sonde`).
    pub subject_prefix: String,
    /// Replicas of the stream: 1 or 3 (default 3).
    pub replicas: usize,
    /// How long the stream keeps a record (default 24 h).
    pub max_age: Duration,
    /// The most bytes it keeps, if bounded (default unbounded).
    pub max_bytes: Option<u64>,
    /// JetStream's duplicate window for message ids (default 2 min).
    pub duplicate_window: Duration,
}

/// The stream name `[jetstream]` gets without `stream`.
pub fn default_stream_name(region: &str) -> String {
    format!("sonde-{}", region.replace('.', "_"))
}

/// Whether `s` may name a stream or be a subject token: not empty, no
/// whitespace, `.`, `*`, `>`, `/` or `\\`.
fn is_nats_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '.' | '*' | '>' | '/' | '\\'))
}

fn jetstream(
    raw: RawJetStream,
    region: Option<&str>,
    host: &dyn Host,
    invalid: &impl Fn(String, String) -> ConfigErrors,
) -> Result<JetStream, ConfigErrors> {
    let key = |k: &str| format!("jetstream.{k}");
    let Some(region) = region else {
        return Err(invalid(
            "region".into(),
            "required with [jetstream]: every replica of a region names the same one".into(),
        ));
    };
    if raw.servers.is_empty() {
        return Err(invalid(
            key("servers"),
            "must list at least one server such as \"nats://127.0.0.1:4222\"".into(),
        ));
    }
    for (i, url) in raw.servers.iter().enumerate() {
        let scheme_ok = ["nats://", "tls://"].iter().any(|p| url.starts_with(p));
        let rest = url.split_once("://").map_or("", |(_, r)| r);
        let parses = url.parse::<async_nats::ServerAddr>().is_ok();
        if !scheme_ok || rest.is_empty() || rest.contains('/') || !parses {
            return Err(invalid(
                format!("jetstream.servers[{i}]"),
                format!("{url:?} is not a NATS URL such as \"nats://10.0.0.5:4222\""),
            ));
        }
    }
    let stream = raw.stream.unwrap_or_else(|| default_stream_name(region));
    if !is_nats_token(&stream) {
        return Err(invalid(
            key("stream"),
            format!("{stream:?} cannot name a stream (no spaces, `.`, `*`, `>`, `/`)"),
        ));
    }
    let subject_prefix = raw.subject_prefix.unwrap_or_else(|| "sonde".into());
    if !subject_prefix.split('.').all(is_nats_token) {
        return Err(invalid(
            key("subject_prefix"),
            format!(
                "{subject_prefix:?} is not a subject prefix such as \"sonde\" or \"acme.sonde\""
            ),
        ));
    }
    let replicas = raw.replicas.unwrap_or(3);
    if !matches!(replicas, 1 | 3) {
        return Err(invalid(
            key("replicas"),
            format!("{replicas}: must be 1 or 3"),
        ));
    }
    let max_age = match raw.max_age {
        Some(t) => duration(&t, "jetstream.max_age", invalid)?,
        None => Duration::from_secs(86_400),
    };
    let duplicate_window = match raw.duplicate_window {
        Some(t) => duration(&t, "jetstream.duplicate_window", invalid)?,
        None => Duration::from_secs(120),
    };
    if duplicate_window > max_age {
        return Err(invalid(
            key("duplicate_window"),
            "must not be longer than max_age".into(),
        ));
    }
    if raw.max_bytes == Some(0) {
        return Err(invalid(key("max_bytes"), "must be at least 1".into()));
    }
    let secret = |r: &RawToken, k: &str| r.resolve(host).map_err(|m| invalid(key(k), m));
    let ways = [
        raw.user.is_some() || raw.password.is_some(),
        raw.token.is_some(),
        raw.nkey_seed.is_some(),
        raw.creds_file.is_some(),
    ];
    if ways.iter().filter(|w| **w).count() > 1 {
        return Err(invalid(
            key("user"),
            "give one way to sign in: user and password, token, nkey_seed or creds_file".into(),
        ));
    }
    let auth = match (raw.user, raw.password) {
        (Some(user), Some(p)) => NatsAuth::UserPassword {
            user,
            password: secret(&p, "password")?,
        },
        (Some(_), None) => return Err(invalid(key("password"), "user needs a password".into())),
        (None, Some(_)) => return Err(invalid(key("user"), "password needs a user".into())),
        (None, None) => match (raw.token, raw.nkey_seed, raw.creds_file) {
            (Some(t), _, _) => NatsAuth::Token(secret(&t, "token")?),
            (_, Some(s), _) => {
                let seed = secret(&s, "nkey_seed")?;
                if !seed.expose().trim().starts_with("SU") {
                    return Err(invalid(
                        key("nkey_seed"),
                        "is not a user NKey seed (it starts with SU)".into(),
                    ));
                }
                NatsAuth::NKey(seed)
            }
            (_, _, Some(path)) => NatsAuth::CredsFile(path),
            _ => NatsAuth::None,
        },
    };
    let client_cert = match (raw.cert_file, raw.key_file) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(invalid(
                key("key_file"),
                "cert_file needs a key_file".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                key("cert_file"),
                "key_file needs a cert_file".into(),
            ));
        }
    };
    Ok(JetStream {
        servers: raw.servers,
        auth,
        ca_file: raw.ca_file,
        client_cert,
        stream,
        subject_prefix,
        replicas,
        max_age,
        max_bytes: raw.max_bytes,
        duplicate_window,
    })
}

fn positive(
    n: usize,
    field: &str,
    invalid: &impl Fn(String, String) -> ConfigErrors,
) -> Result<usize, ConfigErrors> {
    if n == 0 {
        return Err(invalid(field.into(), "must be at least 1".into()));
    }
    Ok(n)
}

fn duration(
    text: &str,
    field: &str,
    invalid: &impl Fn(String, String) -> ConfigErrors,
) -> Result<Duration, ConfigErrors> {
    match config::duration::parse(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(invalid(field.into(), "must be longer than 0".into())),
        Err(e) => Err(invalid(field.into(), e.to_string())),
    }
}

/// The signature algorithms `[[oidc]] algorithms` may name: asymmetric only.
const OIDC_ALGORITHMS: [(&str, jsonwebtoken::Algorithm); 9] = {
    use jsonwebtoken::Algorithm::*;
    [
        ("RS256", RS256),
        ("RS384", RS384),
        ("RS512", RS512),
        ("PS256", PS256),
        ("PS384", PS384),
        ("PS512", PS512),
        ("ES256", ES256),
        ("ES384", ES384),
        ("EdDSA", EdDSA),
    ]
};

fn oidc_issuer(
    o: RawOidc,
    at: &str,
    invalid: &impl Fn(String, String) -> ConfigErrors,
) -> Result<OidcIssuer, ConfigErrors> {
    use crate::oidc::claims::{Grant, Grantee, ScopeRules};
    let key = |k: &str| format!("{at}.{k}");
    if o.issuer.trim().is_empty() {
        return Err(invalid(key("issuer"), "must not be empty".into()));
    }
    let audiences = match o.audience {
        OneOrMany::One(a) => vec![a],
        OneOrMany::Many(list) => list,
    };
    if audiences.is_empty() || audiences.iter().any(|a| a.is_empty()) {
        return Err(invalid(
            key("audience"),
            "give the client id(s) tokens must be issued to".into(),
        ));
    }
    let keys = match (o.jwks_url, o.jwks_file) {
        (Some(url), None) => {
            crate::oidc::fetch::check_url(&url)
                .map_err(|e| invalid(key("jwks_url"), e.to_string()))?;
            JwksSource::Url(url)
        }
        (None, Some(path)) => JwksSource::File(path),
        _ => {
            return Err(invalid(
                key("jwks_url"),
                "give exactly one of jwks_url or jwks_file".into(),
            ));
        }
    };
    let refresh = match o.jwks_refresh {
        Some(t) => duration(&t, &key("jwks_refresh"), invalid)?,
        None => DEFAULT_JWKS_REFRESH,
    };
    if refresh < crate::oidc::MIN_REFETCH {
        return Err(invalid(
            key("jwks_refresh"),
            format!("must be at least {}s", crate::oidc::MIN_REFETCH.as_secs()),
        ));
    }
    let leeway = match o.leeway {
        Some(t) => {
            config::duration::parse(&t).map_err(|e| invalid(key("leeway"), e.to_string()))?
        }
        None => DEFAULT_LEEWAY,
    };
    if leeway > MAX_LEEWAY {
        return Err(invalid(
            key("leeway"),
            format!("must be at most {}s", MAX_LEEWAY.as_secs()),
        ));
    }
    let algorithms = match o.algorithms {
        None => vec![
            jsonwebtoken::Algorithm::RS256,
            jsonwebtoken::Algorithm::ES256,
            jsonwebtoken::Algorithm::EdDSA,
        ],
        Some(names) => {
            let mut out = Vec::new();
            for name in &names {
                let Some((_, alg)) = OIDC_ALGORITHMS.iter().find(|(n, _)| n == name) else {
                    let known: Vec<_> = OIDC_ALGORITHMS.iter().map(|(n, _)| *n).collect();
                    return Err(invalid(
                        key("algorithms"),
                        format!("{name:?} is not one of {}", known.join(", ")),
                    ));
                };
                out.push(*alg);
            }
            if out.is_empty() {
                return Err(invalid(key("algorithms"), "must not be empty".into()));
            }
            out
        }
    };
    let mut grants = Vec::new();
    for (j, g) in o.grant.into_iter().enumerate() {
        let grantee = match (g.subject, g.group) {
            (Some(s), None) if !s.is_empty() => Grantee::Subject(s),
            (None, Some(group)) if !group.is_empty() => Grantee::Group(group),
            _ => {
                return Err(invalid(
                    key(&format!("grant[{j}]")),
                    "give exactly one of subject or group".into(),
                ));
            }
        };
        grants.push(Grant {
            grantee,
            checks: g.checks.unwrap_or_default(),
            agents: g.agents.unwrap_or_default(),
        });
    }
    if o.scope_claim.is_none() && grants.is_empty() {
        return Err(invalid(
            key("scope_claim"),
            "set scope_claim or at least one [[oidc.grant]]: otherwise no token sees anything"
                .into(),
        ));
    }
    Ok(OidcIssuer {
        issuer: o.issuer,
        audiences,
        keys,
        ca_file: o.ca_file,
        refresh,
        leeway,
        algorithms,
        rules: ScopeRules {
            scope_claim: o.scope_claim,
            groups_claim: o.groups_claim.unwrap_or_else(|| "groups".into()),
            grants,
        },
    })
}

/// A scope token of RFC 6749 3.3: printable ASCII but space, `"` and `\`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

/// `[ui.oidc]`, checked against the `[[oidc]]` issuers already parsed.
fn ui_oidc_config(
    o: RawUiOidc,
    issuers: &[OidcIssuer],
    invalid: &impl Fn(String, String) -> ConfigErrors,
) -> Result<UiOidc, ConfigErrors> {
    let key = |k: &str| format!("ui.oidc.{k}");
    let origin = issuer_origin(&o.issuer).map_err(|why| invalid(key("issuer"), why))?;
    let Some((i, verifier)) = issuers
        .iter()
        .enumerate()
        .find(|(_, v)| v.issuer == o.issuer)
    else {
        let known: Vec<String> = issuers.iter().map(|v| format!("{:?}", v.issuer)).collect();
        let known = match known.is_empty() {
            true => "none is configured".to_owned(),
            false => format!("configured: {}", known.join(", ")),
        };
        return Err(invalid(
            key("issuer"),
            format!(
                "{:?} is not the issuer of an [[oidc]] entry ({known}): the gateway must \
                 verify the ID tokens the page signs in with",
                o.issuer
            ),
        ));
    };
    if o.client_id.is_empty() || o.client_id.chars().any(char::is_control) {
        return Err(invalid(
            key("client_id"),
            "give the page's client id at the provider".into(),
        ));
    }
    if !verifier.audiences.contains(&o.client_id) {
        return Err(invalid(
            key("client_id"),
            format!(
                "{:?} is not in oidc[{i}].audience: the ID token's aud is the client id, \
                 so the gateway would refuse it; add it there",
                o.client_id
            ),
        ));
    }
    let scopes = o.scopes.unwrap_or_else(|| vec!["openid".into()]);
    if let Some(bad) = scopes.iter().find(|s| !is_scope_token(s)) {
        return Err(invalid(
            key("scopes"),
            format!("{bad:?} is not a scope (printable ASCII, no space, quote or backslash)"),
        ));
    }
    if !scopes.iter().any(|s| s == "openid") {
        return Err(invalid(
            key("scopes"),
            "must contain \"openid\": the page signs in with the ID token".into(),
        ));
    }
    let connect_origins = o.connect_origins.unwrap_or_default();
    for (j, c) in connect_origins.iter().enumerate() {
        if !is_origin(c) {
            return Err(invalid(
                format!("ui.oidc.connect_origins[{j}]"),
                format!("{c:?} is not an origin such as \"https://oauth2.example.com\""),
            ));
        }
    }
    Ok(UiOidc {
        issuer: o.issuer,
        issuer_origin: origin,
        client_id: o.client_id,
        scopes,
        connect_origins,
    })
}

/// The origin of an issuer URL the page fetches from: `https` (or `http`
/// to loopback), no user, query or fragment.
fn issuer_origin(issuer: &str) -> Result<String, String> {
    let uri = crate::oidc::fetch::check_url(issuer)
        .map_err(|_| format!("`{issuer}` is not an https URL (http only to loopback)"))?;
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    if authority.contains('@') || uri.query().is_some() || issuer.contains('#') {
        return Err(format!(
            "`{issuer}`: an issuer has no user, query or fragment"
        ));
    }
    let origin = format!("{}://{authority}", uri.scheme_str().unwrap_or_default());
    if !is_origin(&origin) {
        return Err(format!("`{issuer}` has no origin a page can fetch from"));
    }
    Ok(origin)
}

/// 1-based line and column of byte `at` in `text`.
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::Path;

    struct FakeHost(HashMap<String, String>);

    impl Host for FakeHost {
        fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
            self.0
                .get(&path.display().to_string())
                .map(|v| v.clone().into_bytes())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        }
        fn var(&self, name: &str) -> Result<String, std::env::VarError> {
            self.0
                .get(name)
                .cloned()
                .ok_or(std::env::VarError::NotPresent)
        }
    }

    fn host() -> FakeHost {
        FakeHost(HashMap::from([
            ("A_TOKEN".to_owned(), "agent-secret".to_owned()),
            ("/r.token".to_owned(), "reader-secret\n".to_owned()),
        ]))
    }

    const GOOD: &str = r#"
data_dir = "/var/lib/g"
[ring]
max_age = "1m"
[[agent]]
id = "eu-1"
token = { env = "A_TOKEN" }
[[reader]]
name = "dash"
token = { file = "/r.token" }
checks = ["api-*"]
"#;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for ok in [
            "https://status.example.com",
            "http://127.0.0.1:8080",
            "http://[::1]:3000",
            "http://[::1]",
        ] {
            assert!(is_origin(ok), "{ok}");
        }
        for bad in [
            "status.example.com",
            "https://x.com/",
            "ftp://x.com",
            "https://",
            "https://x.com:99999",
            "https://x.com:",
            "*.example.com",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }

    #[test]
    fn name_region_and_cors_are_checked() {
        let parse = |text: &str| GatewayConfig::parse(text, "g.toml", &host());
        let cfg = parse(
            "data_dir = \"/d\"\nname = \"gw-1\"\nregion = \"eu-west\"\n\
             [cors]\nallow_origins = [\"https://a.example\"]\nallow_credentials = true\n",
        )
        .unwrap();
        assert_eq!(cfg.identity.name, "gw-1");
        assert_eq!(cfg.identity.region.as_deref(), Some("eu-west"));
        assert_eq!(
            cfg.cors.allow_origins,
            vec!["https://a.example".to_string()]
        );
        assert!(cfg.cors.allow_credentials);
        let defaults = parse("data_dir = \"/d\"\n").unwrap();
        assert_eq!(defaults.identity.name, "gateway");
        assert!(defaults.cors.allow_origins.is_empty(), "off by default");
        let err = |text: &str| parse(text).unwrap_err().to_string();
        assert!(err("data_dir = \"/d\"\nregion = \"eu west\"\n").contains("region"));
        let bad = err("data_dir = \"/d\"\n[cors]\nallow_origins = [\"a.example\"]\n");
        assert!(bad.contains("cors.allow_origins[0]"), "{bad}");
        let star = "data_dir = \"/d\"\n[cors]\nallow_origins = [\"*\"]\nallow_credentials = true\n";
        assert!(err(star).contains("cors.allow_credentials"));
        let mixed =
            err("data_dir = \"/d\"\n[cors]\nallow_origins = [\"*\", \"https://a.example\"]\n");
        assert!(mixed.contains("cors.allow_origins[0]"), "{mixed}");
    }

    #[test]
    fn oidc_issuers_are_checked() {
        let parse = |extra: &str| {
            GatewayConfig::parse(&format!("data_dir = \"/d\"\n{extra}"), "g.toml", &host())
        };
        let cfg = parse(
            "[[oidc]]\nissuer = \"https://idp.example\"\naudience = \"sonde\"\n\
             jwks_url = \"https://idp.example/jwks\"\nscope_claim = \"sonde\"\n",
        )
        .unwrap();
        let o = &cfg.oidc[0];
        assert_eq!(o.audiences, ["sonde"]);
        assert_eq!(
            (o.refresh, o.leeway),
            (DEFAULT_JWKS_REFRESH, DEFAULT_LEEWAY)
        );
        assert_eq!(o.algorithms.len(), 3);
        let cfg = parse(
            "[[oidc]]\nissuer = \"https://idp.example\"\naudience = [\"a\", \"b\"]\n\
             jwks_file = \"/etc/jwks.json\"\nalgorithms = [\"PS256\"]\nleeway = \"5s\"\n\
             [[oidc.grant]]\ngroup = \"sre\"\nchecks = [\"api-*\"]\n",
        )
        .unwrap();
        assert_eq!(cfg.oidc[0].keys, JwksSource::File("/etc/jwks.json".into()));
        assert_eq!(cfg.oidc[0].algorithms, [jsonwebtoken::Algorithm::PS256]);
        let err = |extra: &str| parse(extra).unwrap_err().to_string();
        let base = "[[oidc]]\nissuer = \"https://i\"\naudience = \"s\"\nscope_claim = \"c\"\n";
        for (extra, key, says) in [
            ("", "oidc[0].jwks_url", "exactly one"),
            (
                "jwks_url = \"http://idp.example/jwks\"\n",
                "oidc[0].jwks_url",
                "https",
            ),
            (
                "jwks_url = \"https://i/j\"\nalgorithms = [\"HS256\"]\n",
                "oidc[0].algorithms",
                "HS256",
            ),
            (
                "jwks_url = \"https://i/j\"\nleeway = \"1h\"\n",
                "oidc[0].leeway",
                "at most",
            ),
            (
                "jwks_url = \"https://i/j\"\njwks_refresh = \"1s\"\n",
                "oidc[0].jwks_refresh",
                "at least",
            ),
            (
                "jwks_url = \"https://i/j\"\n[[oidc.grant]]\nchecks = []\n",
                "oidc[0].grant[0]",
                "subject or group",
            ),
        ] {
            let e = err(&format!("{base}{extra}"));
            assert!(e.contains(key) && e.contains(says), "{extra}: {e}");
        }
        let no_scope =
            err("[[oidc]]\nissuer = \"https://i\"\naudience = \"s\"\njwks_file = \"/j\"\n");
        assert!(no_scope.contains("oidc[0].scope_claim"), "{no_scope}");
        let twice = format!("{base}jwks_file = \"/j\"\n{base}jwks_file = \"/j\"\n");
        assert!(err(&twice).contains("listed twice"));
    }

    #[test]
    fn parses_with_defaults_and_reads_tokens() {
        let cfg = GatewayConfig::parse(GOOD, "g.toml", &host()).unwrap();
        assert_eq!(cfg.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(cfg.ring.max_age, Duration::from_secs(60));
        assert_eq!(cfg.ring.max_records, 1_000_000);
        assert_eq!(cfg.agents[0].token.expose(), "agent-secret");
        assert_eq!(cfg.reader_tokens[0].token.expose(), "reader-secret");
        assert_eq!(cfg.reader_tokens[0].checks, vec!["api-*".to_owned()]);
        assert!(!format!("{cfg:?}").contains("secret\""), "{cfg:?}");
        assert_eq!(cfg.writer.ack, AckAfter::Durable);
    }

    #[test]
    fn writer_ack_is_durable_or_queued() {
        let text = "data_dir = \"/d\"\n[writer]\nack = \"queued\"\n";
        let cfg = GatewayConfig::parse(text, "g.toml", &host()).unwrap();
        assert_eq!(cfg.writer.ack, AckAfter::Queued);
        let text = "data_dir = \"/d\"\n[writer]\nack = \"sometimes\"\n";
        let err = GatewayConfig::parse(text, "g.toml", &host()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "g.toml: writer.ack: \"sometimes\" (valid: \"durable\" or \"queued\")"
        );
    }

    #[test]
    fn readers_write_timeout_defaults_to_10s_and_is_positive() {
        let cfg = GatewayConfig::parse("data_dir = \"/d\"\n", "g.toml", &host()).unwrap();
        assert_eq!(cfg.readers.write_timeout, DEFAULT_WRITE_TIMEOUT);
        assert_eq!(DEFAULT_WRITE_TIMEOUT, Duration::from_secs(10));
        let text = "data_dir = \"/d\"\n[readers]\nwrite_timeout = \"2s\"\n";
        let cfg = GatewayConfig::parse(text, "g.toml", &host()).unwrap();
        assert_eq!(cfg.readers.write_timeout, Duration::from_secs(2));
        let text = "data_dir = \"/d\"\n[readers]\nwrite_timeout = \"0s\"\n";
        let err = GatewayConfig::parse(text, "g.toml", &host()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "g.toml: readers.write_timeout: must be longer than 0"
        );
    }

    #[test]
    fn writer_retention_is_optional_and_checked() {
        let cfg = GatewayConfig::parse("data_dir = \"/d\"\n", "g.toml", &host()).unwrap();
        assert_eq!(cfg.writer.retain, Retention::default(), "keeps everything");
        let text = "data_dir = \"/d\"\n[writer]\nmax_file_bytes = 4096\nretain_max_bytes = 8192\nretain_max_age = \"7d\"\n";
        let cfg = GatewayConfig::parse(text, "g.toml", &host()).unwrap();
        assert_eq!(
            cfg.writer.retain,
            Retention {
                max_bytes: Some(8192),
                max_age: Some(Duration::from_secs(7 * 86_400)),
            }
        );
        let text = "data_dir = \"/d\"\n[writer]\nmax_file_bytes = 8192\nretain_max_bytes = 4096\n";
        let err = GatewayConfig::parse(text, "g.toml", &host()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "g.toml: writer.retain_max_bytes: 4096 is below max_file_bytes (8192): at least one whole file must fit"
        );
    }

    #[test]
    fn agent_limits_and_admins_are_optional_and_checked() {
        let cfg = GatewayConfig::parse("data_dir = \"/d\"\n", "g.toml", &host()).unwrap();
        assert_eq!(cfg.agent_limits, AgentLimits::DEFAULT);
        assert!(cfg.admins.is_empty(), "no admin: the endpoints are off");
        let text = "data_dir = \"/d\"\n[agent_limits]\nmax_session_skew = \"30s\"\nmax_checks = 3\n\
                    [[admin]]\nname = \"ops\"\ntoken = { env = \"A_TOKEN\" }\n";
        let cfg = GatewayConfig::parse(text, "g.toml", &host()).unwrap();
        assert_eq!(cfg.agent_limits.max_session_skew, Duration::from_secs(30));
        assert_eq!(cfg.agent_limits.max_checks, 3);
        assert_eq!(cfg.admins[0].name, "ops");
        let text = "data_dir = \"/d\"\n[agent_limits]\nmax_checks = 0\n";
        let err = GatewayConfig::parse(text, "g.toml", &host()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "g.toml: agent_limits.max_checks: must be at least 1"
        );
        // An admin token is not also an agent's.
        let text = "data_dir = \"/d\"\n[[agent]]\nid = \"a\"\ntoken = { env = \"A_TOKEN\" }\n\
                    [[admin]]\nname = \"ops\"\ntoken = { env = \"A_TOKEN\" }\n";
        let err = GatewayConfig::parse(text, "g.toml", &host()).unwrap_err();
        assert!(
            err.to_string().contains("admin `ops` shares its token"),
            "{err}"
        );
    }

    #[test]
    fn server_bounds_default_and_are_checked() {
        let cfg = GatewayConfig::parse("data_dir = \"/d\"\n", "g.toml", &host()).unwrap();
        assert_eq!(cfg.server, DEFAULT_SERVER_LIMITS);
        let text = "data_dir = \"/d\"\n[server]\nmax_connections = 100\n\
                    header_read_timeout = \"5s\"\nidle_timeout = \"2m\"\n";
        let cfg = GatewayConfig::parse(text, "g.toml", &host()).unwrap();
        assert_eq!(
            cfg.server,
            listen::Limits {
                max_connections: 100,
                header_read_timeout: Duration::from_secs(5),
                idle_timeout: Duration::from_secs(120),
                fd_budget: listen::FdBudget::AllBut(FD_RESERVE),
            }
        );
        let text = "data_dir = \"/d\"\n[server]\nmax_connections = 0\n";
        let err = GatewayConfig::parse(text, "g.toml", &host()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "g.toml: server.max_connections: must be at least 1"
        );
    }

    #[test]
    fn ui_regions_are_named_origins_at_most_ten() {
        let cfg = GatewayConfig::parse(
            "data_dir = \"/d\"\n[ui]\nregions = [\
             { name = \"eu-west\", url = \"https://gw-eu.example:7700/\" },\
             { name = \"us-east\", url = \"http://127.0.0.1:7701\" }]\n",
            "g.toml",
            &host(),
        )
        .unwrap();
        assert!(cfg.ui.enabled, "on by default");
        assert_eq!(cfg.ui.regions[0].url, "https://gw-eu.example:7700");
        assert_eq!(cfg.ui.regions[1].name, "us-east");
        let err = |text: &str| {
            GatewayConfig::parse(text, "g.toml", &host())
                .unwrap_err()
                .to_string()
        };
        let bad_url =
            err("data_dir = \"/d\"\n[ui]\nregions = [{ name = \"a\", url = \"gw.example\" }]\n");
        assert!(
            bad_url.starts_with("g.toml: ui.regions[0].url: "),
            "{bad_url}"
        );
        let twice = err(
            "data_dir = \"/d\"\n[ui]\nregions = [{ name = \"a\", url = \"http://a\" }, { name = \"a\", url = \"http://b\" }]\n",
        );
        assert!(
            twice.contains("ui.regions[1].name: region `a` is listed twice"),
            "{twice}"
        );
        let many: Vec<String> = (0..11)
            .map(|i| format!("{{ name = \"r{i}\", url = \"http://h{i}\" }}"))
            .collect();
        let eleven = err(&format!(
            "data_dir = \"/d\"\n[ui]\nregions = [{}]\n",
            many.join(", ")
        ));
        assert!(
            eleven.contains("11 regions; the page reads at most 10"),
            "{eleven}"
        );
        let off = GatewayConfig::parse(
            "data_dir = \"/d\"\n[ui]\nenabled = false\n",
            "g.toml",
            &host(),
        )
        .unwrap();
        assert!(!off.ui.enabled);
    }

    #[test]
    fn ui_oidc_names_a_verified_issuer_and_an_audience_as_client() {
        let verify = "[[oidc]]\nissuer = \"https://login.example/realms/x\"\n\
                      audience = [\"sonde-page\", \"cli\"]\n\
                      jwks_url = \"https://login.example/jwks\"\nscope_claim = \"sonde\"\n";
        let parse = |ui: &str| {
            GatewayConfig::parse(
                &format!("data_dir = \"/d\"\n[ui.oidc]\n{ui}{verify}"),
                "g.toml",
                &host(),
            )
        };
        let cfg =
            parse("issuer = \"https://login.example/realms/x\"\nclient_id = \"sonde-page\"\n")
                .unwrap();
        assert_eq!(
            cfg.ui.oidc,
            Some(UiOidc {
                issuer: "https://login.example/realms/x".into(),
                issuer_origin: "https://login.example".into(),
                client_id: "sonde-page".into(),
                scopes: vec!["openid".into()],
                connect_origins: vec![],
            })
        );
        let cfg = parse(
            "issuer = \"https://login.example/realms/x\"\nclient_id = \"cli\"\n\
             scopes = [\"openid\", \"groups\"]\nconnect_origins = [\"https://token.example\"]\n",
        )
        .unwrap();
        let o = cfg.ui.oidc.unwrap();
        assert_eq!(o.scopes, ["openid", "groups"]);
        assert_eq!(o.connect_origins, ["https://token.example"]);
        assert_eq!(
            GatewayConfig::parse("data_dir = \"/d\"\n", "g.toml", &host())
                .unwrap()
                .ui
                .oidc,
            None,
            "off by default: the page asks for a reader token"
        );
        let err = |ui: &str| parse(ui).unwrap_err().to_string();
        let good = "issuer = \"https://login.example/realms/x\"\n";
        for (ui, says) in [
            (
                "issuer = \"https://other.example\"\nclient_id = \"sonde-page\"\n".to_owned(),
                "ui.oidc.issuer: \"https://other.example\" is not the issuer of an [[oidc]] entry \
                 (configured: \"https://login.example/realms/x\")",
            ),
            (
                "issuer = \"https://login.example/realms/x/\"\nclient_id = \"sonde-page\"\n"
                    .to_owned(),
                "ui.oidc.issuer: \"https://login.example/realms/x/\" is not the issuer",
            ),
            (
                "issuer = \"http://login.example\"\nclient_id = \"sonde-page\"\n".to_owned(),
                "ui.oidc.issuer: `http://login.example` is not an https URL",
            ),
            (
                "issuer = \"https://login.example?x=1\"\nclient_id = \"sonde-page\"\n".to_owned(),
                "ui.oidc.issuer: `https://login.example?x=1`: an issuer has no user, query",
            ),
            (
                format!("{good}client_id = \"\"\n"),
                "ui.oidc.client_id: give the page's client id",
            ),
            (
                format!("{good}client_id = \"web\"\n"),
                "ui.oidc.client_id: \"web\" is not in oidc[0].audience: the ID token's aud is the client id",
            ),
            (
                format!("{good}client_id = \"cli\"\nscopes = [\"profile\"]\n"),
                "ui.oidc.scopes: must contain \"openid\"",
            ),
            (
                format!("{good}client_id = \"cli\"\nscopes = [\"openid email\"]\n"),
                "ui.oidc.scopes: \"openid email\" is not a scope",
            ),
            (
                format!("{good}client_id = \"cli\"\nconnect_origins = [\"token.example\"]\n"),
                "ui.oidc.connect_origins[0]: \"token.example\" is not an origin",
            ),
            (
                format!("{good}client_id = \"cli\"\nredirect = \"/\"\n"),
                "redirect",
            ),
        ] {
            let e = err(&ui);
            assert!(e.contains(says), "{ui}: {e}");
        }
        let none = GatewayConfig::parse(
            "data_dir = \"/d\"\n[ui.oidc]\nissuer = \"https://i\"\nclient_id = \"c\"\n",
            "g.toml",
            &host(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            none.contains("ui.oidc.issuer: \"https://i\" is not the issuer of an [[oidc]] entry (none is configured)"),
            "{none}"
        );
        // Loopback may be cleartext, as for jwks_url.
        let local = GatewayConfig::parse(
            "data_dir = \"/d\"\n[ui.oidc]\nissuer = \"http://127.0.0.1:9000\"\nclient_id = \"c\"\n\
             [[oidc]]\nissuer = \"http://127.0.0.1:9000\"\naudience = \"c\"\n\
             jwks_url = \"http://127.0.0.1:9000/jwks\"\nscope_claim = \"sonde\"\n",
            "g.toml",
            &host(),
        )
        .unwrap();
        assert_eq!(
            local.ui.oidc.map(|o| o.issuer_origin).as_deref(),
            Some("http://127.0.0.1:9000")
        );
    }

    #[test]
    fn agent_ids_obey_the_name_grammar() {
        for id in ["", "a b", "eu\u{202e}1", &"x".repeat(65)] {
            let text = format!(
                "data_dir = \"/d\"\n[[agent]]\nid = \"{id}\"\ntoken = {{ env = \"A_TOKEN\" }}\n"
            );
            let err = GatewayConfig::parse(&text, "g.toml", &host()).unwrap_err();
            assert!(
                err.to_string().starts_with("g.toml: agent[0].id: bad id"),
                "{err}"
            );
        }
    }

    #[test]
    fn jetstream_defaults_follow_the_region_and_errors_name_their_key() {
        let base = "data_dir = \"/d\"\nregion = \"eu.west\"\n[jetstream]\nservers = [\"nats://127.0.0.1:4222\", \"tls://10.0.0.2:4222\"]\n";
        let cfg = GatewayConfig::parse(base, "g.toml", &host()).unwrap();
        let js = cfg.jetstream.unwrap();
        assert_eq!(js.stream, "sonde-eu_west");
        assert_eq!(js.subject_prefix, "sonde");
        assert_eq!(js.replicas, 3);
        assert_eq!(js.max_age, Duration::from_secs(86_400));
        assert_eq!(js.duplicate_window, Duration::from_secs(120));
        assert_eq!((js.max_bytes, js.auth), (None, NatsAuth::None));
        let with = |extra: &str| GatewayConfig::parse(&format!("{base}{extra}"), "g.toml", &host());
        let cfg = with(
            "user = \"gw\"\npassword = { env = \"A_TOKEN\" }\nreplicas = 1\nmax_bytes = 1048576\n",
        )
        .unwrap();
        let js = cfg.jetstream.unwrap();
        assert!(matches!(js.auth, NatsAuth::UserPassword { ref user, .. } if user == "gw"));
        assert_eq!((js.replicas, js.max_bytes), (1, Some(1 << 20)));
        let refused = |extra: &str, starts: &str| {
            let err = with(extra).unwrap_err().to_string();
            assert!(err.starts_with(starts), "{extra:?}: {err}");
        };
        refused(
            "replicas = 2\n",
            "g.toml: jetstream.replicas: 2: must be 1 or 3",
        );
        refused(
            "stream = \"a.b\"\n",
            "g.toml: jetstream.stream: \"a.b\" cannot name a stream",
        );
        refused(
            "subject_prefix = \"a.>\"\n",
            "g.toml: jetstream.subject_prefix:",
        );
        refused(
            "duplicate_window = \"2d\"\n",
            "g.toml: jetstream.duplicate_window: must not be longer than max_age",
        );
        refused(
            "user = \"gw\"\n",
            "g.toml: jetstream.password: user needs a password",
        );
        refused(
            "token = { env = \"A_TOKEN\" }\ncreds_file = \"/c\"\n",
            "g.toml: jetstream.user: give one way to sign in",
        );
        refused(
            "nkey_seed = { env = \"A_TOKEN\" }\n",
            "g.toml: jetstream.nkey_seed: is not a user NKey seed",
        );
        refused(
            "token = { env = \"NOPE\" }\n",
            "g.toml: jetstream.token: environment variable NOPE is not set",
        );
        refused(
            "cert_file = \"/c.pem\"\n",
            "g.toml: jetstream.key_file: cert_file needs a key_file",
        );
        refused(
            "max_bytes = 0\n",
            "g.toml: jetstream.max_bytes: must be at least 1",
        );
        let no_region = "data_dir = \"/d\"\n[jetstream]\nservers = [\"nats://127.0.0.1:4222\"]\n";
        let err = GatewayConfig::parse(no_region, "g.toml", &host()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("g.toml: region: required with [jetstream]"),
            "{err}"
        );
        for bad in [
            "[]",
            "[\"http://n:4222\"]",
            "[\"nats://\"]",
            "[\"nats://n:4222/x\"]",
        ] {
            let text =
                format!("data_dir = \"/d\"\nregion = \"eu\"\n[jetstream]\nservers = {bad}\n");
            let err = GatewayConfig::parse(&text, "g.toml", &host()).unwrap_err();
            assert!(
                err.to_string().starts_with("g.toml: jetstream.servers"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn unknown_key_has_line_and_column() {
        let text = "data_dir = \"/d\"\n[ring]\nmax_agee = \"1m\"\n";
        let err = GatewayConfig::parse(text, "g.toml", &host()).unwrap_err();
        assert!(err.to_string().starts_with("g.toml:3:1:"), "{err}");
        assert!(err.to_string().contains("max_agee"), "{err}");
    }

    #[test]
    fn refuses_cleartext_off_loopback_missing_env_and_shared_tokens() {
        let text = "listen = \"0.0.0.0:7700\"\ndata_dir = \"/d\"\n";
        let err = GatewayConfig::parse(text, "g.toml", &host()).unwrap_err();
        assert!(err.to_string().contains("[tls]"), "{err}");

        let text = "data_dir = \"/d\"\n[[agent]]\nid = \"a\"\ntoken = { env = \"NOPE\" }\n";
        let err = GatewayConfig::parse(text, "g.toml", &host()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "g.toml: agent[0].token: environment variable NOPE is not set"
        );

        let text = "data_dir = \"/d\"\n[[agent]]\nid = \"a\"\ntoken = { env = \"A_TOKEN\" }\n\
                    [[agent]]\nid = \"b\"\ntoken = { env = \"A_TOKEN\" }\n";
        let err = GatewayConfig::parse(text, "g.toml", &host()).unwrap_err();
        assert!(err.to_string().contains("shares its token"), "{err}");
        assert!(!err.to_string().contains("agent-secret"), "{err}");
    }
}
