//! `listen::serve` over real loopback sockets: at the cap an idle
//! connection is shed for a new one that gets its answer, a busy one is
//! never shed, and an idle connection is closed after the idle timeout.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Answers `/slow` after `slow`, anything else at once.
async fn start(
    limits: listen::Limits,
    slow: Duration,
) -> (std::net::SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(listen::serve(
        listener,
        limits,
        "test",
        async move {
            let _ = stopped.await;
        },
        move |stream, _peer, conn| {
            let service = conn.track(service_fn(
                move |req: Request<listen::RequestBody<hyper::body::Incoming>>| async move {
                    match req.uri().path() {
                        "/slow" => tokio::time::sleep(slow).await,
                        "/upload" => {
                            let _ = req.into_body().collect().await;
                        }
                        "/stream" => {
                            let slot = req.extensions().get::<listen::SlotHandle>().cloned();
                            let Some(stream) = slot.and_then(|s| s.stream()) else {
                                let mut busy =
                                    Response::new(Full::new(Bytes::from_static(b"busy")));
                                *busy.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                                return Ok(busy);
                            };
                            // The stream is the slot held beyond the response
                            // (as an upgraded socket holds it).
                            tokio::spawn(async move {
                                let _stream = stream;
                                tokio::time::sleep(Duration::from_secs(30)).await;
                            });
                        }
                        _ => {}
                    }
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                },
            ));
            async move {
                let _ = conn
                    .http1()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        },
    ));
    (addr, stop)
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out)).await;
    out
}

/// Whether the server closed `s` within `limit` (EOF or reset).
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(limit, s.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn at_the_cap_the_idle_connection_is_shed_not_the_busy_one() {
    let (addr, _stop) = start(
        listen::Limits::with_max_connections(2),
        Duration::from_millis(500),
    )
    .await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    // Busy: a request in flight for 500 ms.
    let busy = tokio::spawn(get(addr, "/slow"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = get(addr, "/").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await,
        "the idle one was shed"
    );
    let slow = busy.await.unwrap();
    assert!(
        slow.starts_with("HTTP/1.1 200"),
        "the busy one was served: {slow}"
    );
}

#[tokio::test]
async fn with_every_connection_busy_a_new_one_is_closed() {
    let (addr, _stop) = start(
        listen::Limits::with_max_connections(1),
        Duration::from_secs(2),
    )
    .await;
    let busy = tokio::spawn(get(addr, "/slow"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(addr, "/").await, "", "refused: nothing answered");
    assert!(busy.await.unwrap().starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let limits = listen::Limits {
        idle_timeout: Duration::from_millis(300),
        ..listen::Limits::with_max_connections(8)
    };
    let (addr, _stop) = start(limits, Duration::ZERO).await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    // Well before the 10 s header timeout.
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn at_the_cap_a_stalled_upload_is_shed_oldest_first_for_a_real_request() {
    let (addr, _stop) = start(listen::Limits::with_max_connections(2), Duration::ZERO).await;
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\npart")
            .await
            .unwrap();
        stalled.push(s);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = get(addr, "/").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(
        closed_within(&mut stalled[0], Duration::from_secs(5)).await,
        "the oldest stalled upload was shed"
    );
    assert!(
        !closed_within(&mut stalled[1], Duration::from_millis(300)).await,
        "the newer one was left"
    );
}

#[tokio::test]
async fn a_stream_keeps_its_slot_after_its_response_and_streams_leave_a_reserve() {
    // Cap 4: three streams at most, one slot kept for other requests.
    let (addr, _stop) = start(listen::Limits::with_max_connections(4), Duration::ZERO).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /stream HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out:?}");
        held.push(s);
    }
    let fourth = get(addr, "/stream").await;
    assert!(
        fourth.starts_with("HTTP/1.1 503"),
        "over the stream cap: {fourth:?}"
    );
    // The three streams' connections closed, yet their slots are held
    // as work: a fourth and fifth connection cannot both be admitted.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = get(addr, "/").await;
    assert!(
        refused.starts_with("HTTP/1.1 200"),
        "the idle one is shed for it: {refused:?}"
    );
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
}
