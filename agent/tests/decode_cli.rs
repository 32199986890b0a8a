//! `sonde decode` end to end: the built binary on wire files made with the
//! wire crate in a temp dir. Every failure prints the command, its
//! directory, stdout and stderr.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use wire::{ErrorClass, Frame, FrameBuilder, FrameHeader, Record, file_header};

use crate::util::process::Process;
use crate::util::{Run, Sonde, up_record};

/// `sonde decode ARGS...` in `dir`, with `stdin` fed to it if given.
fn sonde(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let cmd = Sonde::new(std::iter::once("decode").chain(args.iter().copied())).current_dir(dir);
    match stdin {
        Some(bytes) => cmd.stdin(bytes),
        None => cmd,
    }
    .run()
}

const T0: u64 = 1_767_225_600_000;

fn down(t_ms: u64) -> Record {
    Record::down(t_ms, 3, ErrorClass::ConnectRefused)
        .with_dn(12)
        .with_cn(20)
}

/// A frame of `seq` holding one record of "api" and one of "home".
fn frame(seq: u64) -> Frame {
    let mut b = FrameBuilder::new(FrameHeader {
        agent: "eu-1".into(),
        session: T0,
        seq,
    });
    b.push("api", up_record(T0 + seq * 15_000, 100 + seq));
    b.push("home", down(T0 + seq * 15_000 + 7));
    b.finish()
}

/// A file of frames 0..n, and where each frame starts.
fn file_of(n: u64) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = file_header().to_vec();
    let mut starts = Vec::new();
    for seq in 0..n {
        starts.push(bytes.len());
        frame(seq).encode_into(&mut bytes).expect("encode");
    }
    (bytes, starts)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    std::fs::write(dir.join(name), bytes).expect("writing test file");
    name.to_owned()
}

#[test]
fn json_lines_by_default_with_agent_and_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bytes, _) = file_of(2);
    let f = write(dir.path(), "ok.sonde", &bytes);
    let run = sonde(dir.path(), &[&f], None).expect_code(0);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 4, "{}", run.describe());
    assert_eq!(
        lines[0],
        serde_json::json!({"agent": "eu-1", "check": "api", "t": T0, "rt": 100, "sc": 200,
            "st": "up", "dn": 12, "cn": 20, "tl": 25, "ft": 80, "error": null}),
        "{}",
        run.describe()
    );
    assert_eq!(lines[1]["error"], "connect_refused", "{}", run.describe());
    assert_eq!(lines[1]["sc"], Value::Null, "{}", run.describe());
    assert!(run.stderr().is_empty(), "{}", run.describe());
}

#[test]
fn torn_tail_and_flipped_byte_are_reported_and_good_records_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut bytes, starts) = file_of(5);
    // Flip a byte in the middle of frame 2, tear frame 4 in half.
    let flipped = starts[2] + 20;
    bytes[flipped] ^= 0xff;
    let torn_len = (bytes.len() - starts[4]) / 2;
    bytes.truncate(starts[4] + torn_len);
    let f = write(dir.path(), "damaged.sonde", &bytes);

    let run = sonde(dir.path(), &[&f], None)
        .expect_code(0)
        .expect_stderr_has(&format!(
            "corrupt frame at byte {} ({} bytes skipped): checksum mismatch",
            starts[2],
            starts[3] - starts[2]
        ))
        .expect_stderr_has(&format!(
            "torn tail at byte {} ({torn_len} bytes skipped)",
            starts[4]
        ));
    let rts: Vec<u64> = run
        .json_lines()
        .iter()
        .filter(|l| l["check"] == "api")
        .map(|l| l["rt"].as_u64().expect("rt"))
        .collect();
    assert_eq!(
        rts,
        [100, 101, 103],
        "frames 0, 1 and 3 survive{}",
        run.describe()
    );
    assert_eq!(run.json_lines().len(), 6, "{}", run.describe());

    sonde(dir.path(), &["--strict", &f], None).expect_code(1);
    sonde(dir.path(), &["--strict", "--format", "csv", &f], None).expect_code(1);
}

#[test]
fn csv_has_a_header_and_empty_cells_for_absent_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bytes, _) = file_of(1);
    let f = write(dir.path(), "ok.sonde", &bytes);
    let run = sonde(dir.path(), &["--format", "csv", "--strict", &f], None).expect_code(0);
    let expected = format!(
        "agent,check,t,rt,sc,st,dn,cn,tl,ft,error\n\
         eu-1,api,{T0},100,200,up,12,20,25,80,\n\
         eu-1,home,{},3,,down,12,20,,,connect_refused\n",
        T0 + 7
    );
    assert_eq!(run.stdout(), expected, "{}", run.describe());
}

#[test]
fn stdin_is_read_with_a_dash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bytes, _) = file_of(3);
    let run = sonde(dir.path(), &["-"], Some(&bytes)).expect_code(0);
    assert_eq!(run.json_lines().len(), 6, "{}", run.describe());
}

#[test]
fn empty_stdin_is_no_damage_but_an_empty_file_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = sonde(dir.path(), &["--strict", "-"], Some(b"")).expect_code(0);
    assert!(run.stdout().is_empty(), "{}", run.describe());
    assert!(run.stderr().is_empty(), "{}", run.describe());
    let f = write(dir.path(), "empty.sonde", b"");
    let run = sonde(dir.path(), &["--strict", &f], None).expect_code(1);
    assert!(run.stderr().contains("empty file"), "{}", run.describe());
}

#[test]
fn stats_per_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bytes, _) = file_of(100);
    let f = write(dir.path(), "ok.sonde", &bytes);
    let run = sonde(dir.path(), &["--stats", &f], None).expect_code(0);
    let stdout = run.stdout();
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], STATS_COLUMNS, "{}", run.describe());
    // api: rt is 100..=199, so nearest-rank p50 149, p95 194, p99 198.
    assert!(
        rows.contains(&vec![
            "api", "100", "100", "0", "0", "rt", "100", "149", "194", "198", "0", "-", "-", "-"
        ]),
        "{}",
        run.describe()
    );
    assert!(
        rows.contains(&vec![
            "home", "100", "0", "100", "0", "rt", "0", "-", "-", "-", "100", "3", "3", "3"
        ]),
        "{}",
        run.describe()
    );
    assert!(
        rows.contains(&vec![
            "home", "100", "0", "100", "0", "tl", "0", "-", "-", "-", "0", "-", "-", "-"
        ]),
        "{}",
        run.describe()
    );
    assert_eq!(rows.len(), 1 + 2 * 5, "{}", run.describe());
}

const STATS_COLUMNS: [&str; 14] = [
    "check",
    "count",
    "up",
    "down",
    "unknown",
    "phase",
    "up_n",
    "up_p50_ms",
    "up_p95_ms",
    "up_p99_ms",
    "down_n",
    "down_p50_ms",
    "down_p95_ms",
    "down_p99_ms",
];

/// A file with one check, "mixed": up probes of rt 1..=20 ms and down
/// probes (timeouts) of rt 900 and 1000 ms, all in one frame.
fn mixed_file() -> Vec<u8> {
    let mut b = FrameBuilder::new(FrameHeader {
        agent: "eu-1".into(),
        session: T0,
        seq: 0,
    });
    for rt in 1..=20 {
        b.push("mixed", up_record(T0 + rt, rt));
    }
    for rt in [900, 1000] {
        b.push(
            "mixed",
            Record::down(T0 + rt, rt, ErrorClass::Timeout).with_dn(2),
        );
    }
    let mut bytes = file_header().to_vec();
    b.finish().encode_into(&mut bytes).expect("encode");
    bytes
}

#[test]
fn stats_honour_the_format_and_keep_up_and_down_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(dir.path(), "mixed.sonde", &mixed_file());
    let run = sonde(dir.path(), &["--stats", "--format", "csv", &f], None).expect_code(0);
    let stdout = run.stdout();
    let table: Vec<Vec<&str>> = stdout.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(table[0], STATS_COLUMNS, "{}", run.describe());
    assert_eq!(table.len(), 1 + 5, "{}", run.describe());
    let row = |phase: &str| -> BTreeMap<&str, &str> {
        let cells = table
            .iter()
            .find(|r| r.get(5) == Some(&phase))
            .unwrap_or_else(|| panic!("no {phase} row{}", run.describe()));
        STATS_COLUMNS
            .iter()
            .copied()
            .zip(cells.iter().copied())
            .collect()
    };
    let rt = row("rt");
    // Up: rt 1..=20, nearest rank p50 10, p95 19, p99 20; down: 900, 1000.
    // Mixed together p99 would be 1000 and p50 11.
    let want = [
        ("check", "mixed"),
        ("count", "22"),
        ("up", "20"),
        ("down", "2"),
        ("unknown", "0"),
        ("up_n", "20"),
        ("up_p50_ms", "10"),
        ("up_p95_ms", "19"),
        ("up_p99_ms", "20"),
        ("down_n", "2"),
        ("down_p50_ms", "900"),
        ("down_p95_ms", "1000"),
        ("down_p99_ms", "1000"),
    ];
    for (column, value) in want {
        assert_eq!(rt[column], value, "rt {column}{}", run.describe());
    }
    // tl: up probes have it, down probes (no handshake) none: empty cells.
    let tl = row("tl");
    assert_eq!(
        (tl["up_p50_ms"], tl["down_n"], tl["down_p50_ms"]),
        ("25", "0", ""),
        "{}",
        run.describe()
    );

    let run = sonde(dir.path(), &["--stats", "--format", "jsonl", &f], None).expect_code(0);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 5, "{}", run.describe());
    assert_eq!(
        (
            &lines[0]["phase"],
            &lines[0]["up_p99_ms"],
            &lines[0]["down_p50_ms"]
        ),
        (&Value::from("rt"), &Value::from(20), &Value::from(900)),
        "{}",
        run.describe()
    );
    let tl = lines.iter().find(|l| l["phase"] == "tl").expect("tl row");
    assert_eq!(tl["down_p50_ms"], Value::Null, "{}", run.describe());
}

#[test]
fn exit_statuses_tell_usage_from_an_unreadable_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(dir.path(), "not.sonde", b"PK\x03\x04 this is a zip file");
    let (good, _) = file_of(1);
    let good = write(dir.path(), "good.sonde", &good);
    // Not a wire file: reported, skipped, 3 (with or without --strict).
    sonde(dir.path(), &[&f], None)
        .expect_code(3)
        .expect_stderr_has("not.sonde: byte 0: not a sonde wire file");
    sonde(dir.path(), &["--strict", &f], None).expect_code(3);
    // A missing file: 3 too, and the inputs after it are still read.
    let run = sonde(dir.path(), &["missing.sonde", &good], None)
        .expect_code(3)
        .expect_stderr_has("missing.sonde: cannot open");
    assert_eq!(run.json_lines().len(), 2, "{}", run.describe());
    // Usage errors: 2.
    sonde(dir.path(), &["--no-such-flag", &good], None).expect_code(2);
    sonde(dir.path(), &["--format", "xml", &good], None).expect_code(2);
    sonde(dir.path(), &["--format", "text", &good], None)
        .expect_code(2)
        .expect_stderr_has("--stats");
    sonde(dir.path(), &["--stats", "--follow", &f], None).expect_code(2);
    sonde(dir.path(), &["--follow", &good, &f], None).expect_code(2);
    // And they are documented.
    sonde(dir.path(), &["--help"], None).expect_code(0).expect(
        "the exit statuses in --help",
        |r| {
            let help = r.stdout();
            [
                "0 decoded",
                "1 damage found with --strict",
                "2 usage error",
                "3 an input could not be read",
            ]
            .iter()
            .all(|s| help.contains(s))
        },
    );
}

#[test]
fn a_directory_without_wire_files_is_an_error_that_points_below() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records = dir.path().join("records");
    std::fs::create_dir(&records).expect("mkdir");
    let (bytes, _) = file_of(1);
    write(&records, "segment-a.sonde", &bytes);
    sonde(dir.path(), &["."], None)
        .expect_code(3)
        .expect_stderr_has("no *.sonde files in .")
        .expect_stderr_has("try ./records");
    let run = sonde(dir.path(), &["records"], None).expect_code(0);
    assert_eq!(run.json_lines().len(), 2, "{}", run.describe());
}

#[test]
fn follow_prints_frames_appended_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("growing.sonde");
    let (bytes, starts) = file_of(2);
    // The header and half of frame 0 now; the rest later.
    let split = starts[0] + 10;
    std::fs::write(&path, &bytes[..split]).expect("write");
    let shown = path.display().to_string();
    let mut follow = Process::start(&["decode", "--follow", &shown], &[]);
    std::thread::sleep(Duration::from_millis(500));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    file.write_all(&bytes[split..]).expect("append");
    file.flush().expect("flush");

    let deadline = Instant::now() + Duration::from_secs(20);
    while follow.stdout().lines().count() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines: Vec<String> = follow.stdout().lines().map(str::to_owned).collect();
    follow.signal("KILL");
    follow.wait(Duration::from_secs(10));
    let stderr = follow.stderr();
    assert_eq!(
        lines.len(),
        4,
        "sonde decode --follow {} printed {lines:?}\n--- stderr\n{stderr}",
        path.display()
    );
    assert!(
        stderr.is_empty(),
        "a frame still being written is not damage: {stderr}"
    );
}

#[test]
fn a_directory_is_its_segments_in_name_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segments = dir.path().join("records");
    std::fs::create_dir(&segments).expect("mkdir");
    let (two, _) = file_of(2);
    let (one, _) = file_of(1);
    // Written out of order: the names, not the creation order, decide.
    write(&segments, "segment-2.sonde", &one);
    write(&segments, "segment-1.sonde", &two);
    write(&segments, "notes.txt", b"not a segment");
    let run = sonde(dir.path(), &["records", "--strict"], None).expect_code(0);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 6, "{}", run.describe());
    sonde(dir.path(), &["records", "--follow"], None).expect_code(2);
}
