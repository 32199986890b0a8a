//! A real nginx on loopback, as a known peer for benchmarks and end-to-end
//! tests: one plain port and one TLS 1.3 port (h2 and http/1.1 by ALPN),
//! serving a small static file, with a certificate from [`crate::pki`].
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

/// A running nginx child process; killed and reaped when dropped.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    plain: SocketAddr,
    tls: SocketAddr,
    ca: Ca,
    leaf: Leaf,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// The body of `/index.html` (also served for `/`).
    pub const BODY: &'static str = "sonde nginx test target\n";

    /// Starts nginx with a fresh CA and a leaf for `localhost` and
    /// `127.0.0.1`. Fails if nginx is not installed (see
    /// [`crate::require_tool`]) or does not come up.
    pub fn start() -> anyhow::Result<Nginx> {
        let binary = crate::find_tool("nginx").context("nginx is not installed")?;
        let ca = Ca::new();
        let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
        let dir = tempfile::tempdir().context("creating nginx's temp dir")?;
        prepare_dir(dir.path(), &leaf)?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let (plain, tls) = pick_ports()?;
            match launch(&binary, dir.path(), plain, tls) {
                Ok(child) => {
                    return Ok(Nginx {
                        child,
                        plain,
                        tls,
                        ca,
                        leaf,
                        dir,
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

/// Two distinct free loopback ports (held together while picking).
fn pick_ports() -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let a = TcpListener::bind("127.0.0.1:0").context("picking a port")?;
    let b = TcpListener::bind("127.0.0.1:0").context("picking a port")?;
    Ok((a.local_addr()?, b.local_addr()?))
}

/// nginx.conf for `dir` (pure: no I/O).
fn config(dir: &Path, plain: SocketAddr, tls: SocketAddr) -> String {
    let d = dir.display();
    format!(
        "daemon off;
master_process off;
worker_processes 1;
error_log {d}/logs/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 4096; }}
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
    }}
    server {{
        listen {tls} ssl http2;
        ssl_certificate {d}/server.pem;
        ssl_certificate_key {d}/server-key.pem;
        ssl_protocols TLSv1.3;
        root {d}/www;
    }}
}}
"
    )
}

fn launch(binary: &Path, dir: &Path, plain: SocketAddr, tls: SocketAddr) -> anyhow::Result<Child> {
    let conf: PathBuf = dir.join("nginx.conf");
    std::fs::write(&conf, config(dir, plain, tls)).context("writing nginx.conf")?;
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
        if up(plain) && up(tls) {
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
