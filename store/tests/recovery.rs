//! Recovery at open: a torn tail is cut, synced and counted; damage with
//! good frames after it stays and is reported; a bad header is moved aside
//! and the next file becomes the tail; a crash at any byte of the last
//! frame loses that frame only.

use store::{Depth, LastFrame, Naming, SEGMENT, SPOOL, recover};
use wire::FILE_HEADER_LEN;

use crate::util::{append, seqs, write_file};

fn last_seq(last: Option<&LastFrame>) -> Option<u64> {
    match last {
        Some(LastFrame::Frame(h)) => Some(h.seq),
        _ => None,
    }
}

#[test]
fn a_torn_tail_is_truncated_and_counted_and_the_good_frames_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, ends) = write_file(tmp.path(), &SEGMENT.name(1000), 0..3);
    let torn = [0xc1, 0x53, 0x01, 0x40, 0x00, 0x00, 0x00, 0xde, 0xad];
    append(&path, &torn);
    let r = recover(tmp.path(), &SEGMENT, Depth::Tail).unwrap();
    assert_eq!((r.torn_tails, r.truncated_bytes), (1, torn.len() as u64));
    assert_eq!(r.damaged_regions, 0);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), ends[2]);
    assert_eq!(r.files.len(), 1);
    assert_eq!(r.files[0].len, ends[2]);
    assert_eq!(
        r.files[0].bytes.as_ref().map(Vec::len),
        Some(ends[2] as usize)
    );
    assert_eq!(last_seq(r.last_frame()), Some(2));
    assert_eq!(seqs(&path), [0, 1, 2]);
    // Once repaired, a second open finds nothing to do.
    let again = recover(tmp.path(), &SEGMENT, Depth::Tail).unwrap();
    assert_eq!((again.torn_tails, again.truncated_bytes), (0, 0));
}

#[test]
fn a_crash_at_any_byte_of_the_last_frame_loses_that_frame_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, ends) = write_file(tmp.path(), &SPOOL.name((7, 0)), 0..3);
    let whole = std::fs::read(&path).unwrap();
    for cut in (ends[1] + 1)..ends[2] {
        std::fs::write(&path, &whole[..cut as usize]).unwrap();
        let r = recover(tmp.path(), &SPOOL, Depth::All).unwrap();
        assert_eq!(r.truncated_bytes, cut - ends[1], "cut at {cut}");
        assert_eq!(last_seq(r.last_frame()), Some(1), "cut at {cut}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), ends[1]);
    }
}

#[test]
fn damage_followed_by_good_frames_is_left_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, ends) = write_file(tmp.path(), &SEGMENT.name(1000), 0..3);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[ends[0] as usize + 3] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let r = recover(tmp.path(), &SEGMENT, Depth::Tail).unwrap();
    assert_eq!((r.torn_tails, r.damaged_regions), (0, 1));
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "left in place");
    assert_eq!(last_seq(r.last_frame()), Some(2));
}

#[test]
fn a_bad_header_is_moved_aside_never_deleted_and_the_next_file_is_the_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let (older, ends) = write_file(tmp.path(), &SEGMENT.name(1000), 0..2);
    append(&older, b"torn");
    let newer = tmp.path().join(SEGMENT.name(2000));
    std::fs::write(&newer, b"PK\x03\x04 not a wire file").unwrap();
    let r = recover(tmp.path(), &SEGMENT, Depth::Tail).unwrap();
    let corrupt = tmp.path().join(format!("{}.corrupt", SEGMENT.name(2000)));
    assert_eq!(r.moved_aside.len(), 1);
    assert_eq!(r.moved_aside[0].from, newer);
    assert_eq!(r.moved_aside[0].to, corrupt);
    assert_eq!(r.moved_aside[0].reason, wire::FileError::BadMagic);
    assert_eq!(
        std::fs::read(&corrupt).unwrap(),
        b"PK\x03\x04 not a wire file"
    );
    assert!(!newer.exists());
    // The older file is now the tail, and its torn tail is cut.
    assert_eq!(r.files.len(), 1);
    assert_eq!((r.torn_tails, r.truncated_bytes), (1, 4));
    assert_eq!(std::fs::metadata(&older).unwrap().len(), ends[1]);
    // A second bad file of the same name does not overwrite the first.
    std::fs::write(&newer, b"again").unwrap();
    let r = recover(tmp.path(), &SEGMENT, Depth::Tail).unwrap();
    let to: Vec<_> = r.moved_aside.iter().map(|m| m.to.clone()).collect();
    assert_eq!(
        to,
        [tmp.path().join(format!("{}.corrupt.1", SEGMENT.name(2000)))]
    );
}

#[test]
fn an_unfinished_header_from_a_crash_at_creation_is_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    write_file(tmp.path(), &SEGMENT.name(1000), 0..3);
    let newer = tmp.path().join(SEGMENT.name(2000));
    std::fs::write(&newer, &wire::file_header()[..4]).unwrap();
    let r = recover(tmp.path(), &SEGMENT, Depth::Tail).unwrap();
    assert_eq!((r.torn_tails, r.truncated_bytes), (1, 4));
    assert_eq!(std::fs::read(&newer).unwrap(), wire::file_header());
    let tail = r.files.last().unwrap();
    assert_eq!(
        (tail.len, tail.last.as_ref()),
        (FILE_HEADER_LEN as u64, None)
    );
    // The last frame on disk is the older file's: read whole to find it.
    assert_eq!(last_seq(r.last_frame()), Some(2));
    assert!(r.files[0].bytes.is_some());
}

#[test]
fn tail_depth_reads_older_files_only_as_far_as_the_last_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let (oldest, _) = write_file(tmp.path(), &SEGMENT.name(1000), 0..2);
    append(&oldest, b"damage in a finished file stays");
    write_file(tmp.path(), &SEGMENT.name(2000), 2..4);
    let r = recover(tmp.path(), &SEGMENT, Depth::Tail).unwrap();
    assert_eq!(r.files.len(), 2);
    assert!(r.files[0].bytes.is_none(), "header only");
    assert_eq!(r.files[0].len, std::fs::metadata(&oldest).unwrap().len());
    assert_eq!(r.torn_tails, 0, "older files are not repaired");
    assert_eq!(last_seq(r.last_frame()), Some(3));
    // Every file, read whole, with a spool's depth.
    let r = recover(tmp.path(), &SEGMENT, Depth::All).unwrap();
    assert!(r.files.iter().all(|f| f.bytes.is_some()));
    assert_eq!(r.torn_tails, 0);
}

#[test]
fn an_empty_directory_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b");
    let r = recover(&dir, &SPOOL, Depth::All).unwrap();
    assert!(r.files.is_empty() && dir.is_dir());
}
