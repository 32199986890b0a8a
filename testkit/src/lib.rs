//! Loopback test targets for sonde's tests and benchmarks.
#![forbid(unsafe_code)]
