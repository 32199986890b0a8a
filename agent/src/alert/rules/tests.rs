use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use wire::{ErrorClass, Record};

use super::*;
use crate::alert::event::{LocationState, event_id};

const EPOCH: &str = "epoch-1";
const T0: u64 = 1_767_225_600_000;
const S: u64 = 1000;
/// Every test probe takes this long.
const RT: u64 = 100;
const REGIONS: [&str; 3] = ["ap", "eu", "us"];

fn all_live(_: &str) -> bool {
    true
}

/// An engine fed like the alerter feeds it: one gseq counter per region
/// (gateway), the clock at the probe's end.
struct Sim {
    engine: Engine,
    gseq: HashMap<String, u64>,
    silences: Vec<Silence>,
    events: Vec<Event>,
    /// Every observation made, to replay it.
    log: Vec<(String, String, u64, Record)>,
}

impl Sim {
    fn new(config: RuleConfig) -> Sim {
        Sim {
            engine: Engine::new(config, EPOCH),
            gseq: HashMap::new(),
            silences: Vec::new(),
            events: Vec::new(),
            log: Vec::new(),
        }
    }

    fn record(&mut self, region: &str, check: &str, record: Record) {
        let gseq = self.gseq.entry(region.to_owned()).or_insert(0);
        *gseq += 1;
        let gseq = *gseq;
        self.log
            .push((region.to_owned(), check.to_owned(), gseq, record));
        self.feed(region, check, gseq, &record);
    }

    fn feed(&mut self, region: &str, check: &str, gseq: u64, record: &Record) {
        let now = record.t_ms + record.rt_ms;
        self.engine.observe(
            region,
            &format!("agent-{region}"),
            check,
            gseq,
            record,
            now,
            &self.silences,
            &mut self.events,
        );
    }

    fn probe(&mut self, region: &str, check: &str, t_ms: u64, up: bool) {
        let record = if up {
            Record::up(t_ms, RT).with_sc(200)
        } else {
            Record::down(t_ms, RT, ErrorClass::ConnectTimeout)
        };
        self.record(region, check, record);
    }

    /// One probe of `check` per region at `t_ms`, `ups` in REGIONS order.
    fn round(&mut self, check: &str, t_ms: u64, ups: [bool; 3]) {
        for (region, up) in REGIONS.iter().zip(ups) {
            self.probe(region, check, t_ms, up);
        }
    }

    fn tick(&mut self, now_ms: u64) {
        self.tick_live(now_ms, &all_live);
    }

    fn tick_live(&mut self, now_ms: u64, live: &dyn Fn(&str) -> bool) {
        self.engine
            .tick(now_ms, live, &self.silences, &mut self.events);
    }

    fn take(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn kinds(&mut self) -> Vec<(Kind, u64)> {
        self.take().iter().map(|e| (e.kind, e.incident)).collect()
    }

    fn status(&self, check: &str) -> CheckStatus {
        self.engine.check_view(check).expect("a known check").status
    }
}

const UP: [bool; 3] = [true, true, true];
const DOWN: [bool; 3] = [false, false, false];
/// ap and eu fail, us stays up.
const TWO_DOWN: [bool; 3] = [false, false, true];

/// `n` rounds from `t_ms`, 10 s apart; returns the next round's time.
fn rounds(sim: &mut Sim, check: &str, t_ms: u64, n: u64, ups: [bool; 3]) -> u64 {
    for k in 0..n {
        sim.round(check, t_ms + k * 10 * S, ups);
    }
    t_ms + n * 10 * S
}

#[test]
fn one_failing_region_never_fires_under_majority() {
    let mut sim = Sim::new(RuleConfig::default());
    let t = rounds(&mut sim, "api", T0, 3, UP);
    rounds(&mut sim, "api", t, 20, [false, true, true]);
    assert_eq!(sim.kinds(), []);
    let view = sim.engine.check_view("api").unwrap();
    assert_eq!(view.status, CheckStatus::Up);
    assert_eq!(view.locations[0].state, LocationState::Down);
    assert_eq!(
        (view.quorum.required, view.quorum.down, view.quorum.up),
        (2, 1, 2)
    );
}

#[test]
fn two_failing_regions_fire_with_classes_and_locations() {
    let mut sim = Sim::new(RuleConfig::default());
    let t = rounds(&mut sim, "api", T0, 3, UP);
    sim.probe("ap", "api", t, false);
    sim.record("eu", "api", Record::down(t, RT, ErrorClass::TlsExpired));
    sim.probe("us", "api", t, true);
    assert_eq!(sim.kinds(), [], "one down probe is not down yet");
    sim.probe("ap", "api", t + 10 * S, false);
    sim.probe("eu", "api", t + 10 * S, false);
    let events = sim.take();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.kind, e.incident, e.check.as_str()),
        (Kind::Down, 1, "api")
    );
    assert_eq!(e.id, event_id(EPOCH, Kind::Down, "api", 1));
    assert_eq!(
        e.at_ms,
        t + 10 * S + RT,
        "decided at the end of eu's second down probe"
    );
    assert_eq!(e.since_ms, t, "the first down probe of the quorum's runs");
    assert_eq!(
        e.quorum,
        event::Quorum {
            required: 2,
            down: 2,
            up: 1,
            regions: 3
        }
    );
    assert_eq!(
        e.classes,
        ["connect_timeout"],
        "eu's last probe timed out; its TLS one is older"
    );
    let where_: Vec<(&str, &str, LocationState, u32)> = e
        .locations
        .iter()
        .map(|l| (l.region.as_str(), l.agent.as_str(), l.state, l.consecutive))
        .collect();
    assert_eq!(
        where_,
        [
            ("ap", "agent-ap", LocationState::Down, 2),
            ("eu", "agent-eu", LocationState::Down, 2),
            ("us", "agent-us", LocationState::Up, 4),
        ]
    );
    assert_eq!(e.locations[0].last.as_ref().map(|p| p.gseq), Some(5));
    assert_eq!(
        e.locations[0].last.as_ref().map(|p| p.record.t_ms),
        Some(t + 10 * S)
    );
    assert_eq!((e.missed, &e.link), (None, &None));
    // Still down: nothing more.
    rounds(&mut sim, "api", t + 20 * S, 5, TWO_DOWN);
    assert_eq!(sim.kinds(), []);
}

#[test]
fn classes_are_the_distinct_sorted_names_of_down_locations() {
    let mut sim = Sim::new(RuleConfig::default());
    for k in 0..2 {
        let t = T0 + k * 10 * S;
        sim.record("ap", "api", Record::down(t, RT, ErrorClass::Timeout));
        sim.record("eu", "api", Record::down(t, RT, ErrorClass::ConnectRefused));
        sim.record("us", "api", Record::down(t, RT, ErrorClass::Timeout));
    }
    let events = sim.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].classes, ["connect_refused", "timeout"]);
    assert_eq!(events[0].since_ms, T0, "from Pending straight to down");
}

#[test]
fn recovery_needs_recover_after_ups_in_the_quorum() {
    let mut sim = Sim::new(RuleConfig::default());
    let t = rounds(&mut sim, "api", T0, 2, UP);
    let t = rounds(&mut sim, "api", t, 2, DOWN);
    assert_eq!(sim.kinds(), [(Kind::Down, 1)]);
    // Two ups in one region: one region is not the quorum.
    sim.probe("ap", "api", t, true);
    sim.probe("ap", "api", t + 10 * S, true);
    // One up in a second region: not recover_after yet.
    sim.probe("eu", "api", t + 10 * S, true);
    assert_eq!(sim.kinds(), []);
    assert_eq!(sim.status("api"), CheckStatus::Down);
    sim.probe("eu", "api", t + 20 * S, true);
    let events = sim.take();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e.kind, e.incident), (Kind::Recovered, 1));
    assert_eq!(e.id, event_id(EPOCH, Kind::Recovered, "api", 1));
    assert_eq!(e.since_ms, T0 + 20 * S, "the incident's start");
    assert_eq!((e.quorum.up, e.quorum.down), (2, 1));
    // The next incident has the next number.
    rounds(&mut sim, "api", t + 30 * S, 2, DOWN);
    assert_eq!(sim.kinds(), [(Kind::Down, 2)]);
}

#[test]
fn down_after_is_honoured() {
    let mut sim = Sim::new(RuleConfig::default());
    let t = rounds(&mut sim, "api", T0, 2, UP);
    let t = rounds(&mut sim, "api", t, 1, DOWN);
    let t = rounds(&mut sim, "api", t, 2, UP);
    rounds(&mut sim, "api", t, 1, DOWN);
    assert_eq!(sim.kinds(), []);

    let mut three = RuleConfig::default();
    three.default.down_after = 3;
    let mut sim = Sim::new(three);
    let t = rounds(&mut sim, "api", T0, 2, DOWN);
    assert_eq!(sim.kinds(), []);
    rounds(&mut sim, "api", t, 1, DOWN);
    assert_eq!(sim.kinds(), [(Kind::Down, 1)]);
}

#[test]
fn pending_to_up_says_nothing_and_unknown_counts_as_down() {
    let mut sim = Sim::new(RuleConfig::default());
    rounds(&mut sim, "api", T0, 5, UP);
    assert_eq!(sim.kinds(), []);
    assert_eq!(sim.status("api"), CheckStatus::Up);
    for k in 0..2 {
        for region in REGIONS {
            let r = Record::unknown(T0 + (5 + k) * 10 * S, RT, ErrorClass::LocalResource);
            sim.record(region, "api", r);
        }
    }
    let events = sim.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].classes, ["local_resource"]);
}

fn at_least_one_for(glob: &str) -> RuleConfig {
    let mut config = RuleConfig::default();
    let rule = Rule {
        quorum: Quorum::AtLeast(1),
        ..Rule::default()
    };
    config
        .overrides
        .push((vec![Glob::new("nothing-*")], Rule::default()));
    config
        .overrides
        .push((vec![Glob::new("x"), Glob::new(glob)], rule));
    config
}

#[test]
fn at_least_one_override_by_glob() {
    let mut sim = Sim::new(at_least_one_for("pay*-?"));
    for check in ["payments-1", "api"] {
        let t = rounds(&mut sim, check, T0, 2, UP);
        rounds(&mut sim, check, t, 2, [true, false, true]);
    }
    let events = sim.take();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].kind, events[0].check.as_str()),
        (Kind::Down, "payments-1")
    );
    assert_eq!(events[0].quorum.required, 1);
    // Recovery needs no region down: one region up must not clear one down.
    rounds(&mut sim, "payments-1", T0 + 40 * S, 3, [false, true, true]);
    assert_eq!(sim.kinds(), []);
    rounds(&mut sim, "payments-1", T0 + 70 * S, 2, UP);
    assert_eq!(sim.kinds(), [(Kind::Recovered, 1)]);
}

#[test]
fn set_config_rechooses_rules_and_keeps_state() {
    let mut sim = Sim::new(RuleConfig::default());
    let t = rounds(&mut sim, "api", T0, 2, UP);
    let t = rounds(&mut sim, "api", t, 2, [true, false, true]);
    assert_eq!(sim.kinds(), []);
    sim.engine.set_config(at_least_one_for("api"));
    assert_eq!(sim.engine.check_view("api").unwrap().quorum.required, 1);
    rounds(&mut sim, "api", t, 1, [true, false, true]);
    assert_eq!(sim.kinds(), [], "the next tick decides under the new rules");
    sim.tick(t + 5 * S);
    assert_eq!(sim.kinds(), [(Kind::Down, 1)]);
}

#[test]
fn replayed_gseq_is_ignored() {
    let mut sim = Sim::new(RuleConfig::default());
    let t = rounds(&mut sim, "api", T0, 2, UP);
    let t = rounds(&mut sim, "api", t, 2, DOWN);
    rounds(&mut sim, "api", t, 2, UP);
    assert_eq!(sim.kinds(), [(Kind::Down, 1), (Kind::Recovered, 1)]);
    let before = sim.engine.state().clone();
    for (region, check, gseq, record) in sim.log.clone() {
        sim.feed(&region, &check, gseq, &record);
    }
    // An older gseq with other content is a replay too.
    sim.feed(
        "ap",
        "api",
        1,
        &Record::down(t + 90 * S, RT, ErrorClass::Timeout),
    );
    assert_eq!(sim.kinds(), []);
    assert_eq!(sim.engine.state(), &before);
}

/// Rounds every 10 s in ap and eu, and in us until `us_until`.
fn with_us_stopping(sim: &mut Sim, us_until: u64, to: u64) {
    let mut t = T0;
    while t < to {
        sim.probe("ap", "api", t, true);
        sim.probe("eu", "api", t, true);
        if t < us_until {
            sim.probe("us", "api", t, true);
        }
        t += 10 * S;
    }
}

#[test]
fn no_data_after_three_intervals_only_in_live_regions() {
    let mut sim = Sim::new(RuleConfig::default());
    let last_us = T0 + 50 * S;
    with_us_stopping(&mut sim, last_us + 1, T0 + 200 * S);
    let us_end = last_us + RT;
    // us's stream is down: the alerter cannot tell; nothing.
    sim.tick_live(us_end + 100 * S, &|r| r != "us");
    assert_eq!(sim.kinds(), []);
    let mut sim = Sim::new(RuleConfig::default());
    with_us_stopping(&mut sim, last_us + 1, T0 + 200 * S);
    sim.tick(us_end + 30 * S);
    assert_eq!(sim.kinds(), [], "exactly 3 intervals is not more than 3");
    sim.tick(us_end + 30 * S + 1);
    let events = sim.take();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e.kind, e.incident), (Kind::NoData, 1));
    assert_eq!(e.id, event_id(EPOCH, Kind::NoData, "api", 1));
    assert_eq!((e.at_ms, e.since_ms), (us_end + 30 * S + 1, us_end));
    assert_eq!(e.quorum.required, 0, "zeros for no data");
    assert_eq!(e.locations[2].state, LocationState::NoData);
    assert_eq!(sim.engine.summary().checks_no_data, 1);
    // Two regions left: both up, required 2; nothing else.
    assert_eq!(sim.engine.check_view("api").unwrap().quorum.regions, 2);
    sim.tick(us_end + 60 * S);
    assert_eq!(sim.kinds(), []);
    // Back: DataBack closes incident 1; one record is enough.
    sim.probe("us", "api", T0 + 200 * S, true);
    let events = sim.take();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].kind, events[0].incident, events[0].since_ms),
        (Kind::DataBack, 1, us_end)
    );
    let view = sim.engine.check_view("api").unwrap();
    assert_eq!(view.locations[2].state, LocationState::Up);
    assert_eq!(view.locations[2].consecutive, 7, "the counts go on");
    assert_eq!(sim.engine.summary().checks_no_data, 0);
}

#[test]
fn a_location_back_from_no_data_is_decided_by_its_counts() {
    let mut sim = Sim::new(RuleConfig::default());
    sim.probe("ap", "api", T0, false);
    sim.probe("ap", "api", T0 + 10 * S, false);
    sim.tick(T0 + 50 * S);
    assert_eq!(sim.kinds(), [(Kind::Down, 1), (Kind::NoData, 1)]);
    // One up: no longer held down, not up yet; no reporting region is
    // the quorum of anything, so the check stays down.
    sim.probe("ap", "api", T0 + 60 * S, true);
    assert_eq!(sim.kinds(), [(Kind::DataBack, 1)]);
    let view = sim.engine.check_view("api").unwrap();
    assert_eq!(view.locations[0].state, LocationState::Pending);
    assert_eq!(view.status, CheckStatus::Down);
    sim.probe("ap", "api", T0 + 70 * S, true);
    assert_eq!(sim.kinds(), [(Kind::Recovered, 1)]);
}

#[test]
fn no_data_needs_two_records_and_has_a_floor() {
    let mut sim = Sim::new(RuleConfig::default());
    sim.probe("ap", "one", T0, true);
    sim.tick(T0 + 3600 * S);
    assert_eq!(sim.kinds(), [], "one record: no interval, no judgement");
    // 1 s interval: 3 s would be too eager; the floor is 10 s.
    sim.probe("ap", "fast", T0, true);
    sim.probe("ap", "fast", T0 + S, true);
    sim.tick(T0 + S + RT + 10 * S);
    assert_eq!(sim.kinds(), []);
    sim.tick(T0 + S + RT + 10 * S + 1);
    assert_eq!(sim.kinds(), [(Kind::NoData, 1)]);
}

#[test]
fn interval_survives_one_late_probe() {
    let mut sim = Sim::new(RuleConfig::default());
    // A 10 s grid; the 30 s probe started 7 s late.
    for t in [0, 10, 20, 37, 40] {
        sim.probe("ap", "api", T0 + t * S, true);
    }
    let end = T0 + 40 * S + RT;
    sim.tick(end + 30 * S);
    assert_eq!(sim.kinds(), []);
    sim.tick(end + 30 * S + 1);
    assert_eq!(sim.kinds(), [(Kind::NoData, 1)]);
}

#[test]
fn an_agent_down_in_no_data_regions_counts_no_more() {
    // us goes silent while ap fails: regions 2, required 2, not down.
    let mut sim = Sim::new(RuleConfig::default());
    let t = rounds(&mut sim, "api", T0, 3, UP);
    sim.tick(t + 40 * S);
    assert_eq!(sim.kinds(), [(Kind::NoData, 1)]);
    // All three back, ap and us failing.
    let t = rounds(&mut sim, "api", t + 50 * S, 2, [false, true, false]);
    assert_eq!(sim.kinds(), [(Kind::DataBack, 1), (Kind::Down, 1)]);
    // ap and us silent, eu up: the one reporting region is the quorum.
    for k in 0..5 {
        sim.probe("eu", "api", t + k * 10 * S, true);
    }
    sim.tick(t + 45 * S);
    assert_eq!(sim.kinds(), [(Kind::Recovered, 1), (Kind::NoData, 2)]);
}

fn silence(checks: &[&str], regions: &[&str], start_ms: u64, end_ms: u64) -> Silence {
    Silence {
        id: "s1".into(),
        checks: checks.iter().map(|&g| Glob::new(g)).collect(),
        regions: regions.iter().map(|&g| Glob::new(g)).collect(),
        start_ms,
        end_ms,
        comment: "maintenance".into(),
    }
}

#[test]
fn a_silence_holds_a_down_until_it_ends() {
    let mut sim = Sim::new(RuleConfig::default());
    let end = T0 + 100 * S;
    sim.silences.push(silence(&["a*"], &[], T0, end));
    let t = rounds(&mut sim, "api", T0, 2, UP);
    let t = rounds(&mut sim, "api", t, 5, TWO_DOWN);
    sim.tick(end - 1);
    assert_eq!(sim.kinds(), []);
    assert_eq!(sim.status("api"), CheckStatus::Down);
    let t = rounds(&mut sim, "api", t, 1, TWO_DOWN);
    sim.tick(end);
    let events = sim.take();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].kind, events[0].incident), (Kind::Down, 1));
    assert_eq!((events[0].at_ms, events[0].since_ms), (end, T0 + 20 * S));
    rounds(&mut sim, "api", t, 1, TWO_DOWN);
    sim.tick(end + 10 * S);
    assert_eq!(sim.kinds(), []);
}

#[test]
fn recovering_within_a_silence_says_nothing() {
    let mut sim = Sim::new(RuleConfig::default());
    let end = T0 + 100 * S;
    sim.silences.push(silence(&["api"], &[], T0, end));
    let t = rounds(&mut sim, "api", T0, 2, UP);
    let t = rounds(&mut sim, "api", t, 3, DOWN);
    let t = rounds(&mut sim, "api", t, 5, UP);
    sim.tick(end);
    let t = rounds(&mut sim, "api", t, 1, UP);
    sim.tick(t);
    assert_eq!(sim.kinds(), []);
    // The suppressed Down used no incident number.
    rounds(&mut sim, "api", t, 2, DOWN);
    assert_eq!(sim.kinds(), [(Kind::Down, 1)]);
}

#[test]
fn silences_match_by_check_and_region() {
    for (regions, silenced) in [(&["e?"][..], true), (&["mars"][..], false), (&[][..], true)] {
        let mut sim = Sim::new(RuleConfig::default());
        sim.silences
            .push(silence(&["other", "ap*"], regions, T0, T0 + 3600 * S));
        let t = rounds(&mut sim, "api", T0, 2, UP);
        rounds(&mut sim, "api", t, 2, DOWN);
        assert_eq!(sim.kinds().is_empty(), silenced, "{regions:?}");
    }
    let mut sim = Sim::new(RuleConfig::default());
    sim.silences
        .push(silence(&["api"], &[], T0 + 3600 * S, T0 + 7200 * S));
    rounds(&mut sim, "api", T0, 2, DOWN);
    assert_eq!(sim.kinds(), [(Kind::Down, 1)], "not active yet");
}

/// Every 2 probes the target flips, in every region, for 10 minutes
/// (10 s interval); then it stays `then` for 30 minutes, with ticks.
fn flap(sim: &mut Sim, alternate_ms: u64, then: bool) -> u64 {
    let mut t = T0;
    let mut k = 0;
    while t < T0 + alternate_ms {
        let up = (k / 2) % 2 == 0;
        sim.round("api", t, [up; 3]);
        sim.tick(t + RT + 1);
        t += 10 * S;
        k += 1;
    }
    while t < T0 + alternate_ms + 1800 * S {
        sim.round("api", t, [then; 3]);
        sim.tick(t + RT + 1);
        t += 10 * S;
    }
    t
}

fn notifications(events: &[Event]) -> Vec<(Kind, u64, u64)> {
    events
        .iter()
        .map(|e| (e.kind, e.incident, e.at_ms - T0))
        .collect()
}

#[test]
fn flapping_holds_to_one_notification_per_window() {
    let mut sim = Sim::new(RuleConfig::default());
    flap(&mut sim, 600 * S, true);
    let events = sim.take();
    let window = Rule::default().flap_window_ms;
    // Changes at 30, 50, 70, 90 s (each at the end of the second probe of
    // a run): the fourth makes it flap, and holds its Recovered; at the
    // first tick a window after the Flapping the held state goes out; it
    // then settles quietly.
    assert_eq!(
        notifications(&events),
        [
            (Kind::Down, 1, 30 * S + RT),
            (Kind::Recovered, 1, 50 * S + RT),
            (Kind::Down, 2, 70 * S + RT),
            (Kind::Flapping, 1, 90 * S + RT),
            (Kind::Recovered, 2, 90 * S + RT + window + 1),
        ]
    );
    let view = sim.engine.check_view("api").unwrap();
    assert!(!view.flapping);
    assert_eq!((view.status, view.open_down), (CheckStatus::Up, None));
    assert_eq!(events[3].id, event_id(EPOCH, Kind::Flapping, "api", 1));
    assert_eq!(
        events[3].since_ms,
        T0 + 30 * S + RT,
        "the first change in the window"
    );
    assert!(sim.engine.state().checks[0].flap.changes.len() <= 5);
}

#[test]
fn flapping_settles_with_the_final_state() {
    // The flips stop at 100 s, then down (a fifth change at 110 s): it
    // ends down, as receivers were told; settling has nothing to say.
    let mut sim = Sim::new(RuleConfig::default());
    flap(&mut sim, 100 * S, false);
    let events = sim.take();
    assert_eq!(
        notifications(&events),
        [
            (Kind::Down, 1, 30 * S + RT),
            (Kind::Recovered, 1, 50 * S + RT),
            (Kind::Down, 2, 70 * S + RT),
            (Kind::Flapping, 1, 90 * S + RT),
        ]
    );
    assert!(!sim.engine.check_view("api").unwrap().flapping);
    // Flips until 120 s, then up: changes at 30 ... 130 s; fewer than 4
    // in the window once 70 s leaves it, before the window since the
    // Flapping ends: the settle sends the held Recovered.
    let mut sim = Sim::new(RuleConfig::default());
    flap(&mut sim, 120 * S, true);
    let events = sim.take();
    assert_eq!(
        notifications(&events)[3..],
        [
            (Kind::Flapping, 1, 90 * S + RT),
            (Kind::Recovered, 2, 670 * S + RT + 1)
        ]
    );
    assert!(!sim.engine.check_view("api").unwrap().flapping);
    // A new episode later is a new Flapping incident.
    let t = T0 + 4000 * S;
    for k in 0..8 {
        sim.round("api", t + k * 10 * S, [(k / 2) % 2 == 1; 3]);
    }
    let kinds: Vec<Kind> = sim.take().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [Kind::Down, Kind::Recovered, Kind::Down, Kind::Flapping]
    );
}

/// A scenario of records and ticks, cut anywhere for a restart.
fn scenario() -> Vec<Step> {
    let mut steps = Vec::new();
    let mut t = T0;
    for k in 0..120u64 {
        let phase = k / 10;
        let ups = match phase % 4 {
            0 => UP,
            1 => TWO_DOWN,
            2 => [k % 3 != 0; 3],
            _ => [true, true, false],
        };
        for check in ["api", "web", "pay"] {
            for (region, up) in REGIONS.iter().zip(ups) {
                if check == "web" && *region == "us" && (40..70).contains(&k) {
                    continue;
                }
                steps.push(Step::Probe(region, check, t, up));
            }
        }
        steps.push(Step::Tick(t + 5 * S));
        if k % 25 == 0 {
            steps.push(Step::Gap(t));
        }
        t += 10 * S;
    }
    steps
}

#[derive(Clone, Copy)]
enum Step {
    Probe(&'static str, &'static str, u64, bool),
    Tick(u64),
    Gap(u64),
}

fn run(sim: &mut Sim, steps: &[Step]) {
    for step in steps {
        match *step {
            Step::Probe(region, check, t, up) => sim.probe(region, check, t, up),
            Step::Tick(now) => sim.tick(now),
            Step::Gap(now) => {
                let e = sim.engine.gap("gw-eu", "eu", 10, 20, now);
                sim.events.push(e);
            }
        }
    }
}

#[test]
fn ids_are_stable_across_a_restore() {
    let steps = scenario();
    let mut whole = Sim::new(at_least_one_for("pay"));
    whole
        .silences
        .push(silence(&["web"], &[], T0 + 100 * S, T0 + 300 * S));
    run(&mut whole, &steps);
    let expected = whole.take();
    let kinds: HashSet<Kind> = expected.iter().map(|e| e.kind).collect();
    assert!(
        kinds.len() >= 5,
        "the scenario exercises most kinds: {kinds:?}"
    );
    for cut in [1, steps.len() / 3, steps.len() / 2, steps.len() - 1] {
        let mut sim = Sim::new(at_least_one_for("pay"));
        sim.silences = whole.silences.clone();
        run(&mut sim, &steps[..cut]);
        let bytes = rmp_serde::to_vec_named(sim.engine.state()).unwrap();
        let state: EngineState = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(&state, sim.engine.state());
        sim.engine = Engine::restore(at_least_one_for("pay"), EPOCH, state);
        run(&mut sim, &steps[cut..]);
        assert_eq!(sim.take(), expected, "cut at {cut}");
    }
    // Positional MessagePack reads back too.
    let bytes = rmp_serde::to_vec(whole.engine.state()).unwrap();
    let state: EngineState = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(&state, whole.engine.state());
}

#[test]
fn gaps_count_per_gateway() {
    let mut engine = Engine::new(RuleConfig::default(), EPOCH);
    let a = engine.gap("gw-eu", "eu", 5, 9, T0);
    let b = engine.gap("gw-us", "us", 1, 2, T0);
    let c = engine.gap("gw-eu", "eu", 12, 12, T0 + S);
    assert_eq!((a.incident, b.incident, c.incident), (1, 1, 2));
    assert_eq!(
        (a.kind, a.check.as_str(), a.missed),
        (Kind::Gap, "gw-eu", Some((5, 9)))
    );
    assert_eq!(a.id, event_id(EPOCH, Kind::Gap, "gw-eu", 1));
    assert_eq!(a.locations[0].region, "eu");
    let mut engine = Engine::restore(RuleConfig::default(), EPOCH, engine.state().clone());
    assert_eq!(engine.gap("gw-eu", "eu", 13, 14, T0).incident, 3);
}

#[test]
fn forgotten_locations_are_dropped_and_their_no_data_closed() {
    let config = RuleConfig {
        forget_after_ms: 600 * S,
        ..RuleConfig::default()
    };
    let mut sim = Sim::new(config);
    let last_us = T0 + 50 * S;
    // us is NoData from the first tick more than 30 s after its last end.
    let silent_at = last_us + RT + 30 * S + 1;
    let forget_at = silent_at + 600 * S + 1;
    let mut t = T0;
    while t <= forget_at {
        sim.probe("ap", "api", t, true);
        sim.probe("eu", "api", t, true);
        if t <= last_us {
            sim.probe("us", "api", t, true);
        }
        if t + 10 * S > silent_at && t <= silent_at {
            sim.tick(silent_at);
            assert_eq!(sim.kinds(), [(Kind::NoData, 1)]);
        }
        if t + 10 * S > forget_at && t <= forget_at {
            sim.tick(forget_at - 1);
            assert_eq!(
                sim.engine.summary().locations,
                3,
                "not more than forget_after yet"
            );
            sim.tick(forget_at);
        }
        t += 10 * S;
    }
    assert_eq!(
        sim.kinds(),
        [(Kind::DataBack, 1)],
        "the incident is closed, or Alertmanager would keep it firing"
    );
    let summary = sim.engine.summary();
    assert_eq!((summary.locations, summary.checks_no_data), (2, 0));
    assert_eq!(sim.engine.check_view("api").unwrap().open_no_data, None);
    // Back later: a new location, no DataBack; the counter goes on.
    for k in 0..3 {
        sim.round("api", t + k * 10 * S, UP);
    }
    assert_eq!(sim.kinds(), []);
    sim.probe("ap", "api", t + 30 * S, true);
    sim.probe("eu", "api", t + 30 * S, true);
    sim.tick(t + 60 * S);
    let events = sim.take();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.kind, e.incident))
            .collect::<Vec<_>>(),
        [(Kind::NoData, 2)]
    );
    assert_eq!(events[0].locations.len(), 3);
}

#[test]
fn summary_counts_checks_by_state() {
    let mut sim = Sim::new(RuleConfig::default());
    rounds(&mut sim, "up", T0, 2, UP);
    rounds(&mut sim, "down", T0, 2, DOWN);
    rounds(&mut sim, "pending", T0, 1, UP);
    let s = sim.engine.summary();
    assert_eq!(
        s,
        Summary {
            checks_up: 1,
            checks_down: 1,
            checks_pending: 1,
            checks_no_data: 0,
            checks_flapping: 0,
            locations: 9,
        }
    );
    assert!(sim.engine.check_view("nope").is_none());
}

#[test]
fn globs() {
    let m = |p: &str, t: &str| Glob::new(p).matches(t);
    assert!(m("*", ""));
    assert!(m("*", "anything"));
    assert!(m("api", "api"));
    assert!(!m("api", "api2"));
    assert!(m("api-*", "api-eu"));
    assert!(!m("api-*", "web-eu"));
    assert!(m("a*b*c", "axxbyyc"));
    assert!(!m("a*b*c", "axxbyy"));
    assert!(m("a?c", "abc"));
    assert!(!m("a?c", "ac"));
    assert!(m("*-?", "pay-1"));
    assert!(m("é?", "éü"), "? is one character, not one byte");
    assert!(m("*ü", "aéü"));
    assert!(m("**", "x"));
    assert!(!m("", "x"));
    assert!(m("", ""));
}

#[test]
fn quorum_required() {
    assert_eq!(Quorum::Majority.required(0), 1);
    assert_eq!(Quorum::Majority.required(1), 1);
    assert_eq!(Quorum::Majority.required(2), 2);
    assert_eq!(Quorum::Majority.required(3), 2);
    assert_eq!(Quorum::Majority.required(4), 3);
    assert_eq!(Quorum::AtLeast(2).required(5), 2);
    assert_eq!(Quorum::AtLeast(4).required(3), 3);
    assert_eq!(Quorum::AtLeast(0).required(3), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random probes, ticks and silences: every Recovered closes the open
    /// Down of its check, DataBack the open NoData, and no two events share
    /// an id.
    #[test]
    fn incidents_pair_and_ids_never_repeat(
        steps in proptest::collection::vec((0u8..4, 0usize..3, 0usize..2, 0u64..25), 1..400),
        silenced in proptest::option::of((0u64..3000, 0u64..3000)),
    ) {
        let mut config = at_least_one_for("b");
        config.default.flap_threshold = 3;
        config.default.flap_window_ms = 120 * S;
        let mut sim = Sim::new(config);
        if let Some((a, len)) = silenced {
            sim.silences.push(silence(&["a"], &[], T0 + a * S, T0 + (a + len) * S));
        }
        let mut t = T0;
        for (what, region, check, dt) in steps {
            t += dt * S;
            let check = ["a", "b"][check];
            match what {
                0 | 1 => sim.probe(REGIONS[region], check, t, what == 0),
                2 => sim.probe(REGIONS[region], check, t, false),
                _ => sim.tick(t),
            }
        }
        sim.tick(t + 10_000 * S);
        let events = sim.take();
        let mut ids = HashSet::new();
        let mut open: HashMap<(&str, bool), u64> = HashMap::new();
        let mut last: HashMap<(&str, Kind), u64> = HashMap::new();
        for e in &events {
            prop_assert!(ids.insert(e.id.clone()), "repeated id {:?}", e);
            prop_assert_eq!(&e.id, &event_id(EPOCH, e.kind, &e.check, e.incident));
            match e.kind {
                Kind::Down | Kind::NoData | Kind::Flapping => {
                    let n = last.entry((e.check.as_str(), e.kind)).or_insert(0);
                    prop_assert_eq!(e.incident, *n + 1);
                    *n = e.incident;
                }
                _ => {}
            }
            match e.kind {
                Kind::Down | Kind::NoData => {
                    let prev = open.insert((e.check.as_str(), e.kind == Kind::Down), e.incident);
                    prop_assert_eq!(prev, None);
                }
                Kind::Recovered | Kind::DataBack => {
                    let prev = open.remove(&(e.check.as_str(), e.kind == Kind::Recovered));
                    prop_assert_eq!(prev, Some(e.incident));
                }
                _ => {}
            }
        }
    }
}
