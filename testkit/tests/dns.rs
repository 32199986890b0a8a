//! The DNS server answers real hickory-proto client messages over UDP, with
//! its delays, failure rcodes, silence and per-type counters.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use testkit::dns::{DnsBehaviour, DnsServer};

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind client");
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    s
}

fn send(s: &UdpSocket, server: SocketAddr, name: &str, qtype: RecordType) -> u16 {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    s.send_to(&msg.to_vec().expect("encode"), server)
        .expect("send");
    msg.metadata.id
}

fn recv(s: &UdpSocket) -> std::io::Result<Message> {
    let mut buf = [0u8; 4096];
    let (n, _) = s.recv_from(&mut buf)?;
    Ok(Message::from_vec(&buf[..n]).expect("decode"))
}

fn ask(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let s = socket();
    let id = send(&s, server, name, qtype);
    let reply = recv(&s).expect("an answer");
    assert_eq!(reply.metadata.id, id);
    reply
}

fn addrs(reply: &Message) -> Vec<IpAddr> {
    reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

fn server() -> DnsServer {
    DnsServer::builder()
        .name(
            "Target.Test.",
            &["127.0.0.1".parse().expect("v4"), "::1".parse().expect("v6")],
        )
        .name("v4only.test", &["127.0.0.2".parse().expect("v4")])
        .start()
}

#[test]
fn answers_a_and_aaaa_and_nxdomain() {
    let dns = server();
    let a = ask(dns.addr(), "target.test.", RecordType::A);
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs(&a), vec!["127.0.0.1".parse::<IpAddr>().expect("ip")]);
    assert_eq!(a.answers[0].ttl, 0);
    let aaaa = ask(dns.addr(), "TARGET.test.", RecordType::AAAA);
    assert_eq!(addrs(&aaaa), vec!["::1".parse::<IpAddr>().expect("ip")]);
    let nodata = ask(dns.addr(), "v4only.test.", RecordType::AAAA);
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    let nx = ask(dns.addr(), "missing.test.", RecordType::A);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);

    // Every query counts: nothing is cached anywhere.
    ask(dns.addr(), "target.test.", RecordType::A);
    assert_eq!((dns.a_queries(), dns.aaaa_queries()), (3, 2));
    assert_eq!(dns.queries(), 5);
}

#[test]
fn failure_behaviours_answer_their_rcode() {
    for (behaviour, code) in [
        (DnsBehaviour::NxDomain, ResponseCode::NXDomain),
        (DnsBehaviour::ServFail, ResponseCode::ServFail),
        (DnsBehaviour::Refused, ResponseCode::Refused),
    ] {
        let dns = DnsServer::builder()
            .name("target.test", &["127.0.0.1".parse().expect("ip")])
            .behaviour(behaviour)
            .start();
        let reply = ask(dns.addr(), "target.test.", RecordType::A);
        assert_eq!(reply.metadata.response_code, code, "{behaviour:?}");
        assert!(reply.answers.is_empty());
    }
}

#[test]
fn silent_never_answers_but_counts() {
    let dns = DnsServer::builder().behaviour(DnsBehaviour::Silent).start();
    let s = socket();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    send(&s, dns.addr(), "target.test.", RecordType::AAAA);
    assert!(recv(&s).is_err(), "a silent server answered");
    assert_eq!(dns.aaaa_queries(), 1);
}

#[test]
fn delays_apply_per_query_without_serialising_others() {
    let delay = Duration::from_millis(300);
    let dns = DnsServer::builder()
        .name(
            "target.test",
            &["127.0.0.1".parse().expect("ip"), "::1".parse().expect("ip")],
        )
        .a_delay(delay)
        .start();
    let s = socket();
    let start = Instant::now();
    let a_id = send(&s, dns.addr(), "target.test.", RecordType::A);
    let aaaa_id = send(&s, dns.addr(), "target.test.", RecordType::AAAA);
    let first = recv(&s).expect("first answer");
    assert_eq!(
        first.metadata.id, aaaa_id,
        "the undelayed AAAA answer comes first"
    );
    assert!(start.elapsed() < delay, "AAAA waited for the delayed A");
    let second = recv(&s).expect("second answer");
    assert_eq!(second.metadata.id, a_id);
    assert!(start.elapsed() >= delay);

    // answer_delay: two delayed queries in flight overlap.
    let both = DnsServer::builder()
        .name("target.test", &["127.0.0.1".parse().expect("ip")])
        .answer_delay(delay)
        .start();
    let start = Instant::now();
    send(&s, both.addr(), "target.test.", RecordType::A);
    send(&s, both.addr(), "target.test.", RecordType::AAAA);
    recv(&s).expect("answer");
    recv(&s).expect("answer");
    let took = start.elapsed();
    assert!(took >= delay, "{took:?}");
    assert!(took < 2 * delay, "answers were serialised: {took:?}");
}
