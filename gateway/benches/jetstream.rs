//! `[jetstream]` figures, printed beside their targets, for a 1-node
//! NATS cluster with a 1-replica stream (R1) and a 3-node cluster with a
//! 3-replica stream (R3), all real Debian `nats-server`s on loopback
//! (testkit::nats):
//!
//! 1. Ingest through JetStream: 50 agents, each on its own connection,
//!    post frames of 10 (and of 100) records as fast as acks come back;
//!    records/s acknowledged (wall), the gateway's CPU per record and
//!    records per gateway CPU-second (target >= 200 000 at R1), and the
//!    nats-servers' CPU per record (separate processes). The gateway runs
//!    alone on a current-thread runtime on its own thread (its blocking
//!    pool named after it), so its CPU is those threads' CPU time
//!    (/proc/self/task/<tid>/schedstat), async-nats' tasks included: the
//!    client is created on that runtime. Afterwards the stream's message
//!    count (the NATS monitor's /jsz) and the gateway's
//!    `sonde_gateway_records_accepted_total` are checked against what the
//!    agents had acknowledged.
//! 2. Latency from the POST leaving the agent to an SSE reader holding
//!    the record, on the ingesting replica and on a second replica (its
//!    own runtime and thread, same `[jetstream]`, another name), at no
//!    background load and at 5 000 records/s over 50 agents: every frame's
//!    send instant is kept by (agent, seq) and matched when a reader
//!    receives it (the record's `t` carries the seq). Target p99 < 20 ms
//!    at R3.
//!
//! Everything shares this machine's cores: the gateways, the
//! nats-servers and the load generators. `cargo bench -p sonde-gateway
//! --bench jetstream` (about a minute; SONDE_BENCH_SECS sets each measured
//! run's length, default 5).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use config::{Secret, SecretSource};
use gateway::GatewayConfig;
use gateway::config::{AgentAuth, JetStream, NatsAuth, ReaderAuth};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use testkit::nats::NatsCluster;
use tokio::net::TcpStream;
use wire::{FrameBuilder, FrameHeader, Record};

/// Agents configured and posting.
const AGENTS: usize = 50;
/// Before the measured window: connections, first lookups, stream leader.
const WARM: Duration = Duration::from_secs(1);
/// A record's `t` is `T0 + seq * 1000 + index`: (agent, seq) comes back
/// from any record a reader receives.
const T0: u64 = 1_767_225_600_000;
/// Records/s of the loaded latency run, spread over [`AGENTS`].
const LOAD_RECORDS: u64 = 5_000;
/// Records per frame in the latency runs.
const LATENCY_FRAME: usize = 10;

fn run_length() -> Duration {
    let secs = std::env::var("SONDE_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    Duration::from_secs(secs)
}

fn secret(v: String) -> Secret<String> {
    Secret::new(SecretSource::Env("BENCH".into()), v)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

/// A frame of `records` records over 10 checks; record `i` has
/// `t = T0 + seq * 1000 + i`.
fn frame(agent: &str, seq: u64, records: usize) -> Bytes {
    let mut b = FrameBuilder::new(FrameHeader {
        agent: agent.into(),
        session: 1,
        seq,
    });
    for i in 0..records as u64 {
        b.push(
            &format!("check-{}", i % 10),
            Record::up(T0 + seq * 1000 + i, 250)
                .with_sc(200)
                .with_phases(12, 20, 25, 80),
        );
    }
    Bytes::from(b.finish().encode().expect("frame"))
}

/// Nanoseconds on CPU of this process's threads whose name starts with `prefix`.
fn threads_cpu(prefix: &str) -> Duration {
    let mut ns = 0u64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let sched = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
        ns += sched
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(ns)
}

/// CPU time (user + system) of this process's nats-server children, from
/// /proc/<pid>/stat (USER_HZ is 100 on every Linux ABI).
fn nats_cpu() -> Duration {
    let me = std::process::id().to_string();
    let mut ticks = 0u64;
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    for p in procs.flatten() {
        let Ok(stat) = std::fs::read_to_string(p.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with("(nats-server") {
            continue;
        }
        // After the comm: state ppid ... utime(12th) stime(13th).
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.get(1) != Some(&me.as_str()) {
            continue;
        }
        let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        ticks += field(11) + field(12);
    }
    Duration::from_millis(ticks * 10)
}

/// A gateway with `[jetstream]` on its own thread and current-thread
/// runtime; its threads' names start with `name`.
struct Gateway {
    name: String,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    fn start(name: &str, region: &str, servers: Vec<String>, replicas: usize) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = GatewayConfig::with_data_dir(dir.path().join("data"));
        cfg.identity.name = name.into();
        cfg.identity.region = Some(region.into());
        cfg.agents = (0..AGENTS)
            .map(|i| AgentAuth {
                id: format!("agent-{i}"),
                token: secret(format!("agent-token-{i}")),
            })
            .collect();
        cfg.reader_tokens = vec![ReaderAuth {
            name: "bench".into(),
            token: secret("reader-token".into()),
            checks: vec![],
            agents: vec![],
        }];
        cfg.readers.queue_frames = 65_536;
        cfg.jetstream = Some(JetStream {
            servers,
            auth: NatsAuth::None,
            ca_file: None,
            client_cert: None,
            stream: gateway::config::default_stream_name(region),
            subject_prefix: "sonde".into(),
            replicas,
            max_age: Duration::from_secs(3600),
            max_bytes: None,
            duplicate_window: Duration::from_secs(120),
        });
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let blocking = format!("{name}-blk");
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .thread_name(blocking)
                    // A blocking thread that ended would take its CPU
                    // time out of the sum.
                    .thread_keep_alive(Duration::from_secs(3600))
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind");
                    let _ = addr_tx.send(listener.local_addr().expect("addr"));
                    if let Err(e) = gateway::serve(listener, cfg, async {
                        let _ = stop_rx.await;
                    })
                    .await
                    {
                        eprintln!("gateway: {e}");
                    }
                });
            })
            .expect("gateway thread");
        let addr = addr_rx.recv().expect("gateway started");
        let gw = Gateway {
            name: name.into(),
            addr,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        };
        // The listener answers once the follower has read the stream.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !testkit::fetch::get(addr, "/healthz", &[]).is_ok_and(|f| f.status == 200) {
            assert!(Instant::now() < deadline, "gateway {name} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        gw
    }

    /// CPU time of the gateway's threads so far.
    fn cpu(&self) -> Duration {
        threads_cpu(&self.name)
    }

    /// The newest gseq in its hub (`/v1/checks`).
    fn head(&self) -> Option<u64> {
        let f = testkit::fetch::get(
            self.addr,
            "/v1/checks",
            &[("authorization", "Bearer reader-token")],
        )
        .ok()?;
        let json: serde_json::Value = serde_json::from_str(&f.text()).ok()?;
        json["gseq"].as_u64()
    }

    /// A value of its /metrics.
    fn metric(&self, name: &str) -> String {
        let text = testkit::fetch::get(self.addr, "/metrics", &[])
            .map(|f| f.text())
            .unwrap_or_default();
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or("?")
            .to_owned()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The messages and last sequence of `stream` as node 0's monitor says.
fn stream_state(cluster: &NatsCluster, stream: &str) -> Option<(u64, u64)> {
    let jsz = testkit::fetch::get(cluster.monitor_addr(0), "/jsz?streams=true", &[]).ok()?;
    let json: serde_json::Value = serde_json::from_str(&jsz.text()).ok()?;
    for account in json["account_details"].as_array()? {
        for s in account["stream_detail"].as_array().into_iter().flatten() {
            if s["name"] == stream {
                let state = &s["state"];
                return Some((state["messages"].as_u64()?, state["last_seq"].as_u64()?));
            }
        }
    }
    None
}

/// One agent's HTTP/1.1 connection to a gateway.
struct Poster {
    addr: SocketAddr,
    agent: String,
    token: String,
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Poster {
    async fn connect(addr: SocketAddr, index: usize) -> Poster {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let _ = tcp.set_nodelay(true);
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        Poster {
            addr,
            agent: format!("agent-{index}"),
            token: format!("Bearer agent-token-{index}"),
            send,
        }
    }

    /// Posts `body`; the status, or 0 when the connection failed. `sent`
    /// is called just before the request goes.
    async fn post(&mut self, body: Bytes, sent: impl FnOnce()) -> u16 {
        // hyper's h1 connection takes the next request only once it has
        // finished the last one.
        if self.send.ready().await.is_err() {
            return 0;
        }
        let req = Request::post(format!("http://{}/v1/frames", self.addr))
            .header("host", "gw")
            .header("authorization", &self.token)
            .header("content-type", gateway::FRAMES_CONTENT_TYPE)
            .body(Full::new(body))
            .expect("request");
        sent();
        let Ok(resp) = self.send.send_request(req).await else {
            return 0;
        };
        let status = resp.status().as_u16();
        let _ = resp.into_body().collect().await;
        status
    }
}

#[derive(Default)]
struct Counts {
    records: AtomicU64,
    requests: AtomicU64,
    failed: AtomicU64,
    last_failure: AtomicU64,
}

/// Ingest throughput with frames of `per_frame` records.
fn ingest(
    clients: &tokio::runtime::Runtime,
    cluster: &NatsCluster,
    label: &str,
    replicas: usize,
    per_frame: usize,
) {
    let region = format!("{}-f{per_frame}", label.to_lowercase());
    let stream = gateway::config::default_stream_name(&region);
    let gw = Gateway::start("gw-a", &region, cluster.client_urls(), replicas);
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..AGENTS)
        .map(|i| {
            let (counts, stop, addr) = (counts.clone(), stop.clone(), gw.addr);
            clients.spawn(async move {
                let mut p = Poster::connect(addr, i).await;
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    let status = p.post(frame(&p.agent, seq, per_frame), || {}).await;
                    if status != 200 {
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                        counts
                            .last_failure
                            .store(u64::from(status), Ordering::Relaxed);
                        break;
                    }
                    counts
                        .records
                        .fetch_add(per_frame as u64, Ordering::Relaxed);
                    counts.requests.fetch_add(1, Ordering::Relaxed);
                    seq += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(WARM);
    let snap = || {
        (
            Instant::now(),
            counts.records.load(Ordering::Relaxed),
            gw.cpu(),
            nats_cpu(),
            threads_cpu("load"),
        )
    };
    let (t0, r0, gw0, nats0, load0) = snap();
    std::thread::sleep(run_length());
    let (t1, r1, gw1, nats1, load1) = snap();
    stop.store(true, Ordering::Relaxed);
    clients.block_on(async {
        for t in tasks {
            let _ = t.await;
        }
    });
    let wall = (t1 - t0).as_secs_f64();
    let records = (r1 - r0) as f64;
    let cpu = (gw1 - gw0).as_secs_f64();
    let nats = (nats1 - nats0).as_secs_f64();
    let load = (load1 - load0).as_secs_f64();
    let per_core = records / cpu.max(1e-9);
    println!(
        "{label} ingest, {AGENTS} agents, frames of {per_frame:>3} records: {:>7.0} records/s acked (wall), gateway {:.0}% of a core, {:.2} µs gateway CPU per record = {:>7.0} records per gateway CPU-second (target >= 200 000{}); nats-server(s) {:.2} µs CPU per record ({:.0}% of a core); load generators {:.0}% of a core",
        records / wall,
        100.0 * cpu / wall,
        1e6 * cpu / records.max(1.0),
        per_core,
        if label == "R1" {
            format!(": {}", verdict(per_core >= 200_000.0))
        } else {
            " at R1".into()
        },
        1e6 * nats / records.max(1.0),
        100.0 * nats / wall,
        100.0 * load / wall,
    );
    // What the agents had acknowledged against what the stream holds.
    let acked_records = counts.records.load(Ordering::Relaxed);
    let acked_requests = counts.requests.load(Ordering::Relaxed);
    let accepted = gw.metric("sonde_gateway_records_accepted_total");
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut state = stream_state(cluster, &stream);
    while state.is_none_or(|(m, _)| m < acked_requests) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        state = stream_state(cluster, &stream);
    }
    let failed = counts.failed.load(Ordering::Relaxed);
    let (messages, last_seq) = state.unwrap_or_default();
    // The follower's hub: the last record of the last message.
    let want_head = gateway::jetstream::gseq(last_seq, per_frame - 1);
    let mut head = gw.head();
    while head.is_none_or(|h| h < want_head) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        head = gw.head();
    }
    println!(
        "{label}   check: agents acked {acked_records} records in {acked_requests} requests ({failed} failed{}); gateway counted {accepted} accepted; stream {stream} holds {messages} messages (last seq {last_seq}) = {} records; the follower's hub is at gseq {} (last message's last record: {want_head}): {}",
        if failed > 0 {
            format!(
                ", last status {}",
                counts.last_failure.load(Ordering::Relaxed)
            )
        } else {
            String::new()
        },
        messages * per_frame as u64,
        head.map_or("?".into(), |h| h.to_string()),
        if messages == acked_requests
            && messages * per_frame as u64 == acked_records
            && accepted == acked_records.to_string()
            && head == Some(want_head)
        {
            "exact"
        } else {
            "MISMATCH"
        }
    );
}

/// Send instants by (agent, seq).
type Sent = Arc<Mutex<HashMap<(u32, u64), Instant>>>;
/// Latencies a reader saw, by (agent, seq), first receipt only.
type Seen = Arc<Mutex<HashMap<(u32, u64), Duration>>>;

/// An SSE reader on `addr`: every record it receives whose (agent, seq)
/// is in `sent` is a sample.
async fn reader(addr: SocketAddr, sent: Sent, seen: Seen) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let _ = tcp.set_nodelay(true);
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::get(format!("http://{addr}/v1/stream"))
        .header("host", "gw")
        .header("authorization", "Bearer reader-token")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = send.send_request(req).await.expect("stream");
    assert_eq!(resp.status(), 200, "reader refused");
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(Ok(f)) = body.frame().await {
        let now = Instant::now();
        let Ok(data) = f.into_data() else { continue };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            let Some(json) = text.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(json) else {
                continue;
            };
            if msg["type"] != "records" {
                continue;
            }
            let sent = sent.lock().expect("sent");
            let mut seen = seen.lock().expect("seen");
            for r in msg["records"].as_array().into_iter().flatten() {
                let agent = r["agent"]
                    .as_str()
                    .and_then(|a| a.strip_prefix("agent-"))
                    .and_then(|a| a.parse::<u32>().ok());
                let t = r["record"]["t"].as_u64();
                let (Some(agent), Some(t)) = (agent, t) else {
                    continue;
                };
                let key = (agent, t.saturating_sub(T0) / 1000);
                if let Some(at) = sent.get(&key) {
                    seen.entry(key).or_insert_with(|| now - *at);
                }
            }
        }
    }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or_default()
}

/// POST sent -> SSE reader has it, on the ingesting replica and on a
/// second one; `load` is records/s over [`AGENTS`] agents, or `None` for
/// one agent posting a frame every 20 ms.
fn latency(
    clients: &tokio::runtime::Runtime,
    cluster: &NatsCluster,
    label: &str,
    replicas: usize,
    load: Option<u64>,
) {
    let region = format!(
        "{}-lat{}",
        label.to_lowercase(),
        if load.is_some() { "-load" } else { "" }
    );
    let a = Gateway::start("gw-a", &region, cluster.client_urls(), replicas);
    let b = Gateway::start("gw-b", &region, cluster.client_urls(), replicas);
    let sent: Sent = Arc::default();
    let seen: [Seen; 2] = [Arc::default(), Arc::default()];
    // The readers on their own thread, so that the load generators do not
    // delay what they read.
    let (stop_readers, stopped) = tokio::sync::oneshot::channel::<()>();
    let readers = {
        let addrs = [a.addr, b.addr];
        let (sent, seen) = (sent.clone(), seen.clone());
        std::thread::Builder::new()
            .name("readers".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let tasks: Vec<_> = addrs
                        .iter()
                        .zip(seen)
                        .map(|(addr, seen)| tokio::spawn(reader(*addr, sent.clone(), seen)))
                        .collect();
                    let _ = stopped.await;
                    for t in tasks {
                        t.abort();
                    }
                });
            })
            .expect("reader thread")
    };
    std::thread::sleep(Duration::from_millis(200));
    let (agents, period) = match load {
        Some(rate) => (
            AGENTS,
            Duration::from_secs_f64(AGENTS as f64 * LATENCY_FRAME as f64 / rate as f64),
        ),
        None => (1, Duration::from_millis(20)),
    };
    let measured_from = Instant::now() + WARM;
    let until = measured_from + run_length();
    let failed = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..agents)
        .map(|i| {
            let (sent, failed, addr) = (sent.clone(), failed.clone(), a.addr);
            clients.spawn(async move {
                let mut p = Poster::connect(addr, i).await;
                // Agents spread over the period.
                let start = tokio::time::Instant::now() + period.mul_f64(i as f64 / agents as f64);
                let mut seq = 0u64;
                while Instant::now() < until {
                    tokio::time::sleep_until(start + period.mul_f64(seq as f64)).await;
                    let body = frame(&p.agent, seq, LATENCY_FRAME);
                    let status = p
                        .post(body, || {
                            let now = Instant::now();
                            if now >= measured_from {
                                sent.lock().expect("sent").insert((i as u32, seq), now);
                            }
                        })
                        .await;
                    if status != 200 {
                        failed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    seq += 1;
                }
            })
        })
        .collect();
    clients.block_on(async {
        for t in tasks {
            let _ = t.await;
        }
    });
    // Stragglers.
    std::thread::sleep(Duration::from_millis(500));
    let _ = stop_readers.send(());
    let _ = readers.join();
    let expected = sent.lock().expect("sent").len();
    let what = match load {
        Some(rate) => format!("{rate} records/s over {AGENTS} agents"),
        None => "no background load (1 agent, a frame every 20 ms)".into(),
    };
    for (replica, seen) in ["ingesting replica", "second replica"].iter().zip(&seen) {
        let mut s: Vec<Duration> = seen.lock().expect("seen").values().copied().collect();
        s.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let p99 = quantile(&s, 0.99);
        println!(
            "{label} latency, POST sent -> SSE reader on the {replica:<17}, {what}: {} frames of {LATENCY_FRAME} records ({} not received{}), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p99 < 20 ms{})",
            s.len(),
            expected - s.len(),
            match failed.load(Ordering::Relaxed) {
                0 => String::new(),
                n => format!(", {n} posts failed"),
            },
            ms(quantile(&s, 0.5)),
            ms(p99),
            ms(s.last().copied().unwrap_or_default()),
            if label == "R3" {
                format!(
                    ": {}",
                    verdict(p99 < Duration::from_millis(20) && !s.is_empty())
                )
            } else {
                " at R3".into()
            },
        );
    }
    drop(b);
    drop(a);
}

fn main() {
    if testkit::find_tool(testkit::nats::NATS_SERVER).is_none() {
        println!("jetstream bench: nats-server is not installed; skipped");
        return;
    }
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("load")
        .enable_all()
        .build()
        .expect("client runtime");
    println!(
        "sonde gateway JetStream bench ({} cores, shared by the gateway(s), the nats-server(s), the load generators and the readers; figures vary with load)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let started = Instant::now();
    for (label, nodes) in [("R1", 1), ("R3", 3)] {
        let cluster = NatsCluster::start(nodes).expect("nats-server");
        for per_frame in [10, 100] {
            ingest(&clients, &cluster, label, nodes, per_frame);
        }
        latency(&clients, &cluster, label, nodes, None);
        latency(&clients, &cluster, label, nodes, Some(LOAD_RECORDS));
    }
    println!("(bench took {:.0} s)", started.elapsed().as_secs_f64());
}
