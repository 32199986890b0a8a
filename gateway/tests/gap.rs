//! A reader that was away longer than the replay ring: its reset names the
//! range it missed, history fills it, and it ends with every accepted
//! record exactly once, in gseq order (PROTOCOL.md, recovering a gap).

use crate::util::*;

/// The next SSE event that is not `hello`.
async fn next_message(sse: &mut Sse) -> Event {
    loop {
        let e = sse.next().await.expect("the stream goes on");
        if e.event != "hello" {
            return e;
        }
    }
}

/// Every record of `/v1/history` with gseq in `from..=to`, page by page.
async fn history(gw: &Gateway, from: u64, to: u64) -> Vec<(u64, String, u64)> {
    let query = format!("from_gseq={from}&to_gseq={to}&limit=7");
    history_pages(gw.addr, READER_ALL, &query).await
}

#[tokio::test]
async fn a_reader_away_longer_than_the_ring_heals_its_gap_from_history() {
    let gw = Gateway::start(|c| c.ring.max_records = 8).await;
    let mut sent = Vec::new();
    let mut post_frame = |seq: u64| {
        let checks = ["api-x", "web-y"];
        for c in checks {
            for i in 0..2u64 {
                sent.push((c.to_owned(), 1_767_225_600_000 + seq * 1000 + i));
            }
        }
        frame("a", 1, seq, &checks, 2)
    };
    for seq in 0..3 {
        let f = post_frame(seq);
        assert_eq!(post(gw.addr, AGENT_A, f).await.status, 200);
    }
    // The reader reads up to now, then goes away.
    let mut sse = Sse::open(gw.addr, READER_ALL, "?since=0").await;
    let mut seen: Vec<(u64, String, u64)> = Vec::new();
    let reset = next_message(&mut sse).await;
    assert_eq!(reset.event, "reset", "gseq 0 is older than any ring");
    let from = reset.data["missed_from"].as_u64().unwrap();
    let to = reset.data["missed_to"].as_u64().unwrap();
    seen.extend(history(&gw, from, to).await);
    assert_eq!(next_message(&mut sse).await.event, "snapshot");
    assert_eq!(seen.len(), 12, "every record so far, from history");
    let last = seen.last().unwrap().0;
    drop(sse);

    // While it is away, far more than the ring holds arrives.
    for seq in 3..20 {
        let f = post_frame(seq);
        assert_eq!(post(gw.addr, AGENT_A, f).await.status, 200);
    }
    let mut sse = Sse::open(gw.addr, READER_ALL, &format!("?since={last}")).await;
    let reset = next_message(&mut sse).await;
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.data["reason"], "since_out_of_ring");
    let from = reset.data["missed_from"].as_u64().unwrap();
    let to = reset.data["missed_to"].as_u64().unwrap();
    assert_eq!(from, last + 1, "the gap starts right after what it saw");
    let snapshot = next_message(&mut sse).await;
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(
        snapshot.data["gseq"].as_u64(),
        Some(to),
        "the gap ends at G"
    );
    seen.extend(history(&gw, from, to).await);
    // Then live, after G.
    for seq in 20..23 {
        let f = post_frame(seq);
        assert_eq!(post(gw.addr, AGENT_A, f).await.status, 200);
    }
    while seen.len() < sent.len() {
        let e = next_message(&mut sse).await;
        assert_eq!(e.event, "records");
        seen.extend(triples(&e.data));
    }
    let gseqs: Vec<u64> = seen.iter().map(|s| s.0).collect();
    let mut sorted = gseqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(gseqs, sorted, "each record once, in gseq order");
    let got: Vec<(String, u64)> = seen.into_iter().map(|(_, c, t)| (c, t)).collect();
    assert_eq!(got, sent, "exactly what was accepted, nothing missing");
    gw.stop().await;
}
