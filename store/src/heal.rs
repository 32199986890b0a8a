//! Hold-and-retry after a failed write, as a plain state machine: a writer
//! that cannot write keeps what it holds, waits, and tries again, each wait
//! doubling from a first delay up to a cap, until a write succeeds. It says
//! when an outage starts and ends so the caller logs once per change. No
//! clock and no I/O: the caller sleeps the delays it is given.

use std::time::Duration;

/// The retry state of one writer (a sink, the gateway's writer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heal {
    first: Duration,
    cap: Duration,
    /// Failures since the last success; 0 while healthy.
    failures: u64,
}

/// What a failed write means for the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    /// This failure started an outage (the writer was healthy): say why.
    pub started: bool,
    /// How long to wait before the next try.
    pub retry_in: Duration,
    /// Failures in this outage, this one included.
    pub failures: u64,
}

/// An outage that a successful write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Healed {
    /// The failed tries it took.
    pub failures: u64,
}

impl Heal {
    /// A healthy writer whose waits double from `first` up to `cap`
    /// (`first == cap`: a fixed delay).
    pub const fn new(first: Duration, cap: Duration) -> Heal {
        Heal {
            first,
            cap,
            failures: 0,
        }
    }

    /// A write failed.
    pub fn failed(&mut self) -> Failed {
        self.failures = self.failures.saturating_add(1);
        let doublings = u32::try_from(self.failures - 1).unwrap_or(u32::MAX).min(31);
        let retry_in = self
            .first
            .checked_mul(1 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap);
        Failed {
            started: self.failures == 1,
            retry_in,
            failures: self.failures,
        }
    }

    /// A write succeeded: the outage it ended, if the writer was failing.
    pub fn succeeded(&mut self) -> Option<Healed> {
        let failures = std::mem::take(&mut self.failures);
        (failures > 0).then_some(Healed { failures })
    }

    /// Whether the last write failed.
    pub fn is_failing(&self) -> bool {
        self.failures > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn waits_double_up_to_the_cap_and_the_outage_is_reported_once() {
        let mut heal = Heal::new(S, 30 * S);
        assert!(!heal.is_failing());
        let waits: Vec<(bool, Duration)> = (0..8)
            .map(|_| {
                let f = heal.failed();
                (f.started, f.retry_in)
            })
            .collect();
        assert_eq!(
            waits,
            [
                (true, S),
                (false, 2 * S),
                (false, 4 * S),
                (false, 8 * S),
                (false, 16 * S),
                (false, 30 * S),
                (false, 30 * S),
                (false, 30 * S),
            ]
        );
        assert!(heal.is_failing());
        assert_eq!(heal.succeeded(), Some(Healed { failures: 8 }));
        assert!(!heal.is_failing());
        // Healthy again: the next success reports nothing, the next
        // failure starts a new outage from the first delay.
        assert_eq!(heal.succeeded(), None);
        let again = heal.failed();
        assert_eq!(
            (again.started, again.retry_in, again.failures),
            (true, S, 1)
        );
    }

    #[test]
    fn a_fixed_delay_and_a_long_outage_do_not_overflow() {
        let mut heal = Heal::new(S, S);
        for _ in 0..100 {
            assert_eq!(heal.failed().retry_in, S);
        }
        let mut heal = Heal::new(Duration::MAX, Duration::MAX);
        assert_eq!(heal.failed().retry_in, Duration::MAX);
        assert_eq!(heal.failed().retry_in, Duration::MAX);
    }
}
