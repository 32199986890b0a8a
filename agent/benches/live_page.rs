//! The live page's budget, measured in headless Chromium (testkit::browser,
//! the harness of the page's tests) against `sonde gateway` and `sonde
//! run` child processes on loopback:
//!
//! 1. probe end → pixel with 1 000 checks at 1 s: the record's `t + rt`
//!    against the page's `Date.now()` when the frame that shows it has
//!    drawn (one machine, one clock; ±1 ms, `t` and `rt` are whole ms;
//!    the compositor shows that frame at the next vsync, up to one more
//!    frame), first with the overview on screen, then with one check open;
//! 2. the overview's JS heap with 10 000 checks streaming (at 10 s);
//! 3. a check view holding 24 h of 1-second probes (86 400, put through
//!    the path history's backfill takes): bytes a probe, and the draw
//!    function's time for zooms and pans over all of them.
//!
//! Heap: CDP's `Runtime.getHeapUsage` after a forced GC, `usedSize` plus
//! `backingStorageSize` (typed arrays' stores live outside V8's heap).
//!
//! `cargo bench -p sonde --bench live_page` (SONDE_BENCH_SECS sets each
//! streaming phase's length, default 20). Without Chromium it says so.
#![allow(clippy::disallowed_types, reason = "benchmarks measure real time")]

#[path = "common/lab.rs"]
mod lab;
#[path = "../tests/util/process.rs"]
#[allow(dead_code)]
mod process;

use std::time::Duration;

use process::Process;
use serde_json::{Value, json};
use testkit::browser::{self, Browser};
use testkit::http::HttpTarget;

/// The page names its one region.
const REGION: &str = "region = \"bench\"\n";

fn main() {
    if !browser::available() {
        println!("live_page: skipped (needs chromium, chromedriver and python3's selenium)");
        return;
    }
    let secs: u64 = std::env::var("SONDE_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let targets: Vec<HttpTarget> = (0..4).map(|_| HttpTarget::plain()).collect();

    {
        let chain = Lab::start(&targets, 1000, "1s");
        let mut b = Browser::start(1400, 900);
        b.open(&format!(
            "http://{}/#token={}",
            chain.gateway_addr,
            lab::READER
        ));
        wait(
            &mut b,
            "1000 rows",
            "return sonde.state.overview?.rows.size >= 1000",
        );
        std::thread::sleep(Duration::from_secs(3));
        b.eval("sonde.stats.overview.length = 0; return 1");
        std::thread::sleep(Duration::from_secs(secs));
        let overview = numbers(&b.eval("return sonde.stats.overview"));
        report(
            "1000 checks @1s, overview on screen: probe end -> painted",
            &overview,
            100.0,
        );

        b.eval("location.hash = 'check=' + ['bench', 'bench', 'c7'].map(encodeURIComponent).join('/'); return 1");
        wait(
            &mut b,
            "the check's history",
            "return document.querySelector('#check')?.dataset.loaded === 'true'",
        );
        std::thread::sleep(Duration::from_secs(2));
        b.eval("sonde.stats.paint.length = 0; return 1");
        std::thread::sleep(Duration::from_secs(secs));
        let check = numbers(&b.eval("return sonde.stats.paint"));
        report(
            "1000 checks @1s, one check open: probe end -> chart drawn",
            &check,
            100.0,
        );
    }

    {
        let chain = Lab::start(&targets, 10_000, "10s");
        let mut b = Browser::start(1400, 900);
        b.open(&format!(
            "http://{}/#token={}",
            chain.gateway_addr,
            lab::READER
        ));
        let before = heap(&mut b);
        wait_long(
            &mut b,
            "10000 rows",
            "return sonde.state.overview?.rows.size >= 10000",
            120,
        );
        std::thread::sleep(Duration::from_secs(secs.max(20)));
        let after = heap(&mut b);
        let rows = b.eval("return sonde.state.overview.rows.size");
        println!(
            "overview of {rows} checks @10s after {}s: JS heap {:.1} MB (page before any check: {:.1} MB); target < 60 MB: {}",
            secs.max(20),
            after / 1e6,
            before / 1e6,
            verdict(after < 60e6)
        );
    }

    // One check's view with 86 400 probes, from a gateway with nothing
    // in it (no live records in the way).
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (_gw, addr) = lab::gateway(tmp.path(), REGION);
    let mut b = Browser::start(1400, 900);
    b.open(&format!("http://{addr}/#token={}", lab::READER));
    wait(
        &mut b,
        "the overview",
        "return sonde.state.overview !== null && document.querySelector('#overview') !== null",
    );
    b.eval("location.hash = 'check=' + ['bench', 'bench', 'day'].map(encodeURIComponent).join('/'); return 1");
    wait(
        &mut b,
        "the view",
        "return document.querySelector('#check')?.dataset.loaded === 'true'",
    );
    let empty = heap(&mut b);
    let n = 86_400;
    b.eval_with(
        "const v = sonde.view, n = arguments[0], end = Date.now();
         for (let i = 0; i < n; i++) {
           const t = end - (n - i) * 1000, slow = i % 997 === 0;
           v.put({gseq: 1796000000000000 + i, agent: 'bench', check: 'day', record: {
             t, rt: slow ? 900 : 40 + (i % 13), sc: slow ? null : 200, st: slow ? 'down' : 'up',
             dn: 2, cn: 5 + (i % 3), tl: 12, ft: slow ? null : 20 + (i % 7), error: slow ? 'timeout' : null}}, false);
         }
         v.zoom(end - n * 1000 - 1000, end + 1000);
         return v.series.length",
        json!([n]),
    );
    let full = heap(&mut b);
    let bytes = b.eval("return [sonde.view.series.bytes(), sonde.view.series.capacity]");
    let per_probe = (full - empty) / n as f64;
    println!(
        "check view of {n} probes: JS heap +{:.1} MB = {per_probe:.1} B a probe (typed arrays: {} B for capacity {}); target <= 48 B: {}",
        (full - empty) / 1e6,
        bytes[0],
        bytes[1],
        verdict(per_probe <= 48.0)
    );
    // Zooms and pans over all of them, one per frame.
    let draws = b.eval(
        "const v = sonde.view, s = v.series, first = s.t[0], last = s.t[s.length - 1], span = last - first;
         const frame = () => new Promise((r) => requestAnimationFrame(r));
         return (async () => {
           await frame();
           sonde.stats.drawFn.length = 0;
           for (let k = 0; k < 100; k++) {
             const width = span * (k % 4 === 0 ? 1 : 1 / (1 + (k % 7)));
             const min = first + (span - width) * ((k * 37) % 100) / 100;
             v.zoom(min, min + width);
             await frame();
           }
           return sonde.stats.drawFn.slice();
         })()",
    );
    let draws = numbers(&draws);
    let p95 = percentile(&draws, 0.95);
    println!(
        "check view of {n} probes: {} zooms and pans, draw function p50 {:.2} ms, p95 {p95:.2} ms, max {:.2} ms; target p95 < 8 ms: {}",
        draws.len(),
        percentile(&draws, 0.5),
        percentile(&draws, 1.0),
        verdict(p95 < 8.0)
    );
}

/// A gateway and an agent probing `checks` loopback URLs every `interval`.
struct Lab {
    gateway_addr: std::net::SocketAddr,
    _tmp: tempfile::TempDir,
    gateway: Process,
    agent: Process,
}

impl Lab {
    fn start(targets: &[HttpTarget], checks: usize, interval: &str) -> Lab {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (gateway, gateway_addr) = lab::gateway(tmp.path(), REGION);
        let agent = lab::agent(tmp.path(), gateway_addr, targets, checks, interval);
        Lab {
            gateway_addr,
            _tmp: tmp,
            gateway,
            agent,
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.agent.stop();
        self.gateway.stop();
    }
}

fn wait(b: &mut Browser, what: &str, script: &str) {
    wait_long(b, what, script, 60);
}

fn wait_long(b: &mut Browser, what: &str, script: &str, secs: u64) {
    b.wait_for(Duration::from_secs(secs), what, script);
}

/// The page's JS heap after a GC: V8's heap and typed arrays' stores.
fn heap(b: &mut Browser) -> f64 {
    b.cdp("HeapProfiler.collectGarbage", json!({}));
    let usage = b.cdp("Runtime.getHeapUsage", json!({}));
    let part = |k: &str| usage[k].as_f64().unwrap_or(0.0);
    part("usedSize") + part("backingStorageSize")
}

fn numbers(v: &Value) -> Vec<f64> {
    let mut out: Vec<f64> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect();
    out.sort_by(f64::total_cmp);
    out
}

/// The p-quantile of sorted figures.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

fn report(what: &str, sorted: &[f64], p99_target: f64) {
    let p99 = percentile(sorted, 0.99);
    println!(
        "{what}: {} records, p50 {:.0} ms, p99 {p99:.0} ms, max {:.0} ms; target p99 < {p99_target:.0} ms: {}",
        sorted.len(),
        percentile(sorted, 0.5),
        percentile(sorted, 1.0),
        verdict(p99 < p99_target)
    );
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}
