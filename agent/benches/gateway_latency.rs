//! Latency from the end of a probe to a reader receiving its record,
//! through the whole chain as operators run it: `sonde run` (file-less,
//! gateway sink) and `sonde gateway` as child processes on loopback, the
//! checks against a loopback HTTP target in this process, and an SSE
//! reader here. Two phases: few checks (the sink idle between results:
//! sent at once) and many (the sink under load: batched).
//!
//! The probe's end is taken as the record's `t + rt` (wall clock, integer
//! ms: `t` is truncated to the ms and `rt` rounded), the reception as this
//! process's wall clock when the SSE event is parsed; all on one machine,
//! one clock. Each latency is therefore good to about ±1 ms; p50 and p99
//! are printed with that resolution in mind.
//!
//! `cargo bench -p sonde --bench gateway_latency` (SONDE_BENCH_SECS sets
//! each phase's length, default 20).
#![allow(clippy::disallowed_types, reason = "benchmarks measure real time")]

#[path = "common/lab.rs"]
mod lab;
#[path = "../tests/util/process.rs"]
#[allow(dead_code)]
mod process;
#[path = "../tests/util/sse.rs"]
#[allow(dead_code)]
mod sse;

use std::time::{Duration, UNIX_EPOCH};

use sse::SseReader;
use testkit::http::HttpTarget;

fn main() {
    let secs: u64 = std::env::var("SONDE_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let targets: Vec<HttpTarget> = (0..4).map(|_| HttpTarget::plain()).collect();
    for (checks, interval) in [(10, "1s"), (2000, "1s")] {
        let lat = run(&targets, checks, interval, secs);
        report(checks, interval, &lat);
    }
}

/// Latencies in ms, one per record received.
fn run(targets: &[HttpTarget], checks: usize, interval: &str, secs: u64) -> Vec<f64> {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (mut gw, gw_addr) = lab::gateway(tmp.path(), "");
    let reader = SseReader::connect(gw_addr, lab::READER, None);
    let mut agent = lab::agent(tmp.path(), gw_addr, targets, checks, interval);
    // Skip the start-up (first probes, connection set-up), then measure.
    std::thread::sleep(Duration::from_secs(3));
    let skip = reader.records().len();
    std::thread::sleep(Duration::from_secs(secs));
    let records = reader.records();
    agent.stop();
    gw.stop();
    records
        .iter()
        .skip(skip)
        .map(|r| {
            let received = r
                .received
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
            received - (r.t + r.rt) as f64
        })
        .collect()
}

fn report(checks: usize, interval: &str, lat: &[f64]) {
    let mut sorted = lat.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        sorted
            .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "{checks} checks @{interval}: {} records; probe end -> reader: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (±1 ms: t and rt are whole ms); target p50 < 5 ms: {}",
        sorted.len(),
        pct(0.5),
        pct(0.99),
        sorted.last().copied().unwrap_or(f64::NAN),
        if pct(0.5) < 5.0 { "met" } else { "NOT met" }
    );
}
