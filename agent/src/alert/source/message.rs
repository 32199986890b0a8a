//! The gateway's reader messages in their JSON form (PROTOCOL.md 3.5,
//! 3.10), decoded into what the source acts on; records from their JSON
//! shape (WIRE.md 1.4) into [`wire::Record`]. Pure: bytes in, values out.
//! Fields and message types this reader does not know are ignored, as the
//! protocol asks.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use wire::{ErrorClass, Record, Status};

use super::SourceRecord;

/// A message of the stream, decoded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    /// Which gateway answered (3.7).
    Hello {
        /// `gateway`.
        gateway: String,
        /// `region`, if it has one.
        region: Option<String>,
        /// `gseq`: the newest gseq given out when the stream opened, the
        /// end of this connection's backlog (absent from a gateway that
        /// does not send it).
        gseq: Option<u64>,
    },
    /// The current state as of `gseq` (3.3 step 2).
    Snapshot {
        /// G.
        gseq: u64,
        /// One record per (agent, check), in no particular order.
        states: Vec<SourceRecord>,
    },
    /// Records in gseq order (replay or live).
    Records(Vec<SourceRecord>),
    /// The reader must heal a range, or start over (3.3, 3.4).
    Reset {
        /// `reason`.
        reason: ResetReason,
        /// `gseq`: the newest gseq given out.
        gseq: u64,
        /// `missed_from` and `missed_to`, inclusive, when named.
        missed: Option<(u64, u64)>,
    },
    /// The reader's token expired: the stream ends (3.11).
    Expired,
    /// A type this reader does not know.
    Other,
}

/// Why a reset was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResetReason {
    /// `since` is older than the ring.
    SinceOutOfRing,
    /// The reader fell behind; the stream ends after the reset.
    Lagged,
    /// `since` is beyond the newest gseq: another gateway's numbering.
    SinceAhead,
    /// A reason this reader does not know.
    Other(String),
}

impl ResetReason {
    fn of(name: &str) -> ResetReason {
        match name {
            "since_out_of_ring" => ResetReason::SinceOutOfRing,
            "lagged" => ResetReason::Lagged,
            "since_ahead" => ResetReason::SinceAhead,
            other => ResetReason::Other(other.to_owned()),
        }
    }

    /// The name on the wire.
    pub(crate) fn name(&self) -> &str {
        match self {
            ResetReason::SinceOutOfRing => "since_out_of_ring",
            ResetReason::Lagged => "lagged",
            ResetReason::SinceAhead => "since_ahead",
            ResetReason::Other(name) => name,
        }
    }
}

/// A message that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("a {kind} message that is not the protocol's JSON: {source}")]
pub(crate) struct MessageError {
    kind: String,
    #[source]
    source: serde_json::Error,
}

/// Decodes the `data` of an SSE event named `event` (the message type).
pub(crate) fn decode(event: &str, data: &[u8]) -> Result<Message, MessageError> {
    let fail = |source| MessageError {
        kind: event.to_owned(),
        source,
    };
    Ok(match event {
        "hello" => {
            let h: HelloIn = serde_json::from_slice(data).map_err(fail)?;
            Message::Hello {
                gateway: h.gateway,
                region: h.region,
                gseq: h.gseq,
            }
        }
        "snapshot" => {
            let s: SnapshotIn = serde_json::from_slice(data).map_err(fail)?;
            Message::Snapshot {
                gseq: s.gseq,
                states: s.states.into_iter().map(Into::into).collect(),
            }
        }
        "records" => {
            let r: RecordsIn = serde_json::from_slice(data).map_err(fail)?;
            Message::Records(r.records.into_iter().map(Into::into).collect())
        }
        "reset" => {
            let r: ResetIn = serde_json::from_slice(data).map_err(fail)?;
            Message::Reset {
                reason: ResetReason::of(&r.reason),
                gseq: r.gseq,
                missed: r.missed_from.zip(r.missed_to),
            }
        }
        "expired" => Message::Expired,
        _ => Message::Other,
    })
}

/// One page of `GET /v1/history` (3.10).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistoryPage {
    /// The records, in gseq order.
    pub(crate) records: Vec<SourceRecord>,
    /// Where the next page starts, `None` on the last page.
    pub(crate) next: Option<u64>,
}

/// Decodes a history answer (JSON).
pub(crate) fn history_page(body: &[u8]) -> Result<HistoryPage, MessageError> {
    let page: HistoryIn = serde_json::from_slice(body).map_err(|source| MessageError {
        kind: "history".to_owned(),
        source,
    })?;
    Ok(HistoryPage {
        records: page.records.into_iter().map(Into::into).collect(),
        next: page.next_cursor.map(|c| c.0),
    })
}

#[derive(Deserialize)]
struct HelloIn {
    gateway: String,
    region: Option<String>,
    #[serde(default)]
    gseq: Option<u64>,
}

#[derive(Deserialize)]
struct SnapshotIn {
    gseq: u64,
    states: Vec<ItemIn>,
}

#[derive(Deserialize)]
struct RecordsIn {
    records: Vec<ItemIn>,
}

#[derive(Deserialize)]
struct ResetIn {
    reason: String,
    gseq: u64,
    missed_from: Option<u64>,
    missed_to: Option<u64>,
}

#[derive(Deserialize)]
struct HistoryIn {
    records: Vec<ItemIn>,
    next_cursor: Option<Cursor>,
}

/// `next_cursor`: a gseq, written as a string (or, leniently, a number).
struct Cursor(u64);

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cursor, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either<'a> {
            Number(u64),
            #[serde(borrow)]
            Text(Cow<'a, str>),
        }
        match Either::deserialize(d)? {
            Either::Number(n) => Ok(Cursor(n)),
            Either::Text(t) => t
                .parse()
                .map(Cursor)
                .map_err(|_| serde::de::Error::custom(format!("next_cursor {t:?} is not a gseq"))),
        }
    }
}

/// A state of a snapshot or an item of `records`: the same fields.
#[derive(Deserialize)]
struct ItemIn {
    gseq: u64,
    agent: String,
    check: String,
    record: RecordIn,
}

impl From<ItemIn> for SourceRecord {
    fn from(i: ItemIn) -> SourceRecord {
        SourceRecord {
            gseq: i.gseq,
            agent: i.agent,
            check: i.check,
            record: i.record.into(),
        }
    }
}

/// A record's JSON shape (WIRE.md 1.4, `wire::json`).
#[derive(Deserialize)]
struct RecordIn {
    t: u64,
    rt: u64,
    sc: Option<u16>,
    st: StatusIn,
    dn: Option<u64>,
    cn: Option<u64>,
    tl: Option<u64>,
    ft: Option<u64>,
    #[serde(default, deserialize_with = "error_class")]
    error: Option<ErrorClass>,
}

/// `st` by name. A name this build does not know is no verdict it can
/// act on: it reads as `unknown` rather than failing the whole message.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum StatusIn {
    Up,
    Down,
    #[serde(other)]
    Unknown,
}

/// `error` by name; null, and a class this build does not know (the
/// gateway writes null for those itself), are no class.
fn error_class<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ErrorClass>, D::Error> {
    let name: Option<Cow<'de, str>> = Option::deserialize(d)?;
    Ok(name.and_then(|n| ErrorClass::from_name(&n)))
}

impl From<RecordIn> for Record {
    fn from(r: RecordIn) -> Record {
        Record {
            t_ms: r.t,
            rt_ms: r.rt,
            sc: r.sc,
            st: match r.st {
                StatusIn::Up => Status::Up,
                StatusIn::Down => Status::Down,
                StatusIn::Unknown => Status::Unknown,
            },
            dn_ms: r.dn,
            cn_ms: r.cn,
            tl_ms: r.tl,
            ft_ms: r.ft,
            error: r.error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(r: &Record) -> String {
        serde_json::to_string(&wire::JsonRecord(r)).unwrap()
    }

    #[test]
    fn records_round_trip_through_their_json_shape() {
        let records = [
            Record::up(1_767_225_600_000, 250)
                .with_sc(200)
                .with_phases(12, 20, 25, 80),
            Record::down(1_767_225_615_000, 5000, ErrorClass::ConnectTimeout)
                .with_dn(11)
                .with_cn(4989),
            Record::unknown(7, 0, ErrorClass::Cancelled),
        ];
        for r in records {
            let item = format!(
                r#"{{"type":"records","records":[{{"gseq":5,"agent":"a","check":"c","record":{}}}]}}"#,
                json(&r)
            );
            let Message::Records(got) = decode("records", item.as_bytes()).unwrap() else {
                panic!("not records");
            };
            assert_eq!(got.len(), 1);
            assert_eq!((got[0].gseq, got[0].record), (5, r));
        }
    }

    #[test]
    fn names_this_build_does_not_know_do_not_fail_the_message() {
        let data = br#"{"type":"records","records":[{"gseq":1,"agent":"a","check":"c","extra":1,
            "record":{"t":1,"rt":2,"sc":null,"st":"degraded","dn":null,"cn":null,"tl":null,"ft":null,"error":"quantum"}}]}"#;
        let Message::Records(got) = decode("records", data).unwrap() else {
            panic!("not records");
        };
        assert_eq!(got[0].record.st, Status::Unknown);
        assert_eq!(got[0].record.error, None);
        assert_eq!(decode("future", b"not even json").unwrap(), Message::Other);
    }

    #[test]
    fn hello_snapshot_reset_and_history_decode() {
        let hello = br#"{"type":"hello","gateway":"gw-eu-1","region":null,"gseq":9,"ring":null}"#;
        assert_eq!(
            decode("hello", hello).unwrap(),
            Message::Hello {
                gateway: "gw-eu-1".into(),
                region: None,
                gseq: Some(9)
            }
        );
        assert_eq!(
            decode("hello", br#"{"type":"hello","gateway":"g"}"#).unwrap(),
            Message::Hello {
                gateway: "g".into(),
                region: None,
                gseq: None
            }
        );
        let snap = br#"{"type":"snapshot","gseq":9,"states":[{"agent":"a","check":"c","gseq":4,
            "record":{"t":1,"rt":2,"sc":200,"st":"up","dn":null,"cn":1,"tl":null,"ft":1,"error":null}}]}"#;
        let Message::Snapshot { gseq: 9, states } = decode("snapshot", snap).unwrap() else {
            panic!("not a snapshot");
        };
        assert_eq!((states[0].gseq, states[0].check.as_str()), (4, "c"));
        let reset = br#"{"type":"reset","reason":"lagged","gseq":9,"missed_from":5,"missed_to":9}"#;
        assert_eq!(
            decode("reset", reset).unwrap(),
            Message::Reset {
                reason: ResetReason::Lagged,
                gseq: 9,
                missed: Some((5, 9))
            }
        );
        let ahead = br#"{"type":"reset","reason":"since_ahead","gseq":9}"#;
        assert!(matches!(
            decode("reset", ahead).unwrap(),
            Message::Reset {
                reason: ResetReason::SinceAhead,
                missed: None,
                ..
            }
        ));
        let page = history_page(br#"{"gateway":"g","region":"r","gseq":9,"ring":null,"records":[],"next_cursor":"1767225600000124"}"#).unwrap();
        assert_eq!(page.next, Some(1_767_225_600_000_124));
        let last = history_page(br#"{"records":[],"next_cursor":null}"#).unwrap();
        assert_eq!(last.next, None);
        assert!(decode("records", br#"{"type":"records"}"#).is_err());
        assert!(history_page(br#"{"records":[],"next_cursor":"x"}"#).is_err());
    }
}
