//! Stamps the binary with where it came from, for `sonde --version`:
//! `SONDE_COMMIT` (the short git commit, or `unknown` outside a git
//! checkout, e.g. a source tarball) and `SONDE_BUILD_DATE` (UTC, from
//! `SOURCE_DATE_EPOCH` when set, for reproducible builds). It never fails
//! the build: without git, or with git refusing, the commit is `unknown`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let commit = commit().unwrap_or_else(|| "unknown".to_owned());
    let date = build_date();
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!("cargo:rustc-env=SONDE_COMMIT={commit}");
    println!("cargo:rustc-env=SONDE_BUILD_DATE={date}");
    println!("cargo:rustc-env=SONDE_LONG_VERSION={version} ({commit} {date})");
}

/// The short commit of the workspace's own checkout, and the files whose
/// change means a new commit (HEAD, the branch it points at, packed-refs,
/// HEAD's reflog) told to cargo, so the stamp follows commits without rerunning always.
fn commit() -> Option<String> {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.parent()?;
    // Only this workspace's own .git: a tarball unpacked inside some other
    // repository must not report that repository's commit.
    if !root.join(".git").exists() {
        return None;
    }
    let head = git(root, &["rev-parse", "--git-path", "HEAD"])?;
    watch(root, &head);
    if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(root, &["rev-parse", "--git-path", &branch]) {
            watch(root, &path);
        }
    }
    if let Some(packed) = git(root, &["rev-parse", "--git-path", "packed-refs"]) {
        watch(root, &packed);
    }
    // HEAD's reflog: written by every commit, checkout and reset, also
    // when the branch's ref was only in packed-refs and is now a new file.
    if let Some(log) = git(root, &["rev-parse", "--git-path", "logs/HEAD"]) {
        watch(root, &log);
    }
    git(root, &["rev-parse", "--short=7", "HEAD"])
}

/// `git -C root args...`'s first line of output, if it ran and succeeded.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().next()?.trim().to_owned();
    (!line.is_empty()).then_some(line)
}

/// Reruns this script when `path` (relative to `root`, as git prints it)
/// changes; only for files that exist, as cargo reruns always for one
/// that does not.
fn watch(root: &Path, path: &str) {
    let path = root.join(path);
    if path.is_file() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// `YYYY-MM-DD` (UTC) of `SOURCE_DATE_EPOCH`, or of now.
fn build_date() -> String {
    let from_env = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok());
    let secs = from_env.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
    });
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day):
/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}
