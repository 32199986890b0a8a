//! Expected HTTP statuses: `200`, a class `"2xx"`, a range `"200-399"`, and
//! for command-line flags a comma-separated list of those (`"2xx,304"`).
//!
//! One grammar and one set of messages for `expect_status` in the file and
//! `sonde probe --expect-status` / `sonde wait --status`; positions and flag
//! names are the caller's to add.

use std::ops::RangeInclusive;

/// What a status entry may look like, for error messages.
pub const VALID: &str =
    "a status code 100-599 such as 200, a class such as \"2xx\", or a range such as \"200-399\"";

/// A status entry that is not a code, class or range within 100-599.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad status {shown}")]
pub struct StatusError {
    /// The entry as written: a bare number, or a quoted string.
    pub shown: String,
}

fn code(s: &str) -> Option<u16> {
    s.trim()
        .parse::<u16>()
        .ok()
        .filter(|c| (100..=599).contains(c))
}

/// One status code given as a number (a TOML integer).
pub fn from_code(n: i64) -> Result<RangeInclusive<u16>, StatusError> {
    u16::try_from(n)
        .ok()
        .filter(|c| (100..=599).contains(c))
        .map(|c| c..=c)
        .ok_or_else(|| StatusError {
            shown: n.to_string(),
        })
}

/// One entry: `"418"`, `"2xx"` (any case), `"200-399"`; spaces around the
/// parts are ignored.
pub fn parse(text: &str) -> Result<RangeInclusive<u16>, StatusError> {
    let bad = || StatusError {
        shown: format!("{text:?}"),
    };
    let lower = text.trim().to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx") {
        return match class.parse::<u16>() {
            Ok(c @ 1..=5) => Ok(c * 100..=c * 100 + 99),
            _ => Err(bad()),
        };
    }
    if let Some((lo, hi)) = lower.split_once('-') {
        return match (code(lo), code(hi)) {
            (Some(lo), Some(hi)) if lo <= hi => Ok(lo..=hi),
            _ => Err(bad()),
        };
    }
    code(&lower).map(|c| c..=c).ok_or_else(bad)
}

/// A comma-separated list of entries, as the command-line flags take them:
/// `"2xx, 304,400-403"`.
pub fn parse_list(text: &str) -> Result<Vec<RangeInclusive<u16>>, StatusError> {
    text.split(',').map(parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_classes_and_ranges() {
        assert_eq!(from_code(204), Ok(204..=204));
        assert_eq!(parse("2xx"), Ok(200..=299));
        assert_eq!(parse("3XX"), Ok(300..=399));
        assert_eq!(parse("200-399"), Ok(200..=399));
        assert_eq!(parse(" 418 "), Ok(418..=418));
        for bad in [
            "6xx", "0xx", "7xx", "399-200", "300-200", "200-600", "abc", "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            from_code(99).map_err(|e| e.to_string()),
            Err("bad status 99".into())
        );
        assert_eq!(
            parse("6xx").map_err(|e| e.to_string()),
            Err("bad status \"6xx\"".into())
        );
    }

    #[test]
    fn lists_are_comma_separated() {
        assert_eq!(
            parse_list("2xx, 304,400-403"),
            Ok(vec![200..=299, 304..=304, 400..=403])
        );
        assert!(parse_list("2xx,").is_err());
        assert!(parse_list("").is_err());
    }
}
