//! Leaf checks: one written value → one typed value or one [`ErrorKind`].
//!
//! Pure functions with no positions and no I/O; the caller attaches the span
//! and key path. Each error says what would have been valid.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::error::ErrorKind;
use crate::plan::{Compression, Fsync, HeaderValue, IpVersion, Pattern};
use crate::raw::Scalar;
use crate::valid::{
    FSYNC as FSYNC_VALID, IP_VERSION as IP_VERSION_VALID, NAME as NAME_VALID, is_name,
};
use crate::{duration, size, status};

fn invalid(message: impl Into<String>, valid: impl Into<String>) -> ErrorKind {
    ErrorKind::Invalid {
        message: message.into(),
        valid: valid.into(),
    }
}

/// A name: check, gateway, agent id, region.
pub fn name(s: &str) -> Result<String, ErrorKind> {
    if !is_name(s) {
        return Err(invalid(format!("bad name {s:?}"), NAME_VALID));
    }
    Ok(s.to_owned())
}

/// A duration string.
pub fn duration(v: &Scalar) -> Result<Duration, ErrorKind> {
    match v {
        Scalar::Str(s) => duration::parse(s)
            .map_err(|e| invalid(format!("bad duration {s:?}: {e}"), duration::VALID)),
        Scalar::Int(i) => Err(invalid(
            format!("wrong type: integer `{i}`"),
            duration::VALID,
        )),
    }
}

/// A check interval: at least one second.
pub fn interval(v: &Scalar) -> Result<Duration, ErrorKind> {
    let d = duration(v)?;
    if d < Duration::from_secs(1) {
        return Err(ErrorKind::IntervalTooShort {
            interval: duration::format(d),
        });
    }
    Ok(d)
}

/// A timeout: more than zero.
pub fn timeout(v: &Scalar) -> Result<Duration, ErrorKind> {
    let d = duration(v)?;
    if d.is_zero() {
        return Err(invalid(
            "timeout must be more than 0",
            "a duration such as \"5s\", below the interval",
        ));
    }
    Ok(d)
}

/// `resolution_delay`: how long an A answer waits for AAAA, 0 to 1 s
/// (RFC 8305 recommends 50 ms).
pub fn resolution_delay(v: &Scalar) -> Result<Duration, ErrorKind> {
    let d = duration(v)?;
    if d > Duration::from_secs(1) {
        return Err(invalid(
            "resolution_delay must be at most 1s",
            "a duration from \"0s\" to \"1s\", such as \"50ms\"",
        ));
    }
    Ok(d)
}

/// A byte size.
pub fn size(v: &Scalar) -> Result<u64, ErrorKind> {
    match v {
        Scalar::Int(i) => {
            u64::try_from(*i).map_err(|_| invalid(format!("negative size {i}"), size::VALID))
        }
        Scalar::Str(s) => {
            size::parse(s).map_err(|e| invalid(format!("bad size {s:?}: {e}"), size::VALID))
        }
    }
}

/// An integer within `range`.
pub fn int_in(v: i64, range: RangeInclusive<i64>) -> Result<i64, ErrorKind> {
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(invalid(
            format!("{v} is out of range"),
            format!("an integer from {} to {}", range.start(), range.end()),
        ))
    }
}

/// True for RFC 9110 `tchar`s, the characters of methods and header names.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// An HTTP method, upper-cased. CONNECT is refused: it opens a tunnel
/// rather than asking for a response.
pub fn method(s: &str) -> Result<http::Method, ErrorKind> {
    let bad = || ErrorKind::BadMethod {
        method: s.to_owned(),
    };
    if s.is_empty() || !s.chars().all(is_tchar) {
        return Err(bad());
    }
    let upper = s.to_ascii_uppercase();
    if upper == "CONNECT" {
        return Err(bad());
    }
    http::Method::from_bytes(upper.as_bytes()).map_err(|_| bad())
}

/// An `http` or `https` URL with a host and no credentials.
pub fn url(s: &str) -> Result<url::Url, ErrorKind> {
    const VALID: &str =
        "an absolute http:// or https:// URL with a host, such as \"https://example.com/health\"";
    let bad = |reason: String| ErrorKind::BadUrl {
        url: redact_userinfo(s),
        reason,
        valid: VALID.to_owned(),
    };
    let u = url::Url::parse(s).map_err(|e| bad(e.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad(format!("scheme `{}` is not supported", u.scheme())));
    }
    match u.host_str() {
        None | Some("") => return Err(bad("no host".into())),
        Some(_) => {}
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad(
            "credentials in a URL would reach logs; use headers.authorization = { env = \"NAME\" }"
                .into(),
        ));
    }
    Ok(u)
}

/// `s` with the userinfo of its authority (`user:password@`), if any,
/// replaced by `***`: an error quoting a URL must not print a password.
/// Textual, so it also holds for a URL that does not parse.
pub fn redact_userinfo(s: &str) -> String {
    let Some(scheme_end) = s.find("://").map(|i| i + 3) else {
        return s.to_owned();
    };
    let rest = &s[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &s[..scheme_end], &rest[at..]),
        None => s.to_owned(),
    }
}

/// One `expect_status` entry (see [`crate::status`]).
pub fn status(v: &Scalar) -> Result<RangeInclusive<u16>, ErrorKind> {
    match v {
        Scalar::Int(i) => status::from_code(*i),
        Scalar::Str(s) => status::parse(s),
    }
    .map_err(|e| invalid(e.to_string(), status::VALID))
}

/// `compression`.
pub fn compression(s: &str) -> Result<Compression, ErrorKind> {
    match s {
        "auto" => Ok(Compression::Auto),
        "gzip" => Ok(Compression::Gzip),
        "br" => Ok(Compression::Brotli),
        "deflate" => Ok(Compression::Deflate),
        "identity" => Ok(Compression::Identity),
        _ => Err(invalid(
            format!("bad compression {s:?}"),
            crate::valid::COMPRESSION,
        )),
    }
}

/// `ip_version`.
pub fn ip_version(v: &Scalar) -> Result<IpVersion, ErrorKind> {
    match v {
        Scalar::Int(4) => Ok(IpVersion::V4),
        Scalar::Int(6) => Ok(IpVersion::V6),
        Scalar::Str(s) => match s.as_str() {
            "auto" => Ok(IpVersion::Auto),
            "prefer4" => Ok(IpVersion::Prefer4),
            "prefer6" => Ok(IpVersion::Prefer6),
            "4" => Ok(IpVersion::V4),
            "6" => Ok(IpVersion::V6),
            _ => Err(invalid(format!("bad ip_version {s:?}"), IP_VERSION_VALID)),
        },
        Scalar::Int(i) => Err(invalid(format!("bad ip_version {i}"), IP_VERSION_VALID)),
    }
}

/// `dns_server`: `"system"` (None), an IP (port 53), or an IP and port.
pub fn dns_server(s: &str) -> Result<Option<SocketAddr>, ErrorKind> {
    if s == "system" {
        return Ok(None);
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(Some(addr));
    }
    if let Ok(ip) = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(Some(SocketAddr::new(ip, 53)));
    }
    Err(invalid(
        format!("bad DNS server {s:?}"),
        "\"system\", an IP address such as \"9.9.9.9\" or \"2620:fe::fe\", or with a port: \"127.0.0.1:5353\", \"[::1]:5353\"",
    ))
}

/// A listen address such as `127.0.0.1:9464`.
pub fn listen_addr(s: &str) -> Result<SocketAddr, ErrorKind> {
    s.parse().map_err(|_| {
        invalid(
            format!("bad address {s:?}"),
            "an IP address and port such as \"127.0.0.1:9464\" or \"[::]:9464\"",
        )
    })
}

/// A header name. Content-Length and Transfer-Encoding belong to sonde.
pub fn header_name(s: &str) -> Result<String, ErrorKind> {
    if s.is_empty() || !s.chars().all(is_tchar) {
        return Err(invalid(
            format!("bad header name {s:?}"),
            "letters, digits and !#$%&'*+-.^_`|~",
        ));
    }
    let lower = s.to_ascii_lowercase();
    if lower == "content-length" || lower == "transfer-encoding" {
        return Err(invalid(
            format!("header {s} is set by sonde from the body"),
            "any other header",
        ));
    }
    Ok(s.to_owned())
}

/// Header names whose value is a credential, lower case: exactly these...
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];
/// ...and any name with one of these as a whole word (words split on `-`
/// and `_`, case-insensitive; `X-Monkey` is not a key)...
const CREDENTIAL_NAME_WORDS: [&str; 3] = ["token", "key", "secret"];
/// ...or one of these run-together words...
const CREDENTIAL_COMPOUND_WORDS: [&str; 5] = [
    "apikey",
    "apitoken",
    "authtoken",
    "accesstoken",
    "clientsecret",
];
/// ...except these well-known names whose value is not a secret (a
/// WebSocket nonce, a request's idempotency key), and names whose last
/// word is `id` (`X-Api-Key-Id` names a key, it is not one).
const NON_SECRET_HEADERS: [&str; 2] = ["sec-websocket-key", "idempotency-key"];

/// Whether header `name` carries a credential, so that its value must come
/// from `{ env = ... }` or `{ file = ... }`, never the configuration text.
pub fn is_credential_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if CREDENTIAL_HEADERS.contains(&lower.as_str()) {
        return true;
    }
    if NON_SECRET_HEADERS.contains(&lower.as_str()) {
        return false;
    }
    let words: Vec<&str> = lower.split(['-', '_']).collect();
    if words.last() == Some(&"id") {
        return false;
    }
    words.iter().any(|word| {
        CREDENTIAL_NAME_WORDS.contains(word) || CREDENTIAL_COMPOUND_WORDS.contains(word)
    })
}

/// Refuses an inline value for a credential header. The error never quotes
/// the value.
pub fn inline_header_value(name: &str) -> Result<(), ErrorKind> {
    if is_credential_header(name) {
        return Err(invalid(
            format!("header {name} carries a credential; its value may not be written inline"),
            "{ env = \"NAME\" } or { file = \"/path\" }",
        ));
    }
    Ok(())
}

/// Whether `s` may be sent as a header value. The error never quotes the
/// value, which may be a secret.
pub fn header_value(s: &str) -> Result<(), ErrorKind> {
    if s.chars()
        .any(|c| (c.is_ascii_control() && c != '\t') || c == '\u{7f}')
    {
        return Err(invalid(
            "header value contains a control character (such as a newline)",
            "printable text; tabs allowed",
        ));
    }
    Ok(())
}

/// A header already checked by [`header_name`] and [`header_value`], in
/// the types sent on the wire; a secret value is marked sensitive.
pub fn compiled_header(
    name: &str,
    value: &HeaderValue,
) -> Result<(http::HeaderName, http::HeaderValue), ErrorKind> {
    let wire_name = http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| invalid(format!("bad header name {name:?}"), "an HTTP token"))?;
    let mut wire_value = http::HeaderValue::from_str(value.expose()).map_err(|_| {
        invalid(
            "header value contains a character HTTP does not allow",
            "printable text; tabs allowed",
        )
    })?;
    wire_value.set_sensitive(matches!(value, HeaderValue::Secret(_)));
    Ok((wire_name, wire_value))
}

/// Whether `url`'s host is this machine: 127.0.0.0/8, `::1`, `localhost`
/// or a name under `.localhost`. Cleartext to a gateway is allowed only there.
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => false,
    }
}

/// A label name: Prometheus-compatible, not one sonde sets itself.
pub fn label_name(s: &str) -> Result<String, ErrorKind> {
    const VALID: &str = "[A-Za-z_][A-Za-z0-9_]*, not starting with __, not check, agent or region";
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') || s.starts_with("__") {
        return Err(invalid(format!("bad label name {s:?}"), VALID));
    }
    if matches!(s, "check" | "agent" | "region") {
        return Err(invalid(format!("label {s} is set by sonde"), VALID));
    }
    Ok(s.to_owned())
}

/// A DNS name for SNI and certificate verification.
pub fn server_name(s: &str) -> Result<String, ErrorKind> {
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let trimmed = s.strip_suffix('.').unwrap_or(s);
    if s.len() > 253 || trimmed.split('.').any(|l| !ok_label(l)) {
        return Err(invalid(
            format!("bad server name {s:?}"),
            "a DNS name such as \"api.example.com\"",
        ));
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// A `body_matches` pattern, compiled once for matching bytes.
pub fn pattern(s: &str) -> Result<Pattern, ErrorKind> {
    Pattern::new(s).map_err(|e| ErrorKind::BadRegex {
        message: e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    })
}

/// `fsync`.
pub fn fsync(v: &Scalar) -> Result<Fsync, ErrorKind> {
    match v {
        Scalar::Str(s) if s == "always" => Ok(Fsync::Always),
        Scalar::Str(s) if s == "never" => Ok(Fsync::Never),
        Scalar::Str(s) => match duration::parse(s) {
            Ok(d) if !d.is_zero() => Ok(Fsync::Every(d)),
            Ok(_) => Err(invalid("fsync interval must be more than 0", FSYNC_VALID)),
            Err(e) => Err(invalid(format!("bad fsync {s:?}: {e}"), FSYNC_VALID)),
        },
        Scalar::Int(i) => Err(invalid(format!("wrong type: integer `{i}`"), FSYNC_VALID)),
    }
}

const BUCKETS_VALID: &str =
    "ascending upper bounds in seconds, finite and above 0, at most 30, such as [0.01, 0.1, 1]";

/// `[prometheus] phase_buckets`: the histograms' upper bounds.
pub fn buckets(bounds: &[f64]) -> Result<Vec<f64>, ErrorKind> {
    let max = crate::plan::Prometheus::MAX_BUCKETS;
    if bounds.is_empty() {
        return Err(invalid("no buckets", BUCKETS_VALID));
    }
    if bounds.len() > max {
        let n = bounds.len();
        return Err(invalid(
            format!("{n} buckets, more than {max}"),
            BUCKETS_VALID,
        ));
    }
    if let Some(b) = bounds.iter().find(|b| !b.is_finite() || **b <= 0.0) {
        return Err(invalid(
            format!("bucket {b} is not a positive finite number"),
            BUCKETS_VALID,
        ));
    }
    if let Some(w) = bounds.windows(2).find(|w| w[0] >= w[1]) {
        return Err(invalid(
            format!("buckets not ascending: {} then {}", w[0], w[1]),
            BUCKETS_VALID,
        ));
    }
    Ok(bounds.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_must_be_ascending_finite_positive_and_few() {
        assert_eq!(buckets(&[0.1, 1.0]).unwrap(), vec![0.1, 1.0]);
        let msg = |b: &[f64]| buckets(b).unwrap_err().to_string();
        assert!(msg(&[]).contains("no buckets"));
        assert!(msg(&[1.0, 0.5]).contains("not ascending: 1 then 0.5"));
        assert!(msg(&[1.0, 1.0]).contains("not ascending"));
        assert!(msg(&[0.0, 1.0]).contains("bucket 0 is not a positive"));
        assert!(msg(&[-1.0]).contains("not a positive"));
        assert!(msg(&[f64::INFINITY]).contains("not a positive finite"));
        assert!(msg(&[f64::NAN]).contains("not a positive finite"));
        let many: Vec<f64> = (1..=31).map(f64::from).collect();
        assert!(msg(&many).contains("31 buckets, more than 30"));
        assert!(buckets(&many[..30]).is_ok());
    }

    fn s(v: &str) -> Scalar {
        Scalar::Str(v.into())
    }

    fn msg<T: std::fmt::Debug>(r: Result<T, ErrorKind>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn names() {
        assert_eq!(name("api-1.v2_x"), Ok("api-1.v2_x".into()));
        assert_eq!(
            msg(name("a b")),
            "bad name \"a b\" (valid: 1 to 64 characters from A-Z a-z 0-9 _ . -)"
        );
        assert!(name("").is_err());
        assert!(name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn intervals_must_be_a_second_or_more() {
        assert_eq!(interval(&s("1s")), Ok(Duration::from_secs(1)));
        assert_eq!(
            msg(interval(&s("500ms"))),
            "interval 500ms is too short (valid: 1s or more)"
        );
        assert_eq!(
            msg(interval(&s("5"))),
            "bad duration \"5\": `5` has no unit (valid: a duration such as \"500ms\", \"15s\", \"1m30s\", \"2h\" or \"7d\")"
        );
        assert!(timeout(&s("0s")).is_err());
    }

    #[test]
    fn methods_are_tokens_and_upper_cased() {
        assert_eq!(method("get"), Ok(http::Method::GET));
        assert_eq!(
            method("PROPFIND").map(|m| m.to_string()),
            Ok("PROPFIND".into())
        );
        assert_eq!(
            msg(method("GE T")),
            "bad method `GE T` (valid: an HTTP method such as GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH)"
        );
        assert!(method("").is_err());
        assert!(method("connect").is_err());
    }

    #[test]
    fn urls_must_be_http_with_a_host_and_no_credentials() {
        assert_eq!(
            url("https://example.com/x?y=1").unwrap().as_str(),
            "https://example.com/x?y=1"
        );
        assert_eq!(
            url("http://127.0.0.1:9464/healthz").unwrap().port(),
            Some(9464)
        );
        assert!(msg(url("ftp://example.com/")).contains("scheme `ftp` is not supported"));
        assert!(msg(url("example.com")).contains("relative URL without a base"));
        assert!(msg(url("http://u:p@example.com/")).contains("credentials in a URL"));
        assert!(msg(url("nope")).ends_with(
            "(valid: an absolute http:// or https:// URL with a host, such as \"https://example.com/health\")"
        ));
    }

    #[test]
    fn statuses_codes_classes_and_ranges() {
        assert_eq!(status(&Scalar::Int(204)), Ok(204..=204));
        assert_eq!(status(&s("2xx")), Ok(200..=299));
        assert_eq!(status(&s("3XX")), Ok(300..=399));
        assert_eq!(status(&s("200-399")), Ok(200..=399));
        assert_eq!(status(&s("418")), Ok(418..=418));
        for bad in ["6xx", "0xx", "399-200", "200-600", "abc", ""] {
            assert!(status(&s(bad)).is_err(), "{bad}");
        }
        assert!(
            msg(status(&Scalar::Int(99)))
                .starts_with("bad status 99 (valid: a status code 100-599")
        );
    }

    #[test]
    fn compressions() {
        assert_eq!(compression("auto"), Ok(Compression::Auto));
        assert_eq!(compression("br"), Ok(Compression::Brotli));
        assert_eq!(compression("identity"), Ok(Compression::Identity));
        assert!(compression("brotli").is_err());
        assert!(compression("GZIP").is_err());
    }

    #[test]
    fn ip_versions() {
        assert_eq!(ip_version(&Scalar::Int(4)), Ok(IpVersion::V4));
        assert_eq!(ip_version(&s("6")), Ok(IpVersion::V6));
        assert_eq!(ip_version(&s("auto")), Ok(IpVersion::Auto));
        assert_eq!(ip_version(&s("prefer4")), Ok(IpVersion::Prefer4));
        assert_eq!(ip_version(&s("prefer6")), Ok(IpVersion::Prefer6));
        assert!(ip_version(&s("prefer5")).is_err());
        assert_eq!(
            msg(ip_version(&Scalar::Int(5))),
            "bad ip_version 5 (valid: \"auto\", \"prefer4\", \"prefer6\", 4 or 6)"
        );
    }

    #[test]
    fn resolution_delays_from_zero_to_a_second() {
        assert_eq!(resolution_delay(&s("50ms")), Ok(Duration::from_millis(50)));
        assert_eq!(resolution_delay(&s("0s")), Ok(Duration::ZERO));
        assert!(resolution_delay(&s("2s")).is_err());
    }

    #[test]
    fn dns_servers_default_to_port_53() {
        assert_eq!(
            dns_server("9.9.9.9"),
            Ok(Some("9.9.9.9:53".parse().unwrap()))
        );
        assert_eq!(
            dns_server("127.0.0.1:5353"),
            Ok(Some("127.0.0.1:5353".parse().unwrap()))
        );
        assert_eq!(dns_server("::1"), Ok(Some("[::1]:53".parse().unwrap())));
        assert_eq!(dns_server("[::1]"), Ok(Some("[::1]:53".parse().unwrap())));
        assert_eq!(
            dns_server("[::1]:5353"),
            Ok(Some("[::1]:5353".parse().unwrap()))
        );
        assert_eq!(dns_server("system"), Ok(None));
        assert!(dns_server("dns.google").is_err());
    }

    #[test]
    fn a_url_refused_for_its_credentials_does_not_print_them() {
        let e = msg(url("https://user:hunter2@example.com/health"));
        assert!(!e.contains("hunter2") && !e.contains("user:"), "{e}");
        assert!(e.contains("https://***@example.com/health"), "{e}");
        assert_eq!(
            redact_userinfo("https://a:b@c@bad host/x@y"),
            "https://***@bad host/x@y"
        );
        assert_eq!(redact_userinfo("http://h/p?q=a@b"), "http://h/p?q=a@b");
        assert_eq!(redact_userinfo("not a url"), "not a url");
    }

    #[test]
    fn credential_headers_are_named_by_rule() {
        for name in [
            "Authorization",
            "proxy-authorization",
            "COOKIE",
            "X-Api-Key",
            "X-Auth-Token",
            "x-client-secret",
            "Private-Token",
            "X-Secret",
            "x_api_key",
            "X-ApiKey",
        ] {
            assert!(is_credential_header(name), "{name}");
            let e = msg(inline_header_value(name));
            assert!(e.contains("{ env = \"NAME\" }"), "{e}");
        }
        for name in [
            "Accept",
            "X-Probe",
            "User-Agent",
            "Set-Cookie",
            "X-Monkey",
            "X-Api-Key-Id",
            "Sec-WebSocket-Key",
            "Idempotency-Key",
            "X-Keyboard",
        ] {
            assert!(!is_credential_header(name), "{name}");
        }
        assert_eq!(inline_header_value("Accept"), Ok(()));
    }

    #[test]
    fn headers_and_labels() {
        assert_eq!(header_name("X-Probe"), Ok("X-Probe".into()));
        assert!(header_name("X Probe").is_err());
        assert!(header_name("content-length").is_err());
        assert!(header_value("a\tb").is_ok());
        let e = msg(header_value("secret\r\nX-Evil: 1"));
        assert!(!e.contains("secret"), "{e}");
        assert_eq!(label_name("team"), Ok("team".into()));
        assert!(label_name("1team").is_err());
        assert!(label_name("__x").is_err());
        assert!(label_name("check").is_err());
    }

    #[test]
    fn server_names_and_patterns() {
        assert_eq!(
            server_name("API.example.com."),
            Ok("api.example.com".into())
        );
        assert!(server_name("bad_name.com").is_err());
        assert!(server_name("").is_err());
        assert!(pattern("^ok$").is_ok());
        let e = msg(pattern("a("));
        assert!(
            e.starts_with("bad regular expression: regex parse error:"),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }

    #[test]
    fn sizes_and_fsync() {
        assert_eq!(size(&Scalar::Int(10)), Ok(10));
        assert_eq!(size(&s("1MiB")), Ok(1 << 20));
        assert!(size(&Scalar::Int(-1)).is_err());
        assert_eq!(fsync(&s("always")), Ok(Fsync::Always));
        assert_eq!(fsync(&s("never")), Ok(Fsync::Never));
        assert_eq!(fsync(&s("1s")), Ok(Fsync::Every(Duration::from_secs(1))));
        assert!(fsync(&s("0s")).is_err());
        assert!(fsync(&s("sometimes")).is_err());
    }
}
