//! The source against a real gateway served in-process on loopback:
//! every record once and in order across a gateway restart (a reconnect
//! with `since`), and a `since` older than the ring healed from history;
//! each connection caught up once, after its backlog.
#![cfg(feature = "gateway")]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use config::{Secret, SecretSource};
use gateway::config::{AgentAuth, ReaderAuth};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use wire::{FrameBuilder, FrameHeader, Record};

use super::*;

const AGENT_TOKEN: &str = "token-agent-a";
const READER_TOKEN: &str = "token-reader-all";
const CHECKS: [&str; 3] = ["api", "web", "db"];

fn secret(v: &str) -> Secret<String> {
    Secret::new(SecretSource::Env("TEST".into()), v.to_owned())
}

/// A gateway serving in this process.
struct Gateway {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), gateway::ServeError>>,
}

impl Gateway {
    /// Serves the data of `dir` on `addr` (port 0: any), agent `a` and
    /// one reader that sees everything, a ring of `ring_records`.
    async fn start(dir: &Path, addr: SocketAddr, ring_records: usize) -> Gateway {
        let mut cfg = gateway::GatewayConfig::with_data_dir(dir.to_owned());
        cfg.ring.max_records = ring_records;
        cfg.agents = vec![AgentAuth {
            id: "a".into(),
            token: secret(AGENT_TOKEN),
        }];
        cfg.reader_tokens = vec![ReaderAuth {
            name: "alerter".into(),
            token: secret(READER_TOKEN),
            checks: vec![],
            agents: vec![],
        }];
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(gateway::serve(listener, cfg, async {
            let _ = stopped.await;
        }));
        Gateway { addr, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(8), self.task)
            .await
            .expect("the gateway stops")
            .unwrap()
            .unwrap();
    }

    /// Posts one frame of agent `a` with a record of each check; what
    /// was sent, as (check, t).
    async fn post(&self, session: u64, seq: u64) -> Vec<(String, u64)> {
        let mut b = FrameBuilder::new(FrameHeader {
            agent: "a".into(),
            session,
            seq,
        });
        let mut sent = Vec::new();
        for (i, check) in CHECKS.iter().enumerate() {
            let t = now_ms() + i as u64;
            b.push(check, Record::up(t, 12).with_sc(200).with_cn(2).with_ft(3));
            sent.push((check.to_string(), t));
        }
        let body = b.finish().encode().unwrap();
        let io = TokioIo::new(tokio::net::TcpStream::connect(self.addr).await.unwrap());
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::post(format!("http://{}/v1/frames", self.addr))
            .header("host", self.addr.to_string())
            .header("authorization", format!("Bearer {AGENT_TOKEN}"))
            .header("content-type", gateway::FRAMES_CONTENT_TYPE)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let status = send.send_request(req).await.unwrap().status();
        assert_eq!(status, 200, "frame {seq} accepted");
        sent
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A running source: its task, counters, channel and stop switch, and
/// what its events said so far.
struct Source {
    task: JoinHandle<()>,
    stats: Arc<SourceStats>,
    rx: mpsc::Receiver<SourceEvent>,
    stop: watch::Sender<bool>,
    seen: Seen,
}

/// Per connection (from its `Connected`): the records handed over on it
/// (snapshots aside), and how many of them had come when its `CaughtUp`
/// did, if it did.
#[derive(Debug, Default)]
struct Seen(Vec<(usize, Option<usize>)>);

impl Seen {
    fn see(&mut self, ev: &SourceEvent) {
        match ev {
            SourceEvent::Connected { .. } => self.0.push((0, None)),
            SourceEvent::Records(b) if !b.from_snapshot => {
                self.0.last_mut().expect("records after Connected").0 += b.records.len();
            }
            SourceEvent::CaughtUp => {
                let c = self.0.last_mut().expect("CaughtUp after Connected");
                assert_eq!(c.1, None, "CaughtUp once per connection");
                c.1 = Some(c.0);
            }
            SourceEvent::CatchingUp => panic!("no lagged reset here"),
            _ => {}
        }
    }

    /// Per connection, how many records had come when it caught up.
    fn caught_up(&self) -> Vec<Option<usize>> {
        self.0.iter().map(|c| c.1).collect()
    }

    /// Whether the current connection has caught up.
    fn live(&self) -> bool {
        self.0.last().is_some_and(|c| c.1.is_some())
    }
}

impl Source {
    /// Stops it; it must end promptly.
    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(2), self.task)
            .await
            .expect("the source stops")
            .unwrap();
    }
}

/// A source of the gateway at `addr`.
fn source(addr: SocketAddr, since: Option<u64>) -> Source {
    source_as(addr, since, READER_TOKEN)
}

/// [`source`] with the reader token `token`.
fn source_as(addr: SocketAddr, since: Option<u64>, token: &str) -> Source {
    let cfg = SourceConfig {
        name: "test".into(),
        url: url::Url::parse(&format!("http://{addr}")).unwrap(),
        token: token.into(),
        ca_file: None,
    };
    // A small channel: the source waits for this consumer.
    let (tx, rx) = mpsc::channel(2);
    let (stop, stopped) = watch::channel(false);
    let (task, stats) = spawn(cfg, since, tx, stopped).unwrap();
    Source {
        task,
        stats,
        rx,
        stop,
        seen: Seen::default(),
    }
}

async fn next(src: &mut Source) -> SourceEvent {
    let ev = tokio::time::timeout(Duration::from_secs(5), src.rx.recv())
        .await
        .expect("an event within 5 s")
        .expect("the source runs");
    src.seen.see(&ev);
    ev
}

/// The stream's records until `n` have come (none from a snapshot, no
/// gap), and the connection's `CaughtUp` if it follows the last of them.
async fn records(src: &mut Source, n: usize) -> Vec<SourceRecord> {
    let mut out = Vec::new();
    while out.len() < n {
        match next(src).await {
            SourceEvent::Records(b) => {
                assert!(!b.from_snapshot, "{b:?}");
                if let Some(r) = b.records.last() {
                    assert_eq!(b.last, r.gseq);
                }
                out.extend(b.records);
            }
            SourceEvent::Connected { .. } | SourceEvent::CaughtUp => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(out.len(), n);
    if !src.seen.live() {
        assert_eq!(next(src).await, SourceEvent::CaughtUp, "after the backlog");
    }
    out
}

/// Connected, the snapshot's batch, caught up: the snapshot's gseq.
async fn snapshot(src: &mut Source) -> u64 {
    assert_eq!(
        next(src).await,
        SourceEvent::Connected {
            gateway: "gateway".into(),
            region: "gateway".into()
        }
    );
    let g = match next(src).await {
        SourceEvent::Records(b) if b.from_snapshot => b.last,
        other => panic!("{other:?}"),
    };
    assert_eq!(next(src).await, SourceEvent::CaughtUp, "right after it");
    g
}

fn assert_once_in_order(got: &[SourceRecord], sent: &[(String, u64)]) {
    assert!(
        got.windows(2).all(|w| w[0].gseq < w[1].gseq),
        "strictly increasing gseqs"
    );
    let seen: Vec<(String, u64)> = got
        .iter()
        .map(|r| (r.check.clone(), r.record.t_ms))
        .collect();
    assert_eq!(seen, sent, "every record once, in order");
}

#[tokio::test]
async fn follows_a_gateway_across_its_restart_every_record_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let gw = Gateway::start(&data, SocketAddr::from(([127, 0, 0, 1], 0)), 1000).await;
    let addr = gw.addr;
    let mut src = source(addr, None);
    let stats = Arc::clone(&src.stats);
    let g0 = snapshot(&mut src).await;
    assert!(stats.connected());

    let session = now_ms();
    let mut sent = Vec::new();
    for seq in 0..5 {
        sent.extend(gw.post(session, seq).await);
    }
    let mut got = records(&mut src, 15).await;
    assert!(got[0].gseq > g0);
    assert_eq!(got[0].agent, "a");

    gw.stop().await;
    assert!(matches!(
        next(&mut src).await,
        SourceEvent::Disconnected { .. }
    ));
    // The same data and address: the source resumes with `since`.
    let gw = Gateway::start(&data, addr, 1000).await;
    for seq in 5..10 {
        sent.extend(gw.post(session, seq).await);
    }
    got.extend(records(&mut src, 15).await);
    assert_once_in_order(&got, &sent);
    // Each connection caught up once: the first with its snapshot, the
    // second once its replay (whatever of the posts it came after) was
    // handed over, or with its snapshot if it came before them all (the
    // restarted gateway's newest gseq is then no record).
    let caught = src.seen.caught_up();
    assert!(
        matches!(caught[..], [Some(0), Some(n)] if n <= 15),
        "{caught:?}"
    );
    assert!(src.rx.try_recv().is_err(), "nothing more");
    assert!(stats.connected());
    assert!(stats.reconnects() >= 1);
    assert_eq!((stats.records(), stats.gaps(), stats.heals()), (30, 0, 0));
    assert_eq!(stats.last_gseq(), got[29].gseq);
    assert_eq!(
        stats.newest_end_ms(),
        got.iter().map(|r| r.record.t_ms + 12).max().unwrap()
    );

    src.stop().await;
    assert!(!stats.connected());
    gw.stop().await;
}

#[tokio::test]
async fn a_since_older_than_the_ring_is_healed_from_history() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)), 4).await;
    // A first source takes the starting point, then goes away.
    let mut first = source(gw.addr, None);
    let since = snapshot(&mut first).await;
    first.stop().await;

    let session = now_ms();
    let mut sent = Vec::new();
    for seq in 0..10 {
        sent.extend(gw.post(session, seq).await);
    }
    // 30 records, the ring keeps 4: the rest only history has.
    let mut src = source(gw.addr, Some(since));
    let mut got = records(&mut src, 30).await;
    for seq in 10..12 {
        sent.extend(gw.post(session, seq).await);
    }
    got.extend(records(&mut src, 6).await);
    assert_once_in_order(&got, &sent);
    assert_eq!(src.seen.caught_up(), [Some(30)], "caught up after the heal");
    let s = &src.stats;
    assert_eq!((s.heals(), s.gaps(), s.records()), (1, 0, 36));

    src.stop().await;
    gw.stop().await;
}

#[tokio::test]
async fn an_outage_is_reported_once_and_a_refused_token_is_retried_slowly() {
    // Nothing listens there yet.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut src = source(addr, None);
    let SourceEvent::Disconnected { error } = next(&mut src).await else {
        panic!("not a disconnect");
    };
    assert!(error.contains("connecting to 127.0.0.1"), "{error}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while src.stats.reconnects() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "retried with backoff"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(src.rx.try_recv().is_err(), "one Disconnected per outage");
    assert!(!src.stats.connected());

    // The gateway comes: the source connects by itself.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), addr, 1000).await;
    snapshot(&mut src).await;
    src.stop().await;

    let mut src = source_as(addr, None, "not-a-reader-token");
    let SourceEvent::Disconnected { error } = next(&mut src).await else {
        panic!("not a disconnect");
    };
    assert!(error.starts_with("HTTP 401"), "{error}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(src.stats.reconnects(), 0, "a refused token waits 30 s");
    src.stop().await;
    gw.stop().await;
}
