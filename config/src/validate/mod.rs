//! Stage two: raw structs → a validated [`Plan`], collecting every error.
//!
//! Each value is checked where it is written, so an error points at the line
//! that needs changing. Files the configuration names (CA, certificate, key,
//! secret files) and secret environment variables are read through [`Host`];
//! nothing here opens a socket or resolves a name.

mod check;
mod values;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

pub(crate) use values::{FSYNC_VALID, IP_VERSION_VALID, STATUS_VALID, is_name_char};

use crate::error::{Collector, ErrorKind, LineIndex};
use crate::plan::{Agent, FileSink, GatewaySink, PemFile, Plan, Sinks, StdoutFormat, StdoutSink};
use crate::raw::{RawAgent, RawConfig, RawFileSink, RawGateway, RawSinks, RawStdoutSink, SecretRef};
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
}

impl Ctx<'_> {
    /// Records an error at `span` under `key`.
    pub fn error(&mut self, span: Range<usize>, key: &str, kind: ErrorKind) {
        self.errors.push(span, key, kind);
    }

    /// Checks a spanned value with `f`; on failure records the error and
    /// returns `None`.
    pub fn check<T, U>(&mut self, v: &Spanned<T>, key: &str, f: impl FnOnce(&T) -> Result<U, ErrorKind>) -> Option<U> {
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

    /// Reads a PEM file and checks it holds a block whose label ends in
    /// `label` (`CERTIFICATE`, `PRIVATE KEY`).
    pub fn pem(&mut self, v: &Spanned<String>, key: &str, label: &str) -> Option<Vec<u8>> {
        let bytes = self.read(v.span(), key, v.get_ref())?;
        let text = String::from_utf8_lossy(&bytes);
        let found = text
            .lines()
            .any(|l| l.starts_with("-----BEGIN ") && l.trim_end().ends_with(&format!("{label}-----")));
        if !found {
            self.error(
                v.span(),
                key,
                ErrorKind::BadFile {
                    path: v.get_ref().clone(),
                    problem: format!("holds no PEM {label}"),
                    valid: format!("a PEM file with a -----BEGIN ...{label}----- block"),
                },
            );
            return None;
        }
        Some(bytes)
    }

    /// Reads a PEM certificate file into a [`PemFile`].
    pub fn pem_file(&mut self, v: &Spanned<String>, key: &str) -> Option<PemFile> {
        let pem = self.pem(v, key, "CERTIFICATE")?;
        Some(PemFile {
            path: PathBuf::from(v.get_ref()),
            pem,
        })
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
                self.error(span, key, ErrorKind::SecretUnset { var: var.clone(), state });
                None
            }
            (None, Some(path)) => {
                let bytes = self.read(span.clone(), key, path)?;
                let problem = match String::from_utf8(bytes) {
                    Ok(text) => {
                        let text = trim_newline(text);
                        if !text.is_empty() {
                            return Some(Secret::new(SecretSource::File(PathBuf::from(path)), text));
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
    let agent_raw = raw.agent.as_ref().map(|a| a.get_ref().clone()).unwrap_or_default();
    let agent = agent(&agent_raw, ctx);
    let checks = check::checks(raw, ctx);
    let sinks = sinks(raw, &agent, agent_raw.id.is_some(), ctx);
    if !ctx.errors.is_empty() {
        return None;
    }
    Some(Plan {
        agent,
        checks: checks?,
        sinks: sinks?,
    })
}

fn agent(raw: &RawAgent, ctx: &mut Ctx<'_>) -> Agent {
    let id = raw.id.as_ref().and_then(|v| ctx.check(v, "agent.id", |s| values::name(s)));
    let region = raw.region.as_ref().and_then(|v| ctx.check(v, "agent.region", |s| values::name(s)));
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

fn sinks(raw: &RawConfig, agent: &Agent, id_given: bool, ctx: &mut Ctx<'_>) -> Option<Sinks> {
    let sinks_raw = raw.sinks.as_ref().map(|s| s.get_ref().clone()).unwrap_or_default();
    let RawSinks { file, stdout, gateway } = &sinks_raw;
    let file = file_sink(file.as_ref().map(|f| f.get_ref()), agent, ctx);
    let stdout = stdout_sink(stdout.as_ref().map(|s| s.get_ref()), ctx);
    let gateways = gateways(gateway.as_deref().unwrap_or(&[]), agent, id_given, ctx);
    if matches!(file, Some(None)) && matches!(stdout, Some(None)) && gateways.as_ref().is_some_and(|g| g.is_empty()) {
        let span = raw.sinks.as_ref().map_or(0..0, |s| s.span());
        ctx.error(span, "sinks", ErrorKind::NoSink);
    }
    Some(Sinks {
        file: file?,
        stdout: stdout?,
        gateways: gateways?,
    })
}

/// `Some(None)`: disabled. `None`: invalid.
fn file_sink(raw: Option<&RawFileSink>, agent: &Agent, ctx: &mut Ctx<'_>) -> Option<Option<FileSink>> {
    let default = RawFileSink::default();
    let raw = raw.unwrap_or(&default);
    let before = ctx.errors.len();
    let size = |ctx: &mut Ctx<'_>, v: &Option<Spanned<crate::raw::SizeValue>>, key: &str, d: u64| {
        v.as_ref().and_then(|v| ctx.check(v, key, |s| values::size(&s.0))).unwrap_or(d)
    };
    let age = |ctx: &mut Ctx<'_>, v: &Option<Spanned<crate::raw::DurationText>>, key: &str, d: Duration| {
        v.as_ref().and_then(|v| ctx.check(v, key, |s| values::duration(&s.0))).unwrap_or(d)
    };
    let segment_max_bytes = size(ctx, &raw.segment_max_bytes, "sinks.file.segment_max_bytes", defaults::SEGMENT_MAX_BYTES);
    let retention_max_bytes = size(ctx, &raw.retention_max_bytes, "sinks.file.retention_max_bytes", defaults::RETENTION_MAX_BYTES);
    let segment_max_age = age(ctx, &raw.segment_max_age, "sinks.file.segment_max_age", defaults::SEGMENT_MAX_AGE);
    let retention_max_age = age(ctx, &raw.retention_max_age, "sinks.file.retention_max_age", defaults::RETENTION_MAX_AGE);
    if let Some(v) = &raw.segment_max_bytes {
        if segment_max_bytes < 4096 {
            ctx.error(
                v.span(),
                "sinks.file.segment_max_bytes",
                ErrorKind::Invalid {
                    message: format!("{} is too small", crate::size::format(segment_max_bytes)),
                    valid: "4KiB or more".into(),
                },
            );
        }
    }
    if retention_max_bytes < segment_max_bytes {
        let (span, key) = match (&raw.retention_max_bytes, &raw.segment_max_bytes) {
            (Some(v), _) => (v.span(), "sinks.file.retention_max_bytes"),
            (None, Some(v)) => (v.span(), "sinks.file.segment_max_bytes"),
            (None, None) => (0..0, "sinks.file"),
        };
        ctx.error(
            span,
            key,
            ErrorKind::Invalid {
                message: format!(
                    "retention_max_bytes {} is below segment_max_bytes {}",
                    crate::size::format(retention_max_bytes),
                    crate::size::format(segment_max_bytes)
                ),
                valid: "retention_max_bytes of at least one segment".into(),
            },
        );
    }
    let fsync = raw
        .fsync
        .as_ref()
        .and_then(|v| ctx.check(v, "sinks.file.fsync", |f| values::fsync(&f.0)))
        .unwrap_or(crate::plan::Fsync::Every(defaults::FSYNC_EVERY));
    let dir = match &raw.dir {
        Some(v) if v.get_ref().is_empty() => {
            ctx.error(
                v.span(),
                "sinks.file.dir",
                ErrorKind::Invalid {
                    message: "empty path".into(),
                    valid: "a directory, or leave it out for state_dir/records".into(),
                },
            );
            PathBuf::new()
        }
        Some(v) => PathBuf::from(v.get_ref()),
        None => agent.state_dir.join("records"),
    };
    if ctx.errors.len() != before {
        return None;
    }
    let enabled = raw.enabled.as_ref().is_none_or(|e| *e.get_ref());
    Some(enabled.then_some(FileSink {
        dir,
        segment_max_bytes,
        segment_max_age,
        retention_max_bytes,
        retention_max_age,
        fsync,
    }))
}

fn stdout_sink(raw: Option<&RawStdoutSink>, ctx: &mut Ctx<'_>) -> Option<Option<StdoutSink>> {
    let Some(raw) = raw else { return Some(None) };
    let format = match &raw.format {
        None => StdoutFormat::Human,
        Some(v) => ctx.check(v, "sinks.stdout.format", |f| match f.as_str() {
            "human" => Ok(StdoutFormat::Human),
            "json" => Ok(StdoutFormat::Json),
            other => Err(ErrorKind::Invalid {
                message: format!("unknown format {other:?}"),
                valid: "\"human\" or \"json\"".into(),
            }),
        })?,
    };
    let enabled = raw.enabled.as_ref().is_some_and(|e| *e.get_ref());
    Some(enabled.then_some(StdoutSink { format }))
}

fn gateways(raw: &[Spanned<RawGateway>], agent: &Agent, id_given: bool, ctx: &mut Ctx<'_>) -> Option<Vec<GatewaySink>> {
    let before = ctx.errors.len();
    let mut out = Vec::new();
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (i, g) in raw.iter().enumerate() {
        let key = |k: &str| format!("sinks.gateway[{i}].{k}");
        let gw = g.get_ref();
        if !id_given && i == 0 {
            ctx.error(
                g.span(),
                &format!("sinks.gateway[{i}]"),
                ErrorKind::Invalid {
                    message: "a gateway deduplicates records by agent id, and [agent] id is not set".into(),
                    valid: "set [agent] id to a name unique among your agents".into(),
                },
            );
        }
        let name = match &gw.name {
            Some(v) => ctx.check(v, &key("name"), |s| values::name(s)),
            None => Some("default".to_owned()),
        };
        if let Some(name) = &name {
            let span = gw.name.as_ref().map_or_else(|| g.span(), |v| v.span());
            let line = ctx.line_of(&span);
            if let Some((_, first_line)) = seen.iter().find(|(n, _)| n == name) {
                let first_line = *first_line;
                ctx.error(
                    span,
                    &key("name"),
                    ErrorKind::Duplicate {
                        what: "gateway",
                        name: name.clone(),
                        first_line,
                    },
                );
            } else {
                seen.push((name.clone(), line));
            }
        }
        let url = match &gw.url {
            Some(v) => ctx.check(v, &key("url"), |s| values::url(s)),
            None => {
                ctx.error(g.span(), &format!("sinks.gateway[{i}]"), ErrorKind::MissingKey { key: "url".into() });
                None
            }
        };
        let token = match &gw.token {
            Some(v) => ctx.secret(v, &key("token")),
            None => {
                ctx.error(g.span(), &format!("sinks.gateway[{i}]"), ErrorKind::MissingKey { key: "token".into() });
                None
            }
        };
        let spool_max_bytes = gw
            .spool_max_bytes
            .as_ref()
            .and_then(|v| ctx.check(v, &key("spool_max_bytes"), |s| values::size(&s.0)))
            .unwrap_or(defaults::SPOOL_MAX_BYTES);
        if let (Some(name), Some(url), Some(token)) = (name, url, token) {
            out.push(GatewaySink {
                spool_dir: agent.state_dir.join("spool").join(&name),
                name,
                url,
                token,
                spool_max_bytes,
            });
        }
    }
    (ctx.errors.len() == before).then_some(out)
}
