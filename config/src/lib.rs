//! sonde's configuration: TOML → raw structs → a validated [`Plan`].
//!
//! - `raw`: the file as written, every value with its byte span; only
//!   syntax, known keys and types are checked.
//! - `validate`: meaning (ranges, URLs, methods, regexes, readable files,
//!   secrets), every error collected, defaults applied; it imports `raw`,
//!   never the reverse.
//! - [`plan`]: what the agent runs, values compiled; [`Plan::render`] prints it
//!   back as TOML for `sonde check-config`.
//! - [`error`]: `FILE:LINE:COL: key: message (valid: ...)`, sorted by position.
//! - Grammars shared with the CLI: [`duration`], [`status`], [`size`], and
//!   [`pem`] for certificates and keys.
//! - [`file`]: the bounded reader of every file it reads (regular files
//!   only, at most 16 MiB), shared with gateway.toml.
//! - [`secret`]: values that print as `<redacted>`, and the [`Host`] through
//!   which environment variables and files are read.
//!
//! No async, no sockets, no DNS: a configuration that validates may still
//! point at hosts that do not answer.
#![forbid(unsafe_code)]

pub mod duration;
pub mod error;
pub mod file;
pub mod pem;
pub mod plan;
mod raw;
mod render;
pub mod secret;
pub mod size;
pub mod status;
mod valid;
mod validate;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors, ErrorKind};
pub use plan::{
    Agent, Certificates, Check, ClientCert, Compression, FileSink, Fsync, GatewaySink, Header,
    HeaderValue, IpVersion, Pattern, Plan, PrivateKey, Prometheus, Sinks, StdoutFormat, StdoutSink,
    Tls,
};
pub use secret::{Host, Secret, SecretRef, SecretSource, SystemHost};
pub use valid::{NAME as NAME_VALID, NAME_MAX_LEN, is_name};
pub use validate::{defaults, is_loopback};

/// Reads, parses and validates the configuration file at `path`, reading the
/// files and environment variables it refers to from this process's system.
pub fn load(path: &Path) -> Result<Plan, ConfigErrors> {
    load_with(path, &SystemHost)
}

/// [`load`] with the outside world supplied by `host`.
pub fn load_with(path: &Path, host: &dyn Host) -> Result<Plan, ConfigErrors> {
    load_with_options(path, host, Options::default())
}

/// What a caller requires of a configuration beyond validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Refuse a configuration with no enabled check (true by default; an
    /// agent that also serves blackbox_exporter's /probe may have none).
    pub require_checks: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            require_checks: true,
        }
    }
}

/// [`load_with`] under `options`.
pub fn load_with_options(
    path: &Path,
    host: &dyn Host,
    options: Options,
) -> Result<Plan, ConfigErrors> {
    let (origin, text) = read_text(path, host)?;
    parse_with_options(&text, &origin, host, options)
}

/// The text of the configuration file at `path`, read through `host`, and
/// the origin its errors are named by: sonde.toml's, and every other
/// reader's built on this crate (gateway.toml, alert.toml).
pub fn read_text(path: &Path, host: &dyn Host) -> Result<(String, String), ConfigErrors> {
    let origin = path.display().to_string();
    let bytes = host.read_file(path).map_err(|e| {
        let reason = e.to_string();
        let reason = reason
            .split(" (os error")
            .next()
            .unwrap_or(&reason)
            .to_owned();
        ConfigErrors::whole_file(
            &origin,
            ErrorKind::Unreadable {
                path: origin.clone(),
                reason,
            },
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        ConfigErrors::whole_file(
            &origin,
            ErrorKind::BadFile {
                path: origin.clone(),
                problem: "is not UTF-8".into(),
                valid: "a UTF-8 TOML file".into(),
            },
        )
    })?;
    Ok((origin, text))
}

/// `text` as the serde shape `T` of another reader's file (gateway.toml,
/// alert.toml: unknown keys refused by `T`); a syntax or shape error is
/// placed at its line and column.
pub fn from_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
) -> Result<T, ConfigErrors> {
    toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |span| span.start);
        ConfigErrors::from(ConfigError::at_offset(
            text,
            origin,
            offset,
            "",
            ErrorKind::Syntax {
                message: e.message().to_owned(),
            },
        ))
    })
}

/// Parses and validates configuration `text`; `origin` names it in errors
/// (usually the file's path). Files and environment variables the
/// configuration refers to are read through `host`.
pub fn parse(text: &str, origin: &str, host: &dyn Host) -> Result<Plan, ConfigErrors> {
    parse_with_options(text, origin, host, Options::default())
}

/// [`parse`] under `options`.
pub fn parse_with_options(
    text: &str,
    origin: &str,
    host: &dyn Host,
    options: Options,
) -> Result<Plan, ConfigErrors> {
    let mut errors = error::Collector::default();
    let Some(raw) = raw::read(text, &mut errors) else {
        return Err(errors.finish(text, origin));
    };
    let mut ctx = validate::Ctx {
        errors,
        host,
        lines: error::LineIndex::new(text),
        require_checks: options.require_checks,
    };
    match validate::plan(&raw, &mut ctx) {
        Some(plan) if ctx.errors.is_empty() => Ok(plan),
        _ => Err(ctx.errors.finish(text, origin)),
    }
}
