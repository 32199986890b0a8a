//! Gateway figures, printed beside their targets: ingest records/s from 1
//! and from 50 agent connections (the gateway on one single-threaded
//! runtime, so "per core" is what it measures), the gateway's share of
//! probe-to-reader latency (POST sent -> SSE reader has it, p50/p99), memory
//! for the replay state of 10 000 checks, and for 1 000 idle readers; and
//! how fast a restarted gateway reads that replay state back from its files;
//! and ingest latency beside 1 000 and 10 000 SSE readers (half reading,
//! half stuck) against none, with the memory they cost.
//!
//! `cargo bench -p sonde-gateway --bench ingest`. The full end-to-end latency
//! (end of a probe in `sonde run` -> reader) needs the agent's gateway sink;
//! `latency()` below is the hook to extend with a real agent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use config::{Secret, SecretSource};
use gateway::GatewayConfig;
use gateway::config::{AgentAuth, ReaderAuth};
use gateway::hub::Hub;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wire::{FrameBuilder, FrameHeader, Record};

const RECORDS_PER_FRAME: usize = 100;
const RUN: Duration = Duration::from_secs(3);

fn secret(v: String) -> Secret<String> {
    Secret::new(SecretSource::Env("BENCH".into()), v)
}

fn record(t: u64) -> Record {
    Record::up(t, 250).with_sc(200).with_phases(12, 20, 25, 80)
}

/// A frame of `RECORDS_PER_FRAME` records over 10 checks, like an agent's batch.
fn frame(agent: &str, seq: u64) -> Vec<u8> {
    let mut b = FrameBuilder::new(FrameHeader {
        agent: agent.into(),
        session: 1,
        seq,
    });
    for i in 0..RECORDS_PER_FRAME as u64 {
        b.push(
            &format!("check-{}", i % 10),
            record(1_767_225_600_000 + seq * 15_000 + i),
        );
    }
    b.finish().encode().unwrap_or_default()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// A gateway on its own thread with a current-thread runtime (one core).
struct Served {
    addr: SocketAddr,
    runtime: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start(agents: usize, readers: usize) -> Served {
        Served::start_with(agents, readers, |cfg| cfg.readers.queue_frames = 65_536)
    }

    fn start_with(agents: usize, readers: usize, tune: impl FnOnce(&mut GatewayConfig)) -> Served {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = GatewayConfig::with_data_dir(dir.path().join("data"));
        cfg.agents = (0..agents)
            .map(|i| AgentAuth {
                id: format!("agent-{i}"),
                token: secret(format!("agent-token-{i}")),
            })
            .collect();
        cfg.reader_tokens = (0..readers.min(1))
            .map(|_| ReaderAuth {
                name: "bench".into(),
                token: secret("reader-token".into()),
                checks: vec![],
                agents: vec![],
            })
            .collect();
        tune(&mut cfg);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let _ = addr_tx.send((
                    listener.local_addr().expect("addr"),
                    tokio::runtime::Handle::current(),
                ));
                let _ = gateway::serve(listener, cfg, async {
                    let _ = stop_rx.await;
                })
                .await;
            });
        });
        let (addr, runtime) = addr_rx.recv().expect("gateway started");
        Served {
            addr,
            runtime,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// CPU time of the gateway's runtime thread so far.
    fn cpu(&self) -> Duration {
        let (tx, rx) = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            let _ = tx.send(cpu_time::ThreadTime::now().as_duration());
        });
        rx.recv().unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn agent_loop(addr: SocketAddr, index: usize, until: Instant) -> u64 {
    let Ok(tcp) = TcpStream::connect(addr).await else {
        return 0;
    };
    let _ = tcp.set_nodelay(true);
    let Ok((mut send, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await
    else {
        return 0;
    };
    tokio::spawn(conn);
    let (agent, token) = (
        format!("agent-{index}"),
        format!("Bearer agent-token-{index}"),
    );
    let mut records = 0;
    let mut seq = 0;
    while Instant::now() < until {
        // hyper's h1 connection takes the next request only once it has
        // finished the last one; sent earlier, it is dropped as "canceled".
        if send.ready().await.is_err() {
            break;
        }
        let req = Request::post(format!("http://{addr}/v1/frames"))
            .header("host", "gw")
            .header("authorization", &token)
            .header("content-type", gateway::FRAMES_CONTENT_TYPE)
            .body(Full::new(Bytes::from(frame(&agent, seq))))
            .expect("request");
        let Ok(resp) = send.send_request(req).await else {
            break;
        };
        let ok = resp.status() == 200;
        let _ = resp.into_body().collect().await;
        if !ok {
            break;
        }
        records += RECORDS_PER_FRAME as u64;
        seq += 1;
    }
    records
}

fn ingest(clients: &tokio::runtime::Runtime, agents: usize) {
    let gw = Served::start(agents, 0);
    let cpu0 = gw.cpu();
    let t0 = Instant::now();
    let until = t0 + RUN;
    let total: u64 = clients.block_on(async {
        let tasks: Vec<_> = (0..agents)
            .map(|i| tokio::spawn(agent_loop(gw.addr, i, until)))
            .collect();
        let mut sum = 0;
        for t in tasks {
            sum += t.await.unwrap_or(0);
        }
        sum
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (gw.cpu() - cpu0).as_secs_f64();
    let per_core = total as f64 / cpu.max(1e-9);
    println!(
        "ingest, {agents:>2} agent(s), frames of {RECORDS_PER_FRAME} records: {:>9.0} records/s wall, gateway thread {:.0}% busy, {:>9.0} records per gateway CPU-second (target >= 200 000 on one core: {})",
        total as f64 / wall,
        100.0 * cpu / wall,
        per_core,
        verdict(per_core >= 200_000.0)
    );
}

/// The gateway's share of probe-to-reader latency: from the POST leaving the
/// agent to the SSE reader holding the record. Hook: replace `post` by a
/// `sonde run` with the gateway sink once it exists.
fn latency(clients: &tokio::runtime::Runtime) {
    let gw = Served::start(1, 1);
    let samples = clients.block_on(async {
        let mut sse = TcpStream::connect(gw.addr).await.expect("connect");
        let req =
            "GET /v1/stream HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer reader-token\r\n\r\n";
        sse.write_all(req.as_bytes()).await.expect("write");
        let mut buf = vec![0u8; 1 << 16];
        let _ = sse.read(&mut buf).await; // headers and snapshot
        let tcp = TcpStream::connect(gw.addr).await.expect("connect");
        let _ = tcp.set_nodelay(true);
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let mut samples = Vec::with_capacity(1000);
        for seq in 0..1000u64 {
            let body = frame("agent-0", seq);
            let req = Request::post(format!("http://{}/v1/frames", gw.addr))
                .header("host", "gw")
                .header("authorization", "Bearer agent-token-0")
                .header("content-type", gateway::FRAMES_CONTENT_TYPE)
                .body(Full::new(Bytes::from(body)))
                .expect("request");
            // Sent before the connection is ready again, a request is
            // dropped ("canceled") and the reader waits for a heartbeat.
            if send.ready().await.is_err() {
                break;
            }
            let t0 = Instant::now();
            let pending = send.send_request(req);
            // Read until the event carrying this frame ends.
            let mut got = Vec::new();
            loop {
                let n = sse.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                if got.windows(2).any(|w| w == b"\n\n") {
                    break;
                }
            }
            samples.push(t0.elapsed());
            if let Ok(resp) = pending.await {
                let _ = resp.into_body().collect().await;
            }
        }
        samples
    });
    let mut s = samples;
    s.sort();
    let p = |q: f64| {
        s.get(((s.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    let (p50, p99) = (p(0.50), p(0.99));
    println!(
        "latency, POST sent -> SSE reader received (gateway share, loopback): p50 {:.3} ms, p99 {:.3} ms (target p50 < 5 ms: {}; end-to-end from the probe's end needs the agent's gateway sink)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        verdict(p50 < Duration::from_millis(5))
    );
}

/// The replay ring and current state for 10 000 checks: 5 minutes of
/// records at a 15 s interval (20 per check), in frames of 100 records.
fn replay_memory() {
    let checks = 10_000usize;
    let per_check = 20usize;
    let limits = gateway::config::RingLimits {
        max_age: Duration::from_secs(300),
        max_records: 1_000_000,
    };
    // Frames are built before measuring so only the hub's memory counts.
    let mut bodies = Vec::new();
    let mut seq = 0;
    for round in 0..per_check {
        for chunk in (0..checks).collect::<Vec<_>>().chunks(RECORDS_PER_FRAME) {
            let mut b = FrameBuilder::new(FrameHeader {
                agent: "agent-0".into(),
                session: 1,
                seq,
            });
            for c in chunk {
                b.push(
                    &format!("check-{c:05}"),
                    record(1_767_225_600_000 + round as u64 * 15_000),
                );
            }
            bodies.push(b.finish().encode().unwrap_or_default());
            seq += 1;
        }
    }
    let before = rss_kib();
    let mut hub = Hub::new(limits, 4096, 1);
    let now = Instant::now();
    for body in &bodies {
        let frames = gateway::ingest::validate(body, "agent-0").unwrap_or_default();
        let plan = hub.classify("agent-0", &frames);
        hub.commit("agent-0", &frames, &plan, now);
    }
    let after = rss_kib();
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "replay state, {checks} checks x {per_check} records (5 min at 15 s): {} records in the ring, RSS +{:.1} MiB (hub's own estimate {:.1} MiB)",
        hub.ring_records(),
        mib(after.saturating_sub(before)),
        hub.memory_bytes() as f64 / (1024.0 * 1024.0)
    );
    drop(hub);
    restart_recovery(&bodies, limits);
}

/// A restarted gateway reading the same records back from its wire files.
fn restart_recovery(bodies: &[Vec<u8>], limits: gateway::config::RingLimits) {
    let Ok(dir) = tempfile::tempdir() else {
        println!("restart recovery: no temporary directory");
        return;
    };
    let mut file = wire::file_header().to_vec();
    let mut records = 0;
    for body in bodies {
        file.extend_from_slice(body);
        records += gateway::ingest::validate(body, "agent-0")
            .unwrap_or_default()
            .iter()
            .map(|f| f.frame.record_count())
            .sum::<usize>();
    }
    let name = gateway::recover::file_name(1, 0);
    if let Err(e) = std::fs::write(dir.path().join(name), &file) {
        println!("restart recovery: {e}");
        return;
    }
    let mut hub = Hub::new(limits, 4096, 1);
    let started = Instant::now();
    let wall = std::time::UNIX_EPOCH + Duration::from_millis(1_767_225_600_000 + 300_000);
    let progress = gateway::recover::Progress::default();
    let report = gateway::recover::recover(
        &mut hub,
        dir.path(),
        limits.max_age,
        Instant::now(),
        wall,
        &progress,
    );
    let elapsed = started.elapsed();
    match report {
        Ok(r) => println!(
            "restart recovery: {} records ({} frames, {:.1} MiB of wire file) read back in {:.1} ms = {:.2} M records/s, {} in the ring",
            r.records,
            r.frames,
            file.len() as f64 / (1024.0 * 1024.0),
            elapsed.as_secs_f64() * 1000.0,
            records as f64 / elapsed.as_secs_f64() / 1e6,
            hub.ring_records()
        ),
        Err(e) => println!("restart recovery: {e}"),
    }
}

/// 1 000 idle readers (500 SSE, 500 WebSocket) on a gateway with 100 checks.
fn idle_readers(clients: &tokio::runtime::Runtime) {
    let gw = Served::start(1, 1);
    clients.block_on(async {
        let tcp = TcpStream::connect(gw.addr).await.expect("connect");
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let req = Request::post(format!("http://{}/v1/frames", gw.addr))
            .header("host", "gw")
            .header("authorization", "Bearer agent-token-0")
            .header("content-type", gateway::FRAMES_CONTENT_TYPE)
            .body(Full::new(Bytes::from(frame("agent-0", 0))))
            .expect("request");
        if let Ok(resp) = send.send_request(req).await {
            let _ = resp.into_body().collect().await;
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib();
    let conns = clients.block_on(async {
        let mut conns = Vec::with_capacity(1000);
        for i in 0..1000 {
            let mut s = TcpStream::connect(gw.addr).await.expect("connect");
            let req = if i % 2 == 0 {
                "GET /v1/stream HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer reader-token\r\n\r\n".to_owned()
            } else {
                "GET /v1/ws?format=json HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer reader-token\r\n\
                 connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n\
                 sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                    .to_owned()
            };
            s.write_all(req.as_bytes()).await.expect("write");
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            conns.push(s);
        }
        conns
    });
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib();
    let delta = after.saturating_sub(before) as f64 / 1024.0;
    println!(
        "idle readers, 1 000 (500 SSE + 500 WebSocket, each past its snapshot): RSS +{delta:.1} MiB, gateway and client sockets in one process (target < 100 MB: {})",
        verdict(delta < 100.0)
    );
    drop(conns);
}

/// Ingest paced at `RATE_FRAMES` frames of 100 records a second from 4
/// agents, for `RUN_READERS`; returns the latency of every request.
async fn paced_ingest(addr: SocketAddr) -> Vec<Duration> {
    const AGENTS: u64 = 4;
    let period = Duration::from_secs_f64(AGENTS as f64 / RATE_FRAMES as f64);
    let tasks: Vec<_> = (0..AGENTS as usize)
        .map(|index| {
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let Ok(tcp) = TcpStream::connect(addr).await else {
                    return samples;
                };
                let _ = tcp.set_nodelay(true);
                let Ok((mut send, conn)) =
                    hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await
                else {
                    return samples;
                };
                tokio::spawn(conn);
                let agent = format!("agent-{index}");
                let token = format!("Bearer agent-token-{index}");
                let start = tokio::time::Instant::now();
                let mut seq = 0;
                while start.elapsed() < RUN_READERS {
                    tokio::time::sleep_until(start + period * seq as u32).await;
                    if send.ready().await.is_err() {
                        break;
                    }
                    let req = Request::post(format!("http://{addr}/v1/frames"))
                        .header("host", "gw")
                        .header("authorization", &token)
                        .header("content-type", gateway::FRAMES_CONTENT_TYPE)
                        .body(Full::new(Bytes::from(frame(&agent, seq))))
                        .expect("request");
                    let t0 = Instant::now();
                    let Ok(resp) = send.send_request(req).await else {
                        break;
                    };
                    let ok = resp.status() == 200;
                    let _ = resp.into_body().collect().await;
                    if !ok {
                        break;
                    }
                    samples.push(t0.elapsed());
                    seq += 1;
                }
                samples
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    all.sort();
    all
}

/// Frames a second the reader bench aims at: 100 000 records/s.
const RATE_FRAMES: u64 = 1000;
const RUN_READERS: Duration = Duration::from_secs(5);

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 - 1.0) * q) as usize)
        .copied()
        .unwrap_or_default()
}

/// Connects `n` SSE readers; even ones read (and discard) everything,
/// odd ones never read. Returns the stuck sockets (kept open) and the
/// reading tasks (bytes each read).
async fn connect_readers(
    addr: SocketAddr,
    n: usize,
) -> (Vec<TcpStream>, Vec<tokio::task::JoinHandle<u64>>) {
    let req = "GET /v1/stream HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer reader-token\r\n\r\n";
    let mut stuck = Vec::with_capacity(n / 2);
    let mut reading = Vec::with_capacity(n / 2);
    for i in 0..n {
        let Ok(mut s) = TcpStream::connect(addr).await else {
            continue;
        };
        if s.write_all(req.as_bytes()).await.is_err() {
            continue;
        }
        if i % 2 == 1 {
            stuck.push(s);
            continue;
        }
        reading.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 16 << 10];
            let mut total = 0;
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            total
        }));
    }
    (stuck, reading)
}

/// 10 000 readers are 20 000 sockets in this one process: raises the
/// soft limit to the hard one, and the hard one too where allowed (root).
fn raise_nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    const WANTED: u64 = 32_768;
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if setrlimit(Resource::RLIMIT_NOFILE, WANTED, WANTED.max(hard)).is_err() {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}

/// Ingest latency at ~100 000 records/s beside `readers` SSE readers
/// (half reading, half stuck); `base` is the run without readers, for the
/// ratio. Returns this run's p99.
fn readers_beside_ingest(
    clients: &tokio::runtime::Runtime,
    readers: usize,
    base: Option<(Duration, Duration)>,
) -> (Duration, Duration) {
    let gw = Served::start_with(4, 1, |cfg| {
        // Without fsync in the answer: what is measured is the readers' share.
        cfg.writer.ack = gateway::config::AckAfter::Queued;
        cfg.readers.max_readers = readers.max(1) + 10;
    });
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib();
    let (stuck, reading) = clients.block_on(connect_readers(gw.addr, readers));
    let connected = rss_kib();
    let samples = clients.block_on(paced_ingest(gw.addr));
    let after = rss_kib();
    let metrics = clients.block_on(async {
        let tcp = TcpStream::connect(gw.addr).await.ok()?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .ok()?;
        tokio::spawn(conn);
        let req = Request::get(format!("http://{}/metrics", gw.addr))
            .header("host", "gw")
            .body(Full::new(Bytes::new()))
            .ok()?;
        let resp = send.send_request(req).await.ok()?;
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        Some(String::from_utf8_lossy(&body).into_owned())
    });
    let metric = |name: &str| {
        metrics
            .as_deref()
            .unwrap_or("")
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or("?")
            .to_owned()
    };
    let (p50, p99) = (quantile(&samples, 0.50), quantile(&samples, 0.99));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let rate = samples.len() as f64 * RECORDS_PER_FRAME as f64 / RUN_READERS.as_secs_f64();
    let grown_kib = after.max(connected).saturating_sub(before);
    let per_reader = grown_kib as f64 / readers.max(1) as f64;
    let per_reader = if readers == 0 {
        "n/a".to_owned()
    } else {
        format!("{per_reader:.1} KiB per reader")
    };
    let ratio = base.map(|(b50, b99)| {
        (
            p50.as_secs_f64() / b50.as_secs_f64().max(1e-9),
            p99.as_secs_f64() / b99.as_secs_f64().max(1e-9),
        )
    });
    println!(
        "readers beside ingest, {readers:>5} SSE readers (half reading, half stuck): {rate:>7.0} records/s ingested, latency p50 {:.2} ms p99 {:.2} ms{}; RSS +{:.1} MiB ({per_reader}, gateway and client sockets in one process; bound {} KiB: {}); readers still connected {}, lagged {}, write timeouts {}",
        ms(p50),
        ms(p99),
        match ratio {
            Some(_) if samples.is_empty() => " (no request answered: NOT met)".to_owned(),
            Some((r50, r99)) => format!(
                " = {r50:.2}x / {r99:.2}x the no-reader run (target p99 <= 2x: {})",
                verdict(r99 <= 2.0)
            ),
            None => String::new(),
        },
        grown_kib as f64 / 1024.0,
        READER_BOUND_KIB,
        if readers == 0 {
            "n/a"
        } else {
            verdict(grown_kib <= READER_BOUND_KIB * readers as u64)
        },
        metric("sonde_gateway_readers "),
        metric("sonde_gateway_reader_drops_total{reason=\"lagged\"}"),
        metric("sonde_gateway_write_timeouts_total"),
    );
    drop(stuck);
    for r in reading {
        r.abort();
    }
    (p50, p99)
}

/// What PROTOCOL.md 3.4 states a reader costs the gateway at most.
const READER_BOUND_KIB: u64 = 128;

fn main() {
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    let clients = Arc::new(clients);
    println!(
        "sonde gateway bench ({} cores; figures vary with load)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    replay_memory();
    idle_readers(&clients);
    ingest(&clients, 1);
    ingest(&clients, 50);
    latency(&clients);
    // Two descriptors a reader (both ends here), and some to spare.
    let most = (raise_nofile().saturating_sub(256) / 2) as usize;
    let base = readers_beside_ingest(&clients, 0, None);
    for wanted in [1_000, 10_000] {
        let readers = wanted.min(most);
        if readers < wanted {
            println!(
                "readers beside ingest: {wanted} readers need {} descriptors in this process, RLIMIT_NOFILE allows {readers}",
                2 * wanted + 256
            );
        }
        readers_beside_ingest(&clients, readers, Some(base));
    }
}
