//! The command line: one module per subcommand. Each `run` returns the exit
//! status to use, or an error (with context) that `main` reports; a
//! `sonde::run::RunError` carries its own status.
//!
//! The library below this module knows nothing of the command line.

use clap::{Parser, Subcommand};

pub mod check_config;
pub mod decode;
pub mod gateway;
pub mod probe;
pub mod run;
pub mod wait;

/// Exit status for a usage error (bad flags, unreadable input).
pub const EXIT_USAGE: u8 = 2;

/// sonde: a synthetic HTTP probe agent with truthful per-phase timing.
#[derive(Debug, Parser)]
#[command(name = "sonde", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// sonde's subcommands.
// Parsed once per process; boxing the larger variants buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probe one URL once and show every phase's timing.
    Probe(probe::Args),
    /// Decode a sonde wire file (or stdin) to JSON Lines or CSV.
    Decode(decode::Args),
    /// Run the agent: every check on its schedule, results to the sinks.
    Run(run::Args),
    /// Validate a configuration file and print the normalised plan.
    CheckConfig(check_config::Args),
    /// Poll a URL until it is ready (a deploy gate); exit 0 ready, 1 failed, 3 deadline.
    Wait(wait::Args),
    /// Run the reference regional gateway: ingest from agents, live readers, wire files.
    Gateway(gateway::Args),
}
