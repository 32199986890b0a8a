//! One check across its locations: the regions' states, the quorum, the
//! check's status, flapping, and the reconciliation of what is true with
//! what receivers were told.

use serde::{Deserialize, Serialize};

use super::location::Loc;
use super::rule::{Rule, Silence};
use crate::alert::event::{self, Event, Kind, LocationState};

/// A check's state as its quorum of regions sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Never yet up or down in the quorum.
    Pending,
    /// Up in the quorum (or recovered).
    Up,
    /// Down in the quorum, until it is up in the quorum again.
    Down,
}

/// An incident receivers were told of and not yet told the end of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Open {
    pub incident: u64,
    pub since_ms: u64,
}

/// Changes of the down/not-down status in the flap window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Flap {
    /// When the status changed (decision times), at most threshold + 1.
    pub changes: Vec<u64>,
    pub flapping: bool,
    /// Flapping events so far.
    pub incidents: u64,
    /// When the last Flapping event went out.
    pub last_event_ms: Option<u64>,
    /// When the last Down, Recovered or Flapping went out.
    pub last_notice_ms: Option<u64>,
}

/// What the engine keeps of a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Check {
    pub name: String,
    /// Sorted by region, then agent.
    pub locations: Vec<Loc>,
    pub status: CheckStatus,
    /// When the current down status began (see `failing_since`).
    pub down_since_ms: u64,
    /// The Down receivers were told of, until its Recovered.
    pub down: Option<Open>,
    /// Down incidents so far (the last one's number).
    pub downs: u64,
    /// The NoData receivers were told of, until its DataBack.
    pub no_data: Option<Open>,
    /// NoData incidents so far.
    pub no_datas: u64,
    pub flap: Flap,
}

/// What a decision needs besides the check.
pub(super) struct Ctx<'a> {
    pub rule: &'a Rule,
    pub forget_after_ms: u64,
    pub epoch: &'a str,
    pub now_ms: u64,
    pub silences: &'a [Silence],
}

impl Check {
    pub fn new(name: &str) -> Check {
        Check {
            name: name.to_owned(),
            locations: Vec::new(),
            status: CheckStatus::Pending,
            down_since_ms: 0,
            down: None,
            downs: 0,
            no_data: None,
            no_datas: 0,
            flap: Flap::default(),
        }
    }

    /// Takes a record of location (region, agent); replays (gseq not
    /// newer) change nothing.
    pub fn observe(
        &mut self,
        (region, agent): (&str, &str),
        gseq: u64,
        record: &wire::Record,
        ctx: &Ctx<'_>,
        out: &mut Vec<Event>,
    ) {
        let found = self
            .locations
            .binary_search_by(|l| (l.region.as_str(), l.agent.as_str()).cmp(&(region, agent)));
        match found {
            Ok(i) => {
                let loc = &mut self.locations[i];
                // A replay (gseq not newer), or the same probe again under
                // another gateway's numbering (after `forget_gseqs`).
                if gseq <= loc.gseq || record.t_ms <= loc.last.t_ms {
                    return;
                }
                let before = loc.state();
                loc.take(gseq, record, ctx.rule);
                if loc.state() == before {
                    return;
                }
            }
            Err(i) => {
                let loc = Loc::new(region, agent, gseq, record, ctx.rule);
                self.locations.insert(i, loc);
            }
        }
        let at_ms = record.t_ms.saturating_add(record.rt_ms);
        self.evaluate(at_ms, ctx, out);
    }

    /// The clock: forgets long-silent locations, finds overdue ones (in
    /// live regions only), settles flapping, and sends what silences or the
    /// flap window held back; `reevaluate` after the rules changed.
    pub fn tick(
        &mut self,
        live: &dyn Fn(&str) -> bool,
        reevaluate: bool,
        ctx: &Ctx<'_>,
        out: &mut Vec<Event>,
    ) {
        let (now, rule) = (ctx.now_ms, ctx.rule);
        self.forget(now, ctx.forget_after_ms);
        let mut changed = false;
        for loc in &mut self.locations {
            if !loc.is_silent() && loc.is_overdue(now, rule) && live(&loc.region) {
                loc.silent_since_ms = Some(now);
                changed = true;
            }
        }
        if changed || reevaluate {
            self.evaluate(now, ctx, out);
        }
        self.settle(now, rule);
        self.reconcile(now, ctx, out);
    }

    /// Drops locations without data for longer than `forget_after_ms`. If that
    /// leaves none silent, the open NoData is closed by the DataBack
    /// reconciling sends next (receivers such as Alertmanager would
    /// otherwise keep the incident firing for ever).
    fn forget(&mut self, now_ms: u64, forget_after_ms: u64) {
        self.locations.retain(|l| {
            l.silent_since_ms
                .is_none_or(|s| now_ms.saturating_sub(s) <= forget_after_ms)
        });
    }

    /// After a location's state changed: the check's status, then what
    /// receivers should be told.
    fn evaluate(&mut self, at_ms: u64, ctx: &Ctx<'_>, out: &mut Vec<Event>) {
        let q = self.quorum(ctx.rule);
        let next = next_status(self.status, &q);
        if next != self.status {
            let was_down = self.status == CheckStatus::Down;
            self.status = next;
            if next == CheckStatus::Down {
                self.down_since_ms = self.failing_since(q.required, at_ms);
            }
            if was_down != (next == CheckStatus::Down) {
                self.flap_change(at_ms, ctx, out);
            }
        }
        self.reconcile(at_ms, ctx, out);
    }

    /// Tells receivers what differs from what they were told, unless a
    /// silence covers the check or the flap window holds it.
    fn reconcile(&mut self, at_ms: u64, ctx: &Ctx<'_>, out: &mut Vec<Event>) {
        let down_differs = (self.status == CheckStatus::Down) != self.down.is_some();
        let silent_differs = self.locations.iter().any(Loc::is_silent) != self.no_data.is_some();
        if !(down_differs || silent_differs) || self.silenced(ctx) {
            return;
        }
        if down_differs && !self.flap_holds(at_ms, ctx.rule) {
            let (kind, open) = match self.down.take() {
                Some(open) => (Kind::Recovered, open),
                None => {
                    self.downs += 1;
                    let open = Open {
                        incident: self.downs,
                        since_ms: self.down_since_ms,
                    };
                    self.down = Some(open);
                    (Kind::Down, open)
                }
            };
            self.flap.last_notice_ms = Some(at_ms);
            out.push(self.event(kind, open, at_ms, ctx));
        }
        if silent_differs {
            let (kind, open) = match self.no_data.take() {
                Some(open) => (Kind::DataBack, open),
                None => {
                    self.no_datas += 1;
                    let since_ms = self
                        .locations
                        .iter()
                        .filter(|l| l.is_silent())
                        .map(Loc::last_end_ms)
                        .min()
                        .unwrap_or(at_ms);
                    let open = Open {
                        incident: self.no_datas,
                        since_ms,
                    };
                    self.no_data = Some(open);
                    (Kind::NoData, open)
                }
            };
            out.push(self.event(kind, open, at_ms, ctx));
        }
    }

    fn silenced(&self, ctx: &Ctx<'_>) -> bool {
        ctx.silences.iter().any(|s| {
            s.is_active(ctx.now_ms)
                && s.covers(&self.name, self.locations.iter().map(|l| l.region.as_str()))
        })
    }

    /// A status change at `at_ms`: counted, and the check starts flapping
    /// (one Flapping event, at most one per window) at the threshold.
    fn flap_change(&mut self, at_ms: u64, ctx: &Ctx<'_>, out: &mut Vec<Event>) {
        let rule = ctx.rule;
        if rule.flap_threshold == 0 {
            return;
        }
        self.flap.changes.push(at_ms);
        self.prune_changes(at_ms, rule);
        if self.flap.flapping || self.flap.changes.len() < rule.flap_threshold as usize {
            return;
        }
        self.flap.flapping = true;
        let window = rule.flap_window_ms;
        let may = self
            .flap
            .last_event_ms
            .is_none_or(|t| at_ms >= t.saturating_add(window));
        if may && !self.silenced(ctx) {
            self.flap.incidents += 1;
            self.flap.last_event_ms = Some(at_ms);
            self.flap.last_notice_ms = Some(at_ms);
            let open = Open {
                incident: self.flap.incidents,
                since_ms: self.flap.changes.iter().copied().min().unwrap_or(at_ms),
            };
            out.push(self.event(Kind::Flapping, open, at_ms, ctx));
        }
    }

    /// Keeps the changes of the last window, at most threshold + 1.
    fn prune_changes(&mut self, now_ms: u64, rule: &Rule) {
        let changes = &mut self.flap.changes;
        changes.retain(|&t| t.saturating_add(rule.flap_window_ms) > now_ms);
        let cap = rule.flap_threshold as usize + 1;
        if changes.len() > cap {
            changes.drain(..changes.len() - cap);
        }
    }

    /// A flapping check settles once the last window saw fewer changes than
    /// the threshold.
    fn settle(&mut self, now_ms: u64, rule: &Rule) {
        self.prune_changes(now_ms, rule);
        if self.flap.flapping
            && (rule.flap_threshold == 0 || self.flap.changes.len() < rule.flap_threshold as usize)
        {
            self.flap.flapping = false;
        }
    }

    /// While flapping: one notification per window.
    fn flap_holds(&self, at_ms: u64, rule: &Rule) -> bool {
        self.flap.flapping
            && self
                .flap
                .last_notice_ms
                .is_some_and(|t| at_ms < t.saturating_add(rule.flap_window_ms))
    }

    /// Regions, and those up and down, with what `rule` requires of them.
    pub fn quorum(&self, rule: &Rule) -> event::Quorum {
        let (mut regions, mut up, mut down) = (0, 0, 0);
        for group in self.locations.chunk_by(|a, b| a.region == b.region) {
            let (mut any_up, mut any_down, mut reporting) = (false, false, false);
            for loc in group {
                match loc.state() {
                    LocationState::Up => any_up = true,
                    LocationState::Down => any_down = true,
                    LocationState::Pending | LocationState::NoData => {}
                }
                reporting |= !loc.is_silent();
            }
            if !reporting {
                continue;
            }
            regions += 1;
            if any_up {
                up += 1;
            } else if any_down {
                down += 1;
            }
        }
        event::Quorum {
            required: rule.quorum.required(regions),
            down,
            up,
            regions,
        }
    }

    /// When the quorum began failing: each down region's failing run
    /// starts with its earliest down location's run; the quorum was failing
    /// from the `required`-th earliest of those.
    fn failing_since(&self, required: u32, at_ms: u64) -> u64 {
        let mut starts: Vec<u64> = Vec::new();
        for group in self.locations.chunk_by(|a, b| a.region == b.region) {
            if group.iter().any(|l| l.state() == LocationState::Up) {
                continue;
            }
            let start = group
                .iter()
                .filter(|l| l.state() == LocationState::Down)
                .map(|l| l.run_start_ms)
                .min();
            starts.extend(start);
        }
        starts.sort_unstable();
        let k = (required as usize).clamp(1, starts.len().max(1)) - 1;
        starts.get(k).copied().unwrap_or(at_ms)
    }

    /// The error classes of the down locations' last probes, sorted.
    fn classes(&self) -> Vec<String> {
        let mut names: Vec<&'static str> = self
            .locations
            .iter()
            .filter(|l| l.state() == LocationState::Down)
            .filter_map(|l| l.last.error.map(wire::ErrorClass::name))
            .collect();
        names.sort_unstable();
        names.dedup();
        names.into_iter().map(str::to_owned).collect()
    }

    pub fn views(&self) -> Vec<event::Location> {
        self.locations.iter().map(Loc::view).collect()
    }

    fn event(&self, kind: Kind, open: Open, at_ms: u64, ctx: &Ctx<'_>) -> Event {
        let quorum = match kind {
            Kind::NoData | Kind::DataBack => event::Quorum {
                required: 0,
                down: 0,
                up: 0,
                regions: 0,
            },
            _ => self.quorum(ctx.rule),
        };
        Event {
            id: event::event_id(ctx.epoch, kind, &self.name, open.incident),
            kind,
            check: self.name.clone(),
            incident: open.incident,
            at_ms,
            since_ms: open.since_ms,
            quorum,
            locations: self.views(),
            classes: self.classes(),
            missed: None,
            link: None,
        }
    }
}

/// Down once the quorum is down; from down, up once the quorum is up and
/// no longer down (with `AtLeast(1)` one region up must not clear a
/// region down); otherwise as before.
fn next_status(now: CheckStatus, q: &event::Quorum) -> CheckStatus {
    match now {
        CheckStatus::Down if q.up >= q.required && q.down < q.required => CheckStatus::Up,
        CheckStatus::Down => CheckStatus::Down,
        _ if q.down >= q.required => CheckStatus::Down,
        _ if q.up >= q.required => CheckStatus::Up,
        other => other,
    }
}
