//! What goes in a frame, for the file sink and the gateway sink: how a
//! batch of results becomes frames, split when one would pass the wire's
//! size limit, and how they are numbered ([`Numbering`], continued from
//! the last frame on disk). No files here: reading wire files back is the
//! store's ([`store::scan`]).

use std::sync::Arc;

use wire::{EncodeError, FrameBuilder, FrameHeader, Record};

use crate::result::CheckResult;

/// Appends a batch of results to `out` as `agent`'s frames, the first
/// numbered `(session, first_seq)` (see [`encode_frames`]). Both sinks
/// write their batches through this.
pub(crate) fn encode_results(
    agent: &str,
    (session, first_seq): (u64, u64),
    batch: &[Arc<CheckResult>],
    out: &mut Vec<u8>,
) -> Result<u64, EncodeError> {
    encode_frames(
        agent,
        session,
        first_seq,
        batch,
        |r| (&r.check, r.record),
        out,
    )
}

/// Appends `items` to `out` as frames of `agent`'s `session` numbered from
/// `first_seq`, one frame unless it would exceed the wire's maximum body,
/// in which case the batch is halved until each part fits. Returns the
/// number of frames; on error `out` holds only whole frames.
pub(crate) fn encode_frames<T>(
    agent: &str,
    session: u64,
    first_seq: u64,
    items: &[T],
    entry: impl Fn(&T) -> (&str, Record) + Copy,
    out: &mut Vec<u8>,
) -> Result<u64, EncodeError> {
    if items.is_empty() {
        return Ok(0);
    }
    let mut builder = FrameBuilder::new(FrameHeader {
        agent: agent.to_owned(),
        session,
        seq: first_seq,
    });
    for item in items {
        let (check, record) = entry(item);
        builder.push(check, record);
    }
    match builder.finish().encode_into(out) {
        Ok(_) => Ok(1),
        Err(e) if items.len() < 2 => Err(e),
        Err(_) => {
            let (left, right) = items.split_at(items.len() / 2);
            let n = encode_frames(agent, session, first_seq, left, entry, out)?;
            let m = encode_frames(agent, session, first_seq + n, right, entry, out)?;
            Ok(n + m)
        }
    }
}

/// Whose frames a sink writes and how the next one is numbered: the agent
/// id, its session and the next sequence. The file sink and the spool each
/// keep one, continued from what they find on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Numbering {
    agent: String,
    session: u64,
    next_seq: u64,
}

impl Numbering {
    /// `agent`'s frames in `session`, the next one numbered `next_seq`.
    pub(crate) fn new(agent: &str, session: u64, next_seq: u64) -> Numbering {
        Numbering {
            agent: agent.to_owned(),
            session,
            next_seq,
        }
    }

    /// The agent id frames carry.
    pub(crate) fn agent(&self) -> &str {
        &self.agent
    }

    /// The session frames carry.
    pub(crate) fn session(&self) -> u64 {
        self.session
    }

    /// The sequence number of the next frame.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The `(session, seq)` the next frame gets.
    pub(crate) fn next_id(&self) -> (u64, u64) {
        (self.session, self.next_seq)
    }

    /// Counts `frames` more frames as written.
    pub(crate) fn advance(&mut self, frames: u64) {
        self.next_seq += frames;
    }
}

/// The session and the next sequence after `last`, the `(session, seq)`
/// of this agent's newest frame on disk: the same session and the next
/// sequence, or a new session (`now_ms`, epoch ms, above `last`'s) when
/// there is no frame or its sequence is exhausted. Returns whether it
/// resumed.
pub(crate) fn continue_after(last: Option<(u64, u64)>, now_ms: u64) -> (u64, u64, bool) {
    match last {
        Some((session, seq)) => match seq.checked_add(1) {
            Some(next) => (session, next, true),
            None => (now_ms.max(session.saturating_add(1)), 0, false),
        },
        None => (now_ms, 0, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::{FrameReader, ReadItem};

    fn record(t_ms: u64) -> Record {
        Record::up(t_ms, 12)
            .with_sc(200)
            .with_dn(1)
            .with_cn(2)
            .with_ft(5)
    }

    #[test]
    fn oversized_batch_is_split_into_frames_that_each_decode() {
        // Check names of ~1 MiB: six records cannot share one 4 MiB frame.
        let names: Vec<String> = (0..6)
            .map(|i| format!("{i}{}", "x".repeat(1 << 20)))
            .collect();
        let items: Vec<(&str, Record)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), record(i as u64)))
            .collect();
        let mut out = Vec::new();
        let n = encode_frames("a", 1, 10, &items, |&(c, r)| (c, r), &mut out).unwrap();
        assert!(n >= 2);
        let frames: Vec<_> = FrameReader::new(&out, 0)
            .at_eof()
            .map(|item| match item {
                ReadItem::Frame { frame, .. } => frame,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(frames.len() as u64, n);
        let seqs: Vec<u64> = frames.iter().map(|f| f.header.seq).collect();
        assert_eq!(seqs, (10..10 + n).collect::<Vec<_>>());
        let ts: Vec<u64> = frames
            .iter()
            .flat_map(|f| f.records().map(|(_, r)| r.t_ms).collect::<Vec<_>>())
            .collect();
        assert_eq!(ts, (0..6).collect::<Vec<_>>());
    }
}
