//! Byte sizes: an integer count of bytes, or a string with a unit such as
//! `"64MiB"`, `"1GiB"`, `"500KB"`.
//!
//! Binary units (KiB, MiB, GiB, TiB) are powers of 1024, decimal ones (KB,
//! MB, GB, TB) powers of 1000; sizes are formatted back in binary units.

/// What a size may look like, for error messages.
pub(crate) const VALID: &str =
    "a byte count, or a string such as \"512KiB\", \"64MiB\", \"1GiB\" (also KB, MB, GB, B)";

/// Why a size string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// No leading integer.
    #[error("expected a number at the start of `{0}`")]
    MissingNumber(String),
    /// A unit sonde does not know.
    #[error("unknown unit `{0}`")]
    UnknownUnit(String),
    /// The size does not fit in 64 bits.
    #[error("size is too large")]
    Overflow,
}

/// Parses `"64MiB"` and friends; a bare number (`"1024"`) is bytes.
pub fn parse(text: &str) -> Result<u64, SizeError> {
    let s = text.trim();
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return Err(SizeError::MissingNumber(s.to_owned()));
    }
    let (number, unit) = s.split_at(digits);
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => return Err(SizeError::UnknownUnit(other.to_owned())),
    };
    let n: u64 = number.parse().map_err(|_| SizeError::Overflow)?;
    n.checked_mul(multiplier).ok_or(SizeError::Overflow)
}

/// Formats a size in the largest binary unit that divides it exactly.
pub fn format(bytes: u64) -> String {
    for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        let size = 1u64 << shift;
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_and_decimal_units() {
        assert_eq!(parse("1024"), Ok(1024));
        assert_eq!(parse("512KiB"), Ok(512 * 1024));
        assert_eq!(parse("64MiB"), Ok(64 << 20));
        assert_eq!(parse("1 GiB"), Ok(1 << 30));
        assert_eq!(parse("500KB"), Ok(500_000));
        assert_eq!(parse("2MB"), Ok(2_000_000));
        assert_eq!(parse("7B"), Ok(7));
    }

    #[test]
    fn refuses_unknown_units_and_overflow() {
        assert_eq!(parse("MiB"), Err(SizeError::MissingNumber("MiB".into())));
        assert_eq!(parse("5mb"), Err(SizeError::UnknownUnit("mb".into())));
        assert_eq!(parse("99999999TiB"), Err(SizeError::Overflow));
    }

    #[test]
    fn formats_in_the_largest_exact_unit() {
        assert_eq!(format(1 << 20), "1MiB");
        assert_eq!(format(1536), "1536B");
        assert_eq!(format(3 << 30), "3GiB");
        assert_eq!(format(0), "0B");
        for n in [0, 1, 1023, 1024, 1 << 20, (1 << 20) + 1, 5 << 40] {
            assert_eq!(parse(&format(n)), Ok(n));
        }
    }
}
