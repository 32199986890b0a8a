//! Which of a gateway sink's URLs (replicas of one region) the sender
//! talks to, and when an answer moves it to the next one, round-robin. A
//! pure state machine over [`Outcome`]s: no sockets, no clocks. It does
//! not wait; the sender keeps `crate::retry`'s backoff and breaker for
//! when every URL has failed in a row.

use super::policy::Outcome;

/// Whether `outcome` says that this gateway is unavailable, so another
/// replica should have the frames: no answer at all (connect refused or
/// timed out, TLS, the connection dropped mid-request, no answer in time,
/// a 200 that is not an acknowledgement) or 502, 503, 504. An answer about
/// the frames or the agent (400, 401, 403, 413, 429...) is not: another
/// replica of the same region would give it too.
pub(crate) fn unavailable(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Transport(_) => true,
        Outcome::Refused { status, .. } => matches!(status, 502..=504),
        Outcome::Acked(_) => false,
    }
}

/// What the sender does with the URLs after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Stay on the current URL and act on the answer as with one URL: the
    /// gateway answered.
    Stay,
    /// Move to URL `to` and resend at once: a URL of this round has not
    /// failed yet.
    Move {
        /// The URL that failed.
        from: usize,
        /// The next one.
        to: usize,
    },
    /// Every URL has failed in a row, this one last: act on the answer as
    /// with one URL (backoff, breaker, `Retry-After`), then go on with
    /// `to`, the next in turn (`from` itself when there is one URL).
    Exhausted {
        /// The URL that failed.
        from: usize,
        /// The one to try after the wait.
        to: usize,
    },
}

/// The URL in use and how many have failed in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failover {
    urls: usize,
    current: usize,
    /// URLs that failed in a row since the gateway last answered or a
    /// round ended.
    failed: usize,
}

impl Failover {
    /// Starts on the first of `urls` URLs (at least one is assumed).
    pub(crate) fn new(urls: usize) -> Failover {
        Failover {
            urls: urls.max(1),
            current: 0,
            failed: 0,
        }
    }

    /// The URL in use, an index into the configured list.
    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// Takes the answer of the current URL. It moves on only when the
    /// gateway is [`unavailable`], and stays on a URL that answers until
    /// it fails.
    pub(crate) fn on_outcome(&mut self, outcome: &Outcome) -> Step {
        if !unavailable(outcome) {
            self.failed = 0;
            return Step::Stay;
        }
        let from = self.current;
        self.current = (from + 1) % self.urls;
        self.failed += 1;
        if self.failed < self.urls {
            Step::Move {
                from,
                to: self.current,
            }
        } else {
            self.failed = 0;
            Step::Exhausted {
                from,
                to: self.current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sink::uplink::policy::{Ack, Refusal};

    fn down() -> Outcome {
        Outcome::Transport("connecting to 127.0.0.1:7700: Connection refused".into())
    }

    fn refused(status: u16, error: &str) -> Outcome {
        Outcome::Refused {
            status,
            refusal: Refusal {
                error: error.into(),
                ..Refusal::default()
            },
            retry_after: Some(Duration::from_secs(1)),
        }
    }

    fn acked() -> Outcome {
        Outcome::Acked(Ack {
            session: 1,
            acked: 1,
            accepted: 1,
            duplicates: 0,
        })
    }

    #[test]
    fn only_an_unavailable_gateway_is_a_reason_to_move() {
        assert!(unavailable(&down()));
        assert!(unavailable(&Outcome::Transport(
            "no answer within 15s".into()
        )));
        for status in [502, 503, 504] {
            assert!(unavailable(&refused(status, "overloaded")), "{status}");
        }
        for (status, error) in [
            (400, "bad_frame"),
            (400, "session_ahead"),
            (401, "unauthorized"),
            (403, "agent_mismatch"),
            (408, "body_timeout"),
            (413, "too_large"),
            (415, "unsupported_media_type"),
            (429, "rate_limited"),
            (500, ""),
        ] {
            assert!(!unavailable(&refused(status, error)), "{status}");
        }
        assert!(!unavailable(&acked()));
    }

    #[test]
    fn a_round_moves_at_once_and_the_last_failure_of_it_backs_off() {
        let mut f = Failover::new(3);
        assert_eq!(f.current(), 0);
        assert_eq!(f.on_outcome(&down()), Step::Move { from: 0, to: 1 });
        assert_eq!(
            f.on_outcome(&refused(503, "overloaded")),
            Step::Move { from: 1, to: 2 }
        );
        assert_eq!(f.on_outcome(&down()), Step::Exhausted { from: 2, to: 0 });
        // The next round starts where the last ended, round-robin.
        assert_eq!(f.current(), 0);
        assert_eq!(f.on_outcome(&down()), Step::Move { from: 0, to: 1 });
        assert_eq!(f.on_outcome(&down()), Step::Move { from: 1, to: 2 });
        assert_eq!(f.on_outcome(&down()), Step::Exhausted { from: 2, to: 0 });
    }

    #[test]
    fn a_working_url_is_kept_until_it_fails() {
        let mut f = Failover::new(2);
        assert_eq!(f.on_outcome(&down()), Step::Move { from: 0, to: 1 });
        for _ in 0..10 {
            assert_eq!(f.on_outcome(&acked()), Step::Stay);
            assert_eq!(f.current(), 1);
        }
        // Refusals about the frames or the agent keep it too.
        for error in ["bad_frame", "session_ahead"] {
            assert_eq!(f.on_outcome(&refused(400, error)), Step::Stay);
        }
        assert_eq!(f.on_outcome(&refused(429, "rate_limited")), Step::Stay);
        assert_eq!(f.current(), 1);
        // An answer ends the run of failures: a new round starts.
        assert_eq!(f.on_outcome(&down()), Step::Move { from: 1, to: 0 });
        assert_eq!(f.on_outcome(&acked()), Step::Stay);
        assert_eq!(f.on_outcome(&down()), Step::Move { from: 0, to: 1 });
        assert_eq!(f.on_outcome(&down()), Step::Exhausted { from: 1, to: 0 });
    }

    #[test]
    fn with_one_url_every_failure_backs_off_in_place() {
        let mut f = Failover::new(1);
        for _ in 0..3 {
            assert_eq!(f.on_outcome(&down()), Step::Exhausted { from: 0, to: 0 });
        }
        assert_eq!(f.on_outcome(&acked()), Step::Stay);
        assert_eq!(f.current(), 0);
        // Nothing configured is treated as one URL, never a division by zero.
        assert_eq!(
            Failover::new(0).on_outcome(&down()),
            Step::Exhausted { from: 0, to: 0 }
        );
    }
}
