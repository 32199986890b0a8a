//! Ingest with `[jetstream]`: a request's new frames go to the agent's
//! subject, and the agent's acknowledgement waits for JetStream's, which
//! comes once the stream's replicas hold them (PROTOCOL.md 10.2).
//!
//! Each message is published with `Nats-Expected-Last-Subject-Sequence`
//! set to the stream sequence of the agent's last message as this
//! replica knows it. If any replica (or an earlier life of this one)
//! stored a message for the agent since, JetStream refuses it; the
//! replica reads the subject's last message, takes the agent's mark from
//! its frames, and classifies the request again. The mark therefore
//! comes from the stream, however old the frames an agent replays. The
//! marks stream keeps each agent's mark for when its subject has aged
//! out of the stream; `Nats-Msg-Id` covers a retried publish within
//! JetStream's duplicate window.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;

use super::{Log, layout};
use crate::hub::{Ack, Plan, classify_after};
use crate::ingest::{Reject, ValidFrame};

/// What a replica knows of one agent's subject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Known {
    /// The stream sequence of the agent's last message (0: none).
    pub subject_seq: u64,
    /// The agent's mark: the (session, seq) of its last frame stored.
    pub mark: Option<(u64, u64)>,
}

impl Known {
    /// Takes in a message at `seq` whose last frame is `last`: a later
    /// message moves the subject on, and a mark only ever rises.
    pub fn observe(&mut self, seq: u64, last: Option<(u64, u64)>) {
        if seq > self.subject_seq {
            self.subject_seq = seq;
        }
        if last > self.mark {
            self.mark = last;
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    /// One request of an agent publishes at a time.
    turn: tokio::sync::Mutex<()>,
    /// None until read from the stream.
    known: Mutex<Option<Known>>,
    /// A mark the marks stream does not have yet.
    unsaved: Mutex<bool>,
}

/// Every agent's [`Known`], shared by ingest and the follower.
#[derive(Debug, Default)]
pub struct Marks {
    agents: Mutex<HashMap<Arc<str>, Arc<Slot>>>,
}

impl Marks {
    fn slot(&self, agent: &str) -> Arc<Slot> {
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = agents.get(agent) {
            return s.clone();
        }
        let s = Arc::new(Slot::default());
        agents.insert(Arc::from(agent), s.clone());
        s
    }

    /// The follower saw `agent`'s message at `seq`, whose last frame is `last`.
    pub fn observe(&self, agent: &str, seq: u64, last: Option<(u64, u64)>) {
        let slot = self.slot(agent);
        let mut known = slot.known.lock().unwrap_or_else(|e| e.into_inner());
        // Unknown stays unknown: the stream may hold later messages the
        // follower has not reached, which a lookup reads.
        if let Some(k) = known.as_mut() {
            k.observe(seq, last);
        }
    }

    fn known(slot: &Slot) -> Option<Known> {
        *slot.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(slot: &Slot, k: Known) {
        let mut known = slot.known.lock().unwrap_or_else(|e| e.into_inner());
        let mut merged = known.unwrap_or(k);
        merged.observe(k.subject_seq, k.mark);
        *known = Some(merged);
    }

    /// Takes in what [`lookup`] read: the subject's sequence as the stream
    /// has it now, which is lower than the one known when the agent's
    /// messages aged out (kept, every publish would be refused), and the
    /// mark, which only rises.
    fn looked_up(slot: &Slot, k: Known) {
        let mut known = slot.known.lock().unwrap_or_else(|e| e.into_inner());
        let mark = known.and_then(|o| o.mark).max(k.mark);
        *known = Some(Known {
            subject_seq: k.subject_seq,
            mark,
        });
    }

    /// Agents whose mark the marks stream lacks, with it; cleared.
    fn take_unsaved(&self) -> Vec<(Arc<str>, (u64, u64))> {
        let agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (agent, slot) in agents.iter() {
            let mut unsaved = slot.unsaved.lock().unwrap_or_else(|e| e.into_inner());
            if let (true, Some(Known { mark: Some(m), .. })) = (*unsaved, Marks::known(slot)) {
                out.push((agent.clone(), m));
            }
            *unsaved = false;
        }
        out
    }

    fn mark_unsaved(&self, agent: &str) {
        let slot = self.slot(agent);
        *slot.unsaved.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }
}

/// How many times a request reads the subject again after a publish
/// JetStream refused for a newer message, before answering 503.
const MAX_RECLASSIFY: usize = 8;

/// What [`accept`] did, for the counters.
#[derive(Debug)]
pub struct Accepted {
    /// The acknowledgement.
    pub ack: Ack,
    /// The last classification.
    pub plan: Plan,
}

/// Publishes the new frames of a validated request of `agent` and says
/// what to acknowledge. `over_cap` checks the agent's distinct checks
/// against the hub.
pub async fn accept(
    log: &Log,
    agent: &str,
    body: &Bytes,
    frames: &[ValidFrame],
    over_cap: impl Fn(&Plan) -> Result<(), Reject>,
) -> Result<Accepted, Reject> {
    let slot = log.marks.slot(agent);
    let _turn = slot.turn.lock().await;
    let subject = log.subject(agent);
    let keys: Vec<(u64, u64)> = frames
        .iter()
        .map(|f| (f.frame.header.session, f.frame.header.seq))
        .collect();
    let mut accepted = 0;
    let mut records = 0;
    for _ in 0..MAX_RECLASSIFY {
        let known = match Marks::known(&slot) {
            Some(k) => k,
            None => {
                let k = lookup(log, agent, &subject).await?;
                Marks::looked_up(&slot, k);
                k
            }
        };
        let plan = classify_after(known.mark, keys.iter().copied());
        over_cap(&plan)?;
        let messages = layout::messages(frames, &plan).map_err(|e| Reject::TooManyRecords {
            offset: e.offset as u64,
            records: e.records,
            max: layout::RECORDS_PER_MESSAGE,
        })?;
        let mut expected = known.subject_seq;
        let mut refused = false;
        for m in &messages {
            let id = layout::message_id(agent, m.first.0, m.first.1);
            let publish = PublishMessage::build()
                .payload(body.slice(m.bytes.clone()))
                .message_id(&id)
                .expected_last_subject_sequence(expected);
            match publish_one(log, &subject, publish).await {
                Ok(seq) => {
                    Marks::set(
                        &slot,
                        Known {
                            subject_seq: seq,
                            mark: Some(m.last),
                        },
                    );
                    log.marks.mark_unsaved(agent);
                    expected = seq;
                    accepted += m.frames;
                    records += m.records;
                }
                Err(Published::Newer) => {
                    // Someone else wrote for this agent: read the subject again.
                    let k = lookup(log, agent, &subject).await?;
                    Marks::looked_up(&slot, k);
                    refused = true;
                    break;
                }
                Err(Published::Failed(reason)) => return Err(Reject::LogUnavailable { reason }),
            }
        }
        if refused {
            continue;
        }
        let mark = Marks::known(&slot).and_then(|k| k.mark).unwrap_or((0, 0));
        return Ok(Accepted {
            ack: Ack {
                session: mark.0,
                acked: mark.1,
                accepted,
                records,
                duplicates: frames.len() - accepted,
            },
            plan,
        });
    }
    Err(Reject::LogUnavailable {
        reason: format!("agent {agent}'s subject kept moving under {MAX_RECLASSIFY} attempts"),
    })
}

enum Published {
    /// The subject holds a message this replica did not know of.
    Newer,
    /// Anything else: NATS unreachable, no leader, no ack in time.
    Failed(String),
}

async fn publish_one(log: &Log, subject: &str, m: PublishMessage) -> Result<u64, Published> {
    let sent = log.js.send_publish(subject.to_owned(), m).await;
    let ack = match sent {
        Ok(future) => future.await,
        Err(e) => Err(e),
    };
    match ack {
        Ok(ack) if ack.duplicate => {
            // Stored before (a retried publish within the window): the
            // subject may have moved past it since.
            Err(Published::Newer)
        }
        Ok(ack) => Ok(ack.sequence),
        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Err(Published::Newer),
        Err(e) => Err(Published::Failed(e.to_string())),
    }
}

/// Reads what the stream says of `agent`: its subject's last message,
/// and the marks stream for a subject that has aged out.
async fn lookup(log: &Log, agent: &str, subject: &str) -> Result<Known, Reject> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    let unavailable = |e: &dyn std::fmt::Display| Reject::LogUnavailable {
        reason: format!("reading agent {agent}'s last message: {e}"),
    };
    let mut known = Known::default();
    match log.stream.get_last_raw_message_by_subject(subject).await {
        Ok(m) => {
            let frames = log.frames(&m.subject, &m.payload).unwrap_or_default();
            let last = frames.last().map(|f| (f.header.session, f.header.seq));
            known.observe(m.sequence, last);
        }
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {}
        Err(e) => return Err(unavailable(&e)),
    }
    match log
        .marks_stream
        .get_last_raw_message_by_subject(&log.marks_subject(agent))
        .await
    {
        Ok(m) => known.observe(0, parse_mark(&m.payload)),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {}
        Err(e) => return Err(unavailable(&e)),
    }
    Ok(known)
}

/// A mark as the marks stream holds it: `session:seq`.
fn format_mark(m: (u64, u64)) -> Bytes {
    Bytes::from(format!("{}:{}", m.0, m.1))
}

fn parse_mark(v: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(v).ok()?;
    let (s, q) = text.split_once(':')?;
    Some((s.parse().ok()?, q.parse().ok()?))
}

/// Writes the marks that changed into the marks stream, each only
/// upwards (compare-and-set on the subject's last sequence); what fails
/// is tried at the next call.
pub async fn save_marks(log: &Log) {
    use futures_util::StreamExt;
    let unsaved = log.marks.take_unsaved();
    futures_util::stream::iter(unsaved)
        .for_each_concurrent(MARKS_AT_ONCE, |(agent, mark)| async move {
            if let Err(e) = save_mark(log, &agent, mark).await {
                tracing::debug!(%agent, error = %e, "jetstream: saving a mark (tried again)");
                log.marks.mark_unsaved(&agent);
            }
        })
        .await;
}

/// Marks written at once: a pass over thousands of agents stays within
/// about a second at a few milliseconds a write.
const MARKS_AT_ONCE: usize = 64;

async fn save_mark(log: &Log, agent: &str, mark: (u64, u64)) -> Result<(), String> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    let subject = log.marks_subject(agent);
    for _ in 0..3 {
        let seq = match log
            .marks_stream
            .get_last_raw_message_by_subject(&subject)
            .await
        {
            Ok(m) if parse_mark(&m.payload) >= Some(mark) => return Ok(()),
            Ok(m) => m.sequence,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => 0,
            Err(e) => return Err(e.to_string()),
        };
        let publish = PublishMessage::build()
            .payload(format_mark(mark))
            .expected_last_subject_sequence(seq);
        match publish_one(log, &subject, publish).await {
            Ok(_) => return Ok(()),
            Err(Published::Newer) => continue,
            Err(Published::Failed(reason)) => return Err(reason),
        }
    }
    Err("the mark's subject kept moving".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_only_rises_and_the_subject_only_moves_on() {
        let mut k = Known::default();
        k.observe(5, Some((7, 3)));
        k.observe(4, Some((7, 2)));
        assert_eq!(
            k,
            Known {
                subject_seq: 5,
                mark: Some((7, 3))
            }
        );
        // The marks stream's mark (no sequence) can only raise the mark.
        k.observe(0, Some((8, 0)));
        assert_eq!(
            k,
            Known {
                subject_seq: 5,
                mark: Some((8, 0))
            }
        );
    }

    #[test]
    fn a_lookup_lowers_the_subject_of_an_aged_out_agent_but_never_the_mark() {
        let slot = Slot::default();
        Marks::set(
            &slot,
            Known {
                subject_seq: 9,
                mark: Some((7, 3)),
            },
        );
        // Its messages aged out: the subject is empty, the marks stream
        // holds an older mark.
        Marks::looked_up(
            &slot,
            Known {
                subject_seq: 0,
                mark: Some((7, 2)),
            },
        );
        assert_eq!(
            Marks::known(&slot),
            Some(Known {
                subject_seq: 0,
                mark: Some((7, 3))
            })
        );
    }

    #[test]
    fn marks_round_trip_through_their_text_format() {
        assert_eq!(
            parse_mark(&format_mark((1_767_225_600_000, 42))),
            Some((1_767_225_600_000, 42))
        );
        assert_eq!(parse_mark(b"garbage"), None);
        assert_eq!(parse_mark(b"1:x"), None);
    }
}
