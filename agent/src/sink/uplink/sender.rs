//! The sender task: reads unacknowledged frames from the spool in order,
//! POSTs them one request at a time to one gateway URL, and acts on the
//! answer as [`super::policy`] decides, with `crate::retry`'s backoff (full
//! jitter, capped), `Retry-After` and circuit breaker for the waits; an
//! unavailable replica moves it to the next URL ([`super::failover`]). It
//! never blocks the sink: while the gateways are away, only the spool grows.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::failover::{Failover, Step};
use super::ledger::FrameId;
use super::policy::{self, Action, Outcome};
use super::service::Client;
use super::spool::{Batch, Spool};
use crate::metrics::Metrics;
use crate::retry::{Backoff, Breaker, Jitter, clamp_to_deadline};
use crate::sink::SinkError;

/// Requests carry at most this many bytes of frames (PROTOCOL.md 2.1
/// suggests staying well below the gateway's 8 MiB)...
pub(crate) const MAX_REQUEST_BYTES: u64 = 256 << 10;
/// ...and at most this many frames.
pub(crate) const MAX_REQUEST_FRAMES: usize = 500;
/// Reconnects: full jitter from 0 up to 100 ms doubling, at most 10 s.
pub(crate) const RECONNECT: Backoff = Backoff {
    base: Duration::from_millis(100),
    cap: Duration::from_secs(10),
    floor: Duration::ZERO,
};
/// After this many failures in a row the breaker opens...
pub(crate) const BREAKER_THRESHOLD: u32 = 5;
/// ...for this long, then lets one trial through (half-open).
pub(crate) const BREAKER_COOL_DOWN: Duration = Duration::from_secs(5);
/// A misconfigured sink (401, 403, 415...) retries this slowly.
pub(crate) const HOLD: Backoff = Backoff {
    base: Duration::from_secs(30),
    cap: Duration::from_secs(300),
    floor: Duration::from_secs(15),
};
/// An acknowledgement that is not this agent's (a mark beyond its frames,
/// PROTOCOL.md 2.3): resend after 0.5 s to 1 s, the ceiling doubling up to 30 s, so that
/// once an operator resets the mark everything goes soon.
pub(crate) const FOREIGN_ACK: Backoff = Backoff {
    base: Duration::from_secs(1),
    cap: Duration::from_secs(30),
    floor: Duration::from_millis(500),
};
/// `Retry-After` is honoured up to this long.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// What the sink and the sender share.
pub(crate) struct Shared {
    /// The spool; every file operation happens under this lock, in a
    /// blocking thread.
    pub(crate) spool: Mutex<Spool>,
    /// Rung by the sink after each append.
    pub(crate) wake: Notify,
    /// The sink's metrics name.
    pub(crate) name: &'static str,
    /// The agent's metrics.
    pub(crate) metrics: Arc<Metrics>,
}

impl Shared {
    /// Runs `f` on the spool in a blocking thread.
    pub(crate) async fn blocking<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Spool) -> Result<R, SinkError> + Send + 'static,
    ) -> Result<R, SinkError> {
        let shared = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut spool = shared.spool.lock().unwrap_or_else(PoisonError::into_inner);
            let r = f(&mut spool);
            shared
                .metrics
                .sink_spool(shared.name, spool.bytes(), spool.unacked_frames());
            r
        })
        .await
        .map_err(|source| SinkError::Task {
            sink: "gateway",
            source,
        })?
    }
}

/// The sender's end of the connection to the gateway: [`Client`], or a
/// scripted stand-in when the sender is tested under a paused clock.
pub(crate) trait Uplink: Send + 'static {
    /// POSTs one request body of frames and reports how it ended.
    fn send(&mut self, body: Bytes) -> impl Future<Output = Outcome> + Send;
    /// Drops the connection; the next `send` opens a new one.
    fn disconnect(&mut self);
    /// Connections opened so far.
    fn connects(&self) -> u64;
    /// The gateway's request URI, for logs and `sonde_sink_gateway_info`.
    fn uri(&self) -> &str;
}

impl Uplink for Client {
    fn send(&mut self, body: Bytes) -> impl Future<Output = Outcome> + Send {
        Client::send(self, body)
    }

    fn disconnect(&mut self) {
        Client::disconnect(self);
    }

    fn connects(&self) -> u64 {
        Client::connects(self)
    }

    fn uri(&self) -> &str {
        Client::uri(self)
    }
}

/// Runs until `closing` carries a deadline and either everything is
/// acknowledged, the deadline passed, or the gateway is not answering.
/// `clients` are the configured URLs' (one or more), used one at a time
/// starting with the first; `rng` spreads the backoff delays (full jitter).
///
/// While a round through the URLs lasts, an unavailable one moves the
/// sender to the next at once, the unacknowledged frames resent from the
/// spool's ack point; the backoff and the breaker count a round in which
/// every URL failed as one failure, so one URL behaves as it always did.
pub(crate) async fn run<U: Uplink>(
    shared: Arc<Shared>,
    mut clients: Vec<U>,
    mut closing: watch::Receiver<Option<Instant>>,
    mut rng: impl Jitter + Send,
) {
    let name = shared.name;
    if clients.is_empty() {
        tracing::error!(sink = name, "no gateway URL: nothing is sent");
        return;
    }
    let mut failover = Failover::new(clients.len());
    shared.metrics.sink_gateway(name, clients[0].uri());
    let mut breaker = Breaker::new(BREAKER_THRESHOLD, BREAKER_COOL_DOWN);
    let mut failures: u32 = 0;
    let mut holds: u32 = 0;
    // Acknowledgements not naming this agent's frames, in a row.
    let mut foreign_acks: u32 = 0;
    let mut narrow: Option<usize> = None;
    let mut connects = 0;
    loop {
        let deadline = *closing.borrow_and_update();
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let max_frames = narrow.unwrap_or(MAX_REQUEST_FRAMES);
        let read = shared
            .blocking(move |s| {
                let next = s.numbering().next_id();
                s.read(MAX_REQUEST_BYTES, max_frames)
                    .map(|(batch, skipped)| (batch, skipped, next))
            })
            .await;
        let (batch, next_id) = match read {
            Ok((batch, skipped, next_id)) => {
                if skipped > 0 {
                    tracing::warn!(
                        sink = name,
                        regions = skipped,
                        "damaged spool bytes skipped"
                    );
                }
                (batch, next_id)
            }
            Err(e) => {
                // The spool is the sink's; it reports its own failures.
                // Wait for the next append rather than spin.
                tracing::error!(sink = name, "reading the spool: {e}");
                if deadline.is_some() {
                    break;
                }
                if !wait(&shared, &mut closing, Some(Duration::from_secs(1))).await {
                    break;
                }
                continue;
            }
        };
        let Some(batch) = batch else {
            if deadline.is_some() {
                break;
            }
            if !wait(&shared, &mut closing, None).await {
                break;
            }
            continue;
        };

        let frames: Vec<(FrameId, u64)> = batch.frames.iter().map(|f| (f.id, f.offset)).collect();
        let at = failover.current();
        let Some(client) = clients.get_mut(at) else {
            break;
        };
        let outcome = client.send(batch.body.clone()).await;
        let opened: u64 = clients.iter().map(Uplink::connects).sum();
        if opened > connects {
            connects = opened;
            shared.metrics.sink_connected(name);
            if connects > 1 {
                tracing::info!(
                    sink = name,
                    gateway = clients[at].uri(),
                    "reconnected to the gateway"
                );
            }
        }
        // The next URL, if this one is unavailable; within a round, at once.
        // Leaving a URL drops its connection (coming back opens a new one).
        let moved = match failover.on_outcome(&outcome) {
            Step::Stay => None,
            Step::Move { from, to } => {
                clients[from].disconnect();
                fail_over(&shared, &clients, from, to, &outcome, Duration::ZERO);
                continue;
            }
            Step::Exhausted { from, to } => (from != to).then(|| {
                clients[from].disconnect();
                (from, to)
            }),
        };
        // The newest frame numbered: the last sent, or the one before the
        // next of the current session, whichever is later.
        let numbered = next_id.1.checked_sub(1).map(|seq| (next_id.0, seq));
        let newest = frames
            .iter()
            .map(|f| f.0)
            .chain(numbered)
            .max()
            .unwrap_or(next_id);
        let action = policy::decide(&outcome, &frames, newest);
        let now = Instant::now();
        let delay = match action {
            Action::Advance { frames: n } => {
                if foreign_acks > 0 {
                    tracing::info!(
                        sink = name,
                        refused = foreign_acks,
                        "the gateway's acknowledgements name this agent's frames again"
                    );
                } else if failures > 0 || holds > 0 {
                    tracing::info!(sink = name, "gateway accepting again");
                }
                foreign_acks = 0;
                breaker.on_success();
                failures = 0;
                holds = 0;
                narrow = None;
                let records = batch.frames[..n].iter().map(|f| f.records).sum();
                if let Err(e) = shared.blocking(move |s| s.ack(&batch, n)).await {
                    tracing::error!(sink = name, "recording an acknowledgement: {e}");
                }
                shared.metrics.sink_acked(name, records);
                continue;
            }
            Action::Narrow { frames: n } => {
                narrow = Some(n);
                continue;
            }
            Action::Quarantine => {
                narrow = None;
                let (status, reason) = describe(&outcome);
                let first = batch.frames.first().map(|f| f.id);
                match shared.blocking(move |s| quarantine(s, &batch)).await {
                    Ok(path) => {
                        shared.metrics.sink_quarantined(name, 1);
                        tracing::error!(sink = name, frame = ?first, status, reason, quarantine = %path.display(), "the gateway refused a frame as bad: moved to the quarantine");
                    }
                    Err(e) => tracing::error!(sink = name, "quarantining a frame: {e}"),
                }
                continue;
            }
            Action::Pause(after) => {
                let wait = match after {
                    Some(d) => clamp_to_deadline(d, now, now + MAX_RETRY_AFTER),
                    None => RECONNECT.delay(failures, &mut rng),
                };
                let (status, _) = describe(&outcome);
                if moved.is_none() {
                    tracing::info!(
                        sink = name,
                        status,
                        wait_ms = wait.as_millis() as u64,
                        "gateway asks to wait"
                    );
                }
                wait
            }
            Action::Reconnect => {
                if moved.is_none() {
                    clients[at].disconnect();
                }
                breaker.on_failure(now);
                let backoff = RECONNECT.delay(failures, &mut rng);
                failures = failures.saturating_add(1);
                let wait = backoff.max(breaker.ready_at(now).saturating_duration_since(now));
                if moved.is_none() {
                    tracing::warn!(
                        sink = name,
                        attempt = failures,
                        wait_ms = wait.as_millis() as u64,
                        unacked_frames = batch.frames.len(),
                        "gateway unavailable: {}",
                        why(&outcome)
                    );
                }
                wait
            }
            Action::ForeignAck => {
                shared.metrics.sink_ack_refused(name);
                let wait = FOREIGN_ACK.delay(foreign_acks, &mut rng);
                if foreign_acks == 0 {
                    let (_, ack) = describe(&outcome);
                    tracing::error!(
                        sink = name,
                        ack,
                        newest = ?newest,
                        unacked_frames = batch.frames.len(),
                        "the gateway's acknowledgement is beyond every frame this agent numbered \
                         (its mark for this agent comes from frames this agent never sent); \
                         nothing is deleted from the spool, resending with backoff; \
                         an operator can reset the mark (PROTOCOL.md 2.6)"
                    );
                }
                foreign_acks = foreign_acks.saturating_add(1);
                wait
            }
            Action::Hold => {
                let wait = HOLD.delay(holds, &mut rng);
                holds = holds.saturating_add(1);
                let (status, reason) = describe(&outcome);
                tracing::error!(
                    sink = name,
                    status,
                    reason,
                    retry_in_s = wait.as_secs(),
                    hint = policy::hold_hint(&outcome),
                    "the gateway refuses this agent's requests; results stay in the spool"
                );
                wait
            }
        };
        if let Some((from, to)) = moved {
            fail_over(&shared, &clients, from, to, &outcome, delay);
        }
        if let Some(deadline) = deadline {
            // Closing: wait only if the retry still fits in the grace.
            if Instant::now() + delay >= deadline {
                break;
            }
            tokio::time::sleep(delay).await;
        } else if !sleep(&mut closing, delay).await {
            break;
        }
    }
}

/// Logs the move from URL `from` to `to` after `outcome`, before waiting
/// `wait` (one WARN), and counts it. The frames go again from the spool's
/// ack point, as after a reconnect.
fn fail_over<U: Uplink>(
    shared: &Shared,
    clients: &[U],
    from: usize,
    to: usize,
    outcome: &Outcome,
    wait: Duration,
) {
    let uri = |i: usize| clients.get(i).map_or("", |c| c.uri());
    tracing::warn!(
        sink = shared.name,
        from = uri(from),
        to = uri(to),
        wait_ms = wait.as_millis() as u64,
        "gateway unavailable, moving to the next URL: {}",
        why(outcome)
    );
    shared.metrics.sink_failover(shared.name, uri(to));
}

/// Why a request failed, for logs.
fn why(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Transport(e) => e.clone(),
        other => {
            let (status, reason) = describe(other);
            format!("{status} {reason}").trim().to_owned()
        }
    }
}

fn quarantine(spool: &mut Spool, batch: &Batch) -> Result<std::path::PathBuf, SinkError> {
    spool.quarantine(batch)
}

/// The status and reason of an answer, for logs.
fn describe(outcome: &Outcome) -> (u16, String) {
    match outcome {
        Outcome::Refused {
            status, refusal, ..
        } => (
            *status,
            format!("{} {}", refusal.error, refusal.reason)
                .trim()
                .to_owned(),
        ),
        Outcome::Acked(a) => (
            200,
            format!("acknowledged up to ({}, {})", a.session, a.acked),
        ),
        Outcome::Transport(e) => (0, e.clone()),
    }
}

/// Waits for an append (or `limit`), or for closing. `false`: the sink
/// is gone without closing (the sender stops).
async fn wait(
    shared: &Shared,
    closing: &mut watch::Receiver<Option<Instant>>,
    limit: Option<Duration>,
) -> bool {
    let limit = limit.unwrap_or(Duration::from_secs(3600));
    tokio::select! {
        _ = shared.wake.notified() => true,
        changed = closing.changed() => changed.is_ok(),
        _ = tokio::time::sleep(limit) => true,
    }
}

/// Sleeps `delay`, cut short by closing. `false`: the sink is gone.
async fn sleep(closing: &mut watch::Receiver<Option<Instant>>, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        changed = closing.changed() => changed.is_ok(),
    }
}

#[cfg(test)]
mod tests;
