//! The CLI test harness (after ripgrep's tests/util.rs): runs the built
//! `sonde` binary and, when an expectation fails, prints the command, its
//! directory, its exit status, stdout and stderr.

pub mod process;
pub mod sse;
pub mod wire_files;

use std::path::PathBuf;
use std::process::{Command, Output};

/// One `sonde` invocation to run.
pub struct Sonde {
    cmd: Command,
    dir: PathBuf,
    shown: String,
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
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        cmd.args(&args);
        let shown = std::iter::once("sonde".to_string())
            .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        let dir = std::env::current_dir().unwrap_or_default();
        Sonde { cmd, dir, shown }
    }

    /// Runs to completion.
    pub fn run(mut self) -> Run {
        let output = self
            .cmd
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.shown));
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

    /// stdout parsed as one JSON value.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}{}", self.describe()))
    }
}
