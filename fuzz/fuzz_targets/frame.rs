//! Fuzzes frames. The first byte picks a mode: even, the rest is wrapped as
//! the body of a frame with a correct envelope (so the fuzzer reaches the
//! body decoder past the CRC); odd, the rest is a raw stream for the
//! resyncing reader. Never a panic; accepted frames round-trip; the reader
//! accounts for every byte exactly once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::{FRAME_MARKER, FRAME_VERSION, Frame, FrameReader, ReadItem};

fn check_reader(data: &[u8]) {
    let mut at = 0u64;
    for item in FrameReader::new(data, 0).at_eof() {
        let (offset, len) = match item {
            ReadItem::Frame { offset, len, .. } | ReadItem::Skipped { offset, len, .. } => {
                (offset, len)
            }
        };
        assert_eq!(offset, at, "items are contiguous");
        assert!(len > 0, "every item makes progress");
        at += len as u64;
    }
    assert_eq!(at, data.len() as u64, "every byte is accounted for");

    let mut streaming = FrameReader::new(data, 0);
    for _ in streaming.by_ref() {}
    assert!(streaming.consumed() <= data.len());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        let mut frame = FRAME_MARKER.to_vec();
        frame.push(FRAME_VERSION);
        frame.extend_from_slice(&(rest.len() as u32).to_le_bytes());
        frame.extend_from_slice(rest);
        let crc = crc(&frame);
        frame.extend_from_slice(&crc.to_le_bytes());
        if let Ok((decoded, len)) = Frame::decode(&frame) {
            assert_eq!(len, frame.len());
            let bytes = decoded.encode().expect("a decoded frame re-encodes");
            let (again, _) = Frame::decode(&bytes).expect("a re-encoded frame decodes");
            assert_eq!(again.header, decoded.header);
            assert!(again.records().eq(decoded.records()));
        }
        check_reader(&frame);
    } else {
        check_reader(rest);
    }
});

/// CRC-32/ISO-HDLC, bit by bit (the fuzz crate keeps its dependencies to
/// what the targets need; the wire crate uses crc32fast).
fn crc(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
