//! Fuzzes the standalone record decoder: it must never panic, and what it
//! accepts must survive an encode/decode round trip unchanged. rmp-serde's
//! path through the serde impls must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wire::Record;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = Record::decode(data) {
        assert_eq!(Record::decode(&record.encode()), Ok(record));
        let via_serde: Result<Record, _> = rmp_serde::from_slice(&record.encode());
        assert_eq!(via_serde.ok(), Some(record));
    }
    let _ = Record::decode_prefix(data);
    let _ = rmp_serde::from_slice::<Record>(data);
});
