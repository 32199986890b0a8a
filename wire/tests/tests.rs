//! The wire format's integration tests, one binary: golden vectors, round
//! trips, decode errors, the fuzz corpus and the Python interop check.

mod decode_errors;
mod fuzz_corpus;
mod golden;
mod interop;
mod resync;
mod roundtrip;
