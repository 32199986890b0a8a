//! `sonde gateway -c gateway.toml`: run the reference regional
//! gateway (the `gateway` crate) until SIGTERM or SIGINT; with `[alert]`
//! in gateway.toml, the alerter (`sonde alert`) beside it in the same
//! process, from the alert.toml it names.
//! Exit status: 0 after a clean stop, 2 for a bad configuration or a
//! listener that cannot be bound, 1 if serving failed.

use std::path::PathBuf;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

use super::logging::LogFormat;

/// Arguments of `sonde gateway`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Protocol: gateway/PROTOCOL.md. Exit status: 0 stopped, 1 failed, 2 usage error."
)]
pub struct Args {
    /// The gateway configuration (gateway.toml).
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Worker threads of the async runtime.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// Runs `sonde gateway`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    super::logging::init(args.log_format);
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
    // `[alert]`: the alerter runs beside the gateway, from its own file.
    let alert = match &cfg.alert_config {
        Some(path) => match sonde::alert::config::AlertConfig::load(path, &config::SystemHost) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("{e}");
                return Ok(super::EXIT_USAGE);
            }
        },
        None => None,
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
        let (stopped_tx, stopped) = tokio::sync::watch::channel(false);
        let stop = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = int.recv() => tracing::info!("SIGINT"),
            }
            let _ = stopped_tx.send(true);
        };
        let alerter = alert.map(|a| {
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                let ready = |_: &sonde::alert::service::Handles, addr: std::net::SocketAddr| {
                    tracing::info!(%addr, "alerter listening beside the gateway");
                };
                let r = sonde::alert::service::run(a, stop, ready).await;
                if let Err(e) = &r {
                    tracing::error!("the alerter stopped: {e}; the gateway goes on");
                }
                r
            })
        });
        let served = gateway::serve(listener, cfg, stop).await;
        if let Some(alerter) = alerter {
            match alerter.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    eprintln!("sonde: alerter: {e}");
                    return Ok(1);
                }
                Err(e) => {
                    eprintln!("sonde: alerter: {e}");
                    return Ok(1);
                }
            }
        }
        match served {
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
