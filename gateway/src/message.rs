//! Reader messages (PROTOCOL.md 3.5) and their two encodings: JSON, with
//! records in the one JSON shape of WIRE.md ("JSON"), and MessagePack, with
//! records as the positional wire record of WIRE.md 1.1. Pure functions
//! from hub data to bytes.
//!
//! Live batches are encoded once per format, not once per reader
//! ([`SharedBatch`]): every reader of a batch shares its bytes, and a
//! scoped reader's message is put together from the shared encodings of
//! the records it may see.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
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
    /// `since` is older than the ring: the records after it are only in
    /// history now.
    SinceOutOfRing,
    /// `since` is beyond the newest gseq (another gateway's, say): no
    /// range can be named; the reader starts over from the snapshot.
    SinceAhead,
    /// The reader fell behind the live queue.
    Lagged,
}

impl ResetReason {
    /// The name on the wire and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            ResetReason::SinceOutOfRing => "since_out_of_ring",
            ResetReason::SinceAhead => "since_ahead",
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
    pub body: Bytes,
    /// The whole SSE event (PROTOCOL.md 4) when it was prepared once for
    /// many readers; `body` is a slice of it.
    pub sse_event: Option<Bytes>,
}

impl Encoded {
    fn new(kind: &'static str, id: Option<u64>, body: Vec<u8>) -> Encoded {
        Encoded {
            kind,
            id,
            body: Bytes::from(body),
            sse_event: None,
        }
    }

    /// The message as one Server-Sent Event.
    pub fn to_sse_event(&self) -> Bytes {
        if let Some(event) = &self.sse_event {
            return event.clone();
        }
        let mut out = Vec::with_capacity(self.body.len() + 48);
        sse_prefix(&mut out, self.kind, self.id);
        out.extend_from_slice(&self.body);
        out.extend_from_slice(b"\n\n");
        Bytes::from(out)
    }
}

/// `event:`, `id:` and the start of the `data:` line. JSON bodies never
/// hold a raw newline, so one `data:` line carries the whole message.
fn sse_prefix(out: &mut Vec<u8>, kind: &str, id: Option<u64>) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    if let Some(id) = id {
        out.extend_from_slice(format!("\nid: {id}").as_bytes());
    }
    out.extend_from_slice(b"\ndata: ");
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
    Expired {
        gseq: u64,
    },
    Reset {
        reason: &'static str,
        gseq: u64,
        /// The first gseq the reader was not sent (absent for `since_ahead`).
        #[serde(skip_serializing_if = "Option::is_none")]
        missed_from: Option<u64>,
        /// The last gseq of the range it missed, inclusive.
        #[serde(skip_serializing_if = "Option::is_none")]
        missed_to: Option<u64>,
    },
}

fn encode<T: Serialize + ?Sized>(msg: &T, format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, msg, format);
    out
}

fn encode_into<T: Serialize + ?Sized>(out: &mut Vec<u8>, msg: &T, format: Format) {
    // Serialising these plain structs to memory cannot fail.
    let _ = match format {
        Format::Json => serde_json::to_writer(&mut *out, msg).map_err(|_| ()),
        Format::MsgPack => rmp_serde::encode::write_named(out, msg).map_err(|_| ()),
    };
}

/// The states `scope` may see, ready to encode.
fn state_outs<'a>(format: Format, states: &'a [CheckState], scope: &Scope) -> Vec<StateOut<'a>> {
    states
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
        .collect()
}

/// The snapshot of the states `scope` may see, as of `head`.
pub fn snapshot(format: Format, head: u64, states: &[CheckState], scope: &Scope) -> Encoded {
    let states = state_outs(format, states, scope);
    let body = encode(&Msg::Snapshot { gseq: head, states }, format);
    Encoded::new("snapshot", Some(head), body)
}

/// The records of `batch` with gseq > `after` that `scope` may see; `None`
/// when there are none. Encoded for this reader alone: for replay.
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
    let body = encode(&Msg::Records { records }, format);
    Some(Encoded::new("records", Some(last), body))
}

/// A reset. `missed` is the range of gseqs, inclusive, whose records in
/// its scope the reader was not sent and can fetch from history; `None`
/// when no range can be named (`since_ahead`).
pub fn reset(
    format: Format,
    reason: ResetReason,
    head: u64,
    missed: Option<(u64, u64)>,
) -> Encoded {
    let msg = Msg::Reset {
        reason: reason.name(),
        gseq: head,
        missed_from: missed.map(|m| m.0),
        missed_to: missed.map(|m| m.1),
    };
    Encoded::new("reset", None, encode(&msg, format))
}

/// The last message of a stream whose reader's token expired at the
/// newest gseq `head` (PROTOCOL.md 3.11): it reconnects with a fresh token
/// and `since` its last id. No SSE id.
pub fn expired(format: Format, head: u64) -> Encoded {
    Encoded::new(
        "expired",
        None,
        encode(&Msg::Expired { gseq: head }, format),
    )
}

/// Which gateway a reader is talking to, and where its ring stands
/// (PROTOCOL.md 3.7): part of every poll and checks answer.
#[derive(Debug, Clone, Serialize)]
pub struct Hello<'a> {
    /// `name` of gateway.toml.
    pub gateway: &'a str,
    /// `region` of gateway.toml, if set.
    pub region: Option<&'a str>,
    /// The newest gseq given out.
    pub gseq: u64,
    /// The ring's first and last gseqs; `None` when it is empty.
    pub ring: Option<RingBounds>,
}

/// The gseqs the replay ring holds, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RingBounds {
    /// The oldest.
    pub first: u64,
    /// The newest.
    pub last: u64,
}

/// The `hello` that opens every stream (PROTOCOL.md 3.7): no SSE id, so a
/// reader's resumption point stays where it was.
pub fn hello(format: Format, hello: &Hello<'_>) -> Encoded {
    #[derive(Serialize)]
    struct Out<'a> {
        r#type: &'static str,
        #[serde(flatten)]
        hello: &'a Hello<'a>,
    }
    let body = encode(
        &Out {
            r#type: "hello",
            hello,
        },
        format,
    );
    Encoded::new("hello", None, body)
}

/// A reset as a poll answer names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollReset {
    /// Why.
    pub reason: ResetReason,
    /// The gseqs missed, inclusive, if a range can be named.
    pub missed: Option<(u64, u64)>,
}

impl Serialize for PollReset {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out {
            reason: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            missed_from: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            missed_to: Option<u64>,
        }
        Out {
            reason: self.reason.name(),
            missed_from: self.missed.map(|m| m.0),
            missed_to: self.missed.map(|m| m.1),
        }
        .serialize(s)
    }
}

/// One record in a poll answer: its gseq, agent, check and the record.
pub type Item<'a> = (u64, &'a str, &'a str, &'a Record);

/// The JSON answer of `GET /v1/poll` (PROTOCOL.md 3.9).
pub fn poll_answer(
    hello: &Hello<'_>,
    items: &[Item<'_>],
    next_since: u64,
    reset: Option<PollReset>,
) -> Vec<u8> {
    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(flatten)]
        hello: &'a Hello<'a>,
        records: Vec<ItemOut<'a>>,
        next_since: u64,
        reset: Option<PollReset>,
    }
    let out = Out {
        hello,
        records: item_outs(Format::Json, items),
        next_since,
        reset,
    };
    encode(&out, Format::Json)
}

/// The answer of `GET /v1/history` (PROTOCOL.md 3.10), JSON or
/// MessagePack: `next_cursor` is where the next page starts, null on the
/// last page.
pub fn history_answer(
    format: Format,
    hello: &Hello<'_>,
    items: &[Item<'_>],
    next: Option<u64>,
) -> Vec<u8> {
    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(flatten)]
        hello: &'a Hello<'a>,
        records: Vec<ItemOut<'a>>,
        next_cursor: Option<String>,
    }
    let out = Out {
        hello,
        records: item_outs(format, items),
        next_cursor: next.map(|g| g.to_string()),
    };
    encode(&out, format)
}

fn item_outs<'a>(format: Format, items: &[Item<'a>]) -> Vec<ItemOut<'a>> {
    items
        .iter()
        .map(|&(gseq, agent, check, record)| ItemOut {
            gseq,
            agent,
            check,
            record: RecordOut { record, format },
        })
        .collect()
}

/// The JSON answer of `GET /v1/checks`: the states `scope` may see, as
/// of the hello's gseq (PROTOCOL.md 3.9).
pub fn checks_answer(hello: &Hello<'_>, states: &[CheckState], scope: &Scope) -> Vec<u8> {
    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(flatten)]
        hello: &'a Hello<'a>,
        states: Vec<StateOut<'a>>,
    }
    let states = state_outs(Format::Json, states, scope);
    encode(&Out { hello, states }, Format::Json)
}

/// A live batch and its `records` messages, encoded at most once per
/// format on first use and shared by every reader: fan-out to many
/// readers costs reference counts, not serialisations.
#[derive(Debug)]
pub struct SharedBatch {
    /// The batch.
    pub batch: Arc<Batch>,
    json: OnceLock<Encodings>,
    msgpack: OnceLock<Encodings>,
}

/// One format's encoding of a whole batch.
#[derive(Debug)]
struct Encodings {
    /// The `records` message of every item (for JSON, inside its SSE event).
    message: Encoded,
    /// Where item `i` is in `message.body`.
    items: Vec<Range<usize>>,
}

/// The JSON `records` message up to its first item.
const JSON_RECORDS_HEAD: &[u8] = br#"{"type":"records","records":["#;
/// A MessagePack map of two entries, `"type": "records"`, then the
/// `"records"` key; the item array follows.
const MSGPACK_RECORDS_HEAD: &[u8] = b"\x82\xa4type\xa7records\xa7records";

fn msgpack_array_len(out: &mut Vec<u8>, n: usize) {
    match u16::try_from(n) {
        Ok(n) if n < 16 => out.push(0x90 | n as u8),
        Ok(n) => {
            out.push(0xdc);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Err(_) => {
            out.push(0xdd);
            out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
        }
    }
}

impl SharedBatch {
    /// A batch whose encodings are yet to be made.
    pub fn new(batch: Arc<Batch>) -> SharedBatch {
        SharedBatch {
            batch,
            json: OnceLock::new(),
            msgpack: OnceLock::new(),
        }
    }

    fn encodings(&self, format: Format) -> &Encodings {
        let cell = match format {
            Format::Json => &self.json,
            Format::MsgPack => &self.msgpack,
        };
        cell.get_or_init(|| self.encode(format))
    }

    fn encode(&self, format: Format) -> Encodings {
        let b = &self.batch;
        let last = b.last_gseq();
        let mut out = Vec::with_capacity(64 + b.items.len() * 200);
        let mut items = Vec::with_capacity(b.items.len());
        if format == Format::Json {
            sse_prefix(&mut out, "records", Some(last));
        }
        let body_start = out.len();
        match format {
            Format::Json => out.extend_from_slice(JSON_RECORDS_HEAD),
            Format::MsgPack => {
                out.extend_from_slice(MSGPACK_RECORDS_HEAD);
                msgpack_array_len(&mut out, b.items.len());
            }
        }
        for (i, (gseq, check, record)) in b.with_gseq().enumerate() {
            if i > 0 && format == Format::Json {
                out.push(b',');
            }
            let start = out.len() - body_start;
            let item = ItemOut {
                gseq,
                agent: &b.agent,
                check,
                record: RecordOut { record, format },
            };
            encode_into(&mut out, &item, format);
            items.push(start..out.len() - body_start);
        }
        if format == Format::Json {
            out.extend_from_slice(b"]}");
        }
        let body_end = out.len();
        if format == Format::Json {
            out.extend_from_slice(b"\n\n");
        }
        // Reserved at a guess per record; shared by every reader for as
        // long as the queue holds the batch, so give back the rest.
        out.shrink_to_fit();
        let whole = Bytes::from(out);
        let message = Encoded {
            kind: "records",
            id: Some(last),
            body: whole.slice(body_start..body_end),
            sse_event: (format == Format::Json).then_some(whole),
        };
        Encodings { message, items }
    }

    /// The records with gseq > `after` that `scope` may see, as one
    /// `records` message; `None` when there are none. A reader that sees
    /// the whole batch shares its bytes; a scoped one gets the shared
    /// encodings of its records put together.
    pub fn records(&self, format: Format, after: u64, scope: &Scope) -> Option<Encoded> {
        let b = &self.batch;
        let enc = self.encodings(format);
        if after < b.first_gseq && scope.is_everything() {
            return Some(enc.message.clone());
        }
        let visible: Vec<usize> = b
            .with_gseq()
            .enumerate()
            .filter(|(_, (gseq, check, _))| *gseq > after && scope.allows(&b.agent, check))
            .map(|(i, _)| i)
            .collect();
        let last = b.first_gseq + *visible.last()? as u64;
        let body = &enc.message.body;
        let size: usize = visible.iter().map(|&i| enc.items[i].len() + 1).sum();
        let mut out = Vec::with_capacity(size + 48);
        match format {
            Format::Json => out.extend_from_slice(JSON_RECORDS_HEAD),
            Format::MsgPack => {
                out.extend_from_slice(MSGPACK_RECORDS_HEAD);
                msgpack_array_len(&mut out, visible.len());
            }
        }
        for (n, &i) in visible.iter().enumerate() {
            if n > 0 && format == Format::Json {
                out.push(b',');
            }
            out.extend_from_slice(&body[enc.items[i].clone()]);
        }
        if format == Format::Json {
            out.extend_from_slice(b"]}");
        }
        Some(Encoded::new("records", Some(last), out))
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
        let r = reset(Format::Json, ResetReason::Lagged, 9, Some((4, 9)));
        assert_eq!(
            std::str::from_utf8(&r.body).unwrap(),
            r#"{"type":"reset","reason":"lagged","gseq":9,"missed_from":4,"missed_to":9}"#
        );
        let r = reset(Format::Json, ResetReason::SinceAhead, 9, None);
        assert_eq!(
            std::str::from_utf8(&r.body).unwrap(),
            r#"{"type":"reset","reason":"since_ahead","gseq":9}"#
        );
    }

    fn big_batch(n: usize) -> Batch {
        let checks = ["api", "web", "db"];
        Batch {
            first_gseq: 100,
            agent: Arc::from("eu-1"),
            accepted_at: Instant::now(),
            items: (0..n)
                .map(|i| (Arc::from(checks[i % 3]), rec().with_dn(i as u64)))
                .collect(),
        }
    }

    #[test]
    fn shared_encodings_are_the_bytes_a_reader_alone_would_get() {
        let scopes = [
            Scope::default(),
            Scope::new("r", vec!["web".into()], vec![]),
            Scope::new("r", vec![], vec!["elsewhere".into()]),
        ];
        // 20 items need a 16-bit MessagePack array length, 3 a fixarray.
        for n in [1, 3, 20, 70_000] {
            let shared = SharedBatch::new(Arc::new(big_batch(n)));
            for format in [Format::Json, Format::MsgPack] {
                // The 32-bit array length once; the matrix on small batches.
                let scopes = if n > 100 { &scopes[..1] } else { &scopes[..] };
                for scope in scopes {
                    for after in [0, 100, 105] {
                        let alone = records(format, &shared.batch, after, scope);
                        let got = shared.records(format, after, scope);
                        assert_eq!(
                            got.as_ref().map(|e| (&e.body, e.id)),
                            alone.as_ref().map(|e| (&e.body, e.id)),
                            "{n} items, {format:?}, after {after}, {scope:?}"
                        );
                        if let (Some(got), Some(alone)) = (got, alone) {
                            assert_eq!(got.to_sse_event(), alone.to_sse_event());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn readers_of_the_whole_batch_share_one_buffer() {
        let shared = SharedBatch::new(Arc::new(batch()));
        let a = shared.records(Format::Json, 0, &Scope::default()).unwrap();
        let b = shared.records(Format::Json, 0, &Scope::default()).unwrap();
        assert_eq!(a.body.as_ptr(), b.body.as_ptr());
        let event = a.to_sse_event();
        let text = std::str::from_utf8(&event).unwrap();
        assert!(text.starts_with("event: records\nid: 11\ndata: {\"type\":\"records\""));
        assert!(text.ends_with("]}\n\n"), "{text}");
        assert_eq!(text.matches('\n').count(), 4);
    }
}
