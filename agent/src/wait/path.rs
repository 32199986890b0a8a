//! jq-style paths into a JSON document, the subset a readiness condition
//! needs: `.`, `.key`, `."any key"`, `.["any key"]`, `[0]`, chained
//! (`.items[0].state`). Evaluated over `serde_json::Value` the way jq does:
//! a key or index that is not there yields `null`.
//!
//! Why not a JSONPath or jq crate: conditions only name one value (no
//! filters, wildcards or functions), which is exactly this grammar; a full
//! query engine would be a large dependency for a dozen lines of walking.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// An object member.
    Key(String),
    /// An array element (0-based).
    Index(usize),
}

/// A parsed path, kept with its source text for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonPath {
    /// The path as written.
    pub(crate) text: String,
    /// Its steps; empty for `.`.
    pub(crate) segments: Vec<Segment>,
}

/// Why a path did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("JSON path {text:?}: {reason} at byte {at}")]
pub struct PathError {
    /// The input.
    pub(crate) text: String,
    /// Where it went wrong.
    pub(crate) at: usize,
    /// What was expected.
    pub(crate) reason: &'static str,
}

impl JsonPath {
    /// Parses a path at the start of `input`; returns it and the rest of
    /// the input (whitespace after the path included).
    pub(crate) fn parse_prefix(input: &str) -> Result<(JsonPath, &str), PathError> {
        let err = |at, reason| PathError {
            text: input.to_owned(),
            at,
            reason,
        };
        let bytes = input.as_bytes();
        if bytes.first() != Some(&b'.') {
            return Err(err(0, "a path starts with '.'"));
        }
        let mut segments = Vec::new();
        let mut i = 0;
        let mut first = true;
        loop {
            match bytes.get(i) {
                Some(b'.') => {
                    i += 1;
                    match bytes.get(i) {
                        Some(b'"') => {
                            let (key, next) = quoted(input, i).ok_or(err(i, "a closed string"))?;
                            segments.push(Segment::Key(key));
                            i = next;
                        }
                        Some(b'[') => {}
                        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                            let start = i;
                            while bytes
                                .get(i)
                                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                            {
                                i += 1;
                            }
                            segments.push(Segment::Key(input[start..i].to_owned()));
                        }
                        // A lone '.' is the whole document.
                        _ if first
                            && bytes.get(i).is_none_or(|c| {
                                c.is_ascii_whitespace() || *c == b'=' || *c == b'!'
                            }) => {}
                        _ => return Err(err(i, "a key, a string or '['")),
                    }
                }
                Some(b'[') => {
                    i += 1;
                    if bytes.get(i) == Some(&b'"') {
                        let (key, next) = quoted(input, i).ok_or(err(i, "a closed string"))?;
                        segments.push(Segment::Key(key));
                        i = next;
                    } else {
                        let start = i;
                        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                            i += 1;
                        }
                        let index = input[start..i]
                            .parse()
                            .map_err(|_| err(start, "an index (0, 1, ...) or a string"))?;
                        segments.push(Segment::Index(index));
                    }
                    if bytes.get(i) != Some(&b']') {
                        return Err(err(i, "']'"));
                    }
                    i += 1;
                }
                _ => break,
            }
            first = false;
        }
        let path = JsonPath {
            text: input[..i].to_owned(),
            segments,
        };
        Ok((path, &input[i..]))
    }

    /// The value at this path, jq style: `null` where the path leads nowhere.
    pub(crate) fn get<'a>(&self, doc: &'a Value) -> &'a Value {
        let mut at = doc;
        for segment in &self.segments {
            let next = match (segment, at) {
                (Segment::Key(k), Value::Object(map)) => map.get(k),
                (Segment::Index(n), Value::Array(items)) => items.get(*n),
                _ => None,
            };
            match next {
                Some(v) => at = v,
                None => return &Value::Null,
            }
        }
        at
    }
}

/// A JSON string starting at byte `at` (a '"'): its value and the index
/// after its closing quote.
fn quoted(input: &str, at: usize) -> Option<(String, usize)> {
    let rest = input.get(at..)?;
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<String>();
    let key = stream.next()?.ok()?;
    Some((key, at + stream.byte_offset()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Vec<Segment> {
        match JsonPath::parse_prefix(s) {
            Ok((p, "")) => p.segments,
            other => panic!("{s:?}: {other:?}"),
        }
    }

    #[test]
    fn grammar() {
        use Segment::{Index, Key};
        assert_eq!(parse("."), vec![]);
        assert_eq!(parse(".status"), vec![Key("status".into())]);
        assert_eq!(
            parse(".items[0].state"),
            vec![Key("items".into()), Index(0), Key("state".into())]
        );
        assert_eq!(
            parse(r#"."a.b".["c d"][12]"#),
            vec![Key("a.b".into()), Key("c d".into()), Index(12)]
        );
        assert_eq!(parse(".[1]"), vec![Index(1)]);
        assert_eq!(
            parse(r#".a["x\"y"]"#),
            vec![Key("a".into()), Key("x\"y".into())]
        );
    }

    #[test]
    fn prefix_leaves_the_rest() {
        let (p, rest) =
            JsonPath::parse_prefix(r#".status == "ok""#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.text, ".status");
        assert_eq!(rest, r#" == "ok""#);
    }

    #[test]
    fn errors_say_where() {
        for bad in [
            "status",
            ".a[",
            ".a[x]",
            ".a[-1]",
            r#"."open"#,
            ".a..b",
            ".1",
        ] {
            assert!(JsonPath::parse_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn missing_is_null_like_jq() {
        let doc = json!({"items": [{"state": "up"}], "n": 3});
        let get = |p: &str| parse_path(p).get(&doc).clone();
        assert_eq!(get(".items[0].state"), json!("up"));
        assert_eq!(get(".items[1].state"), json!(null));
        assert_eq!(get(".n.x"), json!(null));
        assert_eq!(get(".n"), json!(3));
        assert_eq!(get("."), doc);
    }

    fn parse_path(s: &str) -> JsonPath {
        JsonPath::parse_prefix(s)
            .unwrap_or_else(|e| panic!("{e}"))
            .0
    }
}
