//! The store's one error type: which file operation failed, on which path,
//! and the operating system's reason. Callers map it into their own errors
//! (a sink's, the gateway writer's); the store never retries or logs.

use std::io;
use std::path::{Path, PathBuf};

/// A failed file operation of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Creating a directory or a new segment failed.
    #[error("creating {path}: {source}", path = path.display())]
    Create {
        /// The directory or file.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// Opening an existing segment failed.
    #[error("opening {path}: {source}", path = path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// Listing a directory failed.
    #[error("listing {path}: {source}", path = path.display())]
    List {
        /// The directory.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// Reading a file failed.
    #[error("reading {path}: {source}", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// Appending to a segment failed (the segment was cut back to its
    /// previous length where the disk allowed).
    #[error("appending to {path}: {source}", path = path.display())]
    Append {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// An fsync of a file or a directory failed: what was written since
    /// the last good one may never reach the disk.
    #[error("syncing {path}: {source}", path = path.display())]
    Sync {
        /// The file or directory.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// Cutting a torn tail (or rewriting an unfinished header) failed.
    #[error("truncating {path}: {source}", path = path.display())]
    Truncate {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// Moving a damaged file aside failed.
    #[error("renaming {path}: {source}", path = path.display())]
    Rename {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// Deleting a file failed.
    #[error("deleting {path}: {source}", path = path.display())]
    Delete {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// Replacing a cursor file failed.
    #[error("writing {path}: {source}", path = path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
}

impl StoreError {
    /// The path the failed operation was on.
    pub fn path(&self) -> &Path {
        self.parts().0
    }

    /// The operating system's error.
    pub fn io(&self) -> &io::Error {
        self.parts().1
    }

    fn parts(&self) -> (&Path, &io::Error) {
        match self {
            StoreError::Create { path, source }
            | StoreError::Open { path, source }
            | StoreError::List { path, source }
            | StoreError::Read { path, source }
            | StoreError::Append { path, source }
            | StoreError::Sync { path, source }
            | StoreError::Truncate { path, source }
            | StoreError::Rename { path, source }
            | StoreError::Delete { path, source }
            | StoreError::Write { path, source } => (path, source),
        }
    }

    /// Consumes the error into its I/O error (for callers whose own error
    /// type wraps `std::io::Error`), keeping the message's context.
    pub fn into_io(self) -> io::Error {
        let message = self.to_string();
        let kind = self.io().kind();
        io::Error::new(kind, message)
    }
}

/// The operations, for [`on`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Create,
    Open,
    List,
    Read,
    Append,
    Sync,
    Truncate,
    Rename,
    Delete,
    Write,
}

/// A `map_err` closure: operation `op` on `path` failed.
pub(crate) fn on(op: Op, path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| {
        let path = path.to_owned();
        match op {
            Op::Create => StoreError::Create { path, source },
            Op::Open => StoreError::Open { path, source },
            Op::List => StoreError::List { path, source },
            Op::Read => StoreError::Read { path, source },
            Op::Append => StoreError::Append { path, source },
            Op::Sync => StoreError::Sync { path, source },
            Op::Truncate => StoreError::Truncate { path, source },
            Op::Rename => StoreError::Rename { path, source },
            Op::Delete => StoreError::Delete { path, source },
            Op::Write => StoreError::Write { path, source },
        }
    }
}
