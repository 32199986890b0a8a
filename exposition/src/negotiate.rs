//! What a scraper asked for: the format from its `Accept` header and gzip
//! from its `Accept-Encoding`, decided by one pure function that the
//! agent's and the gateway's servers both call; and the body encoded so.
//! Header values arrive as text; nothing here knows an HTTP library.

use std::io::Write as _;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::Format;

/// The outcome of [`negotiate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Negotiated {
    /// The format to write.
    pub format: Format,
    /// Whether to gzip the body (and say `Content-Encoding: gzip`).
    pub gzip: bool,
}

impl Negotiated {
    /// The `Content-Encoding` header of the response, if any.
    pub fn content_encoding(self) -> Option<&'static str> {
        self.gzip.then_some("gzip")
    }
}

/// The format and encoding for a scrape with these `Accept` and
/// `Accept-Encoding` header values (`None`: header absent).
///
/// OpenMetrics when `application/openmetrics-text` (version 1.0.0, 0.0.1
/// or none given) is named with a quality above zero and at least that of
/// `text/plain` (or `text/*`, `*/*`); text 0.0.4 otherwise, so `*/*` alone
/// (curl) gets text. Prometheus 2.x lists OpenMetrics first at q=1 and
/// text at q=0.5. gzip when `gzip` (or `*`, gzip not refused) has a
/// quality above zero.
pub fn negotiate(accept: Option<&str>, accept_encoding: Option<&str>) -> Negotiated {
    let mut om = 0.0f32;
    let mut text = 0.0f32;
    for range in accept.unwrap_or("").split(',') {
        let (media, params) = split_params(range);
        let q = quality(&params);
        let version = param(&params, "version");
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            if matches!(version, None | Some("1.0.0") | Some("0.0.1")) {
                om = om.max(q);
            }
        } else if media.eq_ignore_ascii_case("text/plain")
            || media.eq_ignore_ascii_case("text/*")
            || media == "*/*"
        {
            text = text.max(q);
        }
    }
    let format = if om > 0.0 && om >= text {
        Format::OpenMetrics
    } else {
        Format::Text
    };
    let (mut gzip, mut any) = (None, None);
    for coding in accept_encoding.unwrap_or("").split(',') {
        let (name, params) = split_params(coding);
        let q = quality(&params);
        if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(gzip.map_or(q, |g: f32| g.max(q)));
        } else if name == "*" {
            any = Some(q);
        }
    }
    Negotiated {
        format,
        gzip: gzip.or(any).is_some_and(|q| q > 0.0),
    }
}

/// `body`, gzipped when `gzip` is set.
pub fn encode(body: String, gzip: bool) -> Vec<u8> {
    if !gzip {
        return body.into_bytes();
    }
    let mut e = GzEncoder::new(Vec::with_capacity(body.len() / 8), Compression::fast());
    // Writing to a Vec cannot fail.
    e.write_all(body.as_bytes())
        .and_then(|()| e.finish())
        .unwrap_or_default()
}

fn split_params(item: &str) -> (&str, Vec<(&str, &str)>) {
    let mut parts = item.split(';');
    let head = parts.next().unwrap_or("").trim();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim(), v.trim().trim_matches('"')))
        })
        .collect();
    (head, params)
}

fn param<'a>(params: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// The `q` parameter, 1 when absent, 0 when unreadable.
fn quality(params: &[(&str, &str)]) -> f32 {
    match param(params, "q") {
        None => 1.0,
        Some(q) => q
            .parse::<f32>()
            .ok()
            .filter(|q| (0.0..=1.0).contains(q))
            .unwrap_or(0.0),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    /// Prometheus 2.42's scrape Accept header.
    const PROMETHEUS: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

    fn format(accept: &str) -> Format {
        negotiate(Some(accept), None).format
    }

    #[test]
    fn openmetrics_only_when_named_and_preferred() {
        assert_eq!(format(PROMETHEUS), Format::OpenMetrics);
        assert_eq!(format("application/openmetrics-text"), Format::OpenMetrics);
        assert_eq!(
            format(
                "text/plain;version=0.0.4;q=0.5,application/openmetrics-text; version=0.0.1;q=0.75"
            ),
            Format::OpenMetrics
        );
        assert_eq!(format("*/*"), Format::Text);
        assert_eq!(
            format("text/plain,application/openmetrics-text;q=0.5"),
            Format::Text
        );
        assert_eq!(format("application/openmetrics-text;q=0"), Format::Text);
        assert_eq!(
            format("application/openmetrics-text;version=2.0.0"),
            Format::Text
        );
        assert_eq!(negotiate(None, None), Negotiated::default());
    }

    #[test]
    fn gzip_when_accepted_with_a_quality_above_zero() {
        let gz = |ae: &str| negotiate(None, Some(ae)).gzip;
        assert!(gz("gzip"));
        assert!(gz("br, gzip;q=0.5, deflate"));
        assert!(gz("*"));
        assert!(!gz("gzip;q=0"));
        assert!(!gz("*, gzip;q=0"));
        assert!(!gz("identity"));
        assert!(!gz("br"));
        assert!(!negotiate(None, None).gzip);
    }

    #[test]
    fn encode_gzips_only_when_asked() {
        assert_eq!(encode("a 1\n".into(), false), b"a 1\n");
        let gz = encode("a 1\n".into(), true);
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "a 1\n");
    }
}
