//! The file sink's two pure questions about wire bytes: how a batch becomes
//! frames (split when one would pass the wire's size limit), and, given a
//! segment's bytes, where its good prefix ends and which frame came last.
//! No files here; [`super::segments`] does the reading and truncating.

use wire::{
    EncodeError, FILE_HEADER_LEN, FileError, FrameBuilder, FrameError, FrameHeader, FrameReader,
    ReadItem, Record, check_file_header,
};

/// Appends `items` to `out` as frames of `agent`'s `session` numbered from
/// `first_seq`, one frame unless it would exceed the wire's maximum body,
/// in which case the batch is halved until each part fits. Returns the
/// number of frames; on error `out` holds only whole frames.
pub fn encode_frames<T>(
    agent: &str,
    session: u64,
    first_seq: u64,
    items: &[T],
    entry: impl Fn(&T) -> (&str, Record) + Copy,
    out: &mut Vec<u8>,
) -> Result<u64, EncodeError> {
    if items.is_empty() {
        return Ok(0);
    }
    let mut builder = FrameBuilder::new(FrameHeader {
        agent: agent.to_owned(),
        session,
        seq: first_seq,
    });
    for item in items {
        let (check, record) = entry(item);
        builder.push(check, record);
    }
    match builder.finish().encode_into(out) {
        Ok(_) => Ok(1),
        Err(e) if items.len() < 2 => Err(e),
        Err(_) => {
            let (left, right) = items.split_at(items.len() / 2);
            let n = encode_frames(agent, session, first_seq, left, entry, out)?;
            let m = encode_frames(agent, session, first_seq + n, right, entry, out)?;
            Ok(n + m)
        }
    }
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
    /// segment or a bad header.
    #[cfg(test)]
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
    let frames = bytes.get(FILE_HEADER_LEN..).unwrap_or_default();
    for item in FrameReader::new(frames, FILE_HEADER_LEN as u64).at_eof() {
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
    use wire::{Status, file_header};

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
            let items = [("api", record(1_767_225_600_000 + seq))];
            encode_frames("agent-1", 7, seq, &items, |&(c, r)| (c, r), &mut out).unwrap();
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

    #[test]
    fn oversized_batch_is_split_into_frames_that_each_decode() {
        // Check names of ~1 MiB: six records cannot share one 4 MiB frame.
        let names: Vec<String> = (0..6)
            .map(|i| format!("{i}{}", "x".repeat(1 << 20)))
            .collect();
        let items: Vec<(&str, Record)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), record(i as u64)))
            .collect();
        let mut out = Vec::new();
        let n = encode_frames("a", 1, 10, &items, |&(c, r)| (c, r), &mut out).unwrap();
        assert!(n >= 2);
        let frames: Vec<_> = FrameReader::new(&out, 0)
            .at_eof()
            .map(|item| match item {
                ReadItem::Frame { frame, .. } => frame,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(frames.len() as u64, n);
        let seqs: Vec<u64> = frames.iter().map(|f| f.header.seq).collect();
        assert_eq!(seqs, (10..10 + n).collect::<Vec<_>>());
        let ts: Vec<u64> = frames
            .iter()
            .flat_map(|f| f.records().map(|(_, r)| r.t_ms).collect::<Vec<_>>())
            .collect();
        assert_eq!(ts, (0..6).collect::<Vec<_>>());
    }
}
