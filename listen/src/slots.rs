//! The open connections of one listener and who gets shed at the cap:
//! plain bookkeeping, the caller passes the instants.
//!
//! A connection is idle when no request is in flight on it (not yet a
//! request head, between keep-alive requests, HTTP/2 with no stream). At
//! the cap the connection sheddable the longest is shed to admit the new
//! one: idle, or with every request still waiting for its body (a stalled
//! upload, unauthenticated until it is whole). One with a whole request in
//! flight never is, and the new one waits until the shed one's socket is
//! closed, so at most `cap` are ever open. Shedding and starting a request
//! race through one atomic, so a whole request is never cut by a shed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tokio::time::Instant;

/// The connection's state once it is shed: no request may start on it.
const SHED: u64 = u64::MAX;

/// The state packs two counts so that shedding and starting or finishing
/// a request race through one atomic: requests in flight (low half) and,
/// of those, requests whose body is still arriving (high half).
const RECEIVING_ONE: u64 = 1 << 32;
const REQUESTS_MASK: u64 = RECEIVING_ONE - 1;

/// Scans for a connection to shed before calling the listener full.
const SHED_TRIES: usize = 4;

/// Whether a connection in state `n` may be shed at the cap: idle, or
/// every request on it still waiting for its body (a stalled or trickled
/// upload is not yet work; it must not hold a slot against real work).
fn sheddable(n: u64) -> bool {
    n != SHED && (n == 0 || (n >> 32) >= (n & REQUESTS_MASK))
}

/// One open connection, shared by the accept loop and its service.
#[derive(Debug)]
pub struct ConnState {
    state: AtomicU64,
    last_active: Mutex<Instant>,
    shed: Notify,
}

impl ConnState {
    fn new(now: Instant) -> Self {
        ConnState {
            state: AtomicU64::new(0),
            last_active: Mutex::new(now),
            shed: Notify::new(),
        }
    }

    /// A request starts, its body complete already or not (then
    /// [`Self::body_done`] follows); false if the connection was shed
    /// (the request must not run: the connection is about to close).
    pub fn begin_request(&self, now: Instant, body_complete: bool) -> bool {
        let add = if body_complete { 1 } else { 1 + RECEIVING_ONE };
        let started = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n != SHED).then(|| n.saturating_add(add))
            })
            .is_ok();
        if started {
            self.touch(now);
        }
        started
    }

    /// A request's body has arrived whole (or the handler stopped reading
    /// it): from now on the request is work, never shed.
    pub fn body_done(&self, now: Instant) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n != SHED && n >> 32 > 0).then(|| n - RECEIVING_ONE)
            });
        self.touch(now);
    }

    /// A request (its response body included) is done.
    pub fn end_request(&self, now: Instant) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n != SHED && n & REQUESTS_MASK > 0).then(|| n - 1)
            });
        self.touch(now);
    }

    /// Whether it was shed (and is closing).
    pub fn is_shed(&self) -> bool {
        self.state.load(Ordering::Acquire) == SHED
    }

    /// Since when the connection has been idle; `None` while a request is
    /// in flight or once it is shed.
    pub fn idle_since(&self) -> Option<Instant> {
        (self.state.load(Ordering::Acquire) == 0).then(|| *self.last_active())
    }

    /// Since when the connection may be shed at the cap: idle since, or
    /// waiting for request bodies since the last request started.
    fn sheddable_since(&self) -> Option<Instant> {
        sheddable(self.state.load(Ordering::Acquire)).then(|| *self.last_active())
    }

    /// Marks an idle connection shed and wakes its task; false if a
    /// request is in flight (or it was shed already).
    pub fn try_shed(&self) -> bool {
        self.shed_if(|n| n == 0)
    }

    /// Marks the connection shed if it is idle or only waits for request
    /// bodies ([`Slots::admit`] at the cap).
    fn try_shed_for_admission(&self) -> bool {
        self.shed_if(sheddable)
    }

    fn shed_if(&self, may: impl Fn(u64) -> bool) -> bool {
        let shed = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                may(n).then_some(SHED)
            })
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
    /// sheds the one sheddable the longest (idle, or only waiting for a
    /// request body; unless one is already closing).
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
                    .filter_map(|(id, c)| c.sheddable_since().map(|since| (since, *id)))
                    .min()
                    .and_then(|(_, id)| self.open.get(&id))
                    .is_some_and(|c| c.try_shed_for_admission())
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
        assert!(a.begin_request(at(4), true));
        a.end_request(at(5));
        assert!(matches!(slots.admit(at(6)), Admission::Shedding));
        assert!(b.is_shed() && !a.is_shed());
        assert!(
            !b.begin_request(at(7), true),
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
        assert!(busy.begin_request(now, true));
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
        assert!(c.begin_request(now, true) && c.begin_request(now, true));
        c.end_request(now);
        assert!(!c.try_shed());
        c.end_request(now);
        assert!(c.try_shed());
        assert!(!c.try_shed(), "shed once");
    }

    #[test]
    fn a_request_waiting_for_its_body_is_shed_oldest_first_but_not_once_whole() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut slots = Slots::new(3);
        let (_, stalled_old) = admitted(slots.admit(at(0)));
        let (_, stalled_new) = admitted(slots.admit(at(0)));
        let (_, whole) = admitted(slots.admit(at(0)));
        assert!(stalled_old.begin_request(at(1), false));
        assert!(stalled_new.begin_request(at(3), false));
        assert!(whole.begin_request(at(2), false));
        whole.body_done(at(2));
        assert!(matches!(slots.admit(at(4)), Admission::Shedding));
        assert!(stalled_old.is_shed());
        assert!(!stalled_new.is_shed() && !whole.is_shed());
        assert!(
            !stalled_new.try_shed(),
            "the idle timeout never cuts a request"
        );
    }

    #[test]
    fn a_stalled_upload_beside_a_whole_request_is_not_shed() {
        let now = Instant::now();
        let mut slots = Slots::new(1);
        let (_, h2) = admitted(slots.admit(now));
        assert!(h2.begin_request(now, true));
        assert!(h2.begin_request(now, false));
        assert!(matches!(slots.admit(now), Admission::Full));
    }
}
