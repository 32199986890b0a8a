//! Reads back the wire files (`*.sonde`) a test's agent or gateway wrote:
//! every frame and every damaged region, file by file in name order.

use std::path::{Path, PathBuf};

use wire::{FrameReader, ReadItem};

/// Every item of every `*.sonde` file under `dir`, sorted by file name,
/// with the file it came from; offsets count from the start of the file.
/// A missing directory or unreadable file reads as empty.
pub fn items(dir: &Path) -> Vec<(PathBuf, ReadItem)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "sonde"));
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let body = bytes.get(wire::FILE_HEADER_LEN..).unwrap_or_default();
        for item in FrameReader::new(body, wire::FILE_HEADER_LEN as u64).at_eof() {
            out.push((file.clone(), item));
        }
    }
    out
}
