//! The file sink end to end in a temp dir: what it writes reads back with
//! the wire crate's `FrameReader`, record for record and with contiguous
//! sequence numbers, across rotation, retention, torn tails and restarts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use config::Fsync;
use sonde::metrics::Metrics;
use sonde::probe::Timings;
use sonde::result::CheckResult;
use sonde::sink::file::FileSink;
use sonde::sink::{Sink, SinkHandle};
use wire::{ErrorClass, FILE_HEADER_LEN, Frame, ReadItem, Record, check_file_header};

const AGENT: &str = "eu-west-1a";

fn config(dir: &Path) -> config::FileSink {
    config::FileSink {
        dir: dir.to_owned(),
        segment_max_bytes: 64 << 20,
        segment_max_age: Duration::from_secs(3600),
        retention_max_bytes: 1 << 30,
        retention_max_age: Duration::from_secs(7 * 86_400),
        fsync: Fsync::Every(Duration::from_secs(1)),
    }
}

/// The `i`th result of a test run: checks alternate, some are down.
fn result(i: u64) -> Arc<CheckResult> {
    let down = i % 5 == 4;
    let (t_ms, rt_ms) = (1_767_225_600_000 + i * 1000, 10 + i);
    Arc::new(CheckResult {
        check: Arc::from(["api-health", "home", "login"][(i % 3) as usize]),
        record: if down {
            Record::down(t_ms, rt_ms, ErrorClass::ConnectRefused)
                .with_dn(1)
                .with_cn(2)
        } else {
            Record::up(t_ms, rt_ms).with_sc(200).with_phases(1, 2, 3, 4)
        },
        timings: Timings::default(),
        detail: None,
        facts: Default::default(),
        dns: None,
    })
}

/// Results `from..to` in batches of `size`.
fn batches(from: u64, to: u64, size: u64) -> Vec<Vec<Arc<CheckResult>>> {
    (from..to)
        .step_by(size as usize)
        .map(|start| (start..(start + size).min(to)).map(result).collect())
        .collect()
}

async fn write_all(sink: &mut FileSink, batches: &[Vec<Arc<CheckResult>>]) {
    for batch in batches {
        let bytes = sink.write(batch).await.unwrap();
        assert!(bytes > 0);
    }
}

/// The segments in `dir`, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sonde"))
        .collect();
    paths.sort();
    paths
}

/// Every frame of every segment, asserting that each is a clean wire file.
fn read_back(dir: &Path) -> Vec<Frame> {
    let mut frames = Vec::new();
    for path in segments(dir) {
        let bytes = std::fs::read(&path).unwrap();
        check_file_header(&bytes).unwrap();
        for item in
            wire::FrameReader::new(&bytes[FILE_HEADER_LEN..], FILE_HEADER_LEN as u64).at_eof()
        {
            match item {
                ReadItem::Frame { frame, .. } => frames.push(frame),
                other => panic!("{}: {other:?}", path.display()),
            }
        }
    }
    frames
}

/// Checks that `frames` hold exactly results `from..to`, in order, with
/// contiguous sequence numbers in one session; returns the first seq.
fn assert_records(frames: &[Frame], from: u64, to: u64) -> u64 {
    let first = frames.first().expect("no frames");
    let session = first.header.session;
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.header.agent, AGENT);
        assert_eq!(f.header.session, session);
        assert_eq!(f.header.seq, first.header.seq + i as u64, "sequence gap");
    }
    // Within a frame records are grouped by check; order by t to compare.
    let got: Vec<(String, Record)> = frames
        .iter()
        .flat_map(|f| {
            let mut recs: Vec<_> = f.records().map(|(c, r)| (c.to_owned(), *r)).collect();
            recs.sort_by_key(|(_, r)| r.t_ms);
            recs
        })
        .collect();
    let want: Vec<(String, Record)> = (from..to)
        .map(result)
        .map(|r| (r.check.to_string(), r.record))
        .collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    first.header.seq
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_read_back_in_order_with_contiguous_sequence() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("records");
    let mut sink = FileSink::open(&config(&dir), AGENT).unwrap();
    assert_eq!(sink.recovery().torn_tails, 0);
    assert_eq!(sink.next_seq(), Some(0));
    write_all(&mut sink, &batches(0, 100, 7)).await;
    sink.tick().await.unwrap();
    sink.close().await.unwrap();

    assert_eq!(segments(&dir).len(), 1);
    let frames = read_back(&dir);
    assert_eq!(frames.len(), 15);
    assert_eq!(assert_records(&frames, 0, 100), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_continues_the_session_and_sequence() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&config(tmp.path()), AGENT).unwrap();
    write_all(&mut sink, &batches(0, 30, 10)).await;
    let session = sink.session();
    sink.close().await.unwrap();

    let mut sink = FileSink::open(&config(tmp.path()), AGENT).unwrap();
    assert_eq!(sink.session(), session);
    assert_eq!(sink.next_seq(), Some(3));
    assert!(sink.recovery().resumed);
    write_all(&mut sink, &batches(30, 50, 10)).await;
    sink.close().await.unwrap();

    assert_eq!(segments(tmp.path()).len(), 1);
    assert_records(&read_back(tmp.path()), 0, 50);
}

/// Writes results 0..30 in three frames, then drops the sink without
/// closing it (as a kill would), and returns the active segment.
async fn three_frames_then_crash(dir: &Path) -> PathBuf {
    let mut sink = FileSink::open(&config(dir), AGENT).unwrap();
    write_all(&mut sink, &batches(0, 30, 10)).await;
    let path = sink.active_path().unwrap().to_owned();
    drop(sink);
    path
}

fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_is_truncated_counted_and_writing_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let path = three_frames_then_crash(tmp.path()).await;
    let clean_len = std::fs::metadata(&path).unwrap().len();

    // Half of a real next frame: what a crash mid-write leaves.
    let mut frame = Vec::new();
    wire::FrameBuilder::new(wire::FrameHeader {
        agent: AGENT.to_owned(),
        session: 1,
        seq: 3,
    })
    .finish()
    .encode_into(&mut frame)
    .unwrap();
    let torn = &frame[..frame.len() / 2];
    append(&path, torn);

    let mut sink = FileSink::open(&config(tmp.path()), AGENT).unwrap();
    let rec = sink.recovery().clone();
    assert_eq!(rec.torn_tails, 1);
    assert_eq!(rec.truncated_bytes, torn.len() as u64);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), clean_len);
    assert_eq!(sink.next_seq(), Some(3));
    write_all(&mut sink, &batches(30, 40, 10)).await;
    sink.close().await.unwrap();

    assert_records(&read_back(tmp.path()), 0, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_tail_and_flipped_last_frame_lose_only_the_tail() {
    // Garbage after the last frame.
    let tmp = tempfile::tempdir().unwrap();
    let path = three_frames_then_crash(tmp.path()).await;
    append(
        &path,
        b"\xc1\x53\x01 not a frame at all, just noise \x00\xff",
    );
    let mut sink = FileSink::open(&config(tmp.path()), AGENT).unwrap();
    assert_eq!(sink.recovery().torn_tails, 1);
    write_all(&mut sink, &batches(30, 35, 5)).await;
    sink.close().await.unwrap();
    assert_records(&read_back(tmp.path()), 0, 35);

    // A flipped byte inside the last frame: that frame goes, nothing before it.
    let tmp = tempfile::tempdir().unwrap();
    let path = three_frames_then_crash(tmp.path()).await;
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let mut sink = FileSink::open(&config(tmp.path()), AGENT).unwrap();
    assert_eq!(sink.recovery().torn_tails, 1);
    assert_eq!(sink.next_seq(), Some(2));
    write_all(&mut sink, &batches(20, 30, 10)).await;
    sink.close().await.unwrap();
    assert_records(&read_back(tmp.path()), 0, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_segment_from_a_crash_at_creation_is_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    let path = three_frames_then_crash(tmp.path()).await;
    // A newer segment that got created but never its header.
    let newer = tmp.path().join("segment-20991231T000000.000Z.sonde");
    std::fs::write(&newer, b"\x89SON").unwrap();
    let mut sink = FileSink::open(&config(tmp.path()), AGENT).unwrap();
    assert_eq!(sink.active_path(), Some(newer.as_path()));
    assert_eq!(sink.recovery().truncated_bytes, 4);
    // The sequence comes from the older segment.
    assert_eq!(sink.next_seq(), Some(3));
    write_all(&mut sink, &batches(30, 40, 10)).await;
    sink.close().await.unwrap();
    assert!(path.exists());
    assert_records(&read_back(tmp.path()), 0, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_header_is_moved_aside_not_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("segment-20260101T000000.000Z.sonde");
    std::fs::write(&bad, b"PK\x03\x04 definitely not sonde").unwrap();
    let mut sink = FileSink::open(&config(tmp.path()), AGENT).unwrap();
    let corrupt = tmp
        .path()
        .join("segment-20260101T000000.000Z.sonde.corrupt");
    assert_eq!(sink.recovery().moved_aside, std::slice::from_ref(&corrupt));
    assert_eq!(
        std::fs::read(&corrupt).unwrap(),
        b"PK\x03\x04 definitely not sonde"
    );
    write_all(&mut sink, &batches(0, 10, 5)).await;
    sink.close().await.unwrap();
    assert_records(&read_back(tmp.path()), 0, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_size_makes_segments_that_all_decode() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.segment_max_bytes = 400;
    cfg.fsync = Fsync::Always;
    let mut sink = FileSink::open(&cfg, AGENT).unwrap();
    write_all(&mut sink, &batches(0, 200, 4)).await;
    sink.close().await.unwrap();

    let segs = segments(tmp.path());
    assert!(segs.len() >= 5, "{segs:?}");
    for seg in &segs {
        let len = std::fs::metadata(seg).unwrap().len();
        assert!(len <= 400, "{} is {len} bytes", seg.display());
    }
    assert_records(&read_back(tmp.path()), 0, 200);

    // A restart continues in the newest segment, with the next sequence.
    let mut sink = FileSink::open(&cfg, AGENT).unwrap();
    assert_eq!(sink.active_path(), segs.last().map(PathBuf::as_path));
    assert_eq!(sink.next_seq(), Some(50));
    write_all(&mut sink, &batches(200, 220, 4)).await;
    sink.close().await.unwrap();
    assert_records(&read_back(tmp.path()), 0, 220);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_age_happens_in_tick() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.segment_max_age = Duration::from_millis(1);
    cfg.fsync = Fsync::Never;
    let mut sink = FileSink::open(&cfg, AGENT).unwrap();
    // An idle sink does not rotate an empty segment.
    tokio::time::sleep(Duration::from_millis(5)).await;
    sink.tick().await.unwrap();
    assert_eq!(segments(tmp.path()).len(), 1);
    for batch in batches(0, 30, 10) {
        sink.write(&batch).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        sink.tick().await.unwrap();
    }
    sink.close().await.unwrap();
    assert_eq!(segments(tmp.path()).len(), 4);
    assert_records(&read_back(tmp.path()), 0, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_the_oldest_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.segment_max_bytes = 400;
    cfg.retention_max_bytes = 1500;
    let mut sink = FileSink::open(&cfg, AGENT).unwrap();
    write_all(&mut sink, &batches(0, 400, 4)).await;
    sink.close().await.unwrap();

    let segs = segments(tmp.path());
    let total: u64 = segs
        .iter()
        .map(|s| std::fs::metadata(s).unwrap().len())
        .sum();
    assert!(total <= 1500, "{total} bytes in {segs:?}");
    assert!(segs.len() >= 3);
    // What is left is the newest results, still contiguous up to the last.
    let frames = read_back(tmp.path());
    let last = frames.last().unwrap().header.seq;
    assert_eq!(last, 99);
    let kept_from = frames.first().unwrap().header.seq * 4;
    assert!(kept_from > 0);
    assert_records(&frames, kept_from, 400);

    // By age: everything finished and idle longer than the limit goes.
    cfg.retention_max_bytes = 1 << 30;
    cfg.retention_max_age = Duration::ZERO;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let sink = FileSink::open(&cfg, AGENT).unwrap();
    assert_eq!(segments(tmp.path()), [segs.last().unwrap().clone()]);
    sink.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_behind_a_sink_handle() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = FileSink::open(&config(tmp.path()), AGENT).unwrap();
    let handle = SinkHandle::spawn(
        sink,
        1024,
        std::time::Duration::ZERO,
        Metrics::new(AGENT, None),
    );
    let fanout = sonde::sink::Fanout::new(std::slice::from_ref(&handle), Metrics::new(AGENT, None));
    for i in 0..300 {
        fanout.send((*result(i)).clone());
    }
    drop(fanout);
    handle.close().await.unwrap();
    let frames = read_back(tmp.path());
    assert_records(&frames, 0, 300);
}

/// Set in the child process of `sigkill_loses_nothing_acknowledged`.
const CHILD_DIR: &str = "SONDE_TEST_SINK_CHILD_DIR";

/// Not a test by itself: the child that `sigkill_loses_nothing_acknowledged`
/// runs and kills. Writes batches of 10 results forever, printing how many
/// results each returned `write` covered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by sigkill_loses_nothing_acknowledged"]
async fn sigkill_child_writer() {
    use std::io::Write;
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let mut cfg = config(Path::new(&dir));
    cfg.segment_max_bytes = 4096;
    let mut sink = FileSink::open(&cfg, AGENT).unwrap();
    let mut stdout = std::io::stdout();
    for start in (0..).step_by(10) {
        let batch: Vec<_> = (start..start + 10).map(result).collect();
        sink.write(&batch).await.unwrap();
        sink.tick().await.unwrap();
        writeln!(stdout, "acked {}", start + 10).unwrap();
        stdout.flush().unwrap();
    }
}

#[test]
fn sigkill_loses_nothing_acknowledged() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            // Its name in the one test binary (tests/tests.rs).
            "sink_file::sigkill_child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DIR, tmp.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = 0u64;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("acked ") {
            acked = n.parse().unwrap();
            if acked >= 3000 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(acked >= 3000, "child stopped early at {acked}");

    // Reopen: whatever tail the kill left is cut; everything acknowledged is there.
    let sink = FileSink::open(&config(tmp.path()), AGENT).unwrap();
    let next_seq = sink.next_seq().unwrap();
    drop(sink);
    let frames = read_back(tmp.path());
    assert_eq!(frames.len() as u64, next_seq);
    assert!(
        next_seq * 10 >= acked,
        "{next_seq} frames, {acked} results acked"
    );
    assert_records(&frames, 0, next_seq * 10);
}
