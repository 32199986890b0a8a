//! The open connections of one listener and who gets shed at the cap:
//! plain bookkeeping, the caller passes the instants.
//!
//! A connection is idle when no request is in flight on it (not yet a
//! request head, between keep-alive requests, HTTP/2 with no stream). At
//! the cap the connection idle the longest is shed to admit the new one;
//! one with a request in flight never is, and the new one waits until the
//! shed one's socket is closed, so at most `cap` are ever open. Shedding
//! and starting a request race through one atomic, so a request is never
//! cut by a shed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tokio::time::Instant;

/// `in_flight` once the connection is shed: no request may start on it.
const SHED: usize = usize::MAX;

/// Scans for an idle connection to shed before calling the listener full.
const SHED_TRIES: usize = 4;

/// One open connection, shared by the accept loop and its service.
#[derive(Debug)]
pub struct ConnState {
    in_flight: AtomicUsize,
    last_active: Mutex<Instant>,
    shed: Notify,
}

impl ConnState {
    fn new(now: Instant) -> Self {
        ConnState {
            in_flight: AtomicUsize::new(0),
            last_active: Mutex::new(now),
            shed: Notify::new(),
        }
    }

    /// A request starts; false if the connection was shed (the request
    /// must not run: the connection is about to close).
    pub fn begin_request(&self, now: Instant) -> bool {
        let started = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n != SHED).then(|| n.saturating_add(1))
            })
            .is_ok();
        if started {
            self.touch(now);
        }
        started
    }

    /// A request (its response body included) is done.
    pub fn end_request(&self, now: Instant) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n != SHED && n > 0).then(|| n - 1)
            });
        self.touch(now);
    }

    /// Whether it was shed (and is closing).
    pub fn is_shed(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == SHED
    }

    /// Since when the connection has been idle; `None` while a request is
    /// in flight or once it is shed.
    pub fn idle_since(&self) -> Option<Instant> {
        (self.in_flight.load(Ordering::Acquire) == 0).then(|| *self.last_active())
    }

    /// Marks an idle connection shed and wakes its task; false if a
    /// request is in flight (or it was shed already).
    pub fn try_shed(&self) -> bool {
        let shed = self
            .in_flight
            .compare_exchange(0, SHED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if shed {
            self.shed.notify_one();
        }
        shed
    }

    /// Resolves once the connection is shed (also if it already was).
    pub async fn shed(&self) {
        self.shed.notified().await;
    }

    fn touch(&self, now: Instant) {
        *self
            .last_active
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = now;
    }

    fn last_active(&self) -> std::sync::MutexGuard<'_, Instant> {
        self.last_active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// What [`Slots::admit`] decided about a new connection.
#[derive(Debug)]
pub enum Admission {
    /// Admitted as `id`.
    Admitted {
        /// Its key, for [`Slots::release`].
        id: u64,
        /// Its state, for its service and its task.
        state: Arc<ConnState>,
    },
    /// At the cap: an idle connection is being shed (marked now or
    /// before); ask again once a connection is released. Until then the
    /// shed one still holds its descriptor, so the count stays true.
    Shedding,
    /// At the cap with a request in flight on every connection.
    Full,
}

/// The open connections of one listener, at most `cap` (a shed one
/// counts until its task releases it).
#[derive(Debug)]
pub struct Slots {
    cap: usize,
    next_id: u64,
    open: HashMap<u64, Arc<ConnState>>,
}

impl Slots {
    /// No connections yet, at most `cap` (at least one).
    pub fn new(cap: usize) -> Self {
        Slots {
            cap: cap.max(1),
            next_id: 0,
            open: HashMap::new(),
        }
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Connections open now (shed ones not yet closed included).
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// True with no connection open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Admits a connection opened at `now` if below the cap; at the cap
    /// sheds the longest-idle one (unless one is already closing).
    pub fn admit(&mut self, now: Instant) -> Admission {
        if self.open.len() >= self.cap {
            if self.open.values().any(|c| c.is_shed()) {
                return Admission::Shedding;
            }
            // One scan per try (no sort: this runs on every accept during
            // a flood). A try fails only if a request started on the
            // victim meanwhile, which makes it busy for the next scan.
            let shed = (0..SHED_TRIES).any(|_| {
                self.open
                    .iter()
                    .filter_map(|(id, c)| c.idle_since().map(|since| (since, *id)))
                    .min()
                    .and_then(|(_, id)| self.open.get(&id))
                    .is_some_and(|c| c.try_shed())
            });
            return if shed {
                Admission::Shedding
            } else {
                Admission::Full
            };
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let state = Arc::new(ConnState::new(now));
        self.open.insert(id, Arc::clone(&state));
        Admission::Admitted { id, state }
    }

    /// Forgets connection `id`: its task ended and its socket is closed.
    pub fn release(&mut self, id: u64) {
        self.open.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn admitted(a: Admission) -> (u64, Arc<ConnState>) {
        match a {
            Admission::Admitted { id, state } => (id, state),
            other => panic!("expected admission, got {other:?}"),
        }
    }

    #[test]
    fn at_the_cap_the_longest_idle_is_shed_and_counts_until_released() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut slots = Slots::new(2);
        let (_, a) = admitted(slots.admit(at(0)));
        let (b_id, b) = admitted(slots.admit(at(1)));
        // a served a request at 5 s: b is now the longest idle.
        assert!(a.begin_request(at(4)));
        a.end_request(at(5));
        assert!(matches!(slots.admit(at(6)), Admission::Shedding));
        assert!(b.is_shed() && !a.is_shed());
        assert!(
            !b.begin_request(at(7)),
            "no request starts on a shed connection"
        );
        // b still holds its descriptor: nothing else is shed meanwhile.
        assert!(matches!(slots.admit(at(7)), Admission::Shedding));
        assert!(!a.is_shed());
        assert_eq!(slots.len(), 2);
        slots.release(b_id);
        admitted(slots.admit(at(8)));
        assert_eq!(slots.len(), 2);
    }

    #[test]
    fn a_connection_with_a_request_in_flight_is_never_shed() {
        let now = Instant::now();
        let mut slots = Slots::new(1);
        let (id, busy) = admitted(slots.admit(now));
        assert!(busy.begin_request(now));
        assert!(matches!(slots.admit(now), Admission::Full));
        busy.end_request(now);
        assert!(matches!(slots.admit(now), Admission::Shedding));
        slots.release(id);
        assert!(slots.is_empty());
        admitted(slots.admit(now));
    }

    #[test]
    fn requests_are_counted_until_the_last_ends() {
        let now = Instant::now();
        let mut slots = Slots::new(1);
        let (_, c) = admitted(slots.admit(now));
        assert!(c.begin_request(now) && c.begin_request(now));
        c.end_request(now);
        assert!(!c.try_shed());
        c.end_request(now);
        assert!(c.try_shed());
        assert!(!c.try_shed(), "shed once");
    }
}
