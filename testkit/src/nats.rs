//! A real NATS server with JetStream (Debian's `nats-server`) on loopback,
//! for the JetStream tests: one node or a three-node cluster, each node a
//! child process with its own temp dir (config, JetStream store, log) and
//! free 127.0.0.1 ports. Nodes are killed, stopped and restarted on the
//! same ports and store, one at a time or all together. It does not speak
//! NATS itself: tests bring their client (async-nats, nats-py). Gate tests
//! with `testkit::require_tool(NATS_SERVER)`.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use crate::fetch;

/// The server binary's name (Debian's package `nats-server`, in /usr/sbin).
pub const NATS_SERVER: &str = "nats-server";
/// The cluster's name (`cluster { name }`), also what `/jsz` reports.
pub const CLUSTER_NAME: &str = "sonde";

/// How long every running node may take to be ready (electing a meta
/// leader after the leader's SIGKILL or a full restart took 4 to 7 s here).
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a node may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at starting a cluster when a picked port is taken before
/// nats-server binds it (new ports each time).
const START_ATTEMPTS: usize = 4;
/// Between readiness polls.
const POLL: Duration = Duration::from_millis(50);
/// Before binding a restarted node's ports again when one was held.
const REBIND_PAUSE: Duration = Duration::from_millis(200);
/// Lines of a node's log shown when it fails.
const LOG_TAIL_LINES: usize = 40;
/// What nats-server logs when a port is taken.
const PORT_TAKEN: &str = "address already in use";

/// Who may connect on the client ports (the monitor and route ports take
/// no credentials). Values must not contain `"`, `\` or control characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// Anyone.
    #[default]
    None,
    /// `authorization { user, password }`.
    UserPassword {
        /// The user name.
        user: String,
        /// Its password, in plain text in the config.
        password: String,
    },
    /// `authorization { token }`.
    Token(String),
}

/// A running NATS cluster (1 or 3 nodes); every node is killed and reaped
/// when dropped, then the temp dirs are removed.
#[derive(Debug)]
pub struct NatsCluster {
    binary: PathBuf,
    nodes: Vec<Node>,
}

#[derive(Debug)]
struct Node {
    name: String,
    ports: Ports,
    /// Holds `nats.conf`, `store/` (the JetStream store_dir) and `nats.log`.
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Where this life's output starts in `nats.log` (a restart appends).
    log_start: usize,
}

/// One node's listeners, all on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ports {
    client: SocketAddr,
    cluster: SocketAddr,
    monitor: SocketAddr,
}

/// Why waiting for readiness ended without it.
#[derive(Debug)]
enum NotReady {
    /// Node `.0` exited because one of its ports was taken.
    PortTaken(usize),
    Failed(anyhow::Error),
}

impl NatsCluster {
    /// Starts `nodes` (1 or 3) nodes without client authorization and
    /// waits until they are ready: see [`NatsCluster::wait_ready`].
    pub fn start(nodes: usize) -> anyhow::Result<NatsCluster> {
        Self::start_with(nodes, &Auth::None)
    }

    /// Starts `nodes` (1 or 3) nodes whose client ports ask for `auth`,
    /// and waits until they are ready. Fails if nats-server is not
    /// installed (see [`crate::require_tool`]), exits, or is not ready
    /// within 20 s (the error holds every node's log tail).
    pub fn start_with(nodes: usize, auth: &Auth) -> anyhow::Result<NatsCluster> {
        if nodes != 1 && nodes != 3 {
            bail!("a NATS cluster here has 1 or 3 nodes, not {nodes}");
        }
        check_auth(auth)?;
        let binary = crate::find_tool(NATS_SERVER).context("nats-server is not installed")?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let mut cluster = NatsCluster {
                binary: binary.clone(),
                nodes: prepare(nodes, auth)?,
            };
            for i in 0..nodes {
                cluster.spawn(i)?;
            }
            match cluster.wait(false, false) {
                Ok(()) => return Ok(cluster),
                // Dropping `cluster` kills the other nodes; the next
                // attempt picks new ports in new dirs.
                Err(NotReady::PortTaken(i)) => {
                    last_error = Some(anyhow!(
                        "node {i}'s port was taken at startup:\n{}",
                        cluster.log_tail(i)
                    ));
                }
                Err(NotReady::Failed(e)) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("nats-server did not start")))
    }

    /// How many nodes the cluster has (running or not).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether it has no nodes (never: a cluster starts with 1 or 3).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// `nats://127.0.0.1:PORT` of node `i`'s client port.
    pub fn client_url(&self, i: usize) -> String {
        format!("nats://{}", self.node(i).ports.client)
    }

    /// Every node's [`NatsCluster::client_url`], in node order.
    pub fn client_urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.client_url(i)).collect()
    }

    /// Node `i`'s HTTP monitoring address (`/varz`, `/jsz`, `/healthz`).
    pub fn monitor_addr(&self, i: usize) -> SocketAddr {
        self.node(i).ports.monitor
    }

    /// Node `i`'s `server_name` (`n0`, `n1`, `n2`), as `/jsz` names the leader.
    pub fn server_name(&self, i: usize) -> &str {
        &self.node(i).name
    }

    /// Node `i`'s directory: `nats.conf`, `store/`, `nats.log`.
    pub fn dir(&self, i: usize) -> &Path {
        self.node(i).dir.path()
    }

    /// Node `i`'s log so far, every life of it (stdout and stderr).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.node(i).dir.path().join("nats.log")).unwrap_or_default()
    }

    /// Whether node `i`'s process is alive (reaps it if it has exited).
    pub fn is_running(&mut self, i: usize) -> bool {
        let node = self.node_mut(i);
        if let Some(child) = &mut node.child {
            if matches!(child.try_wait(), Ok(None)) {
                return true;
            }
        }
        node.child = None;
        false
    }

    /// SIGKILLs node `i` and waits for it to exit (no-op if it is not running).
    pub fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        let name = self.node(i).name.clone();
        if let Some(mut child) = self.node_mut(i).child.take() {
            child
                .kill()
                .with_context(|| format!("killing node {i} ({name})"))?;
            child
                .wait()
                .with_context(|| format!("reaping node {i} ({name})"))?;
        }
        Ok(())
    }

    /// SIGKILLs every node, then waits for each to exit.
    pub fn kill_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.nodes.len() {
            self.kill(i)?;
        }
        Ok(())
    }

    /// SIGTERMs node `i` (a clean shutdown: a meta leader hands over at
    /// once) and waits up to 10 s for it to exit, then SIGKILLs it and
    /// fails. A no-op if it is not running.
    pub fn stop(&mut self, i: usize) -> anyhow::Result<()> {
        if !self.is_running(i) {
            return Ok(());
        }
        let Some(pid) = self.node(i).child.as_ref().map(Child::id) else {
            return Ok(());
        };
        // nats-server sends the signal itself: no other tool needed.
        let status = Command::new(&self.binary)
            .arg(format!("--signal=term={pid}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running nats-server --signal=term")?;
        if !status.success() {
            bail!("nats-server --signal=term={pid} exited {status}");
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while self.is_running(i) {
            if Instant::now() > deadline {
                self.kill(i)?;
                bail!(
                    "node {i} did not exit within {STOP_TIMEOUT:?} of SIGTERM:\n{}",
                    self.log_tail(i)
                );
            }
            std::thread::sleep(POLL);
        }
        Ok(())
    }

    /// Starts node `i` again (it must not be running) with its ports,
    /// config and JetStream store, and waits until every running node is
    /// ready ([`NatsCluster::wait_ready`]).
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        if self.is_running(i) {
            bail!("node {i} is running: kill or stop it before restarting it");
        }
        self.spawn(i)?;
        self.wait_all(false)
    }

    /// Starts every node that is not running, all before waiting (a
    /// JetStream cluster needs a quorum to elect its meta leader), then
    /// waits until all are ready.
    pub fn restart_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.nodes.len() {
            if !self.is_running(i) {
                self.spawn(i)?;
            }
        }
        self.wait_all(false)
    }

    /// Waits up to 20 s until every running node answers
    /// `GET /healthz?js-enabled-only=true` with 200 and, in a three-node
    /// cluster, every running node's `GET /jsz` names the same meta leader
    /// (`meta_cluster.leader`), itself a running node. So after a kill it
    /// waits for the survivors' new leader (two of three are a quorum;
    /// one alone never is). The error says what each node answered and
    /// holds their log tails.
    pub fn wait_ready(&mut self) -> anyhow::Result<()> {
        self.wait_all(false)
    }

    /// [`NatsCluster::wait_ready`], and then until every running node's
    /// plain `GET /healthz` answers 200: its replicas of streams and
    /// consumers have caught up (a restarted node is ready before it is
    /// current), so killing another node still leaves each stream a
    /// current majority.
    pub fn wait_current(&mut self) -> anyhow::Result<()> {
        self.wait_all(true)
    }

    /// The index of the meta leader every running node agrees on, if they
    /// do (none in a single node, which has no meta group).
    pub fn meta_leader(&mut self) -> Option<usize> {
        if self.nodes.len() == 1 {
            return None;
        }
        let running = self.running();
        let reported: Vec<Option<String>> = running
            .iter()
            .map(|&i| jsz_leader(self.nodes[i].ports.monitor).unwrap_or(None))
            .collect();
        let names: Vec<&str> = running.iter().map(|&i| self.server_name(i)).collect();
        let leader = agreed_leader(&reported, &names)?;
        self.nodes.iter().position(|n| n.name == leader)
    }

    fn node(&self, i: usize) -> &Node {
        let len = self.nodes.len();
        self.nodes
            .get(i)
            .unwrap_or_else(|| panic!("no node {i} in a {len}-node NATS cluster"))
    }

    fn node_mut(&mut self, i: usize) -> &mut Node {
        let len = self.nodes.len();
        self.nodes
            .get_mut(i)
            .unwrap_or_else(|| panic!("no node {i} in a {len}-node NATS cluster"))
    }

    fn running(&mut self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.is_running(i))
            .collect()
    }

    /// Launches node `i`, its output appended to its log.
    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let binary = self.binary.clone();
        let node = self.node_mut(i);
        let log_path = node.dir.path().join("nats.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        node.log_start = std::fs::metadata(&log_path)
            .map(|m| usize::try_from(m.len()).unwrap_or(usize::MAX))
            .unwrap_or(0);
        let err = log.try_clone().context("duplicating the log file")?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(node.dir.path().join("nats.conf"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .with_context(|| format!("running {}", binary.display()))?;
        node.child = Some(child);
        Ok(())
    }

    fn wait_all(&mut self, current: bool) -> anyhow::Result<()> {
        self.wait(true, current).map_err(|e| match e {
            NotReady::PortTaken(i) => anyhow!(
                "node {i}'s port was still taken after {READY_TIMEOUT:?}:\n{}",
                self.log_tail(i)
            ),
            NotReady::Failed(e) => e,
        })
    }

    /// Polls until every running node is ready (and `current`, if asked);
    /// with `rebind`, a node that exited because its port was held is
    /// launched again (same ports) until the deadline.
    fn wait(&mut self, rebind: bool, current: bool) -> Result<(), NotReady> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            for i in 0..self.nodes.len() {
                let Some(child) = &mut self.nodes[i].child else {
                    continue;
                };
                let Ok(Some(status)) = child.try_wait() else {
                    continue;
                };
                self.nodes[i].child = None;
                if self.this_life(i).contains(PORT_TAKEN) {
                    if !rebind || Instant::now() > deadline {
                        return Err(NotReady::PortTaken(i));
                    }
                    std::thread::sleep(REBIND_PAUSE);
                    self.spawn(i).map_err(NotReady::Failed)?;
                    continue;
                }
                return Err(NotReady::Failed(anyhow!(
                    "node {i} ({}) exited ({status}):\n{}",
                    self.nodes[i].name,
                    self.log_tail(i)
                )));
            }
            let running = self.running();
            if running.is_empty() {
                return Err(NotReady::Failed(anyhow!("no NATS node is running")));
            }
            let views: Vec<View> = running.iter().map(|&i| self.view(i, current)).collect();
            if self.is_ready(&running, &views, current) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let seen: String = running
                    .iter()
                    .zip(&views)
                    .map(|(&i, v)| format!("\n  node {i} ({}): {}", self.nodes[i].name, v))
                    .collect();
                let logs: String = running
                    .iter()
                    .map(|&i| format!("\n--- node {i} log ---\n{}", self.log_tail(i)))
                    .collect();
                return Err(NotReady::Failed(anyhow!(
                    "the NATS cluster was not ready within {READY_TIMEOUT:?}:{seen}{logs}"
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// What node `i`'s monitor answers now (the plain healthz if `current`).
    fn view(&self, i: usize, current: bool) -> View {
        let monitor = self.nodes[i].ports.monitor;
        let status = |path| {
            fetch::get(monitor, path, &[])
                .map(|f| Health {
                    status: f.status,
                    body: f.text().trim().to_owned(),
                })
                .map_err(|e| format!("{e:#}"))
        };
        let healthz = status("/healthz?js-enabled-only=true");
        let leader = if self.nodes.len() > 1 && is_ok(&healthz) {
            jsz_leader(monitor).map_err(|e| format!("{e:#}"))
        } else {
            Ok(None)
        };
        let current = (current && is_ok(&healthz)).then(|| status("/healthz"));
        View {
            healthz,
            leader,
            current,
        }
    }

    fn is_ready(&self, running: &[usize], views: &[View], current: bool) -> bool {
        let healthy =
            |v: &View| is_ok(&v.healthz) && (!current || v.current.as_ref().is_some_and(is_ok));
        if !views.iter().all(healthy) {
            return false;
        }
        if self.nodes.len() == 1 {
            return true;
        }
        let reported: Vec<Option<String>> = views
            .iter()
            .map(|v| v.leader.clone().unwrap_or(None))
            .collect();
        let names: Vec<&str> = running
            .iter()
            .map(|&i| self.nodes[i].name.as_str())
            .collect();
        agreed_leader(&reported, &names).is_some()
    }

    /// Node `i`'s output since its last launch.
    fn this_life(&self, i: usize) -> String {
        self.log(i)
            .get(self.nodes[i].log_start..)
            .unwrap_or_default()
            .to_owned()
    }

    /// The end of node `i`'s log without the warning nats-server logs for
    /// every failed `/healthz` (one per poll: they would fill the tail;
    /// the last answer is in the error already).
    fn log_tail(&self, i: usize) -> String {
        let log: String = self
            .log(i)
            .lines()
            .filter(|l| !l.contains("Healthcheck failed"))
            .map(|l| format!("{l}\n"))
            .collect();
        tail(&log, LOG_TAIL_LINES)
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// One node's monitor answers in one readiness poll.
#[derive(Debug)]
struct View {
    /// `/healthz?js-enabled-only=true`.
    healthz: Result<Health, String>,
    leader: Result<Option<String>, String>,
    /// The plain `/healthz`, when asked for.
    current: Option<Result<Health, String>>,
}

/// A `/healthz` answer: `{"status":"ok"}` or what is unavailable.
#[derive(Debug)]
struct Health {
    status: u16,
    body: String,
}

fn is_ok(health: &Result<Health, String>) -> bool {
    health.as_ref().is_ok_and(|h| h.status == 200)
}

impl std::fmt::Display for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.healthz {
            Ok(h) => write!(f, "healthz {} {}", h.status, h.body)?,
            Err(e) => write!(f, "healthz failed: {e}")?,
        }
        match &self.leader {
            Ok(Some(name)) => write!(f, ", meta leader {name}")?,
            Ok(None) => write!(f, ", no meta leader")?,
            Err(e) => write!(f, ", jsz failed: {e}")?,
        }
        match &self.current {
            None => Ok(()),
            Some(Ok(h)) => write!(f, ", plain healthz {} {}", h.status, h.body),
            Some(Err(e)) => write!(f, ", plain healthz failed: {e}"),
        }
    }
}

/// Fresh dirs, ports and configs for `count` nodes (not started).
fn prepare(count: usize, auth: &Auth) -> anyhow::Result<Vec<Node>> {
    let ports = pick_ports(count)?;
    let mut nodes = Vec::with_capacity(count);
    for (i, own) in ports.iter().enumerate() {
        let name = format!("n{i}");
        let dir = tempfile::Builder::new()
            .prefix(&format!("sonde-nats-{name}-"))
            .tempdir()
            .context("creating a NATS node's temp dir")?;
        let routes: Vec<SocketAddr> = ports
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, p)| p.cluster)
            .collect();
        let clustered = (count > 1).then_some(routes.as_slice());
        let store = dir.path().join("store");
        let conf = config(&name, *own, &store, clustered, auth);
        let path = dir.path().join("nats.conf");
        std::fs::write(&path, conf).with_context(|| format!("writing {}", path.display()))?;
        nodes.push(Node {
            name,
            ports: *own,
            dir,
            child: None,
            log_start: 0,
        });
    }
    Ok(nodes)
}

/// Three distinct free loopback ports per node, all held while picking.
fn pick_ports(count: usize) -> anyhow::Result<Vec<Ports>> {
    let held = (0..count * 3)
        .map(|_| TcpListener::bind("127.0.0.1:0").context("picking a free loopback port"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let addrs = held
        .iter()
        .map(|l| l.local_addr().context("reading a picked port"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(addrs
        .chunks_exact(3)
        .map(|a| Ports {
            client: a[0],
            cluster: a[1],
            monitor: a[2],
        })
        .collect())
}

fn check_auth(auth: &Auth) -> anyhow::Result<()> {
    let values: Vec<&str> = match auth {
        Auth::None => vec![],
        Auth::UserPassword { user, password } => vec![user, password],
        Auth::Token(token) => vec![token],
    };
    for value in values {
        if value
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_control())
        {
            bail!("NATS credentials with '\"', '\\' or control characters are not supported here");
        }
    }
    Ok(())
}

/// One node's nats.conf: listeners on `ports`, JetStream in `store`, a
/// cluster block when `routes` (the other nodes' cluster ports) is given
/// (pure).
fn config(
    name: &str,
    ports: Ports,
    store: &Path,
    routes: Option<&[SocketAddr]>,
    auth: &Auth,
) -> String {
    let mut s = format!(
        "server_name: \"{name}\"\n\
         listen: \"{}\"\n\
         http: \"{}\"\n\
         jetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 64MB\n  max_file_store: 1GB\n}}\n",
        ports.client,
        ports.monitor,
        store.display()
    );
    if let Some(routes) = routes {
        s.push_str(&format!(
            "cluster {{\n  name: \"{CLUSTER_NAME}\"\n  listen: \"{}\"\n  routes: [\n",
            ports.cluster
        ));
        for route in routes {
            s.push_str(&format!("    \"nats-route://{route}\"\n"));
        }
        s.push_str("  ]\n}\n");
    }
    match auth {
        Auth::None => {}
        Auth::UserPassword { user, password } => s.push_str(&format!(
            "authorization {{\n  user: \"{user}\"\n  password: \"{password}\"\n}}\n"
        )),
        Auth::Token(token) => {
            s.push_str(&format!("authorization {{\n  token: \"{token}\"\n}}\n"));
        }
    }
    s
}

/// The meta leader `/jsz` at `monitor` names, if any.
fn jsz_leader(monitor: SocketAddr) -> anyhow::Result<Option<String>> {
    let answer = fetch::get(monitor, "/jsz", &[])?;
    if answer.status != 200 {
        bail!("/jsz answered {}", answer.status);
    }
    meta_leader_in(&answer.text())
}

/// `meta_cluster.leader` of a `/jsz` answer; absent or empty is none (pure).
fn meta_leader_in(jsz: &str) -> anyhow::Result<Option<String>> {
    let json: serde_json::Value = serde_json::from_str(jsz).context("/jsz is not JSON")?;
    Ok(json["meta_cluster"]["leader"]
        .as_str()
        .filter(|l| !l.is_empty())
        .map(str::to_owned))
}

/// The leader every node `reported`, if they all name the same one and it
/// is among the `running` server names: followers of a SIGKILLed leader
/// keep naming it until they elect another (pure).
fn agreed_leader(reported: &[Option<String>], running: &[&str]) -> Option<String> {
    let first = reported.first()?.as_deref()?;
    let all_agree = reported.iter().all(|r| r.as_deref() == Some(first));
    (all_agree && running.contains(&first)).then(|| first.to_owned())
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(base: u16) -> Ports {
        let at = |p| SocketAddr::from(([127, 0, 0, 1], p));
        Ports {
            client: at(base),
            cluster: at(base + 1),
            monitor: at(base + 2),
        }
    }

    #[test]
    fn a_clustered_config_routes_to_the_others_and_sets_the_limits() {
        let routes = [ports(5000).cluster, ports(6000).cluster];
        let conf = config(
            "n1",
            ports(4000),
            Path::new("/t/store"),
            Some(&routes),
            &Auth::None,
        );
        assert_eq!(
            conf,
            "server_name: \"n1\"\n\
             listen: \"127.0.0.1:4000\"\n\
             http: \"127.0.0.1:4002\"\n\
             jetstream {\n  store_dir: \"/t/store\"\n  max_memory_store: 64MB\n  max_file_store: 1GB\n}\n\
             cluster {\n  name: \"sonde\"\n  listen: \"127.0.0.1:4001\"\n  routes: [\n\
             \x20   \"nats-route://127.0.0.1:5001\"\n\
             \x20   \"nats-route://127.0.0.1:6001\"\n  ]\n}\n"
        );
    }

    #[test]
    fn a_single_node_config_has_no_cluster_and_its_authorization() {
        let user = Auth::UserPassword {
            user: "probe".into(),
            password: "p$ss w#rd".into(),
        };
        let conf = config("n0", ports(4000), Path::new("/t/s"), None, &user);
        assert!(!conf.contains("cluster"), "{conf}");
        assert!(
            conf.ends_with("authorization {\n  user: \"probe\"\n  password: \"p$ss w#rd\"\n}\n"),
            "{conf}"
        );
        let token = config(
            "n0",
            ports(4000),
            Path::new("/t/s"),
            None,
            &Auth::Token("t0k".into()),
        );
        assert!(
            token.ends_with("authorization {\n  token: \"t0k\"\n}\n"),
            "{token}"
        );
    }

    #[test]
    fn credentials_that_would_break_the_quoting_are_refused() {
        assert!(check_auth(&Auth::Token("a\"b".into())).is_err());
        assert!(check_auth(&Auth::Token("a\\b".into())).is_err());
        assert!(check_auth(&Auth::Token("a\nb".into())).is_err());
        assert!(check_auth(&Auth::Token("a$b c".into())).is_ok());
    }

    #[test]
    fn the_meta_leader_is_read_from_jsz() {
        // Shapes nats-server 2.9.10 answers: clustered with and without a
        // leader, and a single server (no meta_cluster at all).
        let led = r#"{"server_id":"N","meta_cluster":{"name":"sonde","leader":"n1","peer":"fjFyEjc1","cluster_size":3}}"#;
        let leaderless = r#"{"meta_cluster":{"name":"sonde","peer":"fqA4S4SK","cluster_size":2}}"#;
        let single = r#"{"server_id":"N","streams":0}"#;
        let leader = |s| meta_leader_in(s).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(leader(led).as_deref(), Some("n1"));
        assert_eq!(leader(leaderless), None);
        assert_eq!(leader(single), None);
        assert_eq!(leader(r#"{"meta_cluster":{"leader":""}}"#), None);
        assert!(meta_leader_in("<html>").is_err());
    }

    #[test]
    fn a_leader_counts_when_every_running_node_names_it_and_it_runs() {
        let s = |v: &str| Some(v.to_owned());
        let running = ["n0", "n1", "n2"];
        assert_eq!(
            agreed_leader(&[s("n1"), s("n1"), s("n1")], &running).as_deref(),
            Some("n1")
        );
        assert_eq!(agreed_leader(&[s("n1"), None, s("n1")], &running), None);
        assert_eq!(agreed_leader(&[s("n1"), s("n2"), s("n1")], &running), None);
        // Survivors of a killed leader still name it for a few seconds.
        assert_eq!(agreed_leader(&[s("n0"), s("n0")], &["n1", "n2"]), None);
        assert_eq!(agreed_leader(&[], &running), None);
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
