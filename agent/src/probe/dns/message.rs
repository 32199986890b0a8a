//! DNS messages with hickory-proto: the query of one family for one name,
//! and what a reply says about it. A reply counts only if it is a response
//! with the query's id and question; anything else is not a reply at all
//! (it may be spoofed or stale) and is ignored. Pure: bytes in, bytes out.

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::outcome::Family;
use super::race::Reply;

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
    /// The query (recursion desired, no EDNS) for `name` (absolute).
    pub(crate) fn new(family: Family, name: &str, id: u16) -> Result<Question, String> {
        let name = Name::from_ascii(name).map_err(|e| format!("bad name {name:?}: {e}"))?;
        let mut message = Message::new(id, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(name.clone(), record_type(family)));
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
    /// reply and the addresses it holds (appended to `addrs`), and whether
    /// it was truncated. `None` for anything that is not our reply.
    pub(crate) fn read_reply(
        &self,
        datagram: &[u8],
        addrs: &mut Vec<IpAddr>,
    ) -> Option<(Reply, bool)> {
        let message = Message::from_vec(datagram).ok()?;
        let header = &message.metadata;
        if header.id != self.id || header.message_type != MessageType::Response {
            return None;
        }
        let asked = record_type(self.family);
        let same_question = matches!(
            message.queries.as_slice(),
            [q] if q.query_type() == asked && *q.name() == self.name
        );
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
        Some((reply, header.truncation))
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
            q.read_reply(&ok, &mut addrs),
            Some((Reply::Addresses(1), false))
        );
        assert_eq!(addrs, [v4], "only the asked family's records");
        for (code, reply) in [
            (ResponseCode::NXDomain, Reply::NxDomain),
            (ResponseCode::Refused, Reply::Refused),
            (ResponseCode::ServFail, Reply::ServFail),
            (ResponseCode::NotImp, Reply::Error),
        ] {
            let b = bytes(&reply_to(&q, code, &[]));
            assert_eq!(q.read_reply(&b, &mut addrs).map(|r| r.0), Some(reply));
        }
        // Another id, another question, a query, garbage: not our reply.
        let mut other = reply_to(&q, ResponseCode::NoError, &[v4]);
        other.metadata.id = 4712;
        assert_eq!(q.read_reply(&bytes(&other), &mut addrs), None);
        let aaaa = Question::new(Family::Aaaa, "target.test.", 4711).unwrap();
        assert_eq!(aaaa.read_reply(&ok, &mut addrs), None);
        assert_eq!(q.read_reply(&q.bytes, &mut addrs), None);
        assert_eq!(q.read_reply(b"\x12", &mut addrs), None);
    }
}
