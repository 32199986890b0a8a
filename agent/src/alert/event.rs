//! What the rule engine tells receivers: an [`Event`] (a check went down,
//! recovered, stopped reporting, flaps; or the alerter itself missed
//! records), with a stable id so a receiver can deduplicate retries and
//! redeliveries after a restart, and its documented JSON payload
//! (README "Alerting", the `type`/`timestamp`/`data` envelope the Standard
//! Webhooks specification suggests).

use ring::digest;
use serde::{Deserialize, Serialize};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The check is down in at least the quorum of its regions.
    Down,
    /// A check that was down is up again in the quorum.
    Recovered,
    /// Some location (region, agent) stopped reporting the check.
    NoData,
    /// Every location that had stopped reporting the check reports again.
    DataBack,
    /// The check changes state too often: notifications are held to one
    /// per flap window until it settles.
    Flapping,
    /// The alerter missed records of a gateway that history could not
    /// give back: for that range it cannot vouch for any state.
    Gap,
}

impl Kind {
    /// The payload's `type`.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Down => "check.down",
            Kind::Recovered => "check.recovered",
            Kind::NoData => "check.no_data",
            Kind::DataBack => "check.data_back",
            Kind::Flapping => "check.flapping",
            Kind::Gap => "alerter.gap",
        }
    }
}

/// One location's state for a check: what a region's agent last saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationState {
    /// Not yet enough probes to say.
    Pending,
    /// Up for at least `recover_after` probes in a row.
    Up,
    /// Down for at least `down_after` probes in a row.
    Down,
    /// No record for `no_data_after` times the check's interval.
    NoData,
}

/// A record as the notification shows it: the gseq the gateway gave it
/// and its fields (the record's JSON shape, WIRE.md 1.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// The gateway's gseq of the record.
    pub gseq: u64,
    /// The record (the wire's positional form in the checkpoint; its JSON
    /// shape in payloads).
    pub record: wire::Record,
}

/// What one location (a region's agent) saw of the check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// The region (its gateway's `hello`).
    pub region: String,
    /// The agent id.
    pub agent: String,
    /// Its state.
    pub state: LocationState,
    /// Consecutive probes with the last probe's status.
    pub consecutive: u32,
    /// The last probe seen, if any.
    pub last: Option<Probe>,
}

/// How the quorum stood when the event was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quorum {
    /// Regions that must agree.
    pub required: u32,
    /// Regions that see the check down.
    pub down: u32,
    /// Regions that see it up.
    pub up: u32,
    /// Regions that report the check at all.
    pub regions: u32,
}

/// A notification's content, decided by the rule engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Stable across retries, redeliveries and restarts: see [`event_id`].
    pub id: String,
    /// What changed.
    pub kind: Kind,
    /// The check (for [`Kind::Gap`], the gateway's name).
    pub check: String,
    /// The check's incident number for this kind of event (counts from 1).
    pub incident: u64,
    /// When it was decided, Unix epoch milliseconds (the end of the probe
    /// that decided it, or the clock for no data and gaps).
    pub at_ms: u64,
    /// When the incident began (the first probe of the failing run, or
    /// the last record before the silence), epoch milliseconds.
    pub since_ms: u64,
    /// The quorum at the time (zeros for no data and gaps).
    pub quorum: Quorum,
    /// Every location of the check, in region then agent order.
    pub locations: Vec<Location>,
    /// The error classes of the down locations' last probes, by name, sorted.
    pub classes: Vec<String>,
    /// For [`Kind::Gap`]: the gseq range missed, inclusive.
    pub missed: Option<(u64, u64)>,
    /// The live page's link for the check, when configured.
    pub link: Option<String>,
}

/// The id of the `incident`-th event of `kind` for `check`, given the
/// alerter's `epoch` (a random value made when its state directory was
/// created, so a new state directory never reuses the ids a receiver has
/// already seen). `msg_` and 32 hex digits of a SHA-256.
pub fn event_id(epoch: &str, kind: Kind, check: &str, incident: u64) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [epoch, kind.type_name(), check] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    ctx.update(&incident.to_be_bytes());
    let d = ctx.finish();
    let mut id = String::with_capacity(36);
    id.push_str("msg_");
    for b in &d.as_ref()[..16] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

impl Event {
    /// The JSON body every webhook receiver gets (README "Alerting"):
    /// `{"type", "timestamp", "data"}`, records in their JSON shape.
    pub fn payload(&self) -> Result<Vec<u8>, serde_json::Error> {
        let locations: Vec<serde_json::Value> = self
            .locations
            .iter()
            .map(|l| {
                serde_json::json!({
                    "region": l.region,
                    "agent": l.agent,
                    "state": l.state,
                    "consecutive": l.consecutive,
                    "last": l.last.as_ref().map(|p| serde_json::json!({
                        "gseq": p.gseq,
                        "record": wire::JsonRecord(&p.record),
                    })),
                })
            })
            .collect();
        let data = serde_json::json!({
            "id": self.id,
            "kind": self.kind,
            "check": self.check,
            "incident": self.incident,
            "at": rfc3339_ms(self.at_ms),
            "since": rfc3339_ms(self.since_ms),
            "quorum": self.quorum,
            "locations": locations,
            "classes": self.classes,
            "missed": self.missed.map(|(from, to)| serde_json::json!({"from": from, "to": to})),
            "link": self.link,
        });
        serde_json::to_vec(&serde_json::json!({
            "type": self.kind.type_name(),
            "timestamp": rfc3339_ms(self.at_ms),
            "data": data,
        }))
    }
}

/// Epoch milliseconds now (0 before 1970): the alerter's one wall clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Epoch milliseconds as `2026-12-01T10:00:00.000Z`.
pub fn rfc3339_ms(ms: u64) -> String {
    store::Utc::from_epoch_ms(ms).rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_differ_by_each_part() {
        let a = event_id("e1", Kind::Down, "api", 3);
        assert_eq!(a, event_id("e1", Kind::Down, "api", 3));
        assert_eq!(a.len(), 36);
        assert!(a.starts_with("msg_"));
        for other in [
            event_id("e2", Kind::Down, "api", 3),
            event_id("e1", Kind::Recovered, "api", 3),
            event_id("e1", Kind::Down, "api2", 3),
            event_id("e1", Kind::Down, "api", 4),
            // Lengths are part of the hash: "ab"+"c" is not "a"+"bc".
            event_id("e1a", Kind::Down, "pi", 3),
        ] {
            assert_ne!(a, other);
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_767_225_600_123), "2026-01-01T00:00:00.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
