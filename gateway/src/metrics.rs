//! Self-telemetry: counters the handlers bump and their Prometheus text
//! exposition (`GET /metrics`). Gauges of the hub and writer are read at
//! scrape time and passed in.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::ingest::Reject;

/// Every ingest outcome, in exposition order.
const OUTCOMES: &[&str] = &[
    "ok",
    "bad_frame",
    "empty_body",
    "out_of_order",
    "unauthorized",
    "agent_mismatch",
    "method_not_allowed",
    "too_large",
    "unsupported_media_type",
    "rate_limited",
    "overloaded",
];

/// The gateway's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [AtomicU64; 11],
    /// Frames accepted.
    pub frames_accepted: AtomicU64,
    /// Records accepted.
    pub records_accepted: AtomicU64,
    /// Frames acknowledged as duplicates.
    pub frames_duplicate: AtomicU64,
    /// Frames missing from agents' sequences.
    pub frames_gap: AtomicU64,
    /// Readers connected now.
    pub readers: AtomicU64,
    /// Readers dropped for lagging.
    pub drops_lagged: AtomicU64,
    /// Readers sent a reset because `since` was out of the ring.
    pub drops_since: AtomicU64,
}

/// Values read from the hub and writer at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Records in the ring.
    pub ring_records: usize,
    /// Estimated ring and state bytes.
    pub ring_bytes: usize,
    /// (agent, check) pairs.
    pub checks: usize,
    /// Bytes written by the writer.
    pub writer_bytes: u64,
    /// Frames waiting for the writer.
    pub writer_queue: usize,
    /// Writer failures.
    pub writer_errors: u64,
    /// Wire files deleted by retention.
    pub writer_deleted_files: u64,
}

impl Metrics {
    /// Counts a request's outcome.
    pub fn request(&self, outcome: Result<(), &Reject>) {
        let code = outcome.err().map_or("ok", Reject::code);
        if let Some(i) = OUTCOMES.iter().position(|o| *o == code) {
            self.requests[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The exposition text.
    pub fn render(&self, g: Gauges) -> String {
        let mut out = String::with_capacity(2048);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out.push_str("# HELP sonde_gateway_requests_total Ingest requests by outcome.\n");
        out.push_str("# TYPE sonde_gateway_requests_total counter\n");
        for (o, c) in OUTCOMES.iter().zip(&self.requests) {
            let _ = writeln!(
                out,
                "sonde_gateway_requests_total{{outcome=\"{o}\"}} {}",
                get(c)
            );
        }
        let mut one = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        one(
            "sonde_gateway_frames_accepted_total",
            "counter",
            "Frames accepted.",
            get(&self.frames_accepted),
        );
        one(
            "sonde_gateway_records_accepted_total",
            "counter",
            "Records accepted.",
            get(&self.records_accepted),
        );
        one(
            "sonde_gateway_frames_duplicate_total",
            "counter",
            "Frames acknowledged as duplicates.",
            get(&self.frames_duplicate),
        );
        one(
            "sonde_gateway_frames_gap_total",
            "counter",
            "Frames missing from agents' sequences.",
            get(&self.frames_gap),
        );
        one(
            "sonde_gateway_readers",
            "gauge",
            "Readers connected.",
            get(&self.readers),
        );
        one(
            "sonde_gateway_ring_records",
            "gauge",
            "Records in the replay ring.",
            g.ring_records as u64,
        );
        one(
            "sonde_gateway_ring_bytes",
            "gauge",
            "Estimated memory of the replay ring and current state.",
            g.ring_bytes as u64,
        );
        one(
            "sonde_gateway_checks",
            "gauge",
            "(agent, check) pairs in the current state.",
            g.checks as u64,
        );
        one(
            "sonde_gateway_writer_bytes_total",
            "counter",
            "Bytes written to wire files.",
            g.writer_bytes,
        );
        one(
            "sonde_gateway_writer_queue",
            "gauge",
            "Frames waiting for the writer.",
            g.writer_queue as u64,
        );
        one(
            "sonde_gateway_writer_errors_total",
            "counter",
            "Write or fsync failures.",
            g.writer_errors,
        );
        one(
            "sonde_gateway_writer_deleted_files_total",
            "counter",
            "Wire files deleted by retention.",
            g.writer_deleted_files,
        );
        out.push_str("# HELP sonde_gateway_reader_drops_total Readers sent a reset.\n");
        out.push_str("# TYPE sonde_gateway_reader_drops_total counter\n");
        let _ = writeln!(
            out,
            "sonde_gateway_reader_drops_total{{reason=\"lagged\"}} {}",
            get(&self.drops_lagged)
        );
        let _ = writeln!(
            out,
            "sonde_gateway_reader_drops_total{{reason=\"since_out_of_ring\"}} {}",
            get(&self.drops_since)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_by_outcome() {
        let m = Metrics::default();
        m.request(Ok(()));
        m.request(Err(&Reject::Unauthorized));
        m.request(Err(&Reject::Unauthorized));
        let text = m.render(Gauges {
            ring_records: 5,
            ..Gauges::default()
        });
        assert!(text.contains("sonde_gateway_requests_total{outcome=\"ok\"} 1\n"));
        assert!(text.contains("sonde_gateway_requests_total{outcome=\"unauthorized\"} 2\n"));
        assert!(text.contains("sonde_gateway_ring_records 5\n"));
        assert_eq!(OUTCOMES.len(), 11);
    }
}
