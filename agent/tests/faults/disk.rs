//! Disk faults under load: `sonde run` with its state dir on a small tmpfs
//! that fills up, and with its records dir made immutable (rotation fails
//! with EPERM, which stops root too). The file sink holds what it has,
//! `/readyz` answers 503 naming it, it says so once, resumes by itself when
//! the cause clears, and the files then hold every result exactly once in
//! one unbroken frame sequence.
//!
//! Mounting needs root (CI runs as root): as another user these tests fail
//! under `SONDE_REQUIRE_TOOLS=1` (CI sets it), else say why and return.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testkit::http::HttpTarget;
use wire::ReadItem;

use crate::util::Sonde;
use crate::util::http;
use crate::util::process::{Process, free_addr, wait_until};

/// Checks probed every second: enough load that the sink is writing when
/// the fault comes.
const CHECKS: usize = 200;
/// The tmpfs the state dir lives on.
const TMPFS_SIZE: &str = "2m";
/// How long a test waits for the sink to heal: its longest retry wait
/// (`sonde::sink::RETRY_MAX`) and a margin. The outages here are a few
/// seconds, so in practice the next retry comes within 4 s.
const HEAL_LIMIT: Duration = Duration::from_secs(45);

/// A tmpfs mounted on a fresh directory, unmounted when dropped (declare
/// it before the agent's `Process`, so the agent is killed first).
pub(super) struct Tmpfs {
    pub(super) dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one, or `None` (after saying why) when not root; not root
    /// under `SONDE_REQUIRE_TOOLS=1` (CI) is a failure, not a skip.
    pub(super) fn mount(size: &str) -> Option<Tmpfs> {
        if !testkit::require_root("mounting a tmpfs") {
            return None;
        }
        let parent = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = parent.path().join("state");
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .unwrap_or_else(|e| panic!("mount: {e}"));
        assert!(out.status.success(), "mount tmpfs: {out:?}");
        Some(Tmpfs {
            dir,
            _parent: parent,
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let records = self.dir.join("records");
        let _ = Command::new("chattr").arg("-i").arg(&records).output();
        let _ = Command::new("umount").arg("-l").arg(&self.dir).output();
    }
}

/// The file sink's configuration for these tests, plus `extra`.
fn file_sink(extra: &str) -> String {
    format!(
        "[sinks.file]\nenabled = true\nfsync = \"always\"\n\
         segment_max_bytes = \"256KiB\"\nretention_max_bytes = \"1GiB\"\n{extra}"
    )
}

fn config(state: &Path, metrics: SocketAddr, target: &HttpTarget, sinks: &str) -> String {
    let mut s = format!(
        "[agent]\nid = \"disk\"\nstate_dir = \"{}\"\nmetrics_listen = \"{metrics}\"\n\
         [defaults]\ninterval = \"1s\"\ntimeout = \"900ms\"\n{sinks}",
        state.display()
    );
    for i in 0..CHECKS {
        s.push_str(&format!(
            "[[check]]\nname = \"c{i}\"\nurl = \"{}\"\n",
            target.url(&format!("/{i}"))
        ));
    }
    s
}

/// Starts the agent on `config` and waits until it is ready and `sink`
/// has written a few seconds' worth of results.
fn start(tmp: &Path, config: &str, metrics: SocketAddr, sink: &str) -> Process {
    let path = tmp.join("sonde.toml");
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("{e}"));
    let path = path.display().to_string();
    let envs = [("RUST_LOG", "info"), ("DISK_GATEWAY_TOKEN", "t0ken")];
    let mut agent = Process::start(&["run", "--config", &path], &envs);
    agent.wait_listening(metrics);
    wait_until(Duration::from_secs(20), "results written", || {
        written(metrics, sink) >= 2.0 * CHECKS as f64
    });
    agent
}

fn written(metrics: SocketAddr, sink: &str) -> f64 {
    let labels = format!("sink=\"{sink}\"");
    http::scrape(metrics, "sonde_sink_records_written_total", &labels)
}

/// The results `sink` dropped, for every reason.
fn dropped(metrics: SocketAddr, sink: &str) -> f64 {
    let series = format!("sonde_sink_records_dropped_total{{sink=\"{sink}\",");
    let body = http::get(metrics, "/metrics").body;
    let samples: Vec<f64> = body
        .lines()
        .filter(|l| l.starts_with(&series))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse().ok())
        .collect();
    assert_eq!(samples.len(), 4, "one series per reason:\n{body}");
    samples.iter().sum()
}

/// Waits until `/readyz` answers `status`; returns its body.
fn readyz_becomes(agent: &Process, metrics: SocketAddr, status: u16, limit: Duration) -> String {
    let mut body = String::new();
    wait_until(limit, &format!("/readyz {status}"), || {
        let a = http::get(metrics, "/readyz");
        body = a.body;
        a.status == status
    });
    assert!(!body.is_empty(), "{}", agent.describe());
    body
}

/// What the run left: after a clean stop, the files under `records` read
/// back strictly (no damage) and with `sonde decode --strict`, in one
/// session with no gap and no repeated sequence number, and every result
/// the agent produced (one per request the target saw) is there exactly
/// once: nothing was dropped. Also the log: one WARN when the sink started
/// failing, one INFO when it healed, holding results.
fn assert_everything_written(
    agent: &mut Process,
    records: &Path,
    target: &HttpTarget,
    counted: f64,
) {
    agent.stop();
    let (produced, frames) = assert_files_hold_everything(agent, records, target, counted);
    assert_one_warn_one_heal(agent, records, produced, frames, true);
}

/// After the agent stopped: the files under `records` hold every result
/// it produced exactly once, in one session without gap or repeat, and
/// no fewer than the metrics counted written. Returns (results, frames).
fn assert_files_hold_everything(
    agent: &Process,
    records: &Path,
    target: &HttpTarget,
    counted: f64,
) -> (usize, usize) {
    let mut seqs = Vec::new();
    let mut results = Vec::new();
    for (file, item) in crate::util::wire_files::items(records) {
        match item {
            ReadItem::Frame { frame, .. } => {
                seqs.push((frame.header.session, frame.header.seq));
                for (check, r) in frame.records() {
                    results.push((check.to_owned(), r.t_ms));
                }
            }
            ReadItem::Skipped { offset, error, .. } => {
                panic!("damage in {} at {offset}: {error}", file.display())
            }
        }
    }
    let session = seqs[0].0;
    for (i, &(s, seq)) in seqs.iter().enumerate() {
        assert_eq!(s, session, "one session");
        assert_eq!(
            seq,
            seqs[0].1 + i as u64,
            "frame sequence gap or repeat at frame {i}"
        );
    }
    let produced = target.requests() as usize;
    assert_eq!(
        results.len(),
        produced,
        "every result produced is on disk{}",
        agent.describe()
    );
    let mut unique = results.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), results.len(), "no result written twice");
    assert!(
        results.len() as f64 >= counted,
        "what the metrics counted written is on disk"
    );
    let decoded = Sonde::new(["decode".as_ref(), "--strict".as_ref(), records.as_os_str()])
        .run()
        .expect_code(0);
    assert_eq!(decoded.json_lines().len(), produced);
    (produced, seqs.len())
}

/// The log: one WARN when the sink started failing, one INFO when it
/// healed (having held results, if `held`), nothing dropped.
fn assert_one_warn_one_heal(
    agent: &Process,
    records: &Path,
    produced: usize,
    frames: usize,
    held: bool,
) {
    let log = agent.stderr();
    let warns: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("sink cannot write"))
        .collect();
    let heals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("sink writes again"))
        .collect();
    assert_eq!(
        warns.len(),
        1,
        "one WARN for the outage{}",
        agent.describe()
    );
    assert!(
        warns[0].contains("WARN") && warns[0].contains(records.to_str().unwrap_or("?")),
        "{}",
        warns[0]
    );
    assert_eq!(
        heals.len(),
        1,
        "one INFO for the recovery{}",
        agent.describe()
    );
    let field = |name: &str| -> u64 {
        heals[0]
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}= in {}", heals[0]))
    };
    assert!(heals[0].contains("INFO"), "{}", heals[0]);
    eprintln!(
        "{produced} results in {frames} frames; {}\n{}",
        warns[0], heals[0]
    );
    if held {
        assert!(field("held") > 0, "results were held: {}", heals[0]);
    }
    assert_eq!(field("dropped"), 0, "{}", heals[0]);
}

/// Fills the tmpfs at `state` while `sink` writes into `records` under it,
/// then frees it: the sink holds, reports, heals and loses nothing.
fn fill_and_free(state: &Path, sinks: &str, sink: &str, records: &Path) {
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let metrics = free_addr();
    let config = config(state, metrics, &target, sinks);
    let mut agent = start(tmp.path(), &config, metrics, sink);

    let filler = state.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap_or_else(|e| panic!("{e}"));
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
    }
    let why = readyz_becomes(&agent, metrics, 503, Duration::from_secs(15));
    assert!(
        why.contains(&format!("sink {sink} failing")) && why.contains("No space left"),
        "{why}"
    );
    let up = format!("sink=\"{sink}\"");
    assert_eq!(http::scrape(metrics, "sonde_sink_up", &up), 0.0);
    // Results keep coming while the disk is full; the sink holds them.
    let requests = target.requests();
    wait_until(
        Duration::from_secs(20),
        "probes while the disk is full",
        || target.requests() >= requests + 2 * CHECKS as u64,
    );
    std::fs::remove_file(&filler).unwrap_or_else(|e| panic!("{e}"));
    readyz_becomes(&agent, metrics, 200, HEAL_LIMIT);
    assert_eq!(http::scrape(metrics, "sonde_sink_up", &up), 1.0);
    assert_eq!(
        dropped(metrics, sink),
        0.0,
        "the queue held the whole outage"
    );
    let counted = written(metrics, sink);
    assert_everything_written(&mut agent, records, &target, counted);
}

/// A full disk under the file sink: the state dir's tmpfs is filled while
/// the agent writes, then freed.
#[test]
fn a_full_disk_holds_results_and_heals_when_space_returns() {
    let Some(tmpfs) = Tmpfs::mount(TMPFS_SIZE) else {
        return;
    };
    let records = tmpfs.dir.join("records");
    fill_and_free(&tmpfs.dir, &file_sink(""), "file", &records);
}

/// A full disk under the gateway sink's spool (the gateway is down, so
/// everything stays spooled): the same, read back from the spool.
#[test]
fn a_full_disk_under_the_spool_holds_results_and_heals() {
    let Some(tmpfs) = Tmpfs::mount(TMPFS_SIZE) else {
        return;
    };
    // Nothing listens there: the sender keeps retrying, the spool keeps all.
    let gateway = free_addr();
    let sinks = format!(
        "[sinks.file]\nenabled = false\n\
         [[sinks.gateway]]\nurl = \"http://{gateway}\"\ntoken = {{ env = \"DISK_GATEWAY_TOKEN\" }}\n\
         spool_max_bytes = \"1MiB\"\n"
    );
    let spool = tmpfs.dir.join("spool").join("default");
    fill_and_free(&tmpfs.dir, &sinks, "gateway", &spool);
}

/// A permission flip: the records dir made immutable, so that rotating to
/// a new segment fails (EPERM, for root too), then mutable again.
#[test]
fn a_records_dir_that_refuses_new_segments_heals_when_allowed_again() {
    refused_rotation(false);
}

/// The records dir made immutable under load (rotation by age fails with
/// EPERM, the active segment still takes writes), then `stop_while_refused`
/// or made mutable again.
fn refused_rotation(stop_while_refused: bool) {
    let Some(tmpfs) = Tmpfs::mount("16m") else {
        return;
    };
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let metrics = free_addr();
    let sinks = file_sink("segment_max_age = \"1s\"\n");
    let config = config(&tmpfs.dir, metrics, &target, &sinks);
    let mut agent = start(tmp.path(), &config, metrics, "file");

    let records = tmpfs.dir.join("records");
    let chattr = |flag: &str| {
        let out = Command::new("chattr")
            .arg(flag)
            .arg(&records)
            .output()
            .unwrap_or_else(|e| panic!("chattr: {e}"));
        assert!(out.status.success(), "chattr {flag}: {out:?}");
    };
    chattr("+i");
    let why = readyz_becomes(&agent, metrics, 503, Duration::from_secs(15));
    assert!(
        why.contains("sink file failing") && why.contains("not permitted"),
        "{why}"
    );
    let requests = target.requests();
    wait_until(
        Duration::from_secs(20),
        "probes while the dir refuses",
        || target.requests() >= requests + 2 * CHECKS as u64,
    );
    // The active segment still takes writes: results keep being written.
    let before = written(metrics, "file");
    wait_until(
        Duration::from_secs(20),
        "writes while rotation fails",
        || written(metrics, "file") >= before + 2.0 * CHECKS as f64,
    );
    if stop_while_refused {
        // Stopped while rotation still fails: everything queued is
        // written and synced, and the agent exits 0.
        agent.stop();
        let counted = written(metrics, "file");
        assert_files_hold_everything(&agent, &records, &target, counted);
        chattr("-i");
        return;
    }
    chattr("-i");
    readyz_becomes(&agent, metrics, 200, HEAL_LIMIT);
    assert_eq!(
        dropped(metrics, "file"),
        0.0,
        "the queue held the whole outage"
    );
    let counted = written(metrics, "file");
    agent.stop();
    let (produced, frames) = assert_files_hold_everything(&agent, &records, &target, counted);
    assert_one_warn_one_heal(&agent, &records, produced, frames, false);
}

/// Stopped while the records dir still refuses new segments: the agent
/// writes what it holds into the active segment and exits 0 (it used to
/// lose its whole queue without trying a write, and exit 1).
#[test]
fn a_records_dir_that_refuses_new_segments_loses_nothing_at_stop() {
    refused_rotation(true);
}

/// The agent stopped during an outage (the disk full) and started again
/// once space returns: the second run continues the first run's session
/// and sequence, so the files hold one session whose frames follow each
/// other without gap or repeat, no result written twice, no damage.
#[test]
fn a_restart_during_a_full_disk_continues_the_sequence() {
    let Some(tmpfs) = Tmpfs::mount(TMPFS_SIZE) else {
        return;
    };
    let records = tmpfs.dir.join("records");
    let target = HttpTarget::plain();
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let metrics = free_addr();
    let sinks = file_sink("");
    let mut agent = start(
        tmp.path(),
        &config(&tmpfs.dir, metrics, &target, &sinks),
        metrics,
        "file",
    );
    let filler = tmpfs.dir.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap_or_else(|e| panic!("{e}"));
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
    }
    readyz_becomes(&agent, metrics, 503, Duration::from_secs(15));
    // Stopped while failing: it tries once more, closes, and exits 1.
    agent.signal("TERM");
    let status = agent.wait(Duration::from_secs(20));
    assert_eq!(status, 1, "{}", agent.describe());
    std::fs::remove_file(&filler).unwrap_or_else(|e| panic!("{e}"));

    let metrics = free_addr();
    let mut again = start(
        tmp.path(),
        &config(&tmpfs.dir, metrics, &target, &sinks),
        metrics,
        "file",
    );
    again.stop();
    let mut frames = Vec::new();
    let mut results = Vec::new();
    for (file, item) in crate::util::wire_files::items(&records) {
        match item {
            ReadItem::Frame { frame, .. } => {
                frames.push((frame.header.session, frame.header.seq));
                results.extend(frame.records().map(|(c, r)| (c.to_owned(), r.t_ms)));
            }
            ReadItem::Skipped { offset, error, .. } => {
                panic!("damage in {} at {offset}: {error}", file.display())
            }
        }
    }
    assert!(frames.len() > 2, "{frames:?}");
    let (session, first) = frames[0];
    let want: Vec<(u64, u64)> = (0..frames.len() as u64)
        .map(|i| (session, first + i))
        .collect();
    assert_eq!(frames, want, "one session, no gap, no repeat");
    let mut unique = results.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), results.len(), "no result written twice");
    eprintln!(
        "{} frames, {} results over two runs",
        frames.len(),
        results.len()
    );
}
