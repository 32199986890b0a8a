//! The open connections of one listener and who gets shed at the cap:
//! plain bookkeeping, the caller passes the instants.
//!
//! A connection is idle when no request is in flight on it (not yet a
//! request head, between keep-alive requests, HTTP/2 with no stream). At
//! the cap the connection idle the longest is shed to admit the new one;
//! one with a request in flight never is. Shedding and starting a request
//! race through one atomic, so a request is never cut by a shed.

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
    /// Admitted as `id`; `shed` is true if an idle one was shed for it.
    Admitted {
        /// Its key, for [`Slots::release`].
        id: u64,
        /// Its state, for its service and its task.
        state: Arc<ConnState>,
        /// Whether an idle connection was shed to make room.
        shed: bool,
    },
    /// At the cap with a request in flight on every connection.
    Full,
}

/// The open connections of one listener, at most `cap`.
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

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// True with no connection open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Admits a connection opened at `now`, shedding the longest-idle one
    /// if at the cap.
    pub fn admit(&mut self, now: Instant) -> Admission {
        let mut shed = false;
        if self.open.len() >= self.cap {
            // One scan per try (no sort: this runs on every accept during
            // a flood). A try fails only if a request started on the
            // victim meanwhile, which makes it busy for the next scan.
            let victim = (0..SHED_TRIES).find_map(|_| {
                let (_, id) = self
                    .open
                    .iter()
                    .filter_map(|(id, c)| c.idle_since().map(|since| (since, *id)))
                    .min()?;
                self.open
                    .get(&id)
                    .is_some_and(|c| c.try_shed())
                    .then_some(id)
            });
            match victim {
                Some(id) => {
                    self.open.remove(&id);
                    shed = true;
                }
                None => return Admission::Full,
            }
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let state = Arc::new(ConnState::new(now));
        self.open.insert(id, Arc::clone(&state));
        Admission::Admitted { id, state, shed }
    }

    /// Forgets connection `id` (closed, or shed).
    pub fn release(&mut self, id: u64) {
        self.open.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn admitted(a: Admission) -> (u64, Arc<ConnState>, bool) {
        match a {
            Admission::Admitted { id, state, shed } => (id, state, shed),
            Admission::Full => panic!("expected admission"),
        }
    }

    #[test]
    fn at_the_cap_the_longest_idle_is_shed() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut slots = Slots::new(2);
        let (_, a, shed) = admitted(slots.admit(at(0)));
        assert!(!shed);
        let (_, b, _) = admitted(slots.admit(at(1)));
        // a served a request at 5 s: b is now the longest idle.
        assert!(a.begin_request(at(4)));
        a.end_request(at(5));
        let (_, _, shed) = admitted(slots.admit(at(6)));
        assert!(shed);
        assert_eq!(b.idle_since(), None, "b is shed");
        assert!(
            !b.begin_request(at(7)),
            "no request starts on a shed connection"
        );
        assert!(a.idle_since().is_some());
        assert_eq!(slots.len(), 2);
    }

    #[test]
    fn a_connection_with_a_request_in_flight_is_never_shed() {
        let now = Instant::now();
        let mut slots = Slots::new(1);
        let (id, busy, _) = admitted(slots.admit(now));
        assert!(busy.begin_request(now));
        assert!(matches!(slots.admit(now), Admission::Full));
        busy.end_request(now);
        let (_, _, shed) = admitted(slots.admit(now));
        assert!(shed);
        slots.release(id);
        assert_eq!(slots.len(), 1);
    }

    #[test]
    fn requests_are_counted_until_the_last_ends() {
        let now = Instant::now();
        let mut slots = Slots::new(1);
        let (_, c, _) = admitted(slots.admit(now));
        assert!(c.begin_request(now) && c.begin_request(now));
        c.end_request(now);
        assert!(!c.try_shed());
        c.end_request(now);
        assert!(c.try_shed());
        assert!(!c.try_shed(), "shed once");
    }
}
