//! sonde's wire format: the probe record `<t, rt, sc, st, dn, cn, tl, ft>`,
//! its MessagePack encoding, and the frames that carry batches of records in
//! streams and files. The normative spec is `WIRE.md` beside this crate.
//!
//! - [`record`]: the record, its standalone encoding (also via serde and
//!   rmp-serde) and decoding.
//! - [`frame`]: a batch of records with sender, session and sequence, in a
//!   checksummed envelope; [`FrameBuilder`] to build one.
//! - [`reader`]: a scanner over bytes that yields good frames, reports
//!   damaged regions by offset and resynchronises.
//! - [`file`]: the header of a wire file.
//! - [`json`]: the one JSON shape of a record, for every text output.
//!
//! This crate knows nothing of sockets, files or async runtimes: it turns
//! values into bytes and bytes into values, and says exactly what was wrong
//! (and at which byte) when the bytes are bad. No input makes it panic or
//! allocate more than a small multiple of the input's size.
#![forbid(unsafe_code)]

pub mod error;
pub mod file;
pub mod frame;
pub mod json;
mod msgpack;
pub mod reader;
pub mod record;
mod record_serde;
mod resync;

pub use error::{DecodeError, EncodeError, FileError, FrameError};
pub use file::{FILE_HEADER_LEN, FILE_MAGIC, FILE_VERSION, check_file_header, file_header};
pub use frame::{
    CheckBatch, FRAME_MARKER, FRAME_OVERHEAD, FRAME_VERSION, Frame, FrameBuilder, FrameHeader,
    MAX_BODY_LEN,
};
pub use json::JsonRecord;
pub use reader::{FrameReader, FrameStream, MAX_WORK_PER_BYTE, ReadItem};
pub use record::{ErrorClass, Record, Status};
