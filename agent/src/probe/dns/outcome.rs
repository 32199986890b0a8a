//! What DNS saw, per address family: the outcome of the A and the AAAA
//! query and when it came, as `sonde probe` shows it and the metrics count
//! it. Plain data; the lookup that fills it in is `race` and the driver.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// An address family, named by its record type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (A records).
    A,
    /// IPv6 (AAAA records).
    Aaaa,
}

impl Family {
    /// Both, in the order `sonde probe` shows them (RFC 8305 prefers AAAA).
    pub const ALL: [Family; 2] = [Family::Aaaa, Family::A];

    /// The other family.
    pub(crate) fn other(self) -> Family {
        match self {
            Family::A => Family::Aaaa,
            Family::Aaaa => Family::A,
        }
    }

    /// The record type's name: `A`, `AAAA`.
    pub fn name(self) -> &'static str {
        match self {
            Family::A => "A",
            Family::Aaaa => "AAAA",
        }
    }

    /// The lowercase label value used in JSON and metrics: `a`, `aaaa`.
    pub fn label(self) -> &'static str {
        match self {
            Family::A => "a",
            Family::Aaaa => "aaaa",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Family::A => 0,
            Family::Aaaa => 1,
        }
    }
}

/// What one family's query came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyOutcome {
    /// The check's `ip_version` did not want this family.
    NotAsked,
    /// An answer with this many addresses (at least one).
    Answered {
        /// How many addresses the answer held.
        addresses: u16,
    },
    /// NOERROR without an address: the name exists, this family has none.
    NoData,
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// Every server asked refused (REFUSED).
    Refused,
    /// Every server asked failed (SERVFAIL), or SERVFAIL after refusals.
    ServFail,
    /// No answer: every try timed out (resolv.conf's `timeout` and
    /// `attempts`), or the probe's deadline expired first.
    Timeout,
    /// Unanswered when the resolution delay after the other family's
    /// answer ended: the probe went on without it (RFC 8305 section 3).
    Late,
    /// Unanswered when the other family's AAAA answer fixed the address
    /// list: not waited for, by design (not a failure).
    NotAwaited,
    /// A malformed answer, another rcode, or no server reachable.
    Error,
}

impl FamilyOutcome {
    /// The outcomes counted as failures of a family (the metrics' `outcome`
    /// label values). NODATA is an answer; not awaited is by design.
    pub const FAILURES: [FamilyOutcome; 6] = [
        FamilyOutcome::NxDomain,
        FamilyOutcome::Refused,
        FamilyOutcome::ServFail,
        FamilyOutcome::Timeout,
        FamilyOutcome::Late,
        FamilyOutcome::Error,
    ];

    /// The stable short name (JSON, metrics): `answered`, `nodata`,
    /// `nxdomain`, `refused`, `servfail`, `timeout`, `late`,
    /// `not_awaited`, `error`, `not_asked`.
    pub fn name(self) -> &'static str {
        match self {
            FamilyOutcome::NotAsked => "not_asked",
            FamilyOutcome::Answered { .. } => "answered",
            FamilyOutcome::NoData => "nodata",
            FamilyOutcome::NxDomain => "nxdomain",
            FamilyOutcome::Refused => "refused",
            FamilyOutcome::ServFail => "servfail",
            FamilyOutcome::Timeout => "timeout",
            FamilyOutcome::Late => "late",
            FamilyOutcome::NotAwaited => "not_awaited",
            FamilyOutcome::Error => "error",
        }
    }

    /// Whether the metrics count this outcome as a failure of the family.
    pub fn is_failure(self) -> bool {
        Self::FAILURES.contains(&self)
    }

    /// How many addresses it gave (0 unless answered).
    pub fn addresses(self) -> u16 {
        match self {
            FamilyOutcome::Answered { addresses } => addresses,
            _ => 0,
        }
    }
}

impl fmt::Display for FamilyOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FamilyOutcome::Answered { addresses: 1 } => f.write_str("1 address"),
            FamilyOutcome::Answered { addresses } => write!(f, "{addresses} addresses"),
            FamilyOutcome::NotAsked => f.write_str("not asked"),
            FamilyOutcome::NotAwaited => f.write_str("not awaited"),
            other => f.write_str(other.name()),
        }
    }
}

/// One family's outcome, when and from whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyReport {
    /// What the query came to.
    pub outcome: FamilyOutcome,
    /// When, since the lookup began (`None`: not asked).
    pub at: Option<Duration>,
    /// The server whose reply decided it (`None`: no reply, or /etc/hosts).
    pub server: Option<SocketAddr>,
}

impl FamilyReport {
    pub(crate) const NOT_ASKED: FamilyReport = FamilyReport {
        outcome: FamilyOutcome::NotAsked,
        at: None,
        server: None,
    };
    /// Asked and not yet answered: a timeout unless something comes.
    pub(crate) const WAITING: FamilyReport = FamilyReport {
        outcome: FamilyOutcome::Timeout,
        at: None,
        server: None,
    };
}

/// What DNS saw for one lookup: both families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsReport {
    /// The A query.
    pub a: FamilyReport,
    /// The AAAA query.
    pub aaaa: FamilyReport,
    /// The name was found in /etc/hosts; no query was sent.
    pub from_hosts: bool,
}

impl Default for DnsReport {
    /// Both families asked, neither answered yet.
    fn default() -> Self {
        DnsReport {
            a: FamilyReport::WAITING,
            aaaa: FamilyReport::WAITING,
            from_hosts: false,
        }
    }
}

impl DnsReport {
    /// One family's report.
    pub fn family(&self, family: Family) -> &FamilyReport {
        match family {
            Family::A => &self.a,
            Family::Aaaa => &self.aaaa,
        }
    }

    pub(crate) fn family_mut(&mut self, family: Family) -> &mut FamilyReport {
        match family {
            Family::A => &mut self.a,
            Family::Aaaa => &mut self.aaaa,
        }
    }

    /// The class of a lookup where no family gave an address (see
    /// `race::failure_class` for the precedence).
    pub(crate) fn failure_class(&self) -> wire::ErrorClass {
        super::race::failure_class(self.a.outcome, self.aaaa.outcome)
    }

    /// The lookup was cut off (the probe's deadline) at `at`: families
    /// still waiting time out then.
    pub(crate) fn expire(&mut self, at: Duration) {
        for family in Family::ALL {
            let report = self.family_mut(family);
            if report.outcome == FamilyOutcome::Timeout && report.at.is_none() {
                report.at = Some(at);
            }
        }
    }
}
