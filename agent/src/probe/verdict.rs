//! The verdict: did the check's expectations hold? Expected statuses
//! (default 2xx and 3xx) and an optional body assertion. Pure: a status and
//! a body in, a pass or a failure class out.

use std::ops::RangeInclusive;

use regex::bytes::Regex;
use wire::ErrorClass;

/// What a body must contain.
#[derive(Debug, Clone)]
pub enum BodyAssertion {
    /// A literal substring.
    Contains(String),
    /// A regular expression (matched against the raw bytes).
    Matches(Regex),
}

/// A check's expectations of a response.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// Acceptable status codes.
    pub statuses: Vec<RangeInclusive<u16>>,
    /// What the body must contain, if anything.
    pub body: Option<BodyAssertion>,
}

impl Default for Expectations {
    fn default() -> Self {
        Expectations {
            statuses: vec![200..=399],
            body: None,
        }
    }
}

impl Expectations {
    /// True when the body must be kept for the assertion.
    pub(crate) fn needs_body(&self) -> bool {
        self.body.is_some()
    }

    /// Judges a response: `Ok` when every expectation held, else the class
    /// and a human detail.
    pub(crate) fn judge(&self, status: u16, body: &[u8]) -> Result<(), (ErrorClass, String)> {
        if !self.statuses.iter().any(|r| r.contains(&status)) {
            return Err((
                ErrorClass::StatusCode,
                format!("status {status} not in {}", format_ranges(&self.statuses)),
            ));
        }
        match &self.body {
            None => Ok(()),
            Some(BodyAssertion::Contains(needle)) => {
                if contains(body, needle.as_bytes()) {
                    Ok(())
                } else {
                    Err((
                        ErrorClass::Assertion,
                        format!("body does not contain {needle:?}"),
                    ))
                }
            }
            Some(BodyAssertion::Matches(re)) => {
                if re.is_match(body) {
                    Ok(())
                } else {
                    Err((ErrorClass::Assertion, format!("body does not match /{re}/")))
                }
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn format_ranges(ranges: &[RangeInclusive<u16>]) -> String {
    ranges
        .iter()
        .map(|r| {
            if r.start() == r.end() {
                r.start().to_string()
            } else {
                format!("{}-{}", r.start(), r.end())
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_accepts_2xx_and_3xx_only() {
        let e = Expectations::default();
        assert!(e.judge(200, b"").is_ok());
        assert!(e.judge(302, b"").is_ok());
        assert_eq!(
            e.judge(404, b"").map_err(|(c, _)| c),
            Err(ErrorClass::StatusCode)
        );
        assert_eq!(
            e.judge(199, b"").map_err(|(c, _)| c),
            Err(ErrorClass::StatusCode)
        );
    }

    #[test]
    fn status_is_judged_before_the_body() {
        let e = Expectations {
            statuses: vec![200..=200],
            body: Some(BodyAssertion::Contains("ok".into())),
        };
        assert_eq!(
            e.judge(500, b"ok").map_err(|(c, _)| c),
            Err(ErrorClass::StatusCode)
        );
        assert_eq!(
            e.judge(200, b"nope").map_err(|(c, _)| c),
            Err(ErrorClass::Assertion)
        );
        assert!(e.judge(200, b"all ok here").is_ok());
    }

    #[test]
    fn regex_assertion() {
        let re = Regex::new(r#""status":\s*"ready""#).unwrap_or_else(|e| panic!("{e}"));
        let e = Expectations {
            statuses: vec![200..=299],
            body: Some(BodyAssertion::Matches(re)),
        };
        assert!(e.judge(200, br#"{"status": "ready"}"#).is_ok());
        assert!(e.judge(200, br#"{"status": "starting"}"#).is_err());
    }

    #[test]
    fn detail_names_the_ranges() {
        let e = Expectations {
            statuses: vec![200..=299, 304..=304],
            body: None,
        };
        let detail = e.judge(500, b"").err().map(|(_, d)| d).unwrap_or_default();
        assert_eq!(detail, "status 500 not in 200-299,304");
    }
}
