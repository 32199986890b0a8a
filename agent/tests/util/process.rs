//! A `sonde` subcommand running as a child process (`sonde run`, `sonde
//! gateway`), its stdout and stderr collected as it goes, stopped with
//! real signals, killed on drop. Failure messages show its output.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running `sonde` child.
pub struct Process {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// The threads collecting stdout and stderr, joined once it exits so
    /// that its output is complete.
    collectors: Vec<JoinHandle<()>>,
    shown: String,
}

impl Process {
    /// Starts `sonde ARGS...` with extra environment variables.
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Process {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sonde"));
        cmd.args(args);
        Process::spawn(cmd, envs, format!("sonde {}", args.join(" ")))
    }

    /// Like [`Process::start`], in working directory `dir` (for what
    /// resolves against it, such as the quickstart's `./sonde-data`).
    pub fn start_in(dir: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> Process {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sonde"));
        cmd.args(args).current_dir(dir);
        let shown = format!("(in {}) sonde {}", dir.display(), args.join(" "));
        Process::spawn(cmd, envs, shown)
    }

    /// Like [`Process::start`], with the soft and hard RLIMIT_NOFILE of
    /// the child set to `max_fds`.
    pub fn start_with_fd_limit(args: &[&str], envs: &[(&str, &str)], max_fds: u64) -> Process {
        Process::start_limited(args, envs, &format!("-n {max_fds}"))
    }

    /// Like [`Process::start`], under the shell's `ulimit LIMITS` (e.g.
    /// `-n 256` descriptors, `-v 2097152` KiB of address space), which
    /// then execs `sonde`: no unsafe `pre_exec` here.
    pub fn start_limited(args: &[&str], envs: &[(&str, &str)], limits: &str) -> Process {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit {limits} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_sonde"))
            .args(args);
        let shown = format!("(ulimit {limits}) sonde {}", args.join(" "));
        Process::spawn(cmd, envs, shown)
    }

    fn spawn(mut cmd: Command, envs: &[(&str, &str)], shown: String) -> Process {
        clear_proxy_env(&mut cmd);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {shown}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut collectors = Vec::new();
        if let Some(out) = child.stdout.take() {
            collectors.push(collect(out, stdout.clone()));
        }
        if let Some(err) = child.stderr.take() {
            collectors.push(collect(err, stderr.clone()));
        }
        Process {
            child,
            stdout,
            stderr,
            collectors,
            shown,
        }
    }

    /// Sends signal `name` (`TERM`, `KILL`, `HUP`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap_or_else(|e| panic!("kill -{name}: {e}"));
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `limit` for the exit; panics (killing it) if it hangs.
    /// Returns the exit code, -1 when killed by a signal.
    pub fn wait(&mut self, limit: Duration) -> i32 {
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    for collector in self.collectors.drain(..) {
                        let _ = collector.join();
                    }
                    return status.code().unwrap_or(-1);
                }
                Ok(None) if start.elapsed() < limit => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    panic!(
                        "{} did not exit within {limit:?}{}",
                        self.shown,
                        self.describe()
                    );
                }
            }
        }
    }

    /// Like [`Process::wait`], sampling the child's peak resident memory
    /// (`VmHWM` in /proc/PID/status, a high-water mark, so a sample just
    /// before the exit holds the peak) every few milliseconds. Returns the
    /// exit code and the last peak seen, in KiB.
    pub fn wait_with_peak_rss(&mut self, limit: Duration) -> (i32, u64) {
        let start = Instant::now();
        let status = format!("/proc/{}/status", self.child.id());
        let mut peak_kib = 0;
        loop {
            if let Ok(text) = std::fs::read_to_string(&status) {
                let hwm = text
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
                peak_kib = peak_kib.max(hwm.unwrap_or(0));
            }
            if let Ok(Some(_)) | Err(_) = self.child.try_wait() {
                return (self.wait(Duration::ZERO), peak_kib);
            }
            if start.elapsed() > limit {
                return (self.wait(Duration::ZERO), peak_kib);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// SIGTERM, then waits for a clean exit (status 0).
    #[track_caller]
    pub fn stop(&mut self) {
        self.signal("TERM");
        let code = self.wait(Duration::from_secs(20));
        assert_eq!(code, 0, "exit status of {}{}", self.shown, self.describe());
    }

    /// Waits (up to 15 s) until `addr` accepts connections, as a server
    /// child's sign that it is up; panics with its output if it exits or
    /// takes longer.
    #[track_caller]
    pub fn wait_listening(&mut self, addr: SocketAddr) {
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                self.is_running() && start.elapsed() < Duration::from_secs(15),
                "{} is not listening on {addr}{}",
                self.shown,
                self.describe()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its process id (for /proc/PID).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().map(|b| b.clone()).unwrap_or_default()).into()
    }

    /// stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().map(|b| b.clone()).unwrap_or_default()).into()
    }

    /// The command and its output, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "\ncommand: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.shown,
            self.stdout(),
            self.stderr()
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut v) = into.lock() {
                v.extend_from_slice(&buf[..n]);
            }
        }
    })
}

/// Polls `probe` every 50 ms until it gives a value; after `limit`,
/// panics naming `what`, with `context()` (the processes' output).
#[cfg(feature = "gateway")]
#[track_caller]
pub fn wait_for<T>(
    limit: Duration,
    what: &str,
    context: &dyn Fn() -> String,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback address with a port free a moment ago (for a child to bind).
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("picking a free port: {e}"))
}

/// Polls `cond` every 10 ms until it holds; panics after `limit`.
#[track_caller]
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The variables `sonde probe` and `sonde wait` take a proxy from, as
/// curl does: a test's child never inherits the machine's (a CI runner
/// behind a proxy would send loopback probes through it). A test that
/// wants one sets it on the child after this.
pub const PROXY_ENV: [&str; 7] = [
    "http_proxy",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// Removes [`PROXY_ENV`] from `cmd`'s environment.
pub fn clear_proxy_env(cmd: &mut Command) {
    for name in PROXY_ENV {
        cmd.env_remove(name);
    }
}
