//! The golden vectors of WIRE.md, checked against this crate: each hex block
//! decodes to the JSON beside it, and encoding the decoded value gives the
//! hex back byte for byte. The vectors are parsed out of WIRE.md itself, so
//! the spec and the code cannot drift apart.

use serde_json::{Value, json};
use wire::{
    CheckBatch, ErrorClass, Frame, FrameHeader, FrameReader, JsonRecord, ReadItem, Record,
    check_file_header, file_header,
};

const SPEC: &str = include_str!("../WIRE.md");

/// A golden vector: its name, bytes and expected decoded value.
struct Vector {
    name: String,
    bytes: Vec<u8>,
    expected: Value,
}

/// Fenced blocks tagged `hex vector=NAME` and `json vector=NAME`.
fn vectors() -> Vec<Vector> {
    let mut hex = Vec::new();
    let mut jsons = std::collections::HashMap::new();
    let mut lines = SPEC.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut words = info.split_whitespace();
        let (Some(lang), Some(tag)) = (words.next(), words.next()) else {
            continue;
        };
        let Some(name) = tag.strip_prefix("vector=") else {
            continue;
        };
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        let body = body.join("\n");
        match lang {
            "hex" => hex.push((name.to_owned(), body)),
            "json" => {
                let value: Value = serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("vector {name}: bad JSON: {e}"));
                jsons.insert(name.to_owned(), value);
            }
            other => panic!("vector {name}: unknown block type {other}"),
        }
    }
    hex.into_iter()
        .map(|(name, text)| {
            let digits: String = text.split_whitespace().collect();
            let bytes = (0..digits.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex digits"))
                .collect();
            let expected = jsons
                .remove(&name)
                .unwrap_or_else(|| panic!("vector {name}: no json block"));
            Vector {
                name,
                bytes,
                expected,
            }
        })
        .collect()
}

/// The record's one JSON shape (`wire::json`), as the vectors show it.
fn record_json(r: &Record) -> Value {
    serde_json::to_value(JsonRecord(r)).expect("a record serializes to JSON")
}

fn frame_json(f: &Frame) -> Value {
    json!({
        "agent": f.header.agent, "session": f.header.session, "seq": f.header.seq,
        "batches": f.batches.iter().map(|b| json!({
            "check": b.check,
            "records": b.records.iter().map(record_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn decode_file(bytes: &[u8]) -> Vec<Frame> {
    check_file_header(bytes).expect("file header");
    FrameReader::new(&bytes[8..], 8)
        .at_eof()
        .map(|item| match item {
            ReadItem::Frame { frame, .. } => frame,
            ReadItem::Skipped { offset, error, .. } => panic!("damage at {offset}: {error}"),
        })
        .collect()
}

#[test]
fn golden_vectors_decode_to_their_json_and_reencode_to_their_bytes() {
    let vectors = vectors();
    let names: Vec<&str> = vectors.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "record-up",
            "record-down",
            "record-absent",
            "frame-three",
            "file-two-frames"
        ],
        "WIRE.md must hold the five golden vectors"
    );
    for v in &vectors {
        let (got, reencoded) = match v.name.split('-').next() {
            Some("record") => {
                let r = Record::decode(&v.bytes).expect(&v.name);
                (record_json(&r), r.encode())
            }
            Some("frame") => {
                let (f, len) = Frame::decode(&v.bytes).expect(&v.name);
                assert_eq!(len, v.bytes.len(), "{}", v.name);
                (frame_json(&f), f.encode().expect("encode"))
            }
            Some("file") => {
                let frames = decode_file(&v.bytes);
                let mut out = file_header().to_vec();
                for f in &frames {
                    f.encode_into(&mut out).expect("encode");
                }
                let json = json!({"frames": frames.iter().map(frame_json).collect::<Vec<_>>()});
                (json, out)
            }
            _ => panic!("vector {}: unknown kind", v.name),
        };
        assert_eq!(got, v.expected, "vector {} decodes to its JSON", v.name);
        assert_eq!(
            reencoded, v.bytes,
            "vector {} re-encodes to its bytes",
            v.name
        );
    }
}

#[test]
fn error_class_table_in_spec_matches_the_code() {
    // The rows with a numeric first cell in the "Error classes" section.
    let section = SPEC
        .split("\n### ")
        .find(|s| s.starts_with("1.3 Error classes"))
        .expect("WIRE.md has an Error classes section");
    let rows: Vec<(u8, String)> = section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let code = cells.get(1)?.parse().ok()?;
            Some((code, cells.get(2)?.trim_matches('`').to_owned()))
        })
        .collect();
    let expected: Vec<(u8, String)> = ErrorClass::ALL
        .iter()
        .map(|c| (c.code(), c.name().to_owned()))
        .collect();
    assert_eq!(rows, expected);
}

fn sample(t_ms: u64) -> Record {
    Record::up(t_ms, 250)
        .with_sc(200)
        .with_phases(12, 20, 25, 80)
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|c| {
            c.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The values behind WIRE.md's vectors; prints the blocks to paste there
/// (`cargo test -p sonde-wire --test tests -- golden:: --ignored --nocapture`).
#[test]
#[ignore]
fn print_golden_vectors() {
    const T0: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let up = sample(T0);
    let down = Record::down(T0 + 15_000, 5_000, ErrorClass::ConnectTimeout)
        .with_dn(11)
        .with_cn(4_989);
    let absent = Record::up(T0 + 30_000, 5)
        .with_sc(204)
        .with_cn(1)
        .with_ft(3);
    let header = |seq| FrameHeader {
        agent: "eu-west-1a".into(),
        session: T0 - 60_000,
        seq,
    };
    let bad = Record::down(T0 + 30_002, 310, ErrorClass::StatusCode)
        .with_sc(503)
        .with_phases(12, 20, 25, 80);
    let three = Frame {
        header: header(7),
        batches: vec![CheckBatch {
            check: "api-health".into(),
            records: vec![sample(T0), sample(T0 + 15_001), bad],
        }],
    };
    let first = Frame {
        header: header(8),
        batches: vec![
            CheckBatch {
                check: "api-health".into(),
                records: vec![sample(T0 + 45_000)],
            },
            CheckBatch {
                check: "home".into(),
                records: vec![absent, sample(T0 + 45_500)],
            },
        ],
    };
    let second = Frame {
        header: header(9),
        batches: vec![CheckBatch {
            check: "api-health".into(),
            records: vec![down],
        }],
    };
    let mut file = file_header().to_vec();
    first.encode_into(&mut file).expect("encode");
    second.encode_into(&mut file).expect("encode");
    for (name, bytes, json) in [
        ("record-up", up.encode(), record_json(&up)),
        ("record-down", down.encode(), record_json(&down)),
        ("record-absent", absent.encode(), record_json(&absent)),
        (
            "frame-three",
            three.encode().expect("encode"),
            frame_json(&three),
        ),
        (
            "file-two-frames",
            file,
            json!({"frames": [frame_json(&first), frame_json(&second)]}),
        ),
    ] {
        println!("```hex vector={name}\n{}\n```\n", hex(&bytes));
        let pretty = serde_json::to_string_pretty(&json).expect("json");
        println!("```json vector={name}\n{pretty}\n```\n");
    }
}
