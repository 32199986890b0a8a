//! serde for [`Record`]: the same positional array as the hand-written
//! codec, so `rmp_serde::to_vec(&record)` gives exactly `record.encode()`
//! and `rmp_serde::from_slice` reads it back (tests prove both).
//!
//! The crate's own decoder stays the reference reader: serde errors cannot
//! say at which byte the input went wrong, and that decoder can.

use std::fmt;

use serde::de::{self, IgnoredAny, SeqAccess, Unexpected, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::record::{ErrorClass, Record, Status};

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = if self.error.is_some() { 9 } else { 8 };
        let mut tuple = serializer.serialize_tuple(len)?;
        tuple.serialize_element(&self.t_ms)?;
        tuple.serialize_element(&self.rt_ms)?;
        tuple.serialize_element(&self.sc)?;
        tuple.serialize_element(&self.st.code())?;
        tuple.serialize_element(&self.dn_ms)?;
        tuple.serialize_element(&self.cn_ms)?;
        tuple.serialize_element(&self.tl_ms)?;
        tuple.serialize_element(&self.ft_ms)?;
        if let Some(class) = self.error {
            tuple.serialize_element(&class.code())?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(RecordVisitor)
    }
}

struct RecordVisitor;

fn required<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(
    seq: &mut A,
    index: usize,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::invalid_length(index, &RecordVisitor))
}

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = Record;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sonde record array [t, rt, sc, st, dn, cn, tl, ft, error?]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Record, A::Error> {
        let t_ms = required(&mut seq, 0)?;
        let rt_ms = required(&mut seq, 1)?;
        let sc = required(&mut seq, 2)?;
        let code: u64 = required(&mut seq, 3)?;
        let st = u8::try_from(code)
            .ok()
            .and_then(Status::from_code)
            .ok_or_else(|| {
                de::Error::invalid_value(
                    Unexpected::Unsigned(code),
                    &"0 (up), 1 (down) or 2 (unknown)",
                )
            })?;
        let dn_ms = required(&mut seq, 4)?;
        let cn_ms = required(&mut seq, 5)?;
        let tl_ms = required(&mut seq, 6)?;
        let ft_ms = required(&mut seq, 7)?;
        let error = seq
            .next_element::<Option<u64>>()?
            .flatten()
            .and_then(|code| u8::try_from(code).ok())
            .and_then(ErrorClass::from_code);
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Record {
            t_ms,
            rt_ms,
            sc,
            st,
            dn_ms,
            cn_ms,
            tl_ms,
            ft_ms,
            error,
        })
    }
}
