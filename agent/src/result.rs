//! A check's result: what flows from the scheduler to the sinks and the
//! metrics. The wire record plus what only people and metrics need. This is
//! the sink boundary: the probe engine's report becomes a `wire::Record`
//! here, in [`wire_record`], and nowhere else.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use wire::Record;

use crate::probe::{DnsReport, Phase, ProbeReport, Timings, TlsInfo};

/// One probe's result for one check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// The check's name (unique in the configuration).
    pub check: Arc<str>,
    /// The wire record (integer milliseconds).
    pub record: Record,
    /// The phases at full precision, for metrics and human output.
    pub timings: Timings,
    /// Why it failed, for people (`None` when up).
    pub detail: Option<String>,
    /// What the first hop's DNS lookup saw, per family (none: no lookup).
    pub dns: Option<DnsReport>,
    /// What blackbox_exporter's gauges show of the probe.
    pub facts: ProbeFacts,
}

/// What the metrics show of a probe beyond the record: the facts behind
/// blackbox_exporter's http prober gauges, all of the last response (of
/// the first hop for `remote`, as blackbox_exporter reports it).
#[derive(Debug, Clone, Default)]
pub struct ProbeFacts {
    /// The HTTP version of the last response.
    pub http_version: Option<hyper::Version>,
    /// Whether the last response came over TLS.
    pub ssl: bool,
    /// Redirects as blackbox_exporter counts them (`len(via)` in Go's
    /// CheckRedirect): those followed, plus one when the last response
    /// was a redirect that was refused (following off, or past the
    /// limit), so `follow_redirects: false` on a 302 shows 1.
    pub redirects: u32,
    /// The last response's Content-Length header.
    pub content_length: Option<u64>,
    /// The last response's body bytes, after content decoding; 0 after a
    /// refused redirect, whose body blackbox_exporter's Go client closes
    /// unread (sonde reads and judges it: README, "Coming from
    /// blackbox_exporter").
    pub decoded_body_bytes: u64,
    /// The last response's Last-Modified header, Unix seconds.
    pub last_modified: Option<i64>,
    /// The address the first hop connected to.
    pub remote: Option<IpAddr>,
    /// The first address the first hop tried (see
    /// [`ProbeReport::chosen`]), connected or not.
    pub chosen: Option<IpAddr>,
    /// The probe failed in the first hop's connect or TLS handshake: no
    /// connection was had, so blackbox_exporter shows no connect or tls
    /// time.
    pub no_connection: bool,
    /// The probe failed because a body or header regex did (not) match.
    pub failed_due_to_regex: bool,
    /// The last hop's TLS handshake. Shared: it is the same for every
    /// probe of a check while the server's certificate stays.
    pub tls: Option<Arc<TlsInfo>>,
}

impl ProbeFacts {
    /// The facts of `report`. TLS is the last hop's, and only when that
    /// hop got a response: blackbox_exporter reads it off the response,
    /// so a first hop's https before a redirect to http is not ssl, nor a
    /// handshake whose request then failed.
    pub(crate) fn of(report: &ProbeReport) -> Self {
        let tls = report
            .final_tls
            .as_ref()
            .filter(|_| report.status_code.is_some());
        ProbeFacts {
            http_version: report.http_version,
            ssl: tls.is_some(),
            redirects: report.redirects + u32::from(report.redirect_refused),
            content_length: report.content_length,
            decoded_body_bytes: if report.redirect_refused {
                0
            } else {
                report.decoded_body_bytes
            },
            last_modified: report.last_modified,
            remote: report.remote.map(|a| a.ip()),
            chosen: report.chosen,
            no_connection: report.redirects == 0
                && report
                    .failure
                    .as_ref()
                    .is_some_and(|f| matches!(f.phase, Phase::Connect | Phase::Proxy | Phase::Tls)),
            failed_due_to_regex: report.failed_due_to_regex,
            tls: tls.cloned().map(Arc::new),
        }
    }
}

impl CheckResult {
    /// The result of `report` for `check`.
    pub(crate) fn new(check: Arc<str>, report: &ProbeReport) -> Self {
        CheckResult {
            check,
            record: wire_record(report),
            timings: report.timings,
            detail: report.failure.as_ref().map(|f| f.detail.clone()),
            dns: report.dns,
            facts: ProbeFacts::of(report),
        }
    }
}

/// The wire record of a report: whole milliseconds, rounded on the
/// cumulative boundaries so that dn+cn+tl+ft ≤ rt holds after rounding too;
/// t is the wall-clock start (0 for a clock before the epoch).
pub fn wire_record(report: &ProbeReport) -> Record {
    let ms = report.timings.quantized(Duration::from_millis(1));
    let t_ms = report
        .started_at
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Record {
        t_ms,
        rt_ms: ms.total,
        sc: report.status_code,
        st: report.status,
        dn_ms: ms.dns,
        // The record has no proxy field: the CONNECT exchange is in cn.
        cn_ms: ms.connect_through_proxy(),
        tl_ms: ms.tls,
        ft_ms: ms.ttfb,
        error: report.failure.as_ref().map(|f| f.class),
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use wire::Status;

    use super::*;
    use crate::probe::Timings;

    fn report(first: Option<TlsInfo>, last: Option<TlsInfo>, status: Option<u16>) -> ProbeReport {
        ProbeReport {
            started_at: SystemTime::now(),
            timings: Timings::default(),
            status_code: status,
            status: Status::Up,
            failure: None,
            dns: None,
            remote: None,
            chosen: None,
            http_version: None,
            tls: first,
            body_bytes: 0,
            redirects: 1,
            redirect_refused: false,
            final_url: url::Url::parse("http://x.test/").unwrap_or_else(|e| panic!("{e}")),
            headers: None,
            body: None,
            content_length: None,
            decoded_body_bytes: 0,
            last_modified: None,
            failed_due_to_regex: false,
            final_tls: last,
            request: None,
        }
    }

    #[test]
    fn a_refused_redirect_counts_as_blackbox_exporter_counts_it() {
        let mut r = report(None, None, Some(302));
        r.redirects = 0;
        r.decoded_body_bytes = 5;
        assert_eq!(ProbeFacts::of(&r).redirects, 0);
        assert_eq!(ProbeFacts::of(&r).decoded_body_bytes, 5);
        r.redirect_refused = true;
        assert_eq!(ProbeFacts::of(&r).redirects, 1, "follow_redirects off");
        // Go closes the refused redirect's body unread.
        assert_eq!(ProbeFacts::of(&r).decoded_body_bytes, 0);
        r.redirects = 10;
        assert_eq!(ProbeFacts::of(&r).redirects, 11, "past the limit of 10");
    }

    #[test]
    fn ssl_and_tls_are_the_last_responses_only() {
        let first = TlsInfo::for_tests(Some(100));
        let last = TlsInfo::for_tests(Some(200));
        // https, then a redirect to http: not ssl, no certificate facts.
        let facts = ProbeFacts::of(&report(Some(first.clone()), None, Some(200)));
        assert!(!facts.ssl);
        assert!(facts.tls.is_none());
        // The last hop's handshake, not the first's.
        let facts = ProbeFacts::of(&report(Some(first.clone()), Some(last), Some(200)));
        assert!(facts.ssl);
        assert_eq!(facts.tls.and_then(|t| t.not_after), Some(200));
        // A handshake whose request got no response: blackbox_exporter has
        // no response to read TLS off.
        let facts = ProbeFacts::of(&report(None, Some(first), None));
        assert!(!facts.ssl);
    }

    #[test]
    fn no_connection_only_when_the_first_hop_failed_to_connect_or_handshake() {
        let failed = |phase: Phase, redirects: u32| {
            let mut r = report(None, None, None);
            r.redirects = redirects;
            r.failure = Some(crate::probe::ProbeFailure::new(
                wire::ErrorClass::ConnectRefused,
                phase,
                String::new(),
            ));
            ProbeFacts::of(&r).no_connection
        };
        assert!(failed(Phase::Connect, 0));
        assert!(failed(Phase::Tls, 0));
        assert!(!failed(Phase::Ttfb, 0));
        assert!(!failed(Phase::Dns, 0));
        // A later hop's failure: the first hop's connection was had.
        assert!(!failed(Phase::Connect, 1));
        assert!(!ProbeFacts::of(&report(None, None, Some(200))).no_connection);
    }
}
