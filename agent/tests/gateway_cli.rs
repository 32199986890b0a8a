//! `sonde gateway --config` as a real process: it starts, serves ingest and
//! health over loopback, refuses a wrong token, a malformed frame and an
//! oversized request while staying up, stops cleanly on SIGTERM, and its
//! wire files decode with `sonde decode`. Bad configurations exit 2 with file:line:col.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use crate::util::http::{self, Answer, exchange};
use crate::util::process::{Process, free_addr};
use crate::util::{Sonde, up_record};
use wire::{FrameBuilder, FrameHeader};

const AGENT_TOKEN: &str = "agent-token-for-cli-test";

fn frame(seq: u64) -> Vec<u8> {
    let mut b = FrameBuilder::new(FrameHeader {
        agent: "cli-agent".into(),
        session: 5,
        seq,
    });
    for i in 0..3 {
        b.push("api-health", up_record(1_767_225_600_000 + i, 250));
    }
    b.finish().encode().unwrap()
}

#[test]
fn gateway_serves_ingest_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
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
    let shown = config.display().to_string();
    let mut gw = Process::start(
        &["gateway", "--config", &shown],
        &[("CLI_TEST_AGENT_TOKEN", AGENT_TOKEN)],
    );
    gw.wait_listening(addr);
    let healthz = http::get(addr, "/healthz");
    assert_eq!((healthz.status, healthz.body.as_str()), (200, "ok\n"));

    let ct = ("content-type", "application/vnd.sonde.frames");
    let bearer = format!("Bearer {AGENT_TOKEN}");
    let Answer { status, body, .. } = exchange(
        addr,
        "POST",
        "/v1/frames",
        &[("authorization", "Bearer wrong"), ct],
        &frame(0),
    );
    assert_eq!(status, 401, "{body}");
    let Answer { status, body, .. } = exchange(
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
    let metrics = http::get(addr, "/metrics").body;
    assert!(
        metrics.contains("sonde_gateway_records_accepted_total 0"),
        "{metrics}"
    );
    let Answer { status, body, .. } = exchange(
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
    let metrics = http::get(addr, "/metrics").body;
    assert!(
        metrics.contains("sonde_gateway_records_accepted_total 3"),
        "{metrics}"
    );
    assert!(!metrics.contains(AGENT_TOKEN) && !metrics.contains("reader-token"));

    gw.stop();
    let stderr = gw.stderr();
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

/// `-c` as `sonde run` takes it, and `--log-format json`: every stderr
/// line one JSON object.
#[test]
fn gateway_takes_c_and_logs_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"{}\"\n\n[[agent]]\nid = \"cli-agent\"\n\
             token = {{ env = \"CLI_TEST_AGENT_TOKEN\" }}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let shown = config.display().to_string();
    let mut gw = Process::start(
        &["gateway", "-c", &shown, "--log-format", "json"],
        &[("CLI_TEST_AGENT_TOKEN", AGENT_TOKEN)],
    );
    gw.wait_listening(addr);
    gw.stop();
    let stderr = gw.stderr();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}{}", gw.describe()))
        })
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "gateway listening" && l["level"] == "INFO"),
        "{}",
        gw.describe()
    );
}
