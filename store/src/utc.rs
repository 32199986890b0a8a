//! UTC calendar time from Unix epoch milliseconds and back, without a
//! time-zone database: what segment names and the stdout sink's RFC 3339
//! timestamps need. No clock is read here; callers pass the milliseconds.

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
}
