//! The one JSON shape of a record (WIRE.md, "JSON"): an object with the
//! fields in wire order, `t`, `rt`, `sc`, `st`, `dn`, `cn`, `tl`, `ft`,
//! `error`, times in integer milliseconds, `st` and `error` by name, null
//! for an absent field. Every JSON that shows a record goes through
//! [`JsonRecord`]; what surrounds it (agent, check, gseq) is the caller's.
//! This module only describes the shape to serde; it writes no bytes itself.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::record::{ErrorClass, Record};

/// A record as its JSON object. Serialize it on its own, nested under a
/// key, or `#[serde(flatten)]` beside envelope fields.
#[derive(Debug, Clone, Copy)]
pub struct JsonRecord<'a>(pub &'a Record);

/// The keys of the record's JSON object, in the order they are written.
pub const KEYS: [&str; 9] = ["t", "rt", "sc", "st", "dn", "cn", "tl", "ft", "error"];

impl Serialize for JsonRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut m = serializer.serialize_map(Some(KEYS.len()))?;
        m.serialize_entry("t", &r.t_ms)?;
        m.serialize_entry("rt", &r.rt_ms)?;
        m.serialize_entry("sc", &r.sc)?;
        m.serialize_entry("st", r.st.name())?;
        m.serialize_entry("dn", &r.dn_ms)?;
        m.serialize_entry("cn", &r.cn_ms)?;
        m.serialize_entry("tl", &r.tl_ms)?;
        m.serialize_entry("ft", &r.ft_ms)?;
        m.serialize_entry("error", &r.error.map(ErrorClass::name))?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ErrorClass;

    #[test]
    fn fields_in_wire_order_with_names_and_nulls() {
        let r = Record::down(1_767_225_615_000, 5000, ErrorClass::ConnectTimeout)
            .with_dn(11)
            .with_cn(4989);
        assert_eq!(
            serde_json::to_string(&JsonRecord(&r)).unwrap(),
            r#"{"t":1767225615000,"rt":5000,"sc":null,"st":"down","dn":11,"cn":4989,"tl":null,"ft":null,"error":"connect_timeout"}"#
        );
    }

    #[test]
    fn flattens_beside_an_envelope() {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            check: &'a str,
            #[serde(flatten)]
            record: JsonRecord<'a>,
        }
        let r = Record::up(7, 5).with_sc(204).with_cn(1).with_ft(3);
        let line = Line {
            check: "home",
            record: JsonRecord(&r),
        };
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"check":"home","t":7,"rt":5,"sc":204,"st":"up","dn":null,"cn":1,"tl":null,"ft":3,"error":null}"#
        );
    }
}
