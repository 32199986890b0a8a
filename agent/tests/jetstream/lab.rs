//! The JetStream lab, on loopback in one temporary directory: gateway
//! replicas (`sonde gateway` processes with `[jetstream]`, each its own
//! data_dir), agents (`sonde run` probing a loopback target, their file
//! sink the ground truth), and what the tests read back: history pages,
//! the NATS monitor's view of a stream, hand-built frames POSTed to a
//! replica. Every process is killed when its handle drops.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use testkit::http::HttpTarget;
use testkit::nats::NatsCluster;
use wire::{FrameBuilder, FrameHeader};

use crate::util::http::{Answer, exchange, get};
pub use crate::util::process::wait_for;
use crate::util::process::{Process, free_addr};

pub const REGION: &str = "eu-west";
/// The stream `[jetstream]` names by default in [`REGION`].
pub const STREAM: &str = "sonde-eu-west";
pub const READER_TOKEN: &str = "js-reader-token";
const READER_TOKEN_ENV: &str = "JS_READER_TOKEN";

/// The agents every replica knows: (id, token, the env var it is read from).
const AGENTS: &[(&str, &str, &str)] = &[
    ("ag-1", "js-token-ag-1", "JS_TOKEN_AG_1"),
    ("ag-2", "js-token-ag-2", "JS_TOKEN_AG_2"),
    ("spool", "js-token-spool", "JS_TOKEN_SPOOL"),
    ("racer", "js-token-racer", "JS_TOKEN_RACER"),
];

/// How long a replica may take to answer after its start (it reads the
/// whole stream first, and keeps trying while NATS has no leader).
const START_LIMIT: Duration = Duration::from_secs(30);

/// The token of agent `id`.
pub fn token(id: &str) -> &'static str {
    AGENTS
        .iter()
        .find(|(a, _, _)| *a == id)
        .map(|(_, t, _)| *t)
        .unwrap_or_else(|| panic!("no agent {id} in the lab"))
}

/// A record's identity: (agent, check, t, rt).
pub type Rec = (String, String, u64, u64);

/// `[jetstream]` as a test writes it.
#[derive(Clone)]
pub struct Js {
    pub servers: Vec<String>,
    pub region: String,
    pub replicas: usize,
    pub max_age: Option<&'static str>,
    pub duplicate_window: Option<&'static str>,
}

impl Js {
    /// Every node of `cluster`, replicas as many as it has nodes.
    pub fn of(cluster: &NatsCluster) -> Js {
        Js {
            servers: cluster.client_urls(),
            region: REGION.into(),
            replicas: cluster.len(),
            max_age: None,
            duplicate_window: None,
        }
    }

    /// The stream this region's replicas use.
    pub fn stream(&self) -> String {
        format!("sonde-{}", self.region)
    }

    fn toml(&self) -> String {
        let servers: Vec<String> = self.servers.iter().map(|s| format!("\"{s}\"")).collect();
        let mut s = format!(
            "[jetstream]\nservers = [{}]\nreplicas = {}\n",
            servers.join(", "),
            self.replicas
        );
        if let Some(a) = self.max_age {
            s.push_str(&format!("max_age = \"{a}\"\n"));
        }
        if let Some(w) = self.duplicate_window {
            s.push_str(&format!("duplicate_window = \"{w}\"\n"));
        }
        s
    }
}

/// One gateway replica: its config in its own directory, its process.
pub struct Replica {
    pub name: String,
    pub addr: SocketAddr,
    config: PathBuf,
    pub process: Option<Process>,
}

impl Replica {
    /// Writes `name`'s gateway.toml under `root` (its data_dir inside)
    /// with `js`, and starts it (see [`Replica::start`]).
    pub fn new(root: &Path, name: &str, js: &Js) -> Replica {
        let mut r = Replica::configure(root, name, js);
        r.start();
        r
    }

    /// Writes the config only.
    pub fn configure(root: &Path, name: &str, js: &Js) -> Replica {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let addr = free_addr();
        let mut text = format!(
            "name = \"{name}\"\nregion = \"{}\"\nlisten = \"{addr}\"\ndata_dir = \"{}\"\n\n",
            js.region,
            dir.join("data").display()
        );
        for (id, _, env) in AGENTS {
            text.push_str(&format!(
                "[[agent]]\nid = \"{id}\"\ntoken = {{ env = \"{env}\" }}\n\n"
            ));
        }
        text.push_str(&format!(
            "[[reader]]\nname = \"dash\"\ntoken = {{ env = \"{READER_TOKEN_ENV}\" }}\n\n"
        ));
        text.push_str(&js.toml());
        let config = dir.join("gateway.toml");
        std::fs::write(&config, text).unwrap_or_else(|e| panic!("{e}"));
        Replica {
            name: name.into(),
            addr,
            config,
            process: None,
        }
    }

    /// Starts the process (not waiting).
    pub fn spawn(&mut self) -> &mut Process {
        let config = self.config.display().to_string();
        let mut env: Vec<(&str, &str)> = AGENTS.iter().map(|(_, t, e)| (*e, *t)).collect();
        env.push((READER_TOKEN_ENV, READER_TOKEN));
        env.push(("RUST_LOG", "info"));
        self.process
            .insert(Process::start(&["gateway", "--config", &config], &env))
    }

    /// Starts it and waits until it answers `/healthz` (it listens once
    /// it has read the stream).
    pub fn start(&mut self) {
        let addr = self.addr;
        let name = self.name.clone();
        let p = self.spawn();
        let start = Instant::now();
        while get(addr, "/healthz").status != 200 {
            assert!(
                p.is_running() && start.elapsed() < START_LIMIT,
                "replica {name} does not answer on {addr}{}",
                p.describe()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, reaped.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.signal("KILL");
            p.wait(Duration::from_secs(10));
        }
    }

    /// SIGTERM, a clean exit asserted.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop();
        }
    }

    /// Its output, for failure messages.
    pub fn describe(&self) -> String {
        self.process.as_ref().map_or_else(
            || format!("\n({} not running)", self.name),
            |p| p.describe(),
        )
    }

    /// Every record its `/v1/history?{query}` holds, page by page (pages
    /// of 97, so that pages end inside a message), with gseqs; an error
    /// names the first answer that was not 200.
    pub fn history(&self, query: &str) -> Result<Vec<(u64, Rec)>, String> {
        history(self.addr, query)
    }

    /// [`Replica::history`], panicking on an error.
    #[track_caller]
    pub fn history_now(&self, query: &str) -> Vec<(u64, Rec)> {
        self.history(query)
            .unwrap_or_else(|e| panic!("history of {}: {e}{}", self.name, self.describe()))
    }

    /// POSTs a frames body as agent `id`.
    pub fn post(&self, id: &str, body: &[u8]) -> Answer {
        post(self.addr, id, body)
    }

    /// A counter of its `/metrics`.
    pub fn metric(&self, name: &str) -> f64 {
        crate::util::http::scrape(self.addr, name, "")
    }
}

/// `/v1/history?{query}` of the gateway at `addr`, every page.
pub fn history(addr: SocketAddr, query: &str) -> Result<Vec<(u64, Rec)>, String> {
    let auth = format!("Bearer {READER_TOKEN}");
    let mut out = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10_000 {
        let path = format!("/v1/history?limit=97&{query}{cursor}");
        let answer = exchange(addr, "GET", &path, &[("authorization", &auth)], b"");
        if answer.status != 200 {
            return Err(format!("{path}: {}", answer.text));
        }
        let page: serde_json::Value =
            serde_json::from_str(&answer.body).map_err(|e| format!("{e}: {}", answer.body))?;
        for r in page["records"].as_array().into_iter().flatten() {
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            let num = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("{v}: {r}"));
            out.push((
                num(&r["gseq"]),
                (
                    text("agent"),
                    text("check"),
                    num(&r["record"]["t"]),
                    num(&r["record"]["rt"]),
                ),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return Ok(out),
        }
    }
    Err("history never ended its pages".into())
}

/// POSTs `body` to `/v1/frames` at `addr` as agent `id`.
pub fn post(addr: SocketAddr, id: &str, body: &[u8]) -> Answer {
    let auth = format!("Bearer {}", token(id));
    exchange(
        addr,
        "POST",
        "/v1/frames",
        &[
            ("authorization", &auth),
            ("content-type", "application/vnd.sonde.frames"),
        ],
        body,
    )
}

/// An acknowledgement's (session, acked, accepted, duplicates).
#[track_caller]
pub fn ack(answer: &Answer) -> (u64, u64, u64, u64) {
    assert_eq!(answer.status, 200, "{}", answer.text);
    let v: serde_json::Value =
        serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.text));
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k}: {v}"));
    (n("session"), n("acked"), n("accepted"), n("duplicates"))
}

/// Frames `seqs` of agent `id`'s `session`, each one record of checks
/// "c0" and "c1" (t derived from the seq, so every record differs).
pub fn frames(id: &str, session: u64, seqs: std::ops::RangeInclusive<u64>) -> Vec<u8> {
    let mut body = Vec::new();
    for seq in seqs {
        let mut b = FrameBuilder::new(FrameHeader {
            agent: id.into(),
            session,
            seq,
        });
        for (i, check) in ["c0", "c1"].into_iter().enumerate() {
            b.push(
                check,
                crate::util::up_record(session + seq * 10 + i as u64, 3),
            );
        }
        b.finish()
            .encode_into(&mut body)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    body
}

/// The records [`frames`] puts in `seqs`.
pub fn frame_records(id: &str, session: u64, seqs: std::ops::RangeInclusive<u64>) -> Vec<Rec> {
    seqs.flat_map(|seq| {
        ["c0", "c1"].into_iter().enumerate().map(move |(i, c)| {
            (
                id.to_owned(),
                c.to_owned(),
                session + seq * 10 + i as u64,
                3,
            )
        })
    })
    .collect()
}

/// A `sonde run` agent of the lab.
pub struct Agent {
    pub id: String,
    state: PathBuf,
    pub metrics: SocketAddr,
    pub process: Process,
}

impl Agent {
    /// Agent `id` (state under `root`) probing three checks of `target`
    /// every second, its file sink on, sending to `urls` in that order.
    pub fn start(root: &Path, id: &str, target: &HttpTarget, urls: &[SocketAddr]) -> Agent {
        let state = root.join(format!("agent-{id}"));
        std::fs::create_dir_all(&state).unwrap_or_else(|e| panic!("{e}"));
        let metrics = free_addr();
        let urls: Vec<String> = urls.iter().map(|a| format!("\"http://{a}/\"")).collect();
        let env = format!("JS_SINK_TOKEN_{}", id.replace('-', "_").to_uppercase());
        let mut s = format!(
            "[agent]\nid = \"{id}\"\nstate_dir = \"{}\"\nmetrics_listen = \"{metrics}\"\n\
             [defaults]\ninterval = \"1s\"\ntimeout = \"900ms\"\n\
             [sinks.file]\nenabled = true\nfsync = \"always\"\n\
             [[sinks.gateway]]\nurls = [{}]\ntoken = {{ env = \"{env}\" }}\n",
            state.display(),
            urls.join(", ")
        );
        for check in ["api", "web", "db"] {
            s.push_str(&format!(
                "[[check]]\nname = \"{check}\"\nurl = \"{}\"\n",
                target.url(&format!("/{check}"))
            ));
        }
        let config = state.join("sonde.toml");
        std::fs::write(&config, s).unwrap_or_else(|e| panic!("{e}"));
        let shown = config.display().to_string();
        let process = Process::start(
            &["run", "--config", &shown],
            &[(env.as_str(), token(id)), ("RUST_LOG", "info")],
        );
        Agent {
            id: id.into(),
            state,
            metrics,
            process,
        }
    }

    /// What it produced so far: its file sink's records.
    pub fn produced(&self) -> Vec<Rec> {
        crate::gateway_e2e::wire_frames(&self.state.join("records"))
            .into_iter()
            .flat_map(|(_, records)| records)
            .map(|(check, t, rt)| (self.id.clone(), check, t, rt))
            .collect()
    }

    /// A counter of its `/metrics` for the gateway sink.
    pub fn sink_metric(&self, name: &str) -> f64 {
        crate::util::http::scrape(self.metrics, name, "sink=\"gateway\"")
    }

    /// SIGTERM: it drains its probes and spool, then exits 0.
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

/// One stream as a NATS node's monitor (`/jsz?streams=true`) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamView {
    pub messages: u64,
    pub last_seq: u64,
    /// The server name of its leader, if the node knows one.
    pub leader: Option<String>,
}

/// Stream `name` as node `node` of `cluster` holds it, if it hosts it.
pub fn stream_view(cluster: &NatsCluster, node: usize, name: &str) -> Option<StreamView> {
    let monitor = cluster.monitor_addr(node);
    let answer = testkit::fetch::get(monitor, "/jsz?streams=true", &[]).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
    json["account_details"]
        .as_array()?
        .iter()
        .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten())
        .find(|s| s["name"] == name)
        .map(|s| StreamView {
            messages: s["state"]["messages"].as_u64().unwrap_or(0),
            last_seq: s["state"]["last_seq"].as_u64().unwrap_or(0),
            leader: s["cluster"]["leader"]
                .as_str()
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        })
}

/// The node that leads stream `name`, as every running node names it.
pub fn stream_leader(cluster: &mut NatsCluster, name: &str) -> Option<usize> {
    let mut named = None;
    for i in 0..cluster.len() {
        if !cluster.is_running(i) {
            continue;
        }
        let leader = stream_view(cluster, i, name)?.leader?;
        if named.get_or_insert_with(|| leader.clone()) != &leader {
            return None;
        }
    }
    let leader = named?;
    (0..cluster.len()).find(|&i| cluster.server_name(i) == leader)
}

/// Asserts gseqs strictly increasing and no record twice.
#[track_caller]
pub fn once_in_gseq_order(records: &[(u64, Rec)], what: &str) {
    if let Some(w) = records.windows(2).find(|w| w[0].0 >= w[1].0) {
        panic!("{what}: gseq {} then {}", w[0].0, w[1].0);
    }
    let mut seen = std::collections::HashSet::new();
    for (g, r) in records {
        assert!(seen.insert(r), "{what}: {r:?} twice (again at gseq {g})");
    }
}

/// `records` as a sorted list (a multiset to compare).
pub fn sorted<'a>(records: impl IntoIterator<Item = &'a Rec>) -> Vec<Rec> {
    let mut v: Vec<Rec> = records.into_iter().cloned().collect();
    v.sort();
    v
}

/// The records of a history answer, without gseqs.
pub fn recs(history: &[(u64, Rec)]) -> Vec<&Rec> {
    history.iter().map(|(_, r)| r).collect()
}
