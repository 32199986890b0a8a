//! Injected failures of [`crate::Segment`]'s file operations (and of
//! [`crate::remove`]), for tests of
//! what a writer does when a disk fails in ways a tmpfs cannot (an fsync
//! that fails, a cut-back that fails). Compiled only with the `faults`
//! feature, which only test builds enable; without it every check is a
//! no-op the compiler removes.

use std::path::Path;

/// A file operation of a segment that a test can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    /// The append's write: half the bytes are written, then it fails
    /// (ENOSPC), as a write that fills the disk.
    Append,
    /// Cutting a failed append (or an unsynced tail) back.
    CutBack,
    /// The fsync of the data (EIO).
    Sync,
    /// The fsync of a directory ([`crate::sync_dir`]; EIO).
    SyncDir,
    /// Deleting a file ([`crate::remove`]; EACCES).
    Delete,
}

#[cfg(feature = "faults")]
mod injected {
    use std::path::{Path, PathBuf};
    use std::sync::{Mutex, PoisonError};

    use super::FaultOp;

    /// (directory, operation, to let pass first, failures left)
    static FAULTS: Mutex<Vec<(PathBuf, FaultOp, u32, u32)>> = Mutex::new(Vec::new());

    /// Makes the next `times` `op`s on files under `dir` fail.
    pub fn fail_next(dir: &Path, op: FaultOp, times: u32) {
        fail_after(dir, op, 0, times);
    }

    /// Lets `pass` `op`s on files under `dir` succeed, then makes the next
    /// `times` fail.
    pub fn fail_after(dir: &Path, op: FaultOp, pass: u32, times: u32) {
        let mut faults = FAULTS.lock().unwrap_or_else(PoisonError::into_inner);
        faults.push((dir.to_owned(), op, pass, times));
    }

    pub(crate) fn due(op: FaultOp, path: &Path) -> bool {
        let mut faults = FAULTS.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(f) = faults
            .iter_mut()
            .find(|(dir, o, _, left)| *o == op && *left > 0 && path.starts_with(dir))
        else {
            return false;
        };
        if f.2 > 0 {
            f.2 -= 1;
            return false;
        }
        f.3 -= 1;
        true
    }
}

#[cfg(feature = "faults")]
pub use injected::{fail_after, fail_next};

/// Whether an injected `op` failure on `path` is due (never without the
/// `faults` feature).
#[inline]
pub(crate) fn due(op: FaultOp, path: &Path) -> bool {
    #[cfg(feature = "faults")]
    {
        injected::due(op, path)
    }
    #[cfg(not(feature = "faults"))]
    {
        let _ = (op, path);
        false
    }
}
