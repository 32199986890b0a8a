//! `sonde alert` end to end with real receivers: regional gateways with one
//! agent each, the Standard Webhooks receiver verifying every delivery with
//! the reference `standardwebhooks` package, and Debian's Alertmanager.
//!
//! - Quorum: one region of three failing is no alert; two are, a signed
//!   check.down naming them, then its check.recovered; a tampered body is
//!   refused, the untouched one accepted.
//! - Alertmanager holds the firing SondeCheckDown and drops it once resolved.
//! - A receiver down for 60 s gets every notification after, once per id.
//! - The alerter SIGKILLed mid-delivery and restarted loses nothing.
//! - A flapping check: at most one notification per flap window.
//! - An agent killed is a no-data alert, not a down.
//! - A silence added at run time holds a down back, survives a restart,
//!   and its removal lets the down out.
//! - A notification refused for good is a dead letter, listed with the
//!   alerter running or stopped, and replayed with its id.
//! - `[alert]` in gateway.toml: the gateway runs the alerter in its own
//!   process, and stops it with itself.

mod lab;
mod receivers;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lab::{Alerter, InGateway, Lab, now_ms, wait_for};
use receivers::{Alertmanager, Delivery, Webhooks, labels};

use crate::util::http::get;

/// How long a notification may take to arrive once due, on a loaded machine.
const DELIVERY: Duration = Duration::from_secs(30);

fn context(alerter: &Alerter, hook: &Webhooks, lab: &Lab) -> String {
    let regions: String = lab.regions.iter().map(lab::Region::describe).collect();
    format!("{}{}{regions}", alerter.describe(), hook.describe())
}

/// The first accepted delivery of `kind` (`check.down`...) for `check`.
fn first(hook: &Webhooks, kind: &str, check: &str) -> Option<Delivery> {
    hook.accepted()
        .into_iter()
        .find(|d| d.kind == kind && d.check() == check)
}

/// Accepted deliveries per webhook id.
fn accepted_per_id(hook: &Webhooks) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for d in hook.accepted() {
        *counts.entry(d.id).or_default() += 1;
    }
    counts
}

#[test]
fn one_region_of_three_failing_is_no_alert_two_are_and_the_webhook_is_signed() {
    if !testkit::require_python(&["standardwebhooks"]) {
        return;
    }
    let lab = Lab::new(&["eu-west", "us-east", "ap-south"]);
    let hook = Webhooks::start(lab.path());
    let alerter = Alerter::start(
        &lab,
        "down_after = 2\nrecover_after = 2\n",
        &[hook.receiver("hook", "")],
    );
    let context = || context(&alerter, &hook, &lab);
    alerter.wait_until_up(2, 6);
    let (eu, us) = (&lab.regions[0], &lab.regions[1]);

    // One region of three: below the default quorum (a majority, 2).
    eu.target.set_status(Some(503));
    std::thread::sleep(Duration::from_secs(8));
    assert!(
        hook.log().is_empty(),
        "one region of three down is no alert{}",
        context()
    );

    us.target.set_status(Some(503));
    let down = wait_for(DELIVERY, "the check.down", &context, || {
        first(&hook, "check.down", "api")
    });
    let d = &down.data;
    assert_eq!(d["id"], down.id.as_str(), "webhook-id is the event id");
    assert_eq!((d["kind"].as_str(), down.incident()), (Some("down"), 1));
    assert_eq!(
        d["quorum"],
        serde_json::json!({"required": 2, "down": 2, "up": 1, "regions": 3}),
        "{}",
        down.raw
    );
    assert_eq!(d["classes"], serde_json::json!(["status"]), "{}", down.raw);
    assert_eq!(d["locations"].as_array().map(Vec::len), Some(3));
    for (region, state) in [("eu-west", "down"), ("us-east", "down"), ("ap-south", "up")] {
        let loc = down.location(region);
        assert_eq!(loc["state"], state, "{region}: {}", down.raw);
        assert_eq!(loc["agent"], format!("{region}-1"), "{}", down.raw);
        let record = &loc["last"]["record"];
        let (sc, error) = if state == "down" {
            (503, serde_json::json!("status"))
        } else {
            (200, serde_json::Value::Null)
        };
        assert_eq!(
            (&record["st"], &record["sc"]),
            (&serde_json::json!(state), &serde_json::json!(sc)),
            "{region}: {}",
            down.raw
        );
        assert_eq!(record["error"], error, "{region}: {}", down.raw);
    }
    // eu-west had been failing all along, alone: no alert until us-east.
    let eu_run = down.location("eu-west")["consecutive"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        eu_run >= 6,
        "eu-west down {eu_run} probes in a row: {}",
        down.raw
    );
    assert!(down.since_ms() <= down.at_ms(), "{}", down.raw);

    eu.target.set_status(None);
    us.target.set_status(None);
    let recovered = wait_for(DELIVERY, "the check.recovered", &context, || {
        first(&hook, "check.recovered", "api")
    });
    assert_eq!(recovered.incident(), down.incident(), "{}", recovered.raw);
    assert_ne!(recovered.id, down.id);
    let q = &recovered.data["quorum"];
    assert!(
        q["up"].as_u64() >= Some(2) && q["down"].as_u64() < Some(2) && q["regions"] == 3,
        "{}",
        recovered.raw
    );
    assert!(recovered.at_ms() > down.at_ms());

    // Nothing else: not twice, nothing for "web", every delivery verified.
    std::thread::sleep(Duration::from_secs(3));
    let told: Vec<(String, String, u64)> = hook
        .deliveries()
        .iter()
        .map(|d| (d.kind.clone(), d.check().to_owned(), d.status))
        .collect();
    assert_eq!(
        told,
        [
            ("check.down".into(), "api".into(), 200),
            ("check.recovered".into(), "api".into(), 200)
        ],
        "{}",
        context()
    );
    assert!(hook.refused().is_empty(), "{}", context());

    // The same delivery again, one byte of the body changed: refused by
    // the reference verifier; untouched: accepted.
    let tampered = down
        .raw
        .replacen("\"check\":\"api\"", "\"check\":\"apj\"", 1);
    assert_eq!(tampered.len(), down.raw.len());
    assert_ne!(tampered, down.raw);
    let headers = [
        ("content-type", "application/json"),
        ("webhook-id", down.id.as_str()),
        ("webhook-timestamp", down.timestamp.as_str()),
        ("webhook-signature", down.signature.as_str()),
    ];
    let answer = hook.post(tampered.as_bytes(), &headers);
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(hook.refused().len(), 1, "{}", context());
    let answer = hook.post(down.raw.as_bytes(), &headers);
    assert_eq!(answer.status, 200, "{}", answer.text);
    let again = hook.accepted();
    assert_eq!(again.len(), 3);
    assert_eq!((&again[2].id, &again[2].data), (&down.id, &down.data));
}

#[test]
fn alertmanager_gets_the_firing_alert_and_its_resolution() {
    if !testkit::require_tool("prometheus-alertmanager") {
        return;
    }
    let lab = Lab::new(&["eu-west"]);
    let am = Alertmanager::start(lab.path());
    let alerter = Alerter::start(&lab, "quorum = 1\n", &[am.receiver("am")]);
    let context = || format!("{}{}", alerter.describe(), am.describe());
    alerter.wait_until_up(2, 2);

    lab.regions[0].target.set_status(Some(503));
    let firing = wait_for(DELIVERY, "SondeCheckDown at Alertmanager", &context, || {
        let alerts = am.alerts();
        (!alerts.is_empty()).then_some(alerts)
    });
    assert_eq!(firing.len(), 1, "{firing:#?}");
    let alert = &firing[0];
    let expected: BTreeMap<String, String> = [
        ("alertname", "SondeCheckDown"),
        ("check", "api"),
        ("region", "eu-west"),
        ("agent", "eu-west-1"),
        ("class", "status"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(labels(alert), expected, "{alert:#}");
    assert_eq!(alert["status"]["state"], "active", "{alert:#}");
    let time = |k: &str| {
        alert[k]
            .as_str()
            .and_then(store::Utc::parse_rfc3339)
            .unwrap_or_else(|| panic!("{k}: {alert:#}"))
    };
    let now = now_ms();
    assert!(time("startsAt") <= now, "{alert:#}");
    // Four resends ahead (4 × 1m): it would not end by itself for minutes.
    assert!(time("endsAt") > now + 120_000, "{alert:#}");
    let id = alert["annotations"]["event_id"].as_str().unwrap_or("");
    assert!(id.starts_with("msg_"), "{alert:#}");

    lab.regions[0].target.set_status(None);
    // Alertmanager 0.25 lists only alerts not yet ended: once sonde posts
    // the resolution (endsAt now), it is gone, minutes before it would end.
    wait_for(DELIVERY, "the alert resolved", &context, || {
        am.alerts().is_empty().then_some(())
    });
    let sent = |outcome: &str| {
        alerter.metric(
            "sonde_alert_notifications_total",
            &format!("receiver=\"am\",outcome=\"{outcome}\""),
        )
    };
    assert_eq!((sent("sent"), sent("failed")), (2.0, 0.0), "{}", context());
}

#[test]
fn a_receiver_down_for_60s_gets_every_notification_after_once_per_id() {
    if !testkit::require_python(&["standardwebhooks"]) {
        return;
    }
    let lab = Lab::new(&["eu-west"]);
    let hook = Webhooks::start(lab.path());
    let alerter = Alerter::start(
        &lab,
        "quorum = 1\n",
        &[hook.receiver("hook", "backoff_first = \"500ms\"\nbackoff_max = \"5s\"\n")],
    );
    let context = || context(&alerter, &hook, &lab);
    let metric = |outcome: &str| {
        alerter.metric(
            "sonde_alert_notifications_total",
            &format!("receiver=\"hook\",outcome=\"{outcome}\""),
        )
    };
    alerter.wait_until_up(2, 2);

    hook.set(503, 0.0);
    let outage = Instant::now();
    let target = &lab.regions[0].target;
    target.set_status(Some(503));
    wait_for(DELIVERY, "a check.down attempt refused", &context, || {
        hook.deliveries()
            .into_iter()
            .find(|d| d.kind == "check.down" && d.status == 503)
    });
    std::thread::sleep(Duration::from_secs(4));
    target.set_status(None);
    // Both wait in the queue, the recovery behind the down.
    wait_for(DELIVERY, "two notifications pending", &context, || {
        (alerter.metric("sonde_alert_pending", "receiver=\"hook\"") == 2.0).then_some(())
    });
    std::thread::sleep(Duration::from_secs(60).saturating_sub(outage.elapsed()));
    assert!(hook.accepted().is_empty(), "{}", context());
    assert!(metric("retried") > 0.0, "{}", context());
    assert_eq!(metric("sent"), 0.0);

    hook.set(200, 0.0);
    wait_for(DELIVERY, "both notifications accepted", &context, || {
        (hook.accepted().len() >= 2).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let accepted = hook.accepted();
    let kinds: Vec<&str> = accepted.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(kinds, ["check.down", "check.recovered"], "{}", context());
    assert_eq!(accepted[0].incident(), accepted[1].incident());
    let counts = accepted_per_id(&hook);
    assert!(
        counts.len() == 2 && counts.values().all(|&n| n == 1),
        "each id accepted once: {counts:?}"
    );
    // Every attempt of the down carried its id.
    let attempts: Vec<Delivery> = hook
        .deliveries()
        .into_iter()
        .filter(|d| d.kind == "check.down")
        .collect();
    assert!(attempts.len() >= 3, "{}", context());
    assert!(
        attempts.iter().all(|d| d.id == accepted[0].id),
        "{}",
        context()
    );
    assert_eq!(
        (metric("sent"), metric("dead_lettered")),
        (2.0, 0.0),
        "{}",
        context()
    );
    assert!(metric("retried") >= (attempts.len() - 1) as f64);
    assert_eq!(
        alerter.metric("sonde_alert_pending", "receiver=\"hook\""),
        0.0
    );
    assert!(
        hook.refused().is_empty(),
        "every attempt verified{}",
        context()
    );
}

#[test]
fn the_alerter_sigkilled_mid_delivery_and_restarted_loses_nothing() {
    if !testkit::require_python(&["standardwebhooks"]) {
        return;
    }
    let lab = Lab::new(&["eu-west"]);
    let hook = Webhooks::start(lab.path());
    let mut alerter = Alerter::start(
        &lab,
        "quorum = 1\n",
        &[hook.receiver("hook", "backoff_first = \"500ms\"\nbackoff_max = \"2s\"\n")],
    );
    let sent = |alerter: &Alerter| {
        alerter.metric(
            "sonde_alert_notifications_total",
            "receiver=\"hook\",outcome=\"sent\"",
        )
    };
    alerter.wait_until_up(2, 2);

    // The receiver holds each request 5 s: the kill lands inside one.
    hook.set(200, 5.0);
    lab.regions[0].target.set_status(Some(503));
    let id = wait_for(
        DELIVERY,
        "the check.down decided",
        &|| context(&alerter, &hook, &lab),
        || alerter.notified("check.down").first().cloned(),
    );
    wait_for(
        Duration::from_secs(10),
        "the delivery at the receiver",
        &|| context(&alerter, &hook, &lab),
        || (hook.connections() > 0).then_some(()),
    );
    // The checkpoint (written every second) holds the notification by now.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        sent(&alerter),
        0.0,
        "in flight{}",
        context(&alerter, &hook, &lab)
    );
    assert_eq!(
        alerter.metric("sonde_alert_pending", "receiver=\"hook\""),
        1.0,
        "{}",
        context(&alerter, &hook, &lab)
    );
    let killed_ms = now_ms();
    alerter.kill();
    hook.set(200, 0.0);
    // Past the second: the attempts after the restart have a later
    // webhook-timestamp than the one the kill interrupted.
    std::thread::sleep(Duration::from_millis(1100));
    alerter.restart();

    let attempts =
        || -> Vec<Delivery> { hook.accepted().into_iter().filter(|d| d.id == id).collect() };
    let (before, after) = wait_for(
        DELIVERY,
        "the down before and after the kill",
        &|| context(&alerter, &hook, &lab),
        || {
            let all = attempts();
            let before = all.iter().find(|d| d.timestamp_ms() <= killed_ms)?.clone();
            let after = all.iter().find(|d| d.timestamp_ms() > killed_ms)?.clone();
            Some((before, after))
        },
    );
    // The receiver held the first past the kill: the alerter never saw it taken.
    assert!(
        before.received_ms >= killed_ms,
        "{}",
        context(&alerter, &hook, &lab)
    );
    assert_eq!(after.kind, "check.down");
    assert_eq!(after.data, before.data, "the same notification");

    lab.regions[0].target.set_status(None);
    let recovered = wait_for(
        DELIVERY,
        "the check.recovered",
        &|| context(&alerter, &hook, &lab),
        || first(&hook, "check.recovered", "api"),
    );
    assert_eq!(recovered.incident(), after.incident());
    std::thread::sleep(Duration::from_secs(3));
    // Two events, two ids; the down twice (the receiver took the first,
    // the alerter was killed before its answer), the recovery once.
    let counts = accepted_per_id(&hook);
    let expected: BTreeMap<String, usize> = [(id.clone(), 2), (recovered.id.clone(), 1)].into();
    assert_eq!(counts, expected, "{}", context(&alerter, &hook, &lab));
    assert_eq!(sent(&alerter), 2.0, "{}", context(&alerter, &hook, &lab));
    assert!(
        hook.refused().is_empty(),
        "{}",
        context(&alerter, &hook, &lab)
    );
}

#[test]
fn a_flapping_check_is_told_at_most_once_per_window_then_its_final_state() {
    if !testkit::require_python(&["standardwebhooks"]) {
        return;
    }
    const WINDOW_MS: u64 = 20_000;
    let lab = Lab::new(&["eu-west"]);
    let hook = Webhooks::start(lab.path());
    let alerter = Alerter::start(
        &lab,
        "quorum = 1\ndown_after = 1\nrecover_after = 1\n\
         flap_window = \"20s\"\nflap_threshold = 4\n",
        &[hook.receiver("hook", "")],
    );
    let context = || context(&alerter, &hook, &lab);
    let flapping = || alerter.metric("sonde_alert_checks", "state=\"flapping\"");
    alerter.wait_until_up(2, 2);

    // Down and up every 2 s for 40 s (it ends up).
    let target = &lab.regions[0].target;
    let mut seen_flapping = false;
    for i in 0..20 {
        target.set_status((i % 2 == 0).then_some(503));
        let toggled = Instant::now();
        while toggled.elapsed() < Duration::from_secs(2) {
            seen_flapping |= flapping() == 1.0;
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(
        seen_flapping,
        "the check was never judged flapping{}",
        context()
    );
    // Leave it opposite to what receivers were last told, so that a final
    // notification is owed.
    std::thread::sleep(Duration::from_secs(1));
    let is_state = |d: &Delivery| matches!(d.kind.as_str(), "check.down" | "check.recovered");
    let last_told = hook.accepted().into_iter().rfind(is_state);
    let final_down = last_told.is_some_and(|d| d.kind == "check.recovered");
    target.set_status(final_down.then_some(503));
    let final_ms = now_ms();
    let final_kind = if final_down {
        "check.down"
    } else {
        "check.recovered"
    };
    wait_for(
        Duration::from_secs(60),
        "the check to settle",
        &context,
        || (flapping() == 0.0).then_some(()),
    );
    wait_for(DELIVERY, "the final state", &context, || {
        hook.accepted()
            .into_iter()
            .find(|d| d.received_ms >= final_ms && is_state(d))
    });
    std::thread::sleep(Duration::from_secs(3));

    let told = hook.accepted();
    assert!(told.iter().all(|d| d.check() == "api"), "{}", context());
    assert_eq!(hook.deliveries().len(), told.len(), "no retries needed");
    let flaps: Vec<&Delivery> = told.iter().filter(|d| d.kind == "check.flapping").collect();
    assert_eq!(flaps.len(), 1, "one check.flapping{}", context());
    let flap_at = flaps[0].at_ms();
    // Before it: the changes that made it flapping, threshold - 1 at most.
    let before = told.iter().filter(|d| d.at_ms() < flap_at).count();
    assert!(before <= 3, "{before} before check.flapping{}", context());
    // From it on: one notification per window.
    let mut from: Vec<u64> = told
        .iter()
        .map(Delivery::at_ms)
        .filter(|&at| at >= flap_at)
        .collect();
    from.sort_unstable();
    assert!(
        from.windows(2).all(|w| w[1] - w[0] >= WINDOW_MS),
        "at most one notification per 20 s window: {from:?}{}",
        context()
    );
    // What it was told alternates, and ends with the final state, once.
    let states: Vec<&str> = told
        .iter()
        .filter(|d| is_state(d))
        .map(|d| d.kind.as_str())
        .collect();
    assert!(
        states.first() == Some(&"check.down") && states.windows(2).all(|w| w[0] != w[1]),
        "{states:?}"
    );
    let after: Vec<&str> = told
        .iter()
        .filter(|d| d.received_ms >= final_ms)
        .map(|d| d.kind.as_str())
        .collect();
    assert_eq!(after, [final_kind], "{}", context());
    assert!(hook.refused().is_empty(), "{}", context());
}

#[test]
fn an_agent_killed_is_a_no_data_alert_not_a_down() {
    if !testkit::require_python(&["standardwebhooks"]) {
        return;
    }
    /// no_data_after (3) × the 1 s interval = no_data_min.
    const NO_DATA_MS: u64 = 3000;
    /// A tick, the stream, the delivery, a loaded machine.
    const SLACK_MS: u64 = 5000;
    let mut lab = Lab::new(&["eu-west", "us-east"]);
    let hook = Webhooks::start(lab.path());
    let alerter = Alerter::start(
        &lab,
        "down_after = 2\nrecover_after = 2\nno_data_after = 3\nno_data_min = \"3s\"\n",
        &[hook.receiver("hook", "")],
    );
    alerter.wait_until_up(2, 4);

    lab.regions[0].kill_agent();
    let killed_ms = now_ms();
    let no_data = {
        let context = || context(&alerter, &hook, &lab);
        wait_for(DELIVERY, "check.no_data for both checks", &context, || {
            let d: Vec<Delivery> = hook
                .accepted()
                .into_iter()
                .filter(|d| d.kind == "check.no_data")
                .collect();
            (d.len() >= 2).then_some(d)
        })
    };
    let mut checks: Vec<&str> = no_data.iter().map(Delivery::check).collect();
    checks.sort_unstable();
    assert_eq!(checks, ["api", "web"]);
    for d in &no_data {
        let late = d.received_ms.saturating_sub(killed_ms);
        assert!(
            late <= NO_DATA_MS + SLACK_MS,
            "{late} ms after the kill: {}",
            d.raw
        );
        assert!(
            d.at_ms() - d.since_ms() > NO_DATA_MS,
            "quiet long enough: {}",
            d.raw
        );
        let (eu, us) = (d.location("eu-west"), d.location("us-east"));
        assert_eq!(
            (&eu["state"], &eu["agent"]),
            (&"no_data".into(), &"eu-west-1".into()),
            "{}",
            d.raw
        );
        assert_eq!(us["state"], "up", "{}", d.raw);
    }

    // us-east goes on; nothing more is said, down least of all.
    std::thread::sleep(Duration::from_secs(5));
    let kinds = |hook: &Webhooks| -> Vec<String> {
        hook.deliveries().into_iter().map(|d| d.kind).collect()
    };
    assert_eq!(
        kinds(&hook),
        ["check.no_data", "check.no_data"],
        "{}",
        context(&alerter, &hook, &lab)
    );
    assert_eq!(
        alerter.metric("sonde_alert_checks", "state=\"no_data\""),
        2.0
    );
    assert_eq!(alerter.metric("sonde_alert_checks", "state=\"up\""), 2.0);

    // The agent back: its data is back, for the same incidents.
    lab.regions[0].start_agent();
    let back = {
        let context = || context(&alerter, &hook, &lab);
        wait_for(
            DELIVERY,
            "check.data_back for both checks",
            &context,
            || {
                let d: Vec<Delivery> = hook
                    .accepted()
                    .into_iter()
                    .filter(|d| d.kind == "check.data_back")
                    .collect();
                (d.len() >= 2).then_some(d)
            },
        )
    };
    for b in &back {
        let opened = no_data.iter().find(|d| d.check() == b.check());
        assert_eq!(
            opened.map(Delivery::incident),
            Some(b.incident()),
            "{}",
            b.raw
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    let all = kinds(&hook);
    assert_eq!(all.len(), 4, "{all:?}");
    assert!(!all.iter().any(|k| k == "check.down"), "{all:?}");
    assert!(
        hook.refused().is_empty(),
        "{}",
        context(&alerter, &hook, &lab)
    );
}

/// `sonde alert silence list`'s lines, split at the tabs (id, state,
/// `start .. end`, `checks=`, `regions=`, comment).
fn silences(alerter: &Alerter) -> Vec<Vec<String>> {
    let out = alerter.cli(&["silence", "list"]);
    assert_eq!(out.code, 0, "{}", out.describe());
    out.stdout
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

#[test]
fn a_silence_added_at_run_time_holds_a_down_and_survives_a_restart() {
    if !testkit::require_python(&["standardwebhooks"]) {
        return;
    }
    let lab = Lab::new(&["eu-west"]);
    let hook = Webhooks::start(lab.path());
    let mut alerter = Alerter::start(&lab, "quorum = 1\n", &[hook.receiver("hook", "")]);
    let down = |a: &Alerter| a.metric("sonde_alert_checks", "state=\"down\"");
    alerter.wait_until_up(2, 2);

    let before_add = now_ms();
    let added = alerter.cli(&[
        "silence",
        "add",
        "--check",
        "api",
        "--for",
        "10m",
        "--comment",
        "maint",
    ]);
    assert_eq!(
        (added.code, added.stdout.trim()),
        (0, "s-1"),
        "{}",
        added.describe()
    );
    let listed = silences(&alerter);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let s = &listed[0];
    assert_eq!(
        s.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "s-1",
            "active",
            &s[2],
            "checks=[\"api\"]",
            "regions=[]",
            "maint"
        ],
        "{listed:?}"
    );
    let (start, end) = s[2]
        .split_once(" .. ")
        .and_then(|(a, b)| Some((store::Utc::parse_rfc3339(a)?, store::Utc::parse_rfc3339(b)?)))
        .unwrap_or_else(|| panic!("start .. end: {s:?}"));
    assert!(start >= before_add && start <= now_ms(), "{s:?}");
    assert_eq!(end - start, 600_000, "10m: {s:?}");

    // Down, as the rules judge it; silenced, so no one is told.
    let (down_ms, down_at) = (now_ms(), Instant::now());
    lab.regions[0].target.set_status(Some(503));
    wait_for(
        DELIVERY,
        "the check judged down",
        &|| context(&alerter, &hook, &lab),
        || (down(&alerter) == 1.0).then_some(()),
    );
    // 6 s since the target went down, and at least 2 s judged down.
    std::thread::sleep(
        Duration::from_secs(6)
            .saturating_sub(down_at.elapsed())
            .max(Duration::from_secs(2)),
    );
    assert!(
        hook.log().is_empty(),
        "silenced{}",
        context(&alerter, &hook, &lab)
    );
    assert!(alerter.notified("check.down").is_empty());
    assert_eq!(
        alerter.metric("sonde_alert_events_total", "type=\"check.down\""),
        0.0
    );
    assert_eq!(down(&alerter), 1.0, "{}", context(&alerter, &hook, &lab));

    // A clean restart on the same state directory: the silence is
    // persisted, and still holds.
    alerter.stop();
    alerter.restart();
    wait_for(
        DELIVERY,
        "the check down after the restart",
        &|| context(&alerter, &hook, &lab),
        || (down(&alerter) == 1.0).then_some(()),
    );
    assert_eq!(silences(&alerter), listed, "the same silence, persisted");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        hook.log().is_empty(),
        "still silenced after the restart{}",
        context(&alerter, &hook, &lab)
    );

    // Removed while the check is down: the down is told now.
    let removing_ms = now_ms();
    let removed = alerter.cli(&["silence", "remove", "s-1"]);
    assert_eq!(
        (removed.code, removed.stdout.trim()),
        (0, "removed s-1"),
        "{}",
        removed.describe()
    );
    let told = wait_for(
        Duration::from_secs(10),
        "the check.down once the silence ended",
        &|| context(&alerter, &hook, &lab),
        || first(&hook, "check.down", "api"),
    );
    assert_eq!(told.incident(), 1, "{}", told.raw);
    assert_eq!(
        told.data["quorum"],
        serde_json::json!({"required": 1, "down": 1, "up": 0, "regions": 1}),
        "{}",
        told.raw
    );
    assert_eq!(told.location("eu-west")["state"], "down", "{}", told.raw);
    assert!(told.at_ms() >= removing_ms, "decided then: {}", told.raw);
    // The incident began when the target went down (a probe started
    // before the change may be its first failure), not at the removal.
    assert!(
        told.since_ms() + 1000 >= down_ms && told.since_ms() < removing_ms,
        "since: {}",
        told.raw
    );
    assert!(silences(&alerter).is_empty());

    let missing = alerter.cli(&["silence", "remove", "s-99"]);
    assert_eq!(missing.code, 1, "{}", missing.describe());
    assert!(
        missing.stderr.contains("no runtime silence \"s-99\"") && missing.stdout.is_empty(),
        "{}",
        missing.describe()
    );
    let kinds: Vec<String> = hook.deliveries().into_iter().map(|d| d.kind).collect();
    assert_eq!(kinds, ["check.down"], "{}", context(&alerter, &hook, &lab));
    assert!(hook.refused().is_empty());
}

/// `sonde alert dead-letters`' lines.
fn dead_letters(alerter: &Alerter) -> Vec<String> {
    let out = alerter.cli(&["dead-letters"]);
    assert!(out.code == 0 && out.stderr.is_empty(), "{}", out.describe());
    out.stdout.lines().map(str::to_owned).collect()
}

#[test]
fn a_refused_notification_is_a_dead_letter_that_replays_with_its_id() {
    if !testkit::require_python(&["standardwebhooks"]) {
        return;
    }
    let lab = Lab::new(&["eu-west"]);
    let hook = Webhooks::start(lab.path());
    let mut alerter = Alerter::start(&lab, "quorum = 1\n", &[hook.receiver("hook", "")]);
    let outcome = |a: &Alerter, outcome: &str| {
        a.metric(
            "sonde_alert_notifications_total",
            &format!("receiver=\"hook\",outcome=\"{outcome}\""),
        )
    };
    let pending = |a: &Alerter| a.metric("sonde_alert_pending", "receiver=\"hook\"");
    alerter.wait_until_up(2, 2);

    // 400: refused for good, not retried.
    hook.set(400, 0.0);
    lab.regions[0].target.set_status(Some(503));
    let refused = wait_for(
        DELIVERY,
        "the check.down refused",
        &|| context(&alerter, &hook, &lab),
        || {
            hook.deliveries()
                .into_iter()
                .find(|d| d.kind == "check.down" && d.status == 400)
        },
    );
    wait_for(
        Duration::from_secs(10),
        "the check.down dead-lettered",
        &|| context(&alerter, &hook, &lab),
        || (outcome(&alerter, "dead_lettered") == 1.0).then_some(()),
    );
    assert_eq!(
        (
            pending(&alerter),
            outcome(&alerter, "sent"),
            outcome(&alerter, "failed"),
            outcome(&alerter, "retried")
        ),
        (0.0, 0.0, 1.0, 0.0),
        "{}",
        context(&alerter, &hook, &lab)
    );

    // Listed: when, receiver, id, kind, check, attempts, why.
    let listed = wait_for(
        Duration::from_secs(10),
        "the dead letter listed",
        &|| context(&alerter, &hook, &lab),
        || Some(dead_letters(&alerter)).filter(|l| !l.is_empty()),
    );
    assert_eq!(listed.len(), 1, "{listed:?}");
    let fields: Vec<&str> = listed[0].split_whitespace().collect();
    assert_eq!(
        fields[1..],
        [
            "hook",
            refused.id.as_str(),
            "check.down",
            "api",
            "1",
            "attempts",
            "HTTP",
            "400"
        ],
        "{listed:?}"
    );
    let at = store::Utc::parse_rfc3339(fields[0]).unwrap_or(0);
    assert!(
        at >= refused.received_ms && at <= now_ms(),
        "dead-lettered at: {listed:?}"
    );
    let json = alerter.cli(&["dead-letters", "--json"]);
    let letter: serde_json::Value = serde_json::from_str(json.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}{}", json.describe()));
    assert_eq!(
        (&letter["receiver"], &letter["id"], &letter["check"]),
        (&"hook".into(), &refused.id.as_str().into(), &"api".into()),
        "{letter:#}"
    );
    assert_eq!(
        (&letter["attempts"], &letter["last_error"]),
        (&1.into(), &"HTTP 400".into()),
        "{letter:#}"
    );

    // The alerter stopped: the listing reads the state directory; a
    // replay needs the running alerter.
    alerter.stop();
    assert_eq!(dead_letters(&alerter), listed, "with the alerter stopped");
    let offline = alerter.cli(&["dead-letters", "--replay", "--all"]);
    assert!(
        offline.code == 1 && offline.stderr.contains("is `sonde alert` running?"),
        "{}",
        offline.describe()
    );

    alerter.restart();
    hook.set(200, 0.0);
    let replayed = alerter.cli(&["dead-letters", "--replay", "--all"]);
    assert_eq!(
        (replayed.code, replayed.stdout.trim()),
        (0, "replayed 1"),
        "{}",
        replayed.describe()
    );
    let accepted = wait_for(
        DELIVERY,
        "the replay accepted",
        &|| context(&alerter, &hook, &lab),
        || hook.accepted().into_iter().find(|d| d.id == refused.id),
    );
    assert_eq!(
        (accepted.kind.as_str(), &accepted.data),
        ("check.down", &refused.data),
        "the same notification"
    );
    wait_for(
        Duration::from_secs(10),
        "the dead letter gone from the listing",
        &|| context(&alerter, &hook, &lab),
        || dead_letters(&alerter).is_empty().then_some(()),
    );
    assert_eq!(
        (outcome(&alerter, "sent"), pending(&alerter)),
        (1.0, 0.0),
        "{}",
        context(&alerter, &hook, &lab)
    );
    // Replayed once: nothing left to replay.
    let again = alerter.cli(&["dead-letters", "--replay", "--all"]);
    assert_eq!(
        (again.code, again.stdout.trim()),
        (0, "replayed 0"),
        "{}",
        again.describe()
    );
    let attempts: Vec<(String, u64)> = hook
        .deliveries()
        .into_iter()
        .map(|d| (d.id, d.status))
        .collect();
    assert_eq!(
        attempts,
        [(refused.id.clone(), 400), (refused.id.clone(), 200)],
        "{}",
        context(&alerter, &hook, &lab)
    );
    assert!(hook.refused().is_empty());
}

fn in_gateway_context(alert: &InGateway, hook: &Webhooks, lab: &Lab) -> String {
    let regions: String = lab.regions.iter().map(lab::Region::describe).collect();
    format!("{}{}{regions}", alert.describe(), hook.describe())
}

#[test]
fn the_gateway_runs_the_alerter_in_its_own_process_with_alert_in_its_config() {
    if !testkit::require_python(&["standardwebhooks"]) {
        return;
    }
    let mut lab = Lab::empty();
    let hook = Webhooks::start(lab.path());
    let alert =
        lab.add_region_running_the_alerter("eu-west", "quorum = 1\n", &[hook.receiver("hook", "")]);
    lab::wait_until_up(alert.addr, 2, 2, &|| {
        in_gateway_context(&alert, &hook, &lab)
    });
    let region = &lab.regions[0];
    // Its listener is the gateway's: no other process runs it.
    assert!(
        lab::listens(region.gateway_pid(), alert.addr),
        "the gateway holds the alerter's listener{}",
        in_gateway_context(&alert, &hook, &lab)
    );
    assert!(
        region
            .gateway_log()
            .contains("alerter listening beside the gateway"),
        "{}",
        in_gateway_context(&alert, &hook, &lab)
    );
    let health = get(alert.addr, "/healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));

    region.target.set_status(Some(503));
    let down = wait_for(
        DELIVERY,
        "the check.down",
        &|| in_gateway_context(&alert, &hook, &lab),
        || first(&hook, "check.down", "api"),
    );
    assert_eq!(
        down.data["quorum"],
        serde_json::json!({"required": 1, "down": 1, "up": 0, "regions": 1}),
        "{}",
        down.raw
    );
    let loc = down.location("eu-west");
    assert_eq!(
        (&loc["state"], &loc["agent"]),
        (&"down".into(), &"eu-west-1".into()),
        "{}",
        down.raw
    );
    wait_for(
        Duration::from_secs(10),
        "the delivery counted",
        &|| in_gateway_context(&alert, &hook, &lab),
        || {
            let sent = alert.metric(
                "sonde_alert_notifications_total",
                "receiver=\"hook\",outcome=\"sent\"",
            );
            (sent == 1.0).then_some(())
        },
    );
    assert_eq!(get(alert.addr, "/healthz").status, 200);

    // One SIGTERM stops both, cleanly.
    let code = lab.regions[0].stop_gateway();
    assert_eq!(
        code,
        0,
        "the gateway's exit status{}",
        in_gateway_context(&alert, &hook, &lab)
    );
    let log = lab.regions[0].gateway_log();
    assert!(
        log.contains("alerter stopped"),
        "{}",
        in_gateway_context(&alert, &hook, &lab)
    );
    assert_eq!(
        get(alert.addr, "/healthz").status,
        0,
        "the alerter stopped with the gateway"
    );
    assert!(std::net::TcpStream::connect(lab.regions[0].addr).is_err());
    assert_eq!(hook.accepted().len(), 1, "{}", hook.describe());
    assert!(hook.refused().is_empty());
}
