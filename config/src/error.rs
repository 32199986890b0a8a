//! Configuration errors: what went wrong, where (file, line, column), under
//! which key, and what would have been valid.
//!
//! Positions are byte spans while validating; they become 1-based line and
//! column (counted in characters) only when an error leaves the crate.

use std::fmt;
use std::ops::Range;

/// One problem in a configuration file: sonde.toml's, or another reader's
/// built on this crate (gateway.toml's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the error is in, as given to [`crate::load`] or [`crate::parse`].
    pub origin: String,
    /// 1-based line of the offending key or value; 0 when the reader knows
    /// only the key (then the error prints as `ORIGIN: KEY: message`).
    pub line: usize,
    /// 1-based column, in characters; 0 with `line`.
    pub column: usize,
    /// Key path, such as `check["api"].interval` or `sinks.file.fsync`.
    pub key: String,
    /// What is wrong, and what would be valid.
    pub kind: ErrorKind,
}

impl ConfigError {
    /// An error at byte `offset` of `text`, placed as every error of this
    /// crate is (1-based line, column in characters).
    pub fn at_offset(
        text: &str,
        origin: &str,
        offset: usize,
        key: impl Into<String>,
        kind: ErrorKind,
    ) -> Self {
        let (line, column) = LineIndex::new(text).position(offset);
        ConfigError {
            origin: origin.to_owned(),
            line,
            column,
            key: key.into(),
            kind,
        }
    }

    /// An error known only by its key, from a reader without positions.
    pub fn at_key(origin: &str, key: impl Into<String>, kind: ErrorKind) -> Self {
        ConfigError {
            origin: origin.to_owned(),
            line: 0,
            column: 0,
            key: key.into(),
            kind,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: ", self.origin)?;
        } else {
            write!(f, "{}:{}:{}: ", self.origin, self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for ConfigError {}

/// The failures a configuration can have. Each message ends with what would
/// have been valid, in parentheses, where there is something useful to say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The file is not TOML.
    #[error("{message}")]
    Syntax {
        /// The TOML parser's description.
        message: String,
    },
    /// A key this schema does not know (often a typo).
    #[error("unknown key `{key}` (valid: {valid})")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The keys allowed at this place.
        valid: String,
    },
    /// A required key is absent.
    #[error("missing required key `{key}`")]
    MissingKey {
        /// The key that must be present.
        key: String,
    },
    /// A value has the wrong TOML type, or is out of the allowed set.
    #[error("{message} (valid: {valid})")]
    Invalid {
        /// What is wrong with the value.
        message: String,
        /// What would be accepted.
        valid: String,
    },
    /// Two checks (or gateways) share a name.
    #[error(
        "duplicate {what} name `{name}`, first used on line {first_line} (valid: a name not used before)"
    )]
    Duplicate {
        /// `check` or `gateway`.
        what: &'static str,
        /// The name used twice.
        name: String,
        /// Line of its first use.
        first_line: usize,
    },
    /// A check interval below one second.
    #[error("interval {interval} is too short (valid: 1s or more)")]
    IntervalTooShort {
        /// The interval as written.
        interval: String,
    },
    /// A timeout that would let probes of one check overlap.
    #[error(
        "timeout {timeout} is not below the interval {interval}{note} (valid: a timeout shorter than the interval)"
    )]
    TimeoutNotBelowInterval {
        /// The timeout, normalised.
        timeout: String,
        /// The interval, normalised.
        interval: String,
        /// Where the values came from, e.g. " (interval set in [defaults] on line 4)".
        note: String,
    },
    /// A URL that does not parse or that sonde cannot probe.
    #[error("bad URL `{url}`: {reason} (valid: {valid})")]
    BadUrl {
        /// The URL as written.
        url: String,
        /// Why it is refused.
        reason: String,
        /// What would be accepted.
        valid: String,
    },
    /// An HTTP method that is not a token.
    #[error(
        "bad method `{method}` (valid: an HTTP method such as GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH)"
    )]
    BadMethod {
        /// The method as written.
        method: String,
    },
    /// A `body_matches` pattern the regex crate rejects.
    #[error("bad regular expression: {message} (valid: regex crate syntax)")]
    BadRegex {
        /// The regex crate's explanation, on one line.
        message: String,
    },
    /// A file the configuration points at cannot be read.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The path as written.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// A file was read but does not hold what it should.
    #[error("{path} {problem} (valid: {valid})")]
    BadFile {
        /// The path as written.
        path: String,
        /// What is wrong with its contents.
        problem: String,
        /// What it should hold.
        valid: String,
    },
    /// A secret names an environment variable that is not set (or is empty).
    #[error(
        "environment variable {var} is {state} (valid: set it in the agent's environment, or use {{ file = \"/path\" }})"
    )]
    SecretUnset {
        /// The variable's name.
        var: String,
        /// `not set`, `empty` or `not valid UTF-8`.
        state: &'static str,
    },
    /// A value that cannot be used, said in the reader's own words (for
    /// readers whose messages carry their own hint).
    #[error("{message}")]
    Unusable {
        /// What is wrong.
        message: String,
    },
    /// No sink is enabled, so every record would be thrown away.
    #[error(
        "no sink is enabled, results would be discarded (valid: enable sinks.file, sinks.stdout or add a [[sinks.gateway]])"
    )]
    NoSink,
    /// No check is configured, or every one has `enabled = false`: an
    /// agent started from it would probe nothing.
    #[error(
        "no enabled check, nothing would be probed (valid: at least one [[check]] with a name and url, not enabled = false)"
    )]
    NoEnabledChecks,
}

/// Every error found in one configuration, sorted by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// The errors, sorted by line and column.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// How many errors there are (never zero).
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false: a `ConfigErrors` holds at least one error.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// One error not tied to a position in the file (e.g. the file itself is
    /// unreadable).
    pub(crate) fn whole_file(origin: &str, kind: ErrorKind) -> Self {
        ConfigErrors {
            errors: vec![ConfigError {
                origin: origin.to_owned(),
                line: 1,
                column: 1,
                key: String::new(),
                kind,
            }],
        }
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors {
            errors: vec![error],
        }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// An error still holding its byte span; [`Collector::finish`] turns spans into
/// lines and columns.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub span: Range<usize>,
    pub key: String,
    pub kind: ErrorKind,
}

/// Gathers errors during both stages so that one run reports all of them.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    pending: Vec<Pending>,
}

impl Collector {
    pub fn push(&mut self, span: Range<usize>, key: impl Into<String>, kind: ErrorKind) {
        self.pending.push(Pending {
            span,
            key: key.into(),
            kind,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Sort by position and attach file, line and column.
    pub fn finish(self, text: &str, origin: &str) -> ConfigErrors {
        let index = LineIndex::new(text);
        let mut errors: Vec<ConfigError> = self
            .pending
            .into_iter()
            .map(|p| {
                let (line, column) = index.position(p.span.start);
                ConfigError {
                    origin: origin.to_owned(),
                    line,
                    column,
                    key: p.key,
                    kind: p.kind,
                }
            })
            .collect();
        errors.sort_by_cached_key(|e| (e.line, e.column, e.key.clone(), e.kind.to_string()));
        errors.dedup();
        ConfigErrors { errors }
    }
}

/// Maps byte offsets to 1-based (line, column) pairs.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        self.position(offset).0
    }

    /// 1-based line and character column of a byte offset; offsets past the
    /// end or inside a character are clamped.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..)
            .unwrap_or("")
            .char_indices()
            .take_while(|(i, _)| start + i < offset)
            .count()
            + 1;
        (line, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\"\n\nz";
        let ix = LineIndex::new(text);
        assert_eq!(ix.position(0), (1, 1));
        assert_eq!(ix.position(4), (1, 5));
        assert_eq!(ix.position(6), (2, 1));
        // 'é' is two bytes; the '=' after "bé " is column 4.
        let eq = text.find("= \"x").unwrap();
        assert_eq!(ix.position(eq), (2, 4));
        assert_eq!(ix.position(text.len()), (4, 2));
        assert_eq!(ix.position(text.len() + 10), (4, 2));
    }

    #[test]
    fn errors_from_other_readers_print_with_or_without_a_position() {
        let text = "a = 1\nbé = 2\n";
        let at = ConfigError::at_offset(
            text,
            "g.toml",
            text.len() - 3,
            "",
            ErrorKind::Syntax {
                message: "bad".into(),
            },
        );
        assert_eq!(at.to_string(), "g.toml:2:5: bad");
        let keyed = ConfigError::at_key(
            "g.toml",
            "writer.ack",
            ErrorKind::Unusable {
                message: "\"sometimes\"".into(),
            },
        );
        assert_eq!(keyed.to_string(), "g.toml: writer.ack: \"sometimes\"");
    }

    #[test]
    fn errors_print_one_per_line_sorted() {
        let text = "a\nb\nc\n";
        let mut c = Collector::default();
        c.push(4..5, "c", ErrorKind::NoSink);
        c.push(0..1, "a", ErrorKind::MissingKey { key: "url".into() });
        let errs = c.finish(text, "x.toml");
        assert_eq!(
            errs.to_string(),
            "x.toml:1:1: a: missing required key `url`\n\
             x.toml:3:1: c: no sink is enabled, results would be discarded \
             (valid: enable sinks.file, sinks.stdout or add a [[sinks.gateway]])"
        );
    }
}
