//! How files in a store directory are named, and so ordered: a prefix, an
//! ordered key, the `.sonde` suffix. [`Naming`] turns a key into a name and
//! back; the three schemes in use are [`SEGMENT`], [`SPOOL`] and
//! [`GATEWAY`]. Pure: no files are touched here (see [`crate::move_aside`]).

use std::path::{Path, PathBuf};

use crate::utc::Utc;

/// Every wire file's name ends with this.
pub const SUFFIX: &str = ".sonde";
/// What a file with a bad file header is renamed to (its name plus this).
pub const CORRUPT_SUFFIX: &str = ".corrupt";

/// A naming scheme: names sort (as strings) in the order of their keys.
pub trait Naming {
    /// What a name encodes; files are ordered by it.
    type Key: Ord + Copy + std::fmt::Debug;
    /// The file name for `key`.
    fn name(&self, key: Self::Key) -> String;
    /// The key in `name`, if `name` is one of this scheme's.
    fn parse(&self, name: &str) -> Option<Self::Key>;
}

/// `<prefix><UTC start>.sonde`, keyed by the start in Unix epoch
/// milliseconds: `segment-20261123T103102.123Z.sonde`. Fixed width, so
/// names sort in time order (until the year 9999).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByStart {
    /// What names start with.
    pub prefix: &'static str,
}

/// `<prefix><a>-<b>.sonde`, keyed by a pair of numbers in fixed-width
/// decimal (`widths`), so names sort in key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByPair {
    /// What names start with.
    pub prefix: &'static str,
    /// Digits of each number.
    pub widths: (usize, usize),
}

/// The file sink's segments: `segment-<UTC start>.sonde`.
pub const SEGMENT: ByStart = ByStart { prefix: "segment-" };
/// The gateway sink's spool: `spool-<session>-<seq>.sonde`, by the first frame.
pub const SPOOL: ByPair = ByPair {
    prefix: "spool-",
    widths: (20, 20),
};
/// The gateway writer's files: `gateway-<first gseq>-<index>.sonde`.
pub const GATEWAY: ByPair = ByPair {
    prefix: "gateway-",
    widths: (20, 6),
};

impl Naming for ByStart {
    type Key = u64;

    fn name(&self, ms: u64) -> String {
        let u = Utc::from_epoch_ms(ms);
        format!(
            "{}{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z{SUFFIX}",
            self.prefix, u.year, u.month, u.day, u.hour, u.minute, u.second, u.milli
        )
    }

    fn parse(&self, name: &str) -> Option<u64> {
        let stamp = name.strip_prefix(self.prefix)?.strip_suffix(SUFFIX)?;
        let b = stamp.as_bytes();
        if b.len() != 20 || b[8] != b'T' || b[15] != b'.' || b[19] != b'Z' {
            return None;
        }
        let num = |from: usize, to: usize| -> Option<u32> {
            let digits = stamp.get(from..to)?;
            if !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok()
        };
        Utc {
            year: i64::from(num(0, 4)?),
            month: num(4, 6)?,
            day: num(6, 8)?,
            hour: num(9, 11)?,
            minute: num(11, 13)?,
            second: num(13, 15)?,
            milli: num(16, 19)?,
        }
        .to_epoch_ms()
    }
}

impl Naming for ByPair {
    type Key = (u64, u64);

    fn name(&self, (a, b): (u64, u64)) -> String {
        let (wa, wb) = self.widths;
        format!("{}{a:0wa$}-{b:0wb$}{SUFFIX}", self.prefix)
    }

    fn parse(&self, name: &str) -> Option<(u64, u64)> {
        let rest = name.strip_prefix(self.prefix)?.strip_suffix(SUFFIX)?;
        let (a, b) = rest.split_once('-')?;
        let digits = |s: &str, w: usize| s.len() == w && s.bytes().all(|c| c.is_ascii_digit());
        if !digits(a, self.widths.0) || !digits(b, self.widths.1) {
            return None;
        }
        Some((a.parse().ok()?, b.parse().ok()?))
    }
}

/// The start for a new [`ByStart`] file: now, but always after the newest
/// existing one, so that names stay unique and in order even when two
/// rotations fall in one millisecond or the wall clock steps back.
pub fn next_start(now_ms: u64, newest_ms: Option<u64>) -> u64 {
    match newest_ms {
        Some(newest) if newest >= now_ms => newest.saturating_add(1),
        _ => now_ms,
    }
}

/// Where a damaged file at `path` goes: `NAME.corrupt`, or `NAME.corrupt.N`
/// (the first N from 1 for which `taken` is false).
pub fn corrupt_path(path: &Path, taken: impl Fn(&Path) -> bool) -> PathBuf {
    let mut to = PathBuf::from(format!("{}{CORRUPT_SUFFIX}", path.display()));
    let mut n = 1;
    while taken(&to) {
        to = PathBuf::from(format!("{}{CORRUPT_SUFFIX}.{n}", path.display()));
        n += 1;
    }
    to
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_in_time_order_and_parse_back() {
        let times = [
            0,
            999,
            1000,
            59_999,
            1_767_225_600_000,
            1_767_225_600_001,
            1_795_429_862_123,
            253_402_300_799_999, // 9999-12-31T23:59:59.999Z
        ];
        let names: Vec<String> = times.iter().map(|&t| SEGMENT.name(t)).collect();
        assert_eq!(names[6], "segment-20261123T103102.123Z.sonde");
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for (name, &t) in names.iter().zip(&times) {
            assert_eq!(SEGMENT.parse(name), Some(t), "{name}");
        }
        for bad in [
            "segment-20261123T103102.123Z.sonde.corrupt",
            "segment-2026112xT103102.123Z.sonde",
            "segment-20261323T103102.123Z.sonde",
            "segment-+0261123T103102.123Z.sonde",
            "segment-.sonde",
            "notes.txt",
        ] {
            assert_eq!(SEGMENT.parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn spool_names_sort_in_frame_order_and_parse_back() {
        let ids = [(0, 0), (1, 9), (1, 10), (2, 0), (u64::MAX, u64::MAX)];
        let names: Vec<String> = ids.iter().map(|&id| SPOOL.name(id)).collect();
        assert_eq!(
            names[1],
            "spool-00000000000000000001-00000000000000000009.sonde"
        );
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for (name, id) in names.iter().zip(ids) {
            assert_eq!(SPOOL.parse(name), Some(id));
        }
        for bad in [
            "spool-1-2.sonde",
            "segment-x.sonde",
            "spool-00000000000000000001-0000000000000000000x.sonde",
        ] {
            assert_eq!(SPOOL.parse(bad), None);
        }
    }

    #[test]
    fn gateway_names_round_trip_and_sort_in_writing_order() {
        assert_eq!(
            GATEWAY.name((1_767_225_600_000_000, 2)),
            "gateway-00001767225600000000-000002.sonde"
        );
        assert_eq!(GATEWAY.parse(&GATEWAY.name((7, 1))), Some((7, 1)));
        assert_eq!(GATEWAY.parse("gateway-7-000001.sonde"), None);
        assert_eq!(GATEWAY.parse("notes.txt"), None);
        let mut names = [(2000, 0), (1000, 1), (1000, 0)].map(|k| GATEWAY.name(k));
        names.sort();
        let keys: Vec<_> = names.iter().filter_map(|n| GATEWAY.parse(n)).collect();
        assert_eq!(keys, [(1000, 0), (1000, 1), (2000, 0)]);
    }

    #[test]
    fn next_start_is_after_the_newest() {
        assert_eq!(next_start(100, None), 100);
        assert_eq!(next_start(100, Some(50)), 100);
        assert_eq!(next_start(100, Some(100)), 101);
        assert_eq!(next_start(100, Some(500)), 501);
    }

    #[test]
    fn corrupt_names_never_overwrite() {
        let p = Path::new("/d/segment-x.sonde");
        assert_eq!(
            corrupt_path(p, |_| false),
            Path::new("/d/segment-x.sonde.corrupt")
        );
        let taken = |q: &Path| !q.to_string_lossy().ends_with(".2");
        assert_eq!(
            corrupt_path(p, taken),
            Path::new("/d/segment-x.sonde.corrupt.2")
        );
    }
}
