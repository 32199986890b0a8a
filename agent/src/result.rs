//! A check's result: what flows from the scheduler to the sinks and the
//! metrics. The wire record plus what only people and metrics need. This is
//! the sink boundary: the probe engine's report becomes a `wire::Record`
//! here, in [`wire_record`], and nowhere else.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use wire::Record;

use crate::probe::{DnsReport, ProbeReport, Timings};

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
    /// The leaf certificate's notAfter, Unix seconds (HTTPS only).
    pub cert_not_after: Option<i64>,
    /// What the first hop's DNS lookup saw, per family (none: no lookup).
    pub dns: Option<DnsReport>,
}

impl CheckResult {
    /// The result of `report` for `check`.
    pub(crate) fn new(check: Arc<str>, report: &ProbeReport) -> Self {
        CheckResult {
            check,
            record: wire_record(report),
            timings: report.timings,
            detail: report.failure.as_ref().map(|f| f.detail.clone()),
            cert_not_after: report.tls.as_ref().and_then(|t| t.not_after),
            dns: report.dns,
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
        cn_ms: ms.connect,
        tl_ms: ms.tls,
        ft_ms: ms.ttfb,
        error: report.failure.as_ref().map(|f| f.class),
    }
}
