//! One wire file being appended to: created with its file header synced,
//! or reopened after recovery; appended to with one write a call (cut back
//! on failure, so it never holds part of a frame while running); synced,
//! reporting how many frames the sync made durable. Knows nothing of
//! names, rotation or when to sync (see [`crate::policy`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use wire::{FILE_HEADER_LEN, file_header};

use crate::error::{Op, StoreError, on};

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
    dirty: bool,
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
            dirty: false,
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
            dirty: false,
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
            dirty: false,
        })
    }

    /// Appends `bytes` (`frames` whole frames) with one write. On failure
    /// the file is cut back to its previous length where the disk allows,
    /// and nothing is counted.
    pub fn append(&mut self, bytes: &[u8], frames: u64) -> Result<(), StoreError> {
        if let Err(e) = self.file.write_all(bytes) {
            let _ = self.file.set_len(self.len);
            return Err(on(Op::Append, &self.path)(e));
        }
        self.len += bytes.len() as u64;
        self.frames += frames;
        self.dirty = true;
        Ok(())
    }

    /// Syncs the data written since the last sync, if any, and returns how
    /// many frames that made durable (the group commit of a durable
    /// acknowledgement). After a failure the frames written since the last
    /// good sync may never reach the disk: write them again elsewhere.
    pub fn sync(&mut self) -> Result<u64, StoreError> {
        if self.dirty {
            self.file.sync_data().map_err(on(Op::Sync, &self.path))?;
            self.dirty = false;
        }
        Ok(self.made_durable())
    }

    /// Finishes the file before it is left for the next: syncs data and
    /// metadata, and returns how many frames that made durable (as
    /// [`Segment::sync`]).
    pub fn finish(&mut self) -> Result<u64, StoreError> {
        self.file.sync_all().map_err(on(Op::Sync, &self.path))?;
        self.dirty = false;
        Ok(self.made_durable())
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
