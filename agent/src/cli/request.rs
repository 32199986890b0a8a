//! How `sonde probe` and `sonde wait` make their request: the flags they
//! share, spelled as curl spells them and meaning what curl's mean, read
//! into a [`ProbeSpec`]. Files a flag names (`-d @FILE`, `--cacert`) and
//! the proxy environment are read here; nothing is sent.

use std::io::Read as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use hyper::Method;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use url::Url;

use sonde::probe::proxy::{Proxies, Proxy};
use sonde::probe::{
    Compression, HttpVersion, IpVersion, ProbeSpec, ResolveOverride, TlsOptions, tls,
};

/// What `--compressed` asks for: the codings sonde decodes, in curl's
/// order (libcurl built with zlib and brotli sends the same).
pub const ACCEPT_ENCODING: &str = "deflate, gzip, br";

/// How to make the request: the flags `sonde probe` and `sonde wait` share,
/// in curl's spelling.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Request")]
pub struct RequestArgs {
    /// Request method.
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,
    /// Extra request header, "Name: value" (repeatable); it replaces the
    /// header of that name sonde (or -A, -u, --json, --compressed) would send.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// POST DATA as application/x-www-form-urlencoded (repeatable, joined
    /// with &); @FILE reads a file with carriage returns, newlines and NUL
    /// bytes stripped out, @- stdin.
    #[arg(short = 'd', long = "data", value_name = "DATA",
          conflicts_with_all = ["data_binary", "json", "head"])]
    pub data: Vec<String>,
    /// POST DATA exactly as given, with no extra processing (repeatable,
    /// joined with &); @FILE and @- keep every byte.
    #[arg(long, value_name = "DATA", conflicts_with_all = ["json", "head"])]
    pub data_binary: Vec<String>,
    /// POST DATA as JSON: --data-binary DATA with "Content-Type:
    /// application/json" and "Accept: application/json" (repeatable,
    /// concatenated); @FILE, @-. Not an output format (sonde probe: --format json).
    #[arg(long, value_name = "DATA", conflicts_with = "head")]
    pub json: Vec<String>,
    /// Fetch the headers only (HEAD); they are shown on stderr, as -i shows them.
    #[arg(short = 'I', long)]
    pub head: bool,
    /// Server user and password, USER:PASSWORD, sent as Basic
    /// authentication (USER: for an empty password; sonde does not prompt).
    #[arg(short = 'u', long, value_name = "USER:PASSWORD")]
    pub user: Option<String>,
    /// Send User-Agent NAME (default sonde/VERSION).
    #[arg(short = 'A', long, value_name = "NAME")]
    pub user_agent: Option<String>,
    /// Ask for a compressed response (Accept-Encoding: deflate, gzip, br)
    /// and decode it: body checks and -o see the decoded bytes.
    #[arg(long)]
    pub compressed: bool,
    /// Maximum time for the connection: DNS, TCP, a proxy's CONNECT and
    /// TLS (seconds, or a duration such as 500ms; 0: no limit but --max-time).
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,
    /// Use HTTP/1.1 (over TLS, ALPN offers http/1.1 only).
    #[arg(long = "http1.1", conflicts_with = "http2")]
    pub http1_1: bool,
    /// Use HTTP/2 where the server takes it (ALPN h2, else HTTP/1.1;
    /// cleartext stays HTTP/1.1, no Upgrade).
    #[arg(long)]
    pub http2: bool,
    /// Use this proxy, [http://][USER:PASSWORD@]HOST[:PORT] (port 1080 by
    /// default); "" uses none. Without -x: http_proxy, https_proxy,
    /// all_proxy (and HTTPS_PROXY, ALL_PROXY), as curl reads them.
    #[arg(short = 'x', long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Hosts that go direct, comma-separated (a name matches itself and
    /// its subdomains; IPs, CIDR; "*" all); replaces no_proxy/NO_PROXY.
    #[arg(long, value_name = "LIST")]
    pub noproxy: Option<String>,
    /// Connect over IPv4 only.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Connect over IPv6 only.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// Use ADDR for HOST:PORT instead of resolving it (repeatable).
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<String>,
    /// Ask this DNS server (IP or IP:PORT) instead of the system's.
    #[arg(long, value_name = "ADDR")]
    pub dns_server: Option<String>,
    /// How long an A answer waits for AAAA before connecting (RFC 8305).
    #[arg(long, value_name = "DURATION", default_value = "50ms", value_parser = parse_duration)]
    pub resolution_delay: Duration,
    /// Trust the CA certificates in this PEM file instead of the system roots (as curl).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// With --cacert, trust the system roots too.
    #[arg(long, requires = "cacert")]
    pub system_roots: bool,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(short = 'E', long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of the client certificate.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Accept any server certificate (the handshake is still timed and checked).
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Name for SNI, certificate checks and Host (the URL's host is still the address).
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// Follow redirects.
    #[arg(short = 'L', long = "location")]
    pub location: bool,
    /// Maximum redirects to follow with -L.
    #[arg(long = "max-redirs", value_name = "N", default_value_t = 10)]
    pub max_redirs: u32,
    /// With -L, follow a redirect from https to http (refused otherwise:
    /// insecure_redirect). Credentials still stay behind.
    #[arg(long)]
    pub allow_insecure_redirect: bool,
}

/// Parses the URL argument (http:// is assumed without a scheme).
pub fn parse_url(raw: &str) -> anyhow::Result<Url> {
    let full = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    };
    let url = Url::parse(&full).with_context(|| format!("URL {raw:?}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("URL {raw:?}: only http and https are supported");
    }
    if url.host_str().is_none_or(str::is_empty) {
        bail!("URL {raw:?}: no host");
    }
    Ok(url)
}

/// The URL positional, with the one mistake the old `--json` spelling
/// invites named: `sonde probe --json URL` gives URL to curl's `--json
/// DATA` and leaves no URL.
pub fn url_argument<'a>(url: Option<&'a str>, request: &RequestArgs) -> anyhow::Result<&'a str> {
    if let Some(url) = url {
        return Ok(url);
    }
    match request.json.last() {
        Some(value) if looks_like_a_url(value) => bail!(
            "no URL: --json {value:?} took it as request data; --json DATA sends a JSON \
             body, as curl's does. For one JSON object of output, use --format json"
        ),
        _ => bail!("no URL given (usage: URL [OPTIONS])"),
    }
}

fn looks_like_a_url(value: &str) -> bool {
    let v = value.trim();
    !v.is_empty()
        && !v.starts_with(['{', '[', '"', '@'])
        && !v.contains(char::is_whitespace)
        && (v.contains("://") || v.contains('.') || v.contains(':'))
}

/// The request part of a probe spec: every error names the flag and its value.
pub fn spec(url: Url, request: &RequestArgs, max_time: Duration) -> anyhow::Result<ProbeSpec> {
    // The files are read now; the configuration (and the system roots, if
    // it uses them) only when a hop is https: at once for an https URL, so
    // an unusable trust store is a usage error, and never for a plain
    // probe that is not redirected to https.
    let tls = tls::probe_tls(&TlsOptions {
        ca_file: request.cacert.clone(),
        system_roots: request.system_roots,
        client_cert: request.cert.clone().zip(request.key.clone()),
        insecure: request.insecure,
    })
    .context("TLS options")?;
    if url.scheme() == "https" {
        tls.config()
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("TLS options")?;
    }
    let mut spec = ProbeSpec::new(url, tls);
    if max_time.is_zero() || max_time > Duration::from_secs(86_400) {
        bail!(
            "--max-time {}: must be between 0 and 86400 seconds",
            config::duration::format(max_time)
        );
    }
    spec.timeout = max_time;
    spec.headers = parse_headers(&request.headers)?;
    let body = request_body(request, &mut read_data_source)?;
    if let Some(body) = body {
        spec.body = Bytes::from(body.bytes);
        spec.method = Method::POST;
        for (name, value) in body.headers {
            default_header(&mut spec.headers, name, HeaderValue::from_static(value));
        }
    }
    if request.head {
        spec.method = Method::HEAD;
    }
    if let Some(method) = &request.method {
        spec.method = Method::from_bytes(method.as_bytes())
            .with_context(|| format!("-X {method:?}: not an HTTP method"))?;
    }
    if let Some(agent) = &request.user_agent {
        default_header(&mut spec.headers, header::USER_AGENT, user_agent(agent)?);
    }
    if let Some(user) = &request.user {
        default_header(&mut spec.headers, header::AUTHORIZATION, basic_auth(user)?);
    }
    if request.compressed {
        default_header(
            &mut spec.headers,
            header::ACCEPT_ENCODING,
            HeaderValue::from_static(ACCEPT_ENCODING),
        );
        spec.compression = Some(Compression::Auto);
    }
    spec.connect_timeout = request.connect_timeout.filter(|d| !d.is_zero());
    spec.http_version = match (request.http1_1, request.http2) {
        (true, _) => HttpVersion::Http1,
        (_, true) => HttpVersion::Http2,
        _ => HttpVersion::Auto,
    };
    spec.proxy = choose_proxy(request, |name| std::env::var(name).ok())?;
    spec.ip_version = match (request.ipv4, request.ipv6) {
        (true, _) => IpVersion::V4,
        (_, true) => IpVersion::V6,
        _ => IpVersion::Auto,
    };
    spec.resolve = request
        .resolve
        .iter()
        .map(|r| parse_resolve(r))
        .collect::<anyhow::Result<_>>()?;
    spec.dns_server = request
        .dns_server
        .as_deref()
        .map(parse_dns_server)
        .transpose()?;
    spec.resolution_delay = request.resolution_delay;
    spec.server_name = request.server_name.clone();
    spec.max_redirects = if request.location {
        request.max_redirs
    } else {
        0
    };
    spec.allow_insecure_redirect = request.allow_insecure_redirect;
    Ok(spec)
}

/// Sets `name` unless a -H already did (curl: a custom header replaces
/// the one curl would make).
fn default_header(headers: &mut HeaderMap, name: HeaderName, value: HeaderValue) {
    if !headers.contains_key(&name) {
        headers.insert(name, value);
    }
}

/// A request body and the headers that come with it.
#[derive(Debug, PartialEq, Eq)]
pub struct Body {
    /// The bytes to send.
    pub bytes: Vec<u8>,
    /// Content-Type (and, for --json, Accept), unless -H sets them.
    pub headers: Vec<(HeaderName, &'static str)>,
}

/// The body of -d, --data-binary or --json, as curl builds it: -d and
/// --data-binary pieces joined with `&`, -d's files stripped of CR, LF
/// and NUL, --json pieces concatenated. `read` reads a file, `-` stdin.
pub fn request_body(request: &RequestArgs, read: &mut Reader<'_>) -> anyhow::Result<Option<Body>> {
    let form = "application/x-www-form-urlencoded";
    Ok(if !request.data.is_empty() {
        Some(Body {
            bytes: joined("-d", &request.data, true, b"&", read)?,
            headers: vec![(header::CONTENT_TYPE, form)],
        })
    } else if !request.data_binary.is_empty() {
        Some(Body {
            bytes: joined("--data-binary", &request.data_binary, false, b"&", read)?,
            headers: vec![(header::CONTENT_TYPE, form)],
        })
    } else if !request.json.is_empty() {
        Some(Body {
            bytes: joined("--json", &request.json, false, b"", read)?,
            headers: vec![
                (header::CONTENT_TYPE, "application/json"),
                (header::ACCEPT, "application/json"),
            ],
        })
    } else {
        None
    })
}

/// Reads the file `@FILE` names (`-`: stdin).
pub type Reader<'a> = dyn FnMut(&str) -> std::io::Result<Vec<u8>> + 'a;

/// One piece of data: the text itself, or the file `@FILE` names (`strip`:
/// without CR, LF and NUL, as curl's -d reads it).
fn piece(flag: &str, arg: &str, strip: bool, read: &mut Reader<'_>) -> anyhow::Result<Vec<u8>> {
    let Some(path) = arg.strip_prefix('@') else {
        return Ok(arg.as_bytes().to_vec());
    };
    let mut bytes = read(path).with_context(|| {
        let what = if path == "-" { "stdin" } else { path };
        format!("{flag} @{path}: reading {what}")
    })?;
    if strip {
        bytes.retain(|b| !matches!(b, b'\r' | b'\n' | 0));
    }
    Ok(bytes)
}

/// The pieces of a repeated flag, `sep` between them.
fn joined(
    flag: &str,
    args: &[String],
    strip: bool,
    sep: &[u8],
    read: &mut Reader<'_>,
) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(sep);
        }
        out.extend(piece(flag, arg, strip, read)?);
    }
    Ok(out)
}

/// Reads `@FILE` data: a file, or stdin for `-`.
pub fn read_data_source(path: &str) -> std::io::Result<Vec<u8>> {
    if path == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes)?;
        Ok(bytes)
    } else {
        std::fs::read(path)
    }
}

/// `-A NAME`. curl's `-A ""` removes the header; sonde's engine always
/// sends one, so an empty name is refused rather than sent differently.
fn user_agent(agent: &str) -> anyhow::Result<HeaderValue> {
    if agent.is_empty() {
        bail!(
            "-A \"\": sonde always sends a User-Agent (curl would remove it); \
             give a name, or a single space for a blank one"
        );
    }
    HeaderValue::from_str(agent).with_context(|| format!("-A {agent:?}: not a header value"))
}

/// `-u USER:PASSWORD` as `Authorization: Basic`, split on the first colon
/// as curl splits it. curl prompts for a missing password; sonde runs
/// unattended and refuses instead.
pub fn basic_auth(user: &str) -> anyhow::Result<HeaderValue> {
    let Some((name, _)) = user.split_once(':') else {
        bail!(
            "-u {user:?}: no password (curl would prompt for one; sonde does not): \
             give -u {user}:PASSWORD, or -u {user}: for an empty password"
        );
    };
    sonde::probe::basic::header(user.as_bytes())
        .with_context(|| format!("-u {name}:…: not a header value"))
}

/// The proxies the probe's hops choose from, as curl picks them: `-x`
/// ("" for none) for every scheme, else the proxy environment's per
/// scheme; `--noproxy` (else `no_proxy`, `NO_PROXY`) names the hosts that
/// go direct, whichever way the proxy was given. Each hop, redirects
/// included, picks again.
pub fn choose_proxy(
    request: &RequestArgs,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<Proxies>> {
    let no_proxy = match &request.noproxy {
        Some(list) => Some(list.clone()),
        None => env("no_proxy")
            .filter(|v| !v.trim().is_empty())
            .or_else(|| env("NO_PROXY").filter(|v| !v.trim().is_empty())),
    };
    let proxies = match request.proxy.as_deref() {
        Some("") => return Ok(None),
        Some(given) => Proxies::from(Proxy::parse(given).map_err(|e| anyhow::anyhow!("-x: {e}"))?),
        None => Proxies::from_env(&env).map_err(|e| {
            anyhow::anyhow!("the proxy environment (http_proxy, https_proxy, all_proxy): {e}")
        })?,
    };
    let proxies = match no_proxy {
        Some(list) => proxies.bypassing(list),
        None => proxies,
    };
    Ok((!proxies.is_empty()).then_some(proxies))
}

/// Parses -H values, "Name: value".
pub fn parse_headers(raw: &[String]) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for h in raw {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("-H {h:?}: expected \"Name: value\""))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("-H {h:?}: bad header name"))?;
        let value = HeaderValue::from_str(value.trim())
            .with_context(|| format!("-H {h:?}: bad header value"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// Parses curl's `--resolve HOST:PORT:ADDR` (ADDR may be bracketed IPv6).
pub fn parse_resolve(raw: &str) -> anyhow::Result<ResolveOverride> {
    let usage = || format!("--resolve {raw:?}: expected HOST:PORT:ADDR");
    let (host, rest) = raw.split_once(':').with_context(usage)?;
    let (port, addr) = rest.split_once(':').with_context(usage)?;
    let port: u16 = port.parse().with_context(usage)?;
    let addr: IpAddr = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .with_context(usage)?;
    if host.is_empty() {
        bail!(usage());
    }
    Ok(ResolveOverride {
        host: host.to_owned(),
        port,
        addr,
    })
}

/// Parses a DNS server: `IP`, `IP:PORT` or `[IPv6]:PORT`; port 53 by default.
pub fn parse_dns_server(raw: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = raw.parse::<SocketAddr>() {
        return Ok(addr);
    }
    raw.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .with_context(|| format!("--dns-server {raw:?}: expected IP, IP:PORT or [IPv6]:PORT"))
}

/// Parses status expectations, comma-separated, in the grammar of the
/// configuration's `expect_status` (README: Configuration).
pub fn parse_statuses(raw: &str) -> anyhow::Result<Vec<std::ops::RangeInclusive<u16>>> {
    config::status::parse_list(raw)
        .map_err(|e| anyhow::anyhow!("{e} (valid: {}, comma-separated)", config::status::VALID))
}

/// Parses a duration flag: the configuration's grammar (README:
/// Configuration), where a bare number is seconds, as in curl.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    use config::duration::{self, BareNumber};
    duration::parse_with(raw, BareNumber::Seconds).map_err(|e| {
        format!(
            "bad duration {raw:?}: {e} (valid: {}, or a bare number of seconds)",
            duration::VALID
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(path: &str) -> std::io::Result<Vec<u8>> {
        match path {
            "body.txt" => Ok(b"a=1\r\nb=2\n\0c=3\n".to_vec()),
            "-" => Ok(b"from stdin\n".to_vec()),
            _ => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        }
    }

    /// The flags as clap reads them (so with their defaults).
    fn args(flags: &[&str]) -> RequestArgs {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            request: RequestArgs,
        }
        let argv = std::iter::once("sonde").chain(flags.iter().copied());
        match <Only as clap::Parser>::try_parse_from(argv) {
            Ok(only) => only.request,
            Err(e) => panic!("{flags:?}: {e}"),
        }
    }

    fn body(request: &RequestArgs) -> Option<Body> {
        request_body(request, &mut files).unwrap_or_else(|e| panic!("{e:#}"))
    }

    #[test]
    fn data_pieces_are_joined_with_ampersands_and_files_lose_cr_lf_nul() {
        let request = args(&["-d", "x=0", "-d", "@body.txt"]);
        let b = body(&request);
        assert_eq!(
            b.as_ref().map(|b| &b.bytes[..]),
            Some(&b"x=0&a=1b=2c=3"[..])
        );
        assert_eq!(
            b.map(|b| b.headers),
            Some(vec![(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded"
            )])
        );
    }

    #[test]
    fn data_binary_keeps_every_byte() {
        let request = args(&["--data-binary", "@body.txt", "--data-binary", "@-"]);
        assert_eq!(
            body(&request).map(|b| b.bytes),
            Some(b"a=1\r\nb=2\n\0c=3\n&from stdin\n".to_vec())
        );
    }

    #[test]
    fn json_pieces_are_concatenated_and_ask_for_json() {
        let request = args(&["--json", "{\"a\":", "--json", "1}"]);
        let b = body(&request);
        assert_eq!(b.as_ref().map(|b| &b.bytes[..]), Some(&b"{\"a\":1}"[..]));
        assert_eq!(
            b.map(|b| b.headers),
            Some(vec![
                (header::CONTENT_TYPE, "application/json"),
                (header::ACCEPT, "application/json"),
            ])
        );
    }

    #[test]
    fn an_unreadable_data_file_names_the_flag_and_the_file() {
        let request = args(&["-d", "@missing.txt"]);
        let err = request_body(&request, &mut files)
            .err()
            .map(|e| format!("{e:#}"));
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("-d @missing.txt")),
            "{err:?}"
        );
    }

    #[test]
    fn user_is_basic_auth_split_on_the_first_colon() {
        let v = basic_auth("alice:s3:cret").ok();
        // base64("alice:s3:cret")
        assert_eq!(
            v.as_ref().and_then(|v| v.to_str().ok()),
            Some("Basic YWxpY2U6czM6Y3JldA==")
        );
        assert!(v.is_some_and(|v| v.is_sensitive()));
        assert!(basic_auth("alice:").is_ok());
        let err = basic_auth("alice").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("-u \"alice\"") && e.contains("prompt")));
    }

    #[test]
    fn an_empty_user_agent_is_refused() {
        assert!(user_agent("").is_err());
        assert!(user_agent(" ").is_ok());
    }

    #[test]
    fn proxy_comes_from_x_or_the_environment_and_noproxy_wins() {
        let target = Url::parse("http://app.test/").unwrap_or_else(|e| panic!("{e}"));
        let env = |name: &str| match name {
            "http_proxy" => Some("http://env-proxy:3128".to_owned()),
            "no_proxy" => Some("other.test".to_owned()),
            _ => None,
        };
        let pick = |given: &[&str]| {
            choose_proxy(&args(given), env)
                .ok()
                .flatten()
                .and_then(|p| p.for_url(&target).map(|p| p.to_string()))
        };
        assert_eq!(pick(&[]), Some("http://env-proxy:3128".into()));
        assert_eq!(
            pick(&["-x", "127.0.0.1:8888"]),
            Some("http://127.0.0.1:8888".into())
        );
        assert_eq!(
            pick(&["-x", "127.0.0.1:8888", "--noproxy", "app.test"]),
            None
        );
        assert_eq!(pick(&["--noproxy", "app.test"]), None);
        assert!(
            choose_proxy(&args(&["-x", ""]), env)
                .ok()
                .flatten()
                .is_none()
        );
        // Bypassed for the first URL, not for a redirect elsewhere.
        let bypassed = choose_proxy(
            &args(&["-x", "127.0.0.1:8888", "--noproxy", "app.test"]),
            env,
        )
        .ok()
        .flatten();
        let elsewhere = Url::parse("https://b.test/").unwrap_or_else(|e| panic!("{e}"));
        assert!(bypassed.is_some_and(|p| p.for_url(&elsewhere).is_some()));
        let err = choose_proxy(&args(&["-x", "socks5://127.0.0.1:1"]), env)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.starts_with("-x:")));
    }

    #[test]
    fn a_url_given_to_json_is_named_in_the_error() {
        let request = args(&["--json", "https://app.test/"]);
        let err = url_argument(None, &request).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("--format json")));
        let data = args(&["--json", "{\"a\": 1}"]);
        let err = url_argument(None, &data).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| !e.contains("--format json")));
        assert_eq!(url_argument(Some("x.test"), &request).ok(), Some("x.test"));
    }

    #[test]
    fn resolve_accepts_v4_and_bracketed_v6() {
        let r = parse_resolve("example.test:443:127.0.0.1").ok();
        assert_eq!(
            r.map(|r| (r.port, r.addr.to_string())),
            Some((443, "127.0.0.1".into()))
        );
        let r = parse_resolve("example.test:80:[::1]").ok();
        assert_eq!(r.map(|r| r.addr.to_string()), Some("::1".into()));
        assert!(parse_resolve("example.test:x:127.0.0.1").is_err());
        assert!(parse_resolve("nohost").is_err());
    }

    #[test]
    fn dns_server_defaults_to_port_53() {
        assert_eq!(
            parse_dns_server("127.0.0.1").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 53)))
        );
        assert_eq!(
            parse_dns_server("127.0.0.1:5353").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 5353)))
        );
        assert!(parse_dns_server("[::1]:53").is_ok());
        assert!(parse_dns_server("dns.test").is_err());
    }

    /// The flag's default is written as text for `--help`; it must be the
    /// engine's (and the configuration's) default.
    #[test]
    fn the_resolution_delay_flag_defaults_to_the_engines_default() {
        assert_eq!(
            args(&[]).resolution_delay,
            sonde::probe::DEFAULT_RESOLUTION_DELAY
        );
    }

    #[test]
    fn headers_need_a_colon() {
        assert!(parse_headers(&["X-A: 1".into(), "X-A: 2".into()]).is_ok_and(|h| h.len() == 2));
        assert!(parse_headers(&["nocolon".into()]).is_err());
    }
}
