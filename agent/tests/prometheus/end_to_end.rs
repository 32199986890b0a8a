//! A real Prometheus scraping sonde as a blackbox_exporter user would:
//! `/probe` through the relabel config of blackbox_exporter's README
//! (unchanged but for the exporter's address), the scheduled checks'
//! `/metrics` with `honor_labels: true`, and examples/alerts.yml loaded as
//! a rule file. Queried over its HTTP API: every scrape is up (Prometheus
//! negotiates OpenMetrics, so this also proves it parses sonde's), the
//! phase histograms give quantiles, the certificate-expiry expression picks
//! the target whose intermediate expires first, the recording rules record
//! and the certificate alert is pending or firing.

use std::collections::BTreeSet;
use std::time::Duration;

use testkit::blackbox::{self, BLACKBOX_EXPORTER, BlackboxExporter};
use testkit::fetch;
use testkit::prometheus::{PROMETHEUS, Prometheus, QuerySample};

use super::examples::{ALERTS_FILE, EMITTED, recorded_names};
use super::targets::{HTTP_2XX, HTTP_REGEX, Targets};
use super::{REGION, require_tools, start_agent};

/// How long Prometheus may take to have what a query asks for (1 s
/// scrapes and evaluations; a loaded CI machine is slow to start it).
const WAIT: Duration = Duration::from_secs(60);

/// blackbox_exporter's README scrape config, verbatim but for the job
/// name, the module, the targets and the exporter's address.
fn blackbox_job(job: &str, module: &str, targets: &[String], exporter: &str) -> String {
    let list: String = targets.iter().map(|t| format!("        - {t}\n")).collect();
    format!(
        "- job_name: '{job}'
  metrics_path: /probe
  params:
    module: [{module}]  # Look for a HTTP 200 response.
  static_configs:
    - targets:
{list}  relabel_configs:
    - source_labels: [__address__]
      target_label: __param_target
    - source_labels: [__param_target]
      target_label: instance
    - target_label: __address__
      replacement: {exporter}  # The blackbox exporter's real hostname:port.
"
    )
}

fn instances(samples: &[QuerySample]) -> BTreeSet<(String, String)> {
    samples
        .iter()
        .map(|s| {
            (
                s.labels.get("job").cloned().unwrap_or_default(),
                s.labels.get("instance").cloned().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn prometheus_scrapes_probe_and_metrics_and_evaluates_the_examples() {
    if !require_tools(&[PROMETHEUS, BLACKBOX_EXPORTER]) {
        return;
    }
    let targets = Targets::start();
    let checks = targets.checks();
    let mut agent = start_agent(&targets.modules_file, &checks);
    let bb = BlackboxExporter::start(&targets.modules_yaml).unwrap_or_else(|e| panic!("{e:#}"));
    let urls: Vec<String> = checks.iter().map(|c| c.url.clone()).collect();
    let tls_url = targets.tls.url("/ok");
    let sonde = agent.addr.to_string();
    let scrape = [
        blackbox_job("blackbox", HTTP_2XX, &urls, &sonde),
        blackbox_job("blackbox_regex", HTTP_REGEX, &urls[..1], &sonde),
        blackbox_job("blackbox_exporter", HTTP_2XX, &urls, &bb.addr().to_string()),
        format!("- job_name: 'sonde'\n  honor_labels: true\n  static_configs:\n    - targets: ['{sonde}']\n"),
    ]
    .concat();
    let rules =
        std::fs::read_to_string(ALERTS_FILE).unwrap_or_else(|e| panic!("{ALERTS_FILE}: {e}"));
    let prom =
        Prometheus::start(&scrape, &[("alerts.yml", &rules)]).unwrap_or_else(|e| panic!("{e:#}"));
    let fail = |e: anyhow::Error| -> ! {
        panic!(
            "{e:#}\n--- prometheus log ---\n{}{}",
            prom.log(),
            agent.process.describe()
        )
    };

    // Every scrape up: 4 + 1 + 4 /probe targets, and /metrics.
    let expected_targets = urls.len() * 2 + 2;
    prom.wait_for("up", WAIT, |s| {
        s.len() == expected_targets && s.iter().all(|x| x.value == 1.0)
    })
    .unwrap_or_else(|e| fail(e));

    // The scheduled checks' series keep sonde's instance (the URL), check and region.
    let from_metrics = prom
        .wait_for("probe_success{job=\"sonde\"}", WAIT, |s| {
            s.len() == checks.len()
        })
        .unwrap_or_else(|e| fail(e));
    for c in &checks {
        let s = from_metrics
            .iter()
            .find(|s| s.labels.get("check").map(String::as_str) == Some(c.name))
            .unwrap_or_else(|| panic!("no probe_success for check {}: {from_metrics:?}", c.name));
        assert_eq!(s.labels.get("instance"), Some(&c.url), "{s:?}");
        assert_eq!(
            s.labels.get("region").map(String::as_str),
            Some(REGION),
            "{s:?}"
        );
        assert_eq!(
            s.labels.get("team").map(String::as_str),
            Some("web"),
            "{s:?}"
        );
    }

    // Quantiles from the phase histograms, for every check that was up.
    let p99 = "histogram_quantile(0.99, sum by (le, check) \
               (rate(sonde_probe_phase_duration_seconds_bucket[1m])))";
    prom.wait_for(p99, WAIT, |s| {
        ["plain", "tls", "redirect"].iter().all(|check| {
            s.iter().any(|x| {
                x.labels.get("check").map(String::as_str) == Some(*check) && x.value.is_finite()
            })
        })
    })
    .unwrap_or_else(|e| fail(e));

    // The standard certificate alert picks the TLS target, from /probe
    // (sonde and the real blackbox_exporter alike) and from /metrics.
    let expiring = "(probe_ssl_earliest_cert_expiry - time()) / 86400 < 14";
    let picked = prom
        .wait_for(expiring, WAIT, |s| instances(s).len() == 3)
        .unwrap_or_else(|e| fail(e));
    let want: BTreeSet<(String, String)> = ["blackbox", "blackbox_exporter", "sonde"]
        .iter()
        .map(|job| (job.to_string(), tls_url.clone()))
        .collect();
    assert_eq!(instances(&picked), want, "{picked:?}");
    for s in &picked {
        assert!((9.0..=10.0).contains(&s.value), "days left {s:?}");
    }

    // The recording rules of examples/alerts.yml record, and the
    // certificate alert is pending (its `for:` is longer than this test) or firing.
    for name in recorded_names() {
        prom.wait_for(&name, WAIT, |s| !s.is_empty())
            .unwrap_or_else(|e| fail(e));
    }
    let alert = prom
        .wait_for(
            "ALERTS{alertname=\"SondeCertificateExpiringSoon\"}",
            WAIT,
            |s| !s.is_empty(),
        )
        .unwrap_or_else(|e| fail(e));
    assert!(
        alert
            .iter()
            .all(|s| s.labels.get("instance") == Some(&tls_url)),
        "{alert:?}"
    );

    // The name list the examples are checked against is what sonde emits.
    let mut seen = BTreeSet::new();
    let mut bodies = vec![fetch::get(agent.addr, "/metrics", &[]).map(|f| f.text())];
    for c in &checks {
        bodies.push(blackbox::probe(agent.addr, &c.url, HTTP_2XX).map(|f| f.text()));
    }
    for body in bodies {
        let body = body.unwrap_or_else(|e| fail(e));
        for s in fetch::parse_samples(&body).unwrap_or_else(|e| fail(e)) {
            seen.insert(s.name);
        }
    }
    let unseen: Vec<&&str> = EMITTED.iter().filter(|n| !seen.contains(**n)).collect();
    assert!(
        unseen.is_empty(),
        "named in examples' list but not emitted: {unseen:?}"
    );
    drop(prom);
    agent.process.stop();
}

/// The same scrape config and queries against the real blackbox_exporter
/// alone: the harness and the expectations are right, so when the test
/// above fails, sonde is what differs.
#[test]
fn the_same_config_against_blackbox_exporter_gives_what_sonde_must() {
    if !require_tools(&[PROMETHEUS, BLACKBOX_EXPORTER]) {
        return;
    }
    let targets = Targets::start();
    let bb = BlackboxExporter::start(&targets.modules_yaml).unwrap_or_else(|e| panic!("{e:#}"));
    let urls: Vec<String> = targets.checks().iter().map(|c| c.url.clone()).collect();
    let tls_url = targets.tls.url("/ok");
    let scrape = blackbox_job("blackbox", HTTP_2XX, &urls, &bb.addr().to_string());
    let prom = Prometheus::start(&scrape, &[]).unwrap_or_else(|e| panic!("{e:#}"));
    let fail = |e: anyhow::Error| -> ! { panic!("{e:#}\n--- prometheus log ---\n{}", prom.log()) };
    prom.wait_for("up", WAIT, |s| {
        s.len() == urls.len() && s.iter().all(|x| x.value == 1.0)
    })
    .unwrap_or_else(|e| fail(e));
    let picked = prom
        .wait_for(
            "(probe_ssl_earliest_cert_expiry - time()) / 86400 < 14",
            WAIT,
            |s| !s.is_empty(),
        )
        .unwrap_or_else(|e| fail(e));
    let want: BTreeSet<(String, String)> = [("blackbox".to_string(), tls_url)].into();
    assert_eq!(instances(&picked), want, "{picked:?}");
    let down = prom
        .wait_for("probe_success == 0", WAIT, |s| !s.is_empty())
        .unwrap_or_else(|e| fail(e));
    let want: BTreeSet<(String, String)> =
        [("blackbox".to_string(), targets.plain.url("/missing"))].into();
    assert_eq!(instances(&down), want, "{down:?}");
}
