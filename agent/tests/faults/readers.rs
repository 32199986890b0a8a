//! Faults: readers.
