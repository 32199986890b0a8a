//! The alerter's lab, on loopback in one temporary directory: regions
//! (a `sonde gateway` telling its region in the stream's hello, and one
//! `sonde run` agent probing the region's own "api" target and a "web"
//! target every region shares) and `sonde alert` reading every region's
//! gateway; the receivers it notifies are in `receivers`. Every process
//! is killed when its handle drops.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use testkit::http::HttpTarget;

use super::receivers::WEBHOOK_SECRET;
use crate::util::http::{get, metric};
use crate::util::process::{Process, free_addr};

const AGENT_TOKEN: &str = "alert-lab-agent-token";
const READER_TOKEN: &str = "alert-lab-reader-token";

/// Epoch milliseconds now (the clock the alerter and the receiver stamp with).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Polls `probe` every 50 ms until it gives a value; after `limit`, panics
/// naming `what`, with `context()` (the processes' output, the receiver's log).
#[track_caller]
pub fn wait_for<T>(
    limit: Duration,
    what: &str,
    context: &dyn Fn() -> String,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The regions and the target they share, in one temporary directory.
pub struct Lab {
    /// Every region, in the order given.
    pub regions: Vec<Region>,
    /// The "web" check's target, up throughout (kept alive here).
    _web: HttpTarget,
    dir: tempfile::TempDir,
}

impl Lab {
    /// A gateway and an agent for each of `regions` (names such as "eu-west").
    pub fn new(regions: &[&str]) -> Lab {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
        let web = HttpTarget::plain();
        let regions = regions
            .iter()
            .map(|r| Region::start(dir.path(), r, &web))
            .collect();
        Lab {
            regions,
            _web: web,
            dir,
        }
    }

    /// The directory everything writes into.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// One region: its gateway, its agent (`{region}-1`) and its "api" target.
pub struct Region {
    /// The region's name, as its gateway's hello tells it.
    pub name: String,
    /// What this region's agent probes as "api" (take it down with
    /// `set_status(Some(503))`).
    pub target: HttpTarget,
    /// The gateway's address.
    pub addr: SocketAddr,
    agent_config: PathBuf,
    agent: Option<Process>,
    gateway: Process,
}

impl Region {
    fn start(root: &Path, name: &str, web: &HttpTarget) -> Region {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let addr = free_addr();
        let agent_id = format!("{name}-1");
        let gateway_config = dir.join("gateway.toml");
        write(
            &gateway_config,
            &format!(
                "listen = \"{addr}\"\nname = \"gw-{name}\"\nregion = \"{name}\"\n\
                 data_dir = \"{}\"\n\n\
                 [[agent]]\nid = \"{agent_id}\"\ntoken = {{ env = \"LAB_AGENT_TOKEN\" }}\n\n\
                 [[reader]]\nname = \"alerter\"\ntoken = {{ env = \"LAB_READER_TOKEN\" }}\n",
                dir.join("gateway-data").display()
            ),
        );
        let shown = gateway_config.display().to_string();
        let mut gateway = Process::start(
            &["gateway", "--config", &shown],
            &[
                ("LAB_AGENT_TOKEN", AGENT_TOKEN),
                ("LAB_READER_TOKEN", READER_TOKEN),
            ],
        );
        gateway.wait_listening(addr);
        let target = HttpTarget::plain();
        let agent_config = dir.join("sonde.toml");
        write(
            &agent_config,
            &format!(
                "[agent]\nid = \"{agent_id}\"\nstate_dir = \"{}\"\n\
                 [defaults]\ninterval = \"1s\"\ntimeout = \"900ms\"\n\
                 [[sinks.gateway]]\nurl = \"http://{addr}\"\n\
                 token = {{ env = \"LAB_AGENT_TOKEN\" }}\n\
                 [[check]]\nname = \"api\"\nurl = \"{}\"\n\
                 [[check]]\nname = \"web\"\nurl = \"{}\"\n",
                dir.join("agent-state").display(),
                target.url("/api"),
                web.url("/web"),
            ),
        );
        let mut region = Region {
            name: name.to_owned(),
            target,
            addr,
            agent_config,
            agent: None,
            gateway,
        };
        region.start_agent();
        region
    }

    /// Starts the agent (again), with the same state directory.
    pub fn start_agent(&mut self) {
        let shown = self.agent_config.display().to_string();
        self.agent = Some(Process::start(
            &["run", "--config", &shown],
            &[("LAB_AGENT_TOKEN", AGENT_TOKEN), ("RUST_LOG", "info")],
        ));
    }

    /// SIGKILLs the agent and reaps it.
    pub fn kill_agent(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            agent.signal("KILL");
            agent.wait(Duration::from_secs(10));
        }
    }

    /// The gateway's and the agent's output, for failure messages.
    pub fn describe(&self) -> String {
        let agent = self.agent.as_ref().map_or(String::new(), Process::describe);
        format!(
            "\n=== region {} ===\n{}{agent}",
            self.name,
            self.gateway.describe()
        )
    }
}

/// `sonde alert`, reading every region of a lab.
pub struct Alerter {
    /// Its /metrics and admin API.
    pub addr: SocketAddr,
    config: PathBuf,
    process: Process,
    /// Earlier runs' output (before a kill), for failure messages.
    earlier: String,
}

impl Alerter {
    /// Writes alert.toml (state under the lab's `alert-state`, the given
    /// `[rules]` lines and `[[receiver]]` sections) and starts the alerter.
    pub fn start(lab: &Lab, rules: &str, receivers: &[String]) -> Alerter {
        let addr = free_addr();
        let mut text = format!(
            "state_dir = \"{}\"\nlisten = \"{addr}\"\n",
            lab.path().join("alert-state").display()
        );
        for r in &lab.regions {
            text.push_str(&format!(
                "\n[[gateway]]\nname = \"gw-{}\"\nurl = \"http://{}\"\n\
                 token = {{ env = \"LAB_READER_TOKEN\" }}\n",
                r.name, r.addr
            ));
        }
        text.push_str("\n[rules]\n");
        text.push_str(rules);
        for r in receivers {
            text.push_str(r);
        }
        let config = lab.path().join("alert.toml");
        write(&config, &text);
        let process = Alerter::spawn(&config, addr);
        Alerter {
            addr,
            config,
            process,
            earlier: String::new(),
        }
    }

    fn spawn(config: &Path, addr: SocketAddr) -> Process {
        let shown = config.display().to_string();
        let mut process = Process::start(
            &["alert", "--config", &shown],
            &[
                ("LAB_READER_TOKEN", READER_TOKEN),
                ("LAB_WEBHOOK_SECRET", WEBHOOK_SECRET),
                ("RUST_LOG", "info"),
            ],
        );
        process.wait_listening(addr);
        process
    }

    /// SIGKILLs the alerter and reaps it.
    pub fn kill(&mut self) {
        self.process.signal("KILL");
        self.process.wait(Duration::from_secs(10));
        self.earlier.push_str(&self.process.describe());
    }

    /// Starts it again on the same configuration and state directory.
    pub fn restart(&mut self) {
        self.process = Alerter::spawn(&self.config, self.addr);
    }

    /// The first sample of `name` with `labels` (as in
    /// `receiver="hook",outcome="sent"`) on its /metrics; 0 when absent.
    pub fn metric(&self, name: &str, labels: &str) -> f64 {
        metric(&get(self.addr, "/metrics").body, name, labels)
    }

    /// Waits (40 s) until it tracks `locations` (region, agent, check)
    /// and judges `checks` checks up.
    #[track_caller]
    pub fn wait_until_up(&self, checks: usize, locations: usize) {
        let context = || self.describe();
        wait_for(
            Duration::from_secs(40),
            &format!("{checks} checks up over {locations} locations"),
            &context,
            || {
                let body = get(self.addr, "/metrics").body;
                let up = metric(&body, "sonde_alert_checks", "state=\"up\"") as usize;
                let known = metric(&body, "sonde_alert_locations", "") as usize;
                (up == checks && known == locations).then_some(())
            },
        );
    }

    /// The ids of the events of `kind` (`check.down`...) this run has
    /// logged as notified, in order.
    pub fn notified(&self, kind: &str) -> Vec<String> {
        let kind = format!("\"{kind}\"");
        self.process
            .stderr()
            .lines()
            .filter(|l| l.contains("notifying") && l.contains(&kind))
            .filter_map(|l| l.split_once("event=").map(|(_, rest)| rest))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }

    /// Its output (earlier runs' too), for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "\n=== alerter ===\n{}{}\n--- alert.toml ---\n{}",
            self.earlier,
            self.process.describe(),
            std::fs::read_to_string(&self.config).unwrap_or_default()
        )
    }
}

/// Writes a configuration file, panicking with its path on failure.
pub(super) fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
