//! The store directory's file operations: listing a scheme's files in key
//! order, reading, moving a damaged file aside, deleting, syncing the
//! directory, applying retention, and the atomically replaced cursor file.
//! Decisions are [`crate::policy`]'s; this module only carries them out.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use wire::FILE_HEADER_LEN;

use crate::error::{Op, StoreError, on};
use crate::name::{Naming, corrupt_path};
use crate::policy::{Held, Retain, expired};

/// Creates `dir` and its parents if needed.
pub fn create_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(on(Op::Create, dir))
}

/// Makes `dir`'s entries durable: a file synced into a directory that was
/// not can vanish with a power loss.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    if crate::faults::due(crate::faults::FaultOp::SyncDir, dir) {
        return Err(on(Op::Sync, dir)(std::io::Error::from_raw_os_error(5)));
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(on(Op::Sync, dir))
}

/// The files of `naming` in `dir` with their keys, in key order; none when
/// `dir` does not exist. Other files are ignored.
pub fn list<N: Naming>(dir: &Path, naming: &N) -> Result<Vec<(N::Key, PathBuf)>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(on(Op::List, dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(on(Op::List, dir))?;
        let name = entry.file_name();
        if let Some(key) = name.to_str().and_then(|n| naming.parse(n)) {
            files.push((key, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// The whole of the file at `path`.
pub fn read(path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(on(Op::Read, path))
}

/// Up to `len` bytes of the file at `path` from `offset`.
pub fn read_at(path: &Path, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
    let mut file = File::open(path).map_err(on(Op::Read, path))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(on(Op::Read, path))?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 24));
    file.take(len)
        .read_to_end(&mut bytes)
        .map_err(on(Op::Read, path))?;
    Ok(bytes)
}

/// The first bytes of a file, enough for its header.
pub(crate) fn read_header(path: &Path) -> Result<Vec<u8>, StoreError> {
    read_at(path, 0, FILE_HEADER_LEN as u64)
}

/// Renames the file at `path` to `NAME.corrupt` (or `NAME.corrupt.N` if
/// that exists): out of the writer's way, never deleted. Returns where it
/// went.
pub fn move_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let to = corrupt_path(path, Path::exists);
    std::fs::rename(path, &to).map_err(on(Op::Rename, path))?;
    Ok(to)
}

/// Deletes the file at `path`; one already gone is no error.
pub fn remove(path: &Path) -> Result<(), StoreError> {
    if crate::faults::due(crate::faults::FaultOp::Delete, path) {
        return Err(on(Op::Delete, path)(
            std::io::ErrorKind::PermissionDenied.into(),
        ));
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(on(Op::Delete, path)(e)),
    }
}

/// A file deleted by retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// Where it was.
    pub path: PathBuf,
    /// Its size.
    pub len: u64,
}

/// What [`retain`] did: files deleted, and files it could not delete
/// (kept; the writer goes on).
#[derive(Debug, Default)]
pub struct Retained {
    /// Deleted, oldest first.
    pub deleted: Vec<Deleted>,
    /// Failed deletions.
    pub failed: Vec<StoreError>,
    /// The directory sync after the deletions, if it failed: the deletions
    /// happened but may not survive a power loss.
    pub unsynced: Option<StoreError>,
}

/// Applies retention to the files of `naming` in `dir`: the finished ones
/// (every file but `active`, the file being written, or all when there is
/// none; one named after `active` too, such as an earlier run's when the
/// clock went back) are judged by [`expired`] with the active file counted
/// at `active_len`, their idle time taken from their modification time
/// against `now`. Syncs the directory when anything was deleted (a failed
/// sync is reported in [`Retained::unsynced`], beside what was deleted).
/// Without bounds nothing is listed.
pub fn retain<N: Naming>(
    dir: &Path,
    naming: &N,
    active: Option<N::Key>,
    active_len: u64,
    keep: Retain,
    now: SystemTime,
) -> Result<Retained, StoreError> {
    let mut retained = Retained::default();
    if keep == Retain::default() {
        return Ok(retained);
    }
    let mut finished = Vec::new();
    for (key, path) in list(dir, naming)? {
        if active == Some(key) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let idle = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or(Duration::ZERO);
        finished.push((
            path,
            Held {
                len: meta.len(),
                idle,
            },
        ));
    }
    let held: Vec<Held> = finished.iter().map(|(_, h)| *h).collect();
    let n = expired(&held, active_len, keep);
    for (path, held) in finished.into_iter().take(n) {
        match std::fs::remove_file(&path) {
            Ok(()) => retained.deleted.push(Deleted {
                path,
                len: held.len,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => retained.failed.push(on(Op::Delete, &path)(e)),
        }
    }
    if !retained.deleted.is_empty() {
        retained.unsynced = sync_dir(dir).err();
    }
    Ok(retained)
}

/// A small file replaced atomically (written beside, then renamed over):
/// a reader sees the old contents or the new, never a mix. The spool's
/// "acknowledged up to" point is one; what the text means is the caller's.
#[derive(Debug, Clone)]
pub struct CursorFile {
    path: PathBuf,
    tmp: PathBuf,
}

impl CursorFile {
    /// The cursor file `name` in `dir` (its temporary is `name.tmp`).
    pub fn new(dir: &Path, name: &str) -> CursorFile {
        CursorFile {
            path: dir.join(name),
            tmp: dir.join(format!("{name}.tmp")),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The contents; `None` when there is no cursor yet.
    pub fn load(&self) -> Result<Option<String>, StoreError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(on(Op::Read, &self.path)(e)),
        }
    }

    /// The contents as bytes; `None` when there is no file yet.
    pub fn load_bytes(&self) -> Result<Option<Vec<u8>>, StoreError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(on(Op::Read, &self.path)(e)),
        }
    }

    /// Replaces the contents with `bytes`, durably: the temporary is
    /// fsynced before the rename and the directory after it, so even a
    /// power loss leaves the old contents or the new (the alerter's
    /// checkpoint).
    pub fn store_synced(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&self.tmp)?;
            std::io::Write::write_all(&mut f, bytes)?;
            f.sync_all()
        };
        write().map_err(on(Op::Write, &self.tmp))?;
        std::fs::rename(&self.tmp, &self.path).map_err(on(Op::Rename, &self.path))?;
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
            _ => sync_dir(Path::new(".")),
        }
    }

    /// Replaces the contents with `text`. Survives a process crash (the
    /// rename is atomic); not synced, so a power loss may bring back an
    /// older cursor, which a cursor's reader must tolerate.
    pub fn store(&self, text: &str) -> Result<(), StoreError> {
        std::fs::write(&self.tmp, text)
            .and_then(|()| std::fs::rename(&self.tmp, &self.path))
            .map_err(on(Op::Write, &self.path))
    }
}
