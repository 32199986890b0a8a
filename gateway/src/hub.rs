//! The gateway's live state, behind one lock: per-agent high-water marks
//! (dedupe, and their reset by an operator), the gateway sequence (gseq),
//! the replay ring, the current state of every (agent, check) with each
//! agent's distinct checks (capped), and the live fan-out channel.
//!
//! Everything here is synchronous and takes `now` from the caller; the
//! lock is held only for bookkeeping (no encoding, no I/O), and the live
//! channel is a bounded broadcast whose `send` never waits for readers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;
use wire::Record;

use crate::config::{AgentLimits, RingLimits};
use crate::ingest::ValidFrame;
use crate::message::SharedBatch;

/// Why recovery left a record out of the current state ([`Hub::restore`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StateSkip {
    /// Its agent id or check name breaks the name grammar.
    BadName,
    /// Its check would pass the agent's `max_checks`.
    OverCap,
}

impl StateSkip {
    /// A short code for logs.
    pub fn code(self) -> &'static str {
        match self {
            StateSkip::BadName => "bad_name",
            StateSkip::OverCap => "too_many_checks",
        }
    }
}

/// The records of one accepted frame, with consecutive gseqs.
#[derive(Debug)]
pub struct Batch {
    /// The gseq of `items[0]`; item `i` has `first_gseq + i`.
    pub first_gseq: u64,
    /// The agent that sent the frame.
    pub agent: Arc<str>,
    /// When the gateway accepted it.
    pub accepted_at: Instant,
    /// Check and record, in frame order.
    pub items: Vec<(Arc<str>, Record)>,
}

impl Batch {
    /// The gseq of the last item.
    pub fn last_gseq(&self) -> u64 {
        self.first_gseq + self.items.len().saturating_sub(1) as u64
    }

    /// Items with their gseqs.
    pub fn with_gseq(&self) -> impl Iterator<Item = (u64, &Arc<str>, &Record)> {
        let first = self.first_gseq;
        self.items
            .iter()
            .enumerate()
            .map(move |(i, (check, record))| (first + i as u64, check, record))
    }
}

/// The last accepted record of one (agent, check).
#[derive(Debug, Clone)]
pub struct CheckState {
    /// The agent.
    pub agent: Arc<str>,
    /// The check.
    pub check: Arc<str>,
    /// The record's gseq.
    pub gseq: u64,
    /// The record.
    pub record: Record,
}

/// Per-request result of [`Hub::classify`]: which frames are new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// One flag per frame of the request: true when it will be accepted.
    pub new: Vec<bool>,
    /// Frames missing from the agent's sequence before the new ones.
    pub gap_frames: u64,
}

impl Plan {
    /// How many frames will be accepted.
    pub fn accepted(&self) -> usize {
        self.new.iter().filter(|&&n| n).count()
    }
}

/// What [`Hub::commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The agent's high-water session after the request.
    pub session: u64,
    /// The agent's high-water seq after the request.
    pub acked: u64,
    /// Frames accepted now.
    pub accepted: usize,
    /// Records accepted now.
    pub records: usize,
    /// Frames acknowledged as duplicates.
    pub duplicates: usize,
}

/// What a new reader starts from.
#[derive(Debug)]
pub struct Subscription {
    /// Live batches after `head`, each encoded once for every reader.
    pub live: broadcast::Receiver<Arc<SharedBatch>>,
    /// Every record with gseq <= head is in `snapshot` (or older).
    pub head: u64,
    /// Why `since` could not be served from the ring, if it could not.
    pub reset: Option<crate::message::ResetReason>,
    /// The current state of every (agent, check), unfiltered.
    pub snapshot: Vec<CheckState>,
    /// The ring's bounds when the reader subscribed.
    pub ring: Option<crate::message::RingBounds>,
    /// The first chunk of the replay (at most [`REPLAY_CHUNK_BATCHES`]
    /// batches holding records in (since, head], oldest first); the
    /// reader takes the rest with [`Hub::replay`] as it goes.
    pub missed: Vec<Arc<Batch>>,
}

/// The most ring batches a replaying reader takes from the hub at a time,
/// so that it holds a bounded part of the ring, never all of it
/// (PROTOCOL.md 3.4).
pub const REPLAY_CHUNK_BATCHES: usize = 64;

/// The ring no longer holds the record after a replay's cursor: the
/// reader missed records it can no longer be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the replay ring moved past gseq {after}")]
pub struct ReplayEvicted {
    /// The cursor: the last gseq the reader was given.
    pub after: u64,
}

/// Memory the ring takes per record and per batch, for the gauge.
const RECORD_BYTES: usize = std::mem::size_of::<(Arc<str>, Record)>();
const BATCH_BYTES: usize = std::mem::size_of::<Batch>() + 16 + std::mem::size_of::<Arc<Batch>>();

/// The state; callers wrap it in a mutex.
#[derive(Debug)]
pub struct Hub {
    limits: RingLimits,
    next_gseq: u64,
    marks: HashMap<Arc<str>, (u64, u64)>,
    names: HashSet<Arc<str>>,
    ring: VecDeque<Arc<Batch>>,
    /// Every record with a gseq above this is in the ring (or not given
    /// out yet): the last gseq before the ring's first record. gseqs are
    /// consecutive within a batch, not always between batches (JetStream
    /// mode: [`crate::jetstream::gseq`]), so this is kept, not derived.
    floor: u64,
    /// The last gseq of the batch admitted last (not the highest: recovery
    /// admits old gseqs into a hub numbered from now); None after a break
    /// in the chain ([`Hub::clear_ring`]).
    last_admitted: Option<u64>,
    ring_records: usize,
    state: HashMap<(Arc<str>, Arc<str>), (u64, Record)>,
    /// Each agent's distinct checks in `state`, for `max_checks`.
    agent_checks: HashMap<Arc<str>, HashSet<Arc<str>>>,
    agent_limits: AgentLimits,
    live: broadcast::Sender<Arc<SharedBatch>>,
}

/// The first gseq of a gateway started at `now`: epoch ms times 1000
/// (PROTOCOL.md 3.3), so gseqs keep increasing across restarts.
pub fn first_gseq(now: SystemTime) -> u64 {
    let ms = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    u64::try_from(ms.saturating_mul(1000)).unwrap_or(u64::MAX / 2)
}

/// Which frames, by `(session, seq)` in order, are new after an agent's
/// high-water `mark`: one rule for both modes (the hub's marks, and
/// JetStream's, read from the agent's subject).
pub fn classify_after(
    mut mark: Option<(u64, u64)>,
    keys: impl IntoIterator<Item = (u64, u64)>,
) -> Plan {
    let mut gap_frames = 0;
    let new = keys
        .into_iter()
        .map(|key| {
            if mark.is_some_and(|m| key <= m) {
                return false;
            }
            gap_frames += match mark {
                Some((s, q)) if s == key.0 => key.1 - q - 1,
                _ => key.1,
            };
            mark = Some(key);
            true
        })
        .collect();
    Plan { new, gap_frames }
}

impl Hub {
    /// An empty hub whose first gseq is `first_gseq`, with a live channel
    /// of `queue_frames` batches.
    pub fn new(limits: RingLimits, queue_frames: usize, first_gseq: u64) -> Self {
        let (live, _) = broadcast::channel(queue_frames.max(1));
        Hub {
            limits,
            next_gseq: first_gseq.max(1),
            marks: HashMap::new(),
            names: HashSet::new(),
            ring: VecDeque::new(),
            floor: first_gseq.max(1) - 1,
            last_admitted: Some(first_gseq.max(1) - 1),
            ring_records: 0,
            state: HashMap::new(),
            agent_checks: HashMap::new(),
            agent_limits: AgentLimits::DEFAULT,
            live,
        }
    }

    /// Sets the per-agent bounds (default [`AgentLimits::DEFAULT`]); set
    /// before recovery, which judges marks on disk by them.
    pub fn set_agent_limits(&mut self, limits: AgentLimits) {
        self.agent_limits = limits;
    }

    /// The per-agent bounds.
    pub fn agent_limits(&self) -> AgentLimits {
        self.agent_limits
    }

    fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.names.get(name) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(name);
        self.names.insert(n.clone());
        n
    }

    /// Which frames of a validated request are new for `agent`, in order.
    pub fn classify(&self, agent: &str, frames: &[ValidFrame]) -> Plan {
        self.classify_keys(
            agent,
            frames
                .iter()
                .map(|f| (f.frame.header.session, f.frame.header.seq)),
        )
    }

    /// Which of `agent`'s frames, by `(session, seq)` in order, are new.
    pub fn classify_keys(&self, agent: &str, keys: impl IntoIterator<Item = (u64, u64)>) -> Plan {
        classify_after(self.marks.get(agent).copied(), keys)
    }

    /// Accepts the frames `plan` marks new: gseqs, ring, state, live fan-out.
    /// Returns the acknowledgement and the accepted frames' batches.
    pub fn commit(
        &mut self,
        agent: &str,
        frames: &[ValidFrame],
        plan: &Plan,
        now: Instant,
    ) -> (Ack, Vec<Arc<Batch>>) {
        let agent_name = self.intern(agent);
        let mut batches = Vec::new();
        let mut records = 0;
        for (f, _) in frames.iter().zip(&plan.new).filter(|(_, new)| **new) {
            let key = (f.frame.header.session, f.frame.header.seq);
            self.marks.insert(agent_name.clone(), key);
            let first_gseq = self.next_gseq;
            if let Some(batch) = self.admit(&agent_name, &f.frame, first_gseq, Some(now), None) {
                records += batch.items.len();
                // No receiver is not an error: nobody is reading.
                // Encoded later, by the first reader that needs it.
                let _ = self.live.send(Arc::new(SharedBatch::new(batch.clone())));
                batches.push(batch);
            }
        }
        self.evict(now);
        let (session, acked) = self.marks.get(agent).copied().unwrap_or((0, 0));
        let accepted = plan.accepted();
        let ack = Ack {
            session,
            acked,
            accepted,
            records,
            duplicates: frames.len() - accepted,
        };
        (ack, batches)
    }

    /// Gives the records of `frame` the gseqs from `first_gseq` on and
    /// enters them in the current state, and in the ring if `in_ring` says
    /// when the batch was accepted. None for a frame without records.
    /// With `skips` (recovery), a record whose (agent, check) is not yet in
    /// the state is left out of it, and noted there, if a name breaks the
    /// grammar or the check would pass the agent's `max_checks`.
    fn admit(
        &mut self,
        agent: &Arc<str>,
        frame: &wire::Frame,
        first_gseq: u64,
        in_ring: Option<Instant>,
        mut skips: Option<&mut Vec<(StateSkip, Arc<str>)>>,
    ) -> Option<Arc<Batch>> {
        let mut items = Vec::with_capacity(frame.record_count());
        for b in &frame.batches {
            let check = self.intern(&b.check);
            items.extend(b.records.iter().map(|r| (check.clone(), *r)));
        }
        if items.is_empty() {
            return None;
        }
        let batch = Arc::new(Batch {
            first_gseq,
            agent: agent.clone(),
            accepted_at: in_ring.unwrap_or_else(Instant::now),
            items,
        });
        self.next_gseq = self.next_gseq.max(first_gseq + batch.items.len() as u64);
        let previous = self.last_admitted.replace(batch.last_gseq());
        for (gseq, check, record) in batch.with_gseq() {
            if let Some(skips) = skips.as_deref_mut() {
                if let Some(skip) = self.unrestorable(agent, check) {
                    skips.push((skip, check.clone()));
                    continue;
                }
            }
            let slot = match self.state.entry((agent.clone(), check.clone())) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    self.agent_checks
                        .entry(agent.clone())
                        .or_default()
                        .insert(check.clone());
                    e.insert((gseq, *record))
                }
            };
            if slot.0 <= gseq {
                *slot = (gseq, *record);
            }
        }
        if in_ring.is_none() {
            // Not replayable: a reader resuming at or below it is reset.
            self.floor = self.floor.max(batch.last_gseq());
        } else {
            if self.ring.is_empty() {
                // Everything before this batch: the batch admitted just
                // before it (gseqs may skip between batches), else all
                // below it.
                self.floor = match previous {
                    Some(p) if p < first_gseq => p,
                    _ => first_gseq.saturating_sub(1),
                };
            }
            self.ring_records += batch.items.len();
            self.ring.push_back(batch.clone());
        }
        Some(batch)
    }

    /// The first check name of the frames `plan` marks new that would give
    /// `agent` more than `max_checks` distinct checks: its frame's offset
    /// in the body and the name. Checks the agent already has always pass.
    pub fn check_over_cap<'f>(
        &self,
        agent: &str,
        frames: &'f [ValidFrame],
        plan: &Plan,
    ) -> Option<(u64, &'f str)> {
        let max_checks = self.agent_limits.max_checks;
        let known = self.agent_checks.get(agent);
        let mut count = known.map_or(0, HashSet::len);
        let mut added: HashSet<&str> = HashSet::new();
        for (f, _) in frames.iter().zip(&plan.new).filter(|(_, new)| **new) {
            for b in &f.frame.batches {
                let check = b.check.as_str();
                if known.is_some_and(|k| k.contains(check)) || added.contains(check) {
                    continue;
                }
                if count >= max_checks {
                    return Some((f.range.start as u64, check));
                }
                count += 1;
                added.insert(check);
            }
        }
        None
    }

    /// `agent`'s high-water mark, if it has one.
    pub fn mark(&self, agent: &str) -> Option<(u64, u64)> {
        self.marks.get(agent).copied()
    }

    /// An operator's reset (crate::admin), once logged: forgets `agent`'s
    /// high-water mark if it is still `cleared` (what the reset read), so
    /// that its next frame is accepted whatever its `(session, seq)`. A
    /// mark a frame raised since was set by a frame accepted after the
    /// reset began, which recovery restores too: it stays. Returns whether
    /// the mark was forgotten.
    pub fn finish_reset(&mut self, agent: &str, cleared: Option<(u64, u64)>) -> bool {
        if self.marks.get(agent).copied() != cleared {
            return false;
        }
        self.marks.remove(agent).is_some()
    }

    /// Recovery (crate::recover): raises `agent`'s high-water mark to `key`.
    pub fn restore_mark(&mut self, agent: &str, key: (u64, u64)) {
        let agent = self.intern(agent);
        let mark = self.marks.entry(agent).or_insert(key);
        *mark = (*mark).max(key);
    }

    /// Why recovery must not enter `(agent, check)` in the current state,
    /// if it must not: ingest's name grammar and checks cap, for a check
    /// not there yet.
    fn unrestorable(&self, agent: &Arc<str>, check: &Arc<str>) -> Option<StateSkip> {
        if self.state.contains_key(&(agent.clone(), check.clone())) {
            return None;
        }
        if !config::is_name(agent) || !config::is_name(check) {
            return Some(StateSkip::BadName);
        }
        let known = self.agent_checks.get(agent).map_or(0, HashSet::len);
        (known >= self.agent_limits.max_checks).then_some(StateSkip::OverCap)
    }

    /// Recovery (crate::recover): a persisted frame whose records had the
    /// gseqs from `first_gseq` on, back in the current state, and in the
    /// ring if `in_ring` says when it was accepted. Frames come in gseq
    /// order; live readers are not told. Ingest's rules hold for the
    /// state too (an older gateway may have accepted anything): a check
    /// whose name breaks the grammar, or past the agent's `max_checks`,
    /// gets no current state; its records are returned, with why. Such a
    /// name is not kept interned unless the ring still holds it.
    pub fn restore(
        &mut self,
        frame: &wire::Frame,
        first_gseq: u64,
        in_ring: Option<Instant>,
    ) -> Vec<(StateSkip, String)> {
        self.restore_batch(frame, first_gseq, in_ring, false).1
    }

    /// JetStream mode ([`crate::jetstream::follow`]): the frames of one
    /// message of the stream, whose records have the gseqs from
    /// `first_gseq` on, into the current state, the ring (when `in_ring`
    /// says when it was stored) and the live fan-out. Recovery's rules
    /// hold: what they leave out of the state is returned, with why.
    pub fn append(
        &mut self,
        frames: &[wire::Frame],
        first_gseq: u64,
        in_ring: Option<Instant>,
        now: Instant,
    ) -> Vec<(StateSkip, String)> {
        let mut skips = Vec::new();
        let mut gseq = first_gseq;
        for frame in frames {
            let (batch, skipped) = self.restore_batch(frame, gseq, in_ring, true);
            gseq += frame.record_count() as u64;
            skips.extend(skipped);
            if let Some(batch) = batch {
                // No receiver is not an error: nobody is reading.
                let _ = self.live.send(Arc::new(SharedBatch::new(batch)));
            }
        }
        self.evict(now);
        skips
    }

    fn restore_batch(
        &mut self,
        frame: &wire::Frame,
        first_gseq: u64,
        in_ring: Option<Instant>,
        live: bool,
    ) -> (Option<Arc<Batch>>, Vec<(StateSkip, String)>) {
        let agent = self.intern(&frame.header.agent);
        let in_ring =
            in_ring.filter(|_| self.ring.back().is_none_or(|b| b.last_gseq() < first_gseq));
        let mut skips = Vec::new();
        let batch = self.admit(&agent, frame, first_gseq, in_ring, Some(&mut skips));
        // Recovery tells no reader: a name only its batch held is not kept.
        let batch = batch.filter(|_| live);
        let skips: Vec<(StateSkip, String)> = skips
            .into_iter()
            .map(|(skip, check)| (skip, check.to_string()))
            .collect();
        for (_, check) in &skips {
            // Only the interning set holds it: no state, ring or agent.
            if self
                .names
                .get(check.as_str())
                .is_some_and(|n| Arc::strong_count(n) == 1)
            {
                self.names.remove(check.as_str());
            }
        }
        (batch, skips)
    }

    /// Recovery (crate::recover): forgets the ring, so that readers from
    /// before a break in the gseq chain get `reset`.
    pub fn clear_ring(&mut self) {
        self.floor = self.head();
        self.last_admitted = None;
        self.ring.clear();
        self.ring_records = 0;
    }

    /// Drops batches past the ring's age or record bounds.
    pub fn evict(&mut self, now: Instant) {
        while let Some(front) = self.ring.front() {
            let too_old = now.saturating_duration_since(front.accepted_at) > self.limits.max_age;
            if !too_old && self.ring_records <= self.limits.max_records {
                break;
            }
            self.ring_records -= front.items.len();
            self.floor = self.floor.max(front.last_gseq());
            self.ring.pop_front();
        }
    }

    /// The newest gseq given out (the first gseq minus one before any).
    pub fn head(&self) -> u64 {
        self.next_gseq - 1
    }

    /// A new reader: live channel, snapshot and what it missed since `since`.
    pub fn subscribe(&self, since: Option<u64>) -> Subscription {
        let live = self.live.subscribe();
        let head = self.head();
        let snapshot = self.states();
        use crate::message::ResetReason;
        let (reset, missed) = match since {
            None => (None, Vec::new()),
            Some(s) if s > head => (Some(ResetReason::SinceAhead), Vec::new()),
            Some(s) if s < self.floor => (Some(ResetReason::SinceOutOfRing), Vec::new()),
            Some(s) => (
                None,
                self.replay(s, head, REPLAY_CHUNK_BATCHES)
                    .unwrap_or_default(),
            ),
        };
        Subscription {
            live,
            head,
            reset,
            snapshot,
            ring: self.ring_bounds(),
            missed,
        }
    }

    /// The next chunk of a replay: at most `max_batches` ring batches
    /// holding records in (after, until], oldest first, or
    /// [`ReplayEvicted`] when the ring has dropped records after `after`.
    pub fn replay(
        &self,
        after: u64,
        until: u64,
        max_batches: usize,
    ) -> Result<Vec<Arc<Batch>>, ReplayEvicted> {
        if after < self.floor {
            return Err(ReplayEvicted { after });
        }
        let start = self.ring.partition_point(|b| b.last_gseq() <= after);
        Ok(self
            .ring
            .range(start..)
            .take_while(|b| b.first_gseq <= until)
            .take(max_batches)
            .cloned()
            .collect())
    }

    /// The last gseq the ring no longer holds (or never held): every
    /// record above it can be replayed.
    pub fn ring_floor(&self) -> u64 {
        self.floor
    }

    /// The first and last gseqs of the ring, if it holds any.
    pub fn ring_bounds(&self) -> Option<crate::message::RingBounds> {
        let first = self.ring.front()?.first_gseq;
        let last = self.ring.back()?.last_gseq();
        Some(crate::message::RingBounds { first, last })
    }

    /// A copy of the current state, unfiltered.
    pub fn states(&self) -> Vec<CheckState> {
        self.states_where(|_, _| true)
    }

    /// A copy of the current state of the checks `keep(agent, check)` selects.
    pub fn states_where(&self, keep: impl Fn(&str, &str) -> bool) -> Vec<CheckState> {
        self.state
            .iter()
            .filter(|((agent, check), _)| keep(agent, check))
            .map(|((agent, check), (gseq, record))| CheckState {
                agent: agent.clone(),
                check: check.clone(),
                gseq: *gseq,
                record: *record,
            })
            .collect()
    }

    /// The gseq of each current state that `keep(agent, check)` selects,
    /// without copying anything.
    pub fn state_gseqs<'h>(
        &'h self,
        keep: impl Fn(&str, &str) -> bool + 'h,
    ) -> impl Iterator<Item = u64> + 'h {
        self.state
            .iter()
            .filter(move |((agent, check), _)| keep(agent, check))
            .map(|(_, (gseq, _))| *gseq)
    }

    /// The live channel, for a reader that reads the ring itself.
    pub fn live(&self) -> broadcast::Receiver<Arc<SharedBatch>> {
        self.live.subscribe()
    }

    /// Records in the ring.
    pub fn ring_records(&self) -> usize {
        self.ring_records
    }

    /// Estimated bytes of the ring (records, batches) and the current state.
    pub fn memory_bytes(&self) -> usize {
        let state_entry = std::mem::size_of::<((Arc<str>, Arc<str>), (u64, Record))>() + 8;
        self.ring_records * RECORD_BYTES
            + self.ring.len() * BATCH_BYTES
            + self.state.capacity() * state_entry
            + self.names.iter().map(|n| n.len() + 32).sum::<usize>()
    }

    /// (agent, check) pairs in the current state.
    pub fn checks(&self) -> usize {
        self.state.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::validate;
    use std::time::Duration;
    use wire::{FrameBuilder, FrameHeader};

    fn rec(t: u64) -> Record {
        Record::up(t, 1).with_sc(200)
    }

    fn frames(agent: &str, session: u64, seqs: &[u64], checks: &[&str]) -> Vec<ValidFrame> {
        let mut body = Vec::new();
        for &seq in seqs {
            let mut b = FrameBuilder::new(FrameHeader {
                agent: agent.into(),
                session,
                seq,
            });
            for (i, c) in checks.iter().enumerate() {
                b.push(c, rec(seq * 100 + i as u64));
            }
            b.finish().encode_into(&mut body).unwrap();
        }
        validate(&body, agent).unwrap()
    }

    fn hub(max_records: usize) -> Hub {
        let limits = RingLimits {
            max_age: Duration::from_secs(300),
            max_records,
        };
        Hub::new(limits, 16, 1000)
    }

    fn accept(h: &mut Hub, agent: &str, f: &[ValidFrame], now: Instant) -> Ack {
        let plan = h.classify(agent, f);
        h.commit(agent, f, &plan, now).0
    }

    #[test]
    fn duplicates_are_acked_but_count_once() {
        let mut h = hub(100);
        let now = Instant::now();
        let ack = accept(&mut h, "a", &frames("a", 7, &[0, 1], &["x", "y"]), now);
        assert_eq!(
            (ack.session, ack.acked, ack.accepted, ack.records),
            (7, 1, 2, 4)
        );
        let ack = accept(&mut h, "a", &frames("a", 7, &[1, 2], &["x", "y"]), now);
        assert_eq!((ack.acked, ack.accepted, ack.duplicates), (2, 1, 1));
        assert_eq!(h.ring_records(), 6);
        assert_eq!(h.head(), 1005);
        // Another agent's sequence is its own.
        let ack = accept(&mut h, "b", &frames("b", 1, &[0], &["x"]), now);
        assert_eq!((ack.acked, ack.accepted), (0, 1));
        // An older session is a duplicate; a newer one starts over.
        let ack = accept(&mut h, "a", &frames("a", 6, &[9], &["x"]), now);
        assert_eq!((ack.session, ack.acked, ack.accepted), (7, 2, 0));
        let ack = accept(&mut h, "a", &frames("a", 8, &[0], &["x"]), now);
        assert_eq!((ack.session, ack.acked, ack.accepted), (8, 0, 1));
    }

    #[test]
    fn distinct_checks_are_capped_per_agent_and_known_ones_pass() {
        let mut h = hub(100);
        h.set_agent_limits(AgentLimits {
            max_checks: 3,
            ..AgentLimits::DEFAULT
        });
        let now = Instant::now();
        accept(&mut h, "a", &frames("a", 1, &[0], &["x", "y"]), now);
        let over = |h: &Hub, agent: &str, seq, checks: &[&str]| {
            let f = frames(agent, 1, &[seq], checks);
            let plan = h.classify(agent, &f);
            h.check_over_cap(agent, &f, &plan)
                .map(|(_, c)| c.to_owned())
        };
        assert_eq!(over(&h, "a", 1, &["x", "y", "z"]), None, "the third fits");
        assert_eq!(over(&h, "a", 1, &["x", "z", "w"]), Some("w".into()));
        assert_eq!(over(&h, "a", 1, &["y", "x"]), None);
        assert_eq!(over(&h, "b", 0, &["p", "q", "r", "s"]), Some("s".into()));
        // Duplicates bring nothing new.
        assert_eq!(over(&h, "a", 0, &["z", "w", "v"]), None);
        accept(&mut h, "a", &frames("a", 1, &[1], &["z"]), now);
        assert_eq!(over(&h, "a", 2, &["w"]), Some("w".into()));
        assert_eq!(over(&h, "a", 2, &["x", "y", "z"]), None);
    }

    #[test]
    fn a_frame_accepted_while_a_reset_is_logged_keeps_its_mark() {
        let mut h = hub(100);
        let now = Instant::now();
        accept(&mut h, "a", &frames("a", 5, &[0], &["x"]), now);
        let read = h.mark("a");
        // Between the reset's read and its finish, the agent moves on.
        accept(&mut h, "a", &frames("a", 5, &[1], &["x"]), now);
        assert!(!h.finish_reset("a", read));
        assert_eq!(h.mark("a"), Some((5, 1)));
    }

    #[test]
    fn a_reset_mark_lets_a_lower_session_in() {
        let mut h = hub(100);
        let now = Instant::now();
        accept(&mut h, "a", &frames("a", u64::MAX, &[9], &["x"]), now);
        let real = frames("a", 7, &[0, 1], &["x"]);
        assert_eq!(accept(&mut h, "a", &real, now).accepted, 0, "poisoned");
        assert!(h.finish_reset("a", Some((u64::MAX, 9))));
        assert_eq!(h.mark("a"), None);
        let ack = accept(&mut h, "a", &real, now);
        assert_eq!((ack.session, ack.acked, ack.accepted), (7, 1, 2));
        assert!(!h.finish_reset("nobody", None));
    }

    #[test]
    fn gaps_are_counted_and_not_waited_for() {
        let h0 = hub(100);
        let plan = h0.classify("a", &frames("a", 1, &[0, 3, 4], &["x"]));
        assert_eq!((plan.accepted(), plan.gap_frames), (3, 2));
        let mut h = hub(100);
        accept(
            &mut h,
            "a",
            &frames("a", 1, &[0, 3], &["x"]),
            Instant::now(),
        );
        let late = frames("a", 1, &[1], &["x"]);
        assert_eq!(h.classify("a", &late).accepted(), 0);
    }

    #[test]
    fn subscribe_gives_snapshot_missed_and_resets_outside_the_ring() {
        let mut h = hub(4);
        let now = Instant::now();
        for seq in 0..4 {
            accept(&mut h, "a", &frames("a", 1, &[seq], &["x", "y"]), now);
        }
        // 8 records, ring keeps at most 4: gseqs 1004..=1007.
        assert_eq!(h.ring_records(), 4);
        let s = h.subscribe(Some(1005));
        assert!(s.reset.is_none());
        assert_eq!(s.head, 1007);
        assert_eq!(s.snapshot.len(), 2);
        let missed: Vec<u64> = s
            .missed
            .iter()
            .flat_map(|b| b.with_gseq().map(|(g, _, _)| g).collect::<Vec<_>>())
            .filter(|g| *g > 1005)
            .collect();
        assert_eq!(missed, vec![1006, 1007]);
        use crate::message::ResetReason;
        assert!(
            h.subscribe(Some(1003)).reset.is_none(),
            "everything after 1003 is kept"
        );
        let out = Some(ResetReason::SinceOutOfRing);
        assert_eq!(h.subscribe(Some(1002)).reset, out, "1003 left the ring");
        let ahead = Some(ResetReason::SinceAhead);
        assert_eq!(h.subscribe(Some(5000)).reset, ahead, "from the future");
        assert!(h.subscribe(Some(1007)).reset.is_none());
        assert!(h.subscribe(Some(1007)).missed.is_empty());
    }

    #[test]
    fn a_replay_is_taken_a_bounded_chunk_at_a_time() {
        let mut h = hub(100_000);
        let now = Instant::now();
        let seqs: Vec<u64> = (0..1000).collect();
        accept(&mut h, "a", &frames("a", 1, &seqs, &["x"]), now);
        let s = h.subscribe(Some(999));
        assert!(s.reset.is_none());
        assert_eq!(s.missed.len(), REPLAY_CHUNK_BATCHES);
        // The reader holds its chunk; the ring alone holds the rest.
        assert_eq!(Arc::strong_count(&h.ring[REPLAY_CHUNK_BATCHES - 1]), 2);
        assert_eq!(Arc::strong_count(&h.ring[REPLAY_CHUNK_BATCHES]), 1);
        let mut got: Vec<u64> = Vec::new();
        let mut chunk = s.missed;
        loop {
            assert!(chunk.len() <= REPLAY_CHUNK_BATCHES);
            let Some(last) = chunk.last().map(|b| b.last_gseq()) else {
                break;
            };
            got.extend(chunk.iter().flat_map(|b| b.with_gseq().map(|(g, _, _)| g)));
            chunk = h.replay(last, s.head, REPLAY_CHUNK_BATCHES).unwrap();
        }
        assert_eq!(
            got,
            (1000..=1999).collect::<Vec<_>>(),
            "each once, in order"
        );
    }

    #[test]
    fn a_replay_the_ring_moved_past_is_evicted() {
        let mut h = hub(100);
        let now = Instant::now();
        let seqs: Vec<u64> = (0..100).collect();
        accept(&mut h, "a", &frames("a", 1, &seqs, &["x"]), now);
        let s = h.subscribe(Some(999));
        let cursor = s.missed.last().unwrap().last_gseq();
        assert_eq!(cursor, 999 + REPLAY_CHUNK_BATCHES as u64);
        let more: Vec<u64> = (100..200).collect();
        accept(&mut h, "a", &frames("a", 1, &more, &["x"]), now);
        assert_eq!(
            h.replay(cursor, s.head, REPLAY_CHUNK_BATCHES).err(),
            Some(ReplayEvicted { after: cursor })
        );
        assert!(h.replay(h.head(), h.head(), 1).unwrap().is_empty());
    }

    #[test]
    fn records_kept_out_of_the_ring_reset_a_reader_resuming_below_them() {
        // JetStream mode: a replica reading messages older than the ring.
        let mut h = Hub::new(
            RingLimits {
                max_age: Duration::from_secs(300),
                max_records: 100,
            },
            16,
            1,
        );
        let f = frames("a", 1, &[0, 1], &["x"]);
        let now = Instant::now();
        h.append(&[f[0].frame.clone()], 1000, None, now);
        h.append(&[f[1].frame.clone()], 2000, None, now);
        assert_eq!((h.head(), h.ring_records()), (2000, 0));
        use crate::message::ResetReason;
        let out = Some(ResetReason::SinceOutOfRing);
        assert_eq!(
            h.subscribe(Some(1000)).reset,
            out,
            "2000 cannot be replayed"
        );
        assert!(h.subscribe(Some(2000)).reset.is_none());
        // A message in the ring after them replays from there.
        let g = frames("a", 1, &[2], &["x"]);
        h.append(&[g[0].frame.clone()], 3000, Some(now), now);
        assert_eq!(h.subscribe(Some(1000)).reset, out);
        let s = h.subscribe(Some(2000));
        assert!(s.reset.is_none());
        assert_eq!(s.missed.len(), 1);
    }

    #[test]
    fn ring_forgets_by_age() {
        let mut h = hub(100);
        let t0 = Instant::now();
        accept(&mut h, "a", &frames("a", 1, &[0], &["x"]), t0);
        accept(
            &mut h,
            "a",
            &frames("a", 1, &[1], &["x"]),
            t0 + Duration::from_secs(200),
        );
        h.evict(t0 + Duration::from_secs(301));
        assert_eq!(h.ring_records(), 1);
        assert_eq!(h.checks(), 1, "current state outlives the ring");
    }

    #[test]
    fn live_channel_sees_batches_after_subscribing() {
        let mut h = hub(100);
        let now = Instant::now();
        accept(&mut h, "a", &frames("a", 1, &[0], &["x"]), now);
        let mut s = h.subscribe(None);
        accept(&mut h, "a", &frames("a", 1, &[1], &["x"]), now);
        let b = s.live.try_recv().unwrap();
        assert_eq!(b.batch.first_gseq, s.head + 1);
        assert!(first_gseq(SystemTime::now()) < (1 << 53));
    }
}
