//! The sender under tokio's paused clock, against scripted gateways (one
//! per URL) and a real spool in a temporary directory: each wait between
//! two requests is exactly what the backoff (seeded jitter), the breaker
//! or `Retry-After` says, a round through replicas moves at once, and
//! closing cuts a wait that no longer fits the grace.

use std::collections::VecDeque;

use wire::{Record, Status};

use super::*;
use crate::retry::SplitMix64;
use crate::sink::frames::encode_frames;
use crate::sink::uplink::WhenFull;
use crate::sink::uplink::policy::{Ack, Refusal};

/// Which URL each request went to, and when.
type Sent = Arc<Mutex<Vec<(usize, Instant)>>>;

/// Answers requests from a script, noting when each one came.
struct Scripted {
    url: usize,
    uri: String,
    script: VecDeque<Outcome>,
    sent: Sent,
    connects: u64,
    disconnects: Arc<Mutex<Vec<usize>>>,
}

impl Uplink for Scripted {
    async fn send(&mut self, _body: Bytes) -> Outcome {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((self.url, Instant::now()));
        self.connects += 1;
        self.script
            .pop_front()
            .unwrap_or_else(|| Outcome::Transport("script exhausted".into()))
    }

    fn disconnect(&mut self) {
        self.disconnects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.url);
    }

    fn connects(&self) -> u64 {
        self.connects
    }

    fn uri(&self) -> &str {
        &self.uri
    }
}

/// Appends one frame of one record to `spool`; its `(session, seq)`.
fn append_frame(spool: &mut Spool) -> FrameId {
    let id = (spool.numbering().session(), spool.numbering().next_seq());
    let record = Record {
        t_ms: 1_767_225_600_000,
        rt_ms: 12,
        sc: Some(200),
        st: Status::Up,
        dn_ms: None,
        cn_ms: Some(1),
        tl_ms: None,
        ft_ms: Some(3),
        error: None,
    };
    let mut buf = Vec::new();
    let frames = encode_frames(
        "agent-1",
        id.0,
        id.1,
        &[("api", record)],
        |&(c, r)| (c, r),
        &mut buf,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    spool
        .append(&buf, frames, 1)
        .unwrap_or_else(|e| panic!("{e}"));
    id
}

/// A spool in `dir` holding one frame of one record; its `(session, seq)`.
fn spool_with_one_frame(dir: &std::path::Path) -> (Spool, FrameId) {
    let mut spool = Spool::open(dir, "agent-1", 1 << 20, WhenFull::DropOldest, 1000)
        .unwrap_or_else(|e| panic!("{e}"));
    let id = append_frame(&mut spool);
    (spool, id)
}

/// A running sender and what the test watches it through.
struct Running {
    shared: Arc<Shared>,
    /// Which URL each request went to, and when.
    sent: Sent,
    /// The URLs whose connection was dropped, in order.
    disconnects: Arc<Mutex<Vec<usize>>>,
    closing: watch::Sender<Option<Instant>>,
    task: tokio::task::JoinHandle<()>,
    /// The spool's directory, removed when the test ends.
    _dir: tempfile::TempDir,
}

/// Starts the sender over that spool with one URL answering `script`,
/// and jitter seed 42.
fn start(script: impl FnOnce(FrameId) -> Vec<Outcome>) -> Running {
    start_replicas(|id| vec![script(id)])
}

/// Starts the sender with one URL per script (`http://gw-N.test`).
fn start_replicas(scripts: impl FnOnce(FrameId) -> Vec<Vec<Outcome>>) -> Running {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (spool, id) = spool_with_one_frame(dir.path());
    let shared = Arc::new(Shared {
        spool: Mutex::new(spool),
        wake: Notify::new(),
        name: "gateway",
        metrics: Metrics::new("agent-1", None),
    });
    let sent: Sent = Arc::default();
    let disconnects = Arc::default();
    let uplinks: Vec<Scripted> = scripts(id)
        .into_iter()
        .enumerate()
        .map(|(url, script)| Scripted {
            url,
            uri: format!("http://gw-{url}.test"),
            script: script.into(),
            sent: sent.clone(),
            connects: 0,
            disconnects: Arc::clone(&disconnects),
        })
        .collect();
    let (closing, closing_rx) = watch::channel(None);
    let task = tokio::spawn(run(
        shared.clone(),
        uplinks,
        closing_rx,
        SplitMix64::new(42),
    ));
    Running {
        shared,
        sent,
        disconnects,
        closing,
        task,
        _dir: dir,
    }
}

fn unacked(shared: &Shared) -> u64 {
    shared
        .spool
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .unacked_frames()
}

fn gaps(sent: &Sent) -> Vec<Duration> {
    let sent = sent.lock().unwrap_or_else(PoisonError::into_inner);
    sent.windows(2).map(|w| w[1].1 - w[0].1).collect()
}

/// The URL of each request, in order.
fn urls(sent: &Sent) -> Vec<usize> {
    let sent = sent.lock().unwrap_or_else(PoisonError::into_inner);
    sent.iter().map(|(url, _)| *url).collect()
}

fn requests(sent: &Sent) -> usize {
    sent.lock().unwrap_or_else(PoisonError::into_inner).len()
}

/// Rounds a wanted delay up as tokio's timers do: a sleep ends at the
/// first whole-millisecond tick at or after its deadline.
fn tick(d: Duration) -> Duration {
    Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64)
}

fn ack(id: FrameId) -> Outcome {
    Outcome::Acked(Ack {
        session: id.0,
        acked: id.1,
        accepted: 1,
        duplicates: 0,
    })
}

fn refused(status: u16, error: &str) -> Outcome {
    Outcome::Refused {
        status,
        refusal: Refusal {
            error: error.into(),
            ..Refusal::default()
        },
        retry_after: None,
    }
}

/// Waits (paused clock) until nothing is left unacknowledged, then closes.
async fn drain_and_close(run: &mut Running) {
    while unacked(&run.shared) > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = run
        .closing
        .send(Some(Instant::now() + Duration::from_secs(1)));
    (&mut run.task).await.unwrap();
}

fn metrics_text(shared: &Shared) -> String {
    shared.metrics.render(exposition::Format::Text)
}

fn unavailable() -> Outcome {
    Outcome::Transport("connection refused".into())
}

/// A 429 or 503 asking to wait `retry_after`.
fn busy(status: u16, retry_after: Duration) -> Outcome {
    Outcome::Refused {
        status,
        refusal: Refusal::default(),
        retry_after: Some(retry_after),
    }
}

#[tokio::test(start_paused = true)]
async fn waits_follow_the_backoff_the_breaker_and_retry_after() {
    let run = start(|(session, seq)| {
        let mut script: Vec<Outcome> = (0..6).map(|_| unavailable()).collect();
        script.push(busy(503, Duration::from_secs(7)));
        script.push(Outcome::Acked(Ack {
            session,
            acked: seq,
            accepted: 1,
            duplicates: 0,
        }));
        script
    });
    while unacked(&run.shared) > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = run
        .closing
        .send(Some(Instant::now() + Duration::from_secs(1)));
    run.task.await.unwrap();

    // The same seed gives the same jitter: full jitter up to 100 ms
    // doubling, and from the fifth failure in a row the breaker's 5 s
    // cool-down (a failed half-open trial opens it again).
    let mut rng = SplitMix64::new(42);
    let mut want: Vec<Duration> = (0..6)
        .map(|attempt| {
            let backoff = RECONNECT.delay(attempt, &mut rng);
            if attempt + 1 >= BREAKER_THRESHOLD {
                backoff.max(BREAKER_COOL_DOWN)
            } else {
                backoff
            }
        })
        .collect();
    // Then the 503's Retry-After.
    want.push(Duration::from_secs(7));
    // tokio's timers tick in whole milliseconds: a sleep ends at the first
    // tick at or after its deadline.
    let ticks: Vec<Duration> = want
        .iter()
        .map(|d| Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64))
        .collect();
    assert_eq!(gaps(&run.sent), ticks);
    assert!(want[..4].iter().all(|d| *d <= RECONNECT.ceiling(3)));
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_up_to_its_cap_and_closing_cuts_the_wait() {
    let run = start(|_| vec![busy(429, Duration::from_secs(3600))]);
    // The first request is refused with an hour's Retry-After; the sender
    // waits MAX_RETRY_AFTER (10 minutes), then asks again.
    let t0 = Instant::now();
    while run
        .sent
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
        < 2
    {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(gaps(&run.sent)[0], MAX_RETRY_AFTER);
    assert!(Instant::now() - t0 >= MAX_RETRY_AFTER);

    // The script is exhausted (transport errors): closing with a grace
    // shorter than the next wait stops the sender at once, the frame kept.
    let _ = run
        .closing
        .send(Some(Instant::now() + Duration::from_millis(1)));
    let closed_at = Instant::now();
    run.task.await.unwrap();
    assert!(Instant::now() - closed_at < Duration::from_millis(1));
    assert_eq!(unacked(&run.shared), 1);
}

#[tokio::test(start_paused = true)]
async fn a_foreign_ack_deletes_nothing_and_is_retried_with_backoff() {
    // An older gateway poisoned by a frame this agent never sent: its
    // mark is a later session (and seq 2^64-1) than any of this agent's.
    let run = start(|(session, seq)| {
        let foreign = |acked| {
            Outcome::Acked(Ack {
                session: u64::MAX,
                acked,
                accepted: 0,
                duplicates: 1,
            })
        };
        let mut script: Vec<Outcome> = (0..3).map(|_| foreign(u64::MAX)).collect();
        // The same session, a seq this agent never reached.
        script.push(Outcome::Acked(Ack {
            session,
            acked: seq + 1,
            accepted: 0,
            duplicates: 1,
        }));
        // After an operator reset: the real acknowledgement.
        script.push(Outcome::Acked(Ack {
            session,
            acked: seq,
            accepted: 1,
            duplicates: 0,
        }));
        script
    });
    while run
        .sent
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
        < 4
    {
        assert_eq!(unacked(&run.shared), 1, "nothing deleted on a foreign ack");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while unacked(&run.shared) > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = run
        .closing
        .send(Some(Instant::now() + Duration::from_secs(1)));
    run.task.await.unwrap();
    let mut rng = SplitMix64::new(42);
    let want: Vec<Duration> = (0..4)
        .map(|attempt| FOREIGN_ACK.delay(attempt, &mut rng))
        .map(|d| Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64))
        .collect();
    assert_eq!(gaps(&run.sent), want);
    let text = run.shared.metrics.render(exposition::Format::Text);
    assert!(
        text.contains("sonde_sink_acks_refused_total{sink=\"gateway\"} 4\n"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unavailable_replica_moves_at_once_and_only_a_failed_round_backs_off() {
    let mut run = start_replicas(|id| {
        vec![
            vec![unavailable(), unavailable()],
            vec![refused(503, "overloaded"), refused(502, "")],
            vec![Outcome::Transport("no answer within 15s".into()), ack(id)],
        ]
    });
    drain_and_close(&mut run).await;
    // Round one: 0, 1, 2 at once; all failed, so the backoff of the first
    // failure (attempt 0); round two: 0, 1 at once, 2 acknowledges.
    assert_eq!(urls(&run.sent), [0, 1, 2, 0, 1, 2]);
    let backoff = tick(RECONNECT.delay(0, &mut SplitMix64::new(42)));
    let zero = Duration::ZERO;
    assert_eq!(gaps(&run.sent), [zero, zero, backoff, zero, zero]);
    // Each URL left has its connection dropped; the frame went again each
    // time and was acknowledged once.
    assert_eq!(
        *run.disconnects
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
        [0, 1, 2, 0, 1]
    );
    let text = metrics_text(&run.shared);
    assert!(
        text.contains("sonde_sink_failovers_total{sink=\"gateway\"} 5\n"),
        "{text}"
    );
    assert!(
        text.contains("sonde_sink_gateway_info{sink=\"gateway\",url=\"http://gw-2.test\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("sonde_sink_records_acked_total{sink=\"gateway\"} 1\n"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_round_of_overloaded_replicas_waits_retry_after_then_the_breaker_counts_rounds() {
    // Two replicas, both 503 with Retry-After 7 s: one move at once, then
    // the wait they ask for. Then transport failures: each round of two
    // is one failure to the backoff and the breaker (opens after five).
    let mut run = start_replicas(|id| {
        let mut a = vec![busy(503, Duration::from_secs(7))];
        let mut b = vec![busy(503, Duration::from_secs(7))];
        for _ in 0..5 {
            a.push(unavailable());
            b.push(unavailable());
        }
        a.push(ack(id));
        vec![a, b]
    });
    drain_and_close(&mut run).await;
    let sent = urls(&run.sent);
    assert_eq!(sent, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]);
    let zero = Duration::ZERO;
    let mut rng = SplitMix64::new(42);
    let mut want = vec![zero, Duration::from_secs(7)];
    for attempt in 0..5 {
        let backoff = RECONNECT.delay(attempt, &mut rng);
        let wait = if attempt + 1 >= BREAKER_THRESHOLD {
            backoff.max(BREAKER_COOL_DOWN)
        } else {
            backoff
        };
        want.push(zero);
        want.push(tick(wait));
    }
    assert_eq!(gaps(&run.sent), want);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_about_the_frames_or_the_agent_stays_on_the_url() {
    // 429, then 401 (held, retried slowly), then the ack: all from the
    // first URL; the second is never asked.
    let mut run = start_replicas(|id| {
        vec![
            vec![
                busy(429, Duration::from_secs(2)),
                refused(401, "unauthorized"),
                ack(id),
            ],
            vec![],
        ]
    });
    drain_and_close(&mut run).await;
    assert_eq!(urls(&run.sent), [0, 0, 0]);
    let hold = tick(HOLD.delay(0, &mut SplitMix64::new(42)));
    assert_eq!(gaps(&run.sent), [Duration::from_secs(2), hold]);
    let text = metrics_text(&run.shared);
    assert!(
        text.contains("sonde_sink_failovers_total{sink=\"gateway\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("sonde_sink_gateway_info{sink=\"gateway\",url=\"http://gw-0.test\"} 1\n"),
        "{text}"
    );

    // A bad frame is quarantined where it was refused.
    let mut run = start_replicas(|_| vec![vec![refused(400, "bad_frame")], vec![]]);
    drain_and_close(&mut run).await;
    assert_eq!(urls(&run.sent), [0]);
    let text = metrics_text(&run.shared);
    assert!(
        text.contains("sonde_sink_frames_quarantined_total{sink=\"gateway\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("sonde_sink_failovers_total{sink=\"gateway\"} 0\n"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_sender_stays_on_a_working_replica_until_it_fails() {
    let run = start_replicas(|first| {
        let next = (first.0, first.1 + 1);
        let last = (first.0, first.1 + 2);
        vec![
            vec![unavailable(), ack(last)],
            vec![ack(first), ack(next), unavailable()],
        ]
    });
    while unacked(&run.shared) > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Two more frames, one after the other: both to the replica that
    // works; the third request finds it gone and moves back at once.
    for n in 0..2 {
        append_frame(
            &mut run
                .shared
                .spool
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        run.shared.wake.notify_one();
        while unacked(&run.shared) > 0 && requests(&run.sent) < 4 + n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while unacked(&run.shared) > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(urls(&run.sent), [0, 1, 1, 1, 0]);
    let text = metrics_text(&run.shared);
    assert!(
        text.contains("sonde_sink_failovers_total{sink=\"gateway\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("sonde_sink_gateway_info{sink=\"gateway\",url=\"http://gw-0.test\"} 1\n"),
        "{text}"
    );
    let _ = run.closing.send(Some(Instant::now()));
    run.task.await.unwrap();
}
