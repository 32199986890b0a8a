//! The store against real temporary directories: recovery (torn tails,
//! damage, bad headers, a crash at any byte), the segment being appended
//! to (full disk, durable counts), retention on disk, listing and the
//! cursor file. One binary; helpers in `util`.

mod util;

mod cursor;
mod listing;
mod outbox;
mod recovery;
mod retention;
mod scan;
mod segment;
