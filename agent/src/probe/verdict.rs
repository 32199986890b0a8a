//! The verdict: did the check's expectations hold? Expected statuses
//! (default 2xx and 3xx), the last response's headers, HTTP version and
//! transport, and body assertions checked as the body streams
//! ([`BodySearch`]), so no body is held for them beyond one bounded regex
//! window. Pure: chunks and a response's facts in, a pass or a failure out.

use std::ops::RangeInclusive;

use hyper::HeaderMap;
use memchr::memmem::Finder;
use regex::bytes::Regex;
use wire::ErrorClass;

/// How much of a body a regular expression sees: its first 1 MiB (or the
/// body cap, if smaller). A regex cannot run over a stream, so this prefix
/// is held (once, for every regex assertion) and matched when the body
/// ends (after rt's last instant, so a costly pattern is never timed as the
/// target's); a bound keeps that memory and the matches small.
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

impl BodyAssertion {
    fn is_regex(&self) -> bool {
        !matches!(self, BodyAssertion::Contains(_))
    }
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
    /// A missing header passes. Without it a missing header fails either
    /// form, as in blackbox_exporter (`allow_missing: false`).
    pub allow_missing: bool,
}

impl HeaderAssertion {
    /// Why `headers` break this assertion, if they do.
    fn broken_by(&self, headers: &HeaderMap) -> Option<String> {
        let name = &self.name;
        let mut values = headers.get_all(name).iter().peekable();
        if values.peek().is_none() {
            return (!self.allow_missing).then(|| format!("header {name} is missing"));
        }
        let matching = values
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .find(|v| self.regex.is_match(v));
        match (matching, self.must_match) {
            (Some(value), false) => Some(format!(
                "header {name} value {value:?} matches /{}/",
                self.regex
            )),
            (None, true) => Some(format!("no header {name} value matches /{}/", self.regex)),
            _ => None,
        }
    }
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

/// What the verdict looks at of the last response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observed<'a> {
    /// The status code.
    pub(crate) status: u16,
    /// Its headers.
    pub(crate) headers: &'a HeaderMap,
    /// The HTTP version it came in.
    pub(crate) version: Option<hyper::Version>,
    /// Whether it came over TLS.
    pub(crate) tls: bool,
    /// The body assertions' search, finished (`None` without assertions).
    pub(crate) body: Option<&'a BodySearch>,
}

/// A broken expectation: the class, a detail for people, and whether a
/// regular expression broke it (blackbox_exporter's
/// `probe_failed_due_to_regex`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Broken {
    pub(crate) class: ErrorClass,
    pub(crate) detail: String,
    pub(crate) regex: bool,
}

impl Broken {
    fn assertion(detail: String, regex: bool) -> Broken {
        Broken {
            class: ErrorClass::Assertion,
            detail,
            regex,
        }
    }
}

impl Expectations {
    /// The search the body assertions need, ready before the probe's clock
    /// starts (it allocates); `None` without an assertion.
    pub(crate) fn body_search(&self, max_body_bytes: u64) -> Option<BodySearch> {
        (!self.body.is_empty()).then(|| BodySearch::new(&self.body, max_body_bytes))
    }

    /// Judges the last response in blackbox_exporter's order: status,
    /// headers, body, HTTP version, TLS. `Ok` when every expectation held,
    /// else the first that broke.
    pub(crate) fn judge(&self, seen: &Observed<'_>) -> Result<(), Broken> {
        let status = seen.status;
        if !self.statuses.iter().any(|r| r.contains(&status)) {
            return Err(Broken {
                class: ErrorClass::StatusCode,
                detail: format!("status {status} not in {}", format_ranges(&self.statuses)),
                regex: false,
            });
        }
        if let Some(why) = self.headers.iter().find_map(|a| a.broken_by(seen.headers)) {
            return Err(Broken::assertion(why, true));
        }
        if let Some(search) = seen.body {
            if let Some(at) = search.failed() {
                let detail = self.body.get(at).map_or_else(String::new, describe_failed);
                return Err(Broken::assertion(detail, search.regex_failed()));
            }
        }
        if !self.http_versions.is_empty() {
            let version = seen.version;
            if !version.is_some_and(|v| self.http_versions.contains(&v)) {
                let wanted: Vec<String> = self
                    .http_versions
                    .iter()
                    .map(|v| format!("{v:?}"))
                    .collect();
                let got = version.map_or_else(|| "none".to_owned(), |v| format!("{v:?}"));
                return Err(Broken::assertion(
                    format!("HTTP version {got} not in {}", wanted.join(",")),
                    false,
                ));
            }
        }
        match (self.tls, seen.tls) {
            (TlsExpectation::Required, false) => Err(Broken::assertion(
                "the last response came in cleartext (TLS required)".into(),
                false,
            )),
            (TlsExpectation::Forbidden, true) => Err(Broken::assertion(
                "the last response came over TLS (TLS forbidden)".into(),
                false,
            )),
            _ => Ok(()),
        }
    }

    /// Whether a body that failed to arrive (cut off, too large, not
    /// decodable) leaves `probe_failed_due_to_regex` set, as in
    /// blackbox_exporter: once the status passed, the headers were judged
    /// before the body was read (a broken header rule sets it), and the
    /// body regexes' read of a broken body sets it too, when the regexes
    /// got to read (`regexes_read`: false when the gzip header failed).
    pub(crate) fn body_error_is_regex(
        &self,
        status: u16,
        headers: &HeaderMap,
        regexes_read: bool,
    ) -> bool {
        if !self.statuses.iter().any(|r| r.contains(&status)) {
            return false;
        }
        if self.headers.iter().any(|a| a.broken_by(headers).is_some()) {
            return true;
        }
        regexes_read && self.body.iter().any(BodyAssertion::is_regex)
    }
}

fn describe_failed(assertion: &BodyAssertion) -> String {
    let window = byte_count(MATCH_WINDOW_BYTES);
    match assertion {
        BodyAssertion::Contains(needle) => format!("body does not contain {needle:?}"),
        BodyAssertion::Matches(re) => {
            format!("body does not match /{re}/ (the match sees at most its first {window})")
        }
        BodyAssertion::NotMatches(re) => {
            format!("body matches /{re}/ (the match sees at most its first {window})")
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

/// Body assertions checked chunk by chunk as the body arrives.
///
/// A substring is searched with memchr's `memmem` in each chunk and across
/// each seam: the last `needle.len() - 1` bytes of what came before are
/// carried, so a needle split between two reads is found, and nothing else
/// is held. Every regex sees one shared window: the first
/// [`MATCH_WINDOW_BYTES`] (or the cap), matched at the body's end.
#[derive(Debug)]
pub(crate) struct BodySearch {
    /// The substring assertions, by their index among the check's.
    needles: Vec<(usize, Needle)>,
    /// The regex assertions, by index, with whether each must match.
    regexes: Vec<(usize, Regex, bool)>,
    window: Vec<u8>,
    limit: usize,
    /// Indices of the regexes that broke, decided at the body's end.
    regex_broken: Option<Vec<usize>>,
}

#[derive(Debug)]
struct Needle {
    /// Boxed: a searcher is several hundred bytes.
    finder: Box<Finder<'static>>,
    /// The tail of the body so far, shorter than the needle.
    carry: Vec<u8>,
    /// Scratch for the seam: `carry` + the head of the next chunk.
    seam: Vec<u8>,
    found: bool,
}

impl Needle {
    fn new(needle: &str) -> Needle {
        let keep = needle.len().saturating_sub(1);
        Needle {
            finder: Box::new(Finder::new(needle.as_bytes()).into_owned()),
            carry: Vec::with_capacity(keep),
            seam: Vec::with_capacity(2 * keep),
            found: needle.is_empty(),
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        if self.found {
            return;
        }
        let keep = self.finder.needle().len() - 1;
        if !self.carry.is_empty() {
            self.seam.clear();
            self.seam.extend_from_slice(&self.carry);
            self.seam.extend_from_slice(&chunk[..keep.min(chunk.len())]);
            if self.finder.find(&self.seam).is_some() {
                self.found = true;
                return;
            }
        }
        if self.finder.find(chunk).is_some() {
            self.found = true;
            return;
        }
        // The new carry: the last `keep` bytes of carry + chunk.
        if chunk.len() >= keep {
            self.carry.clear();
            self.carry.extend_from_slice(&chunk[chunk.len() - keep..]);
        } else {
            let drop = (self.carry.len() + chunk.len()).saturating_sub(keep);
            self.carry.drain(..drop);
            self.carry.extend_from_slice(chunk);
        }
    }
}

impl BodySearch {
    fn new(assertions: &[BodyAssertion], max_body_bytes: u64) -> BodySearch {
        let mut needles = Vec::new();
        let mut regexes = Vec::new();
        for (at, assertion) in assertions.iter().enumerate() {
            match assertion {
                BodyAssertion::Contains(needle) => needles.push((at, Needle::new(needle))),
                BodyAssertion::Matches(re) => regexes.push((at, re.clone(), true)),
                BodyAssertion::NotMatches(re) => regexes.push((at, re.clone(), false)),
            }
        }
        let limit = if regexes.is_empty() {
            0
        } else {
            usize::try_from(max_body_bytes.min(MATCH_WINDOW_BYTES)).unwrap_or(usize::MAX)
        };
        BodySearch {
            needles,
            regexes,
            window: Vec::new(),
            limit,
            regex_broken: None,
        }
    }

    /// Feeds the next chunk of the (decoded) body.
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        for (_, needle) in &mut self.needles {
            needle.feed(chunk);
        }
        // The regexes run at the body's end, after rt's last instant: a
        // costly pattern never lands in a phase.
        let room = self.limit - self.window.len();
        self.window
            .extend_from_slice(&chunk[..room.min(chunk.len())]);
    }

    /// Ends the body: the regexes are matched over the window now.
    pub(crate) fn finish(&mut self) {
        if self.regex_broken.is_some() {
            return;
        }
        let window = std::mem::take(&mut self.window);
        let broken = self
            .regexes
            .iter()
            .filter(|(_, re, must)| re.is_match(&window) != *must)
            .map(|(at, _, _)| *at)
            .collect();
        self.regex_broken = Some(broken);
    }

    /// The first assertion (by the check's order) that broke, after
    /// [`BodySearch::finish`]; a regex not yet matched counts as broken.
    pub(crate) fn failed(&self) -> Option<usize> {
        let needle = self
            .needles
            .iter()
            .find(|(_, n)| !n.found)
            .map(|(at, _)| *at);
        let regex = match &self.regex_broken {
            Some(broken) => broken.first().copied(),
            None => self.regexes.first().map(|(at, _, _)| *at),
        };
        match (needle, regex) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether a regex assertion broke (blackbox_exporter runs only the
    /// regexes; a broken substring alone is not a regex failure).
    pub(crate) fn regex_failed(&self) -> bool {
        match &self.regex_broken {
            Some(broken) => !broken.is_empty(),
            None => !self.regexes.is_empty(),
        }
    }

    /// Whether every assertion held (after [`BodySearch::finish`]).
    #[cfg(test)]
    pub(crate) fn held(&self) -> bool {
        self.failed().is_none()
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

    /// Judges `body` as one chunk, with no headers, over HTTP/1.1 in cleartext.
    fn judge(e: &Expectations, status: u16, body: &[u8]) -> Result<(), (ErrorClass, String)> {
        judge_with(e, status, &HeaderMap::new(), body).map_err(|b| (b.class, b.detail))
    }

    fn judge_with(
        e: &Expectations,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Broken> {
        let search = e.body_search(1 << 20).map(|mut s| {
            s.feed(body);
            s.finish();
            s
        });
        e.judge(&Observed {
            status,
            headers,
            version: Some(hyper::Version::HTTP_11),
            tls: false,
            body: search.as_ref(),
        })
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

#[cfg(test)]
mod more_tests {
    use super::*;

    fn re(pattern: &str) -> Regex {
        Regex::new(pattern).unwrap_or_else(|e| panic!("{e}"))
    }

    fn observe<'a>(
        e: &Expectations,
        search: &'a mut Option<BodySearch>,
        body: &[u8],
        headers: &'a HeaderMap,
    ) -> Observed<'a> {
        *search = e.body_search(1 << 20);
        if let Some(s) = search.as_mut() {
            s.feed(body);
            s.finish();
        }
        Observed {
            status: 200,
            headers,
            version: Some(hyper::Version::HTTP_11),
            tls: false,
            body: search.as_ref(),
        }
    }

    fn judged(e: &Expectations, body: &[u8], headers: &HeaderMap) -> Result<(), Broken> {
        let mut search = None;
        let seen = observe(e, &mut search, body, headers);
        e.judge(&seen)
    }

    fn rule(
        name: &'static str,
        pattern: &str,
        must_match: bool,
        allow_missing: bool,
    ) -> HeaderAssertion {
        HeaderAssertion {
            name: hyper::header::HeaderName::from_static(name),
            regex: regex::Regex::new(pattern).unwrap_or_else(|e| panic!("{e}")),
            must_match,
            allow_missing,
        }
    }

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, hyper::header::HeaderValue::from_static(value));
        }
        map
    }

    fn with_body(body: Vec<BodyAssertion>) -> Expectations {
        Expectations {
            body,
            ..Expectations::default()
        }
    }

    #[test]
    fn every_body_assertion_must_hold() {
        let e = with_body(vec![
            BodyAssertion::Contains("alpha".into()),
            BodyAssertion::Contains("beta".into()),
            BodyAssertion::Matches(re("gam+a")),
        ]);
        let none = HeaderMap::new();
        assert!(judged(&e, b"alpha beta gamma", &none).is_ok());
        let second = judged(&e, b"alpha gamma", &none).err();
        assert_eq!(
            second.map(|b| (b.detail, b.regex)),
            Some(("body does not contain \"beta\"".to_owned(), false))
        );
        let third = judged(&e, b"alpha beta", &none).err();
        assert!(third.is_some_and(|b| b.regex && b.detail.contains("gam+a")));
    }

    #[test]
    fn not_matches_fails_when_the_pattern_is_there() {
        let e = with_body(vec![BodyAssertion::NotMatches(re("(?i)error"))]);
        let none = HeaderMap::new();
        assert!(judged(&e, b"all fine", &none).is_ok());
        let broken = judged(&e, b"an ERROR happened", &none).err();
        assert!(broken.is_some_and(|b| b.regex
            && b.class == ErrorClass::Assertion
            && b.detail.starts_with("body matches /(?i)error/")));
    }

    #[test]
    fn regexes_share_one_window() {
        let e = with_body(vec![
            BodyAssertion::Matches(re("^head")),
            BodyAssertion::NotMatches(re("tail$")),
        ]);
        let mut search = e.body_search(8).unwrap_or_else(|| panic!("no search"));
        search.feed(b"head");
        search.feed(b"er and tail");
        search.finish();
        // The window is the first 8 bytes ("header a"): "tail" is not seen.
        assert!(search.held());
    }

    #[test]
    fn header_matches_fails_on_any_matching_value() {
        let e = Expectations {
            headers: vec![rule("x-cache", "^MISS", false, true)],
            ..Expectations::default()
        };
        assert!(judged(&e, b"", &map(&[("x-cache", "HIT")])).is_ok());
        let broken = judged(&e, b"", &map(&[("x-cache", "HIT"), ("x-cache", "MISS")])).err();
        assert!(broken.is_some_and(|b| b.regex && b.detail.contains("\"MISS\"")));
        // Missing, allowed.
        assert!(judged(&e, b"", &HeaderMap::new()).is_ok());
    }

    #[test]
    fn header_not_matches_fails_when_no_value_matches() {
        let e = Expectations {
            headers: vec![rule("content-type", "json", true, false)],
            ..Expectations::default()
        };
        assert!(
            judged(
                &e,
                b"",
                &map(&[
                    ("content-type", "text/html"),
                    ("content-type", "application/json")
                ])
            )
            .is_ok()
        );
        assert!(judged(&e, b"", &map(&[("content-type", "text/html")])).is_err());
    }

    #[test]
    fn a_missing_header_fails_either_form_unless_allowed() {
        for must_match in [true, false] {
            let strict = Expectations {
                headers: vec![rule("x-id", ".", must_match, false)],
                ..Expectations::default()
            };
            let broken = judged(&strict, b"", &HeaderMap::new()).err();
            assert!(
                broken.is_some_and(|b| b.regex && b.detail == "header x-id is missing"),
                "must_match {must_match}"
            );
            let lenient = Expectations {
                headers: vec![rule("x-id", ".", must_match, true)],
                ..Expectations::default()
            };
            assert!(judged(&lenient, b"", &HeaderMap::new()).is_ok());
        }
    }

    #[test]
    fn headers_are_judged_after_the_status_and_before_the_body() {
        let e = Expectations {
            statuses: vec![200..=200],
            headers: vec![rule("x-id", ".", true, false)],
            body: vec![BodyAssertion::Contains("nope".into())],
            ..Expectations::default()
        };
        let broken = judged(&e, b"", &HeaderMap::new()).err();
        assert!(broken.is_some_and(|b| b.detail.contains("x-id")));
        let good = map(&[("x-id", "1")]);
        assert!(!e.body_error_is_regex(200, &good, true));
        // The header rule broke before the body was read.
        assert!(e.body_error_is_regex(200, &HeaderMap::new(), true));
        assert!(e.body_error_is_regex(200, &HeaderMap::new(), false));
        let with_regex = Expectations {
            body: vec![BodyAssertion::Matches(re("x"))],
            ..e
        };
        assert!(with_regex.body_error_is_regex(200, &good, true));
        assert!(
            !with_regex.body_error_is_regex(200, &good, false),
            "gzip header"
        );
        assert!(with_regex.body_error_is_regex(200, &HeaderMap::new(), true));
        assert!(!with_regex.body_error_is_regex(500, &good, true));
        assert!(!with_regex.body_error_is_regex(500, &HeaderMap::new(), true));
    }

    #[test]
    fn http_versions_and_tls() {
        let e = Expectations {
            http_versions: vec![hyper::Version::HTTP_2],
            tls: TlsExpectation::Required,
            ..Expectations::default()
        };
        let none = HeaderMap::new();
        let seen = |version, tls| Observed {
            status: 200,
            headers: &none,
            version: Some(version),
            tls,
            body: None,
        };
        assert!(e.judge(&seen(hyper::Version::HTTP_2, true)).is_ok());
        let old = e.judge(&seen(hyper::Version::HTTP_11, true)).err();
        assert!(
            old.is_some_and(|b| !b.regex && b.detail == "HTTP version HTTP/1.1 not in HTTP/2.0")
        );
        let clear = e.judge(&seen(hyper::Version::HTTP_2, false)).err();
        assert!(clear.is_some_and(|b| b.detail.contains("TLS required")));
        let forbidden = Expectations {
            tls: TlsExpectation::Forbidden,
            ..Expectations::default()
        };
        assert!(
            forbidden
                .judge(&seen(hyper::Version::HTTP_11, false))
                .is_ok()
        );
        assert!(
            forbidden
                .judge(&seen(hyper::Version::HTTP_11, true))
                .is_err()
        );
    }
}
