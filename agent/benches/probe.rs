//! The probe engine's cost, beside a bare floor in the same run (issue 3,
//! item 5): client CPU per probe (plain HTTP, and HTTPS with a fresh TLS 1.3
//! handshake), and how much sonde's reported cn, tl and ft exceed what a
//! bare tokio connect, rustls handshake and HTTP/1.1 GET measure.
//!
//! Sonde and the floor run interleaved, probe by probe, against in-process
//! loopback targets (testkit, each on its own thread), so both see the same
//! machine. It prints figures and ratios; it asserts nothing (goals are
//! ratios in one run, never timed assertions).
//!
//! `cargo bench -p sonde --bench probe [-- --iters N --warmup N]`;
//! `--only CASE` runs one case alone, for a profiler.
#![allow(clippy::disallowed_types, reason = "benchmarks measure real time")]

#[path = "common/floor.rs"]
mod floor;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use cpu_time::ThreadTime;
use rustls::ClientConfig;
use sonde::probe::{ProbeSpec, Prober, ResolveOverride, TlsOptions, tls};
use testkit::http::{Alpn, HttpTarget};
use testkit::pki::{Ca, PemFiles};
use url::Url;
use wire::Status;

/// The name the leaf is issued for, pinned to 127.0.0.1 (no DNS anywhere).
const HOST: &str = "bench.test";

/// The cases, in the order they are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    HttpFloor,
    HttpSonde,
    HttpsFloor,
    HttpsSonde,
    H2Sonde,
}

impl Case {
    const ALL: [Case; 5] = [
        Case::HttpFloor,
        Case::HttpSonde,
        Case::HttpsFloor,
        Case::HttpsSonde,
        Case::H2Sonde,
    ];

    fn name(self) -> &'static str {
        match self {
            Case::HttpFloor => "http-floor",
            Case::HttpSonde => "http-sonde",
            Case::HttpsFloor => "https-floor",
            Case::HttpsSonde => "https-sonde",
            Case::H2Sonde => "h2-sonde",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Case::HttpFloor => "http   floor (bare tokio + GET)",
            Case::HttpSonde => "http   sonde",
            Case::HttpsFloor => "https  floor (bare + rustls 1.3)",
            Case::HttpsSonde => "https  sonde (http/1.1)",
            Case::H2Sonde => "https  sonde, h2 (no floor)",
        }
    }
}

/// One probe's cost and phase durations (tl is absent for plain HTTP).
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    cpu: Duration,
    connect: Duration,
    tls: Option<Duration>,
    ttfb: Duration,
}

struct Args {
    iters: usize,
    warmup: usize,
    only: Option<Case>,
}

impl Args {
    /// Unknown arguments are ignored: `cargo bench` passes `--bench`.
    fn parse() -> anyhow::Result<Args> {
        let mut args = Args {
            iters: 2000,
            warmup: 200,
            only: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--iters" => args.iters = value("--iters")?.parse().context("--iters")?,
                "--warmup" => args.warmup = value("--warmup")?.parse().context("--warmup")?,
                "--only" => {
                    let name = value("--only")?;
                    let case = Case::ALL.into_iter().find(|c| c.name() == name);
                    args.only = Some(case.with_context(|| format!("--only {name}: no such case"))?);
                }
                _ => {}
            }
        }
        ensure!(args.iters > 0, "--iters must be positive");
        Ok(args)
    }
}

/// A bare client: what a probe cannot do without ([`floor::Floor`]), with
/// its CPU taken around each probe.
struct Floor {
    bare: floor::Floor,
    buf: Vec<u8>,
}

impl Floor {
    fn new(addr: SocketAddr, tls: Option<Arc<ClientConfig>>) -> anyhow::Result<Floor> {
        Ok(Floor {
            bare: floor::Floor::new(addr, HOST, tls)?,
            buf: Vec::with_capacity(16 << 10),
        })
    }

    async fn probe(&mut self) -> anyhow::Result<Sample> {
        let cpu = ThreadTime::now();
        let phases = self.bare.probe(&mut self.buf).await?;
        Ok(Sample {
            cpu: cpu.elapsed(),
            connect: phases.connect,
            tls: phases.tls,
            ttfb: phases.ttfb,
        })
    }
}

/// One sonde probe, checked to be up.
async fn sonde_probe(prober: &Prober, spec: &ProbeSpec) -> anyhow::Result<Sample> {
    let cpu = ThreadTime::now();
    let report = prober.probe(spec).await;
    let cpu = cpu.elapsed();
    if report.status != Status::Up {
        bail!("sonde probe of {} failed: {:?}", spec.url, report.failure);
    }
    let t = report.timings;
    Ok(Sample {
        cpu,
        connect: t.connect.context("no connect phase")?,
        tls: t.tls,
        ttfb: t.ttfb.context("no ttfb phase")?,
    })
}

/// The targets, specs and floors of one run. The targets stop when dropped.
struct Bench {
    prober: Prober,
    http_spec: ProbeSpec,
    https_spec: ProbeSpec,
    h2_spec: ProbeSpec,
    http_floor: Floor,
    https_floor: Floor,
    _targets: [HttpTarget; 3],
    _pem: PemFiles,
}

impl Bench {
    fn setup() -> anyhow::Result<Bench> {
        let ca = Ca::new();
        let leaf = ca.leaf(&[HOST]);
        let pem = ca.pem_files();
        let plain = HttpTarget::builder().start();
        // http/1.1 only: the floor is an HTTP/1.1 GET.
        let https = HttpTarget::builder().tls(&leaf).alpn(Alpn::Http11).start();
        let h2 = HttpTarget::builder()
            .tls(&leaf)
            .alpn(Alpn::H2AndHttp11)
            .start();
        let sonde_tls = tls::client_config(&TlsOptions {
            ca_file: Some(pem.ca_cert.clone()),
            ..TlsOptions::default()
        })?;
        let spec = |scheme: &str, target: &HttpTarget| -> anyhow::Result<ProbeSpec> {
            let url = Url::parse(&format!("{scheme}://{HOST}:{}/", target.port()))?;
            let mut spec = ProbeSpec::new(url, sonde_tls.clone());
            spec.resolve.push(ResolveOverride {
                host: HOST.into(),
                port: target.port(),
                addr: IpAddr::from([127, 0, 0, 1]),
            });
            Ok(spec)
        };
        let floor_tls = floor::floor_tls(ca.root_store())?;
        Ok(Bench {
            prober: Prober::new(),
            http_spec: spec("http", &plain)?,
            https_spec: spec("https", &https)?,
            h2_spec: spec("https", &h2)?,
            http_floor: Floor::new(plain.addr(), None)?,
            https_floor: Floor::new(https.addr(), Some(floor_tls))?,
            _targets: [plain, https, h2],
            _pem: pem,
        })
    }

    async fn run(&mut self, case: Case) -> anyhow::Result<Sample> {
        match case {
            Case::HttpFloor => self.http_floor.probe().await,
            Case::HttpsFloor => self.https_floor.probe().await,
            Case::HttpSonde => sonde_probe(&self.prober, &self.http_spec).await,
            Case::HttpsSonde => sonde_probe(&self.prober, &self.https_spec).await,
            Case::H2Sonde => sonde_probe(&self.prober, &self.h2_spec).await,
        }
    }

    /// What sonde negotiated, to show the cases are what they claim.
    async fn describe(&self) -> String {
        let mut out = Vec::new();
        for (what, spec) in [("https", &self.https_spec), ("h2", &self.h2_spec)] {
            let report = self.prober.probe(spec).await;
            let tls = report.tls.map(|t| format!("{} {}", t.version, t.cipher));
            out.push(format!(
                "{what}: {} {:?} {}",
                tls.unwrap_or_default(),
                report.http_version.unwrap_or_default(),
                report.status_code.unwrap_or_default(),
            ));
        }
        out.join("; ")
    }
}

/// Samples per case, index-aligned: sample i of every case is from round i.
type Samples = [Vec<Sample>; 5];

/// Rounds of `cases`, each floor beside its sonde case, the pair's order
/// alternating round by round so neither always runs on the other's warm
/// caches. Fills the cases' rows of `samples`, index-aligned by round.
async fn interleaved(
    bench: &mut Bench,
    rounds: usize,
    cases: &[Case],
    samples: &mut Samples,
) -> anyhow::Result<()> {
    let mut order = cases.to_vec();
    for case in cases {
        samples[*case as usize].clear();
        samples[*case as usize].reserve(rounds);
    }
    for _ in 0..rounds {
        for &case in &order {
            let sample = bench.run(case).await?;
            samples[case as usize].push(sample);
        }
        for pair in order.chunks_mut(2) {
            pair.reverse();
        }
    }
    Ok(())
}

/// Pairs: each floor/sonde pair alone (warm caches, as docs/DESIGN.md's floor was
/// measured). Mixed: every case in turn, as an agent with mixed checks runs.
async fn measure(bench: &mut Bench, args: &Args) -> anyhow::Result<(Samples, Samples)> {
    // h2 runs beside the HTTPS pair, so its ratio to that floor is fair too.
    const PAIRS: [&[Case]; 2] = [
        &[Case::HttpFloor, Case::HttpSonde],
        &[Case::HttpsFloor, Case::HttpsSonde, Case::H2Sonde],
    ];
    let mut pairs = Samples::default();
    for cases in PAIRS {
        interleaved(bench, args.warmup, cases, &mut pairs).await?;
        interleaved(bench, args.iters, cases, &mut pairs).await?;
    }
    let mut mixed = Samples::default();
    interleaved(bench, args.warmup, &Case::ALL, &mut mixed).await?;
    interleaved(bench, args.iters, &Case::ALL, &mut mixed).await?;
    Ok((pairs, mixed))
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The `q` quantile (0..=1) of `values`, which it sorts.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let at = ((values.len() - 1) as f64 * q).round() as usize;
    values[at]
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Mean, median and p90 of the CPU per probe, µs.
fn cpu_stats(samples: &[Sample]) -> (f64, f64, f64) {
    let mut cpu: Vec<f64> = samples.iter().map(|s| micros(s.cpu)).collect();
    (mean(&cpu), quantile(&mut cpu, 0.5), quantile(&mut cpu, 0.9))
}

/// Reads one phase's duration from a sample.
type PhaseOf = fn(&Sample) -> Option<Duration>;

/// p10, median and p90 of sonde's phase minus the floor's, paired by
/// round, and the medians of each; µs. A p10 as far below zero as the p90
/// is above it says the spread is the machine's noise, not sonde's.
fn overhead(floor: &[Sample], sonde: &[Sample], phase: PhaseOf) -> Option<[f64; 5]> {
    let mut diffs = Vec::with_capacity(floor.len());
    let mut bare = Vec::with_capacity(floor.len());
    let mut ours = Vec::with_capacity(floor.len());
    for (f, s) in floor.iter().zip(sonde) {
        let (f, s) = (micros(phase(f)?), micros(phase(s)?));
        diffs.push(s - f);
        bare.push(f);
        ours.push(s);
    }
    Some([
        quantile(&mut diffs, 0.1),
        quantile(&mut diffs, 0.5),
        quantile(&mut diffs, 0.9),
        quantile(&mut bare, 0.5),
        quantile(&mut ours, 0.5),
    ])
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// The CPU target: the absolute figure, unless the floor measured here is
/// above it, in which case (docs/DESIGN.md, "Cost") the 1.15x ratio counts.
fn cpu_target(what: &str, absolute_us: f64, floor_us: f64, sonde_us: f64) {
    let ratio = sonde_us / floor_us;
    let abs_met = sonde_us <= absolute_us;
    let ratio_met = ratio <= 1.15;
    println!(
        "  {what} CPU <= {absolute_us:.0} us/probe: sonde {sonde_us:.1} us -> absolute {}",
        verdict(abs_met)
    );
    let counts = if floor_us > absolute_us {
        format!(
            "floor {floor_us:.1} us is above {absolute_us:.0} us, so the ratio counts: {}",
            verdict(ratio_met)
        )
    } else {
        format!(
            "floor {floor_us:.1} us is below {absolute_us:.0} us: absolute {}",
            verdict(abs_met)
        )
    };
    println!("      within 1.15x of the floor: {ratio:.3}x -> {counts}");
}

/// Prints the CPU table of `samples`; returns the means per case.
fn cpu_table(title: &str, samples: &Samples) -> [f64; 5] {
    println!();
    println!("{title}");
    println!("CPU per probe, client thread, user+sys (us)   mean   median      p90");
    let mut means = [0.0; 5];
    let mut medians = [0.0; 5];
    for case in Case::ALL {
        let (m, p50, p90) = cpu_stats(&samples[case as usize]);
        means[case as usize] = m;
        medians[case as usize] = p50;
        println!("  {:<40} {m:>8.1} {p50:>8.1} {p90:>8.1}", case.label());
    }
    let ratio = |s: Case, f: Case| {
        (
            means[s as usize] / means[f as usize],
            medians[s as usize] / medians[f as usize],
        )
    };
    let (http_mean, http_median) = ratio(Case::HttpSonde, Case::HttpFloor);
    let (https_mean, https_median) = ratio(Case::HttpsSonde, Case::HttpsFloor);
    println!(
        "  sonde / floor: http {http_mean:.3}x (median {http_median:.3}x), https {https_mean:.3}x (median {https_median:.3}x)"
    );
    println!(
        "  sonde h2 / https floor: {:.3}x",
        ratio(Case::H2Sonde, Case::HttpsFloor).0
    );
    means
}

fn report(pairs: &Samples, mixed: &Samples, args: &Args) {
    let means = cpu_table(
        "A. Pairs: http floor/sonde alone, then https floor/sonde/h2 alone (warm caches)",
        pairs,
    );
    cpu_table(
        "B. Mixed: all five cases in turn, as an agent with mixed checks runs (colder caches)",
        mixed,
    );
    println!();
    println!("(kernel loopback work for the server side is partly charged to the client");
    println!(" thread; it is the same for sonde and the floor, so the ratios are fair)");
    let samples = pairs;

    println!();
    println!("Timing overhead per phase (from A): sonde's reported phase minus the bare one,");
    println!("paired round by round (us)       p10  median     p90   (bare median, sonde median)");
    let cn = |s: &Sample| Some(s.connect);
    let tl = |s: &Sample| s.tls;
    let ft = |s: &Sample| Some(s.ttfb);
    let rows: [(&str, Case, Case, PhaseOf); 5] = [
        ("http  cn (connect)", Case::HttpFloor, Case::HttpSonde, cn),
        (
            "http  ft (to first byte)",
            Case::HttpFloor,
            Case::HttpSonde,
            ft,
        ),
        ("https cn (connect)", Case::HttpsFloor, Case::HttpsSonde, cn),
        (
            "https tl (TLS handshake)",
            Case::HttpsFloor,
            Case::HttpsSonde,
            tl,
        ),
        (
            "https ft (to first byte)",
            Case::HttpsFloor,
            Case::HttpsSonde,
            ft,
        ),
    ];
    let mut worst_median: f64 = 0.0;
    let mut worst_p90: f64 = 0.0;
    for (what, floor, sonde, phase) in rows {
        let Some([p10, p50, p90, bare, ours]) =
            overhead(&samples[floor as usize], &samples[sonde as usize], phase)
        else {
            continue;
        };
        worst_median = worst_median.max(p50);
        worst_p90 = worst_p90.max(p90);
        println!("  {what:<26} {p10:>7.1} {p50:>7.1} {p90:>7.1}   ({bare:.1}, {ours:.1})");
    }
    println!("  (ft: sonde's starts at the end of the handshake and includes hyper's setup and");
    println!("   the request's encoding; the floor's starts just before its write)");

    println!();
    println!("Targets (issue 3; DESIGN.md \"Cost\": where an absolute target is below the");
    println!("floor measured beside it, the 1.15x ratio counts; judged on A's means)");
    cpu_target(
        "HTTPS",
        250.0,
        means[Case::HttpsFloor as usize],
        means[Case::HttpsSonde as usize],
    );
    cpu_target(
        "HTTP",
        50.0,
        means[Case::HttpFloor as usize],
        means[Case::HttpSonde as usize],
    );
    println!(
        "  timing overhead < 100 us per phase: worst median {worst_median:.1} us -> {} (worst p90 {worst_p90:.1} us)",
        verdict(worst_median < 100.0)
    );
    println!("  (reference: blackbox_exporter needs about 1400 us CPU per HTTPS probe here)");
    println!(
        "{} rounds per case and mode, after {} warm-up rounds",
        args.iters, args.warmup
    );
}

/// The threads of this process other than the client (main) thread and
/// testkit's servers: any would be client work the thread clock misses.
fn other_threads() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return vec!["(cannot read /proc/self/task)".into()];
    };
    let pid = std::process::id().to_string();
    tasks
        .flatten()
        .filter(|t| t.file_name().to_string_lossy() != pid)
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|comm| comm.trim().to_owned())
        .filter(|comm| !comm.starts_with("testkit-"))
        .collect()
}

/// This thread's user and system CPU so far, in clock ticks
/// (`/proc/thread-self/stat`, fields 14 and 15).
fn user_sys_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // The command name may hold spaces; the fields after it do not.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse()?;
    // Driven on this (main) thread: its CPU clock is the client's cost.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the client runtime")?;
    let mut bench = Bench::setup()?;
    if let Some(case) = args.only {
        let total = args.warmup + args.iters;
        let ticks_before = user_sys_ticks();
        let started = ThreadTime::now();
        rt.block_on(async {
            for _ in 0..total {
                bench.run(case).await?;
            }
            anyhow::Ok(())
        })?;
        let cpu = micros(started.elapsed()) / total as f64;
        let split = match (ticks_before, user_sys_ticks()) {
            (Some((u0, s0)), Some((u1, s1))) => {
                // USER_HZ is 100 on Linux: a tick is 10 ms.
                let per = |ticks: u64| ticks as f64 * 10_000.0 / total as f64;
                format!(" (user {:.1}, sys {:.1})", per(u1 - u0), per(s1 - s0))
            }
            _ => String::new(),
        };
        println!(
            "{}: {total} probes, {cpu:.1} us CPU each{split}",
            case.name()
        );
        return Ok(());
    }
    println!("sonde probe engine benchmark: sonde beside a bare floor, interleaved, one process");
    println!("targets: testkit HttpTarget on 127.0.0.1, each on its own thread and runtime;");
    println!("client: current-thread tokio runtime on the main thread, probes sequential;");
    println!("CPU: CLOCK_THREAD_CPUTIME_ID of that thread around each probe");
    let (pairs, mixed) = rt.block_on(async {
        println!("negotiated: {}", bench.describe().await);
        measure(&mut bench, &args).await
    })?;
    let others = other_threads();
    if others.is_empty() {
        println!(
            "client-side threads besides main: none (all client work is on the measured thread)"
        );
    } else {
        println!("client-side threads besides main: {others:?} (their CPU is NOT counted)");
    }
    report(&pairs, &mixed, &args);
    Ok(())
}
