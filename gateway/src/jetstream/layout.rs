//! Where things go in the region's stream, as pure functions: an agent's
//! subject, a message's id, the gseqs of its records, which frames of a
//! request share a message, and whether an existing stream is the one
//! gateway.toml describes.

use std::ops::Range;
use std::time::Duration;

use crate::config::JetStream;
use crate::hub::Plan;
use crate::ingest::ValidFrame;

/// The most records one message holds: a record's gseq is its message's
/// stream sequence times this plus its index in the message.
pub const RECORDS_PER_MESSAGE: u64 = 1000;

/// The gseq of record `index` of the message at stream sequence `seq`
/// (PROTOCOL.md 10.3). The same on every replica, since it comes from
/// the stream. Below 2^53 (JavaScript's exact integers) until the stream
/// has given out 9 * 10^12 sequences.
pub fn gseq(seq: u64, index: usize) -> u64 {
    seq.saturating_mul(RECORDS_PER_MESSAGE)
        .saturating_add(index as u64)
}

/// The stream sequence of the message that holds gseq `g`.
pub fn stream_seq(g: u64) -> u64 {
    g / RECORDS_PER_MESSAGE
}

/// A name as one subject token: `.` separates tokens, so it becomes `~`,
/// which names never hold ([`config::is_name`]).
fn token(name: &str) -> String {
    name.replace('.', "~")
}

/// The subject of `agent`'s messages: `<prefix>.<region>.<agent>`.
pub fn subject(prefix: &str, region: &str, agent: &str) -> String {
    format!("{prefix}.{}.{}", token(region), token(agent))
}

/// The stream's one subject filter: every agent of the region.
pub fn subjects(prefix: &str, region: &str) -> String {
    format!("{prefix}.{}.*", token(region))
}

/// The subject of `agent`'s mark in the marks stream:
/// `<prefix>-marks.<region>.<agent>`.
pub fn marks_subject(prefix: &str, region: &str, agent: &str) -> String {
    format!("{prefix}-marks.{}.{}", token(region), token(agent))
}

/// The marks stream's one subject filter.
pub fn marks_subjects(prefix: &str, region: &str) -> String {
    format!("{prefix}-marks.{}.*", token(region))
}

/// The `Nats-Msg-Id` of a message whose first frame is `(session, seq)`
/// of `agent`: unique, since an agent's frames are numbered once. The
/// first frame, not the last: two replicas that publish for the agent at
/// once from the same mark start at the same frame, so JetStream takes
/// one and answers the other `duplicate`, which nats-server before
/// 2.9.21 does not do for `Nats-Expected-Last-Subject-Sequence` in a
/// clustered stream (it checks that before the proposal only, so both
/// pass: nats-server issue 4320).
pub fn message_id(agent: &str, session: u64, seq: u64) -> String {
    format!("{agent}:{session}:{seq}")
}

/// One message to publish: consecutive new frames of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The bytes of the request body it carries (whole frames).
    pub bytes: Range<usize>,
    /// The (session, seq) of its first frame: its [`message_id`].
    pub first: (u64, u64),
    /// The (session, seq) of its last frame: the agent's mark once stored.
    pub last: (u64, u64),
    /// Records it holds, at most [`RECORDS_PER_MESSAGE`].
    pub records: usize,
    /// Frames it holds.
    pub frames: usize,
}

/// Why a message on the stream's subjects is not one a gateway
/// publishes (the follower and history skip it, a lookup takes no mark
/// from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Foreign {
    /// Not whole frames from `offset` on.
    #[error("not whole sonde frames from byte {offset}")]
    Torn {
        /// Where decoding stopped.
        offset: usize,
    },
    /// No frame at all.
    #[error("no frame")]
    Empty,
    /// More records than a message may hold.
    #[error("{0} records, more than a message holds")]
    TooManyRecords(usize),
    /// A frame names another agent than the subject's: it would raise
    /// that agent's mark.
    #[error("a frame of another agent than its subject's")]
    OtherAgent,
}

/// The frames of a message on `subject`, if it is one a gateway
/// publishes there: whole frames of the subject's agent, at most
/// [`RECORDS_PER_MESSAGE`] records. One rule for the follower, history
/// and the marks read back.
pub fn message_frames(
    prefix: &str,
    region: &str,
    subject: &str,
    payload: &[u8],
) -> Result<Vec<wire::Frame>, Foreign> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < payload.len() {
        match payload.get(at..).map(wire::Frame::decode) {
            Some(Ok((frame, used))) => {
                frames.push(frame);
                at += used;
            }
            _ => return Err(Foreign::Torn { offset: at }),
        }
    }
    let agent = frames.first().ok_or(Foreign::Empty)?.header.agent.as_str();
    let records: usize = frames.iter().map(wire::Frame::record_count).sum();
    if records as u64 > RECORDS_PER_MESSAGE {
        return Err(Foreign::TooManyRecords(records));
    }
    if frames.iter().any(|f| f.header.agent != agent)
        || self::subject(prefix, region, agent) != subject
    {
        return Err(Foreign::OtherAgent);
    }
    Ok(frames)
}

/// A frame holds more records than a message may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTooLarge {
    /// Where the frame starts in the body.
    pub offset: usize,
    /// Its records.
    pub records: usize,
}

/// The messages that carry the frames `plan` marks new, in order: runs
/// of adjacent new frames, cut so that none holds more than
/// [`RECORDS_PER_MESSAGE`] records.
pub fn messages(frames: &[ValidFrame], plan: &Plan) -> Result<Vec<Message>, FrameTooLarge> {
    let mut out: Vec<Message> = Vec::new();
    let mut open = false;
    for (f, new) in frames.iter().zip(&plan.new) {
        if !*new {
            open = false;
            continue;
        }
        let records = f.frame.record_count();
        if records as u64 > RECORDS_PER_MESSAGE {
            return Err(FrameTooLarge {
                offset: f.range.start,
                records,
            });
        }
        let key = (f.frame.header.session, f.frame.header.seq);
        match out.last_mut() {
            Some(m)
                if open
                    && m.bytes.end == f.range.start
                    && (m.records + records) as u64 <= RECORDS_PER_MESSAGE =>
            {
                m.bytes.end = f.range.end;
                m.last = key;
                m.records += records;
                m.frames += 1;
            }
            _ => out.push(Message {
                bytes: f.range.clone(),
                first: key,
                last: key,
                records,
                frames: 1,
            }),
        }
        open = true;
    }
    Ok(out)
}

/// What the gateway needs of a stream, as read from one that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamShape {
    /// Its subject filters.
    pub subjects: Vec<String>,
    /// Replicas.
    pub replicas: usize,
    /// Its max_age (zero: unlimited).
    pub max_age: Duration,
    /// Its max_bytes (-1: unlimited).
    pub max_bytes: i64,
    /// Its duplicate window.
    pub duplicate_window: Duration,
    /// Whether it is file storage.
    pub file_storage: bool,
    /// Whether it limits messages (limits retention, not work queue or interest).
    pub limits_retention: bool,
    /// Its per-subject message limit (-1: unlimited).
    pub max_messages_per_subject: i64,
}

/// The shape `[jetstream]` asks for in `region`.
pub fn wanted(js: &JetStream, region: &str) -> StreamShape {
    StreamShape {
        subjects: vec![subjects(&js.subject_prefix, region)],
        replicas: js.replicas,
        max_age: js.max_age,
        max_bytes: js
            .max_bytes
            .map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX)),
        duplicate_window: js.duplicate_window,
        file_storage: true,
        limits_retention: true,
        max_messages_per_subject: -1,
    }
}

/// How an existing stream differs from the one wanted, one line each
/// (`key: has X, gateway.toml asks for Y`); empty when it is the same.
pub fn differences(have: &StreamShape, want: &StreamShape) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |what: &str, h: String, w: String| {
        if h != w {
            out.push(format!(
                "{what}: the stream has {h}, gateway.toml asks for {w}"
            ));
        }
    };
    differ(
        "subjects",
        format!("{:?}", have.subjects),
        format!("{:?}", want.subjects),
    );
    differ(
        "replicas",
        have.replicas.to_string(),
        want.replicas.to_string(),
    );
    differ(
        "max_age",
        format!("{:?}", have.max_age),
        format!("{:?}", want.max_age),
    );
    differ(
        "max_bytes",
        have.max_bytes.to_string(),
        want.max_bytes.to_string(),
    );
    differ(
        "duplicate_window",
        format!("{:?}", have.duplicate_window),
        format!("{:?}", want.duplicate_window),
    );
    let storage = |file: bool| if file { "file" } else { "memory" }.to_string();
    differ(
        "storage",
        storage(have.file_storage),
        storage(want.file_storage),
    );
    let retention = |limits: bool| {
        if limits {
            "limits"
        } else {
            "work queue or interest"
        }
        .to_string()
    };
    differ(
        "retention",
        retention(have.limits_retention),
        retention(want.limits_retention),
    );
    differ(
        "max_msgs_per_subject",
        have.max_messages_per_subject.to_string(),
        want.max_messages_per_subject.to_string(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::validate;
    use wire::{FrameBuilder, FrameHeader, Record};

    fn body(seqs: &[(u64, usize)]) -> Vec<u8> {
        let mut body = Vec::new();
        for &(seq, records) in seqs {
            let mut b = FrameBuilder::new(FrameHeader {
                agent: "eu-1".into(),
                session: 7,
                seq,
            });
            for i in 0..records {
                b.push("api", Record::up(i as u64 + 1, 1).with_sc(200));
            }
            b.finish().encode_into(&mut body).unwrap();
        }
        body
    }

    #[test]
    fn gseqs_come_from_the_stream_sequence() {
        assert_eq!(gseq(1, 0), 1000);
        assert_eq!(gseq(42, 999), 42_999);
        assert_eq!(stream_seq(42_999), 42);
        assert_eq!(stream_seq(gseq(9_000_000_000_000, 0)), 9_000_000_000_000);
        assert!(gseq(9_000_000_000_000, 999) < 1 << 53);
    }

    #[test]
    fn names_with_dots_stay_one_token() {
        assert_eq!(subject("sonde", "eu.west", "a.b-1"), "sonde.eu~west.a~b-1");
        assert_eq!(subjects("acme.sonde", "eu"), "acme.sonde.eu.*");
        assert_ne!(subject("s", "r", "a.b"), subject("s", "r", "a_b"));
        assert_eq!(message_id("eu-1", 7, 12), "eu-1:7:12");
    }

    #[test]
    fn adjacent_new_frames_share_a_message_up_to_the_record_bound() {
        let b = body(&[(1, 400), (2, 400), (3, 400), (4, 1), (5, 2)]);
        let frames = validate(&b, "eu-1").unwrap();
        let all = Plan {
            new: vec![true; 5],
            gap_frames: 0,
        };
        let m = messages(&frames, &all).unwrap();
        let shape: Vec<_> = m.iter().map(|m| (m.frames, m.records, m.last.1)).collect();
        assert_eq!(shape, [(2, 800, 2), (3, 403, 5)]);
        assert_eq!((m[0].first, m[1].first), ((7, 1), (7, 3)));
        assert_eq!(m[0].bytes.start, 0);
        assert_eq!(m[0].bytes.end, m[1].bytes.start);
        assert_eq!(m[1].bytes.end, b.len());
        // A duplicate in the middle splits the run.
        let some = Plan {
            new: vec![false, true, false, true, true],
            gap_frames: 0,
        };
        let m = messages(&frames, &some).unwrap();
        let shape: Vec<_> = m.iter().map(|m| (m.frames, m.records, m.last.1)).collect();
        assert_eq!(shape, [(1, 400, 2), (2, 3, 5)]);
        let none = Plan {
            new: vec![false; 5],
            gap_frames: 0,
        };
        assert!(messages(&frames, &none).unwrap().is_empty());
    }

    #[test]
    fn a_frame_past_the_record_bound_is_refused_with_its_offset() {
        let b = body(&[(1, 3), (2, 1001)]);
        let frames = validate(&b, "eu-1").unwrap();
        let all = Plan {
            new: vec![true; 2],
            gap_frames: 0,
        };
        let err = messages(&frames, &all).unwrap_err();
        assert_eq!(err.records, 1001);
        assert_eq!(err.offset, frames[1].range.start);
    }

    #[test]
    fn a_message_is_whole_frames_of_its_subjects_agent() {
        let mut body = Vec::new();
        for seq in [3, 4] {
            let mut b = FrameBuilder::new(FrameHeader {
                agent: "a.1".into(),
                session: 9,
                seq,
            });
            b.push("c", Record::up(1, 1));
            b.finish().encode_into(&mut body).unwrap();
        }
        let on = |subject: &str, payload: &[u8]| message_frames("sonde", "eu", subject, payload);
        let frames = on("sonde.eu.a~1", &body).unwrap();
        let last = frames.last().map(|f| (f.header.session, f.header.seq));
        assert_eq!(last, Some((9, 4)));
        let torn = on("sonde.eu.a~1", &body[..body.len() - 1]);
        assert!(
            matches!(torn, Err(Foreign::Torn { .. })),
            "a torn payload is not read"
        );
        assert_eq!(on("sonde.eu.a~1", &[]).unwrap_err(), Foreign::Empty);
        // Frames naming another agent than the subject's raise nobody's mark.
        assert_eq!(on("sonde.eu.b", &body).unwrap_err(), Foreign::OtherAgent);
        let big = super::tests::body(&[(1, 1001)]);
        let big = on("sonde.eu.eu-1", &big).unwrap_err();
        assert_eq!(big, Foreign::TooManyRecords(1001));
    }

    #[test]
    fn a_stream_that_differs_is_described_key_by_key() {
        let want = StreamShape {
            subjects: vec!["sonde.eu.*".into()],
            replicas: 3,
            max_age: Duration::from_secs(3600),
            max_bytes: -1,
            duplicate_window: Duration::from_secs(120),
            file_storage: true,
            limits_retention: true,
            max_messages_per_subject: -1,
        };
        assert!(differences(&want, &want).is_empty());
        let have = StreamShape {
            replicas: 1,
            max_age: Duration::from_secs(60),
            ..want.clone()
        };
        let d = differences(&have, &want);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("replicas: the stream has 1, gateway.toml asks for 3"));
        assert!(d[1].starts_with("max_age: the stream has 60s"));
    }
}
