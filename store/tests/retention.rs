//! Retention on disk: the oldest finished files go first, past the byte
//! bound or the age bound (by modification time), never the active file
//! and never a file of another scheme; no bounds, nothing listed.

use std::time::{Duration, SystemTime};

use store::{GATEWAY, Naming, Retain, SEGMENT, retain};

use crate::util::write_file;

#[test]
fn the_oldest_finished_files_go_first_never_the_active() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lens = Vec::new();
    for (i, t) in [1000u64, 2000, 3000, 4000].iter().enumerate() {
        let (p, _) = write_file(tmp.path(), &SEGMENT.name(*t), 0..(i as u64 + 1));
        lens.push(std::fs::metadata(p).unwrap().len());
    }
    std::fs::write(tmp.path().join("notes.txt"), vec![b'x'; 1 << 20]).unwrap();
    let now = SystemTime::now();
    let keep = |max_bytes| Retain {
        max_bytes: Some(max_bytes),
        max_age: Some(Duration::from_secs(86_400)),
    };
    let all: u64 = lens.iter().sum();
    let r = retain(tmp.path(), &SEGMENT, Some(4000), lens[3], keep(all), now).unwrap();
    assert!(r.deleted.is_empty() && r.failed.is_empty());
    let r = retain(
        tmp.path(),
        &SEGMENT,
        Some(4000),
        lens[3],
        keep(all - 1),
        now,
    )
    .unwrap();
    assert_eq!(r.deleted.len(), 1);
    assert_eq!(r.deleted[0].path, tmp.path().join(SEGMENT.name(1000)));
    assert_eq!(r.deleted[0].len, lens[0]);
    // A bound below the active file: every finished file goes, the active stays.
    let r = retain(tmp.path(), &SEGMENT, Some(4000), lens[3], keep(0), now).unwrap();
    assert_eq!(r.deleted.len(), 2);
    let left = store::list(tmp.path(), &SEGMENT).unwrap();
    assert_eq!(left.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [4000]);
    assert!(tmp.path().join("notes.txt").exists());
}

#[test]
fn files_idle_past_the_age_bound_go_and_an_unbroken_run_stays() {
    let tmp = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    // Idle 3 h, 1 min, 2 h (out of order), then the active one.
    for (key, idle) in [((1, 0), hour * 3), ((2, 1), hour / 60), ((3, 2), hour * 2)] {
        let (p, _) = write_file(tmp.path(), &GATEWAY.name(key), 0..1);
        let f = std::fs::File::options().write(true).open(p).unwrap();
        f.set_modified(now - idle).unwrap();
    }
    write_file(tmp.path(), &GATEWAY.name((4, 3)), 0..1);
    let keep = Retain {
        max_bytes: None,
        max_age: Some(hour),
    };
    let r = retain(tmp.path(), &GATEWAY, Some((4, 3)), 0, keep, now).unwrap();
    let gone: Vec<_> = r.deleted.iter().map(|d| d.path.clone()).collect();
    assert_eq!(gone, [tmp.path().join(GATEWAY.name((1, 0)))]);
    // Without an active file every file is finished; without bounds nothing goes.
    let r = retain(tmp.path(), &GATEWAY, None, 0, Retain::default(), now).unwrap();
    assert!(r.deleted.is_empty());
    let r = retain(
        tmp.path(),
        &GATEWAY,
        None,
        0,
        Retain {
            max_bytes: Some(0),
            max_age: None,
        },
        now,
    )
    .unwrap();
    assert_eq!(r.deleted.len(), 3);
}
