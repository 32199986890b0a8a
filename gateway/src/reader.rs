//! Live readers: one [`Feed`] per connection turns a hub subscription into
//! the message sequence of PROTOCOL.md 3.3 (reset?, snapshot, missed,
//! live), and two thin transports carry it: Server-Sent Events and
//! WebSocket.
//!
//! A feed never holds the hub lock while encoding, and reads live batches
//! from the bounded broadcast: a reader that falls behind gets `lagged`
//! and is closed; ingest never waits for it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::Scope;
use crate::hub::Batch;
use crate::message::{self, Encoded, Format, ResetReason};
use crate::state::App;

/// Silence after which SSE sends a comment and WebSocket a Ping.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// One reader's message sequence.
pub struct Feed {
    app: Arc<App>,
    scope: Arc<Scope>,
    format: Format,
    pending: VecDeque<Encoded>,
    live: broadcast::Receiver<Arc<Batch>>,
    after: u64,
    /// Set once the reader lagged: the reset was sent, nothing follows.
    pub lagged: bool,
}

impl Feed {
    /// Subscribes a reader that last saw `since`.
    pub fn open(app: Arc<App>, scope: Arc<Scope>, format: Format, since: Option<u64>) -> Feed {
        let sub = app.hub().subscribe(since);
        app.metrics.readers.fetch_add(1, Ordering::Relaxed);
        let mut pending = VecDeque::with_capacity(sub.missed.len() + 2);
        if sub.reset {
            app.metrics.drops_since.fetch_add(1, Ordering::Relaxed);
            pending.push_back(message::reset(
                format,
                ResetReason::SinceOutOfRing,
                sub.head,
            ));
        }
        let mut snapshot = message::snapshot(format, sub.head, &sub.snapshot, &scope);
        let missed: Vec<Encoded> = match (sub.reset, since) {
            (false, Some(since)) => sub
                .missed
                .iter()
                .filter_map(|b| message::records(format, b, since, &scope))
                .collect(),
            _ => Vec::new(),
        };
        if !missed.is_empty() {
            // The replay that follows has ids below G: the snapshot's SSE id
            // stays at `since`, so a reader cut off before the replay
            // resumes from there and event ids never go back.
            snapshot.id = since;
        }
        pending.push_back(snapshot);
        pending.extend(missed);
        Feed {
            app,
            scope,
            format,
            pending,
            live: sub.live,
            after: sub.head,
            lagged: false,
        }
    }

    /// The next message, or `None` when the feed is over.
    pub async fn next(&mut self) -> Option<Encoded> {
        if let Some(e) = self.pending.pop_front() {
            return Some(e);
        }
        if self.lagged {
            return None;
        }
        loop {
            match self.live.recv().await {
                Ok(batch) => {
                    let encoded = message::records(self.format, &batch, self.after, &self.scope);
                    self.after = self.after.max(batch.last_gseq());
                    if encoded.is_some() {
                        return encoded;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    self.lagged = true;
                    self.app
                        .metrics
                        .drops_lagged
                        .fetch_add(1, Ordering::Relaxed);
                    let head = self.app.hub().head();
                    return Some(message::reset(self.format, ResetReason::Lagged, head));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.app.metrics.readers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The SSE response for a feed; it ends when the feed does or the gateway stops.
pub fn sse(feed: Feed) -> Response {
    let stopping = feed.app.stopping();
    let events = futures_util::stream::unfold(feed, |mut feed| async move {
        let e = feed.next().await?;
        let mut event = Event::default()
            .event(e.kind)
            .data(String::from_utf8_lossy(&e.body));
        if let Some(id) = e.id {
            event = event.id(id.to_string());
        }
        Some((Ok::<_, Infallible>(event), feed))
    });
    Sse::new(events.take_until(stopping))
        .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("ping"))
        .into_response()
}

/// Runs a WebSocket reader until the client leaves, it lags or the gateway stops.
pub async fn websocket(mut socket: WebSocket, mut feed: Feed) {
    let stopping = feed.app.stopping();
    tokio::pin!(stopping);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            next = feed.next() => {
                let Some(e) = next else { break };
                let msg = match feed.format {
                    Format::Json => Message::Text(String::from_utf8_lossy(&e.body).into_owned().into()),
                    Format::MsgPack => Message::Binary(e.body.into()),
                };
                if socket.send(msg).await.is_err() {
                    return;
                }
                heartbeat.reset();
                if feed.lagged && feed.pending.is_empty() {
                    let close = CloseFrame { code: 4000, reason: "lagged".into() };
                    let _ = socket.send(Message::Close(Some(close))).await;
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            _ = heartbeat.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            () = &mut stopping => break,
        }
    }
    let close = CloseFrame {
        code: 1001,
        reason: "going away".into(),
    };
    let _ = socket.send(Message::Close(Some(close))).await;
}
