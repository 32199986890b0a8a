//! sonde's `/probe` beside the real blackbox_exporter (Debian's 0.23.0) on
//! the same targets with the same module file: blackbox's metric names are
//! a subset of sonde's, and the values that describe the target (not the
//! time a probe took) agree exactly. promtool finds nothing wrong with
//! either of sonde's endpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use testkit::blackbox::{self, BLACKBOX_EXPORTER, BlackboxExporter};
use testkit::fetch::{self, Sample};
use testkit::prometheus::{self, PROMTOOL};

use super::targets::{Case, Targets};
use super::{require_tools, start_agent};
use crate::util::process::wait_until;

/// Single-sample gauges whose value must be the same from both exporters.
pub const MUST_AGREE: &[&str] = &[
    "probe_success",
    "probe_http_status_code",
    "probe_http_ssl",
    "probe_http_version",
    "probe_http_redirects",
    "probe_ssl_earliest_cert_expiry",
    "probe_ssl_last_chain_expiry_timestamp_seconds",
    "probe_failed_due_to_regex",
    "probe_http_content_length",
    "probe_http_uncompressed_body_length",
    "probe_http_last_modified_timestamp_seconds",
    "probe_ip_protocol",
    "probe_ip_addr_hash",
];

/// Info-style gauges whose every series (labels and value) must agree.
pub const SERIES_AGREE: &[&str] = &["probe_tls_version_info", "probe_ssl_last_chain_info"];

/// Labels sonde adds to a [`SERIES_AGREE`] gauge beyond blackbox 0.23.0's,
/// and why: the series agree on every label blackbox has, and has only
/// these more.
pub const NEWER_LABELS: &[(&str, &str, &str)] = &[(
    "probe_ssl_last_chain_info",
    "serialnumber",
    "blackbox_exporter 0.26.0 and later add the leaf's serial number",
)];

/// What legitimately differs, and why. For these only the label sets agree
/// (the phase names of `probe_http_duration_seconds`).
pub const MAY_DIFFER: &[(&str, &str)] = &[
    (
        "probe_duration_seconds",
        "each exporter's own wall time for its own probe",
    ),
    (
        "probe_http_duration_seconds",
        "phase times of each exporter's own probe; sonde's are contiguous and \
         not summed over redirects (README: Coming from blackbox_exporter)",
    ),
    (
        "probe_dns_lookup_time_seconds",
        "time; the targets are IP literals, so both are near 0 but not equal",
    ),
];

#[test]
fn blackbox_names_are_a_subset_of_sondes_and_the_values_agree() {
    if !require_tools(&[BLACKBOX_EXPORTER]) {
        return;
    }
    let targets = Targets::start();
    let bb = BlackboxExporter::start(&targets.modules_yaml).unwrap_or_else(|e| panic!("{e:#}"));
    let mut agent = start_agent(&targets.modules_file, &[]);
    let mut faults = Vec::new();
    for case in targets.cases() {
        let theirs = probe_samples(bb.probe(&case.url, case.module), &case, "blackbox_exporter");
        let ours = probe_samples(
            blackbox::probe(agent.addr, &case.url, case.module),
            &case,
            "sonde",
        );
        faults.extend(compare(&case, &theirs, &ours));
        // Without a connection both show connect and tls 0 (their times
        // otherwise differ by design).
        let unconnected = case.name == "connect refused";
        for phase in ["connect", "tls"].into_iter().filter(|_| unconnected) {
            let at = |samples: &[Sample]| {
                samples
                    .iter()
                    .find(|s| {
                        s.name == "probe_http_duration_seconds"
                            && s.labels.get("phase").map(String::as_str) == Some(phase)
                    })
                    .map(|s| s.value)
            };
            let (t, o) = (at(&theirs), at(&ours));
            if t != Some(0.0) || o != Some(0.0) {
                faults.push(format!(
                    "{}: phase {phase} is {t:?} in blackbox_exporter, {o:?} in sonde",
                    case.name
                ));
            }
        }
        if case.url.starts_with("https") {
            let expiry = value(&ours, "probe_ssl_earliest_cert_expiry");
            if expiry != Some(targets.intermediate_expiry) {
                faults.push(format!(
                    "{}: sonde's probe_ssl_earliest_cert_expiry is {expiry:?}, not the \
                     intermediate's {} (the leaf's is {})",
                    case.name, targets.intermediate_expiry, targets.leaf_expiry
                ));
            }
        }
    }
    assert!(
        faults.is_empty(),
        "sonde's /probe differs from blackbox_exporter's:\n  {}{}",
        faults.join("\n  "),
        agent.process.describe()
    );
    agent.process.stop();
}

/// The values compared are the target's, not the run's: blackbox_exporter
/// probing each target twice agrees with itself on all of them, so a
/// difference from sonde is sonde's (or a real difference in meaning).
/// And promtool passes the real exporter's answers.
#[test]
fn blackbox_agrees_with_itself_on_what_is_compared() {
    if !require_tools(&[BLACKBOX_EXPORTER]) {
        return;
    }
    let targets = Targets::start();
    let bb = BlackboxExporter::start(&targets.modules_yaml).unwrap_or_else(|e| panic!("{e:#}"));
    let mut faults = Vec::new();
    for case in targets.cases() {
        let first = probe_samples(bb.probe(&case.url, case.module), &case, "blackbox_exporter");
        let second = probe_samples(bb.probe(&case.url, case.module), &case, "blackbox_exporter");
        faults.extend(compare(&case, &first, &second));
        if testkit::find_tool(PROMTOOL).is_some() {
            let text = bb
                .probe(&case.url, case.module)
                .map(|f| f.text())
                .unwrap_or_else(|e| panic!("{e:#}"));
            faults.extend(promtool_faults(
                &format!("blackbox_exporter /probe ({})", case.name),
                &text,
                false,
            ));
        }
        if case.url.starts_with("https") {
            // The real thing reports the intermediate: what sonde must match.
            assert_eq!(
                value(&first, "probe_ssl_earliest_cert_expiry"),
                Some(targets.intermediate_expiry),
                "{first:?}"
            );
        }
    }
    assert!(faults.is_empty(), "{faults:#?}");
}

/// Every name blackbox emitted for the targets is classified: agrees
/// exactly, agrees as series, or differs for a stated reason.
#[test]
fn every_blackbox_metric_is_classified() {
    if !require_tools(&[BLACKBOX_EXPORTER]) {
        return;
    }
    let targets = Targets::start();
    let bb = BlackboxExporter::start(&targets.modules_yaml).unwrap_or_else(|e| panic!("{e:#}"));
    let classified: BTreeSet<&str> = MUST_AGREE
        .iter()
        .chain(SERIES_AGREE)
        .copied()
        .chain(MAY_DIFFER.iter().map(|(n, _)| *n))
        .collect();
    let mut unknown = BTreeSet::new();
    for case in targets.cases() {
        for s in probe_samples(bb.probe(&case.url, case.module), &case, "blackbox_exporter") {
            if !classified.contains(s.name.as_str()) {
                unknown.insert(s.name);
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "blackbox_exporter emits metrics this test does not compare: {unknown:?}"
    );
}

#[test]
fn promtool_passes_probe_and_metrics_in_text_and_openmetrics() {
    if !require_tools(&[BLACKBOX_EXPORTER, PROMTOOL]) {
        return;
    }
    let targets = Targets::start();
    let checks = targets.checks();
    let mut agent = start_agent(&targets.modules_file, &checks);
    wait_until(Duration::from_secs(30), "every check probed", || {
        let text = fetch::get(agent.addr, "/metrics", &[])
            .map(|f| f.text())
            .unwrap_or_default();
        let samples = fetch::parse_samples(&text).unwrap_or_default();
        checks.iter().all(|c| {
            samples.iter().any(|s| {
                s.name == "sonde_probe_last_timestamp_seconds"
                    && s.labels.get("check").map(String::as_str) == Some(c.name)
            })
        })
    });
    let mut faults = Vec::new();
    let metrics_text = fetch::get(agent.addr, "/metrics", &[]).unwrap_or_else(|e| panic!("{e:#}"));
    faults.extend(promtool_faults(
        "/metrics (text)",
        &metrics_text.text(),
        false,
    ));
    let om = fetch::get(
        agent.addr,
        "/metrics",
        &[(
            "accept",
            // What Prometheus 2.42 sends.
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
             text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        )],
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let om_type = om.header("content-type").unwrap_or_default().to_owned();
    if !om_type.starts_with("application/openmetrics-text") {
        faults.push(format!(
            "/metrics asked for OpenMetrics answered content-type {om_type:?}"
        ));
    }
    if !om.text().trim_end().ends_with("# EOF") {
        faults.push("/metrics in OpenMetrics does not end with # EOF".to_owned());
    }
    faults.extend(promtool_faults("/metrics (OpenMetrics)", &om.text(), true));
    for case in targets.cases() {
        let probe =
            blackbox::probe(agent.addr, &case.url, case.module).unwrap_or_else(|e| panic!("{e:#}"));
        faults.extend(promtool_faults(
            &format!("/probe ({})", case.name),
            &probe.text(),
            false,
        ));
    }
    assert!(
        faults.is_empty(),
        "promtool check metrics:\n  {}{}",
        faults.join("\n  "),
        agent.process.describe()
    );
    agent.process.stop();
}

/// What promtool objects to in `text` (from `what`). promtool reads
/// OpenMetrics with the 0.0.4 parser, so for `openmetrics` a counter's
/// `_total`/`_created` samples look like families without HELP: those
/// lines are dropped when the family's `# HELP` is there.
fn promtool_faults(what: &str, text: &str, openmetrics: bool) -> Vec<String> {
    let report = prometheus::check_metrics(text).unwrap_or_else(|e| panic!("{e:#}"));
    if report.ok {
        return Vec::new();
    }
    let helped: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let problems: Vec<&str> = report
        .output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !openmetrics
                || !l.strip_suffix(" no help text").is_some_and(|name| {
                    ["_total", "_created"]
                        .iter()
                        .filter_map(|s| name.trim().strip_suffix(s))
                        .any(|family| helped.contains(family))
                })
        })
        .collect();
    if problems.is_empty() {
        return Vec::new();
    }
    vec![format!("{what}: {}", problems.join("; "))]
}

fn probe_samples(answer: anyhow::Result<fetch::Fetched>, case: &Case, who: &str) -> Vec<Sample> {
    let answer = answer.unwrap_or_else(|e| panic!("{who} /probe for {}: {e:#}", case.name));
    assert_eq!(
        answer.status,
        200,
        "{who} /probe for {} ({} {}): {}",
        case.name,
        case.url,
        case.module,
        answer.text()
    );
    fetch::parse_samples(&answer.text())
        .unwrap_or_else(|e| panic!("{who} /probe for {}: {e:#}\n{}", case.name, answer.text()))
}

fn value(samples: &[Sample], name: &str) -> Option<f64> {
    samples.iter().find(|s| s.name == name).map(|s| s.value)
}

fn series(samples: &[Sample], name: &str) -> Vec<(BTreeMap<String, String>, u64)> {
    let mut out: Vec<_> = samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| (s.labels.clone(), s.value.to_bits()))
        .collect();
    out.sort();
    out
}

/// How sonde's answer for `case` differs from blackbox's (pure).
pub fn compare(case: &Case, theirs: &[Sample], ours: &[Sample]) -> Vec<String> {
    let mut faults = Vec::new();
    let their_names: BTreeSet<&str> = theirs.iter().map(|s| s.name.as_str()).collect();
    let our_names: BTreeSet<&str> = ours.iter().map(|s| s.name.as_str()).collect();
    let missing: Vec<&&str> = their_names.difference(&our_names).collect();
    if !missing.is_empty() {
        faults.push(format!("{}: sonde lacks {missing:?}", case.name));
    }
    for name in MUST_AGREE {
        let (t, o) = (value(theirs, name), value(ours, name));
        if t.is_some() && t != o {
            faults.push(format!(
                "{}: {name} is {o:?} from sonde, {t:?} from blackbox_exporter",
                case.name
            ));
        }
    }
    for name in SERIES_AGREE {
        let t = series(theirs, name);
        let o: Vec<_> = series(ours, name)
            .into_iter()
            .map(|(mut labels, v)| {
                labels.retain(|k, _| {
                    !NEWER_LABELS.iter().any(|(n, l, _)| {
                        n == name && l == k && !t.iter().any(|(tl, _)| tl.contains_key(k))
                    })
                });
                (labels, v)
            })
            .collect();
        if !t.is_empty() && t != o {
            faults.push(format!(
                "{}: {name} series are {o:?} from sonde, {t:?} from blackbox_exporter",
                case.name
            ));
        }
    }
    for (name, _) in MAY_DIFFER {
        let labels = |s: &[Sample]| -> BTreeSet<BTreeMap<String, String>> {
            s.iter()
                .filter(|x| x.name == *name)
                .map(|x| x.labels.clone())
                .collect()
        };
        let (t, o) = (labels(theirs), labels(ours));
        if !t.is_empty() && t != o {
            faults.push(format!(
                "{}: {name} label sets are {o:?} from sonde, {t:?} from blackbox_exporter",
                case.name
            ));
        }
    }
    faults
}

#[test]
fn the_comparison_catches_a_missing_name_and_a_wrong_value() {
    let parse = |t: &str| fetch::parse_samples(t).unwrap_or_else(|e| panic!("{e:#}"));
    let case = Case {
        name: "t",
        url: String::new(),
        module: "m",
    };
    let theirs = parse(
        "probe_success 1\nprobe_http_version 2\nprobe_http_redirects 1\n\
         probe_http_duration_seconds{phase=\"tls\"} 0.1\n",
    );
    let same = parse(
        "probe_success 1\nprobe_http_version 2\nprobe_http_redirects 1\n\
         probe_http_duration_seconds{phase=\"tls\"} 0.2\nsonde_extra 1\n",
    );
    assert_eq!(compare(&case, &theirs, &same), Vec::<String>::new());
    let info = parse("probe_ssl_last_chain_info{subject=\"CN=a\"} 1\n");
    let newer = parse("probe_ssl_last_chain_info{serialnumber=\"1f\",subject=\"CN=a\"} 1\n");
    assert_eq!(compare(&case, &info, &newer), Vec::<String>::new());
    let other = parse("probe_ssl_last_chain_info{serial=\"1f\",subject=\"CN=a\"} 1\n");
    assert_eq!(compare(&case, &info, &other).len(), 1);
    let wrong = parse(
        "probe_success 1\nprobe_http_version 1.1\n\
         probe_http_duration_seconds{phase=\"handshake\"} 0.2\n",
    );
    let faults = compare(&case, &theirs, &wrong);
    assert_eq!(faults.len(), 4, "{faults:?}");
    assert!(
        faults[0].contains("lacks [\"probe_http_redirects\"]"),
        "{faults:?}"
    );
    assert!(faults[1].contains("probe_http_version"), "{faults:?}");
    assert!(
        faults[2].contains("probe_http_redirects is None"),
        "{faults:?}"
    );
    assert!(faults[3].contains("phase"), "{faults:?}");
}
