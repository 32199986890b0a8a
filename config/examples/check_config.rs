//! What `sonde check-config FILE` does, as a ten-line program: validate the
//! file, print the normalised plan, or print every error and exit 1.
//!
//!     cargo run -p sonde-config --example check_config -- examples/quickstart.toml

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: check_config FILE");
        return ExitCode::from(2);
    };
    match config::load(std::path::Path::new(&path)) {
        Ok(plan) => {
            print!("{}", plan.render());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}
