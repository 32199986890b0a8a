//! A real nginx on loopback, as a known peer for benchmarks and end-to-end
//! tests: one plain port, one TLS 1.3 port (h2 and http/1.1 by ALPN) and
//! one TLS 1.3 port that speaks http/1.1 only (for benches whose bare
//! floor is an HTTP/1.1 GET), serving a small static file, with a certificate from [`crate::pki`].
//! Where Debian's echo module (libnginx-mod-http-echo) is installed, both
//! ports also serve a slow first byte and a slow body
//! ([`Nginx::SLOW_FIRST_BYTE`], [`Nginx::SLOW_BODY`]).
//!
//! nginx runs in the foreground as a child process (`daemon off;
//! master_process off;`) with its config, logs, pid and temp paths in a temp
//! dir, so it needs no root and touches nothing outside it. Dropping the
//! handle kills and reaps it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::pki::{Ca, Leaf};

/// How long nginx may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts when a picked port is taken between picking and nginx binding it.
const START_ATTEMPTS: usize = 4;
/// Where nginx's echo module may be installed (Debian's modules directory first).
const ECHO_MODULE_PATHS: &[&str] = &[
    "/usr/lib/nginx/modules/ngx_http_echo_module.so",
    "/usr/lib64/nginx/modules/ngx_http_echo_module.so",
    "/usr/local/nginx/modules/ngx_http_echo_module.so",
];

/// The path of nginx's echo module (`ngx_http_echo_module.so`), if installed.
pub fn echo_module() -> Option<PathBuf> {
    ECHO_MODULE_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Whether nginx's echo module is installed, for tests that need the slow
/// locations: the [`crate::require_tool`] convention (panic under
/// `SONDE_REQUIRE_TOOLS=1`, else a loud skip and `false`).
pub fn require_echo_module() -> bool {
    crate::tools::require(
        "nginx echo module (Debian: libnginx-mod-http-echo)",
        echo_module().is_some(),
    )
}

/// A running nginx child process; killed and reaped when dropped.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    plain: SocketAddr,
    tls: SocketAddr,
    tls_http11: SocketAddr,
    ca: Ca,
    leaf: Leaf,
    dir: tempfile::TempDir,
    echo: bool,
}

impl Nginx {
    /// The body of `/index.html` (also served for `/`).
    pub const BODY: &'static str = "sonde nginx test target\n";

    /// With the echo module: waits [`Nginx::ECHO_DELAY`] before sending
    /// anything (headers included), then answers 200 with a short body.
    pub const SLOW_FIRST_BYTE: &'static str = "/slow-first-byte";

    /// With the echo module: sends the headers and a first body line at
    /// once, waits [`Nginx::ECHO_DELAY`], then sends the rest of the body.
    pub const SLOW_BODY: &'static str = "/slow-body";

    /// The wait inside [`Nginx::SLOW_FIRST_BYTE`] and [`Nginx::SLOW_BODY`].
    pub const ECHO_DELAY: Duration = Duration::from_millis(200);

    /// How much shorter than [`Nginx::ECHO_DELAY`] the wait may look from
    /// the client: nginx's timers run on a millisecond clock that is
    /// truncated and cached once per event-loop turn, so a timer counts
    /// from the start of the turn that armed it, not from the bytes sent
    /// in it. On a loaded 2-core CI machine one turn (a TLS handshake, an
    /// h2 preface) was seen to take 4 ms. Assert
    /// `phase >= ECHO_DELAY - ECHO_TIMER_SLACK`: a delay in the wrong phase
    /// still fails by 190 ms.
    pub const ECHO_TIMER_SLACK: Duration = Duration::from_millis(10);

    /// Starts nginx with a fresh CA and a leaf for `localhost` and
    /// `127.0.0.1`, loading the echo module if it is installed. Fails if
    /// nginx is not installed (see [`crate::require_tool`]) or does not come up.
    pub fn start() -> anyhow::Result<Nginx> {
        let binary = crate::find_tool("nginx").context("nginx is not installed")?;
        let echo = echo_module();
        let ca = Ca::new();
        let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
        let dir = tempfile::tempdir().context("creating nginx's temp dir")?;
        prepare_dir(dir.path(), &leaf)?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let ports = pick_ports()?;
            match launch(&binary, dir.path(), ports, echo.as_deref()) {
                Ok(child) => {
                    return Ok(Nginx {
                        child,
                        plain: ports.plain,
                        tls: ports.tls,
                        tls_http11: ports.tls_http11,
                        ca,
                        leaf,
                        dir,
                        echo: echo.is_some(),
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("nginx did not start")))
    }

    /// The plain HTTP address (`127.0.0.1:PORT`).
    pub fn plain_addr(&self) -> SocketAddr {
        self.plain
    }

    /// The TLS address (`127.0.0.1:PORT`; TLS 1.3 only, ALPN h2 and http/1.1).
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls
    }

    /// A TLS address (`127.0.0.1:PORT`; TLS 1.3 only) whose ALPN offers
    /// http/1.1 alone, so every client speaks HTTP/1.1 there.
    pub fn tls_http11_addr(&self) -> SocketAddr {
        self.tls_http11
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn plain_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.plain)
    }

    /// `https://localhost:PORT{path}` (the leaf covers `localhost` and `127.0.0.1`).
    pub fn tls_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.tls.port())
    }

    /// The CA that issued nginx's certificate: trust it in the client.
    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// nginx's server certificate.
    pub fn leaf(&self) -> &Leaf {
        &self.leaf
    }

    /// The directory holding the config, logs and `ca.pem` (for `--cacert`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the echo module was loaded, so that [`Nginx::SLOW_FIRST_BYTE`]
    /// and [`Nginx::SLOW_BODY`] are served (else they are 404).
    pub fn has_echo(&self) -> bool {
        self.echo
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prepare_dir(dir: &Path, leaf: &Leaf) -> anyhow::Result<()> {
    for sub in ["www", "tmp", "logs"] {
        std::fs::create_dir_all(dir.join(sub)).with_context(|| format!("creating {sub}/"))?;
    }
    std::fs::write(dir.join("www/index.html"), Nginx::BODY).context("writing index.html")?;
    leaf.write_pem(dir, "server");
    Ok(())
}

/// Where nginx listens.
#[derive(Debug, Clone, Copy)]
struct Ports {
    plain: SocketAddr,
    tls: SocketAddr,
    tls_http11: SocketAddr,
}

/// Three distinct free loopback ports (held together while picking).
fn pick_ports() -> anyhow::Result<Ports> {
    let a = TcpListener::bind("127.0.0.1:0").context("picking a port")?;
    let b = TcpListener::bind("127.0.0.1:0").context("picking a port")?;
    let c = TcpListener::bind("127.0.0.1:0").context("picking a port")?;
    Ok(Ports {
        plain: a.local_addr()?,
        tls: b.local_addr()?,
        tls_http11: c.local_addr()?,
    })
}

/// nginx.conf for `dir`, with the slow locations if `echo` (the module's
/// path) is given (pure: no I/O).
fn config(dir: &Path, ports: Ports, echo: Option<&Path>) -> String {
    let Ports {
        plain,
        tls,
        tls_http11,
    } = ports;
    let d = dir.display();
    let load_echo = echo
        .map(|m| format!("load_module {};\n", m.display()))
        .unwrap_or_default();
    let slow = if echo.is_some() {
        let secs = Nginx::ECHO_DELAY.as_secs_f64();
        format!(
            "location = {first_byte} {{ echo_sleep {secs}; echo \"slow first byte\"; }}
        location = {body} {{ echo \"first\"; echo_flush; echo_sleep {secs}; echo \"rest\"; }}",
            first_byte = Nginx::SLOW_FIRST_BYTE,
            body = Nginx::SLOW_BODY,
        )
    } else {
        String::new()
    };
    format!(
        "{load_echo}daemon off;
master_process off;
worker_processes 1;
error_log {d}/logs/error.log warn;
pid {d}/nginx.pid;
# Above the agent bench's concurrency (4096): out of connections, nginx
# closes live ones and their probes end as http_protocol, not as the agent's fault.
events {{ worker_connections 16384; }}
http {{
    access_log off;
    default_type text/html;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen {plain};
        root {d}/www;
        {slow}
    }}
    server {{
        listen {tls} ssl http2;
        ssl_certificate {d}/server.pem;
        ssl_certificate_key {d}/server-key.pem;
        ssl_protocols TLSv1.3;
        root {d}/www;
        {slow}
    }}
    server {{
        listen {tls_http11} ssl;
        ssl_certificate {d}/server.pem;
        ssl_certificate_key {d}/server-key.pem;
        ssl_protocols TLSv1.3;
        root {d}/www;
    }}
}}
"
    )
}

fn launch(binary: &Path, dir: &Path, ports: Ports, echo: Option<&Path>) -> anyhow::Result<Child> {
    let conf: PathBuf = dir.join("nginx.conf");
    std::fs::write(&conf, config(dir, ports, echo)).context("writing nginx.conf")?;
    let stderr =
        std::fs::File::create(dir.join("logs/stderr.log")).context("creating stderr.log")?;
    let mut child = Command::new(binary)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("logs/error.log"))
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("running {}", binary.display()))?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().context("waiting for nginx")? {
            bail!("nginx exited at startup ({status}):\n{}", logs(dir));
        }
        let up = |addr| TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok();
        if up(ports.plain) && up(ports.tls) && up(ports.tls_http11) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "nginx did not listen within {START_TIMEOUT:?}:\n{}",
                logs(dir)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn logs(dir: &Path) -> String {
    ["logs/error.log", "logs/stderr.log"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> Ports {
        Ports {
            plain: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: SocketAddr::from(([127, 0, 0, 1], 8443)),
            tls_http11: SocketAddr::from(([127, 0, 0, 1], 8444)),
        }
    }

    #[test]
    fn without_the_echo_module_the_config_names_none_of_it() {
        let conf = config(Path::new("/tmp/x"), ports(), None);
        assert!(
            !conf.contains("load_module") && !conf.contains("echo"),
            "{conf}"
        );
    }

    #[test]
    fn with_the_echo_module_both_servers_get_the_slow_locations() {
        let module = Path::new("/usr/lib/nginx/modules/ngx_http_echo_module.so");
        let conf = config(Path::new("/tmp/x"), ports(), Some(module));
        assert!(
            conf.starts_with(&format!("load_module {};\n", module.display())),
            "{conf}"
        );
        for path in [Nginx::SLOW_FIRST_BYTE, Nginx::SLOW_BODY] {
            assert_eq!(
                conf.matches(&format!("location = {path} ")).count(),
                2,
                "{conf}"
            );
        }
        assert_eq!(conf.matches("echo_sleep 0.2;").count(), 4, "{conf}");
    }
}
