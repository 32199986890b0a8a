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

    /// Milliseconds since the Unix epoch of an RFC 3339 time:
    /// `2026-11-23T10:31:02Z`, with an optional fraction (to the
    /// millisecond; more digits are cut) and `Z` or an offset `±HH:MM`;
    /// `None` for anything else.
    pub fn parse_rfc3339(text: &str) -> Option<u64> {
        let b = text.as_bytes();
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = text.get(r)?;
            part.bytes().all(|c| c.is_ascii_digit()).then_some(())?;
            part.parse().ok()
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let mut utc = Utc {
            year: i64::from(num(0..4)?),
            month: num(5..7)?,
            day: num(8..10)?,
            hour: num(11..13)?,
            minute: num(14..16)?,
            second: num(17..19)?,
            milli: 0,
        };
        let mut rest = &text[19..];
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let ms: String = frac[..digits].chars().chain("00".chars()).take(3).collect();
            utc.milli = ms.parse().ok()?;
            rest = &frac[digits..];
        }
        let ms = utc.to_epoch_ms()?;
        match rest.as_bytes() {
            [b'Z' | b'z'] => Some(ms),
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]
                if [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) =>
            {
                let hours = u64::from((h1 - b'0') * 10 + (h2 - b'0'));
                let minutes = u64::from((m1 - b'0') * 10 + (m2 - b'0'));
                if hours > 23 || minutes > 59 {
                    return None;
                }
                let offset = (hours * 60 + minutes) * 60_000;
                if *sign == b'+' {
                    ms.checked_sub(offset)
                } else {
                    ms.checked_add(offset)
                }
            }
            _ => None,
        }
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
    #[test]
    fn rfc3339_is_parsed_back() {
        let p = Utc::parse_rfc3339;
        assert_eq!(p("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(p("2026-11-23T10:31:02.123Z"), Some(1_795_429_862_123));
        assert_eq!(p("2026-11-23T10:31:02.1Z"), Some(1_795_429_862_100));
        assert_eq!(p("2026-11-23T10:31:02.123456Z"), Some(1_795_429_862_123));
        assert_eq!(p("2026-11-23T11:31:02.123+01:00"), Some(1_795_429_862_123));
        assert_eq!(p("2026-11-23T09:01:02.123-01:30"), Some(1_795_429_862_123));
        for bad in [
            "",
            "2026-11-23",
            "2026-11-23T10:31:02",
            "2026-13-23T10:31:02Z",
            "2026-11-23T10:31:02.Z",
            "2026-11-23T10:31:02+1:00",
            "2026-11-23T10:31:02+01:60",
            "+026-11-23T10:31:02Z",
            "2026-11-23T10:31:02Zjunk",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
        let ms = 1_795_429_862_123;
        assert_eq!(p(&Utc::from_epoch_ms(ms).rfc3339()), Some(ms));
    }

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
