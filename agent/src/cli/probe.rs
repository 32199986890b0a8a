//! `sonde probe URL`: one probe, shown for people (a waterfall of the
//! phases) or as one JSON object (`--format json`). The request flags are
//! curl's (`request`), and so are -i, -v, -o and -w (`output`). Exit
//! status: 0 up, 1 down or unknown, 2 usage error.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde_json::json;

use super::output::{self, OutputArgs, Prepared};
use super::request::{self, RequestArgs, parse_duration, parse_statuses};
use sonde::probe::{BodyAssertion, DnsReport, Family, ProbeReport, ProbeSpec, Prober, TlsInfo};

/// Exit status when the probe was up.
pub const EXIT_UP: u8 = 0;
/// Exit status when the probe was down (or unknown).
pub const EXIT_DOWN: u8 = 1;

/// What `sonde probe` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The waterfall, for people.
    Text,
    /// One JSON object, phases as float milliseconds.
    Json,
}

/// Arguments of `sonde probe`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 up, 1 down or unknown, 2 usage error.\n\
Durations and status codes: the grammar of the configuration file (README: Configuration).\n\
--json DATA sends DATA as a JSON request body, as curl's --json; JSON output is --format json.")]
pub struct Args {
    /// The URL to probe (http:// is assumed when no scheme is given).
    #[arg(value_name = "URL")]
    pub url: Option<String>,
    /// Print the waterfall (text, the default) or one JSON object (json,
    /// phases as float milliseconds).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<Format>,
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
    /// What to show beside the waterfall.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `sonde probe`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut spec = spec_from_args(&args)?;
    let mut shown = Prepared::new(&args.output, args.request.head)?;
    // -w alone replaces the waterfall (as `curl -o /dev/null -w` is used);
    // with --format both are written, the format first.
    let format = match (args.format, &shown.template) {
        (Some(format), _) => Some(format),
        (None, Some(_)) => None,
        (None, None) => Some(Format::Text),
    };
    spec.keep_response = shown.keeps_response();
    spec.keep_request = shown.verbose;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(Prober::new().probe(&spec));
    let code = match report.status {
        wire::Status::Up => EXIT_UP,
        _ => EXIT_DOWN,
    };
    let heads = shown.heads(&report);
    if !heads.is_empty() {
        let _ = std::io::stderr().lock().write_all(heads.as_bytes());
    }
    shown.write_body(&report)?;
    let out = match format {
        Some(Format::Json) => {
            let mut s = render_json(&report).to_string();
            s.push('\n');
            s
        }
        Some(Format::Text) => render_waterfall(&report, SystemTime::now()),
        None => String::new(),
    };
    print!("{out}");
    let _ = std::io::stdout().flush();
    shown.write_out(&output::values(
        &report,
        &spec.url,
        spec.method.as_str(),
        code,
    ));
    Ok(code)
}

/// Turns the command line into a probe spec; every error names the flag.
pub fn spec_from_args(args: &Args) -> anyhow::Result<ProbeSpec> {
    let raw = request::url_argument(args.url.as_deref(), &args.request)?;
    let url = request::parse_url(raw)?;
    let mut spec = request::spec(url, &args.request, args.max_time)?;
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

/// The version as HTTP writes it in a status line: `HTTP/1.1`, `HTTP/2`.
pub(crate) fn version_name(v: hyper::Version) -> &'static str {
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
/// milliseconds with microsecond precision, plus the details. Through a
/// proxy, `cn` is the TCP connect to it and `px` the CONNECT exchange
/// (the wire record's `cn` is both).
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
        "px": us.proxy.map(ms),
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

/// Columns between a waterfall row's bars.
const WIDTH: usize = 40;

/// One waterfall bar from `from` to `to` (fractions of the total):
/// exactly [`WIDTH`] columns, at least one of them filled, so a phase too
/// short to round to a column, or one that starts at the very end, still
/// shows (in the last column).
fn bar(from: f64, to: f64) -> String {
    let column = |f: f64| {
        let c = (f.clamp(0.0, 1.0) * WIDTH as f64).round();
        // A NaN (an empty total) is column 0.
        if c.is_nan() { 0 } else { c as usize }
    };
    let start = column(from).min(WIDTH - 1);
    let end = column(to).clamp(start + 1, WIDTH);
    let mut bar = " ".repeat(start);
    bar.push_str(&"█".repeat(end - start));
    bar.push_str(&" ".repeat(WIDTH - end));
    bar
}

/// The report as a waterfall for people, phases to 0.01 ms.
pub fn render_waterfall(report: &ProbeReport, now: SystemTime) -> String {
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
    let mut rows = vec![("dns", t.dns), ("connect", t.connect)];
    if t.proxy.is_some() {
        rows.push(("proxy", t.proxy));
    }
    rows.extend([("tls", t.tls), ("ttfb", t.ttfb), ("body", body)]);
    let mut offset = 0.0;
    for (name, phase) in rows {
        let Some(d) = phase else {
            let _ = writeln!(out, "  {name:<8} {:>10}", "-");
            continue;
        };
        let secs = d.as_secs_f64();
        let bar = bar(offset / total, (offset + secs) / total);
        let _ = writeln!(out, "  {name:<8} {:>7.2} ms |{bar}|", secs * 1000.0);
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

    /// Every bar is WIDTH characters (the filled ones are U+2588, three
    /// bytes each) with at least one filled, wherever it starts.
    #[test]
    fn every_bar_is_exactly_the_frame_wide() {
        let steps = [
            0.0, 0.001, 0.0125, 0.3, 0.49, 0.5, 0.51, 0.987, 0.9999, 1.0, 1.2,
        ];
        for from in steps {
            for to in steps.iter().map(|t| t + from) {
                let b = bar(from, to);
                assert_eq!(b.chars().count(), WIDTH, "from {from} to {to}: {b:?}");
                assert!(b.contains('█'), "from {from} to {to}: {b:?}");
                let filled = b.chars().filter(|c| *c == '█').count();
                let lead = b.chars().take_while(|c| *c == ' ').count();
                assert!(lead + filled <= WIDTH);
            }
        }
        // The body starting at the last column: one filled column, the last.
        assert_eq!(bar(1.0, 1.0), format!("{}█", " ".repeat(WIDTH - 1)));
        assert_eq!(bar(0.0, 1.0), "█".repeat(WIDTH));
        assert_eq!(bar(f64::NAN, f64::NAN).chars().count(), WIDTH);
    }

    /// Rows of contiguous phases, as render_waterfall lays them out, for
    /// many combinations of phase lengths: each row is WIDTH between its bars.
    #[test]
    fn rows_over_many_phase_combinations_fit_the_frame() {
        let lengths = [0.0, 0.000_001, 0.004, 0.25, 1.0, 7.5];
        for a in lengths {
            for b in lengths {
                for c in lengths {
                    for d in lengths {
                        let phases = [a, b, c, d];
                        let total: f64 = phases.iter().sum::<f64>().max(f64::MIN_POSITIVE);
                        let mut offset = 0.0;
                        for p in phases {
                            let b = bar(offset / total, (offset + p) / total);
                            assert_eq!(b.chars().count(), WIDTH, "{phases:?}");
                            offset += p;
                        }
                    }
                }
            }
        }
    }
}
