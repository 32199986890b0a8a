//! What to do with each message of a gateway's stream, given `last`, the
//! gseq up to which the consumer has been given everything it will get
//! (PROTOCOL.md 3.3, 3.6): replayed records it already has are dropped,
//! a `reset` becomes a range to heal from history, a snapshot is used only
//! as a starting point. It also says when the connection has caught up:
//! when everything up to the gateway's newest gseq as of its `hello` has
//! been handed over. Pure: messages in, actions out; the caller does the
//! I/O and reports how a heal went.

use super::message::{Message, ResetReason};
use super::{Batch, SourceRecord};

/// What the caller does next.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Tell the consumer which gateway this is.
    Connected {
        /// `hello.gateway`.
        gateway: String,
        /// `hello.region`, or the gateway's name when it has none.
        region: String,
    },
    /// Hand records to the consumer.
    Deliver(Batch),
    /// Tell the consumer about records nobody can give back.
    Gap {
        /// First gseq, inclusive.
        from: u64,
        /// Last gseq, inclusive.
        to: u64,
        /// Why.
        reason: String,
        /// The `since_ahead` gap: `to` is of a new numbering.
        renumbered: bool,
    },
    /// The connection's backlog has been handed over (once per
    /// connection): what follows is live.
    CaughtUp,
    /// A `lagged` reset after [`Action::CaughtUp`]: a heal follows and
    /// the stream ends; not live until the next connection catches up.
    CatchingUp,
    /// Fetch `from..=to` from history, report pages with
    /// [`Tracker::healed`], a failure with [`Tracker::unhealed`].
    Heal {
        /// First gseq, inclusive.
        from: u64,
        /// Last gseq, inclusive.
        to: u64,
    },
}

/// How far the current connection has handed its backlog over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before its `hello`.
    Opening,
    /// The backlog (snapshot, replay, heals) is being handed over: it is
    /// once `last` reaches `until` (`None`: not known before the snapshot).
    Catching {
        /// The gseq the backlog ends at.
        until: Option<u64>,
    },
    /// [`Action::CaughtUp`] was given.
    Live,
}

/// `last`, and what the current connection has said so far.
#[derive(Debug, Clone)]
pub(crate) struct Tracker {
    last: Option<u64>,
    /// Where the connection is in its catch-up.
    phase: Phase,
    /// The connection's snapshot is the starting point (no `since`, or
    /// after `since_ahead`).
    take_snapshot: bool,
    /// The next snapshot starts a new numbering (after `since_ahead`).
    renumber: bool,
    /// A gap to report just before that snapshot.
    pending_gap: Option<(u64, String)>,
    /// The gateway said the stream ends (lagged, expired): reconnecting at
    /// once is normal, not an outage.
    ending: bool,
}

impl Tracker {
    /// A tracker resuming after `since` (none: from the first snapshot).
    pub(crate) fn new(since: Option<u64>) -> Tracker {
        Tracker {
            last: since,
            phase: Phase::Opening,
            take_snapshot: since.is_none(),
            renumber: false,
            pending_gap: None,
            ending: false,
        }
    }

    /// The gseq up to which the consumer has everything it will get.
    pub(crate) fn last(&self) -> Option<u64> {
        self.last
    }

    /// A new connection: the `since` to open it with.
    pub(crate) fn open(&mut self) -> Option<u64> {
        self.take_snapshot = self.last.is_none();
        self.phase = Phase::Opening;
        self.renumber = false;
        self.pending_gap = None;
        self.ending = false;
        self.last
    }

    /// Whether the gateway announced the end of this stream.
    pub(crate) fn ending(&self) -> bool {
        self.ending
    }

    /// The actions for one message, in order.
    pub(crate) fn on_message(&mut self, msg: Message) -> Vec<Action> {
        match msg {
            Message::Hello {
                gateway,
                region,
                gseq,
            } => {
                self.phase = Phase::Catching { until: gseq };
                let region = region.unwrap_or_else(|| gateway.clone());
                vec![Action::Connected { gateway, region }]
            }
            Message::Reset {
                reason,
                gseq,
                missed,
            } => self.on_reset(reason, gseq, missed),
            Message::Snapshot { gseq, states } => {
                let mut out = self.on_snapshot(gseq, states);
                out.extend(self.caught_up());
                out
            }
            Message::Records(records) => {
                let mut out: Vec<Action> = self.deliver(records).into_iter().collect();
                out.extend(self.caught_up());
                out
            }
            Message::Expired => {
                self.ending = true;
                Vec::new()
            }
            Message::Other => Vec::new(),
        }
    }

    fn on_reset(
        &mut self,
        reason: ResetReason,
        gseq: u64,
        missed: Option<(u64, u64)>,
    ) -> Vec<Action> {
        let mut out = Vec::with_capacity(2);
        if reason == ResetReason::Lagged {
            self.ending = true;
            if self.phase == Phase::Live {
                // What the heal brings is a backlog again, and the stream
                // ends after it: not live until the next connection is.
                out.push(Action::CatchingUp);
            }
        }
        match missed {
            Some((from, to)) => {
                let from = from.max(self.next());
                if from <= to {
                    out.push(Action::Heal { from, to });
                }
                out
            }
            // `since_ahead` (or a reset that names no range): the gseqs
            // held are another numbering's; start over from the snapshot
            // and report what cannot be vouched for. The gap goes out with
            // the snapshot, so a connection lost in between reports it once.
            None => {
                self.take_snapshot = true;
                self.renumber = true;
                let why = format!(
                    "{}: since {} is beyond the gateway's newest gseq {gseq} (another \
                     gateway's numbering, or its data was lost); started over from its snapshot",
                    reason.name(),
                    self.last
                        .map_or_else(|| "none".to_owned(), |l| l.to_string()),
                );
                self.pending_gap = Some((gseq, why));
                out
            }
        }
    }

    fn on_snapshot(&mut self, gseq: u64, mut states: Vec<SourceRecord>) -> Vec<Action> {
        if !self.take_snapshot {
            // A replay follows (or a healed range covered it): the records
            // in scope of `since < gseq <= G`, so the newest of them is
            // the newest state's, if that is above `last`. The backlog
            // ends there, not at G (which may be no record in scope, or,
            // after a gateway's restart, no record at all).
            let newest = states.iter().map(|s| s.gseq).max().unwrap_or(0);
            self.backlog_ends(newest.min(gseq));
            return Vec::new();
        }
        self.take_snapshot = false;
        // The snapshot stands for everything up to G: no replay follows.
        self.backlog_ends(gseq);
        let mut out = Vec::with_capacity(2);
        if let Some((head, reason)) = self.pending_gap.take() {
            out.push(Action::Gap {
                from: 0,
                to: head.max(gseq),
                reason,
                renumbered: true,
            });
        }
        states.sort_unstable_by_key(|s| s.gseq);
        states.dedup_by_key(|s| s.gseq);
        out.push(Action::Deliver(Batch {
            records: states,
            from_snapshot: true,
            renumbered: std::mem::take(&mut self.renumber),
            last: gseq,
        }));
        self.last = Some(gseq);
        out
    }

    /// The connection's backlog ends at `at` at the latest.
    fn backlog_ends(&mut self, at: u64) {
        if let Phase::Catching { until } = &mut self.phase {
            *until = Some(until.map_or(at, |u| u.min(at)));
        }
    }

    /// [`Action::CaughtUp`], the first time on this connection that
    /// everything up to the end of its backlog has been handed over:
    /// `hello.gseq`, or less when the snapshot shows that nothing in
    /// scope lies between `last` and it. [`Tracker::on_message`] checks
    /// it itself; the caller asks after a heal.
    pub(crate) fn caught_up(&mut self) -> Option<Action> {
        let Phase::Catching { until: Some(until) } = self.phase else {
            return None;
        };
        // A snapshot still to take is the backlog's start (and `last` may
        // be of another numbering); after a `lagged` reset nothing is live.
        if self.take_snapshot || self.ending || self.last.is_none_or(|l| l < until) {
            return None;
        }
        self.phase = Phase::Live;
        Some(Action::CaughtUp)
    }

    /// The records above `last` in strictly increasing gseq, as a batch;
    /// `None` when nothing is new.
    fn deliver(&mut self, records: Vec<SourceRecord>) -> Option<Action> {
        let mut newest = self.last;
        let records: Vec<SourceRecord> = records
            .into_iter()
            .filter(|r| {
                let new = newest.is_none_or(|n| r.gseq > n);
                if new {
                    newest = Some(r.gseq);
                }
                new
            })
            .collect();
        let last = newest.filter(|_| !records.is_empty())?;
        self.last = Some(last);
        Some(Action::Deliver(Batch {
            records,
            from_snapshot: false,
            renumbered: false,
            last,
        }))
    }

    /// A page of a heal: its records, and the gseq up to which the page
    /// covers the range (the heal's `to` on its last page, the next
    /// page's start minus one before). `None` when it moves nothing.
    pub(crate) fn healed(&mut self, records: Vec<SourceRecord>, covered_to: u64) -> Option<Batch> {
        let before = self.last;
        let mut batch = match self.deliver(records) {
            Some(Action::Deliver(batch)) => batch,
            _ => Batch {
                records: Vec::new(),
                from_snapshot: false,
                renumbered: false,
                last: covered_to,
            },
        };
        let last = self.last.map_or(covered_to, |l| l.max(covered_to));
        if batch.records.is_empty() && before.is_some_and(|b| b >= last) {
            return None;
        }
        batch.last = last;
        self.last = Some(last);
        Some(batch)
    }

    /// What history could not give back of `from..=to`: a gap from the
    /// first gseq not yet covered; `last` moves to `to` (the range is not
    /// asked for again). `None` when nothing is missing.
    pub(crate) fn unhealed(&mut self, from: u64, to: u64, reason: String) -> Option<Action> {
        let from = from.max(self.next());
        self.last = Some(self.last.map_or(to, |l| l.max(to)));
        (from <= to).then_some(Action::Gap {
            from,
            to,
            reason,
            renumbered: false,
        })
    }

    /// The first gseq not yet covered.
    fn next(&self) -> u64 {
        self.last.map_or(0, |l| l.saturating_add(1))
    }
}

/// Heals in a row whose connection broke before they were done, before
/// their range is given up as a gap.
pub(crate) const HEAL_FAILURES: u32 = 5;

/// Heals that broke at the transport level, counted across connections
/// by where they stopped: each one ends its session, and the next
/// connection's `reset` names the same range again, so without a bound
/// a range that always breaks its connection (a page the gateway cannot
/// send, a proxy that cuts it) would be asked for forever and the live
/// records after it never handed over.
#[derive(Debug, Clone, Default)]
pub(crate) struct HealFailures {
    /// The first gseq not covered when the last heal broke.
    at: u64,
    /// How many heals in a row broke there (0: none).
    count: u32,
}

impl HealFailures {
    /// A heal broke with `at` the first gseq it had not covered: `true`
    /// when that is the [`HEAL_FAILURES`]th time in a row, and the range
    /// is to be given up now (the count then starts over).
    pub(crate) fn broke(&mut self, at: u64) -> bool {
        if self.count > 0 && self.at == at {
            self.count += 1;
        } else {
            *self = HealFailures { at, count: 1 };
        }
        let give_up = self.count >= HEAL_FAILURES;
        if give_up {
            self.clear();
        }
        give_up
    }

    /// A heal got to its end (or its range was given up): the count
    /// starts over.
    pub(crate) fn clear(&mut self) {
        *self = HealFailures::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(gseq: u64) -> SourceRecord {
        SourceRecord {
            gseq,
            agent: "a".into(),
            check: format!("c{}", gseq % 3),
            record: wire::Record::up(gseq, 1),
        }
    }

    fn gseqs(actions: &[Action]) -> Vec<Vec<u64>> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Deliver(b) => Some(b.records.iter().map(|r| r.gseq).collect()),
                _ => None,
            })
            .collect()
    }

    /// A `hello` whose newest gseq is `gseq`.
    fn hello(gseq: u64) -> Message {
        Message::Hello {
            gateway: "gw".into(),
            region: None,
            gseq: Some(gseq),
        }
    }

    fn snapshot(gseq: u64, states: &[u64]) -> Message {
        Message::Snapshot {
            gseq,
            states: states.iter().map(|&g| rec(g)).collect(),
        }
    }

    fn records(gseqs: &[u64]) -> Message {
        Message::Records(gseqs.iter().map(|&g| rec(g)).collect())
    }

    /// How many [`Action::CaughtUp`] are in `actions`, and whether one is
    /// last (it follows what it vouches for).
    fn caught_up(actions: &[Action]) -> usize {
        let n = actions.iter().filter(|a| **a == Action::CaughtUp).count();
        if n > 0 {
            assert_eq!(actions.last(), Some(&Action::CaughtUp), "{actions:?}");
        }
        n
    }

    fn reset(reason: ResetReason, gseq: u64, missed: Option<(u64, u64)>) -> Message {
        Message::Reset {
            reason,
            gseq,
            missed,
        }
    }

    #[test]
    fn a_first_start_begins_with_the_snapshot_then_live() {
        let mut t = Tracker::new(None);
        assert_eq!(t.open(), None);
        assert_eq!(
            t.on_message(hello(20)),
            [Action::Connected {
                gateway: "gw".into(),
                region: "gw".into()
            }]
        );
        let snap = t.on_message(Message::Snapshot {
            gseq: 20,
            states: vec![rec(17), rec(12), rec(19)],
        });
        // The snapshot is the backlog: caught up right after it.
        let [Action::Deliver(b), Action::CaughtUp] = &snap[..] else {
            panic!("{snap:?}")
        };
        assert!(b.from_snapshot && !b.renumbered);
        assert_eq!(b.last, 20);
        assert_eq!(gseqs(&snap), [vec![12, 17, 19]]);
        assert_eq!(t.last(), Some(20));
        let live = t.on_message(Message::Records(vec![rec(21), rec(22)]));
        assert_eq!(gseqs(&live), [vec![21, 22]]);
        assert_eq!(caught_up(&live), 0, "once per connection");
        assert_eq!(t.last(), Some(22));
    }

    #[test]
    fn an_empty_gateways_snapshot_still_moves_the_cursor() {
        let mut t = Tracker::new(None);
        t.open();
        t.on_message(hello(5));
        let snap = t.on_message(Message::Snapshot {
            gseq: 5,
            states: vec![],
        });
        assert!(
            matches!(&snap[..], [Action::Deliver(b), Action::CaughtUp] if b.records.is_empty() && b.last == 5)
        );
    }

    #[test]
    fn a_resumed_stream_ignores_the_snapshot_and_drops_what_it_has() {
        let mut t = Tracker::new(Some(10));
        assert_eq!(t.open(), Some(10));
        t.on_message(hello(14));
        assert!(
            t.on_message(Message::Snapshot {
                gseq: 14,
                states: vec![rec(9), rec(14)]
            })
            .is_empty()
        );
        // The replay, partly known, and a message all known.
        let a = t.on_message(Message::Records(vec![rec(9), rec(10), rec(11), rec(12)]));
        assert_eq!(gseqs(&a), [vec![11, 12]]);
        assert!(t.on_message(Message::Records(vec![rec(12)])).is_empty());
        // Out of order within a message: only increasing gseqs pass.
        let b = t.on_message(Message::Records(vec![rec(14), rec(13), rec(15)]));
        assert_eq!(gseqs(&b), [vec![14, 15]]);
        assert_eq!(caught_up(&b), 1, "the replay reached hello.gseq");
        assert_eq!(t.last(), Some(15));
        // A reconnect resumes from there.
        assert_eq!(t.open(), Some(15));
    }

    #[test]
    fn out_of_ring_heals_the_named_range_then_goes_live() {
        let mut t = Tracker::new(Some(10));
        t.open();
        let heal = t.on_message(reset(ResetReason::SinceOutOfRing, 100, Some((11, 100))));
        assert_eq!(heal, [Action::Heal { from: 11, to: 100 }]);
        assert!(!t.ending());
        // Two pages; the first covers up to the second's start.
        let p1 = t.healed(vec![rec(11), rec(40)], 59).unwrap();
        assert_eq!((p1.records.len(), p1.last), (2, 59));
        // A page with nothing in scope still moves the cursor.
        let p2 = t.healed(vec![], 100).unwrap();
        assert_eq!((p2.records.len(), p2.last), (0, 100));
        assert!(t.healed(vec![rec(100)], 100).is_none(), "nothing new");
        // The snapshot that follows is not a starting point.
        assert!(
            t.on_message(Message::Snapshot {
                gseq: 100,
                states: vec![rec(99)]
            })
            .is_empty()
        );
        assert_eq!(
            gseqs(&t.on_message(Message::Records(vec![rec(101)]))),
            [vec![101]]
        );
    }

    #[test]
    fn lagged_heals_from_the_first_unsent_and_ends_the_stream() {
        let mut t = Tracker::new(Some(10));
        t.open();
        t.on_message(Message::Records(vec![rec(11), rec(12)]));
        // missed_from at or below what was delivered is clamped.
        let heal = t.on_message(reset(ResetReason::Lagged, 50, Some((12, 50))));
        assert_eq!(heal, [Action::Heal { from: 13, to: 50 }]);
        assert!(t.ending());
        let b = t.healed(vec![rec(12), rec(13), rec(49)], 50).unwrap();
        assert_eq!(
            b.records.iter().map(|r| r.gseq).collect::<Vec<_>>(),
            [13, 49]
        );
        assert_eq!(t.open(), Some(50), "reconnect with since = missed_to");
        assert!(!t.ending());
    }

    #[test]
    fn a_failed_heal_is_a_gap_from_what_was_not_covered() {
        let mut t = Tracker::new(Some(10));
        t.open();
        t.on_message(reset(ResetReason::SinceOutOfRing, 100, Some((11, 100))));
        t.healed(vec![rec(20)], 30);
        assert_eq!(
            t.unhealed(11, 100, "history: 503".into()),
            Some(Action::Gap {
                from: 31,
                to: 100,
                reason: "history: 503".into(),
                renumbered: false,
            })
        );
        assert_eq!(t.last(), Some(100));
        // Fully covered already: nothing to report.
        assert_eq!(t.unhealed(50, 80, "x".into()), None);
        // A reset naming nothing new asks for no heal.
        assert!(
            t.on_message(reset(ResetReason::Lagged, 100, Some((90, 100))))
                .is_empty()
        );
    }

    #[test]
    fn since_ahead_starts_over_from_the_snapshot_with_a_gap() {
        let mut t = Tracker::new(Some(1_000));
        t.open();
        t.on_message(hello(200));
        assert!(
            t.on_message(reset(ResetReason::SinceAhead, 200, None))
                .is_empty()
        );
        // `last` is of the old numbering, above hello.gseq: not caught up.
        assert_eq!(t.caught_up(), None);
        let a = t.on_message(Message::Snapshot {
            gseq: 200,
            states: vec![rec(150), rec(120)],
        });
        // One step for the consumer: the gap says the numbering changes.
        let [
            Action::Gap {
                from: 0,
                to: 200,
                reason,
                renumbered: true,
            },
            Action::Deliver(b),
            Action::CaughtUp,
        ] = &a[..]
        else {
            panic!("{a:?}")
        };
        assert!(reason.starts_with("since_ahead: since 1000"), "{reason}");
        assert!(b.from_snapshot && b.renumbered);
        assert_eq!(gseqs(&a), [vec![120, 150]]);
        assert_eq!(
            t.last(),
            Some(200),
            "the cursor goes back to the new numbering"
        );
        // The gap was reported with the snapshot: a connection lost before
        // it reports nothing, and the next one asks again.
        let mut t = Tracker::new(Some(1_000));
        t.open();
        t.on_message(reset(ResetReason::SinceAhead, 200, None));
        assert_eq!(t.open(), Some(1_000));
        assert!(
            t.on_message(Message::Snapshot {
                gseq: 200,
                states: vec![]
            })
            .is_empty()
        );
    }

    #[test]
    fn a_resume_with_nothing_to_replay_is_caught_up_at_the_snapshot() {
        // since == the gateway's newest: no record follows.
        let mut t = Tracker::new(Some(10));
        t.open();
        t.on_message(hello(10));
        assert_eq!(t.on_message(snapshot(10, &[9, 10])), [Action::CaughtUp]);
        assert_eq!(caught_up(&t.on_message(records(&[11]))), 0);
        // A restarted gateway: its newest gseq (its start time) is no
        // record, and every state is older than `since`.
        t.open();
        t.on_message(hello(5_000));
        assert_eq!(t.on_message(snapshot(5_000, &[9, 11])), [Action::CaughtUp]);
        assert_eq!(t.last(), Some(11), "the cursor stays");
        // An empty scope.
        let mut t = Tracker::new(Some(10));
        t.open();
        t.on_message(hello(40));
        assert_eq!(t.on_message(snapshot(40, &[])), [Action::CaughtUp]);
    }

    #[test]
    fn a_resume_is_caught_up_when_the_replay_reaches_the_newest_state() {
        let mut t = Tracker::new(Some(10));
        t.open();
        assert_eq!(t.caught_up(), None, "before hello");
        t.on_message(hello(50));
        // The newest in scope is 30 (31..=50 are others' records).
        assert!(t.on_message(snapshot(50, &[30, 7, 22])).is_empty());
        let a = t.on_message(records(&[11, 22]));
        assert_eq!((gseqs(&a), caught_up(&a)), (vec![vec![11, 22]], 0));
        assert_eq!(caught_up(&t.on_message(records(&[22]))), 0);
        let b = t.on_message(records(&[25, 30]));
        assert_eq!((gseqs(&b), caught_up(&b)), (vec![vec![25, 30]], 1));
        assert_eq!(t.caught_up(), None, "once");
        assert_eq!(caught_up(&t.on_message(records(&[51]))), 0);
        // A new connection catches up again, from its own hello.
        assert_eq!(t.open(), Some(51));
        assert_eq!(t.caught_up(), None);
        t.on_message(hello(60));
        assert!(t.on_message(snapshot(60, &[55])).is_empty());
        assert_eq!(caught_up(&t.on_message(records(&[55]))), 1);
        // A gateway without hello.gseq: the snapshot alone says it.
        let mut t = Tracker::new(Some(10));
        t.open();
        t.on_message(Message::Hello {
            gateway: "gw".into(),
            region: None,
            gseq: None,
        });
        assert!(t.on_message(snapshot(50, &[12])).is_empty());
        assert_eq!(caught_up(&t.on_message(records(&[11, 12]))), 1);
    }

    #[test]
    fn a_healed_reset_is_caught_up_once_the_heal_reaches_hello_gseq() {
        let mut t = Tracker::new(Some(10));
        t.open();
        t.on_message(hello(100));
        let heal = t.on_message(reset(ResetReason::SinceOutOfRing, 100, Some((11, 100))));
        assert_eq!(heal, [Action::Heal { from: 11, to: 100 }]);
        assert_eq!(t.caught_up(), None);
        t.healed(vec![rec(11), rec(40)], 59).unwrap();
        assert_eq!(t.caught_up(), None, "half way");
        t.healed(vec![rec(60)], 100).unwrap();
        assert_eq!(t.caught_up(), Some(Action::CaughtUp));
        assert_eq!(t.caught_up(), None);
        assert!(t.on_message(snapshot(100, &[99])).is_empty());
        // A heal given up as a gap is handed over too.
        let mut t = Tracker::new(Some(10));
        t.open();
        t.on_message(hello(100));
        t.on_message(reset(ResetReason::SinceOutOfRing, 100, Some((11, 100))));
        assert!(t.unhealed(11, 100, "history: 503".into()).is_some());
        assert_eq!(t.caught_up(), Some(Action::CaughtUp));
    }

    #[test]
    fn a_lagged_reset_after_catching_up_is_catching_up_again() {
        let mut t = Tracker::new(Some(10));
        t.open();
        t.on_message(hello(12));
        t.on_message(snapshot(12, &[11, 12]));
        assert_eq!(caught_up(&t.on_message(records(&[11, 12]))), 1);
        t.on_message(records(&[13]));
        let a = t.on_message(reset(ResetReason::Lagged, 50, Some((14, 50))));
        assert_eq!(
            a,
            [Action::CatchingUp, Action::Heal { from: 14, to: 50 }],
            "before its heal"
        );
        t.healed(vec![rec(20)], 50).unwrap();
        assert_eq!(t.caught_up(), None, "the stream ends: not live");
        // The next connection catches up again.
        assert_eq!(t.open(), Some(50));
        t.on_message(hello(50));
        assert_eq!(t.on_message(snapshot(50, &[20])), [Action::CaughtUp]);
        // Lagged during the catch-up: no CatchingUp (not caught up yet),
        // and no CaughtUp on that connection any more.
        let mut t = Tracker::new(Some(10));
        t.open();
        t.on_message(hello(90));
        t.on_message(snapshot(90, &[80]));
        t.on_message(records(&[11]));
        let a = t.on_message(reset(ResetReason::Lagged, 95, Some((12, 95))));
        assert_eq!(a, [Action::Heal { from: 12, to: 95 }]);
        t.healed(vec![rec(80)], 95).unwrap();
        assert_eq!(t.caught_up(), None);
    }

    #[test]
    fn heals_breaking_at_the_same_start_are_given_up_after_five_in_a_row() {
        let mut f = HealFailures::default();
        for _ in 1..HEAL_FAILURES {
            assert!(!f.broke(11));
        }
        assert!(f.broke(11), "the fifth in a row");
        // The count started over.
        assert!(!f.broke(11));
        // Progress (a page handed over, so another start) starts over too.
        let mut f = HealFailures::default();
        for _ in 0..3 {
            assert!(!f.broke(11));
        }
        for _ in 1..HEAL_FAILURES {
            assert!(!f.broke(60));
        }
        assert!(f.broke(60));
        // So does a heal that got to its end.
        for _ in 1..HEAL_FAILURES {
            assert!(!f.broke(70));
        }
        f.clear();
        assert!(!f.broke(70));
    }

    #[test]
    fn expired_ends_the_stream_without_moving_the_cursor() {
        let mut t = Tracker::new(Some(7));
        t.open();
        assert!(t.on_message(Message::Expired).is_empty());
        assert!(t.ending());
        assert_eq!(t.last(), Some(7));
        assert!(t.on_message(Message::Other).is_empty());
    }
}
