//! A URL's text over plain HTTP/1.1 on loopback, for tests that read what a
//! real exporter or sonde answers (`/probe`, `/metrics`, Prometheus' API);
//! and the samples of a Prometheus text (or OpenMetrics) answer, parsed
//! enough to compare two exporters: names, labels, values. No TLS, no
//! compression, no keep-alive: one request per connection.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};

/// How long one fetch may take (connect, send, read to the end).
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// What came back from one GET.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The status code.
    pub status: u16,
    /// The response headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Fetched {
    /// The body, lossily decoded as UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path_and_query` from `addr` with extra request headers.
pub fn get(
    addr: SocketAddr,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Fetched> {
    let mut stream = TcpStream::connect_timeout(&addr, FETCH_TIMEOUT)
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(FETCH_TIMEOUT))?;
    stream.set_write_timeout(Some(FETCH_TIMEOUT))?;
    let mut request =
        format!("GET {path_and_query} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .with_context(|| format!("sending GET {path_and_query} to {addr}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading the answer to GET {path_and_query} from {addr}"))?;
    parse_response(&raw).with_context(|| format!("GET http://{addr}{path_and_query}"))
}

/// A whole HTTP/1.1 response (the connection closed after it), pure.
pub fn parse_response(raw: &[u8]) -> anyhow::Result<Fetched> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!("no end of headers in {} bytes", raw.len());
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Fetched {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            bail!("truncated chunk size line");
        };
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .with_context(|| format!("bad chunk size {size_hex:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            bail!("truncated chunk of {size} bytes");
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// `s` percent-encoded for a query string value (RFC 3986 unreserved kept).
pub fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One sample line of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' name (`probe_success`, `x_bucket`...).
    pub name: String,
    /// Its labels, unescaped.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// The samples of a Prometheus text (0.0.4) or OpenMetrics answer, in
/// order; comments, `# HELP`/`# TYPE`/`# EOF` lines and exemplars skipped.
pub fn parse_samples(text: &str) -> anyhow::Result<Vec<Sample>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_sample(line).with_context(|| format!("line {}: {line:?}", n + 1))?);
    }
    Ok(out)
}

fn parse_sample(line: &str) -> anyhow::Result<Sample> {
    let name_end = line.find(['{', ' ']).context("no value")?;
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    // An exemplar (OpenMetrics) follows " # ".
    let rest = rest.split(" # ").next().unwrap_or_default();
    let value_text = rest.split_whitespace().next().context("no value")?;
    Ok(Sample {
        name,
        labels,
        value: parse_value(value_text)?,
    })
}

/// Parses `k="v",...}` into `labels`; returns what follows the `}`.
fn parse_labels<'a>(
    mut s: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> anyhow::Result<&'a str> {
    loop {
        s = s.trim_start_matches([',', ' ']);
        if let Some(after) = s.strip_prefix('}') {
            return Ok(after);
        }
        let (key, after) = s.split_once("=\"").context("a label without =\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => bail!("a dangling escape"),
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.context("an unterminated label value")?;
        labels.insert(key.trim().to_owned(), value);
        s = &after[end + 1..];
    }
}

fn parse_value(s: &str) -> anyhow::Result<f64> {
    Ok(match s {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => s.parse().with_context(|| format!("bad value {s:?}"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_answer_is_reassembled() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
        let f = parse_response(raw).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(f.status, 200);
        assert_eq!(f.text(), "hello world");
        assert_eq!(f.header("content-type"), Some("text/plain"));
    }

    #[test]
    fn a_plain_answer_keeps_its_body() {
        let raw = b"HTTP/1.1 404 Not Found\r\ncontent-length: 3\r\n\r\nabc";
        let f = parse_response(raw).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!((f.status, f.text().as_str()), (404, "abc"));
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode_query_value("rate(x[1m]) < 14 & y=\"a b\""),
            "rate%28x%5B1m%5D%29%20%3C%2014%20%26%20y%3D%22a%20b%22"
        );
    }

    #[test]
    fn samples_parse_with_labels_escapes_and_specials() {
        let text = "# HELP a_total x\n# TYPE a_total counter\n\
                    a_total{class=\"dns\",msg=\"say \\\"hi\\\"\\n\"} 3\n\
                    b_bucket{le=\"+Inf\"} 7 1700000000\n\
                    c NaN\n\
                    d{x=\"1,}\"} -Inf\n\
                    e_total 2 # {trace_id=\"q\"} 1\n# EOF\n";
        let s = parse_samples(text).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(s.len(), 5);
        assert_eq!(s[0].name, "a_total");
        assert_eq!(s[0].labels["msg"], "say \"hi\"\n");
        assert_eq!(s[0].value, 3.0);
        assert_eq!(s[1].labels["le"], "+Inf");
        assert!(s[2].value.is_nan());
        assert_eq!(s[3].labels["x"], "1,}");
        assert_eq!(s[3].value, f64::NEG_INFINITY);
        assert_eq!((s[4].name.as_str(), s[4].value), ("e_total", 2.0));
    }
}
