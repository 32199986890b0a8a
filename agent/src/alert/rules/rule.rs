//! What the engine is told: the rules (defaults and per-check overrides
//! chosen by glob) and the silences. Plain values; alert.toml's reader
//! builds them, this module neither parses nor validates.

use serde::{Deserialize, Serialize};

/// How many of the regions that report a check must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quorum {
    /// More than half of them: `regions / 2 + 1`.
    #[default]
    Majority,
    /// At least this many (fewer when fewer regions report, never below 1).
    AtLeast(u32),
}

impl Quorum {
    /// The regions that must agree when `regions` report the check.
    pub fn required(self, regions: u32) -> u32 {
        let n = match self {
            Quorum::Majority => regions / 2 + 1,
            Quorum::AtLeast(m) => m.min(regions),
        };
        n.max(1)
    }
}

/// One check's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Consecutive non-up probes that make a location down.
    pub down_after: u32,
    /// Consecutive up probes that make a location up.
    pub recover_after: u32,
    /// The regions that must agree for the check to be down or up.
    pub quorum: Quorum,
    /// A location is silent (no data) after this many of its intervals.
    pub no_data_after: u32,
    /// ... but never sooner than this after its last probe ended.
    pub no_data_min_ms: u64,
    /// The window in which state changes are counted for flapping.
    pub flap_window_ms: u64,
    /// State changes within the window that make the check flap; 0
    /// disables flapping detection.
    pub flap_threshold: u32,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            down_after: 2,
            recover_after: 2,
            quorum: Quorum::Majority,
            no_data_after: 3,
            no_data_min_ms: 10_000,
            flap_window_ms: 10 * 60 * 1000,
            flap_threshold: 4,
        }
    }
}

/// The defaults and the per-check overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleConfig {
    /// For checks no override names.
    pub default: Rule,
    /// The first override one of whose globs matches the check's name wins.
    pub overrides: Vec<(Vec<Glob>, Rule)>,
    /// A location without data for this long is forgotten (default 24 h).
    pub forget_after_ms: u64,
}

impl Default for RuleConfig {
    fn default() -> Self {
        RuleConfig {
            default: Rule::default(),
            overrides: Vec::new(),
            forget_after_ms: 24 * 3600 * 1000,
        }
    }
}

/// Which rule a check follows: 0 is the default, `i + 1` override `i`.
pub(super) type RuleChoice = usize;

impl RuleConfig {
    /// The rule `check` follows.
    pub fn rule_for(&self, check: &str) -> &Rule {
        self.rule(self.choose(check))
    }

    /// The override `check` follows (its index in `overrides`), `None` for the default.
    pub fn rule_index(&self, check: &str) -> Option<usize> {
        self.choose(check).checked_sub(1)
    }

    pub(super) fn choose(&self, check: &str) -> RuleChoice {
        self.overrides
            .iter()
            .position(|(globs, _)| globs.iter().any(|g| g.matches(check)))
            .map_or(0, |i| i + 1)
    }

    pub(super) fn rule(&self, choice: RuleChoice) -> &Rule {
        match choice.checked_sub(1).and_then(|i| self.overrides.get(i)) {
            Some((_, rule)) => rule,
            None => &self.default,
        }
    }
}

/// A name pattern: `*` matches any run of characters, `?` one character,
/// everything else itself (the gateway's reader scopes mean the same).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Glob(String);

impl Glob {
    /// The pattern, as written.
    pub fn new(pattern: impl Into<String>) -> Glob {
        Glob(pattern.into())
    }

    /// The pattern.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `text` matches. Iterative with one backtrack point, no
    /// allocation.
    pub fn matches(&self, text: &str) -> bool {
        let (p, t) = (self.0.as_str(), text);
        let (mut pi, mut ti) = (0, 0);
        // After a `*`: where the pattern resumes, and the text position it
        // was last tried from.
        let mut star: Option<(usize, usize)> = None;
        while let Some(tc) = t[ti..].chars().next() {
            match p[pi..].chars().next() {
                Some('*') => {
                    pi += 1;
                    star = Some((pi, ti));
                }
                Some(pc) if pc == '?' || pc == tc => {
                    pi += pc.len_utf8();
                    ti += tc.len_utf8();
                }
                _ => match star {
                    Some((sp, st)) => {
                        let skipped = t[st..].chars().next().map_or(1, char::len_utf8);
                        pi = sp;
                        ti = st + skipped;
                        star = Some((sp, ti));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].chars().all(|c| c == '*')
    }
}

impl From<&str> for Glob {
    fn from(pattern: &str) -> Glob {
        Glob::new(pattern)
    }
}

/// A silence (or maintenance window): while active, no notification goes
/// out for the checks it matches; what it held back is reconciled when it
/// ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Its name, for `sonde alert silence` and logs.
    pub id: String,
    /// The checks it covers.
    pub checks: Vec<Glob>,
    /// Only checks reported from one of these regions; empty: any region.
    pub regions: Vec<Glob>,
    /// Active from, epoch milliseconds (inclusive).
    pub start_ms: u64,
    /// Active until, epoch milliseconds (exclusive).
    pub end_ms: u64,
    /// Why, as its author wrote it.
    pub comment: String,
}

impl Silence {
    /// Whether it is active at `now_ms`.
    pub fn is_active(&self, now_ms: u64) -> bool {
        self.start_ms <= now_ms && now_ms < self.end_ms
    }

    /// Whether it covers `check` reported from `regions`.
    pub fn covers<'a>(&self, check: &str, mut regions: impl Iterator<Item = &'a str>) -> bool {
        self.checks.iter().any(|g| g.matches(check))
            && (self.regions.is_empty()
                || regions.any(|r| self.regions.iter().any(|g| g.matches(r))))
    }
}
