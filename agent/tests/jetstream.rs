//! The gateway's JetStream mode end to end: Debian's nats-server (one
//! node or a three-node cluster, testkit::nats), `sonde gateway` replicas
//! as separate processes sharing one region's stream, `sonde run` agents
//! failing over between them, an SSE reader, hand-built frames.
//!
//! - A NATS node (the stream's leader) SIGKILLed under two replicas and
//!   two agents, then restarted: both replicas' history is the same, each
//!   record once in gseq order, exactly what the agents produced.
//! - The replica an agent and a reader use SIGKILLed: the agent moves to
//!   the other, the reader resumes there with its last gseq; what it
//!   read, both connections together, is the other's history, once each.
//! - The whole cluster SIGKILLed and restarted: the stream keeps every
//!   record; the running replicas recover by themselves and take new
//!   frames; replicas started afterwards read back the same history.
//! - An old spool replayed past the duplicate window, to the other
//!   replica and to a restarted one: all duplicates, nothing stored,
//!   from the agent's subject and, once that has aged out, from the marks
//!   stream; two replicas racing on one agent's frames store each once.
//! - A stream with other settings: the gateway exits naming them.

mod lab;

use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lab::{
    Agent, Js, READER_TOKEN, Rec, Replica, STREAM, ack, frame_records, frames, once_in_gseq_order,
    recs, sorted, stream_leader, stream_view, wait_for,
};
use testkit::http::HttpTarget;
use testkit::nats::{NATS_SERVER, NatsCluster};

use crate::util::sse::{Control, SseReader};

/// How long anything a test waits for may take (a NATS leader's SIGKILL
/// costs ~7 s of failed publishes, a full restart ~7 s more).
const LIMIT: Duration = Duration::from_secs(60);

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"))
}

fn cluster(nodes: usize) -> NatsCluster {
    NatsCluster::start(nodes).unwrap_or_else(|e| panic!("starting NATS: {e:#}"))
}

/// Every process's output, for failure messages.
fn context(gateways: &[&Replica], agents: &[&Agent]) -> String {
    let mut s = String::new();
    for g in gateways {
        s.push_str(&format!("\n=== replica {} ==={}", g.name, g.describe()));
    }
    for a in agents {
        s.push_str(&format!("\n=== agent {} ==={}", a.id, a.process.describe()));
    }
    s
}

/// `replica`'s whole history once it holds at least `n` records (an
/// error, such as a 503 while NATS has no leader, is waited out).
#[track_caller]
fn history_at_least(replica: &Replica, n: usize, ctx: &dyn Fn() -> String) -> Vec<(u64, Rec)> {
    wait_for(
        LIMIT,
        &format!("{n} records in {}'s history", replica.name),
        ctx,
        || replica.history("").ok().filter(|h| h.len() >= n),
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What `reader` received, as history shows it.
fn seen(reader: &SseReader) -> Vec<(u64, Rec)> {
    reader
        .records()
        .into_iter()
        .map(|s| (s.gseq, (s.agent, s.check, s.t, s.rt)))
        .collect()
}

/// A reader of `replica`'s live stream from its start, once connected.
#[track_caller]
fn live_reader(replica: &Replica) -> SseReader {
    let reader = SseReader::connect(replica.addr, READER_TOKEN, None);
    wait_for(LIMIT, "a reader's snapshot", &|| replica.describe(), || {
        (!reader.control().is_empty()).then_some(())
    });
    reader
}

#[test]
fn a_nats_node_killed_under_two_replicas_loses_nothing() {
    if !testkit::require_tool(NATS_SERVER) {
        return;
    }
    let mut nats = cluster(3);
    let target = HttpTarget::plain();
    let tmp = tmp();
    let js = Js::of(&nats);
    let gw_a = Replica::new(tmp.path(), "gw-a", &js);
    let gw_b = Replica::new(tmp.path(), "gw-b", &js);
    // A new stream elects its leader in a moment; publishes fail until then.
    wait_for(LIMIT, "the stream's leader", &|| String::new(), || {
        stream_leader(&mut nats, STREAM)
    });
    let (live_a, live_b) = (live_reader(&gw_a), live_reader(&gw_b));
    let mut ag1 = Agent::start(tmp.path(), "ag-1", &target, &[gw_a.addr, gw_b.addr]);
    let mut ag2 = Agent::start(tmp.path(), "ag-2", &target, &[gw_b.addr, gw_a.addr]);
    let ctx = || context(&[&gw_a, &gw_b], &[&ag1, &ag2]);
    let of =
        |reader: &SseReader, id: &str| reader.records().iter().filter(|r| r.agent == id).count();

    // Both agents' records reach both replicas (each through its own).
    wait_for(LIMIT, "nine records of each agent on both", &ctx, || {
        [&live_a, &live_b]
            .iter()
            .all(|r| of(r, "ag-1") >= 9 && of(r, "ag-2") >= 9)
            .then_some(())
    });
    let leader = wait_for(LIMIT, "the stream's leader", &ctx, || {
        stream_leader(&mut nats, STREAM)
    });
    let at_kill = live_a.records().len();
    nats.kill(leader)
        .unwrap_or_else(|e| panic!("killing node {leader}: {e:#}"));
    let killed_at = Instant::now();
    // A new leader: both agents' records published again, and read by
    // both replicas (whichever server their readings of the stream were on).
    wait_for(
        LIMIT + LIMIT / 2,
        "records again on both after the kill",
        &ctx,
        || {
            let after = |r: &SseReader, id: &str| {
                r.records()
                    .iter()
                    .skip(at_kill)
                    .filter(|s| s.agent == id)
                    .count()
            };
            [&live_a, &live_b]
                .iter()
                .all(|r| after(r, "ag-1") >= 3 && after(r, "ag-2") >= 3)
                .then_some(())
        },
    );
    let outage = killed_at.elapsed();
    nats.restart(leader)
        .unwrap_or_else(|e| panic!("restarting node {leader}: {e:#}"));
    nats.wait_current()
        .unwrap_or_else(|e| panic!("node {leader} catching up: {e:#}"));
    // The backlog delivered, then a graceful stop drains the rest.
    let so_far = ag1.produced().len() + ag2.produced().len();
    wait_for(LIMIT, "the backlog", &ctx, || {
        (live_a.records().len() >= so_far).then_some(())
    });
    ag1.stop();
    ag2.stop();
    let mut truth = ag1.produced();
    truth.extend(ag2.produced());
    let ctx = || context(&[&gw_a, &gw_b], &[&ag1, &ag2]);
    let a = history_at_least(&gw_a, truth.len(), &ctx);
    let b = history_at_least(&gw_b, truth.len(), &ctx);
    wait_for(LIMIT, "every record at both readers", &ctx, || {
        (live_a.records().len() >= truth.len() && live_b.records().len() >= truth.len())
            .then_some(())
    });

    once_in_gseq_order(&a, "gw-a's history");
    assert_eq!(a, b, "both replicas' history, gseqs too{}", ctx());
    assert_eq!(
        sorted(recs(&a)),
        sorted(&truth),
        "history is exactly what the agents produced{}",
        ctx()
    );
    assert_eq!(seen(&live_a), a, "gw-a's live reader saw its history");
    assert_eq!(seen(&live_b), a, "gw-b's live reader saw the same");
    let per_agent = |id: &str| truth.iter().filter(|r| r.0 == id).count();
    eprintln!(
        "kill node {leader} (the stream's leader): {} records ({} of ag-1, {} of ag-2), \
         {at_kill} before the kill, on both replicas again {outage:?} after it",
        truth.len(),
        per_agent("ag-1"),
        per_agent("ag-2")
    );
}

#[test]
fn the_replica_an_agent_and_a_reader_use_killed_both_go_on_at_the_other() {
    if !testkit::require_tool(NATS_SERVER) {
        return;
    }
    let nats = cluster(1);
    let target = HttpTarget::plain();
    let tmp = tmp();
    let js = Js::of(&nats);
    let mut gw_a = Replica::new(tmp.path(), "gw-a", &js);
    let gw_b = Replica::new(tmp.path(), "gw-b", &js);
    let reader = live_reader(&gw_a);
    let mut agent = Agent::start(tmp.path(), "ag-1", &target, &[gw_a.addr, gw_b.addr]);
    let ctx = || context(&[&gw_a, &gw_b], &[&agent]);
    wait_for(LIMIT, "six records at the reader", &ctx, || {
        (reader.records().len() >= 6).then_some(())
    });

    gw_a.kill();
    let ctx = || context(&[&gw_a, &gw_b], &[&agent]);
    wait_for(LIMIT, "the reader's stream to end", &ctx, || {
        reader.closed().then_some(())
    });
    let first = seen(&reader);
    let last = reader.last_gseq().expect("the reader saw records");
    let resumed = SseReader::connect(gw_b.addr, READER_TOKEN, Some(last));
    // The agent moved to gw-b: new records keep arriving there.
    wait_for(LIMIT, "six records after the move", &ctx, || {
        (resumed.records().len() >= 6).then_some(())
    });
    assert_eq!(
        agent.sink_metric("sonde_sink_failovers_total"),
        1.0,
        "one move, to gw-b{}",
        ctx()
    );
    assert!(gw_b.metric("sonde_gateway_frames_accepted_total") >= 1.0);
    agent.stop();
    let truth = agent.produced();
    let ctx = || context(&[&gw_a, &gw_b], &[&agent]);
    wait_for(LIMIT, "every record at the reader", &ctx, || {
        (first.len() + resumed.records().len() >= truth.len()).then_some(())
    });

    let (before, after) = (first.len(), resumed.records().len());
    let mut read = first;
    read.extend(seen(&resumed));
    once_in_gseq_order(&read, "the reader");
    let from = read[0].0;
    let history = gw_b.history_now(&format!("from_gseq={from}"));
    assert_eq!(
        read,
        history,
        "the reader's records are gw-b's history from its first gseq{}",
        ctx()
    );
    assert_eq!(
        sorted(recs(&read)),
        sorted(&truth),
        "and what the agent produced{}",
        ctx()
    );
    assert!(
        matches!(resumed.control().first(), Some(Control::Snapshot(_))),
        "gw-b resumed the reader after its last gseq (no reset): {:?}",
        resumed.control()
    );
    eprintln!(
        "replica killed: {} records, {before} read from gw-a, {after} from gw-b after since={last}",
        truth.len()
    );
}

#[test]
fn a_whole_cluster_restart_keeps_every_record_and_the_replicas_recover() {
    if !testkit::require_tool(NATS_SERVER) {
        return;
    }
    let mut nats = cluster(3);
    let target = HttpTarget::plain();
    let tmp = tmp();
    let js = Js::of(&nats);
    let mut gw_a = Replica::new(tmp.path(), "gw-a", &js);
    let mut gw_b = Replica::new(tmp.path(), "gw-b", &js);
    wait_for(LIMIT, "the stream's leader", &|| String::new(), || {
        stream_leader(&mut nats, STREAM)
    });
    let mut agent = Agent::start(tmp.path(), "ag-1", &target, &[gw_a.addr, gw_b.addr]);
    let ctx = || context(&[&gw_a, &gw_b], &[&agent]);
    history_at_least(&gw_b, 9, &ctx);
    let before = history_at_least(&gw_a, 9, &ctx);
    let head = before.last().map_or(0, |(g, _)| *g);

    nats.kill_all()
        .unwrap_or_else(|e| panic!("killing the cluster: {e:#}"));
    let down_at = Instant::now();
    // The replicas and the agent live on without NATS.
    let running = agent.process.is_running();
    let ctx = || context(&[&gw_a, &gw_b], &[&agent]);
    assert!(running, "{}", ctx());
    for gw in [&gw_a, &gw_b] {
        assert_eq!(
            crate::util::http::get(gw.addr, "/healthz").status,
            200,
            "{}",
            ctx()
        );
    }
    nats.restart_all()
        .unwrap_or_else(|e| panic!("restarting the cluster: {e:#}"));
    let ready_after = down_at.elapsed();
    // The running replicas recover by themselves: new frames accepted,
    // new records on both.
    let newer = |gw: &Replica| {
        let h = gw.history(&format!("from_gseq={}", head + 1)).ok()?;
        (h.len() >= 6).then_some(())
    };
    wait_for(LIMIT, "new records on gw-a", &ctx, || newer(&gw_a));
    wait_for(LIMIT, "new records on gw-b", &ctx, || newer(&gw_b));
    let recovered_after = down_at.elapsed();
    history_at_least(&gw_a, agent.produced().len(), &ctx);
    agent.stop();
    let truth = agent.produced();
    let ctx = || context(&[&gw_a, &gw_b], &[&agent]);
    let a = history_at_least(&gw_a, truth.len(), &ctx);
    let b = history_at_least(&gw_b, truth.len(), &ctx);
    once_in_gseq_order(&a, "gw-a's history");
    assert_eq!(a, b, "both replicas' history{}", ctx());
    assert_eq!(
        a.get(..before.len()),
        Some(before.as_slice()),
        "what the stream held before the restart, unchanged"
    );
    assert_eq!(sorted(recs(&a)), sorted(&truth), "{}", ctx());

    // Replicas started after the cluster is back read the same stream.
    gw_a.stop();
    gw_b.stop();
    gw_a.start();
    gw_b.start();
    let ctx = || context(&[&gw_a, &gw_b], &[&agent]);
    for gw in [&gw_a, &gw_b] {
        let again = history_at_least(gw, truth.len(), &ctx);
        assert_eq!(again, a, "{} restarted{}", gw.name, ctx());
    }
    eprintln!(
        "cluster restart: {} records before, {} in all; ready {ready_after:?} and \
         publishing again {recovered_after:?} after the kill",
        before.len(),
        truth.len()
    );
}

/// Part of [`an_old_spool_past_the_duplicate_window_is_all_duplicates`]:
/// two replicas offered overlapping frames of agent "racer", `rounds`
/// times each way. At the same instant from the same frame, as an agent's
/// resend to the other replica while the first still publishes; then one
/// after the other, the second from a frame later, its replica's follower
/// perhaps not yet showing it the first (only the stream's sequence tells).
/// Each frame is stored once.
fn race(gw_a: &Replica, gw_b: &Replica, rounds: u64) {
    let ctx = || context(&[gw_a, gw_b], &[]);
    let session = now_ms() - 60_000;
    let post = |gw: &Replica, seqs: std::ops::RangeInclusive<u64>| {
        ack(&gw.post("racer", &frames("racer", session, seqs)))
    };
    let mut next = 0;
    let mut accepted = 0;
    for _ in 0..rounds {
        let barrier = Barrier::new(2);
        let (x, y) = std::thread::scope(|s| {
            let x = s.spawn(|| {
                barrier.wait();
                post(gw_a, next..=next + 2)
            });
            let y = s.spawn(|| {
                barrier.wait();
                post(gw_b, next..=next + 3)
            });
            let join = |h: std::thread::ScopedJoinHandle<'_, _>| {
                h.join().unwrap_or_else(|_| panic!("posting{}", ctx()))
            };
            (join(x), join(y))
        });
        assert_eq!((x.2 + x.3, y.2 + y.3), (3, 4), "{x:?} {y:?}");
        assert_eq!(
            x.2 + y.2,
            4,
            "each frame accepted once: {x:?} {y:?}{}",
            ctx()
        );
        accepted += x.2 + y.2;
        next += 4;
        assert_eq!(post(gw_a, next..=next + 2), (session, next + 2, 3, 0));
        assert_eq!(
            post(gw_b, next + 1..=next + 3),
            (session, next + 3, 1, 2),
            "the second replica stores only the frame the first did not{}",
            ctx()
        );
        accepted += 4;
        next += 4;
    }
    assert_eq!(accepted, next);
    let expected = frame_records("racer", session, 0..=next - 1);
    for gw in [gw_a, gw_b] {
        let h = wait_for(LIMIT, "the racer's records", &ctx, || {
            gw.history("agent=racer")
                .ok()
                .filter(|h| h.len() >= expected.len())
        });
        once_in_gseq_order(&h, "the racer's history");
        assert_eq!(sorted(recs(&h)), sorted(&expected), "{}", ctx());
    }
}

#[test]
fn an_old_spool_past_the_duplicate_window_is_all_duplicates() {
    if !testkit::require_tool(NATS_SERVER) {
        return;
    }
    let nats = cluster(3);
    let tmp = tmp();
    const N: u64 = 5;
    let frames_n = N + 1;
    let view = |stream: &str| -> Vec<lab::StreamView> {
        (0..nats.len())
            .filter_map(|i| stream_view(&nats, i, stream))
            .collect()
    };
    // Every node's copy of `stream` shows `messages` and `last_seq`.
    let settled = |stream: &str, messages: u64, last_seq: u64| {
        let v = view(stream);
        (v.len() == nats.len()
            && v.iter()
                .all(|s| s.messages == messages && s.last_seq == last_seq))
        .then_some(())
    };
    let gseqs = |h: &[(u64, Rec)]| -> Vec<u64> { h.iter().map(|(g, _)| *g).collect() };

    // Part 1: the agent's subject remembers its mark past a 1 s window.
    let js = Js {
        duplicate_window: Some("1s"),
        ..Js::of(&nats)
    };
    let mut gw_a = Replica::new(tmp.path(), "gw-a", &js);
    let gw_b = Replica::new(tmp.path(), "gw-b", &js);
    let session = now_ms() - 60_000;
    let body = frames("spool", session, 0..=N);
    assert_eq!(ack(&gw_a.post("spool", &body)), (session, N, frames_n, 0));
    let published = Instant::now();
    let ctx = || context(&[&gw_a, &gw_b], &[]);
    wait_for(LIMIT, "one message on every node", &ctx, || {
        settled(STREAM, 1, 1)
    });
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(published.elapsed()));
    let dups = (session, N, 0, frames_n);
    assert_eq!(ack(&gw_b.post("spool", &body)), dups, "{}", ctx());
    gw_a.stop();
    gw_a.start();
    let ctx = || context(&[&gw_a, &gw_b], &[]);
    assert_eq!(ack(&gw_a.post("spool", &body)), dups, "{}", ctx());
    // Nothing was stored: the next frames are the stream's second message.
    let next = frames("spool", session, N + 1..=N + 3);
    assert_eq!(
        ack(&gw_a.post("spool", &next)),
        (session, N + 3, 3, 0),
        "{}",
        ctx()
    );
    wait_for(LIMIT, "two messages on every node", &ctx, || {
        settled(STREAM, 2, 2)
    });
    let expected = frame_records("spool", session, 0..=N + 3);
    let want: Vec<u64> = (1000..1000 + 2 * frames_n).chain(2000..2006).collect();
    for gw in [&gw_a, &gw_b] {
        let h = history_at_least(gw, expected.len(), &ctx);
        assert_eq!(gseqs(&h), want, "messages 1 and 2 of the stream{}", ctx());
        assert_eq!(sorted(recs(&h)), sorted(&expected));
    }

    // Part 2: the subject ages out (max_age 4 s); the marks stream
    // remembers the mark.
    let north = Js {
        region: "eu-north".into(),
        max_age: Some("4s"),
        duplicate_window: Some("1s"),
        ..Js::of(&nats)
    };
    let stream = north.stream();
    let marks = format!("{stream}-marks");
    let north_a = Replica::new(tmp.path(), "north-a", &north);
    let mut north_b = Replica::new(tmp.path(), "north-b", &north);
    let session = now_ms() - 60_000;
    let body = frames("spool", session, 0..=N);
    assert_eq!(
        ack(&north_a.post("spool", &body)),
        (session, N, frames_n, 0)
    );
    let published = Instant::now();

    // Part 3, meanwhile, on part 1's replicas: a race between them.
    race(&gw_a, &gw_b, 5);
    drop((gw_a, gw_b));

    let ctx = || context(&[&north_a, &north_b], &[]);
    // Aged out of the stream (which keeps its last sequence), the mark saved.
    wait_for(LIMIT, "the message aged out, the mark saved", &ctx, || {
        settled(&stream, 0, 1)?;
        settled(&marks, 1, 1)
    });
    let aged_out = published.elapsed();
    let dups = (session, N, 0, frames_n);
    assert_eq!(ack(&north_b.post("spool", &body)), dups, "{}", ctx());
    north_b.stop();
    north_b.start();
    let ctx = || context(&[&north_a, &north_b], &[]);
    assert_eq!(ack(&north_b.post("spool", &body)), dups, "{}", ctx());
    assert_eq!(view(&stream).len(), nats.len());
    assert!(
        view(&stream).iter().all(|v| v.last_seq == 1),
        "nothing stored: {:?}",
        view(&stream)
    );
    // The next frames, to the replica that stored the first ones (its
    // memory of the agent's subject is older than the stream's).
    let next = frames("spool", session, N + 1..=N + 3);
    assert_eq!(
        ack(&north_a.post("spool", &next)),
        (session, N + 3, 3, 0),
        "{}",
        ctx()
    );
    // Stored as the stream's second message: nothing between.
    let h = wait_for(
        Duration::from_secs(3),
        "the new frames' records",
        &ctx,
        || north_b.history("").ok().filter(|h| h.len() >= 6),
    );
    assert_eq!(gseqs(&h), (2000..2006).collect::<Vec<_>>(), "{}", ctx());
    assert_eq!(
        sorted(recs(&h)),
        sorted(&frame_records("spool", session, N + 1..=N + 3))
    );
    eprintln!(
        "old spool: {frames_n} frames offered again to each replica, all duplicates; \
         aged out after {aged_out:?}"
    );
}

#[test]
fn a_stream_with_other_settings_stops_the_gateway_naming_them() {
    if !testkit::require_tool(NATS_SERVER) {
        return;
    }
    let nats = cluster(1);
    let tmp = tmp();
    let js = Js {
        max_age: Some("1h"),
        ..Js::of(&nats)
    };
    let mut first = Replica::new(tmp.path(), "gw-a", &js);
    first.stop();
    let other = Js {
        replicas: 3,
        max_age: Some("2h"),
        ..js.clone()
    };
    let mut second = Replica::configure(tmp.path(), "gw-b", &other);
    let process = second.spawn();
    let code = process.wait(Duration::from_secs(30));
    let stderr = process.stderr();
    assert_eq!(code, 1, "{}", process.describe());
    for needle in [
        format!("stream `{STREAM}` exists with other settings"),
        "replicas: the stream has 1, gateway.toml asks for 3".into(),
        "max_age: the stream has 3600s, gateway.toml asks for 7200s".into(),
    ] {
        assert!(stderr.contains(&needle), "{needle:?}{}", process.describe());
    }
    assert!(
        !stderr.contains("duplicate_window:"),
        "only what differs{}",
        process.describe()
    );
    // The stream was left as it was: the first settings still start.
    first.start();
    first.stop();
}
