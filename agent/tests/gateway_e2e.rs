//! The gateway sink end to end, with real processes: `sonde gateway`,
//! `sonde run` probing a loopback target, and an SSE reader.
//!
//! - A 30 s outage (the gateway unreachable behind a proxy that drops and
//!   refuses connections): the reader, connected throughout, sees every
//!   result exactly once, in order per check, the same as the agent's own
//!   file sink; a reader scoped to one check sees exactly that check's.
//! - A 30 s gateway stop (SIGTERM, restart on the same port): the restarted
//!   gateway recovers its ring from its wire files (PROTOCOL.md 3.4), so a
//!   reader reconnecting with its last gseq sees every result exactly once,
//!   in order per check, the same as the agent's file sink; and the
//!   gateway persisted each frame once, in order.
//! - SIGKILL of the gateway, then a restart: every frame persisted once,
//!   nothing missing (acknowledged only once fsynced; deduplicated across
//!   the crash by the marks recovered from the files).
//! - SIGKILL of the agent mid-stream, then a restart: what was spooled
//!   reaches the reader, nothing twice.
//! - History: across the gateway's file rotation and a restart, `GET
//!   /v1/history` pages through exactly what the agent's file sink holds,
//!   each result once; by check too. A reader away longer than the ring
//!   gets a `reset` naming what it missed, fetches that from history, and
//!   ends with exactly the file sink's results, once each.
//! - 429 with `Retry-After`: the agent waits as told.
//! - A wrong token: 401, nothing accepted, the agent keeps spooling.
//!
//! Its gateway and agent helpers serve `faults::poison` too.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::http::scrape;
use crate::util::process::{Process, free_addr, wait_until};
use crate::util::sse::{Control, SseReader};
use testkit::http::HttpTarget;
use testkit::proxy::OutageProxy;
use wire::ReadItem;

pub(crate) const AGENT_TOKEN: &str = "agent-token-e2e";
pub(crate) const READER_TOKEN: &str = "reader-token-e2e";
/// A reader scoped to the check "api" only.
pub(crate) const API_READER_TOKEN: &str = "api-reader-token-e2e";
pub(crate) const AGENT: &str = "e2e";

/// Writes gateway.toml in `dir` and returns its path.
pub(crate) fn gateway_config(dir: &Path, addr: SocketAddr, extra: &str) -> PathBuf {
    let token = dir.join("reader.token");
    std::fs::write(&token, READER_TOKEN).unwrap_or_else(|e| panic!("{e}"));
    let api_token = dir.join("api-reader.token");
    std::fs::write(&api_token, API_READER_TOKEN).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("gateway.toml");
    let text = format!(
        "listen = \"{addr}\"\ndata_dir = \"{}\"\n{extra}\n\
         [[agent]]\nid = \"{AGENT}\"\ntoken = {{ env = \"E2E_AGENT_TOKEN\" }}\n\n\
         [[reader]]\nname = \"dash\"\ntoken = {{ file = \"{}\" }}\n\n\
         [[reader]]\nname = \"api-only\"\ntoken = {{ file = \"{}\" }}\nchecks = [\"api\"]\n",
        dir.join("data").display(),
        token.display(),
        api_token.display()
    );
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

pub(crate) fn start_gateway(config: &Path, addr: SocketAddr) -> Process {
    let shown = config.display().to_string();
    let mut gw = Process::start(
        &["gateway", "--config", &shown],
        &[("E2E_AGENT_TOKEN", AGENT_TOKEN)],
    );
    gw.wait_listening(addr);
    gw
}

/// Writes sonde.toml in `dir`: checks every second, the file sink (the
/// agent's own record of what it produced) and the gateway sink.
pub(crate) fn agent_config(dir: &Path, gateway: SocketAddr, checks: &[(&str, String)]) -> PathBuf {
    agent_config_with(dir, "", &format!("url = \"http://{gateway}\""), checks)
}

/// [`agent_config`] with `agent_extra` lines in `[agent]` and `urls` for
/// the gateway sink's URL key (`url = ...` or `urls = [...]`).
pub(crate) fn agent_config_with(
    dir: &Path,
    agent_extra: &str,
    urls: &str,
    checks: &[(&str, String)],
) -> PathBuf {
    let mut s = format!(
        "[agent]\nid = \"{AGENT}\"\nstate_dir = \"{}\"\n{agent_extra}\
         [defaults]\ninterval = \"1s\"\ntimeout = \"900ms\"\n\
         [sinks.file]\nenabled = true\nfsync = \"always\"\n\
         [[sinks.gateway]]\n{urls}\ntoken = {{ env = \"E2E_GATEWAY_TOKEN\" }}\n",
        dir.display()
    );
    for (name, url) in checks {
        s.push_str(&format!("[[check]]\nname = \"{name}\"\nurl = \"{url}\"\n"));
    }
    let path = dir.join("sonde.toml");
    std::fs::write(&path, s).unwrap_or_else(|e| panic!("{e}"));
    path
}

pub(crate) fn start_agent(config: &Path, token: &str) -> Process {
    let shown = config.display().to_string();
    Process::start(
        &["run", "--config", &shown],
        &[("E2E_GATEWAY_TOKEN", token), ("RUST_LOG", "info")],
    )
}

/// A record's identity for these tests: (check, t, rt).
pub(crate) type Key = (String, u64, u64);

/// Every frame in the wire files under `dir` (sorted by name): the
/// frame's (session, seq) and its records.
pub(crate) fn wire_frames(dir: &Path) -> Vec<((u64, u64), Vec<Key>)> {
    crate::util::wire_files::items(dir)
        .into_iter()
        .filter_map(|(_, item)| match item {
            ReadItem::Frame { frame, .. } => {
                let records = frame
                    .records()
                    .map(|(c, r)| (c.to_owned(), r.t_ms, r.rt_ms))
                    .collect();
                Some(((frame.header.session, frame.header.seq), records))
            }
            ReadItem::Skipped { .. } => None,
        })
        .collect()
}

fn per_check(keys: impl IntoIterator<Item = Key>) -> BTreeMap<String, Vec<(u64, u64)>> {
    let mut map: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for (check, t, rt) in keys {
        map.entry(check).or_default().push((t, rt));
    }
    map
}

/// Asserts no key twice, and within each check strictly increasing t.
#[track_caller]
pub(crate) fn exactly_once_in_order(keys: &[Key], what: &str) {
    let mut seen = HashSet::new();
    for k in keys {
        assert!(seen.insert(k.clone()), "{what}: {k:?} twice");
    }
    for (check, list) in per_check(keys.iter().cloned()) {
        assert!(
            list.windows(2).all(|w| w[0].0 < w[1].0),
            "{what}: check {check} out of order: {list:?}"
        );
    }
}

pub(crate) fn reader_keys(reader: &SseReader) -> Vec<Key> {
    reader
        .records()
        .into_iter()
        .filter(|r| r.agent == AGENT)
        .map(|r| (r.check, r.t, r.rt))
        .collect()
}

pub(crate) fn file_sink_keys(state: &Path) -> Vec<Key> {
    wire_frames(&state.join("records"))
        .into_iter()
        .flat_map(|(_, records)| records)
        .collect()
}

pub(crate) fn checks(target: &HttpTarget) -> Vec<(&'static str, String)> {
    vec![
        ("api", target.url("/api")),
        ("web", target.url("/web")),
        ("db", target.url("/db")),
    ]
}

#[test]
fn a_30s_outage_loses_nothing_and_the_reader_sees_each_result_once_in_order() {
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gw_addr = free_addr();
    let gw_config = gateway_config(tmp.path(), gw_addr, "");
    let mut gw = start_gateway(&gw_config, gw_addr);
    let proxy = OutageProxy::start(gw_addr);
    let reader = SseReader::connect(gw_addr, READER_TOKEN, None);
    let api_reader = SseReader::connect(gw_addr, API_READER_TOKEN, None);
    let state = tmp.path().join("agent");
    let config = agent_config(&state_dir(&state), proxy.addr(), &checks(&target));
    let mut agent = start_agent(&config, AGENT_TOKEN);

    wait_until(Duration::from_secs(20), "six records at the reader", || {
        reader_keys(&reader).len() >= 6
    });
    proxy.set_down(true);
    let during = file_sink_keys(&state).len();
    std::thread::sleep(Duration::from_secs(30));
    let produced = file_sink_keys(&state).len() - during;
    assert!(produced >= 75, "the agent kept probing: {produced}");
    assert!(
        agent.stderr().contains("gateway unavailable"),
        "{}",
        agent.describe()
    );
    let before = reader_keys(&reader).len();
    proxy.set_down(false);

    // The backlog arrives; then stop the agent (it drains what is left).
    wait_until(Duration::from_secs(30), "the backlog at the reader", || {
        reader_keys(&reader).len() >= before + produced
    });
    agent.stop();
    let produced = file_sink_keys(&state);
    wait_until(
        Duration::from_secs(10),
        "every result at the reader",
        || reader_keys(&reader).len() >= produced.len(),
    );
    let seen = reader_keys(&reader);
    exactly_once_in_order(&seen, "reader");
    let mut produced = per_check(produced);
    assert_eq!(
        per_check(seen),
        produced,
        "the reader saw exactly what the agent produced{}",
        agent.describe()
    );
    // The scoped reader saw every "api" result and nothing else.
    let api_seen = reader_keys(&api_reader);
    exactly_once_in_order(&api_seen, "api reader");
    produced.retain(|check, _| check == "api");
    assert_eq!(per_check(api_seen), produced, "the api-only reader");
    assert!(
        reader
            .control()
            .iter()
            .all(|c| matches!(c, Control::Snapshot(_))),
        "no reset: {:?}",
        reader.control()
    );
    assert_eq!(
        scrape(gw_addr, "sonde_gateway_frames_gap_total", ""),
        0.0,
        "no gap in the agent's sequence"
    );
    gw.stop();
}

/// The agent's state directory (created).
pub(crate) fn state_dir(state: &Path) -> PathBuf {
    std::fs::create_dir_all(state).unwrap_or_else(|e| panic!("{e}"));
    state.to_owned()
}

#[test]
fn a_30s_gateway_stop_loses_nothing_and_the_resuming_reader_sees_each_result_once() {
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gw_addr = free_addr();
    let gw_config = gateway_config(tmp.path(), gw_addr, "");
    let mut gw = start_gateway(&gw_config, gw_addr);
    let reader = SseReader::connect(gw_addr, READER_TOKEN, None);
    let state = state_dir(&tmp.path().join("agent"));
    let config = agent_config(&state, gw_addr, &checks(&target));
    let mut agent = start_agent(&config, AGENT_TOKEN);

    wait_until(Duration::from_secs(20), "six records at the reader", || {
        reader_keys(&reader).len() >= 6
    });
    gw.stop();
    wait_until(Duration::from_secs(5), "the reader's stream to end", || {
        reader.closed()
    });
    let first_run = reader_keys(&reader);
    let last_gseq = reader.last_gseq();
    std::thread::sleep(Duration::from_secs(30));

    let mut gw = start_gateway(&gw_config, gw_addr);
    let reader2 = SseReader::connect(gw_addr, READER_TOKEN, last_gseq);
    wait_until(Duration::from_secs(20), "the reader's snapshot", || {
        !reader2.control().is_empty()
    });
    assert!(
        matches!(reader2.control().first(), Some(Control::Snapshot(_))),
        "the restarted gateway still holds what came after {last_gseq:?}: {:?}",
        reader2.control()
    );
    let produced_so_far = file_sink_keys(&state).len();
    wait_until(Duration::from_secs(30), "the backlog persisted", || {
        wire_frames(&tmp.path().join("data"))
            .iter()
            .map(|(_, r)| r.len())
            .sum::<usize>()
            >= produced_so_far
    });
    agent.stop();
    std::thread::sleep(Duration::from_millis(500));
    gw.stop();

    let persisted = wire_frames(&tmp.path().join("data"));
    let ids: Vec<(u64, u64)> = persisted.iter().map(|(id, _)| *id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "frames persisted once each, in (session, seq) order: {ids:?}"
    );
    let persisted: Vec<Key> = persisted.into_iter().flat_map(|(_, r)| r).collect();
    exactly_once_in_order(&persisted, "persisted");
    assert_eq!(
        per_check(persisted.clone()),
        per_check(file_sink_keys(&state)),
        "the gateway persisted exactly what the agent produced{}",
        agent.describe()
    );
    // The reader before the stop, then resuming with its last gseq: every
    // result once, in order, nothing missing.
    assert!(!first_run.is_empty());
    let mut seen = first_run;
    seen.extend(reader_keys(&reader2));
    exactly_once_in_order(&seen, "readers");
    assert_eq!(
        per_check(seen),
        per_check(persisted),
        "the resuming reader saw exactly what the gateway persisted"
    );
    assert!(
        reader2
            .control()
            .iter()
            .all(|c| matches!(c, Control::Snapshot(_))),
        "no reset: {:?}",
        reader2.control()
    );
}

/// Every record `/v1/history?{query}` holds, page by page (pages of 97,
/// so that a page ends inside a frame).
fn history_keys(gw: SocketAddr, query: &str) -> Vec<Key> {
    history_records(gw, query)
        .into_iter()
        .map(|(_, key)| key)
        .collect()
}

/// [`history_keys`] with each record's gseq.
fn history_records(gw: SocketAddr, query: &str) -> Vec<(u64, Key)> {
    let auth = format!("Bearer {READER_TOKEN}");
    let mut out = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10_000 {
        let path = format!("/v1/history?limit=97&{query}{cursor}");
        let answer =
            crate::util::http::exchange(gw, "GET", &path, &[("authorization", &auth)], b"");
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
        let page: serde_json::Value =
            serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.body));
        for r in page["records"].as_array().into_iter().flatten() {
            assert_eq!(r["agent"], AGENT);
            let field = |k: &str| {
                r["record"][k]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{k}: {r}"))
            };
            let check = r["check"].as_str().unwrap_or_default().to_owned();
            let gseq = r["gseq"].as_u64().unwrap_or_else(|| panic!("gseq: {r}"));
            out.push((gseq, (check, field("t"), field("rt"))));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
    panic!("history never ended its pages");
}

fn gateway_files(tmp: &Path) -> usize {
    std::fs::read_dir(tmp.join("data"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("gateway-"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn history_is_what_the_agent_produced_across_rotation_and_a_restart() {
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gw_addr = free_addr();
    // Files of 4 KiB: 20 checks a second fill one in a few seconds; a
    // ring of 50 records holds less than 3 s of them.
    let extra = "[writer]\nmax_file_bytes = 4096\n[ring]\nmax_records = 50\n";
    let gw_config = gateway_config(tmp.path(), gw_addr, extra);
    let mut gw = start_gateway(&gw_config, gw_addr);
    let reader = SseReader::connect(gw_addr, READER_TOKEN, None);
    let state = state_dir(&tmp.path().join("agent"));
    let names: Vec<String> = (0..20).map(|i| format!("c{i:02}")).collect();
    let checks: Vec<(&str, String)> = names
        .iter()
        .map(|n| (n.as_str(), target.url(&format!("/{n}"))))
        .collect();
    let config = agent_config(&state, gw_addr, &checks);
    let mut agent = start_agent(&config, AGENT_TOKEN);

    wait_until(Duration::from_secs(30), "the gateway's third file", || {
        gateway_files(tmp.path()) >= 3
    });
    gw.stop();
    wait_until(Duration::from_secs(5), "the reader's stream to end", || {
        reader.closed()
    });
    let first_run: Vec<(u64, Key)> = reader
        .records()
        .into_iter()
        .map(|r| (r.gseq, (r.check, r.t, r.rt)))
        .collect();
    let last = reader.last_gseq().expect("the reader saw something");
    let before_restart = persisted_count(tmp.path());
    let mut gw = start_gateway(&gw_config, gw_addr);
    wait_until(Duration::from_secs(30), "records after the restart", || {
        persisted_count(tmp.path()) >= before_restart + 100
    });
    // Back after more than the ring holds: told what it missed.
    let back = SseReader::connect(gw_addr, READER_TOKEN, Some(last));
    wait_until(Duration::from_secs(10), "reset and snapshot", || {
        back.control().len() >= 2
    });
    let control = back.control();
    let Some(Control::Reset {
        reason,
        missed: Some((missed_from, missed_to)),
    }) = control.first()
    else {
        panic!("a reset naming the gap first: {control:?}");
    };
    assert_eq!(reason, "since_out_of_ring");
    assert_eq!(*missed_from, last + 1, "the gap starts after what it saw");
    assert!(
        matches!(control.get(1), Some(Control::Snapshot(g)) if g == missed_to),
        "the gap ends at the snapshot's gseq: {control:?}"
    );
    let healed = history_records(
        gw_addr,
        &format!("from_gseq={missed_from}&to_gseq={missed_to}"),
    );
    agent.stop();
    let produced = file_sink_keys(&state);
    wait_until(Duration::from_secs(15), "everything persisted", || {
        persisted_count(tmp.path()) >= produced.len()
    });
    assert!(gateway_files(tmp.path()) >= 4, "rotation and a restart");
    // The reader: before the stop, the gap from history, then live.
    let mut seen = first_run;
    seen.extend(healed);
    wait_until(
        Duration::from_secs(10),
        "the reader has every result",
        || seen.len() + back.records().len() >= produced.len(),
    );
    seen.extend(
        back.records()
            .into_iter()
            .map(|r| (r.gseq, (r.check, r.t, r.rt))),
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "the reader's gseqs go up, none twice"
    );
    let seen: Vec<Key> = seen.into_iter().map(|(_, key)| key).collect();
    exactly_once_in_order(&seen, "the reader");
    assert_eq!(
        per_check(seen),
        per_check(produced.clone()),
        "the reader ends with exactly what the agent produced"
    );

    let history = history_keys(gw_addr, "");
    exactly_once_in_order(&history, "history");
    assert_eq!(
        per_check(history),
        per_check(produced.clone()),
        "history holds exactly what the agent produced{}",
        agent.describe()
    );
    // By check, through the index's postings: that check's results only.
    let one = history_keys(gw_addr, "check=c07");
    let mut expected = per_check(produced);
    expected.retain(|check, _| check == "c07");
    assert_eq!(per_check(one), expected, "history of check c07");
    gw.stop();
}

/// Records in the gateway's wire files.
fn persisted_count(tmp: &Path) -> usize {
    wire_frames(&tmp.join("data"))
        .iter()
        .map(|(_, r)| r.len())
        .sum()
}

#[test]
fn sigkill_of_the_gateway_then_restart_persists_each_frame_once() {
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gw_addr = free_addr();
    let gw_config = gateway_config(tmp.path(), gw_addr, "");
    let mut gw = start_gateway(&gw_config, gw_addr);
    let state = state_dir(&tmp.path().join("agent"));
    let config = agent_config(&state, gw_addr, &checks(&target));
    let mut agent = start_agent(&config, AGENT_TOKEN);

    wait_until(Duration::from_secs(20), "six records persisted", || {
        persisted_count(tmp.path()) >= 6
    });
    gw.signal("KILL");
    gw.wait(Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(5));
    let mut gw = start_gateway(&gw_config, gw_addr);
    let produced_so_far = file_sink_keys(&state).len();
    wait_until(Duration::from_secs(30), "the backlog persisted", || {
        persisted_count(tmp.path()) >= produced_so_far
    });
    agent.stop();
    std::thread::sleep(Duration::from_millis(500));
    gw.stop();

    // Acknowledged only once fsynced, deduplicated across the crash by the
    // marks recovered from the files: each frame once, nothing missing.
    let persisted = wire_frames(&tmp.path().join("data"));
    let ids: Vec<(u64, u64)> = persisted.iter().map(|(id, _)| *id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "frames persisted once each, in (session, seq) order: {ids:?}"
    );
    let persisted: Vec<Key> = persisted.into_iter().flat_map(|(_, r)| r).collect();
    assert_eq!(
        per_check(persisted),
        per_check(file_sink_keys(&state)),
        "the gateway persisted exactly what the agent produced{}",
        agent.describe()
    );
}

#[test]
fn sigkill_mid_stream_then_restart_loses_nothing_and_duplicates_nothing() {
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gw_addr = free_addr();
    let gw_config = gateway_config(tmp.path(), gw_addr, "");
    let mut gw = start_gateway(&gw_config, gw_addr);
    let proxy = OutageProxy::start(gw_addr);
    let reader = SseReader::connect(gw_addr, READER_TOKEN, None);
    let state = state_dir(&tmp.path().join("agent"));
    let config = agent_config(&state, proxy.addr(), &checks(&target));

    let mut agent = start_agent(&config, AGENT_TOKEN);
    wait_until(Duration::from_secs(20), "six records at the reader", || {
        reader_keys(&reader).len() >= 6
    });
    // Make sure a backlog is in the spool at the kill: cut the gateway off
    // for a few seconds first.
    proxy.set_down(true);
    std::thread::sleep(Duration::from_secs(4));
    agent.signal("KILL");
    agent.wait(Duration::from_secs(5));
    let spooled: Vec<Key> = wire_frames(&state.join("spool").join("default"))
        .into_iter()
        .flat_map(|(_, r)| r)
        .collect();
    assert!(spooled.len() >= 6, "a backlog was spooled: {spooled:?}");
    proxy.set_down(false);

    let mut agent = start_agent(&config, AGENT_TOKEN);
    wait_until(
        Duration::from_secs(20),
        "the spooled backlog at the reader",
        || {
            let seen: HashSet<Key> = reader_keys(&reader).into_iter().collect();
            spooled.iter().all(|k| seen.contains(k))
        },
    );
    let after_restart = file_sink_keys(&state).len();
    wait_until(Duration::from_secs(20), "new results", || {
        file_sink_keys(&state).len() >= after_restart + 3
    });
    agent.stop();
    let produced = file_sink_keys(&state);
    wait_until(
        Duration::from_secs(10),
        "every result at the reader",
        || reader_keys(&reader).len() + 3 >= produced.len(),
    );
    let seen = reader_keys(&reader);
    exactly_once_in_order(&seen, "reader");
    // Each sink has its own queue: at the kill instant one may have taken
    // a result the other had not yet. Anything else must match.
    let seen_set: HashSet<Key> = seen.iter().cloned().collect();
    let missing: Vec<&Key> = produced.iter().filter(|k| !seen_set.contains(*k)).collect();
    assert!(missing.len() <= 3, "lost: {missing:?}{}", agent.describe());
    gw.stop();
}

#[test]
fn rate_limited_agent_waits_as_retry_after_says() {
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gw_addr = free_addr();
    let gw_config = gateway_config(
        tmp.path(),
        gw_addr,
        "[ingest]\nmax_requests_per_second = 1\n",
    );
    let mut gw = start_gateway(&gw_config, gw_addr);
    let reader = SseReader::connect(gw_addr, READER_TOKEN, None);
    let state = state_dir(&tmp.path().join("agent"));
    let config = agent_config(&state, gw_addr, &checks(&target));
    let mut agent = start_agent(&config, AGENT_TOKEN);

    wait_until(Duration::from_secs(20), "a 429", || {
        scrape(
            gw_addr,
            "sonde_gateway_requests_total",
            "outcome=\"rate_limited\"",
        ) >= 1.0
    });
    let start = Instant::now();
    let ok0 = scrape(gw_addr, "sonde_gateway_requests_total", "outcome=\"ok\"");
    let limited0 = scrape(
        gw_addr,
        "sonde_gateway_requests_total",
        "outcome=\"rate_limited\"",
    );
    std::thread::sleep(Duration::from_secs(8));
    let secs = start.elapsed().as_secs_f64();
    let ok = scrape(gw_addr, "sonde_gateway_requests_total", "outcome=\"ok\"") - ok0;
    let limited = scrape(
        gw_addr,
        "sonde_gateway_requests_total",
        "outcome=\"rate_limited\"",
    ) - limited0;
    // Three checks a second would be three requests a second; told to
    // wait a second after each 429, the agent sends about one a second
    // that succeeds and at most about one that is refused.
    assert!(ok <= secs + 1.0, "ok requests {ok} in {secs:.1} s");
    assert!(
        limited <= secs + 1.0,
        "refused requests {limited} in {secs:.1} s (hammering?)"
    );
    assert!(
        ok >= secs / 2.0 - 1.0,
        "ok requests {ok} in {secs:.1} s (stalled?)"
    );
    let log = agent.stderr();
    assert!(
        log.contains("gateway asks to wait") && log.contains("wait_ms=1000"),
        "{}",
        agent.describe()
    );
    // Nothing is lost by waiting.
    agent.stop();
    let produced = file_sink_keys(&state);
    wait_until(
        Duration::from_secs(10),
        "every result at the reader",
        || reader_keys(&reader).len() >= produced.len(),
    );
    exactly_once_in_order(&reader_keys(&reader), "reader");
    gw.stop();
}

#[test]
fn a_wrong_token_is_refused_and_nothing_is_accepted() {
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let gw_addr = free_addr();
    let gw_config = gateway_config(tmp.path(), gw_addr, "");
    let mut gw = start_gateway(&gw_config, gw_addr);
    let state = state_dir(&tmp.path().join("agent"));
    let config = agent_config(&state, gw_addr, &checks(&target));
    let mut agent = start_agent(&config, "not-the-token");

    wait_until(Duration::from_secs(20), "a 401", || {
        scrape(
            gw_addr,
            "sonde_gateway_requests_total",
            "outcome=\"unauthorized\"",
        ) >= 1.0
    });
    wait_until(Duration::from_secs(10), "the agent's loud log", || {
        agent.stderr().contains("refuses this agent's requests")
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        scrape(gw_addr, "sonde_gateway_records_accepted_total", ""),
        0.0
    );
    // Held back, not hammering: one attempt so far (the next in >= 15 s).
    assert_eq!(
        scrape(
            gw_addr,
            "sonde_gateway_requests_total",
            "outcome=\"unauthorized\""
        ),
        1.0
    );
    assert!(agent.is_running(), "{}", agent.describe());
    agent.stop();
    // The results wait in the spool for a fixed token.
    let spooled = wire_frames(&state.join("spool").join("default"));
    assert!(!spooled.is_empty());
    gw.stop();
}
