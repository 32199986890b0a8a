//! Phase bookkeeping: the instants a probe records, turned into contiguous
//! phase durations.
//!
//! A probe only ever takes a timestamp at a phase *boundary*; the time
//! between two boundaries belongs to the later phase, so the phases sum to
//! the time to first byte by construction (dn+cn+tl+ft on the wire, where a
//! proxy's CONNECT exchange is folded into cn). This module is pure: instants in,
//! durations out, no clock reads, so it is tested without sockets.

use std::time::{Duration, Instant};

/// The phases of a probe, in wire order. `Body` is the transfer after the
/// first response byte; it has no field of its own (it is rt minus the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Name resolution.
    Dns,
    /// TCP connect (to the proxy, when there is one).
    Connect,
    /// The proxy's CONNECT exchange: from the connect boundary to the end
    /// of the proxy's 2xx head (https through a proxy only).
    Proxy,
    /// TLS handshake.
    Tls,
    /// Connection ready to the first response byte.
    Ttfb,
    /// First response byte to the last body byte.
    Body,
}

impl Phase {
    const TIMED: [Phase; 5] = [
        Phase::Dns,
        Phase::Connect,
        Phase::Proxy,
        Phase::Tls,
        Phase::Ttfb,
    ];
    const ALL: [Phase; 6] = [
        Phase::Dns,
        Phase::Connect,
        Phase::Proxy,
        Phase::Tls,
        Phase::Ttfb,
        Phase::Body,
    ];

    /// The short lowercase name used in output and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Dns => "dns",
            Phase::Connect => "connect",
            Phase::Proxy => "proxy",
            Phase::Tls => "tls",
            Phase::Ttfb => "ttfb",
            Phase::Body => "body",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The boundaries one probe recorded. `start` is taken just before the first
/// phase's first packet leaves; each phase that began is marked with
/// [`PhaseClock::begin`] (no clock read) and, if it completed, its end instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PhaseClock {
    start: Instant,
    began: [bool; 6],
    ended: [Option<Instant>; 6],
}

impl PhaseClock {
    /// A clock whose probe started at `start`.
    pub(crate) fn new(start: Instant) -> Self {
        PhaseClock {
            start,
            began: [false; 6],
            ended: [None; 6],
        }
    }

    /// The instant the probe started.
    pub(crate) fn start(&self) -> Instant {
        self.start
    }

    /// Marks `phase` as begun. Takes no timestamp: its start is the previous
    /// boundary.
    pub(crate) fn begin(&mut self, phase: Phase) {
        self.began[phase.index()] = true;
    }

    /// Marks `phase` as ended at `at`.
    pub(crate) fn end(&mut self, phase: Phase, at: Instant) {
        self.began[phase.index()] = true;
        self.ended[phase.index()] = Some(at);
    }

    /// The phase that began and has not ended, if any: where a failure or
    /// an expired deadline happened.
    pub(crate) fn open_phase(&self) -> Option<Phase> {
        Phase::ALL
            .into_iter()
            .find(|p| self.began[p.index()] && self.ended[p.index()].is_none())
    }

    /// The contiguous durations, with the probe finishing (last body byte,
    /// or failure) at `finish`. A phase that began but did not end runs to
    /// `finish`; a phase that never began is `None`; phases after an open
    /// one are `None`.
    pub(crate) fn timings(&self, finish: Instant) -> Timings {
        let mut phases = [None; 5];
        let mut boundary = self.start;
        for phase in Phase::TIMED {
            let i = phase.index();
            if !self.began[i] {
                continue;
            }
            let end = self.ended[i].unwrap_or(finish).min(finish).max(boundary);
            phases[i] = Some(end - boundary);
            boundary = end;
            if self.ended[i].is_none() {
                break;
            }
        }
        Timings {
            dns: phases[0],
            connect: phases[1],
            proxy: phases[2],
            tls: phases[3],
            ttfb: phases[4],
            total: finish.saturating_duration_since(self.start),
        }
    }
}

/// The phase durations of one probe (or one redirect hop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timings {
    /// DNS resolution; `None` when no lookup was made (IP literal, --resolve).
    pub dns: Option<Duration>,
    /// TCP connect; `None` when no connection was attempted.
    pub connect: Option<Duration>,
    /// The proxy's CONNECT exchange; `None` without a tunnel.
    pub proxy: Option<Duration>,
    /// TLS handshake; `None` for plain HTTP or when no handshake started.
    pub tls: Option<Duration>,
    /// Connection ready to the first response byte; `None` when no request was sent.
    pub ttfb: Option<Duration>,
    /// Probe start to the last body byte, or to the failure.
    pub total: Duration,
}

impl Timings {
    /// The phases and the total in whole units of `unit`, rounded to the
    /// nearest unit on the cumulative boundaries (not per phase), so the
    /// rounded phases still sum to no more than the rounded total.
    pub fn quantized(&self, unit: Duration) -> QuantizedTimings {
        let unit_ns = unit.as_nanos().max(1);
        let round = |d: Duration| -> u64 {
            let q = (d.as_nanos() + unit_ns / 2) / unit_ns;
            u64::try_from(q).unwrap_or(u64::MAX)
        };
        let mut cumulative = Duration::ZERO;
        let mut previous = 0u64;
        let mut step = |phase: Option<Duration>| {
            phase.map(|d| {
                cumulative += d;
                let boundary = round(cumulative);
                let out = boundary.saturating_sub(previous);
                previous = boundary;
                out
            })
        };
        let dns = step(self.dns);
        let connect = step(self.connect);
        let proxy = step(self.proxy);
        let tls = step(self.tls);
        let ttfb = step(self.ttfb);
        QuantizedTimings {
            dns,
            connect,
            proxy,
            tls,
            ttfb,
            total: round(self.total).max(previous),
        }
    }

    /// Time to first byte: the sum of the phases that ran.
    pub fn to_first_byte(&self) -> Duration {
        [self.dns, self.connect, self.proxy, self.tls, self.ttfb]
            .into_iter()
            .flatten()
            .sum()
    }
}

/// [`Timings`] in whole units (milliseconds for the wire, microseconds for JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuantizedTimings {
    /// DNS resolution.
    pub dns: Option<u64>,
    /// TCP connect.
    pub connect: Option<u64>,
    /// The proxy's CONNECT exchange.
    pub proxy: Option<u64>,
    /// TLS handshake.
    pub tls: Option<u64>,
    /// Time to first byte.
    pub ttfb: Option<u64>,
    /// Total.
    pub total: u64,
}

impl QuantizedTimings {
    /// The wire record's `cn`: the connect and the proxy's CONNECT exchange
    /// together (the record has no proxy field), so dn+cn+tl+ft stays the
    /// time to first byte. Rounded on boundaries like the rest.
    pub fn connect_through_proxy(&self) -> Option<u64> {
        match (self.connect, self.proxy) {
            (Some(c), Some(p)) => Some(c + p),
            (c, _) => c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn complete_https_probe_is_contiguous() {
        let t0 = Instant::now();
        let mut clock = PhaseClock::new(t0);
        clock.end(Phase::Dns, t0 + ms(12));
        clock.end(Phase::Connect, t0 + ms(32));
        clock.end(Phase::Tls, t0 + ms(57));
        clock.end(Phase::Ttfb, t0 + ms(137));
        let t = clock.timings(t0 + ms(250));
        assert_eq!(t.dns, Some(ms(12)));
        assert_eq!(t.connect, Some(ms(20)));
        assert_eq!(t.tls, Some(ms(25)));
        assert_eq!(t.ttfb, Some(ms(80)));
        assert_eq!(t.total, ms(250));
        assert_eq!(t.to_first_byte(), ms(137));
        assert_eq!(clock.open_phase(), None);
    }

    #[test]
    fn skipped_phase_gives_its_time_to_the_next() {
        // IP literal over plain HTTP: no DNS, no TLS.
        let t0 = Instant::now();
        let mut clock = PhaseClock::new(t0);
        clock.end(Phase::Connect, t0 + ms(3));
        clock.end(Phase::Ttfb, t0 + ms(10));
        let t = clock.timings(t0 + ms(11));
        assert_eq!(t.dns, None);
        assert_eq!(t.connect, Some(ms(3)));
        assert_eq!(t.tls, None);
        assert_eq!(t.ttfb, Some(ms(7)));
    }

    #[test]
    fn failed_phase_runs_to_the_failure_and_later_phases_are_absent() {
        let t0 = Instant::now();
        let mut clock = PhaseClock::new(t0);
        clock.end(Phase::Dns, t0 + ms(5));
        clock.begin(Phase::Connect);
        assert_eq!(clock.open_phase(), Some(Phase::Connect));
        let t = clock.timings(t0 + ms(1005));
        assert_eq!(t.dns, Some(ms(5)));
        assert_eq!(t.connect, Some(ms(1000)));
        assert_eq!(t.tls, None);
        assert_eq!(t.ttfb, None);
        assert_eq!(t.total, ms(1005));
    }

    #[test]
    fn body_is_the_open_phase_after_first_byte() {
        let t0 = Instant::now();
        let mut clock = PhaseClock::new(t0);
        clock.end(Phase::Connect, t0 + ms(1));
        clock.end(Phase::Ttfb, t0 + ms(2));
        clock.begin(Phase::Body);
        assert_eq!(clock.open_phase(), Some(Phase::Body));
    }

    #[test]
    fn rounding_keeps_phases_within_total() {
        // Five phases of 0.5 ms each would round up to 1 ms each if rounded
        // one by one (sum 5 > total 3).
        let half = Duration::from_micros(500);
        let t = Timings {
            dns: Some(half),
            connect: Some(half),
            proxy: Some(half),
            tls: Some(half),
            ttfb: Some(half),
            total: Duration::from_micros(2500),
        };
        let q = t.quantized(ms(1));
        let sum: u64 = [q.dns, q.connect, q.proxy, q.tls, q.ttfb]
            .into_iter()
            .flatten()
            .sum();
        assert!(sum <= q.total, "{q:?}");
        assert_eq!(q.total, 3);
        assert_eq!(sum, 3);
    }

    #[test]
    fn microsecond_quantization_keeps_precision() {
        let t = Timings {
            dns: None,
            connect: Some(Duration::from_nanos(123_456)),
            proxy: None,
            tls: None,
            ttfb: Some(Duration::from_nanos(1_000_400)),
            total: Duration::from_nanos(2_000_000),
        };
        let q = t.quantized(Duration::from_micros(1));
        assert_eq!(q.connect, Some(123));
        // Boundaries round, not phases: 123.456 -> 123, 1123.856 -> 1124.
        assert_eq!(q.ttfb, Some(1001));
        assert_eq!(q.total, 2000);
    }

    #[test]
    fn finish_before_a_recorded_end_is_clamped() {
        let t0 = Instant::now();
        let mut clock = PhaseClock::new(t0);
        clock.end(Phase::Connect, t0 + ms(5));
        let t = clock.timings(t0 + ms(4));
        assert!(t.to_first_byte() <= t.total);
    }

    #[test]
    fn the_proxy_phase_sits_between_connect_and_tls() {
        let t0 = Instant::now();
        let mut clock = PhaseClock::new(t0);
        clock.end(Phase::Dns, t0 + ms(2));
        clock.end(Phase::Connect, t0 + ms(3));
        clock.end(Phase::Proxy, t0 + ms(53));
        clock.end(Phase::Tls, t0 + ms(60));
        clock.end(Phase::Ttfb, t0 + ms(70));
        let t = clock.timings(t0 + ms(75));
        assert_eq!(t.connect, Some(ms(1)));
        assert_eq!(t.proxy, Some(ms(50)));
        assert_eq!(t.tls, Some(ms(7)));
        assert_eq!(t.ttfb, Some(ms(10)));
        assert_eq!(t.to_first_byte(), ms(70));
        let q = t.quantized(ms(1));
        assert_eq!(q.proxy, Some(50));
        // The record's cn carries the tunnel, so dn+cn+tl+ft is ttfb.
        assert_eq!(q.connect_through_proxy(), Some(51));
        let wire: u64 = [q.dns, q.connect_through_proxy(), q.tls, q.ttfb]
            .into_iter()
            .flatten()
            .sum();
        assert_eq!(wire, 70);
    }

    #[test]
    fn a_tunnel_that_fails_is_open_in_the_proxy_phase() {
        let t0 = Instant::now();
        let mut clock = PhaseClock::new(t0);
        clock.end(Phase::Connect, t0 + ms(1));
        clock.begin(Phase::Proxy);
        assert_eq!(clock.open_phase(), Some(Phase::Proxy));
        let t = clock.timings(t0 + ms(30));
        assert_eq!(t.proxy, Some(ms(29)));
        assert_eq!(t.tls, None);
        assert_eq!(t.ttfb, None);
        // Without a tunnel, cn is the connect alone.
        let direct = Timings {
            connect: Some(ms(4)),
            ..Timings::default()
        };
        assert_eq!(direct.quantized(ms(1)).connect_through_proxy(), Some(4));
    }
}
