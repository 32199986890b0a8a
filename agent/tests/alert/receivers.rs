//! The receivers the alerter notifies in the tests: the Standard Webhooks
//! receiver (tests/alert_receiver.py, which verifies every request with the
//! reference `standardwebhooks` package and logs it as a JSON line) and a
//! real Alertmanager (Debian's prometheus-alertmanager, clustering off).
//! Each is a child process on loopback, killed when its handle drops.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::lab::write;
use crate::util::http::{Answer, exchange, get};
use crate::util::process::free_addr;

/// The webhook's signing secret: `whsec_` and the base64 of 24 bytes.
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The webhook receiver.
const RECEIVER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/alert_receiver.py");

/// A child that is not `sonde` (python3, Alertmanager): its stderr in a
/// file, killed and reaped on drop.
struct Helper {
    child: Child,
    stderr: PathBuf,
}

impl Helper {
    fn spawn(mut cmd: Command, stderr: &Path, stdout: Stdio) -> Helper {
        let file =
            std::fs::File::create(stderr).unwrap_or_else(|e| panic!("{}: {e}", stderr.display()));
        let child = cmd
            .stdout(stdout)
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        Helper {
            child,
            stderr: stderr.to_owned(),
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request the webhook receiver verified (its log's `ok: true` lines).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The `webhook-id` header.
    pub id: String,
    /// What the receiver answered (its `/control` status then).
    pub status: u64,
    /// The payload's `type` (`check.down`...).
    pub kind: String,
    /// The payload's `data`.
    pub data: Value,
    /// The body as it arrived.
    pub raw: String,
    /// The `webhook-timestamp` header (Unix seconds).
    pub timestamp: String,
    /// The `webhook-signature` header.
    pub signature: String,
    /// When the receiver logged it, epoch ms (after its delay, if any).
    pub received_ms: u64,
}

impl Delivery {
    fn parse(v: &Value) -> Option<Delivery> {
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        Some(Delivery {
            id: s("id")?,
            status: v["status"].as_u64()?,
            kind: v["payload"]["type"].as_str()?.to_owned(),
            data: v["payload"]["data"].clone(),
            raw: s("raw")?,
            timestamp: s("timestamp")?,
            signature: s("signature")?,
            received_ms: v["received_ms"].as_u64()?,
        })
    }

    /// The receiver answered 200.
    pub fn accepted(&self) -> bool {
        self.status == 200
    }

    /// `data.check`.
    pub fn check(&self) -> &str {
        self.data["check"].as_str().unwrap_or("")
    }

    /// `data.incident`.
    pub fn incident(&self) -> u64 {
        self.data["incident"].as_u64().unwrap_or(0)
    }

    /// `data.at`, epoch ms.
    pub fn at_ms(&self) -> u64 {
        rfc3339(&self.data["at"])
    }

    /// `data.since`, epoch ms.
    pub fn since_ms(&self) -> u64 {
        rfc3339(&self.data["since"])
    }

    /// The `webhook-timestamp`, epoch ms.
    pub fn timestamp_ms(&self) -> u64 {
        self.timestamp.parse::<u64>().unwrap_or(0) * 1000
    }

    /// The location of `region` in `data.locations` (Null if absent).
    pub fn location(&self, region: &str) -> Value {
        self.data["locations"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["region"] == region))
            .cloned()
            .unwrap_or(Value::Null)
    }
}

fn rfc3339(v: &Value) -> u64 {
    v.as_str()
        .and_then(store::Utc::parse_rfc3339)
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {v}"))
}

/// The Standard Webhooks receiver, tests/alert_receiver.py.
pub struct Webhooks {
    /// Where it listens.
    pub addr: SocketAddr,
    log: PathBuf,
    helper: Helper,
}

impl Webhooks {
    /// Starts it in `dir` (its log `webhooks.jsonl`), answering 200.
    pub fn start(dir: &Path) -> Webhooks {
        let log = dir.join("webhooks.jsonl");
        let stderr = dir.join("webhooks.stderr");
        let mut cmd = Command::new("python3");
        cmd.arg(RECEIVER_SCRIPT).arg(WEBHOOK_SECRET).arg(&log);
        let mut helper = Helper::spawn(cmd, &stderr, Stdio::piped());
        let mut line = String::new();
        if let Some(out) = helper.child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let port: u16 = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "{RECEIVER_SCRIPT} did not say where it listens: {line:?}\n{}",
                    helper.stderr()
                )
            });
        Webhooks {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
            helper,
        }
    }

    /// A `[[receiver]]` section named `name` for it, with `extra` lines.
    pub fn receiver(&self, name: &str, extra: &str) -> String {
        format!(
            "\n[[receiver]]\nname = \"{name}\"\n\
             webhook = {{ url = \"http://{}/hook\", secrets = [{{ env = \"LAB_WEBHOOK_SECRET\" }}] }}\n\
             {extra}\n",
            self.addr
        )
    }

    /// From now on answers verified deliveries with `status`, after
    /// holding each `delay_s` seconds.
    #[track_caller]
    pub fn set(&self, status: u16, delay_s: f64) {
        let body = serde_json::json!({ "status": status, "delay_s": delay_s }).to_string();
        let answer = exchange(self.addr, "POST", "/control", &[], body.as_bytes());
        assert_eq!(answer.status, 200, "POST /control: {}", answer.text);
    }

    /// POSTs `body` to the webhook path with `headers`, as a sender would.
    pub fn post(&self, body: &[u8], headers: &[(&str, &str)]) -> Answer {
        exchange(self.addr, "POST", "/hook", headers, body)
    }

    /// TCP connections to it open now (ESTABLISHED in /proc/net/tcp with
    /// its port as the local one): a request it is holding shows here
    /// before it is logged.
    pub fn connections(&self) -> usize {
        let port = format!(":{:04X}", self.addr.port());
        std::fs::read_to_string("/proc/net/tcp")
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1].ends_with(&port) && f[3] == "01"
            })
            .count()
    }

    /// Every complete line of its log, in order.
    pub fn log(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        // The last line may be half written.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
            .collect()
    }

    /// The requests it verified, in the order it logged them.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.log()
            .iter()
            .filter(|v| v["ok"] == true)
            .map(|v| {
                Delivery::parse(v)
                    .unwrap_or_else(|| panic!("a log line without a delivery's fields: {v}"))
            })
            .collect()
    }

    /// The verified requests it answered 200.
    pub fn accepted(&self) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(Delivery::accepted)
            .collect()
    }

    /// The requests it refused (failed verification).
    pub fn refused(&self) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|v| v["ok"] == false)
            .collect()
    }

    /// Its log and stderr, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "\n=== webhook receiver ===\n{}\n--- stderr ---\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            self.helper.stderr()
        )
    }
}

/// A real Alertmanager (Debian's prometheus-alertmanager), clustering off.
pub struct Alertmanager {
    /// Its API.
    pub addr: SocketAddr,
    helper: Helper,
}

impl Alertmanager {
    /// Starts it in `dir` with one receiver that sends nothing; ready once
    /// `/-/ready` answers 200. A port taken between picking and binding
    /// is tried again with another.
    pub fn start(dir: &Path) -> Alertmanager {
        let bin = testkit::find_tool("prometheus-alertmanager")
            .unwrap_or_else(|| panic!("prometheus-alertmanager is not installed"));
        let config = dir.join("am.yml");
        write(
            &config,
            "route: {receiver: null-r}\nreceivers: [{name: null-r}]\n",
        );
        let mut last = String::new();
        for attempt in 0..4 {
            let addr = free_addr();
            let mut cmd = Command::new(&bin);
            cmd.arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.join(format!("am-data-{attempt}")).display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--cluster.listen-address=");
            let stderr = dir.join(format!("alertmanager-{attempt}.log"));
            let mut helper = Helper::spawn(cmd, &stderr, Stdio::null());
            let start = Instant::now();
            while helper.is_running() && start.elapsed() < Duration::from_secs(30) {
                if get(addr, "/-/ready").status == 200 {
                    return Alertmanager { addr, helper };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last = helper.stderr();
        }
        panic!("Alertmanager did not start:\n{last}");
    }

    /// A `[[receiver]]` section named `name` for it (resend every minute:
    /// a firing alert ends 4 minutes after a post unless resolved).
    pub fn receiver(&self, name: &str) -> String {
        format!(
            "\n[[receiver]]\nname = \"{name}\"\n\
             alertmanager = {{ url = \"http://{}\", resend = \"1m\" }}\n\
             backoff_first = \"500ms\"\nbackoff_max = \"2s\"\n",
            self.addr
        )
    }

    /// `GET /api/v2/alerts` (the alerts it holds and has not resolved).
    #[track_caller]
    pub fn alerts(&self) -> Vec<Value> {
        let answer = testkit::fetch::get(self.addr, "/api/v2/alerts", &[])
            .unwrap_or_else(|e| panic!("Alertmanager's alerts: {e:#}{}", self.describe()));
        assert_eq!(answer.status, 200, "{}", answer.text());
        serde_json::from_slice(&answer.body)
            .unwrap_or_else(|e| panic!("Alertmanager's alerts: {e}: {}", answer.text()))
    }

    /// Its log, for failure messages.
    pub fn describe(&self) -> String {
        format!("\n=== alertmanager ===\n{}", self.helper.stderr())
    }
}

/// An alert's labels as a map.
pub fn labels(alert: &Value) -> BTreeMap<String, String> {
    alert["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}
