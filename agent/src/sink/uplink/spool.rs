//! The spool on disk: frames waiting for the gateway's acknowledgement.
//! Blocking, called from blocking threads only; the decisions are
//! [`super::ledger`]'s, the files (naming, recovery, appends, syncs, the
//! `acked` cursor) are the store's ([`store`]).
//!
//! Layout of `spool_dir`:
//!
//! - `spool-<session>-<seq>.sonde`: segments, each a complete wire file
//!   (file header, then frames), named by the `(session, seq)` of their
//!   first frame in fixed-width decimal, so names sort in frame order. The
//!   newest is appended to; a segment is deleted once every frame in it is
//!   acknowledged, or when the spool is full ([`super::ledger::WhenFull`]).
//! - `acked`: `"<session> <seq>\n"`, the last frame known to be
//!   acknowledged, replaced atomically (write, rename) at most every
//!   [`ACK_PERSIST_EVERY`] and at close.
//! - `quarantine/quarantine.sonde`: frames the gateway refused as bad
//!   (`400 bad_frame`), moved out of the stream and kept for a person.
//!
//! Crash semantics: a frame is appended with one `write_all` before the
//! sender can see it, so a SIGKILL loses nothing the kernel accepted; the
//! data is synced every [`SYNC_EVERY`] (power loss loses at most that).
//! At open, a torn tail of the newest segment is cut, and frames up to
//! `acked` are skipped; a stale `acked` only means frames are sent again
//! with their original `(session, seq)`, which the gateway deduplicates.
//!
//! After a failed file operation (a full disk, permissions) the ledger may
//! no longer match the directory: the spool is marked stale and, on the
//! next append, tick or read, opened afresh from what is on disk (the same
//! recovery as at start), so the sink's retry heals it.
#![allow(
    clippy::disallowed_types,
    reason = "fsync and rotation timing on the real clock; not under paused-clock tests"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use store::{
    CursorFile, Depth, Fsync, Naming, SPOOL, Segment, SyncClock, move_aside, read_at, recover,
    remove, sync_dir,
};
use wire::{FILE_HEADER_LEN, FRAME_OVERHEAD, FrameReader, MAX_BODY_LEN, ReadItem};

use super::ledger::{Cursor, FileOp, FrameId, Ledger, SegmentMeta, WhenFull};
use crate::result::CheckResult;
use crate::sink::SinkError;
use crate::sink::frames::{Numbering, continue_after, encode_results};

/// How often appended data is synced to disk.
pub(crate) const SYNC_EVERY: Duration = Duration::from_secs(1);
/// How often the acknowledgement point is written to `acked`.
pub(crate) const ACK_PERSIST_EVERY: Duration = Duration::from_millis(200);
/// The largest frame on the wire.
const MAX_FRAME: u64 = MAX_BODY_LEN as u64 + FRAME_OVERHEAD as u64;

const ACKED: &str = "acked";
const QUARANTINE_DIR: &str = "quarantine";

/// `"<session> <seq>"`, as in the `acked` file.
pub(crate) fn parse_acked(text: &str) -> Option<FrameId> {
    let mut parts = text.split_whitespace();
    let session = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((session, seq))
}

/// What opening the spool found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SpoolRecovery {
    /// Bytes cut from a torn tail of the newest segment.
    pub(crate) truncated_bytes: u64,
    /// Frames waiting to be sent.
    pub(crate) unacked_frames: u64,
    /// Damaged regions skipped inside segments.
    pub(crate) damaged_regions: u64,
    /// Segments moved aside (bad header, another agent's frames).
    pub(crate) moved_aside: Vec<PathBuf>,
    /// Whether the sequence continues one found on disk.
    pub(crate) resumed: bool,
}

/// One frame of a [`Batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameInfo {
    /// Its `(session, seq)`.
    pub(crate) id: FrameId,
    /// Where it starts in the batch's body.
    pub(crate) offset: u64,
    /// Its length.
    pub(crate) len: u64,
    /// Records it carries.
    pub(crate) records: u64,
}

/// Frames to send: whole frames laid end to end, from the cursor on.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    segment: FrameId,
    from: u64,
    /// The request body.
    pub(crate) body: Bytes,
    /// Its frames, in order.
    pub(crate) frames: Vec<FrameInfo>,
}

impl Batch {
    /// Records in the batch.
    #[cfg(test)]
    pub(crate) fn records(&self) -> u64 {
        self.frames.iter().map(|f| f.records).sum()
    }

    /// The first `n` frames only.
    #[cfg(test)]
    pub(crate) fn truncate(&mut self, n: usize) {
        self.frames.truncate(n.max(1));
        let end = self.frames.last().map_or(0, |f| f.offset + f.len);
        self.body.truncate(end as usize);
    }
}

/// A segment deleted to make room, with what it took along.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dropped {
    /// The segment's path.
    pub(crate) path: PathBuf,
    /// Unacknowledged frames lost.
    pub(crate) frames: u64,
    /// Unacknowledged records lost.
    pub(crate) records: u64,
}

/// What an append did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Appended {
    /// Bytes written (0 when refused).
    pub(crate) bytes: u64,
    /// Segments dropped to make room.
    pub(crate) dropped: Vec<Dropped>,
    /// The frames were refused ([`WhenFull::DropNewest`]).
    pub(crate) refused: bool,
}

/// The spool directory. See the module docs.
pub(crate) struct Spool {
    dir: PathBuf,
    /// What [`Spool::open`] was given, to open it again when stale.
    agent: String,
    max_bytes: u64,
    when_full: WhenFull,
    /// A file operation failed after the ledger counted it done.
    stale: bool,
    /// Segments a failed run of file operations had already deleted to
    /// make room: reported with the next append, so no drop goes uncounted.
    unreported: Vec<Dropped>,
    ledger: Ledger,
    active: Segment,
    numbering: Numbering,
    clock: SyncClock,
    cursor: CursorFile,
    acked: Option<FrameId>,
    acked_written: Option<FrameId>,
    last_ack_write: Instant,
    recovery: SpoolRecovery,
}

/// A segment read at open.
struct Loaded {
    path: PathBuf,
    meta: SegmentMeta,
    /// (start offset, id, records) of each frame.
    frames: Vec<(u64, FrameId, u64)>,
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir` for `agent`: recovers
    /// the newest segment, skips what `acked` says was acknowledged, and
    /// starts a new active segment. `now_ms` (epoch ms) names a new
    /// session when there is none to continue.
    pub(crate) fn open(
        dir: &Path,
        agent: &str,
        max_bytes: u64,
        when_full: WhenFull,
        now_ms: u64,
    ) -> Result<Spool, SinkError> {
        // Older segments are read one at a time below, not all at once.
        let recovered = recover(dir, &SPOOL, Depth::Headers)?;
        let cursor_file = CursorFile::new(dir, ACKED);
        let acked = cursor_file.load()?.and_then(|text| {
            let parsed = parse_acked(&text);
            if parsed.is_none() {
                tracing::warn!(dir = %dir.display(), "spool: unreadable `acked` file ignored; unacknowledged frames may be sent twice (the gateway deduplicates)");
            }
            parsed
        });
        for m in &recovered.moved_aside {
            tracing::warn!(path = %m.from.display(), moved_to = %m.to.display(), error = %m.reason, "spool segment with a bad file header moved aside");
        }
        if let Some(tail) = recovered.files.last().filter(|_| recovered.torn_tails > 0) {
            tracing::warn!(path = %tail.path.display(), offset = tail.len, bytes_removed = recovered.truncated_bytes, "torn tail in the spool truncated");
        }
        let mut recovery = SpoolRecovery {
            truncated_bytes: recovered.truncated_bytes,
            moved_aside: recovered.moved_aside.into_iter().map(|m| m.to).collect(),
            ..SpoolRecovery::default()
        };

        let mut found = Vec::new();
        for f in recovered.files {
            let bytes = match f.bytes {
                Some(bytes) => bytes,
                None => store::read(&f.path)?,
            };
            let mut frames = Vec::new();
            let mut records = 0;
            let mut foreign = false;
            for item in store::body(&bytes) {
                match item {
                    ReadItem::Frame { offset, frame, .. } => {
                        foreign |= frame.header.agent != agent;
                        let n = frame.record_count() as u64;
                        records += n;
                        frames.push((offset, (frame.header.session, frame.header.seq), n));
                    }
                    ReadItem::Skipped { .. } => recovery.damaged_regions += 1,
                }
            }
            if foreign {
                let to = move_aside(&f.path)?;
                tracing::warn!(path = %f.path.display(), moved_to = %to.display(), agent, "spool segment holding another agent's frames moved aside");
                recovery.moved_aside.push(to);
                continue;
            }
            found.push(Loaded {
                path: f.path,
                meta: SegmentMeta {
                    id: f.key,
                    // The ledger counts at least a header, as for a new file.
                    len: f.len.max(FILE_HEADER_LEN as u64),
                    frames: frames.len() as u64,
                    records,
                },
                frames,
            });
        }

        // Continue the newest sequence on disk (a frame, or the ack point).
        let last_frame = found
            .iter()
            .rev()
            .find_map(|f| f.frames.last().map(|&(_, id, _)| id));
        let (session, next_seq, resumed) = continue_after(last_frame.max(acked), now_ms);
        recovery.resumed = resumed;

        // Segments whose frames are all acknowledged (or that hold none) go;
        // the cursor stands at the first unacknowledged frame.
        let is_acked = |id: FrameId| acked.is_some_and(|a| id <= a);
        let mut segments = Vec::new();
        let mut cursor = None;
        for f in found {
            let first_unacked = f.frames.iter().position(|&(_, id, _)| !is_acked(id));
            match (first_unacked, cursor.is_some()) {
                (None, false) => remove(&f.path)?,
                (Some(i), false) => {
                    let (offset, _, _) = f.frames[i];
                    cursor = Some(Cursor {
                        offset,
                        frames: i as u64,
                        records: f.frames[..i].iter().map(|&(_, _, n)| n).sum(),
                    });
                    recovery.unacked_frames += f.meta.frames - i as u64;
                    segments.push(f.meta);
                }
                (_, true) => {
                    recovery.unacked_frames += f.meta.frames;
                    segments.push(f.meta);
                }
            }
        }
        let active_id = (session, next_seq);
        let active_path = dir.join(SPOOL.name(active_id));
        if segments.last().is_some_and(|s| s.id == active_id) || active_path.exists() {
            // Only an empty segment can carry the next frame's id; start over.
            remove(&active_path)?;
            segments.retain(|s| s.id != active_id);
        }
        let active = Segment::create(&active_path)?;
        segments.push(SegmentMeta::empty(active_id));
        sync_dir(dir)?;
        let cursor = cursor.unwrap_or(Cursor {
            offset: FILE_HEADER_LEN as u64,
            frames: 0,
            records: 0,
        });
        let ledger = Ledger::new(segments, cursor, max_bytes, when_full);
        Ok(Spool {
            dir: dir.to_owned(),
            agent: agent.to_owned(),
            max_bytes,
            when_full,
            stale: false,
            unreported: Vec::new(),
            ledger,
            active,
            numbering: Numbering::new(agent, session, next_seq),
            clock: SyncClock::new(Fsync::Every(SYNC_EVERY), Instant::now()),
            cursor: cursor_file,
            acked,
            acked_written: acked,
            last_ack_write: Instant::now(),
            recovery,
        })
    }

    /// What opening found and repaired.
    pub(crate) fn recovery(&self) -> &SpoolRecovery {
        &self.recovery
    }

    /// The agent, session and next sequence of the frames spooled here.
    pub(crate) fn numbering(&self) -> &Numbering {
        &self.numbering
    }

    /// Bytes on disk.
    pub(crate) fn bytes(&self) -> u64 {
        self.ledger.bytes()
    }

    /// Frames not yet acknowledged.
    pub(crate) fn unacked_frames(&self) -> u64 {
        self.ledger.unacked_frames()
    }

    /// The last frame known to be acknowledged.
    pub(crate) fn acked(&self) -> Option<FrameId> {
        self.acked
    }

    fn path(&self, id: FrameId) -> PathBuf {
        self.dir.join(SPOOL.name(id))
    }

    /// Opens the spool again from disk if a failed file operation left
    /// the ledger out of step with the directory.
    fn heal_if_stale(&mut self) -> Result<(), SinkError> {
        if !self.stale {
            return Ok(());
        }
        // An ack point not written only means frames sent again, unless no
        // frame is left on disk to continue from: the sequence is numbered
        // after this reopen (see `append_results`), so that is what it gets.
        if let Err(e) = self.persist_ack() {
            tracing::warn!(spool = %self.dir.display(), error = %e, "spool: could not write the acknowledgement point before reopening; acknowledged frames may be sent again");
        }
        let fresh = Spool::open(
            &self.dir,
            &self.agent,
            self.max_bytes,
            self.when_full,
            super::epoch_ms(),
        )?;
        tracing::info!(spool = %self.dir.display(), unacked_frames = fresh.unacked_frames(), next_seq = fresh.numbering().next_seq(), "spool reopened from disk after a failed file operation");
        let unreported = std::mem::take(&mut self.unreported);
        *self = fresh;
        self.unreported = unreported;
        Ok(())
    }

    /// Carries out the ledger's file operations, returning the drops. A
    /// failure marks the spool stale (the ledger counted them all done).
    /// Segments it deleted before a failure are kept for the next report.
    fn apply(&mut self, ops: Vec<FileOp>) -> Result<Vec<Dropped>, SinkError> {
        let mut dropped = Vec::new();
        let applied = self.apply_ops(ops, &mut dropped);
        if applied.is_err() {
            self.stale = true;
            self.unreported.append(&mut dropped);
            return applied.map(|()| Vec::new());
        }
        Ok(dropped)
    }

    fn apply_ops(&mut self, ops: Vec<FileOp>, dropped: &mut Vec<Dropped>) -> Result<(), SinkError> {
        for op in ops {
            match op {
                FileOp::Create(id) => {
                    if self.clock.unsynced() {
                        self.sync()?;
                    }
                    self.active = Segment::create(&self.path(id))?;
                    sync_dir(&self.dir)?;
                }
                FileOp::Delete {
                    id,
                    lost_frames,
                    lost_records,
                } => {
                    let path = self.path(id);
                    remove(&path)?;
                    if lost_frames > 0 {
                        dropped.push(Dropped {
                            path,
                            frames: lost_frames,
                            records: lost_records,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Encodes `batch` into `buf` as frames numbered from the spool's next
    /// sequence and appends them. The numbering is taken after a stale
    /// spool is reopened (which may renumber) and under the same lock as
    /// the append, so no two frames ever carry the same `(session, seq)`.
    pub(crate) fn append_results(
        &mut self,
        batch: &[Arc<CheckResult>],
        buf: &mut Vec<u8>,
    ) -> Result<Appended, SinkError> {
        self.heal_if_stale()?;
        buf.clear();
        let n = &self.numbering;
        let frames = encode_results(n.agent(), n.next_id(), batch, buf).map_err(|source| {
            SinkError::Encode {
                sink: "gateway",
                source,
            }
        })?;
        self.append(buf, frames, batch.len() as u64)
    }

    /// Appends `bytes`: `frames` whole frames with `records` records,
    /// numbered from [`Spool::next_seq`] in [`Spool::session`], making
    /// room first as the ledger says. On a failed write the segment is cut
    /// back, so it never holds part of a frame while running.
    pub(crate) fn append(
        &mut self,
        bytes: &[u8],
        frames: u64,
        records: u64,
    ) -> Result<Appended, SinkError> {
        if bytes.is_empty() {
            return Ok(Appended::default());
        }
        self.heal_if_stale()?;
        let incoming = bytes.len() as u64;
        let room = self.ledger.make_room(incoming, self.numbering.next_id());
        let applied = self.apply(room.ops)?;
        let mut dropped = std::mem::take(&mut self.unreported);
        dropped.extend(applied);
        if !room.append {
            return Ok(Appended {
                bytes: 0,
                dropped,
                refused: true,
            });
        }
        if let Err(e) = self.active.append(bytes, frames) {
            // A failed cut-back leaves a partial frame: start afresh.
            self.stale |= self.active.is_broken();
            return Err(e.into());
        }
        self.ledger.appended(incoming, frames, records);
        self.numbering.advance(frames);
        self.clock.wrote();
        Ok(Appended {
            bytes: incoming,
            dropped,
            refused: false,
        })
    }

    /// Reads the next frames to send, up to `max_bytes` (at least one whole
    /// frame) and `max_frames`. Damaged bytes at the cursor are skipped
    /// (logged; returned as the count of regions). `None`: nothing to send.
    pub(crate) fn read(
        &mut self,
        max_bytes: u64,
        max_frames: usize,
    ) -> Result<(Option<Batch>, u64), SinkError> {
        self.heal_if_stale()?;
        let mut skipped = 0;
        loop {
            let Some(span) = self.ledger.unacked() else {
                return Ok((None, skipped));
            };
            let path = self.path(span.id);
            let mut want = (span.to - span.from).min(max_bytes.max(1));
            let mut max_frames = max_frames.max(1);
            let (frames, body, damage) = loop {
                let bytes = read_at(&path, span.from, want)?;
                // Only the segment's end ends the input: a candidate whose
                // claim runs past the window may still be a frame.
                let eof = span.from + want == span.to;
                let reader = FrameReader::new(&bytes, 0);
                let mut reader = if eof { reader.at_eof() } else { reader };
                let mut frames = Vec::new();
                let mut damage = None;
                let mut end = 0;
                for item in reader.by_ref() {
                    match item {
                        ReadItem::Frame { offset, len, frame } => {
                            if frames.len() >= max_frames {
                                break;
                            }
                            frames.push(FrameInfo {
                                id: (frame.header.session, frame.header.seq),
                                offset,
                                len: len as u64,
                                records: frame.record_count() as u64,
                            });
                            end = offset + len as u64;
                        }
                        ReadItem::Skipped { len, error, .. } => {
                            if frames.is_empty() {
                                damage = Some((len as u64, error));
                            }
                            break;
                        }
                    }
                }
                if frames.is_empty() && damage.is_none() && !eof {
                    // A window of MAX_FRAME holds any frame: what stops it is
                    // damage, skipped up to its first undecided candidate.
                    if want >= MAX_FRAME {
                        if let Some(ReadItem::Skipped { len, error, .. }) = reader.damage_so_far() {
                            damage = Some((len as u64, error));
                        }
                    } else {
                        // The first frame is larger than the limit: read it
                        // whole, alone.
                        want = (span.to - span.from).min(MAX_FRAME);
                        max_frames = 1;
                        continue;
                    }
                }
                let mut bytes = bytes;
                bytes.truncate(end as usize);
                break (frames, Bytes::from(bytes), damage);
            };
            if let Some((len, error)) = damage {
                tracing::warn!(path = %path.display(), offset = span.from, bytes = len, %error, "damaged bytes in the spool skipped");
                skipped += 1;
                if let Some(op) = self.ledger.advance(span.id, span.from, len, 0, 0).flatten() {
                    self.apply(vec![op])?;
                }
                continue;
            }
            return Ok((
                Some(Batch {
                    segment: span.id,
                    from: span.from,
                    body,
                    frames,
                }),
                skipped,
            ));
        }
    }

    /// Marks the first `n` frames of `batch` acknowledged: the cursor moves
    /// past them (if no drop moved it meanwhile), finished segments are
    /// deleted, and the ack point is persisted when due.
    pub(crate) fn ack(&mut self, batch: &Batch, n: usize) -> Result<(), SinkError> {
        let n = n.min(batch.frames.len());
        let Some(last) = n.checked_sub(1).and_then(|i| batch.frames.get(i)) else {
            return Ok(());
        };
        let bytes = last.offset + last.len;
        let records = batch.frames[..n].iter().map(|f| f.records).sum();
        if let Some(op) = self
            .ledger
            .advance(batch.segment, batch.from, bytes, n as u64, records)
        {
            if self.acked.is_none_or(|a| a < last.id) {
                self.acked = Some(last.id);
            }
            let deleted = op.is_some();
            self.apply(op.into_iter().collect())?;
            if deleted || self.last_ack_write.elapsed() >= ACK_PERSIST_EVERY {
                self.persist_ack()?;
            }
        }
        Ok(())
    }

    /// Moves the first frame of `batch` to the quarantine file and past
    /// the cursor, as if acknowledged. Returns the quarantine file's path.
    pub(crate) fn quarantine(&mut self, batch: &Batch) -> Result<PathBuf, SinkError> {
        let qdir = self.dir.join(QUARANTINE_DIR);
        store::create_dir(&qdir)?;
        let path = qdir.join("quarantine.sonde");
        let mut file = if path.exists() {
            Segment::open_raw(&path)?
        } else {
            Segment::create(&path)?
        };
        if let Some(first) = batch.frames.first() {
            let bytes = batch
                .body
                .get(first.offset as usize..(first.offset + first.len) as usize)
                .unwrap_or_default();
            file.append(bytes, 1)?;
            file.sync()?;
        }
        self.ack(batch, 1)?;
        Ok(path)
    }

    /// Time-based work: the periodic sync and a pending ack point.
    pub(crate) fn tick(&mut self) -> Result<(), SinkError> {
        self.heal_if_stale()?;
        if self.clock.due(Instant::now()) {
            self.sync()?;
        }
        if self.acked != self.acked_written && self.last_ack_write.elapsed() >= ACK_PERSIST_EVERY {
            self.persist_ack()?;
        }
        Ok(())
    }

    /// Syncs the data and writes the ack point.
    pub(crate) fn close(&mut self) -> Result<(), SinkError> {
        self.sync()?;
        self.persist_ack()?;
        Ok(sync_dir(&self.dir)?)
    }

    /// Syncs the active segment. A failure makes it unusable (the store's
    /// [`Segment::sync`]): the spool is reopened from disk on the next
    /// call and goes on in a new segment.
    fn sync(&mut self) -> Result<(), SinkError> {
        if let Err(e) = self.active.sync() {
            self.stale = true;
            return Err(e.into());
        }
        self.clock.synced(Instant::now());
        Ok(())
    }

    fn persist_ack(&mut self) -> Result<(), SinkError> {
        self.last_ack_write = Instant::now();
        let Some((session, seq)) = self.acked else {
            return Ok(());
        };
        if self.acked_written == self.acked {
            return Ok(());
        }
        self.cursor.store(&format!("{session} {seq}\n"))?;
        self.acked_written = self.acked;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
