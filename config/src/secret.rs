//! Secrets (tokens, header values, private keys) and where they come from.
//!
//! A secret is read from an environment variable or a file, never from the
//! configuration text itself when it is a token. [`Secret`] prints as
//! `<redacted>` under both `Debug` and `Display`, so a plan that is logged or
//! rendered by `sonde check-config` never shows the value; only
//! [`Secret::expose`] gives it out, and the call is easy to grep for.
//!
//! The outside world (environment, file system) is reached through the
//! [`Host`] trait so that validation can be tested without real files.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretSource {
    /// Written in the configuration (allowed for plain header values only).
    Inline,
    /// The named environment variable of the agent's process.
    Env(String),
    /// The contents of a file, with one trailing newline removed.
    File(PathBuf),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Inline => f.write_str("inline"),
            SecretSource::Env(name) => write!(f, "env {name}"),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// A value that must not reach a log. `Debug` and `Display` print
/// `<redacted>`; equality compares values so that plans can be compared in tests.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret<T> {
    source: SecretSource,
    value: T,
}

impl<T> Secret<T> {
    /// Wraps a resolved value together with where it came from.
    pub fn new(source: SecretSource, value: T) -> Self {
        Secret { source, value }
    }

    /// The value itself. Call this only where the value is used on the wire.
    pub fn expose(&self) -> &T {
        &self.value
    }

    /// Where the value was read from (safe to print).
    pub fn source(&self) -> &SecretSource {
        &self.source
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}, <redacted>)", self.source)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The parts of the outside world that validation reads: files the
/// configuration points at and environment variables holding secrets.
pub trait Host {
    /// Reads a whole file.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Reads an environment variable; `Err(NotPresent)` when unset.
    fn var(&self, name: &str) -> Result<String, std::env::VarError>;
}

/// The real file system and process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemHost;

impl Host for SystemHost {
    /// Regular files only, at most [`crate::file::MAX_FILE_BYTES`].
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        crate::file::read_bounded(path).map_err(io::Error::from)
    }

    fn var(&self, name: &str) -> Result<String, std::env::VarError> {
        std::env::var(name)
    }
}

/// Where a secret comes from in a TOML file other than sonde.toml
/// (gateway.toml, alert.toml): `{ env = "NAME" }` or `{ file = "/path" }`,
/// exactly one of them.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    env: Option<String>,
    file: Option<std::path::PathBuf>,
}

impl SecretRef {
    /// Reads the secret from where it says, without one trailing newline;
    /// the value is never part of a message.
    pub fn resolve(&self, host: &dyn Host) -> Result<Secret<String>, String> {
        let (source, value) = match (&self.env, &self.file) {
            (Some(name), None) => match host.var(name) {
                Ok(v) => (SecretSource::Env(name.clone()), v),
                Err(_) => return Err(format!("environment variable {name} is not set")),
            },
            (None, Some(path)) => match host.read_file(path) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => (SecretSource::File(path.clone()), text),
                    Err(_) => return Err(format!("{} is not UTF-8", path.display())),
                },
                Err(e) => return Err(format!("reading {}: {e}", path.display())),
            },
            _ => {
                return Err(
                    "give exactly one of { env = \"NAME\" } or { file = \"/path\" }".into(),
                );
            }
        };
        let value = value.trim_end_matches(['\n', '\r']).to_owned();
        if value.is_empty() {
            return Err(format!("the secret from {source} is empty"));
        }
        Ok(Secret::new(source, value))
    }
}

/// Removes one trailing `\n` or `\r\n`, as editors add to secret files.
pub(crate) fn trim_newline(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let s = Secret::new(SecretSource::Env("TOKEN".into()), "hunter2".to_owned());
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{s:?}"), "Secret(env TOKEN, <redacted>)");
        assert_eq!(format!("{s:#?}"), "Secret(env TOKEN, <redacted>)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn one_trailing_newline_is_trimmed() {
        assert_eq!(trim_newline("abc\n".into()), "abc");
        assert_eq!(trim_newline("abc\r\n".into()), "abc");
        assert_eq!(trim_newline("abc\n\n".into()), "abc\n");
        assert_eq!(trim_newline("abc".into()), "abc");
    }
}
