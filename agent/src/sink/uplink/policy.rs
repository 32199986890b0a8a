//! What the sender does after each request, as a pure function of the
//! gateway's answer (PROTOCOL.md 2.3, 2.4): advance past acknowledged
//! frames, wait as told, back off, narrow a request to find a bad frame,
//! quarantine it, hold a misconfigured sink back, or distrust an
//! acknowledgement that is not this agent's to give. No sockets, no clocks:
//! the sender turns an [`Action`] into delays with `crate::retry`.

use std::time::Duration;

use super::ledger::FrameId;

/// The body of a `200` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct Ack {
    /// The agent's high-water mark after this request: session...
    pub(crate) session: u64,
    /// ...and sequence. Every frame up to `(session, acked)` may go.
    pub(crate) acked: u64,
    /// Frames of the request accepted now.
    #[serde(default)]
    pub(crate) accepted: u64,
    /// Frames of the request that were duplicates.
    #[serde(default)]
    pub(crate) duplicates: u64,
}

/// The body of an error answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct Refusal {
    /// The error code (`bad_frame`, `rate_limited`, ...).
    #[serde(default)]
    pub(crate) error: String,
    /// For people.
    #[serde(default)]
    pub(crate) reason: String,
    /// The byte of the request body where the problem was found.
    #[serde(default)]
    pub(crate) offset: Option<u64>,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `200` with an acknowledgement.
    Acked(Ack),
    /// Any other status, with the error body (if it parsed) and the
    /// `Retry-After` delay (if there was a valid one).
    Refused {
        /// The HTTP status.
        status: u16,
        /// The JSON error body, or a default when there was none.
        refusal: Refusal,
        /// `Retry-After`, parsed.
        retry_after: Option<Duration>,
    },
    /// No answer: connect, TLS, reset, timeout, a 200 whose body is not an
    /// acknowledgement. Whether the gateway accepted the frames is unknown.
    Transport(String),
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Drop the first `frames` frames of the request from the spool (they
    /// are acknowledged); the rest, if any, go again at once.
    Advance {
        /// Frames acknowledged.
        frames: usize,
    },
    /// The gateway is there but asks for a pause (429, 503): resend the
    /// same frames after `Retry-After`, or after a backoff delay when it
    /// gave none. Not a breaker failure; the connection stays. (With
    /// several URLs, a 503 first moves to the next one: `failover`.)
    Pause(Option<Duration>),
    /// The gateway could not be reached or failed (transport errors, other
    /// 5xx): drop the connection, back off with jitter, count toward the
    /// breaker, resend the same frames.
    Reconnect,
    /// Resend only the first `frames` frames (to isolate a bad frame, or a
    /// request that was too large).
    Narrow {
        /// Frames to send next time.
        frames: usize,
    },
    /// The first frame of the request is refused on its own: move it to
    /// the quarantine and go on.
    Quarantine,
    /// Retrying soon will not help (401, 403, a sender bug such as 415):
    /// log loudly, keep spooling, retry slowly (a restart or a fix on the
    /// gateway's side may cure it).
    Hold,
    /// A `200` whose mark is beyond every frame this agent has numbered: the
    /// gateway's mark for this agent came from frames it never sent (a
    /// clock that was ahead, a leaked token, an older gateway that took
    /// them). Deleting on its word would lose frames: delete nothing, log,
    /// count, and resend after a backoff (an operator's mark reset cures it).
    ForeignAck,
}

/// Decides what to do after sending `frames` (each frame's `(session,
/// seq)` and starting byte offset in the body, in order); `newest` is the
/// newest `(session, seq)` this agent has numbered (at least the last of
/// `frames`).
pub(crate) fn decide(outcome: &Outcome, frames: &[(FrameId, u64)], newest: FrameId) -> Action {
    match outcome {
        Outcome::Acked(ack) => {
            let mark = (ack.session, ack.acked);
            if mark > newest {
                return Action::ForeignAck;
            }
            let n = frames.iter().take_while(|(id, _)| *id <= mark).count();
            if n == 0 {
                // A 200 that acknowledges none of what was sent: the
                // gateway is confused (or restarted mid-request); retrying
                // at once could loop, so treat it like a failure.
                Action::Reconnect
            } else {
                Action::Advance { frames: n }
            }
        }
        Outcome::Transport(_) => Action::Reconnect,
        Outcome::Refused {
            status,
            refusal,
            retry_after,
        } => match (*status, refusal.error.as_str()) {
            (429 | 503, _) => Action::Pause(*retry_after),
            (400, "bad_frame") => {
                // The frame holding the offset; frames before it were not
                // accepted either (all or nothing), so send them alone first.
                let bad = refusal
                    .offset
                    .map(|at| frames.iter().take_while(|(_, start)| *start <= at).count());
                match bad {
                    Some(i) if i >= 2 => Action::Narrow { frames: i - 1 },
                    Some(_) => Action::Quarantine,
                    None if frames.len() <= 1 => Action::Quarantine,
                    None => Action::Narrow { frames: 1 },
                }
            }
            (413, _) if frames.len() > 1 => Action::Narrow {
                frames: frames.len() / 2,
            },
            (413, _) => Action::Quarantine,
            // The body did not arrive in time: the network, not the frames.
            (408 | 500..=599, _) => Action::Reconnect,
            _ => Action::Hold,
        },
    }
}

/// What an operator should look at when the gateway's refusal `outcome`
/// holds the sink ([`Action::Hold`]), one hint per refusal (the codes of
/// PROTOCOL.md 2.4).
pub(crate) fn hold_hint(outcome: &Outcome) -> &'static str {
    let Outcome::Refused {
        status, refusal, ..
    } = outcome
    else {
        return "the gateway's answer cannot be acted on";
    };
    match (*status, refusal.error.as_str()) {
        (400, "session_ahead") => {
            "this host's clock is ahead of the gateway's beyond its max_session_skew: fix the clock (NTP); held frames are then accepted"
        }
        (400, "too_many_checks") => {
            "this agent has as many distinct checks as the gateway's [agent_limits] max_checks allows: raise it on the gateway"
        }
        (400, "seq_implausible") => {
            "the frame's seq is too high for its session: a sender bug or a clock far behind; see PROTOCOL.md 2.2"
        }
        (400, "bad_name") => "an agent id or check name outside the name grammar: fix the config",
        (401, _) => "the gateway does not know this agent's token: check the token",
        (403, _) => "the token belongs to another agent id: check the agent id and the token",
        _ => "a sender bug or an incompatible gateway: check both versions",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn frames(n: u64) -> Vec<(FrameId, u64)> {
        (0..n).map(|i| ((7, 10 + i), i * 100)).collect()
    }

    fn refused(status: u16, error: &str, offset: Option<u64>) -> Outcome {
        Outcome::Refused {
            status,
            refusal: Refusal {
                error: error.to_owned(),
                reason: String::new(),
                offset,
            },
            retry_after: None,
        }
    }

    fn acked(session: u64, acked: u64) -> Outcome {
        Outcome::Acked(Ack {
            session,
            acked,
            accepted: 0,
            duplicates: 0,
        })
    }

    /// Frames 7/10..7/12 sent; the agent has numbered up to 8/4 (a
    /// restart: session 8's frames wait behind session 7's in the spool).
    const NEWEST: FrameId = (8, 4);

    fn decide(outcome: &Outcome, frames: &[(FrameId, u64)]) -> Action {
        super::decide(outcome, frames, NEWEST)
    }

    #[test]
    fn acknowledgements_advance_as_far_as_the_mark() {
        let f = frames(3);
        assert_eq!(decide(&acked(7, 12), &f), Action::Advance { frames: 3 });
        assert_eq!(decide(&acked(7, 99), &f), Action::Advance { frames: 3 });
        assert_eq!(decide(&acked(7, 11), &f), Action::Advance { frames: 2 });
        // A later session of this agent covers every frame of an earlier one.
        assert_eq!(decide(&acked(8, 0), &f), Action::Advance { frames: 3 });
        assert_eq!(decide(&acked(8, 4), &f), Action::Advance { frames: 3 });
        // Nothing covered: not a reason to spin.
        assert_eq!(decide(&acked(7, 9), &f), Action::Reconnect);
        assert_eq!(decide(&acked(6, 99), &f), Action::Reconnect);
    }

    #[test]
    fn an_ack_beyond_anything_numbered_here_deletes_nothing() {
        let f = frames(3);
        // A session this agent never had (ahead of its own), or a seq it
        // never reached: the mark is not this agent's frames.
        assert_eq!(decide(&acked(9, 0), &f), Action::ForeignAck);
        assert_eq!(decide(&acked(8, 5), &f), Action::ForeignAck);
        assert_eq!(decide(&acked(u64::MAX, u64::MAX), &f), Action::ForeignAck);
        assert_eq!(
            super::decide(&acked(7, 13), &f, (7, 12)),
            Action::ForeignAck
        );
        assert_eq!(
            super::decide(&acked(7, 12), &f, (7, 12)),
            Action::Advance { frames: 3 }
        );
    }

    #[test]
    fn rate_limits_and_overload_pause_for_retry_after() {
        let f = frames(2);
        for status in [429, 503] {
            let o = Outcome::Refused {
                status,
                refusal: Refusal::default(),
                retry_after: Some(Duration::from_secs(2)),
            };
            assert_eq!(decide(&o, &f), Action::Pause(Some(Duration::from_secs(2))));
            assert_eq!(decide(&refused(status, "", None), &f), Action::Pause(None));
        }
    }

    #[test]
    fn failures_reconnect() {
        let f = frames(2);
        assert_eq!(
            decide(&Outcome::Transport("reset".into()), &f),
            Action::Reconnect
        );
        for status in [500, 502, 504] {
            assert_eq!(decide(&refused(status, "", None), &f), Action::Reconnect);
        }
    }

    #[test]
    fn a_bad_frame_is_isolated_then_quarantined() {
        let f = frames(5);
        // Offset 250 is inside the third frame (starts at 200): send the
        // first two alone, then the third leads and is quarantined.
        assert_eq!(
            decide(&refused(400, "bad_frame", Some(250)), &f),
            Action::Narrow { frames: 2 }
        );
        assert_eq!(
            decide(&refused(400, "bad_frame", Some(205)), &frames(1)),
            Action::Quarantine
        );
        assert_eq!(
            decide(&refused(400, "bad_frame", Some(50)), &f),
            Action::Quarantine
        );
        // No offset: one frame at a time until it leads.
        assert_eq!(
            decide(&refused(400, "bad_frame", None), &f),
            Action::Narrow { frames: 1 }
        );
        assert_eq!(
            decide(&refused(400, "bad_frame", None), &frames(1)),
            Action::Quarantine
        );
    }

    #[test]
    fn too_large_halves_then_quarantines_a_single_frame() {
        assert_eq!(
            decide(&refused(413, "too_large", None), &frames(5)),
            Action::Narrow { frames: 2 }
        );
        assert_eq!(
            decide(&refused(413, "too_large", None), &frames(1)),
            Action::Quarantine
        );
    }

    #[test]
    fn each_hold_has_its_own_hint() {
        let hint = |status, error| hold_hint(&refused(status, error, None));
        assert!(hint(400, "session_ahead").contains("clock"));
        assert!(hint(400, "too_many_checks").contains("max_checks"));
        assert!(hint(401, "unauthorized").contains("token"));
        assert!(hint(403, "agent_mismatch").contains("agent id"));
        let codes = [
            (400, "session_ahead"),
            (400, "too_many_checks"),
            (400, "seq_implausible"),
            (400, "bad_name"),
            (401, "unauthorized"),
            (403, "agent_mismatch"),
            (415, "unsupported_media_type"),
        ];
        let hints: HashSet<&str> = codes.iter().map(|(s, e)| hint(*s, e)).collect();
        assert_eq!(hints.len(), codes.len(), "{hints:?}");
    }

    #[test]
    fn a_body_timeout_reconnects() {
        assert_eq!(
            decide(&refused(408, "body_timeout", None), &frames(2)),
            Action::Reconnect
        );
    }

    #[test]
    fn auth_and_sender_bugs_hold() {
        let f = frames(2);
        for (status, error) in [
            (401, "unauthorized"),
            (403, "agent_mismatch"),
            (400, "out_of_order"),
            (400, "empty_body"),
            (405, "method_not_allowed"),
            (415, "unsupported_media_type"),
            (404, ""),
        ] {
            assert_eq!(
                decide(&refused(status, error, None), &f),
                Action::Hold,
                "{status}"
            );
        }
    }
}
