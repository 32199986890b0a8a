//! Content decoding for a check's `compression`: a gzip or deflate body is
//! decoded as it streams, in pieces of at most flate2's 32 KiB buffer, so
//! the body assertions and the size cap see decoded bytes and memory stays
//! bounded whatever the compression ratio. Pure: bytes in, bytes out.
//!
//! As blackbox_exporter does, the body is taken to be in the coding asked
//! for whatever its Content-Encoding says: a body that is not (an empty one
//! included) fails. `deflate` accepts the zlib wrapping HTTP specifies and
//! the raw DEFLATE blackbox_exporter decodes, told apart by the zlib header.

use std::io::{self, Write};

use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

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
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decoder")
    }
}

enum State {
    Gzip(MultiGzDecoder<Vec<u8>>),
    /// Deflate before its first two bytes came: zlib or raw?
    Sniff(Vec<u8>),
    Zlib(ZlibDecoder<Vec<u8>>),
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
            Compression::Deflate => State::Sniff(Vec::with_capacity(2)),
        };
        Some(Decoder { state })
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
        mut chunk: &[u8],
        mut out: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if let State::Sniff(head) = &mut self.state {
            let take = (2 - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if head.len() < 2 {
                return Ok(());
            }
            let head = std::mem::take(head);
            self.state = if is_zlib_header(head[0], head[1]) {
                State::Zlib(ZlibDecoder::new(Vec::with_capacity(32 << 10)))
            } else {
                State::Raw(DeflateDecoder::new(Vec::with_capacity(32 << 10)))
            };
            self.write(&head, &mut out)?;
        }
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
            State::Zlib(d) => d.try_finish().map(|()| d.get_mut()),
            State::Raw(d) => d.try_finish().map(|()| d.get_mut()),
            State::Ended => return Ok(()),
            State::Sniff(_) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the body ended before the stream began",
            )),
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
                State::Zlib(d) => (d.write(input), d.get_mut()),
                State::Raw(d) => (d.write(input), d.get_mut()),
                State::Sniff(_) | State::Ended => return Ok(()),
            };
            let used = used.map_err(|source| E::from(DecodeError { coding, source }))?;
            if !pending.is_empty() {
                let result = out(pending);
                pending.clear();
                result?;
            }
            if used == 0 {
                // Past the end of a zlib or raw stream; gzip reports
                // trailing garbage as an error above.
                if matches!(self.state, State::Zlib(_) | State::Raw(_)) {
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

/// RFC 1950's header: CM 8 (deflate), a window of at most 32 KiB, and the
/// check bits making the pair a multiple of 31.
fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn gzip_zlib_and_raw_deflate_decode_in_any_split() {
        let cases = [
            (Compression::Gzip, gzip(TEXT)),
            (Compression::Deflate, zlib(TEXT)),
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
    fn zlib_headers_are_told_from_raw_deflate() {
        assert!(is_zlib_header(0x78, 0x9c));
        assert!(is_zlib_header(0x78, 0x01));
        assert!(is_zlib_header(0x78, 0xda));
        let raw = raw(TEXT);
        assert!(!is_zlib_header(raw[0], raw[1]));
    }

    #[test]
    fn identity_needs_no_decoder() {
        assert!(Decoder::new(Compression::Identity).is_none());
    }
}
