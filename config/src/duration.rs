//! Humane durations: `"500ms"`, `"15s"`, `"1m30s"`, `"2h"`, `"7d"`.
//!
//! A small grammar parsed by hand so that errors can say exactly what is
//! wrong; no fractions, no bare numbers (a unit is always required, so `30`
//! is never silently seconds or milliseconds).

use std::time::Duration;

/// What a duration string may look like, for error messages.
pub(crate) const VALID: &str = "a duration such as \"500ms\", \"15s\", \"1m30s\", \"2h\" or \"7d\"";

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

/// Parses a duration such as `"1m30s"`: one or more `<integer><unit>` parts,
/// units `ms`, `s`, `m`, `h`, `d`, summed.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut rest = s;
    let mut total_ms: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(DurationError::MissingNumber(rest.to_owned()));
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after.len()
            - after
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        if unit_len == 0 {
            return Err(DurationError::MissingUnit(number.to_owned()));
        }
        let (unit, after) = after.split_at(unit_len);
        let per_unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            other => return Err(DurationError::UnknownUnit(other.to_owned())),
        };
        let n: u64 = number.parse().map_err(|_| DurationError::Overflow)?;
        let part = n.checked_mul(per_unit_ms).ok_or(DurationError::Overflow)?;
        total_ms = total_ms.checked_add(part).ok_or(DurationError::Overflow)?;
        rest = after;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration in the same grammar, largest units first: `1m30s`,
/// `500ms`, `0s`. Sub-millisecond parts are dropped.
pub fn format(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
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
    fn refuses_what_is_ambiguous_or_wrong() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("30"), Err(DurationError::MissingUnit("30".into())));
        assert_eq!(parse("s"), Err(DurationError::MissingNumber("s".into())));
        assert_eq!(parse("1.5s"), Err(DurationError::MissingUnit("1".into())));
        assert_eq!(
            parse("10sec"),
            Err(DurationError::UnknownUnit("sec".into()))
        );
        assert_eq!(parse("1 s"), Err(DurationError::MissingUnit("1".into())));
        assert_eq!(parse("99999999999999999999s"), Err(DurationError::Overflow));
        assert_eq!(
            parse("-1s"),
            Err(DurationError::MissingNumber("-1s".into()))
        );
    }

    #[test]
    fn formats_back_into_the_grammar() {
        for s in ["0s", "500ms", "15s", "1m30s", "2h", "7d", "1d2h3m4s5ms"] {
            let d = parse(s).unwrap();
            assert_eq!(format(d), s);
        }
        assert_eq!(format(Duration::from_secs(60)), "1m");
    }
}
