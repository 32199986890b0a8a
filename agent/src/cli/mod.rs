//! The command line: one module per subcommand. Each `run` returns the exit
//! status to use, or an error (with context) that `main` reports; a
//! `sonde::run::RunError` carries its own status.
//!
//! The library below this module knows nothing of the command line.

use clap::{Parser, Subcommand};

pub mod alert;
pub mod check_config;
pub mod decode;
// dist/'s completions and man pages, checked against these definitions.
#[cfg(all(test, feature = "gateway"))]
mod dist;
// `sonde gateway` exists only with the `gateway` feature (axum, tungstenite).
#[cfg(feature = "gateway")]
pub mod gateway;
pub mod logging;
// The quickstart's live page: an in-process gateway, with the same feature.
pub mod output;
#[cfg(feature = "gateway")]
pub mod page;
pub mod probe;
pub mod request;
pub mod run;
pub mod wait;
pub mod writeout;

/// Exit status for a usage error (bad flags, unreadable input).
pub const EXIT_USAGE: u8 = 2;

/// sonde: a synthetic HTTP probe agent with truthful per-phase timing.
#[derive(Debug, Parser)]
#[command(name = "sonde", version, long_version = env!("SONDE_LONG_VERSION"), about)]
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
    /// Alert on checks that change state, across regions: read gateways, notify receivers.
    Alert(alert::Args),
    /// Run the reference regional gateway: ingest from agents, live readers, wire files.
    #[cfg(feature = "gateway")]
    Gateway(gateway::Args),
    /// Built without the gateway: `sonde gateway` says so instead of
    /// clap's "unrecognized subcommand".
    #[cfg(not(feature = "gateway"))]
    #[command(hide = true, disable_help_flag = true)]
    Gateway {
        /// Whatever followed `gateway`, ignored.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

/// What `sonde gateway` answers in a build without the `gateway` feature.
#[cfg(not(feature = "gateway"))]
pub fn gateway_absent() -> anyhow::Result<u8> {
    anyhow::bail!(
        "this sonde was built without the gateway (cargo feature `gateway`); \
         rebuild with `--features gateway` or use a build that has it"
    )
}
