//! An outbox from store parts alone (an append
//! log of notifications, one frame each) and its "delivered up to" cursor.
//! No durability code of its own: naming, recovery, appends, syncs and the
//! cursor are the store's; only the cursor's text is the outbox's.

use std::path::Path;
use std::time::Instant;

use store::{
    ByPair, CursorFile, Depth, Fsync, LastFrame, Naming, Segment, SyncClock, recover, sync_dir,
};

use crate::util::{append, frame};

const OUTBOX: ByPair = ByPair {
    prefix: "outbox-",
    widths: (20, 20),
};

/// The outbox as an alerter would hold it.
struct Outbox {
    log: Segment,
    clock: SyncClock,
    cursor: CursorFile,
    next: u64,
    delivered: Option<u64>,
}

impl Outbox {
    fn open(dir: &Path) -> Outbox {
        let found = recover(dir, &OUTBOX, Depth::All).unwrap();
        let cursor = CursorFile::new(dir, "delivered");
        let delivered = cursor.load().unwrap().and_then(|t| t.trim().parse().ok());
        let next = match found.last_frame() {
            Some(LastFrame::Frame(h)) => h.seq + 1,
            _ => 0,
        };
        let log = Segment::create(&dir.join(OUTBOX.name((next, 0)))).unwrap();
        sync_dir(dir).unwrap();
        Outbox {
            log,
            clock: SyncClock::new(Fsync::Always, Instant::now()),
            cursor,
            next,
            delivered,
        }
    }

    fn push(&mut self) {
        self.log.append(&frame(self.next), 1).unwrap();
        self.next += 1;
        if self.clock.wrote() {
            assert_eq!(self.log.sync().unwrap(), 1, "durable before it is sent");
            self.clock.synced(Instant::now());
        }
    }

    fn delivered(&mut self, seq: u64) {
        self.cursor.store(&format!("{seq}\n")).unwrap();
        self.delivered = Some(seq);
    }
}

#[test]
fn an_outbox_and_its_cursor_survive_a_crash_with_store_parts_only() {
    let tmp = tempfile::tempdir().unwrap();
    let mut outbox = Outbox::open(tmp.path());
    for _ in 0..3 {
        outbox.push();
    }
    outbox.delivered(1);
    let path = outbox.log.path().to_owned();
    drop(outbox); // as SIGKILL, mid-way through a fourth notification
    append(&path, &frame(3)[..10]);

    let outbox = Outbox::open(tmp.path());
    assert_eq!(outbox.delivered, Some(1), "the cursor survived");
    assert_eq!(
        outbox.next, 3,
        "the torn notification is gone, the rest kept"
    );
    let found = recover(tmp.path(), &OUTBOX, Depth::All).unwrap();
    assert_eq!(found.files.len(), 2);
    assert_eq!(found.torn_tails, 0, "repaired by the first open");
}
