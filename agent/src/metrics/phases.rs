//! A check's histograms of its up probes: each phase
//! (`sonde_probe_phase_duration_seconds{phase}`) and the whole probe
//! (`sonde_probe_duration_seconds`), in the buckets `[prometheus]
//! phase_buckets` gives. Observing is a few relaxed atomics; a failed
//! probe is not observed (its timings are the failure's). Rendering only
//! reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use exposition::{Exposition, HistogramValues};

use super::probe::PHASES;
use crate::probe::Timings;

/// The series kept: the five phases, then the whole probe.
const SERIES: usize = PHASES.len() + 1;

/// One check's phase and duration histograms.
pub(super) struct PhaseHistograms {
    bounds: Arc<[f64]>,
    /// The phases the check can have, indexed like `PHASES`: no tls over
    /// http, no resolve for an IP literal. The others' series, always
    /// empty, are not written.
    applies: [bool; PHASES.len()],
    /// `SERIES` runs of `bounds.len() + 1` per-bucket counts (+Inf last).
    counts: Box<[AtomicU64]>,
    sum_ns: [AtomicU64; SERIES],
    count: [AtomicU64; SERIES],
}

impl PhaseHistograms {
    /// Empty histograms over `bounds` (ascending upper bounds, seconds)
    /// for a check whose phases are those `applies` marks.
    pub(super) fn new(bounds: Arc<[f64]>, applies: [bool; PHASES.len()]) -> PhaseHistograms {
        let counts = (0..SERIES * (bounds.len() + 1))
            .map(|_| AtomicU64::new(0))
            .collect();
        PhaseHistograms {
            bounds,
            applies,
            counts,
            sum_ns: Default::default(),
            count: Default::default(),
        }
    }

    /// Observes an up probe: each phase that happened (transfer when a
    /// response came: the rest of the probe after the first byte) and the
    /// total.
    pub(super) fn observe(&self, t: &Timings) {
        let first_byte: Duration = [t.dns, t.connect, t.tls, t.ttfb]
            .into_iter()
            .flatten()
            .sum();
        let transfer = t.ttfb.map(|_| t.total.saturating_sub(first_byte));
        let phases = [t.dns, t.connect, t.tls, t.ttfb, transfer, Some(t.total)];
        for (series, d) in phases.into_iter().enumerate() {
            if let Some(d) = d {
                self.observe_one(series, d);
            }
        }
    }

    fn observe_one(&self, series: usize, d: Duration) {
        let s = d.as_secs_f64();
        let bucket = self
            .bounds
            .iter()
            .position(|le| s <= *le)
            .unwrap_or(self.bounds.len());
        let i = series * (self.bounds.len() + 1) + bucket;
        if let Some(n) = self.counts.get(i) {
            n.fetch_add(1, Relaxed);
        }
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns[series].fetch_add(ns, Relaxed);
        self.count[series].fetch_add(1, Relaxed);
    }

    /// Writes the phase series of the `sonde_probe_phase_duration_seconds`
    /// family begun last, labelled `labels` plus `phase`.
    pub(super) fn write_phases(&self, o: &mut Exposition, labels: &str, scratch: &mut Vec<u64>) {
        let mut with_phase = String::with_capacity(labels.len() + 24);
        for (series, phase) in PHASES.iter().enumerate() {
            if !self.applies[series] {
                continue;
            }
            with_phase.clear();
            with_phase.push_str(labels);
            if !labels.is_empty() {
                with_phase.push(',');
            }
            with_phase.push_str("phase=\"");
            with_phase.push_str(phase);
            with_phase.push('"');
            self.write(
                o,
                "sonde_probe_phase_duration_seconds",
                &with_phase,
                series,
                scratch,
            );
        }
    }

    /// Writes the series of the `sonde_probe_duration_seconds` family
    /// begun last, labelled `labels`.
    pub(super) fn write_duration(&self, o: &mut Exposition, labels: &str, scratch: &mut Vec<u64>) {
        self.write(
            o,
            "sonde_probe_duration_seconds",
            labels,
            PHASES.len(),
            scratch,
        );
    }

    fn write(
        &self,
        o: &mut Exposition,
        name: &str,
        labels: &str,
        series: usize,
        scratch: &mut Vec<u64>,
    ) {
        // Read the count first: buckets may then run ahead of it, never behind.
        let count = self.count[series].load(Relaxed);
        let width = self.bounds.len() + 1;
        scratch.clear();
        scratch.extend(
            self.counts[series * width..(series + 1) * width]
                .iter()
                .map(|n| n.load(Relaxed)),
        );
        let values = HistogramValues {
            counts: scratch,
            sum: self.sum_ns[series].load(Relaxed) as f64 / 1e9,
            count,
        };
        o.histogram_series(name, labels, &self.bounds, values);
    }
}
