//! The command line: one module per subcommand. Each `run` returns the exit
//! status to use, or an error (with context) that `main` reports; a
//! `sonde::run::RunError` carries its own status.
//!
//! The library below this module knows nothing of the command line.

use clap::{Parser, Subcommand};

pub mod alert;
pub mod check_config;
pub mod decode;
// `sonde gateway` exists only with the `gateway` feature (axum, tungstenite).
#[cfg(feature = "gateway")]
pub mod gateway;
// The quickstart's live page: an in-process gateway, with the same feature.
#[cfg(feature = "gateway")]
pub mod page;
pub mod probe;
pub mod run;
pub mod wait;

/// Logs to stderr as text, at `RUST_LOG` or info: the gateway's and the
/// alerter's (the agent's own has formats, see `run`).
pub fn init_stderr_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

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
