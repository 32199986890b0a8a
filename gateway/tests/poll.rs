//! Readers that ask: `/v1/checks` with its ETag, `/v1/poll` at once and
//! held, and the CORS headers of the reader endpoints.

use std::time::{Duration, Instant};

use crate::util::*;

async fn get_json(
    gw: &Gateway,
    token: &str,
    path: &str,
) -> (u16, hyper::HeaderMap, serde_json::Value) {
    let auth = format!("Bearer {token}");
    let (status, head, body) = get_with(gw.addr, path, &[("authorization", &auth)]).await;
    let json = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
    };
    (status, head, json)
}

#[tokio::test]
async fn checks_answers_the_state_in_scope_and_304_while_unchanged() {
    let gw = Gateway::start(|c| {
        c.identity.name = "gw-eu-1".into();
        c.identity.region = Some("eu-west".into());
    })
    .await;
    post(gw.addr, AGENT_A, frame("a", 1, 0, &["api-x", "web-y"], 2)).await;
    let (status, head, all) = get_json(&gw, READER_ALL, "/v1/checks").await;
    assert_eq!(status, 200);
    assert_eq!(all["gateway"], "gw-eu-1");
    assert_eq!(all["region"], "eu-west");
    assert_eq!(all["states"].as_array().unwrap().len(), 2);
    let newest = all["gseq"].as_u64().unwrap();
    assert_eq!(all["ring"]["last"].as_u64(), Some(newest));
    let tag = head["etag"].to_str().unwrap().to_owned();
    // The scoped reader sees its check only.
    let (_, api_head, api) = get_json(&gw, READER_API, "/v1/checks").await;
    let states = api["states"].as_array().unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0]["check"], "api-x");
    assert_ne!(api_head["etag"], head["etag"], "a tag per view");
    // Unchanged: 304 without a body.
    let auth = format!("Bearer {READER_ALL}");
    let (status, _, body) = get_with(
        gw.addr,
        "/v1/checks",
        &[("authorization", &auth), ("if-none-match", &tag)],
    )
    .await;
    assert_eq!((status, body.len()), (304, 0));
    // A record out of the api reader's scope changes only the other view.
    let api_tag = api_head["etag"].to_str().unwrap().to_owned();
    post(gw.addr, AGENT_A, frame("a", 1, 1, &["web-y"], 1)).await;
    let api_auth = format!("Bearer {READER_API}");
    let (status, _, _) = get_with(
        gw.addr,
        "/v1/checks",
        &[("authorization", &api_auth), ("if-none-match", &api_tag)],
    )
    .await;
    assert_eq!(status, 304, "nothing it sees changed");
    let (status, _, body) = get_with(
        gw.addr,
        "/v1/checks",
        &[("authorization", &auth), ("if-none-match", &tag)],
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = get_json(&gw, "wrong", "/v1/checks").await;
    assert_eq!(status, 401);
    gw.stop().await;
}

#[tokio::test]
async fn poll_answers_at_once_with_what_came_after_since_in_scope() {
    let gw = Gateway::start(|_| {}).await;
    let (_, _, first) = get_json(&gw, READER_ALL, "/v1/poll?wait=0").await;
    let g0 = first["next_since"].as_u64().unwrap();
    assert!(first["records"].as_array().unwrap().is_empty());
    for seq in 0..3 {
        post(gw.addr, AGENT_A, frame("a", 1, seq, &["api-x", "web-y"], 1)).await;
    }
    let (_, _, all) = get_json(&gw, READER_ALL, &format!("/v1/poll?since={g0}")).await;
    let gseqs: Vec<u64> = items(&all).into_iter().map(|(g, _)| g).collect();
    assert_eq!(gseqs, (g0 + 1..=g0 + 6).collect::<Vec<_>>());
    assert_eq!(all["next_since"].as_u64(), Some(g0 + 6));
    // The scoped reader gets its check only; paged by limit.
    let path = format!("/v1/poll?since={g0}&limit=2");
    let (_, _, page) = get_json(&gw, READER_API, &path).await;
    let got = items(&page);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|(_, c)| c == "api-x"), "{got:?}");
    let next = page["next_since"].as_u64().unwrap();
    assert_eq!(next, got[1].0, "a full page resumes after its last record");
    let (_, _, rest) = get_json(&gw, READER_API, &format!("/v1/poll?since={next}&wait=0")).await;
    let rest = items(&rest);
    assert_eq!(rest.len(), 1);
    assert!(rest[0].0 > next && rest[0].1 == "api-x");
    // Bad parameters are named.
    for bad in ["since=x", "wait=2h", "wait=61s", "limit=0", "limit=10001"] {
        let (status, _, body) = get_json(&gw, READER_ALL, &format!("/v1/poll?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_held_poll_returns_on_the_next_record_or_after_wait() {
    let gw = Gateway::start(|_| {}).await;
    let (_, _, first) = get_json(&gw, READER_ALL, "/v1/poll?wait=0").await;
    let g0 = first["next_since"].as_u64().unwrap();
    // Idle: it answers empty after wait, with the newest gseq.
    let started = Instant::now();
    let (status, _, idle) =
        get_json(&gw, READER_ALL, &format!("/v1/poll?since={g0}&wait=300ms")).await;
    let took = started.elapsed();
    assert_eq!(status, 200);
    assert!(idle["records"].as_array().unwrap().is_empty());
    assert_eq!(idle["next_since"].as_u64(), Some(g0));
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // Held: a record out of scope does not wake it, one in scope does.
    let addr = gw.addr;
    let held = tokio::spawn(async move {
        let auth = format!("Bearer {READER_API}");
        let path = format!("/v1/poll?since={g0}&wait=20s");
        let (status, _, body) = get_with(addr, &path, &[("authorization", &auth)]).await;
        (status, Instant::now(), body)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        gw.metric("sonde_gateway_readers").await,
        1,
        "a held poll is a reader"
    );
    post(gw.addr, AGENT_A, frame("a", 1, 0, &["web-y"], 1)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !held.is_finished(),
        "a record outside its scope does not wake it"
    );
    post(gw.addr, AGENT_A, frame("a", 1, 1, &["api-x"], 1)).await;
    let posted = Instant::now();
    let (status, answered, body) = held.await.unwrap();
    assert_eq!(status, 200);
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let got = items(&answer);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0, got[0].1.as_str()), (g0 + 2, "api-x"));
    let lag = answered.saturating_duration_since(posted);
    assert!(lag < Duration::from_secs(1), "{lag:?}");
    assert_eq!(gw.metric("sonde_gateway_readers").await, 0);
    gw.stop().await;
}

#[tokio::test]
async fn polls_count_as_readers_and_name_a_reset_range() {
    let gw = Gateway::start(|c| {
        c.readers.max_readers = 1;
        c.ring.max_records = 2;
    })
    .await;
    let (_, _, first) = get_json(&gw, READER_ALL, "/v1/poll?wait=0").await;
    let g0 = first["next_since"].as_u64().unwrap();
    for seq in 0..5 {
        post(gw.addr, AGENT_A, frame("a", 1, seq, &["api-x"], 1)).await;
    }
    let (_, _, out) = get_json(&gw, READER_ALL, &format!("/v1/poll?since={g0}")).await;
    assert_eq!(out["reset"]["reason"], "since_out_of_ring");
    assert_eq!(out["reset"]["missed_from"].as_u64(), Some(g0 + 1));
    assert_eq!(out["reset"]["missed_to"].as_u64(), Some(g0 + 5));
    assert_eq!(out["next_since"].as_u64(), Some(g0 + 5));
    let (_, _, ahead) = get_json(&gw, READER_ALL, &format!("/v1/poll?since={}", g0 + 99)).await;
    assert_eq!(ahead["reset"]["reason"], "since_ahead");
    assert!(ahead["reset"].get("missed_from").is_none());
    // One reader at most: a held poll takes the slot.
    let addr = gw.addr;
    let held = tokio::spawn(async move {
        let auth = format!("Bearer {READER_ALL}");
        get_with(addr, "/v1/poll?wait=2s", &[("authorization", &auth)])
            .await
            .0
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _, _) = get_json(&gw, READER_ALL, "/v1/poll?wait=0").await;
    assert_eq!(status, 503);
    assert_eq!(held.await.unwrap(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn cors_is_off_by_default_and_only_for_allowed_origins() {
    let off = Gateway::start(|_| {}).await;
    let origin = "http://127.0.0.1:9";
    let auth = format!("Bearer {READER_ALL}");
    let (status, head, _) = get_with(
        off.addr,
        "/v1/checks",
        &[("authorization", &auth), ("origin", origin)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(head.get("access-control-allow-origin").is_none());
    off.stop().await;

    let gw = Gateway::start(|c| c.cors.allow_origins = vec![origin.into()]).await;
    let (_, head, _) = get_with(
        gw.addr,
        "/v1/checks",
        &[("authorization", &auth), ("origin", origin)],
    )
    .await;
    assert_eq!(head["access-control-allow-origin"], origin);
    assert_eq!(head["access-control-expose-headers"], "ETag");
    let (_, head, _) = get_with(
        gw.addr,
        "/v1/checks",
        &[("authorization", &auth), ("origin", "http://evil.example")],
    )
    .await;
    assert!(head.get("access-control-allow-origin").is_none());
    // The preflight of an EventSource with a header.
    let preflight = |o: &'static str| {
        let addr = gw.addr;
        async move {
            let req = hyper::Request::options(format!("http://{addr}/v1/stream"))
                .header("host", addr.to_string())
                .header("origin", o)
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "authorization")
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            raw(addr, req).await
        }
    };
    let (status, head) = preflight("http://127.0.0.1:9").await;
    assert_eq!(status, 204);
    assert_eq!(head["access-control-allow-origin"], origin);
    assert!(
        head["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("Authorization")
    );
    let (status, head) = preflight("http://evil.example").await;
    assert_eq!(status, 403);
    assert!(head.get("access-control-allow-origin").is_none());
    // Ingest gets none.
    let frames = format!("http://{}/v1/frames", gw.addr);
    let req = hyper::Request::options(frames)
        .header("host", gw.addr.to_string())
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let (_, head) = raw(gw.addr, req).await;
    assert!(head.get("access-control-allow-origin").is_none());
    gw.stop().await;
}
