//! sonde beside the real things a Prometheus user runs (issue 14): the
//! same targets and module file given to blackbox_exporter and to sonde's
//! `/probe` (side_by_side), a real Prometheus scraping both of sonde's
//! endpoints and evaluating the shipped rules (end_to_end), and the shipped
//! examples checked on their own (examples). Each test skips without
//! Debian's `prometheus` / `prometheus-blackbox-exporter`, and fails under
//! `SONDE_REQUIRE_TOOLS=1`.

mod end_to_end;
mod examples;
mod side_by_side;
mod targets;

use std::net::SocketAddr;
use std::path::Path;

use crate::util::process::{Process, free_addr};

/// The region the test agents run in (a label on every per-check series).
pub const REGION: &str = "test-region";

/// A `sonde run` serving `/metrics` and `/probe` on loopback.
pub struct Agent {
    pub process: Process,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// One scheduled check of a test agent.
pub struct Check<'a> {
    pub name: &'a str,
    pub url: String,
    /// `tls = { ca_file = ... }`, for the TLS targets.
    pub ca_file: Option<&'a Path>,
}

/// Starts `sonde run --metrics-listen ADDR --blackbox-config MODULES` with
/// `checks` scheduled every second (none: `/probe` only), in
/// [`REGION`], each check labelled `team="web"`.
pub fn start_agent(modules: &Path, checks: &[Check<'_>]) -> Agent {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut conf = format!(
        "[agent]\nid = \"parity\"\nregion = \"{REGION}\"\nstate_dir = \"{}\"\n\
         [defaults]\ninterval = \"1s\"\ntimeout = \"900ms\"\nfollow_redirects = 5\n\
         [sinks.file]\nenabled = true\n",
        dir.path().display()
    );
    for c in checks {
        conf.push_str(&format!(
            "[[check]]\nname = \"{}\"\nurl = \"{}\"\nlabels = {{ team = \"web\" }}\n",
            c.name, c.url
        ));
        if let Some(ca) = c.ca_file {
            conf.push_str(&format!("tls = {{ ca_file = \"{}\" }}\n", ca.display()));
        }
    }
    let path = dir.path().join("sonde.toml");
    std::fs::write(&path, conf).unwrap_or_else(|e| panic!("writing sonde.toml: {e}"));
    let addr = free_addr();
    let (config, listen, blackbox) = (
        path.display().to_string(),
        addr.to_string(),
        modules.display().to_string(),
    );
    let mut process = Process::start(
        &[
            "run",
            "--config",
            &config,
            "--metrics-listen",
            &listen,
            "--blackbox-config",
            &blackbox,
        ],
        &[],
    );
    process.wait_listening(addr);
    Agent {
        process,
        addr,
        _dir: dir,
    }
}

/// Whether every real tool these tests need is installed (the
/// `require_tool` convention: a loud skip, or a failure in CI).
pub fn require_tools(tools: &[&str]) -> bool {
    tools.iter().all(|t| testkit::require_tool(t))
}
