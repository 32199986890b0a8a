//! The shipped examples on their own: examples/alerts.yml passes
//! `promtool check rules`, and every metric the rules and the Grafana
//! dashboard (examples/grafana/sonde.json) query is one sonde emits (or a
//! rule records). The name list is checked against a running sonde by the
//! end-to-end test.

use std::collections::BTreeSet;
use std::path::Path;

use testkit::prometheus::{self, PROMTOOL};

pub const ALERTS_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/alerts.yml");
pub const DASHBOARD_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/grafana/sonde.json"
);

/// Metric names sonde emits on `/metrics` and `/probe` with the targets of
/// these tests (histograms by their sample names); the examples may use these.
pub const EMITTED: &[&str] = &[
    "probe_success",
    "probe_duration_seconds",
    "probe_http_status_code",
    "probe_http_duration_seconds",
    "probe_dns_lookup_time_seconds",
    "probe_http_version",
    "probe_http_ssl",
    "probe_http_redirects",
    "probe_http_content_length",
    "probe_http_uncompressed_body_length",
    "probe_ip_protocol",
    "probe_ip_addr_hash",
    "probe_failed_due_to_regex",
    "probe_ssl_earliest_cert_expiry",
    "probe_ssl_last_chain_expiry_timestamp_seconds",
    "probe_ssl_last_chain_info",
    "probe_tls_version_info",
    "sonde_probe_phase_duration_seconds_bucket",
    "sonde_probe_phase_duration_seconds_sum",
    "sonde_probe_phase_duration_seconds_count",
    "sonde_probe_duration_seconds_bucket",
    "sonde_probe_duration_seconds_sum",
    "sonde_probe_duration_seconds_count",
    "sonde_probes_total",
    "sonde_probe_failures_total",
    "sonde_probe_last_timestamp_seconds",
    "sonde_check_info",
    "sonde_build_info",
];

/// Series Prometheus itself makes, which rules and dashboards may query.
const PROMETHEUS_OWN: &[&str] = &["up", "ALERTS", "ALERTS_FOR_STATE"];

/// PromQL words that look like metric names (aggregations among them:
/// `sum by (x) (...)` puts `by` between the name and its parenthesis).
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
];

/// The `record:` names of examples/alerts.yml.
pub fn recorded_names() -> Vec<String> {
    let text =
        std::fs::read_to_string(ALERTS_FILE).unwrap_or_else(|e| panic!("{ALERTS_FILE}: {e}"));
    text.lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("- record:")
                .or(l.trim().strip_prefix("record:"))
        })
        .map(|n| n.trim().to_owned())
        .collect()
}

/// The metric names a PromQL expression selects (pure): identifiers not
/// followed by `(`, outside label matchers `{...}`, ranges `[...]`,
/// strings, grouping lists `by (...)`, and Grafana's `$variables`.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let (mut i, mut braces, mut brackets) = (0, 0usize, 0usize);
    let mut grouping = false;
    let mut grouping_depth = 0usize;
    let mut paren_depth = 0usize;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            '{' => braces += 1,
            '}' => braces = braces.saturating_sub(1),
            '[' => brackets += 1,
            ']' => brackets = brackets.saturating_sub(1),
            '(' => paren_depth += 1,
            ')' => {
                if grouping && paren_depth == grouping_depth {
                    grouping = false;
                }
                paren_depth = paren_depth.saturating_sub(1);
            }
            '$' => {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        if (c.is_ascii_alphabetic() || c == '_' || c == ':') && braces == 0 && brackets == 0 {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            let lower = word.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) {
                // The label list that follows is not metric names.
                if next == Some(&'(') {
                    grouping = true;
                    grouping_depth = paren_depth + 1;
                }
            } else if next != Some(&'(')
                && !grouping
                && !KEYWORDS.contains(&lower.as_str())
                && (start == 0 || !chars[start - 1].is_ascii_digit())
            {
                names.insert(word);
            }
            continue;
        }
        if c.is_ascii_digit() {
            // A number (1e3, 0.5) or a duration (5m) is not a name.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    names
}

/// Every name in `exprs` that sonde does not emit, no rule records and
/// Prometheus does not make.
fn unknown_names<'a>(exprs: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    let recorded = recorded_names();
    exprs
        .into_iter()
        .flat_map(metric_names)
        .filter(|n| {
            !EMITTED.contains(&n.as_str())
                && !PROMETHEUS_OWN.contains(&n.as_str())
                && !recorded.contains(n)
        })
        .collect()
}

/// Every `expr:` of a rules file (single-line, `|` or `>` blocks).
fn rule_exprs(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(rest) = line.trim_start().strip_prefix("expr:") {
            let indent = line.len() - line.trim_start().len();
            let rest = rest.trim();
            if rest.starts_with('|') || rest.starts_with('>') {
                let mut block = String::new();
                i += 1;
                while i < lines.len()
                    && (lines[i].trim().is_empty()
                        || lines[i].len() - lines[i].trim_start().len() > indent)
                {
                    block.push_str(lines[i].trim());
                    block.push(' ');
                    i += 1;
                }
                out.push(block);
                continue;
            }
            out.push(rest.to_owned());
        }
        i += 1;
    }
    out
}

/// Every query string of a Grafana dashboard: targets' `expr`, and
/// query variables' `query` (a string or `{ "query": ... }`).
fn dashboard_queries(json: &serde_json::Value, out: &mut Vec<String>) {
    match json {
        // A datasource variable's `query` is a plugin type, not PromQL.
        serde_json::Value::Object(map) if map.get("type").is_some_and(|t| t == "datasource") => {}
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    ("query", serde_json::Value::String(s)) => out.push(label_values_metric(s)),
                    _ => dashboard_queries(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_queries(v, out)),
        _ => {}
    }
}

/// Grafana's `label_values(METRIC, LABEL)` as the PromQL it selects
/// (`METRIC`); any other query as it is.
fn label_values_metric(query: &str) -> String {
    let q = query.trim();
    match q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
    {
        Some(inner) => inner.rsplit_once(',').map_or(inner, |(m, _)| m).to_owned(),
        None => q.to_owned(),
    }
}

#[test]
fn the_alerts_example_passes_promtool_check_rules() {
    if !testkit::require_tool(PROMTOOL) {
        return;
    }
    let report =
        prometheus::check_rules(Path::new(ALERTS_FILE)).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        report.ok,
        "promtool check rules {ALERTS_FILE}:\n{}",
        report.output
    );
}

#[test]
fn the_alerts_example_queries_only_what_sonde_emits() {
    let text =
        std::fs::read_to_string(ALERTS_FILE).unwrap_or_else(|e| panic!("{ALERTS_FILE}: {e}"));
    let exprs = rule_exprs(&text);
    assert!(exprs.len() >= 8, "{exprs:?}");
    let unknown = unknown_names(exprs.iter().map(String::as_str));
    assert!(unknown.is_empty(), "{ALERTS_FILE} queries {unknown:?}");
    for wanted in [
        "SondeProbeFailing",
        "SondeCertificateExpiringSoon",
        "SondeProbeSlow",
        "SondeProbeStale",
        "SondeProbeFailures",
    ] {
        assert!(
            text.contains(&format!("alert: {wanted}")),
            "{wanted} missing"
        );
    }
}

#[test]
fn the_dashboard_parses_and_queries_only_what_sonde_emits() {
    let text =
        std::fs::read_to_string(DASHBOARD_FILE).unwrap_or_else(|e| panic!("{DASHBOARD_FILE}: {e}"));
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD_FILE}: {e}"));
    let mut queries = Vec::new();
    dashboard_queries(&json, &mut queries);
    assert!(queries.len() >= 6, "{queries:?}");
    let unknown = unknown_names(queries.iter().map(String::as_str));
    assert!(unknown.is_empty(), "{DASHBOARD_FILE} queries {unknown:?}");
    let vars: Vec<&str> = json["templating"]["list"]
        .as_array()
        .map(|l| l.iter().filter_map(|v| v["name"].as_str()).collect())
        .unwrap_or_default();
    for var in ["region", "check"] {
        assert!(
            vars.contains(&var),
            "template variable {var} missing: {vars:?}"
        );
    }
    let used: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(q)).collect();
    for needed in [
        "sonde_probe_phase_duration_seconds_bucket",
        "probe_ssl_earliest_cert_expiry",
        "sonde_probe_failures_total",
        "sonde_probes_total",
        "probe_http_duration_seconds",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard does not query {needed}"
        );
    }
}

#[test]
fn metric_names_skip_functions_labels_ranges_groupings_and_variables() {
    let names = metric_names(
        "histogram_quantile(0.99, sum by (le, check) (rate(sonde_probe_phase_duration_seconds_bucket{check=~\"$check\",region=\"x\"}[5m]))) \
         / on (check) group_left up > bool 1e3 and (probe_success offset 5m) or ALERTS{alertname=\"a b\"}",
    );
    let want: BTreeSet<String> = [
        "sonde_probe_phase_duration_seconds_bucket",
        "up",
        "probe_success",
        "ALERTS",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(names, want);
    assert_eq!(
        unknown_names(["rate(sonde_no_such_metric_total[1m]) + probe_success"]),
        ["sonde_no_such_metric_total".to_string()]
            .into_iter()
            .collect()
    );
}

#[test]
fn label_values_selects_its_metric() {
    assert_eq!(
        label_values_metric("label_values(sonde_check_info{region=~\"$region\"}, check)"),
        "sonde_check_info{region=~\"$region\"}"
    );
    assert_eq!(label_values_metric("up"), "up");
}

#[test]
fn rule_exprs_reads_single_lines_and_blocks() {
    let exprs = rule_exprs(
        "groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: sum(x)\n      - alert: A\n        expr: |\n          y\n            > 1\n        for: 5m\n",
    );
    assert_eq!(exprs, vec!["sum(x)".to_string(), "y > 1 ".to_string()]);
}
