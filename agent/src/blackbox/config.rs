//! A blackbox_exporter configuration file read as blackbox_exporter reads
//! it: YAML `modules: {name: {prober, timeout, http: {...}}}` with its
//! defaults, into validated [`Module`]s (regexes compiled, headers parsed).
//! Pure: text in, modules or a typed error out. Options blackbox_exporter
//! knows but sonde does not implement are refused by name, unknown keys
//! as unknown; files named in a module are only recorded here (see
//! `module.rs`, which reads them).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Version};
use regex::bytes::RegexBuilder as BytesRegexBuilder;
use serde::Deserialize;
use serde_yaml_ng::Value;

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

/// Module keys blackbox_exporter knows but sonde does not implement.
const REFUSED_MODULE: &[&str] = &["tcp", "icmp", "dns", "grpc", "unix"];
const MODULE_KEYS: &[&str] = &["prober", "timeout", "http"];
const HTTP_KEYS: &[&str] = &[
    "valid_status_codes",
    "valid_http_versions",
    "preferred_ip_protocol",
    "ip_protocol_fallback",
    "no_follow_redirects",
    "follow_redirects",
    "fail_if_ssl",
    "fail_if_not_ssl",
    "method",
    "headers",
    "fail_if_body_matches_regexp",
    "fail_if_body_not_matches_regexp",
    "fail_if_header_matches",
    "fail_if_header_not_matches",
    "body",
    "compression",
    "body_size_limit",
    "tls_config",
    "basic_auth",
    "authorization",
    "bearer_token",
    "bearer_token_file",
];
/// blackbox_exporter's (v0.23 to v0.28) and prometheus/common's HTTP
/// client options that sonde refuses.
const REFUSED_HTTP: &[&str] = &[
    "skip_resolve_phase_with_proxy",
    "fail_if_body_json_matches_cel",
    "fail_if_body_json_not_matches_cel",
    "body_file",
    "enable_http3",
    "enable_http2",
    "oauth2",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
    "http_headers",
];
const TLS_KEYS: &[&str] = &[
    "ca_file",
    "cert_file",
    "key_file",
    "server_name",
    "insecure_skip_verify",
    "min_version",
];
const REFUSED_TLS: &[&str] = &["ca", "cert", "key", "max_version"];
const BASIC_KEYS: &[&str] = &["username", "password", "password_file"];
const REFUSED_BASIC: &[&str] = &["username_file"];
const AUTHORIZATION_KEYS: &[&str] = &["type", "credentials", "credentials_file"];
const HEADER_MATCH_KEYS: &[&str] = &["header", "regexp", "allow_missing"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    modules: BTreeMap<String, RawModule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    #[serde(default)]
    prober: String,
    #[serde(default)]
    timeout: Option<Scalar>,
    #[serde(default)]
    http: RawHttp,
}

/// A YAML scalar Go would take as a number or text.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum Scalar {
    Int(u64),
    Text(String),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    valid_status_codes: Vec<u16>,
    valid_http_versions: Vec<String>,
    preferred_ip_protocol: String,
    ip_protocol_fallback: Option<bool>,
    no_follow_redirects: Option<bool>,
    follow_redirects: Option<bool>,
    fail_if_ssl: bool,
    fail_if_not_ssl: bool,
    method: String,
    headers: BTreeMap<String, String>,
    fail_if_body_matches_regexp: Vec<String>,
    fail_if_body_not_matches_regexp: Vec<String>,
    fail_if_header_matches: Vec<RawHeaderMatch>,
    fail_if_header_not_matches: Vec<RawHeaderMatch>,
    body: String,
    compression: String,
    body_size_limit: Option<Scalar>,
    tls_config: RawTls,
    basic_auth: Option<RawBasicAuth>,
    authorization: Option<RawAuthorization>,
    bearer_token: Option<String>,
    bearer_token_file: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawHeaderMatch {
    header: String,
    regexp: String,
    allow_missing: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawTls {
    ca_file: String,
    cert_file: String,
    key_file: String,
    server_name: String,
    insecure_skip_verify: bool,
    min_version: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawBasicAuth {
    username: String,
    password: Option<String>,
    password_file: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawAuthorization {
    #[serde(rename = "type")]
    scheme: Option<String>,
    credentials: Option<String>,
    credentials_file: Option<String>,
}

/// Parses and validates the text of the file at `path` (named in errors;
/// relative file names in it are resolved against its folder).
pub fn parse(text: &str, path: &Path) -> Result<Vec<Module>, BlackboxError> {
    let fail = |location, kind| BlackboxError {
        path: path.to_owned(),
        location,
        kind,
    };
    let value: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| fail(location_of(&e), ErrorKind::Yaml(e.to_string())))?;
    check_names(&value).map_err(|(module, option, kind)| {
        let location = module
            .as_deref()
            .and_then(|m| locate(text, m, option.as_deref()));
        fail(location, kind)
    })?;
    let raw: RawFile = serde_yaml_ng::from_str(text)
        .map_err(|e| fail(location_of(&e), ErrorKind::Yaml(e.to_string())))?;
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

fn location_of(e: &serde_yaml_ng::Error) -> Option<Location> {
    e.location().map(|l| Location {
        line: l.line(),
        column: l.column(),
    })
}

type NameError = (Option<String>, Option<String>, ErrorKind);

/// Refuses, by name, what sonde does not implement and what nobody knows.
fn check_names(value: &Value) -> Result<(), NameError> {
    let Some(top) = value.as_mapping() else {
        return Ok(()); // An empty file; a non-mapping is the typed pass's error.
    };
    for key in top.keys() {
        let key = key_text(key);
        if key != "modules" {
            return Err((None, None, ErrorKind::UnknownTop(key)));
        }
    }
    let Some(modules) = top.get("modules").and_then(Value::as_mapping) else {
        return Ok(());
    };
    for (name, module) in modules {
        let name = key_text(name);
        let Some(module) = module.as_mapping() else {
            continue;
        };
        let prober = module.get("prober").and_then(Value::as_str).unwrap_or("");
        if prober != "http" {
            let kind = ErrorKind::Prober {
                module: name.clone(),
                prober: prober.to_owned(),
            };
            return Err((Some(name), Some("prober".into()), kind));
        }
        keys(&name, "", module, MODULE_KEYS, REFUSED_MODULE)?;
        let Some(http) = module.get("http").and_then(Value::as_mapping) else {
            continue;
        };
        keys(&name, "http.", http, HTTP_KEYS, REFUSED_HTTP)?;
        let nested: [(&str, &[&str], &[&str]); 3] = [
            ("tls_config", TLS_KEYS, REFUSED_TLS),
            ("basic_auth", BASIC_KEYS, REFUSED_BASIC),
            ("authorization", AUTHORIZATION_KEYS, &[]),
        ];
        for (section, known, refused) in nested {
            if let Some(map) = http.get(section).and_then(Value::as_mapping) {
                keys(&name, &format!("http.{section}."), map, known, refused)?;
            }
        }
        for section in ["fail_if_header_matches", "fail_if_header_not_matches"] {
            let items = http.get(section).and_then(Value::as_sequence);
            for item in items.into_iter().flatten().filter_map(Value::as_mapping) {
                keys(
                    &name,
                    &format!("http.{section}[]."),
                    item,
                    HEADER_MATCH_KEYS,
                    &[],
                )?;
            }
        }
    }
    Ok(())
}

fn keys(
    module: &str,
    prefix: &str,
    map: &serde_yaml_ng::Mapping,
    known: &[&str],
    refused: &[&str],
) -> Result<(), NameError> {
    for key in map.keys() {
        let key = key_text(key);
        if known.contains(&key.as_str()) {
            continue;
        }
        let option = format!("{prefix}{key}");
        let kind = if refused.contains(&key.as_str()) {
            ErrorKind::Unsupported {
                module: module.to_owned(),
                option: option.clone(),
            }
        } else {
            ErrorKind::Unknown {
                module: module.to_owned(),
                option: option.clone(),
            }
        };
        return Err((Some(module.to_owned()), Some(option), kind));
    }
    Ok(())
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
    }
}

/// Best effort, for block-style YAML: the line of `option`'s last key
/// after the line that opens `module` (or that line itself).
fn locate(text: &str, module: &str, option: Option<&str>) -> Option<Location> {
    let opens = |line: &str, key: &str| {
        let t = line.trim_start();
        let t = t.strip_prefix("- ").unwrap_or(t);
        [key.to_owned(), format!("\"{key}\""), format!("'{key}'")]
            .iter()
            .any(|k| {
                t.strip_prefix(k.as_str())
                    .is_some_and(|r| r.starts_with(':'))
            })
    };
    let column = |line: &str| {
        let t = line.trim_start();
        line.len() - t.len() + 1 + usize::from(t.starts_with("- ")) * 2
    };
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| opens(l, module))?;
    let Some(option) = option else {
        return Some(Location {
            line: start + 1,
            column: column(lines[start]),
        });
    };
    let last = option
        .rsplit('.')
        .next()
        .unwrap_or(option)
        .trim_end_matches("[]");
    let indent = lines[start].len() - lines[start].trim_start().len();
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        let t = line.trim_start();
        if !t.is_empty() && !t.starts_with('#') && line.len() - t.len() <= indent {
            break; // The next module.
        }
        if opens(line, last) {
            return Some(Location {
                line: i + 1,
                column: column(line),
            });
        }
    }
    Some(Location {
        line: start + 1,
        column: column(lines[start]),
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
    let compression = match h.compression.as_str() {
        "" => None,
        "gzip" => Some(Compression::Gzip),
        "deflate" => Some(Compression::Deflate),
        "identity" => Some(Compression::Identity),
        "br" => {
            return Err(invalid(
                "http.compression",
                "br is not supported by sonde (valid: gzip, deflate, identity)".into(),
            ));
        }
        other => {
            return Err(invalid(
                "http.compression",
                format!("{other:?} (valid: gzip, deflate, identity)"),
            ));
        }
    };
    let body_size_limit = match &h.body_size_limit {
        None | Some(Scalar::Int(0)) => u64::MAX,
        Some(Scalar::Int(n)) => *n,
        Some(Scalar::Text(t)) => match base2_bytes(t) {
            Ok(0) => u64::MAX,
            Ok(n) => n,
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

/// The module as blackbox_exporter's debug output prints it (yaml.v2 of
/// its Go struct): non-empty options in its field order, secrets as
/// `<secret>`, the http prober's defaults filled in.
fn show(raw: &RawModule, timeout: Option<Duration>) -> String {
    use serde_yaml_ng::Mapping;
    fn put(m: &mut Mapping, key: &str, value: Value) {
        let empty = match &value {
            Value::Null => true,
            Value::Bool(b) => !b,
            Value::String(s) => s.is_empty(),
            Value::Sequence(s) => s.is_empty(),
            Value::Mapping(m) => m.is_empty(),
            _ => false,
        };
        if !empty {
            m.insert(Value::String(key.into()), value);
        }
    }
    let s = |t: &str| Value::String(t.to_owned());
    let secret = |v: &Option<String>| {
        v.as_deref()
            .filter(|t| !t.is_empty())
            .map_or(Value::Null, |_| s("<secret>"))
    };
    let opt = |v: &Option<String>| v.as_deref().map_or(Value::Null, s);
    let list = |v: &[String]| Value::Sequence(v.iter().map(|t| s(t)).collect());
    let h = &raw.http;
    let mut http = Mapping::new();
    put(
        &mut http,
        "valid_status_codes",
        Value::Sequence(
            h.valid_status_codes
                .iter()
                .map(|&c| Value::Number(c.into()))
                .collect(),
        ),
    );
    put(
        &mut http,
        "valid_http_versions",
        list(&h.valid_http_versions),
    );
    put(
        &mut http,
        "preferred_ip_protocol",
        s(&h.preferred_ip_protocol),
    );
    put(
        &mut http,
        "ip_protocol_fallback",
        Value::Bool(h.ip_protocol_fallback.unwrap_or(true)),
    );
    put(&mut http, "fail_if_ssl", Value::Bool(h.fail_if_ssl));
    put(&mut http, "fail_if_not_ssl", Value::Bool(h.fail_if_not_ssl));
    put(&mut http, "method", s(&h.method));
    let mut headers = Mapping::new();
    for (k, v) in &h.headers {
        headers.insert(s(k), s(v));
    }
    put(&mut http, "headers", Value::Mapping(headers));
    put(
        &mut http,
        "fail_if_body_matches_regexp",
        list(&h.fail_if_body_matches_regexp),
    );
    put(
        &mut http,
        "fail_if_body_not_matches_regexp",
        list(&h.fail_if_body_not_matches_regexp),
    );
    for (key, matches) in [
        ("fail_if_header_matches", &h.fail_if_header_matches),
        ("fail_if_header_not_matches", &h.fail_if_header_not_matches),
    ] {
        let items = matches
            .iter()
            .map(|m| {
                let mut item = Mapping::new();
                put(&mut item, "header", s(&m.header));
                put(&mut item, "regexp", s(&m.regexp));
                put(&mut item, "allow_missing", Value::Bool(m.allow_missing));
                Value::Mapping(item)
            })
            .collect();
        put(&mut http, key, Value::Sequence(items));
    }
    put(&mut http, "body", s(&h.body));
    if let Some(b) = &h.basic_auth {
        let mut m = Mapping::new();
        put(&mut m, "username", s(&b.username));
        put(&mut m, "password", secret(&b.password));
        put(&mut m, "password_file", opt(&b.password_file));
        put(&mut http, "basic_auth", Value::Mapping(m));
    }
    if let Some(a) = &h.authorization {
        let mut m = Mapping::new();
        put(&mut m, "type", opt(&a.scheme));
        put(&mut m, "credentials", secret(&a.credentials));
        put(&mut m, "credentials_file", opt(&a.credentials_file));
        put(&mut http, "authorization", Value::Mapping(m));
    }
    put(&mut http, "bearer_token", secret(&h.bearer_token));
    put(&mut http, "bearer_token_file", opt(&h.bearer_token_file));
    let t = &h.tls_config;
    let mut tls = Mapping::new();
    put(&mut tls, "ca_file", s(&t.ca_file));
    put(&mut tls, "cert_file", s(&t.cert_file));
    put(&mut tls, "key_file", s(&t.key_file));
    put(&mut tls, "server_name", s(&t.server_name));
    put(
        &mut tls,
        "insecure_skip_verify",
        Value::Bool(t.insecure_skip_verify),
    );
    put(&mut tls, "min_version", s(&t.min_version));
    put(&mut http, "tls_config", Value::Mapping(tls));
    let follow = match h.no_follow_redirects {
        Some(no) => !no,
        None => h.follow_redirects.unwrap_or(true),
    };
    put(&mut http, "follow_redirects", Value::Bool(follow));
    put(&mut http, "enable_http2", Value::Bool(true));
    put(&mut http, "compression", s(&h.compression));
    if let Some(limit) = &h.body_size_limit {
        let v = match limit {
            Scalar::Int(n) => Value::Number((*n).into()),
            Scalar::Text(t) => s(t),
        };
        put(&mut http, "body_size_limit", v);
    }
    let mut module = Mapping::new();
    put(&mut module, "prober", s(&raw.prober));
    if let Some(t) = timeout {
        put(&mut module, "timeout", s(&go_format(t)));
    }
    put(&mut module, "http", Value::Mapping(http));
    serde_yaml_ng::to_string(&Value::Mapping(module)).unwrap_or_default()
}

/// Parses a Go duration (`time.ParseDuration`): `300ms`, `1.5s`, `1m30s`;
/// units ns, us (µs), ms, s, m, h; `0` alone.
pub fn go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (valid: as Go's, e.g. 5s, 1m30s, 500ms)");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * scale;
        rest = &rest[u..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// A duration as Go's `Duration.String` writes it, for the whole seconds
/// and milliseconds a timeout has (`5s`, `1m30s`, `500ms`).
fn go_format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m) = (ms / 3_600_000, ms / 60_000 % 60);
    let s = (ms % 60_000) as f64 / 1000.0;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}s"));
    out
}

/// Parses blackbox_exporter's `body_size_limit` (alecthomas/units'
/// Base2Bytes): a number with B, KB/KiB, MB/MiB, GB/GiB, TB/TiB (all
/// powers of 1024), or none (bytes).
pub fn base2_bytes(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a size (valid: e.g. 1024, 512KB, 10MiB)");
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let number: u64 = text[..digits].parse().map_err(|_| bad())?;
    let shift = match &text[digits..] {
        "" | "B" => 0,
        "KB" | "KiB" => 10,
        "MB" | "MiB" => 20,
        "GB" | "GiB" => 30,
        "TB" | "TiB" => 40,
        "PB" | "PiB" => 50,
        _ => return Err(bad()),
    };
    number.checked_mul(1 << shift).ok_or_else(bad)
}
