//! Ingest over real HTTP on loopback: acks, dedupe, auth, rejections that
//! leave the gateway and other agents unaffected, limits, h2c, persistence.

use crate::util::*;
use std::time::Duration;

#[tokio::test]
async fn acks_dedupes_replays_and_persists_once() {
    // An hour between interval syncs: only ack = "durable" puts an
    // acknowledged frame on disk before the answer.
    let gw = Gateway::start(|c| c.writer.fsync_interval = Duration::from_secs(3600)).await;
    let mut body = frame("a", 7, 0, &["api-x"], 3);
    body.extend(frame("a", 7, 1, &["api-x"], 3));
    let ans = post(gw.addr, AGENT_A, body.clone()).await;
    assert_eq!(ans.status, 200, "{}", ans.body);
    assert_eq!(
        persisted_seqs(&gw.dir.path().join("data")),
        vec![0, 1],
        "acknowledged = written (and synced) before the answer"
    );
    let v = ans.json();
    assert_eq!(
        (v["session"].as_u64(), v["acked"].as_u64()),
        (Some(7), Some(1))
    );
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(2), Some(0))
    );

    // The spool replays both after a lost ack, plus a new one.
    body.extend(frame("a", 7, 2, &["api-x"], 3));
    let v = post(gw.addr, AGENT_A, body).await.json();
    assert_eq!(
        (
            v["acked"].as_u64(),
            v["accepted"].as_u64(),
            v["duplicates"].as_u64()
        ),
        (Some(2), Some(1), Some(2))
    );
    assert_eq!(gw.metric("sonde_gateway_records_accepted_total").await, 9);
    assert_eq!(gw.metric("sonde_gateway_frames_duplicate_total").await, 2);

    // A gap (the agent's spool dropped frames) is accepted and counted.
    let v = post(gw.addr, AGENT_A, frame("a", 7, 6, &["api-x"], 1))
        .await
        .json();
    assert_eq!(v["acked"].as_u64(), Some(6));
    assert_eq!(gw.metric("sonde_gateway_frames_gap_total").await, 3);

    let dir = gw.stop().await;
    assert_eq!(
        persisted_seqs(&dir.path().join("data")),
        vec![0, 1, 2, 6],
        "every accepted frame persisted once, in order"
    );
}

/// The seq of every frame in the wire files under `dir`, in file order.
fn persisted_seqs(dir: &std::path::Path) -> Vec<u64> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut seqs = Vec::new();
    for file in files {
        let bytes = std::fs::read(file).unwrap();
        wire::check_file_header(&bytes).unwrap();
        for item in wire::FrameReader::new(&bytes[8..], 8).at_eof() {
            match item {
                wire::ReadItem::Frame { frame, .. } => seqs.push(frame.header.seq),
                wire::ReadItem::Skipped { error, .. } => panic!("{error}"),
            }
        }
    }
    seqs
}

#[tokio::test]
async fn wrong_token_is_401_and_nothing_is_accepted() {
    let gw = Gateway::start(|_| {}).await;
    for token in ["nope", "token-agent-", READER_ALL] {
        let ans = post(gw.addr, token, frame("a", 1, 0, &["api"], 1)).await;
        assert_eq!(ans.status, 401, "{token}");
        assert_eq!(ans.json()["error"], "unauthorized");
    }
    assert_eq!(gw.metric("sonde_gateway_frames_accepted_total").await, 0);
    assert_eq!(
        gw.metric("sonde_gateway_requests_total{outcome=\"unauthorized\"}")
            .await,
        3
    );
    // Another agent's frames under A's token: 403.
    let ans = post(gw.addr, AGENT_A, frame("b", 1, 0, &["api"], 1)).await;
    assert_eq!(
        (ans.status, ans.json()["error"].as_str()),
        (403, Some("agent_mismatch"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn malformed_frames_are_400_with_reason_and_others_carry_on() {
    let gw = Gateway::start(|_| {}).await;
    let ans = post(gw.addr, AGENT_A, b"this is not a frame".to_vec()).await;
    assert_eq!(ans.status, 400);
    let v = ans.json();
    assert_eq!(
        (v["error"].as_str(), v["offset"].as_u64()),
        (Some("bad_frame"), Some(0))
    );
    assert!(v["reason"].as_str().unwrap().contains("marker"), "{v}");

    // A good frame followed by a damaged one: all or nothing.
    let mut body = frame("a", 1, 0, &["api"], 2);
    let second = body.len() as u64;
    let mut bad = frame("a", 1, 1, &["api"], 2);
    bad[20] ^= 0x55;
    body.extend(bad);
    let v = post(gw.addr, AGENT_A, body).await.json();
    assert_eq!(
        (v["error"].as_str(), v["offset"].as_u64()),
        (Some("bad_frame"), Some(second))
    );
    assert!(v["reason"].as_str().unwrap().contains("checksum"), "{v}");
    assert_eq!(gw.metric("sonde_gateway_frames_accepted_total").await, 0);

    // Another agent, and the same agent afterwards, are served as usual.
    let ans = post(gw.addr, AGENT_B, frame("b", 1, 0, &["api"], 2)).await;
    assert_eq!(ans.status, 200, "{}", ans.body);
    let ans = post(gw.addr, AGENT_A, frame("a", 1, 0, &["api"], 2)).await;
    assert_eq!(ans.json()["accepted"].as_u64(), Some(1));
    assert_eq!(get(gw.addr, "/healthz").await, (200, "ok\n".to_owned()));
    gw.stop().await;
}

#[tokio::test]
async fn oversized_bodies_wrong_media_type_and_rate_limit() {
    let gw = Gateway::start(|c| {
        c.ingest.max_request_bytes = 1024;
        c.ingest.max_requests_per_second = 2;
    })
    .await;
    let big = frame("a", 1, 0, &["api"], 200);
    assert!(big.len() > 1024);
    let ans = post(gw.addr, AGENT_A, big).await;
    assert_eq!(
        (ans.status, ans.json()["error"].as_str()),
        (413, Some("too_large"))
    );
    let ans = post_with(
        gw.addr,
        AGENT_B,
        "text/plain",
        frame("b", 1, 0, &["api"], 1),
        false,
    )
    .await;
    assert_eq!(ans.status, 415);
    // A's third request within a second is refused with Retry-After.
    let ans = post(gw.addr, AGENT_A, frame("a", 1, 0, &["api"], 1)).await;
    assert_eq!(ans.status, 200, "{}", ans.body);
    let ans = post(gw.addr, AGENT_A, frame("a", 1, 1, &["api"], 1)).await;
    assert_eq!(ans.status, 429, "{}", ans.body);
    assert_eq!(ans.retry_after.as_deref(), Some("1"));
    assert_eq!(get(gw.addr, "/healthz").await.0, 200);
    gw.stop().await;
}

/// A request of more frames than the writer's queue holds could only ever
/// get 503; it gets 413 with the limit instead, and nothing is accepted.
#[tokio::test]
async fn more_frames_than_the_writer_queue_is_413() {
    let gw = Gateway::start(|c| c.writer.queue_frames = 2).await;
    let mut body = Vec::new();
    for seq in 0..3 {
        body.extend(frame("a", 1, seq, &["api"], 1));
    }
    let ans = post(gw.addr, AGENT_A, body).await;
    assert_eq!(
        (ans.status, ans.json()["error"].as_str()),
        (413, Some("too_large")),
        "{}",
        ans.body
    );
    assert!(ans.body.contains("at most 2 per request"), "{}", ans.body);
    assert_eq!(gw.metric("sonde_gateway_frames_accepted_total").await, 0);
    let mut body = Vec::new();
    for seq in 0..2 {
        body.extend(frame("a", 1, seq, &["api"], 1));
    }
    let ans = post(gw.addr, AGENT_A, body).await;
    assert_eq!(ans.status, 200, "{}", ans.body);
    assert_eq!(gw.metric("sonde_gateway_frames_accepted_total").await, 2);
    gw.stop().await;
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served() {
    let gw = Gateway::start(|_| {}).await;
    let ans = post_with(
        gw.addr,
        AGENT_A,
        gateway::FRAMES_CONTENT_TYPE,
        frame("a", 3, 0, &["api"], 5),
        true,
    )
    .await;
    assert_eq!(ans.status, 200, "{}", ans.body);
    assert_eq!(ans.json()["acked"].as_u64(), Some(0));
    gw.stop().await;
}

#[tokio::test]
async fn metrics_negotiate_openmetrics_and_gzip() {
    use std::io::Read as _;
    let gw = Gateway::start(|_| {}).await;
    // Prometheus 2.42's Accept header, and gzip.
    let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (status, head, body) = get_with(
        gw.addr,
        "/metrics",
        &[("accept", accept), ("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(status, 200);
    let header = |name: &str| head.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(header("content-type").starts_with("application/openmetrics-text; version=1.0.0"));
    assert_eq!(header("content-encoding"), "gzip");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.contains("# TYPE sonde_gateway_requests counter\n"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    // No Accept: text 0.0.4, uncompressed.
    let (_, head, body) = get_with(gw.addr, "/metrics", &[]).await;
    let header = |name: &str| head.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(header("content-type").starts_with("text/plain; version=0.0.4"));
    assert_eq!(header("content-encoding"), "");
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("# TYPE sonde_gateway_requests_total counter\n"));
    gw.stop().await;
}
