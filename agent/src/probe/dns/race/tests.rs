//! The policy against scripted servers on a simulated clock: each send is
//! answered (or not) after a scripted delay, and the machine's timers are
//! the only other events.

use super::*;

const MS: Duration = Duration::from_millis(1);

fn policy(servers: usize) -> Policy {
    Policy {
        servers,
        timeout: 5000 * MS,
        attempts: 2,
        resolution_delay: 50 * MS,
        prefer: None,
    }
}

/// How a scripted server answers a family: the reply and its delay, or
/// silence.
type Script<'a> = dyn Fn(Family, usize) -> Option<(Reply, Duration)> + 'a;

struct Run {
    done: Result<Use, ErrorClass>,
    at: Duration,
    sends: Vec<(Family, usize, Duration)>,
    resolution: Resolution,
}

fn run(policy: Policy, a: bool, aaaa: bool, script: &Script<'_>) -> Run {
    let mut resolution = Resolution::new(policy, a, aaaa);
    let mut now = Duration::ZERO;
    let mut sends = Vec::new();
    let mut inflight: Vec<(Duration, Family, usize, Reply)> = Vec::new();
    for _ in 0..1000 {
        match resolution.poll(now) {
            Action::Send { family, server } => {
                sends.push((family, server, now));
                if let Some((reply, delay)) = script(family, server) {
                    inflight.push((now + delay, family, server, reply));
                }
            }
            Action::Wait { until } => {
                let next_reply = inflight.iter().map(|r| r.0).min();
                now = match (next_reply, until) {
                    (Some(r), Some(u)) => r.min(u),
                    (Some(r), None) => r,
                    (None, Some(u)) => u,
                    (None, None) => panic!("waits forever at {now:?}: {resolution:?}"),
                };
                let (due, rest): (Vec<_>, Vec<_>) = inflight.into_iter().partition(|r| r.0 <= now);
                inflight = rest;
                for (_, family, server, reply) in due {
                    resolution.on_reply(family, server, reply, now);
                }
            }
            Action::Done(done) => {
                return Run {
                    done,
                    at: now,
                    sends,
                    resolution,
                };
            }
        }
    }
    panic!("no decision: {resolution:?}");
}

fn outcome(run: &Run, family: Family) -> FamilyOutcome {
    run.resolution
        .outcome(family)
        .map_or(FamilyOutcome::Timeout, |o| o.0)
}

const BOTH: Use = Use {
    a: true,
    aaaa: true,
};
const A_ONLY: Use = Use {
    a: true,
    aaaa: false,
};
const AAAA_ONLY: Use = Use {
    a: false,
    aaaa: true,
};

#[test]
fn both_answer_at_once_aaaa_first_goes_at_once() {
    let r = run(policy(1), true, true, &|f, _| match f {
        Family::Aaaa => Some((Reply::Addresses(1), MS)),
        Family::A => Some((Reply::Addresses(2), 2 * MS)),
    });
    assert_eq!(r.done, Ok(AAAA_ONLY));
    assert_eq!(r.at, MS);
    assert_eq!(outcome(&r, Family::A), FamilyOutcome::NotAwaited);
    // Both queries left together.
    assert_eq!(
        r.sends,
        vec![
            (Family::Aaaa, 0, Duration::ZERO),
            (Family::A, 0, Duration::ZERO)
        ]
    );
}

#[test]
fn a_first_then_aaaa_within_the_resolution_delay_uses_both() {
    let r = run(policy(1), true, true, &|f, _| match f {
        Family::A => Some((Reply::Addresses(1), MS)),
        Family::Aaaa => Some((Reply::Addresses(1), 20 * MS)),
    });
    assert_eq!(r.done, Ok(BOTH));
    assert_eq!(r.at, 20 * MS);
}

#[test]
fn silent_aaaa_holds_a_for_the_resolution_delay_only() {
    let r = run(policy(1), true, true, &|f, _| match f {
        Family::A => Some((Reply::Addresses(1), MS)),
        Family::Aaaa => None,
    });
    assert_eq!(r.done, Ok(A_ONLY));
    assert_eq!(r.at, 51 * MS);
    assert_eq!(outcome(&r, Family::Aaaa), FamilyOutcome::Late);
}

#[test]
fn refused_aaaa_is_not_asked_again_and_a_goes_at_once() {
    let r = run(policy(1), true, true, &|f, _| match f {
        Family::A => Some((Reply::Addresses(1), MS)),
        Family::Aaaa => Some((Reply::Refused, MS)),
    });
    assert_eq!(r.done, Ok(A_ONLY));
    assert_eq!(r.at, MS, "one round trip");
    assert_eq!(r.sends.len(), 2, "{:?}", r.sends);
    assert_eq!(outcome(&r, Family::Aaaa), FamilyOutcome::Refused);
}

#[test]
fn negative_aaaa_first_waits_for_a_without_a_delay() {
    let r = run(policy(1), true, true, &|f, _| match f {
        Family::Aaaa => Some((Reply::Addresses(0), MS)),
        Family::A => Some((Reply::Addresses(1), 300 * MS)),
    });
    assert_eq!(r.done, Ok(A_ONLY));
    assert_eq!(r.at, 300 * MS);
    assert_eq!(outcome(&r, Family::Aaaa), FamilyOutcome::NoData);
}

#[test]
fn refusal_moves_to_the_next_server_at_once() {
    let r = run(policy(2), true, true, &|_, server| match server {
        0 => Some((Reply::Refused, MS)),
        _ => Some((Reply::Addresses(1), MS)),
    });
    assert_eq!(r.done, Ok(BOTH));
    assert_eq!(r.at, 2 * MS, "two round trips, no timeout");
    let servers: Vec<usize> = r.sends.iter().map(|s| s.1).collect();
    assert_eq!(servers, vec![0, 0, 1, 1]);
}

#[test]
fn a_server_that_refused_is_not_asked_in_the_next_round() {
    // Server 0 refuses, server 1 is silent: 1 → (timeout) → 1 again.
    let r = run(policy(2), true, false, &|_, server| match server {
        0 => Some((Reply::ServFail, MS)),
        _ => None,
    });
    let servers: Vec<usize> = r.sends.iter().map(|s| s.1).collect();
    assert_eq!(servers, vec![0, 1, 1]);
    assert_eq!(r.done, Err(ErrorClass::DnsTimeout));
    assert_eq!(r.at, MS + 10_000 * MS);
}

#[test]
fn timeouts_follow_timeout_and_attempts() {
    let r = run(policy(2), true, false, &|_, _| None);
    let sends: Vec<(usize, Duration)> = r.sends.iter().map(|s| (s.1, s.2)).collect();
    assert_eq!(
        sends,
        vec![
            (0, Duration::ZERO),
            (1, 5000 * MS),
            (0, 10_000 * MS),
            (1, 15_000 * MS)
        ]
    );
    assert_eq!(r.done, Err(ErrorClass::DnsTimeout));
    assert_eq!(r.at, 20_000 * MS);
}

#[test]
fn a_late_answer_from_an_earlier_server_counts() {
    let r = run(policy(2), true, false, &|_, server| match server {
        0 => Some((Reply::Addresses(1), 5100 * MS)),
        _ => None,
    });
    assert_eq!(r.done, Ok(A_ONLY));
    assert_eq!(r.at, 5100 * MS);
}

#[test]
fn every_server_refusing_is_servfail_after_one_round() {
    let r = run(policy(3), true, true, &|_, _| Some((Reply::Refused, MS)));
    assert_eq!(r.done, Err(ErrorClass::DnsServfail));
    assert_eq!(r.at, 3 * MS);
    assert_eq!(r.sends.len(), 6);
}

#[test]
fn one_family_asked_never_waits_for_the_other() {
    let r = run(policy(1), true, false, &|_, _| {
        Some((Reply::Addresses(1), MS))
    });
    assert_eq!(r.done, Ok(A_ONLY));
    assert_eq!(r.at, MS);
    assert_eq!(outcome(&r, Family::Aaaa), FamilyOutcome::NotAsked);
    let r = run(policy(1), false, true, &|_, _| {
        Some((Reply::Addresses(0), MS))
    });
    assert_eq!(r.done, Err(ErrorClass::DnsNoAddress));
}

#[test]
fn the_failure_class_prefers_an_answer_about_the_name() {
    use FamilyOutcome as O;
    let s = |o| o;
    let cases = [
        (O::NxDomain, O::NxDomain, ErrorClass::DnsNxdomain),
        (O::NxDomain, O::Timeout, ErrorClass::DnsNxdomain),
        (O::NoData, O::NxDomain, ErrorClass::DnsNxdomain),
        (O::Timeout, O::Refused, ErrorClass::DnsTimeout),
        (O::ServFail, O::NoData, ErrorClass::DnsServfail),
        (O::Refused, O::Refused, ErrorClass::DnsServfail),
        (O::Error, O::NoData, ErrorClass::DnsError),
        (O::NoData, O::NoData, ErrorClass::DnsNoAddress),
        (O::NoData, O::NotAsked, ErrorClass::DnsNoAddress),
    ];
    for (a, aaaa, class) in cases {
        assert_eq!(failure_class(s(a), s(aaaa)), class, "{a:?} {aaaa:?}");
        assert_eq!(failure_class(s(aaaa), s(a)), class, "{aaaa:?} {a:?}");
    }
}

#[test]
fn a_family_never_fails_a_probe_the_other_answered() {
    // Every reply (or silence) for AAAA against a positive A, and the
    // reverse: the list always has the positive family, and never later
    // than its answer plus the resolution delay.
    let replies = [
        None,
        Some(Reply::Addresses(0)),
        Some(Reply::NxDomain),
        Some(Reply::Refused),
        Some(Reply::ServFail),
        Some(Reply::Error),
    ];
    for other in replies {
        let r = run(policy(2), true, true, &|f, _| match f {
            Family::A => Some((Reply::Addresses(1), 3 * MS)),
            Family::Aaaa => other.map(|reply| (reply, MS)),
        });
        assert_eq!(r.done.map(|u| u.a), Ok(true), "{other:?}");
        assert!(r.at <= 53 * MS, "{other:?}: {:?}", r.at);
        let r = run(policy(2), true, true, &|f, _| match f {
            Family::Aaaa => Some((Reply::Addresses(1), 3 * MS)),
            Family::A => other.map(|reply| (reply, MS)),
        });
        assert_eq!(r.done.map(|u| u.aaaa), Ok(true), "{other:?}");
        assert!(r.at <= 3 * MS, "{other:?}: {:?}", r.at);
    }
}

#[test]
fn a_not_awaited_can_rejoin_after_aaaa_fixed_the_list() {
    let mut r = Resolution::new(policy(1), true, true);
    assert_eq!(
        r.poll(Duration::ZERO),
        Action::Send {
            family: Family::Aaaa,
            server: 0
        }
    );
    assert_eq!(
        r.poll(Duration::ZERO),
        Action::Send {
            family: Family::A,
            server: 0
        }
    );
    r.on_reply(Family::Aaaa, 0, Reply::Addresses(1), MS);
    assert_eq!(r.poll(MS), Action::Done(Ok(AAAA_ONLY)));
    assert!(r.rejoin());
    assert!(matches!(r.poll(MS), Action::Wait { until: Some(_) }));
    r.on_reply(Family::A, 0, Reply::Addresses(2), 4 * MS);
    assert_eq!(r.poll(4 * MS), Action::Done(Ok(A_ONLY)));
    assert_eq!(
        r.outcome(Family::A).map(|o| o.0),
        Some(FamilyOutcome::Answered { addresses: 2 })
    );
    assert!(!r.rejoin(), "nothing left to wait for");
}

#[test]
fn a_refused_with_aaaa_silent_reports_the_refusal() {
    let mut r = Resolution::new(policy(1), true, true);
    assert!(matches!(r.poll(Duration::ZERO), Action::Send { .. }));
    assert!(matches!(r.poll(Duration::ZERO), Action::Send { .. }));
    assert!(matches!(r.poll(Duration::ZERO), Action::Wait { .. }));
    r.on_reply(Family::A, 0, Reply::Refused, MS);
    assert!(matches!(r.poll(MS), Action::Wait { .. }));
    assert_eq!(
        r.outcome(Family::A).map(|o| o.0),
        Some(FamilyOutcome::Refused)
    );
}

#[test]
fn nxdomain_on_one_family_ends_the_name_after_the_resolution_delay() {
    // A says NXDOMAIN at 1 ms, AAAA is dropped: the next search-list name
    // is tried after the resolution delay, not after AAAA's timeouts on
    // every server (20 s here).
    let r = run(policy(2), true, true, &|f, _| match f {
        Family::A => Some((Reply::NxDomain, MS)),
        Family::Aaaa => None,
    });
    assert_eq!(r.done, Err(ErrorClass::DnsNxdomain));
    assert_eq!(r.at, 51 * MS);
    assert_eq!(outcome(&r, Family::Aaaa), FamilyOutcome::Late);
    let r = run(policy(2), true, true, &|f, _| match f {
        Family::Aaaa => Some((Reply::NxDomain, MS)),
        Family::A => None,
    });
    assert_eq!((r.done, r.at), (Err(ErrorClass::DnsNxdomain), 51 * MS));
    // Both NXDOMAIN: no wait at all.
    let r = run(policy(2), true, true, &|_, _| Some((Reply::NxDomain, MS)));
    assert_eq!((r.done, r.at), (Err(ErrorClass::DnsNxdomain), MS));
    // A server that says NXDOMAIN to AAAA only: A, within the delay, wins.
    let r = run(policy(1), true, true, &|f, _| match f {
        Family::Aaaa => Some((Reply::NxDomain, MS)),
        Family::A => Some((Reply::Addresses(1), 30 * MS)),
    });
    assert_eq!((r.done, r.at), (Ok(A_ONLY), 30 * MS));
}

fn prefer(family: Family) -> Policy {
    Policy {
        prefer: Some(family),
        ..policy(1)
    }
}

#[test]
fn a_preferred_positive_answer_does_not_wait_for_the_other_family() {
    let r = run(prefer(Family::A), true, true, &|f, _| match f {
        Family::A => Some((Reply::Addresses(1), MS)),
        Family::Aaaa => None,
    });
    assert_eq!(r.done, Ok(A_ONLY));
    assert_eq!(r.at, MS);
    assert_eq!(outcome(&r, Family::Aaaa), FamilyOutcome::NotAwaited);
    // Preferred AAAA answering second still wins alone.
    let r = run(prefer(Family::Aaaa), true, true, &|f, _| match f {
        Family::A => Some((Reply::Addresses(1), MS)),
        Family::Aaaa => Some((Reply::Addresses(1), 20 * MS)),
    });
    assert_eq!(r.done, Ok(AAAA_ONLY));
    assert_eq!(r.at, 20 * MS);
}

#[test]
fn the_other_family_waits_for_the_preferred_past_the_resolution_delay() {
    let r = run(prefer(Family::Aaaa), true, true, &|f, _| match f {
        Family::A => Some((Reply::Addresses(1), MS)),
        Family::Aaaa => Some((Reply::Addresses(1), 200 * MS)),
    });
    assert_eq!(r.done, Ok(AAAA_ONLY), "not A after 50 ms");
    assert_eq!(r.at, 200 * MS);
    // The preferred family has none: the other's addresses, once it said so.
    let r = run(prefer(Family::Aaaa), true, true, &|f, _| match f {
        Family::A => Some((Reply::Addresses(1), MS)),
        Family::Aaaa => Some((Reply::Addresses(0), 100 * MS)),
    });
    assert_eq!(r.done, Ok(A_ONLY));
    assert_eq!(r.at, 100 * MS);
    // A silent preferred family holds the other's answer for its timeouts.
    let r = run(prefer(Family::Aaaa), true, true, &|f, _| match f {
        Family::A => Some((Reply::Addresses(1), MS)),
        Family::Aaaa => None,
    });
    assert_eq!(r.done, Ok(A_ONLY));
    assert_eq!(r.at, 10_000 * MS, "two attempts of 5 s");
}

#[test]
fn a_preference_never_rejoins_late_addresses() {
    let mut r = run(prefer(Family::Aaaa), true, true, &|f, _| match f {
        Family::A => None,
        Family::Aaaa => Some((Reply::Addresses(1), MS)),
    });
    assert_eq!(r.done, Ok(AAAA_ONLY));
    assert!(!r.resolution.rejoin());
}
