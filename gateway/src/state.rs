//! What the handlers and the readers share: the config, the tokens and
//! identity providers, the hub behind its lock, the writer, the counters
//! and the shutdown signal.
//!
//! One home for `App` so that `server` (routes, accept loop) and `reader`
//! (feeds and their transports) both depend on it and not on each other.
//! No HTTP here, and no policy: the handlers decide what to do with it.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::auth::Tokens;
use crate::config::GatewayConfig;
use crate::history::index::Index;
use crate::hub::Hub;
use crate::ingest::RateLimiter;
use crate::jetstream::Log;
use crate::metrics::{Gauges, Metrics};
use crate::oidc::Verifier;
use crate::writer::Writer;

/// The longest a reader waits for this replica to reach its `since`.
const SINCE_WAIT: Duration = Duration::from_secs(3);

/// Everything the handlers share.
pub struct App {
    pub(crate) cfg: GatewayConfig,
    pub(crate) tokens: Tokens,
    pub(crate) oidc: Verifier,
    hub: Mutex<Hub>,
    pub(crate) writer: Writer,
    /// `[jetstream]`: the region's stream, which ingest publishes to and
    /// the hub is read from; `None`: the wire files are the log.
    pub(crate) log: Option<Arc<Log>>,
    /// What `/v1/history` knows of the wire files (locked by one query at a time).
    history: Mutex<Index>,
    pub(crate) metrics: Metrics,
    pub(crate) rate: Mutex<RateLimiter>,
    stopping: watch::Receiver<bool>,
}

impl App {
    /// The shared state of a gateway serving `cfg` from `hub` (already
    /// recovered) and `writer` (started); `stopping` turns true at shutdown.
    pub(crate) fn new(
        cfg: GatewayConfig,
        hub: Hub,
        writer: Writer,
        log: Option<Arc<Log>>,
        stopping: watch::Receiver<bool>,
    ) -> App {
        App {
            tokens: Tokens::from_config(&cfg),
            oidc: Verifier::new(&cfg.oidc),
            hub: Mutex::new(hub),
            writer,
            log,
            history: Mutex::new(Index::default()),
            metrics: Metrics::default(),
            rate: Mutex::new(RateLimiter::default()),
            stopping,
            cfg,
        }
    }

    /// The hub, locked. A panic elsewhere cannot leave it half-updated in
    /// a way that matters more than stopping service would, so poisoning
    /// is ignored.
    pub(crate) fn hub(&self) -> MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The history index, locked by each query only while it is refreshed
    /// and asked ([`crate::history::page`]).
    pub(crate) fn history_index(&self) -> &Mutex<Index> {
        &self.history
    }

    /// With `[jetstream]`, waits (briefly) until this replica's hub holds
    /// `since`: a reader moving from another replica may be a few
    /// messages ahead of this one's follower, and would otherwise be told
    /// `since_ahead`.
    pub(crate) async fn catch_up_to(&self, since: Option<u64>) {
        if let (Some(log), Some(since)) = (&self.log, since) {
            log.reached(since, SINCE_WAIT).await;
        }
    }

    /// Resolves when the gateway starts shutting down.
    pub(crate) fn stopping(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.stopping.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// Whether shutdown has begun.
    pub(crate) fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Which gateway this is and where its ring stands (PROTOCOL.md 3.7),
    /// as of `gseq` and `ring`: what every stream opens with and every
    /// poll, checks and history answer carries.
    pub(crate) fn hello(
        &self,
        gseq: u64,
        ring: Option<crate::message::RingBounds>,
    ) -> crate::message::Hello<'_> {
        crate::message::Hello {
            gateway: &self.cfg.identity.name,
            region: self.cfg.identity.region.as_deref(),
            gseq,
            ring,
        }
    }

    /// The gauges of `/metrics`, read now.
    pub(crate) fn gauges(&self) -> Gauges {
        let hub = self.hub();
        let w = self.writer.stats();
        Gauges {
            ring_records: hub.ring_records(),
            ring_bytes: hub.memory_bytes(),
            checks: hub.checks(),
            writer_bytes: w.bytes.load(Ordering::Relaxed),
            writer_queue: w.queued.load(Ordering::Relaxed),
            writer_errors: w.errors.load(Ordering::Relaxed),
            writer_deleted_files: w.deleted_files.load(Ordering::Relaxed),
        }
    }
}
