//! A real server (Prometheus, blackbox_exporter) as a child process on a
//! free loopback port: started with the port in its arguments, retried
//! when the port was taken between picking and binding, ready when its
//! readiness URL answers 200, killed and reaped on drop (panics included).
//! Its stdout and stderr go to a log file, shown when it fails to start.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a daemon may take to answer its readiness URL.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts when a picked port is taken between picking and binding it.
const START_ATTEMPTS: usize = 4;
/// Between readiness polls.
const POLL: Duration = Duration::from_millis(50);

/// A running child; killed and reaped when dropped.
#[derive(Debug)]
pub(crate) struct Daemon {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Daemon {
    /// Starts `binary` with the arguments `args(addr)` gives for a free
    /// loopback `addr`, logging to `log`; ready once `GET ready_path`
    /// answers 200.
    pub(crate) fn start(
        binary: &Path,
        args: impl Fn(SocketAddr) -> Vec<String>,
        log: &Path,
        ready_path: &str,
    ) -> anyhow::Result<Daemon> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let addr = free_addr()?;
            match launch(binary, &args(addr), addr, log, ready_path) {
                Ok(child) => {
                    return Ok(Daemon {
                        child,
                        addr,
                        log: log.to_owned(),
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("{} did not start", binary.display())))
    }

    /// Where it listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its log so far (stdout and stderr).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("picking a free loopback port")
}

fn launch(
    binary: &Path,
    args: &[String],
    addr: SocketAddr,
    log: &Path,
    ready_path: &str,
) -> anyhow::Result<Child> {
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone().context("duplicating the log file")?;
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("running {}", binary.display()))?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().context("waiting for the child")? {
            bail!(
                "{} {} exited at startup ({status}):\n{}",
                binary.display(),
                args.join(" "),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if crate::fetch::get(addr, ready_path, &[]).is_ok_and(|f| f.status == 200) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{} was not ready ({ready_path} on {addr}) within {START_TIMEOUT:?}:\n{}",
                binary.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(POLL);
    }
}
