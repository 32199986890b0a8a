//! Helpers shared by the store's tests: frames, and wire files built from them.

use std::path::{Path, PathBuf};

use wire::{ErrorClass, FrameBuilder, FrameHeader, Record, file_header};

/// A one-record frame of `agent-1`, session 7, numbered `seq`: a probe
/// whose connect timed out (what the record says is no concern of the store).
pub fn frame(seq: u64) -> Vec<u8> {
    let mut b = FrameBuilder::new(FrameHeader {
        agent: "agent-1".into(),
        session: 7,
        seq,
    });
    b.push(
        "api",
        Record::down(1_767_225_600_000 + seq, 3001, ErrorClass::ConnectTimeout)
            .with_dn(1)
            .with_cn(3000),
    );
    b.finish().encode().unwrap()
}

/// A wire file's bytes holding frames `seqs`, and the end offset of each frame.
pub fn wire_file(seqs: std::ops::Range<u64>) -> (Vec<u8>, Vec<u64>) {
    let mut bytes = file_header().to_vec();
    let mut ends = Vec::new();
    for seq in seqs {
        bytes.extend_from_slice(&frame(seq));
        ends.push(bytes.len() as u64);
    }
    (bytes, ends)
}

/// Writes a wire file `name` in `dir` holding frames `seqs`; returns its
/// path and the end offset of each frame.
pub fn write_file(dir: &Path, name: &str, seqs: std::ops::Range<u64>) -> (PathBuf, Vec<u64>) {
    let path = dir.join(name);
    let (bytes, ends) = wire_file(seqs);
    std::fs::write(&path, bytes).unwrap();
    (path, ends)
}

/// Appends `bytes` to the file at `path`.
pub fn append(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// The seq of every intact frame in the file at `path`, asserting that it
/// is a clean wire file.
pub fn seqs(path: &Path) -> Vec<u64> {
    let bytes = std::fs::read(path).unwrap();
    wire::check_file_header(&bytes).unwrap();
    store::body(&bytes)
        .map(|item| match item {
            wire::ReadItem::Frame { frame, .. } => frame.header.seq,
            other => panic!("{other:?}"),
        })
        .collect()
}
