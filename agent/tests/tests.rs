//! The agent's integration tests, one binary (ripgrep's layout): one module
//! per area, the sonde binary and real servers on loopback; helpers in util.

mod util;

mod cli_probe;
mod decode_cli;
mod gateway_cli;
mod gateway_e2e;
mod gateway_tls;
mod probe_engine;
mod run_agent;
mod sink_file;
mod wait_cli;
