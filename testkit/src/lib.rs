//! Loopback test targets for sonde's tests and benchmarks.
//!
//! Every target listens on loopback only (127.0.0.1, optionally ::1) and runs
//! on its own OS thread with its own current-thread tokio runtime, so server
//! work never shares the client's thread or runtime (benchmarks measure the
//! client thread's CPU). Dropping a handle stops its server and joins the thread.
//!
//! - [`pki`]: a test CA, server leaves (valid, expired, not yet valid,
//!   untrusted), client certificates, PEM files on disk.
//! - [`http`]: an HTTP/1.1 + HTTP/2 target, plain or TLS, with per-phase
//!   delays and misbehaviours (garbage, truncated body, trickle, silence).
//! - [`dns`]: a UDP DNS server for A/AAAA with delays and failure rcodes.
//! - [`tcp`]: a refused port and a blackhole whose connects never complete.
//! - [`nginx`]: a real nginx child process for benchmarks against a known
//!   peer; with its echo module installed, also a slow first byte and body.
//! - [`proxy`]: TCP proxies that hold the upstream's first reply (delays a
//!   real server's TLS handshake) or cut it off (an outage).
//! - [`forward_proxy`]: an HTTP forward proxy (CONNECT tunnels and
//!   absolute-form requests) that records what it was asked, can demand
//!   credentials and can hold its answer to CONNECT.
//! - [`prometheus`]: a real Prometheus child process (scrape configs and
//!   rule files from the test, instant queries over its HTTP API) and
//!   promtool's checks.
//! - [`blackbox`]: a real blackbox_exporter child process with the test's
//!   module file, to compare sonde's `/probe` with.
//! - [`nats`]: real nats-server child processes with JetStream, one node or
//!   a three-node cluster, killed and restarted on the same ports and store.
//! - [`browser`]: headless Chromium over WebDriver, for the live page.
//! - [`fetch`]: a URL's text over plain HTTP/1.1, and the samples of a
//!   Prometheus text or OpenMetrics answer.
//!
//! Panicking on setup failure (with a message saying what failed) is the
//! convention here: these are test tools, not production code.
#![forbid(unsafe_code)]

pub mod blackbox;
pub mod browser;
mod daemon;
pub mod dns;
pub mod fetch;
pub mod forward_proxy;
pub mod http;
pub mod nats;
pub mod nginx;
pub mod pki;
pub mod prometheus;
pub mod proxy;
pub mod tcp;
mod thread;
mod tools;

pub use tools::{find_tool, require_python, require_root, require_tool};

/// Whether this host can bind `[::1]:0` (IPv6 loopback), for tests that
/// want to exercise IPv6 and must skip cleanly where it is disabled.
pub fn ipv6_available() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}
