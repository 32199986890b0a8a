//! `sonde run`: the agent's lifecycle. Start the metrics endpoint and the
//! sinks, schedule the checks, then obey control messages: reload (a bad
//! new configuration leaves the running one in place) and stop (finish
//! in-flight probes, flush and sync every sink).
//!
//! Signals, logging and systemd live in the CLI; this module takes a
//! channel of [`Control`] messages, so tests drive it without signals.

pub(crate) mod checks;
mod error;
pub(crate) mod scheduler;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::metrics::{self, CheckInfo, Metrics};
use crate::probe::{ProbeSpec, Prober};
use crate::sink::uplink::GatewaySink;
use crate::sink::{Fanout, SinkError, SinkHandle, file::FileSink, stdout::StdoutSink};
use checks::SpecBuilder;
pub use error::{ReloadError, RunError, RuntimeError, StartError};
use scheduler::{Probe, Scheduler};

/// What the agent is told to do while running.
#[derive(Debug)]
pub enum Control {
    /// Load this new plan (already validated), or report why it could not be.
    Reload(Box<Result<config::Plan, ReloadError>>),
    /// Stop gracefully.
    Shutdown,
}

/// Events the agent reports to its supervisor (systemd).
pub trait Supervisor: Send + Sync {
    /// The agent is probing.
    fn ready(&self) {}
    /// A reload started / finished.
    fn reloading(&self, _done: bool) {}
    /// The agent is stopping.
    fn stopping(&self) {}
}

/// Results channel capacities, per sink: the file sink takes bursts of a
/// whole interval of 10 000 checks; stdout is for people.
const FILE_QUEUE: usize = 65_536;
const STDOUT_QUEUE: usize = 8_192;
/// The gateway sink's queue: like the file sink's, a whole interval of a
/// large agent (its spool absorbs outages; the queue only bursts).
const GATEWAY_QUEUE: usize = 65_536;

/// Runs the agent on `plan` until a [`Control::Shutdown`] arrives (or the
/// control channel closes). `metrics_listen` overrides the plan's;
/// `blackbox` serves blackbox_exporter's /probe on it (the caller keeps a
/// handle to reload its modules).
pub async fn run(
    plan: config::Plan,
    metrics_listen: Option<SocketAddr>,
    blackbox: Option<Arc<crate::blackbox::Endpoint>>,
    mut control: mpsc::Receiver<Control>,
    supervisor: Arc<dyn Supervisor>,
) -> Result<(), RunError> {
    let metrics = Metrics::with_prometheus(
        &plan.agent.id,
        plan.agent.region.as_deref(),
        &plan.prometheus,
    );
    let listen = metrics_listen.or(plan.agent.metrics_listen);
    if blackbox.is_some() && listen.is_none() {
        return Err(StartError::BlackboxWithoutListener.into());
    }

    // The metrics endpoint first, so /healthz answers while starting.
    let (stop_metrics, metrics_stopped) = oneshot::channel::<()>();
    let metrics_task = match listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Metrics { addr, source })?;
            if blackbox.is_some() {
                tracing::info!(%addr, "serving metrics, /healthz, /readyz and /probe");
            } else {
                tracing::info!(%addr, "serving metrics, /healthz and /readyz");
            }
            let shutdown = async {
                let _ = metrics_stopped.await;
            };
            Some(tokio::spawn(metrics::serve(
                listener,
                metrics.clone(),
                blackbox,
                shutdown,
            )))
        }
        None => None,
    };

    let sinks = open_sinks(&plan, &metrics)?;
    let fanout = Fanout::new(&sinks, metrics.clone());
    let mut specs = SpecBuilder::default();
    let infos = check_infos(&plan);
    // The plan's checks move into the scheduler, not copied: at 100 000
    // checks a copy is about 100 MB more at start-up.
    let config::Plan {
        mut agent,
        sinks: mut sink_config,
        checks,
        prometheus,
    } = plan;
    let checks = plan_checks(checks, &mut specs).map_err(StartError::Check)?;
    metrics.set_checks(&infos);
    drop(infos);
    let mut scheduler = Scheduler::new(Prober::new(), fanout, metrics.clone(), agent.concurrency);
    let applied = scheduler.apply(checks);
    tracing::info!(
        checks = applied.started,
        sinks = sinks.len(),
        tls_configs = specs.tls_configs(),
        agent = %agent.id,
        "sonde running"
    );
    metrics.set_ready(true);
    supervisor.ready();

    // Only what a reload compares against is kept; the checks live in the scheduler.
    while let Some(message) = control.recv().await {
        match message {
            Control::Shutdown => break,
            Control::Reload(next) => {
                supervisor.reloading(false);
                match *next {
                    Err(why) => tracing::error!(
                        "reload refused, the running configuration stays in place:\n{why}"
                    ),
                    Ok(next) => {
                        let infos = check_infos(&next);
                        let config::Plan {
                            agent: next_agent,
                            sinks: next_sinks,
                            checks,
                            prometheus: next_prometheus,
                        } = next;
                        match plan_checks(checks, &mut specs) {
                            Err(e) => tracing::error!(
                                "reload refused, the running configuration stays in place: {}",
                                ReloadError::Check(e)
                            ),
                            Ok(checks) => {
                                if next_sinks != sink_config
                                    || next_agent != agent
                                    || next_prometheus != prometheus
                                {
                                    tracing::warn!(
                                        "reload: [agent], [prometheus] and [sinks] changes take effect at the next restart"
                                    );
                                }
                                metrics.set_checks(&infos);
                                let a = scheduler.apply(checks);
                                tracing::info!(
                                    kept = a.kept,
                                    restarted = a.restarted,
                                    started = a.started,
                                    stopped = a.stopped,
                                    "configuration reloaded"
                                );
                                (agent, sink_config) = (next_agent, next_sinks);
                            }
                        }
                    }
                }
                supervisor.reloading(true);
            }
        }
    }

    tracing::info!("stopping: finishing in-flight probes");
    supervisor.stopping();
    metrics.set_ready(false);
    let failed = drain(scheduler, sinks).await;
    let _ = stop_metrics.send(());
    if let Some(task) = metrics_task {
        match task.await {
            Ok(Err(e)) => tracing::error!("metrics endpoint: {e}"),
            Err(e) => tracing::error!("metrics endpoint task: {e}"),
            Ok(Ok(())) => {}
        }
    }
    if failed.is_empty() {
        tracing::info!("stopped: every sink flushed and synced");
        Ok(())
    } else {
        Err(RuntimeError::SinksFailed(failed).into())
    }
}

/// The shutdown order: every in-flight probe finishes and hands its result
/// to the sinks, then each sink is closed (written, flushed, synced). The
/// sinks that failed to close, with why.
async fn drain<P: Probe>(
    scheduler: Scheduler<P>,
    sinks: Vec<SinkHandle>,
) -> Vec<(&'static str, SinkError)> {
    scheduler.shutdown().await;
    let mut failed = Vec::new();
    for sink in sinks {
        let name = sink.name();
        if let Err(e) = sink.close().await {
            tracing::error!(sink = name, "closing sink: {e}");
            failed.push((name, e));
        }
    }
    failed
}

fn open_sinks(plan: &config::Plan, metrics: &Arc<Metrics>) -> Result<Vec<SinkHandle>, StartError> {
    let mut sinks = Vec::new();
    if let Some(file) = &plan.sinks.file {
        let sink = FileSink::open(file, &plan.agent.id).map_err(|source| StartError::FileSink {
            dir: file.dir.clone(),
            source: Box::new(source),
        })?;
        sinks.push(SinkHandle::spawn(
            sink,
            FILE_QUEUE,
            file_linger(file.fsync),
            metrics.clone(),
        ));
    }
    if let Some(stdout) = &plan.sinks.stdout {
        sinks.push(SinkHandle::spawn(
            StdoutSink::new(stdout.format),
            STDOUT_QUEUE,
            Duration::ZERO,
            metrics.clone(),
        ));
    }
    for gateway in &plan.sinks.gateways {
        let sink =
            GatewaySink::open(gateway, &plan.agent.id, metrics.clone()).map_err(|source| {
                StartError::GatewaySink {
                    name: gateway.name.clone(),
                    spool: gateway.spool_dir.clone(),
                    source: Box::new(source),
                }
            })?;
        // No linger: the spool append is cheap, and under load the sender
        // batches whatever piled up while a request was in flight.
        sinks.push(SinkHandle::spawn(
            sink,
            GATEWAY_QUEUE,
            Duration::ZERO,
            metrics.clone(),
        ));
    }
    Ok(sinks)
}

/// How long the file sink gathers a batch: nothing with `fsync = always`
/// (each result is durable before the next), else a tenth of the fsync
/// interval, at most 100 ms — well inside what a crash may lose anyway.
fn file_linger(fsync: config::Fsync) -> Duration {
    match fsync {
        config::Fsync::Always => Duration::ZERO,
        config::Fsync::Every(interval) => (interval / 10).min(Duration::from_millis(100)),
        config::Fsync::Never => Duration::from_millis(100),
    }
}

/// The enabled checks of a plan, each with its probe spec; the checks are
/// moved, not copied.
fn plan_checks(
    checks: Vec<config::Check>,
    specs: &mut SpecBuilder,
) -> Result<Vec<(config::Check, ProbeSpec)>, checks::SpecError> {
    let mut planned = Vec::with_capacity(checks.len());
    for check in checks.into_iter().filter(|c| c.enabled) {
        let spec = specs.spec(&check)?;
        planned.push((check, spec));
    }
    Ok(planned)
}

fn check_infos(plan: &config::Plan) -> Vec<CheckInfo> {
    plan.enabled_checks()
        .map(|c| CheckInfo {
            name: c.name.clone(),
            url: c.url.to_string(),
            labels: c.labels.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
