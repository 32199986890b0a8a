//! The few MessagePack pieces the wire format uses, by hand: a writer that
//! always picks the smallest encoding (infallible, no allocation beyond the
//! output `Vec`), and a cursor that reads them and says at which byte the
//! input went wrong.
//!
//! It is not a general MessagePack library: it reads integers, nil, strings
//! and arrays, and skips (without recursion) any other value it meets where
//! the spec allows unknown trailing elements.

use crate::error::DecodeError;

/// Appends `v` as a MessagePack unsigned integer in its smallest encoding.
#[inline]
pub(crate) fn write_uint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
    } else if v <= 0xff {
        out.extend_from_slice(&[0xcc, v as u8]);
    } else if v <= 0xffff {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= 0xffff_ffff {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends `v` in its smallest encoding: the unsigned family when `v >= 0`
/// (as MessagePack's own libraries do), the signed family otherwise.
#[inline]
pub(crate) fn write_sint(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        write_uint(out, v as u64);
    } else if v >= -32 {
        out.push(v as u8);
    } else if v >= i64::from(i8::MIN) {
        out.extend_from_slice(&[0xd0, v as u8]);
    } else if v >= i64::from(i16::MIN) {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends nil.
#[inline]
pub(crate) fn write_nil(out: &mut Vec<u8>) {
    out.push(0xc0);
}

/// Appends an optional unsigned integer: the value, or nil.
#[inline]
pub(crate) fn write_opt_uint(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(v) => write_uint(out, v),
        None => write_nil(out),
    }
}

/// Appends an array header for `len` elements. Lengths past `u32::MAX`
/// cannot be encoded; callers keep far below that (frames are capped).
#[inline]
pub(crate) fn write_array_len(out: &mut Vec<u8>, len: usize) {
    if len < 16 {
        out.push(0x90 | len as u8);
    } else if len <= 0xffff {
        out.push(0xdc);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
}

/// Appends a UTF-8 string (str family, smallest header).
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

/// The MessagePack family a marker byte starts, for error messages.
pub(crate) fn marker_name(m: u8) -> &'static str {
    match m {
        0x00..=0x7f | 0xcc..=0xcf => "an unsigned integer",
        0xe0..=0xff | 0xd0..=0xd3 => "a signed integer",
        0x80..=0x8f | 0xde | 0xdf => "a map",
        0x90..=0x9f | 0xdc | 0xdd => "an array",
        0xa0..=0xbf | 0xd9..=0xdb => "a string",
        0xc0 => "nil",
        0xc1 => "the never-used marker 0xc1",
        0xc2 | 0xc3 => "a boolean",
        0xc4..=0xc6 => "binary data",
        0xc7..=0xc9 | 0xd4..=0xd8 => "an extension value",
        0xca | 0xcb => "a float",
    }
}

/// A read position in a byte slice. Offsets in errors are relative to
/// `base` plus the position, so a cursor over a frame body can report
/// offsets from the start of the frame.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`, whose byte 0 is reported as `base`.
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Cursor { buf, pos: 0, base }
    }

    /// The position, relative to the start of the slice.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The offset to report for the current position.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len());
        match end.and_then(|end| self.buf.get(self.pos..end)) {
            Some(bytes) => {
                self.pos += n;
                Ok(bytes)
            }
            None => Err(DecodeError::Incomplete {
                offset: self.offset(),
                what,
                needed: n - self.remaining(),
            }),
        }
    }

    #[inline]
    fn byte(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(DecodeError::Incomplete {
                offset: self.offset(),
                what,
                needed: 1,
            }),
        }
    }

    #[inline]
    fn be<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Reads any MessagePack integer, widened so both families fit.
    #[inline]
    fn int(&mut self, what: &'static str) -> Result<i128, DecodeError> {
        let at = self.offset();
        let m = self.byte(what)?;
        Ok(match m {
            0x00..=0x7f => i128::from(m),
            0xe0..=0xff => i128::from(m as i8),
            0xcc => i128::from(self.byte(what)?),
            0xcd => i128::from(u16::from_be_bytes(self.be(what)?)),
            0xce => i128::from(u32::from_be_bytes(self.be(what)?)),
            0xcf => i128::from(u64::from_be_bytes(self.be(what)?)),
            0xd0 => i128::from(self.byte(what)? as i8),
            0xd1 => i128::from(i16::from_be_bytes(self.be(what)?)),
            0xd2 => i128::from(i32::from_be_bytes(self.be(what)?)),
            0xd3 => i128::from(i64::from_be_bytes(self.be(what)?)),
            _ => {
                return Err(DecodeError::UnexpectedType {
                    offset: at,
                    what,
                    expected: "an integer",
                    found: marker_name(m),
                });
            }
        })
    }

    /// Reads a non-negative integer of at most `max`, in any integer encoding.
    #[inline]
    pub(crate) fn uint(&mut self, what: &'static str, max: u64) -> Result<u64, DecodeError> {
        let at = self.offset();
        let v = self.int(what)?;
        match u64::try_from(v) {
            Ok(v) if v <= max => Ok(v),
            _ => Err(DecodeError::OutOfRange {
                offset: at,
                what,
                value: v,
                max,
            }),
        }
    }

    /// Reads nil as `None`, or a non-negative integer of at most `max`.
    #[inline]
    pub(crate) fn opt_uint(
        &mut self,
        what: &'static str,
        max: u64,
    ) -> Result<Option<u64>, DecodeError> {
        if self.buf.get(self.pos) == Some(&0xc0) {
            self.pos += 1;
            return Ok(None);
        }
        self.uint(what, max).map(Some)
    }

    /// Reads a signed integer that fits an `i64`.
    #[inline]
    pub(crate) fn sint(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let at = self.offset();
        let v = self.int(what)?;
        i64::try_from(v).map_err(|_| DecodeError::OutOfRange {
            offset: at,
            what,
            value: v,
            max: i64::MAX as u64,
        })
    }

    /// Reads an array header. The length is checked against the bytes left
    /// (each element takes at least one), so a length that claims more than
    /// the input holds is an error, never an allocation.
    #[inline]
    pub(crate) fn array_len(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let at = self.offset();
        let m = self.byte(what)?;
        let len = match m {
            0x90..=0x9f => usize::from(m & 0x0f),
            0xdc => usize::from(u16::from_be_bytes(self.be(what)?)),
            0xdd => u32::from_be_bytes(self.be(what)?) as usize,
            _ => {
                return Err(DecodeError::UnexpectedType {
                    offset: at,
                    what,
                    expected: "an array",
                    found: marker_name(m),
                });
            }
        };
        self.check_claim(at, what, len)?;
        Ok(len)
    }

    fn check_claim(&self, at: usize, what: &'static str, len: usize) -> Result<(), DecodeError> {
        if len > self.remaining() {
            return Err(DecodeError::LengthPastEnd {
                offset: at,
                what,
                claimed: len,
                remaining: self.remaining(),
            });
        }
        Ok(())
    }

    /// Reads a UTF-8 string, borrowed from the input.
    pub(crate) fn str(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let at = self.offset();
        let m = self.byte(what)?;
        let len = match m {
            0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => usize::from(self.byte(what)?),
            0xda => usize::from(u16::from_be_bytes(self.be(what)?)),
            0xdb => u32::from_be_bytes(self.be(what)?) as usize,
            _ => {
                return Err(DecodeError::UnexpectedType {
                    offset: at,
                    what,
                    expected: "a string",
                    found: marker_name(m),
                });
            }
        };
        self.check_claim(at, what, len)?;
        let start = self.offset();
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8 {
            offset: start + e.valid_up_to(),
            what,
        })
    }

    /// Skips `count` values of any type, without recursion: nested arrays
    /// and maps add to a counter of values still to skip, and that counter
    /// can never exceed the bytes left.
    pub(crate) fn skip_values(&mut self, count: usize) -> Result<(), DecodeError> {
        const WHAT: &str = "an unknown trailing element";
        let mut pending = count;
        while pending > 0 {
            pending -= 1;
            let at = self.offset();
            let m = self.byte(WHAT)?;
            let (skip, more) = match m {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
                0x80..=0x8f => (0, 2 * usize::from(m & 0x0f)),
                0x90..=0x9f => (0, usize::from(m & 0x0f)),
                0xa0..=0xbf => (usize::from(m & 0x1f), 0),
                0xc1 => {
                    return Err(DecodeError::UnexpectedType {
                        offset: at,
                        what: WHAT,
                        expected: "a MessagePack value",
                        found: marker_name(m),
                    });
                }
                0xc4 | 0xd9 => (usize::from(self.byte(WHAT)?), 0),
                0xc5 | 0xda => (usize::from(u16::from_be_bytes(self.be(WHAT)?)), 0),
                0xc6 | 0xdb => (u32::from_be_bytes(self.be(WHAT)?) as usize, 0),
                0xc7 => (usize::from(self.byte(WHAT)?) + 1, 0),
                0xc8 => (usize::from(u16::from_be_bytes(self.be(WHAT)?)) + 1, 0),
                0xc9 => (
                    (u32::from_be_bytes(self.be(WHAT)?) as usize).saturating_add(1),
                    0,
                ),
                0xca | 0xce | 0xd2 => (4, 0),
                0xcb | 0xcf | 0xd3 => (8, 0),
                0xcc | 0xd0 => (1, 0),
                0xcd | 0xd1 => (2, 0),
                0xd4 => (2, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                0xdc => (0, usize::from(u16::from_be_bytes(self.be(WHAT)?))),
                0xdd => (0, u32::from_be_bytes(self.be(WHAT)?) as usize),
                0xde => (0, 2 * usize::from(u16::from_be_bytes(self.be(WHAT)?))),
                0xdf => (
                    0,
                    (u32::from_be_bytes(self.be(WHAT)?) as usize).saturating_mul(2),
                ),
            };
            self.check_claim(at, WHAT, skip)?;
            self.take(skip, WHAT)?;
            pending = pending.saturating_add(more);
            self.check_claim(at, WHAT, pending)?;
        }
        Ok(())
    }
}
