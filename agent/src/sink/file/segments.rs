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
    /// A write or fsync of the active segment failed: finish it and go on
    /// in a new one, so that nothing after the failure depends on it.
    rotate_after_failure: bool,
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
            rotate_after_failure: false,
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
    /// with one write, rotating first if they would not fit (or the last
    /// write failed), then applies the fsync policy. An error means nothing
    /// was taken: a failed write is cut back to the previous length (the
    /// store's [`Segment::append`]), the numbering is unchanged, and the
    /// caller writes the same frames again later. A failed fsync after a
    /// good write keeps the frames (written, counted; a process crash
    /// loses nothing) and moves on to a new segment at the next `tick`.
    pub(crate) fn append(&mut self, bytes: &[u8], frames: u64) -> Result<u64, SinkError> {
        if bytes.is_empty() {
            return Ok(0);
        }
        let incoming = bytes.len() as u64;
        if let Some(why) = self.rotation(incoming) {
            self.rotate(why)?;
        }
        if let Err(e) = self.active.segment.append(bytes, frames) {
            self.rotate_after_failure = true;
            return Err(e.into());
        }
        self.numbering.advance(frames);
        if self.clock.wrote()
            && let Err(e) = self.sync()
        {
            self.rotate_after_failure = true;
            tracing::warn!(path = %self.active_path().display(), error = %e, "fsync failed after a good write: those frames may not survive a power loss; continuing in a new segment");
        }
        Ok(incoming)
    }

    /// Whether `tick` has anything to do; no I/O, so the sink can skip the
    /// blocking hand-off on the idle ticks.
    pub(crate) fn tick_due(&self) -> bool {
        self.clock.due(Instant::now())
            || self.rotation(0).is_some()
            || self.last_retention.elapsed() >= RETENTION_EVERY
    }

    /// Time-based work: the `Every` fsync, rotation by age, retention.
    pub(crate) fn tick(&mut self) -> Result<(), SinkError> {
        if self.clock.due(Instant::now()) && !self.rotate_after_failure {
            if let Err(e) = self.sync() {
                self.rotate_after_failure = true;
                return Err(e);
            }
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
        self.sync()?;
        Ok(sync_dir(&self.dir)?)
    }

    /// Why the active segment must be finished before `incoming` more
    /// bytes: its limits, or (`None` as the store's reason) a failure.
    fn rotation(&self, incoming: u64) -> Option<Option<Rotate>> {
        let a = &self.active;
        if self.rotate_after_failure && !a.segment.is_empty() {
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
        self.active.segment.sync()?;
        self.clock.synced(Instant::now());
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
        self.rotate_after_failure = false;
        self.clock.synced(Instant::now());
        sync_dir(&self.dir)?;
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
    use wire::FrameHeader;

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
