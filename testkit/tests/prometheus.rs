//! The real Prometheus and blackbox_exporter helpers against themselves
//! and a testkit target: they start, answer, and stop on drop.

use std::time::Duration;

use testkit::blackbox::{BLACKBOX_EXPORTER, BlackboxExporter};
use testkit::fetch;
use testkit::http::{HttpTarget, Response};
use testkit::prometheus::{self, PROMETHEUS, PROMTOOL, Prometheus};

#[test]
fn prometheus_scrapes_itself_and_answers_queries() {
    if !testkit::require_tool(PROMETHEUS) {
        return;
    }
    let target = HttpTarget::builder()
        .route(
            "/metrics",
            Response::ok("# TYPE demo_up gauge\ndemo_up{x=\"1\"} 1\n"),
        )
        .start();
    let scrape = format!(
        "- job_name: demo\n  static_configs:\n    - targets: ['{}']",
        target.addr()
    );
    let prom = Prometheus::start(&scrape, &[]).unwrap_or_else(|e| panic!("{e:#}"));
    let up = prom
        .wait_for("demo_up", Duration::from_secs(30), |s| !s.is_empty())
        .unwrap_or_else(|e| panic!("{e:#}\n{}", prom.log()));
    assert_eq!(up[0].labels["x"], "1");
    assert_eq!(up[0].labels["job"], "demo");
    let scalar = prom.query("1 + 1").unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(scalar[0].value, 2.0);
    let bad = prom.query("sum(").err().map(|e| format!("{e:#}"));
    assert!(bad.is_some_and(|e| e.contains("bad_data")));
    let addr = prom.url().trim_start_matches("http://").to_owned();
    drop(prom);
    let gone = addr
        .parse()
        .map(|a| fetch::get(a, "/-/ready", &[]).is_err())
        .unwrap_or(false);
    assert!(gone, "Prometheus still answers after the drop");
}

#[test]
fn promtool_finds_a_fault_and_passes_a_clean_exposition() {
    if !testkit::require_tool(PROMTOOL) {
        return;
    }
    let clean = prometheus::check_metrics("# HELP a_total A.\n# TYPE a_total counter\na_total 1\n")
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(clean.ok, "{}", clean.output);
    // A counter without the _total suffix is a lint problem.
    let faulty = prometheus::check_metrics("# HELP a A.\n# TYPE a counter\na 1\n")
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!faulty.ok, "{}", faulty.output);
}

#[test]
fn blackbox_probes_a_target() {
    if !testkit::require_tool(BLACKBOX_EXPORTER) {
        return;
    }
    let target = HttpTarget::builder()
        .route("/ok", Response::ok("fine"))
        .start();
    let bb = BlackboxExporter::start(
        "modules:\n  http_2xx:\n    prober: http\n    http:\n      preferred_ip_protocol: ip4\n",
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let answer = bb
        .probe(&target.url("/ok"), "http_2xx")
        .unwrap_or_else(|e| panic!("{e:#}\n{}", bb.log()));
    assert_eq!(answer.status, 200);
    let samples = fetch::parse_samples(&answer.text()).unwrap_or_else(|e| panic!("{e:#}"));
    let value = |name: &str| samples.iter().find(|s| s.name == name).map(|s| s.value);
    assert_eq!(value("probe_success"), Some(1.0), "{}", answer.text());
    assert_eq!(value("probe_http_status_code"), Some(200.0));
}
