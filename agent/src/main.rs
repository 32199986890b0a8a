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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::cli::Cli;

    /// `sonde --version` is `sonde <version> (<commit> <YYYY-MM-DD>)`, the
    /// commit `unknown` outside a git checkout (agent/build.rs); `-V` is
    /// the version alone. This is the text `main` prints.
    #[test]
    fn version_shape() {
        let long = match Cli::try_parse_from(["sonde", "--version"]) {
            Err(e) if e.kind() == clap::error::ErrorKind::DisplayVersion => e.to_string(),
            other => panic!("--version: {other:?}"),
        };
        let version = regex::escape(env!("CARGO_PKG_VERSION"));
        let shape =
            format!(r"^sonde {version} \(([0-9a-f]{{7,}}|unknown) \d{{4}}-\d{{2}}-\d{{2}}\)\n$");
        let shape = regex::Regex::new(&shape).expect("a valid pattern");
        assert!(shape.is_match(&long), "{long:?} is not {shape}");

        let short = match Cli::try_parse_from(["sonde", "-V"]) {
            Err(e) if e.kind() == clap::error::ErrorKind::DisplayVersion => e.to_string(),
            other => panic!("-V: {other:?}"),
        };
        assert_eq!(short, format!("sonde {}\n", env!("CARGO_PKG_VERSION")));
    }
}
