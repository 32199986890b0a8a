//! `sonde decode`: a wire file (or stdin) to JSON Lines or CSV, or per-check
//! statistics. Damage (a corrupt frame, a torn tail) is reported on stderr
//! once per damaged region, with its byte offset and length, and skipped;
//! the good frames around it are still decoded. An input that cannot be
//! read at all (missing, unreadable, not a wire file) is reported and
//! skipped; the next is read. `--follow` keeps reading a growing file.
//!
//! Reading is incremental: memory holds at most one unfinished frame, never
//! the whole file (`--stats` also keeps every record's phases until the
//! end, 8 bytes a phase: exact percentiles, about 40 bytes a record). All decoding is `wire`'s; this module only moves bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use wire::{
    ErrorClass, FILE_HEADER_LEN, FileError, Frame, FrameError, FrameStream, JsonRecord, ReadItem,
    Record, check_file_header,
};

use stats::CheckStats;

mod stats;

/// Arguments of `sonde decode`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 decoded (damage, if any, reported and skipped), \
1 damage found with --strict, or stdout could not be written, 2 usage error, \
3 an input could not be read (missing, unreadable, a named file that is not \
a sonde wire file, a directory without *.sonde files; the other inputs are \
still read). A directory's *.sonde file that is not a wire file is damage."
)]
pub struct Args {
    /// Wire files to read, in order; a directory stands for its `*.sonde`
    /// segments in name (= time) order; `-` or nothing reads standard input.
    #[arg(value_name = "FILE|DIR|-")]
    pub inputs: Vec<PathBuf>,
    /// How to print: JSON Lines (records' default), CSV with a header row,
    /// or an aligned table (--stats' default; only with --stats).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Keep reading a file as it grows, like `tail -f` (until interrupted).
    #[arg(long)]
    pub follow: bool,
    /// Exit with status 1 when any damage was found (it is always
    /// reported): a damaged region, a torn tail, an empty file. Empty
    /// stdin is no damage.
    #[arg(long)]
    pub strict: bool,
    /// Print per check and phase the count of up and down probes and the
    /// p50/p95/p99 of up probes and of down probes, instead of the records.
    #[arg(long, conflicts_with = "follow")]
    pub stats: bool,
}

/// Output formats of `sonde decode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per record (or per statistics row).
    #[value(alias = "json")]
    Jsonl,
    /// A header row, then one row per record (or per statistics row).
    Csv,
    /// An aligned table for people (statistics only).
    Text,
}

/// Why `sonde decode` stopped before reading every input.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// `--follow` with more than one input.
    #[error("--follow reads one file; {given} were given")]
    FollowMany {
        /// How many inputs there were.
        given: usize,
    },
    /// `--format text` for records.
    #[error("--format text prints statistics; add --stats, or use jsonl or csv")]
    TextWithoutStats,
    /// Writing the output failed (other than a closed pipe).
    #[error("writing to stdout: {0}")]
    Output(#[source] io::Error),
}

impl DecodeError {
    /// The exit status of `sonde decode` for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            DecodeError::FollowMany { .. } | DecodeError::TextWithoutStats => super::EXIT_USAGE,
            DecodeError::Output(_) => EXIT_FAILED,
        }
    }
}

/// Exit status when `--strict` is given and damage was found, or the
/// output could not be written.
const EXIT_FAILED: u8 = 1;

/// Exit status when an input could not be read at all.
const EXIT_UNREADABLE: u8 = 3;

/// What reading the inputs found, beside the records.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Found {
    /// Damaged regions, torn tails, empty files.
    damage: u64,
    /// Inputs of which nothing could be read.
    unreadable: u64,
}

impl Found {
    /// The exit status: an input not read at all outweighs damage, which
    /// counts only under `--strict`.
    fn exit_code(self, strict: bool) -> u8 {
        if self.unreadable > 0 {
            EXIT_UNREADABLE
        } else if strict && self.damage > 0 {
            EXIT_FAILED
        } else {
            0
        }
    }
}

/// How long `--follow` waits before looking for new bytes again.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Bytes read at a time.
const CHUNK: usize = 64 * 1024;

/// Runs `sonde decode`; its errors are reported here.
pub fn run(args: Args) -> anyhow::Result<u8> {
    match decode(&args) {
        Ok(found) => Ok(found.exit_code(args.strict)),
        Err(e) => {
            eprintln!("sonde: decode: {e}");
            Ok(e.exit_code())
        }
    }
}

fn decode(args: &Args) -> Result<Found, DecodeError> {
    if args.format == Some(Format::Text) && !args.stats {
        return Err(DecodeError::TextWithoutStats);
    }
    let inputs = expand(&args.inputs);
    if args.follow && inputs.len() > 1 {
        return Err(DecodeError::FollowMany {
            given: inputs.len(),
        });
    }
    let stdout = io::stdout();
    let mut out = Output::new(args, BufWriter::new(stdout.lock()));
    let mut found = Found::default();
    for input in inputs {
        let segment = matches!(input, Source::Segment(_));
        let (name, mut source) = match input {
            Source::Stdin => ("<stdin>".to_owned(), Input::Stdin(io::stdin())),
            Source::File(ref path) | Source::Segment(ref path) => match File::open(path) {
                Ok(file) => (path.display().to_string(), Input::File(file)),
                Err(e) => {
                    found.unreadable += 1;
                    eprintln!(
                        "sonde: decode: {}: cannot open: {e}; skipped",
                        path.display()
                    );
                    continue;
                }
            },
            Source::Nothing(why) => {
                found.unreadable += 1;
                eprintln!("sonde: decode: {why}; skipped");
                continue;
            }
        };
        let mut decoder = Decoder {
            stdin: matches!(source, Input::Stdin(_)),
            ..Decoder::new(name)
        };
        let result = decoder.pump(&mut source, &mut out, args.follow);
        found.damage += decoder.damage;
        match result {
            Ok(ReadTo::Whole) => {}
            // A directory's segment that is not a wire file is damage in
            // the directory (a torn or foreign file among the segments);
            // a file named on the command line is an input not read.
            Ok(ReadTo::NotWire(why)) if segment => {
                found.damage += 1;
                eprintln!("sonde: decode: {}: {why}", decoder.name);
            }
            Ok(ReadTo::NotWire(why) | ReadTo::Unreadable(why)) => {
                found.unreadable += 1;
                eprintln!("sonde: decode: {}: {why}; skipped", decoder.name);
            }
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(found),
            Err(e) => return Err(DecodeError::Output(e)),
        }
    }
    match out.finish() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(DecodeError::Output(e)),
        _ => Ok(found),
    }
}

/// One input of `sonde decode`.
enum Source {
    Stdin,
    /// A file named on the command line.
    File(PathBuf),
    /// One `*.sonde` file of a directory named on the command line.
    Segment(PathBuf),
    /// A directory that gave nothing to read: why.
    Nothing(String),
}

/// How far an input was read.
enum ReadTo {
    /// To its end (damage in it, if any, was reported).
    Whole,
    /// Not a wire file (its file header is wrong): why, without the name.
    NotWire(String),
    /// Reading failed: why, without the name.
    Unreadable(String),
}

/// The inputs in reading order; a directory becomes its `*.sonde` files
/// sorted by name (segment names sort in time).
fn expand(args: &[PathBuf]) -> Vec<Source> {
    if args.is_empty() {
        return vec![Source::Stdin];
    }
    let mut out = Vec::new();
    for arg in args {
        if arg.as_os_str() == "-" {
            out.push(Source::Stdin);
        } else if arg.is_dir() {
            match wire_files(arg) {
                Err(e) => out.push(Source::Nothing(format!(
                    "reading directory {}: {e}",
                    arg.display()
                ))),
                Ok(files) if files.is_empty() => {
                    out.push(Source::Nothing(format!(
                        "no *.sonde files in {}{}",
                        arg.display(),
                        hint_below(arg)
                    )));
                }
                Ok(files) => out.extend(files.into_iter().map(Source::Segment)),
            }
        } else {
            out.push(Source::File(arg.clone()));
        }
    }
    out
}

/// Where wire files are if they are one level below `dir` (the agent
/// writes under <dir>/records, say), as a hint; else nothing.
fn hint_below(dir: &Path) -> String {
    let below: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| wire_files(p).is_ok_and(|f| !f.is_empty()))
        .map(|p| p.display().to_string())
        .collect();
    match below.as_slice() {
        [] => String::new(),
        some => format!(" (subdirectories are not searched; try {})", some.join(" ")),
    }
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
    /// The error: writing the output failed.
    fn pump(&mut self, input: &mut Input, out: &mut Output, follow: bool) -> io::Result<ReadTo> {
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let n = match input.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Ok(ReadTo::Unreadable(format!("reading failed: {e}"))),
            };
            if n > 0 {
                if let Err(why) = self.decode(&chunk[..n], out, false)? {
                    return Ok(ReadTo::NotWire(why));
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
                if let Err(e) = input.rewind() {
                    return Ok(ReadTo::Unreadable(format!("rewinding failed: {e}")));
                }
                *self = Decoder {
                    damage: self.damage,
                    ..Decoder::new(self.name.clone())
                };
            }
        }
        Ok(match self.decode(&[], out, true)? {
            Ok(()) => ReadTo::Whole,
            Err(why) => ReadTo::NotWire(why),
        })
    }

    /// Decodes `bytes`, the next of the input; at the end of input an
    /// unfinished tail is reported as torn. The inner error: the input is
    /// not a wire file; the outer: writing the output failed.
    fn decode(
        &mut self,
        mut bytes: &[u8],
        out: &mut Output,
        at_eof: bool,
    ) -> io::Result<Result<(), String>> {
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
    Stats(BTreeMap<String, CheckStats>, Format),
}

impl<'a> Output<'a> {
    fn new(args: &Args, sink: BufWriter<io::StdoutLock<'a>>) -> Self {
        let mode = match (args.stats, args.format) {
            (true, format) => Mode::Stats(BTreeMap::new(), format.unwrap_or(Format::Text)),
            (false, Some(Format::Csv)) => Mode::Csv {
                header_written: false,
            },
            // Text without --stats is refused before any output.
            (false, _) => Mode::Jsonl,
        };
        Output {
            sink,
            mode,
            follow: args.follow,
            line: String::with_capacity(256),
        }
    }

    fn frame(&mut self, frame: &Frame) -> io::Result<()> {
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
                Mode::Stats(stats, _) => {
                    stats.entry(check.to_owned()).or_default().add(record);
                    continue;
                }
            }
            self.sink.write_all(self.line.as_bytes())?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }

    fn flush_if_following(&mut self) -> io::Result<()> {
        if self.follow { self.flush() } else { Ok(()) }
    }

    fn finish(mut self) -> io::Result<()> {
        match &self.mode {
            Mode::Stats(stats, format) => {
                let rendered = stats::render(stats, *format);
                self.sink.write_all(rendered.as_bytes())?;
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
fn json_line(line: &mut String, agent: &str, check: &str, r: &Record) -> io::Result<()> {
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
    line.push_str(&serde_json::to_string(&json).map_err(io::Error::other)?);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_not_read_outweighs_damage_which_counts_only_when_strict() {
        let found = |damage, unreadable| Found { damage, unreadable };
        assert_eq!(found(0, 0).exit_code(false), 0);
        assert_eq!(found(0, 0).exit_code(true), 0);
        assert_eq!(found(2, 0).exit_code(false), 0);
        assert_eq!(found(2, 0).exit_code(true), 1);
        assert_eq!(found(0, 1).exit_code(false), 3);
        assert_eq!(found(2, 1).exit_code(true), 3);
    }

    #[test]
    fn usage_errors_exit_2_and_a_failed_output_1() {
        assert_eq!(DecodeError::FollowMany { given: 2 }.exit_code(), 2);
        assert_eq!(DecodeError::TextWithoutStats.exit_code(), 2);
        let e = io::Error::from(io::ErrorKind::StorageFull);
        assert_eq!(DecodeError::Output(e).exit_code(), 1);
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
