//! Helpers for the gateway's integration tests: a gateway served in-process
//! on 127.0.0.1:0, frame builders, an HTTP/1.1 or h2c client for ingest, and
//! SSE and WebSocket readers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use config::{Secret, SecretSource};
use gateway::GatewayConfig;
use gateway::config::{AgentAuth, ReaderAuth};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use wire::{FrameBuilder, FrameHeader, Record};

pub const AGENT_A: &str = "token-agent-a";
pub const AGENT_B: &str = "token-agent-b";
pub const READER_ALL: &str = "token-reader-all";
pub const READER_API: &str = "token-reader-api";

fn secret(v: &str) -> Secret<String> {
    Secret::new(SecretSource::Env("TEST".into()), v.to_owned())
}

/// A config with agents `a`, `b` and readers `all`, `api` (checks `api-*`).
pub fn config(dir: PathBuf) -> GatewayConfig {
    let mut cfg = GatewayConfig::with_data_dir(dir);
    cfg.agents = vec![
        AgentAuth {
            id: "a".into(),
            token: secret(AGENT_A),
        },
        AgentAuth {
            id: "b".into(),
            token: secret(AGENT_B),
        },
    ];
    cfg.reader_tokens = vec![
        ReaderAuth {
            name: "all".into(),
            token: secret(READER_ALL),
            checks: vec![],
            agents: vec![],
        },
        ReaderAuth {
            name: "api".into(),
            token: secret(READER_API),
            checks: vec!["api-*".into()],
            agents: vec![],
        },
    ];
    cfg
}

pub struct Gateway {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), gateway::ServeError>>,
}

impl Gateway {
    pub async fn start(tune: impl FnOnce(&mut GatewayConfig)) -> Gateway {
        Gateway::start_in(tempfile::tempdir().unwrap(), tune).await
    }

    /// A gateway on the data of `dir` (another one's, after its `stop`).
    pub async fn start_in(
        dir: tempfile::TempDir,
        tune: impl FnOnce(&mut GatewayConfig),
    ) -> Gateway {
        let mut cfg = config(dir.path().join("data"));
        tune(&mut cfg);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = oneshot::channel();
        let task = tokio::spawn(gateway::serve(listener, cfg, async {
            let _ = rx.await;
        }));
        Gateway {
            addr,
            dir,
            stop: Some(stop),
            task,
        }
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("gateway stops")
            .unwrap()
            .unwrap();
        self.dir
    }

    pub async fn metric(&self, name: &str) -> u64 {
        let (status, body) = get(self.addr, "/metrics").await;
        assert_eq!(status, 200);
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} not in {body}"))
            .parse()
            .unwrap()
    }
}

pub fn record(t_ms: u64) -> Record {
    Record::up(t_ms, 12)
        .with_sc(200)
        .with_dn(1)
        .with_cn(2)
        .with_ft(3)
}

/// One frame with `per_check` records of each check.
pub fn frame(agent: &str, session: u64, seq: u64, checks: &[&str], per_check: usize) -> Vec<u8> {
    let mut b = FrameBuilder::new(FrameHeader {
        agent: agent.into(),
        session,
        seq,
    });
    for c in checks {
        for i in 0..per_check {
            b.push(c, record(1_767_225_600_000 + seq * 1000 + i as u64));
        }
    }
    b.finish().encode().unwrap()
}

pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

async fn send(addr: SocketAddr, req: Request<Full<Bytes>>, h2: bool) -> hyper::Response<Incoming> {
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    if h2 {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    }
}

pub async fn post_with(
    addr: SocketAddr,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
    h2: bool,
) -> Answer {
    let req = Request::post(format!("http://{addr}/v1/frames"))
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = send(addr, req, h2).await;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        retry_after,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub async fn post(addr: SocketAddr, token: &str, body: Vec<u8>) -> Answer {
    post_with(addr, token, gateway::FRAMES_CONTENT_TYPE, body, false).await
}

pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let req = Request::get(format!("http://{addr}{path}"))
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = send(addr, req, false).await;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A GET with extra request headers: the status, the response headers
/// and the raw body.
pub async fn get_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, hyper::HeaderMap, Vec<u8>) {
    let mut req = Request::get(format!("http://{addr}{path}")).header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = send(addr, req.body(Full::new(Bytes::new())).unwrap(), false).await;
    let status = resp.status().as_u16();
    let head = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, head, body.to_vec())
}

/// A Server-Sent Events reader over HTTP/1.1.
pub struct Sse {
    pub status: u16,
    body: Incoming,
    buf: String,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub event: String,
    pub id: Option<u64>,
    pub data: serde_json::Value,
}

impl Sse {
    /// A stream as `token` (none sent when empty: the query may carry it).
    pub async fn open(addr: SocketAddr, token: &str, query: &str) -> Sse {
        let mut req = Request::get(format!("http://{addr}/v1/stream{query}"))
            .header("host", addr.to_string())
            .header("accept", "text/event-stream");
        if !token.is_empty() {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let req = req.body(Full::new(Bytes::new())).unwrap();
        let resp = send(addr, req, false).await;
        Sse {
            status: resp.status().as_u16(),
            body: resp.into_body(),
            buf: String::new(),
        }
    }

    /// The next event (comments and `hello` skipped); `None` at the end
    /// of the stream.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            let e = self.next_any().await?;
            if e.event != "hello" {
                return Some(e);
            }
        }
    }

    /// The next event, `hello` included.
    pub async fn next_any(&mut self) -> Option<Event> {
        tokio::time::timeout(Duration::from_secs(10), self.next_inner())
            .await
            .expect("an SSE event within 10 s")
    }

    async fn next_inner(&mut self) -> Option<Event> {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::new(), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if !data.is_empty() {
                    let data = serde_json::from_str(&data).unwrap();
                    return Some(Event { event, id, data });
                }
            }
            let frame = self.body.frame().await?.ok()?;
            if let Ok(bytes) = frame.into_data() {
                self.buf.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
}

/// Gseqs and checks of a `records` message.
pub fn items(msg: &serde_json::Value) -> Vec<(u64, String)> {
    msg["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["gseq"].as_u64().unwrap(),
                r["check"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Any request over HTTP/1.1: the status and the response headers.
pub async fn raw(addr: SocketAddr, req: Request<Full<Bytes>>) -> (u16, hyper::HeaderMap) {
    let resp = send(addr, req, false).await;
    (resp.status().as_u16(), resp.headers().clone())
}

/// (gseq, check, t) of each record of a `records` message or history page.
pub fn triples(msg: &serde_json::Value) -> Vec<(u64, String, u64)> {
    msg["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["gseq"].as_u64().unwrap(),
                r["check"].as_str().unwrap().to_owned(),
                r["record"]["t"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Every page of `/v1/history?{query}`, following `next_cursor`: the
/// (gseq, check, t) of each record.
pub async fn history_pages(addr: SocketAddr, token: &str, query: &str) -> Vec<(u64, String, u64)> {
    let auth = format!("Bearer {token}");
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut path = format!("/v1/history?{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, _, body) = get_with(addr, &path, &[("authorization", &auth)]).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
        out.extend(triples(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("history never ended its pages");
}
