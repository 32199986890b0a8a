//! The index behind `/v1/history` (PROTOCOL.md 3.10): for each wire file,
//! where each frame lies, the gseqs and probe times it holds, and which
//! checks and agents have records in it. Kept in memory, built from the
//! files on first use and extended from each file's tail as the writer
//! appends; a query then reads only the frames that can match it.
//!
//! [`Index::refresh`] is the I/O (listing, stat, reading what is new);
//! [`Index::candidates`] is pure: which frames of which file a query
//! must read, in gseq order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use wire::{FILE_HEADER_LEN, FRAME_OVERHEAD, Frame, FrameReader, MAX_BODY_LEN, ReadItem};

use crate::auth::glob_match;
use crate::recover::{DataFile, data_files};

/// Bytes read from a file's tail at a time: more than the largest frame,
/// so a chunk that holds no whole frame is a frame still being written.
const CHUNK: u64 = 2 * (MAX_BODY_LEN as u64 + FRAME_OVERHEAD as u64);

/// Below this many names the table is never compacted.
const COMPACT_AT: usize = 4096;

/// Check and agent names, each stored once for the whole index.
#[derive(Debug, Default)]
struct Names {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    /// The ids of the names `keep` selects, or `None` for all of them.
    fn matching(&self, keep: Option<&dyn Fn(&str) -> bool>) -> Option<HashSet<u32>> {
        let keep = keep?;
        Some(
            self.names
                .iter()
                .enumerate()
                .filter(|(_, n)| keep(n))
                .map(|(i, _)| i as u32)
                .collect(),
        )
    }

    fn heap_bytes(&self) -> usize {
        let strings: usize = self.names.iter().map(|n| n.len()).sum();
        // Each name is held twice (the list and the map's key).
        2 * strings
            + self.names.capacity() * size_of::<Box<str>>()
            + self.ids.capacity() * (size_of::<Box<str>>() + size_of::<u32>() + 1)
    }
}

/// One frame with records, as the index keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameEntry {
    /// Where it starts in its file.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u32,
    /// Records it holds.
    pub records: u32,
    /// The gseq of its first record.
    pub first_gseq: u64,
    /// The earliest `t` among its records (epoch ms).
    pub t_min: u64,
    /// The latest `t` among its records.
    pub t_max: u64,
}

impl FrameEntry {
    fn last_gseq(&self) -> u64 {
        self.first_gseq + u64::from(self.records) - 1
    }
}

/// What the index knows of one wire file.
#[derive(Debug)]
struct FileIndex {
    path: PathBuf,
    first_gseq: u64,
    /// Bytes of the file read into the index (the header included).
    indexed_to: u64,
    /// The gseq the next frame's first record has.
    next_gseq: u64,
    /// Damage (or a bad header) was met: what follows has unknown gseqs
    /// and is not indexed.
    ended: bool,
    /// A later file existed when the file was last read to its end: the
    /// writer has left it and it will not grow.
    sealed: bool,
    frames: Vec<FrameEntry>,
    /// Name id → the frames (indices into `frames`, ascending) with
    /// records of that check.
    by_check: HashMap<u32, Vec<u32>>,
    /// Name id → the frames of that agent.
    by_agent: HashMap<u32, Vec<u32>>,
    /// The range of `t` over all frames.
    t_min: u64,
    t_max: u64,
}

impl FileIndex {
    fn new(file: &DataFile) -> FileIndex {
        FileIndex {
            path: file.path.clone(),
            first_gseq: file.first_gseq,
            indexed_to: 0,
            next_gseq: file.first_gseq,
            ended: false,
            sealed: false,
            frames: Vec::new(),
            by_check: HashMap::new(),
            by_agent: HashMap::new(),
            t_min: u64::MAX,
            t_max: 0,
        }
    }

    /// Reads what was appended since the last call. A frame still being
    /// written is left for the next; damage ends the file.
    fn extend(&mut self, names: &mut Names) -> io::Result<()> {
        let len = match std::fs::metadata(&self.path) {
            Ok(m) => m.len(),
            // Deleted by retention meanwhile: the next listing drops it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if len < self.indexed_to {
            // Shorter than what was read (a restart cut a torn tail):
            // read it again from the start.
            let file = DataFile {
                first_gseq: self.first_gseq,
                index: 0,
                path: self.path.clone(),
            };
            *self = FileIndex::new(&file);
        }
        if self.indexed_to == 0 {
            if len < FILE_HEADER_LEN as u64 {
                return Ok(());
            }
            let Some(header) = read_at(&self.path, 0, FILE_HEADER_LEN as u64)? else {
                return Ok(());
            };
            // Not a wire file's header: recovery skips the file, and so
            // does history.
            if wire::check_file_header(&header).is_err() {
                self.ended = true;
                return Ok(());
            }
            self.indexed_to = FILE_HEADER_LEN as u64;
        }
        while !self.ended && self.indexed_to < len {
            let want = (len - self.indexed_to).min(CHUNK);
            let Some(bytes) = read_at(&self.path, self.indexed_to, want)? else {
                return Ok(());
            };
            let mut reader = FrameReader::new(&bytes, self.indexed_to);
            for item in reader.by_ref() {
                match item {
                    ReadItem::Frame { offset, len, frame } => self.add(names, offset, len, &frame),
                    ReadItem::Skipped { .. } => {
                        self.ended = true;
                        break;
                    }
                }
            }
            if self.ended {
                break;
            }
            let consumed = reader.consumed() as u64;
            if consumed == 0 {
                // A frame not finished yet, or damage whose end is not
                // in sight (which ends the file).
                if reader.damage_so_far().is_some() {
                    self.ended = true;
                }
                break;
            }
            self.indexed_to += consumed;
        }
        Ok(())
    }

    fn add(&mut self, names: &mut Names, offset: u64, len: usize, frame: &Frame) {
        let records = frame.record_count();
        if records == 0 {
            // Gets no gseq and reaches no reader.
            return;
        }
        let (Ok(idx), Ok(records32), Ok(len), Some(next_gseq)) = (
            u32::try_from(self.frames.len()),
            u32::try_from(records),
            u32::try_from(len),
            self.next_gseq.checked_add(records as u64),
        ) else {
            // Past what gseqs (a file named near 2^64) or the index hold:
            // nothing after it is indexed.
            self.ended = true;
            return;
        };
        let (t_min, t_max) = frame.records().fold((u64::MAX, 0), |(lo, hi), (_, r)| {
            (lo.min(r.t_ms), hi.max(r.t_ms))
        });
        let agent = names.id(&frame.header.agent);
        self.by_agent.entry(agent).or_default().push(idx);
        for batch in &frame.batches {
            if batch.records.is_empty() {
                continue;
            }
            let list = self.by_check.entry(names.id(&batch.check)).or_default();
            if list.last() != Some(&idx) {
                list.push(idx);
            }
        }
        self.frames.push(FrameEntry {
            offset,
            len,
            records: records32,
            first_gseq: self.next_gseq,
            t_min,
            t_max,
        });
        self.next_gseq = next_gseq;
        self.t_min = self.t_min.min(t_min);
        self.t_max = self.t_max.max(t_max);
    }

    fn heap_bytes(&self) -> usize {
        let postings = |m: &HashMap<u32, Vec<u32>>| {
            m.capacity() * (size_of::<u32>() + size_of::<Vec<u32>>() + 1)
                + m.values().map(|v| v.capacity() * 4).sum::<usize>()
        };
        self.path.as_os_str().len()
            + self.frames.capacity() * size_of::<FrameEntry>()
            + postings(&self.by_check)
            + postings(&self.by_agent)
    }
}

/// `len` bytes of `path` from `offset`; `None` when the file is gone
/// (retention deleted it meanwhile: the next listing drops it).
pub(super) fn read_at(path: &Path, offset: u64, len: u64) -> io::Result<Option<Vec<u8>>> {
    match store::read_at(path, offset, len) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.io().kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into_io()),
    }
}

/// What a query asks of the index besides gseqs: which names it may
/// match (a glob and the reader's scope, already combined) and a time range.
pub struct Selection<'a> {
    /// Whether a check's records can be wanted; `None`: every check's.
    pub check: Option<&'a dyn Fn(&str) -> bool>,
    /// Whether an agent's records can be wanted; `None`: every agent's.
    pub agent: Option<&'a dyn Fn(&str) -> bool>,
    /// The record's `t`, inclusive.
    pub t_from: u64,
    /// See `t_from`.
    pub t_to: u64,
}

/// A glob as a name predicate for [`Selection`].
pub fn glob(pattern: &str) -> impl Fn(&str) -> bool + '_ {
    move |name| glob_match(pattern, name)
}

/// The frames one file contributes to a query, in gseq order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFrames {
    /// The file.
    pub path: PathBuf,
    /// The frames to read from it.
    pub frames: Vec<FrameEntry>,
}

/// The in-memory index of a gateway's wire files.
#[derive(Debug, Default)]
pub struct Index {
    names: Names,
    /// By (first gseq, index): the order the files were written in.
    files: BTreeMap<(u64, u32), FileIndex>,
}

impl Index {
    /// Brings the index up to date with `dir`: files retention deleted
    /// are dropped, new ones read, and what was appended to a file the
    /// writer may still be writing read. Cost: a listing, a stat of the
    /// files not sealed yet, and the new bytes.
    pub fn refresh(&mut self, dir: &Path) -> io::Result<()> {
        let listed = data_files(dir)?;
        let keys: HashSet<(u64, u32)> = listed.iter().map(|f| (f.first_gseq, f.index)).collect();
        let before = self.files.len();
        self.files.retain(|key, _| keys.contains(key));
        if self.files.len() < before {
            self.compact_names();
        }
        for (i, file) in listed.iter().enumerate() {
            let later = i + 1 < listed.len();
            let entry = self
                .files
                .entry((file.first_gseq, file.index))
                .or_insert_with(|| FileIndex::new(file));
            if entry.sealed || entry.ended {
                continue;
            }
            entry.extend(&mut self.names)?;
            entry.sealed = later;
        }
        Ok(())
    }

    /// Drops the names no file refers to any more (their files were
    /// deleted), once they are most of the table: agents and checks that
    /// come and go do not grow it for ever.
    fn compact_names(&mut self) {
        let mut used: Vec<u32> = Vec::new();
        for f in self.files.values() {
            used.extend(f.by_check.keys().chain(f.by_agent.keys()));
        }
        used.sort_unstable();
        used.dedup();
        if self.names.names.len() <= (2 * used.len()).max(COMPACT_AT) {
            return;
        }
        let mut names = Names::default();
        let mut new_id = HashMap::with_capacity(used.len());
        for old in used {
            if let Some(name) = self.names.names.get(old as usize) {
                new_id.insert(old, names.id(name));
            }
        }
        let remap = |m: &mut HashMap<u32, Vec<u32>>| {
            *m = m
                .drain()
                .filter_map(|(old, list)| Some((*new_id.get(&old)?, list)))
                .collect();
        };
        for f in self.files.values_mut() {
            remap(&mut f.by_check);
            remap(&mut f.by_agent);
        }
        self.names = names;
    }

    /// The frames a query for gseqs `query_from..=to` and `want` must
    /// read, in gseq order, file by file, from those holding gseq `from`
    /// on (where the query's previous batch ended), until they hold at
    /// least `enough` records (a page's worth, before the per-record
    /// filters). A file is passed over when a later one starts at or
    /// below `query_from`: its frames from there on are copies the later
    /// one holds too (written again after a failed fsync). The rule takes
    /// the query's start, not the batch's: a later file that lost some of
    /// its copies to damage must not hide the earlier file's originals.
    pub fn candidates(
        &self,
        query_from: u64,
        from: u64,
        to: u64,
        want: &Selection<'_>,
        enough: usize,
    ) -> Vec<FileFrames> {
        let checks = self.names.matching(want.check);
        let agents = self.names.matching(want.agent);
        let mut out = Vec::new();
        let mut records = 0usize;
        let mut files = self.files.values().peekable();
        while let Some(file) = files.next() {
            if file.first_gseq > to || records >= enough {
                break;
            }
            if files
                .peek()
                .is_some_and(|next| next.first_gseq <= query_from)
            {
                continue;
            }
            if file.frames.is_empty() || file.t_max < want.t_from || file.t_min > want.t_to {
                continue;
            }
            let frames = file.select(from, to, want, checks.as_ref(), agents.as_ref());
            let mut taken = Vec::new();
            for i in frames {
                let f = file.frames[i as usize];
                taken.push(f);
                records += f.records as usize;
                if records >= enough {
                    break;
                }
            }
            if !taken.is_empty() {
                out.push(FileFrames {
                    path: file.path.clone(),
                    frames: taken,
                });
            }
        }
        out
    }

    /// Frames, records and the heap the index holds, in bytes (an
    /// estimate from capacities).
    pub fn size(&self) -> IndexSize {
        let mut s = IndexSize {
            files: self.files.len(),
            names: self.names.names.len(),
            heap_bytes: self.names.heap_bytes(),
            ..IndexSize::default()
        };
        for f in self.files.values() {
            s.frames += f.frames.len() as u64;
            s.records += f.frames.iter().map(|e| u64::from(e.records)).sum::<u64>();
            s.heap_bytes += f.heap_bytes() + size_of::<FileIndex>();
        }
        s
    }
}

impl FileIndex {
    /// The indices of this file's frames with gseqs in `from..=to` and a
    /// wanted name and time, ascending.
    fn select(
        &self,
        from: u64,
        to: u64,
        want: &Selection<'_>,
        checks: Option<&HashSet<u32>>,
        agents: Option<&HashSet<u32>>,
    ) -> Box<dyn Iterator<Item = u32> + '_> {
        // Frames are in gseq order: those wholly before `from` or after
        // `to` are out.
        let start = self.frames.partition_point(|f| f.last_gseq() < from) as u32;
        let end = self.frames.partition_point(|f| f.first_gseq <= to) as u32;
        let postings = |map: &HashMap<u32, Vec<u32>>, ids: &HashSet<u32>| {
            let mut idx: Vec<u32> = Vec::new();
            for id in ids {
                if let Some(list) = map.get(id) {
                    let lo = list.partition_point(|&i| i < start);
                    let hi = list.partition_point(|&i| i < end);
                    idx.extend_from_slice(&list[lo..hi.max(lo)]);
                }
            }
            idx.sort_unstable();
            idx.dedup();
            idx
        };
        let picked: Box<dyn Iterator<Item = u32>> = match (checks, agents) {
            (None, None) => Box::new(start..end.max(start)),
            (Some(c), None) => Box::new(postings(&self.by_check, c).into_iter()),
            (None, Some(a)) => Box::new(postings(&self.by_agent, a).into_iter()),
            (Some(c), Some(a)) => {
                let by_agent: HashSet<u32> = postings(&self.by_agent, a).into_iter().collect();
                let mut both = postings(&self.by_check, c);
                both.retain(|i| by_agent.contains(i));
                Box::new(both.into_iter())
            }
        };
        let (t_from, t_to) = (want.t_from, want.t_to);
        Box::new(picked.filter(move |&i| {
            let f = &self.frames[i as usize];
            f.t_max >= t_from && f.t_min <= t_to
        }))
    }
}

/// What the index holds (see [`Index::size`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IndexSize {
    /// Wire files indexed.
    pub files: usize,
    /// Distinct check and agent names.
    pub names: usize,
    /// Frames with records.
    pub frames: u64,
    /// Records in them.
    pub records: u64,
    /// Heap held, estimated from capacities.
    pub heap_bytes: usize,
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::recover::file_name;
    use wire::{FrameBuilder, FrameHeader, Record};

    /// A frame of `agent` with one record per (check, t).
    pub(crate) fn frame(agent: &str, seq: u64, records: &[(&str, u64)]) -> Vec<u8> {
        let mut b = FrameBuilder::new(FrameHeader {
            agent: agent.into(),
            session: 1,
            seq,
        });
        for (check, t) in records {
            b.push(check, Record::up(*t, 5).with_sc(200));
        }
        b.finish().encode().unwrap()
    }

    /// A wire file as the writer leaves it, holding `frames`.
    pub(crate) fn write(dir: &Path, first_gseq: u64, index: u32, frames: &[&[u8]]) -> PathBuf {
        let path = dir.join(file_name(first_gseq, index));
        let mut bytes = wire::file_header().to_vec();
        for f in frames {
            bytes.extend_from_slice(f);
        }
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn all() -> Selection<'static> {
        Selection {
            check: None,
            agent: None,
            t_from: 0,
            t_to: u64::MAX,
        }
    }

    /// (first gseq, records) of every candidate frame.
    fn picked(index: &Index, from: u64, to: u64, want: &Selection<'_>) -> Vec<(u64, u32)> {
        index
            .candidates(from, from, to, want, usize::MAX)
            .iter()
            .flat_map(|f| f.frames.iter().map(|e| (e.first_gseq, e.records)))
            .collect()
    }

    #[test]
    fn postings_pick_the_frames_of_a_check_an_agent_and_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let a = frame("eu-1", 1, &[("api", 1000), ("web", 1000)]);
        let b = frame("eu-1", 2, &[("web", 2000)]);
        let c = frame("us-1", 1, &[("api", 3000), ("api-v2", 3000)]);
        write(dir.path(), 100, 0, &[&a, &b, &c]);
        let mut index = Index::default();
        index.refresh(dir.path()).unwrap();
        assert_eq!(
            picked(&index, 0, u64::MAX, &all()),
            [(100, 2), (102, 1), (103, 2)]
        );

        let api = glob("api");
        let check = Selection {
            check: Some(&api),
            ..all()
        };
        assert_eq!(picked(&index, 0, u64::MAX, &check), [(100, 2), (103, 2)]);
        let api_any = glob("api*");
        let us = glob("us-*");
        let both = Selection {
            check: Some(&api_any),
            agent: Some(&us),
            ..all()
        };
        assert_eq!(picked(&index, 0, u64::MAX, &both), [(103, 2)]);
        let late = Selection {
            t_from: 1500,
            t_to: 2500,
            ..all()
        };
        assert_eq!(picked(&index, 0, u64::MAX, &late), [(102, 1)]);
        // A gseq range keeps the frames that overlap it.
        assert_eq!(picked(&index, 101, 102, &all()), [(100, 2), (102, 1)]);
        let none = glob("nothing");
        let nothing = Selection {
            check: Some(&none),
            ..all()
        };
        assert!(picked(&index, 0, u64::MAX, &nothing).is_empty());
    }

    #[test]
    fn a_growing_tail_is_read_once_whole() {
        let dir = tempfile::tempdir().unwrap();
        let a = frame("eu-1", 1, &[("api", 1000)]);
        let b = frame("eu-1", 2, &[("api", 2000), ("api", 2001)]);
        let path = write(dir.path(), 0, 0, &[&a, &b[..b.len() - 3]]);
        let mut index = Index::default();
        index.refresh(dir.path()).unwrap();
        // The second frame is still being written: not yet, and not damage.
        assert_eq!(picked(&index, 0, u64::MAX, &all()), [(0, 1)]);
        let mut file = std::fs::File::options().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut file, &b[b.len() - 3..]).unwrap();
        index.refresh(dir.path()).unwrap();
        assert_eq!(picked(&index, 0, u64::MAX, &all()), [(0, 1), (1, 2)]);
        assert_eq!(index.size().records, 3);
    }

    #[test]
    fn damage_ends_a_file_and_deleted_files_leave() {
        let dir = tempfile::tempdir().unwrap();
        let a = frame("eu-1", 1, &[("api", 1000)]);
        let b = frame("eu-1", 2, &[("api", 2000)]);
        let mut garbage = vec![0xAB; 40];
        garbage.extend_from_slice(&b);
        write(dir.path(), 0, 0, &[&a, &garbage]);
        let second = write(dir.path(), 5, 0, &[&b]);
        let mut index = Index::default();
        index.refresh(dir.path()).unwrap();
        // After the damage the gseqs of that file are unknown.
        assert_eq!(picked(&index, 0, u64::MAX, &all()), [(0, 1), (5, 1)]);
        std::fs::remove_file(&second).unwrap();
        index.refresh(dir.path()).unwrap();
        assert_eq!(picked(&index, 0, u64::MAX, &all()), [(0, 1)]);
        assert_eq!(index.size().files, 1);
    }

    #[test]
    fn a_file_a_later_one_overtakes_is_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let a = frame("eu-1", 1, &[("api", 1000), ("api", 1001)]);
        let b = frame("eu-1", 2, &[("api", 2000), ("api", 2001)]);
        // The second frame was written again into a file of its own.
        write(dir.path(), 10, 0, &[&a, &b]);
        write(dir.path(), 12, 1, &[&b]);
        let mut index = Index::default();
        index.refresh(dir.path()).unwrap();
        assert_eq!(picked(&index, 12, u64::MAX, &all()), [(12, 2)]);
        // From before the copy, both files are read (the page serves
        // each gseq once).
        assert_eq!(
            picked(&index, 10, u64::MAX, &all()),
            [(10, 2), (12, 2), (12, 2)]
        );
    }

    #[test]
    fn a_file_cut_shorter_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let a = frame("eu-1", 1, &[("api", 1000)]);
        let b = frame("eu-1", 2, &[("web", 2000)]);
        write(dir.path(), 0, 0, &[&a, &b]);
        let mut index = Index::default();
        index.refresh(dir.path()).unwrap();
        write(dir.path(), 0, 0, &[&a]);
        index.refresh(dir.path()).unwrap();
        assert_eq!(picked(&index, 0, u64::MAX, &all()), [(0, 1)]);
        assert_eq!(index.size().frames, 1);
    }
}
