//! Resync: damage is skipped in work linear in its length (counted, not
//! timed), reported once as one range, the same whether the bytes come at
//! once or in pieces, and agrees with the spec's literal reading (2.5:
//! the next marker whose envelope checks out) on where good frames are.

use proptest::prelude::*;
use wire::{
    FRAME_MARKER, Frame, FrameError, FrameHeader, FrameReader, FrameStream, MAX_BODY_LEN,
    MAX_WORK_PER_BYTE, ReadItem, Record,
};

/// The crafted region of the issue: a marker, version 1 and a length of
/// exactly 4 MiB, repeated.
const CRAFTED: [u8; 7] = [0xc1, 0x53, 0x01, 0x00, 0x00, 0x40, 0x00];

fn frame_bytes(seq: u64, records: usize) -> Vec<u8> {
    let mut b = wire::FrameBuilder::new(FrameHeader {
        agent: "a".into(),
        session: 1,
        seq,
    });
    for i in 0..records {
        b.push(
            "c",
            Record::up(1_767_225_600_000 + i as u64, 5).with_sc(200),
        );
    }
    b.finish().encode().expect("small frames encode")
}

fn crafted(len: usize) -> Vec<u8> {
    CRAFTED.iter().copied().cycle().take(len).collect()
}

/// Whether a skipped item is damage (not one whole unreadable frame).
fn is_damage(error: &FrameError) -> bool {
    !matches!(
        error,
        FrameError::Body(_) | FrameError::UnsupportedVersion { .. }
    )
}

/// (offset, len, is a good frame or damage) of every item, checking that
/// items are contiguous, cover `len` bytes and that two damage ranges
/// never follow each other (one region, one range).
fn layout(items: impl Iterator<Item = ReadItem>, base: u64, len: usize) -> Vec<(u64, usize, bool)> {
    let mut at = base;
    let mut out: Vec<(u64, usize, bool)> = Vec::new();
    let mut last_damage = false;
    for item in items {
        let (offset, n, damage) = match &item {
            ReadItem::Frame { offset, len, .. } => (*offset, *len, false),
            ReadItem::Skipped { offset, len, error } => (*offset, *len, is_damage(error)),
        };
        assert_eq!(offset, at, "items are contiguous: {item:?}");
        assert!(n > 0, "every item makes progress");
        assert!(
            !(damage && last_damage),
            "a region is one range: {out:?} then {item:?}"
        );
        last_damage = damage;
        at += n as u64;
        out.push((offset, n, damage));
    }
    assert_eq!(at, base + len as u64, "every byte is accounted for");
    out
}

#[test]
fn a_region_of_crafted_candidates_costs_linear_work_and_is_one_range() {
    let region = crafted(8 << 20);
    let good = frame_bytes(0, 3);
    let mut bytes = region.clone();
    bytes.extend_from_slice(&good);

    let mut reader = FrameReader::new(&bytes, 8).at_eof();
    let items = layout(reader.by_ref(), 8, bytes.len());
    assert_eq!(
        items,
        vec![
            (8, region.len(), true),
            (8 + region.len() as u64, good.len(), false)
        ]
    );
    // Hashing each candidate's claimed 4 MiB would be about 10^12 bytes.
    let work = reader.work();
    assert!(
        work <= MAX_WORK_PER_BYTE * bytes.len() as u64,
        "work {work} for {} bytes",
        bytes.len()
    );
    println!(
        "crafted 8 MiB region: work {work} for {} bytes",
        bytes.len()
    );
}

#[test]
fn dense_candidates_with_every_length_cost_linear_work() {
    // Candidates every 8 bytes whose lengths vary (so no CRC operator can
    // be reused), some claiming past the end.
    let mut bytes = Vec::new();
    let mut x = 0x9e37_79b9u32;
    while bytes.len() < 4 << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let len = x % (MAX_BODY_LEN + 1);
        bytes.extend_from_slice(&FRAME_MARKER);
        bytes.push(1);
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.push((x >> 8) as u8);
    }
    let mut reader = FrameReader::new(&bytes, 0).at_eof();
    let items = layout(reader.by_ref(), 0, bytes.len());
    assert_eq!(items.len(), 1);
    assert!(
        reader.work() <= MAX_WORK_PER_BYTE * bytes.len() as u64,
        "work {}",
        reader.work()
    );
}

/// Good frames each followed by a bad claim of 4 MiB: the claim at a
/// frame's start, or inside a short damaged region, must not be hashed
/// anew each time (each would cost 4 MiB).
fn good_frames_between_long_claims(junk: &[u8]) -> (Vec<u8>, usize) {
    let good = frame_bytes(0, 0);
    let mut bytes = Vec::new();
    let mut n = 0;
    while bytes.len() < (4 << 20) + (256 << 10) {
        bytes.extend_from_slice(&good);
        bytes.extend_from_slice(junk);
        bytes.extend_from_slice(&CRAFTED);
        n += 1;
    }
    bytes.extend_from_slice(&good);
    (bytes, n + 1)
}

#[test]
fn long_claims_after_good_frames_cost_linear_work() {
    // The claim at a frame's start, then the claim one byte into damage.
    for junk in [&[][..], &[0u8][..]] {
        let (bytes, frames) = good_frames_between_long_claims(junk);
        let mut reader = FrameReader::new(&bytes, 0).at_eof();
        let items = layout(reader.by_ref(), 0, bytes.len());
        let good = items.iter().filter(|i| !i.2).count();
        assert_eq!(good, frames, "junk {junk:?}");
        assert_eq!(items.len(), 2 * frames - 1, "junk {junk:?}");
        let work = reader.work();
        assert!(
            work <= MAX_WORK_PER_BYTE * bytes.len() as u64,
            "junk {junk:?}: work {work} for {} bytes",
            bytes.len()
        );

        let mut stream = FrameStream::new(0);
        let mut streamed = Vec::new();
        for piece in bytes.chunks(64 << 10) {
            stream.push(piece);
            streamed.extend(stream.by_ref());
        }
        stream.finish();
        streamed.extend(stream.by_ref());
        assert_eq!(layout(streamed.into_iter(), 0, bytes.len()), items);
        assert!(
            stream.work() <= 2 * MAX_WORK_PER_BYTE * bytes.len() as u64,
            "junk {junk:?}: stream work {} for {} bytes",
            stream.work(),
            bytes.len()
        );
    }
}

#[test]
fn zeros_in_64_kib_pieces_are_one_range() {
    let good = frame_bytes(0, 1);
    let mut bytes = good.clone();
    bytes.extend(std::iter::repeat_n(0u8, 16 << 20));
    bytes.extend_from_slice(&good);
    bytes.extend(std::iter::repeat_n(0u8, 100_000));

    let mut stream = FrameStream::new(8);
    let mut items = Vec::new();
    let mut most_held = 0;
    for piece in bytes.chunks(64 << 10) {
        stream.push(piece);
        items.extend(stream.by_ref());
        most_held = most_held.max(stream.buffered());
    }
    stream.finish();
    items.extend(stream.by_ref());
    let layout = layout(items.into_iter(), 8, bytes.len());
    let damage: Vec<_> = layout.iter().filter(|i| i.2).collect();
    assert_eq!(damage.len(), 2, "{layout:?}");
    assert_eq!(damage[0].1, 16 << 20);
    assert_eq!(damage[1].1, 100_000);
    assert!(
        most_held <= 2 * (64 << 10),
        "held {most_held} bytes of zeros"
    );
}

#[test]
fn crafted_region_in_pieces_is_one_range_and_linear() {
    let mut bytes = frame_bytes(0, 2);
    bytes.extend(crafted(6 << 20));
    let tail = frame_bytes(1, 2);
    bytes.extend_from_slice(&tail);
    let mut stream = FrameStream::new(0);
    let mut items = Vec::new();
    let mut most_held = 0;
    for piece in bytes.chunks(64 << 10) {
        stream.push(piece);
        items.extend(stream.by_ref());
        most_held = most_held.max(stream.buffered());
    }
    stream.finish();
    items.extend(stream.by_ref());
    let layout = layout(items.into_iter(), 0, bytes.len());
    assert_eq!(layout.len(), 3, "{layout:?}");
    assert!(layout[1].2);
    assert!(
        stream.work() <= MAX_WORK_PER_BYTE * bytes.len() as u64,
        "work {}",
        stream.work()
    );
    // A pending candidate needs its whole claimed frame: 4 MiB and change,
    // held with up to a quarter dead and a quarter spare: under 1.57 x
    // (4 MiB + 64 KiB) at worst; README states 1.75 x.
    println!("crafted region in 64 KiB pieces: at most {most_held} bytes held");
    assert!(
        most_held <= 7 * (MAX_BODY_LEN as usize + (64 << 10)) / 4,
        "held {most_held}"
    );
}

/// The spec read literally (2.5), quadratic: at a position, the envelope;
/// on damage, the first later position whose envelope checks out.
fn reference_good_frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let envelope = |at: usize| -> Option<usize> {
        let rest = &bytes[at..];
        if rest.len() < 11 || rest[..2] != FRAME_MARKER {
            return None;
        }
        let body = u32::from_le_bytes(rest[3..7].try_into().ok()?);
        if body > MAX_BODY_LEN {
            return None;
        }
        let end = 7 + body as usize;
        let stored = u32::from_le_bytes(rest.get(end..end + 4)?.try_into().ok()?);
        (crc32fast::hash(&rest[..end]) == stored).then_some(end + 4)
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match envelope(at) {
            Some(len) => {
                if Frame::decode(&bytes[at..]).is_ok() {
                    out.push((at, len));
                }
                at += len;
            }
            None => match (at + 1..bytes.len()).find(|&p| envelope(p).is_some()) {
                Some(p) => at = p,
                None => break,
            },
        }
    }
    out
}

/// Frames, garbage, planted candidates (some with a correct CRC over
/// garbage), cut anywhere.
fn any_stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        (0u64..50, 0usize..4).prop_map(|(seq, n)| frame_bytes(seq, n)),
        proptest::collection::vec(any::<u8>(), 0..40),
        (0u32..60, any::<bool>()).prop_map(|(len, crc_ok)| {
            let mut c = FRAME_MARKER.to_vec();
            c.push(1);
            c.extend_from_slice(&len.to_le_bytes());
            c.extend(std::iter::repeat_n(0xc1, (len as usize).min(20)));
            if crc_ok && len <= 20 {
                let crc = crc32fast::hash(&c);
                c.extend_from_slice(&crc.to_le_bytes());
            }
            c
        }),
        Just(CRAFTED.to_vec()),
    ];
    (
        proptest::collection::vec(piece, 0..12),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(pieces, cut)| {
            let mut bytes = pieces.concat();
            let keep = bytes.len() - cut.index(bytes.len() / 8 + 1);
            bytes.truncate(keep);
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Pieces or whole, the same ranges; the good frames are the spec's.
    #[test]
    fn pieces_read_like_the_whole_and_like_the_spec(
        bytes in any_stream(),
        cuts in proptest::collection::vec(1usize..64, 1..20),
    ) {
        let whole: Vec<ReadItem> = FrameReader::new(&bytes, 3).at_eof().collect();
        layout(whole.iter().cloned(), 3, bytes.len());

        let mut stream = FrameStream::new(3);
        let mut pieces = Vec::new();
        let mut rest = bytes.as_slice();
        for n in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at((*n).min(rest.len()));
            stream.push(piece);
            pieces.extend(stream.by_ref());
            rest = tail;
        }
        stream.finish();
        pieces.extend(stream.by_ref());
        // The same items; only the reason may differ: a frame still short
        // of its end when a good frame appears is torn (2.5, 3.), whole it
        // is a checksum mismatch.
        let kinds = |items: &[ReadItem]| -> Vec<(u64, usize, Option<Frame>)> {
            items
                .iter()
                .map(|i| match i {
                    ReadItem::Frame { offset, len, frame } => (*offset, *len, Some(frame.clone())),
                    ReadItem::Skipped { offset, len, .. } => (*offset, *len, None),
                })
                .collect()
        };
        prop_assert_eq!(kinds(&pieces), kinds(&whole));

        let good: Vec<(usize, usize)> = whole
            .iter()
            .filter_map(|i| match i {
                ReadItem::Frame { offset, len, .. } => Some((*offset as usize - 3, *len)),
                ReadItem::Skipped { .. } => None,
            })
            .collect();
        prop_assert_eq!(good, reference_good_frames(&bytes));
    }
}

#[test]
fn a_long_claim_in_damage_does_not_withhold_the_frames_after_it() {
    // Followed, not finished: the claim would wait 4 MiB for its end.
    let mut bytes = vec![0u8];
    bytes.extend_from_slice(&CRAFTED);
    let damage = bytes.len();
    for seq in 0..1000 {
        bytes.extend_from_slice(&frame_bytes(seq, 1));
    }
    for piece_len in [1, 7, 4096, bytes.len()] {
        let mut stream = FrameStream::new(0);
        let mut items = Vec::new();
        for piece in bytes.chunks(piece_len) {
            stream.push(piece);
            items.extend(stream.by_ref());
        }
        let layout = layout(items.into_iter(), 0, bytes.len());
        assert_eq!(layout.len(), 1001, "pieces of {piece_len}");
        assert_eq!(layout[0], (0, damage, true), "pieces of {piece_len}");
        assert!(
            stream.work() <= 2 * MAX_WORK_PER_BYTE * bytes.len() as u64,
            "pieces of {piece_len}: work {}",
            stream.work()
        );
    }
}
