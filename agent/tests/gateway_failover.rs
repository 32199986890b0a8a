//! The gateway sink failing over between the URLs of `urls` (replicas of
//! one region), with a real `sonde run`:
//!
//! - Two fake gateways: the first dies mid-request; the agent moves to the
//!   second, which receives every frame from exactly the one after the
//!   first's last acknowledgement; together they hold what the agent
//!   produced, each record once. One WARN names both URLs; the metrics
//!   count the move and show the URL in use.
//! - The first answering 503 moves the agent to the second at once (not
//!   after the 30 s `Retry-After`), and it stays there; a 400 `bad_frame`
//!   does not move it (the frame is quarantined, as with one URL).
//! - Two real single-process `sonde gateway`s, the first stopped: the
//!   second's wire files continue where the first's end, nothing missing.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::gateway_e2e::{
    AGENT_TOKEN, Key, agent_config_with, checks, exactly_once_in_order, file_sink_keys,
    gateway_config, start_agent, start_gateway, state_dir, wire_frames,
};
use crate::util::fake_gateway::{FakeGateway, Mode};
use crate::util::http::scrape;
use crate::util::process::{Process, free_addr, wait_until};
use testkit::http::HttpTarget;

/// The agent's config in `state` probing `target`, sending to `urls`
/// (each `http://ADDR/`), its metrics on `metrics`.
fn replicas_config(
    state: &Path,
    target: &HttpTarget,
    metrics: SocketAddr,
    urls: &[SocketAddr],
) -> std::path::PathBuf {
    let list: Vec<String> = urls.iter().map(|a| format!("\"http://{a}/\"")).collect();
    agent_config_with(
        &state_dir(state),
        &format!("metrics_listen = \"{metrics}\"\n"),
        &format!("urls = [{}]", list.join(", ")),
        &checks(target),
    )
}

/// The request URI the sink logs and labels for a gateway at `addr`.
fn ingest_uri(addr: SocketAddr) -> String {
    format!("http://{addr}/v1/frames")
}

fn failovers(metrics: SocketAddr) -> f64 {
    scrape(metrics, "sonde_sink_failovers_total", "sink=\"gateway\"")
}

fn in_use(metrics: SocketAddr, addr: SocketAddr) -> f64 {
    let url = format!("url=\"{}\"", ingest_uri(addr));
    scrape(metrics, "sonde_sink_gateway_info", &url)
}

/// Asserts that `ids` are one session's consecutive seqs.
#[track_caller]
fn consecutive(ids: &[(u64, u64)], what: &str) {
    assert!(
        ids.windows(2).all(|w| w[1] == (w[0].0, w[0].1 + 1)),
        "{what}: not consecutive: {ids:?}"
    );
}

fn sorted(mut keys: Vec<Key>) -> Vec<Key> {
    keys.sort();
    keys
}

fn moves_logged(agent: &Process) -> usize {
    agent.stderr().matches("moving to the next URL").count()
}

#[test]
fn a_replica_dying_mid_request_hands_over_every_frame_after_its_last_ack() {
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let first = FakeGateway::start(Mode::Honest);
    let second = FakeGateway::start(Mode::Honest);
    let state = tmp.path().join("agent");
    let metrics = free_addr();
    let config = replicas_config(&state, &target, metrics, &[first.addr(), second.addr()]);
    let mut agent = start_agent(&config, AGENT_TOKEN);

    wait_until(Duration::from_secs(20), "six records at the first", || {
        first.seen().records().len() >= 6
    });
    assert_eq!(in_use(metrics, first.addr()), 1.0, "{}", agent.describe());
    assert_eq!(failovers(metrics), 0.0);
    first.set_mode(Mode::DieOnNextRequest);
    wait_until(Duration::from_secs(10), "the first to die", || {
        first.seen().dead
    });
    wait_until(Duration::from_secs(20), "six records at the second", || {
        second.seen().records().len() >= 6
    });
    assert_eq!(failovers(metrics), 1.0, "{}", agent.describe());
    assert_eq!(in_use(metrics, second.addr()), 1.0, "{}", agent.describe());
    assert_eq!(in_use(metrics, first.addr()), 0.0, "one URL in use");
    agent.stop();

    let produced = file_sink_keys(&state);
    let (a, b) = (first.seen(), second.seen());
    // The first acknowledged up to its last frame; the frames of the
    // request it died on were not accepted there.
    let last_ack = a.last_ack.expect("the first acknowledged");
    let a_ids: Vec<(u64, u64)> = a.accepted.keys().copied().collect();
    let b_ids: Vec<(u64, u64)> = b.accepted.keys().copied().collect();
    assert_eq!(a_ids.last(), Some(&last_ack));
    consecutive(&a_ids, "the first's frames");
    // The second starts exactly after the first's last acknowledgement:
    // nothing resent that was acknowledged, nothing skipped.
    assert_eq!(
        b.first_offered,
        Some((last_ack.0, last_ack.1 + 1)),
        "{}",
        agent.describe()
    );
    assert_eq!(b_ids.first(), Some(&(last_ack.0, last_ack.1 + 1)));
    consecutive(&b_ids, "the second's frames");
    let mut delivered = a.records();
    delivered.extend(b.records());
    exactly_once_in_order(&delivered, "both gateways");
    assert_eq!(
        sorted(delivered),
        sorted(produced),
        "the gateways hold what the agent produced{}",
        agent.describe()
    );
    // One WARN, naming where from and where to.
    let log = agent.stderr();
    assert_eq!(moves_logged(&agent), 1, "{}", agent.describe());
    assert!(
        log.contains(&format!("from=\"{}\"", ingest_uri(first.addr())))
            && log.contains(&format!("to=\"{}\"", ingest_uri(second.addr()))),
        "{}",
        agent.describe()
    );
}

#[test]
fn a_503_moves_to_the_next_replica_at_once_and_the_agent_stays_there() {
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Retry-After: 30 with every 503: waiting it out would take longer
    // than this test allows.
    let first = FakeGateway::start(Mode::Refuse(503, "overloaded"));
    let second = FakeGateway::start(Mode::Honest);
    let state = tmp.path().join("agent");
    let metrics = free_addr();
    let config = replicas_config(&state, &target, metrics, &[first.addr(), second.addr()]);
    let mut agent = start_agent(&config, AGENT_TOKEN);

    wait_until(Duration::from_secs(10), "records at the second", || {
        second.seen().records().len() >= 3
    });
    assert_eq!(first.seen().requests, 1, "{}", agent.describe());
    // It stays on the replica that works: nothing goes back to the first.
    let before = second.seen().requests;
    std::thread::sleep(Duration::from_secs(3));
    assert!(second.seen().requests > before, "{}", agent.describe());
    assert_eq!(first.seen().requests, 1, "no flapping{}", agent.describe());
    assert_eq!(failovers(metrics), 1.0);
    assert_eq!(in_use(metrics, second.addr()), 1.0);
    agent.stop();

    let produced = file_sink_keys(&state);
    let delivered = second.seen().records();
    exactly_once_in_order(&delivered, "the second");
    assert_eq!(sorted(delivered), sorted(produced), "{}", agent.describe());
    assert!(first.seen().accepted.is_empty());
    assert_eq!(moves_logged(&agent), 1, "{}", agent.describe());
    assert!(
        agent.stderr().contains("503 overloaded fake"),
        "{}",
        agent.describe()
    );
}

#[test]
fn a_400_bad_frame_is_not_a_reason_to_move() {
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let first = FakeGateway::start(Mode::Refuse(400, "bad_frame"));
    let second = FakeGateway::start(Mode::Honest);
    let state = tmp.path().join("agent");
    let metrics = free_addr();
    let config = replicas_config(&state, &target, metrics, &[first.addr(), second.addr()]);
    let mut agent = start_agent(&config, AGENT_TOKEN);

    wait_until(Duration::from_secs(20), "three refused requests", || {
        first.seen().requests >= 3
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(second.seen().requests, 0, "{}", agent.describe());
    assert_eq!(failovers(metrics), 0.0);
    assert_eq!(in_use(metrics, first.addr()), 1.0);
    assert!(
        scrape(
            metrics,
            "sonde_sink_frames_quarantined_total",
            "sink=\"gateway\""
        ) >= 3.0,
        "{}",
        agent.describe()
    );
    agent.stop();
    assert!(
        agent.stderr().contains("moved to the quarantine"),
        "{}",
        agent.describe()
    );
    assert_eq!(moves_logged(&agent), 0, "{}", agent.describe());
}

#[test]
fn two_real_gateways_the_first_stopped_the_second_continues_where_it_ended() {
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dirs = [tmp.path().join("gw-a"), tmp.path().join("gw-b")];
    let addrs = [free_addr(), free_addr()];
    let mut gateways: Vec<Process> = dirs
        .iter()
        .zip(addrs)
        .map(|(dir, addr)| {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
            start_gateway(&gateway_config(dir, addr, ""), addr)
        })
        .collect();
    let state = tmp.path().join("agent");
    let metrics = free_addr();
    let config = replicas_config(&state, &target, metrics, &addrs);
    let mut agent = start_agent(&config, AGENT_TOKEN);
    let persisted = |dir: &Path| wire_frames(&dir.join("data"));
    let records = |dir: &Path| -> usize { persisted(dir).iter().map(|(_, r)| r.len()).sum() };

    wait_until(Duration::from_secs(20), "six records at the first", || {
        records(&dirs[0]) >= 6
    });
    gateways[0].stop();
    wait_until(Duration::from_secs(20), "six records at the second", || {
        records(&dirs[1]) >= 6
    });
    assert_eq!(failovers(metrics), 1.0, "{}", agent.describe());
    assert_eq!(in_use(metrics, addrs[1]), 1.0);
    agent.stop();
    std::thread::sleep(Duration::from_millis(500));
    gateways[1].stop();

    let (a, b) = (persisted(&dirs[0]), persisted(&dirs[1]));
    let a_ids: Vec<(u64, u64)> = a.iter().map(|(id, _)| *id).collect();
    let b_ids: Vec<(u64, u64)> = b.iter().map(|(id, _)| *id).collect();
    consecutive(&a_ids, "the first's files");
    consecutive(&b_ids, "the second's files");
    // Independent gateways: one that stopped while answering may have
    // persisted a request whose acknowledgement the agent never read,
    // which the second then has too. Nothing else twice, nothing missing.
    let (Some(a_last), Some(b_first)) = (a_ids.last(), b_ids.first()) else {
        panic!("both gateways persisted frames: {a_ids:?} {b_ids:?}");
    };
    assert!(
        b_first.0 == a_last.0 && b_first.1 <= a_last.1 + 1,
        "the second continues where the first ended: {a_last:?} then {b_first:?}"
    );
    let overlap = a_last.1 + 1 - b_first.1;
    assert!(overlap <= 500, "at most one request twice: {overlap}");
    let mut seen = HashSet::new();
    let union: Vec<Key> = a
        .into_iter()
        .chain(b)
        .filter(|(id, _)| seen.insert(*id))
        .flat_map(|(_, r)| r)
        .collect();
    exactly_once_in_order(&union, "both gateways");
    assert_eq!(
        sorted(union),
        sorted(file_sink_keys(&state)),
        "{}",
        agent.describe()
    );
}
