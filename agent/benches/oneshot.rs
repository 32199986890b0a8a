//! `sonde probe` as a user runs it, beside curl: whole-process CPU (user +
//! sys of each reaped child, from getrusage(RUSAGE_CHILDREN)) of 100 runs
//! each against the same loopback nginx, over http and over https with
//! `--cacert` (TLS 1.3, a fresh handshake per process). The two tools run
//! interleaved, so both see the same machine; the figure that counts is
//! the ratio within this run (target: sonde ≤ 0.5x curl). Prints figures,
//! asserts nothing.
//!
//! `cargo bench -p sonde --bench oneshot [-- --runs N]`. Needs nginx and
//! curl; says so and exits when either is missing.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, ensure};
use nix::sys::resource::{UsageWho, getrusage};
use testkit::nginx::Nginx;

/// CPU of every child reaped so far, user + sys.
fn children_cpu() -> anyhow::Result<Duration> {
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage")?;
    let micros = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0).unsigned_abs())
            + Duration::from_micros(t.tv_usec().max(0).unsigned_abs())
    };
    Ok(micros(usage.user_time()) + micros(usage.system_time()))
}

/// Runs `argv` to completion with its output discarded; its CPU.
fn run_once(argv: &[String]) -> anyhow::Result<Duration> {
    let before = children_cpu()?;
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {}", argv.join(" ")))?;
    let cpu = children_cpu()? - before;
    ensure!(status.success(), "{} failed: {status}", argv.join(" "));
    Ok(cpu)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Mean, median and p90 in ms.
fn stats(samples: &[Duration]) -> (f64, f64, f64) {
    let mut ms: Vec<f64> = samples.iter().map(|d| micros(*d) / 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (ms.iter().sum::<f64>() / ms.len() as f64, at(0.5), at(0.9))
}

struct Case {
    name: &'static str,
    sonde: Vec<String>,
    curl: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let mut runs = 100;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--runs" {
            runs = args.next().context("--runs N")?.parse().context("--runs")?;
        }
    }
    ensure!(runs > 0, "--runs must be positive");
    let Some(curl) = testkit::find_tool("curl") else {
        println!("oneshot: curl is not installed; nothing to compare against");
        return Ok(());
    };
    let nginx = match Nginx::start() {
        Ok(nginx) => nginx,
        Err(e) => {
            println!("oneshot: no nginx ({e:#}); nothing to measure");
            return Ok(());
        }
    };
    let pem = nginx.ca().pem_files();
    let ca = pem.ca_cert.display().to_string();
    let sonde = env!("CARGO_BIN_EXE_sonde").to_owned();
    let curl = curl.display().to_string();
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let http = nginx.plain_url("/");
    let https = nginx.tls_url("/");
    let cases = [
        Case {
            name: "http",
            sonde: owned(&[&sonde, "probe", &http]),
            curl: owned(&[&curl, "-s", "-o", "/dev/null", &http]),
        },
        Case {
            name: "https --cacert",
            sonde: owned(&[&sonde, "probe", "--cacert", &ca, &https]),
            curl: owned(&[&curl, "-s", "-o", "/dev/null", "--cacert", &ca, &https]),
        },
    ];
    println!("sonde probe beside curl: {runs} runs each per case, interleaved, one loopback nginx");
    println!("CPU per process: user+sys of the reaped child (getrusage RUSAGE_CHILDREN)");
    println!("{}", curl_version(&curl));
    println!();
    println!(
        "case              tool     mean ms  median ms  p90 ms   ratio sonde/curl (mean, median)"
    );
    for case in &cases {
        // Warm the page cache and nginx before measuring.
        for _ in 0..5 {
            run_once(&case.sonde)?;
            run_once(&case.curl)?;
        }
        let mut ours = Vec::with_capacity(runs);
        let mut theirs = Vec::with_capacity(runs);
        for i in 0..runs {
            // Alternate who goes first, so neither always runs warm.
            if i % 2 == 0 {
                ours.push(run_once(&case.sonde)?);
                theirs.push(run_once(&case.curl)?);
            } else {
                theirs.push(run_once(&case.curl)?);
                ours.push(run_once(&case.sonde)?);
            }
        }
        let (sm, s50, s90) = stats(&ours);
        let (cm, c50, c90) = stats(&theirs);
        println!("{:<17} sonde {sm:>10.2} {s50:>10.2} {s90:>7.2}", case.name);
        println!(
            "{:<17} curl  {cm:>10.2} {c50:>10.2} {c90:>7.2}   {:.2}x, {:.2}x (target ≤ 0.5x: {})",
            "",
            sm / cm,
            s50 / c50,
            if sm / cm <= 0.5 { "met" } else { "NOT met" }
        );
    }
    Ok(())
}

fn curl_version(curl: &str) -> String {
    Command::new(curl)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "curl: version unknown".to_owned())
}
