//! Content decoding for a check's `compression`: a gzip, deflate or
//! brotli body is decoded as it streams, in pieces of at most one 32 KiB
//! buffer, so the body assertions and the size cap see decoded bytes and
//! memory stays bounded whatever the compression ratio (brotli's window,
//! at most 16 MiB as the stream declares it, aside). Pure: bytes in, bytes
//! out.
//!
//! A named coding is blackbox_exporter's: the body is taken to be in it
//! whatever its Content-Encoding says, and a body that is not (an empty
//! one included) fails. `deflate` is then raw DEFLATE only, as Go's
//! `flate.NewReader` reads it: a zlib-wrapped body fails. A gzip body
//! whose header is bad fails before its first decoded byte, and the
//! decoder says so ([`Decoder::in_gzip_header`]): blackbox_exporter checks
//! that header before its regexes run. `auto` is curl's `--compressed`:
//! the response's Content-Encoding picks the coding ([`Decoder::select`]),
//! `deflate` is zlib-wrapped or raw, and an empty body is no error.

use std::io::{self, Write};

use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use hyper::header::{self, HeaderMap};

use super::Compression;

/// A body that is not in the coding the check asked for.
#[derive(Debug, thiserror::Error)]
#[error("body is not valid {coding}: {source}")]
pub(crate) struct DecodeError {
    /// `gzip`, `deflate` or `br`.
    coding: &'static str,
    source: io::Error,
}

/// The decoder of one body.
pub(crate) struct Decoder {
    state: State,
    /// How far the first gzip member's header has come (gzip only).
    header: GzipHeader,
    /// The coding came from Content-Encoding (`auto`): an empty body is
    /// no error, and neither is a coding sonde does not decode.
    auto: bool,
    /// Whether any body byte was fed.
    fed: bool,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decoder")
    }
}

/// The output buffer every decoder writes into, handed on and reused.
const PIECE: usize = 32 << 10;

enum State {
    Gzip(MultiGzDecoder<Vec<u8>>),
    Raw(DeflateDecoder<Vec<u8>>),
    Zlib(ZlibDecoder<Vec<u8>>),
    Brotli(Box<Brotli>),
    /// `auto` before the response's head named the coding; the buffer is
    /// allocated already (before the clock).
    Pending(Vec<u8>),
    /// `auto`'s deflate: its first two bytes tell zlib from raw DEFLATE.
    Sniff {
        buffer: Vec<u8>,
        seen: [u8; 2],
        len: usize,
    },
    /// The stream ended; what follows it is ignored (as Go's flate does).
    Ended,
}

/// A brotli stream's decoder state and its fixed output buffer.
struct Brotli {
    state: BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>,
    out: Vec<u8>,
}

impl Brotli {
    fn new(mut out: Vec<u8>) -> Box<Brotli> {
        out.resize(PIECE, 0);
        Box::new(Brotli {
            state: BrotliState::new(
                StandardAlloc::default(),
                StandardAlloc::default(),
                StandardAlloc::default(),
            ),
            out,
        })
    }
}

/// What [`Decoder::select`] makes of a Content-Encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
    Brotli,
    /// Identity, absent, unknown or stacked: nothing is decoded.
    None,
}

/// The one coding a response's Content-Encoding names (all its values,
/// comma-separated, `identity` ignored).
fn coding_of(headers: &HeaderMap) -> Coding {
    let mut codings = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case(b"identity"));
    let (Some(only), None) = (codings.next(), codings.next()) else {
        return Coding::None;
    };
    if only.eq_ignore_ascii_case(b"gzip") || only.eq_ignore_ascii_case(b"x-gzip") {
        Coding::Gzip
    } else if only.eq_ignore_ascii_case(b"deflate") {
        Coding::Deflate
    } else if only.eq_ignore_ascii_case(b"br") {
        Coding::Brotli
    } else {
        Coding::None
    }
}

/// Whether two bytes open a zlib stream (RFC 1950: CM 8, a window of at
/// most 32 KiB, the check bits), rather than raw DEFLATE.
fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

impl Decoder {
    /// A decoder for `compression` (`None` for identity: nothing to do).
    /// Allocates its buffers: build it before the probe's clock starts.
    pub(crate) fn new(compression: Compression) -> Option<Decoder> {
        let buffer = Vec::with_capacity(PIECE);
        let state = match compression {
            Compression::Identity => return None,
            Compression::Gzip => State::Gzip(MultiGzDecoder::new(buffer)),
            Compression::Deflate => State::Raw(DeflateDecoder::new(buffer)),
            Compression::Brotli => State::Brotli(Brotli::new(buffer)),
            Compression::Auto => State::Pending(buffer),
        };
        let header = match state {
            State::Gzip(_) => GzipHeader::Fixed(0, 0),
            _ => GzipHeader::Done,
        };
        Some(Decoder {
            state,
            header,
            auto: compression == Compression::Auto,
            fed: false,
        })
    }

    /// For `auto`, picks the coding by the response's Content-Encoding;
    /// false when there is nothing to decode (identity, none, unknown or
    /// stacked codings: the body is taken as it is), and the decoder is
    /// then left unused. A named coding is kept whatever the headers say.
    /// Runs once the head is in (the body phase): a gzip, deflate or
    /// brotli decoder's state is allocated here, its buffer before.
    pub(crate) fn select(&mut self, headers: &HeaderMap) -> bool {
        let State::Pending(buffer) = &mut self.state else {
            return true;
        };
        let buffer = std::mem::take(buffer);
        self.state = match coding_of(headers) {
            Coding::Gzip => {
                self.header = GzipHeader::Fixed(0, 0);
                State::Gzip(MultiGzDecoder::new(buffer))
            }
            Coding::Deflate => State::Sniff {
                buffer,
                seen: [0; 2],
                len: 0,
            },
            Coding::Brotli => State::Brotli(Brotli::new(buffer)),
            Coding::None => {
                self.state = State::Ended;
                return false;
            }
        };
        true
    }

    /// True while the first gzip member's header has not been read whole:
    /// a failure now is Go's `gzip.NewReader` failing, before any regex.
    pub(crate) fn in_gzip_header(&self) -> bool {
        self.header != GzipHeader::Done
    }

    fn coding(&self) -> &'static str {
        match self.state {
            State::Gzip(_) => "gzip",
            State::Brotli(_) => "br",
            _ => "deflate",
        }
    }

    /// Decodes `chunk`, handing each decoded piece to `out` as it comes.
    pub(crate) fn feed<E: From<DecodeError>>(
        &mut self,
        chunk: &[u8],
        mut out: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.fed |= !chunk.is_empty();
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
        if self.auto && !self.fed {
            // A HEAD, 204 or 304 with a Content-Encoding: nothing came.
            return Ok(());
        }
        let done = match &mut self.state {
            State::Gzip(d) => d.try_finish().map(|()| d.get_mut()),
            State::Raw(d) => d.try_finish().map(|()| d.get_mut()),
            State::Zlib(d) => d.try_finish().map(|()| d.get_mut()),
            State::Brotli(_) | State::Sniff { .. } => {
                return Err(fail(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stream ends early",
                )));
            }
            State::Pending(_) | State::Ended => return Ok(()),
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
                State::Zlib(d) => (d.write(input), d.get_mut()),
                State::Brotli(_) => return self.brotli(input, out),
                State::Sniff { .. } => {
                    let (rest, prefix) = self.sniff(input);
                    if let Some(prefix) = prefix {
                        // The decoder chosen now reads the two bytes first.
                        self.write(&prefix, out)?;
                    }
                    input = rest;
                    continue;
                }
                State::Pending(_) | State::Ended => return Ok(()),
            };
            let used = used.map_err(|source| E::from(DecodeError { coding, source }))?;
            if !pending.is_empty() {
                let result = out(pending);
                pending.clear();
                result?;
            }
            if used == 0 {
                // Past the end of a raw or zlib stream; gzip reports
                // trailing garbage as an error above.
                if matches!(self.state, State::Raw(_) | State::Zlib(_)) {
                    return self.end(out);
                }
                return Ok(());
            }
            input = &input[used..];
        }
        Ok(())
    }

    /// Takes `auto` deflate's first two bytes from `input` and, once both
    /// came, becomes the zlib or raw decoder they call for; returns the
    /// input left and, once decided, the two bytes to feed that decoder.
    fn sniff<'a>(&mut self, input: &'a [u8]) -> (&'a [u8], Option<[u8; 2]>) {
        let State::Sniff { buffer, seen, len } = &mut self.state else {
            return (input, None);
        };
        let take = (2 - *len).min(input.len());
        seen[*len..*len + take].copy_from_slice(&input[..take]);
        *len += take;
        if *len < 2 {
            return (&input[take..], None);
        }
        let [cmf, flg] = *seen;
        let buffer = std::mem::take(buffer);
        self.state = if is_zlib_header(cmf, flg) {
            State::Zlib(ZlibDecoder::new(buffer))
        } else {
            State::Raw(DeflateDecoder::new(buffer))
        };
        (&input[take..], Some([cmf, flg]))
    }

    /// Decodes a brotli chunk into the fixed buffer, a piece at a time.
    fn brotli<E: From<DecodeError>>(
        &mut self,
        input: &[u8],
        out: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let State::Brotli(b) = &mut self.state else {
            return Ok(());
        };
        let mut available_in = input.len();
        let mut input_offset = 0;
        loop {
            let mut available_out = b.out.len();
            let mut output_offset = 0;
            let mut total_out = 0;
            let result = BrotliDecompressStream(
                &mut available_in,
                &mut input_offset,
                input,
                &mut available_out,
                &mut output_offset,
                &mut b.out,
                &mut total_out,
                &mut b.state,
            );
            if output_offset > 0 {
                out(&b.out[..output_offset])?;
            }
            match result {
                BrotliResult::NeedsMoreOutput => continue,
                BrotliResult::NeedsMoreInput => return Ok(()),
                // What follows the stream's last block is ignored.
                BrotliResult::ResultSuccess => {
                    self.state = State::Ended;
                    return Ok(());
                }
                BrotliResult::ResultFailure => {
                    let code = b.state.error_code;
                    return Err(E::from(DecodeError {
                        coding: "br",
                        source: io::Error::new(io::ErrorKind::InvalidData, format!("{code:?}")),
                    }));
                }
            }
        }
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

    fn brotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let params = brotli::enc::BrotliEncoderParams::default();
        brotli::BrotliCompress(&mut &data[..], &mut out, &params).unwrap_or_else(|e| panic!("{e}"));
        out
    }

    fn headers(encoding: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for e in encoding {
            h.append(
                header::CONTENT_ENCODING,
                hyper::header::HeaderValue::from_str(e).unwrap_or_else(|e| panic!("{e}")),
            );
        }
        h
    }

    /// Decodes `body` under `auto` with these Content-Encoding values;
    /// `None` when nothing was to be decoded.
    fn auto(encoding: &[&str], body: &[u8], split: usize) -> Option<Result<Vec<u8>, Failed>> {
        let mut d = Decoder::new(Compression::Auto).unwrap_or_else(|| panic!("no decoder"));
        if !d.select(&headers(encoding)) {
            return None;
        }
        let mut out = Vec::new();
        let mut take = |piece: &[u8]| -> Result<(), Failed> {
            out.extend_from_slice(piece);
            Ok(())
        };
        let run = (|| {
            for chunk in body.chunks(split.max(1)) {
                d.feed(chunk, &mut take)?;
            }
            d.finish(&mut take)
        })();
        Some(run.map(|()| out))
    }

    #[test]
    fn brotli_decodes_in_any_split() {
        let body = brotli(TEXT);
        for split in [1, 2, 3, 7, body.len()] {
            let decoded = decode(Compression::Brotli, &body, split).map(|(d, _)| d);
            assert_eq!(decoded.ok().as_deref(), Some(TEXT), "split {split}");
        }
        assert!(decode(Compression::Brotli, b"plain text, not brotli", 4).is_err());
        assert!(decode(Compression::Brotli, b"", 4).is_err(), "empty");
        let mut cut = brotli(TEXT);
        cut.truncate(cut.len() / 2);
        let err = decode(Compression::Brotli, &cut, 4).err();
        assert!(
            err.is_some_and(|Failed(m)| m.starts_with("body is not valid br")),
            "truncated"
        );
    }

    #[test]
    fn auto_follows_content_encoding() {
        let got = |e: &[&str], body: &[u8]| auto(e, body, 3).map(|r| r.ok());
        assert_eq!(got(&["gzip"], &gzip(TEXT)), Some(Some(TEXT.to_vec())));
        assert_eq!(got(&["X-Gzip"], &gzip(TEXT)), Some(Some(TEXT.to_vec())));
        assert_eq!(got(&["br"], &brotli(TEXT)), Some(Some(TEXT.to_vec())));
        assert_eq!(
            got(&["identity, br"], &brotli(TEXT)),
            Some(Some(TEXT.to_vec()))
        );
        // Nothing to decode: the body is taken as it is.
        assert_eq!(got(&[], TEXT), None);
        assert_eq!(got(&["identity"], TEXT), None);
        assert_eq!(got(&["zstd"], TEXT), None, "unknown");
        assert_eq!(got(&["gzip", "br"], TEXT), None, "stacked");
        // Named but broken still fails.
        assert_eq!(got(&["gzip"], TEXT), Some(None));
        // A HEAD or 304 carries the header and no body.
        assert_eq!(got(&["gzip"], b""), Some(Some(Vec::new())));
        assert_eq!(got(&["br"], b""), Some(Some(Vec::new())));
    }

    #[test]
    fn auto_deflate_reads_zlib_and_raw_in_any_split() {
        for body in [zlib(TEXT), raw(TEXT)] {
            for split in [1, 2, 3, body.len()] {
                let decoded = auto(&["deflate"], &body, split).and_then(Result::ok);
                assert_eq!(decoded.as_deref(), Some(TEXT), "split {split}");
            }
        }
        assert!(
            auto(&["deflate"], b"x", 1).is_some_and(|r| r.is_err()),
            "one byte"
        );
        assert!(is_zlib_header(0x78, 0x9c));
        assert!(is_zlib_header(0x78, 0x01));
        assert!(!is_zlib_header(0x78, 0x9d));
    }

    /// Feeds a bomb (10 MiB of zeros) in 16 KiB chunks under a 1 MiB cap,
    /// as the body reader does; the decoded bytes handed on before the cap
    /// stopped it, and the largest piece.
    fn inflate_until_capped(d: &mut Decoder, body: &[u8]) -> (usize, usize) {
        const CAP: usize = 1 << 20;
        let mut seen = 0usize;
        let mut largest = 0usize;
        let mut take = |piece: &[u8]| -> Result<(), Failed> {
            largest = largest.max(piece.len());
            seen += piece.len();
            if seen > CAP {
                Err(Failed("body too large".into()))
            } else {
                Ok(())
            }
        };
        let mut failed = false;
        for chunk in body.chunks(16 << 10) {
            if d.feed(chunk, &mut take).is_err() {
                failed = true;
                break;
            }
        }
        assert!(
            failed || d.finish(&mut take).is_err(),
            "the cap never fired"
        );
        (seen, largest)
    }

    #[test]
    fn bombs_stop_at_the_cap_with_bounded_pieces() {
        let zeros = vec![0u8; 10 << 20];
        let gz = gzip(&zeros);
        let br = brotli(&zeros);
        assert!(gz.len() < 20 << 10, "gzip bomb of {} bytes", gz.len());
        assert!(br.len() < 20 << 10, "br bomb of {} bytes", br.len());
        for (name, mut d, body) in [
            ("gzip", Decoder::new(Compression::Gzip), &gz),
            ("br", Decoder::new(Compression::Brotli), &br),
        ] {
            let Some(d) = d.as_mut() else {
                panic!("no decoder")
            };
            let (seen, largest) = inflate_until_capped(d, body);
            assert!(seen <= (1 << 20) + PIECE, "{name}: inflated {seen}");
            assert!(largest <= 64 << 10, "{name}: a piece of {largest}");
        }
        let mut d = Decoder::new(Compression::Auto).unwrap_or_else(|| panic!("no decoder"));
        assert!(d.select(&headers(&["br"])));
        let (seen, _) = inflate_until_capped(&mut d, &br);
        assert!(seen <= (1 << 20) + PIECE, "auto br: inflated {seen}");
    }

    #[test]
    fn identity_needs_no_decoder() {
        assert!(Decoder::new(Compression::Identity).is_none());
    }
}
