//! sonde's agent: the probe engine, and (to come) the scheduler and sinks.
//!
//! - `probe`: one HTTP(S) probe over a connection sonde opens itself, each
//!   phase (dns, connect, tls, ttfb) timed at the instants that bound it.
//! - `cli`: the `sonde` subcommands; the only module that knows the command line.
#![forbid(unsafe_code)]

pub mod cli;
pub mod probe;
pub mod schedule;
