//! The file being appended to: its header at creation, appends that are
//! cut back when the disk refuses them (a full disk, via /dev/full), and
//! syncs that say how many frames they made durable.

use std::path::Path;

use store::{Segment, StoreError};
use wire::{FILE_HEADER_LEN, file_header};

use crate::util::{frame, seqs};

#[test]
fn create_writes_the_header_and_refuses_an_existing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a.sonde");
    let s = Segment::create(&path).unwrap();
    assert_eq!((s.len(), s.is_empty()), (FILE_HEADER_LEN as u64, true));
    assert!(!s.dirty());
    assert_eq!(std::fs::read(&path).unwrap(), file_header());
    let e = Segment::create(&path).unwrap_err();
    assert!(matches!(e, StoreError::Create { .. }), "{e}");
    assert_eq!(e.path(), path);
    assert!(e.to_string().starts_with("creating "), "{e}");
}

#[test]
fn appends_and_syncs_count_what_is_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a.sonde");
    let mut s = Segment::create(&path).unwrap();
    assert_eq!(s.sync().unwrap(), 0);
    s.append(&frame(0), 1).unwrap();
    s.append(&[frame(1), frame(2)].concat(), 2).unwrap();
    assert!(s.dirty());
    assert_eq!(s.sync().unwrap(), 3, "group commit: all three at once");
    assert_eq!(s.sync().unwrap(), 0, "nothing new");
    s.append(&frame(3), 1).unwrap();
    assert_eq!(s.frames(), 4);
    assert_eq!(s.finish().unwrap(), 1, "finish makes the rest durable");
    assert_eq!(seqs(&path), [0, 1, 2, 3]);

    // Reopened after recovery: what was found counts as durable.
    let len = std::fs::metadata(&path).unwrap().len();
    let mut s = Segment::open(&path, len, 4).unwrap();
    assert_eq!(s.sync().unwrap(), 0);
    s.append(&frame(4), 1).unwrap();
    assert_eq!(s.sync().unwrap(), 1);
    assert_eq!(s.len(), std::fs::metadata(&path).unwrap().len());
    assert_eq!(seqs(&path), [0, 1, 2, 3, 4]);
}

#[test]
fn a_full_disk_refuses_the_append_and_counts_nothing() {
    let full = Path::new("/dev/full");
    if !full.exists() {
        return;
    }
    let mut s = Segment::open_raw(full).unwrap();
    let e = s.append(&file_header(), 0).unwrap_err();
    assert!(matches!(e, StoreError::Append { .. }), "{e}");
    assert_eq!(e.io().raw_os_error(), Some(28), "ENOSPC: {e}");
    let e = s.append(&frame(0), 1).unwrap_err();
    assert!(e.to_string().starts_with("appending to /dev/full"), "{e}");
    assert_eq!((s.len(), s.frames(), s.dirty()), (0, 0, false));
    assert_eq!(s.sync().unwrap(), 0, "nothing became durable");
}
