//! Self-telemetry: counters the handlers bump and their Prometheus text
//! exposition (`GET /metrics`, written by the shared `exposition` crate).
//! Gauges of the hub and writer are read at scrape time and passed in.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use exposition::{Exposition, Format, Kind, label};

use crate::ingest::Reject;
use crate::message::ResetReason;

/// Every ingest outcome, in exposition order.
const OUTCOMES: &[&str] = &[
    "ok",
    "bad_frame",
    "empty_body",
    "out_of_order",
    "bad_name",
    "session_ahead",
    "seq_implausible",
    "too_many_checks",
    "unauthorized",
    "agent_mismatch",
    "method_not_allowed",
    "body_timeout",
    "too_large",
    "unsupported_media_type",
    "rate_limited",
    "overloaded",
    "too_many_records",
    "log_unavailable",
];

/// The gateway's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [AtomicU64; OUTCOMES.len()],
    /// Frames accepted.
    pub frames_accepted: AtomicU64,
    /// Records accepted.
    pub records_accepted: AtomicU64,
    /// Frames acknowledged as duplicates.
    pub frames_duplicate: AtomicU64,
    /// Frames missing from agents' sequences.
    pub frames_gap: AtomicU64,
    /// `[jetstream]`: messages of the stream that were not a gateway's
    /// (not whole frames, past the record bound), skipped by the follower.
    pub log_skipped: AtomicU64,
    /// Readers connected now.
    pub readers: AtomicU64,
    /// Readers dropped for lagging.
    pub drops_lagged: AtomicU64,
    /// Readers sent a reset because `since` was out of the ring.
    pub drops_since: AtomicU64,
    /// Readers sent a reset because `since` was beyond the newest gseq.
    pub drops_ahead: AtomicU64,
    /// Reader JWTs refused (bad signature, expired, unknown issuer or kid, no scope).
    pub oidc_refused: AtomicU64,
    /// Reader streams ended because the reader's token expired.
    pub readers_expired: AtomicU64,
    /// Connections closed because a write made no progress in time
    /// (shared with every connection's [`crate::write_deadline::WriteDeadline`]).
    pub write_timeouts: Arc<AtomicU64>,
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

    /// The exposition text in `format`.
    pub fn render(&self, g: Gauges, format: Format) -> String {
        let mut e = Exposition::new(format, 2048);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        e.family(
            "sonde_gateway_requests_total",
            Kind::Counter,
            "Ingest requests by outcome.",
        );
        for (o, c) in OUTCOMES.iter().zip(&self.requests) {
            e.sample(
                "sonde_gateway_requests_total",
                &label("outcome", o),
                "",
                get(c),
            );
        }
        let singles: [(&'static str, Kind, &'static str, u64); 15] = [
            (
                "sonde_gateway_reader_tokens_refused_total",
                Kind::Counter,
                "Reader JWTs refused: signature, expiry, issuer, audience, key or scope.",
                get(&self.oidc_refused),
            ),
            (
                "sonde_gateway_readers_expired_total",
                Kind::Counter,
                "Reader streams ended because the reader's token expired.",
                get(&self.readers_expired),
            ),
            (
                "sonde_gateway_frames_accepted_total",
                Kind::Counter,
                "Frames accepted.",
                get(&self.frames_accepted),
            ),
            (
                "sonde_gateway_records_accepted_total",
                Kind::Counter,
                "Records accepted.",
                get(&self.records_accepted),
            ),
            (
                "sonde_gateway_frames_duplicate_total",
                Kind::Counter,
                "Frames acknowledged as duplicates.",
                get(&self.frames_duplicate),
            ),
            (
                "sonde_gateway_frames_gap_total",
                Kind::Counter,
                "Frames missing from agents' sequences.",
                get(&self.frames_gap),
            ),
            (
                "sonde_gateway_stream_skipped_total",
                Kind::Counter,
                "Messages of the JetStream stream that were not a gateway's frames, skipped.",
                get(&self.log_skipped),
            ),
            (
                "sonde_gateway_readers",
                Kind::Gauge,
                "Readers connected.",
                get(&self.readers),
            ),
            (
                "sonde_gateway_ring_records",
                Kind::Gauge,
                "Records in the replay ring.",
                g.ring_records as u64,
            ),
            (
                "sonde_gateway_ring_bytes",
                Kind::Gauge,
                "Estimated memory of the replay ring and current state.",
                g.ring_bytes as u64,
            ),
            (
                "sonde_gateway_checks",
                Kind::Gauge,
                "(agent, check) pairs in the current state.",
                g.checks as u64,
            ),
            (
                "sonde_gateway_writer_bytes_total",
                Kind::Counter,
                "Bytes written to wire files.",
                g.writer_bytes,
            ),
            (
                "sonde_gateway_writer_queue",
                Kind::Gauge,
                "Frames waiting for the writer.",
                g.writer_queue as u64,
            ),
            (
                "sonde_gateway_writer_errors_total",
                Kind::Counter,
                "Write or fsync failures.",
                g.writer_errors,
            ),
            (
                "sonde_gateway_writer_deleted_files_total",
                Kind::Counter,
                "Wire files deleted by retention.",
                g.writer_deleted_files,
            ),
        ];
        for (name, kind, help, value) in singles {
            e.single(name, kind, help, value);
        }
        e.single(
            "sonde_gateway_write_timeouts_total",
            Kind::Counter,
            "Connections closed because a write made no progress for [readers] write_timeout.",
            get(&self.write_timeouts),
        );
        e.family(
            "sonde_gateway_reader_drops_total",
            Kind::Counter,
            "Readers sent a reset.",
        );
        for (reason, c) in [
            (ResetReason::Lagged, &self.drops_lagged),
            (ResetReason::SinceOutOfRing, &self.drops_since),
            (ResetReason::SinceAhead, &self.drops_ahead),
        ] {
            e.sample(
                "sonde_gateway_reader_drops_total",
                &label("reason", reason.name()),
                "",
                get(c),
            );
        }
        e.finish()
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
        let gauges = Gauges {
            ring_records: 5,
            ..Gauges::default()
        };
        let text = m.render(gauges, Format::Text);
        assert!(text.contains("sonde_gateway_requests_total{outcome=\"ok\"} 1\n"));
        assert!(text.contains("sonde_gateway_requests_total{outcome=\"unauthorized\"} 2\n"));
        assert!(text.contains("sonde_gateway_ring_records 5\n"));
        assert_eq!(OUTCOMES.len(), 18);
        let om = m.render(gauges, Format::OpenMetrics);
        assert!(om.contains("# TYPE sonde_gateway_requests counter\n"));
        assert!(om.contains("sonde_gateway_requests_total{outcome=\"ok\"} 1\n"));
        assert!(om.ends_with("\n# EOF\n"));
    }
}
