//! Recovery of a store directory at open: every file of a scheme is
//! checked, one with a bad file header is moved aside (never deleted), and
//! the tail — the newest file with a good header, the one a crash may have
//! cut — has a torn or damaged tail truncated and synced. Damage followed
//! by good frames stays (cutting it would lose them; readers resync past
//! it). What the frames mean is the caller's business.

use std::io::Write;
use std::path::{Path, PathBuf};

use wire::{FILE_HEADER_LEN, FileError, file_header};

use crate::dir::{create_dir, move_aside, read, read_header};
use crate::error::{Op, StoreError, on};
use crate::name::Naming;
use crate::scan::{LastFrame, Scan, scan};

/// Which files recovery reads whole (the rest: their header only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Every file (a spool, whose every frame may still be sent).
    All,
    /// The tail, and older files back to the first that has a frame (to
    /// find the last frame written): a log whose older files are finished.
    Tail,
    /// The tail only; older files' headers (checked as always): a caller
    /// that reads them itself one at a time, holding one in memory, not all.
    Headers,
}

/// A file recovery kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<K> {
    /// Its key.
    pub key: K,
    /// Where it is.
    pub path: PathBuf,
    /// Its length after repair, at least the file header.
    pub len: u64,
    /// Its last intact frame, if it was read whole and has one.
    pub last: Option<LastFrame>,
    /// Its contents after repair, if it was read whole.
    pub bytes: Option<Vec<u8>>,
}

/// What recovery found and repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered<K> {
    /// The files kept, oldest first; the last is the tail.
    pub files: Vec<Found<K>>,
    /// Torn or damaged tails cut from the tail file (0 or 1).
    pub torn_tails: u64,
    /// Bytes those tails held.
    pub truncated_bytes: u64,
    /// Damaged regions left in place in the tail file, good frames after them.
    pub damaged_regions: u64,
    /// Files with a bad header, renamed to `*.corrupt`, newest first.
    pub moved_aside: Vec<Moved>,
}

/// A file with a bad header, moved out of the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// Where it was.
    pub from: PathBuf,
    /// Where it is now.
    pub to: PathBuf,
    /// What was wrong with its header.
    pub reason: FileError,
}

impl<K> Recovered<K> {
    /// The last intact frame on disk: the newest file's that has one.
    pub fn last_frame(&self) -> Option<&LastFrame> {
        self.files.iter().rev().find_map(|f| f.last.as_ref())
    }
}

/// Recovers the files of `naming` in `dir` (created if needed), reading
/// them as `depth` says. See the module docs.
pub fn recover<N: Naming>(
    dir: &Path,
    naming: &N,
    depth: Depth,
) -> Result<Recovered<N::Key>, StoreError> {
    create_dir(dir)?;
    let mut listed = crate::dir::list(dir, naming)?;
    let mut r = Recovered {
        files: Vec::new(),
        torn_tails: 0,
        truncated_bytes: 0,
        damaged_regions: 0,
        moved_aside: Vec::new(),
    };
    let mut have_tail = false;
    let mut have_last = false;
    while let Some((key, path)) = listed.pop() {
        let whole = !have_tail || depth == Depth::All || (depth == Depth::Tail && !have_last);
        let mut bytes = if whole {
            read(&path)?
        } else {
            read_header(&path)?
        };
        let (keep, len, last, damaged) = match scan(&bytes) {
            Scan::Segment {
                keep,
                len,
                last,
                damaged,
            } => (keep, len, last, damaged),
            Scan::BadHeader(reason) => {
                let to = move_aside(&path)?;
                r.moved_aside.push(Moved {
                    from: path,
                    to,
                    reason,
                });
                continue;
            }
        };
        let mut file_len = len;
        if !have_tail {
            have_tail = true;
            if keep < len || keep == 0 {
                r.torn_tails += u64::from(len > keep);
                r.truncated_bytes += len - keep;
                truncate(&path, keep)?;
                bytes.truncate(keep as usize);
                if keep == 0 {
                    bytes = file_header().to_vec();
                }
            }
            r.damaged_regions = damaged;
            file_len = keep.max(FILE_HEADER_LEN as u64);
        } else if !whole {
            file_len = std::fs::metadata(&path).map_err(on(Op::Read, &path))?.len();
        }
        have_last |= last.is_some();
        r.files.push(Found {
            key,
            path,
            len: file_len,
            last,
            bytes: whole.then_some(bytes),
        });
    }
    r.files.reverse();
    Ok(r)
}

/// Cuts the file at `path` to `keep` bytes (re-writing the file header
/// when `keep` is 0, a crash right after creation) and syncs it.
fn truncate(path: &Path, keep: u64) -> Result<(), StoreError> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(on(Op::Open, path))?;
    file.set_len(keep).map_err(on(Op::Truncate, path))?;
    if keep == 0 {
        file.write_all(&file_header())
            .map_err(on(Op::Truncate, path))?;
    }
    file.sync_all().map_err(on(Op::Sync, path))
}
