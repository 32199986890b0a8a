//! `sonde wait` end to end: the real binary against loopback servers whose
//! answers change over time (a scripted server here) or are fixed
//! (testkit). Timing checks are lower bounds or generous ratios; the exact
//! backoff arithmetic is tested in `sonde::retry` with a seeded generator.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::util::Sonde;
use sonde::wait::webhook::sign;

/// A loopback HTTP/1.1 server that answers the n-th request with the n-th
/// scripted response (the last one repeats) and records when each came.
struct Scripted {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Instant>>>,
}

impl Scripted {
    fn start(script: Vec<String>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let seen = hits.clone();
        // The thread ends with the test process.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let n = {
                    let mut hits = seen.lock().unwrap_or_else(|e| e.into_inner());
                    hits.push(Instant::now());
                    hits.len() - 1
                };
                let response = &script[n.min(script.len() - 1)];
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Scripted { addr, hits }
    }

    fn url(&self) -> String {
        format!("http://{}/health", self.addr)
    }

    fn hits(&self) -> Vec<Instant> {
        self.hits.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn gaps(&self) -> Vec<Duration> {
        self.hits().windows(2).map(|w| w[1] - w[0]).collect()
    }
}

fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> String {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out
}

fn fast<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "wait",
        url,
        "--interval",
        "50ms",
        "--max-interval",
        "100ms",
        "--timeout",
        "30s",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn ready_after_n_attempts() {
    let server = Scripted::start(vec![
        resp(503, &[], ""),
        resp(503, &[], ""),
        resp(200, &[], "ok"),
    ]);
    let url = server.url();
    let run = Sonde::new(fast(&url, &["--json-output"]))
        .run()
        .expect_code(0);
    let summary = run.json();
    run.expect("3 attempts, ready by poll", |_| {
        summary["attempts"] == 3 && summary["outcome"] == "ready" && summary["by"] == "poll"
    })
    .expect("the last result with its phases", |_| {
        summary["last"]["sc"] == 200
            && summary["last"]["cn"].is_number()
            && summary["last"]["ft"].is_number()
    })
    .expect("one plain line per attempt without a terminal", |r| {
        let err = r.stderr();
        err.matches("attempt ").count() == 3
            && err.contains("ready after 3 attempts")
            && !err.contains('\r')
    });
    assert_eq!(server.hits().len(), 3);
}

#[test]
fn json_path_condition_waits_for_its_value() {
    let running = resp(
        200,
        &[("content-type", "application/json")],
        r#"{"deploy":{"status":"running"}}"#,
    );
    let done = resp(200, &[], r#"{"deploy":{"status":"completed"}}"#);
    let server = Scripted::start(vec![running.clone(), running, done]);
    let url = server.url();
    Sonde::new(fast(
        &url,
        &["--ready-when", r#".deploy.status == "completed""#],
    ))
    .run()
    .expect_code(0)
    .expect("not ready while running", |r| {
        r.stderr()
            .contains(r#"not .deploy.status == "completed" (is "running")"#)
    });
    assert_eq!(server.hits().len(), 3);
}

#[test]
fn fail_when_ends_the_wait_at_once() {
    let server = Scripted::start(vec![
        resp(200, &[], r#"{"status":"running"}"#),
        resp(200, &[], r#"{"status":"failed"}"#),
        resp(200, &[], r#"{"status":"completed"}"#),
    ]);
    let url = server.url();
    Sonde::new(fast(
        &url,
        &[
            "--ready-when",
            r#".status == "completed""#,
            "--fail-when",
            r#".status == "failed""#,
        ],
    ))
    .run()
    .expect_code(1)
    .expect("the condition named", |r| {
        r.stderr().contains(r#"--fail-when .status == "failed""#)
    });
    assert_eq!(server.hits().len(), 2);
}

#[test]
fn retry_after_is_honoured_on_429_and_503() {
    let server = Scripted::start(vec![
        resp(429, &[("retry-after", "1")], ""),
        resp(503, &[("retry-after", "1")], ""),
        resp(200, &[], ""),
    ]);
    let url = server.url();
    Sonde::new(fast(&url, &[]))
        .run()
        .expect_code(0)
        .expect("the reason shown", |r| r.stderr().contains("(retry-after)"));
    let gaps = server.gaps();
    assert_eq!(gaps.len(), 2);
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_secs(1)),
        "{gaps:?}"
    );
}

#[test]
fn backoff_spacing_grows_is_jittered_and_never_below_the_interval() {
    let mut script = vec![resp(503, &[], ""); 8];
    script.push(resp(200, &[], ""));
    let server = Scripted::start(script);
    let url = server.url();
    Sonde::new(vec![
        "wait",
        &url,
        "--interval",
        "50ms",
        "--max-interval",
        "250ms",
    ])
    .run()
    .expect_code(0);
    let gaps = server.gaps();
    assert_eq!(gaps.len(), 8, "{gaps:?}");
    let interval = Duration::from_millis(50);
    assert!(gaps.iter().all(|g| *g >= interval), "{gaps:?}");
    // Ceilings 50, 100, 200, 250...: later gaps are longer on average.
    let late: Duration = gaps[4..].iter().sum::<Duration>() / 4;
    assert!(late > gaps[0].mul_f64(1.3), "{gaps:?}");
    // Jittered: the capped gaps are not all the same.
    let spread = gaps[3..].iter().max().copied().unwrap_or_default()
        - gaps[3..].iter().min().copied().unwrap_or_default();
    assert!(spread > Duration::from_millis(10), "{gaps:?}");
}

#[test]
fn the_deadline_ends_the_wait_with_status_3() {
    let server = Scripted::start(vec![resp(503, &[], "")]);
    let url = server.url();
    let started = Instant::now();
    Sonde::new(vec![
        "wait",
        &url,
        "--interval",
        "100ms",
        "--max-interval",
        "200ms",
        "--timeout",
        "1s",
        "--json-output",
    ])
    .run()
    .expect_code(3)
    .expect("deadline in the summary", |r| {
        r.json()["outcome"] == "deadline"
    })
    .expect("the last reason", |r| {
        r.stderr().contains("deadline passed after") && r.stderr().contains("last: status 503")
    });
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(server.hits().len() >= 2);
}

#[test]
fn a_404_fails_fast_unless_retried_on() {
    let server = Scripted::start(vec![resp(404, &[], "")]);
    let url = server.url();
    Sonde::new(fast(&url, &[]))
        .run()
        .expect_code(1)
        .expect("permanent named", |r| {
            r.stderr().contains("status 404 is permanent")
        });
    assert_eq!(server.hits().len(), 1);

    let server = Scripted::start(vec![
        resp(404, &[], ""),
        resp(404, &[], ""),
        resp(200, &[], ""),
    ]);
    let url = server.url();
    Sonde::new(fast(&url, &["--retry-on", "404"]))
        .run()
        .expect_code(0);
    assert_eq!(server.hits().len(), 3);
}

#[test]
fn an_untrusted_certificate_fails_fast() {
    let ca = testkit::pki::Ca::new();
    let target = testkit::http::HttpTarget::tls(&ca.leaf(&["127.0.0.1"]));
    let url = target.url("/");
    Sonde::new(fast(&url, &[]))
        .run()
        .expect_code(1)
        .expect("the class named", |r| {
            r.stderr().contains("tls_untrusted is permanent")
        });
}

#[test]
fn connection_failures_are_retried_until_the_deadline() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    Sonde::new(vec![
        "wait",
        &url,
        "--interval",
        "50ms",
        "--max-interval",
        "100ms",
        "--timeout",
        "1s",
    ])
    .run()
    .expect_code(3)
    .expect("refused, retried", |r| {
        r.stderr().matches("connect_refused").count() >= 2
    });
}

#[test]
fn usage_errors_exit_2() {
    for bad in [
        vec!["wait", "http://127.0.0.1:1/", "--ready-when", ".status = 1"],
        vec!["wait", "http://127.0.0.1:1/", "--timeout", "soon"],
        vec!["wait", "http://127.0.0.1:1/", "--retry-on", "nope"],
        vec!["wait", "http://127.0.0.1:1/", "--listen", "127.0.0.1:0"],
    ] {
        Sonde::new(bad).run().expect_code(2);
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    l.local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// POSTs a webhook; returns the status code (retrying the connect while
/// the listener comes up).
fn post(port: u16, timestamp: u64, signature: &str, body: &str) -> u16 {
    let start = Instant::now();
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if start.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("webhook listener on {port}: {e}"),
        }
    };
    let request = format!(
        "POST /hook HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\n\
         x-sonde-timestamp: {timestamp}\r\nx-sonde-signature: {signature}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Starts `sonde wait` with a webhook listener against an always-503
/// target polled every 30 s; returns (server, port, secret file, the run).
fn waiting_with_webhook(
    dir: &std::path::Path,
) -> (Scripted, u16, std::thread::JoinHandle<crate::util::Run>) {
    let server = Scripted::start(vec![resp(503, &[], "")]);
    let port = free_port();
    let secret = dir.join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap_or_else(|e| panic!("{e}"));
    let args: Vec<String> = [
        "wait",
        &server.url(),
        "--interval",
        "30s",
        "--timeout",
        "60s",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--secret-file",
        &secret.to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = std::thread::spawn(move || Sonde::new(args).run());
    // Until the first poll is in.
    let start = Instant::now();
    while server.hits().is_empty() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, port, run)
}

#[test]
fn bad_webhooks_are_rejected_and_a_good_one_ends_the_wait_before_the_next_poll() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let (server, port, run) = waiting_with_webhook(dir.path());
    let body = r#"{"status":"ready"}"#;
    let now = unix_now();
    assert_eq!(
        post(port, now, &sign(b"wrong", now, body.as_bytes()), body),
        401
    );
    assert_eq!(
        post(
            port,
            now - 600,
            &sign(b"s3cret", now - 600, body.as_bytes()),
            body
        ),
        401
    );
    let good = sign(b"s3cret", now, body.as_bytes());
    assert_eq!(post(port, now, &good, body), 200);
    let run = run.join().unwrap_or_else(|_| panic!("sonde wait thread"));
    run.expect_code(0)
        .expect("ended by the webhook", |r| {
            r.stderr().contains("ready after 1 attempt") && r.stderr().contains("(webhook)")
        })
        .expect("the rejections logged", |r| {
            let err = r.stderr();
            err.contains("rejected (401): bad signature")
                && err.contains("rejected (401): stale timestamp")
        });
    assert_eq!(server.hits().len(), 1, "no second poll");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_failed_webhook_fails_the_wait() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (_server, port, run) = waiting_with_webhook(dir.path());
    let body = r#"{"status":"failed","reason":"rollout aborted"}"#;
    let now = unix_now();
    assert_eq!(
        post(port, now, &sign(b"s3cret", now, body.as_bytes()), body),
        200
    );
    run.join()
        .unwrap_or_else(|_| panic!("sonde wait thread"))
        .expect_code(1)
        .expect("the sender's reason", |r| {
            r.stderr().contains("(webhook): rollout aborted")
        });
}
