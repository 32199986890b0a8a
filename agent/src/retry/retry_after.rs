//! The `Retry-After` response header (RFC 9110 §10.2.3): delta-seconds or
//! an HTTP-date, turned into a delay from a `now` the caller passes in, and
//! a clamp so that honouring it never runs past the caller's deadline.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// A `Retry-After` value that is neither delta-seconds nor an HTTP-date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Retry-After {0:?} is neither delta-seconds nor an HTTP-date")]
pub(crate) struct RetryAfterError(pub String);

/// How long `value` asks the client to wait, as of `now` (the wall clock:
/// an HTTP-date is wall-clock time). A date in the past means no wait.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Result<Duration, RetryAfterError> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly many digits are still a number: wait "forever", which
        // the deadline clamp then shortens.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Ok(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).map_err(|_| RetryAfterError(value.to_owned()))?;
    Ok(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `delay` from `now`, shortened so it ends no later than `deadline`.
pub(crate) fn clamp_to_deadline(delay: Duration, now: Instant, deadline: Instant) -> Duration {
    delay.min(deadline.saturating_duration_since(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    // Sun, 06 Nov 1994 08:49:37 GMT
    const T: u64 = 784_111_777;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(
            parse_retry_after("120", at(T)),
            Ok(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", at(T)), Ok(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", at(T)),
            Ok(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn http_dates_in_all_three_formats() {
        let now = at(T - 30);
        let want = Ok(Duration::from_secs(30));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            want
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
            want
        );
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", now), want);
    }

    #[test]
    fn a_date_in_the_past_means_now() {
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at(T + 5)),
            Ok(Duration::ZERO)
        );
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in ["", "-1", "1.5", "soon", "Sun, 06 Nov 1994"] {
            assert!(parse_retry_after(bad, at(T)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn clamp_never_passes_the_deadline() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(10);
        let s = Duration::from_secs;
        assert_eq!(clamp_to_deadline(s(3), now, deadline), s(3));
        assert_eq!(clamp_to_deadline(s(30), now, deadline), s(10));
        assert_eq!(clamp_to_deadline(s(3), deadline + s(1), deadline), s(0));
    }
}
