//! An in-process fake of a gateway's ingest (h2c on loopback, PROTOCOL.md
//! 2): it deduplicates by (session, seq) and acknowledges as a single
//! gateway does, or refuses every request with a chosen status, or dies on
//! the next request (the connection dropped mid-request, the port closed
//! after). It records what it accepted and acknowledged, so a test can say
//! exactly where one gateway's frames end and another's begin.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;
use wire::{FrameReader, ReadItem};

/// A record's identity: (check, t, rt).
pub type Key = (String, u64, u64);

/// How the fake answers a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Deduplicate and acknowledge (PROTOCOL.md 2.3).
    Honest,
    /// Refuse with this status and error code (429 and 503 with
    /// `Retry-After: 30`), accepting nothing.
    Refuse(u16, &'static str),
    /// Drop the connection of the next request without answering, then
    /// stop listening: what the agent sees of a gateway that dies.
    DieOnNextRequest,
}

/// What the fake saw and did.
#[derive(Debug)]
pub struct Seen {
    /// How it answers now.
    pub mode: Mode,
    /// Requests received (the one it died on included).
    pub requests: usize,
    /// Frames accepted, by (session, seq), with their records.
    pub accepted: BTreeMap<(u64, u64), Vec<Key>>,
    /// The last acknowledgement sent: (session, acked).
    pub last_ack: Option<(u64, u64)>,
    /// The first frame of the first request received.
    pub first_offered: Option<(u64, u64)>,
    /// Whether it died.
    pub dead: bool,
}

impl Seen {
    /// Every record accepted, in (session, seq) order.
    pub fn records(&self) -> Vec<Key> {
        self.accepted.values().flatten().cloned().collect()
    }
}

/// A fake gateway running on its own thread; stopped on drop.
pub struct FakeGateway {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    dead: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeGateway {
    /// Listens on 127.0.0.1 (a free port), answering as `mode` says.
    pub fn start(mode: Mode) -> FakeGateway {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("binding the fake gateway: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("{e}"));
        let seen = Arc::new(Mutex::new(Seen {
            mode,
            requests: 0,
            accepted: BTreeMap::new(),
            last_ack: None,
            first_offered: None,
            dead: false,
        }));
        let (dead, dead_rx) = watch::channel(false);
        let (shared, dead_tx) = (seen.clone(), dead.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("{e}"));
            rt.block_on(serve(listener, shared, dead_tx, dead_rx));
        });
        FakeGateway {
            addr,
            seen,
            dead,
            thread: Some(thread),
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it saw so far (hold the guard briefly: requests wait on it).
    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers from now on as `mode` says.
    pub fn set_mode(&self, mode: Mode) {
        self.seen().mode = mode;
    }
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        let _ = self.dead.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    seen: Arc<Mutex<Seen>>,
    dead_tx: watch::Sender<bool>,
    mut dead: watch::Receiver<bool>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap_or_else(|e| panic!("{e}"));
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            // Dead: the listener is dropped, so connecting is refused.
            _ = dead.wait_for(|d| *d) => return,
        };
        let (seen, dead_tx, mut dead) = (seen.clone(), dead_tx.clone(), dead.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (seen, dead_tx) = (seen.clone(), dead_tx.clone());
                async move { ingest(req, &seen, &dead_tx).await }
            });
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service);
            // Dying drops the connection, the request in flight unanswered.
            tokio::select! {
                _ = conn => {}
                _ = dead.wait_for(|d| *d) => {}
            }
        });
    }
}

async fn ingest(
    req: hyper::Request<hyper::body::Incoming>,
    seen: &Mutex<Seen>,
    dead: &watch::Sender<bool>,
) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
    let body = req.into_body().collect().await?.to_bytes();
    let frames: Vec<wire::Frame> = FrameReader::new(&body, 0)
        .at_eof()
        .filter_map(|item| match item {
            ReadItem::Frame { frame, .. } => Some(frame),
            ReadItem::Skipped { .. } => None,
        })
        .collect();
    let answer = {
        let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
        s.requests += 1;
        if s.first_offered.is_none() {
            s.first_offered = frames.first().map(|f| (f.header.session, f.header.seq));
        }
        match s.mode.clone() {
            Mode::DieOnNextRequest => {
                s.dead = true;
                None
            }
            Mode::Refuse(status, error) => Some((
                status,
                serde_json::json!({"error": error, "reason": "fake", "offset": null}),
            )),
            Mode::Honest => {
                let mut accepted = 0;
                for f in &frames {
                    let key = (f.header.session, f.header.seq);
                    if s.accepted.keys().next_back().is_some_and(|m| key <= *m) {
                        continue;
                    }
                    let records = f
                        .records()
                        .map(|(c, r)| (c.to_owned(), r.t_ms, r.rt_ms))
                        .collect();
                    s.accepted.insert(key, records);
                    accepted += 1;
                }
                let mark = s.accepted.keys().next_back().copied().unwrap_or((0, 0));
                s.last_ack = Some(mark);
                Some((
                    200,
                    serde_json::json!({"session": mark.0, "acked": mark.1, "accepted": accepted, "duplicates": frames.len() - accepted}),
                ))
            }
        }
    };
    let Some((status, json)) = answer else {
        let _ = dead.send(true);
        // Never answered: the connection is dropped under this request.
        return std::future::pending().await;
    };
    let mut response = hyper::Response::new(Full::new(Bytes::from(json.to_string())));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if matches!(status, 429 | 503) {
        headers.insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from_static("30"),
        );
    }
    Ok(response)
}
