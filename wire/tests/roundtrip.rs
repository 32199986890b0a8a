//! Property tests: every representable record, frame and file round-trips,
//! extremes included (t at 0 and u64::MAX, durations past u32 ms, every
//! combination of absent fields), rmp-serde agrees byte for byte, the JSON
//! shape shows every field in wire order, and the frame reader loses only
//! the frames that damage touched.

use proptest::prelude::*;
use wire::{
    CheckBatch, ErrorClass, FILE_HEADER_LEN, Frame, FrameHeader, FrameReader, JsonRecord, ReadItem,
    Record, Status, file_header, json,
};

fn any_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        Just(u64::from(u32::MAX)),
        Just(u64::from(u32::MAX) + 1),
        0u64..300,
        1_700_000_000_000u64..1_900_000_000_000,
        any::<u64>(),
    ]
}

fn any_record() -> impl Strategy<Value = Record> {
    (
        any_u64(),
        any_u64(),
        proptest::option::of(any::<u16>()),
        prop_oneof![Just(Status::Up), Just(Status::Down), Just(Status::Unknown)],
        proptest::option::of(any_u64()),
        proptest::option::of(any_u64()),
        proptest::option::of(any_u64()),
        proptest::option::of(any_u64()),
        proptest::option::of(proptest::sample::select(ErrorClass::ALL)),
    )
        .prop_map(
            |(t_ms, rt_ms, sc, st, dn_ms, cn_ms, tl_ms, ft_ms, error)| Record {
                t_ms,
                rt_ms,
                sc,
                st,
                dn_ms,
                cn_ms,
                tl_ms,
                ft_ms,
                error,
            },
        )
}

fn any_frame() -> impl Strategy<Value = Frame> {
    let batch = (
        "[a-z0-9./-]{0,40}",
        proptest::collection::vec(any_record(), 1..20),
    )
        .prop_map(|(check, records)| CheckBatch { check, records });
    (
        "\\PC{0,20}",
        any_u64(),
        any_u64(),
        proptest::collection::vec(batch, 0..5),
    )
        .prop_map(|(agent, session, seq, batches)| Frame {
            header: FrameHeader {
                agent,
                session,
                seq,
            },
            batches,
        })
}

fn flat(frame: &Frame) -> Vec<(String, Record)> {
    frame.records().map(|(c, r)| (c.to_owned(), *r)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn record_round_trips(record in any_record()) {
        let bytes = record.encode();
        prop_assert_eq!(Record::decode(&bytes), Ok(record));
        prop_assert_eq!(bytes.len() <= 1 + 9 * 7 + 3 + 1 + 2, true);
    }

    #[test]
    fn rmp_serde_writes_and_reads_the_same_bytes(record in any_record()) {
        let bytes = record.encode();
        let via_serde = rmp_serde::to_vec(&record).expect("rmp-serde encodes a record");
        prop_assert_eq!(&via_serde, &bytes);
        let back: Record = rmp_serde::from_slice(&bytes).expect("rmp-serde decodes a record");
        prop_assert_eq!(back, record);
    }

    #[test]
    fn json_shows_every_field_in_wire_order(record in any_record()) {
        let text = serde_json::to_string(&JsonRecord(&record)).expect("a record is JSON");
        let at: Vec<Option<usize>> = json::KEYS
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")))
            .collect();
        prop_assert!(at.iter().all(Option::is_some), "{}", text);
        prop_assert!(at.windows(2).all(|w| w[0] < w[1]), "{}", text);
        let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        prop_assert_eq!(v.as_object().map(|m| m.len()), Some(json::KEYS.len()));
        prop_assert_eq!(&v["t"], &serde_json::json!(record.t_ms));
        prop_assert_eq!(&v["rt"], &serde_json::json!(record.rt_ms));
        prop_assert_eq!(&v["sc"], &serde_json::json!(record.sc));
        prop_assert_eq!(&v["st"], &serde_json::json!(record.st.name()));
        prop_assert_eq!(&v["dn"], &serde_json::json!(record.dn_ms));
        prop_assert_eq!(&v["cn"], &serde_json::json!(record.cn_ms));
        prop_assert_eq!(&v["tl"], &serde_json::json!(record.tl_ms));
        prop_assert_eq!(&v["ft"], &serde_json::json!(record.ft_ms));
        prop_assert_eq!(&v["error"], &serde_json::json!(record.error.map(ErrorClass::name)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn frame_round_trips(frame in any_frame()) {
        let bytes = frame.encode().expect("small frames encode");
        let (decoded, len) = Frame::decode(&bytes).expect("an encoded frame decodes");
        prop_assert_eq!(len, bytes.len());
        prop_assert_eq!(&decoded.header, &frame.header);
        prop_assert_eq!(flat(&decoded), flat(&frame));
    }

    /// Damage (a flipped byte and/or a cut) costs exactly the frames it
    /// touches; every byte is accounted for exactly once.
    #[test]
    fn reader_loses_only_damaged_frames(
        frames in proptest::collection::vec(any_frame(), 1..6),
        flip in any::<prop::sample::Index>(),
        do_flip in any::<bool>(),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut bytes = Vec::new();
        let mut spans = Vec::new();
        for f in &frames {
            let start = bytes.len();
            f.encode_into(&mut bytes).expect("small frames encode");
            spans.push(start..bytes.len());
        }
        let flip_at = do_flip.then(|| flip.index(bytes.len()));
        if let Some(at) = flip_at {
            bytes[at] ^= 0x5a;
        }
        let cut_at = if do_cut { cut.index(bytes.len()) } else { bytes.len() };
        bytes.truncate(cut_at);

        let mut at = 0usize;
        let mut good = Vec::new();
        for item in FrameReader::new(&bytes, 0).at_eof() {
            match item {
                ReadItem::Frame { offset, len, frame } => {
                    prop_assert_eq!(offset as usize, at);
                    good.push((offset as usize, frame));
                    at += len;
                }
                ReadItem::Skipped { offset, len, .. } => {
                    prop_assert_eq!(offset as usize, at);
                    prop_assert!(len > 0);
                    at += len;
                }
            }
        }
        prop_assert_eq!(at, bytes.len());
        for (i, span) in spans.iter().enumerate() {
            let damaged = flip_at.is_some_and(|f| span.contains(&f)) || span.end > cut_at;
            if !damaged {
                let found = good.iter().find(|(o, _)| *o == span.start);
                prop_assert!(found.is_some(), "frame {} at {} was lost", i, span.start);
                if let Some((_, f)) = found {
                    prop_assert_eq!(flat(f), flat(&frames[i]));
                }
            }
        }
    }
}

#[test]
fn extremes_round_trip_standalone_and_in_frames() {
    let base = Record::unknown(0, u64::MAX, ErrorClass::LocalResource)
        .with_sc(u16::MAX)
        .with_dn(u64::from(u32::MAX) + 1)
        .with_tl(0);
    let far = Record {
        t_ms: u64::MAX,
        ..base
    };
    let mid = Record {
        t_ms: 1 << 63,
        ..base
    };
    for r in [base, far, mid] {
        assert_eq!(Record::decode(&r.encode()), Ok(r));
    }
    // 0 -> u64::MAX -> 0 cannot delta-code in 64 signed bits: the encoder
    // splits the batch and the records still come back in order.
    let frame = Frame {
        header: FrameHeader {
            agent: String::new(),
            session: 0,
            seq: u64::MAX,
        },
        batches: vec![CheckBatch {
            check: "c".into(),
            records: vec![base, far, base, mid, far],
        }],
    };
    let bytes = frame.encode().expect("encode");
    let (decoded, _) = Frame::decode(&bytes).expect("decode");
    assert_eq!(flat(&decoded), flat(&frame));
    assert!(decoded.batches.len() > 1);
}

#[test]
fn file_reader_skips_the_header_and_reports_a_torn_tail() {
    let frame = Frame {
        header: FrameHeader {
            agent: "a".into(),
            session: 1,
            seq: 0,
        },
        batches: vec![],
    };
    let mut bytes = file_header().to_vec();
    frame.encode_into(&mut bytes).expect("encode");
    let whole = bytes.len();
    frame.encode_into(&mut bytes).expect("encode");
    bytes.truncate(bytes.len() - 3);
    let items: Vec<_> = FrameReader::new(&bytes[FILE_HEADER_LEN..], FILE_HEADER_LEN as u64)
        .at_eof()
        .collect();
    assert!(matches!(items[0], ReadItem::Frame { offset: 8, .. }));
    assert!(matches!(
        items[1],
        ReadItem::Skipped { offset, error: wire::FrameError::Incomplete { .. }, .. } if offset as usize == whole
    ));
    // Without at_eof the tail is left for later, not reported.
    let mut streaming = FrameReader::new(&bytes, 0);
    let _ = streaming.by_ref().count();
    assert_eq!(streaming.consumed(), whole);
}
