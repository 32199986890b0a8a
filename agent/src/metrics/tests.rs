//! Tests of the metrics: the exposition text checked line by line, label
//! handling, reloads, and the HTTP endpoints over loopback.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wire::{ErrorClass, Record, Status};

use super::*;
use crate::probe::Timings;

fn info(name: &str, labels: &[(&str, &str)]) -> CheckInfo {
    CheckInfo {
        name: name.into(),
        url: format!("https://user:secret@{name}.example/path?token=x#frag"),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn result(check: &str, st: Status, error: Option<ErrorClass>) -> CheckResult {
    let timings = Timings {
        dns: Some(ms(2)),
        connect: Some(ms(3)),
        tls: Some(ms(5)),
        ttfb: Some(ms(7)),
        total: ms(20),
    };
    CheckResult {
        check: Arc::from(check),
        record: Record {
            st,
            error,
            ..Record::up(1_700_000_000_000, 20)
                .with_sc(if st == Status::Up { 200 } else { 503 })
                .with_phases(2, 3, 5, 7)
        },
        timings,
        detail: None,
        dns: None,
        facts: crate::result::ProbeFacts {
            ssl: true,
            tls: Some(Arc::new(crate::probe::TlsInfo::for_tests(Some(
                1_800_000_000,
            )))),
            ..Default::default()
        },
    }
}

/// One parsed sample line.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn valid_name(s: &str, colon: bool) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':');
    s.chars()
        .next()
        .is_some_and(|c| ok(c) && !c.is_ascii_digit())
        && s.chars().all(ok)
}

/// Parses `{a="x",b="y\"z"}` (after the name); returns the labels and the rest.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let Some(mut rest) = s.strip_prefix('{') else {
        return Ok((labels, s));
    };
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !valid_name(name, false) || name.starts_with("__") {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("unquoted label value")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((i, '"')) => break i,
                Some((_, '\n')) => return Err("raw newline in a label value".into()),
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &rest[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Checks the text format line by line: every sample is `name{labels}
/// value`, every family has HELP and TYPE before its samples and appears
/// once, histogram buckets are cumulative and end with +Inf == _count.
fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helped: HashSet<String> = HashSet::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    assert!(text.ends_with('\n'), "the text ends with a newline");
    for (n, line) in text.lines().enumerate() {
        let at = format!("line {}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            assert!(valid_name(name, true), "{at}");
            assert!(helped.insert(name.to_owned()), "{at}: HELP twice");
            assert!(!finished.contains(name), "{at}: family not grouped");
            if let Some(prev) = current.replace(name.to_owned()) {
                finished.insert(prev);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert_eq!(
                Some(name),
                current.as_deref(),
                "{at}: TYPE follows its HELP"
            );
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{at}");
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "{at}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "{at}: stray line"
        );
        let name_end = line
            .find(['{', ' '])
            .expect("a name then labels or a value");
        let name = &line[..name_end];
        assert!(valid_name(name, true), "{at}: bad name");
        let (labels, rest) =
            parse_labels(&line[name_end..]).unwrap_or_else(|e| panic!("{at}: {e}"));
        let value = rest.strip_prefix(' ').expect("one space before the value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|e| panic!("{at}: value: {e}")),
        };
        let family = current.as_deref().expect("a sample before any HELP");
        let kind = types.get(family).map(String::as_str);
        let base = match kind {
            Some("histogram") => ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name),
            Some(_) => name,
            None => panic!("{at}: no TYPE for {family}"),
        };
        assert_eq!(base, family, "{at}: sample outside its family");
        if kind == Some("counter") {
            assert!(name.ends_with("_total"), "{at}: counters end in _total");
        }
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    assert_eq!(types.len(), helped.len(), "every family has HELP and TYPE");
    for (family, kind) in &types {
        if kind == "histogram" {
            check_histogram(family, &samples);
        }
    }
    samples
}

fn check_histogram(family: &str, samples: &[Sample]) {
    let bucket = format!("{family}_bucket");
    let buckets: Vec<&Sample> = samples.iter().filter(|s| s.name == bucket).collect();
    let mut previous = (f64::NEG_INFINITY, 0.0);
    for b in &buckets {
        let le: f64 = match b.labels.get("le").map(String::as_str) {
            Some("+Inf") => f64::INFINITY,
            Some(v) => v.parse().expect("le is a number"),
            None => panic!("bucket without le"),
        };
        assert!(
            le > previous.0 && b.value >= previous.1,
            "{family}: buckets cumulative"
        );
        previous = (le, b.value);
    }
    assert_eq!(
        previous.0,
        f64::INFINITY,
        "{family}: the last bucket is +Inf"
    );
    let count = value(samples, &format!("{family}_count"), &[]);
    assert_eq!(Some(previous.1), count, "{family}: +Inf == _count");
    assert!(value(samples, &format!("{family}_sum"), &[]).is_some());
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

fn loaded() -> Arc<Metrics> {
    let m = Metrics::new("agent-1", Some("eu-west"));
    m.set_checks(&[info("api", &[("team", "core")]), info("web", &[])]);
    m.observe(&result("api", Status::Up, None));
    m.observe(&result("web", Status::Down, Some(ErrorClass::StatusCode)));
    m.observe(&result("nobody", Status::Up, None));
    m.probe_skipped("api", SkipReason::Busy);
    m.probe_skipped("api", SkipReason::TooLate);
    m.probe_skipped("api", SkipReason::TooLate);
    for late in [0, 1, 3, 700, 5_000] {
        m.lateness(ms(late));
    }
    m.lateness(Duration::from_micros(200));
    m.sink_queue("file", 3, 1024);
    m.sink_written("file", 10, 300);
    m.sink_written("file", 1, 30);
    m.sink_dropped("gateway", DropReason::QueueFull, 2);
    m.sink_dropped("gateway", DropReason::SpoolFull, 5);
    m
}

#[test]
fn render_parses_and_carries_every_family() {
    let m = loaded();
    let text = m.render();
    let s = parse(&text);
    let api = [("check", "api"), ("team", "core")];
    assert_eq!(value(&s, "probe_success", &api), Some(1.0));
    assert_eq!(value(&s, "probe_success", &[("check", "web")]), Some(0.0));
    assert_eq!(
        value(&s, "probe_http_status_code", &[("check", "web")]),
        Some(503.0)
    );
    assert_eq!(value(&s, "probe_duration_seconds", &api), Some(0.02));
    assert_eq!(
        value(&s, "probe_dns_lookup_time_seconds", &api),
        Some(0.002)
    );
    assert_eq!(
        value(&s, "probe_ssl_earliest_cert_expiry", &api),
        Some(1.8e9)
    );
    let phase = |p: &str| {
        value(
            &s,
            "probe_http_duration_seconds",
            &[("check", "api"), ("phase", p)],
        )
    };
    assert_eq!(phase("resolve"), Some(0.002));
    assert_eq!(phase("connect"), Some(0.003));
    assert_eq!(phase("tls"), Some(0.005));
    assert_eq!(phase("processing"), Some(0.007));
    assert_eq!(phase("transfer"), Some(0.003));
    assert_eq!(
        value(
            &s,
            "sonde_probes_total",
            &[("check", "api"), ("result", "up")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "sonde_probes_total",
            &[("check", "api"), ("result", "down")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value(
            &s,
            "sonde_probe_errors_total",
            &[("check", "web"), ("class", "status")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "sonde_probe_errors_total", &[("check", "api")]),
        None
    );
    assert_eq!(
        value(
            &s,
            "sonde_probes_skipped_total",
            &[("check", "api"), ("reason", "too_late")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &s,
            "sonde_probes_skipped_total",
            &[("check", "api"), ("reason", "busy")]
        ),
        Some(1.0)
    );
    let bucket = |le: &str| value(&s, "sonde_schedule_lateness_seconds_bucket", &[("le", le)]);
    assert_eq!(bucket("0.0005"), Some(2.0));
    assert_eq!(bucket("0.001"), Some(3.0));
    assert_eq!(bucket("1"), Some(5.0));
    assert_eq!(bucket("+Inf"), Some(6.0));
    let sum = value(&s, "sonde_schedule_lateness_seconds_sum", &[]).unwrap_or(0.0);
    assert!((sum - 5.7042).abs() < 1e-9, "{sum}");
    assert_eq!(
        value(&s, "sonde_sink_queue_depth", &[("sink", "file")]),
        Some(3.0)
    );
    assert_eq!(
        value(&s, "sonde_sink_queue_capacity", &[("sink", "file")]),
        Some(1024.0)
    );
    assert_eq!(
        value(&s, "sonde_sink_records_written_total", &[("sink", "file")]),
        Some(11.0)
    );
    assert_eq!(
        value(&s, "sonde_sink_bytes_written_total", &[("sink", "file")]),
        Some(330.0)
    );
    assert_eq!(
        value(
            &s,
            "sonde_sink_records_dropped_total",
            &[("sink", "gateway"), ("reason", "queue_full")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &s,
            "sonde_sink_records_dropped_total",
            &[("sink", "gateway"), ("reason", "spool_full")]
        ),
        Some(5.0)
    );
    assert_eq!(
        value(
            &s,
            "sonde_sink_records_dropped_total",
            &[("sink", "file"), ("reason", "failing")]
        ),
        Some(0.0)
    );
    assert_eq!(value(&s, "sonde_sink_up", &[("sink", "file")]), Some(1.0));
    let build = [
        ("agent", "agent-1"),
        ("region", "eu-west"),
        ("version", env!("CARGO_PKG_VERSION")),
    ];
    assert_eq!(value(&s, "sonde_build_info", &build), Some(1.0));
    // The URL is shown without its user info, query and fragment.
    assert_eq!(
        value(
            &s,
            "sonde_check_info",
            &[("check", "api"), ("url", "https://api.example/path")]
        ),
        Some(1.0)
    );
    assert!(!text.contains("secret") && !text.contains("token"));
    // A check that is not configured gets no series.
    assert!(!text.contains("nobody"));
}

#[test]
fn an_empty_agent_renders_valid_text() {
    let m = Metrics::new("a", None);
    let s = parse(&m.render());
    assert_eq!(value(&s, "sonde_build_info", &[("region", "")]), Some(1.0));
    assert_eq!(
        value(&s, "sonde_schedule_lateness_seconds_count", &[]),
        Some(0.0)
    );
    // A configured check that has not run yet has counters, not gauges.
    m.set_checks(&[info("idle", &[])]);
    let s = parse(&m.render());
    assert_eq!(value(&s, "probe_success", &[("check", "idle")]), None);
    assert_eq!(
        value(
            &s,
            "sonde_probes_total",
            &[("check", "idle"), ("result", "up")]
        ),
        Some(0.0)
    );
}

#[test]
fn absent_phases_are_zero_and_no_cert_no_expiry() {
    let m = Metrics::new("a", None);
    m.set_checks(&[info("plain", &[])]);
    let mut r = result("plain", Status::Down, Some(ErrorClass::ConnectRefused));
    r.timings = Timings {
        dns: None,
        connect: Some(ms(1)),
        tls: None,
        ttfb: None,
        total: ms(1),
    };
    r.record.sc = None;
    r.facts.tls = None;
    m.observe(&r);
    let s = parse(&m.render());
    let phase = |p: &str| value(&s, "probe_http_duration_seconds", &[("phase", p)]);
    assert_eq!(phase("resolve"), Some(0.0));
    assert_eq!(phase("connect"), Some(0.001));
    assert_eq!(phase("transfer"), Some(0.0));
    assert_eq!(value(&s, "probe_http_status_code", &[]), Some(0.0));
    assert_eq!(value(&s, "probe_ssl_earliest_cert_expiry", &[]), None);
    assert_eq!(
        value(
            &s,
            "sonde_probe_errors_total",
            &[("class", "connect_refused")]
        ),
        Some(1.0)
    );
}

#[test]
fn label_values_are_escaped_and_names_sanitized() {
    assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    assert_eq!(sanitize_label_name("team"), "team");
    assert_eq!(sanitize_label_name("a-b.c"), "a_b_c");
    assert_eq!(sanitize_label_name("9lives"), "label_9lives");
    assert_eq!(sanitize_label_name("__meta"), "label___meta");
    assert_eq!(sanitize_label_name(""), "label_");
    let m = Metrics::new("agent \"x\"\n", Some("r\\1"));
    let nasty = "quote \" backslash \\ newline \n end";
    m.set_checks(&[info(
        "we\"ird\\\nname",
        &[
            ("a-b", nasty),
            ("a_b", "loses"),
            ("phase", "p"),
            ("ünï", "u"),
        ],
    )]);
    m.observe(&result("we\"ird\\\nname", Status::Up, None));
    let text = m.render();
    let s = parse(&text);
    let check = "we\"ird\\\nname";
    let labels = [
        ("check", check),
        ("a_b", nasty),
        ("label_phase", "p"),
        ("_n_", "u"),
    ];
    assert_eq!(value(&s, "probe_success", &labels), Some(1.0));
    assert!(
        !text.contains("loses"),
        "two names that sanitize alike: the first wins"
    );
    assert_eq!(
        value(
            &s,
            "sonde_build_info",
            &[("agent", "agent \"x\"\n"), ("region", "r\\1")]
        ),
        Some(1.0)
    );
    // A configured `phase` label does not shadow the phase sonde sets.
    let phases = s.iter().filter(|x| x.name == "probe_http_duration_seconds");
    assert!(
        phases.clone().count() == 5
            && phases
                .clone()
                .all(|x| x.labels.get("phase").is_some_and(|p| p != "p"))
    );
}

#[test]
fn removed_checks_disappear_and_kept_checks_keep_counting() {
    let m = loaded();
    m.set_checks(&[info("api", &[("team", "core")]), info("new", &[])]);
    let text = m.render();
    let s = parse(&text);
    assert!(!text.contains("check=\"web\""), "{text}");
    assert_eq!(
        value(
            &s,
            "sonde_probes_total",
            &[("check", "api"), ("result", "up")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&s, "probe_success", &[("check", "api")]), Some(1.0));
    assert_eq!(
        value(
            &s,
            "sonde_probes_total",
            &[("check", "new"), ("result", "up")]
        ),
        Some(0.0)
    );
    // Results for the removed check (a probe still in flight at reload) are ignored.
    m.observe(&result("web", Status::Up, None));
    m.probe_skipped("web", SkipReason::Busy);
    assert!(!m.render().contains("check=\"web\""));
    // Changed labels: a new series from zero, without the old labels.
    m.set_checks(&[info("api", &[("team", "edge")])]);
    let s = parse(&m.render());
    assert_eq!(
        value(
            &s,
            "sonde_probes_total",
            &[("team", "edge"), ("result", "up")]
        ),
        Some(0.0)
    );
    assert_eq!(value(&s, "sonde_probes_total", &[("team", "core")]), None);
    assert_eq!(value(&s, "probe_success", &[("check", "api")]), None);
}

#[test]
fn metrics_are_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Metrics>();
    let m = Metrics::new("a", None);
    m.set_checks(&[info("c", &[])]);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..1000 {
                    m.observe(&result("c", Status::Up, None));
                    m.lateness(ms(1));
                }
            });
        }
    });
    let s = parse(&m.render());
    assert_eq!(
        value(&s, "sonde_probes_total", &[("result", "up")]),
        Some(4000.0)
    );
    assert_eq!(
        value(&s, "sonde_schedule_lateness_seconds_count", &[]),
        Some(4000.0)
    );
}

/// One HTTP/1.1 request over a fresh connection; the status and the body.
async fn get(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let raw = String::from_utf8(raw).expect("utf-8");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header block");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test]
async fn serves_metrics_health_and_readiness_on_loopback() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let m = loaded();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, Arc::clone(&m), None, async move {
        let _ = stopped.await;
    }));

    let (status, head, body) = get(addr, "GET", "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    parse(&body);
    assert!(body.contains("probe_success{check=\"api\",team=\"core\"} 1\n"));
    assert_eq!(get(addr, "GET", "/healthz").await.0, 200);
    assert_eq!(get(addr, "GET", "/healthz").await.2, "ok\n");
    assert_eq!(get(addr, "GET", "/readyz").await.0, 503);
    m.set_ready(true);
    assert_eq!(get(addr, "GET", "/readyz").await.0, 200);
    assert_eq!(get(addr, "GET", "/nope").await.0, 404);
    assert_eq!(get(addr, "GET", "/metrics/x").await.0, 404);
    let (status, head, _) = get(addr, "POST", "/metrics").await;
    assert_eq!(status, 405);
    assert!(head.contains("allow: get, head"), "{head}");
    let (status, _, body) = get(addr, "HEAD", "/metrics").await;
    assert_eq!((status, body.as_str()), (200, ""));

    // An idle keep-alive connection does not hold the stop up.
    let _idle = TcpStream::connect(addr).await.expect("connect");
    stop.send(()).expect("server running");
    let done = tokio::time::timeout(Duration::from_secs(3), server).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "{done:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

#[test]
fn dns_family_failures_are_counted_per_family_and_outcome() {
    use crate::probe::{DnsReport, FamilyOutcome, FamilyReport};
    let m = Metrics::new("agent-1", None);
    m.set_checks(&[info("api", &[])]);
    let family = |outcome| FamilyReport {
        outcome,
        at: Some(ms(1)),
        server: None,
    };
    let mut r = result("api", Status::Up, None);
    r.dns = Some(DnsReport {
        a: family(FamilyOutcome::Answered { addresses: 1 }),
        aaaa: family(FamilyOutcome::Refused),
        from_hosts: false,
    });
    m.observe(&r);
    m.observe(&r);
    r.dns = Some(DnsReport {
        a: family(FamilyOutcome::NotAwaited),
        aaaa: family(FamilyOutcome::Late),
        from_hosts: false,
    });
    m.observe(&r);
    let samples = parse(&m.render());
    let failures = |family: &str, outcome: &str| {
        value(
            &samples,
            "sonde_dns_family_failures_total",
            &[("check", "api"), ("family", family), ("outcome", outcome)],
        )
    };
    assert_eq!(failures("aaaa", "refused"), Some(2.0));
    assert_eq!(failures("aaaa", "late"), Some(1.0));
    // Answers, NODATA and "not awaited" are not failures; none shows for A.
    let a_series = samples
        .iter()
        .filter(|s| s.name == "sonde_dns_family_failures_total")
        .filter(|s| s.labels.get("family").map(String::as_str) == Some("a"))
        .count();
    assert_eq!(a_series, 0);
}

/// A failing sink: `/readyz` says which and why, `sonde_sink_up` is 0;
/// both come back once it writes again.
#[test]
fn a_failing_sink_makes_readiness_fail_with_its_cause() {
    let m = Metrics::new("agent-1", None);
    assert!(
        m.readiness().is_err(),
        "not ready before the scheduler runs"
    );
    m.set_ready(true);
    m.sink_written("file", 1, 30);
    m.sink_written("gateway", 1, 30);
    assert_eq!(m.readiness(), Ok(()));
    m.sink_failing(
        "file",
        Some("appending to /s/x.sonde: No space left on device".into()),
    );
    assert!(!m.sink_is_up("file"));
    assert!(m.sink_is_up("gateway"));
    let why = m.readiness().unwrap_err();
    assert_eq!(
        why,
        "not ready: sink file failing: appending to /s/x.sonde: No space left on device\n"
    );
    let s = parse(&m.render());
    assert_eq!(value(&s, "sonde_sink_up", &[("sink", "file")]), Some(0.0));
    assert_eq!(
        value(&s, "sonde_sink_up", &[("sink", "gateway")]),
        Some(1.0)
    );
    m.sink_failing("file", None);
    assert_eq!(m.readiness(), Ok(()));
    let s = parse(&m.render());
    assert_eq!(value(&s, "sonde_sink_up", &[("sink", "file")]), Some(1.0));
}
