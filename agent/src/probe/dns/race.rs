//! The lookup's policy, pure: which server each family asks next and when
//! to give up on it (resolv.conf's `timeout` and `attempts`, REFUSED and
//! SERVFAIL moving on to the next server), and when the address list is
//! fixed (RFC 8305 section 3: at once on a positive AAAA, or after A plus
//! the resolution delay). Fed with replies and the time since the lookup
//! began; says what to do next. No sockets, no clock.

use std::time::Duration;

use wire::ErrorClass;

use super::outcome::{Family, FamilyOutcome};

/// resolv.conf's limit on name servers (glibc's MAXNS).
pub(crate) const MAX_SERVERS: usize = 3;

/// How one lookup asks: the servers' count, resolv.conf's per-try timeout
/// and attempts, and RFC 8305's resolution delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    /// Servers to ask, in order (1 to [`MAX_SERVERS`]).
    pub(crate) servers: usize,
    /// How long one try waits for its server.
    pub(crate) timeout: Duration,
    /// Rounds over the server list.
    pub(crate) attempts: u8,
    /// How long a positive A answer waits for AAAA.
    pub(crate) resolution_delay: Duration,
    /// A preferred family (`prefer4`, `prefer6`): its positive answer
    /// fixes the list at once, the other family's waits for it (however
    /// long: its addresses are used only when the preferred family has
    /// none), and no resolution delay applies.
    pub(crate) prefer: Option<Family>,
}

/// What a server replied to one family's query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    /// NOERROR with this many addresses of the family (0: NODATA).
    Addresses(u16),
    /// NXDOMAIN.
    NxDomain,
    /// REFUSED.
    Refused,
    /// SERVFAIL.
    ServFail,
    /// Anything else unusable (another rcode, ICMP unreachable): the next
    /// server is asked, as for SERVFAIL.
    Error,
}

/// What the driver does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send `family`'s query to server `server` (an index), then poll again.
    Send {
        /// The family.
        family: Family,
        /// Index into the server list.
        server: usize,
    },
    /// Wait for a reply, or until `until` (since the lookup began) passes.
    Wait {
        /// The next timer, if any: a try's timeout or the resolution delay.
        until: Option<Duration>,
    },
    /// The address list is fixed: connect to these families' addresses
    /// (AAAA first), or fail with this class because none has any.
    Done(Result<Use, ErrorClass>),
}

/// Which families' addresses to connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Use {
    /// A's addresses.
    pub(crate) a: bool,
    /// AAAA's addresses.
    pub(crate) aaaa: bool,
}

/// A family's outcome, when (since the lookup began) and which server's
/// reply decided it.
pub(crate) type Settled = (FamilyOutcome, Duration, Option<usize>);

#[derive(Debug, Clone, Copy)]
struct Tries {
    asked: bool,
    /// The next try's index: round * servers + server.
    next: usize,
    /// The try in flight: its server and when it times out.
    current: Option<(usize, Duration)>,
    /// Servers that refused or failed: never asked again in this lookup.
    given_up: [bool; MAX_SERVERS],
    outcome: Option<Settled>,
    /// The latest failure, reported once every try is used.
    last_failure: (FamilyOutcome, Option<usize>),
}

impl Tries {
    fn new(asked: bool) -> Self {
        Tries {
            asked,
            next: 0,
            current: None,
            given_up: [false; MAX_SERVERS],
            outcome: None,
            last_failure: (FamilyOutcome::Timeout, None),
        }
    }

    fn pending(&self) -> bool {
        self.asked && self.outcome.is_none()
    }

    fn positive(&self) -> bool {
        matches!(self.outcome, Some((FamilyOutcome::Answered { .. }, _, _)))
    }
}

/// One lookup of one name: both families' tries and the RFC 8305 decision.
#[derive(Debug, Clone)]
pub(crate) struct Resolution {
    policy: Policy,
    families: [Tries; 2],
    done: Option<Result<Use, ErrorClass>>,
    /// After [`Resolution::rejoin`]: only A is still out, and its answer
    /// joins the connection attempts already under way.
    joining: bool,
}

impl Resolution {
    /// A lookup asking A when `a`, AAAA when `aaaa`.
    pub(crate) fn new(policy: Policy, a: bool, aaaa: bool) -> Self {
        let mut policy = policy;
        policy.servers = policy.servers.clamp(1, MAX_SERVERS);
        policy.attempts = policy.attempts.max(1);
        let mut families = [Tries::new(false); 2];
        families[Family::A.index()] = Tries::new(a);
        families[Family::Aaaa.index()] = Tries::new(aaaa);
        Resolution {
            policy,
            families,
            done: None,
            joining: false,
        }
    }

    /// After the list was fixed on a positive AAAA with A not awaited:
    /// keep asking A, so its addresses can join the connection attempts
    /// (RFC 8305 section 3). False when there is nothing to wait for.
    pub(crate) fn rejoin(&mut self) -> bool {
        let a = &mut self.families[Family::A.index()];
        if self.policy.prefer.is_some()
            || !matches!(
                self.done,
                Some(Ok(Use {
                    aaaa: true,
                    a: false
                }))
            )
            || !matches!(a.outcome, Some((FamilyOutcome::NotAwaited, _, _)))
        {
            return false;
        }
        a.outcome = None;
        self.done = None;
        self.joining = true;
        true
    }

    /// A reply from `server` to `family`'s query, parsed at `now`. Replies
    /// after the family's outcome, or after the list is fixed, are ignored.
    pub(crate) fn on_reply(&mut self, family: Family, server: usize, reply: Reply, now: Duration) {
        if self.done.is_some() {
            return;
        }
        let tries = &mut self.families[family.index()];
        if !tries.pending() {
            return;
        }
        let outcome = match reply {
            Reply::Addresses(0) => FamilyOutcome::NoData,
            Reply::Addresses(n) => FamilyOutcome::Answered { addresses: n },
            Reply::NxDomain => FamilyOutcome::NxDomain,
            Reply::Refused | Reply::ServFail | Reply::Error => {
                let failure = match reply {
                    Reply::Refused => FamilyOutcome::Refused,
                    Reply::ServFail => FamilyOutcome::ServFail,
                    _ => FamilyOutcome::Error,
                };
                if let Some(slot) = tries.given_up.get_mut(server) {
                    *slot = true;
                }
                tries.last_failure = (failure, Some(server));
                // The next server is asked at once (by `poll`), not this
                // one again; a failure from an earlier try's server leaves
                // the try in flight alone.
                if tries.current.is_some_and(|(s, _)| s == server) {
                    tries.current = None;
                }
                return;
            }
        };
        tries.outcome = Some((outcome, now, Some(server)));
        tries.current = None;
    }

    /// What to do at `now`. Call again after every `Send`; after a `Wait`,
    /// call once a reply came or the timer passed.
    pub(crate) fn poll(&mut self, now: Duration) -> Action {
        if let Some(done) = self.done {
            return Action::Done(done);
        }
        for family in [Family::Aaaa, Family::A] {
            let tries = &mut self.families[family.index()];
            if !tries.pending() {
                continue;
            }
            if let Some((_, timeout_at)) = tries.current
                && timeout_at <= now
            {
                tries.current = None;
                tries.last_failure = (FamilyOutcome::Timeout, None);
            }
            if tries.current.is_none()
                && let Some(server) = self.advance(family, now)
            {
                return Action::Send { family, server };
            }
        }
        if let Some(done) = self.decide(now) {
            self.done = Some(done);
            return Action::Done(done);
        }
        let timers = self
            .families
            .iter()
            .filter(|t| t.pending())
            .filter_map(|t| t.current.map(|(_, at)| at));
        let until = timers.chain(self.resolution_deadline()).min();
        Action::Wait { until }
    }

    /// Starts `family`'s next try, returning its server, or ends the family
    /// with its last failure when every try is used.
    fn advance(&mut self, family: Family, now: Duration) -> Option<usize> {
        let servers = self.policy.servers;
        let total = servers * usize::from(self.policy.attempts);
        let timeout = self.policy.timeout;
        let tries = &mut self.families[family.index()];
        while tries.next < total {
            let server = tries.next % servers;
            tries.next += 1;
            if !tries.given_up[server] {
                tries.current = Some((server, now + timeout));
                return Some(server);
            }
        }
        if tries.current.is_none() {
            let (outcome, server) = tries.last_failure;
            tries.outcome = Some((outcome, now, server));
        }
        None
    }

    /// When the resolution delay after a positive A answer ends, while
    /// AAAA is still out.
    fn resolution_deadline(&self) -> Option<Duration> {
        let a = &self.families[Family::A.index()];
        let aaaa = &self.families[Family::Aaaa.index()];
        let delay = self.policy.resolution_delay;
        match a.outcome {
            Some((FamilyOutcome::Answered { .. }, at, _))
                if aaaa.pending() && self.policy.prefer.is_none() =>
            {
                Some(at + delay)
            }
            // After an NXDOMAIN, the other family's wait.
            _ if a.pending() || aaaa.pending() => {
                nxdomain_at(a).or(nxdomain_at(aaaa)).map(|at| at + delay)
            }
            _ => None,
        }
    }

    /// RFC 8305 section 3: go on with AAAA (and A if in) once AAAA is
    /// positive; with A once AAAA is out of the running or the resolution
    /// delay has passed; fail when no family is positive or pending, or
    /// the resolution delay after an NXDOMAIN has passed.
    fn decide(&mut self, now: Duration) -> Option<Result<Use, ErrorClass>> {
        let [a, aaaa] = &mut self.families;
        if self.joining {
            return (!a.pending()).then_some(Ok(Use {
                a: a.positive(),
                aaaa: false,
            }));
        }
        if let Some(preferred) = self.policy.prefer {
            let (wanted, other) = match preferred {
                Family::A => (&mut *a, &mut *aaaa),
                Family::Aaaa => (&mut *aaaa, &mut *a),
            };
            let only = |family: Family| Use {
                a: family == Family::A,
                aaaa: family == Family::Aaaa,
            };
            if wanted.positive() {
                if other.pending() {
                    other.outcome = Some((FamilyOutcome::NotAwaited, now, None));
                }
                return Some(Ok(only(preferred)));
            }
            if other.positive() {
                // The fallback family only once the preferred has none.
                return (!wanted.pending()).then(|| Ok(only(preferred.other())));
            }
        } else if aaaa.positive() {
            if a.pending() {
                a.outcome = Some((FamilyOutcome::NotAwaited, now, None));
            }
            return Some(Ok(Use {
                a: a.positive(),
                aaaa: true,
            }));
        }
        if a.positive() {
            if !aaaa.pending() {
                return Some(Ok(Use {
                    a: true,
                    aaaa: false,
                }));
            }
            let (_, answered_at, _) = a.outcome?;
            if now >= answered_at + self.policy.resolution_delay {
                aaaa.outcome = Some((FamilyOutcome::Late, now, None));
                return Some(Ok(Use {
                    a: true,
                    aaaa: false,
                }));
            }
            return None;
        }
        // NXDOMAIN on one family: nothing exists at or below the name (RFC
        // 8020), so the other family is given the resolution delay, not
        // its timeouts on every server, before the next search-list name.
        // Not at once: a broken server that says NXDOMAIN to AAAA only
        // (RFC 4074 section 4.2) must not fail a probe A answers.
        if let Some(nx_at) = nxdomain_at(a).or(nxdomain_at(aaaa))
            && now >= nx_at + self.policy.resolution_delay
        {
            for tries in [a, aaaa] {
                if tries.pending() {
                    tries.outcome = Some((FamilyOutcome::Late, now, None));
                }
            }
            return Some(Err(ErrorClass::DnsNxdomain));
        }
        if a.pending() || aaaa.pending() {
            return None;
        }
        let outcome = |family: Family| {
            self.outcome(family)
                .map_or(FamilyOutcome::Timeout, |(outcome, _, _)| outcome)
        };
        Some(Err(failure_class(
            outcome(Family::A),
            outcome(Family::Aaaa),
        )))
    }

    /// Whether `family` still waits for a reply (a reply to it is news).
    pub(crate) fn is_waiting(&self, family: Family) -> bool {
        self.done.is_none() && self.families[family.index()].pending()
    }

    /// `family`'s outcome so far: `None` while it waits.
    pub(crate) fn outcome(&self, family: Family) -> Option<Settled> {
        let tries = &self.families[family.index()];
        if !tries.asked {
            return Some((FamilyOutcome::NotAsked, Duration::ZERO, None));
        }
        tries.outcome
    }
}

/// When `tries` came to NXDOMAIN, if it did.
fn nxdomain_at(tries: &Tries) -> Option<Duration> {
    match tries.outcome {
        Some((FamilyOutcome::NxDomain, at, _)) => Some(at),
        _ => None,
    }
}

/// The class of a lookup where no family gave an address. An answer about
/// the name beats the lack of one: NXDOMAIN on either family first (the
/// server said the name does not exist), then a timeout on either (no
/// answer), then SERVFAIL or REFUSED, then any other error; NODATA on every
/// family asked is `dns_no_address`.
pub(crate) fn failure_class(a: FamilyOutcome, aaaa: FamilyOutcome) -> ErrorClass {
    let outcomes = [a, aaaa];
    let any = |wanted: &[FamilyOutcome]| outcomes.iter().any(|o| wanted.contains(o));
    if any(&[FamilyOutcome::NxDomain]) {
        ErrorClass::DnsNxdomain
    } else if any(&[FamilyOutcome::Timeout, FamilyOutcome::Late]) {
        ErrorClass::DnsTimeout
    } else if any(&[FamilyOutcome::ServFail, FamilyOutcome::Refused]) {
        ErrorClass::DnsServfail
    } else if any(&[FamilyOutcome::Error]) {
        ErrorClass::DnsError
    } else {
        ErrorClass::DnsNoAddress
    }
}

#[cfg(test)]
mod tests;
