//! Faults: listeners. Hundreds of idle connections against each of
//! sonde's listeners (`sonde wait --listen`, `--metrics-listen`, the
//! gateway) under a low `ulimit -n`: the real work goes on (polls, a
//! signed webhook, scrapes, ingest), and a slowloris request is closed
//! after the header-read timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sonde::wait::webhook::sign;
use testkit::http::{HttpTarget, Response};

use crate::util::http::exchange;
use crate::util::process::{Process, free_addr, wait_until};

/// The child's descriptor limit: the red-team run's `ulimit -n 256`.
const MAX_FDS: u64 = 256;

/// Idle connections opened against the listener: more than `MAX_FDS`.
const IDLE_CONNECTIONS: usize = 300;

/// Opens `n` connections to `addr` that never send a byte. Connects
/// complete in the kernel's backlog whether or not the server accepts.
fn idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect()
}

/// How many of `conns` the server has closed (EOF or reset), without
/// blocking.
fn closed_by_server(conns: &[TcpStream]) -> usize {
    conns
        .iter()
        .filter(|c| {
            let _ = c.set_nonblocking(true);
            let mut byte = [0u8; 1];
            match c.peek(&mut byte) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            }
        })
        .count()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `sonde wait` against an always-503 target, polled every 200 ms, with
/// its webhook listener, under `ulimit -n 256`.
fn waiting_with_webhook(dir: &Path) -> (HttpTarget, SocketAddr, Process) {
    let target = HttpTarget::builder().response(Response::new(503)).start();
    let hook = free_addr();
    let secret = dir.join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let url = target.url("/health");
    let listen = hook.to_string();
    let secret = secret.display().to_string();
    let mut wait = Process::start_with_fd_limit(
        &[
            "wait",
            &url,
            "--interval",
            "200ms",
            "--max-interval",
            "200ms",
            "--timeout",
            "60s",
            "--listen",
            &listen,
            "--secret-file",
            &secret,
        ],
        &[],
        MAX_FDS,
    );
    wait.wait_listening(hook);
    wait_until(Duration::from_secs(10), "the first poll", || {
        target.requests() >= 1
    });
    (target, hook, wait)
}

#[test]
fn wait_polls_and_takes_a_signed_webhook_through_hundreds_of_idle_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (target, hook, mut wait) = waiting_with_webhook(dir.path());
    let idle = idle_connections(hook, IDLE_CONNECTIONS);
    assert_eq!(idle.len(), IDLE_CONNECTIONS);
    // Let the listener take them all in (and shed what it must).
    std::thread::sleep(Duration::from_secs(1));
    let polls = target.requests();
    wait_until(
        Duration::from_secs(10),
        "polls to go on beside the idle connections",
        || target.requests() >= polls + 3,
    );
    // At most the cap stays open; the rest were shed, oldest first.
    let cap =
        listen::Limits::with_max_connections(usize::MAX).effective_max_connections(Some(MAX_FDS));
    let closed = closed_by_server(&idle);
    assert!(
        closed >= IDLE_CONNECTIONS - cap,
        "{closed} of {IDLE_CONNECTIONS} idle connections closed; at most {cap} may stay"
    );
    let body = r#"{"status":"ready"}"#;
    let now = unix_now();
    let signature = sign(b"s3cret", now, body.as_bytes());
    let started = Instant::now();
    let answer = exchange(
        hook,
        "POST",
        "/hook",
        &[
            ("content-type", "application/json"),
            ("x-sonde-timestamp", &now.to_string()),
            ("x-sonde-signature", &signature),
        ],
        body.as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}{}", answer.text, wait.describe());
    // Ended by the webhook, long before the 60 s deadline.
    let code = wait.wait(Duration::from_secs(20));
    assert_eq!(code, 0, "{}", wait.describe());
    assert!(started.elapsed() < Duration::from_secs(20));
    let err = wait.stderr();
    assert!(err.contains("(webhook)"), "{}", wait.describe());
    assert!(!err.contains("local_resource"), "{}", wait.describe());
}

/// Stalled uploads opened against the webhook: more than its cap at
/// `ulimit -n 256` (64), each with whole headers and part of its body.
const STALLED_UPLOADS: usize = 100;

#[test]
fn a_signed_webhook_gets_through_a_cap_full_of_stalled_unauthenticated_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let (_target, hook, mut wait) = waiting_with_webhook(dir.path());
    let cap =
        listen::Limits::with_max_connections(usize::MAX).effective_max_connections(Some(MAX_FDS));
    assert!(STALLED_UPLOADS > cap);
    // Unsigned: headers whole, body never finished (the listener's body
    // window is 10 s; everything below happens well within it).
    let stalled: Vec<TcpStream> = (0..STALLED_UPLOADS)
        .filter_map(|_| {
            let mut s = TcpStream::connect(hook).ok()?;
            s.write_all(b"POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{\"sta")
                .ok()?;
            Some(s)
        })
        .collect();
    assert_eq!(stalled.len(), STALLED_UPLOADS);
    std::thread::sleep(Duration::from_millis(500));
    let body = r#"{"status":"ready"}"#;
    let now = unix_now();
    let signature = sign(b"s3cret", now, body.as_bytes());
    let answer = exchange(
        hook,
        "POST",
        "/hook",
        &[
            ("content-type", "application/json"),
            ("x-sonde-timestamp", &now.to_string()),
            ("x-sonde-signature", &signature),
        ],
        body.as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}{}", answer.text, wait.describe());
    assert_eq!(wait.wait(Duration::from_secs(10)), 0, "{}", wait.describe());
    assert!(wait.stderr().contains("(webhook)"), "{}", wait.describe());
    drop(stalled);
}

#[test]
fn a_slowloris_request_is_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (_target, hook, mut wait) = waiting_with_webhook(dir.path());
    let timeout = listen::Limits::DEFAULT_HEADER_READ_TIMEOUT;
    let mut slow = TcpStream::connect(hook).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let started = Instant::now();
    slow.write_all(b"POST /hook HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    // One header byte every half second, never the blank line; a byte
    // read (or EOF) means the server answered or closed.
    let mut closed_after = None;
    while started.elapsed() < timeout * 3 {
        if slow.write_all(b"x").is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 512];
        match slow.read(&mut buf) {
            Ok(_) => {
                closed_after = Some(started.elapsed());
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                closed_after = Some(started.elapsed());
                break;
            }
        }
    }
    let closed_after = closed_after.unwrap_or_else(|| panic!("still open after {:?}", timeout * 3));
    assert!(
        closed_after >= timeout - Duration::from_secs(1),
        "closed after {closed_after:?}, before the {timeout:?} header timeout"
    );
    assert!(wait.is_running(), "{}", wait.describe());
}

#[test]
fn a_webhook_body_trickled_in_is_refused_after_the_same_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (_target, hook, mut wait) = waiting_with_webhook(dir.path());
    let timeout = listen::Limits::DEFAULT_HEADER_READ_TIMEOUT;
    let mut slow = TcpStream::connect(hook).unwrap();
    slow.set_read_timeout(Some(timeout * 3)).unwrap();
    let started = Instant::now();
    slow.write_all(b"POST /hook HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"sta")
        .unwrap();
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    let after = started.elapsed();
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "after {after:?}: {answer:?}"
    );
    assert!(answer.contains("body not received within"), "{answer}");
    assert!(
        after >= timeout - Duration::from_secs(1),
        "answered after {after:?}"
    );
    assert!(wait.is_running(), "{}", wait.describe());
}

#[test]
fn metrics_keep_answering_through_hundreds_of_idle_connections() {
    let target = HttpTarget::plain();
    let dir = tempfile::tempdir().unwrap();
    let metrics = free_addr();
    let config = dir.path().join("sonde.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nid = \"faults\"\nstate_dir = \"{}\"\nmetrics_listen = \"{metrics}\"\n\
             [defaults]\ninterval = \"1s\"\n[sinks.file]\nenabled = true\n\
             [[check]]\nname = \"api\"\nurl = \"{}\"\n",
            dir.path().display(),
            target.url("/")
        ),
    )
    .unwrap();
    let shown = config.display().to_string();
    let mut agent = Process::start_with_fd_limit(&["run", "--config", &shown], &[], MAX_FDS);
    agent.wait_listening(metrics);
    let _idle = idle_connections(metrics, IDLE_CONNECTIONS);
    std::thread::sleep(Duration::from_secs(1));
    // Each scrape on a fresh connection; on a listener out of descriptors
    // the first would wait for the idle ones' header timeout (10 s).
    for _ in 0..10 {
        let answer = get_within(metrics, "/metrics", Duration::from_secs(3));
        assert_eq!(answer.0, 200, "{}{}", answer.1, agent.describe());
        assert!(answer.1.contains("sonde_probes_total"), "{}", answer.1);
    }
    let probes = target.requests();
    wait_until(Duration::from_secs(10), "probes to go on", || {
        target.requests() >= probes + 2
    });
    agent.stop();
}

/// `GET path` on a fresh connection, waiting at most `limit` for the whole
/// answer: (status, text); status 0 if none came in time.
fn get_within(addr: SocketAddr, path: &str, limit: Duration) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, "connect failed".into());
    };
    let _ = s.set_read_timeout(Some(limit));
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return (0, "write failed".into());
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// The gateway (not in the agent-only build).
#[cfg(feature = "gateway")]
mod gateway {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    use wire::{FrameBuilder, FrameHeader};

    use super::{IDLE_CONNECTIONS, MAX_FDS, idle_connections};
    use crate::util::http::{self, exchange};
    use crate::util::process::{Process, free_addr};
    use crate::util::up_record;

    #[test]
    fn the_gateway_keeps_acknowledging_frames_through_hundreds_of_idle_connections() {
        const TOKEN: &str = "agent-token-for-listener-faults";
        let dir = tempfile::tempdir().unwrap();
        let addr = free_addr();
        let config = dir.path().join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"{addr}\"\ndata_dir = \"{}\"\n\n[[agent]]\nid = \"faults\"\n\
                 token = {{ env = \"FAULTS_AGENT_TOKEN\" }}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let shown = config.display().to_string();
        let mut gw = Process::start_with_fd_limit(
            &["gateway", "--config", &shown],
            &[("FAULTS_AGENT_TOKEN", TOKEN)],
            MAX_FDS,
        );
        gw.wait_listening(addr);
        let _idle = idle_connections(addr, IDLE_CONNECTIONS);
        std::thread::sleep(Duration::from_secs(1));
        let bearer = format!("Bearer {TOKEN}");
        let frames = 5;
        for seq in 0..frames {
            let mut b = FrameBuilder::new(FrameHeader {
                agent: "faults".into(),
                session: 5,
                seq,
            });
            b.push("api", up_record(1_767_225_600_000 + seq, 250));
            let started = Instant::now();
            let answer = exchange(
                addr,
                "POST",
                "/v1/frames",
                &[
                    ("authorization", &bearer),
                    ("content-type", "application/vnd.sonde.frames"),
                ],
                &b.finish().encode().unwrap(),
            );
            assert_eq!(answer.status, 200, "{}{}", answer.text, gw.describe());
            assert!(answer.body.contains("\"accepted\":1"), "{}", answer.body);
            assert!(started.elapsed() < Duration::from_secs(5));
        }
        let health = http::get(addr, "/healthz");
        assert_eq!(health.status, 200, "{}", gw.describe());
        gw.stop();
    }

    const READER_TOKEN: &str = "reader-token-for-listener-faults";
    const AGENT_TOKEN: &str = "agent-token-for-listener-faults";

    /// A gateway with `[server] max_connections = cap`, one agent and one
    /// reader; `extra` goes into `[server]`.
    fn capped_gateway(
        dir: &std::path::Path,
        cap: usize,
        extra: &str,
    ) -> (std::net::SocketAddr, Process) {
        let addr = free_addr();
        let config = dir.join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"{addr}\"\ndata_dir = \"{}\"\n\n[server]\nmax_connections = {cap}\n{extra}\n\
                 [[agent]]\nid = \"faults\"\ntoken = {{ env = \"FAULTS_AGENT_TOKEN\" }}\n\n\
                 [[reader]]\nname = \"dash\"\ntoken = {{ env = \"FAULTS_READER_TOKEN\" }}\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let shown = config.display().to_string();
        let mut gw = Process::start(
            &["gateway", "--config", &shown],
            &[
                ("FAULTS_AGENT_TOKEN", AGENT_TOKEN),
                ("FAULTS_READER_TOKEN", READER_TOKEN),
            ],
        );
        gw.wait_listening(addr);
        (addr, gw)
    }

    /// Opens a reader with `request` (a whole request head) and returns
    /// its status and the socket, held open.
    fn open_reader(addr: std::net::SocketAddr, request: &str) -> (u16, std::net::TcpStream) {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut head = [0u8; 12];
        let status = match s.read_exact(&mut head) {
            Ok(()) => std::str::from_utf8(&head[9..12])
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
            Err(_) => 0,
        };
        (status, s)
    }

    fn frame(seq: u64) -> Vec<u8> {
        let mut b = FrameBuilder::new(FrameHeader {
            agent: "faults".into(),
            session: 5,
            seq,
        });
        b.push("api", up_record(1_767_225_600_000 + seq, 250));
        b.finish().encode().unwrap()
    }

    fn ingest(addr: std::net::SocketAddr, seq: u64) -> http::Answer {
        let bearer = format!("Bearer {AGENT_TOKEN}");
        exchange(
            addr,
            "POST",
            "/v1/frames",
            &[
                ("authorization", &bearer),
                ("content-type", "application/vnd.sonde.frames"),
            ],
            &frame(seq),
        )
    }

    /// Readers opened against a gateway capped at `CAP` connections.
    const READERS: usize = 8;
    const CAP: usize = 4;

    #[test]
    fn upgraded_websocket_readers_keep_their_slots_within_the_stream_cap() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, mut gw) = capped_gateway(dir.path(), CAP, "");
        let request = format!(
            "GET /v1/ws?token={READER_TOKEN} HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\n\
             connection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             sec-websocket-version: 13\r\n\r\n"
        );
        let readers: Vec<_> = (0..READERS).map(|_| open_reader(addr, &request)).collect();
        let upgraded = readers.iter().filter(|(status, _)| *status == 101).count();
        assert_eq!(
            upgraded,
            listen::Limits::stream_cap(CAP),
            "statuses {:?}{}",
            readers.iter().map(|r| r.0).collect::<Vec<_>>(),
            gw.describe()
        );
        // The slot kept free for agents serves ingest and health.
        let answer = ingest(addr, 0);
        assert_eq!(answer.status, 200, "{}{}", answer.text, gw.describe());
        assert_eq!(http::get(addr, "/healthz").status, 200, "{}", gw.describe());
        gw.stop();
    }

    #[test]
    fn sse_readers_leave_a_quarter_of_the_cap_for_ingest() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, mut gw) = capped_gateway(dir.path(), CAP, "");
        let request = format!("GET /v1/stream?token={READER_TOKEN} HTTP/1.1\r\nhost: x\r\n\r\n");
        let readers: Vec<_> = (0..READERS).map(|_| open_reader(addr, &request)).collect();
        let streaming = readers.iter().filter(|(status, _)| *status == 200).count();
        assert_eq!(
            streaming,
            listen::Limits::stream_cap(CAP),
            "statuses {:?}{}",
            readers.iter().map(|r| r.0).collect::<Vec<_>>(),
            gw.describe()
        );
        for seq in 0..3 {
            let answer = ingest(addr, seq);
            assert_eq!(answer.status, 200, "{}{}", answer.text, gw.describe());
            assert!(answer.body.contains("\"accepted\":1"), "{}", answer.body);
        }
        assert_eq!(http::get(addr, "/healthz").status, 200, "{}", gw.describe());
        gw.stop();
    }

    #[test]
    fn an_ingest_body_trickled_in_is_answered_408_after_the_header_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, mut gw) = capped_gateway(dir.path(), 64, "header_read_timeout = \"1s\"");
        let body = frame(0);
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let head = format!(
            "POST /v1/frames HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {AGENT_TOKEN}\r\n\
             content-type: application/vnd.sonde.frames\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&body[..body.len() / 2]).unwrap();
        let started = Instant::now();
        let mut answer = [0u8; 12];
        let read = s.read_exact(&mut answer);
        assert!(
            read.is_ok(),
            "no answer after {:?}{}",
            started.elapsed(),
            gw.describe()
        );
        assert_eq!(&answer[9..12], b"408", "{}", gw.describe());
        // The 1 s deadline, not the 10 s default nor never.
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{:?}",
            started.elapsed()
        );
        gw.stop();
    }
}
