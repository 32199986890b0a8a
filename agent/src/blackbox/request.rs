//! The pure parts of a /probe request, as blackbox_exporter's handler has
//! them: the query's parameters, the timeout from the scrape's header, the
//! target URL (`http://` added when there is no scheme), the probe's log
//! in logfmt and the debug output's layout.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use url::Url;

/// The module a request without `module=` gets.
pub(crate) const DEFAULT_MODULE: &str = "http_2xx";

/// What blackbox_exporter takes without the scrape timeout header, in
/// seconds (before the offset).
const NO_HEADER_TIMEOUT_SECONDS: f64 = 120.0;

/// The parameters of `/probe?…` (the first of each, as Go's `Get`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Query {
    /// `module`, `http_2xx` when absent or empty.
    pub(crate) module: String,
    /// `target`.
    pub(crate) target: Option<String>,
    /// `hostname`: the Host header (and TLS name) to send.
    pub(crate) hostname: Option<String>,
    /// `debug=true`.
    pub(crate) debug: bool,
}

impl Query {
    /// Parses a query string.
    pub(crate) fn parse(query: &str) -> Query {
        let mut q = Query::default();
        let mut module = None;
        let mut debug = None;
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match &*k {
                "module" => &mut module,
                "target" => &mut q.target,
                "hostname" => &mut q.hostname,
                "debug" => &mut debug,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(v.into_owned());
            }
        }
        q.module = module
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| DEFAULT_MODULE.into());
        q.debug = debug.as_deref() == Some("true");
        q
    }
}

/// The probe's timeout as blackbox_exporter's `getTimeout` computes it:
/// the header's seconds (120 without it, or at 0) less `offset`, capped by
/// the module's `timeout`; the module's when that goes below zero. The
/// error is Go's `strconv.ParseFloat` message.
pub(crate) fn timeout(
    header: Option<&str>,
    module: Option<Duration>,
    offset: Duration,
) -> Result<Duration, String> {
    let mut seconds = match header.filter(|h| !h.is_empty()) {
        Some(h) => parse_float(h)?,
        None => 0.0,
    };
    if seconds == 0.0 {
        seconds = NO_HEADER_TIMEOUT_SECONDS;
    }
    let max = seconds - offset.as_secs_f64();
    let module = module.map_or(0.0, |m| m.as_secs_f64());
    let chosen = if (module < max && module > 0.0) || max < 0.0 {
        module
    } else {
        max
    };
    Ok(go_duration_seconds(chosen))
}

/// `time.Duration(seconds * 1e9)` as Go computes it on amd64, but with
/// what Go gets wrong made zero: a value past `i64::MAX` nanoseconds
/// (where Go's conversion overflows to a deadline in the past), NaN and
/// below zero are all an immediate deadline.
fn go_duration_seconds(seconds: f64) -> Duration {
    // i64::MAX nanoseconds, about 292 years.
    const MAX_SECONDS: f64 = i64::MAX as f64 / 1e9;
    if !(seconds > 0.0 && seconds < MAX_SECONDS) {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO)
}

/// Go's `strconv.ParseFloat(s, 64)` for what a header carries.
fn parse_float(s: &str) -> Result<f64, String> {
    let syntax = || {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(s)
        )
    };
    // Rust takes a leading '+' and "infinity" as Go does, but not '_'
    // separators or hex floats, which no scraper sends.
    let v: f64 = s.parse().map_err(|_| syntax())?;
    if v.is_infinite() && !s.to_ascii_lowercase().contains("inf") {
        return Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            go_quote(s)
        ));
    }
    Ok(v)
}

/// A string as Go's `%q` writes it (for the ASCII a query carries).
pub(crate) fn go_quote(s: &str) -> String {
    format!("{s:?}")
}

/// The target as a URL: `http://` is put before one without `http://` or
/// `https://`, as blackbox_exporter does.
pub(crate) fn target_url(target: &str) -> Result<Url, String> {
    let full = if target.starts_with("http://") || target.starts_with("https://") {
        target.to_owned()
    } else {
        format!("http://{target}")
    };
    Url::parse(&full).map_err(|e| e.to_string())
}

/// The probe's log, in blackbox_exporter's logfmt: `ts=… module=… target=…
/// level=… msg=… key=value…`.
pub(crate) struct ProbeLog {
    prefix: String,
    out: String,
}

impl ProbeLog {
    /// A log for `module` probing `target` (credentials already removed).
    pub(crate) fn new(module: &str, target: &str) -> ProbeLog {
        ProbeLog {
            prefix: format!("module={} target={}", value(module), value(target)),
            out: String::new(),
        }
    }

    /// Adds a line at `level`.
    pub(crate) fn line(&mut self, level: &str, msg: &str, fields: &[(&str, String)]) {
        let _ = write!(
            self.out,
            "ts={} {} level={level} msg={}",
            rfc3339(SystemTime::now()),
            self.prefix,
            value(msg)
        );
        for (k, v) in fields {
            let _ = write!(self.out, " {k}={}", value(v));
        }
        self.out.push('\n');
    }

    /// The lines.
    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// A logfmt value: bare when it can be, else quoted.
fn value(v: &str) -> String {
    if !v.is_empty() && !v.contains(|c: char| c == ' ' || c == '=' || c == '"' || c.is_control()) {
        v.to_owned()
    } else {
        format!("{v:?}")
    }
}

/// `2006-01-02T15:04:05.000000000Z`, UTC (go-kit's DefaultTimestampUTC,
/// trailing zeros of the fraction dropped as Go's RFC3339Nano does).
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let utc = store::Utc::from_epoch_ms(secs.saturating_mul(1000));
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second
    );
    let nanos = d.subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// blackbox_exporter's debug page: the log, the metrics, the module.
pub(crate) fn debug_output(log: &str, metrics: &str, module: &str) -> String {
    format!(
        "Logs for the probe:\n{log}\n\n\nMetrics that would have been returned:\n{metrics}\n\n\nModule configuration:\n{module}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_defaults_to_http_2xx_and_the_first_value_wins() {
        let q = Query::parse("target=a&target=b&debug=true");
        assert_eq!(q.module, "http_2xx");
        assert_eq!(q.target.as_deref(), Some("a"));
        assert!(q.debug);
        let q = Query::parse("module=&target=x%20y&debug=1");
        assert_eq!(q.module, "http_2xx");
        assert_eq!(q.target.as_deref(), Some("x y"));
        assert!(!q.debug);
    }

    #[test]
    fn the_timeout_is_the_header_less_the_offset_capped_by_the_module() {
        let off = Duration::from_millis(500);
        let s = |h, m: Option<u64>| {
            timeout(h, m.map(Duration::from_secs), off).map(|d| d.as_secs_f64())
        };
        assert_eq!(s(Some("1.5"), Some(5)), Ok(1.0));
        assert_eq!(s(Some("10"), Some(5)), Ok(5.0));
        assert_eq!(s(None, None), Ok(119.5));
        assert_eq!(s(None, Some(5)), Ok(5.0));
        assert_eq!(s(Some("0"), None), Ok(119.5));
        // Below zero after the offset: the module's timeout.
        assert_eq!(s(Some("0.2"), Some(5)), Ok(5.0));
        // Past what Go's Duration holds (it overflows into the past),
        // infinite or NaN: an immediate deadline, never a panic.
        assert_eq!(s(Some("1e19"), None), Ok(0.0));
        assert_eq!(s(Some("1e10"), None), Ok(0.0));
        assert_eq!(s(Some("+Inf"), None), Ok(0.0));
        assert_eq!(s(Some("NaN"), None), Ok(0.0));
        assert_eq!(s(Some("1e9"), None), Ok(1e9 - 0.5));
        assert_eq!(
            s(Some("abc"), None),
            Err("strconv.ParseFloat: parsing \"abc\": invalid syntax".into())
        );
    }

    #[test]
    fn a_target_without_scheme_is_http() {
        let u = |t| target_url(t).map(|u| u.to_string());
        assert_eq!(
            u("example.com:8080/x"),
            Ok("http://example.com:8080/x".into())
        );
        assert_eq!(u("https://example.com"), Ok("https://example.com/".into()));
        assert!(u("http://").is_err());
    }

    #[test]
    fn timestamps_and_logfmt_values_are_as_go_kit_writes_them() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 120_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.12Z");
        assert_eq!(value("Beginning probe"), "\"Beginning probe\"");
        assert_eq!(value("http"), "http");
    }

    #[test]
    fn debug_output_has_blackbox_exporters_three_sections() {
        let out = debug_output("L\n", "M\n", "prober: http\n");
        assert_eq!(
            out,
            "Logs for the probe:\nL\n\n\n\nMetrics that would have been returned:\nM\n\n\n\nModule configuration:\nprober: http\n"
        );
    }
}
