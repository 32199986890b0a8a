//! What to do after one attempt: done (ready or failed), or try again and
//! after how long. Pure: the attempt's observations and the instants come
//! in; the backoff, Retry-After and circuit breaker of [`crate::retry`]
//! decide the delay, which never runs past the deadline.

use std::time::{Duration, SystemTime};

use hyper::header::{HeaderMap, RETRY_AFTER};
use tokio::time::Instant;
use wire::ErrorClass;

use super::condition::{Conditions, Judgement};
use crate::probe::ProbeReport;
use crate::retry::{Backoff, Breaker, Jitter, clamp_to_deadline, parse_retry_after};

/// Statuses that will not change by waiting, unless `--retry-on` says so.
pub(crate) const PERMANENT_STATUSES: [u16; 3] = [401, 403, 404];
/// Failure classes that will not change by waiting (a certificate problem).
pub(crate) const PERMANENT_CLASSES: [ErrorClass; 3] = [
    ErrorClass::TlsUntrusted,
    ErrorClass::TlsExpired,
    ErrorClass::TlsHostname,
];

/// What `--retry-on` made transient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryOn {
    /// Statuses.
    pub statuses: Vec<u16>,
    /// Failure classes.
    pub classes: Vec<ErrorClass>,
}

/// What one attempt saw: a response, or a failure before one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observed<'a> {
    /// The status, when a response arrived.
    pub(crate) status: Option<u16>,
    /// The failure class, when the probe failed.
    pub(crate) failure: Option<ErrorClass>,
    /// The response headers (empty without a response).
    pub(crate) headers: &'a HeaderMap,
    /// The response body (empty without a response).
    pub(crate) body: &'a [u8],
}

static NO_HEADERS: std::sync::LazyLock<HeaderMap> = std::sync::LazyLock::new(HeaderMap::new);

impl<'a> Observed<'a> {
    /// What a probe report (of a `keep_response` spec) saw.
    pub(crate) fn of(report: &'a ProbeReport) -> Self {
        Observed {
            status: report.status_code,
            failure: report.failure.as_ref().map(|f| f.class),
            headers: report.headers.as_ref().unwrap_or(&NO_HEADERS),
            body: report.body.as_deref().unwrap_or_default(),
        }
    }
}

/// An attempt's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every condition held.
    Ready,
    /// A `--fail-when` held, or the failure is permanent.
    Failed(String),
    /// Not yet; try again.
    Retry {
        /// The first thing that was not right.
        reason: String,
        /// A Retry-After delay (on 429 and 503 only).
        retry_after: Option<Duration>,
        /// The target could not be reached (DNS or connect failed): feeds
        /// the circuit breaker.
        unreachable: bool,
    },
}

/// Judges one attempt. `now` is the wall clock, for a Retry-After date.
pub(crate) fn classify(
    seen: &Observed<'_>,
    conditions: &Conditions,
    retry_on: &RetryOn,
    now: SystemTime,
) -> Verdict {
    if let Some(class) = seen.failure {
        if PERMANENT_CLASSES.contains(&class) && !retry_on.classes.contains(&class) {
            return Verdict::Failed(format!(
                "{} is permanent (--retry-on {} waits through it)",
                class.name(),
                class.name()
            ));
        }
        return Verdict::Retry {
            reason: class.name().to_owned(),
            retry_after: None,
            unreachable: is_unreachable(class),
        };
    }
    let Some(status) = seen.status else {
        // No failure and no status cannot happen; treat it as transient.
        return Verdict::Retry {
            reason: "no response".into(),
            retry_after: None,
            unreachable: false,
        };
    };
    let reason = match conditions.judge(status, seen.headers, seen.body) {
        Judgement::Ready => return Verdict::Ready,
        Judgement::FailWhen(what) => return Verdict::Failed(format!("--fail-when {what}")),
        Judgement::NotYet(reason) => reason,
    };
    if PERMANENT_STATUSES.contains(&status) && !retry_on.statuses.contains(&status) {
        return Verdict::Failed(format!(
            "status {status} is permanent (--retry-on {status} waits through it)"
        ));
    }
    let retry_after = match status {
        429 | 503 => seen
            .headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now).ok()),
        _ => None,
    };
    Verdict::Retry {
        reason,
        retry_after,
        unreachable: false,
    }
}

fn is_unreachable(class: ErrorClass) -> bool {
    use ErrorClass as C;
    matches!(
        class,
        C::DnsNxdomain
            | C::DnsServfail
            | C::DnsTimeout
            | C::DnsNoAddress
            | C::DnsError
            | C::ConnectRefused
            | C::ConnectTimeout
            | C::ConnectUnreachable
            | C::ConnectError
    )
}

/// Why the next attempt waits as long as it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// The jittered backoff.
    Backoff,
    /// The server's Retry-After.
    RetryAfter,
    /// The circuit breaker is open after repeated connection failures.
    Breaker,
    /// Cut short by the deadline.
    Deadline,
}

impl WaitReason {
    /// A short name for output.
    pub fn name(self) -> &'static str {
        match self {
            WaitReason::Backoff => "backoff",
            WaitReason::RetryAfter => "retry-after",
            WaitReason::Breaker => "circuit open",
            WaitReason::Deadline => "deadline",
        }
    }
}

/// Spaces the attempts: backoff with jitter, at least any Retry-After, at
/// least until an open breaker's cool-down ends, never past the deadline.
#[derive(Debug, Clone)]
pub struct Pacer<J> {
    backoff: Backoff,
    breaker: Breaker,
    jitter: J,
    retries: u32,
}

impl<J: Jitter> Pacer<J> {
    /// A pacer with no retries yet.
    pub fn new(backoff: Backoff, breaker: Breaker, jitter: J) -> Self {
        Pacer {
            backoff,
            breaker,
            jitter,
            retries: 0,
        }
    }

    /// The delay before the next attempt, after a `Retry` at `now`.
    pub(crate) fn next(
        &mut self,
        retry_after: Option<Duration>,
        unreachable: bool,
        now: Instant,
        deadline: Instant,
    ) -> (Duration, WaitReason) {
        if unreachable {
            self.breaker.on_failure(now);
        } else {
            self.breaker.on_success();
        }
        let mut delay = (
            self.backoff.delay(self.retries, &mut self.jitter),
            WaitReason::Backoff,
        );
        self.retries = self.retries.saturating_add(1);
        if let Some(after) = retry_after
            && after > delay.0
        {
            delay = (after, WaitReason::RetryAfter);
        }
        let open = self.breaker.ready_at(now).saturating_duration_since(now);
        if open > delay.0 {
            delay = (open, WaitReason::Breaker);
        }
        let clamped = clamp_to_deadline(delay.0, now, deadline);
        if clamped < delay.0 {
            (clamped, WaitReason::Deadline)
        } else {
            delay
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::SplitMix64;
    use crate::wait::condition::JsonCondition;
    use hyper::header::HeaderValue;

    fn seen<'a>(status: u16, headers: &'a HeaderMap, body: &'a [u8]) -> Observed<'a> {
        Observed {
            status: Some(status),
            failure: None,
            headers,
            body,
        }
    }

    fn failed(class: ErrorClass) -> Observed<'static> {
        Observed {
            status: None,
            failure: Some(class),
            headers: &NO_HEADERS,
            body: b"",
        }
    }

    #[test]
    fn permanent_statuses_fail_fast_unless_retried_on() {
        let h = HeaderMap::new();
        let c = Conditions::default();
        let now = SystemTime::now();
        assert!(matches!(
            classify(&seen(404, &h, b""), &c, &RetryOn::default(), now),
            Verdict::Failed(_)
        ));
        let retry = RetryOn {
            statuses: vec![404],
            classes: vec![],
        };
        assert!(matches!(
            classify(&seen(404, &h, b""), &c, &retry, now),
            Verdict::Retry { .. }
        ));
        // Waiting for a 404 (a deletion): ready, not permanent.
        let gone = Conditions {
            statuses: vec![404..=404],
            ..Conditions::default()
        };
        assert_eq!(
            classify(&seen(404, &h, b""), &gone, &RetryOn::default(), now),
            Verdict::Ready
        );
    }

    #[test]
    fn failures_transient_or_permanent() {
        let c = Conditions::default();
        let now = SystemTime::now();
        let r = RetryOn::default();
        assert!(matches!(
            classify(&failed(ErrorClass::ConnectRefused), &c, &r, now),
            Verdict::Retry {
                unreachable: true,
                ..
            }
        ));
        assert!(matches!(
            classify(&failed(ErrorClass::Timeout), &c, &r, now),
            Verdict::Retry {
                unreachable: false,
                ..
            }
        ));
        assert!(matches!(
            classify(&failed(ErrorClass::TlsUntrusted), &c, &r, now),
            Verdict::Failed(_)
        ));
        let r = RetryOn {
            statuses: vec![],
            classes: vec![ErrorClass::TlsUntrusted],
        };
        assert!(matches!(
            classify(&failed(ErrorClass::TlsUntrusted), &c, &r, now),
            Verdict::Retry { .. }
        ));
    }

    #[test]
    fn retry_after_on_429_and_503_only() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let c = Conditions::default();
        let r = RetryOn::default();
        let now = SystemTime::now();
        let after = |status| match classify(&seen(status, &h, b""), &c, &r, now) {
            Verdict::Retry { retry_after, .. } => retry_after,
            other => panic!("{other:?}"),
        };
        assert_eq!(after(503), Some(Duration::from_secs(7)));
        assert_eq!(after(429), Some(Duration::from_secs(7)));
        assert_eq!(after(500), None);
    }

    #[test]
    fn fail_when_beats_ready() {
        let h = HeaderMap::new();
        let c = Conditions {
            fail_when: vec![
                JsonCondition::parse(r#".status == "failed""#).unwrap_or_else(|e| panic!("{e}")),
            ],
            ..Conditions::default()
        };
        let v = classify(
            &seen(200, &h, br#"{"status":"failed"}"#),
            &c,
            &RetryOn::default(),
            SystemTime::now(),
        );
        assert!(matches!(v, Verdict::Failed(_)));
    }

    fn pacer() -> Pacer<SplitMix64> {
        let ms = Duration::from_millis;
        Pacer::new(
            Backoff {
                base: ms(100),
                cap: ms(1000),
                floor: ms(100),
            },
            Breaker::new(3, ms(5000)),
            SplitMix64::new(9),
        )
    }

    #[test]
    fn pacing_grows_and_is_capped() {
        let mut p = pacer();
        let now = Instant::now();
        let deadline = now + Duration::from_secs(3600);
        let delays: Vec<_> = (0..10)
            .map(|_| p.next(None, false, now, deadline).0)
            .collect();
        assert_eq!(delays[0], Duration::from_millis(100));
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_millis(100) && *d <= Duration::from_secs(1)),
            "{delays:?}"
        );
    }

    #[test]
    fn retry_after_is_a_floor_and_the_deadline_a_ceiling() {
        let mut p = pacer();
        let now = Instant::now();
        let deadline = now + Duration::from_secs(60);
        assert_eq!(
            p.next(Some(Duration::from_secs(5)), false, now, deadline),
            (Duration::from_secs(5), WaitReason::RetryAfter)
        );
        assert_eq!(
            p.next(Some(Duration::from_secs(500)), false, now, deadline),
            (Duration::from_secs(60), WaitReason::Deadline)
        );
    }

    #[test]
    fn breaker_lengthens_after_repeated_connection_failures() {
        let mut p = pacer();
        let now = Instant::now();
        let deadline = now + Duration::from_secs(3600);
        assert_eq!(p.next(None, true, now, deadline).1, WaitReason::Backoff);
        assert_eq!(p.next(None, true, now, deadline).1, WaitReason::Backoff);
        assert_eq!(
            p.next(None, true, now, deadline),
            (Duration::from_secs(5), WaitReason::Breaker)
        );
        // A response (even a 503) closes it again.
        assert_eq!(
            p.next(None, false, now + Duration::from_secs(5), deadline)
                .1,
            WaitReason::Backoff
        );
    }
}
