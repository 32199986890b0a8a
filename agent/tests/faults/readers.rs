//! Faults: stuck and slow readers of a real `sonde gateway` (PROTOCOL.md
//! 3.4). Readers (SSE and WebSocket) that connect and never read are
//! closed once their writes stop progressing for `[readers]
//! write_timeout`, each counted; the
//! gateway's memory stays within the per-reader bound meanwhile; readers
//! that do read get every record exactly once, in gseq order; a reader
//! too slow for the live queue gets `lagged` with the range it missed,
//! then the end of its connection; and ingest is acknowledged throughout.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::http::{exchange, scrape};
use crate::util::process::{Process, free_addr, wait_until};
use crate::util::sse::{Control, SseReader};
use crate::util::up_record;
use wire::{FrameBuilder, FrameHeader};

const AGENT_TOKEN: &str = "agent-token-faults-readers";
const READER_TOKEN: &str = "reader-token-faults-readers";
const AGENT: &str = "faults-readers";
/// The write deadline these tests configure: short, so they take seconds.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// What PROTOCOL.md 3.4 promises a reader that stopped reading costs the
/// gateway at most (64 KiB send buffer, connection and feed state).
const PER_READER_BOUND_KIB: u64 = 128;
const RECORDS_PER_FRAME: u64 = 100;

fn gateway_config(dir: &Path, addr: SocketAddr, readers: &str) -> PathBuf {
    let token = dir.join("reader.token");
    std::fs::write(&token, READER_TOKEN).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("gateway.toml");
    let text = format!(
        "listen = \"{addr}\"\ndata_dir = \"{}\"\n\
         [readers]\nwrite_timeout = \"{}s\"\n{readers}\n\
         [[agent]]\nid = \"{AGENT}\"\ntoken = {{ env = \"FAULTS_AGENT_TOKEN\" }}\n\n\
         [[reader]]\nname = \"dash\"\ntoken = {{ file = \"{}\" }}\n",
        dir.join("data").display(),
        WRITE_TIMEOUT.as_secs(),
        token.display()
    );
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn start_gateway(config: &Path, addr: SocketAddr) -> Process {
    let shown = config.display().to_string();
    let mut gw = Process::start(
        &["gateway", "--config", &shown],
        &[("FAULTS_AGENT_TOKEN", AGENT_TOKEN)],
    );
    gw.wait_listening(addr);
    gw
}

/// `count` frames from `first_seq` on, of 100 records over 10 checks, as
/// one ingest body.
fn body(first_seq: u64, count: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for seq in first_seq..first_seq + count {
        let mut b = FrameBuilder::new(FrameHeader {
            agent: AGENT.into(),
            session: 1,
            seq,
        });
        for i in 0..RECORDS_PER_FRAME {
            let t = 1_767_225_600_000 + seq * 1000 + i;
            b.push(&format!("check-{}", i % 10), up_record(t, 250));
        }
        b.finish()
            .encode_into(&mut out)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    out
}

/// Posts frames `first_seq..first_seq + count`; every one must be
/// acknowledged.
#[track_caller]
fn ingest(addr: SocketAddr, first_seq: u64, count: u64) {
    let bearer = format!("Bearer {AGENT_TOKEN}");
    let answer = exchange(
        addr,
        "POST",
        "/v1/frames",
        &[
            ("authorization", &bearer),
            ("content-type", "application/vnd.sonde.frames"),
        ],
        &body(first_seq, count),
    );
    assert_eq!(answer.status, 200, "ingest refused: {}", answer.text);
    let ack: serde_json::Value =
        serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.body));
    assert_eq!(ack["acked"].as_u64(), Some(first_seq + count - 1));
}

/// A reader that sends its request and never reads a byte.
fn stuck_reader(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect: {e}"));
    write!(
        s,
        "GET /v1/stream HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {READER_TOKEN}\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("{e}"));
    s
}

/// A WebSocket reader (JSON) that upgrades and never reads a byte.
fn stuck_websocket(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect: {e}"));
    write!(
        s,
        "GET /v1/ws?format=json HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {READER_TOKEN}\r\n\
         connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("{e}"));
    s
}

/// Whether the gateway closed `s`: what it sent is read, then the end.
fn closed_by_peer(mut s: TcpStream) -> bool {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Asserts that `reader` got exactly the `frames * 100` records posted,
/// each once, in gseq order, and no reset.
#[track_caller]
fn got_everything_once_in_order(reader: &SseReader, frames: u64, what: &str) {
    let records = reader.records();
    assert_eq!(
        records.len() as u64,
        frames * RECORDS_PER_FRAME,
        "{what}: every record"
    );
    assert!(
        records.windows(2).all(|w| w[0].gseq < w[1].gseq),
        "{what}: strictly increasing gseqs"
    );
    let mut keys: Vec<(u64, String)> = records.iter().map(|r| (r.t, r.check.clone())).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len() as u64,
        frames * RECORDS_PER_FRAME,
        "{what}: once"
    );
    assert!(
        !reader
            .control()
            .iter()
            .any(|c| matches!(c, Control::Reset { .. })),
        "{what}: no reset: {:?}",
        reader.control()
    );
}

#[test]
fn stuck_readers_are_closed_within_the_deadline_and_readers_get_everything() {
    const STUCK: usize = 200;
    const FRAMES: u64 = 200;
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let addr = free_addr();
    let mut gw = start_gateway(&gateway_config(tmp.path(), addr, ""), addr);
    let pid = gw.pid();
    let reading = [
        SseReader::connect(addr, READER_TOKEN, None),
        SseReader::connect(addr, READER_TOKEN, None),
    ];
    wait_until(Duration::from_secs(10), "the readers' snapshots", || {
        reading.iter().all(|r| !r.control().is_empty())
    });
    ingest(addr, 0, 10);
    std::thread::sleep(Duration::from_millis(300));
    let baseline = rss_kib(pid);

    // Half over SSE, half over WebSocket.
    let stuck: Vec<TcpStream> = (0..STUCK)
        .map(|i| {
            if i % 2 == 0 {
                stuck_reader(addr)
            } else {
                stuck_websocket(addr)
            }
        })
        .collect();
    wait_until(Duration::from_secs(10), "every reader connected", || {
        scrape(addr, "sonde_gateway_readers", "") as usize == STUCK + 2
    });
    // Enough for each stuck reader's socket buffers to fill: its writes
    // then stop progressing, and the deadline runs.
    let started = Instant::now();
    let mut peak = 0;
    for first in (10..FRAMES).step_by(10) {
        ingest(addr, first, 10);
        peak = peak.max(rss_kib(pid));
    }
    let ingest_time = started.elapsed();
    wait_until(
        WRITE_TIMEOUT + Duration::from_secs(8),
        "the stuck readers closed",
        || {
            peak = peak.max(rss_kib(pid));
            scrape(addr, "sonde_gateway_readers", "") as usize == 2
        },
    );
    assert_eq!(
        scrape(addr, "sonde_gateway_write_timeouts_total", "") as usize,
        STUCK,
        "each stuck reader closed by the write deadline, once{}",
        gw.describe()
    );
    let closed = stuck
        .into_iter()
        .filter(|s| closed_by_peer(s.try_clone().unwrap_or_else(|e| panic!("{e}"))))
        .count();
    assert_eq!(closed, STUCK, "every stuck reader sees its connection end");

    // Memory: the per-reader bound for each stuck reader, plus the live
    // queue's shared encodings of what was posted (about 200 bytes of
    // JSON a record) and some slack for the allocator.
    let shared_kib = FRAMES * RECORDS_PER_FRAME * 200 / 1024;
    let bound = STUCK as u64 * PER_READER_BOUND_KIB + shared_kib + 8 * 1024;
    let grown = peak.saturating_sub(baseline);
    assert!(
        grown <= bound,
        "gateway RSS grew {grown} KiB with {STUCK} stuck readers, bound {bound} KiB"
    );
    eprintln!(
        "{STUCK} stuck readers: RSS +{grown} KiB at peak ({} KiB per reader with the shared queue), ingest of {FRAMES} frames took {ingest_time:?}",
        grown / STUCK as u64
    );

    wait_until(Duration::from_secs(10), "the readers caught up", || {
        reading
            .iter()
            .all(|r| r.records().len() as u64 == FRAMES * RECORDS_PER_FRAME)
    });
    for (i, r) in reading.iter().enumerate() {
        got_everything_once_in_order(r, FRAMES, &format!("reading reader {i}"));
    }
    // The gateway goes on serving new readers and ingest.
    ingest(addr, FRAMES, 1);
    let late = SseReader::connect(addr, READER_TOKEN, None);
    wait_until(Duration::from_secs(5), "a new reader's snapshot", || {
        !late.control().is_empty()
    });
    gw.stop();
}

/// A reader that takes 16 KiB every 50 ms (about 320 KiB/s) until the
/// gateway ends the stream; returns everything it read.
fn slow_reader(addr: SocketAddr) -> std::thread::JoinHandle<String> {
    let mut s = stuck_reader(addr);
    std::thread::spawn(move || {
        let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
        let mut all = Vec::new();
        let mut buf = vec![0u8; 16 << 10];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            std::thread::sleep(Duration::from_millis(50));
        }
        String::from_utf8_lossy(&all).into_owned()
    })
}

/// The JSON messages of an SSE answer: each event is one chunk, so its
/// `data:` line arrives whole.
fn data_lines(raw: &str) -> Vec<serde_json::Value> {
    raw.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect()
}

#[test]
fn a_slow_reader_gets_lagged_with_the_range_it_missed_then_the_end() {
    const FRAMES: u64 = 300;
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let addr = free_addr();
    let config = gateway_config(tmp.path(), addr, "queue_frames = 64");
    let mut gw = start_gateway(&config, addr);
    let slow = slow_reader(addr);
    wait_until(Duration::from_secs(10), "the reader connected", || {
        scrape(addr, "sonde_gateway_readers", "") as usize == 1
    });
    // About 500 frames/s: the reader (16 frames/s) falls 64 frames
    // behind within a second, and goes on reading all the while.
    for first in (0..FRAMES).step_by(10) {
        ingest(addr, first, 10);
        std::thread::sleep(Duration::from_millis(20));
    }
    let raw = slow.join().unwrap_or_else(|_| panic!("slow reader"));
    let head = raw.split("\r\n\r\n").next().unwrap_or("");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "the connection ends with the stream: {head}"
    );
    let messages = data_lines(&raw);
    let last_seen = messages
        .iter()
        .filter(|m| m["type"] == "records")
        .flat_map(|m| m["records"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["gseq"].as_u64())
        .max();
    let reset = messages
        .last()
        .unwrap_or_else(|| panic!("no message: {raw}"));
    assert_eq!(
        (reset["type"].as_str(), reset["reason"].as_str()),
        (Some("reset"), Some("lagged")),
        "the stream ends with a lagged reset"
    );
    let missed_from = reset["missed_from"].as_u64();
    let newest = reset["gseq"].as_u64().unwrap_or(0);
    // It missed from just after the last record it was sent.
    assert_eq!(missed_from, last_seen.map(|g| g + 1));
    assert!(missed_from.is_some_and(|m| m <= newest), "{reset}");
    assert_eq!(reset["missed_to"].as_u64(), Some(newest), "{reset}");
    assert_eq!(
        scrape(
            addr,
            "sonde_gateway_reader_drops_total",
            "reason=\"lagged\""
        ) as u64,
        1
    );
    assert_eq!(scrape(addr, "sonde_gateway_readers", "") as usize, 0);
    assert_eq!(
        scrape(addr, "sonde_gateway_write_timeouts_total", "") as usize,
        0,
        "lagged by the queue bound, not by the deadline: it kept reading"
    );
    gw.stop();
}
