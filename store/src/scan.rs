//! What a wire file's bytes hold, as a pure question: where the good
//! prefix ends (a torn or damaged tail is after it), which frame came last,
//! how many damaged regions lie before it, or that the file header is bad.
//! No files here; [`crate::recover`] reads, truncates and moves aside.

use wire::{
    FILE_HEADER_LEN, FileError, FrameError, FrameHeader, FrameReader, ReadItem, check_file_header,
};

/// The frames of a wire file's `bytes` after the file header, with offsets
/// from the start of the file, to the end of the bytes (a frame cut short
/// there is damage). Empty when `bytes` hold no more than the header; the
/// header itself is not checked here (see [`scan`]).
pub fn body(bytes: &[u8]) -> FrameReader<'_> {
    let frames = bytes.get(FILE_HEADER_LEN..).unwrap_or_default();
    FrameReader::new(frames, FILE_HEADER_LEN as u64).at_eof()
}

/// The last frame of a segment's good prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastFrame {
    /// A frame this build decodes; its header carries the sequence to continue.
    Frame(FrameHeader),
    /// An intact frame this build cannot decode (a newer frame version, or
    /// a body that breaks the spec). Kept, but its sequence is unknown.
    Undecodable,
}

/// What a segment's bytes hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// Not a wire file (bad magic) or a file version this build does not know.
    BadHeader(FileError),
    /// A wire file, or the start of one.
    Segment {
        /// Bytes to keep: the end of the last intact frame, the file header
        /// alone when there is none, or 0 when even the header is unfinished
        /// (a crash right after the file was created).
        keep: u64,
        /// Bytes in the segment.
        len: u64,
        /// The last intact frame, if any.
        last: Option<LastFrame>,
        /// Damaged regions before `keep` (left alone: readers resync past them).
        damaged: u64,
    },
}

impl Scan {
    /// Bytes after the good prefix (a torn or damaged tail), 0 for a clean
    /// file or a bad header.
    pub fn tail(&self) -> u64 {
        match self {
            Scan::BadHeader(_) => 0,
            Scan::Segment { keep, len, .. } => len - keep,
        }
    }
}

/// Scans a segment. The good prefix ends after the last frame whose
/// envelope is intact: a torn frame (a crash mid-write) or damaged bytes at
/// the tail are cut, while damage followed by good frames stays, since
/// cutting it would lose the good frames after it.
pub fn scan(bytes: &[u8]) -> Scan {
    let len = bytes.len() as u64;
    match check_file_header(bytes) {
        Ok(()) => {}
        Err(FileError::Incomplete { .. }) => {
            return Scan::Segment {
                keep: 0,
                len,
                last: None,
                damaged: 0,
            };
        }
        Err(e) => return Scan::BadHeader(e),
    }
    let mut keep = FILE_HEADER_LEN as u64;
    let mut last = None;
    // Damaged regions count once a frame after them is kept; the rest is the tail.
    let mut damaged = 0;
    let mut pending = 0;
    for item in body(bytes) {
        match item {
            ReadItem::Frame { offset, len, frame } => {
                keep = offset + len as u64;
                last = Some(LastFrame::Frame(frame.header));
                damaged += std::mem::take(&mut pending);
            }
            ReadItem::Skipped {
                offset,
                len,
                error: FrameError::UnsupportedVersion { .. } | FrameError::Body(_),
            } => {
                keep = offset + len as u64;
                last = Some(LastFrame::Undecodable);
                damaged += std::mem::take(&mut pending);
            }
            ReadItem::Skipped { .. } => pending += 1,
        }
    }
    Scan::Segment {
        keep,
        len,
        last,
        damaged,
    }
}
