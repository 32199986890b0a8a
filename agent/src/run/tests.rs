//! The scheduler and the shutdown order under tokio's paused clock: a
//! stand-in probe that takes a set (virtual) time, a sink that records
//! what reached it, no sockets. Virtual time is exact, so due times,
//! skips and the order of shutdown are asserted to the millisecond.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use wire::Status;

use super::checks::SpecBuilder;
use super::scheduler::{Probe, Scheduler};
use super::{check_infos, drain, plan_checks};
use crate::metrics::Metrics;
use crate::probe::{ProbeReport, ProbeSpec, Timings};
use crate::result::CheckResult;
use crate::schedule;
use crate::sink::{Fanout, Sink, SinkError, SinkHandle};

/// What happened, and when (virtual time).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// A probe of this check started.
    ProbeStart(String),
    /// A probe of this check finished.
    ProbeEnd(String),
    /// The sink wrote a batch holding these checks' results.
    Written(Vec<String>),
    /// The sink was closed (flushed and synced).
    Closed,
}

type Log = Arc<Mutex<Vec<(Instant, Event)>>>;

fn log(events: &Log, event: Event) {
    events
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((Instant::now(), event));
}

fn events(events: &Log) -> Vec<(Instant, Event)> {
    events.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A probe that takes `took` of virtual time (per check, by host name:
/// `slow.test` and `fast.test`) and is always up.
struct TimedProbe {
    took: HashMap<String, Duration>,
    events: Log,
}

impl Probe for TimedProbe {
    async fn probe(&self, spec: &ProbeSpec) -> ProbeReport {
        let host = spec.url.host_str().unwrap_or_default().to_owned();
        let took = self.took.get(&host).copied().unwrap_or_default();
        let started_at = SystemTime::now();
        log(&self.events, Event::ProbeStart(host.clone()));
        tokio::time::sleep(took).await;
        log(&self.events, Event::ProbeEnd(host));
        ProbeReport {
            started_at,
            timings: Timings {
                total: took,
                ..Timings::default()
            },
            status_code: Some(200),
            status: Status::Up,
            failure: None,
            dns: None,
            remote: None,
            chosen: None,
            http_version: None,
            tls: None,
            body_bytes: 0,
            redirects: 0,
            redirect_refused: false,
            final_url: spec.url.clone(),
            headers: None,
            body: None,
            content_length: None,
            decoded_body_bytes: 0,
            last_modified: None,
            failed_due_to_regex: false,
            final_tls: None,
            request: None,
        }
    }
}

/// A sink that records each batch and its close.
struct RecordingSink {
    events: Log,
}

impl Sink for RecordingSink {
    fn name(&self) -> &'static str {
        "recording"
    }

    async fn write(&mut self, batch: &[Arc<CheckResult>]) -> Result<u64, SinkError> {
        let checks = batch.iter().map(|r| r.check.to_string()).collect();
        log(&self.events, Event::Written(checks));
        Ok(batch.len() as u64)
    }

    async fn tick(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    async fn close(self) -> Result<(), SinkError> {
        log(&self.events, Event::Closed);
        Ok(())
    }
}

/// A plan of `checks` (name, host, interval), through the agent's own
/// config and spec building.
fn plan(checks: &[(&str, &str, &str)]) -> (config::Plan, Vec<(config::Check, ProbeSpec)>) {
    let mut text = String::from("[agent]\nid = \"paused\"\n");
    for (name, host, interval) in checks {
        text.push_str(&format!(
            "[[check]]\nname = \"{name}\"\nurl = \"http://{host}/\"\ninterval = \"{interval}\"\n"
        ));
    }
    let plan = config::parse(&text, "paused.toml", &config::SystemHost)
        .unwrap_or_else(|e| panic!("test plan: {e}\n{text}"));
    let checks = plan_checks(plan.checks.clone(), &mut SpecBuilder::default()).unwrap();
    (plan, checks)
}

/// A scheduler running `checks` with the timed probe, results to a
/// recording sink.
fn start(
    checks: &[(&str, &str, &str)],
    took: &[(&str, Duration)],
) -> (Scheduler<TimedProbe>, SinkHandle, Arc<Metrics>, Log) {
    let events: Log = Arc::default();
    let (plan, checks) = plan(checks);
    let metrics = Metrics::new(&plan.agent.id, None);
    metrics.set_checks(&check_infos(&plan));
    let sink = SinkHandle::spawn(
        RecordingSink {
            events: events.clone(),
        },
        64,
        Duration::ZERO,
        metrics.clone(),
    );
    let fanout = Fanout::new(std::slice::from_ref(&sink), metrics.clone());
    let probe = TimedProbe {
        took: took.iter().map(|(h, d)| (h.to_string(), *d)).collect(),
        events: events.clone(),
    };
    let mut scheduler = Scheduler::new(probe, fanout, metrics.clone(), 16);
    scheduler.apply(checks);
    (scheduler, sink, metrics, events)
}

fn starts(events: &[(Instant, Event)], host: &str) -> Vec<Instant> {
    let want = Event::ProbeStart(host.to_owned());
    events
        .iter()
        .filter(|(_, e)| *e == want)
        .map(|(t, _)| *t)
        .collect()
}

/// The `sonde_probes_skipped_total` sample of `check` for `reason`.
fn skipped(metrics: &Metrics, check: &str, reason: &str) -> Option<u64> {
    let check = format!("check=\"{check}\"");
    let reason = format!("reason=\"{reason}\"");
    metrics
        .render(exposition::Format::Text)
        .lines()
        .find(|l| {
            l.starts_with("sonde_probes_skipped_total{")
                && l.contains(&check)
                && l.contains(&reason)
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_overruns_its_interval_skips_runs_instead_of_stacking() {
    let s = Duration::from_secs(1);
    let (scheduler, sink, metrics, log) = start(
        &[("slow", "slow.test", "1s"), ("fast", "fast.test", "1s")],
        &[
            ("slow.test", s * 5 / 2),
            ("fast.test", Duration::from_millis(10)),
        ],
    );
    tokio::time::sleep(s * 10).await;
    let events = events(&log);

    // The fast check runs every second, on its grid.
    let fast = starts(&events, "fast.test");
    assert!(fast.len() >= 9, "fast started {} times", fast.len());
    for pair in fast.windows(2) {
        assert_eq!(pair[1] - pair[0], s);
    }
    // The slow one (2.5 s a probe) starts every third due time: the two
    // runs due while it is still going are skipped as busy, never stacked.
    let slow = starts(&events, "slow.test");
    assert!(slow.len() >= 3, "slow started {} times", slow.len());
    for pair in slow.windows(2) {
        assert_eq!(pair[1] - pair[0], 3 * s);
    }
    let mut in_flight = 0;
    for (_, e) in &events {
        match e {
            Event::ProbeStart(h) if h == "slow.test" => in_flight += 1,
            Event::ProbeEnd(h) if h == "slow.test" => in_flight -= 1,
            _ => {}
        }
        assert!(in_flight <= 1, "two probes of one check in flight");
    }
    let busy = skipped(&metrics, "slow", "busy").unwrap_or_default();
    assert!(busy >= 2 * (slow.len() as u64 - 1), "busy skips: {busy}");
    assert_eq!(skipped(&metrics, "fast", "busy"), Some(0));
    assert_eq!(skipped(&metrics, "slow", "too_late"), Some(0));

    scheduler.shutdown().await;
    sink.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn checks_start_at_their_own_offsets_inside_the_interval() {
    let interval = Duration::from_secs(10);
    let names: Vec<String> = (0..40).map(|i| format!("check-{i}")).collect();
    let hosts: Vec<String> = (0..40).map(|i| format!("h{i}.test")).collect();
    let checks: Vec<(&str, &str, &str)> = names
        .iter()
        .zip(&hosts)
        .map(|(n, h)| (n.as_str(), h.as_str(), "10s"))
        .collect();
    let t0 = Instant::now();
    let (scheduler, sink, _metrics, log) = start(&checks, &[]);
    // A little past one interval: a check may be due at its very end.
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    let events = events(&log);

    // Each check starts once in the first interval, and the starts keep the
    // distance of their offsets (FNV-1a of the name): spread out, not fired
    // together.
    let first: Vec<Instant> = hosts
        .iter()
        .map(|h| {
            let s: Vec<Instant> = starts(&events, h)
                .into_iter()
                .filter(|at| *at - t0 <= interval)
                .collect();
            assert_eq!(s.len(), 1, "{h} started {} times in one interval", s.len());
            s[0]
        })
        .collect();
    let ms = |d: Duration| d.as_millis() as i64;
    let period = ms(interval);
    for (i, at) in first.iter().enumerate() {
        let apart = ms(*at - t0) - ms(first[0] - t0);
        let offsets =
            ms(schedule::offset(&names[i], interval)) - ms(schedule::offset(&names[0], interval));
        assert_eq!(
            apart.rem_euclid(period),
            offsets.rem_euclid(period),
            "{}",
            names[i]
        );
    }
    let mut distinct: Vec<Instant> = first.clone();
    distinct.sort();
    distinct.dedup();
    assert!(
        distinct.len() >= 35,
        "only {} distinct start times",
        distinct.len()
    );

    scheduler.shutdown().await;
    sink.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_probes_then_closes_the_sinks() {
    let (scheduler, sink, _metrics, log) = start(
        &[("slow", "slow.test", "10s")],
        &[("slow.test", Duration::from_secs(3))],
    );
    // Until the probe is in flight, then a second into it.
    while starts(&events(&log), "slow.test").is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stop_at = Instant::now();
    let failed = drain(scheduler, vec![sink]).await;
    assert!(failed.is_empty(), "{failed:?}");

    let events = events(&log);
    let kinds: Vec<&Event> = events.iter().map(|(_, e)| e).collect();
    assert_eq!(
        kinds,
        [
            &Event::ProbeStart("slow.test".into()),
            &Event::ProbeEnd("slow.test".into()),
            &Event::Written(vec!["slow".into()]),
            &Event::Closed,
        ],
        "probe drained, its result written, then the sink closed"
    );
    // The in-flight probe ran its full 3 s, past the start of shutdown, and
    // its result was written before the sink was closed.
    let (start, end) = (events[0].0, events[1].0);
    assert_eq!(end - start, Duration::from_secs(3));
    assert!(stop_at - start >= Duration::from_secs(1) && end > stop_at);
    assert!(events[2].0 >= end && events[3].0 >= events[2].0);
}
