//! Events as Alertmanager alerts: label sets, `startsAt`/`endsAt`, the
//! firing set re-posted, and resolutions that repeat the labels that fired.

use std::collections::BTreeMap;
use std::time::Duration;

use wire::{ErrorClass, Record};

use super::{event, location};
use crate::alert::deliver::alertmanager::*;
use crate::alert::event::{Event, Kind, LocationState, Quorum};

const NOW: u64 = 1_767_225_600_000;
const RESEND: Duration = Duration::from_secs(60);

fn extra() -> Vec<(String, String)> {
    vec![
        ("team".into(), "ops".into()),
        // sonde's own labels win a clash.
        ("check".into(), "overridden".into()),
    ]
}

fn down_event() -> Event {
    let refused = Record::down(NOW - 5_000, 3, ErrorClass::ConnectRefused).with_phases(1, 2, 0, 0);
    let timeout = Record::down(NOW - 5_000, 5_000, ErrorClass::Timeout);
    let up = Record::up(NOW - 5_000, 80).with_sc(200);
    Event {
        quorum: Quorum {
            required: 2,
            down: 2,
            up: 1,
            regions: 3,
        },
        locations: vec![
            location("ap", "a3", LocationState::Up, Some(up)),
            location("eu", "a1", LocationState::Down, Some(refused)),
            location("us", "a2", LocationState::Down, Some(timeout)),
        ],
        link: Some("https://sonde.example/#check=api".into()),
        ..event("msg_down", Kind::Down, "api")
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

fn label_sets(alerts: &[Alert]) -> Vec<BTreeMap<String, String>> {
    alerts.iter().map(|a| a.labels.clone()).collect()
}

#[test]
fn a_check_down_in_two_regions_fires_two_alerts() {
    let extra = extra();
    let shape = Shape {
        labels: &extra,
        resend: RESEND,
    };
    let active = ActiveAlerts::default();
    let post = active.post(&down_event(), &shape, NOW);
    assert_eq!(
        label_sets(&post.alerts),
        [
            labels(&[
                ("agent", "a1"),
                ("alertname", "SondeCheckDown"),
                ("check", "api"),
                ("class", "connect_refused"),
                ("region", "eu"),
                ("team", "ops"),
            ]),
            labels(&[
                ("agent", "a2"),
                ("alertname", "SondeCheckDown"),
                ("check", "api"),
                ("class", "timeout"),
                ("region", "us"),
                ("team", "ops"),
            ]),
        ]
    );
    for a in &post.alerts {
        assert_eq!(a.starts_at_ms, down_event().since_ms);
        assert_eq!(a.ends_at_ms, NOW + 4 * 60_000);
        assert_eq!(a.annotations["summary"], "check api down in 2 of 3 regions");
        assert_eq!(a.annotations["link"], "https://sonde.example/#check=api");
        assert_eq!(
            a.generator_url.as_deref(),
            Some("https://sonde.example/#check=api")
        );
    }
    let eu = &post.alerts[0].annotations["description"];
    assert!(eu.starts_with("eu/a1: down 3 in a row"), "{eu}");
    assert!(
        eu.contains("connect_refused; dns 1 ms, connect 2 ms"),
        "{eu}"
    );
    // The API's shape.
    let json: serde_json::Value = serde_json::from_slice(&body(&post.alerts).unwrap()).unwrap();
    assert_eq!(json[0]["startsAt"], "2025-12-31T23:59:00.000Z");
    assert_eq!(json[0]["endsAt"], "2026-01-01T00:04:00.000Z");
    assert_eq!(json[0]["generatorURL"], "https://sonde.example/#check=api");
    assert_eq!(json[0]["labels"]["alertname"], "SondeCheckDown");
}

#[test]
fn firing_alerts_are_refreshed_then_resolved_with_the_same_labels() {
    let shape = Shape {
        labels: &[],
        resend: RESEND,
    };
    let mut active = ActiveAlerts::default();
    let post = active.post(&down_event(), &shape, NOW);
    let fired = label_sets(&post.alerts);
    // Nothing changes until the post is accepted.
    assert!(active.is_empty());
    active.apply(post.update);
    assert_eq!(active.len(), 2);
    // Every resend: the same label sets, ending 4 resends later.
    let later = NOW + 60_000;
    let batches = active.refresh(&shape, later);
    assert_eq!(batches.len(), 1);
    assert_eq!(label_sets(&batches[0]), fired);
    assert!(batches[0].iter().all(|a| a.ends_at_ms == later + 240_000));
    assert!(
        batches[0]
            .iter()
            .all(|a| a.starts_at_ms == down_event().since_ms)
    );
    // Recovered: the same label sets (the class as it fired), ending now,
    // although every location is up by now.
    let mut recovered = event("msg_up", Kind::Recovered, "api");
    recovered.locations = vec![location("eu", "a1", LocationState::Up, None)];
    let end = NOW + 90_000;
    let post = active.post(&recovered, &shape, end);
    assert_eq!(label_sets(&post.alerts), fired);
    assert!(post.alerts.iter().all(|a| a.ends_at_ms == end));
    active.apply(post.update);
    assert!(active.is_empty());
    assert!(active.refresh(&shape, end).is_empty());
    // A recovery with nothing firing has nothing to say.
    assert!(active.post(&recovered, &shape, end).alerts.is_empty());
}

#[test]
fn a_new_down_resolves_the_locations_no_longer_down() {
    let shape = Shape {
        labels: &[],
        resend: RESEND,
    };
    let mut active = ActiveAlerts::default();
    let first = active.post(&down_event(), &shape, NOW);
    active.apply(first.update);
    let mut again = down_event();
    again.id = "msg_down2".into();
    again.locations[2].state = LocationState::Up;
    let post = active.post(&again, &shape, NOW + 1);
    let ends: Vec<_> = post
        .alerts
        .iter()
        .map(|a| (a.labels["region"].as_str(), a.ends_at_ms))
        .collect();
    assert_eq!(ends, [("eu", NOW + 1 + 240_000), ("us", NOW + 1)]);
    active.apply(post.update);
    assert_eq!(active.len(), 1);
}

#[test]
fn no_data_fires_per_silent_location_and_data_back_resolves_it() {
    let extra = extra();
    let shape = Shape {
        labels: &extra,
        resend: RESEND,
    };
    let mut nodata = event("msg_nd", Kind::NoData, "api");
    nodata.locations = vec![
        location("eu", "a1", LocationState::NoData, None),
        location("us", "a2", LocationState::Up, None),
    ];
    let mut active = ActiveAlerts::default();
    let post = active.post(&nodata, &shape, NOW);
    let want = labels(&[
        ("agent", "a1"),
        ("alertname", "SondeCheckNoData"),
        ("check", "api"),
        ("region", "eu"),
        ("team", "ops"),
    ]);
    assert_eq!(label_sets(&post.alerts), std::slice::from_ref(&want));
    assert_eq!(post.alerts[0].ends_at_ms, NOW + 240_000);
    active.apply(post.update);
    assert!(active.get(CHECK_NO_DATA, "api").is_some());
    assert!(active.get(CHECK_DOWN, "api").is_none());
    let back = event("msg_back", Kind::DataBack, "api");
    let post = active.post(&back, &shape, NOW + 5);
    assert_eq!(label_sets(&post.alerts), [want]);
    assert_eq!(post.alerts[0].ends_at_ms, NOW + 5);
    active.apply(post.update);
    assert!(active.is_empty());
}

#[test]
fn flapping_and_gaps_fire_once_and_are_not_refreshed() {
    let shape = Shape {
        labels: &[],
        resend: RESEND,
    };
    let mut active = ActiveAlerts::default();
    let post = active.post(&event("msg_f", Kind::Flapping, "api"), &shape, NOW);
    assert_eq!(
        label_sets(&post.alerts),
        [labels(&[
            ("alertname", "SondeCheckFlapping"),
            ("check", "api")
        ])]
    );
    assert_eq!(post.alerts[0].ends_at_ms, NOW + 240_000);
    assert_eq!(post.update, Update::None);
    let mut gap = event("msg_g", Kind::Gap, "gw-eu");
    gap.missed = Some((10, 20));
    gap.locations = vec![location("eu", "-", LocationState::Pending, None)];
    let post = active.post(&gap, &shape, NOW);
    assert_eq!(
        label_sets(&post.alerts),
        [labels(&[
            ("alertname", "SondeAlerterGap"),
            ("gateway", "gw-eu"),
            ("region", "eu")
        ])]
    );
    assert!(post.alerts[0].annotations["summary"].contains("gseq 10 to 20"));
    active.apply(post.update);
    assert!(active.is_empty());
}

#[test]
fn the_active_map_survives_a_checkpoint_and_the_url_gets_the_api_path() {
    let shape = Shape {
        labels: &[],
        resend: RESEND,
    };
    let mut active = ActiveAlerts::default();
    let post = active.post(&down_event(), &shape, NOW);
    active.apply(post.update);
    let json = serde_json::to_vec(&active).unwrap();
    let back: ActiveAlerts = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, active);
    let url = |s: &str| alerts_url(&url::Url::parse(s).unwrap()).to_string();
    assert_eq!(url("http://am:9093"), "http://am:9093/api/v2/alerts");
    assert_eq!(url("http://am:9093/am/"), "http://am:9093/am/api/v2/alerts");
    for good in ["team", "_x", "a1_B"] {
        assert!(is_label_name(good), "{good}");
    }
    for bad in ["", "1a", "a-b", "é", "__name__"] {
        assert!(!is_label_name(bad), "{bad}");
    }
}
