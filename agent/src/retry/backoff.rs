//! Exponential backoff with full jitter (the AWS "full jitter" scheme):
//! `delay(n) = random_between(floor, min(cap, base · 2^n))`.
//!
//! The randomness is injected ([`Jitter`]), so tests run with a seeded
//! generator and get the same delays every time. A floor of zero is pure
//! full jitter; a floor keeps a poller from ever retrying sooner than it.

use std::time::Duration;

/// A source of uniformly distributed 64-bit numbers.
pub trait Jitter {
    /// The next number.
    fn next_u64(&mut self) -> u64;
}

/// SplitMix64: a tiny, fast, well-distributed generator; plenty for
/// spreading retries, useless for secrets.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }
}

impl Jitter for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Exponential backoff with full jitter between a floor and a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first delay (attempt 0); it doubles per attempt.
    pub base: Duration,
    /// No delay is longer than this.
    pub cap: Duration,
    /// No delay is shorter than this (clamped to the ceiling); zero for
    /// pure full jitter.
    pub floor: Duration,
}

impl Backoff {
    /// Full jitter from zero: `random_between(0, min(cap, base · 2^n))`.
    #[cfg(test)]
    pub(crate) fn full_jitter(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            floor: Duration::ZERO,
        }
    }

    /// The upper bound of the delay after failed attempt `attempt` (0-based):
    /// `min(cap, base · 2^attempt)`, without overflow.
    pub(crate) fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay after failed attempt `attempt`: uniform between the floor
    /// and the ceiling (both inclusive, nanosecond resolution).
    pub(crate) fn delay(&self, attempt: u32, jitter: &mut impl Jitter) -> Duration {
        let high = self.ceiling(attempt);
        let low = self.floor.min(high);
        let span = u64::try_from((high - low).as_nanos()).unwrap_or(u64::MAX);
        let offset = match span.checked_add(1) {
            Some(n) => jitter.next_u64() % n,
            None => jitter.next_u64(),
        };
        low + Duration::from_nanos(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn ceiling_doubles_then_stops_at_the_cap() {
        let b = Backoff::full_jitter(100 * MS, 1000 * MS);
        let ceilings: Vec<_> = (0..6).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.ceiling(u32::MAX), 1000 * MS);
    }

    #[test]
    fn seeded_delays_are_reproducible_and_jittered() {
        let b = Backoff::full_jitter(100 * MS, 10_000 * MS);
        let run = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..8).map(|n| b.delay(n, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        // Jittered: at a fixed attempt, many draws are not all the same.
        let mut rng = SplitMix64::new(1);
        let draws: std::collections::BTreeSet<_> = (0..50).map(|_| b.delay(3, &mut rng)).collect();
        assert!(draws.len() > 40, "{draws:?}");
    }

    #[test]
    fn delays_grow_in_expectation() {
        let b = Backoff::full_jitter(100 * MS, 60_000 * MS);
        let mut rng = SplitMix64::new(42);
        let mean = |n: u32, rng: &mut SplitMix64| {
            let total: Duration = (0..2000).map(|_| b.delay(n, rng)).sum();
            total / 2000
        };
        let means: Vec<_> = (0..6).map(|n| mean(n, &mut rng)).collect();
        for pair in means.windows(2) {
            // The mean doubles with the ceiling; 1.6x leaves room for noise.
            assert!(pair[1] > pair[0].mul_f64(1.6), "{means:?}");
        }
        // Full jitter: the mean is half the ceiling.
        let ratio = means[3].as_secs_f64() / b.ceiling(3).as_secs_f64();
        assert!((0.45..0.55).contains(&ratio), "{ratio}");
    }

    #[test]
    fn floor_is_clamped_to_the_ceiling() {
        let b = Backoff {
            base: 100 * MS,
            cap: 150 * MS,
            floor: 500 * MS,
        };
        let mut rng = SplitMix64::new(3);
        assert_eq!(b.delay(0, &mut rng), 100 * MS);
        assert_eq!(b.delay(5, &mut rng), 150 * MS);
    }

    proptest! {
        #[test]
        fn never_outside_floor_and_cap(
            base_ms in 0u32..10_000,
            cap_ms in 0u32..100_000,
            floor_ms in 0u32..10_000,
            attempt in 0u32..100,
            seed: u64,
        ) {
            let b = Backoff { base: base_ms * MS, cap: cap_ms * MS, floor: floor_ms * MS };
            let d = b.delay(attempt, &mut SplitMix64::new(seed));
            prop_assert!(d <= b.cap);
            prop_assert!(d <= b.ceiling(attempt));
            prop_assert!(d >= b.floor.min(b.ceiling(attempt)));
        }
    }
}
