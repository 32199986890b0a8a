//! `GET /v1/history` by gseq range (PROTOCOL.md 3.10): the records of the
//! writer's wire files, for a reader healing a range a `reset` named.
//!
//! [`index`] says which frames of which files can hold what a query
//! asks for; [`page`] reads those (off the runtime) and applies the exact
//! filters; the handler authenticates and encodes. Within a file, records
//! have consecutive gseqs in file order (as recovery gives them back); a
//! gseq already served (a frame written again after a failed fsync) is
//! served once.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use wire::{Frame, Record};

use crate::auth::{Scope, glob_match};
use crate::message::{self, Format};
use crate::poll::{DEFAULT_LIMIT, parse_gseq, parse_limit};

pub mod index;

#[cfg(test)]
mod equivalence;

use crate::server::{authenticate_reader, bad_request};
use crate::state::App;
use index::{FrameEntry, Index, Selection};

/// One page of history.
#[derive(Debug, Default, PartialEq)]
pub struct Page {
    /// (gseq, agent, check, record), in gseq order.
    pub records: Vec<(u64, String, String, Record)>,
    /// Where the next page starts (`from_gseq`), when the range goes on
    /// past this page.
    pub next: Option<u64>,
}

/// What a history request selects besides its gseq range and scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// A glob over check names (`*`, `?`), if given.
    pub check: Option<String>,
    /// A glob over agent ids, if given.
    pub agent: Option<String>,
    /// The record's `t` (epoch ms), inclusive bounds.
    pub t_from: Option<u64>,
    /// See `t_from`.
    pub t_to: Option<u64>,
}

impl Filter {
    pub(crate) fn allows(&self, agent: &str, check: &str, record: &Record) -> bool {
        self.check.as_deref().is_none_or(|g| glob_match(g, check))
            && self.agent.as_deref().is_none_or(|g| glob_match(g, agent))
            && self.t_from.is_none_or(|t| record.t_ms >= t)
            && self.t_to.is_none_or(|t| record.t_ms <= t)
    }
}

/// Reads the records with gseq in `from..=to` that `scope` sees and
/// `filter` selects, at most `limit`, from the wire files in `dir`, after
/// bringing `index` up to date with them. The index is locked while it is
/// refreshed and asked, not while the frames it picked are read.
pub fn page(
    index: &Mutex<Index>,
    dir: &Path,
    from: u64,
    to: u64,
    limit: usize,
    scope: &Scope,
    filter: &Filter,
) -> std::io::Result<Page> {
    let lock = || index.lock().unwrap_or_else(|e| e.into_inner());
    lock().refresh(dir)?;
    let check_glob = filter.check.as_deref().map(index::glob);
    let agent_glob = filter.agent.as_deref().map(index::glob);
    let check = |c: &str| check_glob.as_ref().is_none_or(|g| g(c)) && scope.allows_check(c);
    let agent = |a: &str| agent_glob.as_ref().is_none_or(|g| g(a)) && scope.allows_agent(a);
    let narrows_checks = check_glob.is_some() || scope.limits_checks();
    let narrows_agents = agent_glob.is_some() || scope.limits_agents();
    let want = Selection {
        check: narrows_checks.then_some(&check as &dyn Fn(&str) -> bool),
        agent: narrows_agents.then_some(&agent as &dyn Fn(&str) -> bool),
        t_from: filter.t_from.unwrap_or(0),
        t_to: filter.t_to.unwrap_or(u64::MAX),
    };
    let mut out = Page::default();
    // The newest gseq served so far: a record at or below it is a copy.
    let mut served: Option<u64> = None;
    let mut next_from = from;
    // Candidates come a page's worth of records at a time (more than
    // match: a frame holds other checks' records too).
    let enough = limit.saturating_add(1).max(1024);
    loop {
        let batch = lock().candidates(from, next_from, to, &want, enough);
        // What this batch covers, whether or not every frame of it can
        // still be read (a file retention deletes meanwhile): the next
        // batch starts after it.
        let frames = batch.iter().flat_map(|f| f.frames.iter());
        let taken: usize = frames.clone().map(|e| e.records as usize).sum();
        let end = frames.map(|e| e.first_gseq + u64::from(e.records)).max();
        'files: for file in &batch {
            for (start, run) in runs(&file.frames) {
                let Some(bytes) = read_run(&file.path, start, run)? else {
                    break;
                };
                for entry in run {
                    let at = (entry.offset - start) as usize;
                    // Verified when it was indexed; bytes that changed since
                    // (lost pages, a disk going bad) end the file, as damage
                    // found by the index would.
                    let Some(slice) = bytes.get(at..at + entry.len as usize) else {
                        continue 'files;
                    };
                    let Ok((frame, _)) = Frame::decode(slice) else {
                        continue 'files;
                    };
                    let agent = &frame.header.agent;
                    let mut g = entry.first_gseq;
                    for batch in &frame.batches {
                        for record in &batch.records {
                            let gseq = g;
                            g += 1;
                            if gseq < from || gseq > to || served.is_some_and(|s| gseq <= s) {
                                continue;
                            }
                            served = Some(gseq);
                            if !scope.allows(agent, &batch.check)
                                || !filter.allows(agent, &batch.check, record)
                            {
                                continue;
                            }
                            if out.records.len() == limit {
                                out.next = Some(gseq);
                                return Ok(out);
                            }
                            out.records
                                .push((gseq, agent.clone(), batch.check.clone(), *record));
                        }
                    }
                }
            }
        }
        next_from = next_from.max(end.unwrap_or(next_from));
        if taken < enough || next_from > to {
            return Ok(out);
        }
    }
}

/// The most bytes one read of adjacent frames takes.
const RUN_BYTES: u64 = 1 << 20;
/// How long a history request waits for the writer to put what was
/// accepted before it into the files (PROTOCOL.md 3.10).
const READABLE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// `frames` as runs of frames that lie end to end in their file, each at
/// most [`RUN_BYTES`] (or one frame): read with one call each.
fn runs(frames: &[FrameEntry]) -> impl Iterator<Item = (u64, &[FrameEntry])> {
    let mut rest = frames;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let mut end = first.offset + u64::from(first.len);
        let mut n = 1;
        while let Some(f) = rest.get(n) {
            let next_end = f.offset + u64::from(f.len);
            if f.offset != end || next_end - first.offset > RUN_BYTES {
                break;
            }
            end = next_end;
            n += 1;
        }
        let (run, tail) = rest.split_at(n);
        rest = tail;
        Some((first.offset, run))
    })
}

/// The bytes of `run`, from `start`; `None` when the file is gone
/// (deleted by retention meanwhile: what it held is gone too).
fn read_run(path: &Path, start: u64, run: &[FrameEntry]) -> std::io::Result<Option<Vec<u8>>> {
    let Some(last) = run.last() else {
        return Ok(None);
    };
    index::read_at(path, start, last.offset + u64::from(last.len) - start)
}

/// Query parameters of `/v1/history`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct HistoryQuery {
    from_gseq: Option<String>,
    to_gseq: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    check: Option<String>,
    agent: Option<String>,
    format: Option<String>,
    from: Option<String>,
    to: Option<String>,
    token: Option<String>,
}

/// The media type of a MessagePack answer.
pub const MSGPACK: &str = "application/msgpack";

/// JSON unless `format=msgpack` or an `Accept` naming MessagePack asks
/// otherwise (`format` wins).
fn answer_format(format: Option<&str>, accept: Option<&str>) -> Result<Format, &'static str> {
    match format {
        Some("json") => Ok(Format::Json),
        Some("msgpack") => Ok(Format::MsgPack),
        Some(_) => Err("format must be json or msgpack"),
        None => {
            let msgpack = accept.is_some_and(|a| {
                a.split(',').any(|m| {
                    let m = m.split(';').next().unwrap_or("").trim();
                    m == MSGPACK || m == "application/vnd.msgpack" || m == "application/x-msgpack"
                })
            });
            Ok(if msgpack {
                Format::MsgPack
            } else {
                Format::Json
            })
        }
    }
}

/// `from=` / `to=`: epoch milliseconds or RFC 3339.
fn time_param(text: Option<&str>, name: &str) -> Result<Option<u64>, String> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) if t.bytes().all(|c| c.is_ascii_digit()) => t
            .parse()
            .map(Some)
            .map_err(|_| format!("{name}: {t:?} is too large for epoch milliseconds")),
        Some(t) => store::Utc::parse_rfc3339(t).map(Some).ok_or_else(|| {
            format!(
                "{name} must be epoch milliseconds or RFC 3339 such as \
                 2026-12-01T10:00:00Z, not {t:?}"
            )
        }),
    }
}

/// `GET /v1/history`.
pub(crate) async fn history(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let reader = match authenticate_reader(&app, &headers, q.token.as_deref()).await {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let format = match answer_format(q.format.as_deref(), accept) {
        Ok(f) => f,
        Err(reason) => return bad_request(reason),
    };
    let parsed = (|| {
        let cursor = parse_gseq(q.cursor.as_deref(), "cursor")?;
        let from = parse_gseq(q.from_gseq.as_deref(), "from_gseq")?;
        let to = parse_gseq(q.to_gseq.as_deref(), "to_gseq")?;
        let limit = q.limit.as_deref().map(parse_limit).transpose()?;
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        let filter = Filter {
            check: q.check.clone().filter(|g| !g.is_empty()),
            agent: q.agent.clone().filter(|g| !g.is_empty()),
            t_from: time_param(q.from.as_deref(), "from")?,
            t_to: time_param(q.to.as_deref(), "to")?,
        };
        let from = cursor.or(from).unwrap_or(0);
        Ok::<_, String>((from, to, limit, filter))
    })();
    let (from, to, limit, filter) = match parsed {
        Ok(p) => p,
        Err(reason) => return bad_request(&reason),
    };
    let head = app.hub().head();
    let to = to.unwrap_or(head).min(head);
    if let Some(log) = &app.log {
        let read =
            crate::jetstream::history::page(log, from, to, limit, &reader.scope, &filter).await;
        return match read {
            Ok(page) => answer(&app, format, &page),
            Err(reason) => {
                tracing::warn!(%reason, "history: reading the stream");
                let body =
                    serde_json::json!({"error": "unavailable", "reason": reason, "offset": null});
                crate::server::json_response(StatusCode::SERVICE_UNAVAILABLE, body.to_string())
            }
        };
    }
    // Every record up to `head` was offered to the writer before it was
    // accepted; wait until they are in the files, so that a range a
    // `reset` just named is read whole, not short by the writer's queue.
    let ticket = app.writer.offered();
    if !app.writer.readable(ticket, READABLE_WAIT).await {
        let body = serde_json::json!({
            "error": "unavailable",
            "reason": format!(
                "records accepted are not yet in the wire files after {}s (the writer is behind or failing); retry",
                READABLE_WAIT.as_secs()
            ),
            "offset": null,
        });
        return crate::server::json_response(StatusCode::SERVICE_UNAVAILABLE, body.to_string());
    }
    let scope = reader.scope.clone();
    let shared = app.clone();
    let read = tokio::task::spawn_blocking(move || {
        page(
            shared.history_index(),
            &shared.cfg.writer.data_dir,
            from,
            to,
            limit,
            &scope,
            &filter,
        )
    })
    .await;
    let page = match read {
        Ok(Ok(page)) => page,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "history: reading the wire files");
            let body = serde_json::json!({"error": "unavailable", "reason": e.to_string(), "offset": null});
            return crate::server::json_response(StatusCode::SERVICE_UNAVAILABLE, body.to_string());
        }
        Err(_) => return bad_request("history read failed"),
    };
    answer(&app, format, &page)
}

/// A page as the reader asked for it.
fn answer(app: &App, format: Format, page: &Page) -> Response {
    let items: Vec<message::Item<'_>> = page
        .records
        .iter()
        .map(|(g, agent, check, record)| (*g, agent.as_str(), check.as_str(), record))
        .collect();
    let body = {
        let hub = app.hub();
        message::history_answer(format, &crate::poll::hello(app, &hub), &items, page.next)
    };
    let content_type = match format {
        Format::Json => "application/json",
        Format::MsgPack => MSGPACK,
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(content_type),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::index::tests::{frame, write};
    use super::*;

    /// (gseq, check, t) of a page.
    fn seen(page: &Page) -> Vec<(u64, &str, u64)> {
        page.records
            .iter()
            .map(|(g, _, c, r)| (*g, c.as_str(), r.t_ms))
            .collect()
    }

    #[test]
    fn pages_serve_each_gseq_once_in_order_with_a_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let a = frame("eu-1", 1, &[("api", 1), ("web", 1)]);
        let b = frame("eu-1", 2, &[("api", 2), ("web", 2)]);
        let c = frame("eu-1", 3, &[("api", 3)]);
        // `b` was written again (a failed fsync) into the next file.
        write(dir.path(), 0, 0, &[&a, &b]);
        write(dir.path(), 2, 1, &[&b, &c]);
        let index = Mutex::new(Index::default());
        let everyone = Scope::new("r", vec![], vec![]);
        let api = Filter {
            check: Some("api".into()),
            ..Filter::default()
        };
        let p = page(&index, dir.path(), 0, u64::MAX, 10, &everyone, &api).unwrap();
        assert_eq!(seen(&p), [(0, "api", 1), (2, "api", 2), (4, "api", 3)]);
        assert_eq!(p.next, None);
        let all = Filter::default();
        let first = page(&index, dir.path(), 0, u64::MAX, 2, &everyone, &all).unwrap();
        assert_eq!(seen(&first), [(0, "api", 1), (1, "web", 1)]);
        assert_eq!(first.next, Some(2));
        let rest = page(&index, dir.path(), 2, u64::MAX, 10, &everyone, &all).unwrap();
        assert_eq!(seen(&rest), [(2, "api", 2), (3, "web", 2), (4, "api", 3)]);
        // The scope filters like a glob would.
        let web_only = Scope::new("r", vec!["web".into()], vec![]);
        let p = page(&index, dir.path(), 0, u64::MAX, 10, &web_only, &all).unwrap();
        assert_eq!(seen(&p), [(1, "web", 1), (3, "web", 2)]);
        let window = Filter {
            t_from: Some(2),
            t_to: Some(2),
            ..Filter::default()
        };
        let p = page(&index, dir.path(), 0, 3, 10, &everyone, &window).unwrap();
        assert_eq!(seen(&p), [(2, "api", 2), (3, "web", 2)]);
    }

    #[test]
    fn msgpack_by_parameter_or_accept() {
        assert_eq!(answer_format(None, None), Ok(Format::Json));
        assert_eq!(answer_format(Some("msgpack"), None), Ok(Format::MsgPack));
        let accept = Some("text/html, application/msgpack;q=0.9");
        assert_eq!(answer_format(None, accept), Ok(Format::MsgPack));
        assert_eq!(answer_format(Some("json"), accept), Ok(Format::Json));
        assert_eq!(
            answer_format(None, Some("application/json")),
            Ok(Format::Json)
        );
        assert!(answer_format(Some("xml"), None).is_err());
    }
}
