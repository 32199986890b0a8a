//! Finding external tools (nginx, curl...) and the convention for tests that
//! need one (or another installed piece, such as an nginx module): fail
//! under `SONDE_REQUIRE_TOOLS=1` (CI), else skip loudly.

use std::path::{Path, PathBuf};

/// Directories searched after `PATH`: daemons such as nginx live in sbin,
/// which an unprivileged user's `PATH` often lacks.
const EXTRA_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/local/sbin"];

/// The path of executable `name`, searched in `PATH` then the sbin directories.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Whether tool `name` is installed, for tests that need it.
///
/// Returns `true` if it is. If not: panics when `SONDE_REQUIRE_TOOLS=1` (CI
/// must not silently skip), otherwise prints a loud skip message to stderr
/// and returns `false` so the test can `return` early:
///
/// ```no_run
/// if !testkit::require_tool("nginx") {
///     return;
/// }
/// ```
pub fn require_tool(name: &str) -> bool {
    require(&format!("tool `{name}`"), find_tool(name).is_some())
}

/// Whether `python3` can import every one of `modules` (reference
/// clients from PyPI: PyJWT, selenium...), with [`require_tool`]'s
/// convention when it cannot.
pub fn require_python(modules: &[&str]) -> bool {
    let script = modules
        .iter()
        .map(|m| format!("import {m}"))
        .collect::<Vec<_>>()
        .join("; ");
    let ok = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require(&format!("python3 with {}", modules.join(", ")), ok)
}

/// Whether the test runs as root, for tests that mount a file system or
/// set attributes root alone may: `true`, a panic under
/// `SONDE_REQUIRE_TOOLS=1` (CI runs as root and must not skip), or a loud
/// skip message and `false`. `why` says what needs root.
pub fn require_root(why: &str) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0");
    require(&format!("root ({why})"), root)
}

/// The convention behind [`require_tool`] for anything a test needs that
/// may be missing (`what` names it in the messages; `installed` says whether
/// it is there): `true`, a panic under `SONDE_REQUIRE_TOOLS=1`, or a loud
/// skip message and `false`.
pub(crate) fn require(what: &str, installed: bool) -> bool {
    if installed {
        return true;
    }
    if std::env::var("SONDE_REQUIRE_TOOLS").is_ok_and(|v| v == "1") {
        panic!("required {what} is not installed (SONDE_REQUIRE_TOOLS=1)");
    }
    eprintln!(
        "\n*** SKIPPED: {what} is not installed; this test did not run. \
         Set SONDE_REQUIRE_TOOLS=1 to make this a failure. ***\n"
    );
    false
}
