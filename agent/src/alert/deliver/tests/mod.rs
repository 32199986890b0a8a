//! Delivery's tests beyond the unit tests beside the code: the
//! Alertmanager mapping, and the delivery task against loopback receivers
//! started here. The helpers (events, a scripted receiver) live once here.

mod alertmanager;
mod delivery;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::alert::event::{Event, Kind, Location, LocationState, Probe, Quorum};

/// An event `id` of `kind` for `check`, with no locations.
pub(crate) fn event(id: &str, kind: Kind, check: &str) -> Event {
    Event {
        id: id.to_owned(),
        kind,
        check: check.to_owned(),
        incident: 1,
        at_ms: 1_767_225_600_000,
        since_ms: 1_767_225_540_000,
        quorum: Quorum {
            required: 2,
            down: 0,
            up: 0,
            regions: 0,
        },
        locations: Vec::new(),
        classes: Vec::new(),
        missed: None,
        link: None,
    }
}

/// A location whose last probe is `record`.
pub(crate) fn location(
    region: &str,
    agent: &str,
    state: LocationState,
    record: Option<wire::Record>,
) -> Location {
    Location {
        region: region.to_owned(),
        agent: agent.to_owned(),
        state,
        consecutive: 3,
        last: record.map(|record| Probe { gseq: 7, record }),
    }
}

/// How the scripted receiver answers one request.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// This status.
    Status(u16),
    /// This status with `Retry-After: <secs>`.
    RetryAfter(u16, u64),
    /// This status after a pause.
    Slow(Duration, u16),
}

/// A request the receiver saw.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) at: Instant,
    pub(crate) path: String,
    pub(crate) headers: hyper::HeaderMap,
    pub(crate) body: Bytes,
}

/// A loopback HTTP/1.1 receiver answering from a script (200 once it
/// runs out), recording every request.
pub(crate) struct Scripted {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Scripted {
    pub(crate) async fn start(script: Vec<Reply>) -> Scripted {
        Scripted::start_with(script, None).await
    }

    /// With `tls`, the receiver speaks HTTPS with that configuration.
    pub(crate) async fn start_with(
        script: Vec<Reply>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let record = seen.clone();
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (seen, script) = (record.clone(), script.clone());
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        None => serve(tcp, seen, script).await,
                        Some(a) => {
                            if let Ok(tls) = a.accept(tcp).await {
                                serve(tls, seen, script).await;
                            }
                        }
                    }
                });
            }
        });
        Scripted { addr, seen }
    }

    pub(crate) fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("http://{}{path}", self.addr)).unwrap()
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived (at most `within`).
    pub(crate) async fn wait_for(&self, n: usize, within: Duration) -> Vec<Seen> {
        let deadline = Instant::now() + within;
        loop {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} requests within {within:?}",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Serves one connection from the script, recording what it sees.
async fn serve<I>(io: I, seen: Arc<Mutex<Vec<Seen>>>, script: Arc<Mutex<VecDeque<Reply>>>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (seen, script) = (seen.clone(), script.clone());
        async move {
            let at = Instant::now();
            let (parts, body) = req.into_parts();
            let body = body.collect().await?.to_bytes();
            seen.lock().unwrap().push(Seen {
                at,
                path: parts.uri.to_string(),
                headers: parts.headers,
                body,
            });
            let reply = script.lock().unwrap().pop_front();
            let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
            let status = match reply {
                None => 200,
                Some(Reply::Status(s)) => s,
                Some(Reply::RetryAfter(s, secs)) => {
                    response
                        .headers_mut()
                        .insert("retry-after", secs.to_string().parse().unwrap());
                    s
                }
                Some(Reply::Slow(pause, s)) => {
                    tokio::time::sleep(pause).await;
                    s
                }
            };
            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
            Ok::<_, hyper::Error>(response)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// Polls `cond` every 5 ms until it holds (at most `within`).
pub(crate) async fn until(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
