//! Retrying well, shared by `sonde wait` and the gateway sink: exponential
//! backoff with full jitter ([`backoff`]), the `Retry-After` header
//! ([`retry_after`]) and a circuit breaker over consecutive failures
//! ([`breaker`]).
//!
//! All of it is pure arithmetic over durations and instants the caller
//! passes in; nothing here sleeps, reads a clock or touches a socket. The
//! instants are tokio's, so callers can be tested under a paused clock.

pub mod backoff;
pub mod breaker;
pub mod retry_after;

pub use backoff::{Backoff, Jitter, SplitMix64};
pub use breaker::{Breaker, BreakerState};
pub use retry_after::{RetryAfterError, clamp_to_deadline, parse_retry_after};
