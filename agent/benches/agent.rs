//! The agent under load, as operators run it: `sonde run` as a child
//! process with 10 000 checks at a 10 s interval against a loopback HTTP
//! target (in this process, on its own threads), for 60 s; then an idle
//! agent with 10 checks. Prints schedule lateness (from the agent's own
//! histogram), RSS, and CPU per probe beside a single-probe baseline
//! measured in this same run.
//!
//! `cargo bench -p sonde --bench agent` (SONDE_BENCH_SECS shortens the run,
//! SONDE_BENCH_CHECKS changes the check count).
#![allow(clippy::disallowed_types, reason = "benchmarks measure real time")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sonde::probe::{ProbeSpec, Prober, TlsOptions, tls};

#[path = "../tests/util/http.rs"]
#[allow(dead_code)]
mod http;
use testkit::http::HttpTarget;

fn main() {
    let secs: u64 = env_or("SONDE_BENCH_SECS", 60);
    let checks: usize = env_or("SONDE_BENCH_CHECKS", 10_000);
    // Several targets, so no single server thread is the bottleneck.
    let targets: Vec<HttpTarget> = (0..4).map(|_| HttpTarget::plain()).collect();
    let baseline_us = single_probe_cpu_us(&targets[0]);
    println!("single-probe baseline (in-process, thread CPU): {baseline_us:.1} µs/probe");

    let loaded = run_agent(&targets, checks, Duration::from_secs(10), secs);
    println!(
        "\n{checks} checks @10s for {secs}s: {} probes, {} skipped",
        loaded.probes, loaded.skipped
    );
    println!(
        "  lateness p50 ≤ {}  p99 ≤ {}   (upper bounds of the agent's histogram buckets; target p99 < 5 ms: {})",
        fmt_bound(loaded.p50),
        fmt_bound(loaded.p99),
        // A bucket bound of exactly 5 ms cannot show "< 5 ms": not met.
        met(loaded.p99.is_some_and(|b| b < 0.005))
    );
    println!(
        "  RSS max {:.1} MB (target < 50 MB: {})",
        loaded.rss_max_kb as f64 / 1024.0,
        met(loaded.rss_max_kb < 50 * 1024)
    );
    let per_probe = loaded.cpu_secs * 1e6 / loaded.probes.max(1) as f64;
    println!(
        "  CPU {:.2} s = {per_probe:.1} µs/probe, {:.2}x the single-probe baseline (target ≤ 1.2x: {})",
        loaded.cpu_secs,
        per_probe / baseline_us,
        met(per_probe / baseline_us <= 1.2)
    );

    let idle = run_agent(&targets, 10, Duration::from_secs(10), 15.min(secs));
    println!(
        "\nidle agent, 10 checks: RSS max {:.1} MB (target < 10 MB: {}; blackbox_exporter idles at about 15 MB)",
        idle.rss_max_kb as f64 / 1024.0,
        met(idle.rss_max_kb < 10 * 1024)
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

struct Load {
    probes: u64,
    skipped: u64,
    p50: Option<f64>,
    p99: Option<f64>,
    rss_max_kb: u64,
    cpu_secs: f64,
}

fn run_agent(targets: &[HttpTarget], checks: usize, interval: Duration, secs: u64) -> Load {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut config = format!(
        "[agent]\nid = \"bench\"\nstate_dir = \"{}\"\nconcurrency = 1024\nmetrics_listen = \"{metrics}\"\n\
         [defaults]\ninterval = \"{}s\"\ntimeout = \"5s\"\n[sinks.file]\nenabled = true\n",
        dir.path().display(),
        interval.as_secs()
    );
    for i in 0..checks {
        let target = &targets[i % targets.len()];
        config.push_str(&format!(
            "[[check]]\nname = \"c{i}\"\nurl = \"{}\"\n",
            target.url("/")
        ));
    }
    let path = dir.path().join("sonde.toml");
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_sonde"))
        .args(["run", "--config"])
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("starting sonde run: {e}"));
    let pid = child.id();
    let start = Instant::now();
    let mut rss_max_kb = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(250));
        rss_max_kb = rss_max_kb.max(rss_kb(pid));
    }
    let body = http::get(metrics, "/metrics").text;
    let cpu_secs = cpu_secs(pid);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    if child.wait().is_err() {
        let _ = child.kill();
    }
    let (p50, p99) = lateness_quantiles(&body);
    Load {
        probes: sum_family(&body, "sonde_probes_total{"),
        skipped: sum_family(&body, "sonde_probes_skipped_total{"),
        p50,
        p99,
        rss_max_kb,
        cpu_secs,
    }
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime of `pid`, seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after ')'.
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
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
