//! Replays the committed cargo-fuzz corpus (fuzz/corpus/*) on stable, as a
//! regression test: the same checks as the fuzz targets, without libFuzzer.

use std::path::Path;

use wire::{FRAME_MARKER, FRAME_VERSION, Frame, FrameReader, FrameStream, ReadItem, Record};

fn inputs(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let inputs: Vec<Vec<u8>> = entries
        .map(|e| std::fs::read(e.expect("dir entry").path()).expect("corpus file"))
        .collect();
    assert!(!inputs.is_empty(), "{} is empty", dir.display());
    inputs
}

#[test]
fn record_corpus() {
    for data in inputs("record") {
        if let Ok(record) = Record::decode(&data) {
            assert_eq!(Record::decode(&record.encode()), Ok(record));
        }
        let _ = Record::decode_prefix(&data);
        let _ = rmp_serde::from_slice::<Record>(&data);
    }
}

fn check_reader(data: &[u8]) {
    let mut at = 0u64;
    for item in FrameReader::new(data, 0).at_eof() {
        let (ReadItem::Frame { offset, len, .. } | ReadItem::Skipped { offset, len, .. }) = item;
        assert_eq!(offset, at);
        assert!(len > 0);
        at += len as u64;
    }
    assert_eq!(at, data.len() as u64);
}

#[test]
fn frame_corpus() {
    for data in inputs("frame") {
        let Some((&mode, rest)) = data.split_first() else {
            continue;
        };
        if mode % 2 == 0 {
            let mut frame = FRAME_MARKER.to_vec();
            frame.push(FRAME_VERSION);
            frame.extend_from_slice(&(rest.len() as u32).to_le_bytes());
            frame.extend_from_slice(rest);
            let crc = crc32fast::hash(&frame);
            frame.extend_from_slice(&crc.to_le_bytes());
            if let Ok((decoded, _)) = Frame::decode(&frame) {
                let bytes = decoded.encode().expect("re-encodes");
                let (again, _) = Frame::decode(&bytes).expect("decodes again");
                assert!(again.records().eq(decoded.records()));
            }
            check_reader(&frame);
        } else {
            check_reader(rest);
        }
    }
}

/// The `file` target's inputs are recipes; taken as raw bytes they are
/// still damaged streams: read in pieces, they read like the whole, in
/// linear work.
#[test]
fn file_corpus() {
    for data in inputs("file") {
        check_reader(&data);
        let ranges = |items: Vec<ReadItem>| -> Vec<(u64, usize, bool)> {
            items
                .into_iter()
                .map(|i| match i {
                    ReadItem::Frame { offset, len, .. } => (offset, len, true),
                    ReadItem::Skipped { offset, len, .. } => (offset, len, false),
                })
                .collect()
        };
        let mut reader = FrameReader::new(&data, 0).at_eof();
        let whole = ranges(reader.by_ref().collect());
        assert!(reader.work() <= wire::MAX_WORK_PER_BYTE * data.len() as u64 + 64);
        let piece = usize::from(data.first().copied().unwrap_or(0)) + 1;
        let mut stream = FrameStream::new(0);
        let mut items = Vec::new();
        for chunk in data.chunks(piece) {
            stream.push(chunk);
            items.extend(stream.by_ref());
        }
        stream.finish();
        items.extend(stream.by_ref());
        assert_eq!(ranges(items), whole);
    }
}
