//! One bounded accept loop for every HTTP listener sonde runs: the
//! gateway, the agent's `--metrics-listen` and `sonde wait --listen`.
//!
//! - [`Limits`]: the bounds (connection cap, header-read and idle
//!   timeouts), the cap clamped to a share of the process's fd limit
//!   ([`FdBudget`]: a quarter beside outgoing probes and polls, all but a
//!   reserve for the gateway).
//! - [`Slots`]: the pure bookkeeping of open connections; at the cap the
//!   longest-idle connection (no request in flight) is shed to admit a new
//!   one, and a connection with a request in flight is never shed.
//! - [`serve`]: the accept loop over a tokio listener; the caller's handler
//!   does TLS and HTTP, wrapping its service in [`Tracked`] so the loop
//!   knows when a request is in flight.
//!
//! It knows nothing of routes, TLS or axum; the agent-only build uses it too.
#![forbid(unsafe_code)]

mod limits;
mod serve;
mod slots;
mod tracked;

pub use limits::{FD_SHARE_DIVISOR, FdBudget, Limits, fd_soft_limit};
pub use serve::{Connection, serve};
pub use slots::{Admission, ConnState, Slots};
pub use tracked::{Tracked, TrackedBody};
