//! Size and speed of the wire format: bytes per record standalone and in a
//! frame, and encode/decode throughput on one core. Prints figures; run with
//! `cargo bench -p sonde-wire --bench size`.
//!
//! Targets (issue 4): a typical HTTPS probe standalone in <= 20 bytes; <= 14
//! bytes per record amortised in a frame of 100 records of one check probed
//! every 15 s; >= 5 million records/s decoded.

use std::hint::black_box;
use std::time::{Duration, Instant};

use wire::{Frame, FrameBuilder, FrameHeader, FrameReader, FrameStream, ReadItem, Record};

const NOW_MS: u64 = 1_767_225_600_000;

fn typical(t_ms: u64) -> Record {
    Record::up(t_ms, 250)
        .with_sc(200)
        .with_phases(12, 20, 25, 80)
}

/// 100 records of one check probed every 15 s, with the few milliseconds of
/// start jitter and response-time noise a real schedule has.
fn frame_of_100(seq: u64) -> Frame {
    let mut builder = FrameBuilder::new(FrameHeader {
        agent: "eu-west-1a".into(),
        session: NOW_MS,
        seq,
    });
    let mut noise = 0x2545_f491_4f6c_dd1du64;
    for i in 0..100u64 {
        noise ^= noise << 13;
        noise ^= noise >> 7;
        noise ^= noise << 17;
        let record = Record {
            rt_ms: 240 + noise % 15,
            ..typical(NOW_MS + seq * 1_500_000 + i * 15_000 + noise % 5)
        };
        builder.push("api-health", record);
    }
    builder.finish()
}

/// Runs `f` (which handles `per_call` records) for about a second; returns
/// records per second.
fn rate(per_call: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..100 {
        f();
    }
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        for _ in 0..100 {
            f();
        }
        calls += 100;
    }
    (calls as f64 * per_call as f64) / start.elapsed().as_secs_f64()
}

fn main() {
    let record = typical(NOW_MS);
    let standalone = record.encode();
    println!(
        "standalone record (t now, rt 250, sc 200, up, dn 12, cn 20, tl 25, ft 80): {} bytes (target <= 20)",
        standalone.len()
    );
    let frame = frame_of_100(0);
    let bytes = match frame.encode() {
        Ok(bytes) => bytes,
        Err(e) => panic!("encode: {e}"),
    };
    println!(
        "frame of 100 records, one check, every 15 s: {} bytes, {:.2} bytes/record amortised incl. envelope and header (target <= 14)",
        bytes.len(),
        bytes.len() as f64 / 100.0
    );

    let mut out = Vec::with_capacity(64);
    let r = rate(1, || {
        out.clear();
        black_box(&record).encode_into(&mut out);
        black_box(&out);
    });
    println!("encode, standalone record: {:.2} M records/s", r / 1e6);
    let r = rate(1, || {
        black_box(Record::decode(black_box(&standalone)).ok());
    });
    println!("decode, standalone record: {:.2} M records/s", r / 1e6);

    let mut out = Vec::with_capacity(bytes.len());
    let r = rate(100, || {
        out.clear();
        black_box(black_box(&frame).encode_into(&mut out).ok());
    });
    println!("encode, frames of 100 records: {:.2} M records/s", r / 1e6);
    let r = rate(100, || {
        black_box(Frame::decode(black_box(&bytes)).ok());
    });
    println!("decode, frames of 100 records: {:.2} M records/s", r / 1e6);

    // A 10 000-frame stream through the resyncing reader, as `sonde decode`
    // and a gateway read it.
    let mut stream = Vec::new();
    for seq in 0..10_000 {
        if let Err(e) = frame_of_100(seq).encode_into(&mut stream) {
            panic!("encode: {e}");
        }
    }
    let start = Instant::now();
    let mut records = 0usize;
    for item in FrameReader::new(&stream, 0).at_eof() {
        if let ReadItem::Frame { frame, .. } = item {
            records += frame.record_count();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "decode, FrameReader over {} MB ({} records): {:.2} M records/s",
        stream.len() / 1_000_000,
        records,
        records as f64 / secs / 1e6
    );

    // Damage: 8 MiB of crafted candidates (each claims 4 MiB), and 8 MiB
    // of zeros, in 64 KiB pieces as `sonde decode` reads them.
    let crafted: Vec<u8> = [0xc1, 0x53, 0x01, 0x00, 0x00, 0x40, 0x00]
        .into_iter()
        .cycle()
        .take(8 << 20)
        .collect();
    // Good frames each followed by a 4 MiB claim: each claim at a frame's
    // start was once hashed in full.
    let empty = FrameBuilder::new(FrameHeader {
        agent: "a".into(),
        session: 1,
        seq: 0,
    })
    .finish()
    .encode()
    .unwrap_or_default();
    let between: Vec<u8> = empty
        .iter()
        .chain(&crafted[..7])
        .copied()
        .cycle()
        .take(8 << 20)
        .collect();
    for (what, damage) in [
        ("crafted candidates", crafted),
        ("zeros", vec![0u8; 8 << 20]),
        ("good frames between 4 MiB claims", between),
    ] {
        let start = Instant::now();
        let mut reader = FrameStream::new(0);
        let mut ranges = 0;
        for piece in damage.chunks(64 << 10) {
            reader.push(piece);
            ranges += reader.by_ref().count();
        }
        reader.finish();
        ranges += reader.by_ref().count();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "resync, 8 MiB of {what} in 64 KiB pieces: {:.0} MB/s, {:.2} bytes of work per byte, {ranges} items",
            damage.len() as f64 / secs / 1e6,
            reader.work() as f64 / damage.len() as f64,
        );
    }
}
