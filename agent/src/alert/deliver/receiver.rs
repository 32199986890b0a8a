//! A receiver: its [`Queue`] and firing alerts behind a `std` mutex (held
//! briefly, never across an await), its HTTP client, and the delivery task
//! ([`spawn`]) that waits for the head to be due, delivers it, and settles
//! it. The head leaves the queue only after a 2xx, so a checkpoint taken
//! mid-delivery still holds it and a redelivery carries the same id.
//!
//! What the caller checkpoints is [`Receiver::snapshot`]; metrics read
//! [`Receiver::stats`].

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::alertmanager::{self, ActiveAlerts, Shape};
use super::dead::{DeadLetter, DeadLetterError, DeadLetters, LetterKey, Select};
use super::http::{ClientError, HttpClient, HttpError};
use super::queue::{Next, Outcome, Pending, Policy, Queue, Settled};
use super::webhook::{Signer, WebhookError};
use super::{ReceiverConfig, ReceiverKind};
use crate::alert::event::{Event, now_ms};
use crate::retry::SplitMix64;

/// The longest the task sleeps without looking again (wall-clock jumps
/// shift due times, which are epoch milliseconds).
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// After a failed dead-letter write, the next try waits this long.
const DEAD_RETRY: Duration = Duration::from_secs(1);

/// Why a receiver cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// The URL or the TLS settings.
    #[error("receiver {name}: {source}")]
    Client {
        /// The receiver.
        name: String,
        /// What is wrong.
        source: ClientError,
    },
    /// The webhook's secrets or headers.
    #[error("receiver {name}: {source}")]
    Webhook {
        /// The receiver.
        name: String,
        /// What is wrong.
        source: WebhookError,
    },
}

/// What survives a restart: the caller writes it into its checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReceiverState {
    /// The pending notifications, head first.
    pub pending: Vec<Pending>,
    /// Dead letters decided but not yet in the file.
    #[serde(default)]
    pub unwritten: Vec<DeadLetter>,
    /// Replayed dead letters whose replay ended, not yet marked in the file.
    #[serde(default)]
    pub replayed: Vec<LetterKey>,
    /// Alertmanager: the alerts firing (empty for webhooks).
    #[serde(default)]
    pub active: ActiveAlerts,
}

/// The receiver's counters since it was made, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Notifications delivered (an Alertmanager recovery with nothing
    /// firing to resolve counts, without a request).
    pub sent: u64,
    /// Attempts that failed (a refresh of firing alerts included).
    pub failed: u64,
    /// Failed attempts that will be tried again.
    pub retried: u64,
    /// Notifications given up (refused for good, too old, evicted).
    pub dead_lettered: u64,
    /// Alertmanager: accepted re-posts of the firing alerts.
    pub refreshed: u64,
    /// Notifications pending now.
    pub pending: usize,
    /// Alertmanager: alerts firing now.
    pub firing: usize,
    /// How the last failed attempt failed.
    pub last_error: Option<String>,
}

enum Transport {
    Webhook {
        client: HttpClient,
        signer: Signer,
    },
    Alertmanager {
        client: HttpClient,
        resend: Duration,
        labels: Vec<(String, String)>,
    },
}

struct Shared {
    queue: Queue,
    active: ActiveAlerts,
    jitter: SplitMix64,
    last_error: Option<String>,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    refreshed: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// One receiver's queue and client; share it as `Arc<Receiver>` between
/// the rule engine's side ([`Receiver::enqueue`]), the checkpoint, metrics
/// and its delivery task.
pub struct Receiver {
    name: String,
    policy: Policy,
    transport: Transport,
    dead: Arc<DeadLetters>,
    shared: Mutex<Shared>,
    wake: Notify,
    counters: Counters,
    /// The newest checkpoint known to be on disk: a pending notification
    /// held for a later one waits ([`Queue::push_after`]).
    durable: AtomicU64,
    /// Bumped by every change to what [`Receiver::snapshot`] returns that
    /// the caller did not make itself (deliveries, dead letters), so it
    /// knows to checkpoint again.
    changes: AtomicU64,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name)
            .finish()
    }
}

impl Receiver {
    /// The receiver `config` describes, dead-lettering into `dead`. Checks
    /// the URL, reads the CA file, decodes the secrets; connects to nothing.
    pub fn new(config: ReceiverConfig, dead: Arc<DeadLetters>) -> Result<Receiver, ReceiverError> {
        let name = config.name.clone();
        let client = |url: &url::Url| {
            HttpClient::new(url, config.ca_file.as_deref(), config.timeout).map_err(|source| {
                ReceiverError::Client {
                    name: name.clone(),
                    source,
                }
            })
        };
        let transport = match &config.kind {
            ReceiverKind::Webhook {
                url,
                secrets,
                headers,
            } => Transport::Webhook {
                client: client(url)?,
                signer: Signer::new(secrets, headers).map_err(|source| ReceiverError::Webhook {
                    name: name.clone(),
                    source,
                })?,
            },
            ReceiverKind::Alertmanager {
                url,
                resend,
                labels,
            } => Transport::Alertmanager {
                client: client(&alertmanager::alerts_url(url))?,
                resend: *resend,
                labels: labels.clone(),
            },
        };
        // A seed that differs per process and receiver, so receivers that
        // failed together do not retry in step.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        name.hash(&mut h);
        now_ms().hash(&mut h);
        Ok(Receiver {
            policy: config.policy(),
            transport,
            dead,
            shared: Mutex::new(Shared {
                queue: Queue::new(&name),
                active: ActiveAlerts::default(),
                jitter: SplitMix64::new(h.finish()),
                last_error: None,
            }),
            wake: Notify::new(),
            counters: Counters::default(),
            durable: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            name,
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `webhook` or `alertmanager`.
    pub fn kind(&self) -> &'static str {
        match self.transport {
            Transport::Webhook { .. } => "webhook",
            Transport::Alertmanager { .. } => "alertmanager",
        }
    }

    /// The dead-letter file it writes.
    pub fn dead_letters(&self) -> &Arc<DeadLetters> {
        &self.dead
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `event` behind what is pending and wakes the task. `false`
    /// when an event with its id is already pending (not queued twice).
    pub fn enqueue(&self, event: impl Into<Arc<Event>>) -> bool {
        let queued = self.lock().queue.push(event.into(), now_ms());
        if queued {
            self.wake.notify_one();
        }
        queued
    }

    /// Queues `event` to be sent once checkpoint `checkpoint` is durable
    /// (see [`Receiver::durable`]); `false` when its id is pending already.
    pub fn enqueue_after(&self, event: impl Into<Arc<Event>>, checkpoint: u64) -> bool {
        let queued = self
            .lock()
            .queue
            .push_after(event.into(), now_ms(), checkpoint);
        if queued {
            self.wake.notify_one();
        }
        queued
    }

    /// Checkpoint `checkpoint` is on disk: what it holds may be sent.
    pub fn durable(&self, checkpoint: u64) {
        self.durable.fetch_max(checkpoint, Ordering::Release);
        self.wake.notify_one();
    }

    /// A number that moves whenever the receiver's own work (a delivery,
    /// a dead letter, a refresh) changed what [`Receiver::snapshot`] returns.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// What to checkpoint.
    pub fn snapshot(&self) -> ReceiverState {
        let s = self.lock();
        ReceiverState {
            pending: s.queue.pending().cloned().collect(),
            unwritten: s.queue.unwritten().cloned().collect(),
            replayed: s.queue.replayed().cloned().collect(),
            active: s.active.clone(),
        }
    }

    /// Replaces the queue and firing alerts with a checkpoint's (before
    /// [`spawn`], or at least not while a delivery is in flight: its
    /// answer would then be dropped and the head tried again).
    pub fn restore(&self, state: ReceiverState) {
        {
            let mut s = self.lock();
            s.queue = Queue::restored(&self.name, state.pending, state.unwritten, state.replayed);
            s.active = state.active;
        }
        self.wake.notify_one();
    }

    /// The counters and gauges.
    pub fn stats(&self) -> ReceiverStats {
        let s = self.lock();
        let c = &self.counters;
        ReceiverStats {
            sent: c.sent.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            dead_lettered: s.queue.buried(),
            refreshed: c.refreshed.load(Ordering::Relaxed),
            pending: s.queue.len(),
            firing: s.active.len(),
            last_error: s.last_error.clone(),
        }
    }

    /// Re-enqueues this receiver's dead letters that `select` picks (not
    /// replayed yet, not pending already), with their event ids, as new
    /// notifications (attempts and max age start over). Returns them.
    /// Blocking (reads the file).
    ///
    /// They stay listed until the replay ends (delivered, or dead-lettered
    /// anew); then the task marks them replayed in the file. A crash
    /// before that leaves them listed, to replay again, never lost.
    pub fn replay(&self, select: &Select) -> Result<Vec<DeadLetter>, DeadLetterError> {
        let letters = self.dead.select(&self.name, select)?;
        let mut replayed = Vec::new();
        {
            let mut s = self.lock();
            let now = now_ms();
            for l in letters {
                if s.queue.push_replay(&l, now) {
                    replayed.push(l);
                }
            }
        }
        bump(&self.changes);
        self.wake.notify_one();
        Ok(replayed)
    }

    fn resend(&self) -> Option<Duration> {
        match &self.transport {
            Transport::Alertmanager { resend, .. } => Some(*resend),
            Transport::Webhook { .. } => None,
        }
    }

    async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        // Restored firing alerts are re-posted at once: their last post may
        // be older than the downtime. Later ones a resend after they fire.
        let mut refresh_at: Option<u64> = (!self.lock().active.is_empty()).then(now_ms);
        let mut dead_retry_at = 0u64;
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = std::future::ready(()) => {}
            }
            let now = now_ms();
            let next = {
                let policy = self.policy;
                self.lock().queue.next(now, &policy)
            };
            if now >= dead_retry_at {
                if let Err(e) = self.write_dead().await {
                    tracing::error!(receiver = %self.name, error = %e, "writing dead letters");
                    dead_retry_at = now.saturating_add(ms(DEAD_RETRY));
                }
            }
            let unwritten = {
                let s = self.lock();
                s.queue.unwritten().next().is_some() || s.queue.replayed().next().is_some()
            };
            let mut wake_at = match next {
                // Write-ahead: held until the checkpoint holding it is on
                // disk; `durable` wakes the task.
                Next::Due(head) if head.checkpoint > self.durable.load(Ordering::Acquire) => None,
                Next::Due(head) => {
                    self.attempt(head).await;
                    bump(&self.changes);
                    continue;
                }
                Next::At(at) => Some(at),
                Next::Empty => None,
            };
            if let Some(resend) = self.resend() {
                if self.lock().active.is_empty() {
                    refresh_at = None;
                } else {
                    let at = *refresh_at.get_or_insert(now.saturating_add(ms(resend)));
                    if at <= now {
                        self.refresh(now).await;
                        bump(&self.changes);
                        refresh_at = Some(now_ms().saturating_add(ms(resend)));
                        continue;
                    }
                    wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
                }
            }
            if unwritten {
                wake_at = Some(wake_at.map_or(dead_retry_at, |w| w.min(dead_retry_at)));
            }
            let sleep = wake_at.map_or(MAX_SLEEP, |at| {
                Duration::from_millis(at.saturating_sub(now)).min(MAX_SLEEP)
            });
            tokio::select! {
                () = &mut shutdown => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
        if let Err(e) = self.write_dead().await {
            tracing::error!(receiver = %self.name, error = %e, "writing dead letters at shutdown");
        }
    }

    /// Writes the dead letters and replay markers decided so far, then
    /// forgets them.
    async fn write_dead(&self) -> Result<(), DeadLetterError> {
        let (letters, markers): (Vec<DeadLetter>, Vec<LetterKey>) = {
            let s = self.lock();
            (
                s.queue.unwritten().cloned().collect(),
                s.queue.replayed().cloned().collect(),
            )
        };
        if letters.is_empty() && markers.is_empty() {
            return Ok(());
        }
        let keys: Vec<LetterKey> = letters.iter().map(DeadLetter::key).collect();
        let m = markers.len();
        let dead = self.dead.clone();
        let now = now_ms();
        match tokio::task::spawn_blocking(move || dead.write(&letters, &markers, now)).await {
            Ok(Ok(())) => {
                self.lock().queue.written(&keys, m);
                bump(&self.changes);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(e) => Err(DeadLetterError::Io {
                op: "appending",
                path: self.dead.path().to_owned(),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }

    /// One attempt at the head, then its settlement.
    async fn attempt(&self, head: Pending) {
        let now = now_ms();
        let (outcome, update) = match &self.transport {
            Transport::Webhook { client, signer } => {
                (webhook(client, signer, &head.event, now).await, None)
            }
            Transport::Alertmanager {
                client,
                resend,
                labels,
            } => {
                let shape = Shape {
                    labels,
                    resend: *resend,
                };
                let post = self.lock().active.post(&head.event, &shape, now);
                let outcome = if post.alerts.is_empty() {
                    Outcome::NothingToSend
                } else {
                    match alertmanager::body(&post.alerts) {
                        Ok(body) => outcome_of(client.post(&json_headers(), body.into()).await),
                        Err(e) => Outcome::Unsendable(format!("encoding the alerts: {e}")),
                    }
                };
                (outcome, Some(post.update))
            }
        };
        let id = &head.event.id;
        let settled = {
            let mut s = self.lock();
            let policy = self.policy;
            let Shared { queue, jitter, .. } = &mut *s;
            let settled = queue.settle(id, &outcome, now_ms(), &policy, jitter);
            match settled {
                Settled::Delivered { .. } => {
                    if let Some(update) = update {
                        s.active.apply(update);
                    }
                }
                Settled::Retry { .. } | Settled::DeadLettered => {
                    s.last_error = Some(outcome.describe());
                }
                Settled::Stale => {}
            }
            settled
        };
        match settled {
            Settled::Delivered { attempts } => {
                bump(&self.counters.sent);
                tracing::debug!(receiver = %self.name, %id, attempts, "delivered");
            }
            Settled::Retry { at_ms } => {
                bump(&self.counters.failed);
                bump(&self.counters.retried);
                tracing::debug!(receiver = %self.name, %id, error = %outcome.describe(), in_ms = at_ms.saturating_sub(now), "delivery failed; will retry");
            }
            Settled::DeadLettered => {
                bump(&self.counters.failed);
                tracing::warn!(receiver = %self.name, %id, error = %outcome.describe(), "delivery given up: dead-lettered");
            }
            Settled::Stale => {}
        }
    }

    /// Re-posts every firing alert (Alertmanager); a failure waits for the
    /// next resend.
    async fn refresh(&self, now: u64) {
        let Transport::Alertmanager {
            client,
            resend,
            labels,
        } = &self.transport
        else {
            return;
        };
        let shape = Shape {
            labels,
            resend: *resend,
        };
        let batches = self.lock().active.refresh(&shape, now);
        for batch in batches {
            let outcome = match alertmanager::body(&batch) {
                Ok(body) => outcome_of(client.post(&json_headers(), body.into()).await),
                Err(e) => Outcome::Unsendable(format!("encoding the alerts: {e}")),
            };
            if super::queue::classify(&outcome) == super::queue::Verdict::Delivered {
                bump(&self.counters.refreshed);
            } else {
                bump(&self.counters.failed);
                tracing::warn!(receiver = %self.name, error = %outcome.describe(), "re-posting firing alerts failed");
                self.lock().last_error = Some(outcome.describe());
                break;
            }
        }
    }
}

/// Starts `receiver`'s delivery task; it stops once `stop` turns true
/// (or its sender is gone), after the request in flight (bounded by the
/// timeout), writing the dead letters decided so far.
pub fn spawn(receiver: Arc<Receiver>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(receiver.run(async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    }))
}

/// Why a replay could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No receiver of that name.
    #[error("no receiver named {0:?}")]
    UnknownReceiver(String),
    /// The dead-letter file.
    #[error(transparent)]
    DeadLetters(#[from] DeadLetterError),
}

/// Replays the dead letters with event ids `ids` (every one when empty)
/// of `receiver` (every receiver when `None`): see [`Receiver::replay`].
/// Returns how many were re-enqueued. Blocking (reads the file).
pub fn replay(
    receivers: &[Arc<Receiver>],
    ids: &[String],
    receiver: Option<&str>,
) -> Result<usize, ReplayError> {
    if let Some(name) = receiver {
        if !receivers.iter().any(|r| r.name == name) {
            return Err(ReplayError::UnknownReceiver(name.to_owned()));
        }
    }
    let select = if ids.is_empty() {
        Select::All
    } else {
        Select::Ids(ids.to_vec())
    };
    let mut n = 0;
    for r in receivers
        .iter()
        .filter(|r| receiver.is_none_or(|name| r.name == name))
    {
        n += r.replay(&select)?.len();
    }
    Ok(n)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn json_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(
        USER_AGENT,
        HeaderValue::from_static(crate::probe::USER_AGENT),
    );
    h
}

fn outcome_of(result: Result<super::http::Answer, HttpError>) -> Outcome {
    match result {
        Ok(a) => Outcome::Answered {
            status: a.status,
            retry_after: a.retry_after,
        },
        Err(e) => Outcome::Transport(e.to_string()),
    }
}

/// One signed webhook attempt: this attempt's timestamp and signatures,
/// the event's id.
async fn webhook(client: &HttpClient, signer: &Signer, event: &Event, now_ms: u64) -> Outcome {
    let body = match event.payload() {
        Ok(b) => b,
        Err(e) => return Outcome::Unsendable(format!("encoding the payload: {e}")),
    };
    match signer.headers(&event.id, now_ms / 1000, &body) {
        Ok(headers) => outcome_of(client.post(&headers, body.into()).await),
        Err(e) => Outcome::Unsendable(e.to_string()),
    }
}
