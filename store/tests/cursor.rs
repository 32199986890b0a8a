//! The cursor file: absent until stored, replaced whole, no temporary left.

use store::CursorFile;

#[test]
fn a_cursor_is_absent_until_stored_and_replaced_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let c = CursorFile::new(tmp.path(), "acked");
    assert_eq!(c.path(), tmp.path().join("acked"));
    assert_eq!(c.load().unwrap(), None);
    c.store("5 7\n").unwrap();
    assert_eq!(c.load().unwrap().as_deref(), Some("5 7\n"));
    c.store("5 9\n").unwrap();
    assert_eq!(c.load().unwrap().as_deref(), Some("5 9\n"));
    assert!(!tmp.path().join("acked.tmp").exists());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn an_unwritable_cursor_names_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let c = CursorFile::new(&tmp.path().join("absent"), "acked");
    let e = c.store("1 2\n").unwrap_err();
    assert!(matches!(e, store::StoreError::Write { .. }), "{e}");
    assert_eq!(e.path(), tmp.path().join("absent/acked"));
}

#[test]
fn a_synced_cursor_is_replaced_whole_and_a_failure_keeps_the_old_contents() {
    let tmp = tempfile::tempdir().unwrap();
    let c = CursorFile::new(tmp.path(), "checkpoint");
    assert_eq!(c.load_bytes().unwrap(), None);
    c.store_synced(b"\x01\x02").unwrap();
    c.store_synced(b"\x03").unwrap();
    assert_eq!(c.load_bytes().unwrap().as_deref(), Some(&b"\x03"[..]));
    assert!(!tmp.path().join("checkpoint.tmp").exists());

    // A directory where the temporary would go: the write fails, naming
    // the temporary, and the cursor still holds what it held.
    std::fs::create_dir(tmp.path().join("checkpoint.tmp")).unwrap();
    let e = c.store_synced(b"\x04").unwrap_err();
    assert!(matches!(e, store::StoreError::Write { .. }), "{e}");
    assert_eq!(e.path(), tmp.path().join("checkpoint.tmp"));
    assert_eq!(c.load_bytes().unwrap().as_deref(), Some(&b"\x03"[..]));
}
