//! One bounded accept loop for every HTTP listener sonde runs: the
//! gateway, the agent's `--metrics-listen` and `sonde wait --listen`.
//!
//! - [`Limits`]: the bounds (connection cap, header-read and idle
//!   timeouts), the cap clamped to a share of the process's fd limit
//!   ([`FdBudget`]: a quarter beside outgoing probes and polls, all but a
//!   reserve for the gateway).
//! - [`Slots`]: the pure bookkeeping of open connections; at the cap the
//!   connection idle (or only waiting for request bodies) the longest is
//!   shed to admit a new one; one with a whole request in flight never is.
//! - [`serve`]: the accept loop over a tokio listener; the caller's handler
//!   does TLS and HTTP, wrapping its service in [`Tracked`] so the loop
//!   knows when a request is in flight; a handler that answers with a
//!   long-lived stream keeps the slot with a [`StreamSlot`] taken from
//!   the request's [`SlotHandle`], within a stream cap below the
//!   connection cap ([`Limits::stream_cap`]).
//!
//! It knows nothing of routes, TLS or axum; the agent-only build uses it too.
#![forbid(unsafe_code)]

mod limits;
mod serve;
mod slots;
mod tracked;

pub use limits::{
    FD_SHARE_DIVISOR, FdBudget, Limits, MIN_USEFUL_CONNECTIONS, STREAM_RESERVE_DIVISOR,
    fd_soft_limit,
};
pub use serve::{Connection, serve};
pub use slots::{Admission, ConnState, Slots};
pub use tracked::{RequestBody, SlotHandle, StreamSlot, Tracked, TrackedBody};
