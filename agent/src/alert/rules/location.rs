//! One location (region, agent) of a check: its consecutive counts with
//! hysteresis, the interval inferred from its records, and whether it has
//! gone silent.

use serde::{Deserialize, Serialize};

use super::rule::Rule;
use crate::alert::event::{self, LocationState};

/// Deltas kept to infer the interval: the median of five survives one
/// late probe (which stretches one delta and shortens the next).
const DELTAS: usize = 5;

/// What the engine keeps of a location. Small and of fixed size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Loc {
    pub region: String,
    pub agent: String,
    /// The gseq of the last record taken; older ones are replays.
    pub gseq: u64,
    pub last: wire::Record,
    /// Pending, Up or Down (never NoData: see `silent_since_ms`).
    pub held: LocationState,
    /// Since when (the clock) it has been NoData, if it is.
    pub silent_since_ms: Option<u64>,
    /// The last probe was up.
    pub up: bool,
    /// Probes in a row with that status.
    pub consecutive: u32,
    /// The start (`t_ms`) of the first probe of that run.
    pub run_start_ms: u64,
    /// The last positive `t_ms` deltas, a ring; `deltas_len` of them valid.
    deltas: [u32; DELTAS],
    deltas_len: u8,
    deltas_next: u8,
}

impl Loc {
    pub fn new(region: &str, agent: &str, gseq: u64, record: &wire::Record, rule: &Rule) -> Loc {
        let mut loc = Loc {
            region: region.to_owned(),
            agent: agent.to_owned(),
            gseq,
            last: *record,
            held: LocationState::Pending,
            silent_since_ms: None,
            up: is_up(record),
            consecutive: 0,
            run_start_ms: record.t_ms,
            deltas: [0; DELTAS],
            deltas_len: 0,
            deltas_next: 0,
        };
        loc.count(record, rule);
        loc
    }

    /// Takes a newer record (the caller checked the gseq).
    pub fn take(&mut self, gseq: u64, record: &wire::Record, rule: &Rule) {
        if let Some(delta) = record.t_ms.checked_sub(self.last.t_ms).filter(|&d| d > 0) {
            self.deltas[usize::from(self.deltas_next)] = u32::try_from(delta).unwrap_or(u32::MAX);
            self.deltas_next = (self.deltas_next + 1) % DELTAS as u8;
            self.deltas_len = (self.deltas_len + 1).min(DELTAS as u8);
        }
        if self.silent_since_ms.take().is_some() {
            // What happened while it was silent is unknown: the counts go
            // on, the state is decided afresh by them.
            self.held = LocationState::Pending;
        }
        let up = is_up(record);
        if up != self.up {
            self.up = up;
            self.consecutive = 0;
        }
        self.gseq = gseq;
        self.last = *record;
        self.count(record, rule);
    }

    fn count(&mut self, record: &wire::Record, rule: &Rule) {
        if self.consecutive == 0 {
            self.run_start_ms = record.t_ms;
        }
        self.consecutive = self.consecutive.saturating_add(1);
        if self.up && self.consecutive >= rule.recover_after {
            self.held = LocationState::Up;
        } else if !self.up && self.consecutive >= rule.down_after {
            self.held = LocationState::Down;
        }
    }

    /// What the location's state is now.
    pub fn state(&self) -> LocationState {
        match self.silent_since_ms {
            Some(_) => LocationState::NoData,
            None => self.held,
        }
    }

    pub fn is_silent(&self) -> bool {
        self.silent_since_ms.is_some()
    }

    /// When its last probe ended.
    pub fn last_end_ms(&self) -> u64 {
        self.last.t_ms.saturating_add(self.last.rt_ms)
    }

    /// The inferred interval: the median of the kept deltas (the larger
    /// middle one of an even count); `None` before a second record.
    pub fn interval_ms(&self) -> Option<u64> {
        let n = usize::from(self.deltas_len);
        if n == 0 {
            return None;
        }
        let mut d = self.deltas;
        d[..n].sort_unstable();
        Some(u64::from(d[n / 2]))
    }

    /// Whether, at `now_ms`, it has been quiet for longer than `rule`
    /// allows (never before its interval is known).
    pub fn is_overdue(&self, now_ms: u64, rule: &Rule) -> bool {
        let quiet = now_ms.saturating_sub(self.last_end_ms());
        // Cheap first: most locations probed within the floor.
        if quiet <= rule.no_data_min_ms {
            return false;
        }
        match self.interval_ms() {
            Some(interval) => {
                quiet
                    > interval
                        .saturating_mul(u64::from(rule.no_data_after))
                        .max(rule.no_data_min_ms)
            }
            None => false,
        }
    }

    /// As a notification shows it.
    pub fn view(&self) -> event::Location {
        event::Location {
            region: self.region.clone(),
            agent: self.agent.clone(),
            state: self.state(),
            consecutive: self.consecutive,
            last: Some(event::Probe {
                gseq: self.gseq,
                record: self.last,
            }),
        }
    }
}

/// Any status but up counts as down: an agent that cannot tell is not
/// seeing the check work.
fn is_up(record: &wire::Record) -> bool {
    record.st == wire::Status::Up
}
