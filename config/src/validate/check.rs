//! `[defaults]` and `[[check]]`: each layer is checked where it is written,
//! then a check's values win over the defaults, which win over the built-in
//! values. Errors in `[defaults]` are reported once, at `[defaults]`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::{Range, RangeInclusive};
use std::time::Duration;

use toml::Spanned;

use super::{Ctx, defaults, values};
use crate::duration;
use crate::error::ErrorKind;
use crate::plan::{
    Certificates, Check, ClientCert, Compression, Header, HeaderValue, IpVersion, PrivateKey, Tls,
};
use crate::raw::{self, Layer, RawConfig, RawTls};
use crate::secret::Secret;

/// A value with the place it was written, for errors that involve two values.
#[derive(Debug, Clone)]
struct At<T> {
    value: T,
    span: Range<usize>,
    key: String,
}

/// One layer after its own checks; `None` means "not set here" (or invalid,
/// which has been reported already).
#[derive(Debug, Clone, Default)]
struct Resolved {
    interval: Option<At<Duration>>,
    timeout: Option<At<Duration>>,
    method: Option<http::Method>,
    /// Keyed by lower-case name, so a check's `Accept` replaces a default
    /// `accept`; with the compiled name and value.
    headers: BTreeMap<String, (Header, http::HeaderName, http::HeaderValue)>,
    expect_status: Option<Vec<RangeInclusive<u16>>>,
    ip_version: Option<IpVersion>,
    dns_server: Option<Option<SocketAddr>>,
    resolution_delay: Option<Duration>,
    follow_redirects: Option<u8>,
    allow_insecure_redirect: Option<bool>,
    max_body_bytes: Option<At<u64>>,
    compression: Option<Compression>,
    tls: TlsLayer,
    labels: BTreeMap<String, String>,
    /// An interval or timeout here was refused (already reported), so the
    /// pair is not compared again with a fallback value.
    timing_failed: bool,
}

#[derive(Debug, Clone, Default)]
struct TlsLayer {
    ca: Option<Certificates>,
    system_roots: Option<bool>,
    cert: Option<At<Certificates>>,
    key: Option<At<Secret<PrivateKey>>>,
    insecure: Option<bool>,
    server_name: Option<String>,
    /// A file here was refused (already reported): the cert/key pair is
    /// not judged again.
    failed: bool,
}

/// Validates every check, applying `[defaults]`.
pub(super) fn checks(raw: &RawConfig, ctx: &mut Ctx<'_>) -> Option<Vec<Check>> {
    let before = ctx.errors.len();
    let defaults = raw
        .defaults
        .as_ref()
        .map(|d| resolve(&d.get_ref().layer(), "defaults", ctx))
        .unwrap_or_default();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (prefix, check) in &raw.checks {
        if let Some(c) = one(prefix, check, &defaults, &mut seen, ctx) {
            out.push(c);
        }
    }
    (ctx.errors.len() == before).then_some(out)
}

fn one(
    prefix: &str,
    check: &Spanned<raw::RawCheck>,
    defaults: &Resolved,
    seen: &mut BTreeMap<String, usize>,
    ctx: &mut Ctx<'_>,
) -> Option<Check> {
    let raw = check.get_ref();
    let key = |k: &str| format!("{prefix}.{k}");
    let name = match &raw.name {
        None => {
            ctx.error(
                check.span(),
                prefix,
                ErrorKind::MissingKey { key: "name".into() },
            );
            None
        }
        Some(v) => ctx
            .check(v, &key("name"), |s| values::name(s))
            .and_then(|name| {
                let line = ctx.line_of(&v.span());
                match seen.get(&name) {
                    Some(&first_line) => {
                        let kind = ErrorKind::Duplicate {
                            what: "check",
                            name: name.clone(),
                            first_line,
                        };
                        ctx.error(v.span(), &key("name"), kind);
                        None
                    }
                    None => {
                        seen.insert(name.clone(), line);
                        Some(name)
                    }
                }
            }),
    };
    let url = match &raw.url {
        None => {
            ctx.error(
                check.span(),
                prefix,
                ErrorKind::MissingKey { key: "url".into() },
            );
            None
        }
        Some(v) => ctx.check(v, &key("url"), |s| values::url(s)),
    };
    let own = resolve(&raw.layer(), prefix, ctx);

    let interval = own.interval.clone().or_else(|| defaults.interval.clone());
    let timeout = own.timeout.clone().or_else(|| defaults.timeout.clone());
    let interval_value = interval.as_ref().map_or(defaults::INTERVAL, |i| i.value);
    let timeout_value = match &timeout {
        Some(t) => {
            if t.value >= interval_value && !own.timing_failed && !defaults.timing_failed {
                timeout_conflict(t, interval.as_ref(), own.timeout.is_some(), ctx);
            }
            t.value
        }
        // Whole milliseconds, so the rendered plan reads back the same.
        None => defaults::TIMEOUT.min(Duration::from_millis(
            (interval_value / 2).as_millis() as u64
        )),
    };

    let body = raw.body.as_ref().map(|b| b.get_ref().clone());
    let body_contains = raw.body_contains.as_ref().and_then(|v| {
        ctx.check(v, &key("body_contains"), |s| {
            if s.is_empty() {
                Err(ErrorKind::Invalid {
                    message: "empty text always matches".into(),
                    valid: "the text the body must contain".into(),
                })
            } else {
                Ok(s.clone())
            }
        })
    });
    let body_matches = raw
        .body_matches
        .as_ref()
        .and_then(|v| ctx.check(v, &key("body_matches"), |s| values::pattern(s)));
    let method = own
        .method
        .clone()
        .or_else(|| defaults.method.clone())
        .unwrap_or(http::Method::GET);
    let max_body = own
        .max_body_bytes
        .clone()
        .or_else(|| defaults.max_body_bytes.clone());
    let assertion = raw.body_contains.as_ref().or(raw.body_matches.as_ref());
    if let Some(a) = assertion {
        if method == http::Method::HEAD {
            ctx.error(
                a.span(),
                prefix,
                ErrorKind::Invalid {
                    message: "a HEAD response has no body to search".into(),
                    valid: "method GET (or another method that returns a body) with body_contains/body_matches".into(),
                },
            );
        }
        if let Some(m) = max_body.as_ref().filter(|m| m.value == 0) {
            ctx.error(
                m.span.clone(),
                &m.key,
                ErrorKind::Invalid {
                    message: format!("max_body_bytes is 0 but {prefix} searches the body"),
                    valid: "a size above 0, such as \"1MiB\"".into(),
                },
            );
        }
    }
    let tls = merge_tls(&defaults.tls, &own.tls, ctx);

    let mut headers = defaults.headers.clone();
    headers.extend(own.headers);
    let mut header_map = http::HeaderMap::with_capacity(headers.len());
    for (_, name, value) in headers.values() {
        header_map.append(name.clone(), value.clone());
    }
    let mut labels = defaults.labels.clone();
    labels.extend(own.labels);

    Some(Check {
        name: name?,
        url: url?,
        method,
        headers: headers.into_values().map(|(h, _, _)| h).collect(),
        header_map,
        body,
        interval: interval_value,
        timeout: timeout_value,
        expect_status: own
            .expect_status
            .or_else(|| defaults.expect_status.clone())
            .unwrap_or_else(|| vec![defaults::EXPECT_STATUS]),
        body_contains,
        body_matches,
        ip_version: own.ip_version.or(defaults.ip_version).unwrap_or_default(),
        dns_server: own.dns_server.or(defaults.dns_server).flatten(),
        resolution_delay: own
            .resolution_delay
            .or(defaults.resolution_delay)
            .unwrap_or(defaults::RESOLUTION_DELAY),
        follow_redirects: own
            .follow_redirects
            .or(defaults.follow_redirects)
            .unwrap_or(0),
        allow_insecure_redirect: own
            .allow_insecure_redirect
            .or(defaults.allow_insecure_redirect)
            .unwrap_or(false),
        max_body_bytes: max_body.map_or(defaults::MAX_BODY_BYTES, |m| m.value),
        compression: own.compression.or(defaults.compression).unwrap_or_default(),
        tls: tls?,
        labels,
        enabled: raw.enabled.as_ref().is_none_or(|e| *e.get_ref()),
    })
}

/// Reports a timeout that is not below the interval, at the value the check
/// set (or at `[defaults]` when both come from there, once).
fn timeout_conflict(
    timeout: &At<Duration>,
    interval: Option<&At<Duration>>,
    timeout_is_own: bool,
    ctx: &mut Ctx<'_>,
) {
    let interval_value = interval.map_or(defaults::INTERVAL, |i| i.value);
    let interval_is_own = interval.is_some_and(|i| !i.key.starts_with("defaults."));
    let (span, key, note) = if timeout_is_own || !interval_is_own {
        let note = match interval {
            Some(i) if i.key.starts_with("defaults.") && timeout_is_own => {
                format!(
                    " (interval set in [defaults] on line {})",
                    ctx.line_of(&i.span)
                )
            }
            Some(_) => String::new(),
            None => " (the default interval)".to_owned(),
        };
        (timeout.span.clone(), timeout.key.clone(), note)
    } else {
        // The check shortened the interval below the default timeout.
        let Some(i) = interval else { return };
        let note = format!(
            " (timeout set in [defaults] on line {})",
            ctx.line_of(&timeout.span)
        );
        (i.span.clone(), i.key.clone(), note)
    };
    ctx.error(
        span,
        &key,
        ErrorKind::TimeoutNotBelowInterval {
            timeout: duration::format(timeout.value),
            interval: duration::format(interval_value),
            note,
        },
    );
}

fn merge_tls(defaults: &TlsLayer, own: &TlsLayer, ctx: &mut Ctx<'_>) -> Option<Tls> {
    if defaults.failed || own.failed {
        return None;
    }
    let cert = own.cert.clone().or_else(|| defaults.cert.clone());
    let key = own.key.clone().or_else(|| defaults.key.clone());
    let client_cert = match (cert, key) {
        (Some(cert), Some(key)) => {
            if let Err(e) = crate::pem::check_pair(&cert.value.certs, &key.value.expose().der()) {
                let kind = ErrorKind::Invalid {
                    message: format!(
                        "the key in {} is not the key of the certificate in {}: {e}",
                        key.value.source(),
                        cert.value.path.display()
                    ),
                    valid: "the private key of the certificate in cert_file".into(),
                };
                ctx.error(key.span, &key.key, kind);
                return None;
            }
            Some(ClientCert {
                cert: cert.value,
                key: key.value,
            })
        }
        (None, None) => None,
        (Some(one), None) => return pair_error(&one.span, &one.key, "cert_file", "key_file", ctx),
        (None, Some(one)) => return pair_error(&one.span, &one.key, "key_file", "cert_file", ctx),
    };
    let ca = own.ca.clone().or_else(|| defaults.ca.clone());
    let system_roots = ca.is_none() || own.system_roots.or(defaults.system_roots) == Some(true);
    Some(Tls {
        ca,
        system_roots,
        client_cert,
        insecure: own.insecure.or(defaults.insecure).unwrap_or(false),
        server_name: own
            .server_name
            .clone()
            .or_else(|| defaults.server_name.clone()),
    })
}

fn pair_error(
    span: &Range<usize>,
    key: &str,
    has: &str,
    lacks: &str,
    ctx: &mut Ctx<'_>,
) -> Option<Tls> {
    ctx.error(
        span.clone(),
        key,
        ErrorKind::Invalid {
            message: format!("tls.{has} is set without tls.{lacks}"),
            valid: "both cert_file and key_file, or neither".into(),
        },
    );
    None
}

/// Checks the values one layer sets.
fn resolve(layer: &Layer, prefix: &str, ctx: &mut Ctx<'_>) -> Resolved {
    let key = |k: &str| format!("{prefix}.{k}");
    fn at<S, T>(v: &Spanned<S>, key: String, value: T) -> At<T> {
        At {
            value,
            span: v.span(),
            key,
        }
    }
    let mut r = Resolved::default();
    if let Some(v) = &layer.interval {
        r.interval = ctx
            .check(v, &key("interval"), |d| values::interval(&d.0))
            .map(|d| at(v, key("interval"), d));
        r.timing_failed |= r.interval.is_none();
    }
    if let Some(v) = &layer.timeout {
        r.timeout = ctx
            .check(v, &key("timeout"), |d| values::timeout(&d.0))
            .map(|d| at(v, key("timeout"), d));
        r.timing_failed |= r.timeout.is_none();
    }
    // Both set here: compare once, here.
    if let (Some(i), Some(t)) = (&r.interval, &r.timeout) {
        if t.value >= i.value {
            let kind = ErrorKind::TimeoutNotBelowInterval {
                timeout: duration::format(t.value),
                interval: duration::format(i.value),
                note: String::new(),
            };
            ctx.error(t.span.clone(), &t.key, kind);
            r.timing_failed = true;
        }
    }
    r.method = layer
        .method
        .as_ref()
        .and_then(|v| ctx.check(v, &key("method"), |m| values::method(m)));
    if let Some(headers) = &layer.headers {
        r.headers = headers_of(headers, &key("headers"), ctx);
    }
    if let Some(v) = &layer.expect_status {
        r.expect_status = statuses(v, &key("expect_status"), ctx);
    }
    r.ip_version = layer
        .ip_version
        .as_ref()
        .and_then(|v| ctx.check(v, &key("ip_version"), |x| values::ip_version(&x.0)));
    r.dns_server = layer
        .dns_server
        .as_ref()
        .and_then(|v| ctx.check(v, &key("dns_server"), |s| values::dns_server(s)));
    r.resolution_delay = layer.resolution_delay.as_ref().and_then(|v| {
        ctx.check(v, &key("resolution_delay"), |d| {
            values::resolution_delay(&d.0)
        })
    });
    r.follow_redirects = layer
        .follow_redirects
        .as_ref()
        .and_then(|v| ctx.check(v, &key("follow_redirects"), |n| values::int_in(*n, 0..=20)))
        .and_then(|n| u8::try_from(n).ok());
    r.allow_insecure_redirect = layer.allow_insecure_redirect.as_ref().map(|v| *v.get_ref());
    if let Some(v) = &layer.max_body_bytes {
        r.max_body_bytes = ctx
            .check(v, &key("max_body_bytes"), |s| {
                let n = values::size(&s.0)?;
                if n > 1 << 30 {
                    return Err(ErrorKind::Invalid {
                        message: format!(
                            "{} is more than a probe should read",
                            crate::size::format(n)
                        ),
                        valid: "0 to 1GiB".into(),
                    });
                }
                Ok(n)
            })
            .map(|n| at(v, key("max_body_bytes"), n));
    }
    r.compression = layer
        .compression
        .as_ref()
        .and_then(|v| ctx.check(v, &key("compression"), |s| values::compression(s)));
    if let Some(v) = &layer.tls {
        r.tls = tls_layer(v.get_ref(), &key("tls"), ctx);
    }
    if let Some(labels) = &layer.labels {
        for (name, value) in labels {
            let k = format!("{prefix}.labels.{}", name.get_ref());
            if let Some(n) = ctx.check(name, &k, |s| values::label_name(s)) {
                r.labels.insert(n, value.get_ref().clone());
            }
        }
    }
    r
}

type Compiled = (Header, http::HeaderName, http::HeaderValue);

fn headers_of(
    headers: &BTreeMap<Spanned<String>, Spanned<raw::HeaderValue>>,
    prefix: &str,
    ctx: &mut Ctx<'_>,
) -> BTreeMap<String, Compiled> {
    let mut out: BTreeMap<String, Compiled> = BTreeMap::new();
    for (name, value) in headers {
        let key = format!("{prefix}.{}", name.get_ref());
        let Some(n) = ctx.check(name, &key, |s| values::header_name(s)) else {
            continue;
        };
        let lower = n.to_ascii_lowercase();
        if let Some((other, _, _)) = out.get(&lower) {
            let kind = ErrorKind::Invalid {
                message: format!("header {n} is also given as {}", other.name),
                valid: "each header once (names are case-insensitive)".into(),
            };
            ctx.error(name.span(), &key, kind);
            continue;
        }
        let v = match value.get_ref() {
            raw::HeaderValue::Plain(s) => ctx
                .check(value, &key, |_| values::inline_header_value(&n))
                .and_then(|()| ctx.check(value, &key, |_| values::header_value(s)))
                .map(|()| HeaderValue::Plain(s.clone())),
            raw::HeaderValue::Secret(r) => {
                let spanned = Spanned::new(value.span(), r.clone());
                ctx.secret(&spanned, &key).and_then(|secret| {
                    ctx.check(value, &key, |_| values::header_value(secret.expose()))
                        .map(|()| HeaderValue::Secret(secret))
                })
            }
        };
        let Some(parsed) = v else { continue };
        let compiled = ctx.check(value, &key, |_| values::compiled_header(&n, &parsed));
        if let Some((wire_name, wire_value)) = compiled {
            let header = Header {
                name: n,
                value: parsed,
            };
            out.insert(lower, (header, wire_name, wire_value));
        }
    }
    out
}

fn statuses(
    v: &Spanned<Vec<Spanned<raw::StatusItem>>>,
    key: &str,
    ctx: &mut Ctx<'_>,
) -> Option<Vec<RangeInclusive<u16>>> {
    if v.get_ref().is_empty() {
        let kind = ErrorKind::Invalid {
            message: "empty list: no status would count as up".into(),
            valid: format!("a list of {}", crate::status::VALID),
        };
        ctx.error(v.span(), key, kind);
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in v.get_ref().iter().enumerate() {
        match ctx.check(item, &format!("{key}[{i}]"), |s| values::status(&s.0)) {
            Some(r) => out.push(r),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn tls_layer(raw: &RawTls, prefix: &str, ctx: &mut Ctx<'_>) -> TlsLayer {
    let key = |k: &str| format!("{prefix}.{k}");
    let mut t = TlsLayer {
        ca: raw
            .ca_file
            .as_ref()
            .and_then(|v| ctx.trust_anchors(v, &key("ca_file"))),
        system_roots: raw.system_roots.as_ref().map(|v| *v.get_ref()),
        insecure: raw.insecure.as_ref().map(|v| *v.get_ref()),
        server_name: raw
            .server_name
            .as_ref()
            .and_then(|v| ctx.check(v, &key("server_name"), |s| values::server_name(s))),
        ..TlsLayer::default()
    };
    if let Some(v) = &raw.cert_file {
        t.cert = ctx.certificates(v, &key("cert_file")).map(|value| At {
            value,
            span: v.span(),
            key: key("cert_file"),
        });
    }
    if let Some(v) = &raw.key_file {
        t.key = ctx.private_key(v, &key("key_file")).map(|value| At {
            value,
            span: v.span(),
            key: key("key_file"),
        });
    }
    t.failed = (raw.ca_file.is_some() && t.ca.is_none())
        || (raw.cert_file.is_some() && t.cert.is_none())
        || (raw.key_file.is_some() && t.key.is_none());
    t
}
