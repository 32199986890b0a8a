//! DNS: resolve a probe's host the way a fresh client does — resolv.conf's
//! servers, search list and options as glibc reads them, /etc/hosts, no
//! cache between probes — with sonde's own stub resolver, because the
//! policy is the measurement: A and AAAA are independent queries sent
//! together, and the address list is fixed as RFC 8305 section 3 says
//! (`race`, pure). This file is the thin I/O around it: UDP sockets,
//! timers and the search list. When AAAA fixed the list before A answered,
//! A is still listened for while connecting ([`PreparedLookup::late_a`]),
//! so its addresses join the attempts. Queries carry EDNS (1232 bytes); a
//! truncated reply is asked again over TCP (`tcp`). No DNSSEC.
//!
//! Before the clock: the names to try, the first name's queries (with
//! fresh random ids) and a connected UDP socket per family to the first
//! server. A later server's socket is opened when the lookup moves on to
//! it, inside the DNS phase (a local syscall, microseconds).

mod conf;
mod message;
mod outcome;
mod race;
mod tcp;

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use wire::ErrorClass;

use super::IpVersion;
use super::failure::{self, ProbeFailure};
use super::phase::Phase;
use conf::{Hosts, ResolvConf};
use message::{Question, Read};
use race::{Action, MAX_SERVERS, Policy, Reply, Resolution, Use};

pub use outcome::{DnsReport, Family, FamilyOutcome, FamilyReport};

/// RFC 8305's recommended Resolution Delay: how long a positive A answer
/// waits for AAAA (the configuration's default).
pub const DEFAULT_RESOLUTION_DELAY: Duration = config::defaults::RESOLUTION_DELAY;

/// With a named server (`dns_server`): glibc's default timeout and attempts.
const NAMED_SERVER_TIMEOUT: Duration = Duration::from_secs(5);
const NAMED_SERVER_ATTEMPTS: u8 = 2;

/// A reply larger than this is not a reply to a query without EDNS (512
/// bytes); the slack takes servers that answer larger anyway.
const MAX_REPLY_BYTES: usize = 4096;

/// The system's resolver configuration: resolv.conf and /etc/hosts, read
/// once per process. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    system: Result<Arc<System>, String>,
}

#[derive(Debug)]
struct System {
    conf: ResolvConf,
    hosts: Hosts,
}

impl DnsConfig {
    /// Reads /etc/resolv.conf and /etc/hosts. A missing or unreadable
    /// (EACCES) file means glibc's defaults (the local host's server; no
    /// hosts), as in glibc; the latter is logged once, here. Any other
    /// error is an error for the probes that need the system resolver.
    pub fn system() -> DnsConfig {
        let read = |path: &str| {
            let text = file_text(path, std::fs::read_to_string(path));
            if let Err(Unreadable::PermissionDenied(why)) = &text {
                tracing::warn!(path, error = %why, "DNS: unreadable, read as missing, as glibc does");
            }
            match text {
                Ok(text) => Ok(text),
                Err(Unreadable::PermissionDenied(_)) => Ok(None),
                Err(Unreadable::Other(e)) => Err(e),
            }
        };
        let system = read("/etc/resolv.conf").and_then(|resolv_conf| {
            let hosts = read("/etc/hosts")?;
            Ok(Arc::new(System {
                conf: resolv_conf.map_or_else(ResolvConf::missing, |t| ResolvConf::parse(&t)),
                hosts: hosts.map(|t| Hosts::parse(&t)).unwrap_or_default(),
            }))
        });
        DnsConfig { system }
    }

    /// The configuration of resolv.conf's and /etc/hosts' texts, read as
    /// [`DnsConfig::system`] reads the files. Beyond glibc, a server may be
    /// written `nameserver [ADDR]:PORT` (as OpenBSD allows).
    pub fn from_text(resolv_conf: &str, hosts: &str) -> DnsConfig {
        DnsConfig {
            system: Ok(Arc::new(System {
                conf: ResolvConf::parse(resolv_conf),
                hosts: Hosts::parse(hosts),
            })),
        }
    }

    /// Everything a lookup of `host` needs, before the probe's clock
    /// starts: the system's servers, search list and /etc/hosts, or only
    /// `server` (the name as written, no /etc/hosts: the point of naming a
    /// server is to test that server).
    pub(crate) fn prepare(
        &self,
        host: &str,
        server: Option<SocketAddr>,
        ip_version: IpVersion,
        resolution_delay: Duration,
    ) -> Result<PreparedLookup, ProbeFailure> {
        let ask = Use {
            a: ip_version != IpVersion::V6,
            aaaa: ip_version != IpVersion::V4,
        };
        let (servers, names, timeout, attempts) = match server {
            Some(addr) => (
                vec![addr],
                conf::candidates(host.trim_end_matches('.'), 0, &[]),
                NAMED_SERVER_TIMEOUT,
                NAMED_SERVER_ATTEMPTS,
            ),
            None => {
                let system = self.system.as_ref().map_err(|detail| {
                    ProbeFailure::new(ErrorClass::DnsError, Phase::Dns, detail.clone())
                })?;
                if let Some(found) = system.hosts.lookup(host) {
                    let wanted =
                        |ip: &&IpAddr| (ip.is_ipv4() && ask.a) || (ip.is_ipv6() && ask.aaaa);
                    if found.iter().any(|ip| wanted(&ip)) {
                        return Ok(PreparedLookup::from_hosts(found, ask));
                    }
                }
                let conf = &system.conf;
                (
                    conf.servers.clone(),
                    conf::candidates(host, conf.ndots, &conf.search),
                    conf.timeout,
                    conf.attempts,
                )
            }
        };
        let policy = Policy {
            servers: servers.len(),
            timeout,
            attempts,
            resolution_delay,
            prefer: match ip_version {
                IpVersion::Prefer4 => Some(Family::A),
                IpVersion::Prefer6 => Some(Family::Aaaa),
                IpVersion::Auto | IpVersion::V4 | IpVersion::V6 => None,
            },
        };
        let mut lookup = PreparedLookup {
            servers,
            names,
            policy,
            ask,
            first: None,
            sockets: Default::default(),
            buf: vec![0; MAX_REPLY_BYTES],
            hosts: None,
            current: None,
        };
        if let Some(name) = lookup.names.first() {
            lookup.first = Some(questions(name, ask));
        }
        for family in Family::ALL {
            if lookup.asks(family) {
                // A server that cannot be reached from here (an IPv6 one
                // on a host without an IPv6 route) is not the probe's
                // failure: its slot stays empty, the send fails inside the
                // lookup and the next server is asked, as glibc does.
                match lookup.socket(family, 0) {
                    Err(SocketError::Local(e)) => return Err(socket_failure(&e)),
                    Err(SocketError::Server(_)) | Ok(_) => {}
                }
            }
        }
        Ok(lookup)
    }
}

/// Why a resolver file's text is not there.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum Unreadable {
    /// Not ours to read (EACCES): treated as missing, with a warning.
    #[error("{0}")]
    PermissionDenied(String),
    /// Anything else: the probes that need it fail.
    #[error("{0}")]
    Other(String),
}

/// A resolver file's text from reading `path`: `None` when it does not
/// exist (glibc's defaults).
fn file_text(path: &str, read: io::Result<String>) -> Result<Option<String>, Unreadable> {
    match read {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            Err(Unreadable::PermissionDenied(format!("reading {path}: {e}")))
        }
        Err(e) => Err(Unreadable::Other(format!("reading {path}: {e}"))),
    }
}

/// One lookup, ready to run.
pub(crate) struct PreparedLookup {
    servers: Vec<SocketAddr>,
    names: Vec<String>,
    policy: Policy,
    ask: Use,
    /// The first name's queries, indexed like `Family::index` (or why
    /// there are none: a name too long, no randomness).
    first: Option<Result<[Option<Question>; 2], ProbeFailure>>,
    /// Connected sockets per family and server, opened when first needed.
    sockets: [[Option<UdpSocket>; MAX_SERVERS]; 2],
    buf: Vec<u8>,
    /// The name's addresses from /etc/hosts, AAAA first: no query is sent.
    hosts: Option<Vec<IpAddr>>,
    /// The name being resolved (kept after the decision, for a late A).
    current: Option<Current>,
}

struct Current {
    resolution: Resolution,
    questions: [Option<Question>; 2],
    /// Addresses found, indexed like `Family::index`.
    addrs: [Vec<IpAddr>; 2],
    /// A family's query retried over TCP after a truncated reply: the
    /// server (an index) and the exchange.
    tcp: [Option<(usize, tcp::Exchange)>; 2],
}

/// Datagrams read from one socket in one wake-up at most: a flood on one
/// socket cannot keep the others, the timer or the runtime waiting.
const MAX_DATAGRAMS_PER_WAKE: usize = 16;

/// Everything a wait reads into: the sockets and TCP retries of the
/// current name, fed to its resolution as replies come.
struct Inbox<'a> {
    servers: &'a [SocketAddr],
    sockets: &'a [[Option<UdpSocket>; MAX_SERVERS]; 2],
    buf: &'a mut [u8],
    questions: &'a [Option<Question>; 2],
    addrs: &'a mut [Vec<IpAddr>; 2],
    tcp: &'a mut [Option<(usize, tcp::Exchange)>; 2],
    resolution: &'a mut Resolution,
    start: Instant,
}

impl Inbox<'_> {
    /// Reads every TCP retry and socket that is ready (each socket up to
    /// [`MAX_DATAGRAMS_PER_WAKE`]), feeding the resolution; ready if
    /// anything came, pending (every source registered) otherwise.
    fn poll_read(&mut self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let mut came = false;
        for family in Family::ALL {
            if let Some((server, exchange)) = &mut self.tcp[family.index()]
                && let Poll::Ready(reply) = exchange.as_mut().poll(cx)
            {
                let server = *server;
                self.tcp[family.index()] = None;
                self.on_stream(family, server, reply);
                came = true;
            }
        }
        for family in Family::ALL {
            for (server, socket) in self.sockets[family.index()].iter().enumerate() {
                let Some(socket) = socket else { continue };
                let mut drained = false;
                for _ in 0..MAX_DATAGRAMS_PER_WAKE {
                    let mut read = ReadBuf::new(&mut self.buf[..]);
                    match socket.poll_recv(cx, &mut read) {
                        Poll::Ready(Ok(())) => {
                            let len = read.filled().len();
                            self.on_datagram(family, server, len);
                        }
                        // An error on a connected UDP socket: ICMP
                        // unreachable, say.
                        Poll::Ready(Err(_)) => {
                            let now = self.start.elapsed();
                            self.resolution.on_reply(family, server, Reply::Error, now);
                        }
                        Poll::Pending => {
                            drained = true;
                            break;
                        }
                    }
                    came = true;
                }
                if !drained {
                    // More is queued: come back after the others had a turn.
                    cx.waker().wake_by_ref();
                }
            }
        }
        match came {
            true => Poll::Ready(()),
            false => Poll::Pending,
        }
    }

    fn on_datagram(&mut self, family: Family, server: usize, len: usize) {
        let Some(question) = &self.questions[family.index()] else {
            return;
        };
        if !self.resolution.is_waiting(family) {
            return;
        }
        let found = &mut self.addrs[family.index()];
        match question.read_datagram(&self.buf[..len], found) {
            None => {}
            Some(Read::Reply(reply)) => {
                let now = self.start.elapsed();
                self.resolution.on_reply(family, server, reply, now);
            }
            // Over TCP to the same server, within the same try's timeout.
            Some(Read::Truncated) => {
                if let Some(addr) = self.servers.get(server) {
                    self.tcp[family.index()] =
                        Some((server, tcp::exchange(*addr, &question.bytes)));
                }
            }
        }
    }

    fn on_stream(&mut self, family: Family, server: usize, reply: io::Result<Vec<u8>>) {
        let Some(question) = &self.questions[family.index()] else {
            return;
        };
        if !self.resolution.is_waiting(family) {
            return;
        }
        // A failed TCP retry is the server's failure: the next is asked.
        let reply = match reply {
            Ok(message) => question.read_stream(&message, &mut self.addrs[family.index()]),
            Err(_) => Reply::Error,
        };
        let now = self.start.elapsed();
        self.resolution.on_reply(family, server, reply, now);
    }
}

impl PreparedLookup {
    fn from_hosts(found: &[IpAddr], ask: Use) -> PreparedLookup {
        let v6 = found.iter().filter(|ip| ip.is_ipv6() && ask.aaaa);
        let v4 = found.iter().filter(|ip| ip.is_ipv4() && ask.a);
        PreparedLookup {
            servers: Vec::new(),
            names: Vec::new(),
            policy: Policy {
                servers: 1,
                timeout: Duration::ZERO,
                attempts: 1,
                resolution_delay: Duration::ZERO,
                prefer: None,
            },
            ask,
            first: None,
            sockets: Default::default(),
            buf: Vec::new(),
            hosts: Some(v6.chain(v4).copied().collect()),
            current: None,
        }
    }

    fn asks(&self, family: Family) -> bool {
        match family {
            Family::A => self.ask.a,
            Family::Aaaa => self.ask.aaaa,
        }
    }

    fn socket(&mut self, family: Family, server: usize) -> Result<&UdpSocket, SocketError> {
        let addr = self
            .servers
            .get(server)
            .copied()
            .ok_or_else(|| SocketError::Server(io::Error::other("no such server")))?;
        let slot = &mut self.sockets[family.index()][server];
        if slot.is_none() {
            *slot = Some(connected(addr)?);
        }
        slot.as_ref()
            .ok_or_else(|| SocketError::Server(io::Error::other("no socket")))
    }

    /// Runs the lookup; `start` is the instant the DNS phase began, and
    /// `seen` is kept up to date as replies come (readable if the probe's
    /// deadline cuts the lookup off). The addresses come AAAA first.
    pub(crate) async fn run(
        &mut self,
        start: Instant,
        seen: &mut DnsReport,
    ) -> Result<Vec<IpAddr>, ProbeFailure> {
        if let Some(addrs) = self.hosts.take() {
            *seen = hosts_report(&addrs, self.ask);
            return Ok(addrs);
        }
        let mut failure = None;
        // As glibc: a name with no address of the family on an earlier
        // candidate is what is reported, though a later one says NXDOMAIN.
        let mut nodata = None;
        for i in 0..self.names.len() {
            let questions = match (i, self.first.take()) {
                (0, Some(first)) => first,
                _ => questions(&self.names[i], self.ask),
            };
            let questions = match questions {
                Ok(questions) => questions,
                Err(e) if e.class == ErrorClass::LocalResource => return Err(e),
                // A search name too long to ask: skip it, not the lookup.
                Err(e) => {
                    failure = Some(e);
                    continue;
                }
            };
            match self.resolve(questions, start, seen).await? {
                Ok(addrs) => return Ok(addrs),
                // A timeout ends the search (the budget is spent), as in
                // glibc; NXDOMAIN, NODATA and failures try the next name.
                Err(class) => {
                    let name = self.names[i].trim_end_matches('.');
                    let this = ProbeFailure::new(class, Phase::Dns, describe(name, seen));
                    if class == ErrorClass::DnsNoAddress && nodata.is_none() {
                        nodata = Some(this.clone());
                    }
                    failure = Some(this);
                    if class == ErrorClass::DnsTimeout {
                        break;
                    }
                }
            }
        }
        let failure = match (failure, nodata) {
            (Some(last), Some(nodata)) if last.class == ErrorClass::DnsNxdomain => Some(nodata),
            (last, _) => last,
        };
        Err(failure.unwrap_or_else(|| {
            ProbeFailure::new(ErrorClass::DnsError, Phase::Dns, "no name to look up")
        }))
    }

    /// One name: both families' queries under the policy.
    async fn resolve(
        &mut self,
        questions: [Option<Question>; 2],
        start: Instant,
        seen: &mut DnsReport,
    ) -> Result<Result<Vec<IpAddr>, ErrorClass>, ProbeFailure> {
        let resolution = Resolution::new(self.policy, self.ask.a, self.ask.aaaa);
        *seen = self.report(&resolution);
        self.current = Some(Current {
            resolution,
            questions,
            addrs: Default::default(),
            tcp: Default::default(),
        });
        let decision = self.drive(start, Some(seen)).await?;
        Ok(decision.map(|used| self.take_addrs(used)))
    }

    /// After the list was fixed on AAAA alone: A's addresses when its
    /// answer comes, for the connection attempts under way (RFC 8305
    /// section 3); none if it fails or was not out. Its outcome and time
    /// land in `seen` when it settles.
    pub(crate) async fn late_a(&mut self, start: Instant, seen: &mut DnsReport) -> Vec<IpAddr> {
        let rejoined = self
            .current
            .as_mut()
            .is_some_and(|current| current.resolution.rejoin());
        if !rejoined {
            return Vec::new();
        }
        match self.drive(start, None).await {
            Ok(Ok(used)) => {
                if let Some(current) = &self.current {
                    seen.a = self.report(&current.resolution).a;
                }
                self.take_addrs(used)
            }
            _ => Vec::new(),
        }
    }

    /// Whether AAAA fixed the list while A was still out.
    pub(crate) fn awaits_late_a(&self) -> bool {
        // A preference uses one family's addresses: none join late.
        self.policy.prefer.is_none()
            && self.current.as_ref().is_some_and(|c| {
                matches!(
                    c.resolution.outcome(Family::A),
                    Some((FamilyOutcome::NotAwaited, _, _))
                )
            })
    }

    fn take_addrs(&mut self, used: Use) -> Vec<IpAddr> {
        let Some(current) = &mut self.current else {
            return Vec::new();
        };
        let [a, aaaa] = &mut current.addrs;
        let mut out = if used.aaaa {
            std::mem::take(aaaa)
        } else {
            Vec::new()
        };
        if used.a {
            out.append(a);
        }
        out
    }

    /// Runs the current resolution to its decision, updating `seen` (when
    /// given) after every event.
    async fn drive(
        &mut self,
        start: Instant,
        mut seen: Option<&mut DnsReport>,
    ) -> Result<Result<Use, ErrorClass>, ProbeFailure> {
        let Some(mut current) = self.current.take() else {
            return Ok(Err(ErrorClass::DnsError));
        };
        let result = self.drive_current(&mut current, start, &mut seen).await;
        if let Some(seen) = seen {
            *seen = self.report(&current.resolution);
        }
        self.current = Some(current);
        result
    }

    async fn drive_current(
        &mut self,
        current: &mut Current,
        start: Instant,
        seen: &mut Option<&mut DnsReport>,
    ) -> Result<Result<Use, ErrorClass>, ProbeFailure> {
        let Current {
            resolution,
            questions,
            addrs,
            tcp,
        } = current;
        let mut timer = pin!(tokio::time::sleep_until(tokio::time::Instant::from_std(
            start
        )));
        loop {
            match resolution.poll(start.elapsed()) {
                Action::Send { family, server } => {
                    // A new try: a TCP retry of an earlier one is over.
                    tcp[family.index()] = None;
                    let Some(question) = &questions[family.index()] else {
                        resolution.on_reply(family, server, Reply::Error, start.elapsed());
                        continue;
                    };
                    let sent = match self.socket(family, server) {
                        Ok(socket) => socket.send(&question.bytes).await.map(|_| ()).map_err(|e| {
                            match failure::is_local_resource(&e) {
                                true => SocketError::Local(e),
                                false => SocketError::Server(e),
                            }
                        }),
                        Err(e) => Err(e),
                    };
                    match sent {
                        Ok(()) => {}
                        Err(SocketError::Server(_)) => {
                            resolution.on_reply(family, server, Reply::Error, start.elapsed());
                        }
                        Err(SocketError::Local(e)) => return Err(socket_failure(&e)),
                    }
                }
                Action::Wait { until } => {
                    // What is known so far, readable if the deadline cuts
                    // the wait off.
                    if let Some(seen) = seen.as_deref_mut() {
                        *seen = self.report(resolution);
                    }
                    if let Some(until) = until {
                        timer
                            .as_mut()
                            .reset(tokio::time::Instant::from_std(start + until));
                    }
                    let mut inbox = Inbox {
                        servers: &self.servers,
                        sockets: &self.sockets,
                        buf: &mut self.buf,
                        questions,
                        addrs,
                        tcp,
                        resolution,
                        start,
                    };
                    // Every socket is read before the policy decides: an
                    // A and an AAAA that arrived together are both in.
                    poll_fn(|cx| {
                        let timer_passed = until.is_some() && timer.as_mut().poll(cx).is_ready();
                        match inbox.poll_read(cx) {
                            Poll::Ready(()) => Poll::Ready(()),
                            Poll::Pending if timer_passed => Poll::Ready(()),
                            Poll::Pending => Poll::Pending,
                        }
                    })
                    .await;
                }
                Action::Done(decision) => return Ok(decision),
            }
        }
    }

    fn report(&self, resolution: &Resolution) -> DnsReport {
        let family = |family: Family| match resolution.outcome(family) {
            None => FamilyReport::WAITING,
            Some((FamilyOutcome::NotAsked, _, _)) => FamilyReport::NOT_ASKED,
            Some((outcome, at, server)) => FamilyReport {
                outcome,
                at: Some(at),
                server: server.and_then(|i| self.servers.get(i).copied()),
            },
        };
        DnsReport {
            a: family(Family::A),
            aaaa: family(Family::Aaaa),
            from_hosts: false,
        }
    }
}

/// Both families' queries for `name`, with fresh random ids.
fn questions(name: &str, ask: Use) -> Result<[Option<Question>; 2], ProbeFailure> {
    let mut ids = [0u8; 4];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut ids).map_err(|_| {
        ProbeFailure::new(
            ErrorClass::LocalResource,
            Phase::Dns,
            "no randomness for DNS ids",
        )
    })?;
    let bad = |detail: String| ProbeFailure::new(ErrorClass::DnsError, Phase::Dns, detail);
    let a = ask
        .a
        .then(|| Question::new(Family::A, name, u16::from_be_bytes([ids[0], ids[1]])))
        .transpose()
        .map_err(bad)?;
    let aaaa = ask
        .aaaa
        .then(|| Question::new(Family::Aaaa, name, u16::from_be_bytes([ids[2], ids[3]])))
        .transpose()
        .map_err(bad)?;
    let mut out = [None, None];
    out[Family::A.index()] = a;
    out[Family::Aaaa.index()] = aaaa;
    Ok(out)
}

/// Why a socket to a server could not be had: the agent's own state, or
/// the server's address (no route, family unsupported, not connectable).
#[derive(Debug, thiserror::Error)]
enum SocketError {
    /// Opening or setting up the socket failed: the probe cannot go on.
    #[error("{0}")]
    Local(io::Error),
    /// This server cannot be reached from here: the next one is asked.
    #[error("{0}")]
    Server(io::Error),
}

/// A UDP socket connected to `server`: the kernel drops datagrams from
/// anyone else and reports ICMP unreachable as an error.
fn connected(server: SocketAddr) -> Result<UdpSocket, SocketError> {
    let local = match server {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    // No IPv6 at all (EAFNOSUPPORT) is about the server's family.
    let socket = std::net::UdpSocket::bind(local).map_err(|e| match e.raw_os_error() {
        Some(97) => SocketError::Server(e),
        _ => SocketError::Local(e),
    })?;
    socket.connect(server).map_err(SocketError::Server)?;
    socket.set_nonblocking(true).map_err(SocketError::Local)?;
    UdpSocket::from_std(socket).map_err(SocketError::Local)
}

fn socket_failure(e: &io::Error) -> ProbeFailure {
    let class = if failure::is_local_resource(e) {
        ErrorClass::LocalResource
    } else {
        ErrorClass::DnsError
    };
    ProbeFailure::new(class, Phase::Dns, format!("DNS socket: {e}"))
}

fn hosts_report(addrs: &[IpAddr], ask: Use) -> DnsReport {
    let family = |asked: bool, n: usize| {
        if !asked {
            return FamilyReport::NOT_ASKED;
        }
        FamilyReport {
            outcome: match u16::try_from(n).unwrap_or(u16::MAX) {
                0 => FamilyOutcome::NoData,
                addresses => FamilyOutcome::Answered { addresses },
            },
            at: Some(Duration::ZERO),
            server: None,
        }
    };
    DnsReport {
        a: family(ask.a, addrs.iter().filter(|ip| ip.is_ipv4()).count()),
        aaaa: family(ask.aaaa, addrs.iter().filter(|ip| ip.is_ipv6()).count()),
        from_hosts: true,
    }
}

/// `name: AAAA refused, A timeout` for a failure's detail.
fn describe(name: &str, seen: &DnsReport) -> String {
    let families: Vec<String> = Family::ALL
        .iter()
        .map(|f| format!("{} {}", f.name(), seen.family(*f).outcome))
        .collect();
    format!("{name}: {}", families.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_unreadable_resolver_files_are_glibcs_defaults() {
        let err = |kind| Err(io::Error::from(kind));
        assert_eq!(
            file_text("/etc/hosts", Ok("x".into())),
            Ok(Some("x".into()))
        );
        assert_eq!(
            file_text("/etc/hosts", err(io::ErrorKind::NotFound)),
            Ok(None)
        );
        assert!(matches!(
            file_text("/etc/hosts", err(io::ErrorKind::PermissionDenied)),
            Err(Unreadable::PermissionDenied(_))
        ));
        assert!(matches!(
            file_text("/etc/hosts", err(io::ErrorKind::InvalidData)),
            Err(Unreadable::Other(_))
        ));
    }
}
