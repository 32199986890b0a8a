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

/// Parses blackbox_exporter's `body_size_limit` (alecthomas/units'
/// Base2Bytes): a number with B, KB/KiB, MB/MiB, GB/GiB, TB/TiB (all
/// powers of 1024), or none (bytes).
pub fn base2_bytes(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a size (valid: e.g. 1024, 512KB, 10MiB)");
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let number: u64 = text[..digits].parse().map_err(|_| bad())?;
    let shift = match &text[digits..] {
        "" | "B" => 0,
        "KB" | "KiB" => 10,
        "MB" | "MiB" => 20,
        "GB" | "GiB" => 30,
        "TB" | "TiB" => 40,
        "PB" | "PiB" => 50,
        _ => return Err(bad()),
    };
    number.checked_mul(1 << shift).ok_or_else(bad)
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
