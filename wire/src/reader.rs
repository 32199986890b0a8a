//! Scans bytes for frames: yields every good frame, reports every damaged
//! region with its offset and length, and resynchronises at the next good
//! frame. Works on a slice; the caller owns reading, following and retries.
//!
//! Resync looks for the next frame marker whose envelope checks out (length
//! in bounds, CRC-32 correct). Damage costs a scan of the damaged region,
//! one CRC per marker found in it.

use crate::error::FrameError;
use crate::frame::{FRAME_MARKER, Frame, check_envelope, decode_checked};

/// One step of a [`FrameReader`].
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
    /// Bytes that are not a good frame, skipped as a whole.
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
/// stops before a frame that is not complete yet, and [`consumed`] tells how
/// far the caller may drop bytes. After [`at_eof`] the slice is all there
/// is, and an unfinished tail is reported as [`ReadItem::Skipped`] with
/// [`FrameError::Incomplete`] (a torn tail).
///
/// [`consumed`]: FrameReader::consumed
/// [`at_eof`]: FrameReader::at_eof
#[derive(Debug, Clone)]
pub struct FrameReader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
    eof: bool,
}

enum Probe {
    Good(usize),
    Incomplete(FrameError),
    Bad(FrameError),
}

fn probe(bytes: &[u8]) -> Probe {
    match check_envelope(bytes) {
        Ok(len) => Probe::Good(len),
        Err(e @ FrameError::Incomplete { .. }) => Probe::Incomplete(e),
        Err(e) => Probe::Bad(e),
    }
}

enum Scan {
    /// A good frame starts here.
    Good(usize),
    /// No good frame, but one may be starting here as more bytes arrive.
    Tail(usize),
    /// Nothing here can become a frame.
    Nothing,
}

impl<'a> FrameReader<'a> {
    /// A reader over `buf`, whose first byte is at `base_offset` in the
    /// stream or file (offsets in items count from there).
    pub fn new(buf: &'a [u8], base_offset: u64) -> Self {
        FrameReader {
            buf,
            pos: 0,
            base: base_offset,
            eof: false,
        }
    }

    /// Declares that `buf` ends the stream: an unfinished tail is reported.
    pub fn at_eof(mut self) -> Self {
        self.eof = true;
        self
    }

    /// Bytes of `buf` that have been dealt with. Without [`at_eof`], the
    /// rest (if any) is the start of a frame still being written.
    ///
    /// [`at_eof`]: FrameReader::at_eof
    pub fn consumed(&self) -> usize {
        self.pos
    }

    fn resync_from(&self, from: usize) -> Scan {
        let mut tail = None;
        let start = from.min(self.buf.len());
        for (i, &b) in self.buf[start..].iter().enumerate() {
            if b != FRAME_MARKER[0] {
                continue;
            }
            let at = start + i;
            match probe(&self.buf[at..]) {
                Probe::Good(_) => return Scan::Good(at),
                Probe::Incomplete(_) => {
                    tail.get_or_insert(at);
                }
                Probe::Bad(_) => {}
            }
        }
        tail.map_or(Scan::Nothing, Scan::Tail)
    }

    fn skip_to(&mut self, to: usize, error: FrameError) -> ReadItem {
        let item = ReadItem::Skipped {
            offset: self.base + self.pos as u64,
            len: to - self.pos,
            error,
        };
        self.pos = to;
        item
    }
}

impl Iterator for FrameReader<'_> {
    type Item = ReadItem;

    fn next(&mut self) -> Option<ReadItem> {
        let rest = self.buf.get(self.pos..).filter(|r| !r.is_empty())?;
        match probe(rest) {
            Probe::Good(len) => {
                let offset = self.base + self.pos as u64;
                self.pos += len;
                Some(match decode_checked(rest, len) {
                    Ok(frame) => ReadItem::Frame { offset, len, frame },
                    Err(error) => ReadItem::Skipped { offset, len, error },
                })
            }
            Probe::Bad(error) => match self.resync_from(self.pos + 1) {
                Scan::Good(at) | Scan::Tail(at) => Some(self.skip_to(at, error)),
                Scan::Nothing => Some(self.skip_to(self.buf.len(), error)),
            },
            Probe::Incomplete(error) => match self.resync_from(self.pos + 1) {
                Scan::Good(at) => {
                    let next = at - self.pos;
                    Some(self.skip_to(at, FrameError::Torn { next }))
                }
                Scan::Tail(_) | Scan::Nothing if self.eof => {
                    Some(self.skip_to(self.buf.len(), error))
                }
                Scan::Tail(_) | Scan::Nothing => None,
            },
        }
    }
}
