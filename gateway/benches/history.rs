//! History figures, printed beside their targets (PROTOCOL.md 3.10): over a
//! data_dir of 10 million records from 1 000 checks, how long one check
//! over one hour takes to answer, how fast a whole-fleet hour streams
//! (pages of 10 000, MessagePack, through the cursor), and what the index
//! costs: time to build it from the files, and memory per million records
//! (the index's own estimate, and the process's RSS growth).
//!
//! `cargo bench -p sonde-gateway --bench history`. `SONDE_BENCH_RECORDS`
//! sets another size (the layout stays: 10 agents of 100 checks each,
//! every check probed every 10 s, one frame per agent per second).

use std::path::Path;
use std::time::{Duration, Instant};

use gateway::auth::Scope;
use gateway::history::index::Index;
use gateway::history::{Filter, page};
use gateway::message::{self, Format, Hello};
use gateway::recover::file_name;
use wire::{FrameBuilder, FrameHeader, Record};

const AGENTS: u64 = 10;
const CHECKS_PER_AGENT: u64 = 100;
const INTERVAL_MS: u64 = 10_000;
const START_MS: u64 = 1_767_225_600_000;
const FILE_BYTES: usize = 64 << 20;
const HOUR_MS: u64 = 3_600_000;
const PAGE: usize = 10_000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn record(t: u64, i: u64) -> Record {
    Record::up(t, 180 + i % 70)
        .with_sc(200)
        .with_phases(3, 12, 25, 90 + i % 40)
}

/// Writes `records` records as the writer would: files of at most
/// `FILE_BYTES`, each named by its first gseq. Each second, every agent
/// sends one frame with the records of the checks due in that second
/// (a tenth of its checks). Returns the span of `t` covered.
fn write_data_dir(dir: &Path, records: u64) -> std::io::Result<(u64, u64)> {
    let mut gseq = 0u64;
    let mut file = wire::file_header().to_vec();
    let mut file_first = 0u64;
    let mut index = 0u32;
    let per_second = CHECKS_PER_AGENT * 1000 / INTERVAL_MS;
    let mut second = 0u64;
    let mut seq = 0u64;
    let mut frame_bytes = Vec::new();
    'out: loop {
        let t = START_MS + second * 1000;
        seq += 1;
        for agent in 0..AGENTS {
            let mut b = FrameBuilder::new(FrameHeader {
                agent: format!("agent-{agent:02}"),
                session: 1,
                seq,
            });
            for k in 0..per_second {
                let check = (second % (INTERVAL_MS / 1000)) * per_second + k;
                let name = format!("check-{:04}", agent * CHECKS_PER_AGENT + check);
                b.push(&name, record(t + k * 7, gseq + k));
            }
            let frame = b.finish();
            let n = frame.record_count() as u64;
            frame_bytes.clear();
            frame
                .encode_into(&mut frame_bytes)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            if file.len() + frame_bytes.len() > FILE_BYTES {
                std::fs::write(dir.join(file_name(file_first, index)), &file)?;
                file.truncate(wire::FILE_HEADER_LEN);
                file_first = gseq;
                index += 1;
            }
            file.extend_from_slice(&frame_bytes);
            gseq += n;
            if gseq >= records {
                break 'out;
            }
        }
        second += 1;
    }
    std::fs::write(dir.join(file_name(file_first, index)), &file)?;
    Ok((START_MS, START_MS + second * 1000))
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn main() -> std::io::Result<()> {
    let records: u64 = std::env::var("SONDE_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let started = Instant::now();
    let (t_first, t_last) = write_data_dir(dir, records)?;
    let span_h = (t_last - t_first) as f64 / HOUR_MS as f64;
    println!(
        "data_dir: {records} records, {} checks, {} agents, {span_h:.1} h of probes, {} MiB in {} files (written in {:.1} s)",
        AGENTS * CHECKS_PER_AGENT,
        AGENTS,
        dir_bytes(dir) >> 20,
        std::fs::read_dir(dir)?.count(),
        started.elapsed().as_secs_f64()
    );

    // The index: built by the first query's refresh.
    let rss_before = rss_kib();
    let mut index = Index::default();
    let started = Instant::now();
    index.refresh(dir)?;
    let built = started.elapsed();
    let size = index.size();
    let rss_after = rss_kib();
    let per_m = |bytes: f64| bytes / (size.records as f64 / 1e6) / (1 << 20) as f64;
    println!(
        "index build: {} records in {} frames, {} files, in {:.2} s ({:.1} M records/s)",
        size.records,
        size.frames,
        size.files,
        built.as_secs_f64(),
        size.records as f64 / built.as_secs_f64() / 1e6
    );
    println!(
        "index memory: {:.2} MiB per million records (estimate from capacities: {:.1} MiB in all); RSS grew {:.2} MiB per million records",
        per_m(size.heap_bytes as f64),
        size.heap_bytes as f64 / (1 << 20) as f64,
        per_m((rss_after.saturating_sub(rss_before) * 1024) as f64)
    );
    let shared = std::sync::Mutex::new(index);
    let refresh = {
        let started = Instant::now();
        shared
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .refresh(dir)?;
        started.elapsed()
    };
    println!(
        "index refresh with nothing new (every query does one): {:.3} ms",
        refresh.as_secs_f64() * 1e3
    );

    let everyone = Scope::new("bench", vec![], vec![]);
    let mid = t_first + (t_last - t_first) / 2;
    let hour = |from: u64| Filter {
        t_from: Some(from),
        t_to: Some(from + HOUR_MS - 1),
        ..Filter::default()
    };

    // One check over one hour, at different hours and checks.
    let mut times = Vec::new();
    let mut got = 0;
    for i in 0..50u64 {
        let check = format!("check-{:04}", (i * 37) % (AGENTS * CHECKS_PER_AGENT));
        let from = t_first + (i * 7919 * 1000) % (t_last - t_first - HOUR_MS).max(1);
        let filter = Filter {
            check: Some(check),
            ..hour(from)
        };
        let started = Instant::now();
        let p = page(&shared, dir, 0, u64::MAX, PAGE, &everyone, &filter)?;
        let body = message::history_answer(Format::Json, &hello(), &items(&p), p.next);
        times.push(started.elapsed());
        got += p.records.len();
        std::hint::black_box(body);
    }
    times.sort();
    println!(
        "one check, one hour (JSON, 50 queries, {} records each on average): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target < 50 ms)",
        got / times.len(),
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );

    // The whole fleet over one hour, page after page.
    let filter = hour(mid);
    let started = Instant::now();
    let mut from = 0;
    let (mut served, mut bytes, mut pages) = (0usize, 0usize, 0usize);
    loop {
        let p = page(&shared, dir, from, u64::MAX, PAGE, &everyone, &filter)?;
        let body = message::history_answer(Format::MsgPack, &hello(), &items(&p), p.next);
        served += p.records.len();
        bytes += body.len();
        pages += 1;
        match p.next {
            Some(n) => from = n,
            None => break,
        }
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "whole fleet, one hour (MessagePack, {pages} pages of up to {PAGE}): {served} records, {} MiB in {took:.2} s = {:.2} M records/s (target >= 1 M records/s)",
        bytes >> 20,
        served as f64 / took / 1e6
    );

    // The same hour read the old way, every file whole: the ratio is the
    // index's doing.
    let started = Instant::now();
    let mut scanned = 0u64;
    let mut matched = 0u64;
    for entry in std::fs::read_dir(dir)? {
        let bytes = std::fs::read(entry?.path())?;
        for item in store::body(&bytes) {
            if let wire::ReadItem::Frame { frame, .. } = item {
                for (_, r) in frame.records() {
                    scanned += 1;
                    matched += u64::from(r.t_ms >= mid && r.t_ms < mid + HOUR_MS);
                }
            }
        }
    }
    let scan = started.elapsed().as_secs_f64();
    println!(
        "for comparison, decoding every file for that hour: {scanned} records decoded, {matched} matched, {scan:.2} s ({:.1}x the indexed fleet hour)",
        scan / took
    );
    Ok(())
}

fn hello() -> Hello<'static> {
    Hello {
        gateway: "bench",
        region: None,
        gseq: 0,
        ring: None,
    }
}

fn items(p: &gateway::history::Page) -> Vec<message::Item<'_>> {
    p.records
        .iter()
        .map(|(g, agent, check, record)| (*g, agent.as_str(), check.as_str(), record))
        .collect()
}
