//! The `sonde` binary: a thin shell over the agent library. `main` parses
//! the command line, runs the subcommand and maps its outcome to a
//! documented exit status; every error a person sees carries its context.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

mod cli;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout and usage errors to stderr.
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(cli::EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let outcome = match cli.command {
        Command::Probe(args) => cli::probe::run(args),
        Command::Decode(args) => cli::decode::run(args),
        Command::Run(args) => cli::run::run(args),
        Command::CheckConfig(args) => cli::check_config::run(args),
        Command::Wait(args) => cli::wait::run(args),
        Command::Alert(args) => cli::alert::run(args),
        #[cfg(feature = "gateway")]
        Command::Gateway(args) => cli::gateway::run(args),
        #[cfg(not(feature = "gateway"))]
        Command::Gateway { .. } => cli::gateway_absent(),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        // `sonde run` has reported its error through its log already.
        Err(err) => match err.downcast_ref::<sonde::run::RunError>() {
            Some(run_error) => ExitCode::from(run_error.exit_code()),
            None => {
                eprintln!("sonde: error: {err:#}");
                ExitCode::from(cli::EXIT_USAGE)
            }
        },
    }
}
