//! Faults: inputs. Configuration files that are not files (`/dev/zero`, a
//! FIFO), too large, or that hold an inline credential: `sonde
//! check-config`, `sonde run` and `sonde gateway` refuse them at once,
//! naming the path, and never print the credential.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::Sonde;
use crate::util::process::Process;

/// A run that reads a FIFO or /dev/zero would hang or run for minutes;
/// a refusal takes milliseconds.
const PROMPT: Duration = Duration::from_secs(10);

/// Address space for a child that might read /dev/zero: 2 GiB, so a
/// regression fails fast instead of eating the machine's memory.
const ADDRESS_SPACE: &str = "-v 2097152";

/// `sonde ARGS` under [`ADDRESS_SPACE`], which must exit with `code`
/// within [`PROMPT`] and say `needle` on stderr.
#[track_caller]
fn refused_promptly(args: &[&str], code: i32, needle: &str) {
    let started = Instant::now();
    let mut child = Process::start_limited(args, &[], ADDRESS_SPACE);
    let status = child.wait(PROMPT);
    assert_eq!(status, code, "{}", child.describe());
    assert!(child.stderr().contains(needle), "{}", child.describe());
    assert!(started.elapsed() < PROMPT);
}

fn fifo_in(dir: &Path) -> std::path::PathBuf {
    let fifo = dir.join("sonde.toml");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success(), "mkfifo {}", fifo.display());
    fifo
}

#[test]
fn check_config_refuses_dev_zero_and_a_fifo_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = fifo_in(dir.path());
    for (path, kind) in [
        (Path::new("/dev/zero"), "a character device"),
        (fifo.as_path(), "a FIFO"),
    ] {
        let shown = path.display().to_string();
        refused_promptly(
            &["check-config", &shown],
            1,
            &format!("cannot read {shown}: is {kind}, not a regular file"),
        );
        refused_promptly(
            &["run", "--config", &shown],
            2,
            &format!("is {kind}, not a regular file"),
        );
    }
}

#[test]
fn an_oversized_config_is_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sonde.toml");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(config::file::MAX_FILE_BYTES + 1).unwrap();
    let shown = path.display().to_string();
    Sonde::new(["check-config", &shown])
        .run()
        .expect_code(1)
        .expect_stderr_has(&format!(
            "cannot read {shown}: is larger than 16 MiB, the limit for a configuration file"
        ));
}

#[cfg(feature = "gateway")]
#[test]
fn the_gateway_refuses_a_fifo_and_dev_zero_as_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = fifo_in(dir.path());
    for (path, kind) in [
        (Path::new("/dev/zero"), "a character device"),
        (fifo.as_path(), "a FIFO"),
    ] {
        let shown = path.display().to_string();
        refused_promptly(
            &["gateway", "--config", &shown],
            2,
            &format!("reading {shown}: is {kind}, not a regular file"),
        );
    }
}

#[test]
fn an_inline_authorization_header_is_refused_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sonde.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\nstate_dir = \"{}\"\n[[check]]\nname = \"api\"\nurl = \"http://127.0.0.1:1/\"\n\
             headers = {{ authorization = \"Bearer hunter2-inline\" }}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let shown = path.display().to_string();
    let run = Sonde::new(["check-config", &shown])
        .run()
        .expect_code(1)
        .expect_stderr_has(&format!(
            "{shown}:6:29: check[\"api\"].headers.authorization: header authorization carries a credential"
        ))
        .expect_stderr_has("{ env = \"NAME\" } or { file = \"/path\" }");
    assert!(!run.stdout().contains("hunter2"), "{}", run.describe());
    assert!(!run.stderr().contains("hunter2"), "{}", run.describe());
    Sonde::new(["run", "--config", &shown])
        .run()
        .expect_code(2)
        .expect("the value never shown", |r| !r.stderr().contains("hunter2"));
}

#[test]
fn a_config_without_an_enabled_check_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sonde.toml");
    std::fs::write(&path, "").unwrap();
    let shown = path.display().to_string();
    Sonde::new(["check-config", &shown])
        .run()
        .expect_code(1)
        .expect_stderr_has(&format!("{shown}:1:1: check: no enabled check"));
    Sonde::new(["run", "--config", &shown])
        .run()
        .expect_code(2)
        .expect_stderr_has("no enabled check, nothing would be probed");
}

#[test]
fn probe_refuses_dev_zero_and_a_fifo_as_pem_files() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = fifo_in(dir.path());
    for (path, kind) in [
        (Path::new("/dev/zero"), "a character device"),
        (fifo.as_path(), "a FIFO"),
    ] {
        let shown = path.display().to_string();
        refused_promptly(
            &["probe", "https://127.0.0.1:9/", "--cacert", &shown],
            2,
            &format!("{shown}: is {kind}, not a regular file"),
        );
    }
}

#[cfg(feature = "gateway")]
#[test]
fn the_gateway_refuses_dev_zero_and_a_fifo_as_its_tls_files() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = fifo_in(dir.path());
    let addr = crate::util::process::free_addr();
    let token = dir.path().join("token");
    std::fs::write(&token, "agent-token-for-tls-input-faults\n").unwrap();
    for (path, kind) in [
        (Path::new("/dev/zero"), "a character device"),
        (fifo.as_path(), "a FIFO"),
    ] {
        let shown = path.display().to_string();
        let config = dir.path().join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"{addr}\"\ndata_dir = \"{}\"\n\n[tls]\ncert_file = \"{shown}\"\n\
                 key_file = \"{shown}\"\n\n[[agent]]\nid = \"faults\"\ntoken = {{ file = \"{}\" }}\n",
                dir.path().join("data").display(),
                token.display()
            ),
        )
        .unwrap();
        let config = config.display().to_string();
        refused_promptly(
            &["gateway", "--config", &config],
            2,
            &format!("{shown}: is {kind}, not a regular file"),
        );
    }
}
