//! The Prometheus text exposition format (0.0.4), as sonde writes it for
//! the agent's and the gateway's `/metrics`: HELP and TYPE lines, samples
//! with their label lists, histograms, escaped label values and sanitized
//! label names. It holds no values and registers nothing: callers keep
//! their counters (atomics, usually) and hand the numbers in at scrape
//! time. Nor does it parse the format, or write OpenMetrics.
#![forbid(unsafe_code)]

use std::fmt::{Display, Write as _};

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

/// An exposition being written: families and their samples, in the order
/// the caller writes them.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// An empty exposition with room for `bytes` of text.
    pub fn with_capacity(bytes: usize) -> Exposition {
        Exposition {
            text: String::with_capacity(bytes),
        }
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = kind.name();
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample. `labels` and `extra` are rendered label lists
    /// (`check="a",team="b"`, see [`label`]); either or both may be empty.
    pub fn sample(&mut self, name: &str, labels: &str, extra: &str, value: impl Display) {
        let o = &mut self.text;
        let _ = match (labels.is_empty(), extra.is_empty()) {
            (true, true) => writeln!(o, "{name} {value}"),
            (false, false) => writeln!(o, "{name}{{{labels},{extra}}} {value}"),
            _ => writeln!(o, "{name}{{{labels}{extra}}} {value}"),
        };
    }

    /// A family of one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, "", "", value);
    }

    /// A histogram family without labels. `counts` holds the observations
    /// per bucket, not cumulative: one per upper bound in `bounds`, then the
    /// +Inf bucket. `count` is read by the caller before the buckets, so
    /// buckets may run ahead of it under concurrent observation, never
    /// behind; the +Inf bucket and `_count` show the larger of the two.
    pub fn histogram(&mut self, name: &str, help: &str, bounds: &[f64], h: HistogramValues<'_>) {
        self.family(name, Kind::Histogram, help);
        let mut cumulative = 0u64;
        let bucket = format!("{name}_bucket");
        for (i, n) in h.counts.iter().enumerate() {
            cumulative += n;
            match bounds.get(i) {
                Some(le) => self.sample(&bucket, &format!("le=\"{le}\""), "", cumulative),
                None => self.sample(&bucket, "le=\"+Inf\"", "", h.count.max(cumulative)),
            }
        }
        self.sample(&format!("{name}_sum"), "", "", h.sum);
        self.sample(&format!("{name}_count"), "", "", h.count.max(cumulative));
    }

    /// The text, ready to serve as `text/plain; version=0.0.4`.
    pub fn finish(self) -> String {
        self.text
    }
}

/// A histogram's values at scrape time (see [`Exposition::histogram`]).
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

/// A label value escaped per the exposition format: backslash, double
/// quote and newline.
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
        e.sample("x_total", "", "", 1);
        e.sample("x_total", "a=\"1\"", "", 2);
        e.sample("x_total", "", "b=\"2\"", 3);
        e.sample("x_total", "a=\"1\"", "b=\"2\"", 4.5);
        e.single("up", Kind::Gauge, "Up.", 1);
        assert_eq!(
            e.finish(),
            "# HELP x_total Xs.\n# TYPE x_total counter\nx_total 1\nx_total{a=\"1\"} 2\n\
             x_total{b=\"2\"} 3\nx_total{a=\"1\",b=\"2\"} 4.5\n\
             # HELP up Up.\n# TYPE up gauge\nup 1\n"
        );
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
        assert_eq!(
            e.finish(),
            "# HELP lat_seconds Lateness.\n# TYPE lat_seconds histogram\n\
             lat_seconds_bucket{le=\"0.0005\"} 1\nlat_seconds_bucket{le=\"1\"} 3\n\
             lat_seconds_bucket{le=\"+Inf\"} 6\nlat_seconds_sum 0.25\nlat_seconds_count 6\n"
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
