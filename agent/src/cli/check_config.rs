//! `sonde check-config FILE`: validate a configuration and print the
//! normalised plan (defaults applied, secrets shown only by their source).
//! Exit status: 0 valid, 1 invalid (every error listed as FILE:LINE:COL).
//! Notes on a valid file (a `ca_file` that replaces the system roots) go
//! to stderr and do not change the exit status.

use std::path::PathBuf;

/// Arguments of `sonde check-config`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 valid, 1 invalid, 2 usage error.")]
pub struct Args {
    /// The configuration file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Runs `sonde check-config`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    match config::load(&args.file) {
        Ok(plan) => {
            print!("{}", plan.render());
            for note in plan.notes() {
                eprintln!("note: {note}");
            }
            Ok(0)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Ok(1)
        }
    }
}
