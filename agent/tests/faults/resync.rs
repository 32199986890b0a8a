//! Faults: resync.
