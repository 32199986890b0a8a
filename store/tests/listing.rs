//! Listing a directory by scheme: key order, other files ignored, an absent
//! directory is empty; moving aside and removing.

use store::{GATEWAY, Naming, SPOOL, list, move_aside, remove};

#[test]
fn files_are_listed_in_key_order_and_others_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    for key in [(2000, 0), (1000, 1), (1000, 0)] {
        std::fs::write(tmp.path().join(GATEWAY.name(key)), b"").unwrap();
    }
    std::fs::write(tmp.path().join("other.sonde"), b"x").unwrap();
    std::fs::write(tmp.path().join(SPOOL.name((1, 1))), b"x").unwrap();
    let keys: Vec<_> = list(tmp.path(), &GATEWAY)
        .unwrap()
        .into_iter()
        .map(|(k, p)| {
            assert_eq!(p, tmp.path().join(GATEWAY.name(k)));
            k
        })
        .collect();
    assert_eq!(keys, [(1000, 0), (1000, 1), (2000, 0)]);
    assert!(
        list(&tmp.path().join("absent"), &GATEWAY)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn move_aside_keeps_the_bytes_and_remove_tolerates_a_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(SPOOL.name((1, 0)));
    std::fs::write(&path, b"bytes").unwrap();
    let to = move_aside(&path).unwrap();
    assert_eq!(std::fs::read(&to).unwrap(), b"bytes");
    assert!(to.to_string_lossy().ends_with(".sonde.corrupt"));
    assert!(
        list(tmp.path(), &SPOOL).unwrap().is_empty(),
        "out of the way"
    );
    remove(&to).unwrap();
    remove(&to).unwrap();
    assert!(!to.exists());
}
