//! `sonde alert --config alert.toml`: run the alerter until SIGTERM or
//! SIGINT; `sonde alert silence add|list|remove` and `sonde alert
//! dead-letters [--replay]` talk to the running alerter's admin API (the
//! listing of dead letters reads the state directory, so it works with
//! the alerter stopped).
//! Exit status: 0 done, 1 failed (the alerter unreachable or refusing),
//! 2 usage or configuration error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use sonde::alert::config::AlertConfig;
use sonde::alert::deliver::DeadLetters;
use sonde::alert::event::{now_ms, rfc3339_ms};
use sonde::alert::service::{self, DEAD_LETTERS};
use tokio::signal::unix::{SignalKind, signal};

/// Arguments of `sonde alert`.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = false,
    after_help = "Alerting: README \"Alerting\". Exit status: 0 done, 1 failed, 2 usage or configuration error."
)]
pub struct Args {
    /// The alerter's configuration (alert.toml).
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Log format on stderr, while the alerter runs.
    #[arg(long, value_enum, default_value_t = super::logging::LogFormat::Text)]
    pub log_format: super::logging::LogFormat,
    /// Worker threads of the async runtime.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Validate the configuration and exit (0 valid, 2 invalid).
    #[arg(long)]
    pub check: bool,
    /// Without one, run the alerter.
    #[command(subcommand)]
    pub action: Option<Action>,
}

/// What to do instead of running.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Silences and maintenance windows added at run time (persisted).
    #[command(subcommand)]
    Silence(SilenceAction),
    /// Notifications a receiver never took: list them, or replay them.
    DeadLetters(DeadLetterArgs),
}

/// `sonde alert silence ...`.
#[derive(Debug, clap::Subcommand)]
pub enum SilenceAction {
    /// Silence checks (by name glob) for a while.
    Add(SilenceAdd),
    /// List the silences: alert.toml's and those added at run time.
    List,
    /// Remove a silence added at run time, by id.
    Remove {
        /// The silence's id (`s-N`, from `add` or `list`).
        id: String,
    },
}

/// `sonde alert silence add`.
#[derive(Debug, clap::Args)]
pub struct SilenceAdd {
    /// A check name glob (`*` any run, `?` one character); repeat for more.
    #[arg(long = "check", required = true, value_name = "GLOB")]
    pub checks: Vec<String>,
    /// Only in regions matching this glob; repeat for more (default all).
    #[arg(long = "region", value_name = "GLOB")]
    pub regions: Vec<String>,
    /// How long, from the start: 30m, 2h...
    #[arg(long = "for", value_name = "DURATION", conflicts_with = "until")]
    pub duration: Option<String>,
    /// Until this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// From this RFC 3339 time (default now): a maintenance window ahead.
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Why, for whoever looks.
    #[arg(long, default_value = "")]
    pub comment: String,
}

/// `sonde alert dead-letters`.
#[derive(Debug, clap::Args)]
pub struct DeadLetterArgs {
    /// Put them back in their receivers' queues (the running alerter): these ids, or all with --all.
    #[arg(long)]
    pub replay: bool,
    /// With --replay: every dead letter.
    #[arg(long, requires = "replay")]
    pub all: bool,
    /// Only this receiver's.
    #[arg(long)]
    pub receiver: Option<String>,
    /// Print JSON Lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Event ids to replay.
    pub ids: Vec<String>,
}

fn load(path: Option<&Path>) -> Result<AlertConfig, u8> {
    let Some(path) = path else {
        eprintln!("sonde: alert needs --config alert.toml");
        return Err(super::EXIT_USAGE);
    };
    AlertConfig::load(path, &config::SystemHost).map_err(|e| {
        eprintln!("{e}");
        super::EXIT_USAGE
    })
}

/// Runs `sonde alert`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let cfg = match load(args.config.as_deref()) {
        Ok(cfg) => cfg,
        Err(code) => return Ok(code),
    };
    match args.action {
        None if args.check => {
            println!(
                "{}: valid ({} gateways, {} receivers)",
                args.config
                    .as_deref()
                    .map_or(String::new(), |p| p.display().to_string()),
                cfg.gateways.len(),
                cfg.receivers.len()
            );
            Ok(0)
        }
        None => serve(cfg, args.threads, args.log_format),
        Some(Action::Silence(a)) => silence(&cfg, a),
        Some(Action::DeadLetters(a)) => dead_letters(&cfg, a),
    }
}

fn serve(
    cfg: AlertConfig,
    threads: usize,
    log_format: super::logging::LogFormat,
) -> anyhow::Result<u8> {
    super::logging::init(log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .thread_name("sonde-alert")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = int.recv() => tracing::info!("SIGINT"),
            }
        };
        let ready = |_: &service::Handles, addr: std::net::SocketAddr| {
            eprintln!("sonde: alerter listening on http://{addr} (/metrics, /healthz)");
        };
        match service::run(cfg, stop, ready).await {
            Ok(()) => Ok(0),
            Err(e) => {
                eprintln!("sonde: {e}");
                Ok(e.exit_code())
            }
        }
    })
}

fn time_arg(flag: &str, text: &str) -> Result<u64, u8> {
    store::Utc::parse_rfc3339(text).ok_or_else(|| {
        eprintln!("sonde: --{flag} {text:?} is not an RFC 3339 time such as 2026-12-01T22:00:00Z");
        super::EXIT_USAGE
    })
}

fn silence(cfg: &AlertConfig, action: SilenceAction) -> anyhow::Result<u8> {
    let (method, path, body) = match action {
        SilenceAction::Add(a) => {
            let start = match a.start.as_deref().map(|t| time_arg("start", t)).transpose() {
                Ok(s) => s.unwrap_or_else(now_ms),
                Err(code) => return Ok(code),
            };
            let end = match (&a.duration, &a.until) {
                (Some(d), None) => match config::duration::parse(d) {
                    Ok(d) if !d.is_zero() => start + d.as_millis() as u64,
                    _ => {
                        eprintln!("sonde: --for {d:?} is not a duration such as 30m or 2h");
                        return Ok(super::EXIT_USAGE);
                    }
                },
                (None, Some(t)) => match time_arg("until", t) {
                    Ok(t) => t,
                    Err(code) => return Ok(code),
                },
                _ => {
                    eprintln!("sonde: silence add needs --for DURATION or --until TIME");
                    return Ok(super::EXIT_USAGE);
                }
            };
            let body = serde_json::json!({
                "checks": a.checks, "regions": a.regions,
                "start_ms": start, "end_ms": end, "comment": a.comment,
            });
            ("POST", "/v1/silences".to_owned(), Some(body))
        }
        SilenceAction::List => ("GET", "/v1/silences".to_owned(), None),
        SilenceAction::Remove { id } => ("DELETE", format!("/v1/silences/{id}"), None),
    };
    let (status, answer) = match admin(cfg, method, &path, body) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sonde: {e:#}");
            return Ok(1);
        }
    };
    if !(200..300).contains(&status) {
        eprintln!(
            "sonde: the alerter answered {status}: {}",
            answer["error"].as_str().unwrap_or("")
        );
        return Ok(1);
    }
    if let Some(list) = answer["silences"].as_array() {
        for s in list {
            let t = |k: &str| s[k].as_u64().map_or_else(|| "?".into(), rfc3339_ms);
            println!(
                "{}\t{}\t{} .. {}\tchecks={}\tregions={}\t{}",
                s["id"].as_str().unwrap_or(""),
                match (s["start_ms"].as_u64(), s["end_ms"].as_u64()) {
                    (_, Some(end)) if end <= now_ms() => "ended",
                    (Some(start), _) if start > now_ms() => "scheduled",
                    _ => "active",
                },
                t("start_ms"),
                t("end_ms"),
                s["checks"],
                s["regions"],
                s["comment"].as_str().unwrap_or(""),
            );
        }
    } else if let Some(id) = answer["id"].as_str() {
        println!("{id}");
    } else if let Some(id) = answer["removed"].as_str() {
        println!("removed {id}");
    }
    Ok(0)
}

fn dead_letters(cfg: &AlertConfig, a: DeadLetterArgs) -> anyhow::Result<u8> {
    if a.replay {
        if a.ids.is_empty() && !a.all {
            eprintln!("sonde: --replay needs event ids or --all");
            return Ok(super::EXIT_USAGE);
        }
        let body = serde_json::json!({ "ids": a.ids, "receiver": a.receiver });
        return match admin(cfg, "POST", "/v1/dead-letters/replay", Some(body)) {
            Ok((status, answer)) if (200..300).contains(&status) => {
                println!("replayed {}", answer["replayed"]);
                Ok(0)
            }
            Ok((status, answer)) => {
                eprintln!(
                    "sonde: the alerter answered {status}: {}",
                    answer["error"].as_str().unwrap_or("")
                );
                Ok(1)
            }
            Err(e) => {
                eprintln!("sonde: {e:#}");
                Ok(1)
            }
        };
    }
    let dl = DeadLetters::new(cfg.state_dir.join(DEAD_LETTERS));
    let listed = match dl.list() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sonde: {e}");
            return Ok(1);
        }
    };
    for w in listed.warnings() {
        eprintln!("sonde: {w}");
    }
    for d in listed.letters() {
        if a.receiver.as_deref().is_some_and(|r| r != d.receiver) {
            continue;
        }
        if a.json {
            println!("{}", serde_json::to_string(d).unwrap_or_default());
        } else {
            println!("{}", d.line());
        }
    }
    Ok(0)
}

/// One request to the running alerter's admin API (plain HTTP/1.1 on its
/// `listen` address, with the admin token when configured).
fn admin(
    cfg: &AlertConfig,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    use std::io::{Read, Write};
    let addr = cfg.listen;
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).with_context(|| {
            format!("connecting to the alerter at {addr} (is `sonde alert` running?)")
        })?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = cfg
        .admin_token
        .as_ref()
        .map(|t| format!("authorization: Bearer {}\r\n", t.expose()))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n{auth}\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.take(4 << 20).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .context("the alerter's answer has no header end")?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("the alerter's answer has no status")?;
    let value = serde_json::from_str(rest).unwrap_or(serde_json::Value::Null);
    Ok((status, value))
}
