//! The file sink's decisions, as plain functions of plain values: how a
//! segment is named (and so ordered), when the active segment rotates, which
//! finished segments retention deletes. No files, no clocks: callers pass
//! sizes, ages and the current time in.

use std::time::Duration;

/// Segment file names start with this...
pub const PREFIX: &str = "segment-";
/// ...and end with this.
pub const SUFFIX: &str = ".sonde";
/// What a segment with a bad file header is renamed to (its name plus this).
pub const CORRUPT_SUFFIX: &str = ".corrupt";

/// A UTC calendar time with milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    /// Year (four digits until 9999).
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
    /// 0 to 59.
    pub second: u32,
    /// 0 to 999.
    pub milli: u32,
}

const MS_PER_DAY: u64 = 86_400_000;

impl Utc {
    /// The calendar time of `ms` milliseconds after the Unix epoch.
    pub fn from_epoch_ms(ms: u64) -> Utc {
        let days = (ms / MS_PER_DAY) as i64;
        let in_day = ms % MS_PER_DAY;
        let (year, month, day) = civil_from_days(days);
        Utc {
            year,
            month,
            day,
            hour: (in_day / 3_600_000) as u32,
            minute: (in_day / 60_000 % 60) as u32,
            second: (in_day / 1000 % 60) as u32,
            milli: (in_day % 1000) as u32,
        }
    }

    /// Milliseconds since the Unix epoch; `None` before 1970 or when a
    /// field is out of range.
    pub fn to_epoch_ms(self) -> Option<u64> {
        if !(1..=12).contains(&self.month)
            || !(1..=31).contains(&self.day)
            || self.hour > 23
            || self.minute > 59
            || self.second > 59
            || self.milli > 999
        {
            return None;
        }
        let days = u64::try_from(days_from_civil(self.year, self.month, self.day)).ok()?;
        let in_day = u64::from(self.hour) * 3_600_000
            + u64::from(self.minute) * 60_000
            + u64::from(self.second) * 1000
            + u64::from(self.milli);
        days.checked_mul(MS_PER_DAY)?.checked_add(in_day)
    }

    /// RFC 3339 with milliseconds: `2026-11-23T10:31:02.123Z`.
    pub fn rfc3339(self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.milli
        )
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (y, m, d).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The file name of a segment started at `ms` (Unix epoch milliseconds):
/// `segment-20261123T103102.123Z.sonde`. Fixed width, so names sort in
/// time order (until the year 9999).
pub fn segment_name(ms: u64) -> String {
    let u = Utc::from_epoch_ms(ms);
    format!(
        "{PREFIX}{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z{SUFFIX}",
        u.year, u.month, u.day, u.hour, u.minute, u.second, u.milli
    )
}

/// The start time of the segment named `name`, if it is a segment name.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let stamp = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
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

/// The start time for a new segment: now, but always after the newest
/// existing segment, so that names stay unique and in order even when two
/// rotations fall in one millisecond or the wall clock steps back.
pub fn next_segment_ms(now_ms: u64, newest_ms: Option<u64>) -> u64 {
    match newest_ms {
        Some(newest) if newest >= now_ms => newest.saturating_add(1),
        _ => now_ms,
    }
}

/// Why the active segment is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotate {
    /// The next write would take it past `segment_max_bytes`.
    Size,
    /// It is older than `segment_max_age`.
    Age,
}

/// Whether the active segment (`len` bytes, `frames` frames, `age` old)
/// must be finished before `incoming` more bytes are appended (`incoming`
/// is 0 for the periodic check). A segment without frames never rotates:
/// a frame larger than the limit gets a segment of its own instead of an
/// endless run of empty ones, and an idle agent does not litter the
/// directory with empty segments.
pub fn rotation(
    len: u64,
    frames: u64,
    age: Duration,
    incoming: u64,
    max_bytes: u64,
    max_age: Duration,
) -> Option<Rotate> {
    if frames == 0 {
        return None;
    }
    if incoming > 0 && len.saturating_add(incoming) > max_bytes {
        return Some(Rotate::Size);
    }
    if age >= max_age {
        return Some(Rotate::Age);
    }
    None
}

/// A segment as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Its file name.
    pub name: String,
    /// Its size in bytes.
    pub len: u64,
    /// How long ago it was last written.
    pub idle: Duration,
}

/// Which segments to delete: `segments` sorted oldest first, the last one
/// active. Deletes from the oldest while the total size exceeds `max_bytes`
/// or the segment was last written longer than `max_age` ago, and stops at
/// the first segment that may stay, so what is kept is always an unbroken
/// run up to the newest. The active segment is never deleted.
pub fn retention(segments: &[SegmentInfo], max_bytes: u64, max_age: Duration) -> Vec<&str> {
    let Some((_active, finished)) = segments.split_last() else {
        return Vec::new();
    };
    let mut total: u64 = segments.iter().map(|s| s.len).sum();
    let mut delete = Vec::new();
    for s in finished {
        if total <= max_bytes && s.idle <= max_age {
            break;
        }
        total = total.saturating_sub(s.len);
        delete.push(s.name.as_str());
    }
    delete
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_round_trips_and_knows_leap_years() {
        // 2026-11-23T10:31:02.123Z
        let ms = 1_795_429_862_123;
        let u = Utc::from_epoch_ms(ms);
        assert_eq!(u.rfc3339(), "2026-11-23T10:31:02.123Z");
        assert_eq!(u.to_epoch_ms(), Some(ms));
        assert_eq!(Utc::from_epoch_ms(0).rfc3339(), "1970-01-01T00:00:00.000Z");
        // 2024-02-29 exists, and the day after is March 1st.
        let leap = Utc::from_epoch_ms(1_709_164_800_000);
        assert_eq!(leap.rfc3339(), "2024-02-29T00:00:00.000Z");
        assert_eq!(
            Utc::from_epoch_ms(1_709_164_800_000 + MS_PER_DAY).rfc3339(),
            "2024-03-01T00:00:00.000Z"
        );
        for ms in (0..200u64).map(|i| i * 7_777_777_777 + i) {
            assert_eq!(Utc::from_epoch_ms(ms).to_epoch_ms(), Some(ms));
        }
        // Far future input does not panic.
        let _ = Utc::from_epoch_ms(u64::MAX).rfc3339();
    }

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
        let names: Vec<String> = times.iter().map(|&t| segment_name(t)).collect();
        assert_eq!(names[6], "segment-20261123T103102.123Z.sonde");
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for (name, &t) in names.iter().zip(&times) {
            assert_eq!(parse_segment_name(name), Some(t), "{name}");
        }
        for bad in [
            "segment-20261123T103102.123Z.sonde.corrupt",
            "segment-2026112xT103102.123Z.sonde",
            "segment-20261323T103102.123Z.sonde",
            "segment-+0261123T103102.123Z.sonde",
            "segment-.sonde",
            "notes.txt",
        ] {
            assert_eq!(parse_segment_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn next_segment_is_after_the_newest() {
        assert_eq!(next_segment_ms(100, None), 100);
        assert_eq!(next_segment_ms(100, Some(50)), 100);
        assert_eq!(next_segment_ms(100, Some(100)), 101);
        assert_eq!(next_segment_ms(100, Some(500)), 501);
    }

    #[test]
    fn rotation_by_size_and_age_never_for_an_empty_segment() {
        let hour = Duration::from_secs(3600);
        let s = Duration::from_secs(1);
        assert_eq!(rotation(900, 3, s, 100, 1000, hour), None);
        assert_eq!(rotation(901, 3, s, 100, 1000, hour), Some(Rotate::Size));
        assert_eq!(rotation(8, 0, s, 5000, 1000, hour), None);
        assert_eq!(rotation(8, 0, hour * 2, 0, 1000, hour), None);
        assert_eq!(rotation(500, 1, hour, 0, 1000, hour), Some(Rotate::Age));
        assert_eq!(rotation(500, 1, hour - s, 0, 1000, hour), None);
        // The periodic check (nothing incoming) never rotates by size.
        assert_eq!(rotation(5000, 1, s, 0, 1000, hour), None);
    }

    fn seg(name: &str, len: u64, idle_s: u64) -> SegmentInfo {
        SegmentInfo {
            name: name.to_owned(),
            len,
            idle: Duration::from_secs(idle_s),
        }
    }

    #[test]
    fn retention_deletes_oldest_first_and_never_the_active() {
        let day = Duration::from_secs(86_400);
        let segs = [
            seg("a", 100, 10),
            seg("b", 100, 9),
            seg("c", 100, 8),
            seg("d", 100, 0),
        ];
        assert!(retention(&segs, 400, day).is_empty());
        assert_eq!(retention(&segs, 399, day), ["a"]);
        assert_eq!(retention(&segs, 250, day), ["a", "b"]);
        // Even a limit below the active segment keeps the active segment.
        assert_eq!(retention(&segs, 0, day), ["a", "b", "c"]);
        // By age: older than 8 s goes.
        assert_eq!(retention(&segs, 10_000, Duration::from_secs(8)), ["a", "b"]);
        // Stops at the first that may stay, even if an older-looking one follows.
        let odd = [
            seg("a", 1, 100),
            seg("b", 1, 1),
            seg("c", 1, 100),
            seg("d", 1, 0),
        ];
        assert_eq!(retention(&odd, 10, Duration::from_secs(50)), ["a"]);
        assert!(retention(&[], 0, day).is_empty());
        assert!(retention(&[seg("only", 1 << 40, 1 << 30)], 0, Duration::ZERO).is_empty());
    }
}
