//! A check's result: what flows from the scheduler to the sinks and the
//! metrics. The wire record plus what only people and metrics need.

use std::sync::Arc;

use wire::Record;

use crate::probe::{ProbeReport, Timings};

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
}

impl CheckResult {
    /// The result of `report` for `check`.
    pub fn new(check: Arc<str>, report: &ProbeReport) -> Self {
        CheckResult {
            check,
            record: report.record(),
            timings: report.timings,
            detail: report.failure.as_ref().map(|f| f.detail.clone()),
            cert_not_after: report.tls.as_ref().and_then(|t| t.not_after),
        }
    }
}
