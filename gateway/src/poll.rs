//! Readers that ask instead of holding a stream (PROTOCOL.md 3.9):
//! `GET /v1/checks`, the current state with an ETag so that an unchanged
//! state costs a 304, and `GET /v1/poll`, long polling: what came after a
//! gseq at once, or the next record within `wait`.
//!
//! A poll reads the ring and then the live channel like a stream's feed,
//! subscribed under the same lock so that nothing falls between the two;
//! the lock is never held across an await. A held poll counts as a reader
//! against `[readers] max_readers`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use wire::Record;

use crate::auth::Scope;
use crate::hub::Hub;
use crate::message::{self, Hello, PollReset, ResetReason, SharedBatch};
use crate::server::{Refusal, authenticate_reader, bad_request};
use crate::state::App;

/// `wait` when none is given.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// The longest `wait` a poll may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Records in one answer when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 1000;
/// The most records one answer may ask for.
pub const MAX_LIMIT: usize = 10_000;

/// Query parameters of `/v1/checks` and `/v1/poll`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PollQuery {
    since: Option<String>,
    wait: Option<String>,
    limit: Option<String>,
    token: Option<String>,
}

/// `wait=`: the one duration grammar (`500ms`, `30s`, `1m`), a bare
/// number is seconds; at most [`MAX_WAIT`].
pub fn parse_wait(text: &str) -> Result<Duration, String> {
    let wait = config::duration::parse_with(text.trim(), config::duration::BareNumber::Seconds)
        .map_err(|e| format!("wait: {e} ({})", config::duration::VALID))?;
    if wait > MAX_WAIT {
        return Err(format!("wait is at most {}s", MAX_WAIT.as_secs()));
    }
    Ok(wait)
}

/// A gseq parameter (`since`, `from_gseq`, `cursor`, ...) named `name`;
/// `None` when absent or empty.
pub fn parse_gseq(text: Option<&str>, name: &str) -> Result<Option<u64>, String> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} must be a gseq (an unsigned integer), not {t:?}")),
    }
}

/// `limit=`: 1 to [`MAX_LIMIT`].
pub fn parse_limit(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!("limit must be 1 to {MAX_LIMIT}, not {text:?}")),
    }
}

/// The ETag of the states `scope` sees on gateway `name`: a record in
/// scope that changes the state has a gseq above every earlier one, so
/// the newest visible gseq and the count say whether anything changed.
pub fn etag(name: &str, visible: impl Iterator<Item = u64>) -> String {
    let (count, newest) = visible.fold((0u64, 0u64), |(n, g), gseq| (n + 1, g.max(gseq)));
    format!("\"{name}-{newest}-{count}\"")
}

/// Whether an `If-None-Match` value names `tag` (or is `*`).
pub fn none_match(header: &str, tag: &str) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == tag
    })
}

/// The fields of PROTOCOL.md 3.7, read from `hub` now.
pub(crate) fn hello<'a>(app: &'a App, hub: &Hub) -> Hello<'a> {
    app.hello(hub.head(), hub.ring_bounds())
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("Authorization"));
    r
}

/// `GET /v1/checks`.
pub(crate) async fn checks(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<PollQuery>,
) -> Response {
    let reader = match authenticate_reader(&app, &headers, q.token.as_deref()).await {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    let scope = &reader.scope;
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    // Under the hub's lock (which ingest needs too): the tag, and for a
    // changed state a copy of what the reader sees; encoding comes after.
    let (tag, answer) = {
        let hub = app.hub();
        let visible = |agent: &str, check: &str| scope.allows(agent, check);
        let tag = etag(&app.cfg.identity.name, hub.state_gseqs(visible));
        if if_none_match.is_some_and(|h| none_match(h, &tag)) {
            (tag, None)
        } else {
            let fields = (hub.head(), hub.ring_bounds());
            (tag, Some((fields, hub.states_where(visible))))
        }
    };
    let mut r = match answer {
        Some(((head, ring), states)) => {
            let hello = app.hello(head, ring);
            json(
                StatusCode::OK,
                message::checks_answer(&hello, &states, scope),
            )
        }
        None => json(StatusCode::NOT_MODIFIED, Vec::new()),
    };
    if let Ok(v) = HeaderValue::from_str(&tag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// A held poll's place among the readers; given back when dropped.
struct ReaderSlot(Arc<App>);

impl ReaderSlot {
    fn take(app: &Arc<App>) -> Option<ReaderSlot> {
        let readers = &app.metrics.readers;
        let max = app.cfg.readers.max_readers as u64;
        readers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(ReaderSlot(app.clone()))
    }
}

impl Drop for ReaderSlot {
    fn drop(&mut self) {
        self.0.metrics.readers.fetch_sub(1, Ordering::AcqRel);
    }
}

type Owned = (u64, Arc<str>, Arc<str>, Record);

/// What the ring gave a poll.
enum Step {
    /// Answer now.
    Ready {
        items: Vec<Owned>,
        next_since: u64,
        reset: Option<PollReset>,
    },
    /// Nothing yet: wait on the live channel, everything up to `after` seen.
    Wait {
        live: broadcast::Receiver<Arc<SharedBatch>>,
        after: u64,
    },
}

/// Reads the ring after `since` for up to `limit` records in `scope`.
fn from_ring(hub: &Hub, scope: &Scope, since: u64, limit: usize) -> Step {
    let head = hub.head();
    if since > head {
        let reset = PollReset {
            reason: ResetReason::SinceAhead,
            missed: None,
        };
        return Step::Ready {
            items: Vec::new(),
            next_since: head,
            reset: Some(reset),
        };
    }
    if since < hub.ring_floor() {
        let reset = PollReset {
            reason: ResetReason::SinceOutOfRing,
            missed: Some((since + 1, head)),
        };
        return Step::Ready {
            items: Vec::new(),
            next_since: head,
            reset: Some(reset),
        };
    }
    let mut items = Vec::new();
    let mut after = since;
    while after < head && items.len() < limit {
        let Ok(chunk) = hub.replay(after, head, crate::hub::REPLAY_CHUNK_BATCHES) else {
            break;
        };
        let Some(last) = chunk.last().map(|b| b.last_gseq().min(head)) else {
            break;
        };
        for b in &chunk {
            let visible = b
                .with_gseq()
                .filter(|(g, check, _)| *g > after && *g <= head && scope.allows(&b.agent, check));
            for (g, check, record) in visible {
                if items.len() == limit {
                    // Full: the next poll starts after the last one taken.
                    let next_since = items.last().map_or(since, |i: &Owned| i.0);
                    return Step::Ready {
                        items,
                        next_since,
                        reset: None,
                    };
                }
                items.push((g, b.agent.clone(), check.clone(), *record));
            }
        }
        after = last;
    }
    if items.is_empty() {
        return Step::Wait {
            live: hub.live(),
            after: head,
        };
    }
    Step::Ready {
        items,
        next_since: head,
        reset: None,
    }
}

/// `GET /v1/poll`.
pub(crate) async fn poll(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<PollQuery>,
) -> Response {
    let reader = match authenticate_reader(&app, &headers, q.token.as_deref()).await {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    let since = match parse_gseq(q.since.as_deref(), "since") {
        Ok(since) => since,
        Err(reason) => return bad_request(&reason),
    };
    let wait = match q.wait.as_deref().map(parse_wait).transpose() {
        Ok(w) => w.unwrap_or(DEFAULT_WAIT),
        Err(reason) => return bad_request(&reason),
    };
    let limit = match q.limit.as_deref().map(parse_limit).transpose() {
        Ok(n) => n.unwrap_or(DEFAULT_LIMIT),
        Err(reason) => return bad_request(&reason),
    };
    let Some(_slot) = ReaderSlot::take(&app) else {
        return Refusal::Busy.into_response();
    };
    let scope = reader.scope.clone();
    let deadline = tokio::time::Instant::now() + wait;
    app.catch_up_to(since).await;
    let mut since = since.unwrap_or_else(|| app.hub().head());
    let stopping = app.stopping();
    tokio::pin!(stopping);
    let (items, next_since, reset) = loop {
        let step = from_ring(&app.hub(), &scope, since, limit);
        let (mut live, after) = match step {
            Step::Ready {
                items,
                next_since,
                reset,
            } => break (items, next_since, reset),
            Step::Wait { live, after } => (live, after),
        };
        since = after;
        let got = loop {
            let next = tokio::select! {
                next = live.recv() => next,
                () = tokio::time::sleep_until(deadline) => break None,
                () = &mut stopping => break None,
            };
            match next {
                Ok(shared) => {
                    let b = &shared.batch;
                    let items: Vec<Owned> = b
                        .with_gseq()
                        .filter(|(g, check, _)| *g > since && scope.allows(&b.agent, check))
                        .take(limit)
                        .map(|(g, check, record)| (g, b.agent.clone(), check.clone(), *record))
                        .collect();
                    since = since.max(b.last_gseq());
                    if let Some(last) = items.last().map(|i| i.0) {
                        let next_since = if items.len() == limit { last } else { since };
                        break Some((items, next_since));
                    }
                }
                // Fell behind the live channel: the ring has what followed.
                Err(RecvError::Lagged(_)) => break Some((Vec::new(), since)),
                Err(RecvError::Closed) => break None,
            }
        };
        match got {
            Some((items, next_since)) if !items.is_empty() => break (items, next_since, None),
            Some(_) => continue,
            None => break (Vec::new(), since, None),
        }
    };
    let view: Vec<message::Item<'_>> = items
        .iter()
        .map(|(g, agent, check, record)| (*g, &**agent, &**check, record))
        .collect();
    let body = {
        let hub = app.hub();
        message::poll_answer(&hello(&app, &hub), &view, next_since, reset)
    };
    json(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_durations_up_to_a_minute() {
        assert_eq!(parse_wait("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_wait("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_wait("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_wait("0"), Ok(Duration::ZERO));
        assert!(parse_wait("61s").is_err());
        assert!(parse_wait("2m").is_err());
        assert!(parse_wait("-1s").is_err());
        assert!(parse_wait("1h").is_err());
        assert_eq!(parse_wait("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_wait("s").is_err());
        assert!(parse_wait("99999999999999999999999s").is_err());
        assert_eq!(parse_limit("10"), Ok(10));
        assert!(parse_limit("0").is_err());
        assert!(parse_limit("10001").is_err());
    }

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        let tag = "\"gw-5-2\"";
        assert!(none_match(tag, tag));
        assert!(none_match("W/\"gw-5-2\"", tag));
        assert!(none_match("\"x\", \"gw-5-2\"", tag));
        assert!(none_match("*", tag));
        assert!(!none_match("\"gw-5-3\"", tag));
        assert!(!none_match("", tag));
    }
}
