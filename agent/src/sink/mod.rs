//! Sinks: where results go. Each sink runs in its own task behind its own
//! bounded channel, so a slow sink never stalls probing or another sink.
//!
//! A sink implements [`Sink`] (write a batch, a periodic tick, close); the
//! driver (`drive`) owns the channel loop, batching, hold-and-retry and
//! self-telemetry, so each implementation is only about its destination.
//! A sink that cannot write holds its batch (and its channel fills), retries
//! every [`RETRY_FIRST`] doubling to [`RETRY_MAX`], and resumes by itself;
//! meanwhile it is reported failing (`/readyz`, `sonde_sink_up`). [`Fanout`]
//! hands every result to every sink.

mod drive;
pub mod file;
pub(crate) mod frames;
pub(crate) mod stdout;
pub(crate) mod uplink;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::metrics::{DropReason, Metrics};
use crate::result::CheckResult;

/// Why a sink operation failed. The driver holds the batch and retries;
/// only a failure at close (or one that outlasts the close) stops a sink.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// An I/O error on the sink's destination.
    #[error("{context}: {source}")]
    Io {
        /// What the sink was doing (with the path).
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// A file operation of the store (segments, spool) failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The sink's state was lost to an earlier failure (a blocking task
    /// that panicked while holding it).
    #[error("{sink} sink: unusable after an earlier failure")]
    Unusable {
        /// The sink ("file", "stdout", "gateway").
        sink: &'static str,
    },
    /// A task of the sink panicked or was cancelled.
    #[error("{sink} sink: task failed: {source}")]
    Task {
        /// The sink.
        sink: &'static str,
        /// The join error.
        source: tokio::task::JoinError,
    },
    /// Results could not be encoded as frames.
    #[error("{sink} sink: encoding a frame: {source}")]
    Encode {
        /// The sink.
        sink: &'static str,
        /// The encoder's error.
        source: wire::EncodeError,
    },
    /// The gateway client could not be set up (its URL, token or TLS).
    #[error("gateway {name}: {source}")]
    Gateway {
        /// The gateway's configured name.
        name: String,
        /// Why.
        source: Box<uplink::service::ClientError>,
    },
}

impl SinkError {
    /// Whether the destination is gone for good and retrying is pointless:
    /// a closed pipe (`sonde run | head` after `head` exits).
    pub(crate) fn is_permanent(&self) -> bool {
        matches!(self, SinkError::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// An I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SinkError::Io {
            context: context.into(),
            source,
        }
    }
}

/// A destination for results. Implementations do blocking I/O only through
/// `tokio::task::spawn_blocking` or their own thread.
pub trait Sink: Send + 'static {
    /// A short fixed name for metrics and logs ("file", "stdout").
    fn name(&self) -> &'static str;

    /// Writes a batch of results, in order. Returns the bytes written. An
    /// error means none of the batch was taken (it is written again, whole,
    /// on the next try): what a sink counts as written it has written.
    fn write(
        &mut self,
        batch: &[Arc<CheckResult>],
    ) -> impl Future<Output = Result<u64, SinkError>> + Send;

    /// Called about every 250 ms (`TICK`) even when idle: time-based work such as
    /// the fsync policy and rotation by age.
    fn tick(&mut self) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Flushes and syncs everything; called once, after the last batch.
    fn close(self) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// The first wait before a failed sink tries again; each further failure
/// doubles it, up to [`RETRY_MAX`].
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two tries of a failed sink: a disk freed up is
/// written to again within this long.
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// How often a sink's `tick` runs.
pub(crate) const TICK: Duration = Duration::from_millis(250);
/// The most results handed to one `write`.
pub(crate) const MAX_BATCH: usize = 512;

/// A running sink: its channel and its task.
pub struct SinkHandle {
    name: &'static str,
    tx: mpsc::Sender<Arc<CheckResult>>,
    task: JoinHandle<Result<(), SinkError>>,
}

impl SinkHandle {
    /// Starts `sink` in its own task with a channel of `capacity` results.
    /// With a non-zero `linger`, a batch waits up to that long for more
    /// results before it is written: under load, one write (and one thread
    /// hand-off) carries many results instead of one each.
    pub fn spawn<S: Sink>(
        sink: S,
        capacity: usize,
        linger: Duration,
        metrics: Arc<Metrics>,
    ) -> SinkHandle {
        let name = sink.name();
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let task = tokio::spawn(drive::drive(sink, rx, linger, metrics));
        SinkHandle { name, tx, task }
    }

    /// The sink's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Closes the channel and waits until the sink has written, flushed
    /// and synced everything it accepted.
    pub async fn close(self) -> Result<(), SinkError> {
        drop(self.tx);
        match self.task.await {
            Ok(result) => result,
            Err(source) => Err(SinkError::Task {
                sink: self.name,
                source,
            }),
        }
    }
}

/// How often, at most, a sink that keeps dropping results says so in the
/// log: under a burst, a line per dropped result would itself load the
/// agent that is already behind. Every drop is counted in the metrics.
const DROP_WARNING_EVERY: Duration = Duration::from_secs(10);

/// A sink's name, the sending end of its channel, and what its drops
/// have not yet said in the log.
struct Inlet {
    name: &'static str,
    tx: mpsc::Sender<Arc<CheckResult>>,
    /// Drops since the last warning.
    unlogged: AtomicU64,
    /// When the last warning was logged, ms since the fan-out's start;
    /// `u64::MAX` before the first.
    warned_at_ms: AtomicU64,
}

/// Hands every result to every sink, without ever waiting.
#[derive(Clone)]
pub struct Fanout {
    inlets: Arc<[Inlet]>,
    metrics: Arc<Metrics>,
    started: tokio::time::Instant,
}

impl Fanout {
    /// A fan-out over `sinks`.
    pub fn new(sinks: &[SinkHandle], metrics: Arc<Metrics>) -> Self {
        Fanout {
            inlets: sinks
                .iter()
                .map(|s| Inlet {
                    name: s.name,
                    tx: s.tx.clone(),
                    unlogged: AtomicU64::new(0),
                    warned_at_ms: AtomicU64::new(u64::MAX),
                })
                .collect(),
            metrics,
            started: tokio::time::Instant::now(),
        }
    }

    /// Offers `result` to every sink; a full or stopped sink drops it
    /// (counted; logged at most every [`DROP_WARNING_EVERY`]).
    pub fn send(&self, result: CheckResult) {
        let result = Arc::new(result);
        for inlet in self.inlets.iter() {
            match inlet.tx.try_send(result.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => self.dropped(inlet, &result, false),
                Err(mpsc::error::TrySendError::Closed(_)) => self.dropped(inlet, &result, true),
            }
        }
    }

    fn dropped(&self, inlet: &Inlet, result: &CheckResult, sink_stopped: bool) {
        let reason = if sink_stopped {
            DropReason::Stopped
        } else if self.metrics.sink_is_up(inlet.name) {
            DropReason::QueueFull
        } else {
            DropReason::Failing
        };
        self.metrics.sink_dropped(inlet.name, reason, 1);
        inlet.unlogged.fetch_add(1, Ordering::Relaxed);
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let every_ms = u64::try_from(DROP_WARNING_EVERY.as_millis()).unwrap_or(u64::MAX);
        let last = inlet.warned_at_ms.load(Ordering::Relaxed);
        let due = last == u64::MAX || now_ms >= last.saturating_add(every_ms);
        if !due
            || inlet
                .warned_at_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let dropped = inlet.unlogged.swap(0, Ordering::Relaxed);
        let (sink, check, reason) = (inlet.name, &result.check, reason.name());
        if sink_stopped {
            tracing::error!(sink, %check, dropped, reason, "sink stopped: results dropped (warned at most every 10 s; all counted in sonde_sink_records_dropped_total)");
        } else {
            tracing::warn!(sink, %check, dropped, reason, "sink queue full: results dropped (warned at most every 10 s; all counted in sonde_sink_records_dropped_total)");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use wire::{Record, Status};

    /// A down result of check `c`, for the sink tests.
    pub(crate) fn result() -> CheckResult {
        CheckResult {
            check: Arc::from("c"),
            record: Record {
                st: Status::Down,
                ..Record::up(1_700_000_000_000, 20)
            },
            timings: Default::default(),
            detail: None,
            facts: Default::default(),
            dns: None,
        }
    }

    /// A full sink: every drop is counted, but only the first of each
    /// `DROP_WARNING_EVERY` is logged, carrying the drops since the last.
    #[tokio::test(start_paused = true)]
    async fn drops_are_all_counted_and_warned_at_most_every_period() {
        let metrics = Metrics::new("a", None);
        let (tx, _rx) = mpsc::channel(1);
        let fanout = Fanout {
            inlets: Arc::from([Inlet {
                name: "file",
                tx,
                unlogged: AtomicU64::new(0),
                warned_at_ms: AtomicU64::new(u64::MAX),
            }]),
            metrics: metrics.clone(),
            started: tokio::time::Instant::now(),
        };
        let inlet = &fanout.inlets[0];
        fanout.send(result()); // queued
        fanout.send(result()); // dropped, warned at once
        assert_eq!(inlet.unlogged.load(Ordering::Relaxed), 0);
        assert_eq!(inlet.warned_at_ms.load(Ordering::Relaxed), 0);
        for _ in 0..5 {
            fanout.send(result()); // dropped, not yet warned
        }
        assert_eq!(inlet.unlogged.load(Ordering::Relaxed), 5);
        tokio::time::advance(DROP_WARNING_EVERY).await;
        fanout.send(result()); // warned: the 6 since the last warning
        assert_eq!(inlet.unlogged.load(Ordering::Relaxed), 0);
        assert_eq!(inlet.warned_at_ms.load(Ordering::Relaxed), 10_000);
        let text = metrics.render(exposition::Format::Text);
        assert!(
            text.contains(
                "sonde_sink_records_dropped_total{sink=\"file\",reason=\"queue_full\"} 7"
            ),
            "{text}"
        );
    }
}
