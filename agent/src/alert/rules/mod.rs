//! The rule engine: records and clock ticks in, [`Event`]s out. Pure and
//! deterministic — no I/O, no clock (times are epoch milliseconds passed
//! in), no async — so a restart restored from [`EngineState`] decides what
//! an uninterrupted run would have.
//!
//! A location (region, agent) is down after `down_after` non-up probes in
//! a row, up after `recover_after` ups, else keeps its state; it has no
//! data once quiet for `no_data_after` of its intervals (the median of its
//! last five record spacings), judged only in regions whose stream is live.
//! A region is up if a location is, down if one is and none is up; the
//! check is down once `required` of the reporting regions are down, and
//! recovers once `required` are up and fewer than `required` down.
//! Receivers are told of differences between that and what they were last
//! told, unless a silence covers the check (reconciled when it ends) or the
//! check flaps (one notification per flap window until it settles).

mod check;
mod location;
mod rule;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

pub use check::CheckStatus;
pub use rule::{Glob, Quorum, Rule, RuleConfig, Silence};

use self::check::{Check, Ctx};
use self::rule::RuleChoice;
use crate::alert::event::{self, Event, Kind};

/// Everything the engine must remember across a restart (the checkpoint
/// writes it as MessagePack). Caches derived from it are rebuilt by
/// [`Engine::restore`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    /// In the order first seen, which is the order ticks visit them.
    checks: Vec<Check>,
    /// Gap incidents so far, by gateway.
    gaps: Vec<(String, u64)>,
}

/// Counts for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Checks up in the quorum.
    pub checks_up: u64,
    /// Checks down in the quorum.
    pub checks_down: u64,
    /// Checks neither yet.
    pub checks_pending: u64,
    /// Checks with at least one location without data.
    pub checks_no_data: u64,
    /// Checks flapping.
    pub checks_flapping: u64,
    /// Locations (region, agent, check) known.
    pub locations: u64,
}

/// One check as the engine sees it now (for status pages and logs).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckView {
    /// Its status in the quorum.
    pub status: CheckStatus,
    /// How the quorum stands.
    pub quorum: event::Quorum,
    /// Its locations, in region then agent order.
    pub locations: Vec<event::Location>,
    /// Whether it flaps.
    pub flapping: bool,
    /// The incident of the Down receivers were told of and not yet the end.
    pub open_down: Option<u64>,
    /// Likewise for NoData.
    pub open_no_data: Option<u64>,
}

/// The rule engine. See the module documentation for the rules.
#[derive(Debug)]
pub struct Engine {
    config: RuleConfig,
    epoch: String,
    state: EngineState,
    /// Check name to its index in `state.checks`.
    index: HashMap<String, usize>,
    /// The rule each check follows, by the same index.
    rules: Vec<RuleChoice>,
    /// The rules may have changed: the next tick evaluates every check.
    reevaluate: bool,
}

impl Engine {
    /// An engine that has seen nothing; `epoch` goes into every event id.
    pub fn new(config: RuleConfig, epoch: impl Into<String>) -> Engine {
        Engine::restore(config, epoch, EngineState::default())
    }

    /// An engine continuing from `state` (see [`Engine::state`]).
    pub fn restore(config: RuleConfig, epoch: impl Into<String>, mut state: EngineState) -> Engine {
        // A state written by this engine has neither duplicates nor
        // unsorted locations; one that does must not break lookups.
        let mut names = HashSet::new();
        state.checks.retain(|c| names.insert(c.name.clone()));
        for check in &mut state.checks {
            check
                .locations
                .sort_by(|a, b| (&a.region, &a.agent).cmp(&(&b.region, &b.agent)));
            check
                .locations
                .dedup_by(|a, b| a.region == b.region && a.agent == b.agent);
        }
        let mut engine = Engine {
            config,
            epoch: epoch.into(),
            state,
            index: HashMap::new(),
            rules: Vec::new(),
            reevaluate: true,
        };
        for (i, check) in engine.state.checks.iter().enumerate() {
            engine.index.insert(check.name.clone(), i);
        }
        engine.choose_rules();
        engine
    }

    /// Forgets the gseqs `region`'s locations last took, so the records
    /// of a gateway that numbers afresh (a `since_ahead`: another
    /// gateway's gseqs) are not taken for replays.
    pub fn forget_gseqs(&mut self, region: &str) {
        for check in &mut self.state.checks {
            for loc in check.locations.iter_mut().filter(|l| l.region == region) {
                loc.gseq = 0;
            }
        }
    }

    /// What to checkpoint.
    pub fn state(&self) -> &EngineState {
        &self.state
    }

    /// New rules (a reload); the state is kept, and the next tick decides
    /// every check again under the new rules.
    pub fn set_config(&mut self, config: RuleConfig) {
        self.config = config;
        self.choose_rules();
        self.reevaluate = true;
    }

    fn choose_rules(&mut self) {
        let config = &self.config;
        self.rules = self
            .state
            .checks
            .iter()
            .map(|c| config.choose(&c.name))
            .collect();
    }

    /// Takes record `gseq` of location (`region`, `agent`) for `check`;
    /// `now_ms` and `silences` decide whether what it changes is told now.
    /// Events are appended to `out`. A record not newer (by gseq) than the
    /// location's last is ignored, so replays and heals change nothing.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site, on the hot path: a record's parts as the stream gives them"
    )]
    pub fn observe(
        &mut self,
        region: &str,
        agent: &str,
        check: &str,
        gseq: u64,
        record: &wire::Record,
        now_ms: u64,
        silences: &[Silence],
        out: &mut Vec<Event>,
    ) {
        let i = match self.index.get(check) {
            Some(&i) => i,
            None => {
                let i = self.state.checks.len();
                self.state.checks.push(Check::new(check));
                self.index.insert(check.to_owned(), i);
                self.rules.push(self.config.choose(check));
                i
            }
        };
        let ctx = Ctx {
            rule: self.config.rule(self.rules[i]),
            forget_after_ms: self.config.forget_after_ms,
            epoch: &self.epoch,
            now_ms,
            silences,
        };
        self.state.checks[i].observe((region, agent), gseq, record, &ctx, out);
    }

    /// The clock: no data (only for regions `live_regions` says are
    /// streaming: a disconnected alerter must not call agents dead), ends of
    /// silences and of flapping, forgetting, and after a reload or restore
    /// the checks under their (maybe new) rules. Checks are visited in the
    /// order they were first seen.
    pub fn tick(
        &mut self,
        now_ms: u64,
        live_regions: &dyn Fn(&str) -> bool,
        silences: &[Silence],
        out: &mut Vec<Event>,
    ) {
        for (check, &choice) in self.state.checks.iter_mut().zip(&self.rules) {
            let ctx = Ctx {
                rule: self.config.rule(choice),
                forget_after_ms: self.config.forget_after_ms,
                epoch: &self.epoch,
                now_ms,
                silences,
            };
            check.tick(live_regions, self.reevaluate, &ctx, out);
        }
        self.reevaluate = false;
    }

    /// The alerter missed gseqs `from..=to` of `gateway` (serving `region`)
    /// and history could not give them back. The event's check is the
    /// gateway's name and its one location the region (no agent).
    pub fn gap(&mut self, gateway: &str, region: &str, from: u64, to: u64, now_ms: u64) -> Event {
        let incident = match self.state.gaps.iter_mut().find(|(g, _)| g == gateway) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.state.gaps.push((gateway.to_owned(), 1));
                1
            }
        };
        Event {
            id: event::event_id(&self.epoch, Kind::Gap, gateway, incident),
            kind: Kind::Gap,
            check: gateway.to_owned(),
            incident,
            at_ms: now_ms,
            since_ms: now_ms,
            quorum: event::Quorum {
                required: 0,
                down: 0,
                up: 0,
                regions: 0,
            },
            locations: vec![event::Location {
                region: region.to_owned(),
                agent: String::new(),
                state: event::LocationState::NoData,
                consecutive: 0,
                last: None,
            }],
            classes: Vec::new(),
            missed: Some((from, to)),
            link: None,
        }
    }

    /// Counts for metrics. Checks whose locations were all forgotten are
    /// not counted.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for check in &self.state.checks {
            if check.locations.is_empty() {
                continue;
            }
            match check.status {
                CheckStatus::Up => s.checks_up += 1,
                CheckStatus::Down => s.checks_down += 1,
                CheckStatus::Pending => s.checks_pending += 1,
            }
            s.checks_no_data += u64::from(check.locations.iter().any(|l| l.is_silent()));
            s.checks_flapping += u64::from(check.flap.flapping);
            s.locations += check.locations.len() as u64;
        }
        s
    }

    /// One check as the engine sees it, if it has seen it.
    pub fn check_view(&self, check: &str) -> Option<CheckView> {
        let &i = self.index.get(check)?;
        let c = &self.state.checks[i];
        Some(CheckView {
            status: c.status,
            quorum: c.quorum(self.config.rule(self.rules[i])),
            locations: c.views(),
            flapping: c.flap.flapping,
            open_down: c.down.map(|o| o.incident),
            open_no_data: c.no_data.map(|o| o.incident),
        })
    }
}
