//! `sonde decode --stats`: per check and phase, how many probes were up,
//! down and unknown, and the nearest-rank p50/p95/p99 of the up probes'
//! and of the down probes' samples (never mixed), as a table, CSV or JSON
//! Lines. Pure: records in, text out. Records carry whole milliseconds
//! (rounded; wire/WIRE.md 1.4), so the percentiles are whole milliseconds.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use wire::{Record, Status};

use super::{Format, csv_field};

/// The phases, in the order of the record.
const PHASES: [&str; 5] = ["rt", "dn", "cn", "tl", "ft"];

/// The columns, in every format.
const COLUMNS: [&str; 14] = [
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

/// Everything `--stats` needs of one check: counts by status, and each
/// phase's samples of up probes and of down probes.
#[derive(Default)]
pub(super) struct CheckStats {
    count: u64,
    up: u64,
    down: u64,
    up_samples: [Vec<u64>; 5],
    down_samples: [Vec<u64>; 5],
}

impl CheckStats {
    /// Counts `r`; its phases join its status's samples (unknown: none).
    pub(super) fn add(&mut self, r: &Record) {
        self.count += 1;
        let samples = match r.st {
            Status::Up => {
                self.up += 1;
                &mut self.up_samples
            }
            Status::Down => {
                self.down += 1;
                &mut self.down_samples
            }
            _ => return,
        };
        let values = [Some(r.rt_ms), r.dn_ms, r.cn_ms, r.tl_ms, r.ft_ms];
        for (phase, value) in samples.iter_mut().zip(values) {
            if let Some(v) = value {
                phase.push(v);
            }
        }
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[u64], p: u64) -> Option<u64> {
    let n = sorted.len() as u64;
    let rank = (p * n).div_ceil(100).max(1);
    sorted.get(usize::try_from(rank - 1).ok()?).copied()
}

/// One cell of a row.
enum Cell<'a> {
    Text(&'a str),
    Number(u64),
    /// No sample to take a percentile of.
    Absent,
}

/// The n and p50/p95/p99 of one status's samples of one phase.
fn summary(samples: &[u64]) -> [Cell<'static>; 4] {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let p = |q| percentile(&sorted, q).map_or(Cell::Absent, Cell::Number);
    [Cell::Number(sorted.len() as u64), p(50), p(95), p(99)]
}

/// One row per check and phase, cells in [`COLUMNS`]' order.
fn rows(stats: &BTreeMap<String, CheckStats>) -> Vec<Vec<Cell<'_>>> {
    let mut rows = Vec::with_capacity(stats.len() * PHASES.len());
    for (check, s) in stats {
        for (i, phase) in PHASES.iter().enumerate() {
            let mut row = vec![
                Cell::Text(check),
                Cell::Number(s.count),
                Cell::Number(s.up),
                Cell::Number(s.down),
                Cell::Number(s.count - s.up - s.down),
                Cell::Text(phase),
            ];
            row.extend(summary(&s.up_samples[i]));
            row.extend(summary(&s.down_samples[i]));
            rows.push(row);
        }
    }
    rows
}

/// The statistics in `format`: a header and a row per check and phase
/// (JSON Lines: an object per row, an absent percentile null).
pub(super) fn render(stats: &BTreeMap<String, CheckStats>, format: Format) -> String {
    let rows = rows(stats);
    match format {
        Format::Text => table(&rows),
        Format::Csv => csv(&rows),
        Format::Jsonl => jsonl(&rows),
    }
}

/// Columns padded to their widest cell; text left, numbers right, an
/// absent percentile `-`.
fn table(rows: &[Vec<Cell<'_>>]) -> String {
    let shown: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Cell::Text(t) => (*t).to_owned(),
                    Cell::Number(n) => n.to_string(),
                    Cell::Absent => "-".to_owned(),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            shown
                .iter()
                .map(|row| row[i].len())
                .fold(name.len(), usize::max)
        })
        .collect();
    let left = |i: usize| COLUMNS[i] == "check" || COLUMNS[i] == "phase";
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let width = widths[i];
            let _ = if left(i) {
                write!(out, "{cell:<width$}")
            } else {
                write!(out, "{cell:>width$}")
            };
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(&mut COLUMNS.iter().copied());
    for row in &shown {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// RFC 4180 with a header row; an absent percentile is an empty cell, a
/// check name is neutralised as the records' CSV does.
fn csv(rows: &[Vec<Cell<'_>>]) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match cell {
                Cell::Text(t) => csv_field(&mut out, t),
                Cell::Number(n) => {
                    let _ = write!(out, "{n}");
                }
                Cell::Absent => {}
            }
        }
        out.push('\n');
    }
    out
}

/// One JSON object per row, keys in [`COLUMNS`]' order.
fn jsonl(rows: &[Vec<Cell<'_>>]) -> String {
    let mut out = String::new();
    for row in rows {
        out.push('{');
        for (i, (name, cell)) in COLUMNS.iter().zip(row).enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "\"{name}\":");
            match cell {
                Cell::Text(t) => out.push_str(&serde_json::Value::from(*t).to_string()),
                Cell::Number(n) => {
                    let _ = write!(out, "{n}");
                }
                Cell::Absent => out.push_str("null"),
            }
        }
        out.push_str("}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::ErrorClass;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 95), Some(95));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    /// "api": up probes of rt 10, 20, 30, down probes of rt 1000 and 2000
    /// (with dn only), one unknown.
    fn sample() -> BTreeMap<String, CheckStats> {
        let mut s = CheckStats::default();
        for rt in [30, 10, 20] {
            s.add(&Record::up(0, rt));
        }
        for rt in [2000, 1000] {
            s.add(&Record::down(0, rt, ErrorClass::ConnectTimeout).with_dn(5));
        }
        s.add(&Record::unknown(0, 7, ErrorClass::Cancelled));
        BTreeMap::from([("api".to_owned(), s)])
    }

    #[test]
    fn up_and_down_probes_have_their_own_percentiles() {
        let csv = render(&sample(), Format::Csv);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], COLUMNS.join(","));
        assert_eq!(lines[1], "api,6,3,2,1,rt,3,20,30,30,2,1000,2000,2000");
        assert_eq!(lines[2], "api,6,3,2,1,dn,0,,,,2,5,5,5");
        assert_eq!(lines.len(), 1 + 5);
    }

    #[test]
    fn the_table_and_the_json_lines_hold_the_same_rows() {
        let table = render(&sample(), Format::Text);
        let rows: Vec<Vec<&str>> = table
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows[0], COLUMNS);
        assert_eq!(
            rows[2],
            [
                "api", "6", "3", "2", "1", "dn", "0", "-", "-", "-", "2", "5", "5", "5"
            ]
        );
        let json = render(&sample(), Format::Jsonl);
        let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
        assert_eq!(first["check"], "api");
        assert_eq!(first["up_p50_ms"], 20);
        assert_eq!(first["down_p99_ms"], 2000);
        let second: serde_json::Value = serde_json::from_str(json.lines().nth(1).unwrap()).unwrap();
        assert_eq!(second["up_p50_ms"], serde_json::Value::Null);
    }
}
