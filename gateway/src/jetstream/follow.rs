//! Every replica reads the region's stream whole and in order into its
//! hub: the current state, the replay ring and the live fan-out come
//! from the stream, never from what this replica's own agents sent, so
//! every replica shows the same records under the same gseqs.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;
use tokio::sync::oneshot;

use super::{Log, layout, publish};
use crate::state::App;

/// The wait before a broken read of the stream starts again.
const RESTART: Duration = Duration::from_secs(1);

/// Reads the stream into `app`'s hub for ever; `ready` is told once
/// everything the stream held at the start is in.
pub async fn follow(app: Arc<App>, log: Arc<Log>, ready: oneshot::Sender<()>) {
    let mut ready = Some(ready);
    let mut next: u64 = 1;
    // A stream whose messages all aged out keeps its last sequence but
    // delivers nothing: nothing to wait for either.
    let target = loop {
        match log.stream.get_info().await {
            Ok(info) if info.state.messages == 0 => break 0,
            Ok(info) => break info.state.last_sequence,
            Err(e) => {
                tracing::warn!(error = %e, "jetstream: reading the stream's state (trying again)");
                tokio::time::sleep(RESTART).await;
            }
        }
    };
    if target == 0 {
        if let Some(r) = ready.take() {
            let _ = r.send(());
        }
    }
    loop {
        let config = pull::OrderedConfig {
            deliver_policy: if next <= 1 {
                DeliverPolicy::All
            } else {
                DeliverPolicy::ByStartSequence {
                    start_sequence: next,
                }
            },
            ..Default::default()
        };
        let messages = match log.stream.create_consumer(config).await {
            Ok(c) => c.messages().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let mut messages = match messages {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, next, "jetstream: reading the stream (trying again)");
                tokio::time::sleep(RESTART).await;
                continue;
            }
        };
        loop {
            let m = match tokio::time::timeout(STALL, messages.next()).await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(_) => match log.stream.get_info().await {
                    Ok(info) => {
                        let s = &info.state;
                        // What the stream held at the start has been read,
                        // or has aged out of it meanwhile.
                        if s.messages == 0 || next > target || s.first_sequence > target {
                            if let Some(r) = ready.take() {
                                let _ = r.send(());
                            }
                        }
                        if s.messages > 0 && s.last_sequence >= next {
                            tracing::warn!(
                                next,
                                "jetstream: the stream has messages this replica was not sent (starting again)"
                            );
                            break;
                        }
                        continue;
                    }
                    // Not answering: the consumer is likely gone with its server.
                    Err(_) => break,
                },
            };
            let m = match m {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, next, "jetstream: reading the stream (starting again)");
                    break;
                }
            };
            let Ok(info) = m.info() else { continue };
            let seq = info.stream_sequence;
            if seq < next {
                continue;
            }
            let age = SystemTime::now()
                .duration_since(SystemTime::from(info.published))
                .unwrap_or(Duration::ZERO);
            apply(&app, &log, seq, &m.message.subject, &m.message.payload, age);
            next = seq + 1;
            // Not `pending == 0`: that is counted on the consumer's own
            // server, which may be a replica still catching up.
            if seq >= target {
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
            }
        }
        tokio::time::sleep(RESTART).await;
    }
}

/// How long the follower waits for a message before it asks whether the
/// stream has one for it (or whether what it held at the start is gone).
/// An ordered consumer lives on one server; when
/// that server dies, the client notices only after two missed idle
/// heartbeats (30 s apart), and meanwhile the replica's readers get
/// nothing.
const STALL: Duration = Duration::from_secs(3);

/// One message of the stream into the hub, stored `age` ago.
fn apply(app: &App, log: &Log, seq: u64, subject: &str, payload: &[u8], age: Duration) {
    let frames = match log.frames(subject, payload) {
        Ok(frames) => frames,
        Err(why) => {
            app.metrics
                .log_skipped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(seq, %subject, reason = %why, "jetstream: a message of the stream is not one a gateway publishes; skipped");
            return;
        }
    };
    let Some(first) = frames.first() else { return };
    let records: usize = frames.iter().map(wire::Frame::record_count).sum();
    let agent = first.header.agent.clone();
    let last = frames.last().map(|f| (f.header.session, f.header.seq));
    let now = Instant::now();
    let in_ring = (age < app.cfg.ring.max_age).then(|| now.checked_sub(age).unwrap_or(now));
    let skipped = app
        .hub()
        .append(&frames, layout::gseq(seq, 0), in_ring, now);
    for (why, check) in skipped {
        tracing::warn!(seq, %agent, check = %crate::ingest::shown_name(&check), reason = why.code(), "jetstream: a record left out of the current state");
    }
    log.marks.observe(&agent, seq, last);
    log.advanced(layout::gseq(seq, records.saturating_sub(1)));
}

/// Writes changed marks to the marks stream every second, for ever.
pub async fn save_marks(log: Arc<Log>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        publish::save_marks(&log).await;
    }
}
