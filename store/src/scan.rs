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

#[cfg(test)]
mod tests {
    use super::*;
    use wire::{FrameBuilder, Record, Status, file_header};

    fn record(t_ms: u64) -> Record {
        Record {
            t_ms,
            rt_ms: 12,
            sc: Some(200),
            st: Status::Up,
            dn_ms: Some(1),
            cn_ms: Some(2),
            tl_ms: None,
            ft_ms: Some(5),
            error: None,
        }
    }

    /// A file with `n` one-record frames, seq 0.., and the end of each frame.
    fn file(n: u64) -> (Vec<u8>, Vec<u64>) {
        let mut out = file_header().to_vec();
        let mut ends = Vec::new();
        for seq in 0..n {
            let mut b = FrameBuilder::new(FrameHeader {
                agent: "agent-1".into(),
                session: 7,
                seq,
            });
            b.push("api", record(1_767_225_600_000 + seq));
            b.finish().encode_into(&mut out).unwrap();
            ends.push(out.len() as u64);
        }
        (out, ends)
    }

    fn last_seq(scan: &Scan) -> Option<u64> {
        match scan {
            Scan::Segment {
                last: Some(LastFrame::Frame(h)),
                ..
            } => Some(h.seq),
            _ => None,
        }
    }

    #[test]
    fn clean_file_keeps_everything() {
        let (bytes, ends) = file(3);
        let s = scan(&bytes);
        assert_eq!(s.tail(), 0);
        assert_eq!(last_seq(&s), Some(2));
        assert!(matches!(s, Scan::Segment { keep, damaged: 0, .. } if keep == ends[2]));
    }

    #[test]
    fn torn_tail_is_cut_at_the_last_good_frame() {
        let (bytes, ends) = file(3);
        for cut in (ends[1] + 1)..ends[2] {
            let s = scan(&bytes[..cut as usize]);
            assert_eq!(last_seq(&s), Some(1), "cut at {cut}");
            assert_eq!(s.tail(), cut - ends[1], "cut at {cut}");
            assert!(matches!(s, Scan::Segment { damaged: 0, .. }));
        }
    }

    #[test]
    fn flipped_byte_in_the_last_frame_cuts_that_frame() {
        let (bytes, ends) = file(3);
        for at in ends[1]..ends[2] {
            let mut b = bytes.clone();
            b[at as usize] ^= 0x40;
            let s = scan(&b);
            assert_eq!(last_seq(&s), Some(1), "flip at {at}");
            assert_eq!(s.tail(), ends[2] - ends[1], "flip at {at}");
        }
    }

    #[test]
    fn garbage_after_the_last_frame_is_cut() {
        let (mut bytes, ends) = file(2);
        bytes.extend_from_slice(b"\xc1\x53garbage that is not a frame");
        let s = scan(&bytes);
        assert_eq!(last_seq(&s), Some(1));
        assert_eq!(s.tail(), bytes.len() as u64 - ends[1]);
    }

    #[test]
    fn damage_in_the_middle_stays() {
        let (mut bytes, ends) = file(3);
        bytes[ends[0] as usize + 3] ^= 0xff;
        let s = scan(&bytes);
        assert_eq!(s.tail(), 0);
        assert_eq!(last_seq(&s), Some(2));
        assert!(matches!(s, Scan::Segment { damaged: 1, .. }));
    }

    #[test]
    fn empty_and_partial_header_restart_the_file() {
        for n in 0..FILE_HEADER_LEN {
            let s = scan(&file_header()[..n]);
            assert_eq!(
                s,
                Scan::Segment {
                    keep: 0,
                    len: n as u64,
                    last: None,
                    damaged: 0
                }
            );
        }
    }

    #[test]
    fn header_only_file_is_clean_and_has_no_last_frame() {
        let s = scan(&file_header());
        assert_eq!(
            s,
            Scan::Segment {
                keep: FILE_HEADER_LEN as u64,
                len: FILE_HEADER_LEN as u64,
                last: None,
                damaged: 0
            }
        );
        // A header and a few bytes of a frame that never finished.
        let (bytes, _) = file(1);
        let s = scan(&bytes[..FILE_HEADER_LEN + 5]);
        assert_eq!(s.tail(), 5);
        assert!(matches!(s, Scan::Segment { last: None, .. }));
    }

    #[test]
    fn bad_header_is_reported() {
        assert_eq!(
            scan(b"PK\x03\x04 zip"),
            Scan::BadHeader(FileError::BadMagic)
        );
        let mut v2 = file(1).0;
        v2[7] = 2;
        assert_eq!(
            scan(&v2),
            Scan::BadHeader(FileError::UnsupportedVersion { version: 2 })
        );
    }

    #[test]
    fn frame_of_an_unknown_version_is_kept_but_has_no_sequence() {
        let (mut bytes, ends) = file(2);
        // Rewrite the last frame's version byte and fix its CRC.
        let start = ends[0] as usize;
        let end = ends[1] as usize;
        bytes[start + 2] = 9;
        let crc = crc32(&bytes[start..end - 4]);
        bytes[end - 4..end].copy_from_slice(&crc.to_le_bytes());
        let s = scan(&bytes);
        assert_eq!(s.tail(), 0);
        assert!(matches!(
            s,
            Scan::Segment {
                last: Some(LastFrame::Undecodable),
                ..
            }
        ));
    }

    fn crc32(bytes: &[u8]) -> u32 {
        // Bitwise CRC-32 (IEEE), enough for a test.
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
