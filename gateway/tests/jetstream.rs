//! `[jetstream]` served in-process against Debian's nats-server on
//! loopback: credentials, the record bound per frame, history paged
//! through the stream, and the refused operator reset. The failover
//! tests with processes are the agent crate's (agent/tests/jetstream.rs).

use std::time::Duration;

use config::{Secret, SecretSource};
use gateway::config::{JetStream, NatsAuth};
use testkit::nats::{Auth, NatsCluster};

use crate::util::{AGENT_A, Gateway, READER_ALL, frame, get_with, history_pages, post};

fn secret(v: &str) -> Secret<String> {
    Secret::new(SecretSource::Env("TEST".into()), v.to_owned())
}

fn settings(nats: &NatsCluster, auth: NatsAuth, stream: &str) -> JetStream {
    JetStream {
        servers: nats.client_urls(),
        auth,
        ca_file: None,
        client_cert: None,
        stream: stream.into(),
        subject_prefix: "sonde".into(),
        replicas: 1,
        max_age: Duration::from_secs(3600),
        max_bytes: None,
        duplicate_window: Duration::from_secs(120),
    }
}

async fn replica(js: JetStream) -> Gateway {
    Gateway::start(move |cfg| {
        cfg.identity.region = Some("eu.west".into());
        cfg.jetstream = Some(js);
        cfg.admins = vec![gateway::config::AdminAuth {
            name: "ops".into(),
            token: secret("token-admin"),
        }];
    })
    .await
}

fn nats(auth: &Auth) -> Option<NatsCluster> {
    if !testkit::require_tool(testkit::nats::NATS_SERVER) {
        return None;
    }
    Some(NatsCluster::start_with(1, auth).unwrap_or_else(|e| panic!("{e:#}")))
}

#[tokio::test]
async fn a_replica_signs_in_with_a_password_or_a_token() {
    let cases = [
        (
            Auth::UserPassword {
                user: "gw".into(),
                password: "s3cret-pw".into(),
            },
            NatsAuth::UserPassword {
                user: "gw".into(),
                password: secret("s3cret-pw"),
            },
        ),
        (
            Auth::Token("t0ken-for-nats".into()),
            NatsAuth::Token(secret("t0ken-for-nats")),
        ),
    ];
    for (server_auth, gateway_auth) in cases {
        let Some(nats) = nats(&server_auth) else {
            return;
        };
        let gw = replica(settings(&nats, gateway_auth, "sonde-eu_west")).await;
        // A replica that cannot sign in keeps trying and never listens.
        let sent = post(gw.addr, AGENT_A, frame("a", 7, 0, &["api"], 3));
        let answer = tokio::time::timeout(Duration::from_secs(20), sent)
            .await
            .expect("the replica signed in and answered");
        assert_eq!(answer.status, 200, "{}", answer.body);
        // The ack comes before this replica's follower has read the
        // message (PROTOCOL.md 10.2): history has it within moments.
        let mut got = Vec::new();
        for _ in 0..100 {
            got = history_pages(gw.addr, READER_ALL, "").await;
            if !got.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got.iter().all(|(g, _, _)| g / 1000 == 1),
            "{got:?}: message 1"
        );
        gw.stop().await;
    }
}

#[tokio::test]
async fn a_frame_past_the_record_bound_is_refused_and_history_pages_through_the_stream() {
    let Some(nats) = nats(&Auth::None) else {
        return;
    };
    let gw = replica(settings(&nats, NatsAuth::None, "sonde-eu_west")).await;
    // 1 001 records in one frame cannot be one message.
    let big = post(gw.addr, AGENT_A, frame("a", 7, 0, &["api"], 1001)).await;
    assert_eq!(big.status, 400, "{}", big.body);
    assert_eq!(big.json()["error"], "too_many_records");
    assert_eq!(big.json()["offset"], 0);
    // Ten frames of 5 records in two requests: two messages, whose records
    // get gseqs from their stream sequence.
    let mut first = Vec::new();
    for seq in 0..5 {
        first.extend(frame("a", 7, seq, &["api", "web"], 2));
    }
    let mut second = Vec::new();
    for seq in 5..10 {
        second.extend(frame("a", 7, seq, &["api", "web"], 2));
    }
    let answer = post(gw.addr, AGENT_A, first.clone()).await;
    assert_eq!(
        (answer.status, answer.json()["accepted"].as_u64()),
        (200, Some(5))
    );
    let answer = post(gw.addr, AGENT_A, second).await;
    assert_eq!(answer.json()["acked"], 9);
    // Sent again: duplicates, acknowledged with the mark, nothing stored.
    let again = post(gw.addr, AGENT_A, first).await;
    let j = again.json();
    assert_eq!(
        (
            j["accepted"].as_u64(),
            j["duplicates"].as_u64(),
            j["acked"].as_u64()
        ),
        (Some(0), Some(5), Some(9))
    );
    let mut all = Vec::new();
    for _ in 0..100 {
        all = history_pages(gw.addr, READER_ALL, "").await;
        if all.len() >= 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(all.len(), 40);
    let gseqs: Vec<u64> = all.iter().map(|r| r.0).collect();
    let mut want: Vec<u64> = (1000..1020).collect();
    want.extend(2000..2020);
    assert_eq!(gseqs, want, "message sequence x 1000 + index, each once");
    // Pages of 7 through the cursor give the same, each once.
    let paged = history_pages(gw.addr, READER_ALL, "limit=7").await;
    assert_eq!(paged, all);
    // A range inside a message, and a filter on check and agent.
    let part = history_pages(
        gw.addr,
        READER_ALL,
        "from_gseq=1015&to_gseq=2003&check=web&agent=a",
    )
    .await;
    let part: Vec<u64> = part.iter().map(|r| r.0).collect();
    // Each frame holds api, api, web, web.
    assert_eq!(part, [1015, 1018, 1019, 2002, 2003]);
    // An operator's reset has nothing to clear here.
    let (status, _, body) = get_with(
        gw.addr,
        "/v1/checks",
        &[("authorization", &format!("Bearer {READER_ALL}"))],
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let reset = crate::util::raw(
        gw.addr,
        hyper::Request::post(format!("http://{}/v1/admin/agents/a/reset", gw.addr))
            .header("host", gw.addr.to_string())
            .header("authorization", "Bearer token-admin")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(reset.0, 409);
    gw.stop().await;
}
