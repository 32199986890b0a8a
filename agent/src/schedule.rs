//! Schedule arithmetic: when each check is due, and whether a run that
//! comes late (or finds its previous probe still going) is skipped.
//!
//! A check runs every `interval`, at a stable offset inside the interval
//! derived from its name, on the wall-clock grid (so a restart keeps the
//! phase, and thousands of checks spread evenly instead of firing
//! together). Pure functions over milliseconds: no clocks read here.

use std::time::Duration;

/// The stable offset of check `name` inside its interval: FNV-1a of the
/// name, modulo the interval. Stable across runs, hosts and versions.
pub(crate) fn offset(name: &str, interval: Duration) -> Duration {
    let interval_ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Duration::from_millis(hash % interval_ms)
}

/// The first due time (Unix ms) strictly after `after_ms`, on the grid
/// `k * interval + offset`.
pub(crate) fn next_due_ms(after_ms: u64, interval: Duration, offset: Duration) -> u64 {
    let interval_ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let offset_ms = u64::try_from(offset.as_millis()).unwrap_or(0) % interval_ms;
    // The grid point at or before `after_ms`, then one step on.
    let base = after_ms.saturating_sub(offset_ms) / interval_ms * interval_ms + offset_ms;
    let mut due = base;
    while due <= after_ms {
        due = due.saturating_add(interval_ms);
    }
    due
}

/// How late a run may start before it is skipped: half the interval, at
/// most five seconds. Past that, the next run is closer than this one, and
/// starting it would only pile work up.
pub(crate) fn grace(interval: Duration) -> Duration {
    (interval / 2).min(Duration::from_secs(5))
}

/// What to do with a run that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Start the probe now; it is this late.
    Start {
        /// Actual start minus due time.
        late: Duration,
    },
    /// The previous probe of this check is still going.
    SkipBusy,
    /// It would start later than the grace allows.
    SkipTooLate {
        /// How late it was.
        late: Duration,
    },
}

/// Decides a run due at `due_ms`, at `now_ms`, for a check of `interval`
/// whose previous probe is (or is not) still in flight.
pub(crate) fn decide(
    due_ms: u64,
    now_ms: u64,
    interval: Duration,
    previous_running: bool,
) -> Decision {
    let late = Duration::from_millis(now_ms.saturating_sub(due_ms));
    if previous_running {
        Decision::SkipBusy
    } else if late > grace(interval) {
        Decision::SkipTooLate { late }
    } else {
        Decision::Start { late }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn offset_is_stable_and_inside_the_interval() {
        let a = offset("api-health", 10 * S);
        assert_eq!(a, offset("api-health", 10 * S));
        assert!(a < 10 * S);
        assert_ne!(offset("api-health", 10 * S), offset("api-health2", 10 * S));
    }

    #[test]
    fn thousands_of_checks_spread_over_the_interval() {
        // 10 000 checks at 10 s: no 100 ms slot of the interval holds more
        // than three times its fair share.
        let mut slots = [0u32; 100];
        for i in 0..10_000 {
            let o = offset(&format!("check-{i}"), 10 * S);
            slots[(o.as_millis() / 100) as usize] += 1;
        }
        let max = slots.iter().copied().max().unwrap_or(0);
        assert!(max < 300, "busiest 100 ms slot has {max} checks");
    }

    #[test]
    fn next_due_is_on_the_grid_and_strictly_after() {
        assert_eq!(next_due_ms(0, 10 * S, Duration::from_millis(3_000)), 3_000);
        assert_eq!(
            next_due_ms(3_000, 10 * S, Duration::from_millis(3_000)),
            13_000
        );
        assert_eq!(
            next_due_ms(12_999, 10 * S, Duration::from_millis(3_000)),
            13_000
        );
        assert_eq!(
            next_due_ms(1_000, 10 * S, Duration::from_millis(3_000)),
            3_000
        );
    }

    #[test]
    fn late_or_busy_runs_are_skipped() {
        let i = 10 * S;
        assert_eq!(
            decide(1000, 1002, i, false),
            Decision::Start {
                late: Duration::from_millis(2)
            }
        );
        assert_eq!(decide(1000, 1002, i, true), Decision::SkipBusy);
        assert_eq!(
            decide(1000, 7000, i, false),
            Decision::SkipTooLate {
                late: Duration::from_secs(6)
            }
        );
        assert_eq!(grace(2 * S), S);
        assert_eq!(grace(60 * S), 5 * S);
    }

    proptest! {
        #[test]
        fn next_due_properties(after in 0u64..u64::MAX / 4, interval_ms in 1u64..86_400_000, off in 0u64..86_400_000) {
            let interval = Duration::from_millis(interval_ms);
            let offset = Duration::from_millis(off % interval_ms);
            let due = next_due_ms(after, interval, offset);
            prop_assert!(due > after);
            prop_assert!(due - after <= interval_ms);
            prop_assert_eq!(due % interval_ms, off % interval_ms);
        }
    }
}
