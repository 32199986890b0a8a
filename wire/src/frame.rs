//! Frames: a batch of records from one agent, with a header that makes it
//! the unit a gateway acknowledges and deduplicates, in an envelope (marker,
//! version, length, CRC-32) that lets a reader detect damage and resync.
//!
//! This module encodes and decodes one frame; scanning a byte stream for
//! frames and skipping damage is [`crate::reader`]'s job.

use std::collections::HashMap;

use crate::error::{DecodeError, EncodeError, FrameError};
use crate::msgpack::{Cursor, write_array_len, write_str, write_uint};
use crate::record::{Record, TimeBase};

/// The two bytes every frame starts with. `C1` is the one byte MessagePack
/// never uses, so record data rarely looks like the start of a frame.
pub const FRAME_MARKER: [u8; 2] = [0xc1, 0x53];

/// The frame version this crate writes and reads.
pub const FRAME_VERSION: u8 = 1;

/// The largest body a writer may produce, and a reader will consider:
/// a length field above it marks a damaged frame, never an allocation.
pub const MAX_BODY_LEN: u32 = 4 << 20;

/// Marker (2), version (1) and body length (4).
pub const FRAME_HEADER_LEN: usize = 7;

/// Envelope bytes around the body: header and the trailing CRC-32 (4).
pub const FRAME_OVERHEAD: usize = FRAME_HEADER_LEN + 4;

/// Who sent a frame and where it sits in that sender's sequence.
///
/// `(agent, session, seq)` identifies a frame: a gateway drops a frame it
/// has already seen, and replays an agent's frames ordered by
/// `(session, seq)`. Within a session, `seq` goes up by one per frame, so a
/// gap is visible.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// The agent's stable id.
    pub agent: String,
    /// Chosen when the agent starts, larger than any session the agent id
    /// used before (the start time in Unix epoch milliseconds does).
    pub session: u64,
    /// The frame's number within the session, from 0, one more per frame.
    pub seq: u64,
}

/// The records of one check within a frame, in the order they were added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckBatch {
    /// The check's stable name.
    pub check: String,
    /// Its records.
    pub records: Vec<Record>,
}

/// One frame: a header and records grouped by check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Sender and sequence.
    pub header: FrameHeader,
    /// Records grouped by check. A check may appear in more than one batch.
    pub batches: Vec<CheckBatch>,
}

/// Builds a frame record by record, grouping records by check.
#[derive(Debug)]
pub struct FrameBuilder {
    frame: Frame,
    index: HashMap<String, usize>,
    count: usize,
}

impl FrameBuilder {
    /// A builder for a frame with this header.
    pub fn new(header: FrameHeader) -> Self {
        FrameBuilder {
            frame: Frame {
                header,
                batches: Vec::new(),
            },
            index: HashMap::new(),
            count: 0,
        }
    }

    /// Adds a record of `check`.
    pub fn push(&mut self, check: &str, record: Record) {
        let batches = &mut self.frame.batches;
        let at = match self.index.get(check) {
            Some(&at) => at,
            None => {
                batches.push(CheckBatch {
                    check: check.to_owned(),
                    records: Vec::new(),
                });
                self.index.insert(check.to_owned(), batches.len() - 1);
                batches.len() - 1
            }
        };
        if let Some(batch) = batches.get_mut(at) {
            batch.records.push(record);
            self.count += 1;
        }
    }

    /// Records added so far.
    pub fn record_count(&self) -> usize {
        self.count
    }

    /// Whether no record was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The frame built.
    pub fn finish(self) -> Frame {
        self.frame
    }
}

/// Length of the first run of `records` whose t deltas all fit an `i64`
/// (the encoder starts a new batch where one does not).
fn run_len(records: &[Record]) -> usize {
    let mut prev = match records.first() {
        Some(r) => r.t_ms,
        None => return 0,
    };
    for (i, r) in records.iter().enumerate().skip(1) {
        if i64::try_from(i128::from(r.t_ms) - i128::from(prev)).is_err() {
            return i;
        }
        prev = r.t_ms;
    }
    records.len()
}

/// Splits a batch's records into runs that delta-code.
fn runs(records: &[Record]) -> impl Iterator<Item = &[Record]> {
    let mut rest = records;
    std::iter::from_fn(move || {
        let n = run_len(rest);
        if n == 0 {
            return None;
        }
        let (run, tail) = rest.split_at(n);
        rest = tail;
        Some(run)
    })
}

impl Frame {
    /// Every record with its check name, batch by batch.
    pub fn records(&self) -> impl Iterator<Item = (&str, &Record)> {
        self.batches
            .iter()
            .flat_map(|b| b.records.iter().map(move |r| (b.check.as_str(), r)))
    }

    /// How many records the frame holds.
    pub fn record_count(&self) -> usize {
        self.batches.iter().map(|b| b.records.len()).sum()
    }

    /// Appends the encoded frame to `out` and returns its length. On error
    /// `out` is left as it was.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        let start = out.len();
        out.extend_from_slice(&FRAME_MARKER);
        out.push(FRAME_VERSION);
        out.extend_from_slice(&[0; 4]);
        let body_start = out.len();

        write_array_len(out, 4);
        write_str(out, &self.header.agent);
        write_uint(out, self.header.session);
        write_uint(out, self.header.seq);
        let batch_count: usize = self.batches.iter().map(|b| runs(&b.records).count()).sum();
        write_array_len(out, batch_count);
        for batch in &self.batches {
            for run in runs(&batch.records) {
                let t_base = run.first().map_or(0, |r| r.t_ms);
                write_array_len(out, 3);
                write_str(out, &batch.check);
                write_uint(out, t_base);
                write_array_len(out, run.len());
                let mut prev = t_base;
                for record in run {
                    // `runs` guarantees the delta fits.
                    let delta = (i128::from(record.t_ms) - i128::from(prev)) as i64;
                    record.encode_with_t(out, Some(delta));
                    prev = record.t_ms;
                }
            }
        }

        let body_len = out.len() - body_start;
        let len = match u32::try_from(body_len) {
            Ok(len) if len <= MAX_BODY_LEN => len,
            _ => {
                out.truncate(start);
                return Err(EncodeError::TooLarge {
                    len: body_len,
                    max: MAX_BODY_LEN,
                });
            }
        };
        out[body_start - 4..body_start].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out.len() - start)
    }

    /// The encoded frame in a new `Vec`.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(64 + 16 * self.record_count());
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Decodes the frame at the start of `bytes`; returns it with its
    /// length. Error offsets are relative to `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<(Frame, usize), FrameError> {
        let len = check_envelope(bytes)?;
        let frame = decode_checked(bytes, len)?;
        Ok((frame, len))
    }
}

/// Checks the envelope of the frame at the start of `bytes` (marker, length
/// bound, completeness, checksum) and returns the frame's total length.
pub(crate) fn check_envelope(bytes: &[u8]) -> Result<usize, FrameError> {
    let total = envelope_len(bytes)?;
    let body_end = total - 4;
    let mut stored = [0u8; 4];
    stored.copy_from_slice(&bytes[body_end..total]);
    let stored = u32::from_le_bytes(stored);
    let computed = crc32fast::hash(&bytes[..body_end]);
    if stored != computed {
        return Err(FrameError::Checksum { stored, computed });
    }
    Ok(total)
}

/// The envelope of the frame at the start of `bytes` short of its checksum
/// (marker, length bound, completeness): the frame's total length.
pub(crate) fn envelope_len(bytes: &[u8]) -> Result<usize, FrameError> {
    let incomplete = |need| FrameError::Incomplete {
        have: bytes.len(),
        need,
    };
    let marker_len = bytes.len().min(2);
    if bytes[..marker_len] != FRAME_MARKER[..marker_len] {
        return Err(FrameError::BadMarker);
    }
    let Some(len_bytes) = bytes.get(3..7) else {
        return Err(incomplete(FRAME_OVERHEAD));
    };
    let mut len = [0u8; 4];
    len.copy_from_slice(len_bytes);
    let body_len = u32::from_le_bytes(len);
    if body_len > MAX_BODY_LEN {
        return Err(FrameError::TooLarge {
            len: body_len,
            max: MAX_BODY_LEN,
        });
    }
    let total = FRAME_HEADER_LEN + body_len as usize + 4;
    if bytes.len() < total {
        return Err(incomplete(total));
    }
    Ok(total)
}

/// Decodes a frame whose envelope `check_envelope` accepted as `len` bytes.
pub(crate) fn decode_checked(bytes: &[u8], len: usize) -> Result<Frame, FrameError> {
    let version = bytes.get(2).copied().unwrap_or(0);
    if version != FRAME_VERSION {
        return Err(FrameError::UnsupportedVersion { version });
    }
    let body = bytes
        .get(FRAME_HEADER_LEN..len.saturating_sub(4))
        .unwrap_or_default();
    Ok(decode_body(body)?)
}

/// Elements a frame header array and a batch array must have.
const HEADER_ELEMENTS: usize = 4;
const BATCH_ELEMENTS: usize = 3;
/// The fewest bytes a batch and a record can take, to bound allocations.
const MIN_BATCH_BYTES: usize = 4;
const MIN_RECORD_BYTES: usize = 9;

fn too_short(offset: usize, what: &'static str, len: usize, min: usize) -> DecodeError {
    DecodeError::TooShort {
        offset,
        what,
        len,
        min,
    }
}

/// Decodes a version 1 body; offsets are reported from the frame's start.
fn decode_body(body: &[u8]) -> Result<Frame, DecodeError> {
    let mut c = Cursor::new(body, FRAME_HEADER_LEN);
    let at = c.offset();
    let n = c.array_len("the frame header")?;
    if n < HEADER_ELEMENTS {
        return Err(too_short(at, "the frame header", n, HEADER_ELEMENTS));
    }
    let agent = c.str("the agent id")?.to_owned();
    let session = c.uint("the session", u64::MAX)?;
    let seq = c.uint("the sequence number", u64::MAX)?;
    let batch_count = c.array_len("the batch list")?;
    let mut batches = Vec::with_capacity(batch_count.min(c.remaining() / MIN_BATCH_BYTES));
    for _ in 0..batch_count {
        let at = c.offset();
        let n = c.array_len("a check batch")?;
        if n < BATCH_ELEMENTS {
            return Err(too_short(at, "a check batch", n, BATCH_ELEMENTS));
        }
        let check = c.str("the check name")?.to_owned();
        let mut prev = c.uint("the batch's base t", u64::MAX)?;
        let count = c.array_len("the record list")?;
        let mut records = Vec::with_capacity(count.min(c.remaining() / MIN_RECORD_BYTES));
        for _ in 0..count {
            let record = Record::read(&mut c, TimeBase::DeltaFrom(prev))?;
            prev = record.t_ms;
            records.push(record);
        }
        c.skip_values(n - BATCH_ELEMENTS)?;
        batches.push(CheckBatch { check, records });
    }
    c.skip_values(n - HEADER_ELEMENTS)?;
    if c.remaining() != 0 {
        return Err(DecodeError::TrailingBytes {
            offset: c.offset(),
            len: c.remaining(),
        });
    }
    Ok(Frame {
        header: FrameHeader {
            agent,
            session,
            seq,
        },
        batches,
    })
}
