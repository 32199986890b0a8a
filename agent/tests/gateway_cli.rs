//! `sonde gateway --config` as a real process: it starts, serves ingest and
//! health over loopback, refuses a wrong token, a malformed frame and an
//! oversized request while staying up, stops cleanly on SIGTERM, and its
//! wire files decode with `sonde decode`. Bad configurations exit 2 with file:line:col.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::Sonde;
use wire::{FrameBuilder, FrameHeader, Record};

const AGENT_TOKEN: &str = "agent-token-for-cli-test";

/// A running gateway; killed on drop, stderr shown when a check fails.
struct Gateway {
    child: Child,
}

impl Gateway {
    fn start(config: &Path) -> Gateway {
        let child = Command::new(env!("CARGO_BIN_EXE_sonde"))
            .args(["gateway", "--config"])
            .arg(config)
            .env("CLI_TEST_AGENT_TOKEN", AGENT_TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting sonde gateway: {e}"));
        Gateway { child }
    }

    fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }

    fn terminate(mut self) -> (i32, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let stderr = self.stderr();
                return (status.code().unwrap_or(-1), stderr);
            }
            assert!(
                Instant::now() < deadline,
                "sonde gateway did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange; returns the status and the body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    // One write: a refusal sent before the body arrived would race it.
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn frame(seq: u64) -> Vec<u8> {
    let mut b = FrameBuilder::new(FrameHeader {
        agent: "cli-agent".into(),
        session: 5,
        seq,
    });
    for i in 0..3 {
        b.push(
            "api-health",
            Record::up(1_767_225_600_000 + i, 250)
                .with_sc(200)
                .with_phases(12, 20, 25, 80),
        );
    }
    b.finish().encode().unwrap()
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn gateway_serves_ingest_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_port();
    let data = dir.path().join("data");
    let config = dir.path().join("gateway.toml");
    std::fs::write(dir.path().join("reader.token"), "reader-token\n").unwrap();
    std::fs::write(
        &config,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"{}\"\n[ingest]\nmax_request_bytes = 4096\n\n[[agent]]\nid = \"cli-agent\"\ntoken = {{ env = \"CLI_TEST_AGENT_TOKEN\" }}\n\n\
             [[reader]]\nname = \"dash\"\ntoken = {{ file = \"{}\" }}\n",
            data.display(),
            dir.path().join("reader.token").display()
        ),
    )
    .unwrap();
    let mut gw = Gateway::start(&config);
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline || gw.child.try_wait().unwrap().is_some() {
            panic!("sonde gateway did not start:\n{}", gw.stderr());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        http(addr, "GET", "/healthz", &[], b""),
        (200, "ok\n".into())
    );

    let ct = ("content-type", "application/vnd.sonde.frames");
    let bearer = format!("Bearer {AGENT_TOKEN}");
    let (status, body) = http(
        addr,
        "POST",
        "/v1/frames",
        &[("authorization", "Bearer wrong"), ct],
        &frame(0),
    );
    assert_eq!(status, 401, "{body}");
    let (status, body) = http(
        addr,
        "POST",
        "/v1/frames",
        &[("authorization", &bearer), ct],
        b"\xc1\x53garbage",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bad_frame"), "{body}");
    // Over max_request_bytes: refused from its Content-Length alone. The
    // body is offered with `Expect: 100-continue` and never sent, as a
    // careful client does (a body sent into a refusal races the close).
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /v1/frames HTTP/1.1\r\nhost: {addr}\r\nauthorization: {bearer}\r\n\
         content-type: {}\r\ncontent-length: 5000\r\nexpect: 100-continue\r\n\r\n",
        ct.1
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("too_large"), "{answer}");
    // Neither took the gateway down, nor got anything accepted.
    let (_, metrics) = http(addr, "GET", "/metrics", &[], b"");
    assert!(
        metrics.contains("sonde_gateway_records_accepted_total 0"),
        "{metrics}"
    );
    let (status, body) = http(
        addr,
        "POST",
        "/v1/frames",
        &[("authorization", &bearer), ct],
        &frame(0),
    );
    assert_eq!(status, 200, "{body}");
    let ack: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (ack["session"].as_u64(), ack["acked"].as_u64()),
        (Some(5), Some(0))
    );
    let (_, metrics) = http(addr, "GET", "/metrics", &[], b"");
    assert!(
        metrics.contains("sonde_gateway_records_accepted_total 3"),
        "{metrics}"
    );
    assert!(!metrics.contains(AGENT_TOKEN) && !metrics.contains("reader-token"));

    let (code, stderr) = gw.terminate();
    assert_eq!(code, 0, "stderr:\n{stderr}");
    assert!(
        !stderr.contains(AGENT_TOKEN),
        "tokens never logged:\n{stderr}"
    );
    Sonde::new([Path::new("decode"), data.as_path()])
        .run()
        .expect_code(0)
        .expect("three records of api-health", |r| {
            r.stdout().matches("api-health").count() == 3
        });
}

#[test]
fn bad_gateway_config_exits_2_with_place() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        "data_dir = \"/tmp/x\"\n[ring]\nmax_agee = \"1m\"\n",
    )
    .unwrap();
    Sonde::new([
        Path::new("gateway"),
        Path::new("--config"),
        config.as_path(),
    ])
    .run()
    .expect_code(2)
    .expect("file:line:col", |r| {
        r.stderr().contains("gateway.toml:3:1:")
    });
    std::fs::write(
        &config,
        "listen = \"0.0.0.0:7700\"\ndata_dir = \"/tmp/x\"\n",
    )
    .unwrap();
    Sonde::new([
        Path::new("gateway"),
        Path::new("--config"),
        config.as_path(),
    ])
    .run()
    .expect_code(2)
    .expect("cleartext refused", |r| r.stderr().contains("[tls]"));
}
