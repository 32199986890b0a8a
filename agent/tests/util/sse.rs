//! A small reader of the gateway's Server-Sent Events stream
//! (PROTOCOL.md 4) over raw HTTP/1.1 (chunked or not), in cleartext or
//! over TLS, in a thread: every `records`, `snapshot` and `reset` message
//! is kept with the instant it arrived, for exactly-once and latency checks.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::pki_types::ServerName;

/// One record as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its gateway sequence number.
    pub gseq: u64,
    /// The agent id.
    pub agent: String,
    /// The check.
    pub check: String,
    /// The probe's start, epoch ms.
    pub t: u64,
    /// Its response time, ms.
    pub rt: u64,
    /// When the reader had it (wall clock).
    pub received: SystemTime,
}

/// A message other than `records`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// `snapshot` as of this gseq.
    Snapshot(u64),
    /// `reset` with its reason, and the gseqs it says were missed
    /// (`missed_from`, `missed_to`), when it names them.
    Reset {
        /// `reason`.
        reason: String,
        /// `missed_from` and `missed_to`.
        missed: Option<(u64, u64)>,
    },
}

/// What a reader collected.
#[derive(Debug, Default)]
pub struct Collected {
    /// Records in arrival order.
    pub records: Vec<Seen>,
    /// Snapshots and resets, in arrival order.
    pub control: Vec<Control>,
    /// The stream ended (the gateway closed it).
    pub closed: bool,
    /// The status line of the answer.
    pub status: u16,
}

/// A reader connected to `GET /v1/stream`.
pub struct SseReader {
    /// What it collected so far.
    pub collected: Arc<Mutex<Collected>>,
    stream: Option<TcpStream>,
}

impl SseReader {
    /// Connects to `addr` with the reader `token`, resuming after `since`.
    pub fn connect(addr: SocketAddr, token: &str, since: Option<u64>) -> SseReader {
        SseReader::open(addr, token, since, None)
    }

    /// Like [`SseReader::connect`], over TLS with `tls` (which names the
    /// trusted roots and the ALPN to offer); the certificate is verified
    /// against `addr`'s IP address. A failed handshake ends the stream
    /// with status 0.
    pub fn connect_tls(
        addr: SocketAddr,
        token: &str,
        since: Option<u64>,
        tls: Arc<rustls::ClientConfig>,
    ) -> SseReader {
        SseReader::open(addr, token, since, Some(tls))
    }

    fn open(
        addr: SocketAddr,
        token: &str,
        since: Option<u64>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> SseReader {
        let collected = Arc::new(Mutex::new(Collected::default()));
        let closed = |collected: Arc<Mutex<Collected>>| {
            if let Ok(mut c) = collected.lock() {
                c.closed = true;
            }
            SseReader {
                collected,
                stream: None,
            }
        };
        let Ok(tcp) = TcpStream::connect(addr) else {
            return closed(collected);
        };
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(120)));
        let keep = tcp.try_clone().ok();
        let mut stream: Box<dyn Stream> = match tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = ServerName::IpAddress(addr.ip().into());
                match rustls::ClientConnection::new(config, name) {
                    Ok(conn) => Box::new(rustls::StreamOwned::new(conn, tcp)),
                    Err(_) => return closed(collected),
                }
            }
        };
        let query = since.map(|s| format!("?since={s}")).unwrap_or_default();
        let _ = write!(
            stream,
            "GET /v1/stream{query} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\naccept: text/event-stream\r\n\r\n"
        );
        let _ = stream.flush();
        let sink = collected.clone();
        std::thread::spawn(move || {
            read_stream(stream, &sink);
            if let Ok(mut c) = sink.lock() {
                c.closed = true;
            }
        });
        SseReader {
            collected,
            stream: keep,
        }
    }

    /// A copy of the records so far.
    pub fn records(&self) -> Vec<Seen> {
        self.collected
            .lock()
            .map(|c| c.records.clone())
            .unwrap_or_default()
    }

    /// A copy of the control messages so far.
    pub fn control(&self) -> Vec<Control> {
        self.collected
            .lock()
            .map(|c| c.control.clone())
            .unwrap_or_default()
    }

    /// Whether the stream ended.
    pub fn closed(&self) -> bool {
        self.collected.lock().map(|c| c.closed).unwrap_or(true)
    }

    /// The last gseq received (a record's or a snapshot's).
    pub fn last_gseq(&self) -> Option<u64> {
        let c = self.collected.lock().ok()?;
        let snap = c.control.iter().filter_map(|m| match m {
            Control::Snapshot(g) => Some(*g),
            Control::Reset { .. } => None,
        });
        c.records.iter().map(|r| r.gseq).chain(snap).max()
    }
}

impl Drop for SseReader {
    fn drop(&mut self) {
        if let Some(s) = &self.stream {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A byte stream the reader runs on: TCP, or TLS over TCP.
trait Stream: Read + Write + Send {}

impl<T: Read + Write + Send> Stream for T {}

fn read_stream(stream: Box<dyn Stream>, sink: &Mutex<Collected>) {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let status = line.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    if let Ok(mut c) = sink.lock() {
        c.status = status;
    }
    let mut chunked = false;
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if l.starts_with("transfer-encoding:") && l.contains("chunked") {
            chunked = true;
        }
    }
    let mut parser = Parser::default();
    if chunked {
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let size =
                usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).unwrap_or(0);
            if size == 0 {
                return;
            }
            let mut chunk = vec![0; size + 2];
            if r.read_exact(&mut chunk).is_err() {
                return;
            }
            chunk.truncate(size);
            parser.feed(&chunk, sink);
        }
    } else {
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                return;
            }
            parser.feed(&buf[..n], sink);
        }
    }
}

#[derive(Default)]
struct Parser {
    pending: Vec<u8>,
    event: String,
    data: String,
}

impl Parser {
    fn feed(&mut self, bytes: &[u8], sink: &Mutex<Collected>) {
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                self.dispatch(sink);
            } else if let Some(v) = line.strip_prefix("event:") {
                self.event = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                self.data.push_str(v.trim_start());
            }
        }
    }

    fn dispatch(&mut self, sink: &Mutex<Collected>) {
        let received = SystemTime::now();
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&data) else {
            return;
        };
        let Ok(mut c) = sink.lock() else { return };
        match event.as_str() {
            "records" => {
                for r in v["records"].as_array().into_iter().flatten() {
                    c.records.push(Seen {
                        gseq: r["gseq"].as_u64().unwrap_or(0),
                        agent: r["agent"].as_str().unwrap_or("").to_owned(),
                        check: r["check"].as_str().unwrap_or("").to_owned(),
                        t: r["record"]["t"].as_u64().unwrap_or(0),
                        rt: r["record"]["rt"].as_u64().unwrap_or(0),
                        received,
                    });
                }
            }
            "snapshot" => c
                .control
                .push(Control::Snapshot(v["gseq"].as_u64().unwrap_or(0))),
            "reset" => c.control.push(Control::Reset {
                reason: v["reason"].as_str().unwrap_or("").to_owned(),
                missed: v["missed_from"].as_u64().zip(v["missed_to"].as_u64()),
            }),
            _ => {}
        }
    }
}
