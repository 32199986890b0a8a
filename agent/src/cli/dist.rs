//! What the Debian package ships beside the binary, checked here: dist/'s
//! shell completions (bash, zsh, fish) and man pages (one per command),
//! rendered from `Cli::command()` and compared with the committed copies,
//! and examples/gateway.toml through the gateway's own parser. A stale
//! file fails with the one command that rewrites them all: [`REGENERATE`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

/// Rewrites every generated file under dist/ (and removes man pages of
/// commands that no longer exist).
const REGENERATE: &str = "SONDE_REGENERATE=1 cargo test -p sonde --bin sonde dist";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every generated file: its path under dist/ and its content.
fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let shells = [
        (Shell::Bash, "sonde.bash"),
        (Shell::Zsh, "_sonde"),
        (Shell::Fish, "sonde.fish"),
    ];
    for (shell, name) in shells {
        let mut cmd = super::Cli::command();
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd, "sonde", &mut out);
        files.push((Path::new("completions").join(name), out));
    }
    // The pages carry the release, not the commit: they change with the
    // command line only. No `help` pseudo-command, as clap_mangen's own
    // generate_to.
    let mut cmd = super::Cli::command()
        .long_version(None::<&'static str>)
        .disable_help_subcommand(true);
    cmd.build();
    man_pages(cmd, &mut files);
    files
}

/// `cmd`'s page and, depth first, each visible subcommand's
/// (sonde-alert-..., as clap_mangen names them).
fn man_pages(cmd: clap::Command, files: &mut Vec<(PathBuf, Vec<u8>)>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub.clone(), files);
    }
    let man = clap_mangen::Man::new(cmd)
        .source(format!("sonde {}", env!("CARGO_PKG_VERSION")))
        .manual("sonde manual");
    let mut out = Vec::new();
    man.render(&mut out).expect("rendering into memory");
    files.push((Path::new("man").join(man.get_filename()), out));
}

#[test]
fn dist_files_are_current() {
    let dist = workspace().join("dist");
    let regenerate = std::env::var_os("SONDE_REGENERATE").is_some_and(|v| v == "1");
    let files = generated();
    let mut stale = Vec::new();
    for (path, content) in &files {
        let full = dist.join(path);
        if std::fs::read(&full).ok().as_deref() != Some(content.as_slice()) {
            stale.push(format!("dist/{}", path.display()));
            if regenerate {
                let parent = full.parent().expect("dist/<dir>/<file> has a parent");
                std::fs::create_dir_all(parent).expect("creating dist/'s directories");
                std::fs::write(&full, content).expect("writing a dist/ file");
            }
        }
    }
    // A page whose command is gone.
    let pages: BTreeSet<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    let entries = std::fs::read_dir(dist.join("man")).into_iter().flatten();
    for entry in entries.flatten() {
        let path = Path::new("man").join(entry.file_name());
        if path.extension().is_some_and(|e| e == "1") && !pages.contains(&path) {
            stale.push(format!("dist/{} (no such command)", path.display()));
            if regenerate {
                std::fs::remove_file(entry.path()).expect("removing a stale page");
            }
        }
    }
    if regenerate {
        eprintln!("regenerated: {stale:?}");
        return;
    }
    assert!(
        stale.is_empty(),
        "stale generated files: {}\nthe command line changed; regenerate them with:\n    {REGENERATE}\nand commit dist/",
        stale.join(", ")
    );
}

#[test]
fn every_command_has_a_page() {
    let names: Vec<String> = generated()
        .into_iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    for page in ["man/sonde.1", "man/sonde-probe.1", "man/sonde-run.1"] {
        assert!(names.iter().any(|n| n == page), "{page} in {names:?}");
    }
    assert!(names.iter().any(|n| n == "man/sonde-gateway.1"));
    assert!(names.iter().all(|n| !n.contains("help")), "{names:?}");
}

/// The sample installed as /etc/sonde/gateway.toml parses, and what it
/// sets uncommented is the defaults: a gateway on loopback, writing to
/// the unit's StateDirectory, with no agent or reader yet.
#[test]
fn example_gateway_toml_is_the_defaults() {
    let path = workspace().join("examples/gateway.toml");
    let text = std::fs::read_to_string(&path).expect("reading examples/gateway.toml");
    let cfg = gateway::GatewayConfig::parse(&text, "examples/gateway.toml", &config::SystemHost)
        .unwrap_or_else(|e| panic!("{e}"));
    let defaults = gateway::GatewayConfig::with_data_dir("/var/lib/sonde-gateway".into());
    assert_eq!(cfg, defaults);
    assert!(cfg.listen.ip().is_loopback());
}

/// Each commented-out section of the sample, uncommented, is accepted by
/// the parser too (secrets given through a host that has them), so the
/// documentation cannot drift from the parser's keys.
#[test]
fn example_gateway_toml_commented_keys_parse() {
    let path = workspace().join("examples/gateway.toml");
    let text = std::fs::read_to_string(&path).expect("reading examples/gateway.toml");
    let uncommented = uncomment(&text);
    let host = EveryFile;
    if let Err(e) = gateway::GatewayConfig::parse(&uncommented, "uncommented gateway.toml", &host) {
        panic!("{e}\n--- the sample with its `# key = value` lines uncommented:\n{uncommented}");
    }
}

/// The sample with its commented-out TOML (`# key = ...`, `# [section]`,
/// `# [[table]]`) turned into TOML; prose comments stay comments.
fn uncomment(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let body = line.strip_prefix("# ").unwrap_or("");
        let is_toml = body.starts_with('[')
            || body.split_once(" = ").is_some_and(|(k, _)| {
                !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
        out.push_str(if is_toml { body } else { line });
        out.push('\n');
    }
    out
}

/// A host in which every `{ file = ... }` and `{ env = ... }` secret exists
/// (each with its own value, as tokens must differ).
struct EveryFile;

impl config::Host for EveryFile {
    fn var(&self, name: &str) -> Result<String, std::env::VarError> {
        Ok(format!("secret-from-env-{name}"))
    }

    fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        Ok(format!("secret-from-{}", path.display()).into_bytes())
    }
}
