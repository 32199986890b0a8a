//! Scans bytes for frames: yields every good frame, reports every damaged
//! region once, as one range (offset and length), and resynchronises at
//! the next good frame. [`FrameReader`] works on a slice; [`FrameStream`]
//! on bytes that arrive in pieces (a file read in chunks, a followed file),
//! carrying a damaged region and its resync across pieces.
//!
//! Resync looks for the next frame marker whose envelope checks out (length
//! in bounds, CRC-32 correct); [`crate::resync`] makes that linear in the
//! length of the damage. The caller owns reading, following and retries.

use crate::error::FrameError;
use crate::frame::{Frame, decode_checked, envelope_len};
use crate::resync::{Found, Resync};

/// The most work ([`FrameReader::work`]) a reader does per byte of input,
/// whatever the input, counting every byte scanned, hashed or decoded: one
/// scan, one hash for checkpoints, one for candidate starts, under 32
/// bytes per candidate, which are at least 2 bytes apart (WIRE.md 2.5.1),
/// one hash and one decode of each good frame, and one direct hash of a
/// failed claim at a frame's start (claims hashed directly never overlap).
/// A [`FrameStream`] may do up to twice this.
pub const MAX_WORK_PER_BYTE: u64 = 24;

/// One step of a [`FrameReader`] or [`FrameStream`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadItem {
    /// A good frame.
    Frame {
        /// Where it starts, counted from the reader's base offset.
        offset: u64,
        /// Its length in bytes.
        len: usize,
        /// The frame.
        frame: Frame,
    },
    /// Bytes that are not a good frame, skipped as a whole: a damaged
    /// region (everything up to the next good frame or the end), or one
    /// frame with an intact envelope that cannot be read.
    Skipped {
        /// Where they start, counted from the reader's base offset.
        offset: u64,
        /// How many bytes were skipped.
        len: usize,
        /// What was wrong at `offset` (offsets inside are relative to it).
        error: FrameError,
    },
}

/// Iterates over the frames in a byte slice laid end to end.
///
/// By default the slice may be the start of a longer stream: iteration
/// stops before a frame that is not complete yet, or a damaged region
/// whose end is not in the slice, and [`consumed`] tells how far items
/// went. After [`at_eof`] the slice is all there is, and an unfinished
/// tail is reported as [`ReadItem::Skipped`] with
/// [`FrameError::Incomplete`] (a torn tail).
///
/// [`consumed`]: FrameReader::consumed
/// [`at_eof`]: FrameReader::at_eof
#[derive(Debug, Clone)]
pub struct FrameReader<'a> {
    buf: &'a [u8],
    base: u64,
    eof: bool,
    core: Core,
}

impl<'a> FrameReader<'a> {
    /// A reader over `buf`, whose first byte is at `base_offset` in the
    /// stream or file (offsets in items count from there).
    pub fn new(buf: &'a [u8], base_offset: u64) -> Self {
        FrameReader {
            buf,
            base: base_offset,
            eof: false,
            core: Core::new(base_offset),
        }
    }

    /// Declares that `buf` ends the stream: an unfinished tail is reported.
    pub fn at_eof(mut self) -> Self {
        self.eof = true;
        self
    }

    /// Bytes of `buf` that items have covered. Without [`at_eof`], the
    /// rest (if any) is a frame still being written or a damaged region
    /// whose end is not known yet. To read on as more bytes arrive, use
    /// [`FrameStream`], which does not scan them again.
    ///
    /// [`at_eof`]: FrameReader::at_eof
    pub fn consumed(&self) -> usize {
        (self.core.pos - self.base) as usize
    }

    /// Bytes scanned or checksummed so far: the reader's cost, at most a
    /// small multiple of the input's length whatever the input.
    pub fn work(&self) -> u64 {
        self.core.work
    }

    /// Without [`at_eof`], once items stop inside a damaged region whose
    /// end is not in `buf`: its bytes up to the first candidate not yet
    /// decided, where no good frame starts, as a [`ReadItem::Skipped`].
    /// For a caller whose window cannot grow (it holds a whole frame's
    /// worth) and must move on; `None` outside damage.
    ///
    /// [`at_eof`]: FrameReader::at_eof
    pub fn damage_so_far(&self) -> Option<ReadItem> {
        self.core.damage_so_far()
    }
}

impl Iterator for FrameReader<'_> {
    type Item = ReadItem;

    fn next(&mut self) -> Option<ReadItem> {
        self.core.next(self.buf, self.base, self.eof)
    }
}

/// A [`FrameReader`] for bytes that arrive in pieces: [`push`] bytes,
/// take items until `None`, push more; [`finish`] at the end of input to
/// get the tail. Items and offsets are those a [`FrameReader`] over all
/// the bytes at once would give. It holds the unfinished frame, or during
/// a damaged region the bytes a pending candidate needs (at most one
/// frame's worth), never the region.
///
/// [`push`]: FrameStream::push
/// [`finish`]: FrameStream::finish
#[derive(Debug, Clone)]
pub struct FrameStream {
    buf: Vec<u8>,
    /// Offset of `buf[0]`.
    start: u64,
    eof: bool,
    core: Core,
}

impl FrameStream {
    /// A stream whose first byte will be at `base_offset`.
    pub fn new(base_offset: u64) -> Self {
        FrameStream {
            buf: Vec::new(),
            start: base_offset,
            eof: false,
            core: Core::new(base_offset),
        }
    }

    /// Appends the next bytes of the input.
    pub fn push(&mut self, bytes: &[u8]) {
        let done = (self.core.keep_from() - self.start) as usize;
        // Drop what is no longer needed once it is a quarter of what is,
        // so that moving the rest costs at most 4 moves per byte dropped.
        if done > 0 && done * 4 >= self.buf.len() - done {
            self.buf.drain(..done);
            self.start += done as u64;
        }
        // Grow by a quarter, not double: memory stays near what is held.
        let need = self.buf.len() + bytes.len();
        if need > self.buf.capacity() {
            self.buf.reserve_exact(bytes.len().max(self.buf.len() / 4));
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Declares the end of input: the next items report an unfinished tail.
    pub fn finish(&mut self) {
        self.eof = true;
    }

    /// The offset just past the last byte pushed.
    pub fn end(&self) -> u64 {
        self.start + self.buf.len() as u64
    }

    /// Memory held for frames or candidates not decided yet, in bytes
    /// (the buffer's capacity, not only what it holds now).
    pub fn buffered(&self) -> usize {
        self.buf.capacity()
    }

    /// Bytes scanned or checksummed so far (see [`FrameReader::work`]).
    pub fn work(&self) -> u64 {
        self.core.work
    }
}

impl Iterator for FrameStream {
    type Item = ReadItem;

    fn next(&mut self) -> Option<ReadItem> {
        self.core.next(&self.buf, self.start, self.eof)
    }
}

enum Probe {
    Good(usize),
    Incomplete(FrameError),
    Bad(FrameError),
}

/// Where a reader is: the state both readers share.
#[derive(Debug, Clone)]
struct Core {
    /// Where the next item starts.
    pos: u64,
    state: State,
    /// One resync for the whole input: its prefix CRCs, computed once per
    /// byte, check every candidate, in damage or at a frame's start.
    resync: Resync,
    /// A frame start before this offset is checked from the prefix CRCs,
    /// not by hashing its claim: a claim hashed directly failed here, and
    /// the frames after it may lie inside the next claims.
    suspect_until: u64,
    work: u64,
}

#[derive(Debug, Clone)]
enum State {
    /// A frame should start at `pos`.
    AtFrame,
    /// The bytes from `pos` are damaged (`error` says how); looking for
    /// the good frame that ends the region.
    Damaged { error: FrameError },
    /// The frame at `pos` runs past the bytes there are; a good frame
    /// found before its end means it was torn.
    Unfinished,
}

fn len_between(from: u64, to: u64) -> usize {
    usize::try_from(to - from).unwrap_or(usize::MAX)
}

impl Core {
    fn new(pos: u64) -> Self {
        Core {
            pos,
            state: State::AtFrame,
            resync: Resync::new(pos),
            suspect_until: pos,
            work: 0,
        }
    }

    /// The first offset whose bytes are still needed.
    fn keep_from(&self) -> u64 {
        match self.state {
            State::Damaged { .. } => self.resync.keep_from(),
            State::AtFrame | State::Unfinished => self.resync.keep_from().min(self.pos),
        }
    }

    /// The envelope of the frame that should start at `pos`. Its checksum
    /// is hashed directly (fast) unless a direct hash failed on a claim
    /// still reaching here: then from the prefix CRCs, which the next
    /// claims share, so that no byte is hashed once per claim.
    fn probe(&mut self, window: &[u8], start: u64) -> Probe {
        let rest = window
            .get((self.pos.saturating_sub(start)) as usize..)
            .unwrap_or_default();
        let total = match envelope_len(rest) {
            Ok(total) => total,
            Err(e @ FrameError::Incomplete { .. }) => return Probe::Incomplete(e),
            Err(e) => return Probe::Bad(e),
        };
        let body_end = total - 4;
        let mut stored = [0u8; 4];
        stored.copy_from_slice(&rest[body_end..total]);
        let stored = u32::from_le_bytes(stored);
        self.resync.restart(self.pos);
        let computed = if self.pos < self.suspect_until && self.pos >= self.resync.keep_from() {
            let crc_at = self.pos + body_end as u64;
            self.resync
                .range_crc(window, start, self.pos, crc_at, &mut self.work)
        } else {
            self.work += body_end as u64;
            let computed = crc32fast::hash(&rest[..body_end]);
            if computed != stored {
                self.suspect_until = self.pos + total as u64;
            }
            computed
        };
        if computed == stored {
            Probe::Good(total)
        } else {
            Probe::Bad(FrameError::Checksum { stored, computed })
        }
    }

    /// The next item from `window` (the bytes from offset `start`, reaching
    /// back to [`Core::keep_from`]), or `None` when more bytes are needed
    /// (or, at `eof`, when all is read).
    fn next(&mut self, window: &[u8], start: u64, eof: bool) -> Option<ReadItem> {
        let end = start + window.len() as u64;
        loop {
            if self.pos >= end && matches!(self.state, State::AtFrame) {
                return None;
            }
            match std::mem::replace(&mut self.state, State::AtFrame) {
                State::AtFrame => match self.probe(window, start) {
                    Probe::Good(len) => return Some(self.frame(window, start, len)),
                    Probe::Bad(error) => {
                        self.resync.restart(self.pos + 1);
                        self.state = State::Damaged { error };
                    }
                    Probe::Incomplete(_) => {
                        self.resync.restart(self.pos + 1);
                        self.state = State::Unfinished;
                    }
                },
                State::Damaged { error } => {
                    match self.resync.run(window, start, eof, &mut self.work) {
                        Found::Good(at) => return Some(self.skip_to(at, error)),
                        Found::End => return Some(self.skip_to(end, error)),
                        Found::NeedMore => {
                            self.state = State::Damaged { error };
                            return None;
                        }
                    }
                }
                State::Unfinished => match self.probe(window, start) {
                    Probe::Good(len) => return Some(self.frame(window, start, len)),
                    // Candidates the resync ruled out stay ruled out.
                    Probe::Bad(error) => self.state = State::Damaged { error },
                    Probe::Incomplete(error) => {
                        match self.resync.run(window, start, eof, &mut self.work) {
                            Found::Good(at) => {
                                let next = len_between(self.pos, at);
                                return Some(self.skip_to(at, FrameError::Torn { next }));
                            }
                            Found::End => return Some(self.skip_to(end, error)),
                            Found::NeedMore => {
                                self.state = State::Unfinished;
                                return None;
                            }
                        }
                    }
                },
            }
        }
    }

    /// The damaged bytes from `pos` that the resync has ruled out.
    fn damage_so_far(&self) -> Option<ReadItem> {
        match &self.state {
            State::Damaged { error } if self.resync.cursor() > self.pos => {
                Some(ReadItem::Skipped {
                    offset: self.pos,
                    len: len_between(self.pos, self.resync.cursor()),
                    error: error.clone(),
                })
            }
            _ => None,
        }
    }

    /// The frame whose envelope checked out at `pos`, `len` bytes.
    fn frame(&mut self, window: &[u8], start: u64, len: usize) -> ReadItem {
        let rest = window
            .get((self.pos.saturating_sub(start)) as usize..)
            .unwrap_or_default();
        let offset = self.pos;
        self.pos += len as u64;
        self.work += len as u64;
        self.resync.restart(self.pos);
        match decode_checked(rest, len) {
            Ok(frame) => ReadItem::Frame { offset, len, frame },
            Err(error) => ReadItem::Skipped { offset, len, error },
        }
    }

    fn skip_to(&mut self, to: u64, error: FrameError) -> ReadItem {
        let item = ReadItem::Skipped {
            offset: self.pos,
            len: len_between(self.pos, to),
            error,
        };
        self.pos = to;
        item
    }
}
