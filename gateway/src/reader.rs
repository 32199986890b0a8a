//! Live readers: one [`Feed`] per connection turns a hub subscription into
//! the message sequence of PROTOCOL.md 3.3 (hello, reset?, snapshot,
//! missed, live), and two thin transports carry it: Server-Sent Events and
//! WebSocket.
//!
//! A feed never holds the hub lock while encoding, and reads live batches
//! from the bounded broadcast, whose batches are encoded once for all
//! readers: a reader that falls behind gets `lagged` and is closed; one
//! that stops reading is closed by the connection's write deadline
//! (`write_deadline`). Ingest never waits for either.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::{Reader, Scope};
use crate::hub::{Batch, REPLAY_CHUNK_BATCHES};
use crate::message::{self, Encoded, Format, ResetReason, SharedBatch};
use crate::state::App;

/// Silence after which SSE sends a comment and WebSocket a Ping.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// The most a connection's HTTP layer holds for its peer beyond the one
/// message being written (hyper's HTTP/1.1 write buffer, HTTP/2's send
/// buffer per stream): with the write deadline, what bounds a reader
/// that stopped reading (PROTOCOL.md 3.4).
pub const SEND_BUFFER_BYTES: usize = 64 << 10;

/// The SSE heartbeat, a comment line (PROTOCOL.md 4).
const SSE_PING: &[u8] = b": ping\n\n";

/// One reader's message sequence.
pub struct Feed {
    app: Arc<App>,
    scope: Arc<Scope>,
    /// When the reader's credential expires: the feed ends there.
    expires: Option<tokio::time::Instant>,
    format: Format,
    /// The reset and the snapshot, encoded when the reader connected.
    pending: VecDeque<Encoded>,
    /// The chunk of the replay in hand (at most [`REPLAY_CHUNK_BATCHES`]
    /// of the ring's shared batches), encoded one at a time as the reader
    /// takes it: records with gseq > `since`.
    missed: VecDeque<Arc<Batch>>,
    since: u64,
    /// The replay's cursor: the newest gseq of the batches taken from the
    /// ring so far; the replay is over once it reaches `replay_until`.
    replay_after: u64,
    /// The snapshot's gseq `G`: the replay ends there, live takes over.
    replay_until: u64,
    live: broadcast::Receiver<Arc<SharedBatch>>,
    /// The newest gseq of a live batch this reader has been through.
    after: u64,
    /// Set once the reader lagged: the reset was sent, nothing follows.
    lagged: bool,
    /// Set once its token expired (with `lagged`: nothing follows).
    expired: bool,
}

impl Feed {
    /// Subscribes a reader that last saw `since`.
    pub fn open(app: Arc<App>, reader: Reader, format: Format, since: Option<u64>) -> Feed {
        let Reader { scope, expires } = reader;
        let sub = app.hub().subscribe(since);
        app.metrics.readers.fetch_add(1, Ordering::Relaxed);
        let mut pending = VecDeque::with_capacity(3);
        pending.push_back(message::hello(format, &app.hello(sub.head, sub.ring)));
        if let Some(reason) = sub.reset {
            // Out of the ring: the reader missed everything after `since`
            // up to the snapshot's G, which history holds. Ahead: no range.
            let (counter, missed) = match reason {
                ResetReason::SinceAhead => (&app.metrics.drops_ahead, None),
                _ => (
                    &app.metrics.drops_since,
                    since.map(|s| (s.saturating_add(1), sub.head)),
                ),
            };
            counter.fetch_add(1, Ordering::Relaxed);
            pending.push_back(message::reset(format, reason, sub.head, missed));
        }
        let mut snapshot = message::snapshot(format, sub.head, &sub.snapshot, &scope);
        let (missed, since) = match (sub.reset, since) {
            (None, Some(since)) => (VecDeque::from(sub.missed), since),
            _ => (VecDeque::new(), sub.head),
        };
        let replay_after = missed
            .back()
            .map_or(sub.head, |b| b.last_gseq().min(sub.head));
        if since < sub.head {
            // A replay may follow, with ids below G: the snapshot's SSE id
            // stays at `since`, so a reader cut off before the replay
            // resumes from there and event ids never go back.
            snapshot.id = Some(since);
        }
        pending.push_back(snapshot);
        // A wall-clock expiry as a deadline of the runtime's clock.
        let expires = expires.map(|at| {
            tokio::time::Instant::now() + crate::oidc::until(at, std::time::SystemTime::now())
        });
        Feed {
            app,
            scope,
            expires,
            format,
            pending,
            missed,
            since,
            replay_after,
            replay_until: sub.head,
            live: sub.live,
            after: sub.head,
            lagged: false,
            expired: false,
        }
    }

    /// The next message, or `None` when the feed is over: after a
    /// `lagged` reset, or the `expired` message once the reader's token
    /// expires. Cancel-safe: a message is taken only when it is returned.
    pub async fn next(&mut self) -> Option<Encoded> {
        if let Some(e) = self.pending.pop_front() {
            return Some(e);
        }
        if self.lagged {
            return None;
        }
        let Some(deadline) = self.expires else {
            return self.next_message().await;
        };
        match tokio::time::timeout_at(deadline, self.next_message()).await {
            Ok(next) if tokio::time::Instant::now() < deadline => next,
            _ => {
                self.end();
                self.expired = true;
                self.app
                    .metrics
                    .readers_expired
                    .fetch_add(1, Ordering::Relaxed);
                Some(message::expired(self.format, self.app.hub().head()))
            }
        }
    }

    async fn next_message(&mut self) -> Option<Encoded> {
        loop {
            while let Some(batch) = self.missed.pop_front() {
                if let Some(e) = message::records(self.format, &batch, self.since, &self.scope) {
                    return Some(e);
                }
            }
            if self.replay_after >= self.replay_until {
                break;
            }
            let chunk =
                self.app
                    .hub()
                    .replay(self.replay_after, self.replay_until, REPLAY_CHUNK_BATCHES);
            match chunk {
                Ok(chunk) => {
                    self.replay_after = chunk
                        .last()
                        .map_or(self.replay_until, |b| b.last_gseq().min(self.replay_until));
                    self.missed = chunk.into();
                }
                // Everything up to the cursor was sent; the ring dropped
                // what follows before this reader took it.
                Err(evicted) => return Some(self.lag(evicted.after + 1)),
            }
        }
        loop {
            match self.live.recv().await {
                Ok(shared) => {
                    let encoded = shared.records(self.format, self.after, &self.scope);
                    self.after = self.after.max(shared.batch.last_gseq());
                    if encoded.is_some() {
                        return encoded;
                    }
                }
                Err(RecvError::Lagged(_)) => return Some(self.lag(self.after + 1)),
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Ends the feed with a `lagged` reset: the reader was sent every
    /// record in its scope before `missed_from`, and missed those from
    /// there to the newest gseq, which history holds.
    fn lag(&mut self, missed_from: u64) -> Encoded {
        self.end();
        self.app
            .metrics
            .drops_lagged
            .fetch_add(1, Ordering::Relaxed);
        let head = self.app.hub().head();
        let missed = (missed_from, head.max(missed_from));
        message::reset(self.format, ResetReason::Lagged, head, Some(missed))
    }

    /// Nothing follows the message being returned (a `lagged` reset or
    /// `expired`).
    fn end(&mut self) {
        self.lagged = true;
        self.missed.clear();
    }

    /// Whether the `lagged` reset was the last message.
    fn lagged_out(&self) -> bool {
        self.lagged && self.pending.is_empty()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.app.metrics.readers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The SSE response for a feed; it and its connection end when the feed
/// does or the gateway stops. Events go out as the shared bytes of
/// [`Encoded::to_sse_event`], with `: ping` after 15 s of silence.
pub fn sse(feed: Feed) -> Response {
    let stopping = feed.app.stopping();
    let events = futures_util::stream::unfold(feed, |mut feed| async move {
        // A reader with messages waiting takes the next one without a
        // timer; only one about to wait arms the heartbeat.
        let next = match feed.next().now_or_never() {
            Some(next) => Ok(next),
            None => tokio::time::timeout(HEARTBEAT, feed.next()).await,
        };
        let chunk = match next {
            Ok(Some(e)) => e.to_sse_event(),
            Ok(None) => return None,
            Err(_) => Bytes::from_static(SSE_PING),
        };
        Some((Ok::<_, Infallible>(chunk), feed))
    });
    let mut r = Body::from_stream(events.take_until(stopping)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Over HTTP/1.1 the connection ends with the stream (a lagged reset,
    // shutdown) rather than idling in keep-alive; HTTP/2 drops the header.
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
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
                    // JSON from serde_json is UTF-8; the check is cheap.
                    Format::Json => match Utf8Bytes::try_from(e.body) {
                        Ok(text) => Message::Text(text),
                        Err(_) => break,
                    },
                    Format::MsgPack => Message::Binary(e.body),
                };
                if socket.send(msg).await.is_err() {
                    return;
                }
                heartbeat.reset();
                if feed.lagged_out() {
                    let close = match feed.expired {
                        true => CloseFrame { code: 4001, reason: "token expired".into() },
                        false => CloseFrame { code: 4000, reason: "lagged".into() },
                    };
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
