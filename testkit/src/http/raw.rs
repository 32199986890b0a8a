//! Misbehaviours that hyper would not commit: answering non-HTTP bytes,
//! closing an HTTP/1.1 connection mid-body, never answering, endless
//! informational responses or header lines. They work on
//! any stream, so over TLS they happen after a completed handshake.

use std::sync::atomic::Ordering;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::body::{TRUNCATED_DECLARED, TRUNCATED_SENT};
use super::conn::Shared;

/// Bytes that no HTTP/1.x or h2 parser accepts.
const GARBAGE: &[u8] = b"SSH-2.0-testkit_not_http\r\n\x00\xff\xfe\xfd garbage \x01\x02\r\n\r\n";

/// Reads until the end of a request head (`\r\n\r\n`, which also ends the
/// h2 preface), EOF, or 64 KiB. Returns whether a head arrived.
async fn read_head<IO: AsyncRead + Unpin>(io: &mut IO) -> bool {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return true;
        }
        if buf.len() > 64 * 1024 {
            return true;
        }
    }
}

async fn after_request(shared: &Shared) {
    shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(delay) = shared.config.first_byte_delay {
        tokio::time::sleep(delay).await;
    }
}

/// Reads the request, answers garbage, closes.
pub(crate) async fn garbage<IO: AsyncRead + AsyncWrite + Unpin>(mut io: IO, shared: &Shared) {
    if !read_head(&mut io).await {
        return;
    }
    after_request(shared).await;
    let _ = io.write_all(GARBAGE).await;
    let _ = io.flush().await;
    let _ = io.shutdown().await;
}

/// Reads everything the client sends and never answers, until the client
/// closes or the target is dropped.
pub(crate) async fn silent<IO: AsyncRead + AsyncWrite + Unpin>(mut io: IO, shared: &Shared) {
    if !read_head(&mut io).await {
        return;
    }
    shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    let mut sink = [0u8; 4096];
    while let Ok(n) = io.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}

/// HTTP/1.1: declares 1000 body bytes, sends 100, closes.
pub(crate) async fn close_mid_body<IO: AsyncRead + AsyncWrite + Unpin>(
    mut io: IO,
    shared: &Shared,
) {
    if !read_head(&mut io).await {
        return;
    }
    after_request(shared).await;
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {TRUNCATED_DECLARED}\r\n\r\n"
    );
    if io.write_all(head.as_bytes()).await.is_err() || io.flush().await.is_err() {
        return;
    }
    if let Some(delay) = shared.config.body_delay {
        tokio::time::sleep(delay).await;
    }
    let _ = io.write_all(&[b'x'; TRUNCATED_SENT]).await;
    let _ = io.flush().await;
    let _ = io.shutdown().await;
}

/// How much a flood writes per call: large, so the client always has a
/// full socket buffer to read.
const FLOOD_BURST: usize = 64 * 1024;

/// `unit` repeated to about [`FLOOD_BURST`] bytes.
fn burst(unit: &[u8]) -> Vec<u8> {
    unit.repeat((FLOOD_BURST / unit.len()).max(1))
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
const EARLY_HINTS: &[u8] =
    b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload; as=style\r\n\r\n";

/// HTTP/1.1: `count` informational responses, then a 200.
pub(crate) async fn informational_then_ok<IO: AsyncRead + AsyncWrite + Unpin>(
    mut io: IO,
    count: u32,
    shared: &Shared,
) {
    if !read_head(&mut io).await {
        return;
    }
    after_request(shared).await;
    let mut out = CONTINUE.to_vec();
    for _ in 1..count {
        out.extend_from_slice(EARLY_HINTS);
    }
    if count == 0 {
        out.clear();
    }
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    let _ = io.write_all(&out).await;
    let _ = io.flush().await;
    let _ = io.shutdown().await;
}

/// HTTP/1.1: informational responses forever, never a final one.
pub(crate) async fn informational_flood<IO: AsyncRead + AsyncWrite + Unpin>(
    mut io: IO,
    shared: &Shared,
) {
    if !read_head(&mut io).await {
        return;
    }
    after_request(shared).await;
    let flood = burst(&[CONTINUE, EARLY_HINTS].concat());
    while io.write_all(&flood).await.is_ok() {}
}

/// HTTP/2: the server's SETTINGS (and an ACK of the client's), then
/// `:status 103` HEADERS frames on stream 1 forever. h2 drops
/// informational HEADERS without telling hyper.
pub(crate) async fn informational_flood_h2<IO: AsyncRead + AsyncWrite + Unpin>(
    mut io: IO,
    shared: &Shared,
) {
    // The client's preface ends at its first blank line; its SETTINGS
    // frame follows and is acknowledged without being parsed.
    if !read_head(&mut io).await {
        return;
    }
    after_request(shared).await;
    const SETTINGS: [u8; 9] = [0, 0, 0, 0x4, 0, 0, 0, 0, 0];
    const SETTINGS_ACK: [u8; 9] = [0, 0, 0, 0x4, 0x1, 0, 0, 0, 0];
    // HEADERS, END_HEADERS, stream 1; HPACK: literal without indexing,
    // name :status (static index 8), value "103".
    const EARLY_HINTS_H2: [u8; 14] = [0, 0, 5, 0x1, 0x4, 0, 0, 0, 1, 0x08, 3, b'1', b'0', b'3'];
    if io
        .write_all(&[SETTINGS, SETTINGS_ACK].concat())
        .await
        .is_err()
    {
        return;
    }
    let flood = burst(&EARLY_HINTS_H2);
    while io.write_all(&flood).await.is_ok() {}
}

/// HTTP/1.1: a status line, then header lines forever.
pub(crate) async fn endless_headers<IO: AsyncRead + AsyncWrite + Unpin>(
    mut io: IO,
    shared: &Shared,
) {
    if !read_head(&mut io).await {
        return;
    }
    after_request(shared).await;
    if io.write_all(b"HTTP/1.1 200 OK\r\n").await.is_err() {
        return;
    }
    let lines = burst(b"x-filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    while io.write_all(&lines).await.is_ok() {}
}
