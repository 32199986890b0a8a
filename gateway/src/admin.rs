//! Operator endpoints (PROTOCOL.md 2.6): `POST /v1/admin/agents/{id}/reset`
//! clears an agent's high-water mark, for an agent silenced by a mark it
//! can never pass (a clock that was ahead, a leaked token).
//!
//! A reset outlives restarts: it is appended to the reset log in the data
//! directory (fsynced before the answer, cut back if that fails), and
//! recovery restores no mark from a frame persisted before the agent's
//! last reset ([`before_reset`]). The log's I/O runs outside the hub lock.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::auth::{Principal, bearer};
use crate::hub::Hub;
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
/// message per line that could not be read, naming the file and line (a
/// torn last line after a crash: that reset was never answered; a line
/// that is not UTF-8 or not an entry: damage). A missing log is no reset;
/// a damaged line never stops recovery.
pub fn read_resets(dir: &Path) -> std::io::Result<(HashMap<String, u64>, Vec<String>)> {
    let path = dir.join(RESET_LOG);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(e),
    };
    let mut resets: HashMap<String, u64> = HashMap::new();
    let mut problems = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry = std::str::from_utf8(line)
            .map_err(|e| e.to_string())
            .and_then(|l| serde_json::from_str::<ResetEntry>(l).map_err(|e| e.to_string()));
        match entry {
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
/// when the log is new). A log whose last line is torn (a crash during an
/// earlier append) gets a newline first, so the new entry is a line of its
/// own. If the write or the fsync fails, the file is cut back to its
/// previous length, so that a reset answered 500 cannot come back.
fn append_reset(dir: &Path, entry: &ResetEntry) -> std::io::Result<()> {
    let path = dir.join(RESET_LOG);
    let new = !path.exists();
    let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&path)?;
    let len = file.metadata()?.len();
    if len > 0 {
        let mut last = [0u8];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            line.insert(0, '\n');
        }
    }
    let written = file
        .write_all(line.as_bytes())
        .and_then(|()| file.sync_data());
    if let Err(e) = written {
        // Best effort: if even this fails, the line is torn or unsynced
        // and recovery reads it as damage or as the reset it is.
        let _ = file.set_len(len).and_then(|()| file.sync_data());
        return Err(e);
    }
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

/// Serialises resets, so that two resets of one agent cannot interleave
/// their steps; the hub lock is never held across the log's I/O.
static RESETS: Mutex<()> = Mutex::new(());

/// Resets `agent`'s mark in three steps: under the hub lock, read the
/// next gseq and the mark; without it, `persist` the entry (the log's
/// write and fsync); under the hub lock again, clear the mark unless a
/// frame raised it meanwhile ([`Hub::finish_reset`]). A frame accepted
/// between the steps got a gseq at or after `before_gseq`, so recovery
/// counts it after the reset too: runtime and recovery agree.
fn reset_mark<'h>(
    hub: impl Fn() -> MutexGuard<'h, Hub>,
    agent: &str,
    admin: &str,
    persist: impl FnOnce(&ResetEntry) -> std::io::Result<()>,
) -> std::io::Result<ResetEntry> {
    let _serial = RESETS.lock().unwrap_or_else(|e| e.into_inner());
    let entry = {
        let hub = hub();
        ResetEntry {
            agent: agent.to_owned(),
            before_gseq: hub.head() + 1,
            at_ms: epoch_ms(SystemTime::now()),
            by: admin.to_owned(),
            cleared: hub.mark(agent),
        }
    };
    persist(&entry)?;
    hub().finish_reset(agent, entry.cleared);
    Ok(entry)
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
    if app.log.is_some() {
        return error(
            StatusCode::CONFLICT,
            "not_supported",
            "with [jetstream] an agent's mark is read from the stream; a reset is not supported in this mode".into(),
        );
    }
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
            reset_mark(
                || app.hub(),
                &agent,
                admin.as_ref(),
                |e| append_reset(&app.cfg.writer.data_dir, e),
            )
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

    fn entry(agent: &str, before_gseq: u64) -> ResetEntry {
        ResetEntry {
            agent: agent.into(),
            before_gseq,
            at_ms: 1,
            by: "ops".into(),
            cleared: None,
        }
    }

    #[test]
    fn a_reset_after_a_torn_line_is_a_line_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        append_reset(dir.path(), &entry("a", 100)).unwrap();
        let log = dir.path().join(RESET_LOG);
        let mut text = std::fs::read_to_string(&log).unwrap();
        text.push_str("{\"agent\":\"c\",\"befo");
        std::fs::write(&log, text).unwrap();
        // The crash is over; the next reset is answered 200.
        append_reset(dir.path(), &entry("b", 200)).unwrap();
        let (resets, problems) = read_resets(dir.path()).unwrap();
        assert_eq!(
            resets,
            HashMap::from([("a".into(), 100), ("b".into(), 200)])
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains(":2:"), "{problems:?}");
    }

    #[test]
    fn a_line_that_is_not_utf8_is_damage_named_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        append_reset(dir.path(), &entry("a", 100)).unwrap();
        let log = dir.path().join(RESET_LOG);
        let mut bytes = std::fs::read(&log).unwrap();
        bytes.extend_from_slice(b"{\"agent\":\"\xff\"}\n");
        std::fs::write(&log, bytes).unwrap();
        append_reset(dir.path(), &entry("b", 200)).unwrap();
        let (resets, problems) = read_resets(dir.path()).unwrap();
        assert_eq!(
            resets,
            HashMap::from([("a".into(), 100), ("b".into(), 200)])
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains(&format!("{}:2:", log.display())),
            "{problems:?}"
        );
    }

    #[test]
    fn a_reset_logs_without_the_hub_lock_and_clears_after() {
        let hub = Mutex::new(Hub::new(
            crate::config::RingLimits {
                max_age: std::time::Duration::from_secs(60),
                max_records: 10,
            },
            4,
            1000,
        ));
        hub.lock().unwrap().restore_mark("a", (u64::MAX, 9));
        let lock = || hub.lock().unwrap();
        let entry = reset_mark(lock, "a", "ops", |e| {
            assert!(
                hub.try_lock().is_ok(),
                "the hub is locked during the log's I/O"
            );
            assert_eq!(e.cleared, Some((u64::MAX, 9)));
            assert_eq!(e.before_gseq, 1000);
            Ok(())
        })
        .unwrap();
        assert_eq!(entry.by, "ops");
        assert_eq!(hub.lock().unwrap().mark("a"), None);
        // A failed log leaves the mark as it was.
        hub.lock().unwrap().restore_mark("a", (3, 4));
        let failed = reset_mark(lock, "a", "ops", |_| Err(std::io::Error::other("disk")));
        assert!(failed.is_err());
        assert_eq!(hub.lock().unwrap().mark("a"), Some((3, 4)));
    }
}
