//! The verdict: did the check's expectations hold? Expected statuses
//! (default 2xx and 3xx) and an optional body assertion, checked as the
//! body streams ([`BodySearch`]), so no body is held for it. Pure: chunks
//! and a status in, a pass or a failure class out.

use std::ops::RangeInclusive;

use memchr::memmem::Finder;
use regex::bytes::Regex;
use wire::ErrorClass;

/// How much of a body a regular expression sees: its first 1 MiB (or the
/// body cap, if smaller). A regex cannot run over a stream, so this prefix
/// is held and matched when the body ends (after rt's last instant, so a
/// costly pattern is never timed as the target's); a bound keeps that
/// memory and the one match small.
pub const MATCH_WINDOW_BYTES: u64 = 1 << 20;

/// What a body must contain.
#[derive(Debug, Clone)]
pub enum BodyAssertion {
    /// A literal substring.
    Contains(String),
    /// A regular expression, matched against the raw bytes of the body's
    /// first [`MATCH_WINDOW_BYTES`].
    Matches(Regex),
    /// A regular expression the body's first [`MATCH_WINDOW_BYTES`] must
    /// not match (blackbox_exporter's `fail_if_body_matches_regexp`).
    NotMatches(Regex),
}

/// What a response header must (or must not) match (blackbox_exporter's
/// `fail_if_header_matches` / `fail_if_header_not_matches`).
#[derive(Debug, Clone)]
pub struct HeaderAssertion {
    /// The header; every value it has is tried.
    pub name: hyper::header::HeaderName,
    /// The pattern a value is matched against.
    pub regex: regex::Regex,
    /// True: some value must match; false: no value may match.
    pub must_match: bool,
    /// A missing header passes (for `must_match`, it fails otherwise).
    pub allow_missing: bool,
}

/// Whether the last response must (or must not) have come over TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TlsExpectation {
    /// Either.
    #[default]
    Any,
    /// Over TLS (blackbox_exporter's `fail_if_not_ssl`).
    Required,
    /// In cleartext (blackbox_exporter's `fail_if_ssl`).
    Forbidden,
}

/// A check's expectations of a response.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// Acceptable status codes.
    pub statuses: Vec<RangeInclusive<u16>>,
    /// What the body must contain (or not): every assertion must hold.
    pub body: Vec<BodyAssertion>,
    /// What the last response's headers must (not) match: every one must hold.
    pub headers: Vec<HeaderAssertion>,
    /// HTTP versions the last response may have (empty: any).
    pub http_versions: Vec<hyper::Version>,
    /// Whether the last response must (not) have come over TLS.
    pub tls: TlsExpectation,
}

impl Default for Expectations {
    fn default() -> Self {
        Expectations {
            statuses: vec![200..=399],
            body: Vec::new(),
            headers: Vec::new(),
            http_versions: Vec::new(),
            tls: TlsExpectation::Any,
        }
    }
}

impl Expectations {
    /// The search the body assertion needs, ready before the probe's clock
    /// starts (it allocates); `None` without an assertion.
    pub(crate) fn body_search(&self, max_body_bytes: u64) -> Option<BodySearch> {
        // STUB (engine part): only the first assertion is searched so far.
        self.body
            .first()
            .map(|assertion| BodySearch::new(assertion, max_body_bytes))
    }

    /// Judges a response: `Ok` when every expectation held, else the class
    /// and a human detail. `body_held` is the body assertion's outcome
    /// ([`BodySearch::held`]); it is not looked at without an assertion.
    pub(crate) fn judge(&self, status: u16, body_held: bool) -> Result<(), (ErrorClass, String)> {
        if !self.statuses.iter().any(|r| r.contains(&status)) {
            return Err((
                ErrorClass::StatusCode,
                format!("status {status} not in {}", format_ranges(&self.statuses)),
            ));
        }
        match self.body.first() {
            None => Ok(()),
            Some(_) if body_held => Ok(()),
            Some(BodyAssertion::Contains(needle)) => Err((
                ErrorClass::Assertion,
                format!("body does not contain {needle:?}"),
            )),
            Some(BodyAssertion::Matches(re) | BodyAssertion::NotMatches(re)) => Err((
                ErrorClass::Assertion,
                format!(
                    "body does not match /{re}/ (the match sees at most its first {})",
                    byte_count(MATCH_WINDOW_BYTES)
                ),
            )),
        }
    }
}

fn byte_count(n: u64) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

/// A body assertion checked chunk by chunk as the body arrives.
///
/// A substring is searched with memchr's `memmem` in each chunk and across
/// each seam: the last `needle.len() - 1` bytes of what came before are
/// carried, so a needle split between two reads is found, and nothing else
/// is held. A regex sees the first [`MATCH_WINDOW_BYTES`] (or the cap).
#[derive(Debug)]
pub(crate) struct BodySearch {
    state: Search,
}

#[derive(Debug)]
enum Search {
    Contains {
        /// Boxed: a searcher is several hundred bytes.
        finder: Box<Finder<'static>>,
        /// The tail of the body so far, shorter than the needle.
        carry: Vec<u8>,
        /// Scratch for the seam: `carry` + the head of the next chunk.
        seam: Vec<u8>,
        found: bool,
    },
    Matches {
        re: Regex,
        window: Vec<u8>,
        limit: usize,
        /// Decided at the body's end.
        found: Option<bool>,
    },
}

impl BodySearch {
    fn new(assertion: &BodyAssertion, max_body_bytes: u64) -> BodySearch {
        let state = match assertion {
            BodyAssertion::Contains(needle) => {
                let keep = needle.len().saturating_sub(1);
                Search::Contains {
                    finder: Box::new(Finder::new(needle.as_bytes()).into_owned()),
                    carry: Vec::with_capacity(keep),
                    seam: Vec::with_capacity(2 * keep),
                    found: needle.is_empty(),
                }
            }
            // STUB (engine part): NotMatches is searched like Matches.
            BodyAssertion::Matches(re) | BodyAssertion::NotMatches(re) => Search::Matches {
                re: re.clone(),
                window: Vec::new(),
                limit: usize::try_from(max_body_bytes.min(MATCH_WINDOW_BYTES))
                    .unwrap_or(usize::MAX),
                found: None,
            },
        };
        BodySearch { state }
    }

    /// Feeds the next chunk of the body.
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        match &mut self.state {
            Search::Contains { found: true, .. } => {}
            Search::Contains {
                finder,
                carry,
                seam,
                found,
            } => {
                let keep = finder.needle().len() - 1;
                if !carry.is_empty() {
                    seam.clear();
                    seam.extend_from_slice(carry);
                    seam.extend_from_slice(&chunk[..keep.min(chunk.len())]);
                    if finder.find(seam).is_some() {
                        *found = true;
                        return;
                    }
                }
                if finder.find(chunk).is_some() {
                    *found = true;
                    return;
                }
                // The new carry: the last `keep` bytes of carry + chunk.
                if chunk.len() >= keep {
                    carry.clear();
                    carry.extend_from_slice(&chunk[chunk.len() - keep..]);
                } else {
                    let drop = (carry.len() + chunk.len()).saturating_sub(keep);
                    carry.drain(..drop);
                    carry.extend_from_slice(chunk);
                }
            }
            Search::Matches { window, limit, .. } => {
                // The regex runs at the body's end, after rt's last
                // instant: a costly pattern never lands in a phase.
                let room = *limit - window.len();
                window.extend_from_slice(&chunk[..room.min(chunk.len())]);
            }
        }
    }

    /// Ends the body: a regex whose window did not fill is matched now.
    pub(crate) fn finish(&mut self) {
        if let Search::Matches {
            re, window, found, ..
        } = &mut self.state
        {
            if found.is_none() {
                *found = Some(re.is_match(window));
                *window = Vec::new();
            }
        }
    }

    /// Whether the assertion held, after [`BodySearch::finish`] (or as
    /// soon as a substring was found).
    pub(crate) fn held(&self) -> bool {
        match &self.state {
            Search::Contains { found, .. } => *found,
            Search::Matches { found, .. } => found.unwrap_or(false),
        }
    }
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

    /// The assertion's outcome over `chunks`, fed one by one.
    fn search(e: &Expectations, cap: u64, chunks: &[&[u8]]) -> bool {
        let mut search = e.body_search(cap).unwrap_or_else(|| panic!("no assertion"));
        for chunk in chunks {
            search.feed(chunk);
        }
        search.finish();
        search.held()
    }

    /// Judges `body` as one chunk.
    fn judge(e: &Expectations, status: u16, body: &[u8]) -> Result<(), (ErrorClass, String)> {
        let held = e.body_search(1 << 20).is_none_or(|mut s| {
            s.feed(body);
            s.finish();
            s.held()
        });
        e.judge(status, held)
    }

    fn contains(needle: &str) -> Expectations {
        Expectations {
            statuses: vec![200..=299],
            body: vec![BodyAssertion::Contains(needle.into())],
            ..Expectations::default()
        }
    }

    #[test]
    fn default_accepts_2xx_and_3xx_only() {
        let e = Expectations::default();
        assert!(judge(&e, 200, b"").is_ok());
        assert!(judge(&e, 302, b"").is_ok());
        assert_eq!(
            judge(&e, 404, b"").map_err(|(c, _)| c),
            Err(ErrorClass::StatusCode)
        );
        assert_eq!(
            judge(&e, 199, b"").map_err(|(c, _)| c),
            Err(ErrorClass::StatusCode)
        );
    }

    #[test]
    fn a_needle_is_found_across_every_split() {
        let body = b"xxxxNEEDLExxxx";
        let e = contains("NEEDLE");
        for at in 0..=body.len() {
            assert!(
                search(&e, 1 << 20, &[&body[..at], &body[at..]]),
                "split at {at}"
            );
        }
        // Split in three, including one-byte chunks inside the needle.
        for a in 0..body.len() {
            for b in a..=body.len() {
                let parts: [&[u8]; 3] = [&body[..a], &body[a..b], &body[b..]];
                assert!(search(&e, 1 << 20, &parts), "split at {a}, {b}");
            }
        }
        // One byte at a time.
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert!(search(&e, 1 << 20, &bytes));
    }

    #[test]
    fn a_needle_that_is_not_there_is_not_made_up_at_a_seam() {
        let e = contains("abcabd");
        // Every two-part split of a body that has "abcab" then "c...".
        let body = b"zzabcabcabzzabcab";
        for at in 0..=body.len() {
            assert!(
                !search(&e, 1 << 20, &[&body[..at], &body[at..]]),
                "split at {at}"
            );
        }
        // The carry keeps only the tail: an old prefix does not complete later.
        assert!(!search(&e, 1 << 20, &[b"abc", b"zzzzzzzzzz", b"abd"]));
        assert!(search(&e, 1 << 20, &[b"zzzab", b"c", b"a", b"bdzz"]));
    }

    #[test]
    fn a_regex_sees_the_window_only() {
        let re = Regex::new("ready").unwrap_or_else(|e| panic!("{e}"));
        let e = Expectations {
            statuses: vec![200..=299],
            body: vec![BodyAssertion::Matches(re)],
            ..Expectations::default()
        };
        assert!(search(&e, 100, &[b"rea", b"dy"]), "across chunks");
        // Past the cap (here smaller than the window), the regex is blind.
        let late = [vec![b'x'; 98].as_slice(), b"ready"].concat();
        assert!(!search(&e, 100, &[&late]));
        assert!(search(&e, 200, &[&late]));
    }

    #[test]
    fn status_is_judged_before_the_body() {
        let e = Expectations {
            statuses: vec![200..=200],
            body: vec![BodyAssertion::Contains("ok".into())],
            ..Expectations::default()
        };
        assert_eq!(
            judge(&e, 500, b"ok").map_err(|(c, _)| c),
            Err(ErrorClass::StatusCode)
        );
        assert_eq!(
            judge(&e, 200, b"nope").map_err(|(c, _)| c),
            Err(ErrorClass::Assertion)
        );
        assert!(judge(&e, 200, b"all ok here").is_ok());
    }

    #[test]
    fn regex_assertion() {
        let re = Regex::new(r#""status":\s*"ready""#).unwrap_or_else(|e| panic!("{e}"));
        let e = Expectations {
            statuses: vec![200..=299],
            body: vec![BodyAssertion::Matches(re)],
            ..Expectations::default()
        };
        assert!(judge(&e, 200, br#"{"status": "ready"}"#).is_ok());
        assert!(judge(&e, 200, br#"{"status": "starting"}"#).is_err());
    }

    #[test]
    fn detail_names_the_ranges() {
        let e = Expectations {
            statuses: vec![200..=299, 304..=304],
            body: Vec::new(),
            ..Expectations::default()
        };
        let detail = judge(&e, 500, b"")
            .err()
            .map(|(_, d)| d)
            .unwrap_or_default();
        assert_eq!(detail, "status 500 not in 200-299,304");
    }
}
