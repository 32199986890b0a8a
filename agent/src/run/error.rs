//! How `sonde run` fails, as types: the exit status comes from the variant
//! ([`RunError::exit_code`]), never from an error's text.
//!
//! A bad configuration and what only start-up can find out (a port in use,
//! a disk error, an empty trust store) are "could not start" (2); a failure
//! after probing began is 1, as README documents.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::checks::SpecError;
use crate::sink::SinkError;

/// Why `sonde run` ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration did not validate (every error, FILE:LINE:COL).
    #[error("{0}")]
    Config(#[from] config::ConfigErrors),
    /// The agent could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The agent failed while running or stopping.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl RunError {
    /// The documented exit status: 2 could not start (bad configuration
    /// included), 1 failure while running.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Config(_) | RunError::Start(_) => 2,
            RunError::Runtime(_) => 1,
        }
    }
}

/// What only start-up finds out; the configuration was valid.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The metrics address is in use or not this machine's.
    #[error("binding the metrics endpoint to {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The file sink's directory could not be opened or recovered.
    #[error("opening the file sink in {}: {source}", dir.display())]
    FileSink {
        /// The segment directory.
        dir: PathBuf,
        /// The error.
        source: Box<SinkError>,
    },
    /// A gateway sink's spool could not be opened, or its client set up.
    #[error("opening the gateway sink {name:?} (spool {}): {source}", spool.display())]
    GatewaySink {
        /// The gateway's name.
        name: String,
        /// Its spool directory.
        spool: PathBuf,
        /// The error.
        source: Box<SinkError>,
    },
    /// A check's TLS configuration could not be built (an empty system
    /// trust store).
    #[error(transparent)]
    Check(SpecError),
    /// The blackbox_exporter configuration (`--blackbox-config`) was refused.
    #[error("blackbox configuration: {0}")]
    Blackbox(#[from] crate::blackbox::BlackboxError),
    /// `--blackbox-config` without a metrics listener to serve /probe on.
    #[error(
        "--blackbox-config needs a metrics listener for /probe (--metrics-listen or agent.metrics_listen)"
    )]
    BlackboxWithoutListener,
}

/// A failure after probing began.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Sinks that could not flush and sync what they accepted.
    #[error("sinks failed while stopping: {}", list(.0))]
    SinksFailed(Vec<(&'static str, SinkError)>),
}

fn list(failed: &[(&'static str, SinkError)]) -> String {
    failed
        .iter()
        .map(|(name, e)| format!("{name}: {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a reload (SIGHUP) was refused; the running configuration stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new file did not validate.
    #[error("{0}")]
    Config(#[from] config::ConfigErrors),
    /// The task that read the file failed.
    #[error("loading the configuration: task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A check of the new file could not become a probe.
    #[error(transparent)]
    Check(#[from] SpecError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_variant() {
        let port_in_use = StartError::Metrics {
            addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        assert_eq!(RunError::from(port_in_use).exit_code(), 2);
        assert_eq!(
            RunError::from(RuntimeError::SinksFailed(Vec::new())).exit_code(),
            1
        );
        let errors = match config::parse("[agnet]\n", "t.toml", &config::SystemHost) {
            Err(errors) => errors,
            Ok(_) => panic!("an unknown section was accepted"),
        };
        assert_eq!(RunError::from(errors).exit_code(), 2);
    }
}
