//! `sonde wait URL`: the deploy gate. Polls until the conditions hold, with
//! a deadline, jittered backoff, Retry-After and fail-fast on permanent
//! errors; optionally ends early on a signed webhook. Exit status: 0 ready,
//! 1 failed, 2 usage error, 3 deadline passed.
#![allow(
    clippy::disallowed_types,
    reason = "the live status line shows real elapsed time"
)]

use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde_json::json;

use super::output::{self, OutputArgs, Prepared as Shown};
use super::probe::render_json;
use super::request::{self, RequestArgs, parse_duration, parse_statuses};
use sonde::probe::{ProbeReport, Prober};
use sonde::retry::{Backoff, Breaker, SplitMix64};
use sonde::wait::condition::{BodyCondition, Conditions, HeaderCondition, JsonCondition};
use sonde::wait::policy::{Pacer, RetryOn, Verdict};
use sonde::wait::webhook::{self, Verifier};
use sonde::wait::{self, Attempt, By, Event, Outcome, Plan, Summary};

/// Exit status: every condition held.
pub const EXIT_READY: u8 = 0;
/// Exit status: a `--fail-when` held, a permanent error, or a failed webhook.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: the deadline passed first.
pub const EXIT_DEADLINE: u8 = 3;

/// Consecutive connection failures that open the circuit breaker.
const BREAKER_THRESHOLD: u32 = 5;

/// Arguments of `sonde wait`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 ready, 1 failed (--fail-when, a permanent error, a failed webhook), \
                  2 usage error, 3 deadline passed.\n\
                  Durations: 500ms, 1.5s, 2m, 1h, 1m30s, 1d, or a bare number of seconds; \
                  status codes: 200, 2xx, 200-299, comma-separated \
                  (the configuration's grammar; README: Configuration).\n\
                  --json DATA sends DATA as a JSON request body, as curl's --json; \
                  a JSON condition on the response is --ready-when.\n\
                  -i and -v show every attempt on stderr; -o and -w the last attempt, once."
)]
pub struct Args {
    /// The URL to poll (http:// is assumed when no scheme is given).
    #[arg(value_name = "URL")]
    pub url: Option<String>,

    /// Ready statuses, e.g. "200", "200-299", "2xx,304".
    #[arg(long, value_name = "CODES", default_value = "2xx")]
    pub status: String,
    /// The body must contain this text (repeatable).
    #[arg(long, value_name = "TEXT")]
    pub body_contains: Vec<String>,
    /// The body must match this regular expression (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub body_matches: Vec<String>,
    /// A JSON condition on the response that must hold, e.g. '.status == "completed"' (repeatable).
    #[arg(long, value_name = "COND")]
    pub ready_when: Vec<String>,
    /// A response header must match, "Name: regex" (repeatable).
    #[arg(long, value_name = "HEADER")]
    pub header_matches: Vec<String>,
    /// End the wait as failed when this JSON condition holds, e.g. '.status == "failed"' (repeatable).
    #[arg(long, value_name = "COND")]
    pub fail_when: Vec<String>,
    /// Make permanent errors transient: statuses (401,403,404) or error classes (tls_untrusted, tls_expired, tls_hostname).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub retry_on: Vec<String>,

    /// Overall deadline.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// First interval: the least time between attempts, and the backoff's base.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// The backoff's cap.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub max_interval: Duration,
    /// Deadline of one attempt.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub attempt_timeout: Duration,

    /// Also accept a signed webhook on this address (see README: sonde wait).
    #[arg(long, value_name = "ADDR", requires = "secret_file")]
    pub listen: Option<SocketAddr>,
    /// The webhook's HMAC secret (trailing newline ignored).
    #[arg(long, value_name = "FILE", requires = "listen")]
    pub secret_file: Option<PathBuf>,

    /// Print a JSON summary on stdout at the end.
    #[arg(long)]
    pub json_output: bool,

    /// How to make the request (as `sonde probe`).
    #[command(flatten)]
    pub request: RequestArgs,

    /// What to show beside the attempt lines (as `sonde probe`).
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `sonde wait`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let (plan, mut spec, backoff, json_output, url) = prepare(&args)?;
    let mut shown = Shown::new(&args.output, args.request.head)?;
    spec.keep_request = shown.verbose;
    let secret = match &args.secret_file {
        Some(path) => {
            let raw = config::file::read_bounded(path)
                .with_context(|| format!("--secret-file: reading {}", path.display()))?;
            let secret = raw.trim_ascii_end().to_vec();
            if secret.is_empty() {
                bail!("--secret-file {}: the secret is empty", path.display());
            }
            Some(secret)
        }
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let terminal = std::io::stderr().is_terminal();
    let summary = runtime.block_on(async {
        let webhooks = match (args.listen, secret) {
            (Some(addr), Some(secret)) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("--listen {addr}: binding"))?;
                let (tx, rx) = tokio::sync::mpsc::channel(16);
                tokio::spawn(webhook::serve(listener, Verifier::new(&secret), tx));
                Some(rx)
            }
            _ => None,
        };
        let prober = Prober::new();
        let probe = |timeout: Duration| {
            let mut spec = spec.clone();
            spec.timeout = timeout;
            let prober = prober.clone();
            async move { prober.probe(&spec).await }
        };
        let pacer = Pacer::new(
            backoff,
            Breaker::new(BREAKER_THRESHOLD, backoff.cap),
            SplitMix64::new(seed()),
        );
        let live = terminal.then(|| LiveLine::start(Instant::now()));
        let summary = wait::wait(&plan, probe, pacer, webhooks, |event| {
            if let Event::Attempt(a) = &event {
                let heads = shown.heads(a.report);
                for line in heads.lines() {
                    match &live {
                        Some(live) => live.log(line),
                        None => eprintln!("{line}"),
                    }
                }
            }
            let text = match &event {
                Event::Attempt(a) => attempt_line(a),
                Event::WebhookRejected { peer, reason } => {
                    format!(
                        "webhook from {peer} rejected ({}): {reason}",
                        reason.status().as_u16()
                    )
                }
            };
            match (&live, &event) {
                (Some(live), Event::Attempt(_)) => live.set(text),
                (Some(live), _) => live.log(&text),
                (None, _) => eprintln!("{text}"),
            }
        })
        .await;
        if let Some(live) = live {
            live.stop();
        }
        if matches!(
            summary.outcome,
            Outcome::Ready { by: By::Webhook }
                | Outcome::Failed {
                    by: By::Webhook,
                    ..
                }
        ) {
            // Let the webhook's connection task write its 200 before the
            // runtime (and with it the server) is dropped.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::Ok(summary)
    })?;
    eprintln!("{}", final_line(&summary));
    let code = match summary.outcome {
        Outcome::Ready { .. } => EXIT_READY,
        Outcome::Failed { .. } => EXIT_FAILED,
        Outcome::Deadline => EXIT_DEADLINE,
    };
    if let Some(last) = &summary.last {
        shown.write_body(last)?;
    }
    if json_output {
        println!("{}", render_summary(&summary, &url));
    }
    if let Some(last) = &summary.last {
        shown.write_out(&output::values(last, &spec.url, spec.method.as_str(), code));
    }
    Ok(code)
}

type Prepared = (Plan, sonde::probe::ProbeSpec, Backoff, bool, String);

/// Turns the flags into a plan and a probe spec; every error names the flag.
fn prepare(args: &Args) -> anyhow::Result<Prepared> {
    let mut conditions = Conditions {
        statuses: parse_statuses(&args.status)
            .with_context(|| format!("--status {:?}", args.status))?,
        ..Conditions::default()
    };
    conditions.body.extend(
        args.body_contains
            .iter()
            .cloned()
            .map(BodyCondition::Contains),
    );
    for re in &args.body_matches {
        let re = regex::Regex::new(re).with_context(|| format!("--body-matches {re:?}"))?;
        conditions.body.push(BodyCondition::Matches(re));
    }
    for c in &args.ready_when {
        conditions
            .json
            .push(JsonCondition::parse(c).context("--ready-when")?);
    }
    // `--json` was this condition before it became curl's request body:
    // a value that starts as a path does is refused rather than POSTed.
    if let Some(c) = args
        .request
        .json
        .iter()
        .find(|c| c.trim_start().starts_with('.'))
    {
        bail!(
            "--json {c:?}: --json DATA sends DATA as a JSON request body, as curl's does; \
             for a condition on the response use --ready-when {c:?}"
        );
    }
    for c in &args.header_matches {
        conditions
            .headers
            .push(HeaderCondition::parse(c).context("--header-matches")?);
    }
    for c in &args.fail_when {
        conditions
            .fail_when
            .push(JsonCondition::parse(c).context("--fail-when")?);
    }
    let retry_on = parse_retry_on(&args.retry_on)?;
    if args.timeout.is_zero() || args.interval.is_zero() || args.attempt_timeout.is_zero() {
        bail!("--timeout, --interval and --attempt-timeout must be more than zero");
    }
    if args.max_interval < args.interval {
        bail!("--max-interval must be at least --interval");
    }
    let raw = request::url_argument(args.url.as_deref(), &args.request)?;
    let mut spec = request::spec(
        request::parse_url(raw)?,
        &args.request,
        args.attempt_timeout.min(Duration::from_secs(86_400)),
    )?;
    // The conditions judge; the engine only measures and keeps the answer.
    spec.expect.statuses = vec![100..=599];
    spec.expect.body.clear();
    spec.keep_response = true;
    let url = spec.url.to_string();
    let plan = Plan {
        conditions,
        retry_on,
        timeout: args.timeout,
        attempt_timeout: args.attempt_timeout,
    };
    // The floor keeps attempts at least --interval apart; above it, full jitter.
    let backoff = Backoff {
        base: args.interval,
        cap: args.max_interval,
        floor: args.interval,
    };
    Ok((plan, spec, backoff, args.json_output, url))
}

fn parse_retry_on(raw: &[String]) -> anyhow::Result<RetryOn> {
    let mut out = RetryOn::default();
    for item in raw.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if let Ok(code) = item.parse::<u16>() {
            if !(100..=599).contains(&code) {
                bail!("--retry-on {item}: status codes are 100 to 599");
            }
            out.statuses.push(code);
        } else if let Some(class) = wire::ErrorClass::from_name(item) {
            out.classes.push(class);
        } else {
            bail!("--retry-on {item:?}: neither a status code nor an error class");
        }
    }
    Ok(out)
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".into(),
        |d| format!("{:.2}", d.as_secs_f64() * 1000.0),
    )
}

/// The phases of a report: `dns - connect 0.21 tls - ttfb 1.30 total 1.52 ms`.
fn phases(report: &ProbeReport) -> String {
    let t = &report.timings;
    // The proxy's CONNECT exchange only when there was one, so the
    // phases shown still add up to the time to first byte.
    let proxy = match t.proxy {
        Some(_) => format!(" proxy {}", ms(t.proxy)),
        None => String::new(),
    };
    format!(
        "dns {} connect {}{proxy} tls {} ttfb {} total {} ms",
        ms(t.dns),
        ms(t.connect),
        ms(t.tls),
        ms(t.ttfb),
        ms(Some(t.total))
    )
}

/// One attempt, one line: `attempt 3  2.1s  503  not ready: status 503  dns - ... ms  next in 1.6s (retry-after)`.
pub fn attempt_line(a: &Attempt<'_>) -> String {
    let answer = match (a.report.status_code, &a.report.failure) {
        (Some(code), _) => code.to_string(),
        (None, Some(f)) => f.class.name().to_owned(),
        (None, None) => "-".into(),
    };
    let verdict = match a.verdict {
        Verdict::Ready => "ready".to_owned(),
        Verdict::Failed(why) => format!("failed: {why}"),
        Verdict::Retry { reason, .. } => format!("not ready: {reason}"),
    };
    let mut line = format!(
        "attempt {}  {}  {answer}  {verdict}  {}",
        a.number,
        secs(a.elapsed),
        phases(a.report)
    );
    if let Some((delay, why)) = a.next {
        line.push_str(&format!("  next in {} ({})", secs(delay), why.name()));
    }
    line
}

/// The closing line on stderr.
pub fn final_line(s: &Summary) -> String {
    let attempts = match s.attempts {
        1 => "1 attempt".to_owned(),
        n => format!("{n} attempts"),
    };
    let took = secs(s.elapsed);
    match &s.outcome {
        Outcome::Ready { by } => format!("ready after {attempts} in {took} ({})", by.name()),
        Outcome::Failed { by, reason } => {
            format!(
                "failed after {attempts} in {took} ({}): {reason}",
                by.name()
            )
        }
        Outcome::Deadline => {
            let last = match &s.last_verdict {
                Some(Verdict::Retry { reason, .. }) => format!("; last: {reason}"),
                _ => String::new(),
            };
            format!("deadline passed after {attempts} in {took}{last}")
        }
    }
}

/// The `--json-output` summary.
pub fn render_summary(s: &Summary, url: &str) -> serde_json::Value {
    let (outcome, by, reason) = match &s.outcome {
        Outcome::Ready { by } => ("ready", Some(by.name()), None),
        Outcome::Failed { by, reason } => ("failed", Some(by.name()), Some(reason.as_str())),
        Outcome::Deadline => ("deadline", None, None),
    };
    let last = s.last.as_ref().map(|report| {
        let mut v = render_json(report);
        if let (Some(obj), Some(verdict)) = (v.as_object_mut(), &s.last_verdict) {
            let text = match verdict {
                Verdict::Ready => "ready".to_owned(),
                Verdict::Failed(why) => format!("failed: {why}"),
                Verdict::Retry { reason, .. } => format!("not ready: {reason}"),
            };
            obj.insert("verdict".into(), json!(text));
        }
        v
    });
    json!({
        "url": url,
        "outcome": outcome,
        "by": by,
        "reason": reason,
        "attempts": s.attempts,
        "elapsed_ms": (s.elapsed.as_secs_f64() * 1e6).round() / 1e3,
        "last": last,
    })
}

/// The terminal's one live line: spinner, elapsed, the last attempt;
/// redrawn in place every 100 ms, cleared at the end.
struct LiveLine {
    text: Arc<Mutex<String>>,
    ticker: tokio::task::JoinHandle<()>,
}

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const CLEAR: &str = "\r\x1b[2K";

impl LiveLine {
    fn start(start: Instant) -> LiveLine {
        let text = Arc::new(Mutex::new("first attempt...".to_owned()));
        let shown = text.clone();
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse::<usize>().ok())
            .unwrap_or(100);
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            for frame in SPINNER.iter().cycle() {
                tick.tick().await;
                let line = shown.lock().map(|t| t.clone()).unwrap_or_default();
                let line = format!("{frame} {}  {line}", secs(start.elapsed()));
                // One physical line, or the \r redraw would leave wrapped rows behind.
                let line: String = line.chars().take(width.saturating_sub(1)).collect();
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "{CLEAR}{line}");
                let _ = err.flush();
            }
        });
        LiveLine { text, ticker }
    }

    fn set(&self, line: String) {
        if let Ok(mut t) = self.text.lock() {
            *t = line;
        }
    }

    /// A line that stays (above the live one).
    fn log(&self, line: &str) {
        eprintln!("{CLEAR}{line}");
    }

    fn stop(self) {
        self.ticker.abort();
        eprint!("{CLEAR}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = |s| parse_duration(s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok("10m"), Duration::from_secs(600));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("2"), Duration::from_secs(2));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        for bad in ["", "s", "10x", "-1s", "1m 30s", "abc"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn retry_on_takes_statuses_and_classes() {
        let r = parse_retry_on(&["404".into(), "tls_untrusted".into()]).unwrap_or_default();
        assert_eq!(r.statuses, vec![404]);
        assert_eq!(r.classes, vec![wire::ErrorClass::TlsUntrusted]);
        assert!(parse_retry_on(&["nope".into()]).is_err());
        assert!(parse_retry_on(&["700".into()]).is_err());
    }
}
