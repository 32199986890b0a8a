//! Humane durations: `"500ms"`, `"1.5s"`, `"1m30s"`, `"2h"`, `"7d"`.
//!
//! One grammar for the configuration file and the command-line flags: one
//! or more `<number><unit>` parts, summed; a number may have a fraction.
//! A bare number is refused in the file (`30` is never silently seconds or
//! milliseconds); flags in curl's tradition opt in to "a bare number is
//! seconds" with [`BareNumber::Seconds`].

use std::time::Duration;

/// What a duration string may look like, for error messages.
pub const VALID: &str = "a duration such as \"500ms\", \"15s\", \"1m30s\", \"2h\" or \"7d\"";

/// What a number without a unit means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BareNumber {
    /// An error: a unit is required (the configuration file).
    #[default]
    Refused,
    /// Seconds, as curl's `--max-time` and `sonde wait`'s flags take them.
    Seconds,
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string is empty.
    #[error("empty duration")]
    Empty,
    /// A number without a unit after it.
    #[error("`{0}` has no unit")]
    MissingUnit(String),
    /// A unit without a number before it, or text that is neither.
    #[error("expected a number at `{0}`")]
    MissingNumber(String),
    /// A unit sonde does not know.
    #[error("unknown unit `{0}`")]
    UnknownUnit(String),
    /// The total does not fit.
    #[error("duration is too large")]
    Overflow,
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Parses a duration such as `"1m30s"` with a unit required: units `ms`,
/// `s`, `m`, `h`, `d`. Same as [`parse_with`] and [`BareNumber::Refused`].
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    parse_with(text, BareNumber::Refused)
}

/// Parses a duration; `bare` says what a lone number such as `"2"` or
/// `"0.5"` means. Spaces around the whole are ignored, inside it they are not.
pub fn parse_with(text: &str, bare: BareNumber) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut rest = s;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let (number, after) = split_number(rest);
        if number.is_empty() {
            return Err(DurationError::MissingNumber(rest.to_owned()));
        }
        let unit_len = after.len()
            - after
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let (unit, after) = after.split_at(unit_len);
        let per_unit_nanos: u128 = match unit {
            "" if bare == BareNumber::Seconds && number.len() == s.len() => NANOS_PER_SEC,
            "" => return Err(DurationError::MissingUnit(number.to_owned())),
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3_600 * NANOS_PER_SEC,
            "d" => 86_400 * NANOS_PER_SEC,
            other => return Err(DurationError::UnknownUnit(other.to_owned())),
        };
        let part = scaled(number, per_unit_nanos).ok_or(DurationError::Overflow)?;
        total_nanos = total_nanos
            .checked_add(part)
            .ok_or(DurationError::Overflow)?;
        rest = after;
    }
    let secs = u64::try_from(total_nanos / NANOS_PER_SEC).map_err(|_| DurationError::Overflow)?;
    // The remainder is below one second, so it fits.
    let nanos = (total_nanos % NANOS_PER_SEC) as u32;
    Ok(Duration::new(secs, nanos))
}

/// Splits a leading `digits[.digits]` (or `.digits`) off `s`; empty when
/// `s` does not start with a number.
fn split_number(s: &str) -> (&str, &str) {
    let int = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let mut end = int;
    if s[int..].starts_with('.') {
        let frac = s[int + 1..].len()
            - s[int + 1..]
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        if int + frac > 0 {
            end = int + 1 + frac;
        }
    }
    s.split_at(end)
}

/// `number` (digits with an optional fraction) times `per_unit` nanoseconds,
/// exactly; fraction digits past the nanosecond are dropped.
fn scaled(number: &str, per_unit: u128) -> Option<u128> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut total = int.checked_mul(per_unit)?;
    let frac = &frac[..frac.len().min(18)];
    if !frac.is_empty() {
        let numerator: u128 = frac.parse().ok()?;
        let denominator = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
        total = total.checked_add(numerator.checked_mul(per_unit)? / denominator)?;
    }
    Some(total)
}

/// Formats a duration in the same grammar, largest units first: `1m30s`,
/// `500ms`, `1.5ms`, `0s`. Exact: parsing the text gives `d` back.
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    let mut secs = nanos / NANOS_PER_SEC;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400u128), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    let sub = nanos % NANOS_PER_SEC;
    if sub > 0 {
        let (ms, below) = (sub / 1_000_000, sub % 1_000_000);
        if below == 0 {
            out.push_str(&format!("{ms}ms"));
        } else {
            let frac = format!("{below:06}");
            out.push_str(&format!("{ms}.{}ms", frac.trim_end_matches('0')));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit_and_sums() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse(" 1s500ms "), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn fractions_are_exact() {
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0.25m"), Ok(Duration::from_secs(15)));
        assert_eq!(parse(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1.5m30s"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("1.5ms"), Ok(Duration::from_micros(1500)));
    }

    #[test]
    fn bare_numbers_are_seconds_only_when_asked() {
        let secs = |s| parse_with(s, BareNumber::Seconds);
        assert_eq!(secs("2"), Ok(Duration::from_secs(2)));
        assert_eq!(secs("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(secs("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(secs("1m30"), Err(DurationError::MissingUnit("30".into())));
        assert_eq!(parse("30"), Err(DurationError::MissingUnit("30".into())));
        assert_eq!(parse("0.5"), Err(DurationError::MissingUnit("0.5".into())));
    }

    #[test]
    fn refuses_what_is_ambiguous_or_wrong() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("s"), Err(DurationError::MissingNumber("s".into())));
        assert_eq!(
            parse("10sec"),
            Err(DurationError::UnknownUnit("sec".into()))
        );
        assert_eq!(parse("1 s"), Err(DurationError::MissingUnit("1".into())));
        assert_eq!(
            parse("99999999999999999999999d"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse("-1s"),
            Err(DurationError::MissingNumber("-1s".into()))
        );
        for bad in ["", "s", "10x", "-1s", "1m 30s", "abc", ".s", "1..5s"] {
            assert!(parse_with(bad, BareNumber::Seconds).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats_back_into_the_grammar() {
        for s in [
            "0s",
            "500ms",
            "15s",
            "1m30s",
            "2h",
            "7d",
            "1d2h3m4s5ms",
            "1.5ms",
            "0.000001ms",
        ] {
            let d = parse(s).unwrap();
            assert_eq!(format(d), s);
        }
        assert_eq!(format(Duration::from_secs(60)), "1m");
        assert_eq!(format(Duration::from_millis(1500)), "1s500ms");
    }
}
