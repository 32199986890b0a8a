//! `GET /v1/history` by gseq range (PROTOCOL.md 3.10): the records of the
//! writer's wire files, for a reader healing a range a `reset` named.
//!
//! The files' names are the index: each is named by the gseq of its first
//! record, so a range is read from the files that can hold it and no
//! others. Within a file, records have consecutive gseqs in file order
//! (as recovery gives them back); a gseq already served (a frame written
//! again after a failed fsync) is served once. [`page`] is the reading, off
//! the runtime; the handler authenticates and encodes.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use wire::{ReadItem, Record};

use crate::auth::{Scope, glob_match};
use crate::message::{self, Format};
use crate::poll::{DEFAULT_LIMIT, parse_gseq, parse_limit};
use crate::recover::data_files;
use crate::server::{authenticate_reader, bad_request};
use crate::state::App;

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
    fn allows(&self, agent: &str, check: &str, record: &Record) -> bool {
        self.check.as_deref().is_none_or(|g| glob_match(g, check))
            && self.agent.as_deref().is_none_or(|g| glob_match(g, agent))
            && self.t_from.is_none_or(|t| record.t_ms >= t)
            && self.t_to.is_none_or(|t| record.t_ms <= t)
    }
}

/// Reads the records with gseq in `from..=to` that `scope` sees and
/// `filter` selects, at most `limit`, from the wire files in `dir`.
pub fn page(
    dir: &Path,
    from: u64,
    to: u64,
    limit: usize,
    scope: &Scope,
    filter: &Filter,
) -> std::io::Result<Page> {
    let files = data_files(dir)?;
    let mut out = Page::default();
    // The newest gseq served so far: a record at or below it is a copy.
    let mut served: Option<u64> = None;
    for (i, file) in files.iter().enumerate() {
        if file.first_gseq > to {
            break;
        }
        // A later file starts at or below `from`: what this one holds
        // from there on, if anything, is a copy the later one holds too
        // (frames written again after a failed fsync).
        if files.get(i + 1).is_some_and(|next| next.first_gseq <= from) {
            continue;
        }
        let bytes = match store::read(&file.path) {
            Ok(b) => b,
            // Deleted by retention meanwhile: what it held is gone.
            Err(e) if e.io().kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into_io()),
        };
        let mut gseq = file.first_gseq;
        for item in store::body(&bytes) {
            let ReadItem::Frame { frame, .. } = item else {
                // Damage: the gseqs after it in this file are unknown.
                break;
            };
            let agent = &frame.header.agent;
            for batch in &frame.batches {
                for record in &batch.records {
                    let g = gseq;
                    gseq += 1;
                    if g < from || g > to || served.is_some_and(|s| g <= s) {
                        continue;
                    }
                    served = Some(g);
                    if !scope.allows(agent, &batch.check)
                        || !filter.allows(agent, &batch.check, record)
                    {
                        continue;
                    }
                    if out.records.len() == limit {
                        out.next = Some(g);
                        return Ok(out);
                    }
                    out.records
                        .push((g, agent.clone(), batch.check.clone(), *record));
                }
            }
        }
    }
    Ok(out)
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
    let dir = app.cfg.writer.data_dir.clone();
    let scope = reader.scope.clone();
    let read =
        tokio::task::spawn_blocking(move || page(&dir, from, to, limit, &scope, &filter)).await;
    let page = match read {
        Ok(Ok(page)) => page,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "history: reading the wire files");
            let body = serde_json::json!({"error": "unavailable", "reason": e.to_string(), "offset": null});
            return crate::server::json_response(StatusCode::SERVICE_UNAVAILABLE, body.to_string());
        }
        Err(_) => return bad_request("history read failed"),
    };
    let items: Vec<message::Item<'_>> = page
        .records
        .iter()
        .map(|(g, agent, check, record)| (*g, agent.as_str(), check.as_str(), record))
        .collect();
    let body = {
        let hub = app.hub();
        message::history_answer(format, &crate::poll::hello(&app, &hub), &items, page.next)
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
    use super::*;

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
