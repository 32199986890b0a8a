//! A UDP DNS server on 127.0.0.1 for A and AAAA: configured names answer
//! with their addresses (TTL 0), other names get NXDOMAIN, and behaviours
//! (for both types, or A and AAAA apart) inject delays, NODATA, failure
//! rcodes or silence. Queries are counted by type. Start several for a
//! resolv.conf with several servers.
//!
//! Each query is answered by its own task, so a delay on one (say AAAA)
//! never holds up another (A). A TCP listener on the same port answers
//! length-prefixed queries (what a client does after a truncated reply);
//! behaviours that truncate do so over UDP only. Messages are parsed and
//! built with hickory-proto; there is no zone logic or recursion, and an
//! EDNS OPT record in a query is ignored.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use crate::thread::ServerThread;

/// What the server does with a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DnsBehaviour {
    /// Answer from the configured names; unknown names get NXDOMAIN.
    #[default]
    Answer,
    /// NOERROR without records, for every name.
    NoData,
    /// NXDOMAIN for every name.
    NxDomain,
    /// SERVFAIL for every query.
    ServFail,
    /// REFUSED for every query.
    Refused,
    /// Never answer (the client's DNS phase times out).
    Silent,
    /// Over UDP, TC=1 and no records (what BIND and Unbound send for an
    /// RRset that does not fit); over TCP, as [`DnsBehaviour::Answer`].
    Truncated,
    /// Over UDP, the full answer with TC=1, cut in the middle of its last
    /// record; over TCP, as [`DnsBehaviour::Answer`].
    CutShort,
}

/// Configures a [`DnsServer`]; see [`DnsServer::builder`].
#[derive(Debug, Default, Clone)]
pub struct DnsServerBuilder {
    names: HashMap<String, Vec<IpAddr>>,
    a_delay: Option<Duration>,
    aaaa_delay: Option<Duration>,
    a_behaviour: DnsBehaviour,
    aaaa_behaviour: DnsBehaviour,
    no_tcp: bool,
}

impl DnsServerBuilder {
    /// `name` (case-insensitive, trailing dot optional) resolves to `addrs`:
    /// the IPv4 ones for A, the IPv6 ones for AAAA (none: an empty NOERROR).
    pub fn name(mut self, name: &str, addrs: &[IpAddr]) -> Self {
        self.names
            .entry(normalise(name))
            .or_default()
            .extend_from_slice(addrs);
        self
    }

    /// Delay before every answer (A, AAAA and others).
    pub fn answer_delay(mut self, delay: Duration) -> Self {
        self.a_delay = Some(delay);
        self.aaaa_delay = Some(delay);
        self
    }

    /// Delay before A answers only.
    pub fn a_delay(mut self, delay: Duration) -> Self {
        self.a_delay = Some(delay);
        self
    }

    /// Delay before AAAA answers only.
    pub fn aaaa_delay(mut self, delay: Duration) -> Self {
        self.aaaa_delay = Some(delay);
        self
    }

    /// What to answer every query with (default: [`DnsBehaviour::Answer`]).
    pub fn behaviour(mut self, behaviour: DnsBehaviour) -> Self {
        self.a_behaviour = behaviour;
        self.aaaa_behaviour = behaviour;
        self
    }

    /// What to answer A queries with (other types follow A).
    pub fn a(mut self, behaviour: DnsBehaviour) -> Self {
        self.a_behaviour = behaviour;
        self
    }

    /// What to answer AAAA queries with.
    pub fn aaaa(mut self, behaviour: DnsBehaviour) -> Self {
        self.aaaa_behaviour = behaviour;
        self
    }

    /// No TCP listener: a client's TCP retry is refused.
    pub fn no_tcp(mut self) -> Self {
        self.no_tcp = true;
        self
    }

    fn behaviour_for(&self, qtype: Option<RecordType>) -> DnsBehaviour {
        match qtype {
            Some(RecordType::AAAA) => self.aaaa_behaviour,
            _ => self.a_behaviour,
        }
    }

    /// Starts the server; panics with the reason if it cannot.
    pub fn start(self) -> DnsServer {
        self.try_start()
            .unwrap_or_else(|e| panic!("testkit: starting the DNS server: {e}"))
    }

    /// Starts the server on 127.0.0.1:0 (UDP, and TCP on the same port
    /// unless [`DnsServerBuilder::no_tcp`]).
    pub fn try_start(self) -> std::io::Result<DnsServer> {
        let (socket, listener) = bind_udp_and_tcp(!self.no_tcp)?;
        let addr = socket.local_addr()?;
        let counts = Arc::new(Counts::default());
        let zone = Arc::new(self);
        let server_counts = counts.clone();
        let thread = ServerThread::spawn("dns", move || {
            let socket = Arc::new(UdpSocket::from_std(socket)?);
            let listener = listener.map(TcpListener::from_std).transpose()?;
            Ok(async move {
                let udp = serve(socket, zone.clone(), server_counts.clone());
                match listener {
                    Some(listener) => {
                        tokio::join!(udp, serve_tcp(listener, zone, server_counts));
                    }
                    None => udp.await,
                }
            })
        })?;
        Ok(DnsServer {
            addr,
            counts,
            _thread: thread,
        })
    }
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A UDP socket on 127.0.0.1:0 and, when `tcp`, a TCP listener on the
/// same port (a few tries: the port may be taken for TCP).
fn bind_udp_and_tcp(tcp: bool) -> std::io::Result<(StdUdpSocket, Option<StdTcpListener>)> {
    let mut last = None;
    for _ in 0..20 {
        let socket = StdUdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        if !tcp {
            return Ok((socket, None));
        }
        match StdTcpListener::bind(socket.local_addr()?) {
            Ok(listener) => {
                listener.set_nonblocking(true)?;
                return Ok((socket, Some(listener)));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no port for UDP and TCP")))
}

#[derive(Debug, Default)]
struct Counts {
    a: AtomicU64,
    aaaa: AtomicU64,
    other: AtomicU64,
    tcp: AtomicU64,
}

/// A running DNS server; stops when dropped.
#[derive(Debug)]
pub struct DnsServer {
    addr: SocketAddr,
    counts: Arc<Counts>,
    _thread: ServerThread,
}

impl DnsServer {
    /// A builder with no names, no delays, [`DnsBehaviour::Answer`].
    pub fn builder() -> DnsServerBuilder {
        DnsServerBuilder::default()
    }

    /// The UDP address (`127.0.0.1:PORT`) to send queries to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// All queries received (including unparsable or unanswered ones' types).
    pub fn queries(&self) -> u64 {
        self.a_queries() + self.aaaa_queries() + self.other_queries()
    }

    /// A queries received.
    pub fn a_queries(&self) -> u64 {
        self.counts.a.load(Ordering::Relaxed)
    }

    /// AAAA queries received.
    pub fn aaaa_queries(&self) -> u64 {
        self.counts.aaaa.load(Ordering::Relaxed)
    }

    /// Queries of any other type, or that could not be parsed.
    pub fn other_queries(&self) -> u64 {
        self.counts.other.load(Ordering::Relaxed)
    }

    /// Of all queries, those that came over TCP.
    pub fn tcp_queries(&self) -> u64 {
        self.counts.tcp.load(Ordering::Relaxed)
    }
}

/// Counts `query` and returns its type's delay.
fn count(query: &Message, zone: &DnsServerBuilder, counts: &Counts) -> Option<Duration> {
    match query.queries.first().map(|q| q.query_type()) {
        Some(RecordType::A) => {
            counts.a.fetch_add(1, Ordering::Relaxed);
            zone.a_delay
        }
        Some(RecordType::AAAA) => {
            counts.aaaa.fetch_add(1, Ordering::Relaxed);
            zone.aaaa_delay
        }
        _ => {
            counts.other.fetch_add(1, Ordering::Relaxed);
            zone.a_delay.max(zone.aaaa_delay)
        }
    }
}

async fn serve(socket: Arc<UdpSocket>, zone: Arc<DnsServerBuilder>, counts: Arc<Counts>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(query) = Message::from_vec(&buf[..len]) else {
            counts.other.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let delay = count(&query, &zone, &counts);
        let Some(reply) = udp_reply(&query, &zone) else {
            continue;
        };
        let socket = socket.clone();
        tokio::spawn(async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let _ = socket.send_to(&reply, peer).await;
        });
    }
}

/// The datagram answering `query` over UDP, if any (pure: no I/O).
fn udp_reply(query: &Message, zone: &DnsServerBuilder) -> Option<Vec<u8>> {
    let behaviour = zone.behaviour_for(query.queries.first().map(|q| q.query_type()));
    match behaviour {
        DnsBehaviour::Silent => None,
        DnsBehaviour::Truncated => {
            let mut reply = answer(query, zone);
            reply.answers.clear();
            reply.metadata.truncation = true;
            reply.to_vec().ok()
        }
        DnsBehaviour::CutShort => {
            let mut reply = answer(query, zone);
            reply.metadata.truncation = true;
            let mut bytes = reply.to_vec().ok()?;
            // Into the last record's data: no longer a whole message.
            let cut = bytes.len().saturating_sub(2).max(12);
            bytes.truncate(cut);
            Some(bytes)
        }
        _ => answer(query, zone).to_vec().ok(),
    }
}

/// Serves TCP clients: each message is a 2-byte length and the query,
/// answered in full (no truncation) after its type's delay.
async fn serve_tcp(listener: TcpListener, zone: Arc<DnsServerBuilder>, counts: Arc<Counts>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let (zone, counts) = (zone.clone(), counts.clone());
        tokio::spawn(async move {
            loop {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut buf).await.is_err() {
                    return;
                }
                let Ok(query) = Message::from_vec(&buf) else {
                    counts.other.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                counts.tcp.fetch_add(1, Ordering::Relaxed);
                let delay = count(&query, &zone, &counts);
                if zone.behaviour_for(query.queries.first().map(|q| q.query_type()))
                    == DnsBehaviour::Silent
                {
                    continue;
                }
                let Ok(reply) = answer(&query, &zone).to_vec() else {
                    return;
                };
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                let Ok(len) = u16::try_from(reply.len()) else {
                    return;
                };
                let framed = [&len.to_be_bytes()[..], &reply].concat();
                if stream.write_all(&framed).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// The response to `query` under `zone`'s behaviour (pure: no I/O), as
/// sent whole (over TCP, or over UDP when it is not truncated).
fn answer(query: &Message, zone: &DnsServerBuilder) -> Message {
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    reply.add_queries(query.queries.iter().cloned());
    let qtype = query.queries.first().map(|q| q.query_type());
    let code = match zone.behaviour_for(qtype) {
        DnsBehaviour::NoData => ResponseCode::NoError,
        DnsBehaviour::NxDomain => ResponseCode::NXDomain,
        DnsBehaviour::ServFail => ResponseCode::ServFail,
        DnsBehaviour::Refused => ResponseCode::Refused,
        DnsBehaviour::Answer
        | DnsBehaviour::Silent
        | DnsBehaviour::Truncated
        | DnsBehaviour::CutShort => {
            let mut code = ResponseCode::NoError;
            for q in &query.queries {
                let Some(addrs) = zone.names.get(&normalise(&q.name().to_ascii())) else {
                    code = ResponseCode::NXDomain;
                    continue;
                };
                for addr in addrs {
                    let data = match (q.query_type(), addr) {
                        (RecordType::A, IpAddr::V4(v4)) => RData::A(A(*v4)),
                        (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(*v6)),
                        _ => continue,
                    };
                    reply.add_answer(Record::from_rdata(q.name().clone(), 0, data));
                }
            }
            code
        }
    };
    reply.metadata.response_code = code;
    reply
}
