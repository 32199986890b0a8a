//! Faults: crafted and damaged wire files. `sonde decode` and the
//! gateway's start-up recovery skip a region of crafted frame candidates in
//! time linear in its length and report it once (a follower prints the
//! frames after a long claim without waiting on it); the gateway obeys SIGTERM
//! while recovery is stuck; `decode` reads past a bad file, counts an
//! empty one as damage and neutralises formula cells in CSV.

use std::time::Duration;

use wire::{Frame, FrameBuilder, FrameHeader, file_header};

use crate::util::process::Process;
use crate::util::{Sonde, up_record};

const T0: u64 = 1_767_225_600_000;

/// The crafted region: a marker, version 1, a 4 MiB length, again
/// and again. Hashing every candidate's claim took minutes for 8 MiB.
const CRAFTED: [u8; 7] = [0xc1, 0x53, 0x01, 0x00, 0x00, 0x40, 0x00];

/// A frame of `agent` with `n` records of check `check`.
fn frame(agent: &str, check: &str, seq: u64, n: u64) -> Frame {
    let mut b = FrameBuilder::new(FrameHeader {
        agent: agent.into(),
        session: T0,
        seq,
    });
    for i in 0..n {
        b.push(check, up_record(T0 + seq * 1000 + i, 100));
    }
    b.finish()
}

/// A wire file: `before` frames of 10 records, the crafted 8 MiB, `after`
/// more frames.
fn crafted_file(before: u64, after: u64) -> Vec<u8> {
    let mut bytes = file_header().to_vec();
    for seq in 0..before {
        frame("eu-1", "api", seq, 10)
            .encode_into(&mut bytes)
            .unwrap();
    }
    bytes.extend(CRAFTED.iter().copied().cycle().take(8 << 20));
    for seq in before..before + after {
        frame("eu-1", "api", seq, 10)
            .encode_into(&mut bytes)
            .unwrap();
    }
    bytes
}

/// Lines of `text` that report damage.
fn damage_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("bytes skipped"))
        .collect()
}

/// Runs `sonde ARGS` to its end; 60 s is far above the seconds it needs
/// and far below the minutes a quadratic resync takes.
fn decode(args: &[&str]) -> (i32, String, String) {
    let mut p = Process::start(args, &[]);
    let code = p.wait(Duration::from_secs(60));
    (code, p.stdout(), p.stderr())
}

#[test]
fn a_crafted_8_mib_region_decodes_in_seconds_as_one_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crafted.sonde");
    std::fs::write(&path, crafted_file(3, 4)).unwrap();
    let shown = path.display().to_string();
    let (code, out, err) = decode(&["decode", "--strict", &shown]);
    assert_eq!(code, 1, "damage under --strict\n{err}");
    assert_eq!(out.lines().count(), 70, "every good record\n{err}");
    let damage = damage_lines(&err);
    assert_eq!(damage.len(), 1, "one range for one region: {err}");
    assert!(
        damage[0].contains(&format!("({} bytes skipped)", 8 << 20)),
        "{err}"
    );
}

#[test]
fn a_followed_file_prints_the_frames_after_a_long_claim_in_damage() {
    // One frame, a byte of damage holding a 4 MiB claim, 1000 frames: a
    // follower used to wait for 4 MiB more before printing any of them.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = file_header().to_vec();
    frame("eu-1", "api", 0, 1).encode_into(&mut bytes).unwrap();
    bytes.push(0);
    bytes.extend_from_slice(&CRAFTED);
    for seq in 1..=1000 {
        frame("eu-1", "api", seq, 1)
            .encode_into(&mut bytes)
            .unwrap();
    }
    let path = dir.path().join("followed.sonde");
    std::fs::write(&path, &bytes).unwrap();
    let shown = path.display().to_string();
    let mut follow = Process::start(&["decode", "--follow", &shown], &[]);
    // Seconds at most; the faulty follower never prints them (it waits).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while follow.stdout().lines().count() < 1001 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let printed = follow.stdout().lines().count();
    follow.signal("KILL");
    follow.wait(Duration::from_secs(10));
    let stderr = follow.stderr();
    assert_eq!(printed, 1001, "records printed while following\n{stderr}");
    assert_eq!(damage_lines(&stderr).len(), 1, "{stderr}");
}

#[test]
fn zeros_read_in_pieces_are_one_range() {
    // 64 MiB of zeros between two frames: a sparse file, no disk used.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zeros.sonde");
    let mut bytes = file_header().to_vec();
    frame("eu-1", "api", 0, 2).encode_into(&mut bytes).unwrap();
    let zeros_at = bytes.len() as u64;
    std::fs::write(&path, &bytes).unwrap();
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.set_len(zeros_at + (64 << 20)).unwrap();
    let mut tail = Vec::new();
    frame("eu-1", "api", 1, 2).encode_into(&mut tail).unwrap();
    std::io::Write::write_all(&mut &file, &tail).unwrap();
    drop(file);

    let shown = path.display().to_string();
    let (code, out, err) = decode(&["decode", &shown]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 4, "{err}");
    let damage = damage_lines(&err);
    assert_eq!(damage.len(), 1, "one line, not one per 64 KiB: {err}");
    assert!(
        damage[0].contains(&format!("at byte {zeros_at} ({} bytes skipped)", 64 << 20)),
        "{err}"
    );
}

#[test]
fn a_directory_with_a_bad_file_is_read_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = |seqs: std::ops::Range<u64>| {
        let mut bytes = file_header().to_vec();
        for seq in seqs {
            frame("eu-1", "api", seq, 100)
                .encode_into(&mut bytes)
                .unwrap();
        }
        bytes
    };
    std::fs::write(dir.path().join("a.sonde"), good(0..21)).unwrap();
    std::fs::write(
        dir.path().join("b.sonde"),
        b"PK\x03\x04 not a wire file at all",
    )
    .unwrap();
    std::fs::write(dir.path().join("c.sonde"), good(21..103)).unwrap();
    let shown = dir.path().display().to_string();
    let (code, out, err) = decode(&["decode", &shown]);
    assert_eq!(code, 0, "damage counts only with --strict\n{err}");
    assert_eq!(
        out.lines().count(),
        10_300,
        "every record of a and c\n{err}"
    );
    assert!(
        err.contains("b.sonde: byte 0: not a sonde wire file"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, out, _) = decode(&["decode", "--strict", &shown]);
    assert_eq!((code, out.lines().count()), (1, 10_300));
}

#[test]
fn an_empty_wire_file_is_damage_under_strict() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.sonde");
    std::fs::write(&path, b"").unwrap();
    let shown = path.display().to_string();
    let (code, _, err) = decode(&["decode", &shown]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("empty.sonde: empty file, no file header"),
        "{err}"
    );
    let (code, _, err) = decode(&["decode", "--strict", &shown]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn csv_cells_a_spreadsheet_would_run_are_neutralised() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = file_header().to_vec();
    frame("=HYPERLINK(\"http://x\")", "@SUM(1+1)", 0, 1)
        .encode_into(&mut bytes)
        .unwrap();
    frame("eu-1", "-2+3", 1, 1).encode_into(&mut bytes).unwrap();
    frame("eu-1", "api-health", 2, 1)
        .encode_into(&mut bytes)
        .unwrap();
    std::fs::write(dir.path().join("f.sonde"), bytes).unwrap();
    let run = Sonde::new(["decode", "--format", "csv", "f.sonde"])
        .current_dir(dir.path())
        .run()
        .expect_code(0);
    let out = run.stdout();
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 4, "{}", run.describe());
    assert!(
        rows[1].starts_with("\"'=HYPERLINK(\"\"http://x\"\")\",'@SUM(1+1),"),
        "{}",
        run.describe()
    );
    assert!(rows[2].starts_with("eu-1,'-2+3,"), "{}", run.describe());
    assert!(
        rows[3].starts_with("eu-1,api-health,"),
        "{}",
        run.describe()
    );
}

/// The gateway's start-up recovery over crafted and stalled files.
#[cfg(feature = "gateway")]
mod gateway {
    use std::path::Path;

    use super::*;
    use crate::util::http;
    use crate::util::process::{free_addr, wait_until};

    /// A gateway config serving on `addr` from `data`.
    fn config(dir: &Path, data: &Path, addr: std::net::SocketAddr) -> String {
        let path = dir.join("gateway.toml");
        std::fs::write(
            &path,
            format!(
                "listen = \"{addr}\"\ndata_dir = \"{}\"\n\n[[agent]]\nid = \"eu-1\"\n\
                 token = {{ env = \"RESYNC_TEST_TOKEN\" }}\n",
                data.display()
            ),
        )
        .unwrap();
        path.display().to_string()
    }

    fn data_file(first_gseq: u64) -> String {
        format!("gateway-{first_gseq:020}-000000.sonde")
    }

    fn start(config: &str) -> Process {
        Process::start(
            &["gateway", "--config", config],
            &[("RESYNC_TEST_TOKEN", "resync-test-token")],
        )
    }

    #[test]
    fn recovery_over_a_crafted_file_listens_in_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join(data_file(1000)), crafted_file(2, 3)).unwrap();
        let addr = free_addr();
        let mut gw = start(&config(dir.path(), &data, addr));
        // The listener is bound before recovery: wait for the log line
        // that says it serves (the old recovery took 139 s to get there).
        wait_until(Duration::from_secs(60), "the gateway to listen", || {
            assert!(gw.is_running(), "{}", gw.describe());
            gw.stderr().contains("gateway listening")
        });
        assert_eq!(http::get(addr, "/healthz").status, 200);
        let err = gw.stderr();
        let damaged: Vec<&str> = err.lines().filter(|l| l.contains("skipped:")).collect();
        assert_eq!(damaged.len(), 1, "one range: {err}");
        assert!(err.contains("frames=5"), "{err}");
        gw.stop();
    }

    #[test]
    fn sigterm_during_a_stalled_recovery_stops_the_gateway_promptly() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let mut good = file_header().to_vec();
        frame("eu-1", "api", 0, 10).encode_into(&mut good).unwrap();
        std::fs::write(data.join(data_file(1000)), good).unwrap();
        // A FIFO no one writes to stands for a disk read that stalls: the
        // recovery blocks in it for as long as the test likes.
        let fifo = data.join(data_file(2000));
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());

        let addr = free_addr();
        let mut gw = start(&config(dir.path(), &data, addr));
        wait_until(Duration::from_secs(20), "a recovery progress line", || {
            assert!(gw.is_running(), "{}", gw.describe());
            gw.stderr().contains("gateway recovery in progress")
        });
        let err = gw.stderr();
        assert!(err.contains("files_done=1 files=2"), "{err}");
        gw.signal("TERM");
        // Ignoring SIGTERM, it would wait for the FIFO forever.
        let code = gw.wait(Duration::from_secs(10));
        let err = gw.stderr();
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("stopped during recovery"), "{err}");
        assert!(!err.contains("gateway listening"), "{err}");
    }
}
