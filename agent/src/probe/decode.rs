//! Content decoding for a check's `compression`: a gzip or deflate body is
//! decoded as it streams, in pieces of at most flate2's 32 KiB buffer, so
//! the body assertions and the size cap see decoded bytes and memory stays
//! bounded whatever the compression ratio. Pure: bytes in, bytes out.
//!
//! As blackbox_exporter does, the body is taken to be in the coding asked
//! for whatever its Content-Encoding says: a body that is not (an empty one
//! included) fails. `deflate` is raw DEFLATE only, as Go's `flate.NewReader`
//! (which blackbox_exporter uses) reads it: a zlib-wrapped body fails.
//! A gzip body whose header is bad fails before its first decoded byte,
//! and the decoder says so ([`Decoder::in_gzip_header`]): blackbox_exporter
//! checks that header before its regexes run.

use std::io::{self, Write};

use flate2::write::{DeflateDecoder, MultiGzDecoder};

use super::Compression;

/// A body that is not in the coding the check asked for.
#[derive(Debug, thiserror::Error)]
#[error("body is not valid {coding}: {source}")]
pub(crate) struct DecodeError {
    /// `gzip` or `deflate`.
    coding: &'static str,
    source: io::Error,
}

/// The decoder of one body.
pub(crate) struct Decoder {
    state: State,
    /// How far the first gzip member's header has come (gzip only).
    header: GzipHeader,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decoder")
    }
}

enum State {
    Gzip(MultiGzDecoder<Vec<u8>>),
    Raw(DeflateDecoder<Vec<u8>>),
    /// The stream ended; what follows it is ignored (as Go's flate does).
    Ended,
}

impl Decoder {
    /// A decoder for `compression` (`None` for identity: nothing to do).
    /// Allocates its buffers: build it before the probe's clock starts.
    pub(crate) fn new(compression: Compression) -> Option<Decoder> {
        let state = match compression {
            Compression::Identity => return None,
            Compression::Gzip => State::Gzip(MultiGzDecoder::new(Vec::with_capacity(32 << 10))),
            Compression::Deflate => State::Raw(DeflateDecoder::new(Vec::with_capacity(32 << 10))),
        };
        let header = match state {
            State::Gzip(_) => GzipHeader::Fixed(0, 0),
            _ => GzipHeader::Done,
        };
        Some(Decoder { state, header })
    }

    /// True while the first gzip member's header has not been read whole:
    /// a failure now is Go's `gzip.NewReader` failing, before any regex.
    pub(crate) fn in_gzip_header(&self) -> bool {
        self.header != GzipHeader::Done
    }

    fn coding(&self) -> &'static str {
        match self.state {
            State::Gzip(_) => "gzip",
            _ => "deflate",
        }
    }

    /// Decodes `chunk`, handing each decoded piece to `out` as it comes.
    pub(crate) fn feed<E: From<DecodeError>>(
        &mut self,
        chunk: &[u8],
        mut out: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.header.advance(chunk);
        self.write(chunk, &mut out)
    }

    /// Ends the body: the stream must be complete.
    pub(crate) fn finish<E: From<DecodeError>>(
        &mut self,
        mut out: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let coding = self.coding();
        let fail = |source| E::from(DecodeError { coding, source });
        let done = match &mut self.state {
            State::Gzip(d) => d.try_finish().map(|()| d.get_mut()),
            State::Raw(d) => d.try_finish().map(|()| d.get_mut()),
            State::Ended => return Ok(()),
        };
        let pending = done.map_err(fail)?;
        let piece = std::mem::take(pending);
        out(&piece)
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "a short write is the point: one buffer of output per call keeps memory bounded"
    )]
    fn write<E: From<DecodeError>>(
        &mut self,
        mut input: &[u8],
        out: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let coding = self.coding();
        while !input.is_empty() {
            // One write decodes at most one buffer's worth; the piece is
            // handed on and the buffer reused before the next.
            let (used, pending) = match &mut self.state {
                State::Gzip(d) => (d.write(input), d.get_mut()),
                State::Raw(d) => (d.write(input), d.get_mut()),
                State::Ended => return Ok(()),
            };
            let used = used.map_err(|source| E::from(DecodeError { coding, source }))?;
            if !pending.is_empty() {
                let result = out(pending);
                pending.clear();
                result?;
            }
            if used == 0 {
                // Past the end of a raw stream; gzip reports trailing
                // garbage as an error above.
                if matches!(self.state, State::Raw(_)) {
                    return self.end(out);
                }
                return Ok(());
            }
            input = &input[used..];
        }
        Ok(())
    }

    /// The stream ended early in the input: flush it, ignore the rest.
    fn end<E: From<DecodeError>>(
        &mut self,
        out: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.finish(&mut *out)?;
        self.state = State::Ended;
        Ok(())
    }
}

/// Where the first gzip member's header (RFC 1952 2.3) has got to, followed
/// byte by byte beside flate2 (which does not say): the fixed ten bytes,
/// then the optional extra field, name, comment and header CRC. Only
/// whether it is complete matters, so nothing is checked here (flate2
/// checks it and fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GzipHeader {
    /// Bytes of the fixed part seen, and the flags byte once it came.
    Fixed(u8, u8),
    /// `flags` remaining; the extra field's length bytes seen so far.
    ExtraLen {
        flags: u8,
        seen: u8,
        len: u16,
    },
    /// Bytes of the extra field left.
    Extra {
        flags: u8,
        left: u16,
    },
    /// Inside the zero-terminated name (0x08) or comment (0x10).
    Text {
        flags: u8,
        which: u8,
    },
    /// Header CRC bytes left.
    Crc(u8),
    Done,
}

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

impl GzipHeader {
    fn advance(&mut self, bytes: &[u8]) {
        for &b in bytes {
            *self = match *self {
                GzipHeader::Done => return,
                GzipHeader::Fixed(n, flags) => {
                    let flags = if n == 3 { b } else { flags };
                    if n + 1 < 10 {
                        GzipHeader::Fixed(n + 1, flags)
                    } else {
                        GzipHeader::after_fixed(flags)
                    }
                }
                GzipHeader::ExtraLen { flags, seen, len } => {
                    let len = len | u16::from(b) << (8 * seen);
                    match (seen, len) {
                        (0, _) => GzipHeader::ExtraLen {
                            flags,
                            seen: 1,
                            len,
                        },
                        (_, 0) => GzipHeader::after(flags & !FEXTRA),
                        _ => GzipHeader::Extra { flags, left: len },
                    }
                }
                GzipHeader::Extra { flags, left } => match left - 1 {
                    0 => GzipHeader::after(flags & !FEXTRA),
                    left => GzipHeader::Extra { flags, left },
                },
                GzipHeader::Text { flags, which } => match b {
                    0 => GzipHeader::after(flags & !which),
                    _ => GzipHeader::Text { flags, which },
                },
                GzipHeader::Crc(left) => match left - 1 {
                    0 => GzipHeader::Done,
                    left => GzipHeader::Crc(left),
                },
            };
        }
    }

    fn after_fixed(flags: u8) -> GzipHeader {
        GzipHeader::after(flags & (FHCRC | FEXTRA | FNAME | FCOMMENT))
    }

    /// The next part once those of `flags` before it are done.
    fn after(flags: u8) -> GzipHeader {
        if flags & FEXTRA != 0 {
            GzipHeader::ExtraLen {
                flags,
                seen: 0,
                len: 0,
            }
        } else if flags & FNAME != 0 {
            GzipHeader::Text {
                flags,
                which: FNAME,
            }
        } else if flags & FCOMMENT != 0 {
            GzipHeader::Text {
                flags,
                which: FCOMMENT,
            }
        } else if flags & FHCRC != 0 {
            GzipHeader::Crc(2)
        } else {
            GzipHeader::Done
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::GzBuilder;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};

    #[derive(Debug)]
    struct Failed(String);

    impl From<DecodeError> for Failed {
        fn from(e: DecodeError) -> Self {
            Failed(e.to_string())
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap_or_else(|e| panic!("{e}"));
        e.finish().unwrap_or_else(|e| panic!("{e}"))
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap_or_else(|e| panic!("{e}"));
        e.finish().unwrap_or_else(|e| panic!("{e}"))
    }

    fn raw(data: &[u8]) -> Vec<u8> {
        let mut e = DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap_or_else(|e| panic!("{e}"));
        e.finish().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Decodes `body` fed in `split`-byte chunks; the largest piece seen too.
    fn decode(c: Compression, body: &[u8], split: usize) -> Result<(Vec<u8>, usize), Failed> {
        let mut d = Decoder::new(c).unwrap_or_else(|| panic!("no decoder"));
        let mut out = Vec::new();
        let mut largest = 0;
        let mut take = |piece: &[u8]| -> Result<(), Failed> {
            largest = largest.max(piece.len());
            out.extend_from_slice(piece);
            Ok(())
        };
        for chunk in body.chunks(split.max(1)) {
            d.feed(chunk, &mut take)?;
        }
        d.finish(&mut take)?;
        Ok((out, largest))
    }

    const TEXT: &[u8] = b"hello, compressed world; hello, compressed world";

    #[test]
    fn gzip_and_raw_deflate_decode_in_any_split() {
        let cases = [
            (Compression::Gzip, gzip(TEXT)),
            (Compression::Deflate, raw(TEXT)),
        ];
        for (c, body) in &cases {
            for split in [1, 2, 3, 7, body.len()] {
                let decoded = decode(*c, body, split).map(|(d, _)| d);
                assert_eq!(decoded.ok().as_deref(), Some(TEXT), "{c:?} split {split}");
            }
        }
    }

    #[test]
    fn concatenated_gzip_members_are_one_body() {
        let body = [gzip(b"one "), gzip(b"two")].concat();
        let decoded = decode(Compression::Gzip, &body, 5).map(|(d, _)| d);
        assert_eq!(decoded.ok().as_deref(), Some(&b"one two"[..]));
    }

    #[test]
    fn a_body_not_in_the_coding_fails() {
        for c in [Compression::Gzip, Compression::Deflate] {
            let plain = decode(c, b"<html>plain, not compressed</html>", 4);
            assert!(plain.is_err(), "{c:?} plain");
            let empty = decode(c, b"", 4);
            assert!(empty.is_err(), "{c:?} empty");
        }
        let mut cut = gzip(TEXT);
        cut.truncate(cut.len() - 3);
        assert!(decode(Compression::Gzip, &cut, 4).is_err(), "truncated");
        let err = decode(Compression::Gzip, b"nope", 4).err();
        assert!(err.is_some_and(|Failed(m)| m.starts_with("body is not valid gzip")));
    }

    #[test]
    fn pieces_stay_bounded_however_large_the_body() {
        let zeros = vec![0u8; 4 << 20];
        let body = gzip(&zeros);
        assert!(body.len() < 64 << 10, "compressed to {}", body.len());
        let (decoded, largest) =
            decode(Compression::Gzip, &body, body.len()).unwrap_or_else(|Failed(m)| panic!("{m}"));
        assert_eq!(decoded.len(), zeros.len());
        assert!(largest <= 64 << 10, "a piece of {largest} bytes");
    }

    #[test]
    fn the_consumer_can_stop_the_decoding() {
        let body = gzip(&vec![b'a'; 1 << 20]);
        let mut d = Decoder::new(Compression::Gzip).unwrap_or_else(|| panic!("no decoder"));
        let mut seen = 0usize;
        let result = d.feed(&body, |piece: &[u8]| {
            seen += piece.len();
            if seen > 1000 {
                Err(Failed("too large".into()))
            } else {
                Ok(())
            }
        });
        assert!(result.is_err());
        assert!(seen < 1 << 20);
    }

    #[test]
    fn a_zlib_wrapped_body_is_not_deflate() {
        // Go's flate.NewReader, which blackbox_exporter uses, reads raw
        // DEFLATE only.
        assert!(decode(Compression::Deflate, &zlib(TEXT), 3).is_err());
    }

    /// Whether the decoder is still in the gzip header after `body` in
    /// `split`-byte chunks, errors ignored.
    fn in_header_after(body: &[u8], split: usize) -> bool {
        let mut d = Decoder::new(Compression::Gzip).unwrap_or_else(|| panic!("no decoder"));
        for chunk in body.chunks(split.max(1)) {
            let _ = d.feed(chunk, |_: &[u8]| Ok::<(), Failed>(()));
        }
        d.in_gzip_header()
    }

    #[test]
    fn the_gzip_header_is_followed_through_its_optional_parts() {
        let plain = gzip(TEXT);
        let full = GzBuilder::new()
            .extra(vec![1, 2, 3])
            .filename("body.txt")
            .comment("a comment")
            .write(Vec::new(), flate2::Compression::default());
        let mut full = full;
        full.write_all(TEXT).unwrap_or_else(|e| panic!("{e}"));
        let full = full.finish().unwrap_or_else(|e| panic!("{e}"));
        // 10 fixed + 2 + 3 extra + 9 name + 10 comment.
        let header_len = 10 + 2 + 3 + 9 + 10;
        for split in [1, 2, 5, 64] {
            assert!(!in_header_after(&plain, split), "plain split {split}");
            assert!(!in_header_after(&full, split), "full split {split}");
            assert!(in_header_after(&plain[..9], split), "cut at 9");
            assert!(
                in_header_after(&full[..header_len - 1], split),
                "cut in comment"
            );
            assert!(!in_header_after(&full[..header_len], split), "header whole");
        }
        assert!(in_header_after(b"", 1), "an empty body never had a header");
        let deflate = Decoder::new(Compression::Deflate).unwrap_or_else(|| panic!("no decoder"));
        assert!(
            !deflate.in_gzip_header(),
            "deflate has no header to fail in"
        );
    }

    #[test]
    fn identity_needs_no_decoder() {
        assert!(Decoder::new(Compression::Identity).is_none());
    }
}
