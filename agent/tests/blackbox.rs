//! `sonde run --blackbox-config` end to end: /probe on the metrics
//! listener for testkit targets (up, 404, a target that never answers
//! under the scrape timeout header), its error answers, debug output,
//! a refused option's error and exit status, and check-config.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::Sonde;
use crate::util::http;
use crate::util::process::{Process, free_addr};
use testkit::http::{HttpTarget, Response};

const MODULES: &str = "\
modules:
  http_2xx:
    prober: http
    timeout: 20s
  http_post:
    prober: http
    http:
      method: POST
";

/// A sonde.toml with no check: the agent runs for /probe only.
fn agent_config(dir: &Path, addr: SocketAddr) -> PathBuf {
    let path = dir.join("sonde.toml");
    let text = format!(
        "[agent]\nid = \"bb\"\nstate_dir = \"{}\"\nmetrics_listen = \"{addr}\"\n",
        dir.display()
    );
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

struct Agent {
    process: Process,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

fn start(modules: &str) -> Agent {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let addr = free_addr();
    let config = agent_config(dir.path(), addr);
    let bb = write(dir.path(), "blackbox.yml", modules);
    let (config, bb) = (config.display().to_string(), bb.display().to_string());
    let mut process = Process::start(
        &["run", "--config", &config, "--blackbox-config", &bb],
        &[("RUST_LOG", "info,sonde::blackbox=debug")],
    );
    process.wait_listening(addr);
    Agent {
        process,
        addr,
        _dir: dir,
    }
}

fn probe(agent: &Agent, query: &str, headers: &[(&str, &str)]) -> http::Answer {
    http::exchange(agent.addr, "GET", &format!("/probe?{query}"), headers, b"")
}

fn target_query(target: &HttpTarget, path: &str, module: &str) -> String {
    format!("target={}&module={module}", target.url(path))
}

#[test]
fn probe_answers_as_blackbox_exporter() {
    let target = HttpTarget::builder()
        .response(Response::ok("hello"))
        .route("/missing", Response::new(404))
        .start();
    let mut agent = start(MODULES);

    let a = probe(&agent, &target_query(&target, "/", "http_2xx"), &[]);
    assert_eq!(a.status, 200, "{}\n{}", a.text, agent.process.describe());
    assert!(a.text.contains("text/plain; version=0.0.4"), "{}", a.text);
    assert_eq!(
        http::metric(&a.body, "probe_success", ""),
        1.0,
        "{}",
        a.body
    );

    let a = probe(&agent, &target_query(&target, "/missing", "http_2xx"), &[]);
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        http::metric(&a.body, "probe_success", ""),
        0.0,
        "{}",
        a.body
    );
    // blackbox_exporter answers the probe's failure with 200 and its gauges.
    assert!(a.body.contains("probe_duration_seconds"), "{}", a.body);

    // The module's method is used: POST reaches the target.
    let before = target.requests();
    let a = probe(&agent, &target_query(&target, "/", "http_post"), &[]);
    assert_eq!(
        http::metric(&a.body, "probe_success", ""),
        1.0,
        "{}",
        a.body
    );
    assert_eq!(target.requests(), before + 1);

    // No scheme: http:// is put before it.
    let bare = format!("target=127.0.0.1:{}/", target.port());
    let a = probe(&agent, &bare, &[]);
    assert_eq!(
        http::metric(&a.body, "probe_success", ""),
        1.0,
        "{}",
        a.body
    );

    let a = probe(&agent, "target=x&module=nope", &[]);
    assert_eq!(a.status, 400);
    assert_eq!(a.body, "Unknown module \"nope\"\n");
    let a = probe(&agent, "module=http_2xx", &[]);
    assert_eq!(a.status, 400);
    assert_eq!(a.body, "Target parameter is missing\n");
    let a = probe(
        &agent,
        "target=x",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "abc")],
    );
    assert_eq!(a.status, 500);
    assert!(
        a.body
            .starts_with("Failed to parse timeout from Prometheus header: strconv.ParseFloat"),
        "{}",
        a.body
    );

    agent.process.signal("TERM");
    assert_eq!(agent.process.wait(Duration::from_secs(10)), 0);
}

#[test]
fn sighup_reloads_the_modules_and_a_bad_file_keeps_them() {
    let target = HttpTarget::plain();
    let mut agent = start(MODULES);
    let bb = agent._dir.path().join("blackbox.yml");
    let query = target_query(&target, "/", "later");
    assert_eq!(probe(&agent, &query, &[]).status, 400);
    write(
        agent._dir.path(),
        "blackbox.yml",
        &format!("{MODULES}  later:\n    prober: http\n"),
    );
    agent.process.signal("HUP");
    crate::util::process::wait_until(Duration::from_secs(10), "the reload", || {
        probe(&agent, &query, &[]).status == 200
    });
    std::fs::write(&bb, "modules:\n  later:\n    prober: tcp\n").unwrap_or_else(|e| panic!("{e}"));
    agent.process.signal("HUP");
    crate::util::process::wait_until(Duration::from_secs(10), "the refusal", || {
        agent
            .process
            .stderr()
            .contains("blackbox configuration reload refused")
    });
    let a = probe(&agent, &query, &[]);
    assert_eq!(
        http::metric(&a.body, "probe_success", ""),
        1.0,
        "{}",
        a.text
    );
    agent.process.signal("TERM");
    assert_eq!(agent.process.wait(Duration::from_secs(10)), 0);
}

#[test]
fn the_credentials_of_a_target_are_not_logged() {
    let target = HttpTarget::plain();
    let mut agent = start(MODULES);
    let url = format!(
        "http://alice:hunter2@127.0.0.1:{}/?token=sesame",
        target.port()
    );
    let query = format!("target={}&debug=true", urlencode(&url));
    let a = probe(&agent, &query, &[]);
    assert_eq!(a.status, 200, "{}", a.text);
    agent.process.signal("TERM");
    agent.process.wait(Duration::from_secs(10));
    let logs = agent.process.stderr();
    let shown = format!(
        "/probe module=http_2xx target=http://127.0.0.1:{}/ success=true",
        target.port()
    );
    assert!(logs.contains(&shown), "{}", agent.process.describe());
    for secret in ["hunter2", "sesame"] {
        assert!(!logs.contains(secret), "{logs}");
        assert!(!a.body.contains(secret), "{}", a.body);
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn debug_output_is_laid_out_as_blackbox_exporters() {
    let target = HttpTarget::plain();
    let agent = start(MODULES);
    let a = probe(
        &agent,
        &format!("{}&debug=true", target_query(&target, "/", "http_2xx")),
        &[],
    );
    assert_eq!(a.status, 200, "{}", a.text);
    let body = &a.body;
    let logs = body.find("Logs for the probe:\n");
    let metrics = body.find("\n\n\nMetrics that would have been returned:\n");
    let module = body.find("\n\n\nModule configuration:\n");
    assert!(
        logs == Some(0) && metrics > logs && module > metrics,
        "{body}"
    );
    assert!(
        body.contains("msg=\"Beginning probe\" probe=http"),
        "{body}"
    );
    assert!(body.contains("probe_success 1"), "{body}");
    assert!(body.contains("prober: http\ntimeout: 20s\n"), "{body}");
}

#[test]
fn the_scrape_timeout_header_bounds_the_probe() {
    // Accepts connections (the backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = silent
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let agent = start(MODULES);
    let started = Instant::now();
    let a = probe(
        &agent,
        &format!("target=127.0.0.1:{port}/&module=http_2xx"),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
    );
    let took = started.elapsed();
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        http::metric(&a.body, "probe_success", ""),
        0.0,
        "{}",
        a.body
    );
    // 1.5 s less the 0.5 s offset: about 1 s, well under the module's 20 s.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    drop(silent);
}

#[test]
fn a_refused_option_stops_the_agent_with_status_2() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = agent_config(dir.path(), free_addr());
    let bb = write(
        dir.path(),
        "blackbox.yml",
        "modules:\n  m:\n    prober: http\n    http:\n      proxy_url: http://proxy:3128\n",
    );
    let (config, bb) = (config.display().to_string(), bb.display().to_string());
    Sonde::new(["run", "--config", &config, "--blackbox-config", &bb])
        .run()
        .expect_code(2)
        .expect_stderr_has(
            "blackbox.yml:5:7: module `m`: `http.proxy_url` is not supported by sonde",
        );
    Sonde::new(["check-config", "--blackbox-config", &bb])
        .run()
        .expect_code(1)
        .expect_stderr_has("`http.proxy_url` is not supported by sonde");
}

#[test]
fn blackbox_config_needs_a_listener_and_allows_no_check() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bb = write(dir.path(), "blackbox.yml", MODULES);
    let no_listener = write(
        dir.path(),
        "sonde.toml",
        &format!(
            "[agent]\nid = \"bb\"\nstate_dir = \"{}\"\n",
            dir.path().display()
        ),
    );
    let (no_listener, bb) = (no_listener.display().to_string(), bb.display().to_string());
    Sonde::new(["run", "--config", &no_listener, "--blackbox-config", &bb])
        .run()
        .expect_code(2)
        .expect_stderr_has("--blackbox-config needs a metrics listener");
    // Without --blackbox-config a configuration with no check is refused still.
    Sonde::new(["run", "--config", &no_listener])
        .run()
        .expect_code(2)
        .expect_stderr_has("no enabled check");
    Sonde::new(["check-config", "--blackbox-config", &bb, &no_listener])
        .run()
        .expect_code(0)
        .expect_stderr_has("2 blackbox module(s): http_2xx, http_post");
}

#[test]
fn host_follows_blackbox_exporter() {
    let target = HttpTarget::plain();
    let modules = format!(
        "{MODULES}  named:\n    prober: http\n    http:\n      tls_config:\n        server_name: api.internal\n  vhost:\n    prober: http\n    http:\n      headers:\n        Host: vhost.example\n"
    );
    let agent = start(&modules);
    let host = || {
        target
            .last_request_headers()
            .and_then(|h| h.get("host").map(|v| v.to_str().unwrap_or("").to_owned()))
    };
    // tls_config.server_name names the TLS server only.
    let a = probe(&agent, &target_query(&target, "/", "named"), &[]);
    assert_eq!(
        http::metric(&a.body, "probe_success", ""),
        1.0,
        "{}",
        a.body
    );
    assert_eq!(host(), Some(format!("127.0.0.1:{}", target.port())));
    // hostname= sets the Host header.
    let q = format!(
        "{}&hostname=other.example",
        target_query(&target, "/", "http_2xx")
    );
    probe(&agent, &q, &[]);
    assert_eq!(host().as_deref(), Some("other.example"));
    probe(&agent, &target_query(&target, "/", "vhost"), &[]);
    assert_eq!(host().as_deref(), Some("vhost.example"));
    // A different hostname= than the module's Host is refused, as
    // blackbox_exporter does.
    let q = format!(
        "{}&hostname=other.example",
        target_query(&target, "/", "vhost")
    );
    let a = probe(&agent, &q, &[]);
    assert_eq!(a.status, 400);
    assert_eq!(
        a.body,
        "host header defined both in module configuration (vhost.example) and with URL-parameter 'hostname' (other.example)\n"
    );
}
