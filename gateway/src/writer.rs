//! The writer: persists every accepted frame, exactly as received, to
//! append-only wire files (WIRE.md 3), off the read path.
//!
//! It runs on its own thread behind an unbounded channel whose depth
//! ingest bounds itself (`reserve` before accepting), so a slow disk turns
//! into 503s for agents, never into waiting readers. Files are named by the
//! gseq of their first frame and their number in this run
//! ([`crate::recover::file_name`]), so that a restarted gateway can give
//! every persisted record its gseq back; rotated by size, and after a
//! failed write or fsync. The files themselves (creation, appends, syncs,
//! retention) are the store's ([`store`]); the writer's own part is the
//! queue, gseq naming, what it holds while retrying (the retry rule is the
//! store's [`Heal`]) and when to acknowledge.
//!
//! A failed write or fsync loses nothing: the frames it concerned stay
//! with the writer (still counted against `queue_frames`, so ingest answers
//! 503 once the queue is full and agents keep their spools) and are
//! written again, to a new file, every [`RETRY`] until the disk takes them
//! (a full disk that is cleared, say). Frames written since the last good
//! fsync are kept until the next one succeeds, because after a failed fsync
//! their pages may never reach the disk.
//!
//! Acknowledgement (`[writer] ack`): with `durable` (the default), every
//! frame offered gets a ticket, and the writer, after writing what is
//! queued, fsyncs and publishes how many frames are on disk (group commit:
//! frames that arrive during an fsync share the next one); ingest waits for
//! its ticket before acknowledging. With `queued`, fsync happens at most
//! every `fsync_interval` while there is unsynced data, and ingest does
//! not wait.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use store::{GATEWAY, Heal, Naming, Segment, StoreError, rotation};
use tokio::sync::watch;

use crate::config::{AckAfter, Retention, WriterSettings};

/// How long the writer waits before writing again after a failed write or
/// fsync.
pub const RETRY: Duration = Duration::from_secs(1);

/// How often retention looks at old files besides each new file's start.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// An accepted frame as received, with the gseq of its first record (the
/// next gseq, for a frame without records).
#[derive(Debug, Clone)]
pub struct Persist {
    /// The gseq of the frame's first record.
    pub gseq: u64,
    /// The frame's bytes.
    pub bytes: Bytes,
}

enum Cmd {
    Frames(Vec<Persist>),
    Stop,
}

/// Counters the writer shares with metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Frames accepted but not yet written and fsynced.
    pub queued: AtomicUsize,
    /// Bytes written to files (headers included).
    pub bytes: AtomicU64,
    /// Write or fsync failures.
    pub errors: AtomicU64,
    /// Files deleted by retention.
    pub deleted_files: AtomicU64,
}

/// The ingest side of the writer.
#[derive(Debug)]
pub struct Writer {
    tx: mpsc::Sender<Cmd>,
    capacity: usize,
    ack: AckAfter,
    /// Frames offered so far (tickets are counted from here).
    offered: AtomicU64,
    /// `stop` was called: nothing more is taken.
    stopped: std::sync::atomic::AtomicBool,
    /// Frames written and, with `durable`, synced.
    durable: watch::Receiver<u64>,
    /// Frames written to the files (readable by history), synced or not.
    readable: watch::Receiver<u64>,
    stats: Arc<WriterStats>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Tests: while set, every file the writer starts is /dev/full.
    #[cfg(test)]
    full_disk: Arc<std::sync::atomic::AtomicBool>,
}

impl Writer {
    /// Creates `data_dir` if needed and starts the writer thread.
    pub fn start(settings: WriterSettings) -> io::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir)?;
        // A data_dir just created must survive a power loss too.
        if let Some(parent) = settings.data_dir.parent().filter(|p| p.is_dir()) {
            // Best effort: a parent we may not read is no reason not to start.
            let _ = store::sync_dir(parent);
        }
        let (tx, rx) = mpsc::channel();
        let (durable_tx, durable) = watch::channel(0);
        let (readable_tx, readable) = watch::channel(0);
        let stats = Arc::new(WriterStats::default());
        let capacity = settings.queue_frames;
        #[cfg(test)]
        let full_disk = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let files = Files {
            dir: settings.data_dir.clone(),
            index: 0,
            max_bytes: settings.max_file_bytes,
            current: None,
            unsynced_lost: false,
            durable_at_close: 0,
            retain: settings.retain,
            retention_due: true,
            #[cfg(test)]
            full_disk: full_disk.clone(),
        };
        let thread_stats = stats.clone();
        let policy = Policy {
            fsync_interval: settings.fsync_interval,
            sync_at_once: settings.ack == AckAfter::Durable,
        };
        let thread = std::thread::Builder::new()
            .name("gateway-writer".into())
            .spawn(move || {
                let published = Published {
                    durable: durable_tx,
                    readable: readable_tx,
                };
                run(rx, files, policy, &thread_stats, &published)
            })?;
        Ok(Writer {
            tx,
            capacity,
            ack: settings.ack,
            offered: AtomicU64::new(0),
            stopped: std::sync::atomic::AtomicBool::new(false),
            durable,
            readable,
            stats,
            thread: Mutex::new(Some(thread)),
            #[cfg(test)]
            full_disk,
        })
    }

    /// Counters.
    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }

    /// Queues `frames` if there is room for them all, and returns the
    /// ticket to wait for with [`Writer::written`]; None otherwise (the
    /// caller answers 503 and accepts nothing). Callers serialise their
    /// calls (ingest holds the hub's lock), so tickets follow queue order.
    pub fn try_send(&self, frames: Vec<Persist>) -> Option<u64> {
        let n = frames.len();
        if n == 0 {
            return Some(self.offered.load(Ordering::Acquire));
        }
        if self.stopped.load(Ordering::Acquire) {
            return None;
        }
        let queued = self.stats.queued.load(Ordering::Acquire);
        if queued + n > self.capacity {
            return None;
        }
        self.stats.queued.fetch_add(n, Ordering::AcqRel);
        if self.tx.send(Cmd::Frames(frames)).is_err() {
            self.stats.queued.fetch_sub(n, Ordering::AcqRel);
            return None;
        }
        Some(self.offered.fetch_add(n as u64, Ordering::AcqRel) + n as u64)
    }

    /// With `ack = "durable"`, waits until the frames up to `ticket` are
    /// written and synced, at most `limit`; false if that took longer (or
    /// the writer stopped). With `ack = "queued"`, true at once.
    pub async fn written(&self, ticket: u64, limit: Duration) -> bool {
        if self.ack == AckAfter::Queued {
            return true;
        }
        let mut durable = self.durable.clone();
        matches!(
            tokio::time::timeout(limit, durable.wait_for(|&done| done >= ticket)).await,
            Ok(Ok(_))
        )
    }

    /// The ticket of the frames offered so far: wait for it with
    /// [`Writer::readable`] to read everything accepted until now.
    pub fn offered(&self) -> u64 {
        self.offered.load(Ordering::Acquire)
    }

    /// Waits until the frames up to `ticket` are in the files (written,
    /// synced or not: what history reads), at most `limit`; false if that
    /// took longer (the writer behind or failing, or stopped).
    pub async fn readable(&self, ticket: u64, limit: Duration) -> bool {
        let mut readable = self.readable.clone();
        matches!(
            tokio::time::timeout(limit, readable.wait_for(|&done| done >= ticket)).await,
            Ok(Ok(_))
        )
    }

    /// Writes what is queued, syncs, and stops the thread (blocking).
    /// Frames offered afterwards are refused.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        let _ = self.tx.send(Cmd::Stop);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

struct Files {
    dir: PathBuf,
    /// The number of the next file this run opens.
    index: u32,
    max_bytes: u64,
    /// The file being written, with its key (first gseq, index).
    current: Option<((u64, u64), Segment)>,
    /// A file holding unsynced frames was closed without a good fsync: the
    /// caller must write those frames again.
    unsynced_lost: bool,
    /// Frames that closing a file after a good fsync made durable, not yet
    /// taken by the caller.
    durable_at_close: u64,
    /// What to keep of older files.
    retain: Retention,
    /// A new file was started: apply retention.
    retention_due: bool,
    /// Tests: while set, new files are /dev/full (every write fails with
    /// ENOSPC, as on a full disk).
    #[cfg(test)]
    full_disk: Arc<std::sync::atomic::AtomicBool>,
}

impl Files {
    /// The file to append a frame of `len` bytes whose first gseq is `gseq`
    /// to, rotating past the size limit.
    fn for_append(
        &mut self,
        gseq: u64,
        len: u64,
        stats: &WriterStats,
    ) -> Result<&mut Segment, StoreError> {
        let full = self.current.as_ref().is_some_and(|(_, s)| {
            rotation(
                s.len(),
                s.frames(),
                Duration::ZERO,
                len,
                self.max_bytes,
                Duration::MAX,
            )
            .is_some()
        });
        if full {
            self.close_current()?;
        }
        let current = match self.current.take() {
            Some(current) => current,
            None => {
                let key = (gseq, u64::from(self.index));
                self.index += 1;
                let segment = self.create(key)?;
                stats
                    .bytes
                    .fetch_add(wire::FILE_HEADER_LEN as u64, Ordering::Relaxed);
                self.retention_due = true;
                (key, segment)
            }
        };
        Ok(&mut self.current.insert(current).1)
    }

    /// Creates the file for `key`, its header written (a file whose header
    /// could not be written is removed), and makes its directory entry
    /// durable (a file fsynced into a directory that was not can vanish
    /// with a power loss).
    fn create(&self, key: (u64, u64)) -> Result<Segment, StoreError> {
        #[cfg(test)]
        if self.full_disk.load(Ordering::Acquire) {
            let mut full = Segment::open_raw(std::path::Path::new("/dev/full"))?;
            full.append(&wire::file_header(), 0)?;
            return Ok(full);
        }
        let segment = Segment::create(&self.dir.join(GATEWAY.name(key)))?;
        store::sync_dir(&self.dir)?;
        Ok(segment)
    }

    /// Fsyncs the current file if it holds unsynced data, and returns how
    /// many frames that made durable. On failure the file is closed (its
    /// unsynced pages may be gone) and the unsynced frames are marked lost.
    fn sync(&mut self) -> Result<u64, StoreError> {
        let Some((_, s)) = self.current.as_mut() else {
            return Ok(0);
        };
        s.sync().inspect_err(|_| {
            self.current = None;
            self.unsynced_lost = true;
        })
    }

    /// Closes the current file, fsynced first if it holds unsynced data.
    fn close_current(&mut self) -> Result<(), StoreError> {
        let result = self.sync();
        self.current = None;
        self.durable_at_close += result.as_ref().map_or(0, |n| *n);
        result.map(drop)
    }

    /// Deletes the oldest finished files past the retention bounds.
    fn apply_retention(&mut self, stats: &WriterStats) {
        self.retention_due = false;
        let (active, active_len) = match &self.current {
            Some((key, s)) => (Some(*key), s.len()),
            None => (None, 0),
        };
        let now = std::time::SystemTime::now();
        let retained = match store::retain(
            &self.dir,
            &GATEWAY,
            active,
            active_len,
            self.retain,
            now,
        ) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, dir = %self.dir.display(), "gateway writer: retention could not list the data directory");
                return;
            }
        };
        for d in &retained.deleted {
            stats.deleted_files.fetch_add(1, Ordering::Relaxed);
            tracing::info!(file = %d.path.display(), bytes = d.len, "gateway writer: retention deleted a wire file");
        }
        if let Some(e) = &retained.unsynced {
            tracing::warn!(error = %e.io(), dir = %e.path().display(), "gateway writer: retention deleted files but could not sync the directory");
        }
        for e in &retained.failed {
            tracing::warn!(error = %e.io(), file = %e.path().display(), "gateway writer: retention could not delete a wire file");
        }
    }
}

fn write_frame(files: &mut Files, frame: &Persist, stats: &WriterStats) -> Result<(), StoreError> {
    let segment = files.for_append(frame.gseq, frame.bytes.len() as u64, stats)?;
    segment.append(&frame.bytes, 1)?;
    stats
        .bytes
        .fetch_add(frame.bytes.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Writes frames from the front of `pending` into `unsynced` (written,
/// awaiting fsync) until one fails. A failed frame closes its file (cut
/// back to its last whole frame where the disk allows) and stays at the
/// front of `pending`, so the next attempt starts a new file named by its
/// own gseq. Whenever a file is closed after a good fsync (rotation, or
/// the close after a failure), the frames it made durable leave
/// `unsynced` for the count in `durable_now`, so that a later failure
/// never writes them twice.
fn write_pending(
    files: &mut Files,
    pending: &mut VecDeque<Persist>,
    unsynced: &mut Vec<Persist>,
    durable_now: &mut usize,
    stats: &WriterStats,
) -> Result<(), StoreError> {
    let mut settle = |files: &mut Files, unsynced: &mut Vec<Persist>| {
        let n = take_durable(std::mem::take(&mut files.durable_at_close), unsynced);
        *durable_now += n;
    };
    while let Some(frame) = pending.front() {
        let written = write_frame(files, frame, stats);
        // A rotation before this frame closed the previous file.
        settle(files, unsynced);
        if let Err(e) = written {
            // What this file holds before the torn frame is kept if it syncs.
            let _ = files.close_current();
            settle(files, unsynced);
            return Err(e);
        }
        if let Some(frame) = pending.pop_front() {
            unsynced.push(frame);
        }
    }
    Ok(())
}

/// Takes the first `n` frames, now durable, out of `unsynced` (the oldest
/// written); returns how many that was.
fn take_durable(n: u64, unsynced: &mut Vec<Persist>) -> usize {
    let n = usize::try_from(n).map_or(unsynced.len(), |n| n.min(unsynced.len()));
    unsynced.drain(..n);
    n
}

/// When the writer thread syncs.
#[derive(Debug, Clone, Copy)]
struct Policy {
    fsync_interval: Duration,
    /// Sync as soon as the queue is drained (`ack = "durable"`).
    sync_at_once: bool,
}

/// What the writer thread tells the rest: frames durable, frames readable.
struct Published {
    durable: watch::Sender<u64>,
    readable: watch::Sender<u64>,
}

fn run(
    rx: mpsc::Receiver<Cmd>,
    mut files: Files,
    policy: Policy,
    stats: &WriterStats,
    published: &Published,
) {
    let durable = &published.durable;
    let mut last_sync = Instant::now();
    let mut last_retention = Instant::now();
    // Frames on disk, fsynced: what `durable` publishes.
    let mut synced = 0u64;
    // Taken from the channel, not yet written (or failed and waiting).
    let mut pending: VecDeque<Persist> = VecDeque::new();
    // Written since the last good fsync, kept in case the next one fails.
    let mut unsynced: Vec<Persist> = Vec::new();
    // After a failure: not before this instant.
    let mut retry_at: Option<Instant> = None;
    // The store's hold-and-retry rule, here a fixed delay.
    let mut heal = Heal::new(RETRY, RETRY);
    let mut stopping = false;
    // Stopping, and the one more try after a failure has been made.
    let mut last_try = false;
    // `n` more frames are on disk and fsynced: publish them.
    let commit = |n: usize, synced: &mut u64| {
        if n > 0 {
            *synced += n as u64;
            stats.queued.fetch_sub(n, Ordering::AcqRel);
            durable.send_replace(*synced);
        }
    };
    let fail = |what: &str, e: StoreError, waiting: usize| {
        stats.errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            error = %e,
            frames_waiting = waiting,
            "gateway writer: {what} failed; the frames are kept and written again in {RETRY:?}"
        );
    };
    loop {
        // Wake for a retry, else for an fsync that is due, else at least
        // for retention.
        let wait = match retry_at {
            Some(at) => at.saturating_duration_since(Instant::now()),
            None if unsynced.is_empty() => RETENTION_EVERY,
            None => policy.fsync_interval.saturating_sub(last_sync.elapsed()),
        }
        .min(RETENTION_EVERY);
        if !stopping {
            match rx.recv_timeout(wait) {
                Ok(Cmd::Frames(frames)) => pending.extend(frames),
                Ok(Cmd::Stop) | Err(RecvTimeoutError::Disconnected) => stopping = true,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        // Group commit: take what queued meanwhile before syncing.
        loop {
            match rx.try_recv() {
                Ok(Cmd::Frames(frames)) => pending.extend(frames),
                Ok(Cmd::Stop) => stopping = true,
                Err(_) => break,
            }
        }
        if retry_at.is_some_and(|at| Instant::now() < at) && !stopping {
            continue;
        }
        retry_at = None;
        let mut durable_now = 0;
        let written = write_pending(
            &mut files,
            &mut pending,
            &mut unsynced,
            &mut durable_now,
            stats,
        );
        commit(durable_now, &mut synced);
        // Written, synced or not: history may read them (never goes back,
        // also when a failed file's frames are queued to be written again:
        // they were read once and history serves a frame once).
        let on_disk = synced + unsynced.len() as u64;
        published.readable.send_if_modified(|n| {
            let grew = on_disk > *n;
            *n = (*n).max(on_disk);
            grew
        });
        if let Err(e) = written {
            fail("write", e, pending.len() + unsynced.len());
            retry_at = Some(Instant::now() + heal.failed().retry_in);
        }
        let due = last_sync.elapsed() >= policy.fsync_interval;
        let waited_for = policy.sync_at_once && !unsynced.is_empty();
        if !files.unsynced_lost && !unsynced.is_empty() && (stopping || due || waited_for) {
            match files.sync() {
                Ok(n) => {
                    files.durable_at_close = 0;
                    commit(take_durable(n, &mut unsynced), &mut synced);
                }
                Err(e) => {
                    fail("fsync", e, pending.len() + unsynced.len());
                    // One failure per round: the write may have failed too.
                    if retry_at.is_none() {
                        retry_at = Some(Instant::now() + heal.failed().retry_in);
                    }
                }
            }
            last_sync = Instant::now();
        } else if due {
            last_sync = Instant::now();
        }
        if retry_at.is_none()
            && let Some(healed) = heal.succeeded()
        {
            tracing::info!(
                failures = healed.failures,
                "gateway writer: writing again; the frames it kept are written, acknowledged once fsynced"
            );
        }
        if files.retention_due || last_retention.elapsed() >= RETENTION_EVERY {
            files.apply_retention(stats);
            last_retention = Instant::now();
        }
        if files.unsynced_lost {
            // A file closed without a good fsync: its unsynced pages may
            // never reach the disk, so its frames go to a new file.
            files.unsynced_lost = false;
            for frame in unsynced.drain(..).rev() {
                pending.push_front(frame);
            }
        }
        if stopping {
            if pending.is_empty() && unsynced.is_empty() {
                return;
            }
            if retry_at.is_some() {
                if last_try {
                    // The failure is already counted by `fail`.
                    tracing::error!(
                        frames = pending.len() + unsynced.len(),
                        "gateway writer: stopping with frames the disk did not take"
                    );
                    return;
                }
                // One more pass of the loop at stop, then give up: with
                // `durable`, none of these were acknowledged, and the agents
                // still hold them.
                last_try = true;
                std::thread::sleep(RETRY);
            }
        }
    }
}

#[cfg(test)]
mod tests;
