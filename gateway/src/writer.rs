//! The writer: persists every accepted frame, exactly as received, to
//! append-only wire files (WIRE.md 3), off the read path.
//!
//! It runs on its own thread behind an unbounded channel whose depth
//! ingest bounds itself (`reserve` before accepting), so a slow disk turns
//! into 503s for agents, never into waiting readers. Files are named by the
//! gseq of their first frame and their number in this run
//! ([`crate::recover::file_name`]), so that a restarted gateway can give
//! every persisted record its gseq back; rotated by size, and after a
//! failed write (the next frame starts a new file, so the gap shows in the
//! names).
//!
//! Acknowledgement (`[writer] ack`): with `durable` (the default), every
//! frame offered gets a ticket, and the writer, after writing what is
//! queued, fsyncs and publishes how many frames are on disk (group commit:
//! frames that arrive during an fsync share the next one); ingest waits for
//! its ticket before acknowledging. With `queued`, fsync happens at most
//! every `fsync_interval` while there is unsynced data, and ingest does
//! not wait.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use crate::config::{AckAfter, WriterSettings};
use crate::recover::file_name;

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
    /// Frames accepted but not yet written.
    pub queued: AtomicUsize,
    /// Bytes written to files (headers included).
    pub bytes: AtomicU64,
    /// Write or fsync failures.
    pub errors: AtomicU64,
}

/// The ingest side of the writer.
#[derive(Debug)]
pub struct Writer {
    tx: mpsc::Sender<Cmd>,
    capacity: usize,
    ack: AckAfter,
    /// Frames offered so far (tickets are counted from here).
    offered: AtomicU64,
    /// Frames written and, with `durable`, synced.
    durable: watch::Receiver<u64>,
    stats: Arc<WriterStats>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Creates `data_dir` if needed and starts the writer thread.
    pub fn start(settings: WriterSettings) -> io::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir)?;
        let (tx, rx) = mpsc::channel();
        let (durable_tx, durable) = watch::channel(0);
        let stats = Arc::new(WriterStats::default());
        let capacity = settings.queue_frames;
        let files = Files {
            dir: settings.data_dir.clone(),
            index: 0,
            max_bytes: settings.max_file_bytes,
            current: None,
        };
        let thread_stats = stats.clone();
        let policy = Policy {
            fsync_interval: settings.fsync_interval,
            sync_at_once: settings.ack == AckAfter::Durable,
        };
        let thread = std::thread::Builder::new()
            .name("gateway-writer".into())
            .spawn(move || run(rx, files, policy, &thread_stats, &durable_tx))?;
        Ok(Writer {
            tx,
            capacity,
            ack: settings.ack,
            offered: AtomicU64::new(0),
            durable,
            stats,
            thread: Mutex::new(Some(thread)),
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

    /// Writes what is queued, syncs, and stops the thread (blocking).
    /// Frames offered afterwards are refused.
    pub fn stop(&self) {
        let _ = self.tx.send(Cmd::Stop);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

struct Open {
    file: File,
    len: u64,
    dirty: bool,
}

struct Files {
    dir: PathBuf,
    /// The number of the next file this run opens.
    index: u32,
    max_bytes: u64,
    current: Option<Open>,
}

impl Files {
    fn path(dir: &Path, first_gseq: u64, index: u32) -> PathBuf {
        dir.join(file_name(first_gseq, index))
    }

    /// The file to append a frame of `len` bytes whose first gseq is `gseq`
    /// to, rotating past the size limit.
    fn for_append(&mut self, gseq: u64, len: u64, stats: &WriterStats) -> io::Result<&mut Open> {
        let full = self
            .current
            .as_ref()
            .is_some_and(|o| o.len > wire::FILE_HEADER_LEN as u64 && o.len + len > self.max_bytes);
        if full {
            if let Some(mut old) = self.current.take() {
                old.file.flush()?;
                old.file.sync_data()?;
            }
        }
        if self.current.is_none() {
            let path = Files::path(&self.dir, gseq, self.index);
            self.index += 1;
            let mut file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)?;
            file.write_all(&wire::file_header())?;
            stats
                .bytes
                .fetch_add(wire::FILE_HEADER_LEN as u64, Ordering::Relaxed);
            self.current = Some(Open {
                file,
                len: wire::FILE_HEADER_LEN as u64,
                dirty: true,
            });
        }
        self.current
            .as_mut()
            .ok_or_else(|| io::Error::other("no open file"))
    }

    fn sync(&mut self) -> io::Result<()> {
        if let Some(o) = self.current.as_mut().filter(|o| o.dirty) {
            o.file.sync_data()?;
            o.dirty = false;
        }
        Ok(())
    }
}

fn write_frame(files: &mut Files, frame: &Persist, stats: &WriterStats) -> io::Result<()> {
    let open = files.for_append(frame.gseq, frame.bytes.len() as u64, stats)?;
    open.file.write_all(&frame.bytes)?;
    open.len += frame.bytes.len() as u64;
    open.dirty = true;
    stats
        .bytes
        .fetch_add(frame.bytes.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Writes `frames`; a failed frame closes its file, so the next frame
/// starts a new one named by its own gseq (recovery sees the gap).
fn write_frames(files: &mut Files, frames: &[Persist], stats: &WriterStats) -> io::Result<()> {
    let mut result = Ok(());
    for frame in frames {
        if let Err(e) = write_frame(files, frame, stats) {
            files.current = None;
            result = Err(e);
        }
    }
    result
}

/// When the writer thread syncs.
#[derive(Debug, Clone, Copy)]
struct Policy {
    fsync_interval: Duration,
    /// Sync as soon as the queue is drained (`ack = "durable"`).
    sync_at_once: bool,
}

fn run(
    rx: mpsc::Receiver<Cmd>,
    mut files: Files,
    policy: Policy,
    stats: &WriterStats,
    durable: &watch::Sender<u64>,
) {
    let mut last_sync = Instant::now();
    let mut written = 0u64;
    let report = |r: io::Result<()>| {
        if let Err(e) = r {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "gateway writer: write failed");
        }
    };
    let write = |files: &mut Files, frames: Vec<Persist>, written: &mut u64| {
        report(write_frames(files, &frames, stats));
        stats.queued.fetch_sub(frames.len(), Ordering::AcqRel);
        *written += frames.len() as u64;
    };
    loop {
        let wait = policy.fsync_interval.saturating_sub(last_sync.elapsed());
        let mut stop = false;
        match rx.recv_timeout(wait) {
            Ok(Cmd::Frames(frames)) => {
                write(&mut files, frames, &mut written);
                // Group commit: take what queued meanwhile before syncing.
                loop {
                    match rx.try_recv() {
                        Ok(Cmd::Frames(frames)) => write(&mut files, frames, &mut written),
                        Ok(Cmd::Stop) => {
                            stop = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            Ok(Cmd::Stop) | Err(RecvTimeoutError::Disconnected) => stop = true,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if stop {
            while let Ok(Cmd::Frames(frames)) = rx.try_recv() {
                write(&mut files, frames, &mut written);
            }
        }
        let due = last_sync.elapsed() >= policy.fsync_interval;
        if stop || due || (policy.sync_at_once && written > *durable.borrow()) {
            report(files.sync());
            last_sync = Instant::now();
            // Published even after a failed write or sync, so that no agent
            // waits forever; the failure is logged and counted in
            // sonde_gateway_writer_errors_total.
            durable.send_replace(written);
        }
        if stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AckAfter;
    use wire::{FrameBuilder, FrameHeader, FrameReader, ReadItem, Record, Status};

    /// Frame `seq` of agent a, one record, gseq 100 + seq.
    fn frame(seq: u64) -> Persist {
        let mut b = FrameBuilder::new(FrameHeader {
            agent: "a".into(),
            session: 1,
            seq,
        });
        b.push(
            "c",
            Record {
                t_ms: 1,
                rt_ms: 1,
                sc: None,
                st: Status::Up,
                dn_ms: None,
                cn_ms: None,
                tl_ms: None,
                ft_ms: None,
                error: None,
            },
        );
        Persist {
            gseq: 100 + seq,
            bytes: Bytes::from(b.finish().encode().unwrap()),
        }
    }

    #[test]
    fn writes_wire_files_in_order_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let settings = WriterSettings {
            ack: AckAfter::Queued,
            data_dir: dir.path().join("data"),
            max_file_bytes: 200,
            fsync_interval: Duration::from_millis(10),
            queue_frames: 4,
        };
        let w = Writer::start(settings).unwrap();
        let one = frame(0).bytes.len();
        for seq in 0..10 {
            assert!(w.try_send(vec![frame(seq)]).is_some());
            while w.stats().queued.load(Ordering::Acquire) > 2 {
                std::thread::yield_now();
            }
        }
        let stats = w.stats().clone();
        w.stop();
        assert_eq!(stats.queued.load(Ordering::Acquire), 0);
        let mut names: Vec<_> = std::fs::read_dir(dir.path().join("data"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        assert!(names.len() > 1, "rotated: {names:?}");
        assert!(names[0].ends_with(file_name(100, 0)));
        // Each file is named by its first frame's gseq and its number.
        let firsts: Vec<(u64, u32)> = crate::recover::data_files(&dir.path().join("data"))
            .unwrap()
            .iter()
            .map(|f| (f.first_gseq, f.index))
            .collect();
        let mut seqs = Vec::new();
        let mut total = 0;
        for n in &names {
            let bytes = std::fs::read(n).unwrap();
            total += bytes.len();
            assert!(bytes.len() as u64 <= 200 || bytes.len() == 8 + one);
            wire::check_file_header(&bytes).unwrap();
            for item in FrameReader::new(&bytes[8..], 8).at_eof() {
                match item {
                    ReadItem::Frame { frame, .. } => seqs.push(frame.header.seq),
                    ReadItem::Skipped { error, .. } => panic!("{error}"),
                }
            }
        }
        assert_eq!(seqs, (0..10).collect::<Vec<_>>());
        let per_file = firsts[1].0 - firsts[0].0;
        assert!(per_file > 1);
        for (i, (gseq, index)) in firsts.iter().enumerate() {
            assert_eq!((*gseq, *index), (100 + i as u64 * per_file, i as u32));
        }
        assert_eq!(stats.bytes.load(Ordering::Relaxed), total as u64);
    }

    #[test]
    fn refuses_past_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let settings = WriterSettings {
            ack: AckAfter::Durable,
            data_dir: dir.path().to_path_buf(),
            max_file_bytes: 1 << 20,
            fsync_interval: Duration::from_secs(1),
            queue_frames: 2,
        };
        let w = Writer::start(settings).unwrap();
        assert!(w.try_send(vec![frame(0), frame(1), frame(2)]).is_none());
        assert!(w.try_send(vec![frame(0), frame(1)]).is_some());
        w.stop();
    }

    #[test]
    fn durable_tickets_are_published_after_the_write_not_the_interval() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let settings = |ack| WriterSettings {
            ack,
            data_dir: dir.path().join(format!("{ack:?}")),
            max_file_bytes: 1 << 20,
            // Far longer than the test: only group commit can sync in time.
            fsync_interval: Duration::from_secs(3600),
            queue_frames: 64,
        };
        let w = Writer::start(settings(AckAfter::Durable)).unwrap();
        let first = w.try_send(vec![frame(0), frame(1)]).unwrap();
        let second = w.try_send(vec![frame(2)]).unwrap();
        assert_eq!((first, second), (2, 3));
        assert_eq!(
            w.try_send(Vec::new()),
            Some(3),
            "an empty offer waits for all"
        );
        assert!(rt.block_on(w.written(second, Duration::from_secs(10))));
        // On disk before the acknowledgement.
        let files = crate::recover::data_files(&dir.path().join("Durable")).unwrap();
        let bytes = std::fs::read(&files[0].path).unwrap();
        let frames = FrameReader::new(&bytes[8..], 8).at_eof().count();
        assert_eq!(frames, 3);
        // A ticket never offered is not reached.
        assert!(!rt.block_on(w.written(99, Duration::from_millis(50))));
        w.stop();

        let w = Writer::start(settings(AckAfter::Queued)).unwrap();
        let t = w.try_send(vec![frame(0)]).unwrap();
        assert!(rt.block_on(w.written(t, Duration::ZERO)), "queued: at once");
        w.stop();
    }
}
