//! sonde's segment store: wire files (WIRE.md 3) in a directory, and
//! everything about them on disk. The file sink, the gateway sink's spool
//! and the gateway's writer are policies over it; so can an alerter's
//! outbox be (an append log plus a [`CursorFile`] "acknowledged up to").
//!
//! - [`name`]: naming schemes (prefix + ordered key) and the `.corrupt` name.
//! - [`policy`]: rotation, retention and the fsync policy, as pure functions.
//! - [`scan`]: a file's good prefix, its last frame, its damage.
//! - [`recover`]: the recovery scan at open (truncate, move aside).
//! - [`Segment`]: the file being appended to: create, append, sync, finish.
//! - [`dir`]: listing, reading, deleting, retention on disk, the cursor file.
//!
//! Blocking `std::fs` only: async callers run it on a blocking thread. It
//! never logs and never retries; every failure is a [`StoreError`] naming
//! the operation and the path, and what to do about it is the caller's.
#![forbid(unsafe_code)]

pub mod dir;
mod error;
pub mod name;
pub mod policy;
pub mod recover;
pub mod scan;
mod segment;
mod utc;

pub use dir::{
    CursorFile, Deleted, Retained, create_dir, list, move_aside, read, read_at, remove, retain,
    sync_dir,
};
pub use error::StoreError;
pub use name::{ByPair, ByStart, GATEWAY, Naming, SEGMENT, SPOOL, next_start};
pub use policy::{Fsync, Held, Retain, Rotate, SyncClock, expired, rotation};
pub use recover::{Depth, Found, Moved, Recovered, recover};
pub use scan::{LastFrame, Scan, body, scan};
pub use segment::Segment;
pub use utc::Utc;
