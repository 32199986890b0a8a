//! Faults: inputs.
