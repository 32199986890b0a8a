//! The source's task: connect, read the stream through the parser and the
//! tracker, heal ranges from history, hand events to the consumer (waiting
//! when its channel is full), and reconnect with backoff after any
//! failure. The decisions are the tracker's; this module does the I/O.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body_util::BodyExt;
use tokio::sync::{mpsc, watch};

use super::http::{Client, Conn, Failure};
use super::message::{self, Message};
use super::sse::SseParser;
use super::tracker::{Action, HEAL_FAILURES, HealFailures, Tracker};
use super::{Batch, SourceEvent, SourceStats};
use crate::retry::{Backoff, SplitMix64};

/// The largest SSE line or event taken: a snapshot carries every state in
/// the reader's scope (about 200 bytes each), so this is room for some
/// 300 000 (agent, check) pairs, and a bound on what one message costs.
pub(crate) const MAX_EVENT_BYTES: usize = 64 << 20;
/// The gateway sends `: ping` after 15 s of silence; three missed mean
/// the connection is dead though TCP has not said so.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// Reconnect delays: full jitter from 100 ms, doubling to 10 s.
const RECONNECT: Backoff = Backoff {
    base: Duration::from_millis(100),
    cap: Duration::from_secs(10),
    floor: Duration::ZERO,
};
/// A refused token is a configuration problem: retried, slowly.
const AUTH_RETRY: Duration = Duration::from_secs(30);
/// Attempts at one history page before its range is given up as a gap.
const HISTORY_ATTEMPTS: u32 = 3;
/// Between those attempts: 1 to 2 s, then 1 to 4 s.
const HISTORY_RETRY: Backoff = Backoff {
    base: Duration::from_secs(2),
    cap: Duration::from_secs(8),
    floor: Duration::from_secs(1),
};

/// How a connection ended.
enum End {
    /// The consumer dropped its receiver: the source stops.
    Closed,
    /// The gateway ended the stream as it announced (`lagged` after its
    /// heal, `expired`): reconnect at once, no outage.
    Resume,
    /// An outage: reconnect after a delay.
    Failed(Failure),
}

impl From<Failure> for End {
    fn from(f: Failure) -> End {
        End::Failed(f)
    }
}

/// One source's state across connections.
pub(crate) struct Run {
    pub(crate) name: String,
    pub(crate) client: Client,
    pub(crate) tracker: Tracker,
    pub(crate) tx: mpsc::Sender<SourceEvent>,
    pub(crate) stats: Arc<SourceStats>,
    pub(crate) rng: SplitMix64,
    /// Failed connections since the last one that reached its snapshot.
    pub(crate) attempt: u32,
    /// `Disconnected` was sent for the current outage.
    pub(crate) down_reported: bool,
    /// Heals that broke the connection, across connections.
    pub(crate) heal_failures: HealFailures,
}

/// Runs until `stop` turns true (or its sender is dropped) or the
/// consumer goes away.
pub(crate) async fn run(mut run: Run, mut stop: watch::Receiver<bool>) {
    let mut first = true;
    loop {
        if !std::mem::take(&mut first) {
            run.stats.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        let go_on = tokio::select! {
            go_on = run.cycle() => go_on,
            _ = stop.wait_for(|stopped| *stopped) => false,
        };
        if !go_on {
            run.stats.connected.store(false, Ordering::Relaxed);
            return;
        }
    }
}

impl Run {
    /// One connection and, after a failure, the wait before the next;
    /// `false` once the consumer is gone.
    async fn cycle(&mut self) -> bool {
        let end = self.session().await;
        self.stats.connected.store(false, Ordering::Relaxed);
        let failure = match end {
            End::Closed => return false,
            End::Resume => return true,
            End::Failed(failure) => failure,
        };
        let refused = matches!(
            failure,
            Failure::Refused {
                status: 401 | 403,
                ..
            }
        );
        let delay = if refused {
            AUTH_RETRY
        } else {
            let d = RECONNECT.delay(self.attempt, &mut self.rng);
            self.attempt = self.attempt.saturating_add(1);
            d
        };
        let error = failure.to_string();
        if refused {
            tracing::error!(gateway = %self.name, %error, retry_in = ?delay, "the gateway refused the reader token: check the alerter's token for it");
        } else if !self.down_reported {
            tracing::warn!(gateway = %self.name, %error, "gateway stream lost; reconnecting");
        } else {
            tracing::debug!(gateway = %self.name, %error, retry_in = ?delay, "gateway still unreachable");
        }
        if !std::mem::replace(&mut self.down_reported, true)
            && self
                .tx
                .send(SourceEvent::Disconnected { error })
                .await
                .is_err()
        {
            return false;
        }
        tokio::time::sleep(delay).await;
        true
    }

    /// One connection, from the request to its end.
    async fn session(&mut self) -> End {
        let since = self.tracker.open();
        let mut conn = match self.client.connect().await {
            Ok(c) => c,
            Err(f) => return f.into(),
        };
        let mut body = match self.client.stream(&mut conn, since).await {
            Ok(b) => b,
            Err(f) => return f.into(),
        };
        tracing::debug!(gateway = %self.name, url = %self.client.stream_url(since), "stream open");
        let mut parser = SseParser::new(MAX_EVENT_BYTES);
        loop {
            loop {
                let event = match parser.next_event() {
                    Ok(Some(e)) => e,
                    Ok(None) => break,
                    Err(e) => return Failure::Malformed(e.to_string()).into(),
                };
                let msg = match message::decode(&event.event, &event.data) {
                    Ok(m) => m,
                    Err(e) => return Failure::Malformed(e.to_string()).into(),
                };
                if matches!(msg, Message::Snapshot { .. }) {
                    // The stream works: the next failure backs off from the start.
                    self.attempt = 0;
                }
                for action in self.tracker.on_message(msg) {
                    if let Err(end) = self.act(action, &conn).await {
                        return end;
                    }
                }
                if self.tracker.ending() {
                    return End::Resume;
                }
            }
            let frame = match tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await {
                Err(_) => {
                    return Failure::Transport(format!(
                        "nothing from the gateway for {}s (not even a ping)",
                        IDLE_TIMEOUT.as_secs()
                    ))
                    .into();
                }
                Ok(None) => {
                    return Failure::Transport("the gateway ended the stream".into()).into();
                }
                Ok(Some(Err(e))) => {
                    return Failure::Transport(format!("reading the stream: {e}")).into();
                }
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                parser.push(&data);
            }
        }
    }

    async fn act(&mut self, action: Action, conn: &Conn) -> Result<(), End> {
        match action {
            Action::Connected { gateway, region } => {
                self.stats.connected.store(true, Ordering::Relaxed);
                self.down_reported = false;
                tracing::info!(gateway = %self.name, name = %gateway, %region, since = ?self.tracker.last(), "gateway stream connected");
                self.send(SourceEvent::Connected { gateway, region }).await
            }
            Action::Deliver(batch) => self.deliver(batch).await,
            Action::Gap {
                from,
                to,
                reason,
                renumbered,
            } => self.gap(from, to, reason, renumbered).await,
            Action::CaughtUp => self.caught_up().await,
            Action::CatchingUp => {
                tracing::info!(gateway = %self.name, "gateway stream lagged: catching up from history");
                self.send(SourceEvent::CatchingUp).await
            }
            Action::Heal { from, to } => {
                self.heal(conn.clone(), from, to).await?;
                match self.tracker.caught_up() {
                    Some(_) => self.caught_up().await,
                    None => Ok(()),
                }
            }
        }
    }

    async fn caught_up(&self) -> Result<(), End> {
        tracing::info!(gateway = %self.name, last = ?self.tracker.last(), "gateway stream caught up");
        self.send(SourceEvent::CaughtUp).await
    }

    async fn send(&self, event: SourceEvent) -> Result<(), End> {
        self.tx.send(event).await.map_err(|_| End::Closed)
    }

    async fn deliver(&self, batch: Batch) -> Result<(), End> {
        let s = &self.stats;
        s.records
            .fetch_add(batch.records.len() as u64, Ordering::Relaxed);
        if let Some(end) = batch
            .records
            .iter()
            .map(|r| r.record.t_ms.saturating_add(r.record.rt_ms))
            .max()
        {
            s.newest_end_ms.fetch_max(end, Ordering::Relaxed);
        }
        let last = batch.last;
        self.send(SourceEvent::Records(batch)).await?;
        s.last_gseq.store(last, Ordering::Relaxed);
        Ok(())
    }

    async fn gap(&self, from: u64, to: u64, reason: String, renumbered: bool) -> Result<(), End> {
        tracing::warn!(gateway = %self.name, from, to, %reason, "records missed that history could not give back");
        self.stats.gaps.fetch_add(1, Ordering::Relaxed);
        self.send(SourceEvent::Gap {
            from,
            to,
            reason,
            renumbered,
        })
        .await?;
        self.stats.last_gseq.store(to, Ordering::Relaxed);
        Ok(())
    }

    /// Fetches `from..=to` from history, page by page (each handed over
    /// as it comes, so memory stays one page). A range the gateway will
    /// not give (an error status after [`HISTORY_ATTEMPTS`], a body that
    /// is not a page or is too large) becomes a gap; a connection that
    /// breaks ends the session without one, since the next connection's
    /// `reset` names the rest, unless heals have broken where this one
    /// did [`HEAL_FAILURES`] times in a row: then the rest is a gap too,
    /// and the stream goes on.
    async fn heal(&mut self, mut conn: Conn, from: u64, to: u64) -> Result<(), End> {
        self.stats.heals.fetch_add(1, Ordering::Relaxed);
        tracing::info!(gateway = %self.name, from, to, "healing a reset from history");
        let mut at = from;
        loop {
            let page = match self.history_page(&mut conn, at, to).await {
                Ok(page) => page,
                Err(f @ Failure::Transport(_)) => {
                    if !self.heal_failures.broke(at) {
                        return Err(f.into());
                    }
                    let reason = format!(
                        "history of {at}..={to}: {f} (the connection broke there {HEAL_FAILURES} \
                         times in a row)"
                    );
                    return self.unhealed(from, to, reason).await;
                }
                Err(f) => {
                    let reason = format!("history of {at}..={to}: {f}");
                    return self.unhealed(from, to, reason).await;
                }
            };
            // A cursor that does not move forward would never end.
            let next = match page.next {
                Some(n) if n <= at => {
                    let reason = format!("history of {at}..={to}: its cursor {n} does not advance");
                    return self.unhealed(from, to, reason).await;
                }
                Some(n) if n <= to => Some(n),
                _ => None,
            };
            let covered_to = next.map_or(to, |n| n - 1);
            if let Some(batch) = self.tracker.healed(page.records, covered_to) {
                self.deliver(batch).await?;
            }
            match next {
                Some(n) => at = n,
                None => {
                    self.heal_failures.clear();
                    return Ok(());
                }
            }
        }
    }

    /// Gives up what is left of `from..=to`: a gap.
    async fn unhealed(&mut self, from: u64, to: u64, reason: String) -> Result<(), End> {
        self.heal_failures.clear();
        match self.tracker.unhealed(from, to, reason) {
            Some(Action::Gap {
                from,
                to,
                reason,
                renumbered,
            }) => self.gap(from, to, reason, renumbered).await,
            _ => Ok(()),
        }
    }

    /// One page, with retries; a broken connection is replaced for the
    /// next attempt.
    async fn history_page(
        &mut self,
        conn: &mut Conn,
        from: u64,
        to: u64,
    ) -> Result<message::HistoryPage, Failure> {
        let mut attempt = 0;
        loop {
            let failure = match self.client.history(conn, from, to).await {
                Ok(page) => return Ok(page),
                // A request the gateway refuses as such will not pass
                // later, nor will a body that is not a page (or too large).
                Err(
                    f @ (Failure::Refused {
                        status: 400 | 401 | 403 | 404,
                        ..
                    }
                    | Failure::Malformed(_)),
                ) => return Err(f),
                Err(f) => f,
            };
            attempt += 1;
            if attempt >= HISTORY_ATTEMPTS {
                return Err(failure);
            }
            let delay = HISTORY_RETRY.delay(attempt - 1, &mut self.rng);
            tracing::warn!(gateway = %self.name, from, to, error = %failure, retry_in = ?delay, "history page failed");
            tokio::time::sleep(delay).await;
            if matches!(failure, Failure::Transport(_)) {
                match self.client.connect().await {
                    Ok(c) => *conn = c,
                    Err(f) => {
                        tracing::debug!(gateway = %self.name, error = %f, "reconnecting for history")
                    }
                }
            }
        }
    }
}
