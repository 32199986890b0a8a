//! The store's decisions as plain functions of plain values: when the
//! active file rotates, which finished files retention deletes, when the
//! fsync policy wants a sync. No files and no clocks: callers pass sizes,
//! ages and instants in, so every rule is tested without a disk.

use std::time::{Duration, Instant};

/// Why the active file is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotate {
    /// The next write would take it past its size limit.
    Size,
    /// It is older than its age limit.
    Age,
}

/// Whether the active file (`len` bytes, `frames` frames, `age` old) must
/// be finished before `incoming` more bytes are appended (`incoming` is 0
/// for the periodic check, which never rotates by size). A file without
/// frames never rotates: a frame larger than the limit gets a file of its
/// own instead of an endless run of empty ones, and an idle writer does
/// not litter the directory with empty files. `max_age` of
/// [`Duration::MAX`] turns rotation by age off.
pub fn rotation(
    len: u64,
    frames: u64,
    age: Duration,
    incoming: u64,
    max_bytes: u64,
    max_age: Duration,
) -> Option<Rotate> {
    if frames == 0 {
        return None;
    }
    if incoming > 0 && len.saturating_add(incoming) > max_bytes {
        return Some(Rotate::Size);
    }
    if age >= max_age {
        return Some(Rotate::Age);
    }
    None
}

/// How much of its finished files a store keeps; an unset bound keeps
/// everything as far as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retain {
    /// Total bytes to keep at most (the active file included).
    pub max_bytes: Option<u64>,
    /// Delete files last written longer ago than this.
    pub max_age: Option<Duration>,
}

/// A finished file as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Its size in bytes.
    pub len: u64,
    /// How long ago it was last written.
    pub idle: Duration,
}

/// How many of the `finished` files (oldest first) retention deletes:
/// from the oldest, while the total (`active_len`, the file being written,
/// included) is over `keep.max_bytes` or the file is older than
/// `keep.max_age`. It stops at the first file that may stay, so what is
/// kept is always an unbroken run up to the newest; the active file is
/// never among those deleted.
pub fn expired(finished: &[Held], active_len: u64, keep: Retain) -> usize {
    let mut total = finished
        .iter()
        .fold(active_len, |sum, f| sum.saturating_add(f.len));
    let mut n = 0;
    for f in finished {
        let too_big = keep.max_bytes.is_some_and(|max| total > max);
        let too_old = keep.max_age.is_some_and(|max| f.idle > max);
        if !too_big && !too_old {
            break;
        }
        total = total.saturating_sub(f.len);
        n += 1;
    }
    n
}

/// When written data is forced to disk: durability against throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// After every write: nothing written is lost on power failure, at the
    /// cost of one flush per write.
    Always,
    /// Once this long has passed since the last sync and there is unsynced
    /// data: a power failure loses at most about this much.
    Every(Duration),
    /// Only when the caller asks ([`SyncClock::due`] is never true): at
    /// rotation and close. A process crash loses nothing either way.
    Never,
}

/// The fsync policy's state: whether anything is unsynced, and when the
/// last sync was. Callers report writes and syncs with the instant they
/// happened at; the clock answers whether a sync is due and how long until
/// one will be. A group commit ("sync now and tell me what is durable") is
/// [`crate::Segment::sync`], called whenever [`SyncClock::wrote`] says so
/// or the caller wants a durable point.
#[derive(Debug, Clone, Copy)]
pub struct SyncClock {
    fsync: Fsync,
    unsynced: bool,
    last_sync: Instant,
}

impl SyncClock {
    /// A clock for `fsync`, with nothing unsynced as of `now`.
    pub fn new(fsync: Fsync, now: Instant) -> Self {
        SyncClock {
            fsync,
            unsynced: false,
            last_sync: now,
        }
    }

    /// The policy.
    pub fn fsync(&self) -> Fsync {
        self.fsync
    }

    /// Records a write; true when the policy wants a sync right away.
    pub fn wrote(&mut self) -> bool {
        self.unsynced = true;
        self.fsync == Fsync::Always
    }

    /// Records a good sync at `now`.
    pub fn synced(&mut self, now: Instant) {
        self.unsynced = false;
        self.last_sync = now;
    }

    /// Whether anything written is not yet synced.
    pub fn unsynced(&self) -> bool {
        self.unsynced
    }

    /// Whether a periodic sync is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        matches!(self.fsync, Fsync::Every(every)
            if self.unsynced && now.saturating_duration_since(self.last_sync) >= every)
    }

    /// How long from `now` until a periodic sync is due; `None` when none
    /// will be (nothing unsynced, or no periodic syncs).
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        match self.fsync {
            Fsync::Every(every) if self.unsynced => {
                Some(every.saturating_sub(now.saturating_duration_since(self.last_sync)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_by_size_and_age_never_for_an_empty_file() {
        let hour = Duration::from_secs(3600);
        let s = Duration::from_secs(1);
        assert_eq!(rotation(900, 3, s, 100, 1000, hour), None);
        assert_eq!(rotation(901, 3, s, 100, 1000, hour), Some(Rotate::Size));
        assert_eq!(rotation(8, 0, s, 5000, 1000, hour), None);
        assert_eq!(rotation(8, 0, hour * 2, 0, 1000, hour), None);
        assert_eq!(rotation(500, 1, hour, 0, 1000, hour), Some(Rotate::Age));
        assert_eq!(rotation(500, 1, hour - s, 0, 1000, hour), None);
        // The periodic check (nothing incoming) never rotates by size.
        assert_eq!(rotation(5000, 1, s, 0, 1000, hour), None);
        // No age limit.
        assert_eq!(rotation(5, 1, hour * 1000, 0, 1000, Duration::MAX), None);
    }

    fn held(len: u64, idle_s: u64) -> Held {
        Held {
            len,
            idle: Duration::from_secs(idle_s),
        }
    }

    fn keep(max_bytes: Option<u64>, max_age_s: Option<u64>) -> Retain {
        Retain {
            max_bytes,
            max_age: max_age_s.map(Duration::from_secs),
        }
    }

    #[test]
    fn retention_deletes_oldest_first_and_never_the_active() {
        let day = 86_400;
        // a, b, c finished; the active one holds 100 bytes.
        let finished = [held(100, 10), held(100, 9), held(100, 8)];
        assert_eq!(expired(&finished, 100, keep(Some(400), Some(day))), 0);
        assert_eq!(expired(&finished, 100, keep(Some(399), Some(day))), 1);
        assert_eq!(expired(&finished, 100, keep(Some(250), Some(day))), 2);
        // Even a limit below the active file keeps the active file.
        assert_eq!(expired(&finished, 100, keep(Some(0), Some(day))), 3);
        // By age: older than 8 s goes.
        assert_eq!(expired(&finished, 100, keep(Some(10_000), Some(8))), 2);
        // Stops at the first that may stay, even if an older-looking one follows.
        let odd = [held(1, 100), held(1, 1), held(1, 100)];
        assert_eq!(expired(&odd, 1, keep(Some(10), Some(50))), 1);
        assert_eq!(expired(&[], 0, keep(Some(0), Some(day))), 0);
        assert_eq!(expired(&[], 1 << 40, keep(Some(0), Some(0))), 0);
    }

    #[test]
    fn retention_deletes_the_oldest_run_past_either_bound() {
        let files = [held(100, 300), held(100, 200), held(100, 100)];
        assert_eq!(expired(&files, 50, Retain::default()), 0, "no bounds");
        assert_eq!(expired(&files, 50, keep(Some(350), None)), 0);
        assert_eq!(expired(&files, 50, keep(Some(349), None)), 1);
        assert_eq!(
            expired(&files, 50, keep(Some(50), None)),
            3,
            "never the active"
        );
        assert_eq!(expired(&files, 50, keep(None, Some(250))), 1);
        assert_eq!(expired(&files, 50, keep(None, Some(50))), 3);
        // An unbroken run: a young file stops deletion even if a later one is old.
        let mixed = [held(100, 10), held(100, 500)];
        assert_eq!(expired(&mixed, 0, keep(None, Some(60))), 0);
    }

    #[test]
    fn sync_clock_follows_the_policy() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut always = SyncClock::new(Fsync::Always, t0);
        assert!(always.wrote());
        assert!(!always.due(t0 + s * 100), "always syncs at the write");

        let mut every = SyncClock::new(Fsync::Every(s), t0);
        assert!(!every.due(t0 + s * 10), "nothing unsynced");
        assert_eq!(every.wait(t0), None);
        assert!(!every.wrote());
        assert!(every.unsynced());
        assert!(!every.due(t0 + s / 2));
        assert_eq!(every.wait(t0 + s / 4), Some(s * 3 / 4));
        assert!(every.due(t0 + s));
        every.synced(t0 + s);
        assert!(!every.unsynced());
        assert!(!every.due(t0 + s * 3));
        every.wrote();
        assert!(every.due(t0 + s * 2));
        assert_eq!(every.wait(t0 + s * 5), Some(Duration::ZERO));

        let mut never = SyncClock::new(Fsync::Never, t0);
        assert!(!never.wrote());
        assert!(!never.due(t0 + s * 1000));
        assert_eq!(never.wait(t0), None);
    }
}
