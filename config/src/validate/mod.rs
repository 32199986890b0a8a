//! Stage two: raw structs → a validated [`Plan`], collecting every error.
//!
//! Each value is checked where it is written, so an error points at the line
//! that needs changing. Files the configuration names (CA, certificate, key,
//! secret files) and secret environment variables are read through [`Host`];
//! nothing here opens a socket or resolves a name.

mod check;
mod sinks;
mod values;

pub use values::is_loopback;

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::error::{Collector, ErrorKind, LineIndex};
use crate::pem::{self, PemError};
use crate::plan::{Agent, Certificates, Plan, PrivateKey, Prometheus};
use crate::raw::{RawAgent, RawConfig, RawPrometheus, SecretRef};
use crate::secret::{Host, Secret, SecretSource, trim_newline};

/// Built-in defaults, documented in `examples/sonde.toml`.
pub mod defaults {
    use std::time::Duration;

    /// `agent.id` when none is given (and no gateway needs a real one).
    pub const AGENT_ID: &str = "sonde";
    /// `agent.concurrency`.
    pub const CONCURRENCY: usize = 256;
    /// `agent.state_dir`.
    pub const STATE_DIR: &str = "/var/lib/sonde";
    /// `interval`.
    pub const INTERVAL: Duration = Duration::from_secs(30);
    /// `timeout` cap; when not set, the timeout is this or half the interval,
    /// whichever is shorter.
    pub const TIMEOUT: Duration = Duration::from_secs(10);
    /// `method`.
    pub const METHOD: &str = "GET";
    /// `expect_status`: 2xx and 3xx.
    pub const EXPECT_STATUS: std::ops::RangeInclusive<u16> = 200..=399;
    /// `resolution_delay`: RFC 8305's recommended Resolution Delay.
    pub const RESOLUTION_DELAY: Duration = Duration::from_millis(50);
    /// `max_body_bytes`: 1 MiB.
    pub const MAX_BODY_BYTES: u64 = 1 << 20;
    /// `sinks.file.segment_max_bytes`: 64 MiB.
    pub const SEGMENT_MAX_BYTES: u64 = 64 << 20;
    /// `sinks.file.segment_max_age`.
    pub const SEGMENT_MAX_AGE: Duration = Duration::from_secs(3600);
    /// `sinks.file.retention_max_bytes`: 1 GiB.
    pub const RETENTION_MAX_BYTES: u64 = 1 << 30;
    /// `sinks.file.retention_max_age`: 7 days.
    pub const RETENTION_MAX_AGE: Duration = Duration::from_secs(7 * 86_400);
    /// `sinks.file.fsync`.
    pub const FSYNC_EVERY: Duration = Duration::from_secs(1);
    /// `sinks.gateway.spool_max_bytes`: 256 MiB.
    pub const SPOOL_MAX_BYTES: u64 = 256 << 20;
}

/// Shared state of one validation run.
pub(crate) struct Ctx<'a> {
    pub errors: Collector,
    pub host: &'a dyn Host,
    pub lines: LineIndex<'a>,
    /// Refuse a plan without an enabled check (see [`crate::Options`]).
    pub require_checks: bool,
}

impl Ctx<'_> {
    /// Records an error at `span` under `key`.
    pub fn error(&mut self, span: Range<usize>, key: &str, kind: ErrorKind) {
        self.errors.push(span, key, kind);
    }

    /// Checks a spanned value with `f`; on failure records the error and
    /// returns `None`.
    pub fn check<T, U>(
        &mut self,
        v: &Spanned<T>,
        key: &str,
        f: impl FnOnce(&T) -> Result<U, ErrorKind>,
    ) -> Option<U> {
        match f(v.get_ref()) {
            Ok(u) => Some(u),
            Err(kind) => {
                self.error(v.span(), key, kind);
                None
            }
        }
    }

    /// Reads a file the configuration points at, as `key` names it.
    fn read(&mut self, span: Range<usize>, key: &str, path: &str) -> Option<Vec<u8>> {
        if path.is_empty() {
            self.error(
                span,
                key,
                ErrorKind::Invalid {
                    message: "empty path".into(),
                    valid: "a path to a readable file".into(),
                },
            );
            return None;
        }
        match self.host.read_file(Path::new(path)) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                let reason = io_reason(&e);
                self.error(
                    span,
                    key,
                    ErrorKind::Unreadable {
                        path: path.to_owned(),
                        reason,
                    },
                );
                None
            }
        }
    }

    /// Reads a PEM file and decodes it with `decode` (see [`crate::pem`]).
    fn pem<T>(
        &mut self,
        v: &Spanned<String>,
        key: &str,
        decode: impl FnOnce(&[u8]) -> Result<T, PemError>,
    ) -> Option<T> {
        let bytes = self.read(v.span(), key, v.get_ref())?;
        match decode(&bytes) {
            Ok(t) => Some(t),
            Err(e) => {
                let kind = ErrorKind::BadFile {
                    path: v.get_ref().clone(),
                    problem: e.to_string(),
                    valid: e.valid(),
                };
                self.error(v.span(), key, kind);
                None
            }
        }
    }

    /// Reads a PEM file of certificates (a client certificate chain).
    pub fn certificates(&mut self, v: &Spanned<String>, key: &str) -> Option<Certificates> {
        let certs = self.pem(v, key, pem::certificates)?;
        Some(Certificates {
            path: PathBuf::from(v.get_ref()),
            certs: certs.into(),
        })
    }

    /// Reads a CA file: certificates that rustls accepts as trust anchors.
    pub fn trust_anchors(&mut self, v: &Spanned<String>, key: &str) -> Option<Certificates> {
        let certs = self.pem(v, key, pem::trust_anchors)?;
        Some(Certificates {
            path: PathBuf::from(v.get_ref()),
            certs: certs.into(),
        })
    }

    /// Reads a PEM private key that rustls can sign with.
    pub fn private_key(&mut self, v: &Spanned<String>, key: &str) -> Option<Secret<PrivateKey>> {
        let der = self.pem(v, key, pem::private_key)?;
        let source = SecretSource::File(PathBuf::from(v.get_ref()));
        Some(Secret::new(source, PrivateKey::new(der)))
    }

    /// Resolves `{ env = "NAME" }` or `{ file = "/path" }` to its value.
    pub fn secret(&mut self, v: &Spanned<SecretRef>, key: &str) -> Option<Secret<String>> {
        let span = v.span();
        match (&v.get_ref().env, &v.get_ref().file) {
            (Some(var), None) => {
                let state = match self.host.var(var) {
                    Ok(value) if !value.is_empty() => {
                        return Some(Secret::new(SecretSource::Env(var.clone()), value));
                    }
                    Ok(_) => "empty",
                    Err(std::env::VarError::NotPresent) => "not set",
                    Err(std::env::VarError::NotUnicode(_)) => "not valid UTF-8",
                };
                self.error(
                    span,
                    key,
                    ErrorKind::SecretUnset {
                        var: var.clone(),
                        state,
                    },
                );
                None
            }
            (None, Some(path)) => {
                let bytes = self.read(span.clone(), key, path)?;
                let problem = match String::from_utf8(bytes) {
                    Ok(text) => {
                        let text = trim_newline(text);
                        if !text.is_empty() {
                            return Some(Secret::new(
                                SecretSource::File(PathBuf::from(path)),
                                text,
                            ));
                        }
                        "is empty"
                    }
                    Err(_) => "is not UTF-8 text",
                };
                self.error(
                    span,
                    key,
                    ErrorKind::BadFile {
                        path: path.clone(),
                        problem: problem.into(),
                        valid: "a file holding the secret, optionally followed by a newline".into(),
                    },
                );
                None
            }
            _ => {
                self.error(
                    span,
                    key,
                    ErrorKind::Invalid {
                        message: "a secret needs exactly one of `env` and `file`".into(),
                        valid: "{ env = \"NAME\" } or { file = \"/path\" }".into(),
                    },
                );
                None
            }
        }
    }

    /// "line N" of a byte offset, for messages that mention a second place.
    pub fn line_of(&self, span: &Range<usize>) -> usize {
        self.lines.line(span.start)
    }
}

/// `std::io::Error`'s message without the "(os error 2)" suffix.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// Validates a whole raw configuration.
pub(crate) fn plan(raw: &RawConfig, ctx: &mut Ctx<'_>) -> Option<Plan> {
    let agent_raw = raw
        .agent
        .as_ref()
        .map(|a| a.get_ref().clone())
        .unwrap_or_default();
    let agent = agent(&agent_raw, ctx);
    // Checks read against wrong defaults would only report false errors.
    let checks = if raw.failed.defaults {
        None
    } else {
        check::checks(raw, ctx)
    };
    let sinks = if raw.failed.sinks {
        None
    } else {
        sinks::sinks(raw, &agent, agent_raw.id.is_some() || raw.failed.agent, ctx)
    };
    let prometheus = match &raw.prometheus {
        Some(p) => prometheus(p.get_ref(), ctx),
        None => Prometheus::default(),
    };
    // Reported alone: with other errors, a check may be missing only
    // because it failed to read. An agent with blackbox modules may serve
    // only /probe.
    if let Some(checks) = &checks
        && ctx.require_checks
        && prometheus.blackbox_config.is_none()
        && ctx.errors.is_empty()
        && !checks.iter().any(|c| c.enabled)
    {
        ctx.error(0..0, "check", ErrorKind::NoEnabledChecks);
    }
    if !ctx.errors.is_empty() {
        return None;
    }
    Some(Plan {
        agent,
        checks: checks?,
        sinks: sinks?,
        prometheus,
    })
}

fn prometheus(raw: &RawPrometheus, ctx: &mut Ctx<'_>) -> Prometheus {
    let mut p = Prometheus::default();
    if let Some(v) = &raw.histograms {
        p.histograms = *v.get_ref();
    }
    if let Some(v) = &raw.phase_buckets {
        let bounds: Vec<f64> = v.get_ref().iter().map(|b| *b.get_ref()).collect();
        if let Some(b) = ctx.check(v, "prometheus.phase_buckets", |_| values::buckets(&bounds)) {
            p.phase_buckets = b;
        }
    }
    if let Some(v) = &raw.blackbox_config {
        p.blackbox_config = ctx.check(v, "prometheus.blackbox_config", |s| {
            if s.is_empty() {
                Err(ErrorKind::Invalid {
                    message: "empty path".into(),
                    valid: "a blackbox_exporter configuration file such as \"/etc/prometheus/blackbox.yml\"".into(),
                })
            } else {
                Ok(PathBuf::from(s))
            }
        });
    }
    p
}

fn agent(raw: &RawAgent, ctx: &mut Ctx<'_>) -> Agent {
    let id = raw
        .id
        .as_ref()
        .and_then(|v| ctx.check(v, "agent.id", |s| values::name(s)));
    let region = raw
        .region
        .as_ref()
        .and_then(|v| ctx.check(v, "agent.region", |s| values::name(s)));
    let concurrency = raw
        .concurrency
        .as_ref()
        .and_then(|v| ctx.check(v, "agent.concurrency", |n| values::int_in(*n, 1..=65_535)));
    let state_dir = raw.state_dir.as_ref().and_then(|v| {
        ctx.check(v, "agent.state_dir", |s| {
            if s.is_empty() {
                Err(ErrorKind::Invalid {
                    message: "empty path".into(),
                    valid: "a directory such as \"/var/lib/sonde\" or \"./sonde-data\"".into(),
                })
            } else {
                Ok(PathBuf::from(s))
            }
        })
    });
    let metrics_listen = raw
        .metrics_listen
        .as_ref()
        .and_then(|v| ctx.check(v, "agent.metrics_listen", |s| values::listen_addr(s)));
    Agent {
        id: id.unwrap_or_else(|| defaults::AGENT_ID.to_owned()),
        region,
        concurrency: concurrency.map_or(defaults::CONCURRENCY, |n| n as usize),
        state_dir: state_dir.unwrap_or_else(|| PathBuf::from(defaults::STATE_DIR)),
        metrics_listen,
    }
}
