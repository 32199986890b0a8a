//! An HTTP forward proxy on loopback, for the probe's proxy support: it
//! opens CONNECT tunnels (bytes copied both ways) and forwards
//! absolute-form HTTP/1.1 requests to their origin, one request per
//! connection. It records what it was asked (request lines,
//! Proxy-Authorization values), can demand credentials (407) and can hold
//! its answer to CONNECT for a set time, so a test can see that delay land
//! in the probe's proxy phase. Not a general proxy: no keep-alive, no cache.

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::thread::ServerThread;

/// The most bytes of a request head the proxy reads.
const MAX_HEAD: usize = 64 << 10;

/// One request the proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The request line, e.g. `CONNECT 127.0.0.1:8443 HTTP/1.1`.
    pub line: String,
    /// The Proxy-Authorization header's value, if one came.
    pub proxy_authorization: Option<String>,
}

/// Settings of a [`ForwardProxy`] before it starts.
#[derive(Debug, Clone, Default)]
pub struct ForwardProxyBuilder {
    credentials: Option<(String, String)>,
    connect_delay: Duration,
}

impl ForwardProxyBuilder {
    /// Answers 407 unless `Proxy-Authorization: Basic` carries these.
    pub fn require_credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Holds the answer to each CONNECT for `delay` (after reading it,
    /// before opening the upstream connection).
    pub fn connect_delay(mut self, delay: Duration) -> Self {
        self.connect_delay = delay;
        self
    }

    /// Starts the proxy on 127.0.0.1:0; panics with the reason if it cannot.
    pub fn start(self) -> ForwardProxy {
        self.try_start()
            .unwrap_or_else(|e| panic!("testkit: starting the forward proxy: {e}"))
    }

    /// Starts the proxy on 127.0.0.1:0.
    pub fn try_start(self) -> std::io::Result<ForwardProxy> {
        let listener = StdTcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let config = Arc::new(Config {
            expected: self
                .credentials
                .map(|(u, p)| format!("Basic {}", base64(format!("{u}:{p}").as_bytes()))),
            connect_delay: self.connect_delay,
            seen: seen.clone(),
        });
        let thread = ServerThread::spawn("forward-proxy", move || {
            let listener = TcpListener::from_std(listener)?;
            Ok(serve(listener, config))
        })?;
        Ok(ForwardProxy {
            addr,
            seen,
            _thread: thread,
        })
    }
}

/// A running forward proxy; stops (dropping every connection) when dropped.
#[derive(Debug)]
pub struct ForwardProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    _thread: ServerThread,
}

impl ForwardProxy {
    /// A proxy that asks for nothing and answers at once.
    pub fn start() -> ForwardProxy {
        ForwardProxy::builder().start()
    }

    /// A proxy to configure.
    pub fn builder() -> ForwardProxyBuilder {
        ForwardProxyBuilder::default()
    }

    /// The address clients connect to (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// The request lines received so far.
    pub fn request_lines(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.line).collect()
    }

    /// The `host:port` of every CONNECT received so far.
    pub fn connect_targets(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter_map(|s| {
                let rest = s.line.strip_prefix("CONNECT ")?;
                Some(rest.split(' ').next().unwrap_or_default().to_owned())
            })
            .collect()
    }

    /// The Proxy-Authorization values received (one per request).
    pub fn proxy_authorizations(&self) -> Vec<Option<String>> {
        self.seen()
            .into_iter()
            .map(|s| s.proxy_authorization)
            .collect()
    }
}

struct Config {
    expected: Option<String>,
    connect_delay: Duration,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn serve(listener: TcpListener, config: Arc<Config>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let config = config.clone();
        tokio::spawn(async move {
            let _ = handle(client, &config).await;
        });
    }
}

/// A request head: its line, headers and what came after it.
struct Head {
    line: String,
    headers: Vec<(String, String)>,
    rest: Vec<u8>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn read_head(client: &mut TcpStream) -> std::io::Result<Option<Head>> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Some(Head {
        line,
        headers,
        rest: buf[end + 4..].to_vec(),
    }))
}

async fn handle(mut client: TcpStream, config: &Config) -> std::io::Result<()> {
    let Some(head) = read_head(&mut client).await? else {
        return Ok(());
    };
    let authorization = head.header("proxy-authorization").map(str::to_owned);
    if let Ok(mut seen) = config.seen.lock() {
        seen.push(Seen {
            line: head.line.clone(),
            proxy_authorization: authorization.clone(),
        });
    }
    if config.expected.is_some() && authorization != config.expected {
        client
            .write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  Proxy-Authenticate: Basic realm=\"testkit\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        return client.shutdown().await;
    }
    let mut parts = head.line.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    if method == "CONNECT" {
        tokio::time::sleep(config.connect_delay).await;
        let Ok(mut upstream) = TcpStream::connect(target).await else {
            client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                .await?;
            return Ok(());
        };
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        upstream.write_all(&head.rest).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    // Absolute-form: http://authority/path goes to authority as origin-form.
    let Some(rest) = target.strip_prefix("http://") else {
        client
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let authority = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.contains(']'))
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let Ok(mut upstream) = TcpStream::connect(&authority).await else {
        client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    let mut out = format!("{method} {path} {version}\r\n");
    for (name, value) in &head.headers {
        if name.eq_ignore_ascii_case("proxy-authorization")
            || name.eq_ignore_ascii_case("proxy-connection")
        {
            continue;
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    upstream.write_all(out.as_bytes()).await?;
    upstream.write_all(&head.rest).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// Standard base64 with padding (RFC 4648), for the expected credentials.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for group in input.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_pads_as_rfc_4648() {
        assert_eq!(base64(b"user:p@ss w"), "dXNlcjpwQHNzIHc=");
        assert_eq!(base64(b"u:p"), "dTpw");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }
}
