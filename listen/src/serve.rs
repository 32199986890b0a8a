//! The accept loop: admits each connection into [`Slots`] (at the cap
//! after the longest-idle one is shed and closed, so no more than the cap
//! are ever open), runs the caller's handler for it, and
//! closes it when it is shed or idle too long. TLS and HTTP are the
//! handler's; the loop only owns the socket's lifetime.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::limits::{Limits, MIN_USEFUL_CONNECTIONS, fd_soft_limit};
use crate::slots::{Admission, ConnState, Slots};
use crate::tracked::{SlotHandle, StreamCount, Tracked};

/// How long the loop pauses after a failed accept (out of descriptors
/// and the like) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// At most one WARN per this interval while new connections are refused.
const FULL_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// One admitted connection, handed to the handler.
#[derive(Debug, Clone)]
pub struct Connection {
    slot: SlotHandle,
    limits: Limits,
}

impl Connection {
    /// `service`, counting its requests on this connection (required:
    /// untracked requests look idle and may be shed). Each request
    /// carries a [`SlotHandle`] extension.
    pub fn track<S>(&self, service: S) -> Tracked<S> {
        Tracked::new(service, self.slot.clone())
    }

    /// An HTTP/1 server builder with this listener's header-read timeout.
    pub fn http1(&self) -> http1::Builder {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout);
        builder
    }

    /// This listener's bounds.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// Releases a connection's slot when its task ends, however it ends
/// (its socket is closed by then), and wakes an admission waiting for it;
/// a stream that outlives the task (an upgraded socket) holds it too.
#[derive(Debug)]
pub(crate) struct Release {
    slots: Arc<Mutex<Slots>>,
    released: Arc<Notify>,
    id: u64,
}

impl Drop for Release {
    fn drop(&mut self) {
        lock(&self.slots).release(self.id);
        self.released.notify_one();
    }
}

/// Longest an admission waits for a shed connection to close before it
/// looks again (the close takes microseconds; this only bounds a stall).
const SHED_WAIT: Duration = Duration::from_millis(100);

/// What became of a new connection at admission.
enum Admitted {
    /// It has a slot.
    Slot(u64, Arc<ConnState>),
    /// Every connection is busy: close it.
    Full,
    /// The listener's shutdown resolved meanwhile: stop accepting.
    Stopping,
}

/// A slot for a new connection: at once below the cap; at the cap after
/// an idle connection is shed and closed.
async fn admit(
    slots: &Mutex<Slots>,
    released: &Notify,
    name: &'static str,
    cap: usize,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Admitted {
    loop {
        let admission = lock(slots).admit(Instant::now());
        match admission {
            Admission::Admitted { id, state } => return Admitted::Slot(id, state),
            Admission::Full => return Admitted::Full,
            Admission::Shedding => {
                tracing::debug!(
                    listener = name,
                    max_connections = cap,
                    "shedding an idle connection"
                );
                tokio::select! {
                    () = released.notified() => {}
                    () = tokio::time::sleep(SHED_WAIT) => {}
                    () = &mut *shutdown => return Admitted::Stopping,
                }
            }
        }
    }
}

fn lock(slots: &Mutex<Slots>) -> std::sync::MutexGuard<'_, Slots> {
    slots.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accepts on `listener` until `shutdown` resolves, within `limits` (the
/// cap clamped to the fd limit, see [`Limits::effective_max_connections`]),
/// running `handle` for each admitted connection in its own task. `name`
/// says which listener in logs. Returns once it stops accepting; the
/// handlers' tasks run on (a caller drains them, e.g. with hyper-util's
/// `GracefulShutdown`).
pub async fn serve<H, Fut>(
    listener: TcpListener,
    limits: Limits,
    name: &'static str,
    shutdown: impl Future<Output = ()>,
    mut handle: H,
) where
    H: FnMut(TcpStream, SocketAddr, Connection) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let cap = limits.effective_max_connections(fd_soft_limit());
    let stream_cap = Limits::stream_cap(cap);
    if cap < limits.max_connections.min(MIN_USEFUL_CONNECTIONS) {
        tracing::warn!(
            listener = name,
            max_connections = cap,
            configured = limits.max_connections,
            minimum = MIN_USEFUL_CONNECTIONS,
            fd_soft_limit = fd_soft_limit(),
            "the fd limit leaves this listener fewer connections than it needs to serve reliably; raise `ulimit -n`"
        );
    } else if cap < limits.max_connections {
        tracing::warn!(
            listener = name,
            max_connections = cap,
            configured = limits.max_connections,
            fd_soft_limit = fd_soft_limit(),
            "connection cap clamped to the fd limit; raise `ulimit -n` for the configured cap"
        );
    } else {
        tracing::info!(
            listener = name,
            max_connections = cap,
            max_streams = stream_cap,
            "accepting"
        );
    }
    let slots = Arc::new(Mutex::new(Slots::new(cap)));
    let streams = Arc::new(StreamCount::new(stream_cap));
    let released = Arc::new(Notify::new());
    let mut last_full_warn: Option<Instant> = None;
    let mut accept_errors = WarnEvery::new(FULL_WARN_INTERVAL);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    if let Some(failed) = accept_errors.due(Instant::now()) {
                        tracing::warn!(
                            listener = name,
                            error = %e,
                            failed,
                            "accept failed (count since the last such warning)"
                        );
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let (id, state) = match admit(&slots, &released, name, cap, &mut shutdown).await {
            Admitted::Slot(id, state) => (id, state),
            Admitted::Stopping => return,
            Admitted::Full => {
                if last_full_warn.is_none_or(|t| t.elapsed() >= FULL_WARN_INTERVAL) {
                    last_full_warn = Some(Instant::now());
                    tracing::warn!(
                        listener = name,
                        max_connections = cap,
                        %peer,
                        "at the connection cap with a request in flight on every connection; closing new connections"
                    );
                }
                drop(stream);
                continue;
            }
        };
        let release = Arc::new(Release {
            slots: Arc::clone(&slots),
            released: Arc::clone(&released),
            id,
        });
        let connection = Connection {
            slot: SlotHandle::new(
                Arc::clone(&state),
                Arc::clone(&release),
                Arc::clone(&streams),
            ),
            limits,
        };
        let served = handle(stream, peer, connection);
        tokio::spawn(async move {
            let _release = release;
            tokio::select! {
                () = served => {}
                () = state.shed() => {}
                () = close_when_idle(&state, limits.idle_timeout) => {}
            }
        });
    }
}

/// A warning at most once per interval, with how many times it happened
/// meanwhile.
struct WarnEvery {
    interval: Duration,
    last: Option<Instant>,
    count: u64,
}

impl WarnEvery {
    fn new(interval: Duration) -> Self {
        WarnEvery {
            interval,
            last: None,
            count: 0,
        }
    }

    /// Counts one occurrence at `now`; the count to log if a warning is due.
    fn due(&mut self, now: Instant) -> Option<u64> {
        self.count += 1;
        if self.last.is_some_and(|t| now < t + self.interval) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// Resolves once the connection has had no request in flight for
/// `idle_timeout`, and marks it shed.
async fn close_when_idle(state: &ConnState, idle_timeout: Duration) {
    loop {
        let deadline = state.idle_since().unwrap_or_else(Instant::now) + idle_timeout;
        tokio::time::sleep_until(deadline).await;
        let expired = state
            .idle_since()
            .is_some_and(|since| since + idle_timeout <= Instant::now());
        if expired && state.try_shed() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_warning_is_logged_once_per_interval_with_its_count() {
        let t0 = Instant::now();
        let mut warn = WarnEvery::new(Duration::from_secs(10));
        assert_eq!(warn.due(t0), Some(1));
        for ms in 1..200 {
            assert_eq!(warn.due(t0 + Duration::from_millis(ms * 50)), None);
        }
        assert_eq!(warn.due(t0 + Duration::from_secs(10)), Some(199 + 1));
    }
}
