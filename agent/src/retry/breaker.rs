//! A circuit breaker over consecutive failures: closed → open after
//! `threshold` failures in a row → half-open once the cool-down has passed
//! (one trial goes through) → closed on a success, open again on a failure.
//!
//! A pure state machine: the caller passes in the instants. It does not
//! decide what counts as a failure; callers feed it the ones that say the
//! peer is unreachable (refused, reset, timed out), not every bad answer.

use std::time::Duration;

use tokio::time::Instant;

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Attempts go through; `failures` in a row so far.
    Closed {
        /// Consecutive failures.
        failures: u32,
    },
    /// Attempts are held back until `until`.
    Open {
        /// When the cool-down ends.
        until: Instant,
    },
    /// The cool-down has passed; the next attempt is the trial.
    HalfOpen,
}

/// The circuit breaker. `threshold` 0 is treated as 1.
#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    cool_down: Duration,
    state: BreakerState,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures
    /// and stays open for `cool_down`.
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cool_down,
            state: BreakerState::Closed { failures: 0 },
        }
    }

    /// The state as of `now` (an open breaker whose cool-down has passed
    /// reads as half-open).
    pub(crate) fn state(&self, now: Instant) -> BreakerState {
        match self.state {
            BreakerState::Open { until } if now >= until => BreakerState::HalfOpen,
            state => state,
        }
    }

    /// The earliest instant the next attempt may start: `now` unless open.
    pub(crate) fn ready_at(&self, now: Instant) -> Instant {
        match self.state(now) {
            BreakerState::Open { until } => until,
            _ => now,
        }
    }

    /// An attempt succeeded: closed, count reset.
    pub(crate) fn on_success(&mut self) {
        self.state = BreakerState::Closed { failures: 0 };
    }

    /// An attempt failed at `now`: counts toward opening, or re-opens a
    /// half-open breaker for another cool-down.
    pub(crate) fn on_failure(&mut self, now: Instant) {
        self.state = match self.state(now) {
            BreakerState::Closed { failures } if failures + 1 < self.threshold => {
                BreakerState::Closed {
                    failures: failures + 1,
                }
            }
            BreakerState::Open { until } => BreakerState::Open { until },
            BreakerState::Closed { .. } | BreakerState::HalfOpen => BreakerState::Open {
                until: now + self.cool_down,
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn opens_after_threshold_then_half_opens_then_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, 10 * S);
        b.on_failure(t0);
        b.on_failure(t0);
        assert_eq!(b.state(t0), BreakerState::Closed { failures: 2 });
        assert_eq!(b.ready_at(t0), t0);
        b.on_failure(t0 + S);
        assert_eq!(b.state(t0 + S), BreakerState::Open { until: t0 + 11 * S });
        assert_eq!(b.ready_at(t0 + 2 * S), t0 + 11 * S);
        assert_eq!(b.state(t0 + 11 * S), BreakerState::HalfOpen);
        assert_eq!(b.ready_at(t0 + 12 * S), t0 + 12 * S);
        b.on_success();
        assert_eq!(b.state(t0 + 12 * S), BreakerState::Closed { failures: 0 });
    }

    #[test]
    fn a_failed_trial_reopens_for_a_full_cool_down() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, 10 * S);
        b.on_failure(t0);
        b.on_failure(t0 + 20 * S);
        assert_eq!(
            b.state(t0 + 20 * S),
            BreakerState::Open { until: t0 + 30 * S }
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(2, S);
        b.on_failure(t0);
        b.on_success();
        b.on_failure(t0);
        assert_eq!(b.state(t0), BreakerState::Closed { failures: 1 });
    }

    #[test]
    fn failures_while_open_do_not_extend_it() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, 10 * S);
        b.on_failure(t0);
        b.on_failure(t0 + 5 * S);
        assert_eq!(b.ready_at(t0 + 5 * S), t0 + 10 * S);
    }
}
