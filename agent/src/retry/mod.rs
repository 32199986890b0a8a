//! Retrying well, shared by `sonde wait` and the gateway sink: exponential
//! backoff with full jitter ([`Backoff`]), the `Retry-After` header
//! (`retry_after`) and a circuit breaker over consecutive failures
//! ([`Breaker`]).
//!
//! All of it is pure arithmetic over durations and instants the caller
//! passes in; nothing here sleeps, reads a clock or touches a socket. The
//! instants are tokio's, so callers can be tested under a paused clock.

pub(crate) mod backoff;
pub(crate) mod breaker;
pub(crate) mod retry_after;

pub use backoff::{Backoff, Jitter, SplitMix64};
pub use breaker::{Breaker, BreakerState};
pub(crate) use retry_after::{clamp_to_deadline, parse_retry_after};
