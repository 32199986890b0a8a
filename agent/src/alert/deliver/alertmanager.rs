//! Events as Prometheus Alertmanager alerts (`POST /api/v2/alerts`), and
//! the alerts still firing ([`ActiveAlerts`]), which must be re-posted
//! every resend interval: Alertmanager resolves an alert at its `endsAt`
//! unless it is posted again, and identifies it by its label set, so a
//! resolution repeats exactly the labels that fired.
//!
//! Pure: the clock is passed in; the map is serde, for the checkpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alert::event::{Event, Kind, Location, LocationState, rfc3339_ms};

/// The alert of a check down in a location.
pub const CHECK_DOWN: &str = "SondeCheckDown";
/// The alert of a location that stopped reporting a check.
pub const CHECK_NO_DATA: &str = "SondeCheckNoData";
/// The alert of a flapping check.
pub const CHECK_FLAPPING: &str = "SondeCheckFlapping";
/// The alert of records the alerter missed.
pub const ALERTER_GAP: &str = "SondeAlerterGap";
/// The path below the configured URL.
pub const ALERTS_PATH: &str = "/api/v2/alerts";
/// The most alerts held as firing; past it the oldest group is dropped
/// (Alertmanager resolves it at its last `endsAt`).
pub const MAX_ACTIVE: usize = 100_000;
/// Alerts per request when re-posting the firing ones.
pub const REFRESH_BATCH: usize = 1000;

/// One alert as the API takes it (times kept in epoch ms here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Its identity.
    pub labels: BTreeMap<String, String>,
    /// What people read.
    pub annotations: BTreeMap<String, String>,
    /// When it began, epoch ms.
    pub starts_at_ms: u64,
    /// When Alertmanager resolves it unless posted again, epoch ms.
    pub ends_at_ms: u64,
    /// The live page of the check.
    pub generator_url: Option<String>,
}

#[derive(Serialize)]
struct Wire<'a> {
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    ends_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    generator_url: Option<&'a str>,
}

/// The request body: a JSON array of alerts.
pub fn body(alerts: &[Alert]) -> Result<Vec<u8>, serde_json::Error> {
    let wire: Vec<Wire<'_>> = alerts
        .iter()
        .map(|a| Wire {
            labels: &a.labels,
            annotations: &a.annotations,
            starts_at: rfc3339_ms(a.starts_at_ms),
            ends_at: rfc3339_ms(a.ends_at_ms),
            generator_url: a.generator_url.as_deref(),
        })
        .collect();
    serde_json::to_vec(&wire)
}

/// Whether `name` is a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`,
/// not starting with the reserved `__`), for configured extra labels.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.starts_with("__")
}

/// The `{base}/api/v2/alerts` URL of a configured base URL.
pub fn alerts_url(base: &url::Url) -> url::Url {
    let mut url = base.clone();
    let path = format!("{}{ALERTS_PATH}", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// The firing alerts of one check and one alert name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// As last posted (`ends_at_ms` is recomputed on each post).
    pub alerts: Vec<Alert>,
}

/// The alerts posted as firing and not yet resolved, by alert name and
/// check. Bounded by [`MAX_ACTIVE`] alerts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveAlerts {
    groups: BTreeMap<String, Group>,
}

/// What to change in [`ActiveAlerts`] once a post is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Nothing (alerts that are not refreshed).
    None,
    /// These alerts fire now for the key.
    Set(String, Group),
    /// The key's alerts are resolved.
    Remove(String),
}

/// The post of one event and what it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// The alerts to post (none: nothing to tell Alertmanager).
    pub alerts: Vec<Alert>,
    /// Applied after a 2xx.
    pub update: Update,
}

/// The settings of an Alertmanager receiver that shape its alerts.
#[derive(Debug, Clone, Copy)]
pub struct Shape<'a> {
    /// Labels added to every alert (sonde's own win a clash).
    pub labels: &'a [(String, String)],
    /// The resend interval; alerts end 4 of them after a post.
    pub resend: Duration,
}

impl Shape<'_> {
    fn ends_at(&self, now_ms: u64) -> u64 {
        let ahead = u64::try_from(self.resend.as_millis().saturating_mul(4)).unwrap_or(u64::MAX);
        now_ms.saturating_add(ahead)
    }

    fn labels(&self, alertname: &str, own: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut labels: BTreeMap<String, String> = self.labels.iter().cloned().collect();
        labels.insert("alertname".into(), alertname.into());
        for (k, v) in own {
            labels.insert((*k).into(), (*v).into());
        }
        labels
    }
}

fn key(alertname: &str, check: &str) -> String {
    format!("{alertname}/{check}")
}

impl ActiveAlerts {
    /// Alerts held as firing.
    pub fn len(&self) -> usize {
        self.groups.values().map(|g| g.alerts.len()).sum()
    }

    /// Whether none fires.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The alerts of `alertname` for `check`, if any fire.
    pub fn get(&self, alertname: &str, check: &str) -> Option<&Group> {
        self.groups.get(&key(alertname, check))
    }

    /// Applies an accepted post's change.
    pub fn apply(&mut self, update: Update) {
        match update {
            Update::None => {}
            Update::Remove(k) => {
                self.groups.remove(&k);
            }
            Update::Set(k, group) => {
                self.groups.insert(k, group);
                let mut total = self.len();
                while total > MAX_ACTIVE {
                    let Some(oldest) = self.oldest() else { break };
                    if let Some(g) = self.groups.remove(&oldest) {
                        total -= g.alerts.len();
                        tracing::warn!(group = %oldest, "more than {MAX_ACTIVE} firing alerts: no longer refreshing the oldest");
                    }
                }
            }
        }
    }

    fn oldest(&self) -> Option<String> {
        self.groups
            .iter()
            .min_by_key(|(_, g)| g.alerts.iter().map(|a| a.starts_at_ms).min())
            .map(|(k, _)| k.clone())
    }

    /// Every firing alert, to re-post at `now_ms`, in batches of at most
    /// [`REFRESH_BATCH`].
    pub fn refresh(&self, shape: &Shape<'_>, now_ms: u64) -> Vec<Vec<Alert>> {
        let all: Vec<Alert> = self
            .groups
            .values()
            .flat_map(|g| g.alerts.iter())
            .map(|a| Alert {
                ends_at_ms: shape.ends_at(now_ms),
                ..a.clone()
            })
            .collect();
        all.chunks(REFRESH_BATCH).map(<[Alert]>::to_vec).collect()
    }

    /// What to post for `event` at `now_ms`, given what fires now.
    pub fn post(&self, event: &Event, shape: &Shape<'_>, now_ms: u64) -> Post {
        match event.kind {
            Kind::Down => {
                self.replace(CHECK_DOWN, event, down_alerts(event, shape, now_ms), now_ms)
            }
            Kind::NoData => {
                let alerts = no_data_alerts(event, shape, now_ms);
                self.replace(CHECK_NO_DATA, event, alerts, now_ms)
            }
            Kind::Recovered => self.resolve(CHECK_DOWN, &event.check, now_ms),
            Kind::DataBack => self.resolve(CHECK_NO_DATA, &event.check, now_ms),
            Kind::Flapping => Post {
                alerts: vec![flapping_alert(event, shape, now_ms)],
                update: Update::None,
            },
            Kind::Gap => Post {
                alerts: vec![gap_alert(event, shape, now_ms)],
                update: Update::None,
            },
        }
    }

    /// `firing` replaces what fired for the key: those no longer in it
    /// are resolved in the same post.
    fn replace(&self, alertname: &str, event: &Event, firing: Vec<Alert>, now_ms: u64) -> Post {
        let k = key(alertname, &event.check);
        let mut alerts = firing.clone();
        if let Some(old) = self.groups.get(&k) {
            for a in &old.alerts {
                if !firing.iter().any(|f| f.labels == a.labels) {
                    alerts.push(Alert {
                        ends_at_ms: now_ms,
                        ..a.clone()
                    });
                }
            }
        }
        let update = if firing.is_empty() {
            Update::Remove(k)
        } else {
            Update::Set(k, Group { alerts: firing })
        };
        Post { alerts, update }
    }

    /// The key's alerts again, ending now.
    fn resolve(&self, alertname: &str, check: &str, now_ms: u64) -> Post {
        let k = key(alertname, check);
        let alerts = self
            .groups
            .get(&k)
            .map(|g| {
                g.alerts
                    .iter()
                    .map(|a| Alert {
                        ends_at_ms: now_ms,
                        ..a.clone()
                    })
                    .collect()
            })
            .unwrap_or_default();
        Post {
            alerts,
            update: Update::Remove(k),
        }
    }
}

fn base_annotations(event: &Event, summary: String) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert("summary".to_owned(), summary);
    if let Some(link) = &event.link {
        a.insert("link".to_owned(), link.clone());
    }
    a.insert("event_id".to_owned(), event.id.clone());
    a
}

fn down_alerts(event: &Event, shape: &Shape<'_>, now_ms: u64) -> Vec<Alert> {
    let summary = format!(
        "check {} down in {} of {} regions",
        event.check, event.quorum.down, event.quorum.regions
    );
    event
        .locations
        .iter()
        .filter(|l| l.state == LocationState::Down)
        .map(|l| {
            let class = l
                .last
                .as_ref()
                .and_then(|p| p.record.error)
                .map_or("none", |c| c.name());
            let labels = shape.labels(
                CHECK_DOWN,
                &[
                    ("check", &event.check),
                    ("region", &l.region),
                    ("agent", &l.agent),
                    ("class", class),
                ],
            );
            location_alert(event, l, labels, summary.clone(), shape.ends_at(now_ms))
        })
        .collect()
}

fn no_data_alerts(event: &Event, shape: &Shape<'_>, now_ms: u64) -> Vec<Alert> {
    event
        .locations
        .iter()
        .filter(|l| l.state == LocationState::NoData)
        .map(|l| {
            let labels = shape.labels(
                CHECK_NO_DATA,
                &[
                    ("check", &event.check),
                    ("region", &l.region),
                    ("agent", &l.agent),
                ],
            );
            let summary = format!(
                "check {} has no data from {} ({})",
                event.check, l.region, l.agent
            );
            location_alert(event, l, labels, summary, shape.ends_at(now_ms))
        })
        .collect()
}

/// One location's alert: what it saw in the description, since the
/// incident began.
fn location_alert(
    event: &Event,
    l: &Location,
    labels: BTreeMap<String, String>,
    summary: String,
    ends_at_ms: u64,
) -> Alert {
    let mut annotations = base_annotations(event, summary);
    annotations.insert("description".to_owned(), describe(l));
    Alert {
        labels,
        annotations,
        starts_at_ms: event.since_ms,
        ends_at_ms,
        generator_url: event.link.clone(),
    }
}

fn flapping_alert(event: &Event, shape: &Shape<'_>, now_ms: u64) -> Alert {
    let summary = format!("check {} is flapping", event.check);
    Alert {
        labels: shape.labels(CHECK_FLAPPING, &[("check", &event.check)]),
        annotations: base_annotations(event, summary),
        starts_at_ms: event.at_ms,
        ends_at_ms: shape.ends_at(now_ms),
        generator_url: event.link.clone(),
    }
}

fn gap_alert(event: &Event, shape: &Shape<'_>, now_ms: u64) -> Alert {
    let region = event.locations.first().map(|l| l.region.as_str());
    let mut own = vec![("gateway", event.check.as_str())];
    own.extend(region.map(|r| ("region", r)));
    let missed = event
        .missed
        .map_or_else(String::new, |(from, to)| format!(" (gseq {from} to {to})"));
    let summary = format!(
        "the alerter missed records of gateway {}{missed}",
        event.check
    );
    Alert {
        labels: shape.labels(ALERTER_GAP, &own),
        annotations: base_annotations(event, summary),
        starts_at_ms: event.since_ms,
        ends_at_ms: shape.ends_at(now_ms),
        generator_url: event.link.clone(),
    }
}

/// `eu/a1: down 3 in a row, last probe at …: connect_refused; dns 2 ms,
/// connect -, tls -, ttfb -, total 5001 ms, status -`.
fn describe(l: &Location) -> String {
    let state = match l.state {
        LocationState::Pending => "pending",
        LocationState::Up => "up",
        LocationState::Down => "down",
        LocationState::NoData => "no data",
    };
    let mut s = format!("{}/{}: {state}", l.region, l.agent);
    if l.state != LocationState::NoData {
        s.push_str(&format!(" {} in a row", l.consecutive));
    }
    let Some(p) = &l.last else {
        s.push_str(", no probe seen");
        return s;
    };
    let r = &p.record;
    let phase = |v: Option<u64>| v.map_or("-".to_owned(), |ms| format!("{ms} ms"));
    s.push_str(&format!(
        ", last probe at {}: {}; dns {}, connect {}, tls {}, ttfb {}, total {} ms, status {}",
        rfc3339_ms(r.t_ms),
        r.error.map_or(r.st.name(), |c| c.name()),
        phase(r.dn_ms),
        phase(r.cn_ms),
        phase(r.tl_ms),
        phase(r.ft_ms),
        r.rt_ms,
        r.sc.map_or("-".to_owned(), |c| c.to_string()),
    ));
    s
}
