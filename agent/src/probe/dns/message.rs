//! DNS messages with hickory-proto: the query of one family for one name
//! (with an EDNS OPT record advertising [`EDNS_PAYLOAD_BYTES`]), and what a
//! reply says about it. A datagram counts only if it is a response with the
//! query's id and question (or, for an error rcode, no question at all);
//! anything else is not a reply at all (it may be spoofed or stale) and is
//! ignored. A truncated datagram (TC=1, whole or
//! cut short) says only that the query must go over TCP. Pure: bytes in,
//! bytes out.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::outcome::Family;
use super::race::Reply;

/// The UDP payload size the query advertises (EDNS, RFC 6891): the DNS
/// flag day 2020 value, which avoids IP fragmentation on common paths.
pub(crate) const EDNS_PAYLOAD_BYTES: u16 = 1232;

/// The DNS header's length, and the flag bits of its third byte.
const HEADER_BYTES: usize = 12;
const QR_RESPONSE: u8 = 0x80;
const TC_TRUNCATED: u8 = 0x02;

/// What a datagram is, once known to be a reply to the question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// A whole reply.
    Reply(Reply),
    /// Truncated (TC=1): ask again over TCP; nothing in it is used.
    Truncated,
}

fn record_type(family: Family) -> RecordType {
    match family {
        Family::A => RecordType::A,
        Family::Aaaa => RecordType::AAAA,
    }
}

/// One family's question for one name, encoded once.
#[derive(Debug, Clone)]
pub(crate) struct Question {
    pub(crate) family: Family,
    pub(crate) name: Name,
    pub(crate) id: u16,
    /// The query as sent over UDP.
    pub(crate) bytes: Vec<u8>,
}

impl Question {
    /// The query (recursion desired, EDNS with [`EDNS_PAYLOAD_BYTES`]) for
    /// `name` (absolute).
    pub(crate) fn new(family: Family, name: &str, id: u16) -> Result<Question, String> {
        let name = Name::from_ascii(name).map_err(|e| format!("bad name {name:?}: {e}"))?;
        let mut message = Message::new(id, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(name.clone(), record_type(family)));
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD_BYTES);
        message.set_edns(edns);
        let bytes = message
            .to_vec()
            .map_err(|e| format!("encoding the query for {name}: {e}"))?;
        Ok(Question {
            family,
            name,
            id,
            bytes,
        })
    }

    /// What `datagram` says, if it is the reply to this question: the
    /// reply (its addresses appended to `addrs`), or that it was truncated.
    /// `None` for anything that is not our reply. The id and flags are
    /// checked in the header's bytes before any parsing, so a flood of
    /// strangers costs little; a truncated reply is not parsed at all (it
    /// may be cut mid-record).
    pub(crate) fn read_datagram(&self, datagram: &[u8], addrs: &mut Vec<IpAddr>) -> Option<Read> {
        let header = datagram.get(..HEADER_BYTES)?;
        if u16::from_be_bytes([header[0], header[1]]) != self.id || header[2] & QR_RESPONSE == 0 {
            return None;
        }
        if header[2] & TC_TRUNCATED != 0 {
            return Some(Read::Truncated);
        }
        self.read_reply(datagram, addrs).map(Read::Reply)
    }

    /// What a reply over TCP says: anything but our reply is an error of
    /// the server (the connection was to it alone).
    pub(crate) fn read_stream(&self, message: &[u8], addrs: &mut Vec<IpAddr>) -> Reply {
        self.read_reply(message, addrs).unwrap_or(Reply::Error)
    }

    fn read_reply(&self, bytes: &[u8], addrs: &mut Vec<IpAddr>) -> Option<Reply> {
        let message = Message::from_vec(bytes).ok()?;
        let header = &message.metadata;
        if header.id != self.id || header.message_type != MessageType::Response {
            return None;
        }
        let asked = record_type(self.family);
        let same_question = match message.queries.as_slice() {
            [q] => q.query_type() == asked && *q.name() == self.name,
            // Servers send REFUSED, SERVFAIL, FORMERR or NOTIMP without the
            // question (QDCOUNT=0): with our id, that is our reply.
            [] => matches!(
                header.response_code,
                ResponseCode::Refused
                    | ResponseCode::ServFail
                    | ResponseCode::FormErr
                    | ResponseCode::NotImp
            ),
            _ => false,
        };
        if !same_question {
            return None;
        }
        let reply = match header.response_code {
            ResponseCode::NoError => {
                let before = addrs.len();
                for record in &message.answers {
                    match (&record.data, self.family) {
                        (RData::A(a), Family::A) => addrs.push(IpAddr::V4(a.0)),
                        (RData::AAAA(a), Family::Aaaa) => addrs.push(IpAddr::V6(a.0)),
                        _ => {}
                    }
                }
                let found = addrs.len() - before;
                Reply::Addresses(u16::try_from(found).unwrap_or(u16::MAX))
            }
            ResponseCode::NXDomain => Reply::NxDomain,
            ResponseCode::Refused => Reply::Refused,
            ResponseCode::ServFail => Reply::ServFail,
            _ => Reply::Error,
        };
        Some(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, AAAA};

    fn reply_to(q: &Question, code: ResponseCode, answers: &[IpAddr]) -> Message {
        let mut m = Message::new(q.id, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(q.name.clone(), record_type(q.family)));
        m.metadata.response_code = code;
        for ip in answers {
            let data = match ip {
                IpAddr::V4(v4) => RData::A(A(*v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
            };
            m.add_answer(Record::from_rdata(q.name.clone(), 0, data));
        }
        m
    }

    fn bytes(m: &Message) -> Vec<u8> {
        m.to_vec().unwrap()
    }

    #[test]
    fn answers_rcodes_and_strangers() {
        let q = Question::new(Family::A, "target.test.", 4711).unwrap();
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        let mut addrs = Vec::new();
        let ok = bytes(&reply_to(&q, ResponseCode::NoError, &[v4, v6]));
        assert_eq!(
            q.read_datagram(&ok, &mut addrs),
            Some(Read::Reply(Reply::Addresses(1)))
        );
        assert_eq!(addrs, [v4], "only the asked family's records");
        for (code, reply) in [
            (ResponseCode::NXDomain, Reply::NxDomain),
            (ResponseCode::Refused, Reply::Refused),
            (ResponseCode::ServFail, Reply::ServFail),
            (ResponseCode::NotImp, Reply::Error),
        ] {
            let b = bytes(&reply_to(&q, code, &[]));
            assert_eq!(q.read_datagram(&b, &mut addrs), Some(Read::Reply(reply)));
        }
        // Another id, another question, a query, garbage: not our reply.
        let mut other = reply_to(&q, ResponseCode::NoError, &[v4]);
        other.metadata.id = 4712;
        assert_eq!(q.read_datagram(&bytes(&other), &mut addrs), None);
        let aaaa = Question::new(Family::Aaaa, "target.test.", 4711).unwrap();
        assert_eq!(aaaa.read_datagram(&ok, &mut addrs), None);
        assert_eq!(q.read_datagram(&q.bytes, &mut addrs), None);
        assert_eq!(q.read_datagram(b"\x12", &mut addrs), None);
        assert_eq!(q.read_stream(b"\x12", &mut addrs), Reply::Error);
    }

    #[test]
    fn error_replies_without_the_question_count() {
        let q = Question::new(Family::Aaaa, "target.test.", 321).unwrap();
        let mut addrs = Vec::new();
        let bare = |code| {
            let mut m = Message::new(q.id, MessageType::Response, OpCode::Query);
            m.metadata.response_code = code;
            bytes(&m)
        };
        for (code, reply) in [
            (ResponseCode::Refused, Reply::Refused),
            (ResponseCode::ServFail, Reply::ServFail),
            (ResponseCode::FormErr, Reply::Error),
            (ResponseCode::NotImp, Reply::Error),
        ] {
            assert_eq!(
                q.read_datagram(&bare(code), &mut addrs),
                Some(Read::Reply(reply)),
                "{code:?}"
            );
        }
        // An answer or NXDOMAIN must name the question it answers.
        assert_eq!(
            q.read_datagram(&bare(ResponseCode::NoError), &mut addrs),
            None
        );
        assert_eq!(
            q.read_datagram(&bare(ResponseCode::NXDomain), &mut addrs),
            None
        );
    }

    #[test]
    fn the_query_advertises_edns() {
        let q = Question::new(Family::Aaaa, "target.test.", 7).unwrap();
        let sent = Message::from_vec(&q.bytes).unwrap();
        assert_eq!(
            sent.edns.as_ref().map(Edns::max_payload),
            Some(EDNS_PAYLOAD_BYTES)
        );
    }

    #[test]
    fn truncated_replies_ask_for_tcp_whole_or_cut_short() {
        let q = Question::new(Family::A, "target.test.", 99).unwrap();
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let mut addrs = Vec::new();
        // TC=1 and no records: not NODATA.
        let mut empty = reply_to(&q, ResponseCode::NoError, &[]);
        empty.metadata.truncation = true;
        assert_eq!(
            q.read_datagram(&bytes(&empty), &mut addrs),
            Some(Read::Truncated)
        );
        // TC=1, cut in the middle of a record: not ignored.
        let mut full = reply_to(&q, ResponseCode::NoError, &[v4]);
        full.metadata.truncation = true;
        let mut cut = bytes(&full);
        cut.truncate(cut.len() - 2);
        assert_eq!(q.read_datagram(&cut, &mut addrs), Some(Read::Truncated));
        assert!(addrs.is_empty(), "nothing used from a truncated reply");
        // The same answer whole over TCP.
        let whole = bytes(&reply_to(&q, ResponseCode::NoError, &[v4]));
        assert_eq!(q.read_stream(&whole, &mut addrs), Reply::Addresses(1));
        // Another id's truncated reply is still a stranger.
        let mut other = empty.clone();
        other.metadata.id = 100;
        assert_eq!(q.read_datagram(&bytes(&other), &mut addrs), None);
    }
}
