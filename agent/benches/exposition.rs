//! What `/metrics` costs at 10 000 checks: sonde's own writer (the agent's
//! real `render`, text 0.0.4 and OpenMetrics, histograms on and off)
//! beside prometheus-client encoding the same series, with render time,
//! bytes plain and gzip, the ratio, and the series and bytes per check.
//! Prints figures; asserts nothing.
//! `cargo bench -p sonde --bench exposition --features bench-prometheus-client`
//! (SONDE_BENCH_CHECKS changes the check count).
#![allow(clippy::disallowed_types, reason = "benchmarks measure real time")]

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use exposition::Format;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sonde::metrics::bench;

type Labels = Vec<(String, String)>;
type FGauge = Family<Labels, Gauge<f64, AtomicU64>>;

/// Renders `f` a few times; the best time and the last output.
fn best(mut f: impl FnMut() -> String) -> (Duration, String) {
    let mut out = String::new();
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        out = f();
        best = best.min(start.elapsed());
    }
    (best, out)
}

fn series(text: &str) -> usize {
    text.lines().filter(|l| !l.starts_with('#')).count()
}

fn row(what: &str, t: Duration, text: &str, checks: usize, base: Option<Duration>) {
    let gz = exposition::encode(text.to_owned(), true).len();
    let ratio = base.map_or(String::new(), |b| {
        format!("  {:.2}x ours", t.as_secs_f64() / b.as_secs_f64())
    });
    println!(
        "{what:<44} {:>8.1} ms  {:>6.2} MB plain  {:>5.2} MB gzip  {:>4} series/check  {:>5} B/check{ratio}",
        t.as_secs_f64() * 1e3,
        text.len() as f64 / 1e6,
        gz as f64 / 1e6,
        series(text) / checks.max(1),
        text.len() / checks.max(1),
    );
}

fn phase_buckets() -> Histogram {
    Histogram::new(config::Prometheus::DEFAULT_BUCKETS.iter().copied())
}

/// The same per-check series as sonde's render, in prometheus-client.
fn client_registry(checks: usize, histograms: bool) -> Registry {
    let mut r = Registry::default();
    let gauge = |r: &mut Registry, name: &str| {
        let f = FGauge::default();
        r.register(name, "help", f.clone());
        f
    };
    let info = gauge(&mut r, "sonde_check_info");
    let plain = [
        "probe_dns_lookup_time_seconds",
        "probe_duration_seconds",
        "probe_failed_due_to_regex",
        "probe_http_content_length",
        "probe_http_redirects",
        "probe_http_ssl",
        "probe_http_status_code",
        "probe_http_uncompressed_body_length",
        "probe_http_version",
        "probe_ip_addr_hash",
        "probe_ip_protocol",
        "probe_ssl_earliest_cert_expiry",
        "probe_ssl_last_chain_expiry_timestamp_seconds",
        "probe_success",
        "sonde_probe_last_timestamp_seconds",
    ];
    let plain: Vec<FGauge> = plain.iter().map(|n| gauge(&mut r, n)).collect();
    let phases = gauge(&mut r, "probe_http_duration_seconds");
    let chain = gauge(&mut r, "probe_ssl_last_chain_info");
    let cipher = gauge(&mut r, "probe_tls_cipher_info");
    let version = gauge(&mut r, "probe_tls_version_info");
    let probes = Family::<Labels, Counter>::default();
    r.register("sonde_probes", "help", probes.clone());
    let skipped = Family::<Labels, Counter>::default();
    r.register("sonde_probes_skipped", "help", skipped.clone());
    let phase_h =
        Family::<Labels, Histogram>::new_with_constructor(phase_buckets as fn() -> Histogram);
    let total_h =
        Family::<Labels, Histogram>::new_with_constructor(phase_buckets as fn() -> Histogram);
    if histograms {
        r.register(
            "sonde_probe_phase_duration_seconds",
            "help",
            phase_h.clone(),
        );
        r.register("sonde_probe_duration_seconds", "help", total_h.clone());
    }
    let phase_names = ["resolve", "connect", "tls", "processing", "transfer"];
    let phase_s = [0.003, 0.005, 0.011, 0.017, 0.006];
    for i in 0..checks {
        let labels: Labels = [
            ("instance", format!("https://svc-{i}.example.com/health")),
            ("check", format!("check-{i}")),
            ("region", "eu-west-1".to_owned()),
            ("env", "prod".to_owned()),
            ("team", "core".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let with = |extra: &[(&str, &str)]| {
            let mut l = labels.clone();
            l.extend(
                extra
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            );
            l
        };
        info.get_or_create(&with(&[(
            "url",
            &format!("https://svc-{i}.example.com/health"),
        )]))
        .set(1.0);
        for g in &plain {
            g.get_or_create(&labels).set(1.0);
        }
        for (p, s) in phase_names.iter().zip(phase_s) {
            phases.get_or_create(&with(&[("phase", p)])).set(s);
            if histograms {
                phase_h.get_or_create(&with(&[("phase", p)])).observe(s);
            }
        }
        if histograms {
            total_h.get_or_create(&labels).observe(0.042);
        }
        chain
            .get_or_create(&with(&[
                (
                    "fingerprint_sha256",
                    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                ),
                ("issuer", "CN=Example Intermediate CA,O=Example"),
                ("serialnumber", "3a9f2c"),
                ("subject", "CN=svc.example.com"),
                ("subjectalternative", "svc.example.com"),
            ]))
            .set(1.0);
        cipher
            .get_or_create(&with(&[("cipher", "TLS_AES_128_GCM_SHA256")]))
            .set(1.0);
        version
            .get_or_create(&with(&[("version", "TLS 1.3")]))
            .set(1.0);
        for result in ["up", "down", "unknown"] {
            let _ = probes.get_or_create(&with(&[("result", result)]));
        }
        probes.get_or_create(&with(&[("result", "up")])).inc();
        for reason in ["busy", "too_late"] {
            let _ = skipped.get_or_create(&with(&[("reason", reason)]));
        }
    }
    r
}

fn main() {
    let checks: usize = std::env::var("SONDE_BENCH_CHECKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    println!(
        "exposition of {checks} HTTPS checks (best of 5 renders; per check: whole text / checks)"
    );
    for histograms in [false, true] {
        let prometheus = config::Prometheus {
            histograms,
            ..config::Prometheus::default()
        };
        let m = bench::loaded(checks, &prometheus);
        let h = if histograms { "on" } else { "off" };
        let (ours_t, ours) = best(|| bench::render(&m, Format::Text));
        row(
            &format!("sonde writer, text 0.0.4, histograms {h}"),
            ours_t,
            &ours,
            checks,
            None,
        );
        let (om_t, om) = best(|| bench::render(&m, Format::OpenMetrics));
        row(
            &format!("sonde writer, OpenMetrics, histograms {h}"),
            om_t,
            &om,
            checks,
            None,
        );
        let start = Instant::now();
        let gz = exposition::encode(ours.clone(), true);
        println!(
            "{:<44} {:>8.1} ms  (gzip of the text, {} bytes)",
            "  + gzip",
            start.elapsed().as_secs_f64() * 1e3,
            gz.len()
        );
        let registry = client_registry(checks, histograms);
        let (client_t, client) = best(|| {
            let mut out = String::with_capacity(ours.len());
            let _ = encode(&mut out, &registry);
            out
        });
        row(
            &format!("prometheus-client 0.26, OpenMetrics, hist. {h}"),
            client_t,
            &client,
            checks,
            Some(om_t),
        );
    }
}
