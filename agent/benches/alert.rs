//! The alerter's budget (issue 17): 10 000 checks over three regions at 1 s.
//!
//! 1. Rule evaluation: the pure engine (`sonde::alert::rules::Engine`) in
//!    this process, fed as the alerter feeds it: 10 000 checks × 3 regions
//!    (one agent each), batches of 500 records of one region, 65 rounds of
//!    1 s (the first 5 a warm-up). Most records are up; 100 checks fail in
//!    one region throughout (no quorum, no event) and from the warm-up's
//!    end 20 checks a second fail in two regions for 5 s (a check.down and
//!    a check.recovered each). ns per record: the mean, and the p99 of the
//!    per-batch means, against 2 µs; the once-a-second tick; and what a
//!    checkpoint of that state costs (each notification waits for one).
//! 2. Probe end → webhook received: three `sonde gateway` children
//!    (eu-west, us-east, ap-south; durable acks), a load generator here
//!    posting each region's 10 000 records a second as an agent does
//!    (`POST /v1/frames`, a frame of 500 every 50 ms; every record's
//!    `t + rt` is the instant its frame is built), `sonde alert` reading the
//!    three, and a webhook receiver here (HTTP/1.1, keep-alive, 200). The
//!    same mix as 1: each wave of 20 checks is decided down by the second
//!    failed probe in the later of its two failing regions, recovered by
//!    the second good one in the first to recover. Latency: receipt (this
//!    process's wall clock) − the payload's `data.at`, the deciding probe's
//!    end in whole ms (so good to +1 ms). Beside it: the alerter's RSS and
//!    CPU per record (/proc), the records/s the gateways accepted (200
//!    answers), and every process's share of the machine's cores.
//!
//! Prints figures beside their targets; asserts nothing.
//! `cargo bench -p sonde --bench alert` (SONDE_BENCH_SECS sets the
//! length of 2's waves, default 60).
#![allow(clippy::disallowed_types, reason = "benchmarks measure real time")]

#[path = "../tests/util/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "common/lab.rs"]
#[allow(dead_code, reason = "the agent is the other benches'")]
mod lab;
#[path = "../tests/util/process.rs"]
#[allow(dead_code)]
mod process;
#[path = "common/procfs.rs"]
mod procfs;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use process::Process;
use sonde::alert::checkpoint::{self, Checkpoint};
use sonde::alert::event::Event;
use sonde::alert::rules::{Engine, RuleConfig};
use wire::{ErrorClass, FrameBuilder, FrameHeader, Record};

const REGIONS: [&str; 3] = ["eu-west", "us-east", "ap-south"];
const CHECKS: usize = 10_000;
/// Frames a second per region; each carries `CHECKS / SLOTS` records.
const SLOTS: usize = 20;
const PER_FRAME: usize = CHECKS / SLOTS;
const SLOT: Duration = Duration::from_millis(1000 / SLOTS as u64);
/// Checks that start failing each second, in eu-west and us-east...
const WAVE: usize = 20;
/// ...for this long.
const DOWN_MS: u64 = 5_000;
/// Checks failing in ap-south alone throughout: a location down, no quorum.
const LONE_FROM: usize = 9_900;
/// The webhook's signing secret: `whsec_` and the base64 of 24 bytes.
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn main() {
    let secs: u64 = std::env::var("SONDE_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    println!(
        "machine: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    rule_evaluation();
    probe_to_webhook(secs);
}

/// The waves: wave `w` (checks `w * WAVE ..`) fails in eu-west and
/// us-east from `from + w` s for `DOWN_MS`; waves start before `until`.
#[derive(Debug, Clone, Copy)]
struct Waves {
    from_ms: u64,
    until_ms: u64,
}

impl Waves {
    fn count(&self) -> u64 {
        self.until_ms.saturating_sub(self.from_ms).div_ceil(1000)
    }
}

/// What `check` reports in `region` (index into `REGIONS`) for a probe
/// that took `rt_ms` and ended at `end_ms`.
fn record(region: usize, check: usize, end_ms: u64, rt_ms: u64, waves: Option<Waves>) -> Record {
    let wave = check / WAVE;
    let in_wave = waves.is_some_and(|w| {
        let start = w.from_ms + wave as u64 * 1000;
        (wave as u64) < w.count() && (start..start + DOWN_MS).contains(&end_ms)
    });
    let down = if region == 2 {
        check >= LONE_FROM
    } else {
        check < LONE_FROM && in_wave
    };
    let t = end_ms - rt_ms;
    if down {
        Record::down(t, rt_ms, ErrorClass::StatusCode)
            .with_sc(503)
            .with_dn(1)
            .with_cn(1)
            .with_ft(rt_ms - 2)
    } else {
        Record::up(t, rt_ms)
            .with_sc(200)
            .with_dn(1)
            .with_cn(1)
            .with_ft(rt_ms - 2)
    }
}

/// A probe's duration, 20 to 219 ms, varying by check and round.
fn rt_ms(check: usize, round: u64) -> u64 {
    20 + (check as u64 * 37 + round * 11) % 200
}

fn check_names() -> Vec<String> {
    (0..CHECKS).map(|i| format!("check-{i:05}")).collect()
}

fn rule_evaluation() {
    const WARMUP: u64 = 5;
    const ROUNDS: u64 = 60;
    let t0: u64 = 1_767_225_600_000;
    let waves = Some(Waves {
        from_ms: t0 + WARMUP * 1000,
        until_ms: t0 + (WARMUP + ROUNDS) * 1000,
    });
    let checks = check_names();
    let agents: Vec<String> = REGIONS.iter().map(|r| format!("agent-{r}")).collect();
    let mut engine = Engine::new(RuleConfig::default(), "bench");
    let mut gseq = [0u64; 3];
    let mut out: Vec<Event> = Vec::new();
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut batch: Vec<(usize, u64, Record)> = Vec::with_capacity(PER_FRAME);
    let mut batch_ns: Vec<f64> = Vec::new();
    let (mut total_ns, mut observed) = (0u128, 0u64);
    let mut tick_ns: Vec<f64> = Vec::new();
    for round in 0..WARMUP + ROUNDS {
        let measured = round >= WARMUP;
        for slot in 0..SLOTS {
            let end = t0 + round * 1000 + (slot * 1000 / SLOTS) as u64;
            for (r, g) in gseq.iter_mut().enumerate() {
                batch.clear();
                for c in slot * PER_FRAME..(slot + 1) * PER_FRAME {
                    *g += 1;
                    batch.push((c, *g, record(r, c, end, rt_ms(c, round), waves)));
                }
                let started = Instant::now();
                for (c, g, rec) in &batch {
                    let (region, agent, check) = (REGIONS[r], &agents[r], &checks[*c]);
                    engine.observe(region, agent, check, *g, rec, end, &[], &mut out);
                }
                let ns = started.elapsed().as_nanos();
                if measured {
                    total_ns += ns;
                    observed += batch.len() as u64;
                    batch_ns.push(ns as f64 / batch.len() as f64);
                }
                for ev in out.drain(..) {
                    *kinds.entry(ev.kind.type_name()).or_default() += 1;
                }
            }
        }
        let started = Instant::now();
        engine.tick(t0 + round * 1000 + 999, &|_| true, &[], &mut out);
        if measured {
            tick_ns.push(started.elapsed().as_nanos() as f64);
        }
        for ev in out.drain(..) {
            *kinds.entry(ev.kind.type_name()).or_default() += 1;
        }
    }
    let mean = total_ns as f64 / observed.max(1) as f64;
    let p99 = quantile(&mut batch_ns, 0.99);
    println!(
        "\n1. rule evaluation (sonde::alert::rules::Engine::observe, in this process): \
         {CHECKS} checks x {} regions, {ROUNDS} s of 1 s records after {WARMUP} s of warm-up \
         = {observed} records in batches of {PER_FRAME}",
        REGIONS.len()
    );
    println!(
        "   {mean:.0} ns per record (mean), p99 of the {} batch means {p99:.0} ns; \
         target < 2 us per record: {}",
        batch_ns.len(),
        verdict(p99 < 2000.0 && mean < 2000.0)
    );
    let tick_mean = tick_ns.iter().sum::<f64>() / tick_ns.len().max(1) as f64;
    println!(
        "   the once-a-second tick (no data, flapping, silences) over {} locations: \
         mean {:.2} ms, max {:.2} ms (= {:.0} ns per record of its second)",
        engine.summary().locations,
        tick_mean / 1e6,
        tick_ns.iter().copied().fold(0.0, f64::max) / 1e6,
        tick_mean / (CHECKS * REGIONS.len()) as f64
    );
    println!(
        "   events decided: {} (the last waves end after the last round)",
        shown(&kinds)
    );
    checkpoint_cost(&engine);
}

/// What a checkpoint of that engine costs: each notification is sent only
/// once a checkpoint holding it is durable (write-ahead delivery), and the
/// alerter encodes it on its main loop, then writes it on a blocking thread.
fn checkpoint_cost(engine: &Engine) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let cp = Checkpoint::new(dir.path());
    let (mut encode_ms, mut save_ms, mut bytes) = (Vec::new(), Vec::new(), 0);
    for _ in 0..20 {
        let started = Instant::now();
        let Ok(encoded) = checkpoint::encode(engine.state()) else {
            return;
        };
        encode_ms.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        if let Err(e) = cp.save_encoded(&encoded) {
            println!("   checkpoint: {e}");
            return;
        }
        save_ms.push(started.elapsed().as_secs_f64() * 1e3);
        bytes = encoded.len();
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "   its state as the alerter checkpoints it (before any notification is sent): \
         {:.2} MiB; encoding {:.1} ms mean (on the main loop), writing with its fsyncs and \
         renames {:.1} ms mean, {:.1} ms max (in {})",
        bytes as f64 / (1024.0 * 1024.0),
        mean(&encode_ms),
        mean(&save_ms),
        save_ms.iter().copied().fold(0.0, f64::max),
        std::env::temp_dir().display()
    );
}

fn probe_to_webhook(secs: u64) {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
    let gateways: Vec<(Process, SocketAddr)> = REGIONS
        .iter()
        .map(|r| {
            let dir = tmp.path().join(r);
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            lab::gateway(&dir, &format!("name = \"gw-{r}\"\nregion = \"{r}\"\n"))
        })
        .collect();
    let hook = Hook::start();
    let load = Arc::new(Load::default());
    let generator = {
        let addrs: Vec<SocketAddr> = gateways.iter().map(|g| g.1).collect();
        let load = Arc::clone(&load);
        std::thread::spawn(move || generate(&addrs, &load))
    };
    // The gateways hold every check before the alerter's first snapshot.
    std::thread::sleep(Duration::from_secs(2));
    let addrs: Vec<SocketAddr> = gateways.iter().map(|g| g.1).collect();
    let (mut alerter, alerter_addr) = start_alerter(tmp.path(), &addrs, hook.addr);
    let started = Instant::now();
    let locations = CHECKS * REGIONS.len();
    let mut ready = false;
    while started.elapsed() < Duration::from_secs(120) && alerter.is_running() {
        let body = http::get(alerter_addr, "/metrics").body;
        let up = http::metric(&body, "sonde_alert_checks", "state=\"up\"") as usize;
        let known = http::metric(&body, "sonde_alert_locations", "") as usize;
        if up == CHECKS && known == locations {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if !ready {
        load.stop.store(true, Ordering::Relaxed);
        println!(
            "\n2. probe end -> webhook: the alerter did not judge {CHECKS} checks up over \
             {locations} locations within 120 s{}",
            alerter.describe()
        );
        return;
    }
    let warmup = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));

    let from_ms = epoch_ms().div_ceil(1000) * 1000 + 1000;
    let waves = Waves {
        from_ms,
        until_ms: from_ms + secs * 1000,
    };
    load.waves_from.store(waves.from_ms, Ordering::Relaxed);
    load.waves_until.store(waves.until_ms, Ordering::Relaxed);
    let pids: Vec<u32> = gateways.iter().map(|g| g.0.pid()).collect();
    sleep_until_ms(waves.from_ms);
    let before = Sample::take(&load, alerter.pid(), &pids, alerter_addr);
    let mut rss_kib = vec![before.alerter_rss_kib];
    while epoch_ms() + 10_000 <= waves.until_ms {
        std::thread::sleep(Duration::from_secs(10));
        rss_kib.push(procfs::status_kib(alerter.pid(), "VmRSS:"));
    }
    sleep_until_ms(waves.until_ms);
    let after = Sample::take(&load, alerter.pid(), &pids, alerter_addr);
    // The last waves recover within DOWN_MS and two probes; their
    // notifications then take what they take (up to 60 s more).
    let expected = waves.count() as usize * WAVE * 2;
    let deadline = Instant::now() + Duration::from_millis(DOWN_MS + 3000) + Duration::from_secs(60);
    while hook.received().len() < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let final_metrics = http::get(alerter_addr, "/metrics").body;
    load.stop.store(true, Ordering::Relaxed);
    let _ = generator.join();
    report(Report {
        secs,
        warmup,
        waves,
        expected,
        deliveries: hook.received(),
        before: &before,
        after: &after,
        alerter_metrics: &final_metrics,
        hwm_kib: procfs::status_kib(alerter.pid(), "VmHWM:"),
        rss_kib,
        late: (
            load.late_frames
                .iter()
                .map(|v| v.load(Ordering::Relaxed))
                .sum(),
            load.max_late_ms
                .iter()
                .map(|v| v.load(Ordering::Relaxed))
                .max()
                .unwrap_or(0),
        ),
    });
    alerter.stop();
    for (mut gw, _) in gateways {
        gw.stop();
    }
}

fn start_alerter(dir: &Path, gateways: &[SocketAddr], hook: SocketAddr) -> (Process, SocketAddr) {
    let addr = process::free_addr();
    let mut text = format!(
        "state_dir = \"{}\"\nlisten = \"{addr}\"\n",
        dir.join("alert-state").display()
    );
    for (r, gw) in REGIONS.iter().zip(gateways) {
        text.push_str(&format!(
            "\n[[gateway]]\nname = \"{r}\"\nurl = \"http://{gw}\"\n\
             token = {{ env = \"BENCH_READER_TOKEN\" }}\n"
        ));
    }
    text.push_str(&format!(
        "\n[[receiver]]\nname = \"bench\"\nwebhook = {{ url = \"http://{hook}/hook\", \
         secrets = [{{ env = \"BENCH_WEBHOOK_SECRET\" }}] }}\n"
    ));
    let config = dir.join("alert.toml");
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
    let shown = config.display().to_string();
    let mut alerter = Process::start(
        &["alert", "--config", &shown],
        &[
            ("BENCH_READER_TOKEN", lab::READER),
            ("BENCH_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("RUST_LOG", "warn"),
        ],
    );
    alerter.wait_listening(addr);
    (alerter, addr)
}

/// The load generator's shared state: the waves (0 until set), a stop
/// flag, and per region what the gateway accepted.
#[derive(Default)]
struct Load {
    waves_from: AtomicU64,
    waves_until: AtomicU64,
    stop: AtomicBool,
    accepted: [AtomicU64; 3],
    /// Answers other than 200, and failed exchanges (each resent).
    refused: [AtomicU64; 3],
    /// Frames built more than one slot after they were due.
    late_frames: [AtomicU64; 3],
    max_late_ms: [AtomicU64; 3],
}

impl Load {
    fn waves(&self) -> Option<Waves> {
        let from_ms = self.waves_from.load(Ordering::Relaxed);
        (from_ms > 0).then(|| Waves {
            from_ms,
            until_ms: self.waves_until.load(Ordering::Relaxed),
        })
    }
}

/// One agent per region on one current-thread runtime, until `load.stop`.
fn generate(gateways: &[SocketAddr], load: &Arc<Load>) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async {
        let tasks: Vec<_> = gateways
            .iter()
            .enumerate()
            .map(|(r, &addr)| tokio::spawn(agent(addr, r, Arc::clone(load))))
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    });
}

/// Region `r`'s agent: every `SLOT` a frame of the next `PER_FRAME`
/// checks; a slot missed (the previous request still out) goes in the
/// next request, so every check is sent once a second.
async fn agent(addr: SocketAddr, r: usize, load: Arc<Load>) {
    let checks = check_names();
    let session = epoch_ms();
    let mut seq = 0u64;
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    let start = tokio::time::Instant::now();
    let mut slot = 0u64;
    while !load.stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until(start + SLOT * slot as u32).await;
        let now = tokio::time::Instant::now();
        let end = epoch_ms();
        let waves = load.waves();
        let mut body = Vec::new();
        let mut frames = 0u64;
        while start + SLOT * slot as u32 <= now {
            let late = now - (start + SLOT * slot as u32);
            if late > SLOT {
                load.late_frames[r].fetch_add(1, Ordering::Relaxed);
            }
            load.max_late_ms[r].fetch_max(late.as_millis() as u64, Ordering::Relaxed);
            let mut b = FrameBuilder::new(FrameHeader {
                agent: "bench".into(),
                session,
                seq,
            });
            let first = (slot as usize % SLOTS) * PER_FRAME;
            for (c, name) in checks.iter().enumerate().skip(first).take(PER_FRAME) {
                b.push(
                    name,
                    record(r, c, end, rt_ms(c, slot / SLOTS as u64), waves),
                );
            }
            if b.finish().encode_into(&mut body).is_err() {
                return;
            }
            seq += 1;
            slot += 1;
            frames += 1;
        }
        let body = Bytes::from(body);
        while !load.stop.load(Ordering::Relaxed) {
            match post(&mut conn, addr, body.clone()).await {
                Some(accepted) if accepted == frames => {
                    load.accepted[r].fetch_add(frames * PER_FRAME as u64, Ordering::Relaxed);
                    break;
                }
                _ => {
                    load.refused[r].fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// One `POST /v1/frames` on the kept connection (made anew when there is
/// none or it broke): the frames accepted, `None` for anything but a 200.
async fn post(
    conn: &mut Option<SendRequest<Full<Bytes>>>,
    addr: SocketAddr,
    body: Bytes,
) -> Option<u64> {
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        let _ = tcp.set_nodelay(true);
        let (send, c) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .ok()?;
        tokio::spawn(c);
        *conn = Some(send);
    }
    let send = conn.as_mut()?;
    // hyper's h1 connection takes the next request only once it has
    // finished the last one.
    if send.ready().await.is_err() {
        *conn = None;
        return None;
    }
    let req = hyper::Request::post(format!("http://{addr}/v1/frames"))
        .header("authorization", format!("Bearer {}", lab::AGENT))
        .header("content-type", "application/vnd.sonde.frames")
        .body(Full::new(body))
        .ok()?;
    let Ok(resp) = send.send_request(req).await else {
        *conn = None;
        return None;
    };
    let ok = resp.status() == 200;
    let answer = resp.into_body().collect().await.ok()?.to_bytes();
    if !ok {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&answer).ok()?;
    v["accepted"].as_u64()
}

/// A webhook receipt: what the payload said and when it arrived.
#[derive(Debug, Clone)]
struct Delivery {
    kind: String,
    /// `data.at`, epoch ms.
    at_ms: u64,
    /// This process's wall clock when the body had arrived, epoch ms.
    received_ms: f64,
}

/// The webhook receiver: HTTP/1.1 with keep-alive, a thread per
/// connection, 200 to every request with a body.
struct Hook {
    addr: SocketAddr,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
}

impl Hook {
    fn start() -> Hook {
        let listener =
            TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("binding the hook: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the hook's address: {e}"));
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&deliveries);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let into = Arc::clone(&into);
                std::thread::spawn(move || serve_hook(conn, &into));
            }
        });
        Hook { addr, deliveries }
    }

    fn received(&self) -> Vec<Delivery> {
        self.deliveries
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }
}

fn serve_hook(conn: TcpStream, into: &Mutex<Vec<Delivery>>) {
    let _ = conn.set_nodelay(true);
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = None;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let Some(length) = length else { return };
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let received_ms = epoch_ms_f64();
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let at_ms = v["data"]["at"]
            .as_str()
            .and_then(store::Utc::parse_rfc3339)
            .unwrap_or(0);
        let kind = v["type"].as_str().unwrap_or("(no type)").to_owned();
        if let Ok(mut d) = into.lock() {
            d.push(Delivery {
                kind,
                at_ms,
                received_ms,
            });
        }
    }
}

/// Counters at one instant of the measurement.
struct Sample {
    at: Instant,
    accepted: [u64; 3],
    refused: [u64; 3],
    alerter_cpu: f64,
    alerter_rss_kib: u64,
    gateways_cpu: Vec<f64>,
    own_cpu: f64,
    records: f64,
    eval_secs: f64,
    checkpoints: f64,
    checkpoint_bytes: f64,
}

impl Sample {
    fn take(load: &Load, alerter: u32, gateways: &[u32], addr: SocketAddr) -> Sample {
        let body = http::get(addr, "/metrics").body;
        Sample {
            at: Instant::now(),
            accepted: std::array::from_fn(|r| load.accepted[r].load(Ordering::Relaxed)),
            refused: std::array::from_fn(|r| load.refused[r].load(Ordering::Relaxed)),
            alerter_cpu: procfs::cpu_secs(&alerter.to_string()),
            alerter_rss_kib: procfs::status_kib(alerter, "VmRSS:"),
            gateways_cpu: gateways
                .iter()
                .map(|p| procfs::cpu_secs(&p.to_string()))
                .collect(),
            own_cpu: procfs::cpu_secs("self"),
            records: http::metric(&body, "sonde_alert_records_total", ""),
            eval_secs: http::metric(&body, "sonde_alert_evaluation_seconds_total", ""),
            checkpoints: http::metric(&body, "sonde_alert_checkpoints_total", ""),
            checkpoint_bytes: http::metric(&body, "sonde_alert_checkpoint_bytes", ""),
        }
    }
}

struct Report<'a> {
    secs: u64,
    warmup: Duration,
    waves: Waves,
    expected: usize,
    deliveries: Vec<Delivery>,
    before: &'a Sample,
    after: &'a Sample,
    alerter_metrics: &'a str,
    hwm_kib: u64,
    /// The alerter's VmRSS every 10 s of the waves.
    rss_kib: Vec<u64>,
    /// Frames built more than a slot after they were due, and the most late, ms.
    late: (u64, u64),
}

fn report(r: Report<'_>) {
    let (b, a) = (r.before, r.after);
    let wall = (a.at - b.at).as_secs_f64();
    let per_region: Vec<f64> = (0..3)
        .map(|i| (a.accepted[i] - b.accepted[i]) as f64 / wall)
        .collect();
    let rate: f64 = per_region.iter().sum();
    let refused: u64 = (0..3).map(|i| a.refused[i] - b.refused[i]).sum();
    println!(
        "\n2. probe end -> webhook received: 3 `sonde gateway` (durable acks), `sonde alert`, \
         the load and the receiver here, all on loopback; the alerter judged every check up \
         {:.1} s after it started; then {} s of waves of {WAVE} checks",
        r.warmup.as_secs_f64(),
        r.secs
    );
    println!(
        "   load: {rate:.0} records/s accepted by the gateways over {wall:.1} s ({}); \
         target {} records/s: {}; {refused} requests refused or failed (resent); \
         {} frames built over {} ms late (at most {} ms)",
        REGIONS
            .iter()
            .zip(&per_region)
            .map(|(n, v)| format!("{n} {v:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        CHECKS * REGIONS.len(),
        verdict(rate >= 0.99 * (CHECKS * REGIONS.len()) as f64),
        r.late.0,
        SLOT.as_millis(),
        r.late.1
    );
    let events: Vec<&Delivery> = r
        .deliveries
        .iter()
        .filter(|d| d.at_ms >= r.waves.from_ms)
        .collect();
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    for d in &r.deliveries {
        *kinds.entry(d.kind.as_str()).or_default() += 1;
    }
    let mut all: Vec<f64> = events
        .iter()
        .map(|d| d.received_ms - d.at_ms as f64)
        .collect();
    let p99 = quantile(&mut all, 0.99);
    println!(
        "   webhooks: {} received of {} expected ({}); probe end -> received: p50 {:.1} ms, \
         p99 {p99:.1} ms, max {:.1} ms (+1 ms: `at` is whole ms); target p99 < 500 ms: {}",
        r.deliveries.len(),
        r.expected,
        shown(&kinds),
        quantile(&mut all, 0.5),
        all.last().copied().unwrap_or(f64::NAN),
        verdict(events.len() >= r.expected && p99 < 500.0)
    );
    for kind in ["check.down", "check.recovered"] {
        let mut lat: Vec<f64> = events
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| d.received_ms - d.at_ms as f64)
            .collect();
        println!(
            "     {kind}: {}, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            lat.len(),
            quantile(&mut lat, 0.5),
            quantile(&mut lat, 0.99),
            lat.last().copied().unwrap_or(f64::NAN)
        );
    }
    // The waves' checks change state together (one frame decides a
    // wave's 20): how far apart their notifications arrive.
    let mut bursts: BTreeMap<(&str, u64), (f64, f64)> = BTreeMap::new();
    for d in &events {
        let e = bursts
            .entry((d.kind.as_str(), d.at_ms))
            .or_insert((f64::MAX, 0.0));
        *e = (e.0.min(d.received_ms), e.1.max(d.received_ms));
    }
    let mut spread: Vec<f64> = bursts.values().map(|(lo, hi)| hi - lo).collect();
    println!(
        "     {} bursts decided by one record instant: first to last receipt p50 {:.1} ms, max {:.1} ms \
         (one request at a time per receiver)",
        spread.len(),
        quantile(&mut spread, 0.5),
        spread.last().copied().unwrap_or(f64::NAN)
    );
    let records = a.records - b.records;
    let cpu = a.alerter_cpu - b.alerter_cpu;
    println!(
        "   alerter: {records:.0} records evaluated ({:.0}/s), CPU {:.0} % of a core = {:.2} us \
         per record (utime+stime), its own evaluation {:.0} ns per record \
         (sonde_alert_evaluation_seconds_total)",
        records / wall,
        100.0 * cpu / wall,
        cpu * 1e6 / records.max(1.0),
        (a.eval_secs - b.eval_secs) * 1e9 / records.max(1.0)
    );
    println!(
        "   alerter checkpoints: {:.1}/s over the waves, {:.2} MiB each at the end",
        (a.checkpoints - b.checkpoints) / wall,
        a.checkpoint_bytes / (1024.0 * 1024.0)
    );
    println!(
        "   alerter memory: VmRSS {:.1} MiB at the first wave, {:.1} MiB at the last \
         (every 10 s: {} MiB), VmHWM {:.1} MiB; stream lag at the end {}",
        mib(b.alerter_rss_kib),
        mib(a.alerter_rss_kib),
        r.rss_kib
            .iter()
            .map(|k| format!("{:.0}", mib(*k)))
            .collect::<Vec<_>>()
            .join(" "),
        mib(r.hwm_kib),
        REGIONS
            .iter()
            .map(|g| format!(
                "{g} {:.2} s",
                http::metric(
                    r.alerter_metrics,
                    "sonde_alert_stream_lag_seconds",
                    &format!("gateway=\"{g}\"")
                )
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "   CPU, % of a core over the waves: gateways {}; this process (load, receiver) {:.0} %",
        REGIONS
            .iter()
            .zip(a.gateways_cpu.iter().zip(&b.gateways_cpu))
            .map(|(g, (x, y))| format!("{g} {:.0} %", 100.0 * (x - y) / wall))
            .collect::<Vec<_>>()
            .join(", "),
        100.0 * (a.own_cpu - b.own_cpu) / wall
    );
}

/// The `q` quantile (nearest rank) of `v`, which it sorts; NaN when empty.
fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn shown(kinds: &BTreeMap<&str, u64>) -> String {
    if kinds.is_empty() {
        return "none".into();
    }
    kinds
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn epoch_ms_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn sleep_until_ms(ms: u64) {
    let now = epoch_ms();
    if ms > now {
        std::thread::sleep(Duration::from_millis(ms - now));
    }
}
