//! The pure core of one receiver's delivery: a FIFO of pending
//! notifications delivered head first, one at a time (a recovery never
//! overtakes its down), what an answer means ([`classify`]), when to try
//! again (exponential backoff with full jitter, `Retry-After` honoured),
//! and when to give up (a permanent refusal, or older than the max age).
//!
//! Clock and randomness come from the caller: times are epoch
//! milliseconds (they survive a restart in the checkpoint).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::dead::{DeadLetter, LetterKey};
use crate::alert::event::Event;
use crate::retry::{Backoff, Jitter};

/// The longest `Retry-After` honoured; a longer one waits this long.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);
/// The most notifications one receiver holds; past it the oldest waiting
/// one (not the head, which may be in flight) goes to the dead letters.
pub const MAX_PENDING: usize = 100_000;
/// The most dead letters held while the file cannot be written; past it
/// the oldest are dropped (and logged by the caller).
pub const MAX_UNWRITTEN: usize = 100_000;

/// When to retry and when to give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The backoff between attempts (full jitter: floor zero).
    pub backoff: Backoff,
    /// Older than this since enqueued: dead-lettered.
    pub max_age: Duration,
    /// The longest `Retry-After` honoured.
    pub retry_after_cap: Duration,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered.
    Answered {
        /// The status code.
        status: u16,
        /// Its `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// No answer: connect, TLS, timeout, a broken exchange.
    Transport(String),
    /// The request could not even be built; trying again cannot help.
    Unsendable(String),
    /// Nothing to send for it (an Alertmanager recovery whose alerts were
    /// never accepted): done without a request.
    NothingToSend,
}

impl Outcome {
    /// A short description for `last_error` and logs.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Answered { status, .. } => format!("HTTP {status}"),
            Outcome::Transport(e) | Outcome::Unsendable(e) => e.clone(),
            Outcome::NothingToSend => "nothing to send".to_owned(),
        }
    }
}

/// What an outcome means for the notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered (2xx).
    Delivered,
    /// Try again, after at least `retry_after` when the receiver said so.
    Retry {
        /// The receiver's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Refused for good (any other status): dead-lettered at once.
    Permanent,
}

/// Whether a status asks for another try: 408, 425, 429 and 5xx.
pub fn retryable(status: u16) -> bool {
    matches!(status, 408 | 425 | 429 | 500..=599)
}

/// What `outcome` means: 2xx delivered; 408, 425, 429, 5xx and transport
/// errors retried; any other status (a 4xx, a redirect) permanent.
pub fn classify(outcome: &Outcome) -> Verdict {
    match *outcome {
        Outcome::Answered { status, .. } if (200..300).contains(&status) => Verdict::Delivered,
        Outcome::NothingToSend => Verdict::Delivered,
        Outcome::Answered {
            status,
            retry_after,
        } if retryable(status) => Verdict::Retry { retry_after },
        Outcome::Answered { .. } | Outcome::Unsendable(_) => Verdict::Permanent,
        Outcome::Transport(_) => Verdict::Retry { retry_after: None },
    }
}

/// The wait after the `failed`-th failed attempt (1-based): full jitter
/// up to `min(cap, first · 2^(failed-1))`, but at least `retry_after`
/// (itself capped at `policy.retry_after_cap`).
pub fn retry_delay(
    policy: &Policy,
    failed: u32,
    retry_after: Option<Duration>,
    jitter: &mut impl Jitter,
) -> Duration {
    let backoff = policy.backoff.delay(failed.saturating_sub(1), jitter);
    match retry_after {
        Some(asked) => backoff.max(asked.min(policy.retry_after_cap)),
        None => backoff,
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A notification waiting for (another) attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// What to deliver.
    #[serde(with = "arc_event")]
    pub event: Arc<Event>,
    /// When it was enqueued, epoch ms (the max age counts from here).
    pub enqueued_ms: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not before this, epoch ms.
    pub next_attempt_ms: u64,
    /// How the last attempt failed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// The dead letter this replays, marked replayed in the file once
    /// this leaves the queue.
    #[serde(default)]
    pub replay_of: Option<LetterKey>,
    /// The checkpoint that holds it: not sent before that checkpoint is on
    /// disk (0: already durable, as restored or replayed ones are).
    #[serde(default)]
    pub checkpoint: u64,
}

impl Pending {
    /// `event`, enqueued at `now_ms`, due at once.
    pub fn new(event: Arc<Event>, now_ms: u64) -> Pending {
        Pending {
            event,
            enqueued_ms: now_ms,
            attempts: 0,
            next_attempt_ms: now_ms,
            last_error: None,
            replay_of: None,
            checkpoint: 0,
        }
    }

    fn expired(&self, now_ms: u64, policy: &Policy) -> bool {
        now_ms.saturating_sub(self.enqueued_ms) >= ms(policy.max_age)
    }
}

mod arc_event {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(e: &Arc<Event>, s: S) -> Result<S::Ok, S::Error> {
        e.as_ref().serialize(s)
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Arc<Event>, D::Error> {
        Event::deserialize(d).map(Arc::new)
    }
}

/// What the queue wants next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Deliver this (a copy of the head, which stays queued until settled).
    Due(Pending),
    /// Nothing due before this epoch ms.
    At(u64),
    /// Nothing pending.
    Empty,
}

/// How [`Queue::settle`] left the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Delivered and removed, after `attempts` attempts.
    Delivered {
        /// Attempts it took.
        attempts: u32,
    },
    /// Kept for another attempt at `at_ms`.
    Retry {
        /// Epoch ms.
        at_ms: u64,
    },
    /// Removed to the dead letters.
    DeadLettered,
    /// The head is no longer that notification (a restore happened): nothing done.
    Stale,
}

/// One receiver's notifications: pending ones in order, and dead letters
/// not yet written to the file.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    receiver: String,
    pending: VecDeque<Pending>,
    ids: HashSet<String>,
    unwritten: VecDeque<DeadLetter>,
    replayed: VecDeque<LetterKey>,
    buried: u64,
}

impl Queue {
    /// An empty queue of `receiver`.
    pub fn new(receiver: &str) -> Queue {
        Queue {
            receiver: receiver.to_owned(),
            ..Queue::default()
        }
    }

    /// A queue holding what a checkpoint held.
    pub fn restored(
        receiver: &str,
        pending: Vec<Pending>,
        unwritten: Vec<DeadLetter>,
        replayed: Vec<LetterKey>,
    ) -> Queue {
        let mut q = Queue::new(receiver);
        for p in pending {
            if q.ids.insert(p.event.id.clone()) {
                q.pending.push_back(p);
            }
        }
        q.unwritten = unwritten.into();
        q.replayed = replayed.into();
        q
    }

    /// Appends `event` at `now_ms`. `false` when the same event id is
    /// already pending (nothing is added).
    pub fn push(&mut self, event: Arc<Event>, now_ms: u64) -> bool {
        self.push_pending(Pending::new(event, now_ms), now_ms)
    }

    /// As [`Queue::push`], for an event that may be sent only once
    /// checkpoint number `checkpoint` is durable (write-ahead: a
    /// notification is never sent before the state that decided it is on
    /// disk, so its id is never decided anew for another incident).
    pub fn push_after(&mut self, event: Arc<Event>, now_ms: u64, checkpoint: u64) -> bool {
        let mut p = Pending::new(event, now_ms);
        p.checkpoint = checkpoint;
        self.push_pending(p, now_ms)
    }

    /// Appends `letter`'s event again at `now_ms`, as a new notification
    /// (attempts and max age start over) that replays `letter`. `false`
    /// when its id is pending already.
    pub fn push_replay(&mut self, letter: &DeadLetter, now_ms: u64) -> bool {
        let mut p = Pending::new(Arc::new(letter.event.clone()), now_ms);
        p.replay_of = Some(letter.key());
        self.push_pending(p, now_ms)
    }

    fn push_pending(&mut self, p: Pending, now_ms: u64) -> bool {
        if !self.ids.insert(p.event.id.clone()) {
            return false;
        }
        if self.pending.len() >= MAX_PENDING.max(2) {
            if let Some(evicted) = self.pending.remove(1) {
                let why = format!("evicted: more than {MAX_PENDING} notifications pending");
                self.leave(&evicted);
                self.bury(&evicted, now_ms, why);
            }
        }
        self.pending.push_back(p);
        true
    }

    /// `p` left the queue: its id is free, and a replay is done.
    fn leave(&mut self, p: &Pending) {
        self.ids.remove(&p.event.id);
        if let Some(key) = &p.replay_of {
            self.replayed.push_back(key.clone());
        }
    }

    /// Notifications pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The pending notifications, head first.
    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.pending.iter()
    }

    /// Whether `id` is pending.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// What to do at `now_ms`: heads past the max age go to the dead
    /// letters first (without another attempt).
    pub fn next(&mut self, now_ms: u64, policy: &Policy) -> Next {
        while let Some(head) = self.pending.front() {
            if !head.expired(now_ms, policy) {
                return if head.next_attempt_ms <= now_ms {
                    Next::Due(head.clone())
                } else {
                    Next::At(head.next_attempt_ms)
                };
            }
            let why = expired_reason(head, policy);
            self.pop_to_dead(now_ms, why);
        }
        Next::Empty
    }

    /// Records how the attempt at the head (`id`) ended at `now_ms`.
    pub fn settle(
        &mut self,
        id: &str,
        outcome: &Outcome,
        now_ms: u64,
        policy: &Policy,
        jitter: &mut impl Jitter,
    ) -> Settled {
        let Some(head) = self.pending.front_mut().filter(|h| h.event.id == id) else {
            return Settled::Stale;
        };
        head.attempts = head.attempts.saturating_add(1);
        match classify(outcome) {
            Verdict::Delivered => {
                let attempts = head.attempts;
                if let Some(done) = self.pending.pop_front() {
                    self.leave(&done);
                }
                Settled::Delivered { attempts }
            }
            Verdict::Permanent => {
                self.pop_to_dead(now_ms, outcome.describe());
                Settled::DeadLettered
            }
            Verdict::Retry { retry_after } => {
                head.last_error = Some(outcome.describe());
                if head.expired(now_ms, policy) {
                    let why = expired_reason(head, policy);
                    self.pop_to_dead(now_ms, why);
                    return Settled::DeadLettered;
                }
                let delay = retry_delay(policy, head.attempts, retry_after, jitter);
                head.next_attempt_ms = now_ms.saturating_add(ms(delay));
                Settled::Retry {
                    at_ms: head.next_attempt_ms,
                }
            }
        }
    }

    fn pop_to_dead(&mut self, now_ms: u64, why: String) {
        if let Some(head) = self.pending.pop_front() {
            self.leave(&head);
            self.bury(&head, now_ms, why);
        }
    }

    fn bury(&mut self, p: &Pending, now_ms: u64, why: String) {
        self.buried += 1;
        if self.unwritten.len() >= MAX_UNWRITTEN {
            if let Some(lost) = self.unwritten.pop_front() {
                tracing::error!(receiver = %self.receiver, id = %lost.id, "dead letter dropped: too many could not be written");
            }
        }
        self.unwritten
            .push_back(DeadLetter::new(&self.receiver, p, now_ms, why));
    }

    /// Notifications moved to the dead letters since this queue was made.
    pub fn buried(&self) -> u64 {
        self.buried
    }

    /// The dead letters not yet written, oldest first.
    pub fn unwritten(&self) -> impl Iterator<Item = &DeadLetter> {
        self.unwritten.iter()
    }

    /// The replayed dead letters to mark in the file, oldest first.
    pub fn replayed(&self) -> impl Iterator<Item = &LetterKey> {
        self.replayed.iter()
    }

    /// The dead letters `letters` (by key: the cap may have dropped some
    /// from the front while they were written) and the first `markers`
    /// replay markers (only ever appended) were written: forget them.
    pub fn written(&mut self, letters: &[LetterKey], markers: usize) {
        let done: std::collections::HashSet<&LetterKey> = letters.iter().collect();
        self.unwritten.retain(|l| !done.contains(&l.key()));
        self.replayed.drain(..markers.min(self.replayed.len()));
    }
}

fn expired_reason(p: &Pending, policy: &Policy) -> String {
    let last = p.last_error.as_deref().unwrap_or("no attempt");
    format!(
        "not delivered within max age {:?} ({} attempts; last: {last})",
        policy.max_age, p.attempts
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::deliver::tests::event;
    use crate::alert::event::Kind;
    use crate::retry::SplitMix64;

    const S: Duration = Duration::from_secs(1);

    fn policy() -> Policy {
        Policy {
            backoff: Backoff {
                base: S,
                cap: 300 * S,
                floor: Duration::ZERO,
            },
            max_age: 3600 * S,
            retry_after_cap: RETRY_AFTER_CAP,
        }
    }

    fn answered(status: u16) -> Outcome {
        Outcome::Answered {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn statuses_are_classified() {
        for status in [200, 201, 202, 204, 299] {
            assert_eq!(classify(&answered(status)), Verdict::Delivered, "{status}");
        }
        for status in [408, 425, 429, 500, 502, 503, 504, 599] {
            assert!(
                matches!(classify(&answered(status)), Verdict::Retry { .. }),
                "{status}"
            );
        }
        for status in [301, 400, 401, 403, 404, 410, 413, 422] {
            assert_eq!(classify(&answered(status)), Verdict::Permanent, "{status}");
        }
        assert_eq!(
            classify(&Outcome::Transport("refused".into())),
            Verdict::Retry { retry_after: None }
        );
        assert_eq!(
            classify(&Outcome::Unsendable("x".into())),
            Verdict::Permanent
        );
        let asked = Outcome::Answered {
            status: 429,
            retry_after: Some(7 * S),
        };
        assert_eq!(
            classify(&asked),
            Verdict::Retry {
                retry_after: Some(7 * S)
            }
        );
    }

    #[test]
    fn backoff_is_full_jitter_under_the_cap_and_retry_after_is_a_floor() {
        let p = policy();
        let mut rng = SplitMix64::new(11);
        for failed in 1..40 {
            let ceiling = (S * 2u32.saturating_pow(failed - 1)).min(300 * S);
            let d = retry_delay(&p, failed, None, &mut rng);
            assert!(d <= ceiling, "attempt {failed}: {d:?} > {ceiling:?}");
        }
        // Full jitter: the first delays spread over [0, 1 s].
        let firsts: HashSet<_> = (0..100)
            .map(|_| retry_delay(&p, 1, None, &mut rng))
            .collect();
        assert!(firsts.len() > 90 && firsts.iter().all(|d| *d <= S));
        // Retry-After is waited at least, beyond the backoff cap too, up to its cap.
        for _ in 0..100 {
            assert!(retry_delay(&p, 1, Some(2 * S), &mut rng) >= 2 * S);
        }
        assert_eq!(retry_delay(&p, 1, Some(600 * S), &mut rng), 600 * S);
        assert_eq!(
            retry_delay(&p, 1, Some(86_400 * S), &mut rng),
            RETRY_AFTER_CAP
        );
        // A short Retry-After does not shorten a longer backoff.
        let mut a = SplitMix64::new(5);
        let mut b = SplitMix64::new(5);
        let plain = retry_delay(&p, 9, None, &mut a);
        assert_eq!(
            retry_delay(&p, 9, Some(Duration::from_millis(1)), &mut b),
            plain.max(Duration::from_millis(1))
        );
    }

    #[test]
    fn the_head_is_delivered_first_and_removed_only_when_delivered() {
        let p = policy();
        let mut rng = SplitMix64::new(1);
        let mut q = Queue::new("hook");
        assert!(q.push(event("down", Kind::Down, "api").into(), 0));
        assert!(q.push(event("up", Kind::Recovered, "api").into(), 10));
        assert!(
            !q.push(event("down", Kind::Down, "api").into(), 20),
            "same id twice"
        );
        let Next::Due(head) = q.next(0, &p) else {
            panic!("due")
        };
        assert_eq!(head.event.id, "down");
        let settled = q.settle("down", &answered(503), 100, &p, &mut rng);
        let Settled::Retry { at_ms } = settled else {
            panic!("{settled:?}")
        };
        assert!((100..=1100).contains(&at_ms));
        // The recovery waits behind its down, even though it is due.
        assert_eq!(q.next(at_ms - 1, &p), Next::At(at_ms));
        assert_eq!(q.len(), 2);
        assert_eq!(q.pending().next().map(|h| h.attempts), Some(1));
        assert_eq!(
            q.settle("up", &answered(200), at_ms, &p, &mut rng),
            Settled::Stale
        );
        let Next::Due(head) = q.next(at_ms, &p) else {
            panic!("due")
        };
        assert_eq!(head.event.id, "down");
        assert_eq!(
            q.settle("down", &answered(204), at_ms, &p, &mut rng),
            Settled::Delivered { attempts: 2 }
        );
        let Next::Due(head) = q.next(at_ms, &p) else {
            panic!("due")
        };
        assert_eq!(head.event.id, "up");
        assert_eq!(
            q.settle("up", &answered(200), at_ms, &p, &mut rng),
            Settled::Delivered { attempts: 1 }
        );
        assert_eq!(q.next(at_ms, &p), Next::Empty);
        assert_eq!(q.unwritten().count(), 0);
    }

    #[test]
    fn a_permanent_refusal_is_dead_lettered_at_once_and_the_next_goes_on() {
        let p = policy();
        let mut rng = SplitMix64::new(1);
        let mut q = Queue::new("hook");
        q.push(event("a", Kind::Down, "api").into(), 0);
        q.push(event("b", Kind::Down, "web").into(), 0);
        assert_eq!(
            q.settle("a", &answered(400), 5, &p, &mut rng),
            Settled::DeadLettered
        );
        let dead: Vec<_> = q.unwritten().cloned().collect();
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].id.as_str(), dead[0].receiver.as_str()),
            ("a", "hook")
        );
        assert_eq!(
            (dead[0].attempts, dead[0].last_error.as_str()),
            (1, "HTTP 400")
        );
        assert!(matches!(q.next(5, &p), Next::Due(h) if h.event.id == "b"));
        // Only what was written is forgotten, by key, whatever came since.
        let _ = q.settle("b", &answered(404), 6, &p, &mut rng);
        assert_eq!(q.unwritten().count(), 2);
        q.written(&[dead[0].key()], 0);
        assert_eq!(
            q.unwritten().map(|l| l.id.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        let b: Vec<LetterKey> = q.unwritten().map(DeadLetter::key).collect();
        q.written(&b, 0);
        assert_eq!(q.unwritten().count(), 0);
    }

    #[test]
    fn past_the_max_age_a_notification_is_dead_lettered() {
        let p = policy();
        let max = ms(p.max_age);
        let mut rng = SplitMix64::new(1);
        let mut q = Queue::new("hook");
        q.push(event("a", Kind::Down, "api").into(), 0);
        q.push(event("b", Kind::Down, "web").into(), max - 10);
        // A failure past the max age: given up instead of rescheduled.
        let settled = q.settle(
            "a",
            &Outcome::Transport("refused".into()),
            max,
            &p,
            &mut rng,
        );
        assert_eq!(settled, Settled::DeadLettered);
        let dead: Vec<_> = q.unwritten().cloned().collect();
        assert!(
            dead[0].last_error.contains("max age"),
            "{}",
            dead[0].last_error
        );
        assert!(
            dead[0].last_error.contains("refused"),
            "{}",
            dead[0].last_error
        );
        // Waiting past it: given up without another attempt.
        assert_eq!(q.next(2 * max, &p), Next::Empty);
        assert_eq!(q.unwritten().count(), 2);
        assert!(q.is_empty() && !q.contains("b"));
    }

    #[test]
    fn a_replay_is_marked_once_it_leaves_the_queue() {
        let p = policy();
        let mut rng = SplitMix64::new(1);
        let mut q = Queue::new("hook");
        q.push(event("a", Kind::Down, "api").into(), 0);
        q.settle("a", &answered(400), 5, &p, &mut rng);
        let letter = q.unwritten().next().cloned().unwrap();
        q.written(&[letter.key()], 0);
        assert!(q.push_replay(&letter, 10));
        assert!(!q.push_replay(&letter, 11), "not twice while pending");
        assert_eq!(q.replayed().count(), 0, "not before it ends");
        assert_eq!(
            q.settle("a", &answered(200), 12, &p, &mut rng),
            Settled::Delivered { attempts: 1 }
        );
        assert_eq!(q.replayed().cloned().collect::<Vec<_>>(), [letter.key()]);
        q.written(&[], 1);
        assert_eq!(q.replayed().count(), 0);
    }

    #[test]
    fn a_restored_queue_keeps_order_attempts_and_unwritten_letters() {
        let mut q = Queue::new("hook");
        q.push(event("a", Kind::Down, "api").into(), 0);
        q.push(event("b", Kind::Down, "web").into(), 1);
        let _ = q.settle("a", &answered(500), 2, &policy(), &mut SplitMix64::new(1));
        let json = serde_json::to_string(&q.pending().cloned().collect::<Vec<_>>()).unwrap();
        let pending: Vec<Pending> = serde_json::from_str(&json).unwrap();
        let r = Queue::restored("hook", pending, Vec::new(), Vec::new());
        let got: Vec<_> = r
            .pending()
            .map(|p| (p.event.id.as_str(), p.attempts))
            .collect();
        assert_eq!(got, [("a", 1), ("b", 0)]);
        assert!(r.contains("a") && r.contains("b"));
    }
}
