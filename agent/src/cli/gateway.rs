//! `sonde gateway --config gateway.toml`: run the reference regional
//! gateway (the `gateway` crate) until SIGTERM or SIGINT.
//! Exit status: 0 after a clean stop, 2 for a bad configuration or a
//! listener that cannot be bound, 1 if serving failed.

use std::path::PathBuf;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

/// Arguments of `sonde gateway`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Protocol: gateway/PROTOCOL.md. Exit status: 0 stopped, 1 failed, 2 usage error."
)]
pub struct Args {
    /// The gateway configuration (gateway.toml).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Worker threads of the async runtime.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// Runs `sonde gateway`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    super::init_stderr_logging();
    let origin = args.config.display().to_string();
    let text = match config::file::read_bounded(&args.config) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                eprintln!("sonde: reading {origin}: is not UTF-8");
                return Ok(super::EXIT_USAGE);
            }
        },
        Err(e) => {
            eprintln!("sonde: reading {origin}: {e}");
            return Ok(super::EXIT_USAGE);
        }
    };
    let cfg = match gateway::GatewayConfig::parse(&text, &origin, &config::SystemHost) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return Ok(super::EXIT_USAGE);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .thread_name("sonde-gateway")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(cfg.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("sonde: binding {}: {e}", cfg.listen);
                return Ok(super::EXIT_USAGE);
            }
        };
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = int.recv() => tracing::info!("SIGINT"),
            }
        };
        match gateway::serve(listener, cfg, stop).await {
            Ok(()) => Ok(0),
            Err(e @ (gateway::ServeError::Cleartext(_) | gateway::ServeError::Tls(_))) => {
                eprintln!("sonde: {e}");
                Ok(super::EXIT_USAGE)
            }
            Err(e) => {
                eprintln!("sonde: {e}");
                Ok(1)
            }
        }
    })
}
