//! The dead letters: notifications a receiver refused for good or that
//! outlived their max age, in one append-only JSON Lines file shared by
//! every receiver (one object per line, each written with one `write_all`
//! and synced before it counts as written).
//!
//! A replay does not rewrite the file: once the replayed notification has
//! left its queue again (delivered, or dead-lettered anew), a
//! `{"replayed": …}` marker line naming the old entry is appended, so no
//! append from another process is ever lost to a rename, and a crash
//! before that leaves the entry listed (to replay again) rather than lost. [`DeadLetters::list`] hides replayed entries, and reports a torn
//! last line (a crash mid-append) or an unreadable one instead of failing.
//! The blocking calls are for `spawn_blocking` or a CLI.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::queue::Pending;
use crate::alert::event::{Event, Kind, rfc3339_ms};

/// One dead letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The receiver's name.
    pub receiver: String,
    /// The event id (the `webhook-id`).
    pub id: String,
    /// The event's kind.
    pub kind: Kind,
    /// The event's check.
    pub check: String,
    /// When it was enqueued, RFC 3339 (for people; `enqueued_ms` is the value).
    pub enqueued: String,
    /// When it was enqueued, epoch milliseconds.
    pub enqueued_ms: u64,
    /// When it was given up, RFC 3339.
    pub dead_lettered_at: String,
    /// When it was given up, epoch milliseconds.
    pub dead_lettered_ms: u64,
    /// Attempts made.
    pub attempts: u32,
    /// Why it was given up: the last answer or error.
    pub last_error: String,
    /// The event itself, for a replay.
    pub event: Event,
}

impl DeadLetter {
    /// `pending`, given up by `receiver` at `now_ms` because of `last_error`.
    pub fn new(receiver: &str, pending: &Pending, now_ms: u64, last_error: String) -> DeadLetter {
        DeadLetter {
            receiver: receiver.to_owned(),
            id: pending.event.id.clone(),
            kind: pending.event.kind,
            check: pending.event.check.clone(),
            enqueued: rfc3339_ms(pending.enqueued_ms),
            enqueued_ms: pending.enqueued_ms,
            dead_lettered_at: rfc3339_ms(now_ms),
            dead_lettered_ms: now_ms,
            attempts: pending.attempts,
            last_error,
            event: pending.event.as_ref().clone(),
        }
    }

    /// What names this entry in a replay marker.
    pub fn key(&self) -> LetterKey {
        LetterKey {
            receiver: self.receiver.clone(),
            id: self.id.clone(),
            dead_lettered_ms: self.dead_lettered_ms,
        }
    }

    /// One line for people: when, receiver, id, kind, check, attempts, why.
    pub fn line(&self) -> String {
        format!(
            "{}  {}  {}  {} {}  {} attempts  {}",
            self.dead_lettered_at,
            self.receiver,
            self.id,
            self.kind.type_name(),
            self.check,
            self.attempts,
            self.last_error
        )
    }
}

/// Which entry a replay marker takes back: a notification may be
/// dead-lettered again after a replay, under a new `dead_lettered_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LetterKey {
    /// The receiver.
    pub receiver: String,
    /// The event id.
    pub id: String,
    /// When it was dead-lettered, epoch ms.
    pub dead_lettered_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    replayed: LetterKey,
    at: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Replayed(Marker),
    Letter(Box<DeadLetter>),
}

/// Which dead letters of a receiver to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select {
    /// All of them.
    All,
    /// Those with these event ids.
    Ids(Vec<String>),
}

impl Select {
    fn matches(&self, id: &str) -> bool {
        match self {
            Select::All => true,
            Select::Ids(ids) => ids.iter().any(|i| i == id),
        }
    }
}

/// A line of the file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// Its 1-based line number.
    pub line: usize,
    /// Why.
    pub error: String,
}

/// What the file holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    /// The entries not replayed, in file order.
    pub entries: Vec<DeadLetter>,
    /// Complete lines that are not a dead letter or a marker.
    pub unreadable: Vec<Unreadable>,
    /// The last line, cut short by a crash mid-append (its byte length);
    /// the next append starts a new line after it.
    pub torn: Option<usize>,
}

impl Listing {
    /// The entries (not replayed), in file order.
    pub fn letters(&self) -> impl Iterator<Item = &DeadLetter> {
        self.entries.iter()
    }

    /// What a reader should be told about the file: unreadable lines, a
    /// torn last line.
    pub fn warnings(&self) -> impl Iterator<Item = String> + '_ {
        let unreadable = self
            .unreadable
            .iter()
            .map(|u| format!("dead letters: line {} unreadable: {}", u.line, u.error));
        let torn = self.torn.map(|bytes| {
            format!("dead letters: the last line is cut short ({bytes} bytes; a crash mid-write), skipped")
        });
        unreadable.chain(torn)
    }
}

/// Why the dead-letter file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// A file operation failed.
    #[error("dead letters {path}: {op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An entry could not be encoded.
    #[error("dead letters: encoding an entry: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The dead-letter file.
#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    /// Appends from this process, one at a time (the torn-tail check and
    /// the lines that follow it belong together).
    append: Mutex<()>,
}

impl DeadLetters {
    /// The file at `path` (created on the first append, with its parent).
    pub fn new(path: impl Into<PathBuf>) -> DeadLetters {
        DeadLetters {
            path: path.into(),
            append: Mutex::new(()),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, op: &'static str) -> impl FnOnce(std::io::Error) -> DeadLetterError + '_ {
        move |source| DeadLetterError::Io {
            op,
            path: self.path.clone(),
            source,
        }
    }

    /// Appends `letters`, then syncs. Blocking.
    pub fn append(&self, letters: &[DeadLetter]) -> Result<(), DeadLetterError> {
        self.write(letters, &[], 0)
    }

    /// Marks the entries `keys` name replayed at `now_ms`, so
    /// [`DeadLetters::list`] no longer shows them. Blocking.
    pub fn mark_replayed(&self, keys: &[LetterKey], now_ms: u64) -> Result<(), DeadLetterError> {
        self.write(&[], keys, now_ms)
    }

    /// Appends `letters` and replay markers for `replayed` (at `now_ms`)
    /// in one go, then syncs. Blocking.
    pub fn write(
        &self,
        letters: &[DeadLetter],
        replayed: &[LetterKey],
        now_ms: u64,
    ) -> Result<(), DeadLetterError> {
        let mut lines = letters.iter().map(line).collect::<Result<Vec<_>, _>>()?;
        for key in replayed {
            lines.push(line(&Marker {
                replayed: key.clone(),
                at: rfc3339_ms(now_ms),
            })?);
        }
        self.append_lines(&lines)
    }

    fn append_lines(&self, lines: &[Vec<u8>]) -> Result<(), DeadLetterError> {
        if lines.is_empty() {
            return Ok(());
        }
        let _one = self.append.lock().unwrap_or_else(PoisonError::into_inner);
        let created = !self.path.exists();
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir.filter(|_| created) {
            std::fs::create_dir_all(dir).map_err(self.io("creating its directory"))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(self.io("opening"))?;
        if ends_torn(&mut file).map_err(self.io("reading its end"))? {
            file.write_all(b"\n").map_err(self.io("appending"))?;
        }
        for l in lines {
            file.write_all(l).map_err(self.io("appending"))?;
        }
        file.sync_data().map_err(self.io("syncing"))?;
        // A new file's name is durable only once its directory is synced.
        if let Some(dir) = dir.filter(|_| created) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(self.io("syncing its directory"))?;
        }
        Ok(())
    }

    /// The entries not replayed; none when the file does not exist. Blocking.
    pub fn list(&self) -> Result<Listing, DeadLetterError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Listing::default()),
            Err(e) => return Err(self.io("reading")(e)),
        };
        Ok(parse(&bytes))
    }

    /// `receiver`'s entries that `select` picks, not replayed. Blocking.
    pub fn select(
        &self,
        receiver: &str,
        select: &Select,
    ) -> Result<Vec<DeadLetter>, DeadLetterError> {
        let listing = self.list()?;
        Ok(listing
            .entries
            .into_iter()
            .filter(|l| l.receiver == receiver && select.matches(&l.id))
            .collect())
    }
}

fn line<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = serde_json::to_vec(value)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Whether the file is non-empty and does not end in a newline.
fn ends_torn(file: &mut File) -> std::io::Result<bool> {
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// The listing of a file's bytes.
fn parse(bytes: &[u8]) -> Listing {
    let mut listing = Listing::default();
    let mut letters: Vec<DeadLetter> = Vec::new();
    let mut replayed: Vec<LetterKey> = Vec::new();
    let complete = bytes.ends_with(b"\n");
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // `split` yields an empty last piece after a final newline.
    let count = lines.len() - usize::from(complete);
    for (i, raw) in lines.iter().take(count).enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let last = i + 1 == count;
        match serde_json::from_slice::<Line>(raw) {
            Ok(Line::Letter(l)) => letters.push(*l),
            Ok(Line::Replayed(m)) => replayed.push(m.replayed),
            Err(_) if last && !complete => listing.torn = Some(raw.len()),
            Err(e) => listing.unreadable.push(Unreadable {
                line: i + 1,
                error: e.to_string(),
            }),
        }
    }
    // An entry written twice (a crash between the append and the
    // checkpoint that forgets it) is listed once.
    let mut shown: HashSet<LetterKey> = replayed.into_iter().collect();
    listing.entries = letters
        .into_iter()
        .filter(|l| shown.insert(l.key()))
        .collect();
    listing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::deliver::tests::event;

    fn letter(id: &str, receiver: &str, at: u64) -> DeadLetter {
        let pending = Pending::new(event(id, Kind::Down, "api").into(), 1_000);
        DeadLetter::new(receiver, &pending, at, "HTTP 400".into())
    }

    #[test]
    fn entries_round_trip_and_replayed_ones_are_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let dead = DeadLetters::new(dir.path().join("sub/dead.jsonl"));
        assert_eq!(dead.list().unwrap(), Listing::default());
        let (a, b, c) = (
            letter("a", "hook", 5),
            letter("b", "hook", 6),
            letter("c", "am", 7),
        );
        dead.append(&[a.clone(), b.clone()]).unwrap();
        dead.append(std::slice::from_ref(&c)).unwrap();
        // Written twice (a crash before the checkpoint): listed once.
        dead.append(std::slice::from_ref(&c)).unwrap();
        assert_eq!(
            dead.list().unwrap().entries,
            [a.clone(), b.clone(), c.clone()]
        );
        let picked = dead.select("hook", &Select::Ids(vec!["b".into()])).unwrap();
        assert_eq!(picked, std::slice::from_ref(&b));
        let keys: Vec<_> = picked.iter().map(DeadLetter::key).collect();
        dead.mark_replayed(&keys, 9).unwrap();
        assert_eq!(dead.list().unwrap().entries, [a.clone(), c.clone()]);
        assert_eq!(dead.select("hook", &Select::All).unwrap(), [a]);
        // Dead-lettered again after the replay: a new entry, shown.
        let b_again = letter("b", "hook", 20);
        dead.append(std::slice::from_ref(&b_again)).unwrap();
        assert_eq!(
            dead.select("hook", &Select::Ids(vec!["b".into()])).unwrap(),
            [b_again]
        );
    }

    #[test]
    fn a_torn_last_line_is_reported_and_the_next_append_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        let dead = DeadLetters::new(&path);
        let a = letter("a", "hook", 5);
        dead.append(std::slice::from_ref(&a)).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let whole = bytes.clone();
        bytes.extend_from_slice(&whole[..whole.len() / 2]);
        std::fs::write(&path, &bytes).unwrap();
        let listing = dead.list().unwrap();
        assert_eq!(listing.entries, std::slice::from_ref(&a));
        assert_eq!(listing.torn, Some(whole.len() / 2));
        let b = letter("b", "hook", 6);
        dead.append(std::slice::from_ref(&b)).unwrap();
        let listing = dead.list().unwrap();
        assert_eq!(listing.entries, [a, b]);
        assert_eq!(listing.torn, None);
        assert_eq!(listing.unreadable.len(), 1);
        assert_eq!(listing.unreadable[0].line, 2);
    }
}
