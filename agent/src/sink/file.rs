//! The file sink: results as wire-format files on local disk, in
//! append-only segments `DIR/segment-<UTC start>.sonde`, each a complete
//! wire file (file header, then frames). It does not serve or ship them:
//! `sonde decode` and any WIRE.md reader read them. The files themselves
//! (naming, recovery, the rotation and retention rules, fsync) are the
//! store's ([`store`]); the sink brings its limits and its frames.
//!
//! - Each batch is one frame (more only if it would pass the wire's 4 MiB
//!   body limit), numbered by a sequence that continues across segments and
//!   restarts: at open, the last frame on disk gives the session and the
//!   sequence to continue. A new session (epoch ms) starts only when there
//!   is none to continue (empty directory, another agent id, unreadable tail).
//! - Durability: a frame is appended with one `write_all`. `fsync = always`
//!   syncs after every batch; `every(d)` syncs in `tick` once the oldest
//!   unsynced write is `d` old; `never` only at rotation and close. A
//!   process crash (SIGKILL) loses nothing the kernel accepted; a power loss
//!   loses at most the writes since the last sync.
//! - Recovery at open: the newest segment is scanned; a torn or damaged tail
//!   (after the last intact frame) is truncated, synced, logged and counted
//!   in [`Recovery`]. Damage followed by good frames is left in place
//!   (cutting it would lose them; readers resync past it), as is any damage
//!   inside older, finished segments, which are not scanned. A segment whose
//!   file header is wrong is renamed to `*.corrupt`, never deleted.
//! - Rotation: before a write that would pass `segment_max_bytes`, and in
//!   `tick` once the segment is `segment_max_age` old; the finished segment
//!   is synced, the new one created with its header synced, then the
//!   directory synced. Retention then deletes the oldest finished segments
//!   while the total passes `retention_max_bytes` (the active segment
//!   counted at `segment_max_bytes`, so the directory stays within the limit
//!   until the next rotation) or they were last written more than
//!   `retention_max_age` ago (also at open and every minute).
//!
//! Blocking I/O runs in `tokio::task::spawn_blocking`: the segment state is
//! moved into the blocking task with the encoded bytes and moved back. Not
//! `block_in_place`, which panics on a current-thread runtime and stalls
//! every other task polled on that worker while an fsync waits on the disk;
//! one thread hand-off per batch is nothing next to a disk write.
//! [`FileSink::open`] itself blocks (recovery reads the newest segment):
//! call it at startup, before probing, or inside `spawn_blocking`.

pub(crate) mod segments;

use std::path::Path;
use std::sync::Arc;

pub use segments::Recovery;

use super::{Sink, SinkError, frames};
use crate::result::CheckResult;
use segments::Segments;

/// Writes results to wire-format segment files. See the module docs.
pub struct FileSink {
    /// `None` only while a blocking call holds it, or after one panicked.
    segments: Option<Box<Segments>>,
    recovery: Recovery,
    /// The encode buffer, kept between batches.
    buf: Vec<u8>,
}

impl FileSink {
    /// Opens (creating if needed) the segment directory of `config` for
    /// `agent_id`, recovers the newest segment and opens the active one.
    /// Blocks on file I/O.
    pub fn open(config: &config::FileSink, agent_id: &str) -> Result<FileSink, SinkError> {
        let segments = Segments::open(config, agent_id)?;
        Ok(FileSink {
            recovery: segments.recovery().clone(),
            segments: Some(Box::new(segments)),
            buf: Vec::new(),
        })
    }

    /// What recovery found and repaired at open.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The session frames are written with.
    pub fn session(&self) -> Option<u64> {
        self.segments.as_ref().map(|s| s.numbering().session())
    }

    /// The sequence number the next frame gets.
    pub fn next_seq(&self) -> Option<u64> {
        self.segments.as_ref().map(|s| s.numbering().next_seq())
    }

    /// The segment being written.
    pub fn active_path(&self) -> Option<&Path> {
        self.segments.as_ref().map(|s| s.active_path())
    }

    /// Runs `f` on the segments in a blocking thread, moving them there
    /// and back along with the encode buffer.
    async fn blocking<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Segments, &[u8]) -> Result<R, SinkError> + Send + 'static,
    ) -> Result<R, SinkError> {
        let mut segments = self
            .segments
            .take()
            .ok_or_else(|| SinkError::Unusable { sink: "file" })?;
        let buf = std::mem::take(&mut self.buf);
        let (segments, buf, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut segments, &buf);
            (segments, buf, result)
        })
        .await
        .map_err(|source| SinkError::Task {
            sink: "file",
            source,
        })?;
        self.segments = Some(segments);
        self.buf = buf;
        result
    }
}

impl Sink for FileSink {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn write(&mut self, batch: &[Arc<CheckResult>]) -> Result<u64, SinkError> {
        let Some(segments) = self.segments.as_ref() else {
            return Err(SinkError::Unusable { sink: "file" });
        };
        self.buf.clear();
        let numbering = segments.numbering();
        let frames =
            frames::encode_results(numbering.agent(), numbering.next_id(), batch, &mut self.buf)
                .map_err(|source| SinkError::Encode {
                    sink: "file",
                    source,
                })?;
        if frames == 0 {
            return Ok(0);
        }
        self.blocking(move |s, bytes| s.append(bytes, frames)).await
    }

    async fn tick(&mut self) -> Result<(), SinkError> {
        if !self.segments.as_ref().is_some_and(|s| s.tick_due()) {
            return Ok(());
        }
        self.blocking(|s, _| s.tick()).await
    }

    async fn close(mut self) -> Result<(), SinkError> {
        let Some(segments) = self.segments.take() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || segments.close())
            .await
            .map_err(|source| SinkError::Task {
                sink: "file",
                source,
            })?
    }
}
