//! The gateway sink: results streamed to a regional gateway as wire frames
//! (gateway/PROTOCOL.md), through an on-disk spool, so that a gateway
//! outage or a SIGKILL of the agent loses nothing already produced.
//!
//! Two halves. The [`Sink`] half is fast and never waits on the network:
//! each batch becomes one frame, appended to the spool
//! ([`spool`], bookkeeping in [`ledger`]) with its `(session, seq)`, then the
//! sender is woken. The [`sender`] half reads unacknowledged frames in
//! order, POSTs them over one long-lived HTTP/2 connection ([`service`])
//! to one of the configured URLs, and acts on the answer ([`policy`]):
//! acknowledged frames leave the spool, 429/503 wait `Retry-After`,
//! failures back off with full jitter behind a circuit breaker, a bad
//! frame goes to a quarantine, 401/403 are logged loudly and retried
//! slowly. With several URLs (replicas of one region), an unavailable one
//! moves the sender to the next ([`failover`]). When idle a result is sent
//! at once; under load, frames pile up while a request is in flight and
//! the next request carries them all (up to 256 KiB).
//!
//! Metrics use the sink name `gateway` for the gateway named `default`,
//! `gateway.NAME` for the others.

pub(crate) mod failover;
pub(crate) mod ledger;
pub(crate) mod policy;
pub(crate) mod sender;
pub(crate) mod service;
pub(crate) mod spool;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub(crate) use ledger::WhenFull;
use sender::Shared;
use service::Client;
use spool::{Spool, SpoolRecovery};

use super::{Sink, SinkError};
use crate::metrics::{DropReason, Metrics};
use crate::result::CheckResult;
use crate::retry::SplitMix64;

/// How long `close` keeps sending what is still unacknowledged before it
/// leaves the rest in the spool for the next start.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Streams results to a gateway. See the module docs.
pub(crate) struct GatewaySink {
    name: &'static str,
    shared: Arc<Shared>,
    buf: Vec<u8>,
    closing: watch::Sender<Option<Instant>>,
    sender: Option<JoinHandle<()>>,
}

/// The metrics name of the gateway called `name`.
fn sink_name(name: &str) -> &'static str {
    if name == "default" {
        "gateway"
    } else {
        // Once per configured gateway at start: a few bytes, never freed.
        Box::leak(format!("gateway.{name}").into_boxed_str())
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl GatewaySink {
    /// Opens the spool of `config` for `agent_id` (recovering it; blocks on
    /// file I/O) and starts the sender with a client per configured URL.
    /// Must run inside a tokio runtime. Refuses a cleartext URL that is not
    /// loopback (which validation refuses first).
    pub(crate) fn open(
        config: &config::GatewaySink,
        agent_id: &str,
        metrics: Arc<Metrics>,
    ) -> Result<GatewaySink, SinkError> {
        let name = sink_name(&config.name);
        let clients = Client::each(
            &config.urls,
            config.token.expose(),
            config.ca.as_ref(),
            config.system_roots,
        )
        .map_err(|source| SinkError::Gateway {
            name: config.name.clone(),
            source: Box::new(source),
        })?;
        let spool = Spool::open(
            &config.spool_dir,
            agent_id,
            config.spool_max_bytes,
            // The configuration has no choice of policy yet.
            WhenFull::default(),
            epoch_ms(),
        )?;
        let recovery = spool.recovery().clone();
        log_recovery(name, &config.spool_dir, &recovery, &spool);
        metrics.sink_spool(name, spool.bytes(), spool.unacked_frames());
        // `each` returns one client per URL, never none.
        let first = clients.first().map_or("", |c| c.uri());
        tracing::info!(sink = name, gateway = first, urls = clients.len(), spool = %config.spool_dir.display(), session = spool.numbering().session(), next_seq = spool.numbering().next_seq(), unacked_frames = spool.unacked_frames(), "gateway sink open");
        let shared = Arc::new(Shared {
            spool: Mutex::new(spool),
            wake: Notify::new(),
            name,
            metrics,
        });
        let (closing, closing_rx) = watch::channel(None);
        // Reconnect delays are spread per process: seeded from the clock.
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let sender = tokio::spawn(sender::run(
            Arc::clone(&shared),
            clients,
            closing_rx,
            SplitMix64::new(seed),
        ));
        // Anything recovered goes out at once.
        shared.wake.notify_one();
        Ok(GatewaySink {
            name,
            shared,
            buf: Vec::new(),
            closing,
            sender: Some(sender),
        })
    }
}

fn log_recovery(name: &str, dir: &std::path::Path, r: &SpoolRecovery, spool: &Spool) {
    if r.truncated_bytes > 0 {
        tracing::warn!(sink = name, spool = %dir.display(), bytes_removed = r.truncated_bytes, "torn tail cut from the spool");
    }
    if r.unacked_frames > 0 {
        tracing::info!(sink = name, frames = r.unacked_frames, acked = ?spool.acked(), "unacknowledged frames recovered from the spool; resending them in order");
    }
}

impl Sink for GatewaySink {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn write(&mut self, batch: &[Arc<CheckResult>]) -> Result<u64, SinkError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let records = batch.len() as u64;
        let batch = batch.to_vec();
        let buf = std::mem::take(&mut self.buf);
        // Numbered inside the spool's lock, after any reopen.
        let (appended, bytes) = self
            .shared
            .blocking(move |s| {
                let mut buf = buf;
                let a = s.append_results(&batch, &mut buf);
                a.map(|a| (a, buf))
            })
            .await?;
        self.buf = bytes;
        let metrics = &self.shared.metrics;
        for d in &appended.dropped {
            metrics.sink_dropped(self.name, DropReason::SpoolFull, d.records);
            tracing::warn!(sink = self.name, segment = %d.path.display(), frames = d.frames, records = d.records, "spool full: oldest unacknowledged results dropped");
        }
        if appended.refused {
            metrics.sink_dropped(self.name, DropReason::SpoolFull, records);
            tracing::warn!(sink = self.name, records, "spool full: new results dropped");
        }
        self.shared.wake.notify_one();
        Ok(appended.bytes)
    }

    async fn tick(&mut self) -> Result<(), SinkError> {
        self.shared.blocking(|s| s.tick()).await
    }

    async fn close(mut self) -> Result<(), SinkError> {
        let _ = self.closing.send(Some(Instant::now() + CLOSE_GRACE));
        self.shared.wake.notify_one();
        if let Some(sender) = self.sender.take() {
            if let Err(e) = sender.await {
                tracing::error!(sink = self.name, "gateway sender task failed: {e}");
            }
        }
        let name = self.name;
        let left = self
            .shared
            .blocking(|s| s.close().map(|()| s.unacked_frames()))
            .await?;
        if left > 0 {
            tracing::info!(
                sink = name,
                frames = left,
                "unacknowledged frames stay in the spool for the next start"
            );
        }
        Ok(())
    }
}
