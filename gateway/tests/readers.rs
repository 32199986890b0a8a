//! Live readers over real SSE and WebSocket connections: snapshot, then
//! missed, then live, in gseq order; reset outside the ring; scopes; slow
//! readers that neither block ingest nor other readers.

use std::time::{Duration, Instant};

use crate::util::*;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn sse_snapshot_then_missed_then_live_in_gseq_order() {
    let gw = Gateway::start(|_| {}).await;
    // A reader from the start learns the gseqs.
    let mut first = Sse::open(gw.addr, READER_ALL, "").await;
    assert_eq!(first.status, 200);
    let snap = first.next().await.unwrap();
    assert_eq!(snap.event, "snapshot");
    assert_eq!(snap.data["states"].as_array().unwrap().len(), 0);
    let g0 = snap.data["gseq"].as_u64().unwrap();
    assert_eq!(snap.id, Some(g0));
    for seq in 0..3 {
        post(gw.addr, AGENT_A, frame("a", 1, seq, &["api-x", "web-y"], 1)).await;
    }
    let mut seen = Vec::new();
    while seen.len() < 6 {
        let e = first.next().await.unwrap();
        assert_eq!(e.event, "records");
        seen.extend(items(&e.data).into_iter().map(|(g, _)| g));
    }
    assert_eq!(seen, (g0 + 1..=g0 + 6).collect::<Vec<_>>());

    // A reader that saw up to the second record gets the snapshot, the
    // four it missed, then live ones.
    let since = g0 + 2;
    let mut second = Sse::open(gw.addr, READER_ALL, &format!("?since={since}")).await;
    let snap = second.next().await.unwrap();
    assert_eq!(snap.event, "snapshot");
    assert_eq!(snap.data["gseq"].as_u64(), Some(g0 + 6));
    let states = snap.data["states"].as_array().unwrap();
    assert_eq!(states.len(), 2, "one state per (agent, check)");
    assert!(states.iter().all(|s| s["gseq"].as_u64().unwrap() > g0 + 4));
    let mut missed = Vec::new();
    while missed.len() < 4 {
        missed.extend(
            items(&second.next().await.unwrap().data)
                .into_iter()
                .map(|(g, _)| g),
        );
    }
    assert_eq!(missed, vec![g0 + 3, g0 + 4, g0 + 5, g0 + 6]);
    post(gw.addr, AGENT_B, frame("b", 1, 0, &["api-x"], 1)).await;
    let live = second.next().await.unwrap();
    assert_eq!(live.id, Some(g0 + 7));
    assert_eq!(live.data["records"][0]["agent"], "b");
    assert_eq!(live.data["records"][0]["record"]["st"], "up");
    gw.stop().await;
}

#[tokio::test]
async fn a_replay_longer_than_a_chunk_arrives_whole_then_live() {
    let gw = Gateway::start(|_| {}).await;
    let g0 = Sse::open(gw.addr, READER_ALL, "")
        .await
        .next()
        .await
        .unwrap()
        .data["gseq"]
        .as_u64()
        .unwrap();
    // More frames than three replay chunks (REPLAY_CHUNK_BATCHES = 64).
    let frames = 3 * 64 + 5;
    for seq in 0..frames {
        post(gw.addr, AGENT_A, frame("a", 1, seq, &["api-x"], 1)).await;
    }
    let mut r = Sse::open(gw.addr, READER_ALL, &format!("?since={g0}")).await;
    assert_eq!(r.next().await.unwrap().event, "snapshot");
    post(gw.addr, AGENT_B, frame("b", 1, 0, &["api-x"], 1)).await;
    let mut seen = Vec::new();
    while seen.len() < frames as usize + 1 {
        let e = r.next().await.unwrap();
        assert_eq!(e.event, "records");
        seen.extend(items(&e.data).into_iter().map(|(g, _)| g));
    }
    assert_eq!(
        seen,
        (g0 + 1..=g0 + frames + 1).collect::<Vec<_>>(),
        "every record once, in gseq order, the live one last"
    );
    gw.stop().await;
}

#[tokio::test]
async fn since_older_than_the_ring_gets_reset_and_fresh_snapshot() {
    let gw = Gateway::start(|c| c.ring.max_records = 2).await;
    let mut r = Sse::open(gw.addr, READER_ALL, "").await;
    let g0 = r.next().await.unwrap().data["gseq"].as_u64().unwrap();
    for seq in 0..5 {
        post(gw.addr, AGENT_A, frame("a", 1, seq, &["api-x"], 1)).await;
    }
    let mut late = Sse::open(gw.addr, READER_ALL, &format!("?since={}", g0 + 1)).await;
    let reset = late.next().await.unwrap();
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.data["reason"], "since_out_of_ring");
    // It names exactly what the reader missed: after `since`, up to G.
    assert_eq!(reset.data["missed_from"].as_u64(), Some(g0 + 2));
    assert_eq!(reset.data["missed_to"].as_u64(), Some(g0 + 5));
    let snap = late.next().await.unwrap();
    assert_eq!(snap.event, "snapshot");
    assert_eq!(snap.data["gseq"].as_u64(), Some(g0 + 5));
    assert_eq!(snap.data["states"][0]["gseq"].as_u64(), Some(g0 + 5));
    // A gseq beyond the newest (another gateway's): no range to name.
    let mut ahead = Sse::open(gw.addr, READER_ALL, &format!("?since={}", g0 + 99)).await;
    let reset = ahead.next().await.unwrap();
    assert_eq!(reset.data["reason"], "since_ahead");
    assert!(reset.data.get("missed_from").is_none(), "{:?}", reset.data);
    assert_eq!(ahead.next().await.unwrap().event, "snapshot");
    // Last-Event-ID inside the ring: no reset.
    let mut ok = Sse::open(gw.addr, READER_ALL, &format!("?since={}", g0 + 4)).await;
    let snap = ok.next().await.unwrap();
    assert_eq!(snap.event, "snapshot");
    assert_eq!(
        snap.data["gseq"].as_u64(),
        Some(g0 + 5),
        "the state as of G"
    );
    // Event ids never go back: the snapshot before a replay carries `since`,
    // so a reader cut off here resumes with the replay, not after it.
    assert_eq!(snap.id, Some(g0 + 4));
    let replay = ok.next().await.unwrap();
    assert_eq!(items(&replay.data)[0].0, g0 + 5);
    assert_eq!(replay.id, Some(g0 + 5));
    // A bad since and a bad token are refused before the stream.
    assert_eq!(Sse::open(gw.addr, READER_ALL, "?since=x").await.status, 400);
    assert_eq!(Sse::open(gw.addr, "nope", "").await.status, 401);
    assert_eq!(Sse::open(gw.addr, AGENT_A, "").await.status, 401);
    gw.stop().await;
}

async fn ws_open(
    addr: std::net::SocketAddr,
    token: &str,
    query: &str,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let mut req = format!("ws://{addr}/v1/ws{query}")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(req, tcp).await.unwrap().0
}

/// The next message but pings and the opening `hello`.
async fn ws_next(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> Message {
    loop {
        let m = ws_any(ws).await;
        let hello = match &m {
            Message::Text(t) => t.contains(r#""type":"hello""#),
            Message::Binary(b) => {
                rmp_serde::from_slice::<serde_json::Value>(b).is_ok_and(|v| v["type"] == "hello")
            }
            _ => false,
        };
        if !hello {
            return m;
        }
    }
}

async fn ws_any(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> Message {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .unwrap()
            .unwrap();
        if !matches!(m, Message::Ping(_) | Message::Pong(_)) {
            return m;
        }
    }
}

#[tokio::test]
async fn every_stream_opens_with_hello() {
    let gw = Gateway::start(|c| {
        c.identity.name = "gw-eu-1".into();
        c.identity.region = Some("eu-west".into());
    })
    .await;
    post(gw.addr, AGENT_A, frame("a", 1, 0, &["api-x"], 2)).await;
    let mut sse = Sse::open(gw.addr, READER_ALL, "").await;
    let hello = sse.next_any().await.unwrap();
    assert_eq!(hello.event, "hello");
    assert_eq!(hello.id, None, "a hello moves no resumption point");
    assert_eq!(hello.data["gateway"], "gw-eu-1");
    assert_eq!(hello.data["region"], "eu-west");
    let newest = hello.data["gseq"].as_u64().unwrap();
    assert_eq!(hello.data["ring"]["last"].as_u64(), Some(newest));
    assert_eq!(hello.data["ring"]["first"].as_u64(), Some(newest - 1));
    let snap = sse.next_any().await.unwrap();
    assert_eq!(
        (snap.event.as_str(), snap.data["gseq"].as_u64()),
        ("snapshot", Some(newest))
    );
    for query in ["?format=json", ""] {
        let mut ws = ws_open(gw.addr, READER_ALL, query).await;
        let v: serde_json::Value = match ws_any(&mut ws).await {
            Message::Text(t) => serde_json::from_str(&t).unwrap(),
            Message::Binary(b) => rmp_serde::from_slice(&b).unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(v["type"], "hello", "{query}");
        assert_eq!(v["gateway"], "gw-eu-1");
        assert_eq!(v["gseq"].as_u64(), Some(newest));
    }
    gw.stop().await;
}

#[tokio::test]
async fn scoped_readers_never_see_other_checks() {
    let gw = Gateway::start(|_| {}).await;
    post(gw.addr, AGENT_A, frame("a", 1, 0, &["api-x", "web-y"], 2)).await;
    let mut sse = Sse::open(gw.addr, READER_API, "").await;
    let mut ws_json = ws_open(gw.addr, READER_API, "?format=json").await;
    let mut ws_mp = ws_open(gw.addr, READER_API, "").await;

    let snap = sse.next().await.unwrap();
    let states = snap.data["states"].as_array().unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0]["check"], "api-x");
    let Message::Text(text) = ws_next(&mut ws_json).await else {
        panic!("text expected")
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "snapshot");
    assert_eq!(v["states"].as_array().unwrap().len(), 1);
    let Message::Binary(bin) = ws_next(&mut ws_mp).await else {
        panic!("binary expected")
    };
    let v: serde_json::Value = rmp_serde::from_slice(&bin).unwrap();
    assert_eq!(v["type"], "snapshot");
    assert_eq!(v["states"][0]["check"], "api-x");
    assert!(
        v["states"][0]["record"].is_array(),
        "msgpack records are wire arrays: {v}"
    );

    post(gw.addr, AGENT_A, frame("a", 1, 1, &["web-y"], 3)).await;
    post(gw.addr, AGENT_B, frame("b", 1, 0, &["web-y", "api-z"], 1)).await;
    let e = sse.next().await.unwrap();
    assert_eq!(
        items(&e.data)
            .iter()
            .map(|(_, c)| c.as_str())
            .collect::<Vec<_>>(),
        ["api-z"]
    );
    let Message::Text(text) = ws_next(&mut ws_json).await else {
        panic!()
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        items(&v)
            .iter()
            .map(|(_, c)| c.as_str())
            .collect::<Vec<_>>(),
        ["api-z"]
    );
    let Message::Binary(bin) = ws_next(&mut ws_mp).await else {
        panic!()
    };
    let v: serde_json::Value = rmp_serde::from_slice(&bin).unwrap();
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
    assert_eq!(v["records"][0]["check"], "api-z");
    let record: wire::Record =
        rmp_serde::from_slice(&rmp_serde::to_vec(&v["records"][0]["record"]).unwrap()).unwrap();
    assert_eq!(record.sc, Some(200));
    ws_json.close(None).await.unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn slow_reader_blocks_neither_ingest_nor_other_readers() {
    let gw = Gateway::start(|c| c.readers.queue_frames = 8).await;
    // Opened, never read while ingest runs.
    let mut slow = ws_open(gw.addr, READER_ALL, "?format=json").await;
    let mut fast = Sse::open(gw.addr, READER_ALL, "").await;
    fast.next().await.unwrap();
    let frames = 300;
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while n < frames * 100 {
            let e = fast.next().await.unwrap();
            assert_eq!(e.event, "records", "{:?}", e.data);
            n += items(&e.data).len();
        }
        n
    });
    for seq in 0..frames {
        let ans = post(gw.addr, AGENT_A, frame("a", 1, seq as u64, &["api-x"], 100)).await;
        assert_eq!(ans.status, 200);
    }
    let ingest_time = started.elapsed();
    assert_eq!(
        reader.await.unwrap(),
        frames * 100,
        "the fast reader got everything"
    );
    // The slow reader's stream ends with an explicit lagged reset.
    let mut last = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Text(t))) => last = Some(t.to_string()),
            Some(Ok(Message::Close(frame))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(4000));
                break;
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => break,
        }
    }
    let last: serde_json::Value = serde_json::from_str(&last.unwrap()).unwrap();
    assert_eq!(
        (last["type"].as_str(), last["reason"].as_str()),
        (Some("reset"), Some("lagged"))
    );
    let (from, to) = (last["missed_from"].as_u64(), last["missed_to"].as_u64());
    assert!(from.is_some_and(|f| to.is_some_and(|t| f <= t)), "{last}");
    assert_eq!(to, last["gseq"].as_u64(), "missed up to the newest gseq");
    assert_eq!(
        gw.metric("sonde_gateway_reader_drops_total{reason=\"lagged\"}")
            .await,
        1
    );
    assert!(ingest_time < Duration::from_secs(30), "{ingest_time:?}");
    gw.stop().await;
}
