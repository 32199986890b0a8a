//! Metrics loaded with synthetic checks for the exposition bench
//! (`agent/benches/exposition.rs`): each check configured with two labels
//! and one HTTPS probe observed, as the scheduler would. Not for
//! production use; hidden from the docs.

use std::sync::Arc;
use std::time::Duration;

use exposition::Format;
use wire::Record;

use super::{CheckInfo, Metrics};
use crate::probe::{CertSummary, Timings, TlsInfo};
use crate::result::{CheckResult, ProbeFacts};

/// Metrics for `checks` HTTPS checks, each with one up probe observed,
/// histograms as `prometheus` says. Check `i` is named `check-<i>`
/// and probes `https://svc-<i>.example.com/health`.
pub fn loaded(checks: usize, prometheus: &config::Prometheus) -> Arc<Metrics> {
    let m = Metrics::with_prometheus("bench-agent", Some("eu-west-1"), prometheus);
    let infos: Vec<CheckInfo> = (0..checks)
        .map(|i| CheckInfo {
            name: format!("check-{i}"),
            url: format!("https://svc-{i}.example.com/health"),
            labels: [("team", "core"), ("env", "prod")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        })
        .collect();
    m.set_checks(&infos);
    // One handshake shared by every check, as one server's would be.
    let tls = Arc::new(TlsInfo {
        version: "TLSv1.3",
        cipher: "TLS13_AES_128_GCM_SHA256".into(),
        alpn: Some("http/1.1".into()),
        not_after: Some(1_800_000_000),
        earliest_not_after: Some(1_790_000_000),
        earliest_index: Some(1),
        earliest_subject: Some("CN=Example Intermediate CA,O=Example".into()),
        chain_not_after: Some(1_790_000_000),
        leaf: Some(CertSummary {
            fingerprint_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                .into(),
            subject: "CN=svc.example.com".into(),
            issuer: "CN=Example Intermediate CA,O=Example".into(),
            subject_alternative: "svc.example.com".into(),
            serial: "3a9f2c".into(),
        }),
    });
    let ms = Duration::from_millis;
    for info in &infos {
        let result = CheckResult {
            check: Arc::from(info.name.as_str()),
            record: Record::up(1_700_000_000_000, 42)
                .with_sc(200)
                .with_phases(3, 5, 11, 17),
            timings: Timings {
                dns: Some(ms(3)),
                connect: Some(ms(5)),
                proxy: None,
                tls: Some(ms(11)),
                ttfb: Some(ms(17)),
                total: ms(42),
            },
            detail: None,
            dns: None,
            facts: ProbeFacts {
                http_version: Some(hyper::Version::HTTP_11),
                ssl: true,
                redirects: 0,
                content_length: Some(1234),
                decoded_body_bytes: 1234,
                last_modified: None,
                remote: Some(
                    "192.0.2.10"
                        .parse()
                        .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
                ),
                chosen: None,
                no_connection: false,
                failed_due_to_regex: false,
                tls: Some(Arc::clone(&tls)),
            },
        };
        m.observe(&result);
    }
    m
}

/// [`Metrics::render`] for the bench.
pub fn render(m: &Metrics, format: Format) -> String {
    m.render(format)
}
