//! Gateway restart: rebuilds the hub from the writer's wire files, so that a
//! restarted gateway keeps deduplicating agents' resends, serves the same
//! current state, and lets a reader resume from the gseq it last saw.
//!
//! Each wire file is named by the gseq of its first frame (PROTOCOL.md 9;
//! naming, listing and reading are the store's, [`store`]);
//! within a file, frames follow in acceptance order and their records have
//! consecutive gseqs, so every persisted record gets back the gseq it had.
//! Where that chain cannot be trusted (a damaged frame in the middle of a
//! file, a file whose name does not continue its predecessor, a clock that
//! went back), the replay ring is emptied rather than served with a hole:
//! a reader from before that point gets `reset`, never a silent gap.
//!
//! When a recovered batch was accepted is not stored; it is taken as the
//! end of its newest probe (`t + rt`), which is when the agent could first
//! send it. Batches older than the ring's age never enter the ring.
//!
//! A high-water mark is not restored from a frame that ingest would have
//! refused when it was accepted (a session beyond the skew bound, an
//! implausible seq: accepted by an older gateway), judged against its
//! file's mtime, an upper bound on when each frame in it was accepted; nor
//! from a frame persisted before an operator reset that agent's mark
//! ([`crate::admin`]). Current state is not restored for a name outside
//! the grammar or a check past the agent's cap. All are reported.
//!
//! [`recover_until`] runs the recovery on a thread of its own, logs its
//! [`Progress`] and gives up when the gateway is told to stop meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use store::{GATEWAY, Naming, StoreError};
use wire::{Frame, ReadItem};

use crate::admin::{before_reset, read_resets};
use crate::hub::{Hub, StateSkip};
use crate::ingest::{check_sequence, epoch_ms, shown_name};

/// A wire file of the writer, by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DataFile {
    /// The gseq its first frame got (the next gseq, for a frame without records).
    pub first_gseq: u64,
    /// Its number within the gateway run that wrote it (0 for a run's first).
    pub index: u32,
    /// Where it is.
    pub path: PathBuf,
}

/// The writer's name for a file: `gateway-<first gseq, 20 digits>-<index, 6 digits>.sonde`
/// (the store's [`store::GATEWAY`] scheme).
pub fn file_name(first_gseq: u64, index: u32) -> String {
    GATEWAY.name((first_gseq, u64::from(index)))
}

/// The writer's files in `dir`, in the order they were written.
pub fn data_files(dir: &Path) -> std::io::Result<Vec<DataFile>> {
    let listed = store::list(dir, &GATEWAY).map_err(StoreError::into_io)?;
    Ok(listed
        .into_iter()
        .filter_map(|((first_gseq, index), path)| {
            Some(DataFile {
                first_gseq,
                index: u32::try_from(index).ok()?,
                path,
            })
        })
        .collect())
}

/// What recovery found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Files read.
    pub files: usize,
    /// Frames recovered (high-water marks restored from each).
    pub frames: u64,
    /// Records with their gseq restored to the current state.
    pub records: u64,
    /// Damaged regions skipped (torn tails included), and unreadable files.
    pub damaged: u64,
    /// Times the replay ring had to be emptied because the gseq chain broke.
    pub ring_breaks: u64,
    /// Frames whose mark was not restored: refused by ingest's rules at
    /// their acceptance, or persisted before an operator reset their
    /// agent's mark.
    pub marks_skipped: u64,
    /// Records left out of the current state: a name outside the grammar,
    /// or a check past its agent's `max_checks`.
    pub state_skipped: u64,
    /// The next gseq after every recovered record (0 when nothing was).
    pub next_gseq: u64,
    /// Damage in the wire files, each naming its file and offset.
    pub problems: Vec<String>,
    /// Lines of the reset log that could not be read, by file and line.
    pub reset_log: Vec<String>,
    /// What was not restored (marks, current state), one line per agent
    /// and reason with the count and the first example.
    pub skipped: Vec<String>,
}

/// How far a recovery has got, shared with whoever watches it; and the
/// request to stop, which the recovery obeys between frames.
#[derive(Debug, Default)]
pub struct Progress {
    files_done: AtomicU64,
    files_total: AtomicU64,
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
    stop: AtomicBool,
}

impl Progress {
    /// Asks the recovery to stop at the next frame.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Files read and to read, bytes read and to read.
    pub fn snapshot(&self) -> [u64; 4] {
        [
            &self.files_done,
            &self.files_total,
            &self.bytes_done,
            &self.bytes_total,
        ]
        .map(|n| n.load(Ordering::Relaxed))
    }
}

/// The state of a recovery in progress, one file after another.
struct Replay<'h> {
    progress: &'h Progress,
    hub: &'h mut Hub,
    now: Instant,
    wall_ms: u64,
    max_age: Duration,
    /// The gseq the next record of the chain gets; None when unknown.
    next: Option<u64>,
    /// The first gseq of the file being read, by its name.
    file_first_gseq: u64,
    /// The mtime of the file being read, epoch ms: no frame in it was
    /// accepted later, so ingest's rules are applied as of then.
    file_written_ms: u64,
    /// Each agent's last mark reset (`before_gseq`).
    resets: HashMap<String, u64>,
    /// Marks not restored, by agent and reason: how many, the first one.
    skipped: BTreeMap<(String, &'static str), (u64, String)>,
    /// Records kept out of the state, by agent and reason: how many, the
    /// first check.
    state_skipped: BTreeMap<(String, StateSkip), (u64, String)>,
    report: Recovery,
}

impl Replay<'_> {
    /// Starts `file`: continues the chain, or breaks the ring if the name
    /// says records are missing (or gseqs would go back).
    fn open(&mut self, file: &DataFile) {
        let continues = match self.next {
            Some(next) if file.index > 0 => file.first_gseq == next,
            Some(next) => file.first_gseq >= next,
            None => false,
        };
        if !continues && self.hub.ring_records() > 0 {
            self.break_ring();
        }
        self.next = Some(file.first_gseq);
        self.file_first_gseq = file.first_gseq;
    }

    fn break_ring(&mut self) {
        self.hub.clear_ring();
        self.report.ring_breaks += 1;
    }

    /// When the batch was (about) accepted: the end of its newest probe.
    fn accepted_at(&self, frame: &Frame) -> Option<Instant> {
        let end = frame
            .records()
            .map(|(_, r)| r.t_ms.saturating_add(r.rt_ms))
            .max()?;
        let age = Duration::from_millis(self.wall_ms.saturating_sub(end));
        if age > self.max_age {
            return None;
        }
        Some(self.now.checked_sub(age).unwrap_or(self.now))
    }

    /// Restores the mark of `frame` (at `offset` in `path`) unless today's
    /// rules refuse it or it predates its agent's last reset; skipped marks
    /// are reported once per agent and reason, with the first example.
    fn mark(&mut self, frame: &Frame, path: &Path, offset: u64) {
        let h = &frame.header;
        let skew = self.hub.agent_limits().max_session_skew;
        let accepted_by_ms = self.file_written_ms;
        let (reason, example) = match check_sequence(h.session, h.seq, accepted_by_ms, skew, offset)
        {
            Err(refused) => (refused.code(), refused.to_string()),
            Ok(()) => match self.resets.get(&h.agent) {
                Some(&before)
                    if before_reset(
                        self.next,
                        frame.record_count(),
                        self.file_first_gseq,
                        before,
                    ) =>
                {
                    ("reset", format!("persisted before gseq {before}"))
                }
                _ => return self.hub.restore_mark(&h.agent, (h.session, h.seq)),
            },
        };
        self.report.marks_skipped += 1;
        let slot = self
            .skipped
            .entry((h.agent.clone(), reason))
            .or_insert_with(|| {
                (
                    0,
                    format!("{}: ({}, {}): {example}", path.display(), h.session, h.seq),
                )
            });
        slot.0 += 1;
    }

    /// One line per agent and reason of what was not restored.
    fn report_skipped(&mut self) {
        for ((agent, reason), (count, first)) in std::mem::take(&mut self.skipped) {
            let why = match reason {
                "reset" => "persisted before an operator reset the agent's mark",
                _ => "refused by ingest's rules as of their file's last write",
            };
            self.report.skipped.push(format!(
                "agent {}: {count} frames' marks not restored, {why} ({reason}; first: {first})",
                shown_name(&agent)
            ));
        }
        for ((agent, skip), (count, first)) in std::mem::take(&mut self.state_skipped) {
            let why = match skip {
                StateSkip::BadName => "a name outside the grammar",
                StateSkip::OverCap => "past the agent's max_checks",
            };
            self.report.skipped.push(format!(
                "agent {}: {count} records not restored to the current state, {why} ({}; first check: {first})",
                shown_name(&agent),
                skip.code()
            ));
        }
    }

    fn frame(&mut self, frame: &Frame) {
        self.report.frames += 1;
        let Some(gseq) = self.next else {
            return;
        };
        let in_ring = self.accepted_at(frame);
        let n = frame.record_count() as u64;
        for (skip, check) in self.hub.restore(frame, gseq, in_ring) {
            self.report.state_skipped += 1;
            let slot = self
                .state_skipped
                .entry((frame.header.agent.clone(), skip))
                .or_insert_with(|| (0, shown_name(&check)));
            slot.0 += 1;
        }
        self.report.records += n;
        self.next = Some(gseq + n);
        self.report.next_gseq = gseq + n;
    }

    fn damaged(&mut self, what: String) {
        self.report.damaged += 1;
        self.report.problems.push(what);
        // The damaged bytes may have held records: the gseqs after them in
        // this file are unknown.
        self.next = None;
    }

    fn file(&mut self, file: &DataFile) {
        self.report.files += 1;
        let bytes = match store::read(&file.path) {
            Ok(b) => b,
            Err(e) => {
                self.damaged(e.to_string());
                return;
            }
        };
        // Fall back to the wall clock if the mtime cannot be read.
        self.file_written_ms = std::fs::metadata(&file.path)
            .and_then(|m| m.modified())
            .map_or(self.wall_ms, epoch_ms);
        if let Err(e) = wire::check_file_header(&bytes) {
            self.damaged(format!("{}: {e}", file.path.display()));
            return;
        }
        self.open(file);
        let done_before = self.progress.bytes_done.load(Ordering::Relaxed);
        for item in store::body(&bytes) {
            if self.progress.stopped() {
                return;
            }
            let (ReadItem::Frame { offset, len, .. } | ReadItem::Skipped { offset, len, .. }) =
                &item;
            let read = done_before + offset + *len as u64;
            self.progress.bytes_done.store(read, Ordering::Relaxed);
            match item {
                ReadItem::Frame { frame, offset, .. } => {
                    if self.next.is_none() && self.hub.ring_records() > 0 {
                        self.break_ring();
                    }
                    self.mark(&frame, &file.path, offset);
                    self.frame(&frame);
                }
                ReadItem::Skipped { offset, len, error } => self.damaged(format!(
                    "{}: {len} bytes at offset {offset} skipped: {error}",
                    file.path.display()
                )),
            }
            self.hub.evict(self.now);
        }
    }
}

/// Restores `hub` from the writer's files in `dir`: high-water marks from
/// every frame (but those of the module docs; judged by the hub's
/// [`crate::config::AgentLimits`] against each file's mtime), current
/// state (within the same limits) and gseqs
/// from every record whose gseq is known, and the replay ring from those
/// accepted within the ring's age (`max_age`, judged against `wall`, the
/// wall clock at `now`). Reports into `progress`, and returns early (with
/// what it did) when asked to stop.
pub fn recover(
    hub: &mut Hub,
    dir: &Path,
    max_age: Duration,
    now: Instant,
    wall: SystemTime,
    progress: &Progress,
) -> std::io::Result<Recovery> {
    let files = data_files(dir)?;
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| std::fs::metadata(&f.path).map_or(0, |m| m.len()))
        .collect();
    progress
        .files_total
        .store(files.len() as u64, Ordering::Relaxed);
    progress
        .bytes_total
        .store(sizes.iter().sum(), Ordering::Relaxed);
    let wall_ms = wall
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let (resets, unreadable) = read_resets(dir)?;
    let mut replay = Replay {
        progress,
        hub,
        now,
        wall_ms,
        max_age,
        next: None,
        file_first_gseq: 0,
        file_written_ms: wall_ms,
        resets,
        skipped: BTreeMap::new(),
        state_skipped: BTreeMap::new(),
        report: Recovery::default(),
    };
    replay.report.reset_log = unreadable;
    let mut done = 0;
    for (file, size) in files.iter().zip(sizes) {
        if progress.stopped() {
            break;
        }
        replay.file(file);
        done += size;
        progress.files_done.fetch_add(1, Ordering::Relaxed);
        progress.bytes_done.store(done, Ordering::Relaxed);
    }
    replay.report_skipped();
    Ok(replay.report)
}

/// How often a running recovery logs how far it has got.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// How long a recovery told to stop gets to notice (a read it is blocked
/// in is not interrupted; the thread is then left behind).
const STOP_WAIT: Duration = Duration::from_secs(1);

/// Runs [`recover`] on a thread of its own, logging progress every
/// [`PROGRESS_EVERY`], until it is done (the hub and what it found) or
/// `shutdown` resolves first (`None`: the caller should not serve).
pub async fn recover_until<F>(
    mut hub: Hub,
    dir: &Path,
    max_age: Duration,
    mut shutdown: Pin<&mut F>,
) -> std::io::Result<Option<(Hub, Recovery)>>
where
    F: Future<Output = ()>,
{
    let progress = Arc::new(Progress::default());
    let (done_tx, mut done) = tokio::sync::oneshot::channel();
    let dir_owned = dir.to_owned();
    let watched = progress.clone();
    std::thread::Builder::new()
        .name("sonde-recovery".into())
        .spawn(move || {
            let found = recover(
                &mut hub,
                &dir_owned,
                max_age,
                Instant::now(),
                SystemTime::now(),
                &watched,
            );
            let _ = done_tx.send(found.map(|r| (hub, r)));
        })?;
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    loop {
        tokio::select! {
            found = &mut done => {
                return match found {
                    Ok(found) => found.map(Some),
                    Err(_) => Err(std::io::Error::other("the recovery thread panicked")),
                };
            }
            () = shutdown.as_mut() => {
                progress.stop();
                let _ = tokio::time::timeout(STOP_WAIT, &mut done).await;
                let [files_done, files, bytes_done, bytes] = progress.snapshot();
                tracing::info!(files_done, files, bytes_done, bytes, "gateway stopped during recovery; not serving");
                return Ok(None);
            }
            _ = tick.tick() => {
                let [files_done, files, bytes_done, bytes] = progress.snapshot();
                tracing::info!(files_done, files, bytes_done, bytes, dir = %dir.display(), "gateway recovery in progress");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RingLimits;
    use wire::{FrameBuilder, FrameHeader, Record};

    const NOW_MS: u64 = 1_767_225_600_000;

    fn rec(t: u64) -> Record {
        Record::up(t, 5).with_sc(200)
    }

    /// A frame of `agent` with one record per check, probed at `t`.
    fn frame(agent: &str, seq: u64, checks: &[&str], t: u64) -> Vec<u8> {
        frame_in(agent, 3, seq, checks, t)
    }

    /// [`frame`] in `session`.
    fn frame_in(agent: &str, session: u64, seq: u64, checks: &[&str], t: u64) -> Vec<u8> {
        let mut b = FrameBuilder::new(FrameHeader {
            agent: agent.into(),
            session,
            seq,
        });
        for c in checks {
            b.push(c, rec(t));
        }
        b.finish().encode().unwrap()
    }

    /// A wire file as the writer leaves it, last written at `NOW_MS`.
    fn write(dir: &Path, first_gseq: u64, index: u32, frames: &[Vec<u8>]) -> PathBuf {
        write_at(dir, first_gseq, index, frames, NOW_MS)
    }

    /// [`write`], last written at `written_ms`.
    fn write_at(
        dir: &Path,
        first_gseq: u64,
        index: u32,
        frames: &[Vec<u8>],
        written_ms: u64,
    ) -> PathBuf {
        let path = dir.join(file_name(first_gseq, index));
        let mut bytes = wire::file_header().to_vec();
        for f in frames {
            bytes.extend_from_slice(f);
        }
        std::fs::write(&path, bytes).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(UNIX_EPOCH + Duration::from_millis(written_ms))
            .unwrap();
        path
    }

    fn hub() -> Hub {
        let limits = RingLimits {
            max_age: Duration::from_secs(300),
            max_records: 1000,
        };
        Hub::new(limits, 16, (NOW_MS + 10) * 1000)
    }

    fn recover_into(h: &mut Hub, dir: &Path) -> Recovery {
        recover_at(h, dir, NOW_MS)
    }

    /// [`recover_into`] with the wall clock at `wall_ms`; checks that the
    /// progress reached every file and byte.
    fn recover_at(h: &mut Hub, dir: &Path, wall_ms: u64) -> Recovery {
        let wall = UNIX_EPOCH + Duration::from_millis(wall_ms);
        let progress = Progress::default();
        let r = recover(
            h,
            dir,
            Duration::from_secs(300),
            Instant::now(),
            wall,
            &progress,
        )
        .unwrap();
        let [files_done, files, bytes_done, bytes] = progress.snapshot();
        assert_eq!((files_done, bytes_done), (files, bytes));
        r
    }

    /// gseqs of the records a reader resuming after `since` gets.
    fn missed(h: &Hub, since: u64) -> Option<Vec<u64>> {
        let s = h.subscribe(Some(since));
        if s.reset.is_some() {
            return None;
        }
        Some(
            s.missed
                .iter()
                .flat_map(|b| b.with_gseq().map(|(g, _, _)| g).collect::<Vec<_>>())
                .filter(|g| *g > since)
                .collect(),
        )
    }

    #[test]
    fn data_files_come_in_writing_order() {
        // Parsing names is the store's (`store::GATEWAY`, tested there).
        assert_eq!(
            file_name(1_767_225_600_000_000, 2),
            "gateway-00001767225600000000-000002.sonde"
        );
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 2000, 0, &[]);
        write(dir.path(), 1000, 1, &[]);
        write(dir.path(), 1000, 0, &[]);
        std::fs::write(dir.path().join("other.sonde"), b"x").unwrap();
        let order: Vec<(u64, u32)> = data_files(dir.path())
            .unwrap()
            .iter()
            .map(|f| (f.first_gseq, f.index))
            .collect();
        assert_eq!(order, vec![(1000, 0), (1000, 1), (2000, 0)]);
        assert!(data_files(&dir.path().join("absent")).unwrap().is_empty());
    }

    #[test]
    fn restores_gseqs_marks_state_and_ring_across_files_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let t = NOW_MS - 60_000;
        // Run 1: gseqs 1000.. in two files (rotation), run 2 from 5000.
        write(
            dir.path(),
            1000,
            0,
            &[frame("a", 0, &["x", "y"], t), frame("b", 0, &["x"], t)],
        );
        write(dir.path(), 1003, 1, &[frame("a", 1, &["x", "y"], t + 1)]);
        write(dir.path(), 5000, 0, &[frame("a", 2, &["x"], t + 2)]);
        let mut h = hub();
        let r = recover_into(&mut h, dir.path());
        assert_eq!((r.files, r.frames, r.records, r.damaged), (3, 4, 6, 0));
        assert_eq!((r.ring_breaks, r.next_gseq), (0, 5001));
        assert!(h.head() >= (NOW_MS + 10) * 1000 - 1, "new gseqs come after");
        assert_eq!(h.checks(), 3);
        // A reader that saw gseq 1001 before the restart gets the rest.
        assert_eq!(missed(&h, 1001), Some(vec![1002, 1003, 1004, 5000]));
        assert_eq!(
            missed(&h, 999),
            Some(vec![1000, 1001, 1002, 1003, 1004, 5000])
        );
        // Resends are duplicates; the next frame is new.
        let plan_a = h.classify_keys("a", [(3, 2), (3, 3)]).new;
        assert_eq!(plan_a, vec![false, true]);
        assert_eq!(h.classify_keys("b", [(3, 0)]).new, vec![false]);
    }

    #[test]
    fn old_batches_stay_out_of_the_ring_but_keep_marks_and_state() {
        let dir = tempfile::tempdir().unwrap();
        let old = NOW_MS - 600_000;
        write(
            dir.path(),
            1000,
            0,
            &[
                frame("a", 0, &["x"], old),
                frame("a", 1, &["x"], NOW_MS - 1000),
            ],
        );
        let mut h = hub();
        let r = recover_into(&mut h, dir.path());
        assert_eq!(r.records, 2);
        assert_eq!(h.ring_records(), 1);
        assert_eq!(missed(&h, 1000), Some(vec![1001]));
        assert_eq!(missed(&h, 999), None, "1000 is older than the ring");
        assert_eq!(h.classify_keys("a", [(3, 1)]).new, vec![false]);
    }

    #[test]
    fn marks_todays_rules_refuse_are_not_restored_and_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let t = NOW_MS - 1000;
        let day_ahead = NOW_MS + 86_400_000;
        // What an older gateway accepted: the poisoning frames, then the
        // agent's real frames would all have been duplicates.
        write(
            dir.path(),
            1000,
            0,
            &[
                frame_in("a", NOW_MS - 5000, 0, &["x"], t),
                frame_in("a", day_ahead, 0, &["x"], t),
                frame_in("a", day_ahead, 1, &["x"], t),
                frame_in("b", u64::MAX, u64::MAX, &["x"], t),
            ],
        );
        let mut h = hub();
        let r = recover_into(&mut h, dir.path());
        assert_eq!((r.frames, r.records, r.marks_skipped), (4, 4, 3));
        assert_eq!(h.mark("a"), Some((NOW_MS - 5000, 0)));
        assert_eq!(h.mark("b"), None);
        assert_eq!(r.skipped.len(), 2, "{:?}", r.skipped);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert!(
            r.skipped[0].contains("agent \"a\": 2 frames"),
            "{:?}",
            r.skipped
        );
        assert!(r.skipped[0].contains("session_ahead"), "{:?}", r.skipped);
        // The agent's next real frame is new.
        assert_eq!(h.classify_keys("a", [(NOW_MS - 5000, 1)]).new, vec![true]);
    }

    #[test]
    fn marks_are_judged_as_of_their_files_last_write_not_the_restart() {
        let dir = tempfile::tempdir().unwrap();
        let day = 86_400_000;
        // An older gateway accepted a frame a day ahead of its clock; the
        // file was last written then. A restart two days later still
        // refuses its mark.
        write_at(
            dir.path(),
            1000,
            0,
            &[
                frame_in("a", NOW_MS - 5000, 0, &["x"], NOW_MS - 1000),
                frame_in("a", NOW_MS + day, 0, &["x"], NOW_MS - 1000),
            ],
            NOW_MS,
        );
        let mut h = hub();
        let r = recover_at(&mut h, dir.path(), NOW_MS + 2 * day);
        assert_eq!(r.marks_skipped, 1, "{:?}", r.skipped);
        assert_eq!(h.mark("a"), Some((NOW_MS - 5000, 0)));

        // A seq that the session's age at the last write cannot reach
        // stays implausible, however old the session is at the restart.
        let dir = tempfile::tempdir().unwrap();
        let session = NOW_MS - 1000;
        write(
            dir.path(),
            1000,
            0,
            &[frame_in("a", session, 1 << 40, &["x"], NOW_MS - 1000)],
        );
        let mut h = hub();
        let r = recover_at(&mut h, dir.path(), NOW_MS + 365 * day);
        assert_eq!(r.marks_skipped, 1, "{:?}", r.skipped);
        assert_eq!(h.mark("a"), None);

        // A gateway whose clock is an hour behind at the restart keeps
        // the marks of frames accepted a second before the last write.
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            1000,
            0,
            &[frame_in("a", session, 3, &["x"], NOW_MS - 1000)],
        );
        let mut h = hub();
        let r = recover_at(&mut h, dir.path(), NOW_MS - 3_600_000);
        assert_eq!(r.marks_skipped, 0, "{:?}", r.skipped);
        assert_eq!(h.mark("a"), Some((session, 3)));
    }

    #[test]
    fn state_for_bad_names_or_past_the_cap_is_not_restored_but_summarised() {
        let dir = tempfile::tempdir().unwrap();
        let t = NOW_MS - 1000;
        let s = NOW_MS - 5000;
        // What an older gateway accepted: bad names and too many checks.
        let many: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        write(
            dir.path(),
            1000,
            0,
            &[
                frame_in("a", s, 0, &["ok", "evil\u{202e}gnp", "a\nb"], t),
                frame_in("a", s, 1, &many, t),
                frame_in("a", s, 2, &["ok", "c0", "c99"], t),
            ],
        );
        let mut h = hub();
        h.set_agent_limits(crate::config::AgentLimits {
            max_checks: 4,
            ..crate::config::AgentLimits::DEFAULT
        });
        let r = recover_into(&mut h, dir.path());
        // ok, c0, c1, c2 fit; 2 bad names; c3..c19 (17) and c99 do not.
        assert_eq!(h.checks(), 4);
        assert_eq!(r.state_skipped, 2 + 17 + 1);
        assert_eq!(r.records, 3 + 20 + 3, "every record keeps its gseq");
        let snapshot = h.subscribe(None).snapshot;
        assert!(snapshot.iter().all(|c| config::is_name(&c.check)));
        assert_eq!(r.skipped.len(), 2, "one line per reason: {:?}", r.skipped);
        // The marks stay: the agent's resends are duplicates.
        assert_eq!(h.mark("a"), Some((s, 2)));
        // Out of the ring (too old), the skipped names are not kept at all:
        // the hub is as big as one that never saw them.
        let old = NOW_MS - 600_000;
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            1000,
            0,
            &[
                frame_in("a", s, 0, &["ok", "\u{202e}"], old),
                frame_in("a", s, 1, &many, old),
            ],
        );
        let mut h = hub();
        h.set_agent_limits(crate::config::AgentLimits {
            max_checks: 4,
            ..crate::config::AgentLimits::DEFAULT
        });
        recover_into(&mut h, dir.path());
        let clean = tempfile::tempdir().unwrap();
        write(
            clean.path(),
            1000,
            0,
            &[
                frame_in("a", s, 0, &["ok"], old),
                frame_in("a", s, 1, &many[..3], old),
            ],
        );
        let mut h2 = hub();
        recover_into(&mut h2, clean.path());
        assert_eq!((h.checks(), h.ring_records()), (4, 0));
        assert_eq!(h.memory_bytes(), h2.memory_bytes());
        assert!(r.skipped[0].contains("2 records") && r.skipped[0].contains("bad_name"));
        assert!(!r.skipped[0].contains('\u{202e}'), "{:?}", r.skipped);
        assert!(r.skipped[1].contains("18 records") && r.skipped[1].contains("too_many_checks"));
    }

    #[test]
    fn marks_from_before_an_operator_reset_are_not_restored() {
        let dir = tempfile::tempdir().unwrap();
        let t = NOW_MS - 1000;
        // Before the reset (head 1001): a plausible but poisoning frame
        // (say a clock 4 minutes ahead, since corrected), and b's frame.
        // After it (from gseq 1002): the agent's real frames.
        write(
            dir.path(),
            1000,
            0,
            &[
                frame_in("a", NOW_MS + 240_000, 7, &["x"], t),
                frame_in("b", 3, 0, &["x"], t),
                frame_in("a", NOW_MS - 60_000, 0, &["x", "y"], t),
                frame_in("a", NOW_MS - 60_000, 1, &["x"], t),
            ],
        );
        let entry = crate::admin::ResetEntry {
            agent: "a".into(),
            before_gseq: 1002,
            at_ms: NOW_MS - 2000,
            by: "ops".into(),
            cleared: Some((NOW_MS + 240_000, 7)),
        };
        let line = serde_json::to_string(&entry).unwrap() + "\n";
        std::fs::write(dir.path().join(crate::admin::RESET_LOG), line).unwrap();
        let mut h = hub();
        let r = recover_into(&mut h, dir.path());
        assert_eq!((r.frames, r.marks_skipped), (4, 1));
        assert_eq!(h.mark("a"), Some((NOW_MS - 60_000, 1)));
        assert_eq!(h.mark("b"), Some((3, 0)), "another agent's marks stay");
        assert!(r.skipped[0].contains("operator reset"), "{:?}", r.skipped);
    }

    #[test]
    fn a_torn_tail_costs_nothing_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let t = NOW_MS - 1000;
        let mut torn = frame("a", 1, &["x"], t);
        torn.truncate(torn.len() - 3);
        write(dir.path(), 1000, 0, &[frame("a", 0, &["x", "y"], t), torn]);
        let mut h = hub();
        let r = recover_into(&mut h, dir.path());
        assert_eq!(
            (r.frames, r.records, r.damaged, r.ring_breaks),
            (1, 2, 1, 0)
        );
        assert!(r.problems[0].contains("offset"), "{:?}", r.problems);
        assert_eq!(missed(&h, 999), Some(vec![1000, 1001]));
        // The torn frame was never persisted whole: its resend is new.
        assert_eq!(h.classify_keys("a", [(3, 1)]).new, vec![true]);
    }

    #[test]
    fn damage_mid_file_or_a_missing_file_breaks_the_ring_never_silently() {
        let t = NOW_MS - 1000;
        // A flipped byte in the middle frame of three.
        let dir = tempfile::tempdir().unwrap();
        let mut middle = frame("a", 1, &["x"], t);
        let at = middle.len() - 6;
        middle[at] ^= 0xff;
        write(
            dir.path(),
            1000,
            0,
            &[frame("a", 0, &["x"], t), middle, frame("a", 2, &["x"], t)],
        );
        let mut h = hub();
        let r = recover_into(&mut h, dir.path());
        assert_eq!((r.frames, r.damaged, r.ring_breaks), (2, 1, 1));
        assert_eq!(missed(&h, 1000), None, "a reader after 1000 is reset");
        assert_eq!(
            h.classify_keys("a", [(3, 2)]).new,
            vec![false],
            "marks still count"
        );

        // File 1 of a run is missing: its successor does not continue the chain.
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 1000, 0, &[frame("a", 0, &["x"], t)]);
        write(dir.path(), 1005, 2, &[frame("a", 5, &["x"], t)]);
        let mut h = hub();
        let r = recover_into(&mut h, dir.path());
        assert_eq!((r.records, r.ring_breaks), (2, 1));
        assert_eq!(missed(&h, 1000), None);
        assert_eq!(missed(&h, 1004), Some(vec![1005]));
    }

    #[test]
    fn a_file_with_a_bad_header_is_reported_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(file_name(1000, 0)), b"not a wire file").unwrap();
        write(dir.path(), 2000, 0, &[frame("a", 0, &["x"], NOW_MS - 1000)]);
        let mut h = hub();
        let r = recover_into(&mut h, dir.path());
        assert_eq!((r.files, r.damaged, r.records), (2, 1, 1));
        assert!(
            r.problems[0].contains(&file_name(1000, 0)),
            "{:?}",
            r.problems
        );
        assert_eq!(missed(&h, 1999), Some(vec![2000]));
    }
}
