//! The agent's integration tests, one binary (ripgrep's layout): one module
//! per area, the sonde binary and real servers on loopback; helpers in util.
#![allow(
    clippy::disallowed_types,
    reason = "end-to-end tests time real processes and sockets"
)]

// Some helpers serve only the gateway's tests, which need the feature.
#[cfg_attr(not(feature = "gateway"), allow(dead_code))]
mod util;

#[cfg(feature = "gateway")]
mod alert;
mod blackbox;
mod cli_probe;
mod curl_flags;
mod decode_cli;
mod dns;
mod faults;
#[cfg(feature = "gateway")]
mod gateway_cli;
#[cfg(feature = "gateway")]
mod gateway_e2e;
#[cfg(feature = "gateway")]
mod gateway_failover;
#[cfg(feature = "gateway")]
mod gateway_tls;
#[cfg(feature = "gateway")]
mod jetstream;
#[cfg(feature = "gateway")]
mod live_page;
#[cfg(feature = "gateway")]
mod live_page_oidc;
mod probe_engine;
mod prometheus;
mod proxy;
mod run_agent;
mod sink_file;
mod wait_cli;
