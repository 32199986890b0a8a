//! A real Prometheus server (Debian's `prometheus`) on loopback, for tests
//! that check what a user's Prometheus makes of sonde: the test gives the
//! scrape configs and rule files; this writes them with a 1 s scrape and
//! evaluation interval, keeps the TSDB in a temp dir, waits until
//! `/-/ready`, runs instant queries over `/api/v1/query` and waits (with a
//! deadline, polling, no fixed sleeps) until a query returns what the test
//! wants. Also `promtool check metrics` and `promtool check rules`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::daemon::Daemon;
use crate::fetch;

/// The server binary's name (Debian's package `prometheus`).
pub const PROMETHEUS: &str = "prometheus";
/// Its companion checker (same package).
pub const PROMTOOL: &str = "promtool";

/// Between polls of [`Prometheus::wait_for`].
const POLL: Duration = Duration::from_millis(250);

/// One element of an instant vector (or a scalar, with no labels).
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    /// The series' labels (`__name__` among them when it has one).
    pub labels: BTreeMap<String, String>,
    /// Its value at the evaluation time.
    pub value: f64,
}

/// A running Prometheus; killed and reaped when dropped.
#[derive(Debug)]
pub struct Prometheus {
    daemon: Daemon,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with `scrape_configs` (YAML: the list under
    /// `scrape_configs:`, items at column 0, e.g. `- job_name: x`) and the
    /// rule files `(file name, contents)`. Fails if it is not installed
    /// (see [`crate::require_tool`]) or does not become ready.
    pub fn start(scrape_configs: &str, rule_files: &[(&str, &str)]) -> anyhow::Result<Prometheus> {
        let binary = crate::find_tool(PROMETHEUS).context("prometheus is not installed")?;
        let dir = tempfile::tempdir().context("creating Prometheus' temp dir")?;
        let mut rule_paths = Vec::new();
        for (name, contents) in rule_files {
            let path = dir.path().join(name);
            std::fs::write(&path, contents)
                .with_context(|| format!("writing {}", path.display()))?;
            rule_paths.push(path);
        }
        let conf = dir.path().join("prometheus.yml");
        std::fs::write(&conf, config(scrape_configs, &rule_paths))
            .context("writing prometheus.yml")?;
        let data = dir.path().join("data");
        let log = dir.path().join("prometheus.log");
        let daemon = Daemon::start(
            &binary,
            |addr| {
                vec![
                    format!("--config.file={}", conf.display()),
                    format!("--storage.tsdb.path={}", data.display()),
                    format!("--web.listen-address={addr}"),
                    "--log.level=info".to_owned(),
                ]
            },
            &log,
            "/-/ready",
        )?;
        Ok(Prometheus { daemon, dir })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.daemon.addr())
    }

    /// The directory holding prometheus.yml, the rule files and the TSDB.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// An instant query evaluated now.
    pub fn query(&self, expr: &str) -> anyhow::Result<Vec<QuerySample>> {
        let path = format!("/api/v1/query?query={}", fetch::encode_query_value(expr));
        let answer = fetch::get(self.daemon.addr(), &path, &[])?;
        parse_query_answer(&answer.text()).with_context(|| format!("query {expr:?}"))
    }

    /// Polls `expr` until `wanted` holds for its result (then returns it),
    /// failing after `limit` with the last result and the scrape targets'
    /// health, so a failure says what Prometheus saw.
    pub fn wait_for(
        &self,
        expr: &str,
        limit: Duration,
        wanted: impl Fn(&[QuerySample]) -> bool,
    ) -> anyhow::Result<Vec<QuerySample>> {
        let deadline = Instant::now() + limit;
        loop {
            let last = self.query(expr);
            if let Ok(samples) = &last {
                if wanted(samples) {
                    return Ok(samples.clone());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "after {limit:?}, {expr:?} gave {last:?}\ntargets: {}",
                    self.targets_summary()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Each active scrape target's job, instance, health and last error, one a line.
    pub fn targets_summary(&self) -> String {
        let Ok(answer) = fetch::get(self.daemon.addr(), "/api/v1/targets", &[]) else {
            return "(no answer from /api/v1/targets)".to_owned();
        };
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&answer.body) else {
            return answer.text();
        };
        let targets = json["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        targets
            .iter()
            .map(|t| {
                format!(
                    "\n  {} {} {} {}",
                    t["labels"]["job"].as_str().unwrap_or("?"),
                    t["scrapeUrl"].as_str().unwrap_or("?"),
                    t["health"].as_str().unwrap_or("?"),
                    t["lastError"].as_str().unwrap_or("")
                )
            })
            .collect()
    }
}

/// prometheus.yml: 1 s intervals, the rule files, the test's scrape configs (pure).
pub fn config(scrape_configs: &str, rule_files: &[PathBuf]) -> String {
    let mut s = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n",
    );
    if !rule_files.is_empty() {
        s.push_str("rule_files:\n");
        for path in rule_files {
            s.push_str(&format!("  - {}\n", path.display()));
        }
    }
    s.push_str("scrape_configs:\n");
    for line in scrape_configs.lines() {
        s.push_str("  ");
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// The samples of an `/api/v1/query` answer (vector or scalar), pure.
pub fn parse_query_answer(body: &str) -> anyhow::Result<Vec<QuerySample>> {
    let json: serde_json::Value = serde_json::from_str(body).context("the answer is not JSON")?;
    if json["status"] != "success" {
        bail!(
            "Prometheus said {}: {}",
            json["errorType"].as_str().unwrap_or("error"),
            json["error"].as_str().unwrap_or(body)
        );
    }
    let data = &json["data"];
    let value = |v: &serde_json::Value| -> anyhow::Result<f64> {
        let text = v[1].as_str().context("a sample without a value")?;
        Ok(match text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            _ => text
                .parse()
                .with_context(|| format!("bad value {text:?}"))?,
        })
    };
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .context("a vector without a result list")?
            .iter()
            .map(|r| {
                let labels = r["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(QuerySample {
                    labels,
                    value: value(&r["value"])?,
                })
            })
            .collect(),
        Some("scalar") => Ok(vec![QuerySample {
            labels: BTreeMap::new(),
            value: value(&data["result"])?,
        }]),
        other => bail!("unexpected result type {other:?}"),
    }
}

/// What promtool said.
#[derive(Debug, Clone)]
pub struct PromtoolReport {
    /// Whether it exited 0.
    pub ok: bool,
    /// Its stdout and stderr.
    pub output: String,
}

/// `promtool check metrics` on `exposition` (fed on stdin).
pub fn check_metrics(exposition: &str) -> anyhow::Result<PromtoolReport> {
    let binary = crate::find_tool(PROMTOOL).context("promtool is not installed")?;
    let mut child = Command::new(&binary)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", binary.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(exposition.as_bytes())
            .context("feeding promtool")?;
    }
    report(child.wait_with_output().context("waiting for promtool")?)
}

/// `promtool check rules FILE`.
pub fn check_rules(file: &Path) -> anyhow::Result<PromtoolReport> {
    let binary = crate::find_tool(PROMTOOL).context("promtool is not installed")?;
    let output = Command::new(&binary)
        .args(["check", "rules"])
        .arg(file)
        .output()
        .with_context(|| format!("running {} check rules", binary.display()))?;
    report(output)
}

fn report(output: std::process::Output) -> anyhow::Result<PromtoolReport> {
    Ok(PromtoolReport {
        ok: output.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_indents_the_scrape_configs_and_lists_the_rules() {
        let conf = config(
            "- job_name: a\n  static_configs:\n    - targets: ['x:1']",
            &[PathBuf::from("/t/alerts.yml")],
        );
        assert_eq!(
            conf,
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - /t/alerts.yml\n\
             scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['x:1']\n"
        );
    }

    #[test]
    fn vector_and_scalar_answers_parse() {
        let v = parse_query_answer(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[1700000000.1,"1"]},{"metric":{},"value":[1,"NaN"]}]}}"#,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].labels["job"], "a");
        assert_eq!(v[0].value, 1.0);
        assert!(v[1].value.is_nan());
        let s = parse_query_answer(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2.5"]}}"#,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(s[0].value, 2.5);
    }

    #[test]
    fn an_error_answer_is_an_error_naming_it() {
        let e = parse_query_answer(
            r#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#,
        )
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
        assert!(e.contains("bad_data") && e.contains("char 3"), "{e}");
    }
}
