//! The scheduler: one small task per check that sleeps until the check is
//! due, decides (see `schedule`) whether to start, skip as busy or skip as
//! too late, and starts the probe in its own task under the global
//! concurrency limit. Work never piles up: at most one probe per check is
//! in flight, and a run that cannot start within its grace is skipped.
//!
//! Time: due times live on the wall-clock grid (stable phase across
//! restarts), read through a monotonic anchor taken once, so a wall-clock
//! jump while running moves no schedule.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::metrics::{Metrics, SkipReason};
use crate::probe::{ProbeReport, ProbeSpec, Prober};
use crate::result::CheckResult;
use crate::schedule::{self, Decision};
use crate::sink::Fanout;

/// What the scheduler runs when a check is due: the probe engine
/// ([`Prober`]), or a stand-in when the scheduler is tested under a paused
/// clock without sockets.
pub(crate) trait Probe: Send + Sync + 'static {
    /// Probes `spec` once, within its own deadline.
    fn probe(&self, spec: &ProbeSpec) -> impl Future<Output = ProbeReport> + Send;
}

impl Probe for Prober {
    fn probe(&self, spec: &ProbeSpec) -> impl Future<Output = ProbeReport> + Send {
        Prober::probe(self, spec)
    }
}

/// A monotonic reading of the wall clock: Unix milliseconds derived from
/// an anchor taken once.
#[derive(Debug, Clone, Copy)]
struct Clock {
    anchor: Instant,
    anchor_unix_ms: u64,
}

impl Clock {
    fn new() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Clock {
            anchor: Instant::now(),
            anchor_unix_ms: unix,
        }
    }

    fn now_ms(&self) -> u64 {
        self.anchor_unix_ms + u64::try_from(self.anchor.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn instant_at(&self, unix_ms: u64) -> Instant {
        self.anchor + Duration::from_millis(unix_ms.saturating_sub(self.anchor_unix_ms))
    }
}

/// What every check task shares.
struct Shared<P> {
    prober: P,
    fanout: Fanout,
    metrics: Arc<Metrics>,
    permits: Arc<Semaphore>,
    clock: Clock,
    /// Every in-flight probe. Probes are spawned without keeping their
    /// JoinHandle, so a finished probe's task memory is freed at once (a
    /// kept handle pins the whole future's allocation until dropped: at
    /// 10 000 checks that was most of the agent's memory).
    probes: TaskTracker,
}

struct Running {
    /// Kept to tell an unchanged check on reload; boxed so that the map's
    /// spare capacity holds pointers, not whole checks.
    check: Box<config::Check>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The set of running checks, probed by `P`.
pub(crate) struct Scheduler<P = Prober> {
    shared: Arc<Shared<P>>,
    running: HashMap<String, Running>,
    /// Tasks of checks removed or changed by a reload, finishing their
    /// in-flight probe; awaited at shutdown so no result is lost.
    retiring: Vec<JoinHandle<()>>,
}

impl<P: Probe> Scheduler<P> {
    /// A scheduler with no checks, running at most `concurrency` probes at once.
    pub(crate) fn new(
        prober: P,
        fanout: Fanout,
        metrics: Arc<Metrics>,
        concurrency: usize,
    ) -> Self {
        Scheduler {
            shared: Arc::new(Shared {
                prober,
                fanout,
                metrics,
                permits: Arc::new(Semaphore::new(concurrency.max(1))),
                clock: Clock::new(),
                probes: TaskTracker::new(),
            }),
            running: HashMap::new(),
            retiring: Vec::new(),
        }
    }

    /// Makes the running set match `checks`: unchanged checks keep their
    /// schedule, changed ones restart, new ones start, removed ones stop
    /// (their in-flight probe still finishes and is recorded).
    pub(crate) fn apply(&mut self, checks: Vec<(config::Check, ProbeSpec)>) -> Applied {
        let mut applied = Applied::default();
        let mut next: HashMap<String, Running> = HashMap::with_capacity(checks.len());
        for (check, spec) in checks {
            match self.running.remove(&check.name) {
                Some(same) if *same.check == check => {
                    applied.kept += 1;
                    next.insert(check.name.clone(), same);
                }
                previous => {
                    if let Some(old) = previous {
                        applied.restarted += 1;
                        self.retire(old);
                    } else {
                        applied.started += 1;
                    }
                    let running = self.start(check, spec);
                    next.insert(running.check.name.clone(), running);
                }
            }
        }
        for (_, old) in self.running.drain() {
            applied.stopped += 1;
            let _ = old.stop.send(true);
            self.retiring.push(old.task);
        }
        self.running = next;
        self.retiring.retain(|t| !t.is_finished());
        applied
    }

    fn retire(&mut self, old: Running) {
        let _ = old.stop.send(true);
        self.retiring.push(old.task);
    }

    fn start(&self, check: config::Check, spec: ProbeSpec) -> Running {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run_check(
            Arc::from(check.name.as_str()),
            Arc::new(spec),
            check.interval,
            self.shared.clone(),
            stopped,
        ));
        Running {
            check: Box::new(check),
            stop,
            task,
        }
    }

    /// Stops scheduling and waits for every in-flight probe (each bounded
    /// by its own deadline) to finish and hand its result to the sinks.
    pub(crate) async fn shutdown(mut self) {
        for running in self.running.values() {
            let _ = running.stop.send(true);
        }
        let tasks = self
            .running
            .drain()
            .map(|(_, r)| r.task)
            .chain(self.retiring.drain(..));
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!("check task failed: {e}");
            }
        }
        self.shared.probes.close();
        self.shared.probes.wait().await;
    }
}

/// What a call to [`Scheduler::apply`] changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Applied {
    /// Checks left running on their schedule.
    pub(crate) kept: usize,
    /// Checks restarted because their configuration changed.
    pub(crate) restarted: usize,
    /// New checks.
    pub(crate) started: usize,
    /// Checks removed.
    pub(crate) stopped: usize,
}

async fn run_check<P: Probe>(
    name: Arc<str>,
    spec: Arc<ProbeSpec>,
    interval: Duration,
    shared: Arc<Shared<P>>,
    mut stop: watch::Receiver<bool>,
) {
    let clock = shared.clock;
    let offset = schedule::offset(&name, interval);
    let grace = schedule::grace(interval);
    let mut due = schedule::next_due_ms(clock.now_ms(), interval, offset);
    // True while this check's probe runs.
    let in_flight = Arc::new(AtomicBool::new(false));
    loop {
        let due_at = clock.instant_at(due);
        tokio::select! {
            () = tokio::time::sleep_until(due_at) => {}
            _ = stop.changed() => break,
        }
        let busy = in_flight.load(Ordering::Acquire);
        match schedule::decide(due, clock.now_ms(), interval, busy) {
            Decision::SkipBusy => shared.metrics.probe_skipped(&name, SkipReason::Busy),
            Decision::SkipTooLate { .. } => {
                shared.metrics.probe_skipped(&name, SkipReason::TooLate)
            }
            Decision::Start { .. } => {
                // Wait for a permit, but never past the grace.
                let permit = tokio::select! {
                    permit = shared.permits.clone().acquire_owned() => permit.ok(),
                    () = tokio::time::sleep_until(due_at + grace) => None,
                    _ = stop.changed() => break,
                };
                match permit {
                    None => shared.metrics.probe_skipped(&name, SkipReason::TooLate),
                    Some(permit) => {
                        shared
                            .metrics
                            .lateness(Instant::now().saturating_duration_since(due_at));
                        in_flight.store(true, Ordering::Release);
                        let (name, spec, flag) = (name.clone(), spec.clone(), in_flight.clone());
                        let task_shared = shared.clone();
                        // The handle is dropped at once; the tracker waits at shutdown.
                        drop(shared.probes.spawn(async move {
                            let report = task_shared.prober.probe(&spec).await;
                            drop(permit);
                            let result = CheckResult::new(name, &report);
                            task_shared.metrics.observe(&result);
                            task_shared.fanout.send(result);
                            flag.store(false, Ordering::Release);
                        }));
                    }
                }
            }
        }
        due = schedule::next_due_ms(due.max(clock.now_ms()), interval, offset);
    }
}
