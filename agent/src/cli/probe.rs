//! `sonde probe URL`: one probe, shown for people (a waterfall of the
//! phases) or as one JSON object. Flags follow curl's spelling where curl
//! has one. Exit status: 0 up, 1 down or unknown, 2 usage error.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use bytes::Bytes;
use hyper::Method;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;
use url::Url;

use sonde::probe::{
    BodyAssertion, DnsReport, Family, IpVersion, ProbeReport, ProbeSpec, Prober, ResolveOverride,
    TlsInfo, TlsOptions, tls,
};

/// Exit status when the probe was up.
pub const EXIT_UP: u8 = 0;
/// Exit status when the probe was down (or unknown).
pub const EXIT_DOWN: u8 = 1;

/// Arguments of `sonde probe`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 up, 1 down or unknown, 2 usage error.\n\
Durations and status codes: the grammar of the configuration file (README: Configuration).")]
pub struct Args {
    /// The URL to probe (http:// is assumed when no scheme is given).
    pub url: String,
    /// Print one JSON object (phases as float milliseconds) instead of the waterfall.
    #[arg(long)]
    pub json: bool,
    /// Deadline for the whole probe: seconds, or a duration such as 500ms.
    #[arg(
        short = 'm',
        long = "max-time",
        value_name = "SECONDS",
        default_value = "10",
        value_parser = parse_duration
    )]
    pub max_time: Duration,
    /// Expected status codes, e.g. "200", "200-299", "2xx,304" (default 2xx,3xx).
    #[arg(long, value_name = "CODES")]
    pub expect_status: Option<String>,
    /// The body must contain this text (searched as it streams).
    #[arg(long, value_name = "TEXT", conflicts_with = "body_matches")]
    pub body_contains: Option<String>,
    /// The body's first 1 MiB (or --max-body-size) must match this regular expression.
    #[arg(long, value_name = "REGEX")]
    pub body_matches: Option<String>,
    /// Fail with body_too_large past this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_body_size: u64,
    /// How to make the request.
    #[command(flatten)]
    pub request: RequestArgs,
}

/// How to make the request: the flags `sonde probe` and `sonde wait` share,
/// in curl's spelling.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Request")]
pub struct RequestArgs {
    /// Request method.
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,
    /// Extra request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Request body (implies POST); @FILE reads it from a file.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    pub data: Option<String>,
    /// Connect over IPv4 only.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Connect over IPv6 only.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// Use ADDR for HOST:PORT instead of resolving it (repeatable).
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<String>,
    /// Ask this DNS server (IP or IP:PORT) instead of the system's.
    #[arg(long, value_name = "ADDR")]
    pub dns_server: Option<String>,
    /// How long an A answer waits for AAAA before connecting (RFC 8305).
    #[arg(long, value_name = "DURATION", default_value = "50ms", value_parser = parse_duration)]
    pub resolution_delay: Duration,
    /// Trust the CA certificates in this PEM file instead of the system roots (as curl).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// With --cacert, trust the system roots too.
    #[arg(long, requires = "cacert")]
    pub system_roots: bool,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(short = 'E', long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of the client certificate.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Accept any server certificate (the handshake is still timed and checked).
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Name for SNI, certificate checks and Host (the URL's host is still the address).
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// Follow redirects.
    #[arg(short = 'L', long = "location")]
    pub location: bool,
    /// Maximum redirects to follow with -L.
    #[arg(long = "max-redirs", value_name = "N", default_value_t = 10)]
    pub max_redirs: u32,
    /// With -L, follow a redirect from https to http (refused otherwise:
    /// insecure_redirect). Credentials still stay behind.
    #[arg(long)]
    pub allow_insecure_redirect: bool,
}

/// Runs `sonde probe`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let json = args.json;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(async {
        let spec = spec_from_args(args)?;
        let prober = Prober::new();
        anyhow::Ok(prober.probe(&spec).await)
    })?;
    let out = if json {
        let mut s = render_json(&report).to_string();
        s.push('\n');
        s
    } else {
        render_waterfall(&report, SystemTime::now())
    };
    print!("{out}");
    Ok(match report.status {
        wire::Status::Up => EXIT_UP,
        _ => EXIT_DOWN,
    })
}

/// Turns the command line into a probe spec; every error names the flag.
pub fn spec_from_args(args: Args) -> anyhow::Result<ProbeSpec> {
    let request = &args.request;
    let raw = if args.url.contains("://") {
        args.url.clone()
    } else {
        format!("http://{}", args.url)
    };
    let url = Url::parse(&raw).with_context(|| format!("URL {:?}", args.url))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("URL {:?}: only http and https are supported", args.url);
    }
    if url.host_str().is_none_or(str::is_empty) {
        bail!("URL {:?}: no host", args.url);
    }
    // The files are read now; the configuration (and the system roots, if
    // it uses them) only when a hop is https: at once for an https URL, so
    // an unusable trust store is a usage error, and never for a plain
    // probe that is not redirected to https.
    let tls = tls::probe_tls(&TlsOptions {
        ca_file: request.cacert.clone(),
        system_roots: request.system_roots,
        client_cert: request.cert.clone().zip(request.key.clone()),
        insecure: request.insecure,
    })
    .context("TLS options")?;
    if url.scheme() == "https" {
        tls.config()
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("TLS options")?;
    }
    let mut spec = ProbeSpec::new(url, tls);
    if args.max_time.is_zero() || args.max_time > Duration::from_secs(86_400) {
        bail!(
            "--max-time {}: must be between 0 and 86400 seconds",
            config::duration::format(args.max_time)
        );
    }
    spec.timeout = args.max_time;
    spec.headers = parse_headers(&request.headers)?;
    if let Some(data) = &request.data {
        spec.body = match data.strip_prefix('@') {
            Some(path) => {
                Bytes::from(std::fs::read(path).with_context(|| format!("--data: reading {path}"))?)
            }
            None => Bytes::from(data.clone()),
        };
        spec.method = Method::POST;
        if !spec.headers.contains_key(hyper::header::CONTENT_TYPE) {
            spec.headers.insert(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        }
    }
    if let Some(method) = &request.method {
        spec.method = Method::from_bytes(method.as_bytes())
            .with_context(|| format!("-X {method:?}: not an HTTP method"))?;
    }
    spec.ip_version = match (request.ipv4, request.ipv6) {
        (true, _) => IpVersion::V4,
        (_, true) => IpVersion::V6,
        _ => IpVersion::Auto,
    };
    spec.resolve = request
        .resolve
        .iter()
        .map(|r| parse_resolve(r))
        .collect::<anyhow::Result<_>>()?;
    spec.dns_server = request
        .dns_server
        .as_deref()
        .map(parse_dns_server)
        .transpose()?;
    spec.resolution_delay = request.resolution_delay;
    spec.server_name = request.server_name.clone();
    spec.max_redirects = if request.location {
        request.max_redirs
    } else {
        0
    };
    spec.allow_insecure_redirect = request.allow_insecure_redirect;
    spec.max_body_bytes = args.max_body_size;
    if let Some(codes) = &args.expect_status {
        spec.expect.statuses =
            parse_statuses(codes).with_context(|| format!("--expect-status {codes:?}"))?;
    }
    spec.expect.body = match (&args.body_contains, &args.body_matches) {
        (Some(text), _) => vec![BodyAssertion::Contains(text.clone())],
        (_, Some(re)) => vec![BodyAssertion::Matches(
            regex::bytes::Regex::new(re).with_context(|| format!("--body-matches {re:?}"))?,
        )],
        _ => Vec::new(),
    };
    Ok(spec)
}

fn parse_headers(raw: &[String]) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for h in raw {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("-H {h:?}: expected \"Name: value\""))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("-H {h:?}: bad header name"))?;
        let value = HeaderValue::from_str(value.trim())
            .with_context(|| format!("-H {h:?}: bad header value"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// Parses curl's `--resolve HOST:PORT:ADDR` (ADDR may be bracketed IPv6).
pub fn parse_resolve(raw: &str) -> anyhow::Result<ResolveOverride> {
    let usage = || format!("--resolve {raw:?}: expected HOST:PORT:ADDR");
    let (host, rest) = raw.split_once(':').with_context(usage)?;
    let (port, addr) = rest.split_once(':').with_context(usage)?;
    let port: u16 = port.parse().with_context(usage)?;
    let addr: IpAddr = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .with_context(usage)?;
    if host.is_empty() {
        bail!(usage());
    }
    Ok(ResolveOverride {
        host: host.to_owned(),
        port,
        addr,
    })
}

/// Parses a DNS server: `IP`, `IP:PORT` or `[IPv6]:PORT`; port 53 by default.
pub fn parse_dns_server(raw: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = raw.parse::<SocketAddr>() {
        return Ok(addr);
    }
    raw.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .with_context(|| format!("--dns-server {raw:?}: expected IP, IP:PORT or [IPv6]:PORT"))
}

/// Parses status expectations, comma-separated, in the grammar of the
/// configuration's `expect_status` (README: Configuration).
pub fn parse_statuses(raw: &str) -> anyhow::Result<Vec<std::ops::RangeInclusive<u16>>> {
    config::status::parse_list(raw)
        .map_err(|e| anyhow::anyhow!("{e} (valid: {}, comma-separated)", config::status::VALID))
}

/// Parses a duration flag: the configuration's grammar (README:
/// Configuration), where a bare number is seconds, as in curl.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    use config::duration::{self, BareNumber};
    duration::parse_with(raw, BareNumber::Seconds).map_err(|e| {
        format!(
            "bad duration {raw:?}: {e} (valid: {}, or a bare number of seconds)",
            duration::VALID
        )
    })
}

fn version_name(v: hyper::Version) -> &'static str {
    match v {
        hyper::Version::HTTP_09 => "HTTP/0.9",
        hyper::Version::HTTP_10 => "HTTP/1.0",
        hyper::Version::HTTP_11 => "HTTP/1.1",
        hyper::Version::HTTP_2 => "HTTP/2",
        hyper::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/?",
    }
}

/// The report as one JSON object: the record's fields as float
/// milliseconds with microsecond precision, plus the details.
pub fn render_json(report: &ProbeReport) -> serde_json::Value {
    let us = report.timings.quantized(Duration::from_micros(1));
    let ms = |v: u64| serde_json::Number::from_f64(v as f64 / 1000.0);
    let record = sonde::result::wire_record(report);
    let now = SystemTime::now();
    json!({
        "url": report.final_url.as_str(),
        "t": record.t_ms,
        "rt": ms(us.total),
        "sc": report.status_code,
        "st": report.status.name(),
        "dn": us.dns.map(ms),
        "cn": us.connect.map(ms),
        "tl": us.tls.map(ms),
        "ft": us.ttfb.map(ms),
        "error": report.failure.as_ref().map(|f| f.class.name()),
        "error_phase": report.failure.as_ref().map(|f| f.phase.name()),
        "error_detail": report.failure.as_ref().map(|f| f.detail.as_str()),
        "dns": report.dns.as_ref().map(dns_json),
        "address": report.remote.map(|a| a.to_string()),
        "protocol": report.http_version.map(version_name),
        "tls_version": report.tls.as_ref().map(|t| t.version),
        "tls_cipher": report.tls.as_ref().map(|t| t.cipher.as_str()),
        "alpn": report.tls.as_ref().and_then(|t| t.alpn.as_deref()),
        "cert_days_left": report.tls.as_ref().and_then(|t| t.earliest_days_left(now)),
        "leaf_cert_days_left": report.tls.as_ref().and_then(|t| t.days_left(now)),
        "cert_earliest_subject": report.tls.as_ref().and_then(|t| t.earliest_subject.as_deref()),
        "redirects": report.redirects,
        "body_bytes": report.body_bytes,
    })
}

/// What DNS saw: per family its outcome, addresses, ms since the lookup
/// began and the server that decided it.
fn dns_json(dns: &DnsReport) -> serde_json::Value {
    let family = |f: Family| {
        let r = dns.family(f);
        json!({
            "outcome": r.outcome.name(),
            "addresses": r.outcome.addresses(),
            "ms": r.at.and_then(|d| serde_json::Number::from_f64(d.as_secs_f64() * 1000.0)),
            "server": r.server.map(|s| s.to_string()),
        })
    };
    json!({
        "a": family(Family::A),
        "aaaa": family(Family::Aaaa),
        "from_hosts": dns.from_hosts,
    })
}

/// `AAAA refused (0.21 ms), A 1 address (0.20 ms)`: what each family came
/// to and when, AAAA first.
pub fn dns_summary(dns: &DnsReport) -> String {
    let mut out = String::new();
    for f in Family::ALL {
        let r = dns.family(f);
        if !out.is_empty() {
            out.push_str(", ");
        }
        let _ = write!(out, "{} {}", f.name(), r.outcome);
        if let (Some(at), false) = (r.at, r.outcome == sonde::probe::FamilyOutcome::NotAsked) {
            let _ = write!(out, " ({:.2} ms)", at.as_secs_f64() * 1000.0);
        }
    }
    if dns.from_hosts {
        out.push_str(" from /etc/hosts");
    }
    out
}

/// `299 days left`, or, when a certificate of the chain expires before
/// the leaf, `9 days left: CN=Intermediate (chain certificate 2), leaf
/// 299 days left`.
fn cert_line(tls: &TlsInfo, now: SystemTime) -> Option<String> {
    let earliest = tls.earliest_days_left(now)?;
    match (tls.earliest_index, tls.days_left(now)) {
        (Some(i), Some(leaf)) if i > 0 => {
            let subject = tls.earliest_subject.as_deref().unwrap_or("?");
            Some(format!(
                "{earliest} days left: {subject} (chain certificate {}), leaf {leaf} days left",
                i + 1
            ))
        }
        _ => Some(format!("{earliest} days left")),
    }
}

/// The report as a waterfall for people, phases to 0.01 ms.
pub fn render_waterfall(report: &ProbeReport, now: SystemTime) -> String {
    const WIDTH: usize = 40;
    let t = &report.timings;
    let mut out = String::new();
    let _ = writeln!(out, "{}", report.final_url);
    if let Some(addr) = report.remote {
        let _ = writeln!(out, "  address   {addr}");
    }
    let mut proto = report
        .http_version
        .map(version_name)
        .unwrap_or("-")
        .to_owned();
    if let Some(tls) = &report.tls {
        let _ = write!(proto, "  {}  {}", tls.version, tls.cipher);
    }
    let _ = writeln!(out, "  protocol  {proto}");
    if let Some(dns) = &report.dns {
        let _ = writeln!(out, "  dns       {}", dns_summary(dns));
    }
    if let Some(tls) = &report.tls {
        if let Some(line) = cert_line(tls, now) {
            let _ = writeln!(out, "  cert      {line}");
        }
    }
    let status = match report.status_code {
        Some(code) => format!("{code} {}", report.status.name()),
        None => report.status.name().to_owned(),
    };
    let _ = writeln!(out, "  status    {status}");
    if let Some(f) = &report.failure {
        let _ = writeln!(out, "  error     {} ({})", f.class.name(), f.detail);
    }
    if report.redirects > 0 {
        let _ = writeln!(
            out,
            "  redirects {} (phases are the first hop's)",
            report.redirects
        );
    }
    out.push('\n');
    let total = t.total.as_secs_f64().max(f64::MIN_POSITIVE);
    let body = t.total.saturating_sub(t.to_first_byte());
    let body = (t.ttfb.is_some() && report.status_code.is_some()).then_some(body);
    let rows = [
        ("dns", t.dns),
        ("connect", t.connect),
        ("tls", t.tls),
        ("ttfb", t.ttfb),
        ("body", body),
    ];
    let mut offset = 0.0;
    for (name, phase) in rows {
        let Some(d) = phase else {
            let _ = writeln!(out, "  {name:<8} {:>10}", "-");
            continue;
        };
        let secs = d.as_secs_f64();
        let start = ((offset / total) * WIDTH as f64).round() as usize;
        let end = (((offset + secs) / total) * WIDTH as f64).round() as usize;
        let start = start.min(WIDTH);
        let len = end
            .saturating_sub(start)
            .max(1)
            .min(WIDTH - start.min(WIDTH - 1));
        let bar = format!("{}{}", " ".repeat(start), "█".repeat(len));
        let _ = writeln!(out, "  {name:<8} {:>7.2} ms |{bar:<WIDTH$}|", secs * 1000.0);
        offset += secs;
    }
    let _ = writeln!(
        out,
        "  {:<8} {:>7.2} ms",
        "total",
        t.total.as_secs_f64() * 1000.0
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_accepts_v4_and_bracketed_v6() {
        let r = parse_resolve("example.test:443:127.0.0.1").ok();
        assert_eq!(
            r.map(|r| (r.port, r.addr.to_string())),
            Some((443, "127.0.0.1".into()))
        );
        let r = parse_resolve("example.test:80:[::1]").ok();
        assert_eq!(r.map(|r| r.addr.to_string()), Some("::1".into()));
        assert!(parse_resolve("example.test:x:127.0.0.1").is_err());
        assert!(parse_resolve("nohost").is_err());
    }

    #[test]
    fn dns_server_defaults_to_port_53() {
        assert_eq!(
            parse_dns_server("127.0.0.1").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 53)))
        );
        assert_eq!(
            parse_dns_server("127.0.0.1:5353").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 5353)))
        );
        assert!(parse_dns_server("[::1]:53").is_ok());
        assert!(parse_dns_server("dns.test").is_err());
    }

    /// The flag's default is written as text for `--help`; it must be the
    /// engine's (and the configuration's) default.
    #[test]
    fn the_resolution_delay_flag_defaults_to_the_engines_default() {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            request: RequestArgs,
        }
        let parsed = <Only as clap::Parser>::try_parse_from(["sonde"]);
        assert_eq!(
            parsed.map(|o| o.request.resolution_delay).ok(),
            Some(sonde::probe::DEFAULT_RESOLUTION_DELAY)
        );
    }

    #[test]
    fn headers_need_a_colon() {
        assert!(parse_headers(&["X-A: 1".into(), "X-A: 2".into()]).is_ok_and(|h| h.len() == 2));
        assert!(parse_headers(&["nocolon".into()]).is_err());
    }
}
