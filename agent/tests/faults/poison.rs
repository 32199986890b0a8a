//! Faults: poison.
