//! Plain HTTP/1.1 over loopback to a child process (the gateway's ingest
//! and health, the agent's /metrics), written by hand so that a test sends
//! exactly the bytes it means to; and the one reader of a Prometheus text
//! answer in these tests. No TLS here (gateway_tls speaks it itself).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// What came back from one exchange.
pub struct Answer {
    /// The status code; 0 when no HTTP answer came (refused, reset, not HTTP).
    pub status: u16,
    /// The body (after the head).
    pub body: String,
    /// Everything that came back, head and body, lossily decoded.
    pub text: String,
}

/// One request on a fresh connection (`connection: close`), sent in one
/// write: a refusal sent before the body arrived would race it. Waits up
/// to 10 s for the answer; a failure to connect is an empty answer.
pub fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut text = String::new();
    if let Ok(mut s) = TcpStream::connect(addr) {
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        if s.write_all(&bytes).is_ok() {
            let mut out = Vec::new();
            // A reset after the answer still leaves what arrived.
            let _ = s.read_to_end(&mut out);
            text = String::from_utf8_lossy(&out).into_owned();
        }
    }
    let status = text
        .strip_prefix("HTTP/1.")
        .and_then(|t| t.get(2..5))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Answer { status, body, text }
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Answer {
    exchange(addr, "GET", path, &[], b"")
}

/// The value of the first sample of `name` (with `labels` inside the
/// braces, if given) in a Prometheus text answer; 0 when absent.
pub fn metric(body: &str, name: &str, labels: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let (series, _) = l.rsplit_once(' ').unwrap_or(("", ""));
            series == name || (series.starts_with(&format!("{name}{{")) && series.contains(labels))
        })
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0)
}

/// [`metric`] of the `/metrics` served at `addr` (cleartext).
pub fn scrape(addr: SocketAddr, name: &str, labels: &str) -> f64 {
    metric(&get(addr, "/metrics").body, name, labels)
}
