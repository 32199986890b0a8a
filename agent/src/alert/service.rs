//! The alerter as a process: one task owns the rule engine, the cursors
//! and the silences; gateway sources feed it, receivers' queues take what
//! it decides, and once a second (when anything changed) it writes the
//! whole state as one checkpoint. A crash returns to the last checkpoint:
//! the gateways replay what came after it (`since`), the engine decides
//! the same events again with the same ids, and what was delivered twice
//! is what the id lets a receiver deduplicate.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use super::checkpoint::{Checkpoint, CheckpointError};
use super::config::AlertConfig;
use super::deliver::{self, DeadLetters, Receiver, ReceiverState};
use super::event::{Event, now_ms};
use super::rules::{Engine, EngineState, Glob, Silence, Summary};
use super::source::{self, SourceConfig, SourceEvent, SourceStats};

/// How often the clock rules (no data, silences, flapping) are evaluated
/// and the checkpoint is written when something changed.
pub const TICK: Duration = Duration::from_secs(1);
/// Events from all sources wait here; a full queue holds the sources back.
const SOURCE_QUEUE: usize = 256;
/// Runtime silences kept at most.
pub const MAX_SILENCES: usize = 1024;
/// The dead-letter file in the state directory.
pub const DEAD_LETTERS: &str = "dead-letters.jsonl";

/// Why the alerter could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The state directory could not be created.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The checkpoint could not be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The listener could not be bound.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A gateway or receiver cannot be used as configured.
    #[error("{0}")]
    Setup(String),
}

impl AlertError {
    /// The exit status: every error of `run` happens at start-up, before
    /// anything ran (2).
    pub fn exit_code(&self) -> u8 {
        2
    }
}

/// A silence added at run time (`sonde alert silence add`), as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceSpec {
    /// Its id (`s-` and a number).
    pub id: String,
    /// Check globs.
    pub checks: Vec<String>,
    /// Region globs; empty for every region.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Start, epoch milliseconds.
    pub start_ms: u64,
    /// End, epoch milliseconds.
    pub end_ms: u64,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

impl SilenceSpec {
    fn silence(&self) -> Silence {
        Silence {
            id: self.id.clone(),
            checks: self.checks.iter().map(Glob::new).collect(),
            regions: self.regions.iter().map(Glob::new).collect(),
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            comment: self.comment.clone(),
        }
    }
}

/// Everything the checkpoint holds.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    /// Random, made with the state directory: part of every event id.
    epoch: String,
    /// Per gateway name: the last gseq whose record the engine has seen.
    cursors: BTreeMap<String, u64>,
    engine: EngineState,
    receivers: BTreeMap<String, ReceiverState>,
    silences: Vec<SilenceSpec>,
    next_silence: u64,
}

/// What the admin API asks of the running alerter.
#[derive(Debug)]
pub enum Command {
    /// Adds a silence; answers its id.
    AddSilence(SilenceSpec, oneshot::Sender<Result<String, String>>),
    /// Removes a runtime silence by id; answers whether it existed.
    RemoveSilence(String, oneshot::Sender<bool>),
    /// Lists the silences: the file's and the runtime's.
    ListSilences(oneshot::Sender<Vec<SilenceSpec>>),
    /// Puts dead letters back in their receivers' queues (all when `ids`
    /// is empty); answers how many.
    Replay {
        /// Event ids; empty for all.
        ids: Vec<String>,
        /// Only this receiver's.
        receiver: Option<String>,
        /// The answer.
        reply: oneshot::Sender<Result<usize, String>>,
    },
}

/// Figures the metrics endpoint reads.
#[derive(Debug, Default)]
pub struct Shared {
    /// The engine's counts, as of the last tick.
    pub summary: Mutex<Summary>,
    /// Records the engine has evaluated.
    pub records: AtomicU64,
    /// Nanoseconds spent evaluating them (observe only).
    pub eval_nanos: AtomicU64,
    /// Events decided, by kind.
    pub events: Mutex<BTreeMap<&'static str, u64>>,
    /// Gaps notified.
    pub gaps: AtomicU64,
    /// Checkpoints written, and failures.
    pub checkpoints: AtomicU64,
    /// Failed checkpoint writes.
    pub checkpoint_failures: AtomicU64,
    /// The last checkpoint write failed.
    pub checkpoint_failing: AtomicBool,
    /// Bytes of the last checkpoint.
    pub checkpoint_bytes: AtomicU64,
    /// Epoch ms of the last tick of the main loop.
    pub last_tick_ms: AtomicU64,
}

/// The running alerter's parts, for the API.
pub struct Handles {
    /// Figures.
    pub shared: Arc<Shared>,
    /// Per gateway: its name and stream figures.
    pub sources: Vec<(String, Arc<SourceStats>)>,
    /// The receivers.
    pub receivers: Vec<Arc<Receiver>>,
    /// Commands to the main loop.
    pub commands: mpsc::Sender<Command>,
    /// The dead-letter list.
    pub dead_letters: Arc<DeadLetters>,
}

/// A random epoch: 16 bytes of the kernel's randomness as hex.
fn new_epoch() -> String {
    let mut bytes = [0u8; 16];
    // ring's SystemRandom reads getrandom(2).
    let rng = ring::rand::SystemRandom::new();
    if ring::rand::SecureRandom::fill(&rng, &mut bytes).is_err() {
        // No randomness: the clock and pid still make it unique enough
        // not to collide with an earlier state directory's epoch.
        let n = now_ms() ^ (u64::from(std::process::id()) << 40);
        bytes[..8].copy_from_slice(&n.to_be_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The state directory's lock file, held while the alerter runs: two
/// alerters on one directory would overwrite each other's checkpoints.
pub const LOCK: &str = "lock";

/// Takes `dir`'s lock (flock, released when the process ends, even by
/// SIGKILL), or says that another alerter holds it.
fn lock(dir: &std::path::Path) -> Result<nix::fcntl::Flock<std::fs::File>, AlertError> {
    let path = dir.join(LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| AlertError::Setup(format!("opening {}: {e}", path.display())))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        AlertError::Setup(match e {
            nix::errno::Errno::EWOULDBLOCK => format!(
                "{} is in use by another `sonde alert` (its lock {} is held); \
                 give each alerter its own state_dir",
                dir.display(),
                path.display()
            ),
            e => format!("locking {}: {e}", path.display()),
        })
    })
}

/// Runs the alerter until `shutdown` resolves. `ready` is called with the
/// handles once it listens (the CLI prints its address).
pub async fn run(
    cfg: AlertConfig,
    shutdown: impl Future<Output = ()>,
    ready: impl FnOnce(&Handles, std::net::SocketAddr),
) -> Result<(), AlertError> {
    store::create_dir(&cfg.state_dir)?;
    let _lock = lock(&cfg.state_dir)?;
    let checkpoint = Checkpoint::new(&cfg.state_dir);
    let (found, warning) = checkpoint.load::<State>()?;
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    let mut state = match found {
        Some(state) => state,
        None => {
            let state = State {
                epoch: new_epoch(),
                cursors: BTreeMap::new(),
                engine: EngineState::default(),
                receivers: BTreeMap::new(),
                silences: Vec::new(),
                next_silence: 1,
            };
            // The epoch is in every event id: it is on disk before any
            // event is decided, or a restart would give them new ids.
            let cp = checkpoint.clone();
            let bytes = super::checkpoint::encode(&state)?;
            tokio::task::spawn_blocking(move || cp.save_encoded(&bytes))
                .await
                .map_err(|e| AlertError::Setup(format!("writing the first checkpoint: {e}")))??;
            tracing::info!(dir = %cfg.state_dir.display(), "new state directory");
            state
        }
    };
    let engine = Engine::restore(
        cfg.rules.clone(),
        state.epoch.clone(),
        std::mem::take(&mut state.engine),
    );
    let dead_letters = Arc::new(DeadLetters::new(cfg.state_dir.join(DEAD_LETTERS)));
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut receivers = Vec::new();
    let mut deliveries = Vec::new();
    let mut tasks = Vec::new();
    for rc in &cfg.receivers {
        let r = Receiver::new(rc.clone(), Arc::clone(&dead_letters))
            .map_err(|e| AlertError::Setup(format!("receiver {:?}: {e}", rc.name)))?;
        if let Some(s) = state.receivers.remove(&rc.name) {
            r.restore(s);
        }
        let r = Arc::new(r);
        deliveries.push(deliver::spawn(Arc::clone(&r), stop_rx.clone()));
        receivers.push(r);
    }
    for name in state.receivers.keys() {
        tracing::warn!(
            receiver = %name,
            "the checkpoint holds notifications for a receiver no longer configured; they are dropped"
        );
    }

    let (events_tx, mut events_rx) = mpsc::channel::<(usize, SourceEvent)>(SOURCE_QUEUE);
    let mut sources = Vec::new();
    for (i, g) in cfg.gateways.iter().enumerate() {
        let (tx, mut rx) = mpsc::channel::<SourceEvent>(16);
        let sc = SourceConfig {
            name: g.name.clone(),
            url: g.url.clone(),
            token: g.token.expose().clone(),
            ca_file: g.ca_file.clone(),
        };
        let since = state.cursors.get(&g.name).copied();
        let (task, stats) = source::spawn(sc, since, tx, stop_rx.clone())
            .map_err(|e| AlertError::Setup(format!("gateway {:?}: {e}", g.name)))?;
        tasks.push(task);
        let fwd = events_tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                if fwd.send((i, ev)).await.is_err() {
                    break;
                }
            }
        }));
        sources.push((g.name.clone(), stats));
    }
    drop(events_tx);

    let shared = Arc::new(Shared::default());
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(16);
    let handles = Arc::new(Handles {
        shared: Arc::clone(&shared),
        sources,
        receivers: receivers.clone(),
        commands: cmd_tx,
        dead_letters: Arc::clone(&dead_letters),
    });
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| AlertError::Listen {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| AlertError::Listen {
        addr: cfg.listen,
        source,
    })?;
    {
        let handles = Arc::clone(&handles);
        let mut stop = stop_rx.clone();
        let token = cfg.admin_token.as_ref().map(|t| t.expose().clone());
        let loopback = cfg.listen.ip().is_loopback();
        tasks.push(tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            super::api::serve(listener, handles, token, loopback, stopped).await;
        }));
    }
    ready(&handles, addr);

    let mut alerter = Alerter {
        regions: vec![None; cfg.gateways.len()],
        live: vec![false; cfg.gateways.len()],
        silences: Vec::new(),
        runtime: state.silences,
        next_silence: state.next_silence,
        cursors: state.cursors,
        epoch: state.epoch,
        engine,
        receivers,
        shared: Arc::clone(&shared),
        checkpoint,
        dirty: true,
        urgent: false,
        ticked: true,
        next_checkpoint: 1,
        receiver_changes: 0,
        out: Vec::new(),
        cfg,
    };
    alerter.merge_silences();
    tracing::info!(
        gateways = alerter.cfg.gateways.len(),
        receivers = alerter.receivers.len(),
        %addr,
        "alerter started"
    );

    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The checkpoint being written, and its number.
    let mut writing: Option<(u64, tokio::task::JoinHandle<Result<usize, CheckpointError>>)> = None;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = async {
                match writing.as_mut() {
                    Some((_, w)) => w.await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some((number, _)) = writing.take() {
                    alerter.written(number, r);
                }
            }
            Some(cmd) = cmd_rx.recv() => alerter.command(cmd),
            ev = events_rx.recv() => match ev {
                Some((gw, ev)) => alerter.source_event(gw, ev),
                None => break,
            },
            _ = tick.tick() => alerter.tick(now_ms()),
        }
        // Notifications wait for the checkpoint that holds them, so one
        // is written as soon as any is queued; otherwise once a tick.
        let due = alerter.urgent || (alerter.dirty && alerter.ticked);
        if due && writing.is_none() {
            alerter.ticked = false;
            if let Some((number, bytes)) = alerter.encode() {
                let cp = alerter.checkpoint.clone();
                writing = Some((
                    number,
                    tokio::task::spawn_blocking(move || cp.save_encoded(&bytes)),
                ));
            }
        }
    }
    let _ = stop_tx.send(true);
    if let Some((number, w)) = writing.take() {
        let r = w.await;
        alerter.written(number, r);
    }
    // Deliveries in flight finish (each within its receiver's timeout), so
    // the last checkpoint records them.
    let wait = alerter
        .cfg
        .receivers
        .iter()
        .map(|r| r.timeout)
        .max()
        .unwrap_or_default()
        + Duration::from_secs(2);
    let _ = tokio::time::timeout(wait, futures_util::future::join_all(deliveries)).await;
    // The last word: what was decided and where the cursors stand.
    if let Some((number, bytes)) = alerter.encode() {
        let cp = alerter.checkpoint.clone();
        let r = tokio::task::spawn_blocking(move || cp.save_encoded(&bytes)).await;
        alerter.written(number, r);
    }
    for t in tasks {
        t.abort();
    }
    tracing::info!("alerter stopped");
    Ok(())
}

/// The main loop's state.
struct Alerter {
    cfg: AlertConfig,
    epoch: String,
    engine: Engine,
    cursors: BTreeMap<String, u64>,
    /// Per gateway: the region its `hello` named.
    regions: Vec<Option<String>>,
    /// Per gateway: its stream is connected.
    live: Vec<bool>,
    receivers: Vec<Arc<Receiver>>,
    /// The file's silences and the runtime's, as the engine takes them.
    silences: Vec<Silence>,
    runtime: Vec<SilenceSpec>,
    next_silence: u64,
    shared: Arc<Shared>,
    checkpoint: Checkpoint,
    /// Something changed since the last checkpoint was taken.
    dirty: bool,
    /// Notifications are waiting for a checkpoint.
    urgent: bool,
    /// A tick passed since the last checkpoint was taken.
    ticked: bool,
    /// The number the next checkpoint will have (notifications queued now
    /// are sent once it is durable).
    next_checkpoint: u64,
    /// The receivers' [`Receiver::changes`] summed, as of the last checkpoint.
    receiver_changes: u64,
    out: Vec<Event>,
}

impl Alerter {
    fn merge_silences(&mut self) {
        self.silences = self.cfg.silences.clone();
        self.silences
            .extend(self.runtime.iter().map(SilenceSpec::silence));
    }

    fn source_event(&mut self, gw: usize, ev: SourceEvent) {
        let name = self.cfg.gateways[gw].name.clone();
        match ev {
            SourceEvent::Connected { gateway, region } => {
                tracing::info!(gateway = %name, server = %gateway, %region, "reading the gateway's stream");
                let taken = self
                    .regions
                    .iter()
                    .enumerate()
                    .any(|(j, r)| j != gw && r.as_deref() == Some(region.as_str()));
                let region = if taken {
                    // Two gateways' gseqs cannot be compared per location.
                    tracing::error!(
                        gateway = %name,
                        %region,
                        "another [[gateway]] already reads this region; its records count as region {name:?}"
                    );
                    name.clone()
                } else {
                    region
                };
                self.regions[gw] = Some(region);
                // Not live until the backlog is in: no data is not judged
                // on a region whose replay has not arrived yet.
                self.live[gw] = false;
            }
            SourceEvent::CaughtUp => self.live[gw] = true,
            SourceEvent::CatchingUp => self.live[gw] = false,
            SourceEvent::Disconnected { error } => {
                tracing::warn!(gateway = %name, "stream lost: {error}");
                self.live[gw] = false;
            }
            SourceEvent::Records(batch) => {
                let region = self.regions[gw].clone().unwrap_or_else(|| name.clone());
                let now = now_ms();
                let started = tokio::time::Instant::now();
                if batch.renumbered {
                    // Another gateway's gseqs (since_ahead): what this
                    // region's locations remember of gseqs means nothing now.
                    self.engine.forget_gseqs(&region);
                }
                for r in &batch.records {
                    self.engine.observe(
                        &region,
                        &r.agent,
                        &r.check,
                        r.gseq,
                        &r.record,
                        now,
                        &self.silences,
                        &mut self.out,
                    );
                }
                let nanos = started.elapsed().as_nanos() as u64;
                self.shared
                    .records
                    .fetch_add(batch.records.len() as u64, Ordering::Relaxed);
                self.shared.eval_nanos.fetch_add(nanos, Ordering::Relaxed);
                // The source's cursor after the batch: a snapshot's gseq
                // is above its states', and a renumbered one starts over.
                if self.cursors.insert(name, batch.last) != Some(batch.last) {
                    self.dirty = true;
                }
                self.route();
            }
            SourceEvent::Gap {
                from,
                to,
                reason,
                renumbered,
            } => {
                let region = self.regions[gw].clone().unwrap_or_else(|| name.clone());
                if renumbered {
                    // The cursor moves into another gateway's numbering in
                    // this same step (one checkpoint never has one without
                    // the other).
                    self.engine.forget_gseqs(&region);
                }
                tracing::warn!(gateway = %name, from, to, "records missed for good: {reason}");
                let ev = self.engine.gap(&name, &region, from, to, now_ms());
                self.shared.gaps.fetch_add(1, Ordering::Relaxed);
                self.out.push(ev);
                self.cursors.insert(name, to);
                self.dirty = true;
                self.route();
            }
        }
    }

    fn tick(&mut self, now: u64) {
        self.shared.last_tick_ms.store(now, Ordering::Relaxed);
        self.ticked = true;
        let changes: u64 = self.receivers.iter().map(|r| r.changes()).sum();
        if changes != self.receiver_changes {
            self.dirty = true;
        }
        let before = self.runtime.len();
        self.runtime.retain(|s| s.end_ms > now);
        if self.runtime.len() != before {
            self.merge_silences();
            self.dirty = true;
        }
        let live_regions: Vec<String> = self
            .regions
            .iter()
            .zip(&self.live)
            .filter(|(_, live)| **live)
            .filter_map(|(r, _)| r.clone())
            .collect();
        let live = |region: &str| live_regions.iter().any(|r| r == region);
        self.engine.tick(now, &live, &self.silences, &mut self.out);
        self.route();
        *self
            .shared
            .summary
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = self.engine.summary();
    }

    /// Sends what the engine decided to the receivers its check routes to.
    fn route(&mut self) {
        if self.out.is_empty() {
            return;
        }
        self.dirty = true;
        let mut counts = self
            .shared
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for mut ev in self.out.drain(..) {
            *counts.entry(ev.kind.type_name()).or_default() += 1;
            ev.link = link(&self.cfg, &self.regions, &ev);
            let rule = self.cfg.rules.rule_index(&ev.check);
            let to = self.cfg.routes.receivers(rule, self.receivers.len());
            tracing::info!(
                event = %ev.id,
                kind = ev.kind.type_name(),
                check = %ev.check,
                incident = ev.incident,
                receivers = to.len(),
                "notifying"
            );
            for i in to {
                if let Some(r) = self.receivers.get(i) {
                    r.enqueue_after(ev.clone(), self.next_checkpoint);
                    self.urgent = true;
                }
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::AddSilence(mut spec, reply) => {
                let answer = if self.runtime.len() >= MAX_SILENCES {
                    Err(format!("at most {MAX_SILENCES} silences at a time"))
                } else {
                    spec.id = format!("s-{}", self.next_silence);
                    self.next_silence += 1;
                    let id = spec.id.clone();
                    tracing::info!(silence = %id, checks = ?spec.checks, "silence added");
                    self.runtime.push(spec);
                    self.merge_silences();
                    self.dirty = true;
                    Ok(id)
                };
                let _ = reply.send(answer);
            }
            Command::RemoveSilence(id, reply) => {
                let before = self.runtime.len();
                self.runtime.retain(|s| s.id != id);
                let removed = self.runtime.len() != before;
                if removed {
                    tracing::info!(silence = %id, "silence removed");
                    self.merge_silences();
                    self.dirty = true;
                }
                let _ = reply.send(removed);
            }
            Command::ListSilences(reply) => {
                let mut all: Vec<SilenceSpec> = self
                    .cfg
                    .silences
                    .iter()
                    .map(|s| SilenceSpec {
                        id: s.id.clone(),
                        checks: s.checks.iter().map(|g| g.as_str().to_owned()).collect(),
                        regions: s.regions.iter().map(|g| g.as_str().to_owned()).collect(),
                        start_ms: s.start_ms,
                        end_ms: s.end_ms,
                        comment: s.comment.clone(),
                    })
                    .collect();
                all.extend(self.runtime.iter().cloned());
                let _ = reply.send(all);
            }
            Command::Replay {
                ids,
                receiver,
                reply,
            } => {
                // Reads the dead-letter file: off the loop. The receivers
                // count the change, so the next tick checkpoints it.
                let receivers = self.receivers.clone();
                tokio::task::spawn_blocking(move || {
                    let answer = deliver::replay(&receivers, &ids, receiver.as_deref())
                        .map_err(|e| e.to_string());
                    let _ = reply.send(answer);
                });
            }
        }
    }

    /// The next checkpoint's number and bytes, taken now (the state at
    /// one instant); `None` if it cannot be encoded (logged).
    fn encode(&mut self) -> Option<(u64, Vec<u8>)> {
        #[derive(Serialize)]
        struct StateRef<'a> {
            epoch: &'a str,
            cursors: &'a BTreeMap<String, u64>,
            engine: &'a EngineState,
            receivers: BTreeMap<String, ReceiverState>,
            silences: &'a [SilenceSpec],
            next_silence: u64,
        }
        let changes: u64 = self.receivers.iter().map(|r| r.changes()).sum();
        let bytes = super::checkpoint::encode(&StateRef {
            epoch: &self.epoch,
            cursors: &self.cursors,
            engine: self.engine.state(),
            receivers: self
                .receivers
                .iter()
                .map(|r| (r.name().to_owned(), r.snapshot()))
                .collect(),
            silences: &self.runtime,
            next_silence: self.next_silence,
        });
        match bytes {
            Ok(bytes) => {
                let number = self.next_checkpoint;
                self.next_checkpoint += 1;
                self.dirty = false;
                self.urgent = false;
                self.receiver_changes = changes;
                Some((number, bytes))
            }
            Err(e) => {
                tracing::error!("encoding the checkpoint: {e}");
                None
            }
        }
    }

    fn written(
        &mut self,
        number: u64,
        r: Result<Result<usize, CheckpointError>, tokio::task::JoinError>,
    ) {
        let s = &self.shared;
        match r {
            Ok(Ok(bytes)) => {
                for receiver in &self.receivers {
                    receiver.durable(number);
                }
                s.checkpoints.fetch_add(1, Ordering::Relaxed);
                s.checkpoint_bytes.store(bytes as u64, Ordering::Relaxed);
                if s.checkpoint_failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("checkpoint written again");
                }
            }
            Ok(Err(e)) => {
                s.checkpoint_failures.fetch_add(1, Ordering::Relaxed);
                if !s.checkpoint_failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "writing the checkpoint: {e}; retrying every second \
                         (notifications wait for it)"
                    );
                }
                self.dirty = true;
            }
            Err(e) => {
                tracing::error!("checkpoint writer: {e}");
                self.dirty = true;
            }
        }
    }
}

/// The live page's link for an event: the first down (else first) location.
fn link(cfg: &AlertConfig, regions: &[Option<String>], ev: &Event) -> Option<String> {
    let loc = ev
        .locations
        .iter()
        .find(|l| l.state == super::event::LocationState::Down)
        .or(ev.locations.first())?;
    let gw = regions
        .iter()
        .position(|r| r.as_deref() == Some(loc.region.as_str()))?;
    let base = cfg.gateways[gw].page_url.as_ref()?;
    let enc = |s: &str| -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    Some(format!(
        "{base}#check={}/{}/{}",
        enc(&loc.region),
        enc(&loc.agent),
        enc(&ev.check)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_alerter_per_state_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let held = lock(tmp.path()).unwrap();
        let e = lock(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("in use by another `sonde alert`"), "{e}");
        drop(held);
        assert!(lock(tmp.path()).is_ok(), "released with its holder");
    }
}
