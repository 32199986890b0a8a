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
