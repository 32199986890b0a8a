//! The agent's own metrics, served on `--metrics-listen` in the text
//! format (0.0.4) or OpenMetrics, gzipped when asked, with `/healthz` and
//! `/readyz` beside them.
//!
//! Per check, the last probe's gauges under blackbox_exporter's names,
//! written by the same function as `/probe`'s ([`probe`]), labelled
//! `instance` (the target), `check`, `region` and the check's labels; the
//! agent's own counters and the per-check histograms ([`phases`]) under
//! `sonde_`. Recording is a few atomics and one short lock (no string is
//! copied per probe); only `render` allocates. Not a general metrics
//! library: the families are fixed here, and so are their labels.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use exposition::{Exposition, Format, HistogramValues, Kind, escape, label, sanitize_label_name};
use wire::{ErrorClass, Status};

use crate::probe::{Family, FamilyOutcome};
use crate::result::CheckResult;

#[cfg(any(test, feature = "bench-prometheus-client"))]
#[doc(hidden)]
pub mod bench;
mod http;
mod phases;
mod probe;

#[allow(unused_imports, reason = "the blackbox part's /probe calls them")]
pub(crate) use http::negotiated;
pub(crate) use http::serve;
#[allow(unused_imports, reason = "the blackbox part's /probe calls them")]
pub(crate) use probe::probe_exposition;

use phases::PhaseHistograms;
use probe::ProbeGauges;

/// Upper bounds of the schedule lateness histogram, seconds (+Inf implied).
const LATENESS_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Label names sonde sets itself on per-check series (its own and
/// blackbox_exporter's); a configured label with one of these names is
/// renamed `label_<name>` so no series carries a label twice.
const RESERVED_LABELS: [&str; 20] = [
    "instance",
    "check",
    "agent",
    "region",
    "phase",
    "result",
    "class",
    "reason",
    "url",
    "family",
    "outcome",
    "le",
    "version",
    "cipher",
    "fingerprint_sha256",
    "subject",
    "issuer",
    "subjectalternative",
    "serialnumber",
    "job",
];

/// Why a due probe did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SkipReason {
    /// The check's previous probe was still running.
    Busy,
    /// The probe would have started too late to be worth running.
    TooLate,
}

impl SkipReason {
    const ALL: [SkipReason; 2] = [SkipReason::Busy, SkipReason::TooLate];

    /// The value of the `reason` label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SkipReason::Busy => "busy",
            SkipReason::TooLate => "too_late",
        }
    }

    fn index(self) -> usize {
        match self {
            SkipReason::Busy => 0,
            SkipReason::TooLate => 1,
        }
    }
}

/// Why a sink dropped records (the `reason` label of
/// `sonde_sink_records_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// The sink's queue was full while the sink was writing: it is slower
    /// than the results come.
    QueueFull,
    /// The sink's queue was full because the sink cannot write (full disk,
    /// permissions) and holds what it has until it can.
    Failing,
    /// The sink had stopped.
    Stopped,
    /// The gateway sink's spool was at its size limit.
    SpoolFull,
}

impl DropReason {
    const ALL: [DropReason; 4] = [
        DropReason::QueueFull,
        DropReason::Failing,
        DropReason::Stopped,
        DropReason::SpoolFull,
    ];

    /// The value of the `reason` label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Failing => "failing",
            DropReason::Stopped => "stopped",
            DropReason::SpoolFull => "spool_full",
        }
    }

    fn index(self) -> usize {
        match self {
            DropReason::QueueFull => 0,
            DropReason::Failing => 1,
            DropReason::Stopped => 2,
            DropReason::SpoolFull => 3,
        }
    }
}

/// What the metrics need to know of a configured check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckInfo {
    /// The check's name (the `check` label).
    pub(crate) name: String,
    /// The target URL (shown without user info, query or fragment).
    pub(crate) url: String,
    /// The check's configured labels, added to each of its series.
    pub(crate) labels: BTreeMap<String, String>,
}

/// The agent's metrics: shared as `Arc<Metrics>` by the scheduler, the sinks
/// and the HTTP server.
pub struct Metrics {
    /// `version="..",agent="..",region=".."`, rendered once.
    build_labels: String,
    /// The agent's id, escaped (the `agent` label on checks).
    agent: String,
    /// The agent's region, escaped (`None`: no `region` label on checks).
    region: Option<String>,
    /// The per-check histograms' bounds; `None`: histograms are off.
    phase_buckets: Option<Arc<[f64]>>,
    checks: RwLock<HashMap<Arc<str>, Arc<CheckSeries>>>,
    sinks: RwLock<Vec<Arc<SinkSeries>>>,
    lateness: Histogram,
    ready: AtomicBool,
    /// The scrapes' renders in progress.
    renders: http::Renders,
}

/// One check's series. Counters are atomics; the last probe's gauges sit
/// behind a mutex that only this check's probes (one at a time) and
/// `render` take.
struct CheckSeries {
    name: Arc<str>,
    /// `instance="..",check="..",agent="..",region="..",team=".."`, escaped, without
    /// braces.
    labels: String,
    /// The URL without user info, query or fragment, escaped.
    url: String,
    /// Probes by status, indexed by `Status::code`.
    results: [AtomicU64; 3],
    /// Failures, indexed like `ErrorClass::ALL`.
    failures: Box<[AtomicU64]>,
    skipped: [AtomicU64; 2],
    /// DNS family failures, indexed by `Family::index` and like
    /// `FamilyOutcome::FAILURES`.
    dns_failures: [[AtomicU64; FamilyOutcome::FAILURES.len()]; 2],
    last: Mutex<Option<ProbeGauges>>,
    /// `None` when `[prometheus] histograms = false`.
    histograms: Option<PhaseHistograms>,
}

struct SinkSeries {
    name: &'static str,
    depth: AtomicU64,
    capacity: AtomicU64,
    records_written: AtomicU64,
    bytes_written: AtomicU64,
    /// Indexed by `DropReason::index`.
    records_dropped: [AtomicU64; DropReason::ALL.len()],
    /// Why the sink cannot write, while it cannot (`None`: it is up).
    failing: Mutex<Option<String>>,
    /// Set by sinks that spool (the gateway sink): only they show the
    /// spool families.
    spooled: AtomicBool,
    spool_bytes: AtomicU64,
    spool_frames: AtomicU64,
    records_acked: AtomicU64,
    connects: AtomicU64,
    frames_quarantined: AtomicU64,
    acks_refused: AtomicU64,
    failovers: AtomicU64,
    /// The gateway sink's URL in use, escaped (`None`: not a gateway sink).
    gateway: Mutex<Option<String>>,
}

/// A fixed-bucket histogram of durations; counts per bucket, made
/// cumulative when rendered.
struct Histogram {
    /// One per bound in `LATENESS_BUCKETS`, then the +Inf bucket.
    buckets: [AtomicU64; LATENESS_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Metrics {
    /// Metrics for the agent `agent_id`, in `region` if it has one, with
    /// `[prometheus]`'s defaults.
    pub fn new(agent_id: &str, region: Option<&str>) -> Arc<Metrics> {
        Metrics::with_prometheus(agent_id, region, &config::Prometheus::default())
    }

    /// Metrics for the agent `agent_id`, in `region` if it has one, with
    /// the histograms `prometheus` asks for.
    pub fn with_prometheus(
        agent_id: &str,
        region: Option<&str>,
        prometheus: &config::Prometheus,
    ) -> Arc<Metrics> {
        let build_labels = format!(
            "version=\"{}\",agent=\"{}\",region=\"{}\"",
            escape(env!("CARGO_PKG_VERSION")),
            escape(agent_id),
            escape(region.unwrap_or("")),
        );
        Arc::new(Metrics {
            build_labels,
            agent: escape(agent_id),
            region: region.map(escape),
            phase_buckets: prometheus
                .histograms
                .then(|| Arc::from(prometheus.phase_buckets.as_slice())),
            checks: RwLock::new(HashMap::new()),
            sinks: RwLock::new(Vec::new()),
            lateness: Histogram::new(),
            ready: AtomicBool::new(false),
            renders: http::Renders::default(),
        })
    }

    /// Sets the configured checks, at start and on reload. Series of checks
    /// that are gone are dropped; a check whose labels or URL changed starts
    /// afresh; the others keep their counters. Results for checks not in
    /// the set are ignored.
    pub(crate) fn set_checks(&self, checks: &[CheckInfo]) {
        let mut map = self.checks.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = HashMap::with_capacity(checks.len());
        for info in checks {
            let fresh = CheckSeries::new(
                info,
                &self.agent,
                self.region.as_deref(),
                self.phase_buckets.clone(),
            );
            let series = match map.remove(info.name.as_str()) {
                Some(old) if old.labels == fresh.labels && old.url == fresh.url => old,
                _ => Arc::new(fresh),
            };
            next.insert(Arc::clone(&series.name), series);
        }
        *map = next;
    }

    /// Records one finished probe.
    pub(crate) fn observe(&self, result: &CheckResult) {
        let Some(series) = self.check(&result.check) else {
            return;
        };
        let record = &result.record;
        if let Some(n) = series.results.get(usize::from(record.st.code())) {
            n.fetch_add(1, Relaxed);
        }
        if let Some(class) = record.error
            && let Some(i) = ErrorClass::ALL.iter().position(|c| *c == class)
            && let Some(n) = series.failures.get(i)
        {
            n.fetch_add(1, Relaxed);
        }
        if let Some(dns) = &result.dns {
            for family in Family::ALL {
                let outcome = dns.family(family).outcome;
                if let Some(i) = FamilyOutcome::FAILURES.iter().position(|o| *o == outcome) {
                    series.dns_failures[family.index()][i].fetch_add(1, Relaxed);
                }
            }
        }
        if record.st == Status::Up
            && let Some(h) = &series.histograms
        {
            h.observe(&result.timings);
        }
        let last = ProbeGauges::of(result);
        *series.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(last);
    }

    /// Counts a due probe of `check` that did not run.
    pub(crate) fn probe_skipped(&self, check: &str, reason: SkipReason) {
        if let Some(series) = self.check(check) {
            series.skipped[reason.index()].fetch_add(1, Relaxed);
        }
    }

    /// Records how late a probe started: its actual start minus its due time.
    pub(crate) fn lateness(&self, late: Duration) {
        self.lateness.observe(late);
    }

    /// Sets a sink's queue depth and capacity, in records.
    pub(crate) fn sink_queue(&self, sink: &'static str, depth: usize, capacity: usize) {
        let s = self.sink(sink);
        s.depth.store(to_u64(depth), Relaxed);
        s.capacity.store(to_u64(capacity), Relaxed);
    }

    /// Counts records and bytes a sink wrote (for the gateway sink: spooled).
    pub(crate) fn sink_written(&self, sink: &'static str, records: u64, bytes: u64) {
        let s = self.sink(sink);
        s.records_written.fetch_add(records, Relaxed);
        s.bytes_written.fetch_add(bytes, Relaxed);
    }

    /// Counts records a sink dropped, and why.
    pub(crate) fn sink_dropped(&self, sink: &'static str, reason: DropReason, records: u64) {
        self.sink(sink).records_dropped[reason.index()].fetch_add(records, Relaxed);
    }

    /// Records a sink dropped so far, for every reason.
    pub(crate) fn sink_dropped_total(&self, sink: &'static str) -> u64 {
        let s = self.sink(sink);
        s.records_dropped.iter().map(|n| n.load(Relaxed)).sum()
    }

    /// Marks a sink as unable to write, and why (`/readyz` answers 503,
    /// `sonde_sink_up` is 0), or (`None`) as writing again.
    pub(crate) fn sink_failing(&self, sink: &'static str, cause: Option<String>) {
        let s = self.sink(sink);
        *s.failing.lock().unwrap_or_else(PoisonError::into_inner) = cause;
    }

    /// Whether a sink can write (it is not failing).
    pub(crate) fn sink_is_up(&self, sink: &'static str) -> bool {
        let s = self.sink(sink);
        let failing = s.failing.lock().unwrap_or_else(PoisonError::into_inner);
        failing.is_none()
    }

    /// Sets a spooling sink's spool size: bytes on disk and frames not
    /// yet acknowledged.
    pub(crate) fn sink_spool(&self, sink: &'static str, bytes: u64, frames: u64) {
        let s = self.sink(sink);
        s.spooled.store(true, Relaxed);
        s.spool_bytes.store(bytes, Relaxed);
        s.spool_frames.store(frames, Relaxed);
    }

    /// Counts records the gateway acknowledged.
    pub(crate) fn sink_acked(&self, sink: &'static str, records: u64) {
        self.sink(sink).records_acked.fetch_add(records, Relaxed);
    }

    /// Counts a connection opened to the gateway.
    pub(crate) fn sink_connected(&self, sink: &'static str) {
        self.sink(sink).connects.fetch_add(1, Relaxed);
    }

    /// Counts frames the gateway refused as bad, moved to the quarantine.
    pub(crate) fn sink_quarantined(&self, sink: &'static str, frames: u64) {
        self.sink(sink)
            .frames_quarantined
            .fetch_add(frames, Relaxed);
    }

    /// Counts an acknowledgement the gateway sink refused to act on (a mark
    /// beyond every frame the agent numbered).
    pub(crate) fn sink_ack_refused(&self, sink: &'static str) {
        self.sink(sink).acks_refused.fetch_add(1, Relaxed);
    }

    /// Sets the URL a gateway sink talks to (`sonde_sink_gateway_info`).
    pub(crate) fn sink_gateway(&self, sink: &'static str, url: &str) {
        let s = self.sink(sink);
        *s.gateway.lock().unwrap_or_else(PoisonError::into_inner) = Some(escape(url));
    }

    /// Counts a gateway sink's move to its next URL, `url`, now in use.
    pub(crate) fn sink_failover(&self, sink: &'static str, url: &str) {
        self.sink_gateway(sink, url);
        self.sink(sink).failovers.fetch_add(1, Relaxed);
    }

    /// Sets what `/readyz` answers: 200 once the scheduler runs, 503 while
    /// the agent starts or stops.
    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Relaxed);
    }

    /// What `/readyz` answers: `Ok` (200) while the scheduler runs and
    /// every sink can write; else (503) why not, one line per reason.
    pub(crate) fn readiness(&self) -> Result<(), String> {
        if !self.ready.load(Relaxed) {
            return Err("not ready: starting or stopping\n".into());
        }
        let sinks = self.sinks.read().unwrap_or_else(PoisonError::into_inner);
        let mut why = String::new();
        for s in sinks.iter() {
            if let Some(cause) = &*s.failing.lock().unwrap_or_else(PoisonError::into_inner) {
                let _ = writeln!(why, "not ready: sink {} failing: {cause}", s.name);
            }
        }
        if why.is_empty() { Ok(()) } else { Err(why) }
    }

    /// Every series, in `format`.
    pub(crate) fn render(&self, format: Format) -> String {
        let mut checks: Vec<Arc<CheckSeries>> = self
            .checks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        checks.sort_by(|a, b| a.name.cmp(&b.name));
        // Each lock held for one clone: numbers and an Arc.
        let lasts: Vec<(&str, ProbeGauges)> = checks
            .iter()
            .filter_map(|c| {
                let last = c
                    .last
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                last.map(|l| (c.labels.as_str(), l))
            })
            .collect();
        let sinks: Vec<Arc<SinkSeries>> = self
            .sinks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();

        let per_check = bytes_per_check(self.phase_buckets.as_deref().map(<[f64]>::len));
        let mut exposition = Exposition::new(format, 4096 + checks.len() * per_check);
        let o = &mut exposition;
        o.family(
            "sonde_build_info",
            Kind::Gauge,
            "The agent's version, id and region; always 1.",
        );
        o.sample("sonde_build_info", &self.build_labels, "", 1u8);
        o.family(
            "sonde_check_info",
            Kind::Gauge,
            "A configured check and its target URL (without user info or query); always 1.",
        );
        let mut extra = String::with_capacity(256);
        for c in &checks {
            extra.clear();
            let _ = write!(extra, "url=\"{}\"", c.url);
            o.sample("sonde_check_info", &c.labels, &extra, 1u8);
        }

        let probes: Vec<(&str, &ProbeGauges)> = lasts.iter().map(|(l, g)| (*l, g)).collect();
        probe::write_gauges(o, &probes);
        o.family(
            "sonde_probe_last_timestamp_seconds",
            Kind::Gauge,
            "When the check's last probe started, Unix seconds; an old value shows a stuck check.",
        );
        for (labels, g) in &probes {
            o.sample(
                "sonde_probe_last_timestamp_seconds",
                labels,
                "",
                g.started_at_s,
            );
        }

        if self.phase_buckets.is_some() {
            let mut scratch = Vec::new();
            o.family(
                "sonde_probe_phase_duration_seconds",
                Kind::Histogram,
                "Up probes' phases: resolve, connect, tls, processing (to the first byte), transfer (the rest).",
            );
            for c in &checks {
                if let Some(h) = &c.histograms {
                    h.write_phases(o, &c.labels, &mut scratch);
                }
            }
            o.family(
                "sonde_probe_duration_seconds",
                Kind::Histogram,
                "Up probes' total time: start to the last body byte.",
            );
            for c in &checks {
                if let Some(h) = &c.histograms {
                    h.write_duration(o, &c.labels, &mut scratch);
                }
            }
        }

        o.family(
            "sonde_probes_total",
            Kind::Counter,
            "Probes run, by result (up, down, unknown).",
        );
        for c in &checks {
            for st in [Status::Up, Status::Down, Status::Unknown] {
                let n = c.results[usize::from(st.code())].load(Relaxed);
                o.sample("sonde_probes_total", &c.labels, result_label(st), n);
            }
        }
        o.family(
            "sonde_probe_failures_total",
            Kind::Counter,
            "Probes down or unknown, by failure class (classes seen so far).",
        );
        for c in &checks {
            for (class, n) in ErrorClass::ALL.iter().zip(c.failures.iter()) {
                let n = n.load(Relaxed);
                if n > 0 {
                    extra.clear();
                    let _ = write!(extra, "class=\"{}\"", class.name());
                    o.sample("sonde_probe_failures_total", &c.labels, &extra, n);
                }
            }
        }
        o.family(
            "sonde_dns_family_failures_total",
            Kind::Counter,
            "DNS queries of a family that gave no usable answer, by outcome (outcomes seen so far).",
        );
        for c in &checks {
            for family in Family::ALL {
                for (outcome, n) in FamilyOutcome::FAILURES
                    .iter()
                    .zip(&c.dns_failures[family.index()])
                {
                    let n = n.load(Relaxed);
                    if n > 0 {
                        extra.clear();
                        let _ = write!(
                            extra,
                            "family=\"{}\",outcome=\"{}\"",
                            family.label(),
                            outcome.name()
                        );
                        o.sample("sonde_dns_family_failures_total", &c.labels, &extra, n);
                    }
                }
            }
        }
        o.family(
            "sonde_probes_skipped_total",
            Kind::Counter,
            "Due probes that did not run: busy (the previous one still ran) or too_late.",
        );
        for c in &checks {
            for r in SkipReason::ALL {
                let n = c.skipped[r.index()].load(Relaxed);
                extra.clear();
                let _ = write!(extra, "reason=\"{}\"", r.name());
                o.sample("sonde_probes_skipped_total", &c.labels, &extra, n);
            }
        }
        self.lateness.render(
            o,
            "sonde_schedule_lateness_seconds",
            "How late probes started: actual start minus due time.",
        );

        type SinkField = fn(&SinkSeries) -> &AtomicU64;
        let sink_families: [(&'static str, Kind, &'static str, SinkField); 4] = [
            (
                "sonde_sink_queue_depth",
                Kind::Gauge,
                "Records waiting in the sink's queue.",
                |s| &s.depth,
            ),
            (
                "sonde_sink_queue_capacity",
                Kind::Gauge,
                "The sink queue's capacity, records.",
                |s| &s.capacity,
            ),
            (
                "sonde_sink_records_written_total",
                Kind::Counter,
                "Records the sink wrote.",
                |s| &s.records_written,
            ),
            (
                "sonde_sink_bytes_written_total",
                Kind::Counter,
                "Bytes the sink wrote.",
                |s| &s.bytes_written,
            ),
        ];
        for (name, kind, help, field) in sink_families {
            o.family(name, kind, help);
            for s in &sinks {
                o.sample(name, &label("sink", s.name), "", field(s).load(Relaxed));
            }
        }
        o.family(
            "sonde_sink_records_dropped_total",
            Kind::Counter,
            "Records the sink dropped, by reason (queue_full, failing, stopped, spool_full).",
        );
        for s in &sinks {
            for reason in DropReason::ALL {
                let labels = format!(
                    "{},{}",
                    label("sink", s.name),
                    label("reason", reason.name())
                );
                let n = s.records_dropped[reason.index()].load(Relaxed);
                o.sample("sonde_sink_records_dropped_total", &labels, "", n);
            }
        }
        o.family(
            "sonde_sink_up",
            Kind::Gauge,
            "1 while the sink can write, 0 while it cannot and holds what it has (see /readyz for why).",
        );
        for s in &sinks {
            let failing = s
                .failing
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some();
            o.sample(
                "sonde_sink_up",
                &label("sink", s.name),
                "",
                u64::from(!failing),
            );
        }
        let spooled: Vec<&Arc<SinkSeries>> =
            sinks.iter().filter(|s| s.spooled.load(Relaxed)).collect();
        let spool_families: [(&'static str, Kind, &'static str, SinkField); 7] = [
            (
                "sonde_sink_spool_bytes",
                Kind::Gauge,
                "Bytes in the sink's on-disk spool.",
                |s| &s.spool_bytes,
            ),
            (
                "sonde_sink_spool_frames",
                Kind::Gauge,
                "Frames in the spool not yet acknowledged.",
                |s| &s.spool_frames,
            ),
            (
                "sonde_sink_records_acked_total",
                Kind::Counter,
                "Records the gateway acknowledged.",
                |s| &s.records_acked,
            ),
            (
                "sonde_sink_connections_total",
                Kind::Counter,
                "Connections opened to the gateway (more than one: reconnects).",
                |s| &s.connects,
            ),
            (
                "sonde_sink_frames_quarantined_total",
                Kind::Counter,
                "Frames the gateway refused as bad, moved to the spool's quarantine.",
                |s| &s.frames_quarantined,
            ),
            (
                "sonde_sink_acks_refused_total",
                Kind::Counter,
                "Gateway acknowledgements not acted on: their mark is beyond every frame this agent numbered.",
                |s| &s.acks_refused,
            ),
            (
                "sonde_sink_failovers_total",
                Kind::Counter,
                "Moves of the gateway sink to its next URL (a replica) after the one in use was unavailable.",
                |s| &s.failovers,
            ),
        ];
        if !spooled.is_empty() {
            for (name, kind, help, field) in spool_families {
                o.family(name, kind, help);
                for s in &spooled {
                    o.sample(name, &label("sink", s.name), "", field(s).load(Relaxed));
                }
            }
        }
        let gateways: Vec<(&'static str, String)> = sinks
            .iter()
            .filter_map(|s| {
                let url = s.gateway.lock().unwrap_or_else(PoisonError::into_inner);
                url.clone().map(|url| (s.name, url))
            })
            .collect();
        if !gateways.is_empty() {
            o.family(
                "sonde_sink_gateway_info",
                Kind::Gauge,
                "The gateway URL a gateway sink sends to now; always 1.",
            );
            for (sink, url) in &gateways {
                extra.clear();
                let _ = write!(extra, "url=\"{url}\"");
                o.sample("sonde_sink_gateway_info", &label("sink", sink), &extra, 1u8);
            }
        }
        exposition.finish()
    }

    fn check(&self, name: &str) -> Option<Arc<CheckSeries>> {
        let map = self.checks.read().unwrap_or_else(PoisonError::into_inner);
        map.get(name).cloned()
    }

    fn sink(&self, name: &'static str) -> Arc<SinkSeries> {
        let find = |v: &[Arc<SinkSeries>]| v.iter().find(|s| s.name == name).cloned();
        if let Some(s) = find(&self.sinks.read().unwrap_or_else(PoisonError::into_inner)) {
            return s;
        }
        let mut sinks = self.sinks.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = find(&sinks) {
            return s;
        }
        let s = Arc::new(SinkSeries::new(name));
        sinks.push(Arc::clone(&s));
        s
    }
}

impl CheckSeries {
    fn new(
        info: &CheckInfo,
        agent: &str,
        region: Option<&str>,
        buckets: Option<Arc<[f64]>>,
    ) -> CheckSeries {
        let url = escape(&redact_url(&info.url));
        // `agent`: two agents probing the same check stay two series under
        // honor_labels (as Grafana synthetic monitoring's `probe` label).
        let mut labels = format!(
            "instance=\"{url}\",check=\"{}\",agent=\"{agent}\"",
            escape(&info.name)
        );
        if let Some(region) = region {
            let _ = write!(labels, ",region=\"{region}\"");
        }
        let mut seen: HashSet<String> = RESERVED_LABELS.iter().map(|s| (*s).to_owned()).collect();
        for (name, value) in &info.labels {
            let mut name = sanitize_label_name(name);
            if RESERVED_LABELS.contains(&name.as_str()) {
                name = format!("label_{name}");
            }
            // Two names that sanitize alike: the first (in name order) wins.
            if seen.insert(name.clone()) {
                let _ = write!(labels, ",{name}=\"{}\"", escape(value));
            }
        }
        CheckSeries {
            name: Arc::from(info.name.as_str()),
            labels,
            url,
            results: Default::default(),
            failures: ErrorClass::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            skipped: Default::default(),
            dns_failures: Default::default(),
            last: Mutex::new(None),
            histograms: buckets.map(|b| PhaseHistograms::new(b, phases_of(&info.url))),
        }
    }
}

/// The phases a check of `url` can have, indexed like blackbox's phase
/// names: tls only for https, resolve only for a host name.
fn phases_of(url: &str) -> [bool; 5] {
    let (https, name) = match url::Url::parse(url) {
        Ok(u) => (
            u.scheme() == "https",
            matches!(u.host(), Some(url::Host::Domain(_))),
        ),
        Err(_) => (true, true),
    };
    [name, true, https, true, true]
}

/// The `result` label of a status.
fn result_label(st: Status) -> &'static str {
    match st {
        Status::Up => "result=\"up\"",
        Status::Down => "result=\"down\"",
        Status::Unknown => "result=\"unknown\"",
    }
}

impl SinkSeries {
    fn new(name: &'static str) -> SinkSeries {
        SinkSeries {
            name,
            depth: AtomicU64::new(0),
            capacity: AtomicU64::new(0),
            records_written: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            records_dropped: Default::default(),
            failing: Mutex::new(None),
            spooled: AtomicBool::new(false),
            spool_bytes: AtomicU64::new(0),
            spool_frames: AtomicU64::new(0),
            records_acked: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            frames_quarantined: AtomicU64::new(0),
            acks_refused: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
            gateway: Mutex::new(None),
        }
    }
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: Default::default(),
            sum_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = LATENESS_BUCKETS
            .iter()
            .position(|le| s <= *le)
            .unwrap_or(LATENESS_BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    fn render(&self, o: &mut Exposition, name: &'static str, help: &'static str) {
        // Read the count first: buckets may then run ahead of it, never behind.
        let count = self.count.load(Relaxed);
        let counts: Vec<u64> = self.buckets.iter().map(|n| n.load(Relaxed)).collect();
        let sum = self.sum_ns.load(Relaxed) as f64 / 1e9;
        let values = HistogramValues {
            counts: &counts,
            sum,
            count,
        };
        o.histogram(name, help, &LATENESS_BUCKETS, values);
    }
}

/// The URL without user info, query and fragment, which may carry secrets.
pub(crate) fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            // Fails only for URLs that cannot have a user (no host): nothing to strip.
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => String::new(),
    }
}

/// About what an HTTPS check with two labels takes in a render (the
/// exposition bench's checks: 5.0 KB without histograms, 20.9 KB with the
/// default 11 buckets), for `buckets` bounds or histograms off, so a large render
/// does not grow its buffer step by step.
fn bytes_per_check(buckets: Option<usize>) -> usize {
    // The gauges and counters; then per histogram line (six histograms:
    // five phases and the total, each its buckets, +Inf, sum and count).
    const GAUGES: usize = 5_000;
    const HISTOGRAM_LINE: usize = 189;
    GAUGES + buckets.map_or(0, |b| 6 * (b + 3) * HISTOGRAM_LINE)
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
