//! `sonde decode`: a wire file (or stdin) to JSON Lines or CSV, or per-check
//! statistics. Damage (a corrupt frame, a torn tail) is reported on stderr
//! once per damaged region, with its byte offset and length, and skipped;
//! the good frames around it are still decoded. A file that is not a wire
//! file, or cannot be read, is reported and skipped; the next is read.
//! `--follow` keeps reading a file that is being appended to.
//!
//! Reading is incremental: memory holds at most one unfinished frame, never
//! the whole file. All decoding is `wire`'s; this module only moves bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use wire::{
    ErrorClass, FILE_HEADER_LEN, FileError, Frame, FrameError, FrameStream, JsonRecord, ReadItem,
    Record, Status, check_file_header,
};

/// Arguments of `sonde decode`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Wire files to read, in order; a directory stands for its `*.sonde`
    /// segments in name (= time) order; `-` or nothing reads standard input.
    #[arg(value_name = "FILE|DIR|-")]
    pub inputs: Vec<PathBuf>,
    /// How to print records: JSON Lines, or CSV with a header row.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// Keep reading a file as it grows, like `tail -f` (until interrupted).
    #[arg(long)]
    pub follow: bool,
    /// Exit with status 1 when any damage was found (it is always
    /// reported): a damaged region, a torn tail, an empty file, a file that
    /// is not a wire file or cannot be read. Empty stdin is no damage.
    #[arg(long)]
    pub strict: bool,
    /// Print per check the count, up percentage and p50/p95/p99 of every
    /// phase, instead of the records.
    #[arg(long, conflicts_with = "follow")]
    pub stats: bool,
}

/// Output formats of `sonde decode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per record.
    #[value(alias = "json")]
    Jsonl,
    /// A header row, then one row per record.
    Csv,
}

/// Exit status when `--strict` is given and damage was found.
const EXIT_DAMAGE: u8 = 1;

/// How long `--follow` waits before looking for new bytes again.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Bytes read at a time.
const CHUNK: usize = 64 * 1024;

/// Runs `sonde decode`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let inputs = expand(&args.inputs)?;
    if args.follow && inputs.len() > 1 {
        anyhow::bail!("--follow reads one file; {} were given", inputs.len());
    }
    let stdout = io::stdout();
    let mut out = Output::new(&args, BufWriter::new(stdout.lock()));
    let mut damage = 0;
    for input in inputs {
        let (name, mut source) = match input {
            Source::Stdin => ("<stdin>".to_owned(), Input::Stdin(io::stdin())),
            Source::File { path, listed } => match File::open(&path) {
                Ok(file) => (path.display().to_string(), Input::File(file)),
                // A path given that does not exist is a usage error.
                Err(e) if !listed && e.kind() == io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("opening {}", path.display()));
                }
                Err(e) => {
                    damage += 1;
                    eprintln!(
                        "sonde: decode: {}: cannot open: {e}; skipped",
                        path.display()
                    );
                    continue;
                }
            },
        };
        let mut decoder = Decoder {
            stdin: matches!(source, Input::Stdin(_)),
            ..Decoder::new(name)
        };
        let result = decoder.pump(&mut source, &mut out, args.follow);
        damage += decoder.damage;
        match result {
            Ok(ReadTo::Whole) => {}
            Ok(ReadTo::Unreadable(why)) => {
                damage += 1;
                eprintln!("sonde: decode: {}: {why}; skipped", decoder.name);
            }
            Err(e) if is_broken_pipe(&e) => return Ok(0),
            Err(e) => return Err(e),
        }
    }
    if let Err(e) = out.finish() {
        if !is_broken_pipe(&e) {
            return Err(e).context("writing to stdout");
        }
    }
    Ok(if args.strict && damage > 0 {
        EXIT_DAMAGE
    } else {
        0
    })
}

/// One input of `sonde decode`.
enum Source {
    Stdin,
    File {
        path: PathBuf,
        /// Found in a directory given, rather than given itself.
        listed: bool,
    },
}

/// How far an input was read.
enum ReadTo {
    /// To its end (damage in it, if any, was reported).
    Whole,
    /// Not a wire file, or reading failed: why, without the name.
    Unreadable(String),
}

/// The inputs in reading order; a directory becomes its `*.sonde` files
/// sorted by name (segment names sort in time).
fn expand(args: &[PathBuf]) -> anyhow::Result<Vec<Source>> {
    if args.is_empty() {
        return Ok(vec![Source::Stdin]);
    }
    let mut out = Vec::new();
    for arg in args {
        if arg.as_os_str() == "-" {
            out.push(Source::Stdin);
        } else if arg.is_dir() {
            let files =
                wire_files(arg).with_context(|| format!("reading directory {}", arg.display()))?;
            if files.is_empty() {
                // Say where they are if they are one level down (the agent
                // writes under <dir>/records, say).
                let below: Vec<String> = std::fs::read_dir(arg)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| wire_files(p).is_ok_and(|f| !f.is_empty()))
                    .map(|p| p.display().to_string())
                    .collect();
                let hint = match below.as_slice() {
                    [] => String::new(),
                    some => format!(" (subdirectories are not searched; try {})", some.join(" ")),
                };
                anyhow::bail!("no *.sonde files in {}{hint}", arg.display());
            }
            out.extend(
                files
                    .into_iter()
                    .map(|path| Source::File { path, listed: true }),
            );
        } else {
            out.push(Source::File {
                path: arg.clone(),
                listed: false,
            });
        }
    }
    Ok(out)
}

/// The `*.sonde` files directly in `dir`, sorted by name.
fn wire_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "sonde"))
        .collect();
    files.sort();
    Ok(files)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

enum Input {
    Stdin(io::Stdin),
    File(File),
}

impl Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Stdin(s) => s.read(buf),
            Input::File(f) => f.read(buf),
        }
    }

    /// Whether a followed file shrank below `pos` (truncated or replaced).
    fn shrank(&self, pos: u64) -> io::Result<bool> {
        match self {
            Input::Stdin(_) => Ok(false),
            Input::File(f) => Ok(f.metadata()?.len() < pos),
        }
    }

    fn rewind(&mut self) -> io::Result<()> {
        match self {
            Input::Stdin(_) => Ok(()),
            Input::File(f) => f.seek(SeekFrom::Start(0)).map(|_| ()),
        }
    }
}

/// The frames of one input as its bytes arrive, and what has been found.
struct Decoder {
    name: String,
    /// Reading stdin: nothing at all is an empty pipe, not damage (an
    /// empty file is).
    stdin: bool,
    /// The file header's bytes until it is whole.
    header: Vec<u8>,
    frames: Option<FrameStream>,
    damage: u64,
}

impl Decoder {
    fn new(name: String) -> Self {
        Decoder {
            name,
            stdin: false,
            header: Vec::with_capacity(FILE_HEADER_LEN),
            frames: None,
            damage: 0,
        }
    }

    /// Bytes of the input taken so far.
    fn read_to(&self) -> u64 {
        match &self.frames {
            Some(frames) => frames.end(),
            None => self.header.len() as u64,
        }
    }

    /// Reads the input to its end (or, following, forever) and decodes.
    fn pump(
        &mut self,
        input: &mut Input,
        out: &mut Output,
        follow: bool,
    ) -> anyhow::Result<ReadTo> {
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let n = match input.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Ok(ReadTo::Unreadable(format!("reading failed: {e}"))),
            };
            if n > 0 {
                if let Err(why) = self.decode(&chunk[..n], out, false)? {
                    return Ok(ReadTo::Unreadable(why));
                }
                continue;
            }
            if !follow || matches!(input, Input::Stdin(_)) {
                break;
            }
            out.flush()?;
            std::thread::sleep(FOLLOW_POLL);
            if input.shrank(self.read_to()).unwrap_or(false) {
                eprintln!(
                    "sonde: decode: {}: file shrank, reading it from the start",
                    self.name
                );
                input.rewind()?;
                *self = Decoder {
                    damage: self.damage,
                    ..Decoder::new(self.name.clone())
                };
            }
        }
        Ok(match self.decode(&[], out, true)? {
            Ok(()) => ReadTo::Whole,
            Err(why) => ReadTo::Unreadable(why),
        })
    }

    /// Decodes `bytes`, the next of the input; at the end of input an
    /// unfinished tail is reported as torn. The inner error: the input is
    /// not a wire file.
    fn decode(
        &mut self,
        mut bytes: &[u8],
        out: &mut Output,
        at_eof: bool,
    ) -> anyhow::Result<Result<(), String>> {
        if self.frames.is_none() {
            let want = FILE_HEADER_LEN - self.header.len();
            let (head, rest) = bytes.split_at(want.min(bytes.len()));
            self.header.extend_from_slice(head);
            bytes = rest;
            match check_file_header(&self.header) {
                Ok(()) => self.frames = Some(FrameStream::new(FILE_HEADER_LEN as u64)),
                Err(FileError::Incomplete { have: 0 }) if at_eof && self.stdin => {
                    return Ok(Ok(()));
                }
                Err(FileError::Incomplete { have }) if at_eof => {
                    self.damage += 1;
                    let what = if have == 0 {
                        "empty file, no file header".to_owned()
                    } else {
                        format!("torn tail at byte 0 ({have} bytes): file header incomplete")
                    };
                    eprintln!("sonde: decode: {}: {what}", self.name);
                    return Ok(Ok(()));
                }
                Err(FileError::Incomplete { .. }) => return Ok(Ok(())),
                Err(e) => return Ok(Err(format!("byte 0: {e}"))),
            }
        }
        let Some(frames) = self.frames.as_mut() else {
            return Ok(Ok(()));
        };
        frames.push(bytes);
        if at_eof {
            frames.finish();
        }
        for item in frames.by_ref() {
            match item {
                ReadItem::Frame { frame, .. } => out.frame(&frame)?,
                ReadItem::Skipped { offset, len, error } => {
                    self.damage += 1;
                    report(&self.name, offset, len, &error);
                }
            }
        }
        out.flush_if_following()?;
        Ok(Ok(()))
    }
}

/// One line on stderr per damaged region.
fn report(name: &str, offset: u64, len: usize, error: &FrameError) {
    let what = match error {
        FrameError::Incomplete { .. } => "torn tail",
        FrameError::Torn { .. } => "torn frame",
        FrameError::UnsupportedVersion { .. } => "unreadable frame",
        _ => "corrupt frame",
    };
    let note = if matches!(error, FrameError::Body(_)) {
        " (offsets inside the body count from the frame's first byte)"
    } else {
        ""
    };
    eprintln!(
        "sonde: decode: {name}: {what} at byte {offset} ({len} bytes skipped): {error}{note}"
    );
}

/// Where decoded frames go: printed as records, or gathered into statistics.
struct Output<'a> {
    sink: BufWriter<io::StdoutLock<'a>>,
    mode: Mode,
    follow: bool,
    line: String,
}

enum Mode {
    Jsonl,
    Csv { header_written: bool },
    Stats(BTreeMap<String, CheckStats>),
}

impl<'a> Output<'a> {
    fn new(args: &Args, sink: BufWriter<io::StdoutLock<'a>>) -> Self {
        let mode = match (args.stats, args.format) {
            (true, _) => Mode::Stats(BTreeMap::new()),
            (false, Format::Jsonl) => Mode::Jsonl,
            (false, Format::Csv) => Mode::Csv {
                header_written: false,
            },
        };
        Output {
            sink,
            mode,
            follow: args.follow,
            line: String::with_capacity(256),
        }
    }

    fn frame(&mut self, frame: &Frame) -> anyhow::Result<()> {
        let agent = frame.header.agent.as_str();
        for (check, record) in frame.records() {
            self.line.clear();
            match &mut self.mode {
                Mode::Jsonl => json_line(&mut self.line, agent, check, record)?,
                Mode::Csv { header_written } => {
                    if !*header_written {
                        self.line.push_str(CSV_HEADER);
                        *header_written = true;
                    }
                    csv_line(&mut self.line, agent, check, record);
                }
                Mode::Stats(stats) => {
                    stats.entry(check.to_owned()).or_default().add(record);
                    continue;
                }
            }
            self.sink.write_all(self.line.as_bytes())?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        Ok(self.sink.flush()?)
    }

    fn flush_if_following(&mut self) -> anyhow::Result<()> {
        if self.follow { self.flush() } else { Ok(()) }
    }

    fn finish(mut self) -> anyhow::Result<()> {
        match &self.mode {
            Mode::Stats(stats) => {
                let table = stats_table(stats);
                self.sink.write_all(table.as_bytes())?;
            }
            Mode::Csv {
                header_written: false,
            } => self.sink.write_all(CSV_HEADER.as_bytes())?,
            _ => {}
        }
        self.flush()
    }
}

/// One JSON object per record: agent and check, then the record's fields
/// (WIRE.md, "JSON").
fn json_line(line: &mut String, agent: &str, check: &str, r: &Record) -> anyhow::Result<()> {
    #[derive(serde::Serialize)]
    struct Json<'a> {
        agent: &'a str,
        check: &'a str,
        #[serde(flatten)]
        record: JsonRecord<'a>,
    }
    let json = Json {
        agent,
        check,
        record: JsonRecord(r),
    };
    line.push_str(&serde_json::to_string(&json)?);
    line.push('\n');
    Ok(())
}

const CSV_HEADER: &str = "agent,check,t,rt,sc,st,dn,cn,tl,ft,error\n";

/// One CSV row; an absent field is an empty cell.
fn csv_line(line: &mut String, agent: &str, check: &str, r: &Record) {
    csv_field(line, agent);
    line.push(',');
    csv_field(line, check);
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let _ = writeln!(
        line,
        ",{},{},{},{},{},{},{},{},{}",
        r.t_ms,
        r.rt_ms,
        opt(r.sc.map(u64::from)),
        r.st.name(),
        opt(r.dn_ms),
        opt(r.cn_ms),
        opt(r.tl_ms),
        opt(r.ft_ms),
        r.error.map(ErrorClass::name).unwrap_or_default(),
    );
}

/// What a text cell may not start with: a spreadsheet would run it as a
/// formula (OWASP, "CSV Injection").
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A text field (agent id, check name): neutralised with a leading `'`
/// when a spreadsheet would take it for a formula, and quoted (RFC 4180)
/// when it holds a comma, a quote or a newline. Numbers are never text
/// fields (no field of a record is negative).
fn csv_field(line: &mut String, s: &str) {
    let neutral = if s.starts_with(FORMULA_STARTS) {
        "'"
    } else {
        ""
    };
    if s.contains([',', '"', '\n', '\r']) {
        line.push('"');
        line.push_str(neutral);
        line.push_str(&s.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(neutral);
        line.push_str(s);
    }
}

/// The phases, in the order of the record.
const PHASES: [&str; 5] = ["rt", "dn", "cn", "tl", "ft"];

/// Everything `--stats` needs of one check.
#[derive(Default)]
struct CheckStats {
    count: u64,
    up: u64,
    phases: [Vec<u64>; 5],
}

impl CheckStats {
    fn add(&mut self, r: &Record) {
        self.count += 1;
        if r.st == Status::Up {
            self.up += 1;
        }
        let values = [Some(r.rt_ms), r.dn_ms, r.cn_ms, r.tl_ms, r.ft_ms];
        for (samples, value) in self.phases.iter_mut().zip(values) {
            if let Some(v) = value {
                samples.push(v);
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

/// One row per check and phase; a phase never measured shows `-`.
fn stats_table(stats: &BTreeMap<String, CheckStats>) -> String {
    let width = stats.keys().map(String::len).max().unwrap_or(0).max(5);
    let mut table = format!(
        "{:<width$} {:>8} {:>7} {:<5} {:>8} {:>8} {:>8} {:>8}\n",
        "check", "count", "up%", "phase", "n", "p50_ms", "p95_ms", "p99_ms"
    );
    for (check, s) in stats {
        let up = 100.0 * s.up as f64 / s.count.max(1) as f64;
        for (phase, samples) in PHASES.iter().zip(&s.phases) {
            let mut sorted = samples.clone();
            sorted.sort_unstable();
            let p = |q| percentile(&sorted, q).map_or("-".to_owned(), |v| v.to_string());
            let _ = writeln!(
                table,
                "{check:<width$} {:>8} {up:>7.2} {phase:<5} {:>8} {:>8} {:>8} {:>8}",
                s.count,
                sorted.len(),
                p(50),
                p(95),
                p(99),
            );
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 95), Some(95));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn json_lines_are_agent_and_check_then_the_record_shape() {
        let mut line = String::new();
        json_line(&mut line, "eu-1", "api", &Record::up(7, 5).with_sc(204)).unwrap();
        assert_eq!(
            line,
            "{\"agent\":\"eu-1\",\"check\":\"api\",\"t\":7,\"rt\":5,\"sc\":204,\"st\":\"up\",\
             \"dn\":null,\"cn\":null,\"tl\":null,\"ft\":null,\"error\":null}\n"
        );
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut s = String::new();
        csv_field(&mut s, "a,\"b\"");
        assert_eq!(s, "\"a,\"\"b\"\"\"");
    }

    #[test]
    fn csv_fields_a_spreadsheet_would_run_are_neutralised() {
        let cell = |v: &str| {
            let mut s = String::new();
            csv_field(&mut s, v);
            s
        };
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for v in ["+1", "-2", "@SUM(A1)", "\tx"] {
            assert_eq!(cell(v), format!("'{v}"));
        }
        assert_eq!(cell("\rx"), "\"'\rx\"");
        assert_eq!(cell("api-health"), "api-health");
        assert_eq!(cell("a=b"), "a=b");
    }
}
