//! `[sinks]`: the file sink, the stdout sink and the gateways, and the rule
//! that at least one of them is on.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::{Ctx, defaults, values};
use crate::error::ErrorKind;
use crate::plan::{Agent, Certificates, FileSink, GatewaySink, Sinks, StdoutFormat, StdoutSink};
use crate::raw::{RawConfig, RawFileSink, RawGateway, RawSinks, RawStdoutSink};

pub(super) fn sinks(
    raw: &RawConfig,
    agent: &Agent,
    id_given: bool,
    ctx: &mut Ctx<'_>,
) -> Option<Sinks> {
    let sinks_raw = raw
        .sinks
        .as_ref()
        .map(|s| s.get_ref().clone())
        .unwrap_or_default();
    let RawSinks {
        file,
        stdout,
        gateway,
    } = &sinks_raw;
    let file = file_sink(file.as_ref().map(|f| f.get_ref()), agent, ctx);
    let stdout = stdout_sink(stdout.as_ref().map(|s| s.get_ref()), ctx);
    let gateways = gateways(gateway.as_deref().unwrap_or(&[]), agent, id_given, ctx);
    if matches!(file, Some(None))
        && matches!(stdout, Some(None))
        && gateways.as_ref().is_some_and(|g| g.is_empty())
    {
        // Point at the `enabled = false` that turned the default sink off.
        let off = sinks_raw
            .file
            .as_ref()
            .and_then(|f| f.get_ref().enabled.clone());
        match off {
            Some(e) => ctx.error(e.span(), "sinks.file.enabled", ErrorKind::NoSink),
            None => ctx.error(
                raw.sinks.as_ref().map_or(0..0, |s| s.span()),
                "sinks",
                ErrorKind::NoSink,
            ),
        }
    }
    Some(Sinks {
        file: file?,
        stdout: stdout?,
        gateways: gateways?,
    })
}

/// `Some(None)`: disabled. `None`: invalid.
fn file_sink(
    raw: Option<&RawFileSink>,
    agent: &Agent,
    ctx: &mut Ctx<'_>,
) -> Option<Option<FileSink>> {
    let default = RawFileSink::default();
    let raw = raw.unwrap_or(&default);
    let before = ctx.errors.len();
    let size =
        |ctx: &mut Ctx<'_>, v: &Option<Spanned<crate::raw::SizeValue>>, key: &str, d: u64| {
            v.as_ref()
                .and_then(|v| ctx.check(v, key, |s| values::size(&s.0)))
                .unwrap_or(d)
        };
    let age = |ctx: &mut Ctx<'_>,
               v: &Option<Spanned<crate::raw::DurationText>>,
               key: &str,
               d: Duration| {
        v.as_ref()
            .and_then(|v| ctx.check(v, key, |s| values::duration(&s.0)))
            .unwrap_or(d)
    };
    let segment_max_bytes = size(
        ctx,
        &raw.segment_max_bytes,
        "sinks.file.segment_max_bytes",
        defaults::SEGMENT_MAX_BYTES,
    );
    let retention_max_bytes = size(
        ctx,
        &raw.retention_max_bytes,
        "sinks.file.retention_max_bytes",
        defaults::RETENTION_MAX_BYTES,
    );
    let segment_max_age = age(
        ctx,
        &raw.segment_max_age,
        "sinks.file.segment_max_age",
        defaults::SEGMENT_MAX_AGE,
    );
    let retention_max_age = age(
        ctx,
        &raw.retention_max_age,
        "sinks.file.retention_max_age",
        defaults::RETENTION_MAX_AGE,
    );
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

fn gateways(
    raw: &[Spanned<RawGateway>],
    agent: &Agent,
    id_given: bool,
    ctx: &mut Ctx<'_>,
) -> Option<Vec<GatewaySink>> {
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
                    message:
                        "a gateway deduplicates records by agent id, and [agent] id is not set"
                            .into(),
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
        let urls = gateway_urls(gw, g.span(), i, ctx);
        let token = match &gw.token {
            // Sent as `authorization: Bearer TOKEN`, so it must be a header value.
            Some(v) => ctx.secret(v, &key("token")).filter(|t| {
                ctx.check(v, &key("token"), |_| values::header_value(t.expose()))
                    .is_some()
            }),
            None => {
                ctx.error(
                    g.span(),
                    &format!("sinks.gateway[{i}]"),
                    ErrorKind::MissingKey {
                        key: "token".into(),
                    },
                );
                None
            }
        };
        let spool_max_bytes = gw
            .spool_max_bytes
            .as_ref()
            .and_then(|v| ctx.check(v, &key("spool_max_bytes"), |s| values::size(&s.0)))
            .unwrap_or(defaults::SPOOL_MAX_BYTES);
        let ca = gw
            .ca_file
            .as_ref()
            .and_then(|v| gateway_ca(v, urls.as_deref(), &key("ca_file"), ctx));
        let system_roots = ca.is_none() || gw.system_roots.as_ref().is_some_and(|v| *v.get_ref());
        if let (Some(name), Some(urls), Some(token)) = (name, urls, token) {
            out.push(GatewaySink {
                spool_dir: agent.state_dir.join("spool").join(&name),
                name,
                urls,
                token,
                spool_max_bytes,
                ca,
                system_roots,
            });
        }
    }
    (ctx.errors.len() == before).then_some(out)
}

/// Most URLs one gateway's `urls` may list.
const MAX_URLS: usize = 16;

/// A gateway's `url`, or its `urls` (replicas of one region): exactly one
/// of the two, each URL checked as `url` is, none listed twice. `span` is
/// the gateway's section, for an error about a missing key.
fn gateway_urls(
    gw: &RawGateway,
    span: Range<usize>,
    i: usize,
    ctx: &mut Ctx<'_>,
) -> Option<Vec<url::Url>> {
    let key = |k: &str| format!("sinks.gateway[{i}].{k}");
    let list = match (&gw.url, &gw.urls) {
        (Some(v), None) => {
            return ctx
                .check(v, &key("url"), |s| gateway_url(s))
                .map(|u| vec![u]);
        }
        (Some(_), Some(list)) => {
            ctx.error(
                list.span(),
                &key("urls"),
                ErrorKind::Invalid {
                    message: "`url` and `urls` are both set".into(),
                    valid: "one of them: `url` for one gateway, `urls` for replicas of one region"
                        .into(),
                },
            );
            return None;
        }
        (None, None) => {
            ctx.error(
                span,
                &format!("sinks.gateway[{i}]"),
                ErrorKind::Invalid {
                    message: "missing required key `url` (or `urls`)".into(),
                    valid: "url = \"https://gateway.example:7700/\", or urls = [...] \
                            naming replicas of one region"
                        .into(),
                },
            );
            return None;
        }
        (None, Some(list)) => list,
    };
    let items = list.get_ref();
    if items.is_empty() || items.len() > MAX_URLS {
        let message = if items.is_empty() {
            "an empty list".to_owned()
        } else {
            format!("{} URLs", items.len())
        };
        ctx.error(
            list.span(),
            &key("urls"),
            ErrorKind::Invalid {
                message,
                valid: format!("1 to {MAX_URLS} gateway URLs"),
            },
        );
        return None;
    }
    let before = ctx.errors.len();
    let mut urls: Vec<(url::Url, usize)> = Vec::with_capacity(items.len());
    for (j, v) in items.iter().enumerate() {
        let k = key(&format!("urls[{j}]"));
        let Some(u) = ctx.check(v, &k, |s| gateway_url(s)) else {
            continue;
        };
        match urls.iter().find(|(seen, _)| *seen == u) {
            Some((_, first)) => {
                let first = *first;
                ctx.error(
                    v.span(),
                    &k,
                    ErrorKind::Invalid {
                        message: format!(
                            "duplicate URL `{}`, the same gateway as urls[{first}]",
                            v.get_ref()
                        ),
                        valid: "each replica once".into(),
                    },
                );
            }
            None => urls.push((u, j)),
        }
    }
    (ctx.errors.len() == before).then(|| urls.into_iter().map(|(u, _)| u).collect())
}

/// A gateway's URL: a check URL that the sink can also reach. Cleartext
/// (h2c) only to this machine, where nothing travels over a network; over
/// TLS, a host that can be a certificate's name.
fn gateway_url(s: &str) -> Result<url::Url, ErrorKind> {
    let u = values::url(s)?;
    let bad = |reason: &str, valid: &str| ErrorKind::BadUrl {
        url: s.to_owned(),
        reason: reason.to_owned(),
        valid: valid.to_owned(),
    };
    if u.scheme() == "http" && !values::is_loopback(&u) {
        return Err(bad(
            "cleartext http is allowed only to a loopback address (127.0.0.0/8, ::1, localhost)",
            "an https:// URL, or http:// to 127.0.0.1, [::1] or localhost",
        ));
    }
    if u.scheme() == "https" {
        let host = u.host_str().unwrap_or_default();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if rustls_pki_types::ServerName::try_from(bare).is_err() {
            return Err(bad(
                "the host cannot be checked against a certificate",
                "a DNS name or an IP address",
            ));
        }
    }
    Ok(u)
}

/// A gateway's `ca_file`: read like a check's `tls.ca_file`, and refused
/// beside a cleartext `http://` URL, where no certificate is ever checked
/// (an operator who sets it expects TLS). With an invalid URL, only the
/// file is checked; the URL has its own error.
fn gateway_ca(
    v: &Spanned<String>,
    urls: Option<&[url::Url]>,
    key: &str,
    ctx: &mut Ctx<'_>,
) -> Option<Certificates> {
    let cleartext = urls.and_then(|urls| urls.iter().find(|u| u.scheme() != "https"));
    if let Some(url) = cleartext {
        ctx.error(
            v.span(),
            key,
            ErrorKind::Invalid {
                message: format!(
                    "a CA file is only used for https, and the gateway url is {}",
                    url.as_str()
                ),
                valid: "an https:// url, or no ca_file".into(),
            },
        );
        return None;
    }
    ctx.trust_anchors(v, key)
}
