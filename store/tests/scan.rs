//! Scanning a wire file's bytes: where the good prefix ends after a torn
//! tail, a flipped byte, garbage or damage in the middle; unfinished and
//! bad headers; a frame of an unknown version.

use store::{LastFrame, Scan, scan};
use wire::{FILE_HEADER_LEN, FileError, file_header};

use crate::util::wire_file;

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
    let (bytes, ends) = wire_file(0..3);
    let s = scan(&bytes);
    assert_eq!(s.tail(), 0);
    assert_eq!(last_seq(&s), Some(2));
    assert!(matches!(s, Scan::Segment { keep, damaged: 0, .. } if keep == ends[2]));
}

#[test]
fn torn_tail_is_cut_at_the_last_good_frame() {
    let (bytes, ends) = wire_file(0..3);
    for cut in (ends[1] + 1)..ends[2] {
        let s = scan(&bytes[..cut as usize]);
        assert_eq!(last_seq(&s), Some(1), "cut at {cut}");
        assert_eq!(s.tail(), cut - ends[1], "cut at {cut}");
        assert!(matches!(s, Scan::Segment { damaged: 0, .. }));
    }
}

#[test]
fn flipped_byte_in_the_last_frame_cuts_that_frame() {
    let (bytes, ends) = wire_file(0..3);
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
    let (mut bytes, ends) = wire_file(0..2);
    bytes.extend_from_slice(b"\xc1\x53garbage that is not a frame");
    let s = scan(&bytes);
    assert_eq!(last_seq(&s), Some(1));
    assert_eq!(s.tail(), bytes.len() as u64 - ends[1]);
}

#[test]
fn damage_in_the_middle_stays() {
    let (mut bytes, ends) = wire_file(0..3);
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
    let (bytes, _) = wire_file(0..1);
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
    let mut v2 = wire_file(0..1).0;
    v2[7] = 2;
    assert_eq!(
        scan(&v2),
        Scan::BadHeader(FileError::UnsupportedVersion { version: 2 })
    );
}

#[test]
fn frame_of_an_unknown_version_is_kept_but_has_no_sequence() {
    let (mut bytes, ends) = wire_file(0..2);
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
