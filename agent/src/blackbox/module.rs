//! A validated module made ready to probe, once at load: the files it
//! names read (bounded), its TLS client configuration prepared through
//! [`crate::tls`], its headers (authorization included) and expectations
//! set on a template [`ProbeSpec`] that each /probe request clones and
//! points at its target. No per-request parsing or building.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{AUTHORIZATION, HOST, HeaderValue};
use url::Url;

use super::config::{
    Auth, BlackboxError, ErrorKind, MAX_REDIRECTS, Module, SecretText, locate_error, parse,
};
use crate::probe::{Expectations, ProbeSpec};
use crate::tls::{TlsOptions, probe_tls_versions};

/// A module ready to probe.
#[derive(Debug)]
pub struct Prepared {
    /// The module's name.
    pub name: String,
    /// `timeout` (`None`: no cap).
    pub timeout: Option<Duration>,
    /// The probe every request of this module runs, but for its URL,
    /// timeout and (see [`Prepared::tls_server_name`]) Host.
    pub template: ProbeSpec,
    /// `tls_config.server_name` is set: it names the TLS server only, so
    /// without a Host header each request sends the target's as Host.
    pub tls_server_name: bool,
    /// The module as debug output shows it.
    pub shown: String,
    /// Why every probe of this module fails at once: a file it names
    /// could not be read or used at load. blackbox_exporter reads its
    /// files per probe and fails the probe; sonde reads them at load
    /// (and on SIGHUP) and fails the probes the same way.
    pub broken: Option<String>,
}

/// Every module of a configuration file, ready to probe (none by default).
#[derive(Debug, Default)]
pub struct Modules {
    /// The file they came from.
    pub path: PathBuf,
    /// By name.
    pub by_name: std::collections::HashMap<String, Arc<Prepared>>,
}

/// A module whose probes all fail with `why`.
fn broken(
    name: String,
    timeout: Option<Duration>,
    shown: String,
    why: String,
) -> Result<Prepared, BlackboxError> {
    let fail = |e: String| BlackboxError {
        path: PathBuf::new(),
        location: None,
        kind: ErrorKind::Invalid {
            module: name.clone(),
            option: "http".into(),
            problem: e,
        },
    };
    let tls = crate::tls::probe_tls(&TlsOptions {
        ca_file: None,
        system_roots: false,
        client_cert: None,
        insecure: false,
    })
    .map_err(|e| fail(e.to_string()))?;
    let placeholder = Url::parse("http://target.invalid/").map_err(|e| fail(e.to_string()))?;
    Ok(Prepared {
        name: name.clone(),
        timeout,
        template: ProbeSpec::new(placeholder, tls),
        tls_server_name: false,
        shown,
        broken: Some(why),
    })
}

impl Modules {
    /// The modules loaded broken, by name, with why (sorted by name).
    pub fn broken(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = self
            .by_name
            .values()
            .filter_map(|m| Some((m.name.as_str(), m.broken.as_deref()?)))
            .collect();
        out.sort_unstable();
        out
    }
}

impl Modules {
    /// Reads, validates and prepares the blackbox_exporter configuration
    /// at `path`.
    pub fn load(path: &Path) -> Result<Modules, BlackboxError> {
        let fail = |kind| BlackboxError {
            path: path.to_owned(),
            location: None,
            kind,
        };
        let bytes = config::file::read_bounded(path).map_err(|source| {
            fail(ErrorKind::Read {
                what: "reading it".into(),
                source,
            })
        })?;
        let text = String::from_utf8(bytes).map_err(|_| fail(ErrorKind::NotUtf8))?;
        let modules = parse(&text, path)?;
        let mut by_name = std::collections::HashMap::new();
        for module in modules {
            let (name, timeout, shown) =
                (module.name.clone(), module.timeout, module.shown.clone());
            // What prepare refuses are files and what is in them: a
            // probe-time error in blackbox_exporter, so one here too.
            let prepared = prepare(module).or_else(|kind| {
                let why = BlackboxError {
                    path: path.to_owned(),
                    location: locate_error(&text, &kind),
                    kind,
                }
                .to_string();
                tracing::warn!(module = %name, error = %why, "blackbox module loaded broken: its probes fail");
                broken(name, timeout, shown, why)
            })?;
            by_name.insert(prepared.name.clone(), Arc::new(prepared));
        }
        Ok(Modules {
            path: path.to_owned(),
            by_name,
        })
    }
}

/// The template probe of `module`, its files read.
pub fn prepare(module: Module) -> Result<Prepared, ErrorKind> {
    let name = module.name.clone();
    let invalid = |option: &str, problem: String| ErrorKind::Invalid {
        module: name.clone(),
        option: option.to_owned(),
        problem,
    };
    let h = module.http;
    let tls = probe_tls_versions(
        &TlsOptions {
            ca_file: h.tls.ca_file.clone(),
            system_roots: false,
            client_cert: h.tls.client_cert.clone(),
            insecure: h.tls.insecure,
        },
        h.tls.tls13_only,
    )
    .map_err(|e| invalid("http.tls_config", e.to_string()))?;
    // A placeholder: every request sets its own target.
    let placeholder =
        Url::parse("http://target.invalid/").map_err(|e| invalid("http", e.to_string()))?;
    let mut spec = ProbeSpec::new(placeholder, tls);
    let mut headers = h.headers;
    // prometheus/common's round trippers leave a request that already
    // has Authorization alone: the module's own header wins.
    if let Some(auth) = h
        .auth
        .as_ref()
        .filter(|_| !headers.contains_key(AUTHORIZATION))
    {
        let value = match auth {
            Auth::Basic { username, password } => {
                let password = read_secret(password.as_ref(), &name, "http.basic_auth")?;
                crate::probe::basic::credentials(format!("{username}:{password}").as_bytes())
            }
            Auth::Authorization {
                scheme,
                credentials,
            } => {
                let c = read_secret(credentials.as_ref(), &name, "http.authorization")?;
                format!("{scheme} {c}")
            }
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            invalid(
                "http.authorization",
                "the credentials are not a valid header value".into(),
            )
        })?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    let host_header = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    spec.server_name = h.tls.server_name.clone().or(host_header.clone());
    spec.method = h.method;
    spec.headers = headers;
    spec.body = Bytes::from(h.body);
    spec.ip_version = h.ip_version;
    spec.expect = Expectations {
        statuses: h.statuses,
        body: h.body_assertions,
        headers: h.header_assertions,
        http_versions: h.http_versions,
        tls: h.tls_expect,
    };
    spec.max_redirects = if h.follow_redirects { MAX_REDIRECTS } else { 0 };
    // Go's client follows https → http.
    spec.allow_insecure_redirect = true;
    spec.max_body_bytes = h.body_size_limit;
    spec.compression = h.compression;
    Ok(Prepared {
        name: module.name,
        timeout: module.timeout,
        tls_server_name: h.tls.server_name.is_some(),
        template: spec,
        shown: module.shown,
        broken: None,
    })
}

fn read_secret(
    secret: Option<&SecretText>,
    module: &str,
    option: &str,
) -> Result<String, ErrorKind> {
    match secret {
        None => Ok(String::new()),
        Some(SecretText::Inline(s)) => Ok(s.clone()),
        Some(SecretText::File(path)) => {
            let bytes = config::file::read_bounded(path).map_err(|source| ErrorKind::Read {
                what: format!("module `{module}`: `{option}` file {}", path.display()),
                source,
            })?;
            Ok(String::from_utf8_lossy(&bytes).trim().to_owned())
        }
    }
}
