//! The alerter's state on disk: one file, `checkpoint`, replaced whole and
//! durably by the store's [`store::CursorFile::store_synced`], so cursors,
//! rule state and outboxes can never disagree with each other. The bytes
//! are a magic, a version, a CRC-32 of the body and the body (MessagePack
//! of the caller's state); a damaged file is refused with its path, never
//! taken for an empty state. The previous checkpoint is kept as
//! `checkpoint.prev` and used when the newest is damaged or gone.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use store::CursorFile;

/// The file's first bytes.
const MAGIC: &[u8; 8] = b"SONDEALR";
/// The format of the body; a newer one is refused.
const VERSION: u32 = 1;
const HEADER: usize = MAGIC.len() + 4 + 4;

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file system refused.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The file is not a checkpoint, or is damaged.
    #[error("{path}: {what} (move it aside to start from an empty state)")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The state could not be encoded.
    #[error("encoding the checkpoint: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

/// The checkpoint files of one state directory.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    dir: PathBuf,
    current: CursorFile,
    previous: CursorFile,
    next: CursorFile,
}

impl Checkpoint {
    /// The checkpoint of `dir`.
    pub fn new(dir: &Path) -> Checkpoint {
        Checkpoint {
            dir: dir.to_owned(),
            current: CursorFile::new(dir, "checkpoint"),
            previous: CursorFile::new(dir, "checkpoint.prev"),
            next: CursorFile::new(dir, "checkpoint.next"),
        }
    }

    /// The newest readable state, `None` when there is none yet. A damaged
    /// newest file falls back to the previous one (logged by the caller
    /// through the returned warning); both damaged is an error.
    pub fn load<T: DeserializeOwned>(
        &self,
    ) -> Result<(Option<T>, Option<String>), CheckpointError> {
        match read(&self.current) {
            // Between the two renames of `save` only the previous one is there.
            Ok(None) => Ok((read(&self.previous)?, None)),
            Ok(found) => Ok((found, None)),
            Err(CheckpointError::Damaged { path, what }) => match read(&self.previous) {
                Ok(Some(state)) => {
                    // Kept for a person, and out of the way: the next save
                    // must not rename it over the good previous one.
                    let moved = store::move_aside(&path)?;
                    Ok((
                        Some(state),
                        Some(format!(
                            "{}: {what}; using {} instead (the damaged one is now {})",
                            path.display(),
                            self.previous.path().display(),
                            moved.display()
                        )),
                    ))
                }
                Ok(None) => Err(CheckpointError::Damaged { path, what }),
                Err(CheckpointError::Damaged { what: prev, .. }) => Err(CheckpointError::Damaged {
                    path,
                    what: format!("{what}; and {}: {prev}", self.previous.path().display()),
                }),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Writes `state` durably, keeping the file it replaces as the previous one.
    pub fn save<T: Serialize>(&self, state: &T) -> Result<usize, CheckpointError> {
        self.save_encoded(&encode(state)?)
    }

    /// Writes bytes [`encode`] made (on the caller's thread, so the state
    /// can be taken at one instant and written on another).
    pub fn save_encoded(&self, bytes: &[u8]) -> Result<usize, CheckpointError> {
        // Written whole beside, then the current one becomes the previous
        // and the new one the current: at every instant one of the two
        // names holds a whole checkpoint, which `load` looks for in order.
        self.next.store_synced(bytes)?;
        let rename = |from: &Path, to: &Path| {
            std::fs::rename(from, to).map_err(|source| store::StoreError::Rename {
                path: to.to_owned(),
                source,
            })
        };
        if self.current.path().exists() {
            rename(self.current.path(), self.previous.path())?;
        }
        rename(self.next.path(), self.current.path())?;
        store::sync_dir(&self.dir)?;
        Ok(bytes.len())
    }
}

/// The file's bytes for `state`.
pub fn encode<T: Serialize>(state: &T) -> Result<Vec<u8>, CheckpointError> {
    let body = rmp_serde::to_vec_named(state)?;
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The state in `bytes`, or what is wrong with them.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a sonde alerter checkpoint (bad magic or too short)".into());
    }
    let word = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&bytes[at..at + 4]);
        u32::from_be_bytes(b)
    };
    let version = word(MAGIC.len());
    if version != VERSION {
        return Err(format!(
            "checkpoint format {version}; this sonde reads format {VERSION}"
        ));
    }
    let body = &bytes[HEADER..];
    if crc32fast::hash(body) != word(MAGIC.len() + 4) {
        return Err("checksum mismatch: the file is damaged".into());
    }
    rmp_serde::from_slice(body).map_err(|e| format!("unreadable state: {e}"))
}

fn read<T: DeserializeOwned>(file: &CursorFile) -> Result<Option<T>, CheckpointError> {
    match file.load_bytes()? {
        None => Ok(None),
        Some(bytes) => decode(&bytes)
            .map(Some)
            .map_err(|what| CheckpointError::Damaged {
                path: file.path().to_owned(),
                what,
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_state_survives_a_round_trip_and_damage_falls_back_to_the_previous() {
        let tmp = tempfile::tempdir().unwrap();
        let cp = Checkpoint::new(tmp.path());
        let (none, _) = cp.load::<BTreeMap<String, u64>>().unwrap();
        assert!(none.is_none());
        let mut s = BTreeMap::new();
        s.insert("eu".to_string(), 7u64);
        cp.save(&s).unwrap();
        s.insert("eu".to_string(), 9u64);
        cp.save(&s).unwrap();
        let (back, warn) = cp.load::<BTreeMap<String, u64>>().unwrap();
        assert_eq!(back.unwrap()["eu"], 9);
        assert!(warn.is_none());

        // One flipped byte in the newest: the previous state comes back, with a warning.
        let path = tmp.path().join("checkpoint");
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let (back, warn) = cp.load::<BTreeMap<String, u64>>().unwrap();
        assert_eq!(back.unwrap()["eu"], 7);
        assert!(warn.unwrap().contains("checksum mismatch"));
        assert!(
            tmp.path().join("checkpoint.corrupt").exists(),
            "moved aside"
        );
        // The next save keeps the good previous one as the previous one.
        s.insert("eu".to_string(), 11u64);
        cp.save(&s).unwrap();
        let prev: BTreeMap<String, u64> =
            decode(&std::fs::read(tmp.path().join("checkpoint.prev")).unwrap()).unwrap();
        assert_eq!(prev["eu"], 7);
        // Damage the newest again for what follows.
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let (back, _) = cp.load::<BTreeMap<String, u64>>().unwrap();
        assert_eq!(back.unwrap()["eu"], 7);
        std::fs::write(&path, &bytes).unwrap(); // damaged, for what follows

        // A crash between save's two renames: only the previous is there.
        std::fs::rename(&path, tmp.path().join("checkpoint.x")).unwrap();
        let (back, warn) = cp.load::<BTreeMap<String, u64>>().unwrap();
        assert_eq!(back.unwrap()["eu"], 7);
        assert!(warn.is_none());
        std::fs::rename(tmp.path().join("checkpoint.x"), &path).unwrap();

        // Both damaged: an error naming the newest file.
        std::fs::write(tmp.path().join("checkpoint.prev"), b"garbage").unwrap();
        let e = cp.load::<BTreeMap<String, u64>>().unwrap_err();
        assert!(
            e.to_string().contains("checkpoint: checksum mismatch"),
            "{e}"
        );
    }

    #[test]
    fn truncated_and_foreign_files_are_named_not_taken_for_empty() {
        let good = encode(&vec![1u32, 2, 3]).unwrap();
        for cut in [0, 4, HEADER, good.len() - 1] {
            assert!(decode::<Vec<u32>>(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut newer = good.clone();
        newer[MAGIC.len() + 3] = 2;
        assert!(decode::<Vec<u32>>(&newer).unwrap_err().contains("format 2"));
        assert_eq!(decode::<Vec<u32>>(&good).unwrap(), vec![1, 2, 3]);
    }
}
