//! HTTP forward proxies for `sonde probe` and `sonde wait`, as curl uses
//! them: which proxy a target goes through (`-x`, the proxy environment,
//! `no_proxy`), the CONNECT request and the reading of the proxy's answer.
//! Pure: strings and bytes in, decisions out; the tunnel's I/O is
//! `tunnel.rs`. Only http:// proxies: https:// and SOCKS proxies are refused.
//! Scheduled checks (`sonde run`) never use a proxy nor read these variables.

use std::net::IpAddr;

use hyper::header::HeaderValue;
use url::{Host, Url};

/// The port of a proxy named without one: curl's default for all but https
/// proxies (CURLOPT_PROXYPORT(3): "443 for https proxies and 1080 for all
/// others").
pub const DEFAULT_PROXY_PORT: u16 = 1080;

/// The most bytes of a proxy's answer to CONNECT that are read: a head
/// longer than this fails the probe rather than growing a buffer.
pub(crate) const MAX_CONNECT_HEAD: usize = 16 << 10;

/// A proxy that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// A scheme other than http: sonde speaks to its proxy in cleartext
    /// HTTP/1.1 only.
    #[error("proxy {proxy:?}: {scheme}:// proxies are not supported (only http://)")]
    Scheme {
        /// The proxy as given (credentials removed).
        proxy: String,
        /// Its scheme.
        scheme: String,
    },
    /// Not a URL or `host:port`.
    #[error("proxy {proxy:?}: {reason}")]
    Invalid {
        /// The proxy as given (credentials removed).
        proxy: String,
        /// What is wrong.
        reason: String,
    },
}

/// An http:// forward proxy: where to connect, and the credentials to
/// present (`Proxy-Authorization: Basic`, from the URL's userinfo).
///
/// Through a proxy an http:// target's request goes to the proxy in
/// absolute-form (HTTP/1.1 only, no CONNECT); an https:// target gets a
/// CONNECT tunnel, then TLS with the origin through it. The proxy's own
/// host is what DNS resolves. Which hops use it is [`Proxies`]'s to say.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    host: String,
    /// An IP literal host, parsed once.
    ip: Option<IpAddr>,
    port: u16,
    authorization: Option<HeaderValue>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("authorization", &self.authorization.as_ref().map(|_| "…"))
            .finish()
    }
}

impl std::fmt::Display for Proxy {
    /// `http://host:port`, never the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip {
            Some(IpAddr::V6(_)) => write!(f, "http://[{}]:{}", self.host, self.port),
            _ => write!(f, "http://{}:{}", self.host, self.port),
        }
    }
}

impl Proxy {
    /// Parses a proxy as curl's `-x` takes it: `[http://][user[:password]@]host[:port]`.
    /// Without a scheme it is http:// (as curl assumes); without a port,
    /// [`DEFAULT_PROXY_PORT`]. `https://`, `socks4://`, `socks5://` (and
    /// any other scheme) are refused. The user and password are
    /// percent-decoded, as curl does, into `Proxy-Authorization: Basic`.
    /// A path is ignored, as in curl.
    pub fn parse(text: &str) -> Result<Proxy, ProxyError> {
        let text = text.trim();
        let shown = redact(text);
        let invalid = |reason: &str| ProxyError::Invalid {
            proxy: shown.clone(),
            reason: reason.to_owned(),
        };
        if text.is_empty() {
            return Err(invalid("empty"));
        }
        let with_scheme = match text.find("://") {
            Some(at) => {
                let scheme = text[..at].to_ascii_lowercase();
                if scheme != "http" {
                    return Err(ProxyError::Scheme {
                        proxy: shown,
                        scheme,
                    });
                }
                text.to_owned()
            }
            None => format!("http://{text}"),
        };
        let url = Url::parse(&with_scheme).map_err(|e| invalid(&e.to_string()))?;
        let (host, ip) = match url.host() {
            Some(Host::Domain(d)) if !d.is_empty() => (d.to_owned(), None),
            Some(Host::Ipv4(ip)) => (ip.to_string(), Some(IpAddr::V4(ip))),
            Some(Host::Ipv6(ip)) => (ip.to_string(), Some(IpAddr::V6(ip))),
            _ => return Err(invalid("no host")),
        };
        // The url crate drops a port equal to the scheme's default (80):
        // written, it is the port; left out, curl's 1080.
        let port = match (url.port(), names_a_port(&with_scheme)) {
            (Some(port), _) => port,
            (None, true) => url.port_or_known_default().unwrap_or(DEFAULT_PROXY_PORT),
            (None, false) => DEFAULT_PROXY_PORT,
        };
        let authorization = match super::basic::userinfo(&url) {
            None => None,
            Some(pair) if std::str::from_utf8(&pair).is_err() => {
                return Err(invalid("userinfo is not UTF-8"));
            }
            Some(pair) => Some(super::basic::header(&pair).map_err(|_| invalid("credentials"))?),
        };
        Ok(Proxy {
            host,
            ip,
            port,
            authorization,
        })
    }

    /// The proxy's host name or IP literal (without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's IP address when its host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `Proxy-Authorization` for the proxy, when it was given credentials
    /// (marked sensitive).
    pub fn authorization(&self) -> Option<&HeaderValue> {
        self.authorization.as_ref()
    }
}

/// The proxies a probe's hops choose from, as curl chooses for each
/// request: one for http:// targets, one for https:// targets (the same
/// one with `-x`), and the `no_proxy` list of hosts that go direct. Every
/// hop picks again ([`Proxies::for_url`]), so a redirect to the other
/// scheme takes that scheme's proxy (or none), and one to a host the list
/// names goes direct.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    http: Option<Proxy>,
    https: Option<Proxy>,
    no_proxy: Option<String>,
}

impl From<Proxy> for Proxies {
    /// One proxy for every target (`-x`).
    fn from(proxy: Proxy) -> Proxies {
        Proxies {
            http: Some(proxy.clone()),
            https: Some(proxy),
            no_proxy: None,
        }
    }
}

impl Proxies {
    /// These proxies, skipped for the targets `no_proxy` names (see
    /// [`bypass`]); an empty list names none.
    pub fn bypassing(mut self, no_proxy: impl Into<String>) -> Proxies {
        let list = no_proxy.into();
        self.no_proxy = (!list.trim().is_empty()).then_some(list);
        self
    }

    /// The `no_proxy` list, if any.
    pub fn no_proxy(&self) -> Option<&str> {
        self.no_proxy.as_deref()
    }

    /// No target has a proxy.
    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }

    /// The proxy a request to `target` goes through: its scheme's, unless
    /// the `no_proxy` list names its host.
    pub fn for_url(&self, target: &Url) -> Option<&Proxy> {
        let proxy = match target.scheme() {
            "http" => self.http.as_ref(),
            "https" => self.https.as_ref(),
            _ => None,
        }?;
        match &self.no_proxy {
            Some(list) if bypass(list, target) => None,
            _ => Some(proxy),
        }
    }

    /// The proxies curl would take from its environment (read through
    /// `env`, so callers and tests pass their own): for http:// targets,
    /// `http_proxy` — lowercase only, as curl reads it (everything curl,
    /// "Proxy environment variables": the uppercase name is left alone
    /// because of CGI's `HTTP_PROXY` header variable, "httpoxy") —; for
    /// https://, `https_proxy` then `HTTPS_PROXY`; then, for either,
    /// `all_proxy` then `ALL_PROXY`. An empty variable counts as unset, as
    /// curl's `curl_getenv` returns none for it. `no_proxy`, then
    /// `NO_PROXY`, names the hosts that go direct ([`bypass`]). A variable
    /// that names no usable proxy is an error even when no hop would use
    /// it: a misconfigured environment is said, not guessed around.
    ///
    /// Only `sonde probe` and `sonde wait` call this; agents never read the
    /// proxy environment.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Proxies, ProxyError> {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let all = get("all_proxy").or_else(|| get("ALL_PROXY"));
        let parsed = |value: Option<String>| value.as_deref().map(Proxy::parse).transpose();
        let proxies = Proxies {
            http: parsed(get("http_proxy").or_else(|| all.clone()))?,
            https: parsed(
                get("https_proxy")
                    .or_else(|| get("HTTPS_PROXY"))
                    .or_else(|| all.clone()),
            )?,
            no_proxy: None,
        };
        Ok(match get("no_proxy").or_else(|| get("NO_PROXY")) {
            Some(list) => proxies.bypassing(list),
            None => proxies,
        })
    }
}

/// Whether `target` bypasses the proxy under a `no_proxy` list, as curl
/// reads `NO_PROXY` and `--noproxy` (everything curl, "Proxy environment
/// variables"; curl(1), `--noproxy`): a comma-separated list (spaces
/// around entries allowed); `*` as the whole list matches every host (as
/// an entry among others it matches none, as in curl's `check_noproxy`); a name matches
/// itself and every name under it (`example.com` and `.example.com` both
/// match `www.example.com`, neither matches `notexample.com`); an IP
/// address matches that address literally, and `addr/bits` (CIDR, curl
/// 7.86 on) a network. Names compare case-insensitively, a trailing dot
/// ignored; entries carry no port.
pub fn bypass(no_proxy: &str, target: &Url) -> bool {
    if no_proxy.trim() == "*" {
        return true;
    }
    let Some(host) = target.host() else {
        return false;
    };
    let ip = match host {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    };
    let name = match host {
        Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
        _ => String::new(),
    };
    no_proxy
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| match ip {
            Some(ip) => ip_matches(entry, ip),
            None => name_matches(entry, &name),
        })
}

fn name_matches(entry: &str, name: &str) -> bool {
    let entry = entry
        .trim_start_matches('.')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if entry.is_empty() {
        return false;
    }
    name == entry
        || name
            .strip_suffix(entry.as_str())
            .is_some_and(|rest| rest.ends_with('.'))
}

fn ip_matches(entry: &str, ip: IpAddr) -> bool {
    let entry = entry.trim_start_matches('[').trim_end_matches(']');
    let (addr, bits) = match entry.split_once('/') {
        Some((addr, bits)) => match bits.parse::<u8>() {
            Ok(bits) => (addr, Some(bits)),
            Err(_) => return false,
        },
        None => (entry, None),
    };
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let Ok(net) = addr.parse::<IpAddr>() else {
        return false;
    };
    match (net, ip, bits) {
        (net, ip, None) => net == ip,
        (IpAddr::V4(net), IpAddr::V4(ip), Some(bits)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip), Some(bits)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

/// Whether a `scheme://authority/...` string writes a port in its authority.
fn names_a_port(url: &str) -> bool {
    let rest = url.find("://").map_or(url, |at| &url[at + 3..]);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let after_host = match host_port.rfind(']') {
        Some(end) => &host_port[end + 1..],
        None => host_port,
    };
    after_host
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty())
}

/// The proxy string without its userinfo, for messages.
fn redact(text: &str) -> String {
    let after_scheme = text.find("://").map_or(0, |at| at + 3);
    let authority_end = text[after_scheme..]
        .find('/')
        .map_or(text.len(), |i| after_scheme + i);
    match text[after_scheme..authority_end].rfind('@') {
        Some(at) => format!(
            "{}…@{}",
            &text[..after_scheme],
            &text[after_scheme + at + 1..]
        ),
        None => text.to_owned(),
    }
}

/// The CONNECT request for a tunnel to `authority` (`host:port`, brackets
/// around an IPv6 literal), built before the probe's clock starts.
pub(crate) fn connect_request(authority: &str, authorization: Option<&HeaderValue>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + authority.len() * 2);
    out.extend_from_slice(b"CONNECT ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(value) = authorization {
        out.extend_from_slice(b"Proxy-Authorization: ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"User-Agent: ");
    out.extend_from_slice(super::USER_AGENT.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out
}

/// What the proxy's answer to CONNECT came to, so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnectHead {
    /// The head has not ended yet: read more (into the same buffer).
    Incomplete,
    /// A 2xx: the tunnel is open. `len` is the head's length; bytes after
    /// it (which a proxy should not send before the client speaks) belong
    /// to the tunnel.
    Open {
        /// Bytes of the head, CRLFCRLF included.
        len: usize,
    },
    /// The proxy answered, but not with a 2xx.
    Refused {
        /// Its status code.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
}

/// Why a CONNECT answer is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConnectHeadError {
    /// Not an HTTP/1.x status line.
    #[error("proxy answered CONNECT with something that is not HTTP: {start:?}")]
    NotHttp {
        /// The answer's start, lossily decoded.
        start: String,
    },
    /// The head did not end within [`MAX_CONNECT_HEAD`] bytes.
    #[error("proxy's answer to CONNECT has a head over {MAX_CONNECT_HEAD} bytes")]
    TooLarge,
}

/// Parses the proxy's answer to CONNECT from the bytes read so far
/// (`head`, at most [`MAX_CONNECT_HEAD`]): a status line is checked as
/// soon as it is whole, so garbage fails before the head ends; 1xx heads
/// before the final one are not expected from a proxy and count as its
/// answer (refused).
pub(crate) fn parse_connect_head(head: &[u8]) -> Result<ConnectHead, ConnectHeadError> {
    let not_http = || ConnectHeadError::NotHttp {
        start: String::from_utf8_lossy(&head[..head.len().min(40)]).into_owned(),
    };
    // The status line's first bytes are checked as they come.
    let prefix = b"HTTP/1.";
    let seen = head.len().min(prefix.len());
    if head[..seen] != prefix[..seen] {
        return Err(not_http());
    }
    // Lines end in CRLF or, as curl also takes them, a bare LF.
    let Some(line_end) = memchr::memchr(b'\n', head) else {
        return if head.len() >= MAX_CONNECT_HEAD {
            Err(ConnectHeadError::TooLarge)
        } else {
            Ok(ConnectHead::Incomplete)
        };
    };
    let line = head[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&head[..line_end]);
    // "HTTP/1.x SSS reason"
    let status = match (line.get(8), line.get(9..12), line.get(12)) {
        (Some(b' '), Some(code), None | Some(b' ')) if code.iter().all(u8::is_ascii_digit) => {
            code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'))
        }
        _ => return Err(not_http()),
    };
    let Some(len) = head_len(head) else {
        return if head.len() >= MAX_CONNECT_HEAD {
            Err(ConnectHeadError::TooLarge)
        } else {
            Ok(ConnectHead::Incomplete)
        };
    };
    if (200..300).contains(&status) {
        return Ok(ConnectHead::Open { len });
    }
    let reason = String::from_utf8_lossy(line.get(13..).unwrap_or_default())
        .trim()
        .to_owned();
    Ok(ConnectHead::Refused { status, reason })
}

/// The length of a head that is complete: up to and including its empty
/// line (CRLF or a bare LF).
fn head_len(head: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', head).find_map(|at| match head.get(at + 1..) {
        Some([b'\n', ..]) => Some(at + 2),
        Some([b'\r', b'\n', ..]) => Some(at + 3),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn chosen(target: &str, vars: &[(&str, &str)]) -> Option<String> {
        Proxies::from_env(env(vars))
            .unwrap_or_else(|e| panic!("{e}"))
            .for_url(&url(target))
            .map(|p| p.to_string())
    }

    #[test]
    fn no_proxy_matches_names_domains_and_addresses_as_curl() {
        let t = |list: &str, target: &str| bypass(list, &url(target));
        assert!(t("example.com", "http://example.com/"));
        assert!(t("example.com", "http://www.example.com/"));
        assert!(t(".example.com", "http://www.example.com/"));
        assert!(t(".example.com", "http://example.com/"));
        assert!(!t("example.com", "http://notexample.com/"));
        assert!(!t("www.example.com", "http://example.com/"));
        assert!(t("EXAMPLE.com", "https://Www.Example.COM:8443/x"));
        assert!(t("example.com.", "http://www.example.com./"));
        assert!(t("a.test, example.com ,b.test", "http://example.com/"));
        assert!(t("*", "http://anything.test/"));
        assert!(t(" * ", "http://anything.test/"));
        assert!(
            !t("a.test,*", "http://anything.test/"),
            "* only as the whole list"
        );
        assert!(!t("*.example.com", "http://www.example.com/"), "no globs");
        assert!(!t("", "http://example.com/"));
        assert!(t("127.0.0.1", "http://127.0.0.1:8080/"));
        assert!(!t("127.0.0.1", "http://127.0.0.2/"));
        assert!(t("10.0.0.0/8", "http://10.1.2.3/"));
        assert!(!t("10.0.0.0/8", "http://11.1.2.3/"));
        assert!(t("0.0.0.0/0", "http://11.1.2.3/"));
        assert!(t("::1", "http://[::1]:80/"));
        assert!(t("[::1]", "http://[::1]/"));
        assert!(t("fd00::/8", "http://[fd12::1]/"));
        assert!(!t("fd00::/8", "http://10.0.0.1/"));
        assert!(
            !t("127.0.0.1", "http://localhost/"),
            "names are not resolved"
        );
        assert!(!t("example.com", "http://127.0.0.1/"));
    }

    #[test]
    fn the_environment_is_read_as_curl_reads_it() {
        let proxy = "http://proxy.test:3128";
        // http_proxy lowercase only.
        assert_eq!(chosen("http://a.test/", &[("HTTP_PROXY", proxy)]), None);
        assert_eq!(
            chosen("http://a.test/", &[("http_proxy", proxy)]).as_deref(),
            Some(proxy)
        );
        // https_proxy, either case, lowercase first.
        assert_eq!(
            chosen("https://a.test/", &[("HTTPS_PROXY", proxy)]).as_deref(),
            Some(proxy)
        );
        assert_eq!(
            chosen(
                "https://a.test/",
                &[("HTTPS_PROXY", "other.test:1"), ("https_proxy", proxy)]
            )
            .as_deref(),
            Some(proxy)
        );
        // An http proxy is not an https one.
        assert_eq!(chosen("https://a.test/", &[("http_proxy", proxy)]), None);
        // all_proxy, then ALL_PROXY, when no scheme's variable is set.
        assert_eq!(
            chosen("http://a.test/", &[("ALL_PROXY", proxy)]).as_deref(),
            Some(proxy)
        );
        assert_eq!(
            chosen(
                "https://a.test/",
                &[("all_proxy", proxy), ("ALL_PROXY", "other.test:1")]
            )
            .as_deref(),
            Some(proxy)
        );
        assert_eq!(
            chosen(
                "http://a.test/",
                &[("all_proxy", "other.test:1"), ("http_proxy", proxy)]
            )
            .as_deref(),
            Some(proxy),
            "the scheme's own variable wins"
        );
        // Empty is unset.
        assert_eq!(
            chosen(
                "http://a.test/",
                &[("http_proxy", ""), ("all_proxy", proxy)]
            )
            .as_deref(),
            Some(proxy)
        );
        // no_proxy, either case.
        assert_eq!(
            chosen(
                "http://a.test/",
                &[("http_proxy", proxy), ("no_proxy", "*")]
            ),
            None
        );
        assert_eq!(
            chosen(
                "http://x.a.test/",
                &[("http_proxy", proxy), ("NO_PROXY", "a.test")]
            ),
            None
        );
        assert_eq!(
            chosen(
                "http://b.test/",
                &[("http_proxy", proxy), ("no_proxy", "a.test")]
            )
            .as_deref(),
            Some(proxy)
        );
        assert_eq!(chosen("http://a.test/", &[]), None);
    }

    #[test]
    fn every_hop_picks_its_schemes_proxy_and_no_proxy_again() {
        let vars = [
            ("http_proxy", "plain.test:3128"),
            ("https_proxy", "tls.test:3129"),
            ("no_proxy", "direct.test"),
        ];
        let proxies = Proxies::from_env(env(&vars)).unwrap_or_else(|e| panic!("{e}"));
        let via = |u: &str| proxies.for_url(&url(u)).map(|p| p.to_string());
        assert_eq!(
            via("http://b.test/").as_deref(),
            Some("http://plain.test:3128")
        );
        assert_eq!(
            via("https://b.test/").as_deref(),
            Some("http://tls.test:3129")
        );
        assert_eq!(via("http://www.direct.test/"), None);
        assert_eq!(via("https://direct.test/"), None);
        // -x: one proxy for both schemes; a bypassed first URL does not
        // keep a later hop elsewhere from using it.
        let given = Proxies::from(Proxy::parse("p.test:8080").unwrap_or_else(|e| panic!("{e}")))
            .bypassing("a.test");
        assert!(given.for_url(&url("http://a.test/")).is_none());
        assert!(given.for_url(&url("http://b.test/")).is_some());
        assert!(given.for_url(&url("https://b.test/")).is_some());
        assert!(Proxies::default().is_empty());
        assert!(!given.is_empty());
    }

    #[test]
    fn a_bad_proxy_in_the_environment_is_an_error() {
        let vars = [("https_proxy", "socks5://proxy.test:1080")];
        assert!(matches!(
            Proxies::from_env(env(&vars)),
            Err(ProxyError::Scheme { .. })
        ));
        let all = [("all_proxy", "https://proxy.test")];
        assert!(Proxies::from_env(env(&all)).is_err());
        let empty = [("http_proxy", ""), ("all_proxy", "p.test:1")];
        let proxies = Proxies::from_env(env(&empty)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            proxies
                .for_url(&url("http://a.test/"))
                .map(|p| p.to_string()),
            Some("http://p.test:1".to_owned()),
            "an empty variable is unset, as curl_getenv has it"
        );
    }

    #[test]
    fn proxies_parse_as_curl_takes_them() {
        let p = |s: &str| Proxy::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let bare = p("proxy.test:3128");
        assert_eq!((bare.host(), bare.port()), ("proxy.test", 3128));
        assert_eq!(bare.authorization(), None);
        assert_eq!(p("proxy.test").port(), DEFAULT_PROXY_PORT);
        assert_eq!(p("http://proxy.test").port(), DEFAULT_PROXY_PORT);
        assert_eq!(p("HTTP://proxy.test:80/ignored").port(), 80);
        assert_eq!(p("proxy.test:80").port(), 80);
        assert_eq!(p("http://u:p@[::1]/").port(), DEFAULT_PROXY_PORT);
        let v6 = p("http://[::1]:8080");
        assert_eq!((v6.host(), v6.ip()), ("::1", "::1".parse().ok()));
        assert_eq!(v6.to_string(), "http://[::1]:8080");
        assert_eq!(p("127.0.0.1:9").ip(), "127.0.0.1".parse().ok());
        // base64("user:p@ss w") — percent-decoded first.
        let auth = p("http://user:p%40ss%20w@proxy.test:3128");
        assert_eq!(
            auth.authorization().map(HeaderValue::as_bytes),
            Some(&b"Basic dXNlcjpwQHNzIHc="[..])
        );
        assert!(auth.authorization().is_some_and(HeaderValue::is_sensitive));
        assert!(!format!("{auth:?}").contains("dXNl"), "{auth:?}");
        assert!(!auth.to_string().contains("user"));
        // base64("user:")
        assert_eq!(
            p("user@proxy.test")
                .authorization()
                .map(HeaderValue::as_bytes),
            Some(&b"Basic dXNlcjo="[..])
        );
    }

    #[test]
    fn unsupported_and_broken_proxies_are_refused_clearly() {
        for scheme in ["https", "socks4", "socks5", "socks5h", "ftp"] {
            let text = format!("{scheme}://user:secret@proxy.test:1080");
            match Proxy::parse(&text) {
                Err(e @ ProxyError::Scheme { .. }) => {
                    let message = e.to_string();
                    assert!(message.contains(&format!("{scheme}://")), "{message}");
                    assert!(message.contains("only http://"), "{message}");
                    assert!(!message.contains("secret"), "{message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        for bad in ["", "http://", "http://proxy.test:99999", "http://:80"] {
            assert!(
                matches!(Proxy::parse(bad), Err(ProxyError::Invalid { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_connect_request_names_the_origin_and_the_credentials() {
        let auth = HeaderValue::from_static("Basic dTpw");
        let req = connect_request("127.0.0.1:8443", Some(&auth));
        let text = String::from_utf8_lossy(&req);
        assert!(
            text.starts_with("CONNECT 127.0.0.1:8443 HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nProxy-Authorization: Basic dTpw\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        let plain = connect_request("[::1]:443", None);
        assert!(!String::from_utf8_lossy(&plain).contains("Proxy-Authorization"));
    }

    #[test]
    fn connect_answers_parse_from_partial_reads() {
        let ok = b"HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\n";
        for cut in 0..ok.len() {
            assert_eq!(
                parse_connect_head(&ok[..cut]),
                Ok(ConnectHead::Incomplete),
                "cut {cut}"
            );
        }
        assert_eq!(
            parse_connect_head(ok),
            Ok(ConnectHead::Open { len: ok.len() })
        );
        let early = [&ok[..], b"\x16\x03"].concat();
        assert_eq!(
            parse_connect_head(&early),
            Ok(ConnectHead::Open { len: ok.len() })
        );
        assert_eq!(
            parse_connect_head(b"HTTP/1.0 200\r\n\r\n"),
            Ok(ConnectHead::Open { len: 16 })
        );
        // Bare LF line ends, as curl takes them.
        let lf = b"HTTP/1.1 200 OK\nVia: test\n\n";
        for cut in 0..lf.len() {
            assert_eq!(
                parse_connect_head(&lf[..cut]),
                Ok(ConnectHead::Incomplete),
                "cut {cut}"
            );
        }
        assert_eq!(
            parse_connect_head(lf),
            Ok(ConnectHead::Open { len: lf.len() })
        );
        assert_eq!(
            parse_connect_head(b"HTTP/1.1 407 No\n\n"),
            Ok(ConnectHead::Refused {
                status: 407,
                reason: "No".into()
            })
        );
    }

    #[test]
    fn a_refusal_names_its_status() {
        let answer = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
            Proxy-Authenticate: Basic realm=\"p\"\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            parse_connect_head(answer),
            Ok(ConnectHead::Refused {
                status: 407,
                reason: "Proxy Authentication Required".into()
            })
        );
        assert_eq!(
            parse_connect_head(b"HTTP/1.1 502\r\n\r\n"),
            Ok(ConnectHead::Refused {
                status: 502,
                reason: String::new()
            })
        );
    }

    #[test]
    fn garbage_fails_early_and_a_huge_head_fails() {
        assert!(matches!(
            parse_connect_head(b"SSH-2.0-Open"),
            Err(ConnectHeadError::NotHttp { .. })
        ));
        assert!(matches!(
            parse_connect_head(b"HT"),
            Ok(ConnectHead::Incomplete)
        ));
        assert!(matches!(
            parse_connect_head(b"HX"),
            Err(ConnectHeadError::NotHttp { .. })
        ));
        assert!(matches!(
            parse_connect_head(b"HTTP/1.1 2x0 OK\r\n"),
            Err(ConnectHeadError::NotHttp { .. })
        ));
        let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
        huge.resize(MAX_CONNECT_HEAD, b'a');
        assert_eq!(parse_connect_head(&huge), Err(ConnectHeadError::TooLarge));
        let mut long_line = b"HTTP/1.1 200 ".to_vec();
        long_line.resize(MAX_CONNECT_HEAD, b'a');
        assert_eq!(
            parse_connect_head(&long_line),
            Err(ConnectHeadError::TooLarge)
        );
    }
}
