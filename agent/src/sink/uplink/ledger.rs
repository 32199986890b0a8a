//! The spool's bookkeeping as plain values: which segments exist, how big
//! they are, where the first unacknowledged frame is, what to rotate and
//! what to drop when the spool is full. No files: [`super::spool`] asks
//! the ledger what to do and does it.
//!
//! Invariant: everything before the cursor is acknowledged, and a segment
//! is deleted as soon as the cursor leaves it, so the cursor is always in
//! the oldest segment, and the newest segment is the one being appended to.

use std::collections::VecDeque;
use std::time::Duration;

use wire::FILE_HEADER_LEN;

/// A frame's identity within one agent: `(session, seq)`, compared as a
/// pair (session first), as the gateway compares it.
pub(crate) type FrameId = (u64, u64);

/// What the spool does when appending a frame would pass its size limit.
/// The limit is `spool_max_bytes`; the spool holds at most the limit plus
/// one frame (a single frame larger than the whole limit is still kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum WhenFull {
    /// Delete the oldest segments (whole files) until the new frame fits.
    /// The newest results survive a long outage, which is what a dashboard
    /// wants when the gateway comes back; the oldest are lost, counted
    /// (`sonde_sink_records_dropped_total`) and logged with how many
    /// records each deleted segment held. Loses up to a segment's worth
    /// more than strictly needed, in exchange for never rewriting a file.
    /// The default, and what the issue asks for.
    #[default]
    DropOldest,
    /// Refuse the new frame (counted and logged); the spool keeps the
    /// oldest results. For deployments where the start of an outage
    /// matters more than its end (forensics); the agent's newest results
    /// then only reach the gateway once the backlog is acknowledged.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "no configuration selects it yet; the ledger tests do"
        )
    )]
    DropNewest,
}

/// One segment file as the ledger sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    /// `(session, seq)` of its first frame (also its name).
    pub(crate) id: FrameId,
    /// File length in bytes, file header included.
    pub(crate) len: u64,
    /// Frames in the file.
    pub(crate) frames: u64,
    /// Records in those frames.
    pub(crate) records: u64,
}

impl SegmentMeta {
    /// A segment holding only its file header.
    pub(crate) fn empty(id: FrameId) -> Self {
        SegmentMeta {
            id,
            len: FILE_HEADER_LEN as u64,
            frames: 0,
            records: 0,
        }
    }
}

/// The first unacknowledged byte: an offset into the oldest segment, and
/// how much of that segment is behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Byte offset in the oldest segment.
    pub(crate) offset: u64,
    /// Frames of the oldest segment before `offset`.
    pub(crate) frames: u64,
    /// Records of the oldest segment before `offset`.
    pub(crate) records: u64,
}

impl Cursor {
    fn start() -> Self {
        Cursor {
            offset: FILE_HEADER_LEN as u64,
            frames: 0,
            records: 0,
        }
    }
}

/// A file operation the ledger asks for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileOp {
    /// Start a new segment with this id; appends go there from now on.
    Create(FrameId),
    /// Delete the segment with this id.
    Delete {
        /// The segment.
        id: FrameId,
        /// Unacknowledged frames it held (0 when the cursor left it).
        lost_frames: u64,
        /// Unacknowledged records it held.
        lost_records: u64,
    },
}

/// What to do with an incoming frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Room {
    /// File operations to perform first.
    pub(crate) ops: Vec<FileOp>,
    /// Whether to append the frame (`false`: dropped under
    /// [`WhenFull::DropNewest`]).
    pub(crate) append: bool,
}

/// A span of the oldest segment to read: `from..to` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// The segment.
    pub(crate) id: FrameId,
    /// First byte (the cursor).
    pub(crate) from: u64,
    /// End of the segment's bytes as of now (a frame boundary).
    pub(crate) to: u64,
}

/// The spool's bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    segments: VecDeque<SegmentMeta>,
    cursor: Cursor,
    max_bytes: u64,
    segment_max_bytes: u64,
    when_full: WhenFull,
}

/// The size a segment rotates at for a spool of `max_bytes`: a sixteenth
/// of it (so dropping one loses a small part of the spool), between 64 KiB
/// and 64 MiB.
pub(crate) fn segment_max_bytes(max_bytes: u64) -> u64 {
    (max_bytes / 16).clamp(64 << 10, 64 << 20)
}

impl Ledger {
    /// A ledger over `segments` (oldest first, the last one active; at
    /// least one) with the cursor in the first.
    pub(crate) fn new(
        segments: Vec<SegmentMeta>,
        cursor: Cursor,
        max_bytes: u64,
        when_full: WhenFull,
    ) -> Self {
        Ledger {
            segments: segments.into(),
            cursor,
            max_bytes,
            segment_max_bytes: segment_max_bytes(max_bytes),
            when_full,
        }
    }

    /// Bytes on disk, file headers included.
    pub(crate) fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// Bytes not yet acknowledged.
    #[cfg(test)]
    pub(crate) fn unacked_bytes(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.len - FILE_HEADER_LEN as u64)
            .sum::<u64>()
            - (self.cursor.offset - FILE_HEADER_LEN as u64)
    }

    /// Frames not yet acknowledged.
    pub(crate) fn unacked_frames(&self) -> u64 {
        self.segments.iter().map(|s| s.frames).sum::<u64>() - self.cursor.frames
    }

    /// The segments, oldest first.
    #[cfg(test)]
    pub(crate) fn segments(&self) -> impl Iterator<Item = &SegmentMeta> {
        self.segments.iter()
    }

    /// The cursor.
    #[cfg(test)]
    pub(crate) fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// The segment being appended to.
    pub(crate) fn active(&self) -> Option<&SegmentMeta> {
        self.segments.back()
    }

    /// Decides how to fit `incoming` bytes whose first frame will be
    /// `next`: rotate when the active segment would pass its size, and,
    /// when the spool would pass its limit, apply the [`WhenFull`] policy.
    /// The ledger is updated as if the operations succeeded.
    pub(crate) fn make_room(&mut self, incoming: u64, next: FrameId) -> Room {
        let mut ops = Vec::new();
        let active_frames = self.active().map_or(0, |a| a.frames);
        let active_full = self.active().is_some_and(|a| {
            let (age, max_age) = (Duration::ZERO, Duration::MAX);
            store::rotation(
                a.len,
                a.frames,
                age,
                incoming,
                self.segment_max_bytes,
                max_age,
            )
            .is_some()
        });
        let over = self.bytes() + incoming > self.max_bytes;
        // Full: the active segment is finished too, so that it can go.
        if active_full || (over && active_frames > 0) || self.segments.is_empty() {
            self.segments.push_back(SegmentMeta::empty(next));
            ops.push(FileOp::Create(next));
            ops.extend(self.retire());
        }
        if self.bytes() + incoming > self.max_bytes {
            match self.when_full {
                WhenFull::DropNewest => return Room { ops, append: false },
                WhenFull::DropOldest => {
                    while self.bytes() + incoming > self.max_bytes && self.segments.len() > 1 {
                        ops.extend(self.pop_oldest());
                    }
                }
            }
        }
        Room { ops, append: true }
    }

    /// Deletes the oldest segment while the cursor is at its end and a
    /// newer one exists.
    fn retire(&mut self) -> Option<FileOp> {
        let oldest = self.segments.front()?;
        (self.segments.len() > 1 && self.cursor.offset >= oldest.len)
            .then(|| self.pop_oldest())
            .flatten()
    }

    fn pop_oldest(&mut self) -> Option<FileOp> {
        let oldest = self.segments.pop_front()?;
        let op = FileOp::Delete {
            id: oldest.id,
            lost_frames: oldest.frames - self.cursor.frames,
            lost_records: oldest.records - self.cursor.records,
        };
        self.cursor = Cursor::start();
        Some(op)
    }

    /// Records an append of `bytes` holding `frames` frames with `records`
    /// records to the active segment.
    pub(crate) fn appended(&mut self, bytes: u64, frames: u64, records: u64) {
        if let Some(a) = self.segments.back_mut() {
            a.len += bytes;
            a.frames += frames;
            a.records += records;
        }
    }

    /// What to send next: the unacknowledged bytes of the oldest segment,
    /// or `None` when everything is acknowledged.
    pub(crate) fn unacked(&self) -> Option<Span> {
        let oldest = self.segments.front()?;
        (self.cursor.offset < oldest.len).then_some(Span {
            id: oldest.id,
            from: self.cursor.offset,
            to: oldest.len,
        })
    }

    /// Moves the cursor past `bytes` bytes holding `frames` frames and
    /// `records` records, if it still stands at `from` in segment `id`
    /// (frames that were dropped while in flight are not counted twice).
    /// Returns the segment to delete when the cursor left it. Returns
    /// `None` and changes nothing when the cursor is elsewhere.
    pub(crate) fn advance(
        &mut self,
        id: FrameId,
        from: u64,
        bytes: u64,
        frames: u64,
        records: u64,
    ) -> Option<Option<FileOp>> {
        let oldest = self.segments.front()?;
        if oldest.id != id || self.cursor.offset != from || from + bytes > oldest.len {
            return None;
        }
        self.cursor.offset += bytes;
        self.cursor.frames += frames;
        self.cursor.records += records;
        Some(self.retire())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = FILE_HEADER_LEN as u64;

    fn ledger(max: u64, when_full: WhenFull) -> Ledger {
        Ledger::new(
            vec![SegmentMeta::empty((1, 0))],
            Cursor::start(),
            max,
            when_full,
        )
    }

    /// Appends frames of `size` bytes and one record each, seq from `next`.
    fn append(l: &mut Ledger, next: &mut u64, size: u64) -> Room {
        let room = l.make_room(size, (1, *next));
        if room.append {
            l.appended(size, 1, 1);
            *next += 1;
        }
        room
    }

    #[test]
    fn segment_size_is_a_sixteenth_within_bounds() {
        assert_eq!(segment_max_bytes(256 << 20), 16 << 20);
        assert_eq!(segment_max_bytes(1), 64 << 10);
        assert_eq!(segment_max_bytes(u64::MAX), 64 << 20);
    }

    #[test]
    fn append_then_ack_moves_the_cursor_and_deletes_finished_segments() {
        let mut l = ledger(1 << 30, WhenFull::DropOldest);
        let mut next = 0;
        assert_eq!(append(&mut l, &mut next, 100).ops, []);
        assert_eq!(
            l.unacked(),
            Some(Span {
                id: (1, 0),
                from: H,
                to: H + 100
            })
        );
        assert_eq!(l.unacked_frames(), 1);
        // Acknowledged: nothing left, the active segment stays.
        assert_eq!(l.advance((1, 0), H, 100, 1, 1), Some(None));
        assert_eq!(l.unacked(), None);
        assert_eq!(l.unacked_bytes(), 0);
        // A stale acknowledgement changes nothing.
        assert_eq!(l.advance((1, 0), H, 100, 1, 1), None);
        // Fill past the segment size: rotation creates (1, 1) and retires
        // the acknowledged segment.
        let big = segment_max_bytes(1 << 30);
        let room = append(&mut l, &mut next, big);
        assert_eq!(
            room.ops,
            [
                FileOp::Create((1, 1)),
                FileOp::Delete {
                    id: (1, 0),
                    lost_frames: 0,
                    lost_records: 0
                }
            ]
        );
        assert_eq!(l.segments().count(), 1);
        assert_eq!(
            l.unacked(),
            Some(Span {
                id: (1, 1),
                from: H,
                to: H + big
            })
        );
    }

    #[test]
    fn full_spool_drops_the_oldest_segments_and_counts_what_was_lost() {
        let seg = segment_max_bytes(0);
        // Room for about three segments.
        let max = 3 * seg + 3 * H;
        let mut l = ledger(max, WhenFull::DropOldest);
        let mut next = 0;
        let frame = seg / 4;
        let mut deleted = Vec::new();
        for _ in 0..40 {
            for op in append(&mut l, &mut next, frame).ops {
                if let FileOp::Delete { .. } = op {
                    deleted.push(op);
                }
            }
            assert!(l.bytes() <= max, "{} > {max}", l.bytes());
        }
        assert!(!deleted.is_empty());
        // Every deleted segment held unacknowledged frames: all counted.
        let lost: u64 = deleted
            .iter()
            .map(|op| match op {
                FileOp::Delete { lost_records, .. } => *lost_records,
                FileOp::Create(_) => 0,
            })
            .sum();
        assert_eq!(lost + l.unacked_frames(), 40);
        // The oldest survivor is where the cursor is, at its start.
        assert_eq!(l.cursor(), Cursor::start());
        assert_eq!(l.unacked().map(|s| s.id), l.segments().next().map(|s| s.id));
    }

    #[test]
    fn dropping_a_partly_acknowledged_segment_counts_only_the_rest() {
        let seg = segment_max_bytes(0);
        let mut l = ledger(2 * seg, WhenFull::DropOldest);
        let mut next = 0;
        for _ in 0..4 {
            append(&mut l, &mut next, seg / 4);
        }
        assert_eq!(l.advance((1, 0), H, seg / 4, 1, 1), Some(None));
        // The fourth append rotated: (1, 0) holds three frames, one of
        // them acknowledged. The next appends fill the limit, and the
        // first segment goes with its two unacknowledged frames.
        let mut ops = Vec::new();
        for _ in 0..4 {
            ops.extend(append(&mut l, &mut next, seg / 4).ops);
        }
        assert!(
            ops.contains(&FileOp::Delete {
                id: (1, 0),
                lost_frames: 2,
                lost_records: 2
            }),
            "{ops:?}"
        );
        // A late acknowledgement of frames in the deleted segment is ignored.
        assert_eq!(l.advance((1, 0), H + seg / 4, seg / 4, 1, 1), None);
    }

    #[test]
    fn a_frame_larger_than_the_spool_is_kept_alone() {
        let mut l = ledger(1000, WhenFull::DropOldest);
        let mut next = 0;
        append(&mut l, &mut next, 10);
        let room = append(&mut l, &mut next, 5000);
        assert!(room.append);
        assert_eq!(
            room.ops,
            [
                FileOp::Create((1, 1)),
                FileOp::Delete {
                    id: (1, 0),
                    lost_frames: 1,
                    lost_records: 1
                }
            ]
        );
        assert_eq!(l.segments().count(), 1);
    }

    #[test]
    fn drop_newest_refuses_the_frame_and_keeps_the_backlog() {
        let mut l = ledger(H + 250, WhenFull::DropNewest);
        let mut next = 0;
        assert!(append(&mut l, &mut next, 100).append);
        assert!(append(&mut l, &mut next, 100).append);
        let room = append(&mut l, &mut next, 100);
        assert_eq!(
            room,
            Room {
                ops: vec![FileOp::Create((1, 2))],
                append: false
            }
        );
        assert_eq!(l.unacked_frames(), 2);
        assert!(!append(&mut l, &mut next, 100).append);
        // Once the backlog is acknowledged, its segment goes and there is room.
        assert_eq!(
            l.advance((1, 0), H, 200, 2, 2),
            Some(Some(FileOp::Delete {
                id: (1, 0),
                lost_frames: 0,
                lost_records: 0
            }))
        );
        assert!(append(&mut l, &mut next, 100).append);
        assert_eq!(next, 3);
    }
}
