//! The agent under load, as operators run it: `sonde run` as a child
//! process. Scenarios (`SONDE_BENCH_SCENARIOS`, comma-separated; all by
//! default):
//!
//! - `load`: 10 000 HTTP checks at a 10 s interval against in-process
//!   loopback targets: lateness, RSS, CPU per probe beside a single-probe
//!   baseline measured in this same run.
//! - `https`, `http`: 200 and 2000 checks at a 1 s interval against a
//!   loopback nginx (fresh TLS 1.3 handshake per probe, HTTP/1.1), CPU per
//!   probe beside a bare tokio (+ rustls) floor doing the same probes at
//!   the same rate against the same nginx, in this same run.
//! - `scale`: 100 000 HTTP checks at a 10 s interval against nginx:
//!   lateness, RSS, skipped runs.
//! - `idle`: 10 checks, RSS.
//!
//! Prints figures beside their targets; asserts nothing.
//! `cargo bench -p sonde --bench agent` (SONDE_BENCH_SECS shortens each
//! run, default 60; SONDE_BENCH_CHECKS changes `load`'s check count).
#![allow(clippy::disallowed_types, reason = "benchmarks measure real time")]

#[path = "common/floor.rs"]
#[allow(dead_code, reason = "the phases are the probe bench's")]
mod floor;
#[path = "common/procfs.rs"]
mod procfs;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sonde::probe::{ProbeSpec, Prober, TlsOptions, tls};

#[path = "../tests/util/http.rs"]
#[allow(dead_code)]
mod http;
use testkit::http::HttpTarget;
use testkit::nginx::Nginx;

/// How long each agent runs before its counters are read the first time.
const WARMUP: Duration = Duration::from_secs(5);

fn main() {
    let secs: u64 = env_or("SONDE_BENCH_SECS", 60);
    let scenarios = std::env::var("SONDE_BENCH_SCENARIOS")
        .unwrap_or_else(|_| "load,https,http,scale,idle".to_owned());
    let wanted = |name: &str| scenarios.split(',').any(|s| s.trim() == name);
    println!(
        "machine: {} (load average at start)",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    if wanted("load") || wanted("idle") {
        // Several targets, so no single server thread is the bottleneck.
        let targets: Vec<HttpTarget> = (0..4).map(|_| HttpTarget::plain()).collect();
        let urls: Vec<String> = targets.iter().map(|t| t.url("/")).collect();
        if wanted("load") {
            load(&targets[0], &urls, secs);
        }
        if wanted("idle") {
            let idle = run_agent(
                &Agent::new(&urls, 10, Duration::from_secs(10)),
                15.min(secs),
            );
            println!(
                "\nidle agent, 10 checks: RSS max {:.1} MB (target < 10 MB: {}; blackbox_exporter idles at about 15 MB)",
                idle.rss_max_kb as f64 / 1024.0,
                met(idle.rss_max_kb < 10 * 1024)
            );
        }
    }
    if wanted("https") || wanted("http") || wanted("scale") {
        let nginx = match Nginx::start() {
            Ok(nginx) => nginx,
            Err(e) => {
                println!("\nno nginx ({e:#}): https, http and scale scenarios skipped");
                return;
            }
        };
        if wanted("https") {
            at_rate(&nginx, true, secs);
        }
        if wanted("http") {
            at_rate(&nginx, false, secs);
        }
        if wanted("scale") {
            scale(&nginx, secs);
        }
    }
}

/// 10 000 checks (SONDE_BENCH_CHECKS) at 10 s against testkit targets.
fn load(baseline_target: &HttpTarget, urls: &[String], secs: u64) {
    let checks: usize = env_or("SONDE_BENCH_CHECKS", 10_000);
    let baseline_us = single_probe_cpu_us(baseline_target);
    println!("\nsingle-probe baseline (in-process, thread CPU): {baseline_us:.1} µs/probe");
    let loaded = run_agent(&Agent::new(urls, checks, Duration::from_secs(10)), secs);
    println!(
        "{checks} checks @10s for {secs}s: {} probes, {} skipped",
        loaded.probes, loaded.skipped
    );
    print_lateness(&loaded);
    println!(
        "  RSS max {:.1} MB (target < 50 MB: {})",
        loaded.rss_max_kb as f64 / 1024.0,
        met(loaded.rss_max_kb < 50 * 1024)
    );
    let per_probe = loaded.cpu_per_probe_us();
    println!(
        "  CPU {:.2} s = {per_probe:.1} µs/probe, {:.2}x the single-probe baseline (target ≤ 1.2x: {})",
        loaded.cpu_secs,
        per_probe / baseline_us,
        met(per_probe / baseline_us <= 1.2)
    );
}

/// 200 and 2000 checks at 1 s against nginx, beside the bare floor at the
/// same rate. HTTPS goes to nginx's http/1.1-only TLS port, so sonde and
/// the floor both speak HTTP/1.1 after a full TLS 1.3 handshake.
fn at_rate(nginx: &Nginx, https: bool, secs: u64) {
    let (what, target) = if https {
        ("HTTPS", 1.2)
    } else {
        ("HTTP", 1.15)
    };
    let pem = nginx.ca().pem_files();
    let url = if https {
        format!("https://127.0.0.1:{}/", nginx.tls_http11_addr().port())
    } else {
        nginx.plain_url("/")
    };
    let addr = if https {
        nginx.tls_http11_addr()
    } else {
        nginx.plain_addr()
    };
    let floor_tls =
        https.then(|| floor::floor_tls(nginx.ca().root_store()).unwrap_or_else(|e| panic!("{e}")));
    let bare = floor::Floor::new(addr, "127.0.0.1", floor_tls).unwrap_or_else(|e| panic!("{e}"));
    println!("\n{what} at rate against nginx ({url}), {secs}s each, CPU per probe:");
    for checks in [200, 2000] {
        let floor = floor_at_rate(&bare, checks, secs);
        let mut agent = Agent::new(std::slice::from_ref(&url), checks, Duration::from_secs(1));
        if https {
            agent.tls = Some(format!(
                "tls = {{ ca_file = \"{}\" }}",
                pem.ca_cert.display()
            ));
        }
        agent.timeout = "900ms";
        let run = run_agent(&agent, secs);
        let sonde = run.cpu_per_probe_us();
        let ratio = sonde / floor.cpu_per_probe_us();
        // A ratio is only a cost comparison when both sides did all their
        // work: failed, down or skipped probes cost CPU they are not
        // counted for (a saturated machine shows as a "good" ratio).
        let verdict = if run.down == 0 && run.skipped == 0 && floor.failed == 0 {
            met(ratio <= target)
        } else {
            "not comparable: probes failed or were skipped (saturated)"
        };
        println!(
            "  {checks:>5} checks @1s: sonde {sonde:.1} µs ({} probes, {} skipped, {} down), floor {:.1} µs ({} probes): {ratio:.2}x (target ≤ {target}x: {})",
            run.probes,
            run.skipped,
            run.down,
            floor.cpu_per_probe_us(),
            floor.probes,
            verdict
        );
        print_lateness(&run);
        print_errors_and_drops(&run);
    }
    println!(
        "  (sonde: the whole agent process, user+sys, file sink on; floor: one current-thread tokio runtime"
    );
    println!("   on its own thread, a task per probe, thread CPU; nginx's CPU is in neither)");
}

/// 100 000 checks at 10 s against nginx.
fn scale(nginx: &Nginx, secs: u64) {
    let checks = 100_000;
    let url = nginx.plain_url("/");
    let mut agent = Agent::new(std::slice::from_ref(&url), checks, Duration::from_secs(10));
    agent.threads = 2;
    agent.concurrency = 4096;
    let run = run_agent(&agent, secs);
    println!(
        "\n{checks} HTTP checks @10s for {secs}s against nginx, --threads 2: {} probes ({} down), {} skipped",
        run.probes, run.down, run.skipped
    );
    print_lateness(&run);
    println!(
        "  RSS max {:.1} MB = {:.2} KB per check (target < 150 MB: {})",
        run.rss_max_kb as f64 / 1024.0,
        run.rss_max_kb as f64 / checks as f64,
        met(run.rss_max_kb < 150 * 1024)
    );
    println!(
        "  CPU {:.1} µs/probe; nothing skipped (target): {}",
        run.cpu_per_probe_us(),
        met(run.skipped == 0)
    );
    print_errors_and_drops(&run);
}

/// Down probes by error class and records the sinks dropped, whole run.
fn print_errors_and_drops(run: &Load) {
    if !run.errors.is_empty() {
        let classes: Vec<String> = run.errors.iter().map(|(c, n)| format!("{c} {n}")).collect();
        println!("  errors by class (whole run): {}", classes.join(", "));
    }
    println!("  sink records dropped (whole run): {}", run.sink_dropped);
}

fn print_lateness(run: &Load) {
    println!(
        "  lateness p50 ≤ {}  p99 ≤ {}   (upper bounds of the agent's histogram buckets; target p99 < 5 ms: {})",
        fmt_bound(run.p50),
        fmt_bound(run.p99),
        // A bucket bound of exactly 5 ms cannot show "< 5 ms": not met.
        met(run.p99.is_some_and(|b| b < 0.005))
    );
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn fmt_bound(b: Option<f64>) -> String {
    match b {
        Some(s) if s.is_finite() => format!("{:.1} ms", s * 1000.0),
        Some(_) => "+Inf".into(),
        None => "n/a".into(),
    }
}

/// Thread CPU per probe of the engine alone, sequential, plain HTTP.
fn single_probe_cpu_us(target: &HttpTarget) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let tls = tls::client_config(&TlsOptions {
        insecure: true,
        ..TlsOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let url = url::Url::parse(&target.url("/")).unwrap_or_else(|e| panic!("{e}"));
    let spec = ProbeSpec::new(url, tls);
    let prober = Prober::new();
    rt.block_on(async {
        for _ in 0..300 {
            prober.probe(&spec).await;
        }
        let n = 3000;
        let start = cpu_time::ThreadTime::now();
        for _ in 0..n {
            prober.probe(&spec).await;
        }
        start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    })
}

/// Probes and CPU of a floor run, after its warm-up.
struct FloorRun {
    probes: u64,
    /// Probes that failed in the measured window: their CPU is in
    /// `cpu_secs` but they are not in `probes`.
    failed: u64,
    cpu_secs: f64,
}

impl FloorRun {
    fn cpu_per_probe_us(&self) -> f64 {
        self.cpu_secs * 1e6 / self.probes.max(1) as f64
    }
}

/// The bare floor at `checks` probes per second for `secs`: a
/// current-thread runtime on its own thread spawns one task per probe,
/// evenly spaced; CPU is that thread's, from the end of the warm-up.
fn floor_at_rate(bare: &floor::Floor, checks: usize, secs: u64) -> FloorRun {
    let bare = bare.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async move {
            let done = Arc::new(AtomicU64::new(0));
            let failed = Arc::new(AtomicU64::new(0));
            let period = Duration::from_secs(1) / u32::try_from(checks).unwrap_or(u32::MAX);
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let start = Instant::now();
            let mut measured: Option<(cpu_time::ThreadTime, u64, u64)> = None;
            while start.elapsed() < WARMUP + Duration::from_secs(secs) {
                ticks.tick().await;
                if measured.is_none() && start.elapsed() >= WARMUP {
                    measured = Some((
                        cpu_time::ThreadTime::now(),
                        done.load(Ordering::Relaxed),
                        failed.load(Ordering::Relaxed),
                    ));
                }
                let (bare, done, failed) = (bare.clone(), done.clone(), failed.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::with_capacity(4096);
                    match bare.probe(&mut buf).await {
                        Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                });
            }
            let (cpu, done_before, failed_before) =
                measured.unwrap_or_else(|| (cpu_time::ThreadTime::now(), 0, 0));
            let run = FloorRun {
                probes: done.load(Ordering::Relaxed) - done_before,
                failed: failed.load(Ordering::Relaxed) - failed_before,
                cpu_secs: cpu.elapsed().as_secs_f64(),
            };
            let all_failed = failed.load(Ordering::Relaxed);
            if all_failed > 0 {
                println!(
                    "  (floor: {all_failed} probes failed, {} of them in the measured window)",
                    run.failed
                );
            }
            run
        })
    })
    .join()
    .unwrap_or_else(|_| panic!("the floor thread panicked"))
}

/// How to run one agent.
struct Agent<'a> {
    urls: &'a [String],
    checks: usize,
    interval: Duration,
    timeout: &'static str,
    tls: Option<String>,
    threads: usize,
    concurrency: usize,
}

impl<'a> Agent<'a> {
    fn new(urls: &'a [String], checks: usize, interval: Duration) -> Agent<'a> {
        Agent {
            urls,
            checks,
            interval,
            timeout: "5s",
            tls: None,
            threads: 1,
            concurrency: 1024,
        }
    }
}

/// Counters of one agent run: probes, skips and CPU from the end of the
/// warm-up; lateness over the whole run; RSS at its highest.
struct Load {
    probes: u64,
    down: u64,
    skipped: u64,
    p50: Option<f64>,
    p99: Option<f64>,
    rss_max_kb: u64,
    cpu_secs: f64,
    /// Probes down or unknown by error class, whole run.
    errors: Vec<(String, u64)>,
    /// Records the sinks dropped, whole run.
    sink_dropped: u64,
}

impl Load {
    fn cpu_per_probe_us(&self) -> f64 {
        self.cpu_secs * 1e6 / self.probes.max(1) as f64
    }
}

fn run_agent(agent: &Agent<'_>, secs: u64) -> Load {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let metrics = SocketAddr::from(([127, 0, 0, 1], port));
    let mut config = format!(
        "[agent]\nid = \"bench\"\nstate_dir = \"{}\"\nconcurrency = {}\nmetrics_listen = \"{metrics}\"\n\
         [defaults]\ninterval = \"{}s\"\ntimeout = \"{}\"\n{}\n[sinks.file]\nenabled = true\n",
        dir.path().display(),
        agent.concurrency,
        agent.interval.as_secs(),
        agent.timeout,
        agent.tls.as_deref().unwrap_or_default(),
    );
    for i in 0..agent.checks {
        let url = &agent.urls[i % agent.urls.len()];
        config.push_str(&format!("[[check]]\nname = \"c{i}\"\nurl = \"{url}\"\n"));
    }
    let path = dir.path().join("sonde.toml");
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_sonde"))
        .args(["run", "--threads", &agent.threads.to_string(), "--config"])
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("starting sonde run: {e}"));
    let pid = child.id();
    let mut rss_max_kb = 0;
    // Start-up (100 000 checks take seconds to load) is not the load: the
    // warm-up starts once the agent says it is probing.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(300) && !ready(metrics) {
        std::thread::sleep(Duration::from_millis(250));
        rss_max_kb = rss_max_kb.max(procfs::status_kib(pid, "VmRSS:"));
    }
    let start = Instant::now();
    let mut before: Option<(f64, Counters)> = None;
    while start.elapsed() < WARMUP + Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(250));
        rss_max_kb = rss_max_kb.max(procfs::status_kib(pid, "VmRSS:"));
        if before.is_none() && start.elapsed() >= WARMUP {
            before = Some((procfs::cpu_secs(&pid.to_string()), Counters::read(metrics)));
        }
    }
    let cpu_after = procfs::cpu_secs(&pid.to_string());
    let body = http::get(metrics, "/metrics").text;
    let after = Counters::of(&body);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    if child.wait().is_err() {
        let _ = child.kill();
    }
    let (cpu_before, counted) = before.unwrap_or((0.0, Counters::default()));
    let (p50, p99) = lateness_quantiles(&body);
    Load {
        probes: after.probes.saturating_sub(counted.probes),
        down: after.down.saturating_sub(counted.down),
        skipped: after.skipped,
        p50,
        p99,
        rss_max_kb,
        cpu_secs: cpu_after - cpu_before,
        errors: errors_by_class(&body),
        sink_dropped: sum_family(&body, "sonde_sink_records_dropped_total{"),
    }
}

/// `sonde_probe_failures_total` summed over checks, by class.
fn errors_by_class(body: &str) -> Vec<(String, u64)> {
    let mut classes: std::collections::BTreeMap<String, f64> = Default::default();
    for line in body
        .lines()
        .filter(|l| l.starts_with("sonde_probe_failures_total{"))
    {
        if let Some(class) = line
            .split("class=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        {
            *classes.entry(class.to_owned()).or_default() += value(line);
        }
    }
    classes.into_iter().map(|(c, n)| (c, n as u64)).collect()
}

/// Whether the agent's /readyz answers 200 (it is probing).
fn ready(metrics: SocketAddr) -> bool {
    std::net::TcpStream::connect(metrics).is_ok() && http::get(metrics, "/readyz").status == 200
}

/// The agent's probe counters, from its /metrics.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    probes: u64,
    down: u64,
    skipped: u64,
}

impl Counters {
    fn read(metrics: SocketAddr) -> Counters {
        Counters::of(&http::get(metrics, "/metrics").text)
    }

    fn of(body: &str) -> Counters {
        Counters {
            probes: sum_family(body, "sonde_probes_total{"),
            down: body
                .lines()
                .filter(|l| l.starts_with("sonde_probes_total{") && l.contains("result=\"down\""))
                .map(value)
                .sum::<f64>() as u64,
            skipped: sum_family(body, "sonde_probes_skipped_total{"),
        }
    }
}

fn value(line: &str) -> f64 {
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn sum_family(body: &str, prefix: &str) -> u64 {
    body.lines()
        .filter(|l| l.starts_with(prefix))
        .map(value)
        .sum::<f64>() as u64
}

/// The smallest bucket bounds holding 50% and 99% of the observations.
fn lateness_quantiles(body: &str) -> (Option<f64>, Option<f64>) {
    let buckets: Vec<(f64, f64)> = body
        .lines()
        .filter(|l| l.starts_with("sonde_schedule_lateness_seconds_bucket{"))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, value(l)))
        })
        .collect();
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    if total == 0.0 {
        return (None, None);
    }
    let q = |p: f64| {
        buckets
            .iter()
            .find(|(_, c)| *c >= p * total)
            .map(|(b, _)| *b)
    };
    (q(0.5), q(0.99))
}
