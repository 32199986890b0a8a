//! Reader messages (PROTOCOL.md 3.5) and their two encodings: JSON, with
//! records in the one JSON shape of WIRE.md ("JSON"), and MessagePack, with
//! records as the positional wire record of WIRE.md 1.1. Pure functions
//! from hub data to bytes.

use serde::{Serialize, Serializer};
use wire::{JsonRecord, Record};

use crate::auth::Scope;
use crate::hub::{Batch, CheckState};

/// How a reader wants its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON text.
    Json,
    /// MessagePack, records as wire arrays.
    MsgPack,
}

/// Why a reader is told to start over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetReason {
    /// `since` is not covered by the ring.
    SinceOutOfRing,
    /// The reader fell behind the live queue.
    Lagged,
}

impl ResetReason {
    /// The name on the wire and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            ResetReason::SinceOutOfRing => "since_out_of_ring",
            ResetReason::Lagged => "lagged",
        }
    }
}

/// An encoded message, ready for a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// `snapshot`, `records` or `reset`.
    pub kind: &'static str,
    /// The gseq an SSE `id:` carries (snapshot G, last record), if any.
    pub id: Option<u64>,
    /// The bytes (UTF-8 for JSON).
    pub body: Vec<u8>,
}

struct RecordOut<'a> {
    record: &'a Record,
    format: Format,
}

impl Serialize for RecordOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.format {
            Format::MsgPack => self.record.serialize(s),
            Format::Json => JsonRecord(self.record).serialize(s),
        }
    }
}

#[derive(Serialize)]
struct StateOut<'a> {
    agent: &'a str,
    check: &'a str,
    gseq: u64,
    record: RecordOut<'a>,
}

#[derive(Serialize)]
struct ItemOut<'a> {
    gseq: u64,
    agent: &'a str,
    check: &'a str,
    record: RecordOut<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Msg<'a> {
    Snapshot {
        gseq: u64,
        states: Vec<StateOut<'a>>,
    },
    Records {
        records: Vec<ItemOut<'a>>,
    },
    Reset {
        reason: &'static str,
        gseq: u64,
    },
}

fn encode(msg: &Msg<'_>, format: Format) -> Vec<u8> {
    // Serialising these plain structs to memory cannot fail.
    match format {
        Format::Json => serde_json::to_vec(msg).unwrap_or_default(),
        Format::MsgPack => rmp_serde::to_vec_named(msg).unwrap_or_default(),
    }
}

/// The snapshot of the states `scope` may see, as of `head`.
pub fn snapshot(format: Format, head: u64, states: &[CheckState], scope: &Scope) -> Encoded {
    let states = states
        .iter()
        .filter(|s| scope.allows(&s.agent, &s.check))
        .map(|s| StateOut {
            agent: &s.agent,
            check: &s.check,
            gseq: s.gseq,
            record: RecordOut {
                record: &s.record,
                format,
            },
        })
        .collect();
    Encoded {
        kind: "snapshot",
        id: Some(head),
        body: encode(&Msg::Snapshot { gseq: head, states }, format),
    }
}

/// The records of `batch` with gseq > `after` that `scope` may see; `None`
/// when there are none.
pub fn records(format: Format, batch: &Batch, after: u64, scope: &Scope) -> Option<Encoded> {
    let records: Vec<ItemOut<'_>> = batch
        .with_gseq()
        .filter(|(gseq, check, _)| *gseq > after && scope.allows(&batch.agent, check))
        .map(|(gseq, check, record)| ItemOut {
            gseq,
            agent: &batch.agent,
            check,
            record: RecordOut { record, format },
        })
        .collect();
    let last = records.last()?.gseq;
    Some(Encoded {
        kind: "records",
        id: Some(last),
        body: encode(&Msg::Records { records }, format),
    })
}

/// A reset.
pub fn reset(format: Format, reason: ResetReason, head: u64) -> Encoded {
    let msg = Msg::Reset {
        reason: reason.name(),
        gseq: head,
    };
    Encoded {
        kind: "reset",
        id: None,
        body: encode(&msg, format),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;
    use wire::ErrorClass;

    fn rec() -> Record {
        Record::down(1_767_225_615_000, 5000, ErrorClass::ConnectTimeout)
            .with_dn(11)
            .with_cn(4989)
    }

    fn batch() -> Batch {
        Batch {
            first_gseq: 10,
            agent: Arc::from("eu-1"),
            accepted_at: Instant::now(),
            items: vec![(Arc::from("api"), rec()), (Arc::from("web"), rec())],
        }
    }

    #[test]
    fn json_records_use_field_names_and_respect_scope() {
        let scope = Scope::new("r", vec!["web".into()], vec![]);
        let e = records(Format::Json, &batch(), 0, &scope).unwrap();
        assert_eq!(e.id, Some(11));
        let v: serde_json::Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "records", "records": [{"gseq": 11, "agent": "eu-1",
                "check": "web", "record": {"t": 1_767_225_615_000u64, "rt": 5000, "sc": null,
                "st": "down", "dn": 11, "cn": 4989, "tl": null, "ft": null,
                "error": "connect_timeout"}}]})
        );
        assert!(records(Format::Json, &batch(), 11, &Scope::default()).is_none());
        let only_api = Scope::new("r", vec!["api".into()], vec![]);
        assert!(records(Format::Json, &batch(), 10, &only_api).is_none());
    }

    #[test]
    fn msgpack_records_are_wire_arrays() {
        let e = records(Format::MsgPack, &batch(), 10, &Scope::default()).unwrap();
        #[derive(serde::Deserialize)]
        struct Item {
            gseq: u64,
            check: String,
            record: Record,
        }
        #[derive(serde::Deserialize)]
        struct M {
            r#type: String,
            records: Vec<Item>,
        }
        let m: M = rmp_serde::from_slice(&e.body).unwrap();
        assert_eq!(m.r#type, "records");
        assert_eq!(
            (m.records[0].gseq, m.records[0].check.as_str()),
            (11, "web")
        );
        assert_eq!(m.records[0].record, rec());
    }

    #[test]
    fn snapshot_and_reset() {
        let states = vec![CheckState {
            agent: Arc::from("eu-1"),
            check: Arc::from("api"),
            gseq: 3,
            record: rec(),
        }];
        let e = snapshot(Format::Json, 9, &states, &Scope::default());
        let v: serde_json::Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(
            (v["type"].as_str(), v["gseq"].as_u64()),
            (Some("snapshot"), Some(9))
        );
        assert_eq!(v["states"][0]["record"]["st"], "down");
        let hidden = snapshot(
            Format::Json,
            9,
            &states,
            &Scope::new("r", vec!["x".into()], vec![]),
        );
        let v: serde_json::Value = serde_json::from_slice(&hidden.body).unwrap();
        assert_eq!(v["states"].as_array().map(Vec::len), Some(0));
        let r = reset(Format::Json, ResetReason::Lagged, 9);
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            r#"{"type":"reset","reason":"lagged","gseq":9}"#
        );
    }
}
