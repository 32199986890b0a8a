//! Decoders reject bad input with the right error at the right byte, accept
//! what the spec says they must (any integer encoding, extra trailing
//! elements, a nil ninth element, unknown error classes), and never
//! allocate for a length the input cannot back.

use wire::{DecodeError, ErrorClass, Frame, FrameError, MAX_BODY_LEN, Record};

/// `[t=1, rt=2, sc=nil, st=0, dn=nil, cn=nil, tl=nil, ft=nil]`
const MINIMAL: [u8; 9] = [0x98, 0x01, 0x02, 0xc0, 0x00, 0xc0, 0xc0, 0xc0, 0xc0];

fn minimal() -> Record {
    Record::up(1, 2)
}

#[test]
fn any_integer_encoding_is_accepted() {
    // t as uint64, rt as int8: both non-canonical, both valid.
    let bytes = [
        0x98, 0xcf, 0, 0, 0, 0, 0, 0, 0, 1, 0xd0, 0x02, 0xc0, 0xcd, 0, 0, 0xc0, 0xc0, 0xc0, 0xc0,
    ];
    assert_eq!(Record::decode(&bytes), Ok(minimal()));
}

#[test]
fn extra_trailing_elements_and_a_nil_ninth_are_accepted() {
    let mut bytes = vec![0x9c]; // 12 elements
    bytes.extend_from_slice(&MINIMAL[1..]);
    bytes.push(0xc0); // ninth: nil
    bytes.extend_from_slice(&[0x92, 0xa1, b'x', 0x81, 0x01, 0xcb]); // [ "x", {1: 1.0} ]
    bytes.extend_from_slice(&1.0f64.to_be_bytes());
    bytes.extend_from_slice(&[0xc3, 0xc4, 0x02, 0xff, 0xff]); // true, bin
    assert_eq!(Record::decode(&bytes), Ok(minimal()));
}

#[test]
fn unknown_error_class_decodes_as_none() {
    let mut bytes = vec![0x99];
    bytes.extend_from_slice(&MINIMAL[1..]);
    bytes.push(0x7f);
    assert_eq!(Record::decode(&bytes), Ok(minimal()));
    let last = bytes.len() - 1;
    bytes[last] = 7;
    assert_eq!(
        Record::decode(&bytes).map(|r| r.error),
        Ok(Some(ErrorClass::ConnectTimeout))
    );
}

#[test]
fn errors_say_what_and_where() {
    let mut short = MINIMAL;
    short[0] = 0x97;
    assert_eq!(
        Record::decode(&short[..8]),
        Err(DecodeError::TooShort {
            offset: 0,
            what: "a record",
            len: 7,
            min: 8
        })
    );
    let mut bad_status = MINIMAL;
    bad_status[4] = 3;
    assert_eq!(
        Record::decode(&bad_status),
        Err(DecodeError::UnknownStatus { offset: 4, code: 3 })
    );
    let mut negative = MINIMAL;
    negative[2] = 0xff; // rt = -1
    let err = Record::decode(&negative).expect_err("negative rt");
    assert!(matches!(
        err,
        DecodeError::OutOfRange {
            offset: 2,
            what: "rt",
            value: -1,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "byte 2: rt is -1, outside 0..=18446744073709551615"
    );
    let mut sc = MINIMAL.to_vec();
    sc.splice(3..4, [0xce, 0, 1, 0, 0]); // sc = 65536
    assert!(matches!(
        Record::decode(&sc),
        Err(DecodeError::OutOfRange {
            offset: 3,
            what: "sc",
            ..
        })
    ));
    let mut string = MINIMAL;
    string[5] = 0xa0; // dn = ""
    assert!(matches!(
        Record::decode(&string),
        Err(DecodeError::UnexpectedType {
            offset: 5,
            what: "dn",
            found: "a string",
            ..
        })
    ));
    assert_eq!(
        Record::decode(&MINIMAL[..6]),
        Err(DecodeError::LengthPastEnd {
            offset: 0,
            what: "a record",
            claimed: 8,
            remaining: 5
        })
    );
    let cut = [0x98, 0xcf, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        Record::decode(&cut),
        Err(DecodeError::Incomplete {
            offset: 10,
            what: "rt",
            needed: 1
        })
    );
    let mut trailing = MINIMAL.to_vec();
    trailing.push(0);
    assert_eq!(
        Record::decode(&trailing),
        Err(DecodeError::TrailingBytes { offset: 9, len: 1 })
    );
    assert_eq!(Record::decode_prefix(&trailing), Ok((minimal(), 9)));
}

#[test]
fn a_length_claiming_gigabytes_is_an_error_not_an_allocation() {
    // An array32 claiming 4 billion elements.
    let bytes = [0xdd, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert!(matches!(
        Record::decode(&bytes),
        Err(DecodeError::LengthPastEnd {
            offset: 0,
            claimed: 4_294_967_295,
            remaining: 1,
            ..
        })
    ));
    // A trailing element that is a str32 claiming 4 GiB.
    let mut skip = vec![0x9a];
    skip.extend_from_slice(&MINIMAL[1..]);
    skip.extend_from_slice(&[0xc0, 0xdb, 0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(
        Record::decode(&skip),
        Err(DecodeError::LengthPastEnd { offset: 10, .. })
    ));
    // Deep nesting in a trailing element: skipped iteratively, no recursion.
    let mut deep = vec![0x99];
    deep.extend_from_slice(&MINIMAL[1..]);
    deep.extend(std::iter::repeat_n(0x91, 100_000));
    deep.push(0x00);
    deep[0] = 0x9a;
    deep.insert(9, 0xc0);
    assert_eq!(Record::decode(&deep), Ok(minimal()));
    // A frame whose length field claims 4 GiB.
    let frame = [0xc1, 0x53, 0x01, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(
        Frame::decode(&frame).map(|_| ()),
        Err(FrameError::TooLarge {
            len: u32::MAX,
            max: MAX_BODY_LEN
        })
    );
}

#[test]
fn frame_errors() {
    assert_eq!(Frame::decode(b"xx").map(|_| ()), Err(FrameError::BadMarker));
    assert_eq!(
        Frame::decode(&[0xc1]).map(|_| ()),
        Err(FrameError::Incomplete { have: 1, need: 11 })
    );
    // An empty body with a good CRC: the envelope is fine, the body is not.
    let mut f = vec![0xc1, 0x53, 0x01, 0, 0, 0, 0];
    let crc = crc32fast::hash(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        Frame::decode(&f),
        Err(FrameError::Body(DecodeError::Incomplete { offset: 7, .. }))
    ));
    // Version 2: checked and skipped as a unit, not called corruption.
    f[2] = 2;
    let crc = crc32fast::hash(&f[..7]);
    f.truncate(7);
    f.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(
        Frame::decode(&f).map(|_| ()),
        Err(FrameError::UnsupportedVersion { version: 2 })
    );
}
