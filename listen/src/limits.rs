//! The bounds of one listener, and the connection cap clamped to the
//! process's descriptor limit (RLIMIT_NOFILE). Pure but for
//! [`fd_soft_limit`], which reads the limit once.

use std::time::Duration;

/// [`FdBudget::Quarter`]'s divisor.
pub const FD_SHARE_DIVISOR: u64 = 4;

/// Below this many connections a listener is barely usable (one scraper
/// and a health check, a webhook beside a few stray connections): a cap
/// clamped under it is logged as such at WARN, naming the fd limit.
pub const MIN_USEFUL_CONNECTIONS: usize = 16;

/// Of the connection cap, at least this share (and at least one slot) is
/// never given to long-lived streams ([`Limits::stream_cap`]), so that
/// short requests (the gateway's ingest, health checks) always find one.
pub const STREAM_RESERVE_DIVISOR: usize = 4;

/// How much of the process's soft fd limit a listener's connections may
/// take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdBudget {
    /// A quarter (at `ulimit -n 256`: 64 connections), for a listener
    /// beside outgoing work: the agent's probes, `sonde wait`'s polls.
    Quarter,
    /// All but this many, for a process whose work is its connections
    /// (the gateway: the reserve covers wire files, the runtime, logs).
    AllBut(u64),
}

/// The bounds of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once (before the fd clamp); at the cap the
    /// longest-idle connection is shed, or, if every one has a request in
    /// flight, the new connection is closed at once.
    pub max_connections: usize,
    /// A request whose head (request line and headers) has not arrived
    /// this long after the connection opened, or after the previous
    /// response, is closed (slowloris). HTTP/1 only.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed
    /// (keep-alive, HTTP/2 with no open stream, a stalled TLS handshake).
    pub idle_timeout: Duration,
    /// The share of the fd limit the cap is clamped to.
    pub fd_budget: FdBudget,
}

impl Limits {
    /// Ten seconds for a request's headers.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// A minute without a request in flight.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

    /// `max_connections` with the default timeouts, within a quarter of
    /// the fd limit.
    pub const fn with_max_connections(max_connections: usize) -> Self {
        Limits {
            max_connections,
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            fd_budget: FdBudget::Quarter,
        }
    }

    /// The cap actually applied under a soft fd limit of `fd_soft_limit`
    /// (`None`: unknown or unlimited): the configured cap, within the
    /// [`FdBudget`], and at least one.
    pub fn effective_max_connections(&self, fd_soft_limit: Option<u64>) -> usize {
        let share = fd_soft_limit
            .map(|soft| match self.fd_budget {
                FdBudget::Quarter => soft / FD_SHARE_DIVISOR,
                FdBudget::AllBut(reserve) => soft.saturating_sub(reserve),
            })
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        self.max_connections.min(share).max(1)
    }

    /// The long-lived streams (SSE, upgraded sockets) allowed at once on
    /// a listener whose effective cap is `cap`: all but a quarter of it
    /// ([`STREAM_RESERVE_DIVISOR`]) and at least one slot.
    pub const fn stream_cap(cap: usize) -> usize {
        let reserve = cap / STREAM_RESERVE_DIVISOR;
        let reserve = if reserve == 0 { 1 } else { reserve };
        cap.saturating_sub(reserve)
    }
}

/// The process's soft RLIMIT_NOFILE, or `None` where it cannot be read
/// or is unlimited.
pub fn fd_soft_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
        match getrlimit(Resource::RLIMIT_NOFILE) {
            Ok((soft, _)) if soft != RLIM_INFINITY => Some(soft),
            _ => None,
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_a_quarter_of_the_fd_limit_at_most() {
        let limits = Limits::with_max_connections(1024);
        assert_eq!(limits.effective_max_connections(None), 1024);
        assert_eq!(limits.effective_max_connections(Some(256)), 64);
        assert_eq!(limits.effective_max_connections(Some(1_048_576)), 1024);
        assert_eq!(limits.effective_max_connections(Some(2)), 1);
        assert_eq!(
            Limits::with_max_connections(0).effective_max_connections(None),
            1
        );
    }

    #[test]
    fn all_but_a_reserve_keeps_the_reserve() {
        let limits = Limits {
            fd_budget: FdBudget::AllBut(128),
            ..Limits::with_max_connections(16_384)
        };
        assert_eq!(limits.effective_max_connections(Some(256)), 128);
        assert_eq!(limits.effective_max_connections(Some(65_536)), 16_384);
        assert_eq!(limits.effective_max_connections(Some(100)), 1);
    }

    #[test]
    fn streams_leave_a_quarter_of_the_cap_and_at_least_one_slot() {
        assert_eq!(Limits::stream_cap(16_384), 12_288);
        assert_eq!(Limits::stream_cap(8), 6);
        assert_eq!(Limits::stream_cap(2), 1);
        assert_eq!(Limits::stream_cap(1), 0);
    }

    #[test]
    fn the_fd_limit_is_readable_here() {
        assert!(fd_soft_limit().is_none_or(|soft| soft > 0));
    }
}
