//! curl's `-w/--write-out` for `sonde probe` and `sonde wait`: a format
//! parsed once into a [`Template`], rendered against the [`Values`] of one
//! probe into text for stdout and stderr. Pure: no sockets, no files, no
//! clock; the caller reads `@FILE`, builds the values and writes the output.

use std::fmt::Write as _;
use std::time::Duration;

/// Where a piece of write-out output goes (`%{stdout}`, `%{stderr}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output, the default.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A `%{name}` variable sonde knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    ContentType,
    ErrorMsg,
    ExitCode,
    HttpCode,
    HttpVersion,
    Method,
    NumRedirects,
    RemoteIp,
    RemotePort,
    ResponseCode,
    Scheme,
    SizeDownload,
    TimeAppconnect,
    TimeConnect,
    TimeNamelookup,
    TimePretransfer,
    TimeRedirect,
    TimeStarttransfer,
    TimeTotal,
    Url,
    UrlEffective,
    SondeDns,
    SondeConnect,
    SondeProxy,
    SondeTls,
    SondeTtfb,
    SondeBody,
    SondeStatus,
    SondeError,
}

/// Every variable by name, in alphabetical order: `%{json}` writes them
/// in this order, as curl does.
const VARIABLES: [(&str, Var); 29] = [
    ("content_type", Var::ContentType),
    ("errormsg", Var::ErrorMsg),
    ("exitcode", Var::ExitCode),
    ("http_code", Var::HttpCode),
    ("http_version", Var::HttpVersion),
    ("method", Var::Method),
    ("num_redirects", Var::NumRedirects),
    ("remote_ip", Var::RemoteIp),
    ("remote_port", Var::RemotePort),
    ("response_code", Var::ResponseCode),
    ("scheme", Var::Scheme),
    ("size_download", Var::SizeDownload),
    ("sonde_body", Var::SondeBody),
    ("sonde_connect", Var::SondeConnect),
    ("sonde_dns", Var::SondeDns),
    ("sonde_error", Var::SondeError),
    ("sonde_proxy", Var::SondeProxy),
    ("sonde_status", Var::SondeStatus),
    ("sonde_tls", Var::SondeTls),
    ("sonde_ttfb", Var::SondeTtfb),
    ("time_appconnect", Var::TimeAppconnect),
    ("time_connect", Var::TimeConnect),
    ("time_namelookup", Var::TimeNamelookup),
    ("time_pretransfer", Var::TimePretransfer),
    ("time_redirect", Var::TimeRedirect),
    ("time_starttransfer", Var::TimeStarttransfer),
    ("time_total", Var::TimeTotal),
    ("url", Var::Url),
    ("url_effective", Var::UrlEffective),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
    /// `%header{name}`: the last response's first header of that name.
    Header(String),
    Json,
    HeaderJson,
    Switch(Stream),
    OnError,
    /// A `%{name}` sonde does not know: a warning on stderr, no output.
    Unknown(String),
}

/// A parsed write-out format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses a format as curl reads it: `%{name}` variables, `%header{name}`,
    /// `%%` for a percent sign, `\n` `\r` `\t` escapes; any other `%X` or
    /// `\X` is text, as are a `%{` or `%header{` without a closing brace.
    pub fn parse(format: &str) -> Template {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = format;
        while let Some(c) = rest.chars().next() {
            let after = &rest[c.len_utf8()..];
            let next = after.chars().next();
            match (c, next) {
                ('%', Some('%')) => {
                    text.push('%');
                    rest = &after[1..];
                }
                ('%', Some('{')) => match after[1..].find('}') {
                    Some(end) => {
                        let name = &after[1..1 + end];
                        if !text.is_empty() {
                            parts.push(Part::Text(std::mem::take(&mut text)));
                        }
                        parts.push(variable(name));
                        rest = &after[2 + end..];
                    }
                    None => {
                        text.push_str("%{");
                        rest = &after[1..];
                    }
                },
                ('%', Some(_)) if after.starts_with("header{") => {
                    let body = &after["header{".len()..];
                    match body.find('}') {
                        Some(end) => {
                            if !text.is_empty() {
                                parts.push(Part::Text(std::mem::take(&mut text)));
                            }
                            parts.push(Part::Header(body[..end].to_owned()));
                            rest = &body[end + 1..];
                        }
                        None => {
                            text.push_str("%header{");
                            rest = body;
                        }
                    }
                }
                ('\\', Some(e @ ('n' | 'r' | 't'))) => {
                    text.push(match e {
                        'n' => '\n',
                        'r' => '\r',
                        _ => '\t',
                    });
                    rest = &after[1..];
                }
                (c, Some(n)) if c == '%' || c == '\\' => {
                    text.push(c);
                    text.push(n);
                    rest = &after[n.len_utf8()..];
                }
                (c, _) => {
                    text.push(c);
                    rest = after;
                }
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Template { parts }
    }

    /// Whether rendering needs the response headers (`content_type`,
    /// `%header{}`, `header_json`, `json`).
    pub fn needs_headers(&self) -> bool {
        self.parts.iter().any(|p| {
            matches!(
                p,
                Part::Var(Var::ContentType) | Part::Header(_) | Part::HeaderJson | Part::Json
            )
        })
    }

    /// The output, in order, each piece with its stream. An unknown
    /// variable gives a warning on stderr in its place, as curl's does.
    pub fn render(&self, v: &Values) -> Vec<(Stream, String)> {
        let mut out: Vec<(Stream, String)> = Vec::new();
        let mut stream = Stream::Stdout;
        let mut emit = |stream: Stream, text: String| match out.last_mut() {
            Some((s, t)) if *s == stream => t.push_str(&text),
            _ if text.is_empty() => {}
            _ => out.push((stream, text)),
        };
        for part in &self.parts {
            match part {
                Part::Text(t) => emit(stream, t.clone()),
                Part::Var(var) => emit(stream, text_of(*var, v)),
                Part::Header(name) => emit(stream, v.header(name).unwrap_or_default().to_owned()),
                Part::Json => emit(stream, json_of(v)),
                Part::HeaderJson => emit(stream, header_json(v)),
                Part::Switch(to) => stream = *to,
                Part::OnError => {
                    if v.exitcode == 0 {
                        break;
                    }
                }
                Part::Unknown(name) => emit(
                    Stream::Stderr,
                    format!("sonde: unknown --write-out variable: '{name}'\n"),
                ),
            }
        }
        out
    }
}

fn variable(name: &str) -> Part {
    match name {
        "json" => Part::Json,
        "header_json" => Part::HeaderJson,
        "stdout" => Part::Switch(Stream::Stdout),
        "stderr" => Part::Switch(Stream::Stderr),
        "onerror" => Part::OnError,
        _ => match VARIABLES.iter().find(|(n, _)| *n == name) {
            Some((_, var)) => Part::Var(*var),
            None => Part::Unknown(name.to_owned()),
        },
    }
}

/// curl's times: cumulative from the start of the probe. `None` where
/// curl's value cannot be known (see [`CurlTimes::of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CurlTimes {
    /// To the end of name resolution.
    pub namelookup: Option<Duration>,
    /// To the TCP connection (to the target or the proxy).
    pub connect: Option<Duration>,
    /// To the end of the TLS handshake with the target.
    pub appconnect: Option<Duration>,
    /// To the moment the request is about to be sent.
    pub pretransfer: Option<Duration>,
    /// To the first response byte.
    pub starttransfer: Option<Duration>,
    /// The whole probe.
    pub total: Duration,
    /// The redirect steps before the final request.
    pub redirect: Option<Duration>,
}

/// sonde's own contiguous phases of the (first) hop: `None` when the
/// phase did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Phases {
    /// Name resolution.
    pub dns: Option<Duration>,
    /// TCP connect.
    pub connect: Option<Duration>,
    /// The CONNECT exchange with a proxy.
    pub proxy: Option<Duration>,
    /// TLS handshake.
    pub tls: Option<Duration>,
    /// Connection ready to the first response byte.
    pub ttfb: Option<Duration>,
    /// First response byte to the last body byte.
    pub body: Option<Duration>,
    /// The whole probe.
    pub total: Duration,
}

/// Which of the phases ran to their end (a failed one ran up to the
/// failure only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Completed {
    /// DNS answered (or was not needed).
    pub dns: bool,
    /// The TCP connection was made.
    pub connect: bool,
    /// The proxy's CONNECT was answered 2xx.
    pub proxy: bool,
    /// The TLS handshake finished.
    pub tls: bool,
    /// The first response byte arrived.
    pub ttfb: bool,
}

impl CurlTimes {
    /// curl's cumulative times from sonde's contiguous phases, for a probe
    /// without redirects. A timer curl never sets is 0, as curl prints it:
    /// `time_appconnect` without TLS, `time_connect` when the connect
    /// failed. After a followed redirect curl adds each hop's times, which
    /// sonde does not keep (its phases are the first hop's): those are
    /// `None` then, and so is `time_redirect`, which needs the last hop's
    /// start.
    pub fn of(p: &Phases, done: Completed, redirects: u32) -> CurlTimes {
        if redirects > 0 {
            return CurlTimes {
                total: p.total,
                ..CurlTimes::default()
            };
        }
        let z = Duration::ZERO;
        let at = |phases: &[Option<Duration>]| -> Duration { phases.iter().flatten().sum() };
        let dns_end = at(&[p.dns]);
        let connect_end = at(&[p.dns, p.connect]);
        let ready = at(&[p.dns, p.connect, p.proxy, p.tls]);
        let connected = done.dns && done.connect && p.connect.is_some();
        let tunnelled = p.proxy.is_none() || done.proxy;
        let handshaken = p.tls.is_some() && done.tls;
        let request_sent = connected && tunnelled && (p.tls.is_none() || handshaken);
        CurlTimes {
            namelookup: Some(if done.dns { dns_end } else { z }),
            connect: Some(if connected { connect_end } else { z }),
            appconnect: Some(if connected && tunnelled && handshaken {
                ready
            } else {
                z
            }),
            pretransfer: Some(if request_sent && p.ttfb.is_some() {
                ready
            } else {
                z
            }),
            starttransfer: Some(if request_sent && done.ttfb {
                at(&[p.dns, p.connect, p.proxy, p.tls, p.ttfb])
            } else {
                z
            }),
            total: p.total,
            redirect: Some(z),
        }
    }
}

/// What one probe gives the write-out variables.
#[derive(Debug, Clone, Default)]
pub struct Values {
    /// curl's cumulative times.
    pub times: CurlTimes,
    /// sonde's contiguous phases.
    pub phases: Phases,
    /// The last response's status code (`None`: no response).
    pub http_code: Option<u16>,
    /// The last response's HTTP version as curl writes it: "1.1", "2".
    pub http_version: Option<&'static str>,
    /// The method of the last request, when known.
    pub method: Option<String>,
    /// The URL as given (after sonde added a missing scheme).
    pub url: String,
    /// The URL of the last hop.
    pub url_effective: String,
    /// Its scheme.
    pub scheme: String,
    /// The address connected to, when known.
    pub remote_ip: Option<String>,
    /// Its port.
    pub remote_port: Option<u16>,
    /// Body bytes of the last response as they arrived.
    pub size_download: u64,
    /// Redirects followed.
    pub num_redirects: u32,
    /// The last response's headers in order, when kept.
    pub headers: Vec<(String, String)>,
    /// The exit status sonde exits with for this probe (0 up, 1 down).
    pub exitcode: u8,
    /// Why the probe is not up.
    pub errormsg: Option<String>,
    /// up, down or unknown.
    pub status: &'static str,
    /// The error class, when not up.
    pub error: Option<&'static str>,
}

impl Values {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `S.UUUUUU`: seconds with six decimals, as curl writes its times.
pub fn seconds(d: Duration) -> String {
    let us = d.as_micros();
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// A variable's value: its text and whether JSON writes it as a string.
enum Value {
    Number(String),
    Text(String),
    Null,
}

fn value_of(var: Var, v: &Values) -> Value {
    let time = |d: Option<Duration>| d.map_or(Value::Null, |d| Value::Number(seconds(d)));
    let text = |s: Option<&str>| s.map_or(Value::Null, |s| Value::Text(s.to_owned()));
    let t = &v.times;
    let p = &v.phases;
    match var {
        Var::ContentType => text(v.header("content-type")),
        Var::ErrorMsg => text(v.errormsg.as_deref()),
        Var::ExitCode => Value::Number(v.exitcode.to_string()),
        Var::HttpCode | Var::ResponseCode => Value::Number(v.http_code.unwrap_or(0).to_string()),
        Var::HttpVersion => text(v.http_version),
        Var::Method => text(v.method.as_deref()),
        Var::NumRedirects => Value::Number(v.num_redirects.to_string()),
        Var::RemoteIp => text(v.remote_ip.as_deref()),
        Var::RemotePort => v
            .remote_port
            .map_or(Value::Null, |p| Value::Number(p.to_string())),
        Var::Scheme => Value::Text(v.scheme.clone()),
        Var::SizeDownload => Value::Number(v.size_download.to_string()),
        Var::TimeAppconnect => time(t.appconnect),
        Var::TimeConnect => time(t.connect),
        Var::TimeNamelookup => time(t.namelookup),
        Var::TimePretransfer => time(t.pretransfer),
        Var::TimeRedirect => time(t.redirect),
        Var::TimeStarttransfer => time(t.starttransfer),
        Var::TimeTotal => time(Some(t.total)),
        Var::Url => Value::Text(v.url.clone()),
        Var::UrlEffective => Value::Text(v.url_effective.clone()),
        Var::SondeDns => time(p.dns),
        Var::SondeConnect => time(p.connect),
        Var::SondeProxy => time(p.proxy),
        Var::SondeTls => time(p.tls),
        Var::SondeTtfb => time(p.ttfb),
        Var::SondeBody => time(p.body),
        Var::SondeStatus => Value::Text(v.status.to_owned()),
        Var::SondeError => text(v.error),
    }
}

fn text_of(var: Var, v: &Values) -> String {
    if matches!(var, Var::HttpCode | Var::ResponseCode) {
        // curl writes the code in three digits: 000 when there was none.
        return format!("{:03}", v.http_code.unwrap_or(0));
    }
    match value_of(var, v) {
        Value::Number(s) | Value::Text(s) => s,
        Value::Null => String::new(),
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// `%{json}`: every variable, alphabetically, then `sonde_version`.
fn json_of(v: &Values) -> String {
    let mut out = String::from("{");
    for (name, var) in VARIABLES {
        let value = match value_of(var, v) {
            Value::Number(n) => n,
            Value::Text(s) => json_string(&s),
            Value::Null => "null".to_owned(),
        };
        let _ = write!(out, "\"{name}\":{value},");
    }
    let _ = write!(
        out,
        "\"sonde_version\":{}}}",
        json_string(env!("CARGO_PKG_VERSION"))
    );
    out
}

/// `%{header_json}`: the headers as curl writes them, names lowercased,
/// each name once with its values in an array, in order of first
/// appearance.
fn header_json(v: &Values) -> String {
    let mut names: Vec<String> = Vec::new();
    for (name, _) in &v.headers {
        let lower = name.to_ascii_lowercase();
        if !names.contains(&lower) {
            names.push(lower);
        }
    }
    let fields: Vec<String> = names
        .iter()
        .map(|name| {
            let values: Vec<String> = v
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, value)| json_string(value))
                .collect();
            format!("{}:[{}]", json_string(name), values.join(","))
        })
        .collect();
    format!("{{{}\n}}", fields.join(",\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    fn stdout(t: &Template, v: &Values) -> String {
        t.render(v)
            .into_iter()
            .filter(|(s, _)| *s == Stream::Stdout)
            .map(|(_, t)| t)
            .collect()
    }

    fn plain_http() -> (Phases, Completed) {
        let phases = Phases {
            dns: Some(us(1_000)),
            connect: Some(us(2_000)),
            ttfb: Some(us(4_000)),
            body: Some(us(500)),
            total: us(7_500),
            ..Phases::default()
        };
        let done = Completed {
            dns: true,
            connect: true,
            proxy: false,
            tls: false,
            ttfb: true,
        };
        (phases, done)
    }

    #[test]
    fn times_are_cumulative_seconds_with_six_decimals() {
        let p = Phases {
            dns: Some(us(1_000)),
            connect: Some(us(2_000)),
            tls: Some(us(3_000)),
            ttfb: Some(us(4_000)),
            body: Some(us(5_000)),
            total: us(15_000),
            ..Phases::default()
        };
        let done = Completed {
            dns: true,
            connect: true,
            proxy: false,
            tls: true,
            ttfb: true,
        };
        let v = Values {
            times: CurlTimes::of(&p, done, 0),
            ..Values::default()
        };
        let t = Template::parse(
            "%{time_namelookup} %{time_connect} %{time_appconnect} %{time_pretransfer} \
             %{time_starttransfer} %{time_total} %{time_redirect}",
        );
        assert_eq!(
            stdout(&t, &v),
            "0.001000 0.003000 0.006000 0.006000 0.010000 0.015000 0.000000"
        );
    }

    #[test]
    fn a_proxy_tunnel_counts_before_appconnect_and_after_connect() {
        let p = Phases {
            connect: Some(us(1_000)),
            proxy: Some(us(2_000)),
            tls: Some(us(3_000)),
            ttfb: Some(us(4_000)),
            total: us(10_000),
            ..Phases::default()
        };
        let done = Completed {
            dns: true,
            connect: true,
            proxy: true,
            tls: true,
            ttfb: true,
        };
        let c = CurlTimes::of(&p, done, 0);
        assert_eq!(c.connect, Some(us(1_000)));
        assert_eq!(c.appconnect, Some(us(6_000)));
        assert_eq!(c.starttransfer, Some(us(10_000)));
    }

    #[test]
    fn timers_curl_never_sets_are_zero() {
        let (p, done) = plain_http();
        let c = CurlTimes::of(&p, done, 0);
        assert_eq!(c.appconnect, Some(Duration::ZERO), "no TLS");
        assert_eq!(c.pretransfer, Some(us(3_000)));
        // A connect that failed: only the lookup completed.
        let failed = Phases {
            dns: Some(us(1_000)),
            connect: Some(us(9_000)),
            total: us(10_000),
            ..Phases::default()
        };
        let done = Completed {
            dns: true,
            ..Completed::default()
        };
        let c = CurlTimes::of(&failed, done, 0);
        assert_eq!(
            (c.namelookup, c.connect, c.starttransfer, c.total),
            (
                Some(us(1_000)),
                Some(Duration::ZERO),
                Some(Duration::ZERO),
                us(10_000)
            )
        );
    }

    #[test]
    fn after_a_redirect_the_per_hop_sums_are_unknown_and_empty() {
        let (p, done) = plain_http();
        let v = Values {
            times: CurlTimes::of(&p, done, 1),
            num_redirects: 1,
            ..Values::default()
        };
        let t = Template::parse("[%{time_connect}][%{time_redirect}][%{time_total}]");
        assert_eq!(stdout(&t, &v), "[][][0.007500]");
        assert!(json_of(&v).contains("\"time_connect\":null"));
    }

    #[test]
    fn escapes_percent_and_malformed_sequences_are_as_curl_writes_them() {
        let v = Values {
            http_code: Some(204),
            ..Values::default()
        };
        let t = Template::parse(r"a\tb\nc\rd\qe %% %x %{http_code} %{unclosed \");
        assert_eq!(stdout(&t, &v), "a\tb\nc\rd\\qe % %x 204 %{unclosed \\");
        assert_eq!(stdout(&Template::parse("100%"), &v), "100%");
    }

    #[test]
    fn http_code_has_three_digits_and_is_000_without_a_response() {
        let t = Template::parse("%{http_code} %{response_code}");
        assert_eq!(stdout(&t, &Values::default()), "000 000");
        let v = Values {
            http_code: Some(404),
            ..Values::default()
        };
        assert_eq!(stdout(&t, &v), "404 404");
    }

    #[test]
    fn an_unknown_variable_warns_on_stderr_and_writes_nothing() {
        let t = Template::parse("a%{nope}b");
        let out = t.render(&Values::default());
        assert_eq!(
            out,
            vec![
                (Stream::Stdout, "a".to_owned()),
                (
                    Stream::Stderr,
                    "sonde: unknown --write-out variable: 'nope'\n".to_owned()
                ),
                (Stream::Stdout, "b".to_owned()),
            ]
        );
    }

    #[test]
    fn stderr_and_stdout_switch_the_stream() {
        let t = Template::parse("1%{stderr}2%{stdout}3");
        let out = t.render(&Values::default());
        assert_eq!(
            out,
            vec![
                (Stream::Stdout, "1".to_owned()),
                (Stream::Stderr, "2".to_owned()),
                (Stream::Stdout, "3".to_owned()),
            ]
        );
    }

    #[test]
    fn onerror_ends_the_output_of_a_probe_that_is_up() {
        let t = Template::parse("a%{onerror}b");
        let up = Values::default();
        assert_eq!(stdout(&t, &up), "a");
        let down = Values {
            exitcode: 1,
            ..Values::default()
        };
        assert_eq!(stdout(&t, &down), "ab");
    }

    #[test]
    fn headers_and_content_type_come_from_the_response() {
        let v = Values {
            headers: vec![
                ("Content-Type".into(), "text/plain".into()),
                ("Set-Cookie".into(), "a=1".into()),
                ("set-cookie".into(), "b=\"2\"".into()),
            ],
            ..Values::default()
        };
        let t = Template::parse("%{content_type}|%header{set-cookie}|%header{missing}|");
        assert!(t.needs_headers());
        assert_eq!(stdout(&t, &v), "text/plain|a=1||");
        assert_eq!(
            header_json(&v),
            "{\"content-type\":[\"text/plain\"],\n\"set-cookie\":[\"a=1\",\"b=\\\"2\\\"\"]\n}"
        );
        assert!(!Template::parse("%{http_code}").needs_headers());
    }

    #[test]
    fn json_has_every_variable_alphabetically_and_parses() {
        let (p, done) = plain_http();
        let v = Values {
            times: CurlTimes::of(&p, done, 0),
            phases: p,
            http_code: Some(200),
            http_version: Some("1.1"),
            remote_ip: Some("127.0.0.1".into()),
            remote_port: Some(8080),
            status: "up",
            ..Values::default()
        };
        let text = json_of(&v);
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(parsed["http_code"], 200, "{text}");
        assert_eq!(parsed["http_version"], "1.1");
        assert_eq!(parsed["time_connect"].as_f64(), Some(0.003));
        assert_eq!(parsed["sonde_tls"], serde_json::Value::Null);
        assert_eq!(parsed["remote_port"], 8080);
        let names: Vec<&str> = VARIABLES.iter().map(|(n, _)| *n).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        // Time values are written as curl writes them, never 1e-6.
        assert!(text.contains("\"time_namelookup\":0.001000"), "{text}");
    }

    #[test]
    fn sonde_phases_are_empty_when_they_did_not_happen() {
        let (p, _) = plain_http();
        let v = Values {
            phases: p,
            status: "up",
            ..Values::default()
        };
        let t = Template::parse(
            "%{sonde_dns}|%{sonde_tls}|%{sonde_ttfb}|%{sonde_status}|%{sonde_error}",
        );
        assert_eq!(stdout(&t, &v), "0.001000||0.004000|up|");
    }

    #[test]
    fn text_with_multibyte_characters_survives() {
        let t = Template::parse("é→%{scheme}█");
        let v = Values {
            scheme: "https".into(),
            ..Values::default()
        };
        assert_eq!(stdout(&t, &v), "é→https█");
    }
}
