//! One wire file being appended to: created with its file header synced,
//! or reopened after recovery; appended to with one write a call (cut back
//! on failure, so it never holds part of a frame while running); synced,
//! reporting how many frames the sync made durable. A failed fsync or a
//! failed cut-back makes it unusable: later appends and syncs fail, so
//! nothing is counted durable that an earlier failed sync may have lost.
//! Knows nothing of names, rotation or when to sync (see [`crate::policy`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use wire::{FILE_HEADER_LEN, file_header};

use crate::error::{Op, StoreError, on};
use crate::faults::{FaultOp, due};

/// Why a segment refuses appends and syncs after a failure.
const UNUSABLE: &str = "unusable after a failed fsync or cut-back: finish it and write elsewhere";

/// An open wire file that frames are appended to.
#[derive(Debug)]
pub struct Segment {
    file: File,
    path: PathBuf,
    len: u64,
    /// Frames appended (including those found at open).
    frames: u64,
    /// Of those, the frames known to be on disk.
    durable: u64,
    /// The length at the last good sync (or at open): what is on disk.
    synced_len: u64,
    dirty: bool,
    /// A sync or a cut-back failed: what follows the last good sync may
    /// not be on disk (or a partial frame may be), so it takes no more.
    broken: bool,
}

impl Segment {
    /// Creates a new wire file at `path` holding only the file header,
    /// synced. A file whose header could not be written is removed, so no
    /// broken file is left for recovery. The directory entry is not synced
    /// (see [`crate::sync_dir`]).
    pub fn create(path: &Path) -> Result<Segment, StoreError> {
        let mut file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(path)
            .map_err(on(Op::Create, path))?;
        if let Err(e) = file
            .write_all(&file_header())
            .and_then(|()| file.sync_data())
        {
            let _ = std::fs::remove_file(path);
            return Err(on(Op::Create, path)(e));
        }
        Ok(Segment {
            file,
            path: path.to_owned(),
            len: FILE_HEADER_LEN as u64,
            frames: 0,
            durable: 0,
            synced_len: FILE_HEADER_LEN as u64,
            dirty: false,
            broken: false,
        })
    }

    /// Reopens for appending a file that recovery found `len` bytes long
    /// with `frames` frames, all taken as durable.
    pub fn open(path: &Path, len: u64, frames: u64) -> Result<Segment, StoreError> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(on(Op::Open, path))?;
        Ok(Segment {
            file,
            path: path.to_owned(),
            len,
            frames,
            durable: frames,
            synced_len: len,
            dirty: false,
            broken: false,
        })
    }

    /// Opens an existing file (or device) for appending as it is, at its
    /// current length, without writing or checking a header: a file kept
    /// for a person (a quarantine), or `/dev/full` in a writer's test to
    /// meet a full disk.
    pub fn open_raw(path: &Path) -> Result<Segment, StoreError> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(on(Op::Open, path))?;
        let len = file.metadata().map_err(on(Op::Open, path))?.len();
        Ok(Segment {
            file,
            path: path.to_owned(),
            len,
            frames: 0,
            durable: 0,
            synced_len: len,
            dirty: false,
            broken: false,
        })
    }

    /// Appends `bytes` (`frames` whole frames) with one write. On failure
    /// the file is cut back to its previous length and nothing is counted;
    /// if the cut-back fails too, the segment is unusable (a partial frame
    /// may follow, and the next append would land after it).
    pub fn append(&mut self, bytes: &[u8], frames: u64) -> Result<(), StoreError> {
        if self.broken {
            return Err(on(Op::Append, &self.path)(std::io::Error::other(UNUSABLE)));
        }
        if let Err(e) = self.write(bytes) {
            let cut = !due(FaultOp::CutBack, &self.path) && self.file.set_len(self.len).is_ok();
            // A device (/dev/full) cannot be cut, but may have taken nothing.
            let untouched = || self.file.metadata().is_ok_and(|m| m.len() == self.len);
            if !cut && !untouched() {
                self.broken = true;
            }
            return Err(on(Op::Append, &self.path)(e));
        }
        self.len += bytes.len() as u64;
        self.frames += frames;
        self.dirty = true;
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if due(FaultOp::Append, &self.path) {
            self.file.write_all(&bytes[..bytes.len() / 2])?;
            return Err(std::io::ErrorKind::StorageFull.into());
        }
        self.file.write_all(bytes)
    }

    /// Syncs the data written since the last sync, if any, and returns how
    /// many frames that made durable (the group commit of a durable
    /// acknowledgement). After a failure the frames written since the last
    /// good sync may never reach the disk (Linux reports a lost write-back
    /// once, so a later fsync may succeed without them): the segment is
    /// unusable from then on; write those frames again elsewhere.
    pub fn sync(&mut self) -> Result<u64, StoreError> {
        if self.broken {
            return Err(on(Op::Sync, &self.path)(std::io::Error::other(UNUSABLE)));
        }
        if self.dirty {
            let synced = if due(FaultOp::Sync, &self.path) {
                Err(std::io::Error::from_raw_os_error(5))
            } else {
                self.file.sync_data()
            };
            if let Err(e) = synced {
                self.broken = true;
                return Err(on(Op::Sync, &self.path)(e));
            }
            self.dirty = false;
        }
        self.synced_len = self.len;
        Ok(self.made_durable())
    }

    /// Finishes the file before it is left for the next: syncs data and
    /// metadata, and returns how many frames that made durable (as
    /// [`Segment::sync`]; an unusable segment fails).
    pub fn finish(&mut self) -> Result<u64, StoreError> {
        if self.broken {
            return Err(on(Op::Sync, &self.path)(std::io::Error::other(UNUSABLE)));
        }
        if let Err(e) = self.file.sync_all() {
            self.broken = true;
            return Err(on(Op::Sync, &self.path)(e));
        }
        self.dirty = false;
        self.synced_len = self.len;
        Ok(self.made_durable())
    }

    /// Cuts the file back to its length at the last good sync, dropping
    /// what a failed fsync may have lost, so that it is not found twice
    /// once the caller has written it again elsewhere. Best effort.
    pub fn cut_to_synced(&mut self) -> Result<(), StoreError> {
        if due(FaultOp::CutBack, &self.path) {
            return Err(on(Op::Truncate, &self.path)(
                std::io::Error::from_raw_os_error(5),
            ));
        }
        self.file
            .set_len(self.synced_len)
            .map_err(on(Op::Truncate, &self.path))
    }

    /// Whether a failed sync or cut-back made it unusable.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Frames appended since the last good sync.
    pub fn unsynced_frames(&self) -> u64 {
        self.frames - self.durable
    }

    fn made_durable(&mut self) -> u64 {
        let newly = self.frames - self.durable;
        self.durable = self.frames;
        newly
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its length in bytes, file header included.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it holds no frames.
    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// Frames in it.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Whether data was written since the last sync.
    pub fn dirty(&self) -> bool {
        self.dirty
    }
}
