//! Operator endpoints (PROTOCOL.md 2.5): `POST /v1/admin/agents/{id}/reset`
//! clears an agent's high-water mark, for an agent silenced by a mark it
//! can never pass (a clock that was ahead, a leaked token).
//!
//! A reset outlives restarts: it is appended to the reset log in the data
//! directory (fsynced before the answer), and recovery restores no mark
//! from a frame persisted before the agent's last reset ([`before_reset`]).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::auth::{Principal, bearer};
use crate::ingest::{Reject, epoch_ms, shown_name};
use crate::server::{json_response, reject_response};
use crate::state::App;

/// The reset log's file name in the data directory: one JSON object a line.
pub const RESET_LOG: &str = "mark-resets.jsonl";

/// One reset, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetEntry {
    /// The agent whose mark was cleared.
    pub agent: String,
    /// The gseq the next accepted record got: frames persisted before the
    /// reset have records below it (or, without records, sit at it).
    pub before_gseq: u64,
    /// When, epoch ms.
    pub at_ms: u64,
    /// The `[[admin]]` name that asked.
    pub by: String,
    /// The mark cleared, `(session, seq)`; none if the agent had none.
    pub cleared: Option<(u64, u64)>,
}

/// Each agent's last reset (`before_gseq`), from the log in `dir`, and one
/// message per line that could not be read (a torn last line after a
/// crash: that reset was never answered). A missing log is no reset.
pub fn read_resets(dir: &Path) -> std::io::Result<(HashMap<String, u64>, Vec<String>)> {
    let path = dir.join(RESET_LOG);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(e),
    };
    let mut resets: HashMap<String, u64> = HashMap::new();
    let mut problems = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str::<ResetEntry>(line) {
            Ok(e) => {
                let before = resets.entry(e.agent).or_insert(e.before_gseq);
                *before = (*before).max(e.before_gseq);
            }
            Err(e) => problems.push(format!("{}:{}: {e}", path.display(), i + 1)),
        }
    }
    Ok((resets, problems))
}

/// Appends `entry` to the log in `dir` and fsyncs it (and the directory,
/// when the log is new).
fn append_reset(dir: &Path, entry: &ResetEntry) -> std::io::Result<()> {
    let path = dir.join(RESET_LOG);
    let new = !path.exists();
    let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    file.write_all(line.as_bytes())?;
    file.sync_data()?;
    if new {
        store::sync_dir(dir).map_err(store::StoreError::into_io)?;
    }
    Ok(())
}

/// Whether a persisted frame of an agent whose last reset has
/// `before_gseq` was accepted before that reset, so that recovery must not
/// restore its mark. `gseq` is its first record's gseq (for a frame
/// without records, the next gseq then), None when damage earlier in its
/// file hides it; `file_first_gseq` names its file. An unknown position
/// in a file begun before the reset counts as before: at worst a resend of
/// that frame is accepted again, never a poisoned mark kept.
pub fn before_reset(
    gseq: Option<u64>,
    records: usize,
    file_first_gseq: u64,
    before_gseq: u64,
) -> bool {
    match gseq {
        Some(g) if records > 0 => g < before_gseq,
        Some(g) => g <= before_gseq,
        None => file_first_gseq <= before_gseq,
    }
}

fn error(status: StatusCode, code: &str, reason: String) -> Response {
    let body = serde_json::json!({"error": code, "reason": reason, "offset": null});
    json_response(status, body.to_string())
}

/// `POST /v1/admin/agents/{id}/reset`: 404 when no `[[admin]]` is
/// configured (the endpoint is off) or the agent is not configured, 401
/// without an admin token, 500 if the log cannot be written (the mark is
/// then left as it was); else 200 with what was cleared.
pub(crate) async fn reset(
    State(app): State<Arc<App>>,
    UrlPath(agent): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    if app.cfg.admins.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint".into(),
        );
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| bearer(v.as_bytes()));
    let admin = match presented.and_then(|t| app.tokens.authenticate(t)) {
        Some(Principal::Admin(name)) => name.clone(),
        _ => return reject_response(&Reject::Unauthorized),
    };
    if !app.cfg.agents.iter().any(|a| a.id == agent) {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_agent",
            format!("no [[agent]] {} is configured", shown_name(&agent)),
        );
    }
    let task = {
        let (app, agent, admin) = (app.clone(), agent.clone(), admin.clone());
        tokio::task::spawn_blocking(move || {
            // Under the hub's lock: no frame is accepted between reading
            // the head and clearing the mark, so `before_gseq` splits the
            // agent's frames exactly.
            let mut hub = app.hub();
            let entry = ResetEntry {
                agent: agent.clone(),
                before_gseq: hub.head() + 1,
                at_ms: epoch_ms(SystemTime::now()),
                by: admin.to_string(),
                cleared: hub.mark(&agent),
            };
            append_reset(&app.cfg.writer.data_dir, &entry)?;
            hub.reset_mark(&agent);
            Ok::<_, std::io::Error>(entry)
        })
    };
    match task.await {
        Ok(Ok(entry)) => {
            tracing::warn!(
                admin = %admin,
                agent = %agent,
                cleared = ?entry.cleared,
                before_gseq = entry.before_gseq,
                "an operator reset the agent's high-water mark: its next frames are accepted whatever their (session, seq)"
            );
            let cleared = entry
                .cleared
                .map(|(session, acked)| serde_json::json!({"session": session, "acked": acked}));
            let body = serde_json::json!({
                "agent": entry.agent,
                "cleared": cleared,
                "before_gseq": entry.before_gseq,
            });
            json_response(StatusCode::OK, body.to_string())
        }
        Ok(Err(e)) => {
            let log = app.cfg.writer.data_dir.join(RESET_LOG);
            tracing::error!(admin = %admin, agent = %agent, "mark reset not done: writing {}: {e}", log.display());
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reset_failed",
                format!("writing {}: {e}", log.display()),
            )
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reset_failed",
            e.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_before_a_reset_are_told_by_their_gseq() {
        // Reset when the head was 99: the next record got 100.
        assert!(before_reset(Some(99), 1, 0, 100));
        assert!(!before_reset(Some(100), 3, 0, 100));
        // A frame without records sits at the next gseq of its time.
        assert!(before_reset(Some(100), 0, 0, 100));
        assert!(!before_reset(Some(101), 0, 0, 100));
        // Hidden by damage: by its file's name.
        assert!(before_reset(None, 1, 50, 100));
        assert!(!before_reset(None, 1, 101, 100));
    }

    #[test]
    fn the_log_keeps_each_agents_last_reset_and_survives_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_resets(dir.path()).unwrap().0.is_empty());
        let entry = |agent: &str, before_gseq| ResetEntry {
            agent: agent.into(),
            before_gseq,
            at_ms: 1,
            by: "ops".into(),
            cleared: Some((u64::MAX, u64::MAX)),
        };
        append_reset(dir.path(), &entry("a", 100)).unwrap();
        append_reset(dir.path(), &entry("b", 50)).unwrap();
        append_reset(dir.path(), &entry("a", 300)).unwrap();
        let log = dir.path().join(RESET_LOG);
        let mut text = std::fs::read_to_string(&log).unwrap();
        text.push_str("{\"agent\":\"c\",\"befo");
        std::fs::write(&log, text).unwrap();
        let (resets, problems) = read_resets(dir.path()).unwrap();
        assert_eq!(resets, HashMap::from([("a".into(), 300), ("b".into(), 50)]));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains(":4:"), "{problems:?}");
    }
}
