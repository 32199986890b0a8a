//! sonde's agent: the probe engine, the scheduler, the sinks, metrics.
//!
//! - `probe`: one HTTP(S) probe over a connection sonde opens itself, each
//!   phase (dns, connect, tls, ttfb) timed at the instants that bound it.
//! - `schedule`: when checks are due (pure arithmetic); `run`: the agent's
//!   lifecycle and the scheduler's tasks.
//! - `result`: what flows from probes to sinks; `sink`: file and stdout
//!   behind bounded channels; `metrics`: Prometheus exposition.
//! - `tls`: TLS client configurations, one builder for probes and the
//!   gateway sink.
//! - `retry`: backoff with jitter, Retry-After, a circuit breaker (shared by
//!   `sonde wait` and the gateway sink); `wait`: the deploy gate's engine.
//! - `alert`: the alerter (`sonde alert`): gateways' streams in, rules
//!   across regions, notifications to webhooks and Alertmanager out.
//!
//! The command line lives in the binary (`src/main.rs`, `src/cli/`); this
//! library knows nothing of it.
#![forbid(unsafe_code)]

pub mod alert;
pub mod blackbox;
pub mod metrics;
pub mod probe;
pub mod result;
pub mod retry;
pub mod run;
pub(crate) mod schedule;
pub mod sink;
pub mod tls;
pub mod wait;
