//! The gateway sink over HTTPS, with real processes: `sonde gateway` with
//! `[tls]` (a leaf from a private test CA), `sonde run` whose
//! `[[sinks.gateway]]` names that CA in `ca_file`, and an SSE reader over
//! TLS.
//!
//! - With the CA: every result reaches the reader exactly once, over one
//!   connection; the gateway's port speaks only TLS, and selects ALPN `h2`
//!   (the sink refuses a gateway that does not, so delivery means TLS+h2).
//! - Without it: the sink logs the untrusted certificate, delivers
//!   nothing and keeps every result in its spool; restarted with the CA,
//!   the spooled results arrive, each once.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::util::http::{self, metric, scrape};
use crate::util::process::{Process, free_addr, wait_until};
use crate::util::sse::{Control, SseReader};
use rustls::pki_types::ServerName;
use testkit::http::HttpTarget;
use testkit::pki::Ca;
use wire::ReadItem;

const AGENT_TOKEN: &str = "agent-token-tls";
const READER_TOKEN: &str = "reader-token-tls";
const AGENT: &str = "tls-agent";

/// A `sonde gateway` serving HTTPS on loopback with a leaf for 127.0.0.1
/// issued by `ca`.
struct TlsGateway {
    addr: SocketAddr,
    data: PathBuf,
    process: Process,
}

impl TlsGateway {
    fn start(dir: &Path, ca: &Ca) -> TlsGateway {
        let addr = free_addr();
        let (cert, key) = ca.leaf(&["127.0.0.1"]).write_pem(dir, "gateway");
        let reader_token = dir.join("reader.token");
        std::fs::write(&reader_token, READER_TOKEN).unwrap_or_else(|e| panic!("{e}"));
        let data = dir.join("data");
        let config = dir.join("gateway.toml");
        let text = format!(
            "listen = \"{addr}\"\ndata_dir = \"{}\"\n\n\
             [tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n\n\
             [[agent]]\nid = \"{AGENT}\"\ntoken = {{ env = \"TLS_AGENT_TOKEN\" }}\n\n\
             [[reader]]\nname = \"dash\"\ntoken = {{ file = \"{}\" }}\n",
            data.display(),
            cert.display(),
            key.display(),
            reader_token.display()
        );
        std::fs::write(&config, text).unwrap_or_else(|e| panic!("{e}"));
        let shown = config.display().to_string();
        let mut process = Process::start(
            &["gateway", "--config", &shown],
            &[("TLS_AGENT_TOKEN", AGENT_TOKEN)],
        );
        process.wait_listening(addr);
        TlsGateway {
            addr,
            data,
            process,
        }
    }

    /// `sonde_gateway_records_accepted_total`, read over HTTPS.
    fn records_accepted(&self, ca: &Ca) -> f64 {
        let tls = ca.client_config(&[b"http/1.1"]);
        let body = https_get(self.addr, "/metrics", tls);
        metric(&body, "sonde_gateway_records_accepted_total", "")
    }
}

/// One HTTP/1.0 GET over TLS (certificate checked against `addr`'s IP);
/// the whole answer, status line included. Empty if anything failed.
fn https_get(addr: SocketAddr, path: &str, tls: Arc<rustls::ClientConfig>) -> String {
    let Ok(tcp) = TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let name = ServerName::IpAddress(addr.ip().into());
    let Ok(conn) = rustls::ClientConnection::new(tls, name) else {
        return String::new();
    };
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    if write!(stream, "GET {path} HTTP/1.0\r\nhost: {addr}\r\n\r\n").is_err() {
        return String::new();
    }
    let mut out = Vec::new();
    // A peer closing without close_notify ends the read with an error
    // after the data; what arrived is kept.
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A gateway-sink metric of the agent (`sink="gateway"`), from its
/// cleartext loopback `/metrics`.
fn sink_metric(agent_metrics: SocketAddr, name: &str) -> f64 {
    scrape(agent_metrics, name, "sink=\"gateway\"")
}

/// Writes sonde.toml in `state`: one check a second against `target`,
/// the file sink (the agent's own record of what it produced), metrics
/// on `metrics`, and the gateway sink to `gateway` over https, trusting
/// `ca_file` when given.
fn agent_config(
    state: &Path,
    target: &HttpTarget,
    metrics: SocketAddr,
    gateway: SocketAddr,
    ca_file: Option<&Path>,
) -> PathBuf {
    std::fs::create_dir_all(state).unwrap_or_else(|e| panic!("{e}"));
    let ca = ca_file
        .map(|p| format!("ca_file = \"{}\"\n", p.display()))
        .unwrap_or_default();
    let text = format!(
        "[agent]\nid = \"{AGENT}\"\nstate_dir = \"{}\"\nmetrics_listen = \"{metrics}\"\n\
         [defaults]\ninterval = \"1s\"\ntimeout = \"900ms\"\n\
         [sinks.file]\nenabled = true\nfsync = \"always\"\n\
         [[sinks.gateway]]\nurl = \"https://{gateway}\"\ntoken = {{ env = \"TLS_GATEWAY_TOKEN\" }}\n{ca}\
         [[check]]\nname = \"api\"\nurl = \"{}\"\n",
        state.display(),
        target.url("/api")
    );
    let path = state.join("sonde.toml");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn start_agent(config: &Path) -> Process {
    let shown = config.display().to_string();
    Process::start(
        &["run", "--config", &shown],
        &[("TLS_GATEWAY_TOKEN", AGENT_TOKEN), ("RUST_LOG", "info")],
    )
}

/// A record's identity for these tests: (check, t, rt).
type Key = (String, u64, u64);

/// Every record in the wire files under `dir`, in file order.
fn wire_records(dir: &Path) -> Vec<Key> {
    let mut out = Vec::new();
    for (_, item) in crate::util::wire_files::items(dir) {
        if let ReadItem::Frame { frame, .. } = item {
            out.extend(
                frame
                    .records()
                    .map(|(c, r)| (c.to_owned(), r.t_ms, r.rt_ms)),
            );
        }
    }
    out
}

fn reader_keys(reader: &SseReader) -> Vec<Key> {
    reader
        .records()
        .into_iter()
        .filter(|r| r.agent == AGENT)
        .map(|r| (r.check, r.t, r.rt))
        .collect()
}

/// Waits for every result the agent wrote under `state` to reach the
/// reader, then asserts it got each exactly once, in order per check, and
/// that the gateway counted each once. Returns what was produced.
#[track_caller]
fn reader_and_gateway_have_what_was_produced(
    reader: &SseReader,
    gw: &TlsGateway,
    ca: &Ca,
    state: &Path,
) -> Vec<Key> {
    let produced = wire_records(&state.join("records"));
    wait_until(
        Duration::from_secs(10),
        "every result at the reader",
        || reader_keys(reader).len() >= produced.len(),
    );
    exactly_what_was_produced(&reader_keys(reader), &produced, "reader");
    assert_eq!(gw.records_accepted(ca), produced.len() as f64);
    produced
}

/// Asserts that `seen` holds each of `produced` exactly once, in order
/// per check.
#[track_caller]
fn exactly_what_was_produced(seen: &[Key], produced: &[Key], what: &str) {
    let mut once = HashSet::new();
    for k in seen {
        assert!(once.insert(k.clone()), "{what}: {k:?} twice");
    }
    let per_check = |keys: &[Key]| {
        let mut map: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
        for (check, t, rt) in keys {
            map.entry(check.clone()).or_default().push((*t, *rt));
        }
        map
    };
    let seen = per_check(seen);
    for (check, list) in &seen {
        assert!(
            list.windows(2).all(|w| w[0].0 < w[1].0),
            "{what}: check {check} out of order: {list:?}"
        );
    }
    assert_eq!(seen, per_check(produced), "{what}: what the agent produced");
}

#[test]
fn the_sink_delivers_over_tls_h2_to_a_gateway_with_a_private_ca() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut gw = TlsGateway::start(tmp.path(), &ca);

    // The port speaks TLS only: a cleartext request gets no HTTP answer...
    let plain = http::get(gw.addr, "/healthz");
    assert!(
        !plain.text.starts_with("HTTP/"),
        "cleartext answered: {:?}",
        plain.text
    );
    // ...and over TLS it selects h2 for a client that offers only h2, as
    // the sink does (the sink refuses a gateway that does not).
    let mut conn = rustls::ClientConnection::new(
        ca.client_config(&[b"h2"]),
        ServerName::IpAddress(gw.addr.ip().into()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut tcp = TcpStream::connect(gw.addr).unwrap_or_else(|e| panic!("{e}"));
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .unwrap_or_else(|e| panic!("TLS handshake with the gateway: {e}"));
    }
    assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
    drop(tcp);

    let reader = SseReader::connect_tls(
        gw.addr,
        READER_TOKEN,
        None,
        ca.client_config(&[b"http/1.1"]),
    );
    wait_until(Duration::from_secs(10), "the reader's snapshot", || {
        !reader.control().is_empty() || reader.closed()
    });
    assert!(
        matches!(reader.control().first(), Some(Control::Snapshot(_))),
        "the reader over TLS is served: {:?}",
        reader.control()
    );

    let state = tmp.path().join("agent");
    let metrics = free_addr();
    let config = agent_config(&state, &target, metrics, gw.addr, Some(&pem.ca_cert));
    let mut agent = start_agent(&config);
    wait_until(
        Duration::from_secs(20),
        "four records at the reader",
        || reader_keys(&reader).len() >= 4,
    );
    // Readers get a record when the gateway accepts it, a moment before
    // the agent has the acknowledgement.
    wait_until(
        Duration::from_secs(10),
        "the sink to count four acknowledged records",
        || sink_metric(metrics, "sonde_sink_records_acked_total") >= 4.0,
    );
    assert_eq!(
        sink_metric(metrics, "sonde_sink_connections_total"),
        1.0,
        "one long-lived connection{}",
        agent.describe()
    );
    agent.stop();

    let produced = reader_and_gateway_have_what_was_produced(&reader, &gw, &ca, &state);
    let stderr = agent.stderr();
    assert!(
        stderr.contains(&format!("gateway=\"https://{}/v1/frames\"", gw.addr)),
        "the sink opened the https endpoint{}",
        agent.describe()
    );
    assert!(
        !stderr.contains("gateway unavailable"),
        "no failed attempt{}",
        agent.describe()
    );
    gw.process.stop();
    exactly_what_was_produced(&wire_records(&gw.data), &produced, "persisted");
}

#[test]
fn without_the_ca_the_sink_reports_an_untrusted_gateway_and_keeps_its_spool() {
    let ca = Ca::new();
    let pem = ca.pem_files();
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut gw = TlsGateway::start(tmp.path(), &ca);
    let reader = SseReader::connect_tls(
        gw.addr,
        READER_TOKEN,
        None,
        ca.client_config(&[b"http/1.1"]),
    );

    let state = tmp.path().join("agent");
    let metrics = free_addr();
    let untrusting = agent_config(&state, &target, metrics, gw.addr, None);
    let mut agent = start_agent(&untrusting);
    wait_until(
        Duration::from_secs(20),
        "the sink to log the untrusted certificate",
        || {
            let e = agent.stderr();
            e.contains("gateway unavailable")
                && e.contains("invalid peer certificate: UnknownIssuer")
        },
    );
    wait_until(Duration::from_secs(20), "three frames in the spool", || {
        sink_metric(metrics, "sonde_sink_spool_frames") >= 3.0
    });
    let stderr = agent.stderr();
    assert!(
        stderr.contains(&format!("TLS handshake with {}", gw.addr.ip())),
        "{}",
        agent.describe()
    );
    assert_eq!(sink_metric(metrics, "sonde_sink_records_acked_total"), 0.0);
    assert_eq!(sink_metric(metrics, "sonde_sink_connections_total"), 0.0);
    assert_eq!(gw.records_accepted(&ca), 0.0);
    assert!(reader_keys(&reader).is_empty());
    agent.stop();
    assert!(
        agent
            .stderr()
            .contains("unacknowledged frames stay in the spool"),
        "{}",
        agent.describe()
    );
    let spooled = wire_records(&state.join("records")).len();
    assert!(spooled >= 3, "results produced while untrusted: {spooled}");

    // The same agent and state, now trusting the CA: the spooled results
    // arrive first, then new ones; each exactly once.
    let trusting = agent_config(&state, &target, metrics, gw.addr, Some(&pem.ca_cert));
    let mut agent = start_agent(&trusting);
    wait_until(Duration::from_secs(20), "the spooled results", || {
        reader_keys(&reader).len() > spooled
    });
    agent.stop();
    reader_and_gateway_have_what_was_produced(&reader, &gw, &ca, &state);
    gw.process.stop();
}
