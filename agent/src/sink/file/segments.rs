//! The file sink's blocking half: the segment directory, the active
//! segment's file, recovery at open, appends, the fsync policy, rotation and
//! retention. Plain `std::fs`, called only from a blocking thread (see
//! [`super`]); every decision is made by [`super::layout`] and
//! [`super::frames`].
#![allow(
    clippy::disallowed_types,
    reason = "fsync and rotation timing on the real clock; not under paused-clock tests"
)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use config::Fsync;
use wire::{FILE_HEADER_LEN, file_header};

use super::frames::{LastFrame, Scan, scan};
use super::layout::{
    self, CORRUPT_SUFFIX, Rotate, SegmentInfo, next_segment_ms, parse_segment_name, rotation,
    segment_name,
};
use crate::sink::SinkError;

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
    pub damaged_regions: u64,
    /// Whether the sequence continues the session found on disk (`false`:
    /// a new session was started).
    pub resumed: bool,
}

/// The segment being appended to.
struct Active {
    file: File,
    path: PathBuf,
    start_ms: u64,
    len: u64,
    has_frames: bool,
    /// Age when opened (from the name's time) plus monotonic time since.
    age_at_open: Duration,
    opened: Instant,
}

impl Active {
    fn age(&self) -> Duration {
        self.age_at_open + self.opened.elapsed()
    }
}

/// The segment directory and its active segment.
pub struct Segments {
    dir: PathBuf,
    config: config::FileSink,
    active: Active,
    agent: String,
    session: u64,
    next_seq: u64,
    unsynced: bool,
    last_sync: Instant,
    last_retention: Instant,
    recovery: Recovery,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SinkError {
    let context = context.into();
    move |e| SinkError::io(context, e)
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing directory {}", dir.display())))
}

/// The segments in `dir`, oldest first, with their start times.
fn list(dir: &Path) -> Result<Vec<(u64, String)>, SinkError> {
    let mut segments = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(io(format!("listing {}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(io(format!("listing {}", dir.display())))?;
        let name = entry.file_name();
        if let Some(ms) = name.to_str().and_then(parse_segment_name) {
            segments.push((ms, name.to_string_lossy().into_owned()));
        }
    }
    segments.sort();
    Ok(segments)
}

/// Renames a segment with a bad header to `NAME.corrupt` (or `NAME.corrupt.N`
/// if that exists): out of the sink's way, never deleted.
pub(crate) fn move_aside(path: &Path) -> Result<PathBuf, SinkError> {
    let mut to = PathBuf::from(format!("{}{CORRUPT_SUFFIX}", path.display()));
    let mut n = 1;
    while to.exists() {
        to = PathBuf::from(format!("{}{CORRUPT_SUFFIX}.{n}", path.display()));
        n += 1;
    }
    std::fs::rename(path, &to).map_err(io(format!("renaming {}", path.display())))?;
    Ok(to)
}

fn open_append(path: &Path) -> Result<File, SinkError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io(format!("opening {}", path.display())))
}

/// Creates a new segment holding only the file header, synced.
pub(crate) fn create_segment(path: &Path) -> Result<File, SinkError> {
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(path)
        .map_err(io(format!("creating {}", path.display())))?;
    file.write_all(&file_header())
        .and_then(|()| file.sync_data())
        .map_err(io(format!("writing the file header of {}", path.display())))?;
    Ok(file)
}

/// Cuts the segment at `path` to `keep` bytes (re-writing the file header
/// when `keep` is 0) and syncs it.
pub(crate) fn truncate(path: &Path, keep: u64) -> Result<File, SinkError> {
    let mut file = open_append(path)?;
    file.set_len(keep)
        .map_err(io(format!("truncating {}", path.display())))?;
    if keep == 0 {
        file.write_all(&file_header())
            .map_err(io(format!("writing the file header of {}", path.display())))?;
    }
    file.sync_all()
        .map_err(io(format!("syncing {}", path.display())))?;
    Ok(file)
}

fn read(path: &Path) -> Result<Vec<u8>, SinkError> {
    std::fs::read(path).map_err(io(format!("reading {}", path.display())))
}

impl Segments {
    /// Opens the segment directory for `agent`: creates it, recovers the
    /// newest segment, moves segments with a bad header aside, finds the
    /// sequence to continue and applies retention.
    pub fn open(config: &config::FileSink, agent: &str) -> Result<Segments, SinkError> {
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        let now = SystemTime::now();
        let mut recovery = Recovery::default();
        let mut segments = list(&dir)?;
        let newest_ms = segments.last().map(|s| s.0);

        // Older segments only need a good header; the newest is read whole.
        let mut older_last = None;
        let mut active = None;
        while let Some((start_ms, name)) = segments.pop() {
            let path = dir.join(&name);
            if active.is_some() {
                let bytes = if older_last.is_none() {
                    read(&path)?
                } else {
                    read_header(&path)?
                };
                match scan(&bytes) {
                    Scan::BadHeader(e) => {
                        let to = move_aside(&path)?;
                        tracing::warn!(path = %path.display(), moved_to = %to.display(), error = %e, "segment with a bad file header moved aside");
                        recovery.moved_aside.push(to);
                    }
                    Scan::Segment { last, .. } if older_last.is_none() => older_last = last,
                    Scan::Segment { .. } => {}
                }
                continue;
            }
            let bytes = read(&path)?;
            match scan(&bytes) {
                Scan::BadHeader(e) => {
                    let to = move_aside(&path)?;
                    tracing::warn!(path = %path.display(), moved_to = %to.display(), error = %e, "segment with a bad file header moved aside");
                    recovery.moved_aside.push(to);
                }
                Scan::Segment {
                    keep,
                    len,
                    last,
                    damaged,
                } => {
                    let file = if keep < len || keep == 0 {
                        let removed = len - keep;
                        if removed > 0 {
                            tracing::warn!(
                                path = %path.display(),
                                offset = keep,
                                bytes_removed = removed,
                                "torn tail in the newest segment truncated"
                            );
                            recovery.torn_tails += 1;
                            recovery.truncated_bytes += removed;
                        }
                        truncate(&path, keep)?
                    } else {
                        open_append(&path)?
                    };
                    if damaged > 0 {
                        tracing::warn!(path = %path.display(), regions = damaged, "damaged regions in the newest segment left in place; readers skip them");
                    }
                    recovery.damaged_regions = damaged;
                    let len = keep.max(FILE_HEADER_LEN as u64);
                    let age_at_open = Duration::from_millis(epoch_ms(now).saturating_sub(start_ms));
                    older_last = last.clone();
                    active = Some(Active {
                        file,
                        path,
                        start_ms,
                        len,
                        has_frames: last.is_some(),
                        age_at_open,
                        opened: Instant::now(),
                    });
                }
            }
        }
        let active = match active {
            Some(active) => active,
            None => {
                let start_ms = next_segment_ms(epoch_ms(now), newest_ms);
                let path = dir.join(segment_name(start_ms));
                let file = create_segment(&path)?;
                Active {
                    file,
                    path,
                    start_ms,
                    len: FILE_HEADER_LEN as u64,
                    has_frames: false,
                    age_at_open: Duration::ZERO,
                    opened: Instant::now(),
                }
            }
        };
        sync_dir(&dir)?;

        let (session, next_seq, resumed) = continue_from(older_last.as_ref(), agent, epoch_ms(now));
        recovery.resumed = resumed;
        let mut segments = Segments {
            dir,
            config: config.clone(),
            active,
            agent: agent.to_owned(),
            session,
            next_seq,
            unsynced: false,
            last_sync: Instant::now(),
            last_retention: Instant::now(),
            recovery,
        };
        segments.retain()?;
        Ok(segments)
    }

    /// What recovery did at open.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The agent id frames carry.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The session frames carry.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// The sequence number of the next frame.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The active segment's path.
    pub fn active_path(&self) -> &Path {
        &self.active.path
    }

    /// Appends `bytes` (`frames` whole frames, numbered from `next_seq`)
    /// with one write, rotating first if they would not fit, then applies
    /// the fsync policy. On a failed write the segment is cut back to its
    /// previous length, so it never holds part of a frame while running.
    pub fn append(&mut self, bytes: &[u8], frames: u64) -> Result<u64, SinkError> {
        if bytes.is_empty() {
            return Ok(0);
        }
        let incoming = bytes.len() as u64;
        if let Some(why) = self.rotation(incoming) {
            self.rotate(why)?;
        }
        let a = &mut self.active;
        if let Err(e) = a.file.write_all(bytes) {
            let _ = a.file.set_len(a.len);
            return Err(SinkError::io(
                format!("appending to {}", a.path.display()),
                e,
            ));
        }
        a.len += incoming;
        a.has_frames = true;
        self.next_seq += frames;
        self.unsynced = true;
        if self.config.fsync == Fsync::Always {
            self.sync()?;
        }
        Ok(incoming)
    }

    /// Whether `tick` has anything to do; no I/O, so the sink can skip the
    /// blocking hand-off on the idle ticks.
    pub fn tick_due(&self) -> bool {
        self.sync_due()
            || self.rotation(0).is_some()
            || self.last_retention.elapsed() >= RETENTION_EVERY
    }

    fn sync_due(&self) -> bool {
        matches!(self.config.fsync, Fsync::Every(every)
            if self.unsynced && self.last_sync.elapsed() >= every)
    }

    /// Time-based work: the `Every` fsync, rotation by age, retention.
    pub fn tick(&mut self) -> Result<(), SinkError> {
        if self.sync_due() {
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
    pub fn close(mut self) -> Result<(), SinkError> {
        self.sync()?;
        sync_dir(&self.dir)
    }

    fn rotation(&self, incoming: u64) -> Option<Rotate> {
        rotation(
            self.active.len,
            u64::from(self.active.has_frames),
            self.active.age(),
            incoming,
            self.config.segment_max_bytes,
            self.config.segment_max_age,
        )
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        self.active
            .file
            .sync_data()
            .map_err(io(format!("syncing {}", self.active.path.display())))?;
        self.unsynced = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Finishes the active segment (synced), starts the next (header
    /// synced, then the directory), then applies retention.
    fn rotate(&mut self, why: Rotate) -> Result<(), SinkError> {
        self.active
            .file
            .sync_all()
            .map_err(io(format!("syncing {}", self.active.path.display())))?;
        let start_ms = next_segment_ms(epoch_ms(SystemTime::now()), Some(self.active.start_ms));
        let path = self.dir.join(segment_name(start_ms));
        let file = create_segment(&path)?;
        sync_dir(&self.dir)?;
        tracing::debug!(finished = %self.active.path.display(), next = %path.display(), reason = ?why, "segment rotated");
        self.active = Active {
            file,
            path,
            start_ms,
            len: FILE_HEADER_LEN as u64,
            has_frames: false,
            age_at_open: Duration::ZERO,
            opened: Instant::now(),
        };
        self.unsynced = false;
        self.last_sync = Instant::now();
        self.retain()
    }

    /// Deletes what retention selects; a segment that cannot be deleted is
    /// logged and kept (the sink goes on).
    fn retain(&mut self) -> Result<(), SinkError> {
        self.last_retention = Instant::now();
        let now = SystemTime::now();
        let mut infos = Vec::new();
        for (start_ms, name) in list(&self.dir)? {
            if start_ms >= self.active.start_ms {
                continue;
            }
            let path = self.dir.join(&name);
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let idle = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            infos.push(SegmentInfo {
                name,
                len: meta.len(),
                idle,
            });
        }
        // The active segment counts at the size it may grow to before the
        // next rotation, so the directory stays within the limit meanwhile.
        infos.push(SegmentInfo {
            name: String::new(),
            len: self.active.len.max(self.config.segment_max_bytes),
            idle: Duration::ZERO,
        });
        let delete = layout::retention(
            &infos,
            self.config.retention_max_bytes,
            self.config.retention_max_age,
        );
        if delete.is_empty() {
            return Ok(());
        }
        for name in delete {
            let path = self.dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::debug!(path = %path.display(), "segment deleted by retention"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "could not delete a segment")
                }
            }
        }
        sync_dir(&self.dir)
    }
}

/// The first bytes of a file, enough for its header.
fn read_header(path: &Path) -> Result<Vec<u8>, SinkError> {
    use std::io::Read;
    let mut bytes = Vec::with_capacity(FILE_HEADER_LEN);
    File::open(path)
        .and_then(|f| f.take(FILE_HEADER_LEN as u64).read_to_end(&mut bytes))
        .map_err(io(format!("reading {}", path.display())))?;
    Ok(bytes)
}

/// The session and next sequence: the last frame's session and sequence
/// plus one when it is this agent's, else a new session (now, in epoch
/// ms, and above any session found). Returns whether it resumed.
pub fn continue_from(last: Option<&LastFrame>, agent: &str, now_ms: u64) -> (u64, u64, bool) {
    match last {
        Some(LastFrame::Frame(h)) if h.agent == agent => match h.seq.checked_add(1) {
            Some(next) => (h.session, next, true),
            None => (now_ms.max(h.session.saturating_add(1)), 0, false),
        },
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
