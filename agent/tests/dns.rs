//! DNS against the testkit server, as RFC 8305 section 3 wants it: every
//! behaviour of A against every behaviour of AAAA, each family answering
//! first in turn, asserting the status, the class, the dn bound and what
//! each family came to; and resolv.conf with several servers, the search
//! list and /etc/hosts through `DnsConfig::from_text` (the system path's
//! own parser).

use std::net::IpAddr;
use std::time::Duration;

use sonde::probe::{
    DnsConfig, DnsReport, FamilyOutcome, ProbeReport, ProbeSpec, Prober, TlsOptions, tls,
};
use testkit::dns::{DnsBehaviour, DnsServer};
use testkit::http::HttpTarget;
use url::Url;
use wire::{ErrorClass, Status};

const HOST: &str = "target.test";
/// The resolution delay of these tests: large against the answer delays,
/// so an AAAA that answers is never late on a busy machine.
const RESOLUTION_DELAY: Duration = Duration::from_millis(150);
/// The later family's answer delay.
const LATER: Duration = Duration::from_millis(20);
/// The probe's deadline: what a silent family costs when nothing answered.
const DEADLINE: Duration = Duration::from_millis(400);
/// Slack on top of the expected dn: generous against loopback round trips,
/// far below what a retry on the same server or a timeout would add.
const SLACK: Duration = Duration::from_millis(250);

const BEHAVIOURS: [DnsBehaviour; 6] = [
    DnsBehaviour::Answer,
    DnsBehaviour::NoData,
    DnsBehaviour::NxDomain,
    DnsBehaviour::Refused,
    DnsBehaviour::ServFail,
    DnsBehaviour::Silent,
];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

fn spec(port: u16) -> ProbeSpec {
    // Plain http: the lazy configuration never reads a trust store.
    let tls = tls::probe_tls(&TlsOptions::default()).unwrap_or_else(|e| panic!("tls config: {e}"));
    let url = Url::parse(&format!("http://{HOST}:{port}/")).unwrap_or_else(|e| panic!("{e}"));
    let mut spec = ProbeSpec::new(url, tls);
    spec.timeout = DEADLINE;
    spec.resolution_delay = RESOLUTION_DELAY;
    spec
}

fn v4() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

fn v6() -> IpAddr {
    IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1])
}

fn reply(b: DnsBehaviour) -> Option<FamilyOutcome> {
    match b {
        DnsBehaviour::Answer => Some(FamilyOutcome::Answered { addresses: 1 }),
        DnsBehaviour::NoData => Some(FamilyOutcome::NoData),
        DnsBehaviour::NxDomain => Some(FamilyOutcome::NxDomain),
        DnsBehaviour::Refused => Some(FamilyOutcome::Refused),
        DnsBehaviour::ServFail => Some(FamilyOutcome::ServFail),
        DnsBehaviour::Silent => None,
        DnsBehaviour::Truncated | DnsBehaviour::CutShort => {
            unreachable!("not in the matrix")
        }
    }
}

/// The class when no family has an address: NXDOMAIN, then silence, then
/// SERVFAIL/REFUSED, then NODATA (README: DNS).
fn expected_class(a: DnsBehaviour, aaaa: DnsBehaviour) -> ErrorClass {
    let any = |b: DnsBehaviour| a == b || aaaa == b;
    if any(DnsBehaviour::NxDomain) {
        ErrorClass::DnsNxdomain
    } else if any(DnsBehaviour::Silent) {
        ErrorClass::DnsTimeout
    } else if any(DnsBehaviour::Refused) || any(DnsBehaviour::ServFail) {
        ErrorClass::DnsServfail
    } else {
        ErrorClass::DnsNoAddress
    }
}

/// One case: A behaves `a` after `a_delay`, AAAA `aaaa` after `aaaa_delay`.
fn case(
    target: &HttpTarget,
    a: DnsBehaviour,
    a_delay: Duration,
    aaaa: DnsBehaviour,
    aaaa_delay: Duration,
) {
    let dns = DnsServer::builder()
        .name(HOST, &[v4(), v6()])
        .a(a)
        .aaaa(aaaa)
        .a_delay(a_delay)
        .aaaa_delay(aaaa_delay)
        .start();
    let mut s = spec(target.port());
    s.dns_server = Some(dns.addr());
    let r = runtime().block_on(Prober::new().probe(&s));
    let what = format!("A {a:?} after {a_delay:?}, AAAA {aaaa:?} after {aaaa_delay:?}: {r:#?}");
    let seen: DnsReport = r.dns.unwrap_or_else(|| panic!("no DNS report: {what}"));
    let dn = r.timings.dns.unwrap_or_else(|| panic!("no dn: {what}"));
    let a_positive = a == DnsBehaviour::Answer;
    let aaaa_positive = aaaa == DnsBehaviour::Answer;

    // Each family's outcome.
    let a_seen = seen.a.outcome;
    let aaaa_seen = seen.aaaa.outcome;
    if aaaa_positive && (a == DnsBehaviour::Silent || a_delay > aaaa_delay) {
        // AAAA fixed the list first; A may still land while connecting.
        assert!(
            a_seen == FamilyOutcome::NotAwaited || Some(a_seen) == reply(a),
            "A: {what}"
        );
    } else {
        // A silent family after the other's NXDOMAIN is given up on after
        // the resolution delay.
        let silent = match aaaa {
            DnsBehaviour::NxDomain => FamilyOutcome::Late,
            _ => FamilyOutcome::Timeout,
        };
        assert_eq!(Some(a_seen), reply(a).or(Some(silent)), "A: {what}");
    }
    let aaaa_expected = match (reply(aaaa), a_positive) {
        (None, true) => FamilyOutcome::Late,
        (None, false) if a == DnsBehaviour::NxDomain => FamilyOutcome::Late,
        (None, false) => FamilyOutcome::Timeout,
        (Some(outcome), _) => outcome,
    };
    assert_eq!(aaaa_seen, aaaa_expected, "AAAA: {what}");
    assert_eq!(dns.a_queries(), 1, "A asked once: {what}");
    assert_eq!(
        dns.aaaa_queries(),
        1,
        "AAAA asked once, never again on the same server: {what}"
    );

    // Status, class, address family, dn.
    let last = a_delay.max(aaaa_delay);
    if a_positive || aaaa_positive {
        assert_eq!(r.status, Status::Up, "{what}");
        let remote = r.remote.unwrap_or_else(|| panic!("no address: {what}"));
        assert_eq!(remote.is_ipv6(), aaaa_positive, "{what}");
        let (low, high) = if aaaa_positive {
            // At once on AAAA: no wait for A, however A behaves.
            (aaaa_delay, aaaa_delay + SLACK)
        } else if aaaa == DnsBehaviour::Silent {
            // A plus the resolution delay, not the 5 s timeout.
            (
                a_delay + RESOLUTION_DELAY,
                a_delay + RESOLUTION_DELAY + SLACK,
            )
        } else {
            // A negative AAAA ends the wait when it comes.
            (last, last + SLACK)
        };
        assert!(
            dn >= low && dn < high,
            "dn {dn:?} not in [{low:?}, {high:?}): {what}"
        );
    } else {
        assert_eq!(r.status, Status::Down, "{what}");
        assert_eq!(
            r.failure.as_ref().map(|f| f.class),
            Some(expected_class(a, aaaa)),
            "{what}"
        );
        assert_eq!(r.timings.connect, None, "{what}");
        let nxdomain_at = match (a, aaaa) {
            (DnsBehaviour::NxDomain, _) => Some(a_delay),
            (_, DnsBehaviour::NxDomain) => Some(aaaa_delay),
            _ => None,
        };
        if let Some(nx) = nxdomain_at
            && (a == DnsBehaviour::Silent || aaaa == DnsBehaviour::Silent)
        {
            // NXDOMAIN ends the name after the resolution delay, not at
            // the deadline.
            let low = nx + RESOLUTION_DELAY;
            assert!(dn >= low && dn < low + SLACK, "dn {dn:?}: {what}");
        } else if a == DnsBehaviour::Silent || aaaa == DnsBehaviour::Silent {
            assert!(dn >= DEADLINE - Duration::from_millis(10), "{what}");
        } else {
            assert!(dn >= last && dn < last + SLACK, "{what}");
        }
    }
}

/// Every AAAA behaviour against A behaving `a`, with A first and then
/// AAAA first.
fn row(a: DnsBehaviour) {
    if !testkit::ipv6_available() {
        eprintln!("skipped: no IPv6 loopback");
        return;
    }
    let target = HttpTarget::builder().ipv6(true).start();
    for aaaa in BEHAVIOURS {
        case(&target, a, Duration::ZERO, aaaa, LATER);
        case(&target, a, LATER, aaaa, Duration::ZERO);
    }
}

#[test]
fn matrix_a_answers() {
    row(DnsBehaviour::Answer);
}

#[test]
fn matrix_a_nodata() {
    row(DnsBehaviour::NoData);
}

#[test]
fn matrix_a_nxdomain() {
    row(DnsBehaviour::NxDomain);
}

#[test]
fn matrix_a_refused() {
    row(DnsBehaviour::Refused);
}

#[test]
fn matrix_a_servfail() {
    row(DnsBehaviour::ServFail);
}

#[test]
fn matrix_a_silent() {
    row(DnsBehaviour::Silent);
}

fn probe_with(resolv_conf: &str, hosts: &str, spec: &ProbeSpec) -> ProbeReport {
    let prober = Prober::with_dns(DnsConfig::from_text(resolv_conf, hosts));
    runtime().block_on(prober.probe(spec))
}

fn nameserver(dns: &DnsServer) -> String {
    format!("nameserver [{}]:{}\n", dns.addr().ip(), dns.addr().port())
}

#[test]
fn a_refusing_first_server_hands_over_to_the_second_at_once() {
    let target = HttpTarget::plain();
    let first = DnsServer::builder()
        .behaviour(DnsBehaviour::Refused)
        .start();
    let second = DnsServer::builder().name(HOST, &[v4()]).start();
    // A 1 s timeout: moving on after a timeout instead would show.
    let conf = format!(
        "{}{}options timeout:1 attempts:2\n",
        nameserver(&first),
        nameserver(&second)
    );
    let mut s = spec(target.port());
    s.timeout = Duration::from_secs(5);
    let r = probe_with(&conf, "", &s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    let dn = r.timings.dns.unwrap_or_default();
    assert!(
        dn < Duration::from_millis(200),
        "about one round trip per server: {r:#?}"
    );
    assert_eq!(
        (first.a_queries(), first.aaaa_queries()),
        (1, 1),
        "not asked again"
    );
    assert_eq!((second.a_queries(), second.aaaa_queries()), (1, 1));
    let seen = r.dns.unwrap_or_else(|| panic!("{r:#?}"));
    assert_eq!(seen.a.outcome, FamilyOutcome::Answered { addresses: 1 });
    assert_eq!(seen.a.server, Some(second.addr()));
    assert_eq!(seen.aaaa.outcome, FamilyOutcome::NoData);
}

#[test]
fn a_silent_first_server_costs_resolv_confs_timeout() {
    let target = HttpTarget::plain();
    let first = DnsServer::builder().behaviour(DnsBehaviour::Silent).start();
    let second = DnsServer::builder().name(HOST, &[v4()]).start();
    let conf = format!(
        "{}{}options timeout:1\n",
        nameserver(&first),
        nameserver(&second)
    );
    let mut s = spec(target.port());
    s.timeout = Duration::from_secs(5);
    let r = probe_with(&conf, "", &s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    let dn = r.timings.dns.unwrap_or_default();
    let timeout = Duration::from_secs(1);
    assert!(dn >= timeout && dn < timeout + SLACK * 2, "{r:#?}");
    assert_eq!(second.a_queries(), 1);
}

#[test]
fn the_search_list_and_ndots_are_glibcs() {
    let target = HttpTarget::plain();
    let dns = DnsServer::builder()
        .name("target.corp.test", &[v4()])
        .start();
    let conf = format!("{}search corp.test\n", nameserver(&dns));
    let mut s = spec(target.port());
    s.url =
        Url::parse(&format!("http://target:{}/", target.port())).unwrap_or_else(|e| panic!("{e}"));
    let r = probe_with(&conf, "", &s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    // "target" has fewer dots than ndots:1: the search domain first.
    assert_eq!(dns.a_queries(), 1, "{r:#?}");
}

#[test]
fn an_nxdomain_tries_the_next_search_candidate() {
    let target = HttpTarget::plain();
    let dns = DnsServer::builder().name(HOST, &[v4()]).start();
    let conf = format!("{}search corp.test\noptions ndots:2\n", nameserver(&dns));
    let r = probe_with(&conf, "", &spec(target.port()));
    assert_eq!(r.status, Status::Up, "{r:#?}");
    // target.test.corp.test (NXDOMAIN), then target.test.
    assert_eq!(dns.a_queries(), 2, "{r:#?}");
}

#[test]
fn etc_hosts_answers_without_a_query() {
    let target = HttpTarget::plain();
    let dns = DnsServer::builder().behaviour(DnsBehaviour::Silent).start();
    let r = probe_with(
        &nameserver(&dns),
        &format!("127.0.0.1 {HOST}\n"),
        &spec(target.port()),
    );
    assert_eq!(r.status, Status::Up, "{r:#?}");
    let seen = r.dns.unwrap_or_else(|| panic!("{r:#?}"));
    assert!(seen.from_hosts, "{r:#?}");
    assert_eq!(seen.a.outcome, FamilyOutcome::Answered { addresses: 1 });
    assert_eq!(seen.aaaa.outcome, FamilyOutcome::NoData);
    assert_eq!(dns.queries(), 0);
}

#[test]
fn ip_version_asks_only_its_family() {
    let target = HttpTarget::plain();
    let dns = DnsServer::builder()
        .name(HOST, &[v4(), v6()])
        .aaaa(DnsBehaviour::Silent)
        .start();
    let mut s = spec(target.port());
    s.dns_server = Some(dns.addr());
    s.ip_version = sonde::probe::IpVersion::V4;
    let r = runtime().block_on(Prober::new().probe(&s));
    assert_eq!(r.status, Status::Up, "{r:#?}");
    let seen = r.dns.unwrap_or_else(|| panic!("{r:#?}"));
    assert_eq!(seen.aaaa.outcome, FamilyOutcome::NotAsked);
    assert_eq!(dns.aaaa_queries(), 0);
    assert!(
        r.timings.dns.is_some_and(|d| d < RESOLUTION_DELAY),
        "no resolution delay: {r:#?}"
    );
}

#[test]
fn a_first_server_that_cannot_be_reached_from_here_is_skipped() {
    let target = HttpTarget::plain();
    let second = DnsServer::builder().name(HOST, &[v4()]).start();
    // connect() to the broadcast address fails (EACCES without
    // SO_BROADCAST) and to a link-local address without a zone (EINVAL):
    // what an unroutable IPv6 server does on a host without IPv6. Nothing
    // leaves the host.
    for unreachable in ["255.255.255.255", "fe80::1"] {
        let conf = format!(
            "nameserver {unreachable}\n{}options timeout:1\n",
            nameserver(&second)
        );
        let mut s = spec(target.port());
        s.timeout = Duration::from_secs(5);
        let r = probe_with(&conf, "", &s);
        assert_eq!(r.status, Status::Up, "{unreachable}: {r:#?}");
        let seen = r.dns.unwrap_or_else(|| panic!("{r:#?}"));
        assert_eq!(seen.a.server, Some(second.addr()), "{r:#?}");
        // Moved on at once, not after the 1 s timeout.
        assert!(
            r.timings
                .dns
                .is_some_and(|d| d < Duration::from_millis(500)),
            "{r:#?}"
        );
    }
}

#[test]
fn a_truncated_reply_is_asked_again_over_tcp() {
    let target = HttpTarget::plain();
    // TC=1 without records (BIND, Unbound: an RRset that does not fit),
    // and a datagram cut in the middle of a record.
    for truncation in [DnsBehaviour::Truncated, DnsBehaviour::CutShort] {
        let dns = DnsServer::builder()
            .name(HOST, &[v4()])
            .a(truncation)
            .aaaa(DnsBehaviour::NoData)
            .start();
        let mut s = spec(target.port());
        s.dns_server = Some(dns.addr());
        let r = runtime().block_on(Prober::new().probe(&s));
        assert_eq!(r.status, Status::Up, "{truncation:?}: {r:#?}");
        let seen = r.dns.unwrap_or_else(|| panic!("{r:#?}"));
        assert_eq!(
            seen.a.outcome,
            FamilyOutcome::Answered { addresses: 1 },
            "{truncation:?}: {r:#?}"
        );
        assert_eq!(dns.tcp_queries(), 1, "{truncation:?}: A once over TCP");
        assert!(
            r.timings.dns.is_some_and(|d| d < SLACK),
            "no timeout: {r:#?}"
        );
    }
}

#[test]
fn a_failed_tcp_retry_moves_on_to_the_next_server() {
    let target = HttpTarget::plain();
    let first = DnsServer::builder()
        .name(HOST, &[v4()])
        .behaviour(DnsBehaviour::Truncated)
        .no_tcp()
        .start();
    let second = DnsServer::builder().name(HOST, &[v4()]).start();
    let conf = format!(
        "{}{}options timeout:1\n",
        nameserver(&first),
        nameserver(&second)
    );
    let mut s = spec(target.port());
    s.timeout = Duration::from_secs(5);
    let r = probe_with(&conf, "", &s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    let seen = r.dns.unwrap_or_else(|| panic!("{r:#?}"));
    assert_eq!(seen.a.server, Some(second.addr()), "{r:#?}");
    assert!(
        r.timings
            .dns
            .is_some_and(|d| d < Duration::from_millis(500)),
        "at once, not after the 1 s timeout: {r:#?}"
    );
}

#[test]
fn an_nxdomain_ends_a_search_candidate_without_waiting_for_the_other_family() {
    let target = HttpTarget::plain();
    // AAAA dropped for every name; A says NXDOMAIN for target.test.corp.test.
    let dns = DnsServer::builder()
        .name(HOST, &[v4()])
        .aaaa(DnsBehaviour::Silent)
        .start();
    let conf = format!(
        "{}search corp.test\noptions ndots:5 timeout:1\n",
        nameserver(&dns)
    );
    let mut s = spec(target.port());
    s.timeout = Duration::from_secs(5);
    let r = probe_with(&conf, "", &s);
    assert_eq!(r.status, Status::Up, "{r:#?}");
    assert_eq!(dns.a_queries(), 2, "{r:#?}");
    // The real name's A plus the resolution delay, not AAAA's 1 s timeout
    // on the first candidate.
    assert!(
        r.timings.dns.is_some_and(|d| d < RESOLUTION_DELAY + SLACK),
        "{r:#?}"
    );
}

#[test]
fn answers_that_arrived_together_are_both_used() {
    if !testkit::ipv6_available() {
        eprintln!("skipped: no IPv6 loopback");
        return;
    }
    let target = HttpTarget::builder().ipv6(true).start();
    let dns = DnsServer::builder()
        .name(HOST, &[v4(), v6()])
        .answer_delay(Duration::from_millis(30))
        .start();
    let mut s = spec(target.port());
    s.dns_server = Some(dns.addr());
    s.timeout = Duration::from_secs(5);
    let prober = Prober::new();
    // The queries leave on the probe's first poll; then the thread is held
    // while both answers land, so the lookup finds them ready together.
    let hold = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        std::thread::sleep(Duration::from_millis(200));
    };
    let (r, ()) = runtime().block_on(async { tokio::join!(prober.probe(&s), hold) });
    assert_eq!(r.status, Status::Up, "{r:#?}");
    let seen = r.dns.unwrap_or_else(|| panic!("{r:#?}"));
    assert_eq!(
        seen.a.outcome,
        FamilyOutcome::Answered { addresses: 1 },
        "A had arrived: not 'not awaited': {r:#?}"
    );
    assert_eq!(seen.aaaa.outcome, FamilyOutcome::Answered { addresses: 1 });
    // A was in the list when it was fixed, not joined while connecting.
    let dn = r.timings.dns.unwrap_or_default();
    assert!(
        seen.a.at.is_some_and(|at| at <= dn),
        "A read after the list was fixed: {r:#?}"
    );
}

/// UDP sockets of this host connected to `server`, from /proc/net/udp;
/// `None` where that file is not there.
fn udp_sockets_to(server: std::net::SocketAddr) -> Option<usize> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let std::net::IpAddr::V4(ip) = server.ip() else {
        return None;
    };
    // rem_address as the kernel prints it: the address in host order hex.
    let remote = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(ip.octets()),
        server.port()
    );
    Some(
        table
            .lines()
            .filter(|l| l.split_whitespace().nth(2) == Some(remote.as_str()))
            .count(),
    )
}

#[test]
fn the_lookups_sockets_are_closed_once_connected() {
    let target = HttpTarget::builder()
        .first_byte_delay(Duration::from_millis(400))
        .start();
    let dns = DnsServer::builder().name(HOST, &[v4()]).start();
    let mut s = spec(target.port());
    s.dns_server = Some(dns.addr());
    s.timeout = Duration::from_secs(5);
    let prober = Prober::new();
    let check = async {
        // Well inside the target's first-byte delay.
        tokio::time::sleep(Duration::from_millis(200)).await;
        udp_sockets_to(dns.addr())
    };
    let (r, open) = runtime().block_on(async { tokio::join!(prober.probe(&s), check) });
    assert_eq!(r.status, Status::Up, "{r:#?}");
    let Some(open) = open else {
        eprintln!("skipped: no /proc/net/udp");
        return;
    };
    assert_eq!(open, 0, "DNS sockets held while waiting for the response");
}

#[test]
fn nodata_on_an_earlier_candidate_is_what_is_reported() {
    let target = HttpTarget::plain();
    // target.corp.test has no A (NODATA); target does not exist.
    let dns = DnsServer::builder()
        .name("target.corp.test", &[v6()])
        .start();
    let conf = format!("{}search corp.test\n", nameserver(&dns));
    let mut s = spec(target.port());
    s.url =
        Url::parse(&format!("http://target:{}/", target.port())).unwrap_or_else(|e| panic!("{e}"));
    s.ip_version = sonde::probe::IpVersion::V4;
    let r = probe_with(&conf, "", &s);
    assert_eq!(dns.a_queries(), 2, "{r:#?}");
    assert_eq!(
        r.failure.as_ref().map(|f| f.class),
        Some(ErrorClass::DnsNoAddress),
        "as glibc: NO_DATA, not NXDOMAIN: {r:#?}"
    );
}

#[test]
fn a_search_name_too_long_to_ask_is_skipped() {
    let target = HttpTarget::plain();
    let dns = DnsServer::builder().name(HOST, &[v4()]).start();
    // target.test.<250 bytes> is over DNS's 255: skipped, then target.test.
    let label = "d".repeat(62);
    let long = [label.as_str(); 4].join(".");
    let conf = format!("{}search {long}\noptions ndots:5\n", nameserver(&dns));
    let r = probe_with(&conf, "", &spec(target.port()));
    assert_eq!(r.status, Status::Up, "{r:#?}");
    assert_eq!(dns.a_queries(), 1, "{r:#?}");
}
