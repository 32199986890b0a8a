//! What "ready" means for `sonde wait`: conditions on one response, all of
//! which must hold, and the `--fail-when` conditions that end the wait as
//! failed. Pure: parsed from strings, evaluated on a status, headers and a
//! body.

use std::fmt;
use std::ops::RangeInclusive;

use hyper::header::{HeaderMap, HeaderName};
use regex::Regex;
use serde_json::Value;

use super::path::{JsonPath, PathError};

/// Why a condition did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    /// The path part.
    #[error(transparent)]
    Path(#[from] PathError),
    /// No `==` or `!=` after the path.
    #[error("{0:?}: expected PATH == VALUE or PATH != VALUE")]
    Operator(String),
    /// The value is not JSON.
    #[error("{input:?}: the value is not JSON ({reason}); quote strings: \"ready\"")]
    Value {
        /// The condition.
        input: String,
        /// serde_json's message.
        reason: String,
    },
    /// `Name: regex` without a colon or with a bad name.
    #[error("{0:?}: expected \"Name: regex\"")]
    Header(String),
    /// A regular expression that does not compile.
    #[error("{input:?}: {reason}")]
    Regex {
        /// The expression.
        input: String,
        /// regex's message.
        reason: String,
    },
}

/// `PATH == VALUE` or `PATH != VALUE` over a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonCondition {
    /// Where to look.
    pub(crate) path: JsonPath,
    /// `==` (true) or `!=` (false).
    pub(crate) equals: bool,
    /// What to compare with.
    pub(crate) value: Value,
}

impl JsonCondition {
    /// Parses `.a.b[0] == "x"`; the value is JSON (`"text"`, `3`, `true`, `null`, ...).
    pub fn parse(input: &str) -> Result<JsonCondition, ConditionError> {
        let (path, rest) = JsonPath::parse_prefix(input.trim_start())?;
        let rest = rest.trim_start();
        let (equals, rest) = match (rest.strip_prefix("=="), rest.strip_prefix("!=")) {
            (Some(r), _) => (true, r),
            (_, Some(r)) => (false, r),
            _ => return Err(ConditionError::Operator(input.to_owned())),
        };
        let value = serde_json::from_str(rest.trim()).map_err(|e| ConditionError::Value {
            input: input.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(JsonCondition {
            path,
            equals,
            value,
        })
    }

    /// Whether it holds on `doc`; numbers compare by value (`3 == 3.0`).
    pub(crate) fn holds(&self, doc: &Value) -> bool {
        let found = self.path.get(doc);
        let same = match (found, &self.value) {
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (a, b) => a == b,
        };
        same == self.equals
    }
}

impl fmt::Display for JsonCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = if self.equals { "==" } else { "!=" };
        write!(f, "{} {op} {}", self.path.text, self.value)
    }
}

/// `Name: regex`: some value of the header matches.
#[derive(Debug, Clone)]
pub struct HeaderCondition {
    /// The header.
    pub name: HeaderName,
    /// What one of its values must match.
    pub(crate) pattern: Regex,
}

impl HeaderCondition {
    /// Parses `Name: regex` (whitespace around the regex is trimmed).
    pub fn parse(input: &str) -> Result<HeaderCondition, ConditionError> {
        let (name, re) = input
            .split_once(':')
            .ok_or_else(|| ConditionError::Header(input.to_owned()))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| ConditionError::Header(input.to_owned()))?;
        let pattern = Regex::new(re.trim()).map_err(|e| ConditionError::Regex {
            input: re.trim().to_owned(),
            reason: e.to_string(),
        })?;
        Ok(HeaderCondition { name, pattern })
    }

    fn holds(&self, headers: &HeaderMap) -> bool {
        headers.get_all(&self.name).iter().any(|v| {
            self.pattern
                .is_match(&String::from_utf8_lossy(v.as_bytes()))
        })
    }
}

/// What the body must contain.
#[derive(Debug, Clone)]
pub enum BodyCondition {
    /// A literal substring.
    Contains(String),
    /// A regular expression over the body (as UTF-8, lossily).
    Matches(Regex),
}

/// The conditions of one wait.
#[derive(Debug, Clone)]
pub struct Conditions {
    /// Acceptable statuses (default 2xx).
    pub statuses: Vec<RangeInclusive<u16>>,
    /// Body conditions, all of which must hold.
    pub body: Vec<BodyCondition>,
    /// JSON conditions, all of which must hold.
    pub json: Vec<JsonCondition>,
    /// Header conditions, all of which must hold.
    pub headers: Vec<HeaderCondition>,
    /// Any of these holding ends the wait as failed.
    pub fail_when: Vec<JsonCondition>,
}

impl Default for Conditions {
    fn default() -> Self {
        Conditions {
            statuses: vec![200..=299],
            body: Vec::new(),
            json: Vec::new(),
            headers: Vec::new(),
            fail_when: Vec::new(),
        }
    }
}

/// One response judged against the conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Every condition held.
    Ready,
    /// A `--fail-when` condition held (its text).
    FailWhen(String),
    /// Not yet: the first condition that did not hold.
    NotYet(String),
}

impl Conditions {
    /// Judges one response. `--fail-when` is looked at first: a failed
    /// deploy should not pass for ready because its status is 200.
    pub(crate) fn judge(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> Judgement {
        let doc = if self.json.is_empty() && self.fail_when.is_empty() {
            None
        } else {
            serde_json::from_slice::<Value>(body).ok()
        };
        if let Some(doc) = &doc
            && let Some(c) = self.fail_when.iter().find(|c| c.holds(doc))
        {
            return Judgement::FailWhen(c.to_string());
        }
        if !self.statuses.iter().any(|r| r.contains(&status)) {
            return Judgement::NotYet(format!("status {status}"));
        }
        let text = String::from_utf8_lossy(body);
        for c in &self.body {
            match c {
                BodyCondition::Contains(s) if !text.contains(s.as_str()) => {
                    return Judgement::NotYet(format!("body lacks {s:?}"));
                }
                BodyCondition::Matches(re) if !re.is_match(&text) => {
                    return Judgement::NotYet(format!("body does not match /{re}/"));
                }
                _ => {}
            }
        }
        for c in &self.headers {
            if !c.holds(headers) {
                return Judgement::NotYet(format!("{}: not /{}/", c.name, c.pattern));
            }
        }
        if !self.json.is_empty() {
            let Some(doc) = &doc else {
                return Judgement::NotYet("body is not JSON".into());
            };
            if let Some(c) = self.json.iter().find(|c| !c.holds(doc)) {
                return Judgement::NotYet(format!("not {c} (is {})", c.path.get(doc)));
            }
        }
        Judgement::Ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(s: &str) -> JsonCondition {
        JsonCondition::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn json_conditions_parse_and_hold() {
        let doc = json!({"status": "completed", "replicas": 3, "ok": true, "gone": null});
        assert!(cond(r#".status == "completed""#).holds(&doc));
        assert!(!cond(r#".status != "completed""#).holds(&doc));
        assert!(cond(".replicas == 3.0").holds(&doc));
        assert!(cond(".ok==true").holds(&doc));
        assert!(cond(".gone == null").holds(&doc));
        assert!(cond(".missing == null").holds(&doc));
        assert!(cond(r#".missing != "x""#).holds(&doc));
        assert_eq!(
            cond(r#".status == "completed""#).to_string(),
            r#".status == "completed""#
        );
    }

    #[test]
    fn json_condition_errors() {
        assert!(matches!(
            JsonCondition::parse(".a = 1"),
            Err(ConditionError::Operator(_))
        ));
        assert!(matches!(
            JsonCondition::parse(".a == ready"),
            Err(ConditionError::Value { .. })
        ));
        assert!(matches!(
            JsonCondition::parse("a == 1"),
            Err(ConditionError::Path(_))
        ));
    }

    #[test]
    fn all_must_hold_and_fail_when_comes_first() {
        let mut c = Conditions {
            json: vec![cond(r#".status == "completed""#)],
            fail_when: vec![cond(r#".status == "failed""#)],
            ..Conditions::default()
        };
        let h = HeaderMap::new();
        assert_eq!(
            c.judge(200, &h, br#"{"status":"completed"}"#),
            Judgement::Ready
        );
        assert!(matches!(
            c.judge(200, &h, br#"{"status":"running"}"#),
            Judgement::NotYet(_)
        ));
        assert!(matches!(
            c.judge(503, &h, br#"{"status":"completed"}"#),
            Judgement::NotYet(_)
        ));
        assert!(matches!(c.judge(200, &h, b"<html>"), Judgement::NotYet(_)));
        assert_eq!(
            c.judge(500, &h, br#"{"status":"failed"}"#),
            Judgement::FailWhen(r#".status == "failed""#.into())
        );
        c.body.push(BodyCondition::Contains("completed".into()));
        c.headers
            .push(HeaderCondition::parse("X-Version: ^2\\.").unwrap_or_else(|e| panic!("{e}")));
        let mut h = HeaderMap::new();
        assert!(matches!(
            c.judge(200, &h, br#"{"status":"completed"}"#),
            Judgement::NotYet(_)
        ));
        h.insert("x-version", hyper::header::HeaderValue::from_static("2.1"));
        assert_eq!(
            c.judge(200, &h, br#"{"status":"completed"}"#),
            Judgement::Ready
        );
    }

    #[test]
    fn body_regex() {
        let c = Conditions {
            body: vec![BodyCondition::Matches(
                Regex::new("v[0-9]+").unwrap_or_else(|e| panic!("{e}")),
            )],
            ..Conditions::default()
        };
        assert_eq!(
            c.judge(200, &HeaderMap::new(), b"build v42"),
            Judgement::Ready
        );
        assert!(matches!(
            c.judge(200, &HeaderMap::new(), b"build"),
            Judgement::NotYet(_)
        ));
    }
}
