//! The spool against a real temporary directory: append, read, ack,
//! reopen (the sequence and the unacknowledged frames survive), torn
//! tails, drop-oldest when full, quarantine.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};

use super::*;
use crate::sink::frames::encode_frames;
use store::{Scan, scan};
use wire::Record;

fn record(t_ms: u64) -> Record {
    Record::up(t_ms, 12).with_sc(200).with_cn(1).with_ft(3)
}

/// Appends one frame of `n` records; returns its seq.
fn push(spool: &mut Spool, n: u64) -> u64 {
    let items: Vec<(&str, Record)> = (0..n)
        .map(|i| ("api", record(1_767_225_600_000 + i)))
        .collect();
    let mut buf = Vec::new();
    let seq = spool.numbering().next_seq();
    let frames = encode_frames(
        spool.numbering().agent(),
        spool.numbering().session(),
        seq,
        &items,
        |&(c, r)| (c, r),
        &mut buf,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    spool
        .append(&buf, frames, n)
        .unwrap_or_else(|e| panic!("{e}"));
    seq
}

fn open(dir: &Path, max: u64) -> Spool {
    Spool::open(dir, "agent-1", max, WhenFull::DropOldest, 1000).unwrap_or_else(|e| panic!("{e}"))
}

fn read(spool: &mut Spool) -> Option<Batch> {
    spool
        .read(256 << 10, 500)
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

fn ids(batch: &Option<Batch>) -> Vec<FrameId> {
    batch
        .iter()
        .flat_map(|b| b.frames.iter().map(|f| f.id))
        .collect()
}

#[test]
fn the_acked_cursor_parses_back() {
    // Segment names are the store's (`store::SPOOL`, tested there).
    assert_eq!(parse_acked("5 7\n"), Some((5, 7)));
    assert_eq!(parse_acked("5"), None);
    assert_eq!(parse_acked("5 7 9"), None);
}

#[test]
fn append_read_ack_and_reopen_continue_the_sequence() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut s = open(tmp.path(), 1 << 30);
    assert_eq!(
        (s.numbering().session(), s.numbering().next_seq()),
        (1000, 0)
    );
    assert!(read(&mut s).is_none());
    for _ in 0..3 {
        push(&mut s, 2);
    }
    let batch = read(&mut s);
    assert_eq!(ids(&batch), [(1000, 0), (1000, 1), (1000, 2)]);
    let Some(batch) = batch else { return };
    assert_eq!(batch.records(), 6);
    // The body is the frames laid end to end, as PROTOCOL.md 2.1 wants.
    let decoded: Vec<u64> = FrameReader::new(&batch.body, 0)
        .at_eof()
        .map(|i| match i {
            ReadItem::Frame { frame, .. } => frame.header.seq,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(decoded, [0, 1, 2]);
    // Two acknowledged; the third is sent again, alone.
    s.ack(&batch, 2).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&read(&mut s)), [(1000, 2)]);
    assert_eq!(s.unacked_frames(), 1);
    s.close().unwrap_or_else(|e| panic!("{e}"));
    drop(s);

    // Reopened (a later clock): same session, the sequence continues, the
    // unacknowledged frame comes first with its original id.
    let mut s = Spool::open(tmp.path(), "agent-1", 1 << 30, WhenFull::DropOldest, 5000)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (s.numbering().session(), s.numbering().next_seq()),
        (1000, 3)
    );
    assert!(s.recovery().resumed);
    assert_eq!(s.recovery().unacked_frames, 1);
    push(&mut s, 1);
    // One segment per request: the old one first, then the new one.
    for want in [(1000, 2), (1000, 3)] {
        let batch = read(&mut s);
        assert_eq!(ids(&batch), [want]);
        if let Some(b) = &batch {
            s.ack(b, 1).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    assert!(read(&mut s).is_none());
    s.close().unwrap_or_else(|e| panic!("{e}"));
    drop(s);

    // Everything acknowledged: the sequence still continues (from `acked`).
    let s = open(tmp.path(), 1 << 30);
    assert_eq!(
        (s.numbering().session(), s.numbering().next_seq()),
        (1000, 4)
    );
    assert_eq!(s.unacked_frames(), 0);
}

#[test]
fn a_crash_without_close_resends_from_the_last_persisted_ack() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut s = open(tmp.path(), 1 << 30);
    for _ in 0..3 {
        push(&mut s, 1);
    }
    if let Some(b) = read(&mut s) {
        // Acknowledged in memory, but `acked` is written at most every
        // 200 ms: a crash now forgets it.
        s.ack(&b, 3).unwrap_or_else(|e| panic!("{e}"));
    }
    drop(s); // no close: as SIGKILL
    let mut s = open(tmp.path(), 1 << 30);
    let again = ids(&read(&mut s));
    // Either all three come again (ack not persisted) or none do.
    assert!(
        again.is_empty() || again == [(1000, 0), (1000, 1), (1000, 2)],
        "{again:?}"
    );
    assert_eq!(s.numbering().next_seq(), 3);
}

#[test]
fn a_torn_tail_is_cut_and_the_good_frames_are_kept() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut s = open(tmp.path(), 1 << 30);
    for _ in 0..3 {
        push(&mut s, 1);
    }
    drop(s);
    let newest = tmp.path().join(SPOOL.name((1000, 0)));
    let mut f = OpenOptions::new()
        .append(true)
        .open(&newest)
        .unwrap_or_else(|e| panic!("{e}"));
    f.write_all(&[0xc1, 0x53, 0x01, 0x40, 0x00, 0x00, 0x00, 0xde, 0xad])
        .unwrap_or_else(|e| panic!("{e}"));
    drop(f);
    let mut s = open(tmp.path(), 1 << 30);
    assert_eq!(s.recovery().truncated_bytes, 9);
    assert_eq!(s.numbering().next_seq(), 3);
    assert_eq!(ids(&read(&mut s)), [(1000, 0), (1000, 1), (1000, 2)]);
}

#[test]
fn damage_inside_the_spool_is_skipped_not_sent() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut s = open(tmp.path(), 1 << 30);
    for _ in 0..3 {
        push(&mut s, 1);
    }
    let Some(all) = read(&mut s) else {
        panic!("nothing to read")
    };
    // A byte of the second frame flips on disk while the agent runs.
    let path = tmp.path().join(SPOOL.name((1000, 0)));
    let at = FILE_HEADER_LEN as u64 + all.frames[1].offset + 10;
    let mut f = OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut byte = [0u8];
    let mut r = File::open(&path).unwrap_or_else(|e| panic!("{e}"));
    r.seek(SeekFrom::Start(at))
        .unwrap_or_else(|e| panic!("{e}"));
    r.read_exact(&mut byte).unwrap_or_else(|e| panic!("{e}"));
    f.seek(SeekFrom::Start(at))
        .unwrap_or_else(|e| panic!("{e}"));
    f.write_all(&[byte[0] ^ 0xff])
        .unwrap_or_else(|e| panic!("{e}"));
    drop(f);
    let (batch, skipped) = s.read(256 << 10, 500).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((ids(&batch), skipped), (vec![(1000, 0)], 0));
    if let Some(b) = &batch {
        s.ack(b, 1).unwrap_or_else(|e| panic!("{e}"));
    }
    let (batch, skipped) = s.read(256 << 10, 500).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((ids(&batch), skipped), (vec![(1000, 2)], 1));
    drop(s);
    // At open, the damaged frame is simply not among the frames.
    let s = open(tmp.path(), 1 << 30);
    assert_eq!(s.recovery().damaged_regions, 1);
}

#[test]
fn a_full_spool_drops_the_oldest_and_says_how_much() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // 64 KiB segments (the minimum), 192 KiB in all.
    let max = 192 << 10;
    let mut s = open(tmp.path(), max);
    let mut dropped_records = 0;
    let mut appended = 0;
    let mut frame = Vec::new();
    let items: Vec<(&str, Record)> = (0..100).map(|i| ("api", record(i))).collect();
    for _ in 0..400 {
        frame.clear();
        let seq = s.numbering().next_seq();
        encode_frames(
            s.numbering().agent(),
            s.numbering().session(),
            seq,
            &items,
            |&(c, r)| (c, r),
            &mut frame,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let a = s.append(&frame, 1, 100).unwrap_or_else(|e| panic!("{e}"));
        appended += 100;
        dropped_records += a.dropped.iter().map(|d| d.records).sum::<u64>();
        assert!(s.bytes() <= max, "{} > {max}", s.bytes());
    }
    assert!(dropped_records > 0);
    // Every record is either still spooled or counted as dropped.
    let mut spooled = 0;
    while let Some(b) = read(&mut s) {
        spooled += b.records();
        s.ack(&b, b.frames.len()).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(spooled + dropped_records, appended);
    // The survivors are the newest frames.
    assert_eq!(s.numbering().next_seq(), 400);
}

#[test]
fn limits_split_requests_but_a_frame_is_never_cut() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut s = open(tmp.path(), 1 << 30);
    for _ in 0..5 {
        push(&mut s, 50);
    }
    let (b, _) = s.read(1, 500).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&b), [(1000, 0)], "one whole frame past a tiny limit");
    let (b, _) = s.read(256 << 10, 2).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&b), [(1000, 0), (1000, 1)]);
    let Some(mut b) = b else { return };
    b.truncate(1);
    assert_eq!(b.frames.len(), 1);
    assert_eq!(b.body.len() as u64, b.frames[0].len);
}

#[test]
fn quarantine_moves_the_first_frame_aside() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut s = open(tmp.path(), 1 << 30);
    push(&mut s, 1);
    push(&mut s, 1);
    let Some(b) = read(&mut s) else {
        panic!("nothing to read")
    };
    let path = s.quarantine(&b).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&read(&mut s)), [(1000, 1)]);
    let q = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(scan(&q), Scan::Segment { last: Some(_), .. }));
}

#[test]
fn another_agents_segments_are_moved_aside() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut s = open(tmp.path(), 1 << 30);
    push(&mut s, 1);
    drop(s);
    let s = Spool::open(tmp.path(), "agent-2", 1 << 30, WhenFull::DropOldest, 2000)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.recovery().moved_aside.len(), 1);
    assert_eq!(s.unacked_frames(), 0);
}

/// A segment that cannot be created when the spool rotates (here a
/// directory in its place; on a full disk, ENOSPC) fails the append and
/// leaves the ledger counting a segment that does not exist: the spool is
/// stale, and the next append opens it afresh from disk. Every frame
/// appended is then read back once, in one unbroken sequence.
#[test]
fn a_failed_rotation_marks_the_spool_stale_and_the_next_append_heals_it() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut s = open(tmp.path(), 1 << 20);
    let items: Vec<(&str, Record)> = (0..100)
        .map(|i| ("api", record(1_767_225_600_000 + i)))
        .collect();
    let try_push = |s: &mut Spool| {
        let mut buf = Vec::new();
        let (session, seq) = s.numbering().next_id();
        let frames = encode_frames("agent-1", session, seq, &items, |&(c, r)| (c, r), &mut buf)
            .unwrap_or_else(|e| panic!("{e}"));
        s.append(&buf, frames, 100).map(|_| seq)
    };
    let mut appended = Vec::new();
    let blocker = loop {
        // The active segment is named by its first frame: no blocker there.
        let blocker = s.path(s.numbering().next_id());
        let blocked = std::fs::create_dir(&blocker).is_ok();
        match try_push(&mut s) {
            Ok(seq) => appended.push(seq),
            Err(_) => break blocker,
        }
        if blocked {
            std::fs::remove_dir(&blocker).unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(appended.len() < 1000, "the spool never rotated");
    };
    assert!(s.stale);
    assert!(appended.len() > 1);
    std::fs::remove_dir(&blocker).unwrap_or_else(|e| panic!("{e}"));
    appended.push(try_push(&mut s).unwrap_or_else(|e| panic!("{e}")));
    assert!(!s.stale);
    appended.push(try_push(&mut s).unwrap_or_else(|e| panic!("{e}")));

    let mut read_back = Vec::new();
    while let Some(batch) = read(&mut s) {
        read_back.extend(batch.frames.iter().map(|f| f.id));
        s.ack(&batch, batch.frames.len())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let want: Vec<FrameId> = appended.iter().map(|&seq| (1000, seq)).collect();
    assert_eq!(read_back, want);
    let first = appended[0];
    assert_eq!(
        appended,
        (first..first + appended.len() as u64).collect::<Vec<_>>()
    );
}

fn result(t_ms: u64) -> Arc<CheckResult> {
    Arc::new(CheckResult {
        check: Arc::from("api"),
        record: record(t_ms),
        timings: Default::default(),
        detail: None,
        facts: Default::default(),
        dns: None,
    })
}

/// Every frame id left to send, acknowledging as it reads.
fn drain(s: &mut Spool) -> Vec<FrameId> {
    let mut read_back = Vec::new();
    while let Some(batch) = read(s) {
        read_back.extend(batch.frames.iter().map(|f| f.id));
        s.ack(&batch, batch.frames.len())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    read_back
}

/// The sink's write numbers its frames after a stale spool is reopened,
/// under the same lock: when the reopen renumbers (here: the numbering in
/// memory had gone past what is on disk), the frame carries the reopened
/// spool's next id, never one numbered before it.
#[test]
fn results_are_numbered_after_a_stale_spool_is_reopened() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut s = open(tmp.path(), 1 << 20);
    for _ in 0..3 {
        push(&mut s, 1);
    }
    s.numbering = Numbering::new("agent-1", 1000, 50);
    s.stale = true;
    let mut buf = Vec::new();
    s.append_results(&[result(1)], &mut buf)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(drain(&mut s), [(1000, 0), (1000, 1), (1000, 2), (1000, 3)]);
}

/// A failed append whose cut-back fails too leaves a partial frame: the
/// spool is reopened (recovery cuts it) before the next append, and what
/// is sent is every frame once, no partial one.
#[test]
fn a_failed_cut_back_reopens_the_spool() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut s = open(tmp.path(), 1 << 20);
    push(&mut s, 2);
    store::faults::fail_next(tmp.path(), store::faults::FaultOp::Append, 1);
    store::faults::fail_next(tmp.path(), store::faults::FaultOp::CutBack, 1);
    let mut buf = Vec::new();
    assert!(s.append_results(&[result(1)], &mut buf).is_err());
    assert!(s.stale);
    s.append_results(&[result(1)], &mut buf)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(drain(&mut s), [(1000, 0), (1000, 1)]);
}

/// A failed fsync in tick makes the active segment unusable: the spool is
/// reopened on the next tick and appends go on in a new segment.
#[test]
fn a_failed_sync_reopens_the_spool_and_appends_go_on() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut s = open(tmp.path(), 1 << 20);
    push(&mut s, 1);
    s.clock = SyncClock::new(Fsync::Every(Duration::ZERO), Instant::now());
    s.clock.wrote();
    store::faults::fail_next(tmp.path(), store::faults::FaultOp::Sync, 1);
    assert!(s.tick().is_err());
    s.tick().unwrap_or_else(|e| panic!("{e}"));
    push(&mut s, 1);
    assert_eq!(drain(&mut s), [(1000, 0), (1000, 1)]);
}

/// Making room deletes two segments; the second delete fails: the first
/// one's records are still reported dropped (with the next append), so
/// every record is spooled or counted, none lost silently.
#[test]
fn drops_made_before_a_failed_delete_are_still_counted() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let max = 192 << 10;
    let mut s = open(tmp.path(), max);
    let (appended, dropped) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    let append = |s: &mut Spool, records: u64| -> Result<(), SinkError> {
        let items: Vec<(&str, Record)> = (0..records).map(|i| ("api", record(i))).collect();
        let mut frame = Vec::new();
        let (session, seq) = s.numbering().next_id();
        let frames = encode_frames(
            "agent-1",
            session,
            seq,
            &items,
            |&(c, r)| (c, r),
            &mut frame,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let a = s.append(&frame, frames, records)?;
        appended.set(appended.get() + records);
        dropped.set(dropped.get() + a.dropped.iter().map(|d| d.records).sum::<u64>());
        Ok(())
    };
    // Fill the spool with small frames, short of dropping anything.
    while s.bytes() < max - (24 << 10) {
        append(&mut s, 20).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(dropped.get(), 0);
    // One frame of about 100 KiB needs the two oldest segments gone.
    store::faults::fail_after(tmp.path(), store::faults::FaultOp::Delete, 1, 1);
    let items: Vec<(&str, Record)> = (0..1000).map(|i| ("api", record(i))).collect();
    let mut sample = Vec::new();
    encode_frames("agent-1", 1, 0, &items, |&(c, r)| (c, r), &mut sample)
        .unwrap_or_else(|e| panic!("{e}"));
    let big = 100 << 10;
    let per_record = (sample.len() as u64 / 1000).max(1);
    assert!(append(&mut s, big / per_record).is_err());
    append(&mut s, big / per_record).unwrap_or_else(|e| panic!("{e}"));
    assert!(dropped.get() > 0);
    let mut spooled = 0;
    while let Some(b) = read(&mut s) {
        spooled += b.records();
        s.ack(&b, b.frames.len()).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(spooled + dropped.get(), appended.get());
}

#[test]
fn a_frame_across_a_full_window_after_damage_is_still_sent() {
    // Damage (zeros) up to just before the end of a MAX_FRAME window,
    // then a good frame crossing it: the window's end is not the
    // segment's, so the frame is read whole on the next read, not cut.
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut s = open(tmp.path(), 1 << 30);
    let one = [("api", record(1_767_225_600_000))];
    let many: Vec<(&str, Record)> = (0..20)
        .map(|i| ("api", record(1_767_225_600_000 + i)))
        .collect();
    let (agent, session) = (s.numbering().agent().to_owned(), s.numbering().session());
    let mut buf = Vec::new();
    let mut seq = 0;
    let mut last_len = 0;
    loop {
        let mut frame = Vec::new();
        encode_frames(&agent, session, seq, &many, |&(c, r)| (c, r), &mut frame)
            .unwrap_or_else(|e| panic!("{e}"));
        last_len = last_len.max(frame.len());
        if buf.len() as u64 + frame.len() as u64 / 2 >= MAX_FRAME {
            break;
        }
        encode_frames(&agent, session, seq, &one, |&(c, r)| (c, r), &mut buf)
            .unwrap_or_else(|e| panic!("{e}"));
        seq += 1;
    }
    let damaged = buf.len();
    encode_frames(&agent, session, seq, &many, |&(c, r)| (c, r), &mut buf)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(damaged as u64 + (last_len as u64) > MAX_FRAME && (damaged as u64) < MAX_FRAME);
    s.append(&buf, seq + 1, seq + 20)
        .unwrap_or_else(|e| panic!("{e}"));
    let path = tmp.path().join(SPOOL.name((session, 0)));
    let mut f = OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{e}"));
    f.seek(SeekFrom::Start(FILE_HEADER_LEN as u64))
        .unwrap_or_else(|e| panic!("{e}"));
    f.write_all(&vec![0; damaged])
        .unwrap_or_else(|e| panic!("{e}"));
    drop(f);
    let (batch, skipped) = s.read(256 << 10, 500).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((ids(&batch), skipped), (vec![(session, seq)], 1));
    assert_eq!(batch.map(|b| b.records()), Some(20));
}
