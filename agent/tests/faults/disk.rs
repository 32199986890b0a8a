//! Faults: disk.
