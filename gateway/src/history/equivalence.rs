//! The index must change what a page costs, never what it holds: pages
//! from [`page`] against a scan of every file whole (the reading before
//! the index), over random data directories with failed-fsync copies,
//! frames without records and damage, for random queries followed
//! through their cursors.

use std::path::Path;
use std::sync::Mutex;

use wire::ReadItem;

use super::index::Index;
use super::index::tests::{frame, write};
use super::{Filter, Page, page};
use crate::auth::Scope;
use crate::recover::data_files;

/// Every file read whole, in order: the oracle.
fn scan(dir: &Path, from: u64, to: u64, limit: usize, scope: &Scope, filter: &Filter) -> Page {
    let files = data_files(dir).unwrap();
    let mut out = Page::default();
    let mut served: Option<u64> = None;
    for (i, file) in files.iter().enumerate() {
        if file.first_gseq > to {
            break;
        }
        if files.get(i + 1).is_some_and(|next| next.first_gseq <= from) {
            continue;
        }
        let bytes = std::fs::read(&file.path).unwrap();
        if wire::check_file_header(&bytes).is_err() {
            continue;
        }
        let mut gseq = file.first_gseq;
        for item in store::body(&bytes) {
            let ReadItem::Frame { frame, .. } = item else {
                break;
            };
            let agent = &frame.header.agent;
            for batch in &frame.batches {
                for record in &batch.records {
                    let g = gseq;
                    gseq += 1;
                    if g < from || g > to || served.is_some_and(|s| g <= s) {
                        continue;
                    }
                    served = Some(g);
                    if !scope.allows(agent, &batch.check)
                        || !filter.allows(agent, &batch.check, record)
                    {
                        continue;
                    }
                    if out.records.len() == limit {
                        out.next = Some(g);
                        return out;
                    }
                    out.records
                        .push((g, agent.clone(), batch.check.clone(), *record));
                }
            }
        }
    }
    out
}

/// xorshift64: reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const CHECKS: [&str; 6] = ["api", "web", "db", "api-v2", "dns", "tls"];
const AGENTS: [&str; 3] = ["eu-1", "eu-2", "us-1"];

/// A frame written again, and its records.
type Resent = (Vec<u8>, u64);

/// A data_dir as the writer leaves it: files whose last frames were
/// written again at the start of the next (a failed fsync), frames
/// without records, and damage now and then.
fn data_dir(dir: &Path, rng: &mut Rng) {
    let mut gseq = 1000u64;
    let mut seq = 0;
    // Frames to write again, with the gseq the first of them had.
    let mut again: Option<(u64, Vec<Resent>)> = None;
    for index in 0..2 + rng.below(4) as u32 {
        let (first, mut frames): (u64, Vec<Vec<u8>>) = match again.take() {
            Some((g, copies)) => (g, copies.into_iter().map(|(f, _)| f).collect()),
            None => (gseq, Vec::new()),
        };
        let mut written = Vec::new();
        for _ in 0..1 + rng.below(400) {
            let agent = AGENTS[rng.below(3) as usize];
            let n = if rng.below(20) == 0 {
                0
            } else {
                1 + rng.below(12)
            };
            let records: Vec<(&str, u64)> = (0..n)
                .map(|_| (CHECKS[rng.below(6) as usize], 1000 + gseq + rng.below(50)))
                .collect();
            seq += 1;
            let f = frame(agent, seq, &records);
            written.push((f.clone(), gseq, n));
            frames.push(f);
            gseq += n;
        }
        if rng.below(5) == 0 {
            let at = rng.below(frames.len() as u64) as usize;
            frames.insert(at, vec![0xAB; 30]);
        }
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        write(dir, first, index, &refs);
        if rng.below(3) == 0 {
            let k = 1 + rng.below(written.len().min(300) as u64) as usize;
            let copies = &written[written.len() - k..];
            let start = copies[0].1;
            again = Some((
                start,
                copies.iter().map(|(f, _, n)| (f.clone(), *n)).collect(),
            ));
        }
    }
}

fn pick<T: Clone>(rng: &mut Rng, options: &[T]) -> T {
    options[rng.below(options.len() as u64) as usize].clone()
}

#[test]
fn pages_equal_a_scan_of_every_file() {
    for seed in 1..40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let dir = tempfile::tempdir().unwrap();
        data_dir(dir.path(), &mut rng);
        let index = Mutex::new(Index::default());
        for _ in 0..12 {
            let limit = pick(&mut rng, &[1usize, 5, 50, 1000, 3000]);
            let check = pick(
                &mut rng,
                &[Some("api*".to_string()), Some("web".into()), None, None],
            );
            let agent = pick(&mut rng, &[Some("eu-?".to_string()), None, None]);
            let scope = pick(
                &mut rng,
                &[
                    Scope::new("r", vec!["db".into(), "dns".into()], vec![]),
                    Scope::new("r", vec![], vec!["us-*".into()]),
                    Scope::new("r", vec![], vec![]),
                ],
            );
            let (t_from, t_to) = if rng.below(3) == 0 {
                let a = 2000 + rng.below(6000);
                (Some(a), Some(a + rng.below(3000)))
            } else {
                (None, None)
            };
            let filter = Filter {
                check,
                agent,
                t_from,
                t_to,
            };
            let start = if rng.below(2) == 0 {
                0
            } else {
                1000 + rng.below(6000)
            };
            let to = if rng.below(2) == 0 {
                u64::MAX
            } else {
                start + rng.below(8000)
            };
            let mut from = start;
            // Up to 30 pages of each query (a page of 1 is slow to follow).
            for _ in 0..30 {
                let want = scan(dir.path(), from, to, limit, &scope, &filter);
                let got = page(&index, dir.path(), from, to, limit, &scope, &filter).unwrap();
                assert_eq!(
                    got, want,
                    "seed {seed}: from {from} (query from {start}) to {to}, limit {limit}, {filter:?}, {scope:?}"
                );
                match want.next {
                    Some(n) => from = n,
                    None => break,
                }
            }
        }
    }
}

#[test]
fn a_later_file_damaged_among_its_copies_does_not_hide_the_originals() {
    let dir = tempfile::tempdir().unwrap();
    let frames: Vec<Vec<u8>> = (0..600u64)
        .map(|i| {
            frame(
                "eu-1",
                i,
                &[("api", 10_000 + 2 * i), ("web", 10_001 + 2 * i)],
            )
        })
        .collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    write(dir.path(), 0, 0, &refs);
    // Frames 500.. written again, but damaged after the twelfth copy.
    let garbage = vec![0xAB; 40];
    let mut again: Vec<&[u8]> = refs[500..512].to_vec();
    again.push(&garbage);
    again.extend_from_slice(&refs[512..]);
    write(dir.path(), 1000, 1, &again);
    let index = Mutex::new(Index::default());
    let everyone = Scope::new("r", vec![], vec![]);
    let api = Filter {
        check: Some("api".into()),
        ..Filter::default()
    };
    let mut from = 0;
    let mut got = Vec::new();
    loop {
        let p = page(&index, dir.path(), from, u64::MAX, 1000, &everyone, &api).unwrap();
        got.extend(p.records.iter().map(|r| r.0));
        match p.next {
            Some(n) => from = n,
            None => break,
        }
    }
    assert_eq!(got, (0..600).map(|i| 2 * i).collect::<Vec<u64>>());
}
