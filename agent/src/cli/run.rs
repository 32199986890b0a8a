//! `sonde run`: the agent. Loads the configuration (or the embedded
//! quickstart), sets up logging, turns signals into control messages
//! (SIGTERM/SIGINT stop, SIGHUP reloads) and speaks systemd's notify
//! protocol (readiness, reload, stopping, watchdog). The quickstart, in a
//! build with the `gateway` feature, also serves the live page
//! ([`super::page`]) and prints its URL.
//!
//! Exit status: 0 after a clean stop, else [`RunError::exit_code`]: 1 when
//! the agent failed while running, 2 when it could not start (bad
//! configuration, port in use). The error is reported here, through the
//! log; `main` takes the status from the error's type.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use sonde::blackbox::{Endpoint, Modules};
use sonde::run::{Control, ReloadError, RunError, StartError, Supervisor};

use super::logging::{self, LogFormat};

/// The quickstart configuration, built in: `sonde run` with no `--config`.
pub const QUICKSTART: &str = include_str!("../../../examples/quickstart.toml");
const QUICKSTART_ORIGIN: &str = "<embedded examples/quickstart.toml>";
const QUICKSTART_PAGE_ORIGIN: &str = "<embedded examples/quickstart.toml + the live page's sink>";

/// Arguments of `sonde run`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Signals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads the configuration.\n\
Exit status: 0 clean stop, 1 failure while running, 2 could not start."
)]
pub struct Args {
    /// The configuration file (default: the embedded examples/quickstart.toml,
    /// which also serves the live page and prints its URL).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Serve the quickstart's live page here (default 127.0.0.1:9465;
    /// loopback only; port 0 picks a free one).
    #[cfg(feature = "gateway")]
    #[arg(long, value_name = "ADDR", conflicts_with = "config")]
    pub ui_listen: Option<SocketAddr>,
    /// Serve /metrics, /healthz and /readyz here (overrides agent.metrics_listen).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Runtime worker threads. One is cheapest per probe (no cross-thread
    /// wake-ups) and carries a few thousand probes a second; add threads
    /// for more, or for many TLS checks due at the same instant.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
    /// A blackbox_exporter configuration file: serve its modules at
    /// /probe?target=URL&module=NAME on the metrics listener (reloaded on
    /// SIGHUP). With it the configuration may have no check.
    #[arg(long, value_name = "FILE")]
    pub blackbox_config: Option<PathBuf>,
    /// Seconds taken off the scrape's timeout header for /probe
    /// (blackbox_exporter's --timeout-offset).
    #[arg(long, value_name = "SECONDS", default_value = "0.5", value_parser = offset_seconds)]
    pub blackbox_timeout_offset: Duration,
}

/// A number of seconds, 0 or more, that a [`Duration`] holds.
fn offset_seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| *v >= 0.0)
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .ok_or_else(|| format!("{s:?} is not a number of seconds (0 or more, finite)"))
}

/// Where the plan is read from, at start and again on every SIGHUP.
#[derive(Clone)]
pub struct Source {
    /// `--config FILE`; `None`: the embedded quickstart.
    pub config: Option<PathBuf>,
    /// Appended to the embedded quickstart: the live page's
    /// `[[sinks.gateway]]`, when it serves one; else empty.
    pub quickstart_extra: String,
    /// Reads the files and environment variables the plan names (for the
    /// page, the agent's token comes from here).
    pub host: Arc<dyn config::Host + Send + Sync>,
}

impl Source {
    /// `path`, or the embedded quickstart alone, read from the system.
    pub fn plain(path: Option<PathBuf>) -> Source {
        Source {
            config: path,
            quickstart_extra: String::new(),
            host: Arc::new(config::SystemHost),
        }
    }
}

/// Loads the configuration `source` names. `require_checks`: refuse one
/// without an enabled check.
pub fn load(source: &Source, require_checks: bool) -> Result<config::Plan, config::ConfigErrors> {
    let options = config::Options { require_checks };
    let host: &dyn config::Host = &*source.host;
    match &source.config {
        Some(path) => config::load_with_options(path, host, options),
        None if source.quickstart_extra.is_empty() => {
            config::parse_with_options(QUICKSTART, QUICKSTART_ORIGIN, host, options)
        }
        None => {
            let text = format!("{QUICKSTART}{}", source.quickstart_extra);
            config::parse_with_options(&text, QUICKSTART_PAGE_ORIGIN, host, options)
        }
    }
}

/// Runs `sonde run`. A [`RunError`] is reported (configuration errors as
/// they are, the others through the log) before it is returned.
pub fn run(args: Args) -> anyhow::Result<u8> {
    logging::init(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .thread_name("sonde")
        .build()
        .context("starting the async runtime")?;
    // The page's listener first: the quickstart's sink names its port.
    #[cfg(feature = "gateway")]
    let page = match &args.config {
        Some(_) => None,
        None => match runtime.block_on(super::page::Page::bind(args.ui_listen)) {
            Ok(page) => Some(page),
            Err(e) => {
                tracing::error!("{e}");
                return Ok(super::EXIT_USAGE);
            }
        },
    };
    #[cfg(feature = "gateway")]
    let source = match &page {
        Some(page) => Source {
            config: None,
            quickstart_extra: page.sink_toml(),
            host: page.host(),
        },
        None => Source::plain(args.config.clone()),
    };
    #[cfg(not(feature = "gateway"))]
    let source = Source::plain(args.config.clone());
    #[cfg(not(feature = "gateway"))]
    if args.config.is_none() {
        tracing::info!(
            "the quickstart runs without its live page, which needs the `gateway` cargo feature"
        );
    }
    let plan = match load(&source, args.blackbox_config.is_none()) {
        Ok(plan) => plan,
        Err(errors) => {
            eprintln!("{errors}");
            return Err(RunError::Config(errors).into());
        }
    };
    // The flag wins over `[prometheus] blackbox_config`; the file's key is
    // read once, at start (a reload rereads the file it named then).
    let blackbox_config = args
        .blackbox_config
        .clone()
        .or_else(|| plan.prometheus.blackbox_config.clone());
    let blackbox = match &blackbox_config {
        None => None,
        Some(path) => match Modules::load(path) {
            Ok(modules) => Some(Arc::new(Endpoint::new(
                modules,
                sonde::probe::Prober::new(),
                args.blackbox_timeout_offset,
            ))),
            Err(e) => {
                let e = RunError::from(StartError::from(e));
                eprintln!("{e}");
                return Err(e.into());
            }
        },
    };
    #[cfg(feature = "gateway")]
    let json = args.log_format == LogFormat::Json;
    let (outcome, page_clean) = runtime.block_on(async move {
        let (tx, rx) = mpsc::channel(8);
        let reload = Reload {
            source,
            blackbox: blackbox.clone().zip(blackbox_config),
        };
        let signals = tokio::spawn(forward_signals(tx, reload));
        let supervisor: Arc<dyn Supervisor> = Arc::new(Systemd::new());
        // The page serves from now on; its URL is printed once the agent
        // is probing (never when the agent could not start).
        #[cfg(feature = "gateway")]
        let (supervisor, page) = match page {
            None => (supervisor, None),
            Some(page) => {
                let url = page.url();
                let announce = super::page::Announce {
                    inner: supervisor,
                    url,
                    json,
                };
                let announce: Arc<dyn Supervisor> = Arc::new(announce);
                (announce, Some(page.start()))
            }
        };
        let result = sonde::run::run(plan, args.metrics_listen, blackbox, rx, supervisor).await;
        signals.abort();
        // The agent first (its gateway sink sends what it still holds to
        // the page's gateway), then the gateway.
        #[cfg(feature = "gateway")]
        let page_clean = match page {
            Some(page) => page.stop().await,
            None => true,
        };
        #[cfg(not(feature = "gateway"))]
        let page_clean = true;
        (result, page_clean)
    });
    match outcome {
        Ok(()) if page_clean => Ok(0),
        // The page's gateway failed, and said why when it did.
        Ok(()) => Ok(1),
        Err(e) => {
            tracing::error!("{e}");
            Err(e.into())
        }
    }
}

/// What SIGHUP reloads: the configuration, and the blackbox_exporter
/// file into its endpoint.
struct Reload {
    source: Source,
    blackbox: Option<(Arc<Endpoint>, PathBuf)>,
}

async fn forward_signals(tx: mpsc::Sender<Control>, reload: Reload) -> anyhow::Result<()> {
    let Reload { source, blackbox } = reload;
    let require_checks = blackbox.is_none();
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    loop {
        let message = tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM"); Control::Shutdown }
            _ = int.recv() => { tracing::info!("SIGINT"); Control::Shutdown }
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                if let Some((endpoint, path)) = &blackbox {
                    let path = path.clone();
                    match tokio::task::spawn_blocking(move || Modules::load(&path)).await {
                        Ok(Ok(modules)) => {
                            let n = modules.by_name.len();
                            endpoint.replace(modules);
                            tracing::info!(modules = n, "blackbox configuration reloaded");
                        }
                        Ok(Err(e)) => tracing::error!(
                            "blackbox configuration reload refused, the running modules stay in place: {e}"
                        ),
                        Err(e) => tracing::error!("blackbox configuration reload: {e}"),
                    }
                }
                let source = source.clone();
                let plan = match tokio::task::spawn_blocking(move || load(&source, require_checks)).await {
                    Ok(loaded) => loaded.map_err(ReloadError::Config),
                    Err(e) => Err(ReloadError::Task(e)),
                };
                Control::Reload(Box::new(plan))
            }
        };
        let stop = matches!(message, Control::Shutdown);
        if tx.send(message).await.is_err() || stop {
            return Ok(());
        }
    }
}

/// systemd's notify protocol; every call is a no-op outside systemd.
struct Systemd {
    watchdog: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Systemd {
    fn new() -> Self {
        Systemd {
            watchdog: std::sync::Mutex::new(None),
        }
    }

    fn notify(&self, state: &[NotifyState]) {
        if let Err(e) = sd_notify::notify(state) {
            tracing::warn!("systemd notify: {e}");
        }
    }
}

impl Supervisor for Systemd {
    fn ready(&self) {
        self.notify(&[NotifyState::Ready, NotifyState::Status("probing")]);
        // Ping at half the watchdog period, from the runtime that probes: a
        // wedged runtime stops the pings and systemd restarts the agent.
        if let Some(period) = sd_notify::watchdog_enabled() {
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(period / 2);
                loop {
                    tick.tick().await;
                    let _ = sd_notify::notify(&[NotifyState::Watchdog]);
                }
            });
            if let Ok(mut slot) = self.watchdog.lock() {
                *slot = Some(task);
            }
        }
    }

    fn reloading(&self, done: bool) {
        if done {
            self.notify(&[NotifyState::Ready]);
        } else {
            let now = NotifyState::monotonic_usec_now();
            match now {
                Ok(now) => self.notify(&[NotifyState::Reloading, now]),
                Err(_) => self.notify(&[NotifyState::Reloading]),
            }
        }
    }

    fn stopping(&self) {
        self.notify(&[NotifyState::Stopping]);
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.watchdog.lock() {
            if let Some(task) = slot.take() {
                task.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_offset_is_a_duration_or_a_usage_error() {
        assert_eq!(offset_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(offset_seconds("0"), Ok(Duration::ZERO));
        // Past what a Duration holds: an error, not a panic at start.
        for bad in ["1e20", "inf", "NaN", "-1", "soon"] {
            assert!(offset_seconds(bad).is_err(), "{bad}");
        }
    }
}
