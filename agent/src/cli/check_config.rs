//! `sonde check-config FILE`: validate a configuration and print the
//! normalised plan (defaults applied, secrets shown only by their source).
//! With `--blackbox-config`, the blackbox_exporter file is checked too
//! (its modules listed on stderr), and FILE may then have no check or be
//! left out. Exit status: 0 valid, 1 invalid (every error listed as
//! FILE:LINE:COL). Notes on a valid file (a `ca_file` that replaces the
//! system roots) go to stderr and do not change the exit status.

use std::path::PathBuf;

/// Arguments of `sonde check-config`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 valid, 1 invalid, 2 usage error.")]
pub struct Args {
    /// The configuration file.
    #[arg(value_name = "FILE", required_unless_present = "blackbox_config")]
    pub file: Option<PathBuf>,
    /// A blackbox_exporter configuration file to check as `sonde run
    /// --blackbox-config` loads it.
    #[arg(long, value_name = "FILE")]
    pub blackbox_config: Option<PathBuf>,
}

/// Runs `sonde check-config`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut status = 0;
    if let Some(path) = &args.blackbox_config {
        match sonde::blackbox::Modules::load(path) {
            Ok(modules) => {
                let mut names: Vec<&str> = modules.by_name.keys().map(String::as_str).collect();
                names.sort_unstable();
                eprintln!(
                    "note: {}: {} blackbox module(s): {}",
                    path.display(),
                    names.len(),
                    names.join(", ")
                );
                // Loaded, but each of their probes fails (as blackbox_exporter's).
                for (_, why) in modules.broken() {
                    eprintln!(
                        "warning: {why} (its probes fail until the file is fixed and sonde reloads)"
                    );
                }
            }
            Err(e) => {
                eprintln!("{e}");
                status = 1;
            }
        }
    }
    let Some(file) = &args.file else {
        return Ok(status);
    };
    let options = config::Options {
        require_checks: args.blackbox_config.is_none(),
    };
    match config::load_with_options(file, &config::SystemHost, options) {
        Ok(plan) => {
            if args.blackbox_config.is_none()
                && let Some(path) = &plan.prometheus.blackbox_config
                && let Err(e) = sonde::blackbox::Modules::load(path)
            {
                eprintln!("{e}");
                status = 1;
            }
            print!("{}", plan.render());
            for note in plan.notes() {
                eprintln!("note: {note}");
            }
            Ok(status)
        }
        Err(errors) => {
            eprintln!("{errors}");
            Ok(1)
        }
    }
}
