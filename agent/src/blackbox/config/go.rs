//! Go's grammars that blackbox_exporter's files use: `time.Duration`,
//! alecthomas/units' `Base2Bytes`, and its check of an Accept-Encoding
//! header against `compression`.

use std::time::Duration;

/// Parses a Go duration (`time.ParseDuration`): `300ms`, `1.5s`, `1m30s`;
/// units ns, us (µs), ms, s, m, h; `0` alone.
pub fn go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (valid: as Go's, e.g. 5s, 1m30s, 500ms)");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * scale;
        rest = &rest[u..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// A duration as Go's `Duration.String` writes it, for the whole seconds
/// and milliseconds a timeout has (`5s`, `1m30s`, `500ms`).
pub(super) fn go_format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m) = (ms / 3_600_000, ms / 60_000 % 60);
    let s = (ms % 60_000) as f64 / 1000.0;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}s"));
    out
}

/// Parses blackbox_exporter's `body_size_limit` as alecthomas/units'
/// `ParseBase2Bytes` does: a sign, then one or more numbers (fractions
/// allowed) each with a unit, all powers of 1024: `B`, `KiB` … `EiB`,
/// or else `B`, `KB` … `EB` (`1.5MB`, `1MB512KB`, `-1KB`). A bare
/// number is refused but `0`. Returns bytes, negative as given.
pub fn base2_bytes(text: &str) -> Result<i64, String> {
    parse_unit(text, "iB").or_else(|_| parse_unit(text, "B"))
}

/// alecthomas/units' `ParseUnit` with `MakeUnitMap(suffix, "B", 1024)`.
fn parse_unit(text: &str, suffix: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a size (valid: e.g. 512KB, 1.5MiB, 1MB512KB)");
    let unit = |u: &str| -> Option<f64> {
        if u == "B" {
            return Some(1.0);
        }
        let power = ["K", "M", "G", "T", "P", "E"]
            .iter()
            .position(|p| u.strip_prefix(p) == Some(suffix))?;
        Some(1024f64.powi(power as i32 + 1))
    };
    let (neg, mut s) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !s.is_empty() {
        let number_len = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, rest) = s.split_at(number_len);
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(bad());
        }
        let value: f64 = format!("0{int}.{frac}0").parse().map_err(|_| bad())?;
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let (u, rest) = rest.split_at(unit_len);
        total += value * unit(u).ok_or_else(bad)?;
        s = rest;
    }
    if neg {
        total = -total;
    }
    // Go's int64(f) past the range is undefined; refused here.
    let limit = 2f64.powi(63);
    if !(-limit..limit).contains(&total) {
        return Err(format!("{text:?} is too large a size"));
    }
    Ok(total as i64)
}

/// blackbox_exporter's `isCompressionAcceptEncodingValid`: with a
/// `compression`, an Accept-Encoding header must accept it (by name or
/// `*`) at its highest quality that names it, with a quality above 0.
pub(super) fn accept_encoding_allows(compression: &str, accept_encoding: &str) -> bool {
    if compression.is_empty() || accept_encoding.is_empty() {
        return true;
    }
    let mut encodings: Vec<(&str, f64)> = accept_encoding
        .split(',')
        .map(|part| match part.rfind(';') {
            None => (part.trim(), 1.0),
            Some(i) => {
                let q = part[i + 1..].trim();
                let q = q.strip_prefix("q=").unwrap_or(q);
                let q = q
                    .parse::<f64>()
                    .map_or(0.0, |q| (q * 1000.0).round() / 1000.0);
                (part[..i].trim(), q)
            }
        })
        .collect();
    // Stable, highest quality first, as Go's sort.SliceStable.
    encodings.sort_by(|a, b| b.1.total_cmp(&a.1));
    encodings
        .iter()
        .find(|(e, _)| *e == compression || *e == "*")
        .is_some_and(|(_, q)| *q > 0.0)
}

#[cfg(test)]
mod tests {
    use super::accept_encoding_allows as allows;

    #[test]
    fn accept_encoding_must_accept_the_compression() {
        assert!(allows("", "br"));
        assert!(allows("gzip", ""));
        assert!(allows("gzip", "gzip"));
        assert!(allows("gzip", "br, gzip;q=0.5"));
        assert!(allows("gzip", "*"));
        assert!(!allows("gzip", "br"));
        assert!(!allows("gzip", "gzip;q=0"));
        assert!(!allows("gzip", "gzip;q=0, br"));
    }
}
