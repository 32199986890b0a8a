//! The CLI test harness (after ripgrep's tests/util.rs): runs the built
//! `sonde` binary and, when an expectation fails, prints the command, its
//! directory, its exit status, stdout and stderr.

pub mod fake_gateway;
pub mod http;
pub mod process;
#[cfg(feature = "gateway")]
pub mod sse;
pub mod wire_files;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use wire::Record;

/// One `sonde` invocation to run.
pub struct Sonde {
    cmd: Command,
    dir: PathBuf,
    shown: String,
    stdin: Option<Vec<u8>>,
}

/// A finished invocation.
pub struct Run {
    pub output: Output,
    shown: String,
    dir: PathBuf,
}

impl Sonde {
    /// `sonde ARGS...` in the current directory.
    pub fn new<I, S>(args: I) -> Sonde
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sonde"));
        process::clear_proxy_env(&mut cmd);
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        cmd.args(&args);
        let shown = std::iter::once("sonde".to_string())
            .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        let dir = std::env::current_dir().unwrap_or_default();
        Sonde {
            cmd,
            dir,
            shown,
            stdin: None,
        }
    }

    /// Runs in `dir` instead of the current directory.
    pub fn current_dir(mut self, dir: &Path) -> Sonde {
        self.cmd.current_dir(dir);
        self.dir = dir.to_owned();
        self
    }

    /// Sets an environment variable of the child (shown in the description).
    pub fn env(mut self, key: &str, value: &str) -> Sonde {
        self.cmd.env(key, value);
        self.shown = format!("{key}={value} {}", self.shown);
        self
    }

    /// Feeds `bytes` to its stdin (else stdin is empty).
    pub fn stdin(mut self, bytes: &[u8]) -> Sonde {
        self.stdin = Some(bytes.to_owned());
        self
    }

    /// Runs to completion.
    pub fn run(mut self) -> Run {
        let shown = &self.shown;
        let output = match self.stdin.take() {
            None => self.cmd.output(),
            Some(bytes) => self
                .cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    // Written from another thread: a child that answers
                    // before reading all of it must not deadlock the test.
                    let writer = child
                        .stdin
                        .take()
                        .map(|mut pipe| std::thread::spawn(move || pipe.write_all(&bytes)));
                    let output = child.wait_with_output();
                    if let Some(Ok(Err(e))) = writer.map(|w| w.join()) {
                        panic!("writing the stdin of {shown}: {e}");
                    }
                    output
                }),
        }
        .unwrap_or_else(|e| panic!("running {shown}: {e}"));
        Run {
            output,
            shown: self.shown,
            dir: self.dir,
        }
    }
}

impl Run {
    /// stdout, lossily decoded.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// stderr, lossily decoded.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The exit code (-1 when killed by a signal).
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    /// Everything about the run, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "\ncommand: {}\ndir: {}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n",
            self.shown,
            self.dir.display(),
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }

    /// Asserts the exit code.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code(),
            code,
            "unexpected exit status{}",
            self.describe()
        );
        self
    }

    /// Asserts that `check` holds, showing the run if not.
    #[track_caller]
    pub fn expect(self, what: &str, check: impl FnOnce(&Run) -> bool) -> Run {
        assert!(check(&self), "expected {what}{}", self.describe());
        self
    }

    /// Asserts that stderr contains `needle`.
    #[track_caller]
    pub fn expect_stderr_has(self, needle: &str) -> Run {
        assert!(
            self.stderr().contains(needle),
            "stderr lacks {needle:?}{}",
            self.describe()
        );
        self
    }

    /// stdout parsed as JSON Lines, one value a line.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}{}", self.describe()))
            })
            .collect()
    }

    /// stdout parsed as one JSON value.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}{}", self.describe()))
    }
}

/// An up record at `t_ms` taking `rt_ms`, with every phase (dn 12, cn 20,
/// tl 25, ft 80 ms) and status 200: what the tests write as wire data.
pub fn up_record(t_ms: u64, rt_ms: u64) -> Record {
    Record::up(t_ms, rt_ms)
        .with_sc(200)
        .with_phases(12, 20, 25, 80)
}
