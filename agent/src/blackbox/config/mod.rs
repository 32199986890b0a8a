//! A blackbox_exporter configuration file read as blackbox_exporter reads
//! it: YAML `modules: {name: {prober, timeout, http: {...}}}` with its
//! defaults, into validated [`Module`]s (regexes compiled, headers parsed).
//! Pure: text in, modules or a typed error out. Options blackbox_exporter
//! knows but sonde does not implement are refused by name, unknown keys
//! as unknown; files named in a module are only recorded here (see
//! `module.rs`, which reads them).
//!
//! - `names`: the first pass, keys refused by name (and where they are);
//! - `raw`: serde's pass, the types; `go`: Go's grammars;
//! - `show`: the module as the debug page prints it.

mod go;
mod names;
mod raw;
mod show;

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Version};
use regex::bytes::RegexBuilder as BytesRegexBuilder;
use serde_yaml_ng::Value;

pub use go::{base2_bytes, go_duration};
use names::{check_names, locate};
use raw::{RawFile, RawModule, Scalar};
use show::show;

use crate::probe::{BodyAssertion, Compression, HeaderAssertion, IpVersion, TlsExpectation};

/// The most redirects followed, as Go's http.Client (blackbox_exporter
/// stops after 10).
pub const MAX_REDIRECTS: u32 = 10;

/// Where in the file (1-based), when it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The line.
    pub line: usize,
    /// The column.
    pub column: usize,
}

/// Why a blackbox_exporter configuration file was refused: the file, where
/// in it (when known) and what.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {kind}", path.display(), at(location))]
pub struct BlackboxError {
    /// The file.
    pub path: PathBuf,
    /// Where in it, when the YAML parser or the option's key gives it.
    pub location: Option<Location>,
    /// What is wrong.
    pub kind: ErrorKind,
}

fn at(location: &Option<Location>) -> String {
    location
        .map(|l| format!(":{}:{}", l.line, l.column))
        .unwrap_or_default()
}

/// What is wrong with a blackbox_exporter configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The file (or one it names) could not be read.
    #[error("{what}: {source}")]
    Read {
        /// Which file this is.
        what: String,
        /// The error.
        source: config::file::FileError,
    },
    /// Not UTF-8.
    #[error("is not UTF-8")]
    NotUtf8,
    /// Not YAML, or a value of the wrong type (the YAML parser's message,
    /// which names the option's path).
    #[error("{0}")]
    Yaml(String),
    /// An option blackbox_exporter has that sonde does not implement.
    #[error("module `{module}`: `{option}` is not supported by sonde")]
    Unsupported {
        /// The module.
        module: String,
        /// The option's path inside the module (`http.proxy_url`).
        option: String,
    },
    /// A key neither blackbox_exporter nor sonde knows (a typo).
    #[error("module `{module}`: unknown option `{option}`")]
    Unknown {
        /// The module.
        module: String,
        /// The option's path inside the module.
        option: String,
    },
    /// A key at the top of the file other than `modules`.
    #[error("unknown key `{0}` (the file has only `modules`)")]
    UnknownTop(String),
    /// A prober other than http.
    #[error("module `{module}`: prober `{prober}` is not supported by sonde (only `http`)")]
    Prober {
        /// The module.
        module: String,
        /// The prober it names.
        prober: String,
    },
    /// An option's value is not valid.
    #[error("module `{module}`: `{option}`: {problem}")]
    Invalid {
        /// The module.
        module: String,
        /// The option's path inside the module.
        option: String,
        /// What is wrong.
        problem: String,
    },
}

/// A validated module (only the http prober exists here).
#[derive(Debug, Clone)]
pub struct Module {
    /// The module's name.
    pub name: String,
    /// `timeout`: caps the scrape's own timeout; `None` (0): no cap.
    pub timeout: Option<Duration>,
    /// `http:`.
    pub http: HttpModule,
    /// The module as blackbox_exporter's debug output shows it: defaults
    /// filled in, secrets as `<secret>`.
    pub shown: String,
}

/// The `http:` section, validated.
#[derive(Debug, Clone)]
pub struct HttpModule {
    /// `valid_status_codes` (default 2xx).
    pub statuses: Vec<RangeInclusive<u16>>,
    /// `valid_http_versions` (empty: any).
    pub http_versions: Vec<Version>,
    /// `preferred_ip_protocol` with `ip_protocol_fallback`.
    pub ip_version: IpVersion,
    /// `follow_redirects` (default true; `no_follow_redirects` inverts it).
    pub follow_redirects: bool,
    /// `fail_if_ssl` / `fail_if_not_ssl`.
    pub tls_expect: TlsExpectation,
    /// `method` (default GET).
    pub method: Method,
    /// `headers`.
    pub headers: HeaderMap,
    /// `fail_if_body_matches_regexp` (as NotMatches) and
    /// `fail_if_body_not_matches_regexp` (as Matches).
    pub body_assertions: Vec<BodyAssertion>,
    /// `fail_if_header_matches` / `fail_if_header_not_matches`.
    pub header_assertions: Vec<HeaderAssertion>,
    /// `body`.
    pub body: String,
    /// `compression`.
    pub compression: Option<Compression>,
    /// `body_size_limit` in bytes (`u64::MAX`: no limit, the default).
    pub body_size_limit: u64,
    /// `tls_config`.
    pub tls: TlsSettings,
    /// `basic_auth`, `authorization`, `bearer_token(_file)`.
    pub auth: Option<Auth>,
}

/// `tls_config`, paths resolved against the configuration file's folder.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// `ca_file`.
    pub ca_file: Option<PathBuf>,
    /// `cert_file` and `key_file`.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// `server_name`.
    pub server_name: Option<String>,
    /// `insecure_skip_verify`.
    pub insecure: bool,
    /// `min_version: TLS13`: only TLS 1.3 (TLS10 to TLS12 mean 1.2 and
    /// 1.3, since rustls never speaks below 1.2).
    pub tls13_only: bool,
}

/// A secret given inline or in a file (read when the module is prepared).
#[derive(Clone)]
pub enum SecretText {
    /// Inline.
    Inline(String),
    /// In this file, trimmed of surrounding white space when read.
    File(PathBuf),
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretText::Inline(_) => f.write_str("Inline(<secret>)"),
            SecretText::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

/// How a module authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `basic_auth`.
    Basic {
        /// The user.
        username: String,
        /// The password (none: empty).
        password: Option<SecretText>,
    },
    /// `authorization` (`type` default Bearer) or `bearer_token(_file)`.
    Authorization {
        /// The scheme.
        scheme: String,
        /// The credentials (none: empty).
        credentials: Option<SecretText>,
    },
}

/// Parses and validates the text of the file at `path` (named in errors;
/// relative file names in it are resolved against its folder).
pub fn parse(text: &str, path: &Path) -> Result<Vec<Module>, BlackboxError> {
    let fail = |location, kind| BlackboxError {
        path: path.to_owned(),
        location,
        kind,
    };
    let value: Value =
        serde_yaml_ng::from_str(text).map_err(|e| fail(location_of(&e), yaml_error(&e)))?;
    check_names(&value).map_err(|(module, option, kind)| {
        let location = module
            .as_deref()
            .and_then(|m| locate(text, m, option.as_deref()));
        fail(location, kind)
    })?;
    let raw: RawFile =
        serde_yaml_ng::from_str(text).map_err(|e| fail(location_of(&e), yaml_error(&e)))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    raw.modules
        .into_iter()
        .map(|(name, raw)| {
            module(&name, raw, dir).map_err(|kind| {
                let option = match &kind {
                    ErrorKind::Invalid { option, .. } => Some(option.as_str()),
                    _ => None,
                };
                fail(locate(text, &name, option), kind)
            })
        })
        .collect()
}

/// The parser's message without the " at line L column C" it appends
/// (the location is shown as FILE:LINE:COL already).
fn yaml_error(e: &serde_yaml_ng::Error) -> ErrorKind {
    let text = e.to_string();
    let text = match e.location() {
        Some(l) => {
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            text.strip_suffix(&suffix)
                .map(str::to_owned)
                .unwrap_or(text)
        }
        None => text,
    };
    ErrorKind::Yaml(text)
}

/// Where the option an error names is, for errors found after parsing.
pub fn locate_error(text: &str, kind: &ErrorKind) -> Option<Location> {
    match kind {
        ErrorKind::Invalid { module, option, .. } => locate(text, module, Some(option)),
        _ => None,
    }
}

fn location_of(e: &serde_yaml_ng::Error) -> Option<Location> {
    e.location().map(|l| Location {
        line: l.line(),
        column: l.column(),
    })
}

fn module(name: &str, raw: RawModule, dir: &Path) -> Result<Module, ErrorKind> {
    let invalid = |option: &str, problem: String| ErrorKind::Invalid {
        module: name.to_owned(),
        option: option.to_owned(),
        problem,
    };
    let timeout = match &raw.timeout {
        None => None,
        // yaml.v3 takes no bare number for a Go duration either.
        Some(Scalar::Int(n)) => {
            return Err(invalid(
                "timeout",
                format!("{n} has no unit (valid: as Go's, e.g. 5s, 1m30s, 500ms)"),
            ));
        }
        Some(Scalar::Text(t)) => Some(go_duration(t).map_err(|p| invalid("timeout", p))?),
    }
    .filter(|t| !t.is_zero());
    let shown = show(&raw, timeout);
    let h = raw.http;
    let statuses = if h.valid_status_codes.is_empty() {
        vec![200..=299]
    } else {
        h.valid_status_codes.iter().map(|&c| c..=c).collect()
    };
    let http_versions = h
        .valid_http_versions
        .iter()
        .map(|v| match v.as_str() {
            "HTTP/1.0" => Ok(Version::HTTP_10),
            "HTTP/1.1" => Ok(Version::HTTP_11),
            "HTTP/2.0" => Ok(Version::HTTP_2),
            other => Err(invalid(
                "http.valid_http_versions",
                format!(
                    "{other:?} is not a version sonde reports (valid: HTTP/1.0, HTTP/1.1, HTTP/2.0, as Go names them)"
                ),
            )),
        })
        .collect::<Result<_, _>>()?;
    let fallback = h.ip_protocol_fallback.unwrap_or(true);
    let ip_version = match (h.preferred_ip_protocol.as_str(), fallback) {
        ("ip6" | "", true) => IpVersion::Prefer6,
        ("ip6" | "", false) => IpVersion::V6,
        ("ip4", true) => IpVersion::Prefer4,
        ("ip4", false) => IpVersion::V4,
        (other, _) => {
            return Err(invalid(
                "http.preferred_ip_protocol",
                format!("{other:?} (valid: ip4, ip6)"),
            ));
        }
    };
    let mut follow_redirects = h.follow_redirects.unwrap_or(true);
    if let Some(no) = h.no_follow_redirects {
        follow_redirects = !no;
    }
    let tls_expect = match (h.fail_if_ssl, h.fail_if_not_ssl) {
        (true, true) => {
            return Err(invalid(
                "http.fail_if_ssl",
                "with fail_if_not_ssl every probe fails".into(),
            ));
        }
        (true, false) => TlsExpectation::Forbidden,
        (false, true) => TlsExpectation::Required,
        (false, false) => TlsExpectation::Any,
    };
    let method = if h.method.is_empty() {
        Method::GET
    } else {
        Method::from_bytes(h.method.as_bytes())
            .map_err(|_| invalid("http.method", format!("{:?} is not a method", h.method)))?
    };
    let mut headers = HeaderMap::new();
    for (key, value) in &h.headers {
        let name = HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| invalid("http.headers", format!("{key:?} is not a header name")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| invalid("http.headers", format!("the value of {key} is not valid")))?;
        headers.append(name, value);
    }
    let mut body_assertions = Vec::new();
    for (option, list, must) in [
        (
            "http.fail_if_body_matches_regexp",
            &h.fail_if_body_matches_regexp,
            false,
        ),
        (
            "http.fail_if_body_not_matches_regexp",
            &h.fail_if_body_not_matches_regexp,
            true,
        ),
    ] {
        for pattern in list {
            let re = BytesRegexBuilder::new(pattern)
                .build()
                .map_err(|e| invalid(option, format!("{pattern:?}: {e}")))?;
            body_assertions.push(if must {
                BodyAssertion::Matches(re)
            } else {
                BodyAssertion::NotMatches(re)
            });
        }
    }
    let mut header_assertions = Vec::new();
    for (option, list, must_match) in [
        (
            "http.fail_if_header_matches",
            &h.fail_if_header_matches,
            false,
        ),
        (
            "http.fail_if_header_not_matches",
            &h.fail_if_header_not_matches,
            true,
        ),
    ] {
        for m in list {
            if m.header.is_empty() {
                return Err(invalid(
                    option,
                    "header name must be set for HTTP header matchers".into(),
                ));
            }
            if m.regexp.is_empty() {
                return Err(invalid(
                    option,
                    "regexp must be set for HTTP header matchers".into(),
                ));
            }
            let name = HeaderName::from_bytes(m.header.as_bytes())
                .map_err(|_| invalid(option, format!("{:?} is not a header name", m.header)))?;
            let regex = regex::Regex::new(&m.regexp)
                .map_err(|e| invalid(option, format!("{:?}: {e}", m.regexp)))?;
            header_assertions.push(HeaderAssertion {
                name,
                regex,
                must_match,
                allow_missing: m.allow_missing,
            });
        }
    }
    for (key, value) in &h.headers {
        if key.eq_ignore_ascii_case("accept-encoding")
            && !go::accept_encoding_allows(&h.compression, value)
        {
            return Err(invalid(
                "http.headers",
                format!(
                    "invalid configuration \"{key}: {value}\", \"compression: {}\"",
                    h.compression
                ),
            ));
        }
    }
    let compression = match h.compression.as_str() {
        "" => None,
        "gzip" => Some(Compression::Gzip),
        "deflate" => Some(Compression::Deflate),
        "identity" => Some(Compression::Identity),
        "br" => Some(Compression::Brotli),
        other => {
            return Err(invalid(
                "http.compression",
                format!("{other:?} (valid: gzip, br, deflate, identity)"),
            ));
        }
    };
    let body_size_limit = match &h.body_size_limit {
        None | Some(Scalar::Int(0)) => u64::MAX,
        // units.Base2Bytes wants a unit: `1024` is refused, as there.
        Some(Scalar::Int(n)) => {
            return Err(invalid(
                "http.body_size_limit",
                format!("{n} has no unit (valid: e.g. 1024B, 512KB, 1.5MiB)"),
            ));
        }
        // 0 and below: no limit, as blackbox_exporter has it.
        Some(Scalar::Text(t)) => match base2_bytes(t) {
            Ok(n) if n > 0 => n as u64,
            Ok(_) => u64::MAX,
            Err(p) => return Err(invalid("http.body_size_limit", p)),
        },
    };
    let file = |s: &str| (!s.is_empty()).then(|| dir.join(s));
    let t = &h.tls_config;
    let client_cert = match (file(&t.cert_file), file(&t.key_file)) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            return Err(invalid(
                "http.tls_config",
                "cert_file and key_file go together".into(),
            ));
        }
    };
    let tls13_only = match t.min_version.as_str() {
        "" | "TLS10" | "TLS11" | "TLS12" => false,
        "TLS13" => true,
        other => {
            return Err(invalid(
                "http.tls_config.min_version",
                format!("{other:?} (valid: TLS10, TLS11, TLS12, TLS13)"),
            ));
        }
    };
    let tls = TlsSettings {
        ca_file: file(&t.ca_file),
        client_cert,
        server_name: (!t.server_name.is_empty()).then(|| t.server_name.clone()),
        insecure: t.insecure_skip_verify,
        tls13_only,
    };
    let secret = |inline: &Option<String>, path: &Option<String>, option: &str| match (
        inline.as_deref().filter(|s| !s.is_empty()),
        path.as_deref().filter(|s| !s.is_empty()),
    ) {
        (Some(_), Some(_)) => Err(invalid(
            option,
            "at most one of the value and its _file may be set".into(),
        )),
        (Some(v), None) => Ok(Some(SecretText::Inline(v.to_owned()))),
        (None, Some(p)) => Ok(Some(SecretText::File(dir.join(p)))),
        (None, None) => Ok(None),
    };
    let bearer = secret(&h.bearer_token, &h.bearer_token_file, "http.bearer_token")?;
    let mut auths = Vec::new();
    if let Some(b) = &h.basic_auth {
        auths.push(Auth::Basic {
            username: b.username.clone(),
            password: secret(&b.password, &b.password_file, "http.basic_auth.password")?,
        });
    }
    if let Some(a) = &h.authorization {
        let scheme = a
            .scheme
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "Bearer".into());
        if scheme.eq_ignore_ascii_case("basic") {
            return Err(invalid(
                "http.authorization.type",
                "cannot be set to \"basic\", use basic_auth instead".into(),
            ));
        }
        auths.push(Auth::Authorization {
            scheme,
            credentials: secret(
                &a.credentials,
                &a.credentials_file,
                "http.authorization.credentials",
            )?,
        });
    }
    if let Some(token) = bearer {
        auths.push(Auth::Authorization {
            scheme: "Bearer".into(),
            credentials: Some(token),
        });
    }
    if auths.len() > 1 {
        return Err(invalid(
            "http",
            "at most one of basic_auth, authorization and bearer_token(_file) may be set".into(),
        ));
    }
    Ok(Module {
        name: name.to_owned(),
        timeout,
        shown,
        http: HttpModule {
            statuses,
            http_versions,
            ip_version,
            follow_redirects,
            tls_expect,
            method,
            headers,
            body_assertions,
            header_assertions,
            body: h.body,
            compression,
            body_size_limit,
            tls,
            auth: auths.pop(),
        },
    })
}
