//! The file sink's blocking half: the segment directory over the store
//! ([`store`]): recovery at open, the session to continue, appends, the
//! fsync policy, rotation and retention with the sink's limits. Called
//! only from a blocking thread (see [`super`]); naming, scanning and the
//! rules themselves are the store's.
#![allow(
    clippy::disallowed_types,
    reason = "fsync and rotation timing on the real clock; not under paused-clock tests"
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use config::Fsync;
use store::{
    Depth, LastFrame, Naming, Retain, Rotate, SEGMENT, Segment, SyncClock, next_start, recover,
    rotation, sync_dir,
};

use crate::sink::SinkError;
use crate::sink::frames::{Numbering, continue_after};

/// How often `tick` applies retention when no rotation did (so that an
/// idle agent still ages old segments out).
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// The most bytes written since the last good fsync that the sink keeps a
/// copy of, to write them again into a new segment if that fsync fails.
/// At the default `fsync = "1s"` a second of results is far below it;
/// past it (`never`, or a burst) the frames are not kept, and a failed
/// fsync says how many may be lost to a power loss.
pub(crate) const UNSYNCED_KEPT_MAX: usize = 8 << 20;

/// What recovery found and repaired when the sink opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Torn or damaged tails cut from the newest segment (0 or 1 per open).
    pub torn_tails: u64,
    /// Bytes those tails held.
    pub truncated_bytes: u64,
    /// Segments whose file header was wrong, renamed to `*.corrupt`.
    pub moved_aside: Vec<PathBuf>,
    /// Damaged regions left in place in the newest segment because good
    /// frames follow them (readers skip them).
    pub(crate) damaged_regions: u64,
    /// Whether the sequence continues the session found on disk (`false`:
    /// a new session was started).
    pub resumed: bool,
}

/// The segment being appended to.
struct Active {
    segment: Segment,
    start_ms: u64,
    /// Age when opened (from the name's time) plus monotonic time since.
    age_at_open: Duration,
    opened: Instant,
}

impl Active {
    fn new(segment: Segment, start_ms: u64, age_at_open: Duration) -> Active {
        Active {
            segment,
            start_ms,
            age_at_open,
            opened: Instant::now(),
        }
    }

    fn age(&self) -> Duration {
        self.age_at_open + self.opened.elapsed()
    }
}

/// The segment directory and its active segment.
pub(crate) struct Segments {
    dir: PathBuf,
    config: config::FileSink,
    active: Active,
    numbering: Numbering,
    clock: SyncClock,
    last_retention: Instant,
    recovery: Recovery,
    /// A copy of the frames written since the last good fsync (`None`
    /// once past [`UNSYNCED_KEPT_MAX`]), and how many frames it holds.
    unsynced: Option<Vec<u8>>,
    unsynced_frames: u64,
    /// An fsync failed: the kept frames are to be written again into a
    /// new segment before anything else.
    rewrite: bool,
    /// The directory's sync after a rotation failed: redo it before
    /// anything else (the new segment's name may not survive a power loss).
    dir_unsynced: bool,
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The store's form of the configured fsync policy.
fn fsync(f: Fsync) -> store::Fsync {
    match f {
        Fsync::Always => store::Fsync::Always,
        Fsync::Every(every) => store::Fsync::Every(every),
        Fsync::Never => store::Fsync::Never,
    }
}

impl Segments {
    /// Opens the segment directory for `agent`: creates it, recovers the
    /// newest segment, moves segments with a bad header aside, finds the
    /// sequence to continue and applies retention.
    pub(crate) fn open(config: &config::FileSink, agent: &str) -> Result<Segments, SinkError> {
        let dir = config.dir.clone();
        let now_ms = epoch_ms(SystemTime::now());
        let found = recover(&dir, &SEGMENT, Depth::Tail)?;
        for m in &found.moved_aside {
            tracing::warn!(path = %m.from.display(), moved_to = %m.to.display(), error = %m.reason, "segment with a bad file header moved aside");
        }
        let tail = found.files.last();
        if found.torn_tails > 0
            && let Some(t) = tail
        {
            tracing::warn!(
                path = %t.path.display(),
                offset = t.len,
                bytes_removed = found.truncated_bytes,
                "torn tail in the newest segment truncated"
            );
        }
        if found.damaged_regions > 0
            && let Some(t) = tail
        {
            tracing::warn!(path = %t.path.display(), regions = found.damaged_regions, "damaged regions in the newest segment left in place; readers skip them");
        }
        let active = match tail {
            Some(t) => {
                let segment = Segment::open(&t.path, t.len, u64::from(t.last.is_some()))?;
                let age_at_open = Duration::from_millis(now_ms.saturating_sub(t.key));
                Active::new(segment, t.key, age_at_open)
            }
            None => {
                let segment = Segment::create(&dir.join(SEGMENT.name(now_ms)))?;
                Active::new(segment, now_ms, Duration::ZERO)
            }
        };
        sync_dir(&dir)?;

        let (session, next_seq, resumed) = continue_from(found.last_frame(), agent, now_ms);
        let recovery = Recovery {
            torn_tails: found.torn_tails,
            truncated_bytes: found.truncated_bytes,
            moved_aside: found.moved_aside.into_iter().map(|m| m.to).collect(),
            damaged_regions: found.damaged_regions,
            resumed,
        };
        let mut segments = Segments {
            dir,
            config: config.clone(),
            active,
            numbering: Numbering::new(agent, session, next_seq),
            clock: SyncClock::new(fsync(config.fsync), Instant::now()),
            last_retention: Instant::now(),
            recovery,
            unsynced: Some(Vec::new()),
            unsynced_frames: 0,
            rewrite: false,
            dir_unsynced: false,
        };
        segments.retain()?;
        Ok(segments)
    }

    /// What recovery did at open.
    pub(crate) fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The agent, session and next sequence of the frames written here.
    pub(crate) fn numbering(&self) -> &Numbering {
        &self.numbering
    }

    /// The active segment's path.
    pub(crate) fn active_path(&self) -> &Path {
        self.active.segment.path()
    }

    /// Appends `bytes` (`frames` whole frames, numbered from `next_seq`)
    /// with one write, rotating first if they would not fit (or the active
    /// segment is unusable, or old: a failed rotation by age does not stop
    /// the write), then applies the fsync policy. An error means
    /// nothing was taken: a failed write is cut back to the previous length
    /// (the store's [`Segment::append`]), the numbering is unchanged, and
    /// the caller writes the same frames again later. A failed fsync is a
    /// failed write too: these frames are cut off and not counted, and those
    /// of earlier batches since the last good fsync are written again into
    /// a new segment before the next ones (see [`Segments::fsync_failed`]).
    pub(crate) fn append(&mut self, bytes: &[u8], frames: u64) -> Result<u64, SinkError> {
        if bytes.is_empty() {
            return Ok(0);
        }
        self.heal()?;
        let incoming = bytes.len() as u64;
        if let Some(why) = self.rotation(incoming) {
            match self.rotate(why) {
                // Only its age is due (the write fits) and the segment is
                // sound: write on into it; `tick` retries the rotation and
                // reports it failing meanwhile.
                Err(e) if why == Some(Rotate::Age) && !self.active.segment.is_broken() => {
                    tracing::debug!(path = %self.active_path().display(), error = %e, "rotation by age failed; writing on into the active segment");
                }
                rotated => rotated?,
            }
        }
        self.active.segment.append(bytes, frames)?;
        self.keep(bytes, frames);
        if self.clock.wrote() {
            if let Err(e) = self.sync() {
                return if self.unsynced.is_some() {
                    // Not taken: the caller writes this batch again.
                    self.forget_last(bytes.len(), frames);
                    Err(e)
                } else {
                    // Not kept, so not cut off either: counted, and logged
                    // as possibly lost by `fsync_failed`.
                    self.numbering.advance(frames);
                    Ok(incoming)
                };
            }
        }
        self.numbering.advance(frames);
        Ok(incoming)
    }

    /// Keeps a copy of `bytes` until the next good fsync, within the bound.
    fn keep(&mut self, bytes: &[u8], frames: u64) {
        self.unsynced_frames += frames;
        if let Some(kept) = &mut self.unsynced {
            if kept.len() + bytes.len() <= UNSYNCED_KEPT_MAX {
                kept.extend_from_slice(bytes);
            } else {
                self.unsynced = None;
            }
        }
    }

    /// Takes the last `len` bytes (`frames` frames) back out of the copy.
    fn forget_last(&mut self, len: usize, frames: u64) {
        self.unsynced_frames -= frames;
        if let Some(kept) = &mut self.unsynced {
            kept.truncate(kept.len().saturating_sub(len));
        }
    }

    /// An fsync of the active segment failed (the store's [`Segment`] is
    /// unusable from now on). With the frames since the last good fsync
    /// kept, they are cut off it (so no reader finds them twice) and
    /// written again into a new segment by the next [`Segments::heal`];
    /// without, they stay where they are, counted, and may be lost to a
    /// power loss: say so.
    fn fsync_failed(&mut self, e: &store::StoreError) {
        if self.unsynced.is_some() {
            self.rewrite = true;
            if let Err(cut) = self.active.segment.cut_to_synced() {
                tracing::warn!(path = %self.active_path().display(), error = %cut, "could not cut unsynced frames off a segment whose fsync failed; readers may find them twice (same session and sequence)");
            }
        } else {
            tracing::error!(path = %self.active_path().display(), error = %e, frames = self.unsynced_frames, kept_max_bytes = UNSYNCED_KEPT_MAX, "fsync failed and the frames since the last good one were too many to keep: they may be lost to a power loss");
            self.unsynced_frames = 0;
            self.unsynced = Some(Vec::new());
        }
    }

    /// After a failure: starts a new segment if the active one is unusable,
    /// then writes the kept frames there again and syncs them.
    fn heal(&mut self) -> Result<(), SinkError> {
        if self.active.segment.is_broken() {
            self.rotate(None)?;
        }
        if self.dir_unsynced {
            sync_dir(&self.dir)?;
            self.dir_unsynced = false;
        }
        if !self.rewrite {
            return Ok(());
        }
        let kept = self.unsynced.take().unwrap_or_default();
        let appended = self.active.segment.append(&kept, self.unsynced_frames);
        self.unsynced = Some(kept);
        appended?;
        self.rewrite = false;
        let frames = self.unsynced_frames;
        self.clock.wrote();
        self.sync()?;
        tracing::info!(path = %self.active_path().display(), frames, "frames whose fsync had failed written again and synced");
        Ok(())
    }

    /// Whether `tick` has anything to do; no I/O, so the sink can skip the
    /// blocking hand-off on the idle ticks.
    pub(crate) fn tick_due(&self) -> bool {
        self.rewrite
            || self.dir_unsynced
            || self.active.segment.is_broken()
            || self.clock.due(Instant::now())
            || self.rotation(0).is_some()
            || self.last_retention.elapsed() >= RETENTION_EVERY
    }

    /// Time-based work: the `Every` fsync, rotation by age, retention.
    pub(crate) fn tick(&mut self) -> Result<(), SinkError> {
        self.heal()?;
        if self.clock.due(Instant::now()) {
            self.sync()?;
        }
        if let Some(why) = self.rotation(0) {
            self.rotate(why)?;
        } else if self.last_retention.elapsed() >= RETENTION_EVERY {
            self.retain()?;
        }
        Ok(())
    }

    /// Syncs the active segment and the directory.
    pub(crate) fn close(mut self) -> Result<(), SinkError> {
        self.heal()?;
        self.sync()?;
        Ok(sync_dir(&self.dir)?)
    }

    /// Why the active segment must be finished before `incoming` more
    /// bytes: its limits, or (`None` as the store's reason) a failure.
    fn rotation(&self, incoming: u64) -> Option<Option<Rotate>> {
        let a = &self.active;
        if a.segment.is_broken() {
            return Some(None);
        }
        rotation(
            a.segment.len(),
            a.segment.frames(),
            a.age(),
            incoming,
            self.config.segment_max_bytes,
            self.config.segment_max_age,
        )
        .map(Some)
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        if let Err(e) = self.active.segment.sync() {
            self.fsync_failed(&e);
            return Err(e.into());
        }
        self.clock.synced(Instant::now());
        self.unsynced_frames = 0;
        if let Some(kept) = &mut self.unsynced {
            kept.clear();
        } else {
            self.unsynced = Some(Vec::new());
        }
        Ok(())
    }

    /// Finishes the active segment (synced), starts the next (header
    /// synced, then the directory), then applies retention. `why` is `None`
    /// after a failure, when the finished segment need not sync: what it
    /// holds is counted already, and a disk that fails a sync may fail it
    /// again without that being a reason to stop writing elsewhere.
    fn rotate(&mut self, why: Option<Rotate>) -> Result<(), SinkError> {
        match self.active.segment.finish() {
            Err(e) if why.is_some() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(path = %self.active_path().display(), error = %e, "could not sync a segment left after a failure")
            }
            Ok(_) => {}
        }
        let start_ms = next_start(epoch_ms(SystemTime::now()), Some(self.active.start_ms));
        let segment = Segment::create(&self.dir.join(SEGMENT.name(start_ms)))?;
        tracing::debug!(finished = %self.active_path().display(), next = %segment.path().display(), reason = ?why, "segment rotated");
        // The new segment is the active one even if the directory does not
        // sync now: a retry must not start yet another.
        self.active = Active::new(segment, start_ms, Duration::ZERO);
        if !self.rewrite {
            self.clock.synced(Instant::now());
        }
        self.dir_unsynced = true;
        sync_dir(&self.dir)?;
        self.dir_unsynced = false;
        self.retain()
    }

    /// Deletes what retention selects; a segment that cannot be deleted is
    /// logged and kept (the sink goes on). The active segment counts at the
    /// size it may grow to before the next rotation, so the directory stays
    /// within the limit meanwhile.
    fn retain(&mut self) -> Result<(), SinkError> {
        self.last_retention = Instant::now();
        let keep = Retain {
            max_bytes: Some(self.config.retention_max_bytes),
            max_age: Some(self.config.retention_max_age),
        };
        let active_len = self.active.segment.len().max(self.config.segment_max_bytes);
        let r = store::retain(
            &self.dir,
            &SEGMENT,
            Some(self.active.start_ms),
            active_len,
            keep,
            SystemTime::now(),
        )?;
        for d in &r.deleted {
            tracing::debug!(path = %d.path.display(), "segment deleted by retention");
        }
        for e in &r.failed {
            tracing::warn!(path = %e.path().display(), error = %e.io(), "could not delete a segment");
        }
        match r.unsynced {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

/// The session and next sequence: the last frame's session and sequence
/// plus one when it is this agent's, else a new session (now, in epoch
/// ms, and above any session found). Returns whether it resumed.
pub(crate) fn continue_from(
    last: Option<&LastFrame>,
    agent: &str,
    now_ms: u64,
) -> (u64, u64, bool) {
    match last {
        Some(LastFrame::Frame(h)) if h.agent == agent => {
            continue_after(Some((h.session, h.seq)), now_ms)
        }
        Some(LastFrame::Frame(h)) => (now_ms.max(h.session.saturating_add(1)), 0, false),
        Some(LastFrame::Undecodable) | None => (now_ms, 0, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use store::faults::{FaultOp, fail_next};
    use wire::{FrameHeader, FrameReader, ReadItem, Record};

    use crate::result::CheckResult;
    use crate::sink::frames::encode_results;

    fn config(dir: &Path, fsync: Fsync) -> config::FileSink {
        config::FileSink {
            dir: dir.to_owned(),
            segment_max_bytes: 1 << 20,
            segment_max_age: Duration::from_secs(3600),
            retention_max_bytes: 1 << 30,
            retention_max_age: Duration::from_secs(86_400),
            fsync,
        }
    }

    /// Appends one frame of one record, as the sink does.
    fn append(s: &mut Segments, t_ms: u64) -> Result<u64, SinkError> {
        let batch = [Arc::new(CheckResult {
            check: Arc::from("c"),
            record: Record::up(t_ms, 1),
            timings: Default::default(),
            detail: None,
            facts: Default::default(),
            dns: None,
        })];
        let mut buf = Vec::new();
        let n = s.numbering();
        let frames = encode_results(n.agent(), n.next_id(), &batch, &mut buf).unwrap();
        s.append(&buf, frames)
    }

    /// Every frame's `(seq, t_ms)` in the directory's segments, in name
    /// order, and the number of damaged regions.
    fn on_disk(dir: &Path) -> (Vec<(u64, u64)>, usize) {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let (mut frames, mut damage) = (Vec::new(), 0);
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            let body = &bytes[wire::FILE_HEADER_LEN..];
            for item in FrameReader::new(body, wire::FILE_HEADER_LEN as u64).at_eof() {
                match item {
                    ReadItem::Frame { frame, .. } => {
                        let t = frame.records().next().unwrap().1.t_ms;
                        frames.push((frame.header.seq, t));
                    }
                    ReadItem::Skipped { .. } => damage += 1,
                }
            }
        }
        (frames, damage)
    }

    /// A failed fsync (EIO) in `tick` after two good writes: those two
    /// frames are not left counted in a file whose fsync failed; they are
    /// written again into a new segment and synced, once, in order, and
    /// the sequence goes on without gap or repeat.
    #[test]
    fn frames_whose_fsync_failed_are_written_again_in_a_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Segments::open(&config(dir.path(), Fsync::Every(Duration::ZERO)), "a").unwrap();
        let first = s.active_path().to_owned();
        append(&mut s, 10).unwrap();
        append(&mut s, 11).unwrap();
        fail_next(dir.path(), FaultOp::Sync, 1);
        assert!(s.tick().is_err());
        // The next tick heals: a new segment holding the two frames.
        s.tick().unwrap();
        assert_ne!(s.active_path(), first);
        append(&mut s, 12).unwrap();
        s.close().unwrap();
        assert_eq!(on_disk(dir.path()), (vec![(0, 10), (1, 11), (2, 12)], 0));
    }

    /// With `fsync = always`, a failed fsync fails the write: the batch is
    /// cut off, not counted, and written (once) by the retry in a new
    /// segment; a later fsync of the failed file never counts it durable.
    #[test]
    fn a_failed_fsync_with_always_fails_the_write_and_the_retry_lands_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Segments::open(&config(dir.path(), Fsync::Always), "a").unwrap();
        append(&mut s, 10).unwrap();
        fail_next(dir.path(), FaultOp::Sync, 1);
        assert!(append(&mut s, 11).is_err());
        assert_eq!(s.numbering().next_seq(), 1);
        append(&mut s, 11).unwrap();
        s.close().unwrap();
        assert_eq!(on_disk(dir.path()), (vec![(0, 10), (1, 11)], 0));
    }

    /// A failed directory sync after a rotation is redone by the next
    /// tick: the sink is not reported healthy before it is.
    #[test]
    fn a_failed_directory_sync_is_redone_by_the_next_tick() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config::FileSink {
            segment_max_bytes: 64,
            ..config(dir.path(), Fsync::Always)
        };
        let mut s = Segments::open(&cfg, "a").unwrap();
        append(&mut s, 10).unwrap();
        fail_next(dir.path(), FaultOp::SyncDir, 1);
        assert!(append(&mut s, 11).is_err());
        assert!(s.tick_due());
        s.tick().unwrap();
        assert!(!s.tick_due());
        append(&mut s, 11).unwrap();
        s.close().unwrap();
        assert_eq!(on_disk(dir.path()), (vec![(0, 10), (1, 11)], 0));
    }

    /// A failed append whose cut-back fails too leaves a partial frame:
    /// the segment is never appended to again, even if empty of frames.
    #[test]
    fn a_failed_cut_back_makes_the_sink_go_on_in_a_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Segments::open(&config(dir.path(), Fsync::Always), "a").unwrap();
        let first = s.active_path().to_owned();
        fail_next(dir.path(), FaultOp::Append, 1);
        fail_next(dir.path(), FaultOp::CutBack, 1);
        assert!(append(&mut s, 10).is_err());
        append(&mut s, 10).unwrap();
        append(&mut s, 11).unwrap();
        assert_ne!(s.active_path(), first);
        s.close().unwrap();
        // The half frame stays in the first file (damage readers skip);
        // every frame is after it, once.
        assert_eq!(on_disk(dir.path()), (vec![(0, 10), (1, 11)], 1));
    }

    fn last(agent: &str, session: u64, seq: u64) -> LastFrame {
        LastFrame::Frame(FrameHeader {
            agent: agent.to_owned(),
            session,
            seq,
        })
    }

    #[test]
    fn sequence_continues_only_for_the_same_agent() {
        assert_eq!(continue_from(None, "a", 1000), (1000, 0, false));
        assert_eq!(
            continue_from(Some(&last("a", 5, 9)), "a", 1000),
            (5, 10, true)
        );
        assert_eq!(
            continue_from(Some(&last("b", 5, 9)), "a", 1000),
            (1000, 0, false)
        );
        // A session from a clock ahead of ours is still passed.
        assert_eq!(
            continue_from(Some(&last("b", 5000, 9)), "a", 1000),
            (5001, 0, false)
        );
        assert_eq!(
            continue_from(Some(&last("a", 5, u64::MAX)), "a", 1000),
            (1000, 0, false)
        );
        assert_eq!(
            continue_from(Some(&LastFrame::Undecodable), "a", 1000),
            (1000, 0, false)
        );
    }
}
