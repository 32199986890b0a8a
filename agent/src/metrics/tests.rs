//! Tests of the metrics: the exposition text checked line by line, label
//! handling, reloads, and the HTTP endpoints over loopback.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wire::{ErrorClass, Record, Status};

use super::*;
use crate::probe::{CertSummary, Timings, TlsInfo};

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
        proxy: None,
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
    // OpenMetrics: the text ends with `# EOF`, counter families are named
    // without `_total`.
    let (text, om) = match text.strip_suffix("# EOF\n") {
        Some(t) => (t, true),
        None => (text, false),
    };
    if text.is_empty() {
        return Vec::new();
    }
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
            Some("counter") if om => name.strip_suffix("_total").unwrap_or(""),
            Some(_) => name,
            None => panic!("{at}: no TYPE for {family}"),
        };
        assert_eq!(base, family, "{at}: sample outside its family");
        if kind == Some("counter") {
            assert!(name.ends_with("_total"), "{at}: counters end in _total");
            assert_eq!(om, !family.ends_with("_total"), "{at}: counter family name");
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
    let mut series: BTreeMap<Vec<(String, String)>, Vec<&Sample>> = BTreeMap::new();
    for b in samples.iter().filter(|s| s.name == bucket) {
        let key = b
            .labels
            .iter()
            .filter(|(k, _)| *k != "le")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        series.entry(key).or_default().push(b);
    }
    for (key, buckets) in series {
        let labels: Vec<(&str, &str)> = key.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
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
        let count = value(samples, &format!("{family}_count"), &labels);
        assert_eq!(Some(previous.1), count, "{family} {key:?}: +Inf == _count");
        assert!(value(samples, &format!("{family}_sum"), &labels).is_some());
    }
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
    let text = m.render(Format::Text);
    let s = parse(&text);
    let api = [
        ("instance", "https://api.example/path"),
        ("check", "api"),
        ("region", "eu-west"),
        ("team", "core"),
    ];
    assert_eq!(value(&s, "probe_success", &api), Some(1.0));
    assert_eq!(
        value(&s, "sonde_probe_last_timestamp_seconds", &api),
        Some(1.7e9)
    );
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
            "sonde_probe_failures_total",
            &[("check", "web"), ("class", "status")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "sonde_probe_failures_total", &[("check", "api")]),
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
    let s = parse(&m.render(Format::Text));
    assert_eq!(value(&s, "sonde_build_info", &[("region", "")]), Some(1.0));
    assert_eq!(
        value(&s, "sonde_schedule_lateness_seconds_count", &[]),
        Some(0.0)
    );
    // A configured check that has not run yet has counters, not gauges.
    m.set_checks(&[info("idle", &[])]);
    let s = parse(&m.render(Format::Text));
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
        proxy: None,
        tls: None,
        ttfb: None,
        total: ms(1),
    };
    r.record.sc = None;
    r.facts.tls = None;
    m.observe(&r);
    let s = parse(&m.render(Format::Text));
    let phase = |p: &str| value(&s, "probe_http_duration_seconds", &[("phase", p)]);
    assert_eq!(phase("resolve"), Some(0.0));
    assert_eq!(phase("connect"), Some(0.001));
    assert_eq!(phase("transfer"), Some(0.0));
    assert_eq!(value(&s, "probe_http_status_code", &[]), Some(0.0));
    assert_eq!(value(&s, "probe_ssl_earliest_cert_expiry", &[]), None);
    assert_eq!(
        value(
            &s,
            "sonde_probe_failures_total",
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
    let text = m.render(Format::Text);
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
    let text = m.render(Format::Text);
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
    assert!(!m.render(Format::Text).contains("check=\"web\""));
    // Changed labels: a new series from zero, without the old labels.
    m.set_checks(&[info("api", &[("team", "edge")])]);
    let s = parse(&m.render(Format::Text));
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
    let s = parse(&m.render(Format::Text));
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
    assert!(body.contains(
        "probe_success{instance=\"https://api.example/path\",check=\"api\",agent=\"agent-1\",region=\"eu-west\",team=\"core\"} 1\n"
    ));
    assert!(!head.contains("content-encoding"), "{head}");
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
    let samples = parse(&m.render(Format::Text));
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
    let s = parse(&m.render(Format::Text));
    assert_eq!(value(&s, "sonde_sink_up", &[("sink", "file")]), Some(0.0));
    assert_eq!(
        value(&s, "sonde_sink_up", &[("sink", "gateway")]),
        Some(1.0)
    );
    m.sink_failing("file", None);
    assert_eq!(m.readiness(), Ok(()));
    let s = parse(&m.render(Format::Text));
    assert_eq!(value(&s, "sonde_sink_up", &[("sink", "file")]), Some(1.0));
}

/// A GET with extra request headers; the status, the lower-cased head and
/// the raw body.
async fn get_with(addr: std::net::SocketAddr, path: &str, headers: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..at]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, head, raw[at + 4..].to_vec())
}

#[tokio::test]
async fn metrics_negotiate_openmetrics_and_gzip() {
    use std::io::Read as _;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let m = loaded();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, Arc::clone(&m), None, async move {
        let _ = stopped.await;
    }));
    // Prometheus 2.42's Accept header.
    let accept = "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n";
    let (status, head, body) = get_with(addr, "/metrics", accept).await;
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    let text = String::from_utf8(body).expect("utf-8");
    assert!(text.ends_with("# EOF\n"));
    assert!(text.contains("# TYPE sonde_probes counter\n"));
    let s = parse(&text);
    assert_eq!(value(&s, "probe_success", &[("check", "api")]), Some(1.0));

    let gzip = format!("{accept}Accept-Encoding: gzip, deflate\r\n");
    let (status, head, body) = get_with(addr, "/metrics", &gzip).await;
    assert_eq!(status, 200);
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(head.contains("vary: accept, accept-encoding"), "{head}");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .expect("gzip");
    assert!(text.ends_with("# EOF\n"));
    parse(&text);

    let (_, head, body) = get_with(addr, "/metrics", "Accept: */*\r\n").await;
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(!String::from_utf8(body).expect("utf-8").contains("# EOF"));

    stop.send(()).expect("server running");
    let _ = server.await;
}

#[test]
fn openmetrics_render_parses_with_counters_named_without_total() {
    let m = loaded();
    let text = m.render(Format::OpenMetrics);
    let s = parse(&text);
    assert!(text.contains("# TYPE sonde_probes counter\n"));
    assert!(text.contains("# TYPE sonde_probe_failures counter\n"));
    assert!(!text.contains("# TYPE sonde_probes_total"));
    assert_eq!(
        value(
            &s,
            "sonde_probes_total",
            &[("check", "api"), ("result", "up")]
        ),
        Some(1.0)
    );
}

#[test]
fn check_labels_carry_instance_and_region_and_reserved_names_are_renamed() {
    let m = Metrics::new("a", Some("eu-west"));
    m.set_checks(&[info(
        "api",
        &[
            ("instance", "mine"),
            ("region", "r"),
            ("cipher", "c"),
            ("agent", "x"),
        ],
    )]);
    m.observe(&result("api", Status::Up, None));
    let s = parse(&m.render(Format::Text));
    let labels = [
        ("instance", "https://api.example/path"),
        ("check", "api"),
        ("agent", "a"),
        ("label_agent", "x"),
        ("region", "eu-west"),
        ("label_instance", "mine"),
        ("label_region", "r"),
        ("label_cipher", "c"),
    ];
    assert_eq!(value(&s, "probe_success", &labels), Some(1.0));
    // The TLS families' own labels sit beside the check's, not over them.
    let cipher = [
        ("check", "api"),
        ("cipher", "TLS_AES_128_GCM_SHA256"),
        ("label_cipher", "c"),
    ];
    assert_eq!(value(&s, "probe_tls_cipher_info", &cipher), Some(1.0));
    // Without a region, no region label.
    let m = Metrics::new("a", None);
    m.set_checks(&[info("api", &[])]);
    m.observe(&result("api", Status::Up, None));
    let s = parse(&m.render(Format::Text));
    let success = s
        .iter()
        .find(|x| x.name == "probe_success")
        .expect("probe_success");
    assert!(
        !success.labels.contains_key("region"),
        "{:?}",
        success.labels
    );
    // Two agents probing the same check: two series, told apart by agent.
    let b = Metrics::new("b", None);
    b.set_checks(&[info("api", &[])]);
    b.observe(&result("api", Status::Up, None));
    let agents: HashSet<String> = [&m, &b]
        .iter()
        .flat_map(|m| parse(&m.render(Format::Text)))
        .filter(|x| x.name == "probe_success")
        .filter_map(|x| x.labels.get("agent").cloned())
        .collect();
    assert_eq!(agents, HashSet::from(["a".to_owned(), "b".to_owned()]));
}

#[test]
fn histograms_observe_up_probes_only_and_can_be_switched_off() {
    let prometheus = config::Prometheus {
        phase_buckets: vec![0.004, 0.01],
        ..config::Prometheus::default()
    };
    let m = Metrics::with_prometheus("a", None, &prometheus);
    m.set_checks(&[info("api", &[])]);
    m.observe(&result("api", Status::Up, None));
    m.observe(&result("api", Status::Up, None));
    m.observe(&result("api", Status::Down, Some(ErrorClass::StatusCode)));
    let s = parse(&m.render(Format::Text));
    let bucket = |phase: &str, le: &str| {
        value(
            &s,
            "sonde_probe_phase_duration_seconds_bucket",
            &[("check", "api"), ("phase", phase), ("le", le)],
        )
    };
    // resolve 2 ms, tls 5 ms, transfer 3 ms; two up probes, the down one not observed.
    assert_eq!(bucket("resolve", "0.004"), Some(2.0));
    assert_eq!(bucket("tls", "0.004"), Some(0.0));
    assert_eq!(bucket("tls", "0.01"), Some(2.0));
    assert_eq!(bucket("transfer", "+Inf"), Some(2.0));
    assert_eq!(
        value(
            &s,
            "sonde_probe_duration_seconds_count",
            &[("check", "api")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&s, "sonde_probe_duration_seconds_bucket", &[("le", "0.01")]),
        Some(0.0)
    );
    let sum = value(&s, "sonde_probe_duration_seconds_sum", &[]).unwrap_or(0.0);
    assert!((sum - 0.04).abs() < 1e-9, "{sum}");
    assert_eq!(
        value(&s, "sonde_probes_total", &[("result", "down")]),
        Some(1.0)
    );

    // A phase the check cannot have gets no series: no tls over http, no
    // resolve for an IP literal.
    m.set_checks(&[
        info("api", &[]),
        CheckInfo {
            name: "plain".into(),
            url: "http://192.0.2.1/".into(),
            labels: BTreeMap::new(),
        },
    ]);
    let s = parse(&m.render(Format::Text));
    let phases_of = |check: &str| -> HashSet<String> {
        s.iter()
            .filter(|x| x.name == "sonde_probe_phase_duration_seconds_count")
            .filter(|x| x.labels.get("check").map(String::as_str) == Some(check))
            .filter_map(|x| x.labels.get("phase").cloned())
            .collect()
    };
    assert_eq!(phases_of("api").len(), 5);
    let plain = phases_of("plain");
    assert!(
        plain.len() == 3 && !plain.contains("tls") && !plain.contains("resolve"),
        "{plain:?}"
    );

    let off = config::Prometheus {
        histograms: false,
        ..config::Prometheus::default()
    };
    let m = Metrics::with_prometheus("a", None, &off);
    m.set_checks(&[info("api", &[])]);
    m.observe(&result("api", Status::Up, None));
    let text = m.render(Format::Text);
    parse(&text);
    assert!(!text.contains("sonde_probe_phase_duration_seconds"));
    assert!(!text.contains("sonde_probe_duration_seconds"));
}

/// An HTTPS probe with every fact blackbox_exporter shows.
fn full_result() -> CheckResult {
    let mut r = result("api", Status::Up, None);
    r.facts = crate::result::ProbeFacts {
        http_version: Some(hyper::Version::HTTP_11),
        ssl: true,
        redirects: 1,
        content_length: None,
        decoded_body_bytes: 42,
        last_modified: Some(1_600_000_000),
        remote: Some("127.0.0.1".parse().expect("ip")),
        chosen: Some("127.0.0.1".parse().expect("ip")),
        no_connection: false,
        failed_due_to_regex: false,
        tls: Some(Arc::new(TlsInfo {
            earliest_not_after: Some(1_700_864_000),
            chain_not_after: Some(1_700_950_400),
            leaf: Some(CertSummary {
                fingerprint_sha256: "ab12".into(),
                subject: "CN=api.example".into(),
                issuer: "CN=Intermediate".into(),
                subject_alternative: "api.example,www.api.example".into(),
                serial: "1f".into(),
            }),
            ..TlsInfo::for_tests(Some(1_800_000_000))
        })),
    };
    r
}

/// The family names of an exposition, in order.
fn families(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect()
}

#[test]
fn probe_exposition_has_every_blackbox_family_with_its_values() {
    let text = probe_exposition(&full_result(), Format::Text);
    let s = parse(&text);
    assert_eq!(
        families(&text),
        [
            "probe_dns_lookup_time_seconds",
            "probe_duration_seconds",
            "probe_failed_due_to_regex",
            "probe_http_content_length",
            "probe_http_duration_seconds",
            "probe_http_last_modified_timestamp_seconds",
            "probe_http_redirects",
            "probe_http_ssl",
            "probe_http_status_code",
            "probe_http_uncompressed_body_length",
            "probe_http_version",
            "probe_ip_addr_hash",
            "probe_ip_protocol",
            "probe_ssl_earliest_cert_expiry",
            "probe_ssl_last_chain_expiry_timestamp_seconds",
            "probe_ssl_last_chain_info",
            "probe_success",
            "probe_tls_cipher_info",
            "probe_tls_version_info",
        ]
    );
    assert!(text.contains(
        "# HELP probe_ssl_earliest_cert_expiry Returns last SSL chain expiry in unixtime\n"
    ));
    let v = |name: &str| value(&s, name, &[]);
    assert_eq!(v("probe_success"), Some(1.0));
    assert_eq!(v("probe_http_status_code"), Some(200.0));
    assert_eq!(v("probe_http_content_length"), Some(-1.0));
    assert_eq!(v("probe_http_uncompressed_body_length"), Some(42.0));
    assert_eq!(v("probe_http_version"), Some(1.1));
    assert_eq!(v("probe_http_redirects"), Some(1.0));
    assert_eq!(v("probe_http_ssl"), Some(1.0));
    assert_eq!(v("probe_http_last_modified_timestamp_seconds"), Some(1.6e9));
    assert_eq!(v("probe_ip_protocol"), Some(4.0));
    assert_eq!(v("probe_ip_addr_hash"), Some(3_668_918_509.0));
    assert_eq!(v("probe_failed_due_to_regex"), Some(0.0));
    // The earliest over the chain (an intermediate), not the leaf's 1.8e9.
    assert_eq!(v("probe_ssl_earliest_cert_expiry"), Some(1_700_864_000.0));
    assert_eq!(
        v("probe_ssl_last_chain_expiry_timestamp_seconds"),
        Some(1_700_950_400.0)
    );
    let info = [
        ("fingerprint_sha256", "ab12"),
        ("subject", "CN=api.example"),
        ("issuer", "CN=Intermediate"),
        ("subjectalternative", "api.example,www.api.example"),
        ("serialnumber", "1f"),
    ];
    assert_eq!(value(&s, "probe_ssl_last_chain_info", &info), Some(1.0));
    assert_eq!(
        value(&s, "probe_tls_version_info", &[("version", "TLS 1.3")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "probe_tls_cipher_info",
            &[("cipher", "TLS_AES_128_GCM_SHA256")]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.iter()
            .filter(|x| x.name == "probe_http_duration_seconds")
            .count(),
        5
    );
    // OpenMetrics: the same families, closed by # EOF.
    let om = probe_exposition(&full_result(), Format::OpenMetrics);
    assert!(om.ends_with("# EOF\n"));
    assert_eq!(families(&om), families(&text));
}

#[test]
fn probe_exposition_shows_what_blackbox_shows_of_a_failure() {
    // The name did not resolve: only the resolve phase, no TLS families,
    // no response (status 0, content length 0 as Go's empty response).
    let mut r = full_result();
    r.record.st = Status::Down;
    r.record.error = Some(ErrorClass::DnsNxdomain);
    r.record.sc = None;
    r.timings = Timings {
        dns: None,
        connect: None,
        proxy: None,
        tls: None,
        ttfb: None,
        total: ms(4),
    };
    r.facts.remote = None;
    let text = probe_exposition(&r, Format::Text);
    let s = parse(&text);
    let phases: Vec<&str> = s
        .iter()
        .filter(|x| x.name == "probe_http_duration_seconds")
        .filter_map(|x| x.labels.get("phase").map(String::as_str))
        .collect();
    assert_eq!(phases, ["resolve"]);
    let v = |name: &str| value(&s, name, &[]);
    assert_eq!(v("probe_dns_lookup_time_seconds"), Some(0.004));
    assert_eq!(v("probe_http_status_code"), Some(0.0));
    assert_eq!(v("probe_http_content_length"), Some(0.0));
    assert_eq!(v("probe_http_uncompressed_body_length"), Some(0.0));
    assert_eq!(v("probe_http_ssl"), Some(0.0));
    assert_eq!(v("probe_ip_protocol"), Some(0.0));
    assert_eq!(v("probe_ip_addr_hash"), Some(0.0));
    assert_eq!(v("probe_success"), Some(0.0));
    for absent in [
        "probe_ssl_earliest_cert_expiry",
        "probe_tls_version_info",
        "probe_tls_cipher_info",
        "probe_ssl_last_chain_info",
        "probe_http_last_modified_timestamp_seconds",
    ] {
        assert!(!text.contains(absent), "{absent} in\n{text}");
    }
    // An unverified chain: blackbox_exporter's zero time.
    let mut r = full_result();
    if let Some(tls) = &mut r.facts.tls {
        Arc::make_mut(tls).chain_not_after = None;
    }
    let s = parse(&probe_exposition(&r, Format::Text));
    assert_eq!(
        value(&s, "probe_ssl_last_chain_expiry_timestamp_seconds", &[]),
        Some(-62_135_596_800.0)
    );
}

/// A sample as name, labels and value text, to compare two expositions.
type Flat = (String, Vec<(String, String)>, String);

#[test]
fn metrics_gauges_are_probe_exposition_with_the_check_labels() {
    let m = Metrics::new("a", Some("eu"));
    m.set_checks(&[info("api", &[("team", "core")])]);
    let r = full_result();
    m.observe(&r);
    let ours = parse(&m.render(Format::Text));
    let probe = parse(&probe_exposition(&r, Format::Text));
    let check_labels = ["instance", "check", "agent", "region", "team"];
    let mut from_metrics: Vec<Flat> = ours
        .iter()
        .filter(|x| x.name.starts_with("probe_"))
        .map(|x| {
            assert!(
                check_labels.iter().all(|l| x.labels.contains_key(*l)),
                "{x:?}"
            );
            let rest = x
                .labels
                .iter()
                .filter(|(k, _)| !check_labels.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (x.name.clone(), rest, x.value.to_string())
        })
        .collect();
    let mut from_probe: Vec<Flat> = probe
        .iter()
        .map(|x| {
            let labels = x
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (x.name.clone(), labels, x.value.to_string())
        })
        .collect();
    from_metrics.sort();
    from_probe.sort();
    assert_eq!(from_metrics, from_probe);
}

/// A real probe of `url` on loopback, as the scheduler records it.
async fn probe_loopback(url: &str) -> CheckResult {
    let opts = crate::probe::TlsOptions {
        insecure: true,
        ..Default::default()
    };
    let tls = crate::tls::probe_tls(&opts).expect("tls config");
    let mut spec = crate::probe::ProbeSpec::new(url::Url::parse(url).expect("url"), tls);
    spec.timeout = Duration::from_secs(5);
    let report = crate::probe::Prober::new().probe(&spec).await;
    CheckResult::new(Arc::from("refused"), &report)
}

/// A port on loopback nothing listens on (bound, then closed).
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test]
async fn a_refused_connect_shows_the_address_tried_and_no_connect_time() {
    // blackbox_exporter 0.23.0 on a refused 127.0.0.1: hash and protocol
    // of the address it chose, connect and tls 0 (it had no connection).
    for scheme in ["http", "https"] {
        let port = closed_port().await;
        let r = probe_loopback(&format!("{scheme}://127.0.0.1:{port}/")).await;
        assert_eq!(r.record.st, Status::Down);
        assert!(r.timings.connect.is_some(), "{:?}", r.timings);
        let text = probe_exposition(&r, Format::Text);
        let s = parse(&text);
        assert_eq!(value(&s, "probe_ip_addr_hash", &[]), Some(3_668_918_509.0));
        assert_eq!(value(&s, "probe_ip_protocol", &[]), Some(4.0));
        for phase in ["connect", "tls", "processing", "transfer"] {
            assert_eq!(
                value(&s, "probe_http_duration_seconds", &[("phase", phase)]),
                Some(0.0),
                "{phase} in\n{text}"
            );
        }
        // /metrics shows the same gauges.
        let m = Metrics::new("a", None);
        m.set_checks(&[CheckInfo {
            name: "refused".into(),
            url: format!("{scheme}://127.0.0.1:{port}/"),
            labels: BTreeMap::new(),
        }]);
        m.observe(&r);
        let s = parse(&m.render(Format::Text));
        let connect = s
            .iter()
            .find(|x| {
                x.name == "probe_http_duration_seconds"
                    && x.labels.get("phase").map(String::as_str) == Some("connect")
            })
            .map(|x| x.value);
        assert_eq!(connect, Some(0.0));
        let hash = s.iter().find(|x| x.name == "probe_ip_addr_hash");
        assert_eq!(hash.map(|x| x.value), Some(3_668_918_509.0));
    }
}

#[tokio::test]
async fn a_plain_http_up_probe_shows_no_tls_families() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
    });
    let r = probe_loopback(&format!("http://{addr}/")).await;
    server.join().expect("server");
    assert_eq!(r.record.st, Status::Up, "{:?}", r.detail);
    let text = probe_exposition(&r, Format::Text);
    let s = parse(&text);
    assert_eq!(value(&s, "probe_success", &[]), Some(1.0));
    assert_eq!(value(&s, "probe_http_ssl", &[]), Some(0.0));
    assert_eq!(value(&s, "probe_http_status_code", &[]), Some(200.0));
    assert_eq!(value(&s, "probe_http_version", &[]), Some(1.1));
    assert_eq!(value(&s, "probe_http_content_length", &[]), Some(2.0));
    assert_eq!(value(&s, "probe_ip_addr_hash", &[]), Some(3_668_918_509.0));
    assert_eq!(
        value(&s, "probe_http_duration_seconds", &[("phase", "tls")]),
        Some(0.0)
    );
    for absent in [
        "probe_ssl_earliest_cert_expiry",
        "probe_ssl_last_chain_expiry_timestamp_seconds",
        "probe_ssl_last_chain_info",
        "probe_tls_version_info",
        "probe_tls_cipher_info",
    ] {
        assert!(!text.contains(absent), "{absent} in\n{text}");
    }
}

#[tokio::test]
async fn concurrent_scrapes_share_one_render_made_off_the_runtime() {
    // A current_thread runtime: a render on it would run on this thread.
    let m = loaded();
    let n = exposition::Negotiated {
        format: Format::Text,
        gzip: false,
    };
    let (a, b) = tokio::join!(http::render_encoded(&m, n), http::render_encoded(&m, n));
    let (a, b) = (a.expect("a body"), b.expect("a body"));
    assert_eq!(a, b);
    let text = std::str::from_utf8(&a).expect("utf-8");
    parse(text);
    assert!(text.contains("probe_success{"), "{text}");
    let (renders, thread) = *m.renders.seen.lock().expect("seen");
    assert_eq!(renders, 1, "the second scrape shared the first's render");
    assert_ne!(thread, Some(std::thread::current().id()));
    // Once done, the next scrape renders afresh; gzip is its own render.
    let gz = exposition::Negotiated {
        format: Format::Text,
        gzip: true,
    };
    let (c, d) = tokio::join!(http::render_encoded(&m, n), http::render_encoded(&m, gz));
    assert_eq!(c.as_deref(), Some(&a[..]));
    assert!(d.is_some_and(|d| d.starts_with(&[0x1f, 0x8b])));
    assert_eq!(m.renders.seen.lock().expect("seen").0, 3);
}

#[test]
fn the_render_buffer_follows_the_bucket_count() {
    assert_eq!(bytes_per_check(None), 5_000);
    let default = bytes_per_check(Some(config::Prometheus::default().phase_buckets.len()));
    assert!((20_000..22_000).contains(&default), "{default}");
    assert!(bytes_per_check(Some(30)) > default);
    assert!(bytes_per_check(Some(2)) < default);
    // The estimate is near what a render takes.
    for buckets in [None, Some(vec![0.01, 0.1]), Some(vec![0.1; 30])] {
        let prometheus = config::Prometheus {
            histograms: buckets.is_some(),
            phase_buckets: buckets.clone().unwrap_or_default(),
            ..config::Prometheus::default()
        };
        let m = super::bench::loaded(20, &prometheus);
        let per = m.render(Format::Text).len() / 20;
        let guess = bytes_per_check(buckets.as_ref().map(Vec::len));
        assert!(
            per * 3 / 4 < guess && guess < per * 5 / 4,
            "{per} vs {guess}"
        );
    }
}

#[tokio::test]
async fn a_failed_handshake_shows_no_connect_or_tls_time() {
    // A cleartext server on an https URL: the handshake fails after a
    // connect that took time; blackbox shows connect and tls 0.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    });
    let r = probe_loopback(&format!("https://{addr}/")).await;
    server.join().expect("server");
    assert_eq!(r.record.st, Status::Down);
    assert!(r.timings.connect.is_some(), "{:?}", r.timings);
    let s = parse(&probe_exposition(&r, Format::Text));
    for phase in ["connect", "tls"] {
        assert_eq!(
            value(&s, "probe_http_duration_seconds", &[("phase", phase)]),
            Some(0.0),
            "{phase}"
        );
    }
    assert_eq!(value(&s, "probe_ip_addr_hash", &[]), Some(3_668_918_509.0));
}
