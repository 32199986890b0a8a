//! A real blackbox_exporter (Debian's `prometheus-blackbox-exporter`) on
//! loopback with a module file the test writes, to compare sonde's
//! `/probe` with the exporter it stands in for: same targets, same modules.

use std::path::Path;

use anyhow::Context;

use crate::daemon::Daemon;
use crate::fetch::{self, Fetched};

/// The binary's name in Debian's package.
pub const BLACKBOX_EXPORTER: &str = "prometheus-blackbox-exporter";

/// A running blackbox_exporter; killed and reaped when dropped.
#[derive(Debug)]
pub struct BlackboxExporter {
    daemon: Daemon,
    dir: tempfile::TempDir,
}

impl BlackboxExporter {
    /// Starts it with `modules_yaml` (a blackbox.yml: `modules:` ...) as its
    /// configuration. Fails if it is not installed (see
    /// [`crate::require_tool`]), refuses the file, or does not come up.
    pub fn start(modules_yaml: &str) -> anyhow::Result<BlackboxExporter> {
        let binary =
            crate::find_tool(BLACKBOX_EXPORTER).context("blackbox_exporter is not installed")?;
        let dir = tempfile::tempdir().context("creating blackbox_exporter's temp dir")?;
        let conf = dir.path().join("blackbox.yml");
        std::fs::write(&conf, modules_yaml).context("writing blackbox.yml")?;
        let log = dir.path().join("blackbox.log");
        let daemon = Daemon::start(
            &binary,
            |addr| {
                vec![
                    format!("--config.file={}", conf.display()),
                    format!("--web.listen-address={addr}"),
                ]
            },
            &log,
            "/-/healthy",
        )?;
        Ok(BlackboxExporter { daemon, dir })
    }

    /// `127.0.0.1:PORT`, for a Prometheus scrape config.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.daemon.addr()
    }

    /// `GET /probe?target=TARGET&module=MODULE` (what Prometheus sends,
    /// scrape timeout header included).
    pub fn probe(&self, target: &str, module: &str) -> anyhow::Result<Fetched> {
        probe(self.daemon.addr(), target, module)
    }

    /// The directory holding blackbox.yml and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.daemon.log()
    }
}

/// `GET /probe?target=TARGET&module=MODULE` from any exporter at `addr`
/// (blackbox_exporter or sonde), with a 10 s scrape timeout header as
/// Prometheus sends it.
pub fn probe(addr: std::net::SocketAddr, target: &str, module: &str) -> anyhow::Result<Fetched> {
    let path = format!(
        "/probe?target={}&module={}",
        fetch::encode_query_value(target),
        fetch::encode_query_value(module)
    );
    fetch::get(
        addr,
        &path,
        &[("x-prometheus-scrape-timeout-seconds", "10")],
    )
}
