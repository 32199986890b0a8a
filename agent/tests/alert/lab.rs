//! The alerter's lab, on loopback in one temporary directory: regions
//! (a `sonde gateway` telling its region in the stream's hello, and one
//! `sonde run` agent probing the region's own "api" target and a "web"
//! target every region shares) and `sonde alert` reading every region's
//! gateway, or the alerter a region's gateway runs itself (`[alert]` in
//! gateway.toml); the receivers it notifies are in `receivers`. Every
//! process is killed when its handle drops.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use testkit::http::HttpTarget;

use super::receivers::WEBHOOK_SECRET;
use crate::util::http::{get, metric, scrape};
pub use crate::util::process::wait_for;
use crate::util::process::{Process, free_addr};

const AGENT_TOKEN: &str = "alert-lab-agent-token";
const READER_TOKEN: &str = "alert-lab-reader-token";

/// Epoch milliseconds now (the clock the alerter and the receiver stamp with).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The regions and the target they share, in one temporary directory.
pub struct Lab {
    /// Every region, in the order given.
    pub regions: Vec<Region>,
    /// The "web" check's target, up throughout.
    web: HttpTarget,
    dir: tempfile::TempDir,
}

impl Lab {
    /// A gateway and an agent for each of `regions` (names such as "eu-west").
    pub fn new(regions: &[&str]) -> Lab {
        let mut lab = Lab::empty();
        for r in regions {
            let region = Region::start(lab.dir.path(), r, &lab.web, free_addr(), None);
            lab.regions.push(region);
        }
        lab
    }

    /// The directory and the shared target, no region yet (a receiver
    /// can start in the directory before a region needs its address).
    pub fn empty() -> Lab {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
        Lab {
            regions: Vec::new(),
            web: HttpTarget::plain(),
            dir,
        }
    }

    /// Adds region `name` whose gateway runs the alerter in its own
    /// process: gateway.toml's `[alert]` names an alert.toml (state under
    /// `alert-state`, that gateway its one `[[gateway]]` with the reader
    /// token, the given `[rules]` lines and `[[receiver]]` sections).
    /// Returns once both listen, with the alerter's address.
    pub fn add_region_running_the_alerter(
        &mut self,
        name: &str,
        rules: &str,
        receivers: &[String],
    ) -> InGateway {
        let (addr, listen) = (free_addr(), free_addr());
        let config = write_alert_toml(self.path(), listen, &[(name, addr)], rules, receivers);
        let alert = InGateway {
            addr: listen,
            config,
        };
        let region = Region::start(self.dir.path(), name, &self.web, addr, Some(&alert));
        self.regions.push(region);
        alert
    }

    /// The directory everything writes into.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The alerter a region's gateway runs (`[alert]` in its gateway.toml).
pub struct InGateway {
    /// Its /metrics, /healthz and admin API.
    pub addr: SocketAddr,
    /// Its alert.toml.
    pub config: PathBuf,
}

impl InGateway {
    /// The first sample of `name` with `labels` on its /metrics; 0 when absent.
    pub fn metric(&self, name: &str, labels: &str) -> f64 {
        scrape(self.addr, name, labels)
    }

    /// Its alert.toml, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "\n--- alert.toml (in the gateway) ---\n{}",
            std::fs::read_to_string(&self.config).unwrap_or_default()
        )
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
    /// Its gateway on `addr` (with `alert`, running that alerter too) and
    /// its agent.
    fn start(
        root: &Path,
        name: &str,
        web: &HttpTarget,
        addr: SocketAddr,
        alert: Option<&InGateway>,
    ) -> Region {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let agent_id = format!("{name}-1");
        let gateway_config = dir.join("gateway.toml");
        let mut text = format!(
            "listen = \"{addr}\"\nname = \"gw-{name}\"\nregion = \"{name}\"\n\
             data_dir = \"{}\"\n\n\
             [[agent]]\nid = \"{agent_id}\"\ntoken = {{ env = \"LAB_AGENT_TOKEN\" }}\n\n\
             [[reader]]\nname = \"alerter\"\ntoken = {{ env = \"LAB_READER_TOKEN\" }}\n",
            dir.join("gateway-data").display()
        );
        if let Some(a) = alert {
            text.push_str(&format!("\n[alert]\nconfig = \"{}\"\n", a.config.display()));
        }
        write(&gateway_config, &text);
        let shown = gateway_config.display().to_string();
        // The alerter in the gateway reads alert.toml's secrets from the
        // gateway's environment.
        let mut gateway = Process::start(
            &["gateway", "--config", &shown],
            &[
                ("LAB_AGENT_TOKEN", AGENT_TOKEN),
                ("LAB_READER_TOKEN", READER_TOKEN),
                ("LAB_WEBHOOK_SECRET", WEBHOOK_SECRET),
                ("RUST_LOG", "info"),
            ],
        );
        gateway.wait_listening(addr);
        if let Some(a) = alert {
            gateway.wait_listening(a.addr);
        }
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

    /// SIGTERMs the gateway and waits (20 s) for it to exit; its status.
    pub fn stop_gateway(&mut self) -> i32 {
        self.gateway.signal("TERM");
        self.gateway.wait(Duration::from_secs(20))
    }

    /// The gateway's process id.
    pub fn gateway_pid(&self) -> u32 {
        self.gateway.pid()
    }

    /// The gateway's stderr so far.
    pub fn gateway_log(&self) -> String {
        self.gateway.stderr()
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
        let gateways: Vec<(&str, SocketAddr)> = lab
            .regions
            .iter()
            .map(|r| (r.name.as_str(), r.addr))
            .collect();
        let config = write_alert_toml(lab.path(), addr, &gateways, rules, receivers);
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

    /// SIGTERMs the alerter and waits for a clean exit (status 0).
    #[track_caller]
    pub fn stop(&mut self) {
        self.process.stop();
        self.earlier.push_str(&self.process.describe());
    }

    /// Runs `sonde alert -c alert.toml ARGS...` (`silence list`...) to
    /// its end (20 s at most), with the lab's secrets in its environment.
    pub fn cli(&self, args: &[&str]) -> Cli {
        let shown = self.config.display().to_string();
        let mut all = vec!["alert", "-c", shown.as_str()];
        all.extend_from_slice(args);
        let mut p = Process::start(
            &all,
            &[
                ("LAB_READER_TOKEN", READER_TOKEN),
                ("LAB_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ],
        );
        let code = p.wait(Duration::from_secs(20));
        Cli {
            code,
            stdout: p.stdout(),
            stderr: p.stderr(),
            shown: format!("sonde {}", all.join(" ")),
        }
    }

    /// Starts it again on the same configuration and state directory.
    pub fn restart(&mut self) {
        self.process = Alerter::spawn(&self.config, self.addr);
    }

    /// The first sample of `name` with `labels` (as in
    /// `receiver="hook",outcome="sent"`) on its /metrics; 0 when absent.
    pub fn metric(&self, name: &str, labels: &str) -> f64 {
        scrape(self.addr, name, labels)
    }

    /// Waits (40 s) until it tracks `locations` (region, agent, check)
    /// and judges `checks` checks up.
    #[track_caller]
    pub fn wait_until_up(&self, checks: usize, locations: usize) {
        wait_until_up(self.addr, checks, locations, &|| self.describe());
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

/// What one `sonde alert` command said, and its exit status.
pub struct Cli {
    /// The exit status (-1 when killed by a signal).
    pub code: i32,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
    shown: String,
}

impl Cli {
    /// The command and its output, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "\n$ {} (exit {})\n--- stdout ---\n{}--- stderr ---\n{}",
            self.shown, self.code, self.stdout, self.stderr
        )
    }
}

/// Waits (40 s) until the alerter on `addr` tracks `locations` (region,
/// agent, check) and judges `checks` checks up.
#[track_caller]
pub fn wait_until_up(
    addr: SocketAddr,
    checks: usize,
    locations: usize,
    context: &dyn Fn() -> String,
) {
    wait_for(
        Duration::from_secs(40),
        &format!("{checks} checks up over {locations} locations"),
        context,
        || {
            let body = get(addr, "/metrics").body;
            let up = metric(&body, "sonde_alert_checks", "state=\"up\"") as usize;
            let known = metric(&body, "sonde_alert_locations", "") as usize;
            (up == checks && known == locations).then_some(())
        },
    );
}

/// Whether process `pid` holds the socket listening on `addr` (an IPv4
/// loopback address): its LISTEN entry in /proc/net/tcp, and that socket's
/// inode among the process's descriptors.
pub fn listens(pid: u32, addr: SocketAddr) -> bool {
    let port = format!(":{:04X}", addr.port());
    let inodes: Vec<String> = std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && f[1].ends_with(&port) && f[3] == "0A").then(|| f[9].to_owned())
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| {
            let target = target.to_string_lossy();
            inodes.iter().any(|i| target == format!("socket:[{i}]"))
        })
}

/// Writes `dir/alert.toml`: state under `dir/alert-state`, listening on
/// `listen`, one `[[gateway]]` per (region, address) (named `gw-{region}`,
/// with the reader token), the `[rules]` lines and `[[receiver]]` sections.
fn write_alert_toml(
    dir: &Path,
    listen: SocketAddr,
    gateways: &[(&str, SocketAddr)],
    rules: &str,
    receivers: &[String],
) -> PathBuf {
    let mut text = format!(
        "state_dir = \"{}\"\nlisten = \"{listen}\"\n",
        dir.join("alert-state").display()
    );
    for (region, addr) in gateways {
        text.push_str(&format!(
            "\n[[gateway]]\nname = \"gw-{region}\"\nurl = \"http://{addr}\"\n\
             token = {{ env = \"LAB_READER_TOKEN\" }}\n"
        ));
    }
    text.push_str("\n[rules]\n");
    text.push_str(rules);
    for r in receivers {
        text.push_str(r);
    }
    let config = dir.join("alert.toml");
    write(&config, &text);
    config
}

/// Writes a configuration file, panicking with its path on failure.
pub(super) fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
