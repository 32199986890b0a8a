//! sonde's wire format: the probe record `<t, rt, sc, st, dn, cn, tl, ft>`,
//! its MessagePack encoding, and the frames that carry batches of records in
//! streams and files. The normative spec is `WIRE.md` beside this crate.
//!
//! This crate knows nothing of sockets, files or async runtimes: it turns
//! values into bytes and bytes into values, and says exactly what was wrong
//! when the bytes are bad.
#![forbid(unsafe_code)]

pub mod record;

pub use record::{ErrorClass, Record, Status};
