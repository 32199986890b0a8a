//! sonde's segment store: wire files (WIRE.md 3) in a directory, and
//! everything about them on disk. The file sink, the gateway sink's spool
//! and the gateway's writer are policies over it; so can an alerter's
//! outbox be (an append log plus a [`CursorFile`] "acknowledged up to").
//!
//! - Naming: [`Naming`] schemes (prefix + ordered key: [`SEGMENT`],
//!   [`SPOOL`], [`GATEWAY`]) and the `.corrupt` name of [`move_aside`].
//! - Rules, pure: [`rotation`], [`expired`] (retention), [`SyncClock`]
//!   (the [`Fsync`] policy), [`Heal`] (hold-and-retry after a failure).
//! - Reading: [`scan`] (a file's good prefix, last frame, damage), [`body`].
//! - Recovery at open: [`recover`] (truncate a torn tail, move aside).
//! - Writing: [`Segment`] (create, append, sync with durable counts,
//!   finish), [`retain`], [`sync_dir`], [`CursorFile`].
//!
//! Blocking `std::fs` only: async callers run it on a blocking thread. It
//! never logs and never retries itself; every failure is a [`StoreError`] naming
//! the operation and the path, and what to do about it is the caller's.
#![forbid(unsafe_code)]

mod dir;
mod error;
pub mod faults;
mod heal;
mod name;
mod policy;
mod recover;
mod scan;
mod segment;
mod utc;

pub use dir::{
    CursorFile, Deleted, Retained, create_dir, list, move_aside, read, read_at, remove, retain,
    sync_dir,
};
pub use error::StoreError;
pub use heal::{Failed, Heal, Healed};
pub use name::{
    ByPair, ByStart, CORRUPT_SUFFIX, GATEWAY, Naming, SEGMENT, SPOOL, SUFFIX, corrupt_path,
    next_start,
};
pub use policy::{Fsync, Held, Retain, Rotate, SyncClock, expired, rotation};
pub use recover::{Depth, Found, Moved, Recovered, recover};
pub use scan::{LastFrame, Scan, body, scan};
pub use segment::Segment;
pub use utc::Utc;
