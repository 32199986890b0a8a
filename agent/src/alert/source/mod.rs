//! One gateway's stream for the alerter: a task that follows
//! `GET /v1/stream` with `since`, heals every range a `reset` names from
//! `/v1/history`, reconnects with backoff, and hands the consumer
//! [`SourceEvent`]s in gseq order through a bounded channel (it waits
//! when the consumer is slow). It knows nothing of rules or receivers.
//!
//! - `sse`: the event stream format; `message`: the JSON messages and
//!   records; `tracker`: what each message means given `last` (all pure).
//! - `http`: the HTTP/2 connection; `run`: the task around them.

mod http;
mod message;
mod run;
mod sse;
#[cfg(test)]
mod tests;
mod tracker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::retry::SplitMix64;
use crate::tls::TlsConfigError;

/// Which gateway to read, and as whom.
#[derive(Clone)]
pub struct SourceConfig {
    /// A label for logs and metrics.
    pub name: String,
    /// The gateway's base URL (`https://gw-eu.example.com`, or `http://`
    /// to a loopback address); a path is kept as a prefix (`/v1/stream`
    /// is appended to it).
    pub url: url::Url,
    /// The reader token, sent as `Authorization: Bearer`.
    pub token: String,
    /// PEM certificates to trust instead of the system roots (https only).
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .field("token", &"<redacted>")
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Why a source cannot start: its configuration.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The URL: not http(s), no host, cleartext off loopback.
    #[error("{0}")]
    Url(String),
    /// `ca_file` beside an `http` URL.
    #[error("gateway URL {0}: ca_file needs an https URL")]
    CaOverCleartext(String),
    /// The CA file, or the TLS configuration.
    #[error("gateway TLS: {0}")]
    Tls(#[from] TlsConfigError),
    /// The token cannot be an HTTP header value.
    #[error("gateway reader token: not a valid HTTP header value (control characters?)")]
    Token,
}

/// A record as the gateway numbered it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    /// Its gseq on that gateway.
    pub gseq: u64,
    /// The agent id.
    pub agent: String,
    /// The check.
    pub check: String,
    /// The record.
    pub record: wire::Record,
}

/// Records in gseq order, and where the stream stands after them.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// In strictly increasing gseq; possibly empty (the cursor moved over
    /// records outside the reader's scope, or an empty snapshot).
    pub records: Vec<SourceRecord>,
    /// These are a snapshot's states, one per (agent, check), not every
    /// record: the starting point of a first start, or after `since_ahead`.
    pub from_snapshot: bool,
    /// The gseqs start over here (the snapshot after `since_ahead`, of
    /// another numbering than the cursor's): forget the gseqs held for
    /// this gateway (the `Gap` with `renumbered` before it said so
    /// already). Always with `from_snapshot`.
    pub renumbered: bool,
    /// The cursor after this batch: the `since` to resume with. For a
    /// snapshot it is the snapshot's gseq, above its states'.
    pub last: u64,
}

/// What a source tells its consumer, in order.
///
/// Each connection goes `Connected`, then its backlog (the snapshot of a
/// first start, or what was missed: replay, heals, gaps), then
/// `CaughtUp`, then live records; a `lagged` reset turns it back with
/// `CatchingUp` before its heal, and the stream ends. Only between
/// `CaughtUp` and the next `CatchingUp`, `Connected` or `Disconnected`
/// is the stream live: before, the records are old news and a location
/// not heard from may just not have been handed over yet, so that is
/// no time to judge "no data".
#[derive(Debug, Clone, PartialEq)]
pub enum SourceEvent {
    /// A stream opened (its `hello`): not yet caught up. What comes
    /// before the connection's `CaughtUp` is its backlog.
    Connected {
        /// The gateway's name (`hello.gateway`).
        gateway: String,
        /// Its region (`hello.region`), or its name when it has none.
        region: String,
    },
    /// Records, from the stream, from history, or a snapshot's states.
    Records(Batch),
    /// A range that neither the stream nor history could give back, to
    /// notify; the cursor is `to` after it. A range whose history could
    /// not be read (an error status, a body that is no page, the
    /// connection broken five times in a row at the same place) is one.
    /// After `since_ahead` it is `0..=G` of the new numbering, with
    /// `renumbered`, and a renumbered snapshot follows. History answering
    /// with fewer records than the range held (scope, retention deleted a
    /// file) is not detectable and is no gap.
    Gap {
        /// First gseq missed, inclusive.
        from: u64,
        /// Last gseq missed, inclusive.
        to: u64,
        /// Why, for people.
        reason: String,
        /// The gseqs start over here (`since_ahead`: `to` is of another
        /// numbering than the cursor's): forget the gseqs held for this
        /// gateway at this same step as the cursor moves to `to`, so that
        /// a checkpoint between this and the renumbered snapshot that
        /// follows never pairs the new cursor with the old gseqs.
        renumbered: bool,
    },
    /// The connection's backlog has been handed over: every record up to
    /// the gateway's newest gseq as of its `hello` (or a gap for it), so
    /// what follows is live. Once per connection, after the `Connected`:
    /// after the snapshot of a first start (or of `since_ahead`), else
    /// once the replay or heals reach `hello.gseq` (right after the
    /// snapshot when the snapshot shows that nothing in the reader's
    /// scope lies between `since` and it: `since` was the newest, or a
    /// restarted gateway whose newest gseq is no record). Not sent by a
    /// connection that ends first, nor after a `lagged` reset.
    CaughtUp,
    /// A `lagged` reset came after `CaughtUp`: the gateway dropped this
    /// reader, a heal of what it missed follows and the stream ends. Not
    /// live again until the next connection's `CaughtUp`.
    CatchingUp,
    /// The stream was lost; once per outage, however many reconnects fail.
    Disconnected {
        /// The first failure.
        error: String,
    },
}

/// Counters for metrics, updated by the source's task.
#[derive(Debug, Default)]
pub struct SourceStats {
    connected: AtomicBool,
    reconnects: AtomicU64,
    records: AtomicU64,
    last_gseq: AtomicU64,
    newest_end_ms: AtomicU64,
    gaps: AtomicU64,
    heals: AtomicU64,
}

impl SourceStats {
    /// Whether a stream is open (its `hello` came).
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Connections attempted after the first.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Records handed to the consumer (snapshot states and healed ones
    /// included).
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// The cursor the consumer was last given (0 before any).
    pub fn last_gseq(&self) -> u64 {
        self.last_gseq.load(Ordering::Relaxed)
    }

    /// The newest probe end (`t + rt`, epoch ms) handed over: stream lag
    /// is the clock minus this.
    pub fn newest_end_ms(&self) -> u64 {
        self.newest_end_ms.load(Ordering::Relaxed)
    }

    /// Gaps reported.
    pub fn gaps(&self) -> u64 {
        self.gaps.load(Ordering::Relaxed)
    }

    /// Ranges healed from history (attempted).
    pub fn heals(&self) -> u64 {
        self.heals.load(Ordering::Relaxed)
    }
}

/// Starts reading `cfg`'s gateway after `since` (none: from its
/// snapshot) on the current tokio runtime, sending events to `tx` (a
/// bounded channel: the source waits while it is full). The task ends
/// when `shutdown` turns true (or its sender is dropped) or `tx`'s
/// receiver is dropped. Fails only on the configuration (URL, CA file,
/// token); everything after that is retried. The stats are the task's
/// counters, for metrics.
pub fn spawn(
    cfg: SourceConfig,
    since: Option<u64>,
    tx: mpsc::Sender<SourceEvent>,
    shutdown: watch::Receiver<bool>,
) -> Result<(JoinHandle<()>, Arc<SourceStats>), SourceError> {
    let client = http::Client::new(&cfg)?;
    let stats = Arc::new(SourceStats::default());
    if let Some(since) = since {
        stats.last_gseq.store(since, Ordering::Relaxed);
    }
    // Reconnect delays are spread per process and per source.
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(32)
        ^ cfg
            .name
            .bytes()
            .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
    let run = run::Run {
        name: cfg.name,
        client,
        tracker: tracker::Tracker::new(since),
        tx,
        stats: Arc::clone(&stats),
        rng: SplitMix64::new(seed),
        attempt: 0,
        down_reported: false,
        heal_failures: tracker::HealFailures::default(),
    };
    Ok((tokio::spawn(run::run(run, shutdown)), stats))
}
