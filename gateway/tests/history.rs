//! `/v1/history`: exactly the accepted records, in gseq order, across file
//! rotation and a restart; paged; scoped; bad parameters named.

use crate::util::*;

async fn page(gw: &Gateway, token: &str, query: &str) -> (u16, serde_json::Value) {
    let auth = format!("Bearer {token}");
    let path = format!("/v1/history?{query}");
    let (status, _, body) = get_with(gw.addr, &path, &[("authorization", &auth)]).await;
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// (gseq, check, t) of every record from `from` on, following the cursor.
async fn all_pages(gw: &Gateway, token: &str, from: u64, limit: usize) -> Vec<(u64, String, u64)> {
    history_pages(gw.addr, token, &format!("from_gseq={from}&limit={limit}")).await
}

#[tokio::test]
async fn history_is_what_was_accepted_across_rotation_and_a_restart() {
    let small_files = |c: &mut gateway::GatewayConfig| c.writer.max_file_bytes = 4096;
    let gw = Gateway::start(small_files).await;
    let mut sent = Vec::new();
    let checks = ["api-x", "web-y"];
    let mut post_frames = async |gw: &Gateway, seqs: std::ops::Range<u64>, session: u64| {
        for seq in seqs {
            for c in checks {
                for i in 0..25u64 {
                    sent.push((c.to_owned(), 1_767_225_600_000 + seq * 1000 + i));
                }
            }
            let f = frame("a", session, seq, &checks, 25);
            assert_eq!(post(gw.addr, AGENT_A, f).await.status, 200);
        }
    };
    post_frames(&gw, 0..40, 1).await;
    let dir = gw.stop().await;
    let files = std::fs::read_dir(dir.path().join("data")).unwrap().count();
    assert!(files > 3, "rotation made {files} files");
    let gw = Gateway::start_in(dir, small_files).await;
    post_frames(&gw, 0..20, 2).await;

    let got = all_pages(&gw, READER_ALL, 0, 37).await;
    let gseqs: Vec<u64> = got.iter().map(|g| g.0).collect();
    let mut sorted = gseqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(gseqs, sorted, "each once, in gseq order");
    let records: Vec<(String, u64)> = got.iter().map(|(_, c, t)| (c.clone(), *t)).collect();
    assert_eq!(records, sent, "exactly what was accepted");

    // A range: the records whose gseqs are in it, no more.
    let (lo, hi) = (gseqs[100], gseqs[150]);
    let (_, p) = page(
        &gw,
        READER_ALL,
        &format!("from_gseq={lo}&to_gseq={hi}&limit=10000"),
    )
    .await;
    let range: Vec<u64> = p["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["gseq"].as_u64().unwrap())
        .collect();
    assert_eq!(range, gseqs[100..=150].to_vec());
    assert!(p["next_cursor"].is_null());
    assert_eq!(p["gateway"], "gateway");

    // Filters: a check glob, an agent glob, a time range (ms or RFC 3339).
    let web = all_pages(&gw, READER_ALL, 0, 1000).await;
    let web: Vec<_> = web
        .into_iter()
        .filter(|(_, c, _)| c.starts_with("web"))
        .collect();
    let (_, p) = page(&gw, READER_ALL, "check=web-*&limit=10000").await;
    let got: Vec<u64> = p["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["gseq"].as_u64().unwrap())
        .collect();
    assert_eq!(got, web.iter().map(|w| w.0).collect::<Vec<_>>());
    let (_, p) = page(&gw, READER_ALL, "agent=b*").await;
    assert!(p["records"].as_array().unwrap().is_empty(), "agent a only");
    // seq 3 of either session: t from ...03000 to ...03024.
    let (t0, t1) = (1_767_225_603_000u64, 1_767_225_603_024u64);
    let (_, p) = page(
        &gw,
        READER_ALL,
        &format!("from={t0}&to={t1}&check=api-x&limit=10000"),
    )
    .await;
    let ts: Vec<u64> = p["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"]["t"].as_u64().unwrap())
        .collect();
    assert_eq!(ts.len(), 50, "25 per session");
    assert!(ts.iter().all(|t| (t0..=t1).contains(t)));
    let rfc = "from=2026-01-01T00:00:03Z&to=2026-01-01T00:00:03.024Z&check=api-x&limit=10000";
    let (status, p) = page(&gw, READER_ALL, rfc).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["records"].as_array().unwrap().len(), 50);

    // MessagePack on request: the same page, records as wire arrays.
    let auth = format!("Bearer {READER_ALL}");
    let path = format!("/v1/history?from_gseq={lo}&limit=3");
    {
        let headers = [
            ("authorization", auth.as_str()),
            ("accept", "application/msgpack"),
        ];
        let (status, head, body) = get_with(gw.addr, &path, &headers).await;
        assert_eq!(status, 200);
        assert_eq!(head["content-type"], "application/msgpack");
        let v: serde_json::Value = rmp_serde::from_slice(&body).unwrap();
        let recs = v["records"].as_array().unwrap();
        let g: Vec<u64> = recs.iter().map(|r| r["gseq"].as_u64().unwrap()).collect();
        assert_eq!(g, gseqs[100..103].to_vec());
        assert!(recs[0]["record"].is_array(), "{}", recs[0]);
        assert_eq!(
            v["next_cursor"].as_str(),
            Some(gseqs[103].to_string().as_str())
        );
        assert_eq!(v["gateway"], "gateway");
    }

    // Scoped: never a record outside the reader's scope.
    let api = all_pages(&gw, READER_API, 0, 1000).await;
    assert_eq!(api.len(), sent.len() / 2);
    assert!(api.iter().all(|(_, c, _)| c == "api-x"));

    for bad in [
        "from=yesterday",
        "to=2026-13-01T00:00:00Z",
        "from_gseq=x",
        "from_gseq=1&limit=0",
        "from_gseq=1&limit=10001",
        "cursor=-1",
    ] {
        let (status, body) = page(&gw, READER_ALL, bad).await;
        assert_eq!(status, 400, "{bad}: {}", body["reason"]);
    }
    assert_eq!(page(&gw, "nobody", "from_gseq=0").await.0, 401);
    gw.stop().await;
}
