//! The writer against real temporary directories: files in order and
//! rotated, capacity, durable tickets, a full disk (/dev/full) held and
//! retried, retention by bytes, stop on a full disk.

use super::*;
use crate::config::AckAfter;
use crate::recover::file_name;
use std::path::Path;
use wire::{FrameBuilder, FrameHeader, FrameReader, ReadItem, Record};

/// Frame `seq` of agent a, one record, gseq 100 + seq.
fn frame(seq: u64) -> Persist {
    let mut b = FrameBuilder::new(FrameHeader {
        agent: "a".into(),
        session: 1,
        seq,
    });
    b.push("c", Record::up(1, 1));
    Persist {
        gseq: 100 + seq,
        bytes: Bytes::from(b.finish().encode().unwrap()),
    }
}

#[test]
fn writes_wire_files_in_order_and_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let settings = WriterSettings {
        ack: AckAfter::Queued,
        data_dir: dir.path().join("data"),
        max_file_bytes: 200,
        fsync_interval: Duration::from_millis(10),
        queue_frames: 4,
        retain: Retention::default(),
    };
    let w = Writer::start(settings).unwrap();
    let one = frame(0).bytes.len();
    for seq in 0..10 {
        assert!(w.try_send(vec![frame(seq)]).is_some());
        while w.stats().queued.load(Ordering::Acquire) > 2 {
            std::thread::yield_now();
        }
    }
    let stats = w.stats().clone();
    w.stop();
    assert_eq!(stats.queued.load(Ordering::Acquire), 0);
    let mut names: Vec<_> = std::fs::read_dir(dir.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(names.len() > 1, "rotated: {names:?}");
    assert!(names[0].ends_with(file_name(100, 0)));
    // Each file is named by its first frame's gseq and its number.
    let firsts: Vec<(u64, u32)> = crate::recover::data_files(&dir.path().join("data"))
        .unwrap()
        .iter()
        .map(|f| (f.first_gseq, f.index))
        .collect();
    let mut seqs = Vec::new();
    let mut total = 0;
    for n in &names {
        let bytes = std::fs::read(n).unwrap();
        total += bytes.len();
        assert!(bytes.len() as u64 <= 200 || bytes.len() == 8 + one);
        wire::check_file_header(&bytes).unwrap();
        for item in FrameReader::new(&bytes[8..], 8).at_eof() {
            match item {
                ReadItem::Frame { frame, .. } => seqs.push(frame.header.seq),
                ReadItem::Skipped { error, .. } => panic!("{error}"),
            }
        }
    }
    assert_eq!(seqs, (0..10).collect::<Vec<_>>());
    let per_file = firsts[1].0 - firsts[0].0;
    assert!(per_file > 1);
    for (i, (gseq, index)) in firsts.iter().enumerate() {
        assert_eq!((*gseq, *index), (100 + i as u64 * per_file, i as u32));
    }
    assert_eq!(stats.bytes.load(Ordering::Relaxed), total as u64);
}

#[test]
fn refuses_past_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let settings = WriterSettings {
        ack: AckAfter::Durable,
        data_dir: dir.path().to_path_buf(),
        max_file_bytes: 1 << 20,
        fsync_interval: Duration::from_secs(1),
        queue_frames: 2,
        retain: Retention::default(),
    };
    let w = Writer::start(settings).unwrap();
    assert!(w.try_send(vec![frame(0), frame(1), frame(2)]).is_none());
    assert!(w.try_send(vec![frame(0), frame(1)]).is_some());
    w.stop();
}

#[test]
fn durable_tickets_are_published_after_the_write_not_the_interval() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = |ack| WriterSettings {
        ack,
        data_dir: dir.path().join(format!("{ack:?}")),
        max_file_bytes: 1 << 20,
        // Far longer than the test: only group commit can sync in time.
        fsync_interval: Duration::from_secs(3600),
        queue_frames: 64,
        retain: Retention::default(),
    };
    let w = Writer::start(settings(AckAfter::Durable)).unwrap();
    let first = w.try_send(vec![frame(0), frame(1)]).unwrap();
    let second = w.try_send(vec![frame(2)]).unwrap();
    assert_eq!((first, second), (2, 3));
    assert_eq!(
        w.try_send(Vec::new()),
        Some(3),
        "an empty offer waits for all"
    );
    assert!(rt.block_on(w.written(second, Duration::from_secs(10))));
    // On disk before the acknowledgement.
    let files = crate::recover::data_files(&dir.path().join("Durable")).unwrap();
    let bytes = std::fs::read(&files[0].path).unwrap();
    let frames = FrameReader::new(&bytes[8..], 8).at_eof().count();
    assert_eq!(frames, 3);
    // A ticket never offered is not reached.
    assert!(!rt.block_on(w.written(99, Duration::from_millis(50))));
    w.stop();

    let w = Writer::start(settings(AckAfter::Queued)).unwrap();
    let t = w.try_send(vec![frame(0)]).unwrap();
    assert!(rt.block_on(w.written(t, Duration::ZERO)), "queued: at once");
    w.stop();
}

/// Every frame in the wire files under `dir`, by seq, in file order.
fn persisted_seqs(dir: &Path) -> Vec<u64> {
    let mut seqs = Vec::new();
    for f in crate::recover::data_files(dir).unwrap() {
        let bytes = std::fs::read(&f.path).unwrap();
        wire::check_file_header(&bytes).unwrap();
        for item in FrameReader::new(&bytes[8..], 8).at_eof() {
            match item {
                ReadItem::Frame { frame, .. } => seqs.push(frame.header.seq),
                ReadItem::Skipped { error, .. } => panic!("{error}"),
            }
        }
    }
    seqs
}

#[test]
fn a_full_disk_holds_acknowledgements_back_and_loses_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let w = Writer::start(WriterSettings {
        ack: AckAfter::Durable,
        data_dir: dir.path().to_path_buf(),
        // Every frame starts a new file, so the full disk is met at once.
        max_file_bytes: 1,
        fsync_interval: Duration::from_secs(3600),
        queue_frames: 64,
        retain: Retention::default(),
    })
    .unwrap();
    let first = w.try_send(vec![frame(0)]).unwrap();
    assert!(rt.block_on(w.written(first, Duration::from_secs(10))));

    w.full_disk.store(true, Ordering::Release);
    let held = w.try_send(vec![frame(1), frame(2)]).unwrap();
    assert!(
        !rt.block_on(w.written(held, RETRY * 2)),
        "acknowledged while the disk refused the frames"
    );
    assert_eq!(w.stats().queued.load(Ordering::Acquire), 2, "still held");
    assert!(w.stats().errors.load(Ordering::Relaxed) >= 1);
    assert_eq!(persisted_seqs(dir.path()), [0]);

    // Space is back: the held frames are written without being resent.
    w.full_disk.store(false, Ordering::Release);
    assert!(rt.block_on(w.written(held, RETRY * 5)));
    assert_eq!(w.stats().queued.load(Ordering::Acquire), 0);
    w.stop();
    assert_eq!(
        persisted_seqs(dir.path()),
        [0, 1, 2],
        "each frame once, in order"
    );
}

#[test]
fn retention_keeps_the_newest_files_within_the_byte_bound() {
    let dir = tempfile::tempdir().unwrap();
    let one = frame(0).bytes.len() as u64 + wire::FILE_HEADER_LEN as u64;
    let w = Writer::start(WriterSettings {
        ack: AckAfter::Queued,
        data_dir: dir.path().to_path_buf(),
        max_file_bytes: 1, // one frame per file
        fsync_interval: Duration::from_millis(10),
        queue_frames: 64,
        retain: Retention {
            max_bytes: Some(3 * one),
            max_age: None,
        },
    })
    .unwrap();
    for seq in 0..10 {
        assert!(w.try_send(vec![frame(seq)]).is_some());
    }
    let stats = w.stats().clone();
    w.stop();
    let total: u64 = crate::recover::data_files(dir.path())
        .unwrap()
        .iter()
        .map(|f| std::fs::metadata(&f.path).unwrap().len())
        .sum();
    assert!(total <= 3 * one, "{total} > {}", 3 * one);
    assert_eq!(
        persisted_seqs(dir.path()),
        [7, 8, 9],
        "the newest, in order"
    );
    assert_eq!(stats.deleted_files.load(Ordering::Relaxed), 7);
}

#[test]
fn stop_on_a_full_disk_tries_once_more_then_returns() {
    let dir = tempfile::tempdir().unwrap();
    let w = Writer::start(WriterSettings {
        ack: AckAfter::Durable,
        data_dir: dir.path().to_path_buf(),
        max_file_bytes: 1 << 20,
        fsync_interval: Duration::from_secs(3600),
        queue_frames: 64,
        retain: Retention::default(),
    })
    .unwrap();
    w.full_disk.store(true, Ordering::Release);
    assert!(w.try_send(vec![frame(0)]).is_some());
    let started = Instant::now();
    w.stop();
    // A hang guard, not a performance bound: one retry wait is expected.
    assert!(started.elapsed() < RETRY * 10, "{:?}", started.elapsed());
    assert!(
        w.stats().errors.load(Ordering::Relaxed) >= 2,
        "first and last try"
    );
    assert_eq!(w.stats().queued.load(Ordering::Acquire), 1, "not written");
    assert!(persisted_seqs(dir.path()).is_empty());
    assert!(w.try_send(vec![frame(1)]).is_none(), "refused after stop");
}

#[test]
fn retention_counts_a_finished_file_named_after_the_active_one() {
    // An earlier run's file whose gseqs this run does not continue (its
    // records could not be read back at start, and the clock went back):
    // finished, so retention counts it and may delete it (PROTOCOL.md 9).
    let dir = tempfile::tempdir().unwrap();
    let one = frame(0).bytes.len() as u64 + wire::FILE_HEADER_LEN as u64;
    let earlier = dir.path().join(file_name(1 << 50, 4));
    std::fs::write(
        &earlier,
        [&wire::file_header()[..], &frame(0).bytes].concat(),
    )
    .unwrap();
    let w = Writer::start(WriterSettings {
        ack: AckAfter::Queued,
        data_dir: dir.path().to_path_buf(),
        max_file_bytes: 1 << 20,
        fsync_interval: Duration::from_millis(10),
        queue_frames: 64,
        retain: Retention {
            max_bytes: Some(one),
            max_age: None,
        },
    })
    .unwrap();
    assert!(w.try_send(vec![frame(1)]).is_some());
    let stats = w.stats().clone();
    w.stop();
    assert!(!earlier.exists(), "a finished file past the bound was kept");
    assert_eq!(stats.deleted_files.load(Ordering::Relaxed), 1);
    assert_eq!(persisted_seqs(dir.path()), [1]);
}

#[test]
fn frames_are_readable_once_written_before_any_fsync_and_not_while_refused() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let w = Writer::start(WriterSettings {
        // Queued: fsynced only every hour, so "readable" cannot wait for it.
        ack: AckAfter::Queued,
        data_dir: dir.path().to_path_buf(),
        max_file_bytes: 1,
        fsync_interval: Duration::from_secs(3600),
        queue_frames: 64,
        retain: Retention::default(),
    })
    .unwrap();
    assert_eq!(w.offered(), 0);
    let first = w.try_send(vec![frame(0), frame(1)]).unwrap();
    assert_eq!(w.offered(), first);
    assert!(rt.block_on(w.readable(first, Duration::from_secs(10))));
    assert_eq!(persisted_seqs(dir.path()), [0, 1]);

    w.full_disk.store(true, Ordering::Release);
    let held = w.try_send(vec![frame(2)]).unwrap();
    assert!(
        !rt.block_on(w.readable(held, RETRY * 2)),
        "readable while the disk refused it"
    );
    w.full_disk.store(false, Ordering::Release);
    assert!(rt.block_on(w.readable(held, RETRY * 5)));
    w.stop();
    assert_eq!(persisted_seqs(dir.path()), [0, 1, 2]);
}
