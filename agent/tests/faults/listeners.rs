//! Faults: listeners.
