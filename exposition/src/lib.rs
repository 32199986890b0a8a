//! The Prometheus exposition formats, as sonde writes them for the agent's
//! `/metrics` and `/probe` and the gateway's `/metrics`: text 0.0.4 and
//! OpenMetrics 1.0 text from one writer (HELP and TYPE lines, samples with
//! their label lists, histograms, escaped label values, sanitized label
//! names), the Accept/Accept-Encoding negotiation both servers use, and
//! gzip. It holds no values and registers nothing: callers keep their
//! counters and hand the numbers in at scrape time. It does not parse.
#![forbid(unsafe_code)]

use std::fmt::{Display, Write as _};

mod negotiate;

pub use negotiate::{Negotiated, encode, negotiate};

/// A metric family's type, as its `# TYPE` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that only goes up (until the process restarts).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Observations counted into cumulative buckets, with a sum and a count.
    Histogram,
}

impl Kind {
    /// The word on the `# TYPE` line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Which text format an exposition is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Prometheus text format 0.0.4 (what every scraper reads).
    #[default]
    Text,
    /// OpenMetrics 1.0.0 text: counter families named without `_total`
    /// on their HELP and TYPE lines, and a closing `# EOF`.
    OpenMetrics,
}

impl Format {
    /// The Content-Type header of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// A sample's value, written as both formats want it: integers as they
/// are, floats shortest-round-trip, infinities `+Inf`/`-Inf`, `NaN`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A whole number (counters, status codes, timestamps).
    Int(i64),
    /// An unsigned whole number (counters).
    Uint(u64),
    /// A float (durations, versions, hashes).
    Float(f64),
}

impl Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Uint(n) => write!(f, "{n}"),
            Value::Float(x) if x.is_nan() => f.write_str("NaN"),
            Value::Float(x) if x == f64::INFINITY => f.write_str("+Inf"),
            Value::Float(x) if x == f64::NEG_INFINITY => f.write_str("-Inf"),
            Value::Float(x) => write!(f, "{x}"),
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Value {
                Value::$v(n.into())
            }
        }
    )*};
}
value_from!(u8 => Uint, u16 => Uint, u32 => Uint, u64 => Uint, i32 => Int, i64 => Int, f64 => Float);

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Uint(u64::from(b))
    }
}

/// An exposition being written: families and their samples, in the order
/// the caller writes them. A family's HELP and TYPE lines are written with
/// its first sample, so a family without samples does not appear (as
/// client_golang omits a vector with no children).
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
    format: Format,
    /// The HELP and TYPE lines of the family begun last, until its first
    /// sample writes them.
    pending: Option<(&'static str, Kind, &'static str)>,
}

impl Exposition {
    /// An empty exposition in `format` with room for `bytes` of text.
    pub fn new(format: Format, bytes: usize) -> Exposition {
        Exposition {
            text: String::with_capacity(bytes),
            format,
            pending: None,
        }
    }

    /// An empty text-format (0.0.4) exposition with room for `bytes`.
    pub fn with_capacity(bytes: usize) -> Exposition {
        Exposition::new(Format::Text, bytes)
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Begins a family: its `# HELP` and `# TYPE` lines, written with its
    /// first sample. Counter names end in `_total`; in OpenMetrics the
    /// family is named without it.
    pub fn family(&mut self, name: &'static str, kind: Kind, help: &'static str) {
        self.pending = Some((name, kind, help));
    }

    fn flush_family(&mut self) {
        let Some((name, kind, help)) = self.pending.take() else {
            return;
        };
        let name = match (self.format, kind) {
            (Format::OpenMetrics, Kind::Counter) => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        let kind = kind.name();
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample. `labels` and `extra` are rendered label lists
    /// (`check="a",team="b"`, see [`label`]); either or both may be empty.
    pub fn sample(&mut self, name: &str, labels: &str, extra: &str, value: impl Into<Value>) {
        self.flush_family();
        let value = value.into();
        let o = &mut self.text;
        let _ = match (labels.is_empty(), extra.is_empty()) {
            (true, true) => writeln!(o, "{name} {value}"),
            (false, false) => writeln!(o, "{name}{{{labels},{extra}}} {value}"),
            _ => writeln!(o, "{name}{{{labels}{extra}}} {value}"),
        };
    }

    /// A family of one unlabelled sample.
    pub fn single(
        &mut self,
        name: &'static str,
        kind: Kind,
        help: &'static str,
        value: impl Into<Value>,
    ) {
        self.family(name, kind, help);
        self.sample(name, "", "", value);
    }

    /// A histogram family with one series, labelled `labels` (may be
    /// empty). See [`Exposition::histogram_series`].
    pub fn histogram(
        &mut self,
        name: &'static str,
        help: &'static str,
        bounds: &[f64],
        h: HistogramValues<'_>,
    ) {
        self.family(name, Kind::Histogram, help);
        self.histogram_series(name, "", bounds, h);
    }

    /// One series of the histogram family begun last: its buckets, sum and
    /// count. `counts` holds the observations per bucket, not cumulative:
    /// one per upper bound in `bounds`, then the +Inf bucket. `count` is
    /// read by the caller before the buckets, so buckets may run ahead of
    /// it under concurrent observation, never behind; the +Inf bucket and
    /// `_count` show the larger of the two.
    pub fn histogram_series(
        &mut self,
        name: &str,
        labels: &str,
        bounds: &[f64],
        h: HistogramValues<'_>,
    ) {
        let mut cumulative = 0u64;
        let mut le = String::with_capacity(24);
        let mut series = String::with_capacity(name.len() + 8);
        let _ = write!(series, "{name}_bucket");
        for (i, n) in h.counts.iter().enumerate() {
            cumulative += n;
            le.clear();
            match bounds.get(i) {
                Some(b) => {
                    let _ = write!(le, "le=\"{}\"", Value::Float(*b));
                    self.sample(&series, labels, &le, cumulative);
                }
                None => self.sample(&series, labels, "le=\"+Inf\"", h.count.max(cumulative)),
            }
        }
        series.clear();
        let _ = write!(series, "{name}_sum");
        self.sample(&series, labels, "", h.sum);
        series.clear();
        let _ = write!(series, "{name}_count");
        self.sample(&series, labels, "", h.count.max(cumulative));
    }

    /// The text, ready to serve with [`Format::content_type`]; in
    /// OpenMetrics, closed with `# EOF`.
    pub fn finish(mut self) -> String {
        self.pending = None;
        if self.format == Format::OpenMetrics {
            self.text.push_str("# EOF\n");
        }
        self.text
    }
}

/// A histogram's values at scrape time (see [`Exposition::histogram_series`]).
#[derive(Debug, Clone, Copy)]
pub struct HistogramValues<'a> {
    /// Observations per bucket, the +Inf bucket last; not cumulative.
    pub counts: &'a [u64],
    /// The sum of all observations, in the family's unit.
    pub sum: f64,
    /// The number of observations.
    pub count: u64,
}

/// One rendered label, `name="value"`, the value escaped.
pub fn label(name: &str, value: &str) -> String {
    format!("{name}=\"{}\"", escape(value))
}

/// A label value escaped per both formats: backslash, double quote and
/// newline.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A label name made valid: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with
/// `__` (reserved by Prometheus).
pub fn sanitize_label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) || out.starts_with("__") {
        out.insert_str(0, "label_");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_samples_with_and_without_labels() {
        let mut e = Exposition::default();
        e.family("x_total", Kind::Counter, "Xs.");
        e.sample("x_total", "", "", 1u64);
        e.sample("x_total", "a=\"1\"", "", 2u64);
        e.sample("x_total", "", "b=\"2\"", 3u64);
        e.sample("x_total", "a=\"1\"", "b=\"2\"", 4.5);
        e.single("up", Kind::Gauge, "Up.", 1u8);
        assert_eq!(
            e.finish(),
            "# HELP x_total Xs.\n# TYPE x_total counter\nx_total 1\nx_total{a=\"1\"} 2\n\
             x_total{b=\"2\"} 3\nx_total{a=\"1\",b=\"2\"} 4.5\n\
             # HELP up Up.\n# TYPE up gauge\nup 1\n"
        );
    }

    #[test]
    fn a_family_without_samples_is_not_written() {
        let mut e = Exposition::default();
        e.family("empty", Kind::Gauge, "Nothing.");
        e.family("full", Kind::Gauge, "Something.");
        e.sample("full", "", "", 1u8);
        e.family("trailing", Kind::Gauge, "Nothing either.");
        assert_eq!(
            e.finish(),
            "# HELP full Something.\n# TYPE full gauge\nfull 1\n"
        );
    }

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
        let mut e = Exposition::new(Format::OpenMetrics, 0);
        e.family("x_total", Kind::Counter, "Xs.");
        e.sample("x_total", "", "", 1u64);
        e.single("g_total_bytes", Kind::Gauge, "G.", 2u64);
        assert_eq!(
            e.finish(),
            "# HELP x Xs.\n# TYPE x counter\nx_total 1\n\
             # HELP g_total_bytes G.\n# TYPE g_total_bytes gauge\ng_total_bytes 2\n# EOF\n"
        );
    }

    #[test]
    fn values_are_written_as_prometheus_reads_them() {
        assert_eq!(Value::Float(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Value::Float(f64::NEG_INFINITY).to_string(), "-Inf");
        assert_eq!(Value::Float(f64::NAN).to_string(), "NaN");
        assert_eq!(Value::Float(1.1).to_string(), "1.1");
        assert_eq!(Value::Float(2.0).to_string(), "2");
        assert_eq!(Value::Int(-1).to_string(), "-1");
    }

    #[test]
    fn histograms_are_cumulative_and_inf_is_never_below_the_buckets() {
        let mut e = Exposition::default();
        let h = HistogramValues {
            counts: &[1, 2, 3],
            sum: 0.25,
            count: 5,
        };
        e.histogram("lat_seconds", "Lateness.", &[0.0005, 1.0], h);
        e.family("p_seconds", Kind::Histogram, "P.");
        let h = HistogramValues {
            counts: &[0, 1],
            sum: 2.0,
            count: 1,
        };
        e.histogram_series("p_seconds", "check=\"a\"", &[1.0], h);
        assert_eq!(
            e.finish(),
            "# HELP lat_seconds Lateness.\n# TYPE lat_seconds histogram\n\
             lat_seconds_bucket{le=\"0.0005\"} 1\nlat_seconds_bucket{le=\"1\"} 3\n\
             lat_seconds_bucket{le=\"+Inf\"} 6\nlat_seconds_sum 0.25\nlat_seconds_count 6\n\
             # HELP p_seconds P.\n# TYPE p_seconds histogram\n\
             p_seconds_bucket{check=\"a\",le=\"1\"} 0\np_seconds_bucket{check=\"a\",le=\"+Inf\"} 1\n\
             p_seconds_sum{check=\"a\"} 2\np_seconds_count{check=\"a\"} 1\n"
        );
    }

    #[test]
    fn label_values_are_escaped_and_names_sanitized() {
        assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(label("sink", "a\"b"), "sink=\"a\\\"b\"");
        assert_eq!(sanitize_label_name("team"), "team");
        assert_eq!(sanitize_label_name("a-b.c"), "a_b_c");
        assert_eq!(sanitize_label_name("9lives"), "label_9lives");
        assert_eq!(sanitize_label_name("__meta"), "label___meta");
        assert_eq!(sanitize_label_name(""), "label_");
    }
}
