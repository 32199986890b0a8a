//! The fault-injection suite (`cargo test -p sonde --test tests -- faults::`):
//! real `sonde` processes on loopback and real files, each case asserting
//! what is promised — nothing acknowledged is lost, nothing is delivered
//! twice, the process recovers by itself.
//!
//! SIGKILL of the agent and of the gateway under load, with exact counts,
//! are in `gateway_e2e` and `sink_file`.

mod disk;
mod inputs;
mod listeners;
#[cfg(feature = "gateway")]
mod poison;
#[cfg(feature = "gateway")]
mod readers;
mod resync;
