//! The sink driver: one task per sink that takes results from its channel,
//! batches them (with the linger), writes and ticks the sink, and keeps
//! its self-telemetry. When the sink cannot write it holds the batch,
//! leaves the channel to fill, and retries by the store's [`Heal`] rule
//! ([`RETRY_FIRST`] doubling to [`RETRY_MAX`]), saying so once per change.

use std::sync::Arc;
use std::time::Duration;

use store::Heal;
use tokio::sync::mpsc;

use super::{MAX_BATCH, RETRY_FIRST, RETRY_MAX, Sink, SinkError, TICK};
use crate::metrics::Metrics;
use crate::result::CheckResult;

/// Runs `sink` over `rx` until every sender is gone, then closes it.
pub(super) async fn drive<S: Sink>(
    mut sink: S,
    mut rx: mpsc::Receiver<Arc<CheckResult>>,
    linger: Duration,
    metrics: Arc<Metrics>,
) -> Result<(), SinkError> {
    let name = sink.name();
    let capacity = rx.max_capacity();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut outage = Outage::new(name, metrics.clone());
    // A failed tick (an fsync, a rotation by age) does not stop writes
    // that can still succeed: it is retried on its own backoff.
    let mut tick_retry_at: Option<tokio::time::Instant> = None;
    loop {
        if let (Some(wait), false) = (outage.retry_in, batch.is_empty()) {
            // A write failed: the batch is held and the channel left to
            // fill (its overflow is dropped as `failing`); try again after
            // the wait, or at once, a last time, when the sink is closing.
            let closing = wait_unless_closed(&rx, wait).await;
            match sink.write(&batch).await {
                Ok(bytes) => {
                    metrics.sink_written(name, batch.len() as u64, bytes);
                    if tick_retry_at.is_some() {
                        outage.writes_again();
                    } else {
                        outage.healed(batch.len() + rx.len());
                    }
                    batch.clear();
                }
                Err(e) if e.is_permanent() => {
                    outage.stopped(&e, batch.len() + rx.len());
                    return close_after(sink, e).await;
                }
                Err(e) if closing => {
                    outage.give_up(&e, batch.len() + rx.len());
                    return close_after(sink, e).await;
                }
                Err(e) => {
                    outage.failed(&e);
                }
            }
            metrics.sink_queue(name, rx.len(), capacity);
            continue;
        }
        tokio::select! {
            n = rx.recv_many(&mut batch, MAX_BATCH) => {
                if n == 0 {
                    break;
                }
                if !linger.is_zero() {
                    let until = tokio::time::Instant::now() + linger;
                    while batch.len() < MAX_BATCH {
                        let more = MAX_BATCH - batch.len();
                        match tokio::time::timeout_at(until, rx.recv_many(&mut batch, more)).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                }
                match sink.write(&batch).await {
                    Ok(bytes) => {
                        metrics.sink_written(name, batch.len() as u64, bytes);
                        batch.clear();
                    }
                    Err(e) if e.is_permanent() => {
                        outage.stopped(&e, batch.len() + rx.len());
                        return close_after(sink, e).await;
                    }
                    Err(e) => {
                        outage.failed(&e);
                    }
                }
                metrics.sink_queue(name, rx.len(), capacity);
            }
            _ = tick.tick() => {
                if tick_retry_at.is_some_and(|at| tokio::time::Instant::now() < at) {
                    continue;
                }
                match sink.tick().await {
                    Ok(()) => {
                        if tick_retry_at.take().is_some() {
                            outage.healed(rx.len());
                        }
                    }
                    Err(e) => {
                        let retry_in = outage.failed(&e);
                        tick_retry_at = Some(tokio::time::Instant::now() + retry_in);
                    }
                }
                metrics.sink_queue(name, rx.len(), capacity);
            }
        }
    }
    sink.close().await
}

/// Closes `sink` after it failed for good with `e` (its final syncs, the
/// gateway sink's ack point and grace), and returns `e`.
async fn close_after<S: Sink>(sink: S, e: SinkError) -> Result<(), SinkError> {
    let name = sink.name();
    if let Err(close) = sink.close().await {
        tracing::warn!(sink = name, error = %close, "closing a sink that could not write failed too");
    }
    Err(e)
}

/// Sleeps `wait`, in steps of at most [`TICK`], unless every sender of
/// `rx` is gone (the sink is being closed); returns whether they are.
async fn wait_unless_closed<T>(rx: &mpsc::Receiver<T>, wait: Duration) -> bool {
    let until = tokio::time::Instant::now() + wait;
    loop {
        if rx.is_closed() {
            return true;
        }
        let now = tokio::time::Instant::now();
        if now >= until {
            return false;
        }
        tokio::time::sleep((until - now).min(TICK)).await;
    }
}

/// A sink's hold-and-retry state ([`store::Heal`]) and what its log lines
/// and metrics say about it: one WARN when it starts failing, one INFO when
/// it writes again, the cause on `/readyz` in between.
struct Outage {
    sink: &'static str,
    metrics: Arc<Metrics>,
    heal: Heal,
    /// While failing: how long to wait before the next try.
    retry_in: Option<Duration>,
    /// The cause last reported.
    cause: String,
    /// The sink's drops when the outage started.
    dropped_before: u64,
    started: Option<tokio::time::Instant>,
}

impl Outage {
    fn new(sink: &'static str, metrics: Arc<Metrics>) -> Outage {
        Outage {
            sink,
            metrics,
            heal: Heal::new(RETRY_FIRST, RETRY_MAX),
            retry_in: None,
            cause: String::new(),
            dropped_before: 0,
            started: None,
        }
    }

    /// A write or tick failed: returns how long to wait before the next try.
    fn failed(&mut self, e: &SinkError) -> Duration {
        let failed = self.heal.failed();
        self.retry_in = Some(failed.retry_in);
        let cause = e.to_string();
        if failed.started {
            self.dropped_before = self.metrics.sink_dropped_total(self.sink);
            self.started = Some(tokio::time::Instant::now());
            tracing::warn!(sink = self.sink, error = %cause, retry_in = ?failed.retry_in, "sink cannot write: holding its results and retrying (up to every {RETRY_MAX:?}); results past its queue are dropped");
        } else if cause != self.cause {
            tracing::debug!(sink = self.sink, error = %cause, failures = failed.failures, "sink still cannot write, for another reason");
        }
        if cause != self.cause {
            self.metrics.sink_failing(self.sink, Some(cause.clone()));
            self.cause = cause;
        }
        failed.retry_in
    }

    /// A held batch was written while a failed tick is still being retried:
    /// writes go on; the outage ends when the tick succeeds.
    fn writes_again(&mut self) {
        self.retry_in = None;
    }

    fn healed(&mut self, held: usize) {
        self.retry_in = None;
        let Some(healed) = self.heal.succeeded() else {
            return;
        };
        let dropped = self
            .metrics
            .sink_dropped_total(self.sink)
            .saturating_sub(self.dropped_before);
        let failed_for = self.started.take().map(|t| t.elapsed()).unwrap_or_default();
        tracing::info!(
            sink = self.sink,
            held,
            dropped,
            failures = healed.failures,
            ?failed_for,
            "sink writes again: held results written in order"
        );
        self.metrics.sink_failing(self.sink, None);
        self.cause.clear();
    }

    /// The sink can never write again (stdout closed by its reader): it
    /// stops, and is not reported failing for the rest of the process's
    /// life; what reaches it from now on is dropped as `stopped`.
    fn stopped(&self, e: &SinkError, held: usize) {
        tracing::error!(sink = self.sink, error = %e, lost = held, "sink stopped: its destination is closed for good; its results from now on are dropped");
        self.metrics.sink_failing(self.sink, None);
    }

    fn give_up(&self, e: &SinkError, held: usize) {
        tracing::error!(sink = self.sink, error = %e, lost = held, "sink closed while it still cannot write: its held results are lost");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use wire::Record;

    use super::*;
    use crate::sink::tests::result;
    use crate::sink::{Fanout, SinkHandle};

    /// A sink whose writes fail while `failing` is set (with EPIPE while
    /// `closed_pipe` is), and whose ticks fail while `tick_failing` is; it
    /// records what it was given and whether it was closed.
    #[derive(Default)]
    struct Flaky {
        failing: Arc<AtomicBool>,
        closed_pipe: bool,
        tick_failing: Arc<AtomicBool>,
        written: Arc<std::sync::Mutex<Vec<u64>>>,
        tries: Arc<AtomicU64>,
        closed: Arc<AtomicBool>,
    }

    impl Sink for Flaky {
        fn name(&self) -> &'static str {
            "file"
        }

        async fn write(&mut self, batch: &[Arc<CheckResult>]) -> Result<u64, SinkError> {
            self.tries.fetch_add(1, Ordering::Relaxed);
            if self.closed_pipe {
                let e = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
                return Err(SinkError::io("writing to stdout", e));
            }
            if self.failing.load(Ordering::Relaxed) {
                let e = std::io::Error::from(std::io::ErrorKind::StorageFull);
                return Err(SinkError::io("appending to /state/x.sonde", e));
            }
            let mut w = self.written.lock().unwrap();
            w.extend(batch.iter().map(|r| r.record.t_ms));
            Ok(batch.len() as u64)
        }

        async fn tick(&mut self) -> Result<(), SinkError> {
            if self.tick_failing.load(Ordering::Relaxed) {
                let e = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
                return Err(SinkError::io("rotating /state/x.sonde", e));
            }
            Ok(())
        }

        async fn close(self) -> Result<(), SinkError> {
            self.closed.store(true, Ordering::Relaxed);
            Ok(())
        }
    }

    fn numbered(t_ms: u64) -> CheckResult {
        CheckResult {
            record: Record::up(t_ms, 1),
            ..result()
        }
    }

    /// A sink that cannot write holds its batch and its queue, drops the
    /// overflow as `failing`, retries with doubling waits, reports itself
    /// failing, and writes everything it held, in order and once, when the
    /// cause clears.
    #[tokio::test(start_paused = true)]
    async fn a_failing_sink_holds_retries_with_backoff_and_heals() {
        let metrics = Metrics::new("a", None);
        metrics.set_ready(true);
        let failing = Arc::new(AtomicBool::new(true));
        let written = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tries = Arc::new(AtomicU64::new(0));
        let sink = Flaky {
            failing: failing.clone(),
            written: written.clone(),
            tries: tries.clone(),
            ..Flaky::default()
        };
        let handle = SinkHandle::spawn(sink, 4, Duration::ZERO, metrics.clone());
        let fanout = Fanout::new(std::slice::from_ref(&handle), metrics.clone());
        fanout.send(numbered(0));
        // The first write fails: the sink is failing, and says why.
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(tries.load(Ordering::Relaxed), 1);
        let why = metrics.readiness().unwrap_err();
        assert!(
            why.contains("sink file failing: appending to /state/x.sonde"),
            "{why}"
        );
        // The queue (4) fills behind the held batch; the rest is dropped.
        for t in 1..=10 {
            fanout.send(numbered(t));
        }
        // Retries after 1 s, then 2 s, 4 s: three more tries in 7 s.
        tokio::time::sleep(Duration::from_millis(7_100)).await;
        assert_eq!(tries.load(Ordering::Relaxed), 4);
        failing.store(false, Ordering::Relaxed);
        // The next try is 8 s after the last.
        tokio::time::sleep(Duration::from_millis(7_800)).await;
        assert_eq!(tries.load(Ordering::Relaxed), 4);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(metrics.readiness(), Ok(()));
        fanout.send(numbered(11));
        drop(fanout);
        handle.close().await.unwrap();
        assert_eq!(*written.lock().unwrap(), [0, 1, 2, 3, 4, 11]);
        let text = metrics.render(exposition::Format::Text);
        for line in [
            "sonde_sink_records_written_total{sink=\"file\"} 6",
            "sonde_sink_records_dropped_total{sink=\"file\",reason=\"failing\"} 6",
            "sonde_sink_records_dropped_total{sink=\"file\",reason=\"queue_full\"} 0",
            "sonde_sink_up{sink=\"file\"} 1",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
    }

    /// A sink that still cannot write when it is closed tries once more at
    /// once (not after its backoff), then gives up with the error.
    #[tokio::test(start_paused = true)]
    async fn a_sink_failing_at_close_gives_up_after_one_more_try() {
        let metrics = Metrics::new("a", None);
        let tries = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let sink = Flaky {
            failing: Arc::new(AtomicBool::new(true)),
            tries: tries.clone(),
            closed: closed.clone(),
            ..Flaky::default()
        };
        let handle = SinkHandle::spawn(sink, 4, Duration::ZERO, metrics.clone());
        let fanout = Fanout::new(std::slice::from_ref(&handle), metrics.clone());
        fanout.send(numbered(0));
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(fanout);
        let started = tokio::time::Instant::now();
        assert!(handle.close().await.is_err());
        assert!(started.elapsed() <= TICK, "{:?}", started.elapsed());
        assert_eq!(tries.load(Ordering::Relaxed), 2);
        // Closed all the same: its final syncs, the gateway's ack point.
        assert!(closed.load(Ordering::Relaxed));
    }

    /// A failing tick (a rotation by age refused) while the active segment
    /// still takes writes: every result is written, as it comes; the sink
    /// is reported failing until a tick succeeds, then ready; what is
    /// queued at close is written, not lost.
    #[tokio::test(start_paused = true)]
    async fn a_failing_tick_does_not_stop_writes() {
        let metrics = Metrics::new("a", None);
        metrics.set_ready(true);
        let tick_failing = Arc::new(AtomicBool::new(true));
        let written = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Flaky {
            tick_failing: tick_failing.clone(),
            written: written.clone(),
            ..Flaky::default()
        };
        let handle = SinkHandle::spawn(sink, 4, Duration::ZERO, metrics.clone());
        let fanout = Fanout::new(std::slice::from_ref(&handle), metrics.clone());
        tokio::time::sleep(TICK * 2).await;
        let why = metrics.readiness().unwrap_err();
        assert!(why.contains("rotating /state/x.sonde"), "{why}");
        for t in 0..20 {
            fanout.send(numbered(t));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(written.lock().unwrap().len(), 20);
        tick_failing.store(false, Ordering::Relaxed);
        tokio::time::sleep(RETRY_MAX + TICK).await;
        assert_eq!(metrics.readiness(), Ok(()));
        tick_failing.store(true, Ordering::Relaxed);
        tokio::time::sleep(TICK * 2).await;
        for t in 20..24 {
            fanout.send(numbered(t));
        }
        drop(fanout);
        handle.close().await.unwrap();
        assert_eq!(*written.lock().unwrap(), (0..24).collect::<Vec<_>>());
    }

    /// A destination closed for good (EPIPE: `sonde run | head`) stops the
    /// sink after one try, closed, without retrying for the process's
    /// life or keeping `/readyz` at 503; later results count as dropped
    /// because the sink stopped.
    #[tokio::test(start_paused = true)]
    async fn a_closed_pipe_stops_the_sink_once() {
        let metrics = Metrics::new("a", None);
        metrics.set_ready(true);
        let tries = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicBool::new(false));
        let sink = Flaky {
            closed_pipe: true,
            tries: tries.clone(),
            closed: closed.clone(),
            ..Flaky::default()
        };
        let handle = SinkHandle::spawn(sink, 4, Duration::ZERO, metrics.clone());
        let fanout = Fanout::new(std::slice::from_ref(&handle), metrics.clone());
        fanout.send(numbered(0));
        tokio::time::sleep(Duration::from_secs(60)).await;
        fanout.send(numbered(1));
        assert_eq!(tries.load(Ordering::Relaxed), 1);
        assert!(closed.load(Ordering::Relaxed));
        assert_eq!(metrics.readiness(), Ok(()));
        let text = metrics.render(exposition::Format::Text);
        let line = "sonde_sink_records_dropped_total{sink=\"file\",reason=\"stopped\"} 1";
        assert!(text.contains(line), "{line} in:\n{text}");
        drop(fanout);
        assert!(handle.close().await.is_err());
    }
}
