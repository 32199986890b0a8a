//! HTTP Basic credentials (RFC 7617): the one encoder behind every place
//! sonde sends them (`sonde probe -u`, a proxy's userinfo, a blackbox
//! module's `basic_auth` and a target URL's userinfo), and the URL
//! userinfo's percent-decoding. Pure.

use base64::Engine as _;
use hyper::header::{HeaderValue, InvalidHeaderValue};
use url::Url;

/// `Basic <base64(pair)>`, `pair` being `user:password`.
pub fn credentials(pair: &[u8]) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// [`credentials`] as a header value, marked sensitive (never logged).
pub fn header(pair: &[u8]) -> Result<HeaderValue, InvalidHeaderValue> {
    let mut value = HeaderValue::from_str(&credentials(pair))?;
    value.set_sensitive(true);
    Ok(value)
}

/// A URL's user info as `user:password` bytes, percent-decoded as Go's
/// `url.User` and curl give it (a `%` not followed by two hex digits is
/// kept as it is); `None` without user info.
pub fn userinfo(url: &Url) -> Option<Vec<u8>> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let mut pair = percent_decode(url.username());
    pair.push(b':');
    pair.extend(percent_decode(url.password().unwrap_or("")));
    Some(pair)
}

/// `%XX` → the byte; anything else as it is.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_basic_auth_percent_decoded() {
        let b = |t: &str| {
            let url = Url::parse(t).unwrap_or_else(|e| panic!("{t}: {e}"));
            userinfo(&url).map(|pair| credentials(&pair))
        };
        // base64("u s:p@ss:x")
        assert_eq!(
            b("http://u%20s:p%40ss:x@h/").as_deref(),
            Some("Basic dSBzOnBAc3M6eA==")
        );
        // base64("u:")
        assert_eq!(b("http://u@h/").as_deref(), Some("Basic dTo="));
        assert_eq!(b("http://h/"), None);
        // A lone or broken escape is kept.
        assert_eq!(
            userinfo(&Url::parse("http://a%2:b%zz@h/").unwrap_or_else(|e| panic!("{e}"))),
            Some(b"a%2:b%zz".to_vec())
        );
    }

    #[test]
    fn the_header_is_sensitive() {
        let value = header(b"alice:secret").unwrap_or_else(|e| panic!("{e}"));
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().ok(), Some("Basic YWxpY2U6c2VjcmV0"));
    }
}
