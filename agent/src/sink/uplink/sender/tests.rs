//! The sender under tokio's paused clock, against a scripted gateway and a
//! real spool in a temporary directory: each wait between two requests is
//! exactly what the backoff (seeded jitter), the breaker or `Retry-After`
//! says, and closing cuts a wait that no longer fits the grace.

use std::collections::VecDeque;

use wire::{Record, Status};

use super::*;
use crate::retry::SplitMix64;
use crate::sink::frames::encode_frames;
use crate::sink::uplink::WhenFull;
use crate::sink::uplink::policy::{Ack, Refusal};

/// Answers requests from a script, noting when each one came.
struct Scripted {
    script: VecDeque<Outcome>,
    sent: Arc<Mutex<Vec<Instant>>>,
    connects: u64,
}

impl Uplink for Scripted {
    async fn send(&mut self, _body: Bytes) -> Outcome {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Instant::now());
        self.connects += 1;
        self.script
            .pop_front()
            .unwrap_or_else(|| Outcome::Transport("script exhausted".into()))
    }

    fn disconnect(&mut self) {}

    fn connects(&self) -> u64 {
        self.connects
    }

    fn uri(&self) -> &str {
        "http://gateway.test"
    }
}

/// A spool in `dir` holding one frame of one record; its `(session, seq)`.
fn spool_with_one_frame(dir: &std::path::Path) -> (Spool, FrameId) {
    let mut spool = Spool::open(dir, "agent-1", 1 << 20, WhenFull::DropOldest, 1000)
        .unwrap_or_else(|e| panic!("{e}"));
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
    (spool, id)
}

/// A running sender and what the test watches it through.
struct Running {
    shared: Arc<Shared>,
    /// When each request was sent.
    sent: Arc<Mutex<Vec<Instant>>>,
    closing: watch::Sender<Option<Instant>>,
    task: tokio::task::JoinHandle<()>,
    /// The spool's directory, removed when the test ends.
    _dir: tempfile::TempDir,
}

/// Starts the sender over that spool with `script` and jitter seed 42.
fn start(script: impl FnOnce(FrameId) -> Vec<Outcome>) -> Running {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (spool, id) = spool_with_one_frame(dir.path());
    let shared = Arc::new(Shared {
        spool: Mutex::new(spool),
        wake: Notify::new(),
        name: "gateway",
        metrics: Metrics::new("agent-1", None),
    });
    let sent = Arc::new(Mutex::new(Vec::new()));
    let uplink = Scripted {
        script: script(id).into(),
        sent: sent.clone(),
        connects: 0,
    };
    let (closing, closing_rx) = watch::channel(None);
    let task = tokio::spawn(run(shared.clone(), uplink, closing_rx, SplitMix64::new(42)));
    Running {
        shared,
        sent,
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

fn gaps(sent: &Mutex<Vec<Instant>>) -> Vec<Duration> {
    let sent = sent.lock().unwrap_or_else(PoisonError::into_inner);
    sent.windows(2).map(|w| w[1] - w[0]).collect()
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
