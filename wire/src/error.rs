//! What can be wrong with bytes handed to a decoder, and where.
//!
//! `DecodeError` is about MessagePack content (a record, a frame body);
//! `FrameError` about the envelope around a frame; `FileError` about a file
//! header. Each variant is one failure, cheap to build and to match.

use thiserror::Error;

/// Bad MessagePack content. `offset` is the byte where the bad item starts,
/// relative to the input handed to the decoder (for a frame, to the frame's
/// first byte).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended inside `what`; `needed` more bytes were expected.
    #[error("byte {offset}: input ends inside {what} ({needed} more bytes needed)")]
    Incomplete {
        /// Where the missing bytes should have been.
        offset: usize,
        /// The item being read.
        what: &'static str,
        /// How many more bytes the item needs, at least.
        needed: usize,
    },
    /// A value of the wrong MessagePack type.
    #[error("byte {offset}: {what} must be {expected}, found {found}")]
    UnexpectedType {
        /// Where the value starts.
        offset: usize,
        /// The item being read.
        what: &'static str,
        /// The type the spec requires.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// An integer outside the range of its field.
    #[error("byte {offset}: {what} is {value}, outside 0..={max}")]
    OutOfRange {
        /// Where the integer starts.
        offset: usize,
        /// The field being read.
        what: &'static str,
        /// The value found.
        value: i128,
        /// The largest value allowed.
        max: u64,
    },
    /// An array or string claims more elements or bytes than the input holds.
    #[error(
        "byte {offset}: {what} claims {claimed} elements or bytes, only {remaining} bytes remain"
    )]
    LengthPastEnd {
        /// Where the header with the length starts.
        offset: usize,
        /// The item being read.
        what: &'static str,
        /// What the header claims.
        claimed: usize,
        /// Bytes left in the input after the header.
        remaining: usize,
    },
    /// An array with fewer elements than the spec requires.
    #[error("byte {offset}: {what} has {len} elements, at least {min} are required")]
    TooShort {
        /// Where the array starts.
        offset: usize,
        /// The array being read.
        what: &'static str,
        /// Elements found.
        len: usize,
        /// Elements required.
        min: usize,
    },
    /// A status code this format does not define.
    #[error("byte {offset}: st is {code}, not a status code (0 up, 1 down, 2 unknown)")]
    UnknownStatus {
        /// Where the code starts.
        offset: usize,
        /// The code found.
        code: u64,
    },
    /// A string that is not UTF-8.
    #[error("byte {offset}: {what} is not valid UTF-8")]
    InvalidUtf8 {
        /// The first byte that is not valid UTF-8.
        offset: usize,
        /// The string being read.
        what: &'static str,
    },
    /// A time delta that takes t below 0 or past `u64::MAX` milliseconds.
    #[error("byte {offset}: t delta {delta} takes t outside 0..=u64::MAX from {previous}")]
    TimeOutOfRange {
        /// Where the delta starts.
        offset: usize,
        /// The t the delta applies to.
        previous: u64,
        /// The delta found.
        delta: i64,
    },
    /// Bytes after a complete standalone record.
    #[error("byte {offset}: {len} bytes after the end of the record")]
    TrailingBytes {
        /// The first byte after the record.
        offset: usize,
        /// How many bytes follow.
        len: usize,
    },
}

impl DecodeError {
    /// The byte offset the error points at.
    pub fn offset(&self) -> usize {
        match *self {
            DecodeError::Incomplete { offset, .. }
            | DecodeError::UnexpectedType { offset, .. }
            | DecodeError::OutOfRange { offset, .. }
            | DecodeError::LengthPastEnd { offset, .. }
            | DecodeError::TooShort { offset, .. }
            | DecodeError::UnknownStatus { offset, .. }
            | DecodeError::InvalidUtf8 { offset, .. }
            | DecodeError::TimeOutOfRange { offset, .. }
            | DecodeError::TrailingBytes { offset, .. } => offset,
        }
    }
}

/// What is wrong with a frame. Offsets are relative to the frame's first
/// byte; the reader that found the frame reports where that byte is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The input does not hold a whole frame (yet): `have` of at least
    /// `need` bytes. At the end of a file this is a torn tail.
    #[error("incomplete frame: {have} of {need} bytes")]
    Incomplete {
        /// Bytes present.
        have: usize,
        /// Bytes the frame needs, as far as its header tells.
        need: usize,
    },
    /// The first bytes are not the frame marker `C1 53`.
    #[error("no frame marker (C1 53) here")]
    BadMarker,
    /// The length field exceeds the largest frame body a writer may produce.
    #[error("frame length field says {len} bytes, more than the maximum {max}")]
    TooLarge {
        /// The length field.
        len: u32,
        /// [`crate::MAX_BODY_LEN`].
        max: u32,
    },
    /// The checksum stored after the body does not match the frame.
    #[error("checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    Checksum {
        /// The CRC-32 in the frame.
        stored: u32,
        /// The CRC-32 of the bytes it covers.
        computed: u32,
    },
    /// A frame this reader cannot read; its envelope was intact, so the
    /// frame was skipped as a unit.
    #[error("frame version {version} is not supported (this reader knows version 1)")]
    UnsupportedVersion {
        /// The version byte.
        version: u8,
    },
    /// A frame cut short: its length runs past the start of a later good
    /// frame (a writer died mid-frame and another writer appended after it).
    #[error("frame cut short: its length runs into the good frame at relative byte {next}")]
    Torn {
        /// Where the next good frame starts, relative to this one.
        next: usize,
    },
    /// An intact envelope around a body that breaks the spec.
    #[error("bad frame body: {0}")]
    Body(#[from] DecodeError),
}

/// What is wrong with a file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FileError {
    /// Fewer bytes than a file header (a file cut short, or still being written).
    #[error("file header incomplete: {have} of 8 bytes")]
    Incomplete {
        /// Bytes present.
        have: usize,
    },
    /// The magic bytes are wrong: not a sonde wire file.
    #[error("not a sonde wire file (bad magic bytes)")]
    BadMagic,
    /// A file version this reader does not know.
    #[error("file version {version} is not supported (this reader knows version 1)")]
    UnsupportedVersion {
        /// The version byte.
        version: u8,
    },
}

/// Why a frame could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The body would exceed [`crate::MAX_BODY_LEN`]; readers would reject
    /// it, so nothing was written. Send fewer records per frame.
    #[error("frame body of {len} bytes exceeds the maximum {max}")]
    TooLarge {
        /// The body length the frame would have had.
        len: usize,
        /// [`crate::MAX_BODY_LEN`].
        max: u32,
    },
}
