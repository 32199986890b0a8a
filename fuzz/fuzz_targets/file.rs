//! Fuzzes whole wire files through the readers that decode and recovery
//! use: the input is a recipe of planted good frames, raw bytes and
//! crafted candidate runs after a file header. Never a panic; every
//! planted frame is found where it was put (other frames only inside raw
//! bytes); items cover the file exactly, a damaged region is one range;
//! read in pieces, the same ranges; work stays linear; the store's scan
//! keeps every planted frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::{
    FILE_HEADER_LEN, FRAME_MARKER, FrameBuilder, FrameError, FrameHeader, FrameStream, ReadItem,
    Record, file_header,
};

/// The file, the planted frames' spans and the raw regions' spans.
struct Recipe {
    bytes: Vec<u8>,
    planted: Vec<(u64, usize)>,
    raw: Vec<(u64, u64)>,
}

fn cook(data: &[u8]) -> Recipe {
    let mut r = Recipe {
        bytes: file_header().to_vec(),
        planted: Vec::new(),
        raw: Vec::new(),
    };
    let mut it = data.iter().copied();
    let mut seq = 0;
    while let Some(op) = it.next() {
        let arg = it.next().unwrap_or(0);
        match op % 5 {
            0 => {
                let mut b = FrameBuilder::new(FrameHeader {
                    agent: "fuzz".into(),
                    session: u64::from(op),
                    seq,
                });
                for i in 0..arg % 8 {
                    // t near c1 53 patterns on purpose: integers may hold them.
                    let t = 0xc153_0100_0040_00u64 + u64::from(i);
                    b.push("c", Record::up(t, u64::from(arg)).with_sc(200));
                }
                seq += 1;
                let at = r.bytes.len();
                if let Ok(n) = b.finish().encode_into(&mut r.bytes) {
                    r.planted.push((at as u64, n));
                }
            }
            1 | 2 => {
                let at = r.bytes.len() as u64;
                let n = usize::from(arg);
                r.bytes.extend(it.by_ref().take(n));
                r.raw.push((at, r.bytes.len() as u64));
            }
            4 => {
                // Good frames each followed by a claim reaching far past
                // the next ones: the claim at a frame's start, hashed anew
                // for every frame, was quadratic.
                let len = u32::from(it.next().unwrap_or(0)) << 4;
                for _ in 0..=arg % 64 {
                    let at = r.bytes.len();
                    let b = FrameBuilder::new(FrameHeader {
                        agent: "f".into(),
                        session: 1,
                        seq,
                    });
                    seq += 1;
                    if let Ok(n) = b.finish().encode_into(&mut r.bytes) {
                        r.planted.push((at as u64, n));
                    }
                    let at = r.bytes.len() as u64;
                    r.bytes.extend_from_slice(&FRAME_MARKER);
                    r.bytes.push(1);
                    r.bytes.extend_from_slice(&len.to_le_bytes());
                    r.raw.push((at, r.bytes.len() as u64));
                }
            }
            _ => {
                let at = r.bytes.len() as u64;
                let len = u32::from(it.next().unwrap_or(0)) << (8 * (arg % 4));
                for _ in 0..=arg / 4 {
                    r.bytes.extend_from_slice(&FRAME_MARKER);
                    r.bytes.push(1);
                    r.bytes.extend_from_slice(&len.to_le_bytes());
                }
                r.raw.push((at, r.bytes.len() as u64));
            }
        }
    }
    r
}

fn is_damage(error: &FrameError) -> bool {
    !matches!(
        error,
        FrameError::Body(_) | FrameError::UnsupportedVersion { .. }
    )
}

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Frame,
    /// An intact envelope around a frame this build cannot read.
    Unreadable,
    Damage,
}

/// (offset, len, kind) per item, checking coverage and one range per
/// damaged region.
fn layout(items: impl Iterator<Item = ReadItem>, len: u64) -> Vec<(u64, usize, Kind)> {
    let mut at = FILE_HEADER_LEN as u64;
    let mut out = Vec::new();
    let mut last_damage = false;
    for item in items {
        let (offset, n, kind) = match &item {
            ReadItem::Frame { offset, len, .. } => (*offset, *len, Kind::Frame),
            ReadItem::Skipped { offset, len, error } if is_damage(error) => {
                (*offset, *len, Kind::Damage)
            }
            ReadItem::Skipped { offset, len, .. } => (*offset, *len, Kind::Unreadable),
        };
        let damage = kind == Kind::Damage;
        assert_eq!(offset, at, "items are contiguous");
        assert!(n > 0, "every item makes progress");
        assert!(!(damage && last_damage), "a damaged region is one range");
        last_damage = damage;
        at += n as u64;
        out.push((offset, n, kind));
    }
    assert_eq!(at, len, "every byte is accounted for");
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&piece, recipe)) = data.split_first() else {
        return;
    };
    let r = cook(recipe);
    let len = r.bytes.len() as u64;

    let mut reader = store::body(&r.bytes);
    let whole = layout(reader.by_ref(), len);
    assert!(
        reader.work() <= wire::MAX_WORK_PER_BYTE * len + 64,
        "work {} for {len}",
        reader.work()
    );
    let in_raw = |at: u64| r.raw.iter().any(|&(from, to)| from <= at && at < to);
    for &(at, n) in &r.planted {
        // Unless raw bytes before it hold an intact envelope spanning it
        // (the fuzzer can solve a CRC): then that is the frame there.
        let found = whole.contains(&(at, n, Kind::Frame))
            || whole.iter().any(|&(o, m, kind)| {
                kind != Kind::Damage && in_raw(o) && o < at && at < o + m as u64
            });
        assert!(found, "planted frame at {at} found");
    }
    for &(at, n, kind) in &whole {
        let planted = r.planted.contains(&(at, n));
        assert!(
            kind != Kind::Frame || planted || in_raw(at),
            "frame at {at} was planted or in raw bytes"
        );
    }

    let mut stream = FrameStream::new(FILE_HEADER_LEN as u64);
    let mut items = Vec::new();
    for chunk in r.bytes[FILE_HEADER_LEN..].chunks(usize::from(piece) + 1) {
        stream.push(chunk);
        items.extend(stream.by_ref());
    }
    stream.finish();
    items.extend(stream.by_ref());
    let pieces = layout(items.into_iter(), len);
    if pieces != whole {
        // WIRE.md 2.5.1: only where an intact envelope (raw bytes, a solved
        // CRC) holds a whole good frame, which pieces found first.
        let nested = whole.iter().any(|&(o, m, kind)| {
            kind != Kind::Damage
                && pieces.iter().any(|&(p, n, k)| {
                    k != Kind::Damage && o < p && p + n as u64 <= o + m as u64
                })
        });
        assert!(nested, "pieces read like the whole");
    }
    assert!(
        stream.work() <= 2 * wire::MAX_WORK_PER_BYTE * len + 64,
        "stream work {}",
        stream.work()
    );

    if let store::Scan::Segment { keep, .. } = store::scan(&r.bytes) {
        let last = r.planted.last().map_or(0, |&(at, n)| at + n as u64);
        assert!(
            keep >= last && keep <= len,
            "scan keeps every planted frame"
        );
    }
});
