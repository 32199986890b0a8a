//! Ingest's pure part: checking a request body of concatenated frames (all
//! or nothing) — envelope, names, order, and whether a frame's `(session,
//! seq)` is plausible against the gateway's clock — the rejections and their
//! HTTP answers, and the per-agent request rate limit. No sockets, no clock
//! of its own: callers pass `now`.

use std::collections::HashMap;
use std::ops::Range;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wire::{Frame, FrameError, FrameReader, ReadItem};

/// A frame of a request that passed every check, with where it sits in
/// the body (so its exact bytes can be persisted).
#[derive(Debug, Clone)]
pub struct ValidFrame {
    /// The decoded frame.
    pub frame: Frame,
    /// Its bytes within the request body.
    pub range: Range<usize>,
}

/// Why a request was refused; each maps to one status and error code of
/// PROTOCOL.md 2.4.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// A frame failed the envelope, CRC, version or body checks.
    #[error("{reason}")]
    BadFrame {
        /// Byte of the body where the problem is.
        offset: u64,
        /// The wire decoder's message.
        reason: String,
    },
    /// No bytes at all.
    #[error("the request body is empty")]
    EmptyBody,
    /// Frames not in increasing (session, seq) order.
    #[error("frame (session {session}, seq {seq}) does not follow the previous frame")]
    OutOfOrder {
        /// Where the frame starts.
        offset: u64,
        /// Its session.
        session: u64,
        /// Its seq.
        seq: u64,
    },
    /// An agent id or check name outside the configuration's name grammar
    /// ([`config::NAME_VALID`]).
    #[error(
        "frame at offset {offset}: {what} {shown} is not {}",
        config::NAME_VALID
    )]
    BadName {
        /// Where the frame starts.
        offset: u64,
        /// `agent id`, or `check name of batch N`.
        what: String,
        /// The name, escaped and shortened for the log and the answer.
        shown: String,
    },
    /// A session that starts further ahead of the gateway's clock than
    /// `[agent_limits] max_session_skew` allows.
    #[error(
        "frame at offset {offset}: session {session} starts {ahead_ms} ms ahead of the gateway's clock (at most {max_skew_ms} ms allowed)"
    )]
    SessionAhead {
        /// Where the frame starts.
        offset: u64,
        /// Its session (epoch ms).
        session: u64,
        /// How far ahead, ms.
        ahead_ms: u64,
        /// The bound, ms.
        max_skew_ms: u64,
    },
    /// A seq no agent could have reached since its session began
    /// ([`MAX_FRAMES_PER_MS`]).
    #[error(
        "frame at offset {offset}: seq {seq} is implausible for session {session} (at most {max} frames can have been numbered since it began)"
    )]
    SeqImplausible {
        /// Where the frame starts.
        offset: u64,
        /// Its session.
        session: u64,
        /// Its seq.
        seq: u64,
        /// The largest plausible seq now.
        max: u64,
    },
    /// A new check name for an agent that already has
    /// `[agent_limits] max_checks` distinct checks.
    #[error(
        "frame at offset {offset}: check {shown} would be this agent's check number {} (at most {max} distinct checks per agent)", .max + 1
    )]
    TooManyChecks {
        /// Where the frame starts.
        offset: u64,
        /// The new check name (valid by grammar, so printable).
        shown: String,
        /// The limit.
        max: usize,
    },
    /// A frame from another agent than the token's.
    #[error("a frame's agent id is not the one of the token")]
    AgentMismatch {
        /// Where the frame starts.
        offset: u64,
    },
    /// No token or an unknown one.
    #[error("missing or unknown bearer token")]
    Unauthorized,
    /// Not POST.
    #[error("use POST")]
    MethodNotAllowed,
    /// Over the body limit.
    #[error("the request body exceeds {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// More frames in one request than the writer's queue can ever hold
    /// (`[writer] queue_frames`): it could only ever be answered 503.
    #[error("the request holds {count} frames; at most {max} per request")]
    TooManyFrames {
        /// Frames in the request.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The body did not arrive whole within `[server] header_read_timeout`
    /// of the request's start (a trickled body would hold its slot).
    #[error("the request body did not arrive within {secs} s")]
    BodyTimeout {
        /// The deadline.
        secs: u64,
    },
    /// Not `application/vnd.sonde.frames`.
    #[error("content type must be application/vnd.sonde.frames")]
    UnsupportedMediaType,
    /// Over the agent's request rate.
    #[error("more than {per_second} requests per second")]
    RateLimited {
        /// The limit.
        per_second: u32,
    },
    /// The writer cannot take more, or the gateway is stopping.
    #[error("the gateway is overloaded")]
    Overloaded,
    /// JetStream mode: a frame holds more records than one message of
    /// the stream may ([`crate::jetstream::RECORDS_PER_MESSAGE`]).
    #[error(
        "frame at offset {offset}: {records} records; with [jetstream] a frame holds at most {max}"
    )]
    TooManyRecords {
        /// Where the frame starts.
        offset: u64,
        /// Its records.
        records: usize,
        /// The limit.
        max: u64,
    },
    /// JetStream mode: the stream did not store the frames (NATS
    /// unreachable, no stream leader, a publish not acknowledged in time).
    #[error("the region's JetStream stream did not take the frames: {reason}")]
    LogUnavailable {
        /// What NATS said.
        reason: String,
    },
}

impl Reject {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Reject::BadFrame { .. }
            | Reject::EmptyBody
            | Reject::OutOfOrder { .. }
            | Reject::BadName { .. }
            | Reject::SessionAhead { .. }
            | Reject::SeqImplausible { .. }
            | Reject::TooManyChecks { .. }
            | Reject::TooManyRecords { .. } => 400,
            Reject::Unauthorized => 401,
            Reject::AgentMismatch { .. } => 403,
            Reject::MethodNotAllowed => 405,
            Reject::BodyTimeout { .. } => 408,
            Reject::TooLarge { .. } | Reject::TooManyFrames { .. } => 413,
            Reject::UnsupportedMediaType => 415,
            Reject::RateLimited { .. } => 429,
            Reject::Overloaded | Reject::LogUnavailable { .. } => 503,
        }
    }

    /// The `error` code of the JSON body (also the metrics label).
    pub fn code(&self) -> &'static str {
        match self {
            Reject::BadFrame { .. } => "bad_frame",
            Reject::EmptyBody => "empty_body",
            Reject::OutOfOrder { .. } => "out_of_order",
            Reject::BadName { .. } => "bad_name",
            Reject::SessionAhead { .. } => "session_ahead",
            Reject::SeqImplausible { .. } => "seq_implausible",
            Reject::TooManyChecks { .. } => "too_many_checks",
            Reject::Unauthorized => "unauthorized",
            Reject::AgentMismatch { .. } => "agent_mismatch",
            Reject::MethodNotAllowed => "method_not_allowed",
            Reject::BodyTimeout { .. } => "body_timeout",
            Reject::TooLarge { .. } | Reject::TooManyFrames { .. } => "too_large",
            Reject::UnsupportedMediaType => "unsupported_media_type",
            Reject::RateLimited { .. } => "rate_limited",
            Reject::Overloaded => "overloaded",
            Reject::TooManyRecords { .. } => "too_many_records",
            Reject::LogUnavailable { .. } => "log_unavailable",
        }
    }

    /// The byte offset in the body the error points at, if any.
    pub fn offset(&self) -> Option<u64> {
        match *self {
            Reject::BadFrame { offset, .. }
            | Reject::OutOfOrder { offset, .. }
            | Reject::BadName { offset, .. }
            | Reject::SessionAhead { offset, .. }
            | Reject::SeqImplausible { offset, .. }
            | Reject::TooManyChecks { offset, .. }
            | Reject::TooManyRecords { offset, .. }
            | Reject::AgentMismatch { offset } => Some(offset),
            _ => None,
        }
    }

    /// Seconds for `Retry-After`, for the answers that carry one.
    pub fn retry_after_secs(&self) -> Option<u64> {
        matches!(
            self,
            Reject::RateLimited { .. } | Reject::Overloaded | Reject::LogUnavailable { .. }
        )
        .then_some(1)
    }

    /// The JSON body of PROTOCOL.md 2.4.
    pub fn body(&self) -> String {
        serde_json::json!({
            "error": self.code(),
            "reason": self.to_string(),
            "offset": self.offset(),
        })
        .to_string()
    }
}

/// Where inside a frame the wire decoder found the problem, if it says.
fn inner_offset(error: &FrameError) -> u64 {
    match error {
        FrameError::Body(e) => e.offset() as u64,
        _ => 0,
    }
}

/// The most frames an agent can have numbered per millisecond of its
/// session's age: a million per second, far beyond any real sender, so the
/// rule only refuses seqs no agent can reach (PROTOCOL.md 2.2).
pub const MAX_FRAMES_PER_MS: u64 = 1000;

/// `now` in epoch ms: what frames' sessions are judged against.
pub fn epoch_ms(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A name as an answer or a log line may show it: escaped (no newline,
/// no bidirectional control survives) and cut to 64 characters.
pub fn shown_name(name: &str) -> String {
    let cut: String = name.chars().take(config::NAME_MAX_LEN).collect();
    let mut shown = format!("{cut:?}");
    if cut.len() < name.len() {
        shown.push_str(&format!("... ({} bytes)", name.len()));
    }
    shown
}

/// Refuses a frame whose name (its agent id or a batch's check name)
/// breaks the configuration's grammar.
fn check_names(frame: &wire::Frame, offset: u64) -> Result<(), Reject> {
    let bad = |what: String, name: &str| Reject::BadName {
        offset,
        what,
        shown: shown_name(name),
    };
    if !config::is_name(&frame.header.agent) {
        return Err(bad("agent id".into(), &frame.header.agent));
    }
    for (i, b) in frame.batches.iter().enumerate() {
        if !config::is_name(&b.check) {
            return Err(bad(format!("check name of batch {i}"), &b.check));
        }
    }
    Ok(())
}

/// Whether a frame numbered `(session, seq)` can be real at `now_ms` (the
/// gateway's clock, epoch ms): its session starts no more than `max_skew`
/// ahead, and its seq is at most [`MAX_FRAMES_PER_MS`] per millisecond
/// since the session began (skew included). `offset` is where the frame
/// starts, for the answer. Also what recovery applies to marks on disk.
pub fn check_sequence(
    session: u64,
    seq: u64,
    now_ms: u64,
    max_skew: Duration,
    offset: u64,
) -> Result<(), Reject> {
    let max_skew_ms = u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX);
    let latest = now_ms.saturating_add(max_skew_ms);
    if session > latest {
        return Err(Reject::SessionAhead {
            offset,
            session,
            ahead_ms: session - now_ms,
            max_skew_ms,
        });
    }
    let max = (latest - session).saturating_mul(MAX_FRAMES_PER_MS);
    if seq > max {
        return Err(Reject::SeqImplausible {
            offset,
            session,
            seq,
            max,
        });
    }
    Ok(())
}

/// [`check_sequence`] for every frame of a validated request.
pub fn check_sequences(
    frames: &[ValidFrame],
    now_ms: u64,
    max_skew: Duration,
) -> Result<(), Reject> {
    frames.iter().try_for_each(|f| {
        let h = &f.frame.header;
        check_sequence(h.session, h.seq, now_ms, max_skew, f.range.start as u64)
    })
}

/// Checks every frame of `body`: envelope, CRC, version, body, names
/// (the configuration's grammar), agent id (must be `agent`) and order.
/// Returns them all or the first problem.
pub fn validate(body: &[u8], agent: &str) -> Result<Vec<ValidFrame>, Reject> {
    if body.is_empty() {
        return Err(Reject::EmptyBody);
    }
    let mut frames: Vec<ValidFrame> = Vec::new();
    for item in FrameReader::new(body, 0).at_eof() {
        match item {
            ReadItem::Skipped { offset, error, .. } => {
                return Err(Reject::BadFrame {
                    offset: offset + inner_offset(&error),
                    reason: error.to_string(),
                });
            }
            ReadItem::Frame { offset, len, frame } => {
                check_names(&frame, offset)?;
                if frame.header.agent != agent {
                    return Err(Reject::AgentMismatch { offset });
                }
                let key = (frame.header.session, frame.header.seq);
                if let Some(prev) = frames.last() {
                    if key <= (prev.frame.header.session, prev.frame.header.seq) {
                        return Err(Reject::OutOfOrder {
                            offset,
                            session: key.0,
                            seq: key.1,
                        });
                    }
                }
                let start = offset as usize;
                frames.push(ValidFrame {
                    frame,
                    range: start..start + len,
                });
            }
        }
    }
    Ok(frames)
}

/// Requests per agent per one-second window. A fixed window is enough for
/// a limit whose main use is protection and tests of clients' 429 paths.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: HashMap<String, (Instant, u32)>,
}

impl RateLimiter {
    /// Counts a request of `agent` at `now`; false when it is over `per_second`
    /// (0 = unlimited). A refused request does not count.
    pub fn allow(&mut self, agent: &str, per_second: u32, now: Instant) -> bool {
        if per_second == 0 {
            return true;
        }
        let window = self.windows.entry(agent.to_owned()).or_insert((now, 0));
        if now.duration_since(window.0) >= Duration::from_secs(1) {
            *window = (now, 0);
        }
        if window.1 >= per_second {
            return false;
        }
        window.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::{FrameBuilder, FrameHeader, Record};

    pub(crate) fn frame(agent: &str, session: u64, seq: u64, n: usize) -> Vec<u8> {
        let mut b = FrameBuilder::new(FrameHeader {
            agent: agent.into(),
            session,
            seq,
        });
        for i in 0..n {
            b.push(
                "api",
                Record::up(1_767_225_600_000 + i as u64, 5)
                    .with_sc(200)
                    .with_cn(1)
                    .with_ft(2),
            );
        }
        b.finish().encode().unwrap()
    }

    #[test]
    fn accepts_concatenated_frames_with_ranges() {
        let mut body = frame("a", 1, 0, 2);
        let first = body.len();
        body.extend(frame("a", 1, 1, 3));
        let frames = validate(&body, "a").unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].range, 0..first);
        assert_eq!(frames[1].range, first..body.len());
        assert_eq!(frames[1].frame.record_count(), 3);
    }

    #[test]
    fn any_bad_frame_refuses_the_whole_body_with_its_offset() {
        let mut body = frame("a", 1, 0, 2);
        let second = body.len();
        let mut bad = frame("a", 1, 1, 2);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        body.extend(bad);
        let err = validate(&body, "a").unwrap_err();
        assert_eq!(err.code(), "bad_frame");
        assert_eq!(err.offset(), Some(second as u64));
        assert!(err.to_string().contains("checksum"), "{err}");

        let err = validate(b"garbage", "a").unwrap_err();
        assert_eq!((err.status(), err.offset()), (400, Some(0)));
        let torn = frame("a", 1, 0, 2);
        let err = validate(&torn[..torn.len() - 3], "a").unwrap_err();
        assert_eq!(err.code(), "bad_frame");
        assert_eq!(validate(b"", "a").unwrap_err(), Reject::EmptyBody);
    }

    #[test]
    fn other_agent_and_disorder_are_refused() {
        let err = validate(&frame("b", 1, 0, 1), "a").unwrap_err();
        assert_eq!((err.status(), err.code()), (403, "agent_mismatch"));
        let mut body = frame("a", 1, 5, 1);
        body.extend(frame("a", 1, 5, 1));
        assert_eq!(validate(&body, "a").unwrap_err().code(), "out_of_order");
        let mut body = frame("a", 2, 0, 1);
        body.extend(frame("a", 1, 9, 1));
        assert_eq!(validate(&body, "a").unwrap_err().code(), "out_of_order");
    }

    fn named(agent: &str, check: &str) -> Vec<u8> {
        let mut b = FrameBuilder::new(FrameHeader {
            agent: agent.into(),
            session: 1,
            seq: 0,
        });
        b.push("ok", Record::up(1_767_225_600_000, 5));
        b.push(check, Record::up(1_767_225_600_000, 5));
        b.finish().encode().unwrap()
    }

    #[test]
    fn names_outside_the_config_grammar_refuse_the_request_at_their_frame() {
        assert!(validate(&named("a", "api_v2.health-1"), "a").is_ok());
        let long = "x".repeat(100_000);
        for bad in [
            long.as_str(),
            "a\nb",
            "evil\u{202e}gnp.exe",
            "=HYPERLINK(\"http://x\")",
            "",
            &"y".repeat(65),
        ] {
            let mut body = frame("a", 1, 0, 1);
            let second = body.len() as u64;
            body.extend(named("a", bad));
            let err = validate(&body, "a").unwrap_err();
            assert_eq!((err.status(), err.code()), (400, "bad_name"), "{bad:?}");
            assert_eq!(err.offset(), Some(second));
            let text = err.to_string();
            assert!(text.contains("check name of batch 1"), "{text}");
            assert!(text.len() < 300, "{text}");
            assert!(!text.contains('\n') && !text.contains('\u{202e}'), "{text}");
        }
        let err = validate(&named("a\u{202e}", "ok"), "a\u{202e}").unwrap_err();
        assert_eq!(err.code(), "bad_name");
        assert!(err.to_string().contains("agent id"), "{err}");
    }

    #[test]
    fn sessions_ahead_of_the_clock_and_unreachable_seqs_are_refused() {
        let now = 1_767_225_600_000;
        let skew = Duration::from_secs(300);
        let check = |session, seq| check_sequence(session, seq, now, skew, 9).map_err(|e| e.code());
        assert_eq!(check(now, 0), Ok(()));
        assert_eq!(check(now + 300_000, 0), Ok(()), "at the bound");
        assert_eq!(check(now + 300_001, 0), Err("session_ahead"));
        assert_eq!(check(now + 86_400_000, 0), Err("session_ahead"));
        assert_eq!(check(u64::MAX, u64::MAX), Err("session_ahead"));
        // A session an hour old may have numbered up to 1000 frames a ms.
        let hour_ago = now - 3_600_000;
        assert_eq!(check(hour_ago, 3_900_000_000), Ok(()));
        assert_eq!(check(hour_ago, 3_900_000_001), Err("seq_implausible"));
        assert_eq!(check(0, u64::MAX), Err("seq_implausible"));
        assert_eq!(check(1, 1 << 40), Ok(()), "tests' small sessions pass");
        let err = check_sequence(u64::MAX, 0, now, skew, 9).unwrap_err();
        assert_eq!((err.status(), err.offset()), (400, Some(9)));
        assert!(
            err.to_string().contains("ahead of the gateway's clock"),
            "{err}"
        );

        let mut body = frame("a", now - 1000, 0, 1);
        let second = body.len() as u64;
        body.extend(frame("a", now + 86_400_000, 0, 1));
        let frames = validate(&body, "a").unwrap();
        let err = check_sequences(&frames, now, skew).unwrap_err();
        assert_eq!((err.code(), err.offset()), ("session_ahead", Some(second)));
    }

    #[test]
    fn rejection_bodies_are_json_with_code_reason_offset() {
        let v: serde_json::Value = serde_json::from_str(
            &Reject::BadFrame {
                offset: 7,
                reason: "x".into(),
            }
            .body(),
        )
        .unwrap();
        assert_eq!(v["error"], "bad_frame");
        assert_eq!(v["offset"], 7);
        let v: serde_json::Value = serde_json::from_str(&Reject::Unauthorized.body()).unwrap();
        assert!(v["offset"].is_null());
        assert_eq!(Reject::Overloaded.retry_after_secs(), Some(1));
    }

    #[test]
    fn rate_limit_per_agent_per_second() {
        let mut r = RateLimiter::default();
        let t0 = Instant::now();
        assert!(r.allow("a", 2, t0));
        assert!(r.allow("a", 2, t0));
        assert!(!r.allow("a", 2, t0 + Duration::from_millis(500)));
        assert!(r.allow("b", 2, t0));
        assert!(r.allow("a", 2, t0 + Duration::from_secs(1)));
        assert!(r.allow("a", 0, t0));
    }
}
