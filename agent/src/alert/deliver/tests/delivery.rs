//! The delivery task against loopback receivers: retries with the same
//! `webhook-id` and fresh signatures, `Retry-After`, order, dead letters
//! and replay, Alertmanager's refresh and resolution, independence of
//! receivers. Real sockets and short real backoffs.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Reply, Scripted, event, location, until};
use crate::alert::deliver::webhook::{ID_HEADER, SIGNATURE_HEADER, Signer, TIMESTAMP_HEADER};
use crate::alert::deliver::*;
use crate::alert::event::{Event, Kind, LocationState};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const MS: Duration = Duration::from_millis(1);

fn secret() -> config::Secret<String> {
    config::Secret::new(config::SecretSource::Env("S".into()), SECRET.into())
}

fn webhook(name: &str, url: url::Url) -> ReceiverConfig {
    let mut c = ReceiverConfig::new(
        name,
        ReceiverKind::Webhook {
            url,
            secrets: vec![secret()],
            headers: Vec::new(),
        },
    );
    c.backoff_first = 50 * MS;
    c.backoff_max = 200 * MS;
    c.timeout = Duration::from_secs(2);
    c
}

struct Running {
    receiver: Arc<Receiver>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Running {
    fn start(config: &ReceiverConfig) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let dead = Arc::new(DeadLetters::new(dir.path().join("dead.jsonl")));
        let receiver = Arc::new(Receiver::new(config.clone(), dead).unwrap());
        let (stop, stopped) = watch::channel(false);
        let task = spawn(receiver.clone(), stopped);
        Running {
            receiver,
            stop,
            task,
            _dir: dir,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(3), &mut self.task)
            .await
            .expect("the task stops")
            .unwrap();
    }
}

fn header(seen: &super::Seen, name: &str) -> String {
    seen.headers[name].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn retries_keep_the_webhook_id_recompute_the_signature_and_honour_retry_after() {
    let server = Scripted::start(vec![Reply::Status(503), Reply::RetryAfter(503, 2)]).await;
    let run = Running::start(&webhook("hook", server.url("/in")));
    let down = event("msg_down", Kind::Down, "api");
    let up = event("msg_up", Kind::Recovered, "api");
    assert!(run.receiver.enqueue(down.clone()));
    assert!(run.receiver.enqueue(up.clone()));
    assert!(
        !run.receiver.enqueue(up.clone()),
        "an id already pending is not queued twice"
    );
    let seen = server.wait_for(4, Duration::from_secs(4)).await;
    until("sent", Duration::from_secs(1), || {
        run.receiver.stats().sent == 2
    })
    .await;

    // Order: the recovery only after its down was accepted.
    let ids: Vec<_> = seen.iter().map(|s| header(s, ID_HEADER)).collect();
    assert_eq!(ids, ["msg_down", "msg_down", "msg_down", "msg_up"]);
    assert!(seen.iter().all(|s| s.path == "/in"));
    // Retry-After: 2 is waited at least; the first retry is backoff only.
    assert!(seen[1].at - seen[0].at < Duration::from_millis(1000));
    assert!(
        seen[2].at - seen[1].at >= Duration::from_secs(2),
        "{:?}",
        seen[2].at - seen[1].at
    );
    // Each attempt is signed for its own timestamp over the same body.
    let signer = Signer::new(&[secret()], &[]).unwrap();
    for s in &seen {
        let ts: u64 = header(s, TIMESTAMP_HEADER).parse().unwrap();
        let id = header(s, ID_HEADER);
        assert_eq!(
            header(s, SIGNATURE_HEADER),
            signer.signature(&id, ts, &s.body)
        );
        assert_eq!(header(s, "content-type"), "application/json");
        assert!(header(s, "user-agent").starts_with("sonde/"));
    }
    assert_eq!(seen[0].body, seen[2].body);
    assert_ne!(
        header(&seen[0], TIMESTAMP_HEADER),
        header(&seen[2], TIMESTAMP_HEADER)
    );
    assert_ne!(
        header(&seen[0], SIGNATURE_HEADER),
        header(&seen[2], SIGNATURE_HEADER)
    );
    let payload: serde_json::Value = serde_json::from_slice(&seen[3].body).unwrap();
    assert_eq!(payload["type"], "check.recovered");
    assert_eq!(payload["data"]["id"], "msg_up");

    let stats = run.receiver.stats();
    assert_eq!(
        (
            stats.sent,
            stats.failed,
            stats.retried,
            stats.dead_lettered,
            stats.pending
        ),
        (2, 2, 2, 0, 0)
    );
    assert_eq!(stats.last_error.as_deref(), Some("HTTP 503"));
    run.stop().await;
}

#[tokio::test]
async fn the_head_stays_queued_until_accepted_so_a_snapshot_holds_it() {
    let server = Scripted::start(vec![Reply::Slow(Duration::from_millis(400), 200)]).await;
    let run = Running::start(&webhook("hook", server.url("/")));
    run.receiver.enqueue(event("msg_1", Kind::Down, "api"));
    server.wait_for(1, Duration::from_secs(2)).await;
    // Mid-delivery: still pending, so a crash now redelivers msg_1.
    let state = run.receiver.snapshot();
    let ids: Vec<_> = state.pending.iter().map(|p| p.event.id.as_str()).collect();
    assert_eq!(ids, ["msg_1"]);
    until("delivered", Duration::from_secs(2), || {
        run.receiver.stats().sent == 1
    })
    .await;
    assert!(run.receiver.snapshot().pending.is_empty());

    // Restored into a new receiver, it is delivered again with its id.
    let again = Running::start(&webhook("hook", server.url("/")));
    let json = serde_json::to_vec(&state).unwrap();
    again
        .receiver
        .restore(serde_json::from_slice(&json).unwrap());
    let seen = server.wait_for(2, Duration::from_secs(2)).await;
    assert_eq!(header(&seen[1], ID_HEADER), "msg_1");
    run.stop().await;
    again.stop().await;
}

#[tokio::test]
async fn a_refusal_is_dead_lettered_and_a_replay_delivers_it() {
    let server = Scripted::start(vec![Reply::Status(400)]).await;
    let run = Running::start(&webhook("hook", server.url("/")));
    run.receiver.enqueue(event("msg_bad", Kind::Down, "api"));
    run.receiver.enqueue(event("msg_next", Kind::Down, "web"));
    server.wait_for(2, Duration::from_secs(2)).await;
    let dead = run.receiver.dead_letters().clone();
    until("written", Duration::from_secs(2), || {
        dead.list().map(|l| l.entries.len() == 1).unwrap_or(false)
    })
    .await;
    let listing = dead.list().unwrap();
    let letter = &listing.entries[0];
    assert_eq!(
        (
            letter.receiver.as_str(),
            letter.id.as_str(),
            letter.attempts
        ),
        ("hook", "msg_bad", 1)
    );
    assert_eq!(letter.last_error, "HTTP 400");
    assert_eq!(letter.event.check, "api");
    until("the next sent", Duration::from_secs(1), || {
        run.receiver.stats().sent == 1
    })
    .await;
    let stats = run.receiver.stats();
    assert_eq!((stats.sent, stats.failed, stats.dead_lettered), (1, 1, 1));

    let all = std::slice::from_ref(&run.receiver);
    let only = ["msg_bad".to_owned()];
    let replayed = replay(all, &only, Some("hook")).unwrap();
    assert_eq!(replayed, 1);
    // Not twice while pending.
    assert!(run.receiver.replay(&Select::All).unwrap().is_empty());
    let seen = server.wait_for(3, Duration::from_secs(2)).await;
    assert_eq!(header(&seen[2], ID_HEADER), "msg_bad");
    until("replayed", Duration::from_secs(1), || {
        run.receiver.stats().sent == 2
    })
    .await;
    // Once delivered, the task marks it replayed in the file.
    until("marked", Duration::from_secs(1), || {
        dead.list().map(|l| l.entries.is_empty()).unwrap_or(false)
    })
    .await;
    let unknown = replay(all, &[], Some("nope")).map_err(|e| e.to_string());
    assert_eq!(unknown, Err("no receiver named \"nope\"".to_owned()));
    assert_eq!(replay(all, &[], None).unwrap(), 0);
    run.stop().await;
}

#[tokio::test]
async fn a_slow_receiver_does_not_delay_another() {
    let slow = Scripted::start(vec![Reply::Slow(Duration::from_secs(3), 200)]).await;
    let fast = Scripted::start(Vec::new()).await;
    let mut slow_config = webhook("slow", slow.url("/"));
    slow_config.timeout = Duration::from_secs(1);
    let a = Running::start(&slow_config);
    let b = Running::start(&webhook("fast", fast.url("/")));
    let e = Arc::new(event("msg_1", Kind::Down, "api"));
    a.receiver.enqueue(e.clone());
    b.receiver.enqueue(e);
    fast.wait_for(1, Duration::from_millis(500)).await;
    until("the fast one sent", Duration::from_millis(500), || {
        b.receiver.stats().sent == 1
    })
    .await;
    // The slow one times out and retries.
    until("timed out", Duration::from_secs(2), || {
        a.receiver.stats().retried >= 1
    })
    .await;
    let err = a.receiver.stats().last_error.unwrap_or_default();
    assert!(err.contains("no answer within"), "{err}");
    a.stop().await;
    b.stop().await;
}

fn am_down() -> Event {
    let mut e = event("msg_down", Kind::Down, "api");
    e.quorum.down = 2;
    e.quorum.regions = 2;
    e.locations = vec![
        location("eu", "a1", LocationState::Down, None),
        location("us", "a2", LocationState::Down, None),
    ];
    e
}

#[tokio::test]
async fn alertmanager_gets_the_alerts_refreshed_while_firing_then_resolved() {
    let server = Scripted::start(vec![Reply::Status(503)]).await;
    let url = server.url("/am/");
    let mut config = ReceiverConfig::new(
        "am",
        ReceiverKind::Alertmanager {
            url,
            resend: Duration::from_millis(150),
            labels: vec![("env".into(), "test".into())],
        },
    );
    config.backoff_first = 20 * MS;
    let run = Running::start(&config);
    run.receiver.enqueue(am_down());
    // A failed post, the post, then at least two refreshes.
    let seen = server.wait_for(4, Duration::from_secs(3)).await;
    assert!(seen.iter().all(|s| s.path == "/am/api/v2/alerts"));
    let alerts = |s: &super::Seen| -> Vec<serde_json::Value> {
        serde_json::from_slice::<Vec<serde_json::Value>>(&s.body).unwrap()
    };
    let regions = |s: &super::Seen| -> Vec<String> {
        alerts(s)
            .iter()
            .map(|a| a["labels"]["region"].as_str().unwrap().to_owned())
            .collect()
    };
    for s in &seen[..4] {
        assert_eq!(regions(s), ["eu", "us"]);
        assert!(alerts(s).iter().all(|a| a["labels"]["env"] == "test"));
    }
    assert!(seen[3].at - seen[2].at >= Duration::from_millis(100));
    until("two refreshes", Duration::from_secs(1), || {
        run.receiver.stats().refreshed >= 2
    })
    .await;
    assert_eq!(run.receiver.stats().firing, 2);
    let state = run.receiver.snapshot();
    assert_eq!(state.active.len(), 2);

    run.receiver
        .enqueue(event("msg_up", Kind::Recovered, "api"));
    until("resolved", Duration::from_secs(2), || {
        run.receiver.stats().firing == 0
    })
    .await;
    let seen = server.seen();
    let last = seen.last().unwrap();
    assert_eq!(regions(last), ["eu", "us"]);
    // Resolved: they end now (not 4 resends ahead).
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let now = crate::alert::event::rfc3339_ms(now_ms);
    assert!(
        alerts(last)
            .iter()
            .all(|a| a["endsAt"].as_str().unwrap() <= now.as_str())
    );
    // Nothing firing: no more refreshes.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(server.seen().len(), seen.len());
    run.stop().await;
}

#[tokio::test]
async fn https_receivers_are_verified_against_the_configured_ca() {
    let ca = testkit::pki::Ca::new();
    let leaf = ca.leaf(&["127.0.0.1"]);
    let server =
        Scripted::start_with(Vec::new(), Some(leaf.server_config(&[b"http/1.1"], None))).await;
    let url = url::Url::parse(&format!("https://{}/in", server.addr)).unwrap();
    let files = ca.pem_files();
    let mut trusting = webhook("private-ca", url.clone());
    trusting.ca_file = Some(files.ca_cert.clone());
    let run = Running::start(&trusting);
    run.receiver.enqueue(event("msg_1", Kind::Down, "api"));
    let seen = server.wait_for(1, Duration::from_secs(2)).await;
    assert_eq!(header(&seen[0], ID_HEADER), "msg_1");
    until("sent", Duration::from_secs(1), || {
        run.receiver.stats().sent == 1
    })
    .await;
    // Without the CA, the system roots do not know it.
    let strict = Running::start(&webhook("system-roots", url));
    strict.receiver.enqueue(event("msg_2", Kind::Down, "api"));
    until("refused", Duration::from_secs(2), || {
        strict.receiver.stats().retried >= 1
    })
    .await;
    let err = strict.receiver.stats().last_error.unwrap_or_default();
    assert!(err.contains("TLS handshake"), "{err}");
    assert_eq!(server.seen().len(), 1);
    run.stop().await;
    strict.stop().await;
}
